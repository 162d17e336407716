package broker

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
	"github.com/twmb/franz-go/pkg/kversion"

	"github.com/sediment-io/sediment/segment"
	"github.com/sediment-io/sediment/tiering"
)

// Tests of the tiering read path (partition_remote.go, ListOffsets, DescribeLogDirs): data is put
// in the bucket by the real archiver (tiering.PartitionArchiver over the partition's own log and
// meta manifest) and removed from local disk with segment's DeleteLocalBelow, so that every read
// below the local start must come from the object store.

// tierTestPartition returns the broker's replica of topic/index.
func tierTestPartition(t testing.TB, b *Broker, topic string, index int32) *Partition {
	t.Helper()
	for _, p := range b.replicas.Partitions() {
		if p.topic == topic && p.index == index {
			return p
		}
	}
	t.Fatalf("no partition %s/%d on broker", topic, index)
	return nil
}

// tierReadView is the archiver's view of a test partition: every closed segment below the HW.
type tierReadView struct{ p *Partition }

func (v tierReadView) Segments() []segment.SegmentInfo { return v.p.log.Segments() }
func (v tierReadView) UploadLimit() int64              { return v.p.HighWatermark() }
func (v tierReadView) LeaderEpoch() int32              { return v.p.currentLeaderEpoch() }

// tierAll rolls the partition's log, uploads every closed segment and deletes the uploaded ones
// from local disk. Afterwards everything below the HW is only in the bucket. Returns the manifest
// end (first offset not uploaded).
func tierAll(t testing.TB, b *Broker, p *Partition) int64 {
	t.Helper()
	ctx := testCtx(t)
	if err := p.log.Roll(); err != nil {
		t.Fatal(err)
	}
	arch := tiering.NewPartitionArchiver(b.tier.store, p.topicID, p.index, tierReadView{p},
		tiering.MetaManifest{Node: b.meta, Topic: p.topicID, Partition: p.index}, tiering.ArchiverConfig{FS: p.fs})
	for {
		n, err := arch.RunOnce(ctx)
		if err != nil {
			t.Fatalf("archive: %v", err)
		}
		if n == 0 {
			break
		}
	}
	up := arch.Uploaded()
	if _, err := p.log.DeleteLocalBelow(up); err != nil {
		t.Fatal(err)
	}
	if got := p.log.LocalStartOffset(); got != up {
		t.Fatalf("local start %d after deleting below the upload end %d", got, up)
	}
	return up
}

// producedRecord is what a test produced, to compare with what a consumer gets.
type producedRecord struct {
	key, value []byte
	headers    []kgo.RecordHeader
	ts         time.Time
}

// produceTierRecords produces n records to topic/0 in batches of up to 10 (one ProduceSync each)
// with distinct, increasing timestamps (1 ms apart from base) and random keys, values and
// headers; returns them in offset order.
func produceTierRecords(t testing.TB, cl *kgo.Client, topic string, n int, base time.Time, seed uint64) []producedRecord {
	t.Helper()
	ctx := testCtx(t)
	rng := rand.New(rand.NewPCG(seed, 7))
	out := make([]producedRecord, 0, n)
	for len(out) < n {
		k := min(1+rng.IntN(10), n-len(out))
		recs := make([]*kgo.Record, k)
		for i := range recs {
			off := len(out)
			r := producedRecord{key: []byte(fmt.Sprintf("k%06d", off)), value: make([]byte, 50+rng.IntN(400)),
				ts: base.Add(time.Duration(off) * time.Millisecond)}
			for j := range r.value {
				r.value[j] = byte(rng.Uint32())
			}
			if rng.IntN(3) == 0 {
				r.headers = []kgo.RecordHeader{{Key: "h", Value: []byte{byte(i), 1, 2}}}
			}
			out = append(out, r)
			recs[i] = &kgo.Record{Topic: topic, Partition: 0, Key: r.key, Value: r.value, Headers: r.headers, Timestamp: r.ts}
		}
		if err := cl.ProduceSync(ctx, recs...).FirstErr(); err != nil {
			t.Fatal(err)
		}
	}
	return out
}

// consumeAll reads topic/0 from offset 0 with a fresh consumer until it has len(want) records and
// checks each against what was produced: offset, key, value, headers, timestamp.
func consumeAll(t testing.TB, b *Broker, topic string, want []producedRecord, timeout time.Duration, opts ...kgo.Opt) {
	t.Helper()
	if err := consumeCheck(t, b, topic, want, timeout, opts...); err != nil {
		t.Fatal(err)
	}
}

