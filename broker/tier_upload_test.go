package broker

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/sediment-io/sediment/meta"
	"github.com/sediment-io/sediment/tiering"
)

// Tests of the upload side of tiering through a real broker (issue 7): archiver lifecycle, local
// retention gated on upload, remote retention, topic deletion, store outages, leadership moves.

// tieredConfig turns tiering on with loop timings short enough for tests.
func tieredConfig(c *Config) {
	c.RemoteLogStorageEnable = true
	c.RemoteLogReaderCacheBytes = 16 << 20
	c.LogRetentionCheckMs = 50
	c.tierTuning = func(t *tierTuning) {
		t.minPassGap = 10 * time.Millisecond
		t.retryBase = 20 * time.Millisecond
		t.retryMax = 500 * time.Millisecond
		t.retention = 100 * time.Millisecond
		t.deleteEvery = 50 * time.Millisecond
		t.orphanGrace = 100 * time.Millisecond
		t.sweepEvery = 200 * time.Millisecond
		t.orphanEvery = 300 * time.Millisecond
	}
}

// tierTuned is a Config option applied after tieredConfig: it changes the loop timings further.
func tierTuned(mod func(*tierTuning)) func(*Config) {
	return func(c *Config) {
		prev := c.tierTuning
		c.tierTuning = func(t *tierTuning) {
			if prev != nil {
				prev(t)
			}
			mod(t)
		}
	}
}

// tierTopicConfigs: small segments, a short local retention, remote storage on.
func tierTopicConfigs(extra ...string) map[string]*string {
	m := map[string]*string{
		"segment.bytes":         ptr("2048"),
		"local.retention.ms":    ptr("100"),
		"remote.storage.enable": ptr("true"),
	}
	for i := 0; i+1 < len(extra); i += 2 {
		m[extra[i]] = ptr(extra[i+1])
	}
	return m
}

// pausedTierTopicConfigs is tierTopicConfigs with uploads paused (remote.log.copy.disable=true).
// Kafka then requires local retention to be the whole log's, so local.retention.ms is -2;
// resumeUploads turns both back in one request.
func pausedTierTopicConfigs(extra ...string) map[string]*string {
	return tierTopicConfigs(append([]string{"remote.log.copy.disable", "true", "local.retention.ms", "-2"}, extra...)...)
}

// resumeUploads is the AlterConfigs that ends pausedTierTopicConfigs' pause.
var resumeUploads = []kadm.AlterConfig{
	{Name: "remote.log.copy.disable", Value: ptr("false")},
	{Name: "local.retention.ms", Value: ptr("100")},
}

func ptr(s string) *string { return &s }

// produceValues produces n records of size bytes each (one batch per record, uncompressed), the
// value holding its index.
func produceValues(t *testing.T, cl *kgo.Client, from, n, size int) {
	t.Helper()
	for i := from; i < from+n; i++ {
		v := make([]byte, size)
		copy(v, fmt.Sprintf("rec-%06d", i))
		if err := cl.ProduceSync(testCtx(t), &kgo.Record{Value: v}).FirstErr(); err != nil {
			t.Fatalf("produce %d: %v", i, err)
		}
	}
}

func tierPartition(t *testing.T, b *Broker, topic string, index int32) *Partition {
	t.Helper()
	p, _, code := b.replicas.lookupPartition(b.meta.State(), topic, index)
	if code != 0 {
		t.Fatalf("partition %s-%d: code %d", topic, index, code)
	}
	return p
}

// checkManifest asserts a partition's manifest is contiguous (no gap, no overlap) and that every
// entry's object exists (headObject), and returns it.
func checkManifest(t *testing.T, st *meta.State, id meta.TopicID, index int32, headObject func(key string) error) []meta.RemoteSegment {
	t.Helper()
	segs := st.RemoteSegments(id, index)
	for i, s := range segs {
		if s.LastOffset < s.BaseOffset {
			t.Fatalf("manifest entry %d: offsets %d..%d", i, s.BaseOffset, s.LastOffset)
		}
		if i > 0 && s.BaseOffset != segs[i-1].LastOffset+1 {
			t.Fatalf("manifest not contiguous at entry %d: %d..%d after %d..%d", i, s.BaseOffset, s.LastOffset, segs[i-1].BaseOffset, segs[i-1].LastOffset)
		}
		if err := headObject(s.ObjectKey); err != nil {
			t.Fatalf("manifest entry %d (%d..%d): object %s: %v", i, s.BaseOffset, s.LastOffset, s.ObjectKey, err)
		}
	}
	return segs
}

func storeHead(s tiering.Store) func(string) error {
	return func(key string) error {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_, err := s.Head(ctx, key)
		return err
	}
}

