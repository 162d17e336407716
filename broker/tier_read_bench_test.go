package broker

import (
	"bytes"
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
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
			size := setupTierReplay(b, br, benchReplaySegment)
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

// BenchmarkTierReplayBigFetch is BenchmarkTierReplay's MinIO cell with the chunk cache cold and
// 10 MiB partition fetches, the pattern `sediment bench` replays with (each read spans chunks).
//
//	go test ./broker/ -run '^$' -bench TierReplayBigFetch -benchtime 5x
func BenchmarkTierReplayBigFetch(b *testing.B) {
	br, srv := newMinIOBroker(b, "bigfetch")
	size := setupTierReplay(b, br, 16<<20) // 10 MiB reads span 3-4 cache chunks (as with bench's 96 MiB segments)
	cs := &faultyStore{Store: br.tier.store}
	cfg := tiering.RemoteLogConfig{MaxFooters: 1024, CacheBytes: tiering.DefaultCacheBytes}
	if v, err := strconv.Atoi(os.Getenv("SEDIMENT_BENCH_CHUNK_MIB")); err == nil && v > 0 {
		cfg.CacheChunkBytes = int64(v) << 20 // experiments with the cache's chunk size
	}
	if v, err := strconv.Atoi(os.Getenv("SEDIMENT_BENCH_PREFETCH")); err == nil && v != 0 {
		cfg.PrefetchChunks = v
	}
	newRL := func() {
		br.tier.remote = tiering.NewRemoteLogWith(cs, cfg)
	}
	newRL()
	minio0 := pidCPU(minioPID(srv.Addr))
	benchTierReplay(b, br, cs, size, 1, newRL, kgo.FetchMaxPartitionBytes(10<<20))
	// MinIO's CPU over the whole measurement (local replays cost it nothing): what the bucket
	// replay costs the other side of the machine's two cores.
	if minio1 := pidCPU(minioPID(srv.Addr)); minio0 >= 0 && minio1 >= 0 {
		b.ReportMetric(float64(minio1-minio0)/1e3/(float64(size)*float64(b.N)/1e6), "minio-cpu-us/MB")
	}
}

// minioPID finds the MinIO process listening on addr (its command line names the address); -1 if none.
func minioPID(addr string) int {
	ents, _ := os.ReadDir("/proc")
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		cmd, err := os.ReadFile("/proc/" + e.Name() + "/cmdline")
		if err == nil && bytes.Contains(cmd, []byte("minio")) && bytes.Contains(cmd, []byte(addr)) {
			return pid
		}
	}
	return -1
}

// pidCPU is the user + system CPU time of process pid in ns (/proc/PID/stat, clock ticks of
// 10 ms); -1 if unknown.
func pidCPU(pid int) int64 {
	if pid < 0 {
		return -1
	}
	st, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return -1
	}
	i := bytes.LastIndexByte(st, ')') // the command name may hold spaces
	f := strings.Fields(string(st[i+1:]))
	if len(f) < 13 {
		return -1
	}
	ut, _ := strconv.ParseInt(f[11], 10, 64)
	stm, _ := strconv.ParseInt(f[12], 10, 64)
	return (ut + stm) * 10_000_000
}

const (
	benchReplayBytes   = 32 << 20
	benchReplayValue   = 1000
	benchReplaySegment = 4 << 20
)