// consumeCheck is consumeAll returning the first difference (callable from any goroutine).
func consumeCheck(t testing.TB, b *Broker, topic string, want []producedRecord, timeout time.Duration, opts ...kgo.Opt) error {
	cl := newTestClient(t, b, append([]kgo.Opt{
		kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{topic: {0: kgo.NewOffset().At(0)}}),
		kgo.FetchMaxPartitionBytes(32 << 10), // many fetches, each a ranged read
	}, opts...)...)
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	got := 0
	for got < len(want) {
		fs := cl.PollFetches(ctx)
		if ctx.Err() != nil {
			return fmt.Errorf("consumed %d of %d records before the timeout", got, len(want))
		}
		fs.EachError(func(_ string, _ int32, err error) { t.Logf("fetch error (retried by the client): %v", err) })
		for it := fs.RecordIter(); !it.Done(); {
			r := it.Next()
			if r.Offset != int64(got) {
				return fmt.Errorf("record at offset %d, want %d", r.Offset, got)
			}
			w := want[got]
			if !bytes.Equal(r.Key, w.key) || !bytes.Equal(r.Value, w.value) || !r.Timestamp.Equal(w.ts) || len(r.Headers) != len(w.headers) {
				return fmt.Errorf("record %d differs from what was produced", got)
			}
			for i, h := range r.Headers {
				if h.Key != w.headers[i].Key || !bytes.Equal(h.Value, w.headers[i].Value) {
					return fmt.Errorf("record %d header %d differs", got, i)
				}
			}
			got++
		}
	}
	return nil
}

// readRaw reads [from, to) through Partition.read in chunks of maxBytes and returns the batches.
func readRaw(t testing.TB, p *Partition, from, to int64, maxBytes int) []byte {
	t.Helper()
	var out []byte
	for off := from; off < to; {
		r := p.read(off, maxBytes, true)
		if r.err != 0 {
			t.Fatalf("read at %d: %v", off, kerr.ErrorForCode(r.err))
		}
		if len(r.data) == 0 {
			t.Fatalf("read at %d returned nothing (hw %d)", off, r.hw)
		}
		bs, err := segment.SplitBatches(r.data)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, r.data...)
		off = bs[len(bs)-1].LastOffset() + 1
	}
	return out
}

// newTierTopic creates a one-partition topic with small segments whose uploads the test does itself
// (tierAll): remote.storage.enable=false keeps the broker's own upload task (tier_task.go) out of
// the way; reads below the local start go to the manifest whatever that setting says.
func newTierTopic(t testing.TB, adm *kadm.Client, topic string, segmentBytes int) {
	t.Helper()
	newTierTopicN(t, adm, topic, 1, segmentBytes)
}

// newTierTopicN is newTierTopic with partitions partitions.
func newTierTopicN(t testing.TB, adm *kadm.Client, topic string, partitions int32, segmentBytes int) {
	t.Helper()
	sb, off := fmt.Sprint(segmentBytes), "false"
	cfg := map[string]*string{"segment.bytes": &sb, "remote.storage.enable": &off}
	if r, err := adm.CreateTopic(testCtx(t), partitions, 1, cfg, topic); err != nil || r.Err != nil {
		t.Fatal(err, r.Err)
	}
}

// tieredTopic creates topic (newTierTopic, 16 KiB segments), produces n records with timestamps
// from base (produceTierRecords, seed) and moves all of them to the bucket (tierAll). Returns the
// producing client, the records and the partition.
func tieredTopic(t *testing.T, b *Broker, topic string, n int, base time.Time, seed uint64) (*kgo.Client, []producedRecord, *Partition) {
	t.Helper()
	return tieredTopicWith(t, b, topic, n, base, seed, func(t *testing.T, b *Broker, p *Partition) int64 { return tierAll(t, b, p) })
}

// tieredTopicWith is tieredTopic with the history moved to the bucket by move (tierAll by hand, or
// tierByBroker through the broker's own upload task).
func tieredTopicWith(t *testing.T, b *Broker, topic string, n int, base time.Time, seed uint64, move func(*testing.T, *Broker, *Partition) int64) (*kgo.Client, []producedRecord, *Partition) {
	t.Helper()
	cl := newTestClient(t, b, kgo.ProducerLinger(0), kgo.RecordPartitioner(kgo.ManualPartitioner()))
	newTierTopic(t, kadm.NewClient(cl), topic, 16<<10)
	want := produceTierRecords(t, cl, topic, n, base, seed)
	p := tierTestPartition(t, b, topic, 0)
	move(t, b, p)
	return cl, want, p
}

// TestTierReadReplayFromBucket: many small segments uploaded to the file:// bucket and deleted
// locally; a consumer from offset 0 gets every record as produced, the raw batches read from the
// bucket are byte for byte the ones the local log held, and ListOffsets/DescribeLogDirs see both
// tiers.
func TestTierReadReplayFromBucket(t *testing.T) {
	b := newTestBroker(t)
	testTierReplay(t, b, func(t *testing.T, b *Broker, p *Partition) int64 { return tierAll(t, b, p) })
}

