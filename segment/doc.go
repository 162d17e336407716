// Package segment is Sediment's durable partition log on local disk: Kafka
// RecordBatch v2 bytes in segment files with sparse offset and time indexes,
// crash recovery, a leader-epoch checkpoint and configurable flush policies.
// It imports none of Sediment's other packages and no Kafka library; all file
// access goes through the vfs seam (segment/vfs) so crash safety can be tested
// with a file system that loses unsynced bytes and injects errors.
//
// # What it owns
//
// One Log per partition replica, one directory per Log. The Log owns every file
// in that directory. It stores batches exactly as the wire carries them; the
// only bytes it writes into a batch are the two header fields the CRC does not
// cover (baseOffset, partitionLeaderEpoch), so a fetch returns the bytes on
// disk unchanged. Appends and fetches never decode records; only timestamp
// lookups decode the one batch they land on, and Decompress exists for the few
// callers that must look inside. Every segment's .log file stays open while
// the Log is (one descriptor per segment, as in Kafka).
//
// Append, AppendNoWait and the readers are safe for concurrent use; appends
// get offsets in the order they take the log's lock. A caller that must
// serialise its own validation with the append (the broker's producer state)
// calls AppendNoWait under its lock and WaitDurable after releasing it, so
// appends it serialises still share one fsync.
//
// # Goroutines and locks
//
// The package starts two goroutines of its own: under FlushInterval, a
// time.AfterFunc timer armed when unsynced data exists, and after a roll, at
// most one checkpointer per log, which fsyncs the closed segments' index files
// and then moves the recovery point up (Close waits for it). Group commit runs in the
// callers' goroutines: the first appender that needs durability becomes the
// syncer and fdatasyncs on behalf of everyone who has written by then; later
// appenders wait on a condition variable and one of them leads the next sync.
// A syncer that finds other goroutines waiting on the log yields once
// (runtime.Gosched) before its fdatasync: writers the previous sync just
// released are runnable and about to append, and without the yield the next
// sync would start with one batch and leave theirs for the one after
// (BenchmarkAppend always/p8/w16 reports B/sync: ~100 KB without, ~200 KB
// with; a single writer per log never yields).
//
// Group commit is per log on purpose: logs do not share fsync rounds. A
// process-wide flusher that fdatasyncs every waiting log's file per round (or
// calls one syncfs(2)) was built and measured against per-log syncs
// (BenchmarkSyncShare models it; status-segment.md has the figures): on ext4
// it lost 2-4x with one writer per partition, because a shared round lasts
// as long as its slowest sync and none of its writers can append again until
// it ends, while per-log fdatasyncs pipeline freely and the kernel's journal
// already folds concurrent fdatasyncs of many files into one commit. syncfs
// would also flush every dirty file on the file system (other logs under
// FlushOS, other processes), and before Linux 5.8 it does not report
// write-back errors, so a failure could not be pinned on one log.
//
// What bounds durable (FlushAlways) append throughput is the bytes each
// fdatasync covers divided by its latency, not the log: a CPU profile of
// Append/always/p8/w4 shows ~95% of the process's CPU in syscalls (write,
// fdatasync) and a trace ~89% of blocking time in fdatasync with lock waits
// under 2%; Append/always/p8/w1 runs about level with raw write+fdatasync of
// the same batches (median ~0.9x in the same rounds, noisy on a shared VM). More writers per partition raise it (group commit: p8 w1 ->
// w16 about 2-4x). Reserving space ahead with fallocate, O_DSYNC, fsync
// instead of fdatasync, and two pipelined syncs per log were measured and did
// not help at 8 partitions (BenchmarkDurableModel, status-segment.md); only
// overwriting space the file already owns avoids the per-sync journal commit.
// Zeroing space ahead costs what it saves, but a broker in steady state deletes
// old segments all the time, and their blocks are already written: segment
// file recycling (below) reuses them.
//
// Locks, always taken in this order:
//
//	changeMu serialises the changes that remove data or files (TruncateTo,
//	        SetStartOffset, DeleteLocalBelow, ResetLocal, Close) with each
//	        other. SetStartOffset and DeleteLocalBelow hold only it while they
//	        write the start checkpoint and while they unlink, rename into the
//	        recycle pool and fsync the directory; they take mu just to detach
//	        the segments, so appends and syncs go on meanwhile. Appends never
//	        take it.
//	syncMu  serialises a sync with changes that close, truncate or delete files
//	        (the same changes; retention only waits for the sync in flight
//	        before it closes the files it detached). Appends never take it.
//	mu      (RWMutex) the segment list, offsets, epochs, sticky error. Appends
//	        and rolls hold it for writing while they write (never while waiting
//	        for a sync); reads hold it for reading to find the bytes, then copy
//	        them holding only the segment's fileMu.
//	idxMu   lazy loading/eviction of closed segments' indexes; taken under mu.
//	fileMu  per segment: Read holds it (read) while copying bytes after letting
//	        go of mu; closing or truncating a file takes it (write) under mu.
//	fmu     group-commit state (durable offset, syncing flag, sync error); a leaf.
//
// Config.OnRoll (the caller's hook, e.g. the broker's "segment rolled" log line)
// runs on the appending goroutine with mu held for writing: it must not call the
// Log. The package itself logs only failures (Config.Logger).
//
// A failed write or sync sets a sticky error: the Log refuses every later write
// (a failed fsync may have dropped dirty pages, so nothing after the last good
// sync can be called durable); reads of what is there continue. Reopening runs
// recovery.
//
// Built with -tags invariants, the log checks its in-memory state (segment
// order, offsets, epochs, durable <= end) after every append, truncation,
// start-offset change and open, and panics on a violation; tests can run with
// the tag, release builds never pay for it.
//
// # Tiering: log start below the local log
//
// StartOffset is the whole log's start (Kafka's logStartOffset). With tiered
// storage the oldest segments are deleted locally once uploaded
// (DeleteLocalBelow) while StartOffset stays where it was, and a replica may
// start empty at its leader's local start (ResetLocal): then StartOffset <
// LocalStartOffset = the first local segment's base (KIP-405's local log start
// offset). Reads in [StartOffset, LocalStartOffset) return ErrNotLocal, below
// StartOffset ErrOffsetOutOfRange. SetStartOffset below LocalStartOffset raises
// only the whole-log start; above it, it deletes local segments as before.
// TruncateTo at or below the first local segment empties the local log and
// restarts it at the offset, keeping StartOffset when the offset is above it
// (lowering it to the offset otherwise, as Kafka). OffsetForTimestamp,
// MaxTimestamp and ScanBatches see local data only. The leader-epoch cache
// keeps its entries on DeleteLocalBelow and is cleared by ResetLocal.
//
// Topic config changes reach an open Log through SetConfig (segment.bytes,
// segment.ms, segment.index.bytes, index.interval.bytes, flush policy and
// interval), as Kafka applies them without a reopen; they take effect from
// the next append, and a segment already past a lowered limit rolls first.
//
// # Files
//
// All integers are big-endian. In a Log's directory:
//
//	%020d.log                  segment data, named by its base offset
//	%020d.index                sparse offset index of that segment
//	%020d.timeindex            time index of that segment
//	log-start-offset.checkpoint
//	recovery-point.checkpoint
//	leader-epoch.checkpoint
//	clean-shutdown.checkpoint  present only between Close and the next Open
//	*.tmp                      a checkpoint write that did not reach its rename;
//	                           deleted on Open
//	%020d.recycle              a deleted segment's .log kept for reuse (the
//	                           recycle pool), named by its bound: every batch
//	                           it ever held has offsets below that number
//	.lock                      empty; flocked while a Log has the directory open
//
// Open takes an exclusive, non-blocking flock(2) on .lock (through vfs.Locker;
// MemFS models it) and holds it until Close (Delete: until the directory is
// removed). A second Open of the same directory, in this process or another,
// fails with ErrLocked naming the directory: two Logs on one directory would
// interleave appends and delete each other's files. The kernel drops the lock
// when the holding process dies, so a crash never leaves the directory locked;
// the file itself carries nothing and may stay. File systems that are not a
// vfs.Locker, and the OS FS on systems without flock, are not protected.
//
// The base offset of a segment is the base offset of its first batch (or the
// offset it was created at, if empty). Files with other names are ignored
// (so a build without recycling ignores, and never reads, the pool files).
//
// .log — RecordBatch v2 batches back to back, exactly as on the wire, offsets
// contiguous (each batch starts at the previous batch's last offset + 1; the
// first at the segment's base), no padding and no per-file header. The active
// segment's file may be longer than its data: up to the next 4 KiB boundary
// the bytes after the data are zeros (every append is padded to a page
// boundary, "Page padding" below), and in a recycled file the bytes after that
// are stale (see "Segment file recycling"); closed
// segments' files, and all files of a cleanly closed log, are exactly their
// data. A later version that compacts logs must record where gaps are allowed:
//
//	 0               8           12              16  17          21      23
//	+---------------+-----------+---------------+---+-----------+-------+
//	| baseOffset i64| length i32| leaderEpoch   | 2 | crc32c u32| attrs |
//	+---------------+-----------+---------------+---+-----------+-------+
//	 23              27                35                43
//	+---------------+-----------------+-----------------+
//	|lastOffsetDelta| baseTimestamp   | maxTimestamp    |
//	+---------------+-----------------+-----------------+
//	 43                51     53            57            61
//	+-----------------+------+-------------+-------------+--------------+
//	| producerId i64  |epoch | baseSequence| recordCount | records ...  |
//	+-----------------+------+-------------+-------------+--------------+
//
// length counts the bytes after itself (batch size = 12 + length); the CRC-32C
// (Castagnoli) covers attrs to the end. attrs bits: 0-2 codec, 3 timestamp type,
// 4 transactional, 5 control.
//
// .index — 8-byte entries, no header, offsets and positions strictly increasing:
//
//	+----------------------+----------------------+
//	| relOffset i32        | position i32         |   x N
//	+----------------------+----------------------+
//
// relOffset is (last offset of a batch) - segment base; position is where that
// batch starts in the .log. An entry is added before a batch is written when more
// than index.interval.bytes were written since the last entry (Kafka's rule), so
// lookup(target) = largest entry <= target, then walk batch headers forward.
//
// .timeindex — 12-byte entries, no header, timestamps strictly increasing:
//
//	+------------------------------+----------------------+
//	| timestamp i64                | relOffset i32        |   x N
//	+------------------------------+----------------------+
//
// (the largest batch maxTimestamp so far, relative last offset of the batch
// holding it), added with each offset-index entry when the timestamp grew, and
// once more when the segment is rolled or closed, so the last entry is the
// segment's maximum. The active segment's indexes live in memory and are written
// whole when it is rolled (create and write; the checkpointer fsyncs them before
// the recovery point passes their segment, and Open rebuilds any above it) and
// on Close (with fsync); a closed segment's
// are read from its files on first use (fully checked then; rebuilt in memory
// from batch headers if they fail) and at most four closed segments' indexes
// stay loaded per log, least recently used evicted, so memory does not grow
// with retention. segment.index.bytes caps each at
// segment.index.bytes/8 and /12 entries; a segment rolls before either is full,
// and the time index counts as full one entry early (Kafka's TimeIndex.isFull):
// its last slot is kept for the entry added at roll or Close, so no .timeindex
// file outgrows segment.index.bytes, not even one an unclean Open rebuilds from
// a segment written under a larger index.interval.bytes.
//
// Checkpoint files share one frame, replaced atomically (write name.tmp, fsync,
// rename, fsync the directory):
//
//	 0       4         6      8             12             12+n
//	+-------+---------+------+-------------+--------------+-----------+
//	| "SDCK"| ver u16 | kind | payload len | payload      | crc32c u32|
//	|       |   = 1   | u16  |   u32 = n   |              |           |
//	+-------+---------+------+-------------+--------------+-----------+
//
// The CRC-32C covers everything before it. Kinds and payloads:
//
//	1 log-start-offset   version 1: i64 log start offset
//	                     version 2: i64 log start offset, i64 local log start
//	2 recovery-point     i64 base offset of the first segment that may need a scan
//	3 leader-epoch       N x (epoch i32, start offset i64), both increasing
//	4 clean-shutdown     i64 log end offset at Close
//
// The log-start checkpoint expresses a start below the first segment with
// version 2: it is written only when StartOffset < LocalStartOffset (the
// history between lives in object storage), version 1 otherwise, so logs
// without a remote prefix stay readable by builds that read only version 1,
// and such builds refuse (never misread) a log with one. Version 2 requires
// log start <= local log start. In a version-1 file a log start below the
// first segment's base means nothing (the first base is the start).
//
// # Durability
//
// Changes of the start offsets are ordered so a crash leaves a valid log:
// SetStartOffset and DeleteLocalBelow write the log-start checkpoint before
// removing any file (Open finishes the removal); ResetLocal and a full
// truncation remove segments newest first (a crash leaves a prefix of the old
// log), clear the epoch cache, write the checkpoint, then create the new empty
// segment (Open creates it from the checkpoint when it is missing).
//
// FlushAlways: Append returns after fdatasync of the active segment (group
// commit). FlushInterval: a timer syncs at most every FlushInterval after data
// arrives. FlushOS: only rolls and Close sync. Under every policy a roll
// fdatasyncs the closing segment (truncated first to its data when it is a
// recycled file) and writes its indexes before the new segment is created; every create, rename and removal of a file is followed by an fsync of
// the directory, except the removal of an expired recycle-pool file (see
// ExpireRecyclePool below: a crash that undoes it loses nothing). Directory
// creation is followed by an fsync of the parent.
//
// The recovery point moves in the background. A roll does not fsync the
// closed segment's index files or write recovery-point.checkpoint, because
// every append of the partition waits while a roll holds the log's lock (those
// fsyncs, the checkpoint's write, fsync, rename and directory fsync were two
// thirds of a roll's 12-13 ms under the lock in the durable append benchmark;
// the roll now holds it 5-7 ms). A checkpointer goroutine, started by the roll
// unless one runs, fsyncs the index files of every closed segment from the
// recovery point up to the active segment, then writes the checkpoint at the
// active segment's base, and repeats while rolls move the active segment on.
// It holds the lock that truncation, retention and Close take (so the files it
// syncs stay and the recovery point does not move under it), not the lock of
// appends and rolls. Until it has run, a crash leaves the recovery point
// behind: Open scans the segments above it and rebuilds their indexes, so an
// index file that lost its contents costs a scan, never data. The persisted
// recovery point is never above a segment whose indexes are not durable.
// TruncateTo and ResetLocal lower it synchronously before they remove
// anything, and a reset raises it to its new start only once every old
// segment is gone; Close syncs what the checkpointer has not reached and sets
// it at the active segment.
//
// # Segment file recycling
//
// On ext4 on this project's virtio VMs, an fdatasync after APPENDING to a file
// (new blocks, delayed allocation, an i_size change: a jbd2 journal commit,
// plus the host's cost of a block's first write) is far slower than after
// OVERWRITING blocks the file already holds (a data flush only). A raw-file
// model (8 files, write N bytes + fdatasync each, session 4, MB/s): 1 MiB per
// sync 2185-2307 appending vs 3603-4176 overwriting a written file whose pages
// were evicted; 132 KiB 1109-1280 vs 1953-2226; 16.5 KiB 218-229 vs 292-327.
// Zeroing space ahead costs what it saves; but a broker in steady state
// deletes old segments all the time (retention; with tiering, local copies
// right after upload), so, as PostgreSQL recycles WAL segments and RocksDB
// its WAL files (recycle_log_file_num), a Log keeps deleted segments' files
// and overwrites them. Kafka does not. In the real Log, steady state with
// retention (BenchmarkAppend always/p8/w16 and w64, .../recycled vs
// .../unlinked, the same workload with new files) ran a median ~1.5x faster
// (0.6-2.5x over ~25 pairs, 1 s runs on a shared VM at load 2-9;
// status-segment.md), and level to 1.6x the fresh-log rows, which never
// roll or delete (once 0.73x).
//
// Config.RecycleSegments (default DefaultRecycleSegments = 2; 0 turns it
// off) is how many files the pool holds. The name says what is kept;
// Kafka has no such setting. Two cover a retention pass that deletes two
// segments between rolls; each costs up to segment.bytes of disk beyond
// retention (Segments lists segments only; RecyclePool reports the pool's
// files and bytes, the broker's sediment_partition_recycle_pool_bytes). Only a
// log that keeps rolling gains from them, so
// ExpireRecyclePool removes the files that have waited longer than a limit
// for reuse (the broker calls it on its retention check with
// log.segment.recycle.ms, an hour by default): a log that went quiet keeps
// none for long. Files adopted at Open start waiting then. No directory fsync
// follows such a removal: a crash that undoes it only brings back a pool file
// for Open to adopt or remove.
//
//   - Into the pool: whenever a segment is deleted (SetStartOffset, retention,
//     DeleteLocalBelow, TruncateTo and ResetLocal dropping segments), its
//     index files are removed as before, and its .log is renamed to
//     %020d.recycle, the number being its bound B: every batch the file ever
//     held has offsets < B (the segment's highest next offset, before any
//     truncation; earlier lives of the file held offsets below its base, by
//     the reuse rule). The directory is fsynced. With the pool full, the file
//     with the highest bound goes (or the new one, if its bound is higher):
//     new segments' bases grow, so low bounds are usable soonest. Segments
//     Open itself drops (after corruption, or below the local start) are
//     removed, never pooled: their contents are not known.
//   - Out of the pool: a new segment at base (roll, SetStartOffset's roll,
//     ResetLocal, TruncateTo to the first segment, a follower's restart)
//     takes a pool file (Open's own first segment of an empty directory is
//     always a new file) only if B <= base, i.e. base is greater than every
//     offset the file ever held; pool files with B > base (after a
//     truncation or reset below them) are removed. The file is renamed to
//     %020d.log, the directory fsynced, and appends overwrite it from byte
//     0. The in-memory end position is the truth for readers; nothing past it
//     is ever read (Read, ScanBatches and the index walks stop at the data
//     size). Overwrites are made durable by the same fdatasync as appends;
//     writes past the old file size are ordinary appends.
//   - Trim: a roll truncates the closing segment's file to its data size
//     before the fdatasync that closes it (fdatasync persists a size change:
//     ftruncate is fdatasync(2)'s own example; so the truncation is durable before
//     the segment counts as closed and before its successor exists), and Close
//     does the same for the active segment before the clean-shutdown marker.
//     TruncateTo cuts the file at the new end, which drops the stale tail too.
//     So "file size = data size" holds for closed segments (tiering uploads
//     their files; recovery trusts them) and for every file of a cleanly
//     closed log. The trim is not optional: a recovery scan that met a stale
//     tail in a closed segment would end the log there and drop every later
//     segment, acknowledged data included (the tests' no-trim mutation does
//     exactly that).
//   - Recovery: a crash can leave the active segment with stale bytes after
//     its data, or (crash before its first write) only stale bytes. It is
//     scanned from byte 0 (it is never below the recovery point), and a stale
//     batch is always invalid: the first batch must start exactly at the
//     segment base and each next one exactly at the previous last offset + 1,
//     and every stale batch has an offset below B <= base. Recovery accepts no
//     straddling batch: that exception exists only in AppendReplicated on an
//     empty log, which restarts the log at the batch's base in a new segment,
//     to which the reuse rule applies. A torn overwrite fails the CRC or the
//     offset rule the same way. The scan ends the log at the first invalid
//     batch and cuts the file there (fsynced). A pool file
//     left by a crash at any step of the dance is either still a segment
//     (recovered as above, or deleted as below the local start) or a pool file,
//     which Open adopts: up to RecycleSegments with the lowest bounds are kept,
//     the rest, files with unparsable names and all of them with recycling off
//     are removed. Nothing writes to a pooled file, so adopting one is as safe
//     as reusing it before the restart.
//   - Page padding: an append that does not end on a 4 KiB boundary is
//     written (one pwritev) with zeros up to the boundary. The kernel then
//     fills whole pages: a write ending inside a page it does not hold in
//     the page cache would first read that page from disk, once per append.
//     A pool file deleted by retention was written long ago and its pages
//     are gone, so without the padding recycling would turn every append
//     into a synchronous read: BenchmarkAppend always/p8 .../recycled-evicted
//     (pool files' pages dropped as they enter the pool) 416-474 MB/s
//     unpadded vs 1081-1379 padded (2026-11-22, 2 rounds, w16 and w64);
//     over cached and new files the padding costs nothing measurable
//     (recycled 1450-1666 unpadded vs 1537-1893 padded). The zeros lie past
//     the data and are treated as any stale tail (never read; cut by
//     recovery, by rolls and by Close); the next append overwrites them. An
//     injected write failure in MemFS tears the data part, where a real
//     ENOSPC lands (the zeros share the data's last block).
//   - Outside readers: a process that opened a closed segment's file by
//     SegmentInfo.Path and still reads it after the segment was deleted may see
//     a new segment's bytes once the file is reused (without recycling it
//     would keep the old bytes). Such a reader must validate what it reads
//     (tiering's archiver does: batch CRCs, increasing offsets and the last
//     offset the log reported).
//
// # Recovery (Open)
//
//  1. Delete *.tmp and index files without a .log. Pool files are listed
//     and adopted or removed at the end (step 6).
//  2. If clean-shutdown.checkpoint is valid, trust every segment: read the last
//     entry of each index file (whole entries, inside the segment, pointing at
//     a batch with that last offset; the active segment's indexes are read and
//     checked in full) and walk the batch headers after it, each starting where
//     the previous ended, to find the end. Closed segments' full indexes are
//     checked when first loaded. If the end disagrees with the marker, fall
//     back to 3.
//  3. Otherwise segments whose base is below the recovery point (never the
//     last) are trusted as in 2; the others are scanned from byte 0, validating
//     each batch: length >= 49 and inside the file, magic 2, CRC-32C, base
//     offset equal to the segment base (first batch) or the previous batch's
//     last offset + 1 (logs are contiguous; this also detects damage to the base
//     offset, which the CRC does not cover), leader epoch >= -1, relative offset
//     within int32. The first invalid or incomplete batch ends the log:
//     the file is truncated there (and fsynced) and every later segment deleted.
//     Indexes of scanned segments are rebuilt; a trusted segment whose indexes
//     fail their checks is scanned too.
//  4. Scanned segments are fdatasynced (their bytes may have come from the page
//     cache of a crashed process) so the recovered end is durable.
//  5. log start = max(checkpoint, first base) for a version-1 log-start
//     checkpoint; with version 2 the checkpoint's log start, even below the
//     first base. Segments wholly below the checkpoint's local start (its log
//     start for version 1) are deleted (a crash interrupted SetStartOffset or
//     DeleteLocalBelow, which write the checkpoint first); if the local start
//     is beyond the end (possible only without FlushAlways, or a crash inside
//     ResetLocal), the log restarts empty there. With no segment file at all
//     the log starts empty at the checkpoint's local start. The leader-epoch cache drops entries at or past
//     the end and moves the first entry up to the start; if its file is missing
//     or corrupt it is rebuilt from the batch headers.
//  6. Pool files are adopted or removed (see "Segment file recycling"; a
//     stale batch in a recycled active segment already ended the scan in 3).
//     The recovery point is set to the active segment and the clean-shutdown
//     marker removed (directory fsynced) before any write is accepted.
//
// Errors name the file and byte position. Read errors are never treated as
// corruption (an unreadable disk does not truncate the log). Residual risk,
// inherent to Kafka's format: a change to a batch's partitionLeaderEpoch that
// leaves it >= -1 cannot be detected (the CRC starts after it).
//
// # Format versions
//
// The .log format is Kafka's and carries its own magic per batch; a batch with
// another magic is corrupt to this version. Checkpoints carry a version: this
// version reads version 1 and treats others as corrupt: an unreadable recovery
// point falls back to a full scan, an unreadable clean-shutdown marker to an
// unclean open, an unreadable leader-epoch file is rebuilt from batch headers,
// and an unreadable log-start-offset fails Open (guessing could resurrect
// records a DeleteRecords removed). A later version that changes a checkpoint payload must write a new
// version number and read version 1 as described here. Index files have no
// header because they are derived data: a later version that changes their
// layout should use new file suffixes and rebuild from the .log files of this
// version, which needs nothing but the rules above. A later version must keep
// the clean-shutdown semantics: absence of the marker means "scan from the
// recovery point".
//
// # Kafka differences
//
// OffsetForTimestamp and MaxTimestamp decode the records of the one batch the
// time index (or the segment's maximum) leads to, giving Kafka's record-level
// answers; only if those records cannot be decoded do they answer at batch
// granularity (the batch's base offset, resp. last offset). Read returns data from one segment per
// call.
package segment