// setupTierReplay produces benchReplayBytes into topics "local" and "bucket" (same records, segments
// of segmentBytes) and moves every segment of "bucket" to the object store; returns the bucket
// topic's stored bytes.
func setupTierReplay(b *testing.B, br *Broker, segmentBytes int) int64 {
	cl := newTestClient(b, br, kgo.ProducerLinger(5*time.Millisecond), kgo.ProducerBatchMaxBytes(1<<20),
		kgo.ProducerBatchCompression(kgo.NoCompression()), kgo.RecordPartitioner(kgo.ManualPartitioner()))
	adm := kadm.NewClient(cl)
	rng := rand.New(rand.NewPCG(1, 2))
	val := make([]byte, benchReplayValue)
	for i := range val {
		val[i] = byte(rng.Uint32())
	}
	for _, topic := range []string{"local", "bucket"} {
		newTierTopic(b, adm, topic, segmentBytes)
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

// replayTopic consumes topic/0 from offset 0 to its end with conc consumers at once (client opts added).
func replayTopic(b *testing.B, br *Broker, topic string, conc int, opts ...kgo.Opt) time.Duration {
	took, _ := replayTopicFirst(b, br, topic, conc, opts...)
	return took
}

// replayTopicFirst is replayTopic, also returning when the first records arrived (at any consumer).
func replayTopicFirst(b *testing.B, br *Broker, topic string, conc int, opts ...kgo.Opt) (took, first time.Duration) {
	start := time.Now()
	var firstNs atomic.Int64
	var wg sync.WaitGroup
	errs := make(chan error, conc)
	for range conc {
		c := newTestClient(b, br, append([]kgo.Opt{kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{topic: {0: kgo.NewOffset().At(0)}})}, opts...)...)
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
				if n := fs.NumRecords(); n > 0 {
					firstNs.CompareAndSwap(0, int64(time.Since(start)))
					got += n
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		b.Fatal(err)
	}
	return time.Since(start), time.Duration(firstNs.Load())
}

// benchTierReplay alternates replays of the local and the bucket topic; fresh, if set, runs before
// each bucket replay (outside the timing).
func benchTierReplay(b *testing.B, br *Broker, cs *faultyStore, size int64, conc int, fresh func(), opts ...kgo.Opt) {
	replayTopic(b, br, "local", conc, opts...) // warm both paths (connections, footers) outside the measurement
	replayTopic(b, br, "bucket", conc, opts...)
	var local, bucket, localFirst, bucketFirst time.Duration
	var localCPU, bucketCPU int64 // ns (processCPU, 01_fetch_bench_test.go)
	gets0 := cs.gets.Load()
	b.SetBytes(2 * size * int64(conc))
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		c0 := processCPU()
		took, first := replayTopicFirst(b, br, "local", conc, opts...)
		local += took
		localFirst += first
		localCPU += processCPU() - c0
		if fresh != nil {
			b.StopTimer()
			fresh()
			b.StartTimer()
		}
		c0 = processCPU()
		took, first = replayTopicFirst(b, br, "bucket", conc, opts...)
		bucket += took
		bucketFirst += first
		bucketCPU += processCPU() - c0
	}
	b.StopTimer()
	mb := float64(size) * float64(b.N*conc) / 1e6
	b.ReportMetric(mb/local.Seconds(), "local-MB/s")
	b.ReportMetric(mb/bucket.Seconds(), "bucket-MB/s")
	b.ReportMetric(local.Seconds()/bucket.Seconds(), "bucket/local")
	// CPU of this process (broker and consumer; MinIO is another process) per replayed MB: less
	// noisy than wall time on a shared machine, and what bounds the replay when cores are scarce.
	b.ReportMetric(float64(localCPU)/1e3/mb, "local-cpu-us/MB")
	b.ReportMetric(float64(bucketCPU)/1e3/mb, "bucket-cpu-us/MB")
	b.ReportMetric(float64(cs.gets.Load()-gets0)/float64(b.N), "GETs/replay")
	// How long a consumer starting from offset 0 waits for its first records (issue 7: consumers
	// reading history from the bucket "should barely notice").
	b.ReportMetric(float64(localFirst.Microseconds())/1e3/float64(b.N), "local-first-ms")
	b.ReportMetric(float64(bucketFirst.Microseconds())/1e3/float64(b.N), "bucket-first-ms")
}

// BenchmarkTierReplayProduceLatency measures what a replay from the bucket costs live writes on the
// same broker (issue 7's target: produce p99 during a replay ≤ 1.2× without): each iteration
// produces 200 single-record acks=all requests one after another with no replay running, then 200
// while a consumer replays the bucket topic from offset 0 over and over (no chunk cache: every
// replay reads the bucket). Reported: p99 without and with the replay, their ratio, and replays per iteration.
// quota= is the remote fetch byte-rate budget (tiering.FetchQuota; 0 = none). store=none is the
// control: the same replay from local disk (what any replay costs in this one-process setup, where
// the consumer's own decoding shares the broker's cores).
//
//	go test ./broker/ -run '^$' -bench TierReplayProduceLatency -benchtime 3x
func BenchmarkTierReplayProduceLatency(b *testing.B) {
	for _, st := range []string{"file", "minio", "none"} {
		b.Run("store="+st, func(b *testing.B) {
			var br *Broker
			if st != "minio" {
				br = newTestBroker(b)
			} else {
				br, _ = newMinIOBroker(b, "lat")
			}
			setupTierReplay(b, br, benchReplaySegment)
			prod := newTestClient(b, br, kgo.DefaultProduceTopic("hot"), kgo.ProducerLinger(0))
			if r, err := kadm.NewClient(prod).CreateTopic(testCtx(b), 1, 1, nil, "hot"); err != nil || r.Err != nil {
				b.Fatal(err, r.Err)
			}
			quotas := []int64{0, 32 << 20}
			if st == "none" {
				quotas = quotas[:1]
			}
			for _, quota := range quotas {
				b.Run(fmt.Sprintf("quota=%dMB", quota>>20), func(b *testing.B) {
					benchProduceDuringReplay(b, br, prod, st, quota)
				})
			}
		})
	}
}

func benchProduceDuringReplay(b *testing.B, br *Broker, prod *kgo.Client, st string, quota int64) {
	produce := func(n int) []time.Duration {
		lat := make([]time.Duration, 0, n)
		for range n {
			start := time.Now()
			if err := prod.ProduceSync(testCtx(b), &kgo.Record{Value: make([]byte, 100)}).FirstErr(); err != nil {
				b.Fatal(err)
			}
			lat = append(lat, time.Since(start))
		}
		return lat
	}
	// One reader for the whole run (the quota's budget spans replays); no chunk cache, so every
	// replay reads the bucket.
	br.tier.remote = tiering.NewRemoteLogWith(br.tier.store, tiering.RemoteLogConfig{FetchBytesPerSecond: quota})
	produce(50) // warm
	var idle, busy []time.Duration
	var replays atomic.Int64
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		idle = append(idle, produce(200)...)
		stop := make(chan struct{})
		done := make(chan struct{})
		go func() {
			defer close(done)
			for {
				select {
				case <-stop:
					return
				default:
				}
				if st == "none" { // control: the same replay from local disk
					replayTopic(b, br, "local", 1)
				} else {
					replayTopic(b, br, "bucket", 1)
				}
				replays.Add(1)
			}
		}()
		time.Sleep(50 * time.Millisecond) // the replay is under way
		busy = append(busy, produce(200)...)
		close(stop)
		<-done
	}
	b.StopTimer()
	p99 := func(d []time.Duration) float64 {
		slices.Sort(d)
		return float64(d[len(d)*99/100].Microseconds()) / 1000
	}
	pi, pb := p99(idle), p99(busy)
	b.ReportMetric(pi, "idle-p99-ms")
	b.ReportMetric(pb, "replay-p99-ms")
	b.ReportMetric(pb/pi, "p99-ratio")
	b.ReportMetric(float64(replays.Load())/float64(b.N), "replays/op")
}