// localInvariant: every offset of the log is local or in the manifest — local retention never
// deleted a segment that was not uploaded.
func localInvariant(p *Partition) error {
	segs := p.tier.b.meta.State().RemoteSegments(p.topicID, p.index)
	localStart, start := p.log.LocalStartOffset(), p.log.StartOffset()
	if localStart > start && localStart > uploadedEnd(segs) {
		return fmt.Errorf("local start %d is above both the log start %d and the uploaded end %d: a segment that was not uploaded was deleted",
			localStart, start, uploadedEnd(segs))
	}
	return nil
}

// uploadedAndTrimmed: every closed segment is in the manifest and local retention has deleted
// all but at most one of them (local.retention.ms is short in these tests).
func uploadedAndTrimmed(p *Partition) bool {
	segs := p.log.Segments()
	active := segs[len(segs)-1]
	return len(segs) <= 2 && uploadedEnd(p.tier.b.meta.State().RemoteSegments(p.topicID, p.index)) >= active.BaseOffset
}

func scrape(t *testing.T, b *Broker) string {
	t.Helper()
	resp, err := http.Get("http://" + b.HTTPAddr() + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return string(body)
}

// metricValue returns the value of the sample line starting with name+" " (or name+"{...} ").
func metricValue(body, sample string) (string, bool) {
	for _, l := range strings.Split(body, "\n") {
		if strings.HasPrefix(l, sample+" ") {
			return strings.TrimPrefix(l, sample+" "), true
		}
	}
	return "", false
}

// consumeAllValues reads [0, n) from topic partition 0 and checks every record's offset and, with
// size >= 0, its value (as produceValues wrote it).
func consumeAllValues(t *testing.T, seeds []string, topic string, n, size int) {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(seeds...), kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{topic: {0: kgo.NewOffset().At(0)}}))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	next := 0
	for next < n {
		fs := cl.PollFetches(ctx)
		if ctx.Err() != nil {
			t.Fatalf("consumed %d of %d records", next, n)
		}
		fs.EachError(func(_ string, _ int32, err error) { t.Logf("fetch error: %v", err) })
		fs.EachRecord(func(r *kgo.Record) {
			if r.Offset != int64(next) {
				t.Fatalf("record at offset %d, want %d", r.Offset, next)
			}
			want := make([]byte, max(size, 0))
			copy(want, fmt.Sprintf("rec-%06d", next))
			if size >= 0 && string(r.Value) != string(want) {
				t.Fatalf("offset %d: value %.12q, want %.12q", r.Offset, r.Value, want)
			}
			next++
		})
	}
}

// produceTiered creates a one-partition tiered topic (tierTopicConfigs), produces n uncompressed
// values of size bytes to it, and returns the producing client and the partition.
func produceTiered(t *testing.T, b *Broker, topic string, n, size int) (*kgo.Client, *Partition) {
	t.Helper()
	createTopic(t, b, topic, 1, tierTopicConfigs())
	cl := newTestClient(t, b, kgo.DefaultProduceTopic(topic), kgo.ProducerBatchCompression(kgo.NoCompression()))
	produceValues(t, cl, 0, n, size)
	return cl, tierPartition(t, b, topic, 0)
}

// Closed segments go to the bucket in order, the manifest stays contiguous, local retention
// deletes only uploaded segments (the log start does not move), the metrics count the uploads,
// and a consumer from offset 0 reads every record (from the bucket, then locally).
func TestTierUploadAndLocalRetention(t *testing.T) {
	b := newTestBroker(t, tieredConfig)
	const n, size = 120, 500
	_, p := produceTiered(t, b, "tu", n, size)
	waitFor(t, "every closed segment uploaded and the local copies gone", func() bool {
		if err := localInvariant(p); err != nil {
			t.Fatal(err)
		}
		return uploadedAndTrimmed(p) && p.log.LocalStartOffset() > 0
	})
	segs := checkManifest(t, b.meta.State(), p.topicID, 0, storeHead(b.tier.store))
	if len(segs) < 10 || segs[0].BaseOffset != 0 {
		t.Fatalf("manifest: %d entries from %d", len(segs), segs[0].BaseOffset)
	}
	if p.log.StartOffset() != 0 {
		t.Fatalf("local retention moved the log start to %d", p.log.StartOffset())
	}
	body := scrape(t, b)
	types := map[string]int{}
	for _, l := range strings.Split(body, "\n") {
		if f := strings.Fields(l); len(f) == 4 && f[0] == "#" && f[1] == "TYPE" {
			if types[f[2]]++; types[f[2]] > 1 {
				t.Fatalf("metric family %s declared twice on /metrics", f[2])
			}
		}
	}
	if v, _ := metricValue(body, "sediment_tier_uploaded_segments_total"); v == "" || v == "0" {
		t.Fatalf("sediment_tier_uploaded_segments_total = %q", v)
	}
	if v, ok := metricValue(body, `sediment_tier_upload_lag_segments{topic="tu",partition="0"}`); !ok || v != "0" {
		t.Fatalf("upload lag = %q (present %v)", v, ok)
	}
	consumeAllValues(t, []string{b.Addr()}, "tu", n, size)
	// The history came from the bucket through the chunk cache.
	if v, _ := metricValue(scrape(t, b), "sediment_tier_remote_cache_misses_total"); v == "" || v == "0" {
		t.Fatalf("sediment_tier_remote_cache_misses_total = %q after reading from the bucket", v)
	}
}

