// Package tiering moves closed log segments to object storage and reads them back.
//
// # What it owns
//
//   - The object-store seam (Store, objstore.go): Put, ranged Get, Head, List by prefix, Delete, and
//     the optional ConditionalPutter and UploadSweeper capabilities (the second aborts uploads a
//     crash left unfinished: S3 multipart uploads, file-store temp files). Each method documents its
//     failure semantics; every backend passes the same conformance suite (tiering/objstoretest).
//
//   - Backends: MemStore (mem://, tests), FileStore (file://DIR, the embedded default; temp → fsync →
//     rename → fsync dir) and S3Store (s3://BUCKET/PREFIX?endpoint=&region=&path-style=; aws-sdk-go-v2
//     appears only in store_s3.go). OpenURL builds one from a URL.
//
//   - The remote segment object format (format.go, segobject.go): writer (BuildSegmentObject) and
//     reader (OpenRemote, RemoteReader.Read / OffsetForTimestamp).
//
//   - Object-key naming, all of it in keys.go.
//
//   - The archiver (archiver.go): PartitionArchiver uploads a partition leader's closed segments that
//     lie wholly below the upload limit (high watermark), in offset order, against two small
//     interfaces the broker implements: LogView (segments, upload limit, leader epoch) and Manifest
//     (meta's RemoteSegments / AddRemoteSegment). Order: PUT under a fresh key → commit the manifest
//     entry → only then is the local copy deletable (Uploaded()). A failed attempt stops the pass
//     (no gaps) and is retried by Run with jittered backoff; its object is an orphan that
//     CollectOrphans deletes once older than a grace period. A commit whose reply was lost is detected
//     by re-reading the manifest. After a leadership change, a segment whose start the previous leader
//     already committed is uploaded from the first batch after the manifest's end.
//
//   - Metrics (metrics.go): MeteredStore counts calls, errors and bytes per operation of any backend
//     and estimates request cost (Prometheus text via WriteMetrics); PartitionArchiver.Stats reports
//     segments/bytes uploaded, failures, orphans deleted and the upload lag.
//
//   - Remote reads and deletion (remote.go): RemoteLog serves Read / OffsetForTimestamp over a
//     partition's manifest with a bounded LRU of decoded footers read-ahead of the next range for
//     sequential consumers, across into the next object near an object's end (within a shared byte
//     budget) and a cold-read concurrency budget (at most
//     MaxConcurrentReads GETs in flight, so a replay queues on its own slots; a freed slot goes
//     to a waiting consumer read before a warm-up or read-ahead, slots.go); ExpiredRemoteSegments (retention.ms /
//     retention.bytes over both tiers, whole segments from the start, broker time for future-dated
//     segments, retention.go); DeleteRemoteSegments (manifest entries first, then objects); DeleteTopicObjects (everything under a deleted topic's
//     prefix, then its manifest entries); MetaManifest adapts meta.Node to Manifest.
//
// # Remote segment object, format version 2 (reads 1 and 2)
//
// One object per segment. All integers are big-endian. CRCs are CRC-32C (Castagnoli).
//
//	0                                        storedLen                        storedLen+footerLen
//	+----------------------------------------+-----------------------------------------------+
//	| data section                           | footer                                        |
//	|  verbatim: the segment's RecordBatch   |  header | chunk table | offset index |        |
//	|  v2 batches byte for byte as in the    |         time index | tail                     |
//	|  local .log file, or lz4 chunks        |                                               |
//	+----------------------------------------+-----------------------------------------------+
//
//	header (headerLen bytes; 96 in v2, 80 in v1 which ends after flags)
//	   0  u32 headerLen            size of this header; later versions only append fields
//	   4  i64 baseOffset           first offset of the first batch
//	  12  i64 lastOffset           last offset of the last batch
//	  20  i64 firstTimestamp       the first batch's firstTimestamp
//	  28  i64 maxTimestamp         largest batch maxTimestamp
//	  36  i64 maxTimestampOffset   last offset of the first batch holding maxTimestamp (ListOffsets -3)
//	  44  u64 dataLen              logical bytes: the segment's size (< 4 GiB: Kafka segments are ≤ 2 GiB)
//	  52  u32 dataCRC              CRC of the logical data (whole-object check)
//	  56  u32 batchCount
//	  60  u32 recordCount
//	  64  u32 offsetEntries  (n)
//	  68  u32 timeEntries    (m)
//	  72  u32 indexInterval        bytes between index entries used by the writer (4096)
//	  76  u32 flags                bit 0: data section is lz4 chunks; other bits must be 0
//	  80  u32 chunkSize      (v2)  logical bytes per chunk (0 when verbatim)
//	  84  u32 chunkCount (k) (v2)  = ceil(dataLen / chunkSize) when chunked, else 0
//	  88  u64 storedLen      (v2)  bytes of the data section in the object (= dataLen when verbatim)
//	chunk table (v2): k × { u32 storedPos, u32 storedLen | raw<<31, u32 CRC of the stored bytes }
//	   contiguous from 0 to storedLen; a raw chunk is stored uncompressed (lz4 saved < 1/16), the
//	   others are one lz4 block each (pierrec/lz4/v4), decodable alone.
//	offset index: n × { u32 offsetDelta (batch baseOffset − baseOffset), u32 position }
//	   entry 0 is the first batch (0, 0); both fields strictly increase; sparse (one entry per
//	   indexInterval bytes), always at batch starts. Positions are logical (uncompressed) bytes.
//	time index:   m × { i64 timestamp, u32 offsetDelta, u32 position }
//	   timestamp is the running maximum of batch maxTimestamp up to and including the batch at
//	   position; strictly increasing; sparse; the final maximum is always present.
//	tail (16 bytes, the same in every version):
//	   u32 footerLen  (header + tables + tail)
//	   u16 version    (2; 1 for objects written before chunking existed)
//	   u16 reserved   (0)
//	   u32 footerCRC  (CRC of the footer bytes before this field)
//	   [4] magic      "SDRS"
//
// A reader fetches the last 64 KiB of the object in one ranged GET (a second GET only if the footer
// is longer), validates it completely (DecodeFooter: magic, version, CRC, lengths against the object
// size, contiguous chunks, monotonic in-range entries; fuzzed by FuzzDecodeFooter), and caches it.
// Every data access maps a logical byte range to the chunks covering it and fetches their stored
// bytes with one ranged GET (verifying each chunk's CRC, then decoding):
//   - Read(offset): the offset index gives the position of the last indexed batch ≤ offset; one ranged
//     GET of [that position, next index position + maxBytes) holds the target batch and maxBytes after
//     it (a single batch larger than maxBytes with minOneBatch costs one more GET). A verbatim
//     object's batches are CRC-checked before they are returned (their only check): through the
//     chunk cache mostly by the chunk's load, each batch as its bytes arrive (arrival_check.go),
//     otherwise by the read itself; an lz4-chunked
//     object's chunks are CRC-checked on every read and its batches not again (they were before
//     upload, and the chunk CRC covers the same bytes).
//   - OffsetForTimestamp(ts): the first time entry ≥ ts bounds the byte range holding the first batch
//     whose maxTimestamp ≥ ts: one ranged GET. Batch granularity; the caller decodes that batch.
//
// Reads without copies (parts.go): a read whose range spans cached chunks returns the chunks' own
// slices (RemoteLog.ReadParts → PartsResult), never joined into one buffer. A batch header straddling
// two chunks is copied (61 bytes) to be parsed and the batch CRC-32C is computed across the slices
// (crc32.Update). The broker hands the slices to the fetch response, which writes each in place
// (writev); RemoteLog.Read joins them for callers that need one slice (timestamp lookups). Chunk
// buffers are allocated unzeroed (readInto fills them front to back, and readers see only the filled
// prefix) and reused only once no Hold references them (below), so a slice handed out stays valid as
// long as a response holds it, whatever the cache evicts. A chunk is readable while it loads: a read waits only for the bytes
// it reaches, so a consumer's first fetch from a cold object waits for its own megabyte, not the
// whole chunk (cache.go, chunkEntry).
//
// Compression: a segment whose batches were all sent uncompressed may be stored as lz4 chunks
// (BuildOptions.Compress, ArchiverConfig.Compress; default off); a segment with any compressed batch
// is stored verbatim. Chunks cost read amplification up to one chunk (64 KiB) at each end of a read.
// A verbatim object has no per-chunk CRC: a flipped bit in a batch's baseOffset/length/epoch (fields
// outside the Kafka batch CRC) is caught only by a whole-object dataCRC check, as in Kafka.
//
// Versioning: the tail never changes layout, so any version finds footerLen and version. A reader
// accepts every version up to its own and refuses newer ones with ErrUnsupportedVersion (never a
// misread). Version N+1 keeps the decoders of versions ≤ N (v2 reads v1: headerLen 80, no chunk
// fields, verbatim data; TestReadsVersion1Objects reads committed v1 objects); fields are only
// appended to the header (headerLen tells a newer decoder whether they are present, and an older one
// skips them), and a change to the data section's encoding sets a flags bit that older readers reject.
//
// # Object keys
//
//	segments/<topic id hex>/<partition>/<base offset, 20 digits>-<leader epoch>-<upload id>.seg
//
// See keys.go: a fresh random upload id per attempt means a retry or a deposed leader never
// overwrites another attempt's object.
//
// # Remote reads: cache, quota, failure
//
// RemoteLog (remote.go) serves reads over a partition's manifest. Decoded footers live in an LRU of
// their own. Data may go through a bounded chunk cache (cache.go, RemoteLogConfig.CacheBytes; the
// broker's remote.log.reader.cache.bytes): aligned chunks of an object's stored bytes, shared by
// concurrent readers (one GET per chunk): 16 MiB chunks, 1 prefetched ahead of a sequential reader on
// free cold-read slots only (each GET costs the object store CPU of its own), and only while the
// fetch quota (below) delivers at least a chunk a second (a throttled reader gains nothing from it,
// and the burst of reads is what the throttle holds back); the range read-ahead
// (readahead.go) runs only without it. Eviction takes chunks a reader has moved past (it reads from
// the next one) before chunks loaded ahead and not yet read, then least recently used by bytes. Objects are immutable, so a chunk
// never goes stale. Chunk buffers are reused once nothing references them: a read result's slices
// come with a Hold on their chunks, which the broker releases after writing the fetch response to
// the socket; up to PrefetchChunks+2 spare buffers are kept beyond CacheBytes. FetchQuota (cache_quota.go) is an optional broker-wide byte rate for reads from
// the bucket (KIP-956's remote.log.manager.fetch.max.bytes.per.second), a token bucket with one
// second's burst: a read is granted what has accrued, reads at most that and gives back what it did
// not use; it waits up to the broker's bound (500 ms) for a grant, else returns nothing for that
// partition this time. An adaptive limit (NewAdaptiveFetchQuota, SetAdaptiveRate) may lower the
// rate below the configured one, never raise it; its burst is 250 ms worth (at least 64 KiB), so a
// lowered rate binds within a controller tick. With neither limit, Take grants everything and only
// Used counts. The broker installs such a quota with RemoteLog.SetQuota and lowers it while
// producers are short of CPU (broker/tier_throttle.go); lowering it below a chunk a second also
// cancels the cache's GETs that no read needs (prefetches, the rest of chunks already read from),
// which would otherwise each pull a whole chunk at full speed (chunkCache.shedIdle). A Fetch that
// discards a read's result gives its bytes back (Refund). Failing(d) tells the broker that the last
// read reaching the store failed within d, so later reads get a shorter bound during an outage.
//
// # Goroutines and locks
//
// No goroutines of its own, except S3Store's multipart upload, which runs at most PartConcurrency part
// uploads for the duration of one Put call. PartitionArchiver.Run is meant to be the one goroutine per
// led partition (the broker starts it on leadership and cancels its context on loss); RunOnce and
// CollectOrphans must not run concurrently with it for the same partition. Without the chunk cache,
// RemoteLog's read-ahead runs at most one background fetch per cached segment object (readahead.go);
// with it, only the cache's chunk prefetches run (at most one per free cold-read slot). Either way
// there is at most one warm-up per next object, each bounded by a 30 s timeout and, together, by the RemoteLog's byte budget and its
// cold-read slots. Lock order: RemoteLog.mu, then readAhead.mu (eviction discards a
// prefetch under the cache lock); nothing takes RemoteLog.mu while holding readAhead.mu. MemStore has one mutex around its map; S3Store one around
// its request counters; RemoteLog one around its footer cache. No lock is held across I/O or a call into another package.
package tiering