// TestTierReadReplayThroughBrokerUploads is TestTierReadReplayFromBucket with the history moved to
// the bucket by the broker itself, as in production: remote.storage.enable switched on, the
// partition's upload task, and local retention (local.retention.ms) deleting the local copies.
func TestTierReadReplayThroughBrokerUploads(t *testing.T) {
	b := newTestBroker(t, tieredConfig)
	testTierReplay(t, b, tierByBroker)
}

// tierByBroker rolls the partition's log and lets the broker move everything below the HW to the
// bucket: it switches remote.storage.enable on with a 1 ms local.retention.ms (AlterConfigs, as an
// operator would) and waits until the manifest reaches the HW and local retention has deleted
// every uploaded local segment. Returns the manifest end, as tierAll.
func tierByBroker(t *testing.T, b *Broker, p *Partition) int64 {
	t.Helper()
	if err := p.log.Roll(); err != nil {
		t.Fatal(err)
	}
	hw := p.HighWatermark()
	rs, err := newTestAdmin(t, b).AlterTopicConfigs(testCtx(t), []kadm.AlterConfig{
		{Name: "remote.storage.enable", Value: kadm.StringPtr("true")},
		{Name: "local.retention.ms", Value: kadm.StringPtr("1")},
	}, p.topic)
	if err == nil {
		err = rs[0].Err
	}
	if err != nil {
		t.Fatalf("AlterConfigs remote.storage.enable=true on %s: %v", p.topic, err)
	}
	waitFor(t, "the broker to upload everything below the HW and trim the local log", func() bool {
		if err := localInvariant(p); err != nil {
			t.Fatal(err)
		}
		return uploadedEnd(b.meta.State().RemoteSegments(p.topicID, p.index)) == hw && p.log.LocalStartOffset() == hw
	})
	return hw
}

func testTierReplay(t *testing.T, b *Broker, tier func(*testing.T, *Broker, *Partition) int64) {
	cl := newTestClient(t, b, kgo.ProducerLinger(0), kgo.RecordPartitioner(kgo.ManualPartitioner()))
	adm := kadm.NewClient(cl)
	const topic = "tr"
	newTierTopic(t, adm, topic, 16<<10)
	base := time.Now().Add(-30 * time.Minute).Truncate(time.Millisecond)
	want := produceTierRecords(t, cl, topic, 3000, base, 1)

	p := tierTestPartition(t, b, topic, 0)
	hw := p.HighWatermark()
	if hw != int64(len(want)) {
		t.Fatalf("hw %d after %d records", hw, len(want))
	}
	local := readRaw(t, p, 0, hw, 64<<10)
	up := tier(t, b, p)
	segs := b.meta.State().RemoteSegments(p.topicID, p.index)
	if up != hw || len(segs) < 10 || p.log.StartOffset() != 0 {
		t.Fatalf("uploaded to %d of hw %d in %d objects, log start %d", up, hw, len(segs), p.log.StartOffset())
	}
	if n := len(p.log.Segments()); n != 1 {
		t.Fatalf("%d local segments left, want only the empty active one", n)
	}

	// Raw batches from the bucket, in reads of several sizes, equal the local bytes.
	for _, mb := range []int{1, 5000, 64 << 10, 1 << 20} {
		if remote := readRaw(t, p, 0, hw, mb); !bytes.Equal(remote, local) {
			t.Fatalf("maxBytes %d: %d bytes from the bucket differ from the %d local bytes", mb, len(remote), len(local))
		}
	}
	// A read from the middle of a batch returns that whole batch; maxBytes is respected.
	r := p.read(7, 3000, false)
	if r.err != 0 || len(r.data) == 0 || len(r.data) > 3000 {
		t.Fatalf("read(7, 3000): err %d, %d bytes", r.err, len(r.data))
	}
	if h := segment.BatchHeader(r.data); h.BaseOffset() > 7 || h.LastOffset() < 7 {
		t.Fatalf("read(7) starts with batch %d..%d", h.BaseOffset(), h.LastOffset())
	}
	if r := p.read(7, 10, false); r.err != 0 || len(r.data) != 0 {
		t.Fatalf("read(7, 10 bytes, !minOneBatch): err %d, %d bytes, want nothing", r.err, len(r.data))
	}

	consumeAll(t, b, topic, want, 60*time.Second)

	// ListOffsets by timestamp lands on the exact remote record.
	for _, i := range []int{0, 1, 2, 499, 1234, 2998, 2999} {
		lo := listOffset(t, cl, b, topic, want[i].ts.UnixMilli())
		if lo.ErrorCode != 0 || lo.Offset != int64(i) || lo.Timestamp != want[i].ts.UnixMilli() {
			t.Errorf("ListOffsets(ts of record %d) = offset %d ts %d err %d", i, lo.Offset, lo.Timestamp, lo.ErrorCode)
		}
	}
	if lo := listOffset(t, cl, b, topic, base.Add(time.Hour).UnixMilli()); lo.ErrorCode != 0 || lo.Offset != -1 {
		t.Errorf("ListOffsets(after every record) = %d err %d, want -1", lo.Offset, lo.ErrorCode)
	}
	checkSpecial := func(name string, ts, wantOff, wantTs int64) {
		t.Helper()
		lo := listOffset(t, cl, b, topic, ts)
		if lo.ErrorCode != 0 || lo.Offset != wantOff || lo.Timestamp != wantTs {
			t.Errorf("ListOffsets %s = offset %d ts %d err %d, want %d/%d", name, lo.Offset, lo.Timestamp, lo.ErrorCode, wantOff, wantTs)
		}
	}
	last := int64(len(want) - 1)
	checkSpecial("-2 earliest", -2, 0, -1)
	checkSpecial("-4 earliest local", -4, hw, -1)
	checkSpecial("-5 latest tiered", -5, last, -1)
	checkSpecial("-3 max timestamp", -3, last, want[last].ts.UnixMilli())
	checkSpecial("-1 latest", -1, hw, -1)

	// Produce more: -3 and timestamps move to local data; -5 stays at the bucket's end.
	more := produceTierRecords(t, cl, topic, 20, base.Add(10*time.Minute), 2)
	checkSpecial("-3 max timestamp (local)", -3, hw+19, more[19].ts.UnixMilli())
	checkSpecial("-5 latest tiered", -5, last, -1)
	checkSpecial("by timestamp (local)", more[3].ts.UnixMilli(), hw+3, more[3].ts.UnixMilli())

	// DescribeLogDirs: the local dir as before, plus the bucket as a pseudo dir with the manifest's bytes.
	var remoteBytes int64
	for _, s := range segs {
		remoteBytes += s.Size
	}
	dresp, err := kmsg.NewPtrDescribeLogDirsRequest().RequestWith(testCtx(t), cl.Broker(int(b.cfg.NodeID)))
	if err != nil {
		t.Fatal(err)
	}
	if len(dresp.Dirs) != 2 {
		t.Fatalf("DescribeLogDirs dirs %+v, want the local dir and the bucket", dresp.Dirs)
	}
	ld, rd := dresp.Dirs[0], dresp.Dirs[1]
	if rd.Dir != "remote:"+redactStoreURL(b.cfg.ObjectStore) || strings.Contains(rd.Dir, "?") || rd.TotalBytes != -1 ||
		len(rd.Topics) != 1 || rd.Topics[0].Partitions[0].Size != remoteBytes || remoteBytes < int64(len(local)) {
		t.Fatalf("remote dir %+v, want %d bytes of topic %s", rd, remoteBytes, topic)
	}
	if len(ld.Topics) != 1 || ld.TotalBytes <= 0 || ld.Topics[0].Partitions[0].Size >= int64(len(local)) {
		t.Fatalf("local dir %+v: the uploaded segments should be gone from disk", ld)
	}
}