// downStore fails every call while down is set (an unreachable object store).
type downStore struct {
	tiering.Store
	down  atomic.Bool
	calls atomic.Int64 // calls refused while down
}

var errStoreDown = errors.New("test: object store unavailable")

func (f *downStore) check() error {
	if f.down.Load() {
		f.calls.Add(1)
		return errStoreDown
	}
	return nil
}

func (f *downStore) Put(ctx context.Context, key string, body io.ReaderAt, size int64) error {
	if err := f.check(); err != nil {
		return err
	}
	return f.Store.Put(ctx, key, body, size)
}

func (f *downStore) Get(ctx context.Context, key string, off, n int64) (io.ReadCloser, error) {
	if err := f.check(); err != nil {
		return nil, err
	}
	return f.Store.Get(ctx, key, off, n)
}

func (f *downStore) Head(ctx context.Context, key string) (tiering.ObjectInfo, error) {
	if err := f.check(); err != nil {
		return tiering.ObjectInfo{}, err
	}
	return f.Store.Head(ctx, key)
}

func (f *downStore) List(ctx context.Context, prefix string) ([]tiering.ObjectInfo, error) {
	if err := f.check(); err != nil {
		return nil, err
	}
	return f.Store.List(ctx, prefix)
}

func (f *downStore) Delete(ctx context.Context, key string) error {
	if err := f.check(); err != nil {
		return err
	}
	return f.Store.Delete(ctx, key)
}

// The object store is unreachable while producing: no segment that is not yet uploaded is deleted
// locally, the manifest does not move, failures and the lag show on /metrics; once the store is
// back the backlog drains, local retention catches up and the manifest is contiguous.
func TestTierStoreOutage(t *testing.T) {
	ds := &downStore{}
	b := newTestBroker(t, tieredConfig, func(c *Config) {
		c.tierStoreWrap = func(s tiering.Store) tiering.Store { ds.Store = s; return ds }
	})
	createTopic(t, b, "out", 1, tierTopicConfigs())
	cl := newTestClient(t, b, kgo.DefaultProduceTopic("out"), kgo.ProducerBatchCompression(kgo.NoCompression()))
	const size = 500
	produceValues(t, cl, 0, 40, size)
	p := tierPartition(t, b, "out", 0)
	waitFor(t, "first uploads", func() bool { return uploadedEnd(b.meta.State().RemoteSegments(p.topicID, 0)) > 0 })

	ds.down.Store(true)
	time.Sleep(100 * time.Millisecond) // a pass that was already past its store calls commits now
	upAtOutage := uploadedEnd(b.meta.State().RemoteSegments(p.topicID, 0))
	stop := make(chan struct{})
	violation := make(chan error, 1)
	go func() { // the invariant, checked continuously through the outage and the recovery
		for {
			select {
			case <-stop:
				close(violation)
				return
			case <-time.After(2 * time.Millisecond):
			}
			if err := localInvariant(p); err != nil {
				violation <- err
				return
			}
		}
	}()
	produceValues(t, cl, 40, 80, size)
	outage := 2 * time.Second
	time.Sleep(outage)
	if got := uploadedEnd(b.meta.State().RemoteSegments(p.topicID, 0)); got != upAtOutage {
		t.Fatalf("manifest moved during the outage: %d -> %d", upAtOutage, got)
	}
	if p.log.LocalStartOffset() > upAtOutage {
		t.Fatalf("local start %d above the uploaded end %d during the outage", p.log.LocalStartOffset(), upAtOutage)
	}
	body := scrape(t, b)
	if v, _ := metricValue(body, "sediment_tier_upload_failures_total"); v == "" || v == "0" {
		t.Fatalf("upload failures during the outage: %q", v)
	}
	if v, _ := metricValue(body, `sediment_tier_upload_lag_segments{topic="out",partition="0"}`); v == "" || v == "0" {
		t.Fatalf("upload lag during the outage: %q", v)
	}
	if ds.calls.Load() < 3 {
		t.Fatalf("only %d store calls refused in %v: the archiver is not retrying", ds.calls.Load(), outage)
	}

	ds.down.Store(false)
	waitFor(t, "the backlog to drain and local retention to catch up", func() bool {
		return uploadedAndTrimmed(p)
	})
	close(stop)
	if err := <-violation; err != nil {
		t.Fatal(err)
	}
	segs := checkManifest(t, b.meta.State(), p.topicID, 0, storeHead(ds))
	if segs[0].BaseOffset != 0 || uploadedEnd(segs) < 100 {
		t.Fatalf("manifest covers %d..%d", segs[0].BaseOffset, uploadedEnd(segs))
	}
	consumeAllValues(t, []string{b.Addr()}, "out", 120, size) // every acknowledged record
}

