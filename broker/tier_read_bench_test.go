package broker

import (
	"context"
	"fmt"
	"math/rand/v2"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/sediment-io/sediment/tiering"
)

// BenchmarkTierReplay measures a consumer replaying a partition from offset 0 through the broker
// when every segment is only in the bucket, against the same bytes on local disk, alternating the
// two each iteration in one broker (side by side: the machine's load hits both alike). Reported:
// local-MB/s, bucket-MB/s and bucket/local (issue 7's target: ≥ 0.8), and object-store GETs per
// replay. Sub-benchmarks: the file:// store and a real MinIO (skipped under SEDIMENT_SKIP_MINIO=1),
// each with the remote reader's chunk cache off, cold (emptied before every bucket replay: what its
// parallel prefetch buys a first replay) and warm (kept: a repeated replay); conc=2 runs two
// consumers of the bucket topic at once (local: two of the local topic), aggregate rate reported.
//
//	go test ./broker/ -run '^$' -bench TierReplay -benchtime 5x
func BenchmarkTierReplay(b *testing.B) {
	stores := []struct {
		name  string
		start func(b *testing.B) *Broker
	}{
		{"file", func(b *testing.B) *Broker { return newTestBroker(b) }},
		{"minio", func(b *testing.B) *Broker { br, _ := newMinIOBroker(b, "bench"); return br }},
	}
	for _, st := range stores {
		b.Run("store="+st.name, func(b *testing.B) {
			br := st.start(b)
			size := setupTierReplay(b, br)
			cs := &faultyStore{Store: br.tier.store} // healthy: counts GETs
			for _, conc := range []int{1, 2} {
				for _, cache := range []string{"off", "cold", "warm"} {
					b.Run(fmt.Sprintf("conc=%d/cache=%s", conc, cache), func(b *testing.B) {
						newRL := func() {
							cfg := tiering.RemoteLogConfig{MaxFooters: 1024}
							if cache != "off" {
								cfg.CacheBytes = tiering.DefaultCacheBytes
							}
							br.tier.remote = tiering.NewRemoteLogWith(cs, cfg)
						}
						newRL()
						var fresh func()
						if cache == "cold" {
							fresh = newRL // every replay starts with an empty cache (footers refetched too)
						}
						benchTierReplay(b, br, cs, size, conc, fresh)
					})
				}
			}
		})
	}
}

const (
	benchReplayBytes   = 32 << 20
	benchReplayValue   = 1000
	benchReplaySegment = 4 << 20
)

// setupTierReplay produces benchReplayBytes into topics "local" and "bucket" (same records) and
// moves every segment of "bucket" to the object store; returns the bucket topic's stored bytes.
func setupTierReplay(b *testing.B, br *Broker) int64 {
	cl := newTestClient(b, br, kgo.ProducerLinger(5*time.Millisecond), kgo.ProducerBatchMaxBytes(1<<20),
		kgo.ProducerBatchCompression(kgo.NoCompression()), kgo.RecordPartitioner(kgo.ManualPartitioner()))
	adm := kadm.NewClient(cl)
	rng := rand.New(rand.NewPCG(1, 2))
	val := make([]byte, benchReplayValue)
	for i := range val {
		val[i] = byte(rng.Uint32())
	}
	for _, topic := range []string{"local", "bucket"} {
		newTierTopic(b, adm, topic, benchReplaySegment)
		ctx := testCtx(b)
		for i := 0; i < benchReplayRecords; i += 1000 {
			recs := make([]*kgo.Record, 0, 1000)
			for j := i; j < min(i+1000, benchReplayRecords); j++ {
				recs = append(recs, &kgo.Record{Topic: topic, Value: val, Key: []byte(fmt.Sprint(j))})
			}
			if err := cl.ProduceSync(ctx, recs...).FirstErr(); err != nil {
				b.Fatal(err)
			}
		}
	}
	p := tierTestPartition(b, br, "bucket", 0)
	tierAll(b, br, p)
	var size int64
	for _, s := range br.meta.State().RemoteSegments(p.topicID, 0) {
		size += s.Size
	}
	return size
}

const benchReplayRecords = benchReplayBytes / benchReplayValue

// replayTopic consumes topic/0 from offset 0 to its end with conc consumers at once.
func replayTopic(b *testing.B, br *Broker, topic string, conc int) time.Duration {
	start := time.Now()
	var wg sync.WaitGroup
	errs := make(chan error, conc)
	for range conc {
		c := newTestClient(b, br, kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{topic: {0: kgo.NewOffset().At(0)}}))
		wg.Go(func() {
			defer c.Close()
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
			defer cancel()
			for got := 0; got < benchReplayRecords; {
				fs := c.PollFetches(ctx)
				if ctx.Err() != nil {
					errs <- fmt.Errorf("%s: replayed %d of %d records", topic, got, benchReplayRecords)
					return
				}
				if err := fs.Err(); err != nil {
					errs <- fmt.Errorf("%s: %v", topic, err)
					return
				}
				got += fs.NumRecords()
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		b.Fatal(err)
	}
	return time.Since(start)
}

// benchTierReplay alternates replays of the local and the bucket topic; fresh, if set, runs before
// each bucket replay (outside the timing).
func benchTierReplay(b *testing.B, br *Broker, cs *faultyStore, size int64, conc int, fresh func()) {
	replayTopic(b, br, "local", conc) // warm both paths (connections, footers) outside the measurement
	replayTopic(b, br, "bucket", conc)
	var local, bucket time.Duration
	gets0 := cs.gets.Load()
	b.SetBytes(2 * size * int64(conc))
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		local += replayTopic(b, br, "local", conc)
		if fresh != nil {
			b.StopTimer()
			fresh()
			b.StartTimer()
		}
		bucket += replayTopic(b, br, "bucket", conc)
	}
	b.StopTimer()
	mb := float64(size) * float64(b.N*conc) / 1e6
	b.ReportMetric(mb/local.Seconds(), "local-MB/s")
	b.ReportMetric(mb/bucket.Seconds(), "bucket-MB/s")
	b.ReportMetric(local.Seconds()/bucket.Seconds(), "bucket/local")
	b.ReportMetric(float64(cs.gets.Load()-gets0)/float64(b.N), "GETs/replay")
}