// TestTierReadListOffsetsVersions: -4 needs ListOffsets v8 and -5 v9 (Kafka's
// timestampMinSupportedVersion); an older request gets UNSUPPORTED_VERSION for that partition.
func TestTierReadListOffsetsVersions(t *testing.T) {
	b := newTestBroker(t)
	adm := newTestAdmin(t, b)
	newTierTopic(t, adm, "v", 1<<20)
	v8 := kversion.Stable()
	v8.SetMaxKeyVersion(kmsg.ListOffsets.Int16(), 8)
	cl := newTestClient(t, b, kgo.MaxVersions(v8))
	if lo := listOffset(t, cl, b, "v", -5); lo.ErrorCode != kerr.UnsupportedVersion.Code {
		t.Errorf("-5 at v8: err %d, want UNSUPPORTED_VERSION", lo.ErrorCode)
	}
	if lo := listOffset(t, cl, b, "v", -4); lo.ErrorCode != 0 || lo.Offset != 0 {
		t.Errorf("-4 at v8: offset %d err %d", lo.Offset, lo.ErrorCode)
	}
	if lo := listOffset(t, cl, b, "v", -7); lo.ErrorCode != kerr.UnsupportedVersion.Code {
		t.Errorf("-7: err %d, want UNSUPPORTED_VERSION", lo.ErrorCode)
	}
	cl9 := newTestClient(t, b)
	if lo := listOffset(t, cl9, b, "v", -5); lo.ErrorCode != 0 || lo.Offset != -1 || lo.LeaderEpoch != -1 {
		t.Errorf("-5 with nothing tiered: offset %d epoch %d err %d, want -1/-1", lo.Offset, lo.LeaderEpoch, lo.ErrorCode)
	}
}

// faultyStore fails or hangs object reads (Get) on demand, as an object store that is down.
type faultyStore struct {
	tiering.Store
	mode atomic.Int32 // 0 healthy, 1 every Get fails, 2 every Get hangs until its context ends
	gets atomic.Int64
}

var errInjected = errors.New("injected: 503 SlowDown after every retry")