// remote.log.copy.disable pauses uploads (dynamically, through IncrementalAlterConfigs on the
// topic): nothing is uploaded and local retention keeps every segment (Kafka has local retention
// follow the whole log's while paused: local.retention.ms -2); set back to false with the short
// local retention, the uploads resume where they stopped.
func TestTierPauseUploads(t *testing.T) {
	b := newTestBroker(t, tieredConfig)
	createTopic(t, b, "pz", 1, pausedTierTopicConfigs())
	cl := newTestClient(t, b, kgo.DefaultProduceTopic("pz"), kgo.ProducerBatchCompression(kgo.NoCompression()))
	produceValues(t, cl, 0, 60, 500)
	p := tierPartition(t, b, "pz", 0)
	time.Sleep(500 * time.Millisecond) // several retention checks and task passes
	if segs := b.meta.State().RemoteSegments(p.topicID, 0); len(segs) != 0 {
		t.Fatalf("paused topic uploaded %d segments", len(segs))
	}
	if n := len(p.log.Segments()); n < 10 || p.log.LocalStartOffset() != 0 {
		t.Fatalf("paused topic: %d local segments from %d; local retention deleted segments not uploaded", n, p.log.LocalStartOffset())
	}
	adm := newTestAdmin(t, b)
	rs, err := adm.AlterTopicConfigs(testCtx(t), resumeUploads, "pz")
	if err != nil || rs[0].Err != nil {
		t.Fatalf("resume uploads: %v %v", err, rs)
	}
	waitFor(t, "uploads to resume and local retention to follow", func() bool {
		return uploadedAndTrimmed(p)
	})
	checkManifest(t, b.meta.State(), p.topicID, 0, storeHead(b.tier.store))
}

// Deleting a topic deletes its objects: nothing is left in the bucket and meta forgets the topic.
func TestTierTopicDeletionEmptiesBucket(t *testing.T) {
	b := newTestBroker(t, tieredConfig, tierTuned(func(t *tierTuning) { t.staleGrace = time.Minute }))
	createTopic(t, b, "del", 2, tierTopicConfigs())
	cl := newTestClient(t, b, kgo.DefaultProduceTopic("del"), kgo.ProducerBatchCompression(kgo.NoCompression()),
		kgo.RecordPartitioner(kgo.RoundRobinPartitioner()))
	produceValues(t, cl, 0, 80, 500)
	id := tierPartition(t, b, "del", 0).topicID
	waitFor(t, "uploads of both partitions", func() bool {
		st := b.meta.State()
		return len(st.RemoteSegments(id, 0)) > 3 && len(st.RemoteSegments(id, 1)) > 3
	})
	list := func() []tiering.ObjectInfo {
		objs, err := b.tier.store.List(testCtx(t), tiering.TopicPrefix(id))
		if err != nil {
			t.Fatal(err)
		}
		return objs
	}
	if len(list()) == 0 {
		t.Fatal("no objects before the deletion")
	}
	if _, err := newTestAdmin(t, b).DeleteTopics(testCtx(t), "del"); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the topic's objects and manifest to go", func() bool {
		st := b.meta.State()
		return len(list()) == 0 && len(st.DeletedTopicsWithRemoteData()) == 0 && len(st.RemotePartitions(id)) == 0
	})
	// An object left under the deleted topic's prefix (an upload in flight at the deletion) is
	// swept once older than the grace period.
	key := tiering.SegmentKey{Topic: id, Partition: 0, BaseOffset: 1000, LeaderEpoch: 1, UploadID: tiering.NewUploadID()}.String()
	if err := b.tier.store.Put(testCtx(t), key, strings.NewReader("x"), 1); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the late object of the deleted topic to be swept", func() bool { return len(list()) == 0 })

	// A broker killed mid-upload leaves the file store's temp file, no object: the controller's
	// sweep removes it once older than staleGrace (a minute here), so no file at all stays under
	// segments/ (directories do: the file store never removes them).
	root := filepath.Join(b.cfg.DataDir, "objects")
	var partDir string
	filepath.WalkDir(filepath.Join(root, "segments"), func(p string, d os.DirEntry, err error) error {
		if err == nil && d.IsDir() {
			partDir = p // the deepest: WalkDir visits parents first
		}
		return nil
	})
	crashed := filepath.Join(partDir, ".tmp-killed-mid-upload")
	if err := os.WriteFile(crashed, []byte("half a segment"), 0o644); err != nil {
		t.Fatal(err)
	}
	young := filepath.Join(partDir, ".tmp-still-running")
	if err := os.WriteFile(young, []byte("a live upload"), 0o644); err != nil {
		t.Fatal(err)
	}
	old := time.Now().Add(-time.Hour)
	if err := os.Chtimes(crashed, old, old); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the unfinished upload's temp file to be removed", func() bool {
		_, err := os.Stat(crashed)
		return errors.Is(err, os.ErrNotExist)
	})
	if _, err := os.Stat(young); err != nil {
		t.Fatalf("a temp file younger than staleGrace was removed: %v", err)
	}
	if err := os.Remove(young); err != nil {
		t.Fatal(err)
	}
	filepath.WalkDir(filepath.Join(root, "segments"), func(p string, d os.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			t.Errorf("left in the object store after the topic's deletion: %s", p)
		}
		return nil
	})
	if v, _ := metricValue(scrape(t, b), "sediment_tier_stale_uploads_aborted_total"); v != "1" {
		t.Fatalf("sediment_tier_stale_uploads_aborted_total = %q, want 1", v)
	}
}

