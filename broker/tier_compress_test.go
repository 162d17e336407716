package broker

import (
	"bytes"
	"fmt"
	"io"
	"math/rand/v2"
	"strings"
	"testing"
	"time"

	"github.com/minio/minio-go/v7"
	"github.com/pierrec/lz4/v4"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/sediment-io/sediment/localstack"
	"github.com/sediment-io/sediment/meta"
	"github.com/sediment-io/sediment/segment"
	"github.com/sediment-io/sediment/tiering"
)

// Tests of remote.log.segment.compression.type (lz4-chunked uploads, issue 7): what lands in the
// bucket is read back here independently of the broker's reader (the footer decoded, every lz4
// chunk decompressed with pierrec/lz4 directly) and compared with the local log's bytes; consumers
// and ListOffsets go through the broker's normal remote read path.

// compressBucket is how a test reads objects: through the broker's store (file://) or with
// minio-go (MinIO), plus the Config option that points the broker at that bucket.
type compressBucket struct {
	use func(t *testing.T) func(*Config) // a fresh store per broker start
	get func(t *testing.T, b *Broker, key string) []byte
}

func fileBucket() compressBucket {
	return compressBucket{
		use: func(*testing.T) func(*Config) { return func(*Config) {} },
		get: func(t *testing.T, b *Broker, key string) []byte {
			t.Helper()
			rc, err := b.tier.store.Get(testCtx(t), key, 0, -1)
			if err != nil {
				t.Fatalf("get %s: %v", key, err)
			}
			defer rc.Close()
			data, err := io.ReadAll(rc)
			if err != nil {
				t.Fatalf("read %s: %v", key, err)
			}
			return data
		},
	}
}

// produceCompressible produces n records to topic/0 from offset from, in batches of up to 8, with
// text-like values (JSON events with a few varying fields: lz4 shrinks them several times),
// timestamps base+offset ms, and a header on every third record. Returns them in offset order.
func produceCompressible(t *testing.T, cl *kgo.Client, topic string, from, n int, base time.Time) []producedRecord {
	t.Helper()
	rng := rand.New(rand.NewPCG(uint64(from), 11))
	events := []string{"page_view", "add_to_cart", "checkout", "search", "login"}
	out := make([]producedRecord, 0, n)
	for len(out) < n {
		k := min(1+rng.IntN(8), n-len(out))
		recs := make([]*kgo.Record, k)
		for i := range recs {
			off := from + len(out)
			var v strings.Builder
			fmt.Fprintf(&v, `{"id":%d,"user":"user-%04d","event":%q,"items":[`, off, rng.IntN(500), events[rng.IntN(len(events))])
			for j := range 3 + rng.IntN(5) {
				fmt.Fprintf(&v, `{"sku":"SKU-%05d","qty":%d,"currency":"EUR","warehouse":"eu-west-1"},`, rng.IntN(20000), j+1)
			}
			v.WriteString(`{}],"agent":"Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko)"}`)
			r := producedRecord{key: []byte(fmt.Sprintf("k%06d", off)), value: []byte(v.String()), ts: base.Add(time.Duration(off) * time.Millisecond)}
			if off%3 == 0 {
				r.headers = []kgo.RecordHeader{{Key: "trace", Value: []byte(fmt.Sprintf("t-%d", off))}}
			}
			out = append(out, r)
			recs[i] = &kgo.Record{Topic: topic, Partition: 0, Key: r.key, Value: r.value, Headers: r.headers, Timestamp: r.ts}
		}
		if err := cl.ProduceSync(testCtx(t), recs...).FirstErr(); err != nil {
			t.Fatal(err)
		}
	}
	return out
}

// waitPartition waits until b leads topic/0 with its high watermark at hw or beyond.
func waitPartition(t *testing.T, b *Broker, topic string, hw int64) *Partition {
	t.Helper()
	var p *Partition
	waitFor(t, "the partition to open with its data", func() bool {
		for _, q := range b.replicas.Partitions() {
			if q.topic == topic && q.index == 0 && q.HighWatermark() >= hw {
				p = q
				return true
			}
		}
		return false
	})
	return p
}

