package broker

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/sediment-io/sediment/meta"
	"github.com/sediment-io/sediment/tiering"
)

// Tests of the upload side of tiering through a real broker (issue 7): archiver lifecycle, local
// retention gated on upload, remote retention, topic deletion, store outages, leadership moves.

// tieredConfig turns tiering on with loop timings short enough for tests.
func tieredConfig(c *Config) {
	c.RemoteLogStorageEnable = true
	c.LogRetentionCheckMs = 50
	c.tierTuning = func(t *tierTuning) {
		t.minPassGap = 10 * time.Millisecond
		t.retryBase = 20 * time.Millisecond
		t.retryMax = 500 * time.Millisecond
		t.retention = 100 * time.Millisecond
		t.deleteEvery = 50 * time.Millisecond
		t.orphanGrace = 100 * time.Millisecond
		t.sweepEvery = 200 * time.Millisecond
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

// consumeAll reads [0, n) from topic partition 0 and checks every record's value.
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
			want := make([]byte, size)
			copy(want, fmt.Sprintf("rec-%06d", next))
			if string(r.Value) != string(want) {
				t.Fatalf("offset %d: value %.12q, want %.12q", r.Offset, r.Value, want)
			}
			next++
		})
	}
}

// Closed segments go to the bucket in order, the manifest stays contiguous, local retention
// deletes only uploaded segments (the log start does not move), and the metrics count the uploads.
func TestTierUploadAndLocalRetention(t *testing.T) {
	b := newTestBroker(t, tieredConfig)
	createTopic(t, b, "tu", 1, tierTopicConfigs())
	cl := newTestClient(t, b, kgo.DefaultProduceTopic("tu"), kgo.ProducerBatchCompression(kgo.NoCompression()))
	const n, size = 120, 500
	produceValues(t, cl, 0, n, size)
	p := tierPartition(t, b, "tu", 0)
	waitFor(t, "every closed segment uploaded and the local copies gone", func() bool {
		if err := localInvariant(p); err != nil {
			t.Fatal(err)
		}
		segs := p.log.Segments()
		up := uploadedEnd(b.meta.State().RemoteSegments(p.topicID, 0))
		return len(segs) <= 2 && up >= segs[0].BaseOffset && p.log.LocalStartOffset() > 0
	})
	segs := checkManifest(t, b.meta.State(), p.topicID, 0, storeHead(b.tier.store))
	if len(segs) < 10 || segs[0].BaseOffset != 0 {
		t.Fatalf("manifest: %d entries from %d", len(segs), segs[0].BaseOffset)
	}
	if p.log.StartOffset() != 0 {
		t.Fatalf("local retention moved the log start to %d", p.log.StartOffset())
	}
	body := scrape(t, b)
	if v, _ := metricValue(body, "sediment_tier_uploaded_segments_total"); v == "" || v == "0" {
		t.Fatalf("sediment_tier_uploaded_segments_total = %q", v)
	}
	if v, ok := metricValue(body, `sediment_tier_upload_lag_segments{topic="tu",partition="0"}`); !ok || v != "0" {
		t.Fatalf("upload lag = %q (present %v)", v, ok)
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
