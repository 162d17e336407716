package broker

import (
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/sediment-io/sediment/tiering"
)

// TestTierReadQuota: with the KIP-956 remote fetch quota set, a replay from the bucket still gets
// every record exactly as produced (reads are cut to the quota's grants, whole batches only, and
// the first batch of a fetch comes whole), and the quota holds: beyond its one-second burst the
// replay cannot go faster than the rate (a lower bound on the time; a busy machine only makes it
// longer). With the chunk cache at its default, a quota below a chunk a second reads exactly the
// granted ranges past the cache (no whole-chunk bursts), with the same records.
func TestTierReadQuota(t *testing.T) {
	b := newTestBroker(t)
	base := time.Now().Add(-time.Hour).Truncate(time.Millisecond)
	_, want, p := tieredTopic(t, b, "tq", 3000, base, 11)
	var total int64
	for _, s := range b.meta.State().RemoteSegments(p.topicID, p.index) {
		total += s.Size
	}
	rate := total / 2 // the burst covers half; the other half takes about a second
	if rate >= tiering.DefaultCacheChunkBytes {
		t.Fatalf("objects of %d bytes: the quota would not be below a chunk a second", total)
	}
	for _, cache := range []int64{0, tiering.DefaultCacheBytes} {
		b.tier.remote = tiering.NewRemoteLogWith(b.tier.store, tiering.RemoteLogConfig{FetchBytesPerSecond: rate, CacheBytes: cache})
		start := time.Now()
		consumeAll(t, b, "tq", want, 60*time.Second, kgo.FetchMaxPartitionBytes(1<<20))
		took := time.Since(start)
		if floor := time.Duration(float64(total-rate) / float64(rate) * float64(time.Second) / 2); took < floor {
			t.Fatalf("cache %d: replayed %d bytes at a quota of %d B/s in %v: faster than the quota allows (≥ %v)", cache, total, rate, took, floor)
		}
		if st := b.tier.remote.CacheStats(); cache > 0 && (st.Direct == 0 || st.Misses != 0 || st.Bytes != 0) {
			t.Fatalf("cache %d under a quota below a chunk a second: stats %+v, want direct reads only", cache, st)
		}
		t.Logf("cache %d: replayed %d bytes in %v at a quota of %d B/s (%d reads answered empty)", cache, total, took, rate, b.tier.remote.Quota().Throttled())
	}
}

// TestTierReadQuotaMinOneBatch: under a quota, a read with no byte budget left but the right to one
// whole batch (the first partition of a fetch whose response budget is spent) still returns it.
func TestTierReadQuotaMinOneBatch(t *testing.T) {
	b := newTestBroker(t)
	_, _, p := tieredTopic(t, b, "tq1", 200, time.Now().Add(-time.Hour).Truncate(time.Millisecond), 12)
	b.tier.remote = tiering.NewRemoteLogWith(b.tier.store, tiering.RemoteLogConfig{FetchBytesPerSecond: 1 << 20})
	r := p.read(0, 0, true)
	if r.err != 0 || len(r.data) == 0 {
		t.Fatalf("read(0, maxBytes 0, minOneBatch) under a quota: err %d, %d bytes; want one batch", r.err, len(r.data))
	}
	if r := p.read(0, 0, false); len(r.data) != 0 {
		t.Fatalf("read(0, maxBytes 0) without minOneBatch returned %d bytes", len(r.data))
	}
}

// TestTierReadQuotaLongPoll: a long-polling Fetch that the remote fetch quota first answers with no
// grant gets its records as soon as the quota has one (about 1.6 s here), not at the end of its
// MaxWait (20 s). Only appends wake a long poll, and history in the bucket gets none: before, a
// replay under the quota (or the adaptive throttle) got one batch per MaxWait, a quarter of a
// 1 MB/s quota with 1 MiB batches (BenchmarkTierReplayQuota's kin, session 10).
func TestTierReadQuotaLongPoll(t *testing.T) {
	b := newTestBroker(t)
	cl, _, p := tieredTopic(t, b, "tql", 200, time.Now().Add(-time.Hour).Truncate(time.Millisecond), 13)
	const rate = 100 << 10
	b.tier.remote = tiering.NewRemoteLogWith(b.tier.store, tiering.RemoteLogConfig{FetchBytesPerSecond: rate})
	q := b.tier.remote.Quota()
	// Debt, as a read leaves it that took the whole burst and returned a first batch 100 KiB over
	// its grant: the next grant is 1.6 s away, beyond remoteQuotaMaxWait.
	g, _ := q.Take(rate)
	q.Settle(g, g+rate)

	req := kmsg.NewPtrFetchRequest()
	req.Version = 12
	req.ReplicaID = -1
	req.MaxWaitMillis = 20000
	req.MinBytes = 1
	req.MaxBytes = 1 << 20
	req.SessionEpoch = -1
	rt := kmsg.NewFetchRequestTopic()
	rt.Topic, rt.TopicID = "tql", p.topicID // kgo sends the highest version both support: v13+ names the topic by ID
	rp := kmsg.NewFetchRequestTopicPartition()
	rp.Partition, rp.FetchOffset, rp.PartitionMaxBytes = 0, 0, 1<<20
	rt.Partitions = append(rt.Partitions, rp)
	req.Topics = append(req.Topics, rt)
	start := time.Now()
	resp, err := req.RequestWith(testCtx(t), cl)
	took := time.Since(start)
	if err != nil {
		t.Fatal(err)
	}
	if len(resp.Topics) != 1 || len(resp.Topics[0].Partitions) != 1 {
		t.Fatalf("response %+v", resp)
	}
	if rp := resp.Topics[0].Partitions[0]; rp.ErrorCode != 0 || len(rp.RecordBatches) == 0 {
		t.Fatalf("partition: error %d, %d record bytes; want records", rp.ErrorCode, len(rp.RecordBatches))
	}
	if q.Throttled() == 0 {
		t.Fatal("the quota granted the first read: the long poll was not exercised")
	}
	if took > 10*time.Second {
		t.Fatalf("records after %v: the fetch waited out its MaxWait (20 s) instead of the quota's grant (~1.6 s)", took)
	}
	t.Logf("records after %v (quota answered %d reads without a grant)", took, q.Throttled())
}