// Whole-log retention on a tiered topic: DeleteRecords raises the log start and the remote
// segments wholly below it are deleted (manifest entries and objects); retention.bytes then
// deletes the oldest remote segments while the log (remote + local) stays above it; retention.ms
// expires segments whose records are future-dated, by broker time (the objects' upload time).
func TestTierRemoteRetentionAndDeleteRecords(t *testing.T) {
	b := newTestBroker(t, tieredConfig)
	createTopic(t, b, "rr", 1, tierTopicConfigs())
	cl := newTestClient(t, b, kgo.DefaultProduceTopic("rr"), kgo.ProducerBatchCompression(kgo.NoCompression()))
	produceValues(t, cl, 0, 120, 500)
	p := tierPartition(t, b, "rr", 0)
	waitFor(t, "uploads", func() bool { return uploadedEnd(b.meta.State().RemoteSegments(p.topicID, 0)) > 90 })
	before := b.meta.State().RemoteSegments(p.topicID, 0)
	head := storeHead(b.tier.store)
	gone := func(s meta.RemoteSegment) bool { return errors.Is(head(s.ObjectKey), tiering.ErrNotFound) }

	adm := newTestAdmin(t, b)
	const cut = 50
	res, err := adm.DeleteRecords(testCtx(t), kadm.Offsets{"rr": {0: kadm.Offset{Topic: "rr", Partition: 0, At: cut}}})
	if err != nil {
		t.Fatal(err)
	}
	if r, _ := res.Lookup("rr", 0); r.Err != nil || r.LowWatermark != cut {
		t.Fatalf("DeleteRecords: %+v", r)
	}
	waitFor(t, "remote segments below the new log start to go", func() bool {
		segs := b.meta.State().RemoteSegments(p.topicID, 0)
		return len(segs) > 0 && segs[0].LastOffset >= cut
	})
	segs := checkManifest(t, b.meta.State(), p.topicID, 0, head)
	if segs[0].BaseOffset > cut {
		t.Fatalf("a remote segment holding offset %d was deleted: manifest starts at %d", cut, segs[0].BaseOffset)
	}
	// Manifest entries go first, then the objects.
	waitFor(t, "the objects below the log start to be deleted", func() bool {
		for _, s := range before {
			if s.LastOffset < cut && !gone(s) {
				return false
			}
		}
		return true
	})
	if p.log.StartOffset() != cut {
		t.Fatalf("log start %d, want %d", p.log.StartOffset(), cut)
	}

	// retention.bytes over the whole log.
	var total int64
	for _, s := range segs {
		total += s.Size
	}
	limit := total / 2
	rs, err := adm.AlterTopicConfigs(testCtx(t), []kadm.AlterConfig{{Name: "retention.bytes", Value: ptr(fmt.Sprint(limit))}}, "rr")
	if err != nil || rs[0].Err != nil {
		t.Fatalf("retention.bytes: %v %v", err, rs)
	}
	waitFor(t, "retention.bytes to delete remote segments", func() bool {
		return b.meta.State().RemoteSegments(p.topicID, 0)[0].BaseOffset > segs[0].BaseOffset
	})
	after := checkManifest(t, b.meta.State(), p.topicID, 0, head)
	var left int64
	for _, s := range after {
		left += s.Size
	}
	if left < limit/2 || p.log.StartOffset() != after[0].BaseOffset {
		t.Fatalf("after retention.bytes=%d: %d remote bytes from %d, log start %d", limit, left, after[0].BaseOffset, p.log.StartOffset())
	}
	waitFor(t, "the expired objects to be deleted", func() bool {
		for _, s := range segs {
			if s.BaseOffset < after[0].BaseOffset && !gone(s) {
				return false
			}
		}
		return true
	})
}