func (s *faultyStore) Get(ctx context.Context, key string, off, n int64) (io.ReadCloser, error) {
	s.gets.Add(1)
	switch s.mode.Load() {
	case 1:
		return nil, errInjected
	case 2:
		<-ctx.Done()
		return nil, ctx.Err()
	}
	return s.Store.Get(ctx, key, off, n)
}

// TestTierReadStoreFaults: while the object store fails or hangs, a fetch below the local start
// answers KAFKA_STORAGE_ERROR within the remote read bound (never a hung request); a consumer
// started during the outage gets every record once the store is back.
func TestTierReadStoreFaults(t *testing.T) {
	b := newTestBroker(t)
	const topic = "tf"
	cl, want, p := tieredTopic(t, b, topic, 600, time.Now().Add(-time.Minute).Truncate(time.Millisecond), 3)

	fs := &faultyStore{Store: b.tier.store}
	b.tier.remote = tiering.NewRemoteLog(fs, 16) // a fresh reader: no footer cached yet
	defer func(d time.Duration) { remoteReadTimeout = d }(remoteReadTimeout)
	remoteReadTimeout = 300 * time.Millisecond

	for _, mode := range []int32{1, 2} {
		fs.mode.Store(mode)
		start := time.Now()
		r := p.read(0, 1<<20, true)
		if r.err != kerr.KafkaStorageError.Code || len(r.data) != 0 {
			t.Fatalf("mode %d: read during the outage: err %d, %d bytes; want KAFKA_STORAGE_ERROR", mode, r.err, len(r.data))
		}
		if d := time.Since(start); d > 10*remoteReadTimeout {
			t.Fatalf("mode %d: failing read took %v", mode, d)
		}
		// ListOffsets by timestamp needs the bucket too: retriable error, not a wrong answer.
		if lo := listOffset(t, cl, b, topic, want[10].ts.UnixMilli()); lo.ErrorCode != kerr.KafkaStorageError.Code {
			t.Fatalf("mode %d: ListOffsets by timestamp during the outage: offset %d err %d", mode, lo.Offset, lo.ErrorCode)
		}
	}

	// While the store is failing, further reads get a tighter bound, so that a Fetch of many remote
	// partitions (read one after another) answers well within the client's request timeout.
	defer func(d time.Duration) { remoteReadTimeoutFailing = d }(remoteReadTimeoutFailing)
	remoteReadTimeout, remoteReadTimeoutFailing = 5*time.Second, 20*time.Millisecond
	start := time.Now()
	if r := p.read(0, 1<<20, true); r.err != kerr.KafkaStorageError.Code {
		t.Fatalf("read from a hung store: err %d", r.err)
	}
	if d := time.Since(start); d > remoteReadTimeout/2 {
		t.Fatalf("a read from a store that failed moments ago waited %v (full bound %v)", d, remoteReadTimeout)
	}
	remoteReadTimeout = 300 * time.Millisecond

	// A consumer running through the outage finishes once the store returns.
	fs.mode.Store(1)
	done := make(chan error, 1)
	go func() { done <- consumeCheck(t, b, topic, want, 60*time.Second) }()
	deadline := time.Now().Add(10 * time.Second)
	for fs.gets.Load() < 10 && time.Now().Before(deadline) { // the consumer is hitting the outage
		time.Sleep(10 * time.Millisecond)
	}
	if fs.gets.Load() < 10 {
		t.Fatalf("consumer made only %d object reads during the outage", fs.gets.Load())
	}
	fs.mode.Store(0)
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}