// storedObject is one manifest entry's object as read from the bucket: its footer and the logical
// (decompressed) data section.
type storedObject struct {
	seg     meta.RemoteSegment
	size    int64
	footer  *tiering.Footer
	logical []byte
}

// readObjects reads every manifest entry from index from on, decodes its footer and rebuilds its
// logical bytes: verbatim data as is, lz4 chunks decompressed one by one (each on its own: they
// are independently decodable) and checked against the footer's DataLen.
func readObjects(t *testing.T, bk compressBucket, b *Broker, p *Partition) []storedObject {
	t.Helper()
	var out []storedObject
	for _, s := range b.meta.State().RemoteSegments(p.topicID, p.index) {
		obj := bk.get(t, b, s.ObjectKey)
		if int64(len(obj)) != s.Size {
			t.Fatalf("%s: %d bytes in the bucket, the manifest says %d", s.ObjectKey, len(obj), s.Size)
		}
		f, err := tiering.DecodeFooter(obj, int64(len(obj)))
		if err != nil {
			t.Fatalf("%s: footer: %v", s.ObjectKey, err)
		}
		so := storedObject{seg: s, size: int64(len(obj)), footer: f}
		if f.Flags&tiering.FlagLZ4Chunks == 0 {
			so.logical = obj[:f.DataLen]
		} else {
			cs := int64(f.ChunkSize)
			for i, c := range f.Chunks {
				stored := obj[c.StoredPos : c.StoredPos+c.StoredLen]
				want := min(cs, f.DataLen-int64(i)*cs)
				if c.Raw {
					so.logical = append(so.logical, stored...)
					continue
				}
				buf := make([]byte, want)
				n, err := lz4.UncompressBlock(stored, buf)
				if err != nil || int64(n) != want {
					t.Fatalf("%s chunk %d: lz4 decoded %d of %d bytes: %v", s.ObjectKey, i, n, want, err)
				}
				so.logical = append(so.logical, buf...)
			}
		}
		if int64(len(so.logical)) != f.DataLen {
			t.Fatalf("%s: %d logical bytes, footer DataLen %d", s.ObjectKey, len(so.logical), f.DataLen)
		}
		out = append(out, so)
	}
	return out
}