// Records stamped a year ahead cannot keep a tiered segment forever: retention.ms goes by broker
// time for them (upload time remotely, roll time locally).
func TestTierRetentionFutureTimestamps(t *testing.T) {
	b := newTestBroker(t, tieredConfig)
	createTopic(t, b, "fut", 1, tierTopicConfigs("message.timestamp.after.max.ms", "9223372036854775807"))
	cl := newTestClient(t, b, kgo.DefaultProduceTopic("fut"), kgo.ProducerBatchCompression(kgo.NoCompression()))
	future := time.Now().AddDate(1, 0, 0)
	for i := 0; i < 40; i++ {
		if err := cl.ProduceSync(testCtx(t), &kgo.Record{Value: make([]byte, 500), Timestamp: future}).FirstErr(); err != nil {
			t.Fatal(err)
		}
	}
	p := tierPartition(t, b, "fut", 0)
	waitFor(t, "uploads", func() bool { return len(b.meta.State().RemoteSegments(p.topicID, 0)) > 5 })
	rs, err := newTestAdmin(t, b).AlterTopicConfigs(testCtx(t), []kadm.AlterConfig{{Name: "retention.ms", Value: ptr("300")}}, "fut")
	if err != nil || rs[0].Err != nil {
		t.Fatalf("retention.ms: %v %v", err, rs)
	}
	waitFor(t, "future-dated segments to expire by broker time", func() bool {
		return p.log.StartOffset() > 30 && len(b.meta.State().RemoteSegments(p.topicID, 0)) <= 1
	})
}