// BenchmarkTierReplayQuota measures what the KIP-956 remote fetch quota (6 MiB/s) delivers to one
// greedy consumer replaying the bucket topic with 10 MiB partition fetches (as `sediment bench`'s
// replay does; file:// store, no chunk cache): delivered MB/s and its
// ratio to the quota (≈ 1 is the goal; the one-second burst at the start of each replay lifts it
// slightly above). A quota that idles its budget (empty answers followed by the client's 5 s long
// poll) shows up as a ratio well below 1.
//
//	go test ./broker/ -run '^$' -bench TierReplayQuota -benchtime 2x
func BenchmarkTierReplayQuota(b *testing.B) {
	br := newTestBroker(b)
	size := setupTierReplay(b, br, benchReplaySegment)
	const quota = 6 << 20
	var took time.Duration
	b.SetBytes(size)
	for i := 0; i < b.N; i++ {
		br.tier.remote = tiering.NewRemoteLogWith(br.tier.store, tiering.RemoteLogConfig{FetchBytesPerSecond: quota})
		took += replayTopic(b, br, "bucket", 1, kgo.FetchMaxPartitionBytes(10<<20))
	}
	rate := float64(size) * float64(b.N) / took.Seconds()
	// Without the burst: the first second's worth came at once.
	steady := (float64(size-quota) * float64(b.N)) / took.Seconds()
	b.ReportMetric(rate/1e6, "delivered-MB/s")
	b.ReportMetric(steady/quota, "steady/quota")
}

// BenchmarkTierReplayUnderThrottle measures what a greedy consumer replaying the bucket topic gets
// for 8 s while the remote fetch quota is held at 1 MB/s, as the adaptive throttle holds it while
// produce is short of CPU (an adaptive quota: quarter-second burst), with 1 MiB batches and 10 MiB
// partition fetches: delivered MB/s and its ratio to the quota, with and without the chunk cache.
// A fetch the quota answers empty must be read again when the quota has a grant, not after the
// client's long poll (franz-go: 5 s), which is all that wakes it otherwise (0.25 before that).
//
//	go test ./broker/ -run '^$' -bench TierReplayUnderThrottle -benchtime 1x
func BenchmarkTierReplayUnderThrottle(b *testing.B) {
	br := newTestBroker(b)
	setupTierReplay(b, br, benchReplaySegment)
	const rate, window = 1e6, 8 * time.Second
	for _, cache := range []int64{0, tiering.DefaultCacheBytes} {
		b.Run(fmt.Sprintf("cache=%dMiB", cache>>20), func(b *testing.B) {
			var got int64
			var took time.Duration
			for b.Loop() {
				br.tier.remote = tiering.NewRemoteLogWith(br.tier.store, tiering.RemoteLogConfig{CacheBytes: cache})
				q := tiering.NewAdaptiveFetchQuota(0)
				br.tier.remote.SetQuota(q)
				q.SetAdaptiveRate(rate)
				c := newTestClient(b, br, kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{"bucket": {0: kgo.NewOffset().At(0)}}),
					kgo.FetchMaxPartitionBytes(10<<20), kgo.FetchMaxBytes(50<<20))
				ctx, cancel := context.WithTimeout(context.Background(), window)
				start := time.Now()
				for ctx.Err() == nil {
					c.PollFetches(ctx).EachRecord(func(r *kgo.Record) { got += int64(len(r.Value)) })
				}
				took += time.Since(start)
				cancel()
				c.Close()
			}
			b.ReportMetric(float64(got)/1e6/took.Seconds(), "delivered-MB/s")
			b.ReportMetric(float64(got)/took.Seconds()/rate, "delivered/quota")
		})
	}
}