// startCompressBroker starts a tiered broker on dir with the given remote.log.segment.compression.type.
func startCompressBroker(t *testing.T, dir string, bk compressBucket, compression string) *Broker {
	t.Helper()
	cfg := testBrokerConfig(t, dir)
	tieredConfig(&cfg)
	bk.use(t)(&cfg)
	if err := cfg.Set("remote.log.segment.compression.type", compression); err != nil {
		t.Fatal(err)
	}
	b, err := Start(testCtx(t), cfg)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestTierCompressedUploads (file:// bucket) and TestTierCompressedUploadsMinIO: with
// remote.log.segment.compression.type=lz4, segments of uncompressed batches go to the bucket as
// lz4 chunks, smaller than the segment, whose decompressed bytes are exactly the local log's; a
// consumer from offset 0 gets every record as produced and ListOffsets by timestamp lands on the
// remote records. Then the broker restarts with compression none (a config change mid-stream): new
// objects are verbatim, the partition's manifest holds both kinds, and the whole history still
// reads back from offset 0 across them.
func TestTierCompressedUploads(t *testing.T) {
	testTierCompressedUploads(t, fileBucket())
}

func TestTierCompressedUploadsMinIO(t *testing.T) {
	srv := localstack.StartMinIO(t)
	mb := newMinIOBucket(t, srv, "tier-compress")
	testTierCompressedUploads(t, compressBucket{
		use: func(t *testing.T) func(*Config) { return mb.useStore(t, srv.Endpoint, 3) },
		get: func(t *testing.T, _ *Broker, key string) []byte {
			t.Helper()
			o, err := mb.mc.GetObject(testCtx(t), srv.Bucket, mb.prefix+"/"+key, minio.GetObjectOptions{})
			if err != nil {
				t.Fatalf("minio-go get %s: %v", key, err)
			}
			defer o.Close()
			data, err := io.ReadAll(o)
			if err != nil {
				t.Fatalf("minio-go read %s: %v", key, err)
			}
			return data
		},
	})
}

func testTierCompressedUploads(t *testing.T, bk compressBucket) {
	dir := t.TempDir()
	const topic = "tc"
	base := time.Now().Add(-time.Hour).Truncate(time.Millisecond)

	// Phase 1: lz4. Produce with uploads paused, keep the local bytes, then let them go up.
	b := startCompressBroker(t, dir, bk, "lz4")
	closed := false
	defer func() {
		if !closed {
			b.Close()
		}
	}()
	createTopic(t, b, topic, 1, pausedTierTopicConfigs("segment.bytes", "16384"))
	cl := newTestClient(t, b, kgo.ProducerLinger(0), kgo.RecordPartitioner(kgo.ManualPartitioner()),
		kgo.ProducerBatchCompression(kgo.NoCompression()))
	want := produceCompressible(t, cl, topic, 0, 900, base)
	p := tierPartition(t, b, topic, 0)
	local := readRaw(t, p, 0, p.HighWatermark(), 1<<20)
	rs, err := kadm.NewClient(cl).AlterTopicConfigs(testCtx(t), resumeUploads, topic)
	if err != nil || rs[0].Err != nil {
		t.Fatalf("resume uploads: %v %v", err, rs)
	}
	waitFor(t, "lz4 uploads and local retention", func() bool { return uploadedAndTrimmed(p) })
	objs := readObjects(t, bk, b, p)
	if len(objs) < 5 {
		t.Fatalf("%d objects, want many segments", len(objs))
	}
	var logical []byte
	var stored, data int64
	for _, o := range objs {
		f := o.footer
		if f.Flags&tiering.FlagLZ4Chunks == 0 || f.StoredLen >= f.DataLen || o.size >= f.DataLen {
			t.Fatalf("%s: flags %#x, %d stored bytes for %d segment bytes (object %d): not lz4-compressed",
				o.seg.ObjectKey, f.Flags, f.StoredLen, f.DataLen, o.size)
		}
		logical = append(logical, o.logical...)
		stored += o.size
		data += f.DataLen
	}
	end1 := uploadedEnd(b.meta.State().RemoteSegments(p.topicID, 0))
	if !bytes.Equal(logical, local[:len(logical)]) {
		t.Fatalf("the decompressed objects (%d bytes) differ from the local log's bytes", len(logical))
	}
	if 2*stored > data {
		t.Fatalf("%d object bytes for %d segment bytes: lz4 saved less than half on text records", stored, data)
	}
	t.Logf("lz4: %d objects, %d bytes stored for %d segment bytes (%.2fx)", len(objs), stored, data, float64(data)/float64(stored))
	metrics := scrape(t, b)
	if up, seg := metricInt(t, metrics, "sediment_tier_uploaded_bytes_total"), metricInt(t, metrics, "sediment_tier_uploaded_segment_bytes_total"); up != stored || seg != data {
		t.Fatalf("/metrics: uploaded bytes %d, segment bytes %d; the bucket holds %d object bytes for %d segment bytes", up, seg, stored, data)
	}
	if p.log.LocalStartOffset() < end1-50 {
		t.Fatalf("local start %d, uploaded end %d: the history is not in the bucket only", p.log.LocalStartOffset(), end1)
	}
	consumeAll(t, b, topic, want, 60*time.Second)
	if got := readRaw(t, p, 0, end1, 64<<10); !bytes.Equal(got, local[:len(got)]) || int64(len(got)) != int64(len(logical)) {
		t.Fatalf("raw reads from the compressed objects: %d bytes, differ from the local log", len(got))
	}
	for _, i := range []int{0, 1, 137, 450, int(end1) - 1} {
		lo := listOffset(t, cl, b, topic, want[i].ts.UnixMilli())
		if lo.ErrorCode != 0 || lo.Offset != int64(i) || lo.Timestamp != want[i].ts.UnixMilli() {
			t.Errorf("lz4: ListOffsets(ts of record %d) = offset %d ts %d err %d", i, lo.Offset, lo.Timestamp, lo.ErrorCode)
		}
	}
	cl.Close()
	if err := b.Close(); err != nil {
		t.Fatal(err)
	}
	closed = true

	// Phase 2: the same broker restarted with compression none; more records go up verbatim.
	b2 := startCompressBroker(t, dir, bk, "none")
	defer b2.Close()
	p2 := waitPartition(t, b2, topic, int64(len(want)))
	cl2 := newTestClient(t, b2, kgo.ProducerLinger(0), kgo.RecordPartitioner(kgo.ManualPartitioner()),
		kgo.ProducerBatchCompression(kgo.NoCompression()))
	want = append(want, produceCompressible(t, cl2, topic, len(want), 600, base)...)
	waitFor(t, "verbatim uploads after the restart", func() bool { return uploadedAndTrimmed(p2) })
	objs = readObjects(t, bk, b2, p2)
	var nLZ4, nVerbatim int
	for _, o := range objs {
		f := o.footer
		switch {
		case o.seg.LastOffset < end1:
			if f.Flags&tiering.FlagLZ4Chunks == 0 {
				t.Fatalf("%s (offsets %d..%d, uploaded with lz4): flags %#x", o.seg.ObjectKey, o.seg.BaseOffset, o.seg.LastOffset, f.Flags)
			}
			nLZ4++
		default:
			if f.Flags != 0 || f.StoredLen != f.DataLen || len(f.Chunks) != 0 {
				t.Fatalf("%s (offsets %d..%d, uploaded with none): flags %#x, stored %d of %d", o.seg.ObjectKey, o.seg.BaseOffset, o.seg.LastOffset, f.Flags, f.StoredLen, f.DataLen)
			}
			nVerbatim++
		}
	}
	if nLZ4 == 0 || nVerbatim < 3 {
		t.Fatalf("manifest holds %d lz4 and %d verbatim objects, want both kinds", nLZ4, nVerbatim)
	}
	end2 := uploadedEnd(b2.meta.State().RemoteSegments(p2.topicID, 0))
	if p2.log.LocalStartOffset() <= end1 {
		t.Fatalf("local start %d: the verbatim objects are not the only copy", p2.log.LocalStartOffset())
	}
	consumeAll(t, b2, topic, want, 60*time.Second)
	if got := readRaw(t, p2, 0, end1, 1<<20); !bytes.Equal(got, local[:len(got)]) {
		t.Fatal("after the restart, raw reads of the lz4 objects differ from the original log")
	}
	for _, i := range []int{3, int(end1) - 1, int(end1), int(end1) + 77, int(end2) - 1} {
		lo := listOffset(t, cl2, b2, topic, want[i].ts.UnixMilli())
		if lo.ErrorCode != 0 || lo.Offset != int64(i) || lo.Timestamp != want[i].ts.UnixMilli() {
			t.Errorf("mixed: ListOffsets(ts of record %d) = offset %d ts %d err %d", i, lo.Offset, lo.Timestamp, lo.ErrorCode)
		}
	}
}

// TestTierCompressedUploadsKeepProducerCompression: with lz4 on, segments of batches the producer
// compressed (zstd) are stored as they are: verbatim objects whose data section is the local
// segment bytes, batches still zstd, every record reading back as produced.
func TestTierCompressedUploadsKeepProducerCompression(t *testing.T) {
	b := newTestBroker(t, tieredConfig, func(c *Config) { c.RemoteLogSegmentCompressionType = "lz4" })
	const topic = "tz"
	createTopic(t, b, topic, 1, pausedTierTopicConfigs("segment.bytes", "8192"))
	cl := newTestClient(t, b, kgo.ProducerLinger(0), kgo.RecordPartitioner(kgo.ManualPartitioner()),
		kgo.ProducerBatchCompression(kgo.ZstdCompression()))
	want := produceCompressible(t, cl, topic, 0, 800, time.Now().Add(-time.Hour).Truncate(time.Millisecond))
	p := tierPartition(t, b, topic, 0)
	local := readRaw(t, p, 0, p.HighWatermark(), 1<<20)
	rs, err := kadm.NewClient(cl).AlterTopicConfigs(testCtx(t), resumeUploads, topic)
	if err != nil || rs[0].Err != nil {
		t.Fatalf("resume uploads: %v %v", err, rs)
	}
	waitFor(t, "uploads and local retention", func() bool { return uploadedAndTrimmed(p) })
	objs := readObjects(t, fileBucket(), b, p)
	if len(objs) < 3 {
		t.Fatalf("%d objects, want several segments", len(objs))
	}
	var logical []byte
	for _, o := range objs {
		f := o.footer
		if f.Flags != 0 || f.StoredLen != f.DataLen || o.size != f.DataLen+int64(f.FooterLen()) {
			t.Fatalf("%s: flags %#x, stored %d of %d, object %d: producer-compressed data was re-encoded", o.seg.ObjectKey, f.Flags, f.StoredLen, f.DataLen, o.size)
		}
		bs, err := segment.SplitBatches(o.logical)
		if err != nil {
			t.Fatal(err)
		}
		for _, h := range bs {
			if h.Compression() != segment.CodecZstd {
				t.Fatalf("%s: batch %d stored with codec %d, want zstd", o.seg.ObjectKey, h.BaseOffset(), h.Compression())
			}
		}
		logical = append(logical, o.logical...)
	}
	if !bytes.Equal(logical, local[:len(logical)]) {
		t.Fatal("the objects' data sections differ from the local segment bytes")
	}
	consumeAll(t, b, topic, want, 60*time.Second)
}

// TestTierCompressedRetentionBytesCountsLogBytes: retention.bytes counts log (segment) bytes, as
// Kafka does, also for lz4 objects that are several times smaller than the segments they hold: the
// log keeps at least retention.bytes of segment bytes and not a whole segment more, although the
// objects' own sizes add up to far less than retention.bytes.
func TestTierCompressedRetentionBytesCountsLogBytes(t *testing.T) {
	b := newTestBroker(t, tieredConfig, func(c *Config) { c.RemoteLogSegmentCompressionType = "lz4" })
	const topic, limit = "trb", 200_000
	createTopic(t, b, topic, 1, tierTopicConfigs("segment.bytes", "16384", "retention.bytes", fmt.Sprint(limit)))
	cl := newTestClient(t, b, kgo.ProducerLinger(0), kgo.RecordPartitioner(kgo.ManualPartitioner()),
		kgo.ProducerBatchCompression(kgo.NoCompression()))
	produceCompressible(t, cl, topic, 0, 900, time.Now().Add(-time.Hour).Truncate(time.Millisecond))
	p := tierPartition(t, b, topic, 0)
	// logBytes: the segment bytes of the remote objects (footers) + the local segments not uploaded;
	// first: the oldest remaining object's segment bytes; objBytes: the objects' own sizes.
	sizes := func() (logBytes, first, objBytes int64) {
		objs := readObjects(t, fileBucket(), b, p)
		for i, o := range objs {
			logBytes += o.footer.DataLen
			objBytes += o.size
			if i == 0 {
				first = o.footer.DataLen
			}
		}
		up := uploadedEnd(b.meta.State().RemoteSegments(p.topicID, 0))
		for _, s := range p.log.Segments() {
			if s.NextOffset > up {
				logBytes += s.Size
			}
		}
		return logBytes, first, objBytes
	}
	waitFor(t, "retention.bytes to delete the oldest objects", func() bool {
		logBytes, first, _ := sizes()
		if logBytes < limit {
			t.Fatalf("retention deleted too much: %d log bytes left, retention.bytes %d", logBytes, limit)
		}
		return uploadedAndTrimmed(p) && p.log.StartOffset() > 0 && logBytes-first < limit
	})
	logBytes, _, objBytes := sizes()
	if objBytes*2 > limit {
		t.Fatalf("the remaining objects hold %d bytes: not enough compression for this test to mean anything", objBytes)
	}
	t.Logf("log start %d: %d log bytes left in %d object bytes + local (retention.bytes %d)", p.log.StartOffset(), logBytes, objBytes, limit)
}

// TestTierCompressionPerTopicOverride: the topic config remote.log.segment.compression.type wins
// over the broker's (none here), and an AlterConfigs applies from the next upload without a restart:
// one partition ends with verbatim objects, then lz4 ones, and reads back whole from offset 0.
func TestTierCompressionPerTopicOverride(t *testing.T) {
	b := newTestBroker(t, tieredConfig)
	base := time.Now().Add(-time.Hour).Truncate(time.Millisecond)
	cl := newTestClient(t, b, kgo.ProducerLinger(0), kgo.RecordPartitioner(kgo.ManualPartitioner()),
		kgo.ProducerBatchCompression(kgo.NoCompression()))
	kinds := func(p *Partition) (lz4, verbatim int, lastVerbatim int64) {
		for _, o := range readObjects(t, fileBucket(), b, p) {
			if o.footer.Flags&tiering.FlagLZ4Chunks != 0 {
				lz4++
			} else {
				verbatim++
				lastVerbatim = o.seg.LastOffset
			}
		}
		return
	}

	createTopic(t, b, "on", 1, tierTopicConfigs("segment.bytes", "16384", "remote.log.segment.compression.type", "lz4"))
	createTopic(t, b, "off", 1, tierTopicConfigs("segment.bytes", "16384"))
	produceCompressible(t, cl, "on", 0, 300, base)
	want := produceCompressible(t, cl, "off", 0, 300, base)
	pOn, pOff := tierPartition(t, b, "on", 0), tierPartition(t, b, "off", 0)
	waitFor(t, "uploads of both topics", func() bool { return uploadedAndTrimmed(pOn) && uploadedAndTrimmed(pOff) })
	if l, v, _ := kinds(pOn); l < 3 || v != 0 {
		t.Fatalf("topic with override lz4 (broker none): %d lz4 and %d verbatim objects", l, v)
	}
	l, v, end := kinds(pOff)
	if l != 0 || v < 3 {
		t.Fatalf("topic without override (broker none): %d lz4 and %d verbatim objects", l, v)
	}

	rs, err := kadm.NewClient(cl).AlterTopicConfigs(testCtx(t), []kadm.AlterConfig{{Name: "remote.log.segment.compression.type", Value: ptr("lz4")}}, "off")
	if err != nil || rs[0].Err != nil {
		t.Fatalf("alter: %v %v", err, rs)
	}
	want = append(want, produceCompressible(t, cl, "off", len(want), 300, base)...)
	waitFor(t, "uploads after the change", func() bool {
		return uploadedAndTrimmed(pOff) && uploadedEnd(b.meta.State().RemoteSegments(pOff.topicID, 0)) > int64(len(want))-50
	})
	objs := readObjects(t, fileBucket(), b, pOff)
	nl := 0
	for _, o := range objs {
		isLZ4 := o.footer.Flags&tiering.FlagLZ4Chunks != 0
		// Every closed segment was uploaded before the change and nothing rolled in between, so every
		// object after the verbatim run (the first holds the records produced before the change) is lz4.
		if o.seg.BaseOffset > end && !isLZ4 {
			t.Fatalf("%s (offsets %d..%d) uploaded after the change is verbatim", o.seg.ObjectKey, o.seg.BaseOffset, o.seg.LastOffset)
		}
		if isLZ4 {
			nl++
		}
	}
	if nl < 3 {
		t.Fatalf("%d lz4 objects after the change", nl)
	}
	consumeAll(t, b, "off", want, 60*time.Second)
}