// A broker restarted with an emptied data directory (its Raft metadata intact) starts each
// partition whose manifest has history at the manifest's end, with the log start at the
// manifest's start: the history stays in the log (served from the bucket), new records follow it.
func TestTierEmptyDataDirRestart(t *testing.T) {
	dir := t.TempDir()
	cfg := testBrokerConfig(t, dir)
	tieredConfig(&cfg)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	b, err := Start(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	createTopic(t, b, "dd", 1, tierTopicConfigs())
	cl := newTestClient(t, b, kgo.DefaultProduceTopic("dd"), kgo.ProducerBatchCompression(kgo.NoCompression()))
	produceValues(t, cl, 0, 60, 500)
	p := tierPartition(t, b, "dd", 0)
	waitFor(t, "uploads", func() bool { return uploadedEnd(b.meta.State().RemoteSegments(p.topicID, 0)) > 40 })
	cl.Close()
	if err := b.Close(); err != nil {
		t.Fatal(err)
	}
	if err := os.RemoveAll(filepath.Join(dir, "logs")); err != nil {
		t.Fatal(err)
	}

	b, err = Start(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	p = tierPartition(t, b, "dd", 0)
	segs := b.meta.State().RemoteSegments(p.topicID, 0)
	end := uploadedEnd(segs)
	if p.log.StartOffset() != 0 || p.log.LocalStartOffset() != end || p.log.EndOffset() != end || p.HighWatermark() != end {
		t.Fatalf("restored log: start %d, local start %d, end %d, HW %d; manifest %d..%d",
			p.log.StartOffset(), p.log.LocalStartOffset(), p.log.EndOffset(), p.HighWatermark(), segs[0].BaseOffset, end)
	}
	cl = newTestClient(t, b, kgo.DefaultProduceTopic("dd"), kgo.ProducerBatchCompression(kgo.NoCompression()))
	r := &kgo.Record{Value: []byte("after")}
	if err := cl.ProduceSync(testCtx(t), r).FirstErr(); err != nil {
		t.Fatal(err)
	}
	if r.Offset != end {
		t.Fatalf("first record after the restore at offset %d, want %d", r.Offset, end)
	}
	consumeAllValues(t, []string{b.Addr()}, "dd", int(end), 500) // the history, from the bucket
}

// Leadership moves while segments are uploading (three brokers sharing one bucket, the leader
// stopped mid-stream): the new leader uploads the rest, the manifest stays contiguous, every entry
// points at an existing object, and objects of abandoned attempts are collected.
func TestTierLeadershipMoves(t *testing.T) {
	if testing.Short() {
		t.Skip("starts three brokers")
	}
	bucket := "file://" + t.TempDir()
	brokers, _ := startTestCluster(t, 3, func(cfg *Config) {
		cfg.ReplicaLagTimeMaxMs = 1500
		cfg.MetaConfig = fastClusterMeta(2*time.Second, 200*time.Millisecond)
		cfg.ObjectStore = bucket
		tieredConfig(cfg)
	})
	seeds := brokerAddrs(brokers)
	cfgs := tierTopicConfigs("min.insync.replicas", "2")
	if resp, err := kadmFor(t, seeds).CreateTopic(testCtx(t), 1, 3, cfgs, "lm"); err != nil || resp.Err != nil {
		t.Fatalf("create: %v %v", err, resp.Err)
	}
	cl, err := kgo.NewClient(kgo.SeedBrokers(seeds...), kgo.DefaultProduceTopic("lm"), kgo.ProducerBatchCompression(kgo.NoCompression()),
		kgo.ProducerLinger(0), kgo.RecordDeliveryTimeout(30*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	var acked atomic.Int64
	stop := make(chan struct{})
	done := make(chan struct{})
	go func() {
		defer close(done)
		for i := 0; ; i++ {
			select {
			case <-stop:
				return
			default:
			}
			v := make([]byte, 500)
			copy(v, fmt.Sprintf("rec-%06d", i))
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			if err := cl.ProduceSync(ctx, &kgo.Record{Value: v}).FirstErr(); err == nil {
				acked.Add(1)
			}
			cancel()
		}
	}()
	defer func() {
		select {
		case <-stop:
		default:
			close(stop)
		}
		<-done
	}()
	var mt *meta.Topic
	waitFor(t, "the topic on broker 1", func() bool {
		var ok bool
		mt, ok = brokers[0].meta.State().Topic("lm")
		return ok && mt.Partitions[0].Leader >= 0
	})
	id := mt.ID
	manifestEnd := func(b *Broker) int64 { return uploadedEnd(b.meta.State().RemoteSegments(id, 0)) }
	waitFor(t, "uploads by the first leader", func() bool { return manifestEnd(brokers[0]) > 40 })

	oldLeader := mt.Partitions[0].Leader
	victim, live := splitOff(brokers, oldLeader)
	victim.Close() // stops mid-stream: its archiver may be between a PUT and the commit
	waitFor(t, "a new leader", func() bool {
		mt, _ := live[0].meta.State().Topic("lm")
		l := mt.Partitions[0].Leader
		return l >= 0 && l != oldLeader
	})
	endAtMove := manifestEnd(live[0])
	ackedAtMove := acked.Load()
	waitFor(t, "uploads by the new leader", func() bool {
		return acked.Load() > ackedAtMove+60 && manifestEnd(live[0]) > endAtMove+30
	})
	close(stop)
	<-done

	store, err := tiering.OpenURL(testCtx(t), bucket)
	if err != nil {
		t.Fatal(err)
	}
	checkManifestAcrossLeaders(t, live[0], id, store)
	// Every acknowledged record is readable from offset 0, across both leaders' objects.
	consumeAllValues(t, []string{live[0].Addr(), live[1].Addr()}, "lm", int(acked.Load()), -1)
	waitOrphansCollected(t, live[0], id, store)
}

// checkManifestAcrossLeaders checks partition 0's manifest as b's metadata has it after leadership
// moved during uploads: contiguous, every entry's object in store (checkManifest), starting at
// offset 0, and holding entries of at least two leader epochs. Returns the entries and epochs.
func checkManifestAcrossLeaders(t *testing.T, b *Broker, id meta.TopicID, store tiering.Store) ([]meta.RemoteSegment, map[int32]bool) {
	t.Helper()
	segs := checkManifest(t, b.meta.State(), id, 0, storeHead(store))
	epochs := map[int32]bool{}
	for _, s := range segs {
		epochs[s.LeaderEpoch] = true
	}
	if segs[0].BaseOffset != 0 || len(epochs) < 2 {
		t.Fatalf("manifest from %d under leader epochs %v: want offset 0 and both leaders' uploads", segs[0].BaseOffset, epochs)
	}
	return segs, epochs
}

// waitOrphansCollected waits until every object under partition 0's prefix is an entry of the
// manifest in b's metadata: the objects of abandoned or refused attempts are collected.
func waitOrphansCollected(t *testing.T, b *Broker, id meta.TopicID, store tiering.Store) {
	t.Helper()
	waitFor(t, "orphans collected", func() bool {
		objs, err := store.List(testCtx(t), tiering.PartitionPrefix(id, 0))
		if err != nil {
			t.Fatal(err)
		}
		keep := map[string]bool{}
		for _, s := range b.meta.State().RemoteSegments(id, 0) {
			keep[s.ObjectKey] = true
		}
		for _, o := range objs {
			if !keep[o.Key] {
				return false
			}
		}
		return true
	})
}

// remote.storage.enable defaults to the broker's remote.log.storage.system.enable, and
// DescribeConfigs says so (value, DEFAULT_CONFIG source, and the synonym's default): a topic
// created without it on a tiering broker gets an upload task, on another broker it does not.
func TestTierRemoteStorageDefault(t *testing.T) {
	for _, system := range []bool{true, false} {
		t.Run(fmt.Sprint(system), func(t *testing.T) {
			b := newTestBroker(t, tieredConfig, func(c *Config) { c.RemoteLogStorageEnable = system })
			createTopic(t, b, "def", 1, map[string]*string{"segment.bytes": ptr("2048")})
			rcs, err := newTestAdmin(t, b).DescribeTopicConfigs(testCtx(t), "def")
			if err != nil {
				t.Fatal(err)
			}
			rc, err := rcs.On("def", nil)
			if err != nil {
				t.Fatal(err)
			}
			var found bool
			for _, c := range rc.Configs {
				if c.Key != "remote.storage.enable" {
					continue
				}
				found = true
				if deref(c.Value) != fmt.Sprint(system) || c.Source != kmsg.ConfigSourceDefaultConfig {
					t.Fatalf("remote.storage.enable = %q from %v, want %v from DEFAULT_CONFIG", deref(c.Value), c.Source, system)
				}
				if n := len(c.Synonyms); n == 0 || deref(c.Synonyms[n-1].Value) != fmt.Sprint(system) {
					t.Fatalf("remote.storage.enable synonyms %+v", c.Synonyms)
				}
			}
			if !found {
				t.Fatal("remote.storage.enable not described")
			}
			p := tierPartition(t, b, "def", 0)
			if system {
				waitFor(t, "the upload task", func() bool { return p.tierCur.Load() != nil })
			} else {
				time.Sleep(200 * time.Millisecond) // leadership applied, no task started
				if p.tierCur.Load() != nil {
					t.Fatal("an upload task runs for a topic of a broker without remote storage")
				}
			}
		})
	}
}

// An idle partition's active segment rolled by segment.ms is uploaded at once (the roll wakes the
// upload task), not at the next remote.log.manager.task.interval.ms (30 s, longer than waitFor).
func TestTierUploadsSegmentRolledBySegmentMs(t *testing.T) {
	b := newTestBroker(t, tieredConfig, func(c *Config) {
		tierTuned(func(tt *tierTuning) { tt.retention, tt.orphanEvery = time.Minute, time.Minute })(c) // no other reason to pass
	})
	createTopic(t, b, "idle", 1, tierTopicConfigs("segment.bytes", "1048576", "segment.ms", "300"))
	cl := newTestClient(t, b, kgo.DefaultProduceTopic("idle"), kgo.ProducerBatchCompression(kgo.NoCompression()))
	produceValues(t, cl, 0, 5, 100)
	p := tierPartition(t, b, "idle", 0)
	waitFor(t, "the idle segment to roll and upload", func() bool {
		return uploadedEnd(b.meta.State().RemoteSegments(p.topicID, 0)) == 5
	})
	consumeAllValues(t, []string{b.Addr()}, "idle", 5, 100)
}

// TestTierSweepRunsWithoutPartitions: the controller's bucket duties do not wait for a partition
// of its own. A broker holding no replica at all still sweeps an object of a topic its metadata
// does not know (an upload that raced its topic's deletion, left behind across a restart).
func TestTierSweepRunsWithoutPartitions(t *testing.T) {
	b := newTestBroker(t, tieredConfig)
	key := tiering.SegmentKey{Topic: meta.TopicID{1, 2, 3}, Partition: 0, BaseOffset: 0, LeaderEpoch: 0, UploadID: tiering.NewUploadID()}.String()
	if err := b.tier.store.Put(testCtx(t), key, strings.NewReader("left behind"), 11); err != nil {
		t.Fatal(err)
	}
	if n := len(b.replicas.Partitions()); n != 0 {
		t.Fatalf("%d partitions on a broker with no topics", n)
	}
	waitFor(t, "the unknown topic's object to be swept", func() bool {
		_, err := b.tier.store.Head(testCtx(t), key)
		return errors.Is(err, tiering.ErrNotFound)
	})
}