// TestTierReadRestartWithEmptiedDataDir: a broker whose history the broker itself moved to the bucket
// (tierByBroker) has its partition logs wiped (its Raft metadata, and with it the manifest, intact);
// it restarts with an empty local log at the manifest's end and
// still serves all history from the bucket: every record, byte for byte, and the right -2/-4.
func TestTierReadRestartWithEmptiedDataDir(t *testing.T) {
	dir := t.TempDir()
	cfg := testBrokerConfig(t, dir)
	tieredConfig(&cfg)
	b, err := Start(testCtx(t), cfg)
	if err != nil {
		t.Fatal(err)
	}
	cl, err := kgo.NewClient(kgo.SeedBrokers(b.Addr()), kgo.ProducerLinger(0), kgo.RecordPartitioner(kgo.ManualPartitioner()))
	if err != nil {
		t.Fatal(err)
	}
	const topic = "re"
	newTierTopic(t, kadm.NewClient(cl), topic, 16<<10)
	want := produceTierRecords(t, cl, topic, 1500, time.Now().Add(-time.Hour/2).Truncate(time.Millisecond), 4)
	p := tierTestPartition(t, b, topic, 0)
	p0 := readRaw(t, p, 0, p.HighWatermark(), 1<<20)
	end := tierByBroker(t, b, p)
	cl.Close()
	if err := b.Close(); err != nil {
		t.Fatal(err)
	}
	if err := os.RemoveAll(filepath.Join(dir, "logs")); err != nil {
		t.Fatal(err)
	}

	b2, err := Start(testCtx(t), cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { b2.Close() })
	var p2 *Partition
	deadline := time.Now().Add(10 * time.Second)
	for p2 == nil || p2.HighWatermark() != end {
		if time.Now().After(deadline) {
			t.Fatalf("partition not restored (hw %v, want %d)", p2, end)
		}
		for _, q := range b2.replicas.Partitions() {
			if q.topic == topic {
				p2 = q
			}
		}
		time.Sleep(10 * time.Millisecond)
	}
	if s, l := p2.log.StartOffset(), p2.log.LocalStartOffset(); s != 0 || l != end {
		t.Fatalf("restored log start %d, local start %d; want 0 and %d", s, l, end)
	}
	if got := readRaw(t, p2, 0, end, 1<<20); !bytes.Equal(got, p0) {
		t.Fatalf("restored broker serves %d bytes, the original log held %d (or they differ)", len(got), len(p0))
	}
	consumeAll(t, b2, topic, want, 60*time.Second)
	cl2 := newTestClient(t, b2)
	for ts, wantOff := range map[int64]int64{-2: 0, -4: end, -5: end - 1, -1: end} {
		if lo := listOffset(t, cl2, b2, topic, ts); lo.ErrorCode != 0 || lo.Offset != wantOff {
			t.Errorf("ListOffsets %d after restore = %d err %d, want %d", ts, lo.Offset, lo.ErrorCode, wantOff)
		}
	}
}

// TestTierReadWhileUploading: with the broker's own tiering running (uploads as segments close,
// local retention 100 ms behind them), a consumer from offset 0 racing both — its reads cross the
// local/remote boundary while retention moves it — gets every record in order, as produced.
func TestTierReadWhileUploading(t *testing.T) {
	b := newTestBroker(t, tieredConfig)
	cl := newTestClient(t, b, kgo.ProducerLinger(0), kgo.RecordPartitioner(kgo.ManualPartitioner()))
	const topic = "wu"
	createTopic(t, b, topic, 1, tierTopicConfigs("segment.bytes", "8192"))
	fs := &faultyStore{Store: b.tier.store} // healthy: counts the reads from the bucket
	b.tier.remote = tiering.NewRemoteLogWith(fs, tiering.RemoteLogConfig{CacheBytes: tiering.DefaultCacheBytes})
	base := time.Now().Add(-time.Minute).Truncate(time.Millisecond)
	want := produceTierRecords(t, cl, topic, 800, base, 5)
	p := tierTestPartition(t, b, topic, 0)
	waitFor(t, "local retention to delete uploaded segments", func() bool { return p.log.LocalStartOffset() > 200 })

	// A consumer of the first records runs while more are produced (segments roll, upload and
	// leave local disk under it); then one reads everything.
	done := make(chan error, 1)
	go func() { done <- consumeCheck(t, b, topic, want, 60*time.Second, kgo.FetchMaxPartitionBytes(2000)) }()
	want = append(want, produceTierRecords(t, cl, topic, 1200, base.Add(time.Second), 6)...)
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	consumeAll(t, b, topic, want, 60*time.Second, kgo.FetchMaxPartitionBytes(2000))
	if fs.gets.Load() == 0 || p.log.StartOffset() != 0 {
		t.Fatalf("%d reads from the bucket, log start %d: the test did not exercise remote reads", fs.gets.Load(), p.log.StartOffset())
	}
}

// TestTierReadManyPartitionsOneFetch: one Fetch of several partitions whose data is all in the
// bucket returns data for more than one of them (Kafka serves one remote partition per fetch) and
// keeps the request's limits: each partition within PartitionMaxBytes, the response within
// MaxBytes, except that the first partition with data may return one whole larger batch.
func TestTierReadManyPartitionsOneFetch(t *testing.T) {
	b := newTestBroker(t)
	cl := newTestClient(t, b, kgo.ProducerLinger(0), kgo.RecordPartitioner(kgo.ManualPartitioner()),
		kgo.ProducerBatchCompression(kgo.NoCompression()))
	const topic, parts = "mp", 4
	sb, off := "16384", "false"
	if r, err := kadm.NewClient(cl).CreateTopic(testCtx(t), parts, 1, map[string]*string{"segment.bytes": &sb, "remote.storage.enable": &off}, topic); err != nil || r.Err != nil {
		t.Fatal(err, r.Err)
	}
	for i := range 400 {
		if err := cl.ProduceSync(testCtx(t), &kgo.Record{Topic: topic, Partition: int32(i % parts), Value: make([]byte, 300)}).FirstErr(); err != nil {
			t.Fatal(err)
		}
	}
	var id [16]byte
	for i := range parts {
		p := tierTestPartition(t, b, topic, int32(i))
		tierAll(t, b, p)
		id = p.topicID
	}
	for _, lim := range []struct{ max, part int32 }{{20000, 8000}, {100000, 1 << 20}, {1, 1}} {
		req := kmsg.NewPtrFetchRequest()
		req.ReplicaID, req.MaxWaitMillis, req.MinBytes, req.MaxBytes = -1, 100, 1, lim.max
		req.SessionEpoch = -1
		rt := kmsg.NewFetchRequestTopic()
		rt.Topic, rt.TopicID = topic, id
		for i := range parts {
			rp := kmsg.NewFetchRequestTopicPartition()
			rp.Partition, rp.FetchOffset, rp.PartitionMaxBytes = int32(i), 0, lim.part
			rp.CurrentLeaderEpoch, rp.LogStartOffset = -1, -1
			rt.Partitions = append(rt.Partitions, rp)
		}
		req.Topics = append(req.Topics, rt)
		resp, err := req.RequestWith(testCtx(t), cl.Broker(int(b.cfg.NodeID)))
		if err != nil {
			t.Fatal(err)
		}
		total, withData, first := 0, 0, true
		for _, rt := range resp.Topics {
			for _, rp := range rt.Partitions {
				n := len(rp.RecordBatches)
				if rp.ErrorCode != 0 {
					t.Fatalf("limits %+v: partition %d error %d", lim, rp.Partition, rp.ErrorCode)
				}
				if n == 0 {
					continue
				}
				bs, err := segment.SplitBatches(rp.RecordBatches)
				if err != nil || bs[0].BaseOffset() != 0 {
					t.Fatalf("partition %d: %v, first batch at %d", rp.Partition, err, bs[0].BaseOffset())
				}
				if n > int(lim.part) && !(first && len(bs) == 1) {
					t.Fatalf("limits %+v: partition %d returned %d bytes", lim, rp.Partition, n)
				}
				first = false
				total += n
				withData++
			}
		}
		if total > int(lim.max) && withData > 1 {
			t.Fatalf("limits %+v: %d bytes in %d partitions", lim, total, withData)
		}
		if lim.max >= 20000 && withData < 2 {
			t.Fatalf("limits %+v: only %d partition(s) with data in one fetch", lim, withData)
		}
		if lim.max == 1 && withData != 1 {
			t.Fatalf("limits %+v: %d partitions with data; want exactly the first's one batch", lim, withData)
		}
	}
}

// TestTierReadFollowerBelowLocalStart: a replica fetching below the leader's local start gets
// OFFSET_MOVED_TO_TIERED_STORAGE (KIP-405: it then asks ListOffsets -4 and restarts its log there);
// from the local start on it is served as before.
func TestTierReadFollowerBelowLocalStart(t *testing.T) {
	b := newTestBroker(t)
	const topic = "fo"
	cl, _, p := tieredTopic(t, b, topic, 400, time.Now().Add(-time.Minute).Truncate(time.Millisecond), 7)
	end := p.localStart()
	produceTierRecords(t, cl, topic, 10, time.Now().Truncate(time.Millisecond), 8)
	const follower = 99 // a replica id the partition is made to list (the leader side is what is tested)
	p.stateMu.Lock()
	p.replicas = append(p.replicas, follower)
	p.stateMu.Unlock()
	for _, off := range []int64{0, end - 1} {
		if r := p.readForFollower(follower, off, 1<<20, true); r.err != kerr.OffsetMovedToTieredStorage.Code || len(r.data) != 0 {
			t.Fatalf("follower fetch at %d (local start %d): err %d, %d bytes", off, end, r.err, len(r.data))
		}
	}
	r := p.readForFollower(follower, end, 1<<20, true)
	if bs, err := segment.SplitBatches(r.data); r.err != 0 || err != nil || len(bs) == 0 || bs[0].BaseOffset() != end {
		t.Fatalf("follower fetch at the local start: err %d, %d bytes (%v)", r.err, len(r.data), err)
	}
	// The follower restarts its log at -4's offset with -4's epoch (the batch's epoch there).
	if lo := listOffset(t, cl, b, topic, -4); lo.Offset != end || lo.LeaderEpoch != p.currentLeaderEpoch() || lo.LeaderEpoch < 0 {
		t.Fatalf("ListOffsets -4 = %d epoch %d, want the local start %d epoch %d", lo.Offset, lo.LeaderEpoch, end, p.currentLeaderEpoch())
	}
}

// TestTierReadAfterDeleteRecordsInBucket: DeleteRecords raising the log start into the middle of an
// uploaded segment: reads below it are OFFSET_OUT_OF_RANGE, a consumer from the earliest offset
// starts exactly there, and timestamp lookups never answer below it.
func TestTierReadAfterDeleteRecordsInBucket(t *testing.T) {
	b := newTestBroker(t)
	const topic = "dr"
	cl, want, p := tieredTopic(t, b, topic, 1500, time.Now().Add(-time.Hour/2).Truncate(time.Millisecond), 9)
	adm := kadm.NewClient(cl)
	const start = 1234
	if p.localStart() <= start {
		t.Fatalf("local start %d: the new log start must fall in the bucket", p.localStart())
	}
	res, err := adm.DeleteRecords(testCtx(t), kadm.Offsets{topic: {0: {Topic: topic, Partition: 0, At: start}}})
	if err != nil || res.Error() != nil {
		t.Fatal(err, res.Error())
	}
	if got := p.log.StartOffset(); got != start {
		t.Fatalf("log start %d after DeleteRecords(%d)", got, start)
	}
	if r := p.read(start-1, 1<<20, true); r.err != kerr.OffsetOutOfRange.Code {
		t.Fatalf("read below the new log start: err %d", r.err)
	}
	if r := p.read(start, 1<<20, true); r.err != 0 || len(r.data) == 0 || segment.BatchHeader(r.data).LastOffset() < start {
		t.Fatalf("read at the new log start: err %d, %d bytes", r.err, len(r.data))
	}
	for _, c := range []struct{ ts, off int64 }{
		{want[100].ts.UnixMilli(), start}, // earlier records are gone: the first at or after the start
		{want[start].ts.UnixMilli(), start},
		{want[1400].ts.UnixMilli(), 1400},
		{-2, start},
	} {
		if lo := listOffset(t, cl, b, topic, c.ts); lo.ErrorCode != 0 || lo.Offset != c.off {
			t.Errorf("ListOffsets(%d) = %d err %d, want %d", c.ts, lo.Offset, lo.ErrorCode, c.off)
		}
	}
	c := newTestClient(t, b, kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{topic: {0: kgo.NewOffset().AtStart()}}))
	fs := c.PollFetches(testCtx(t))
	if err := fs.Err(); err != nil || fs.NumRecords() == 0 {
		t.Fatalf("consumer from the start: %v, %d records", err, fs.NumRecords())
	}
	if r := fs.Records()[0]; r.Offset != start || !bytes.Equal(r.Value, want[start].value) {
		t.Fatalf("consumer from the start got offset %d first, want %d", r.Offset, start)
	}
}

// TestTierReadAnswersBelowFetchMinBytes: a Fetch that gets records from the bucket is answered at
// once, even with fewer bytes than its MinBytes (Kafka answers such a fetch when its remote read
// completes: DelayedRemoteFetch). Waiting for MinBytes, it would wait out MaxWait, since only an
// append wakes a long-polling fetch and none comes for history: a replay with fetch.min.bytes above
// what one read returns would crawl at one fetch per MaxWait. A fetch at the log end still waits.
func TestTierReadAnswersBelowFetchMinBytes(t *testing.T) {
	b := newTestBroker(t)
	cl, _, p := tieredTopic(t, b, "minbytes", 300, time.Now().Add(-time.Minute), 3)
	fetch := func(offset int64, wait time.Duration) (*kmsg.FetchResponse, error) {
		req := fetchRequest(b, p.topic, offset, int32(wait.Milliseconds()), 64<<20, 64<<20, 1<<20)
		req.Topics[0].TopicID = p.topicID // kgo sends the highest version both support: v13+ names the topic by ID
		ctx, cancel := context.WithTimeout(testCtx(t), 10*time.Second)
		defer cancel()
		return req.RequestWith(ctx, cl.Broker(int(b.cfg.NodeID)))
	}
	// MaxWait one minute, the request bounded to 10 s: an answer means the broker did not wait.
	resp, err := fetch(0, time.Minute)
	if err != nil {
		t.Fatalf("fetch from the bucket with MinBytes above the partition's data: %v (waited for MinBytes)", err)
	}
	rp := resp.Topics[0].Partitions[0]
	if rp.ErrorCode != 0 || len(rp.RecordBatches) == 0 || len(rp.RecordBatches) >= 64<<20 {
		t.Fatalf("error %d, %d record bytes: want records from the bucket, fewer than MinBytes", rp.ErrorCode, len(rp.RecordBatches))
	}
	if bs, err := segment.SplitBatches(rp.RecordBatches); err != nil || bs[0].BaseOffset() != 0 {
		t.Fatalf("batches: %v", err)
	}
	// At the log end nothing is read: the fetch long-polls for MaxWait as before.
	start := time.Now()
	resp, err = fetch(p.HighWatermark(), 300*time.Millisecond)
	if err != nil {
		t.Fatal(err)
	}
	if rp := resp.Topics[0].Partitions[0]; rp.ErrorCode != 0 || len(rp.RecordBatches) != 0 || time.Since(start) < 300*time.Millisecond {
		t.Fatalf("fetch at the log end: error %d, %d record bytes after %v: want none after its 300 ms MaxWait", rp.ErrorCode, len(rp.RecordBatches), time.Since(start))
	}
}
