package broker

import (
	"context"
	"fmt"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
)

// BenchmarkTierReplay measures a consumer replaying a partition from offset 0 through the broker
// when every segment is only in the bucket, against the same bytes on local disk, alternating the
// two each iteration in one broker (side by side: the machine's load hits both alike). Reported:
// local-MB/s, bucket-MB/s and bucket/local (issue 7's target: ≥ 0.8). Sub-benchmarks: the file://
// store and a real MinIO (skipped under SEDIMENT_SKIP_MINIO=1).
//
//	go test ./broker/ -run '^$' -bench TierReplay -benchtime 5x
func BenchmarkTierReplay(b *testing.B) {
	b.Run("store=file", func(b *testing.B) { benchTierReplay(b, newTestBroker(b)) })
	b.Run("store=minio", func(b *testing.B) {
		br, _ := newMinIOBroker(b, "bench")
		benchTierReplay(b, br)
	})
}

const (
	benchReplayBytes   = 32 << 20
	benchReplayValue   = 1000
	benchReplaySegment = 4 << 20
)

func benchTierReplay(b *testing.B, br *Broker) {
	cl := newTestClient(b, br, kgo.ProducerLinger(5*time.Millisecond), kgo.ProducerBatchMaxBytes(1<<20),
		kgo.ProducerBatchCompression(kgo.NoCompression()), kgo.RecordPartitioner(kgo.ManualPartitioner()))
	adm := kadm.NewClient(cl)
	n := benchReplayBytes / benchReplayValue
	rng := rand.New(rand.NewPCG(1, 2))
	val := make([]byte, benchReplayValue)
	for i := range val {
		val[i] = byte(rng.Uint32())
	}
	for _, topic := range []string{"local", "bucket"} {
		newTierTopic(b, adm, topic, benchReplaySegment)
		ctx := testCtx(b)
		for i := 0; i < n; i += 1000 {
			recs := make([]*kgo.Record, 0, 1000)
			for j := i; j < min(i+1000, n); j++ {
				recs = append(recs, &kgo.Record{Topic: topic, Value: val, Key: []byte(fmt.Sprint(j))})
			}
			if err := cl.ProduceSync(ctx, recs...).FirstErr(); err != nil {
				b.Fatal(err)
			}
		}
	}
	tierAll(b, br, tierTestPartition(b, br, "bucket", 0))
	var size int64
	for _, s := range br.meta.State().RemoteSegments(tierTestPartition(b, br, "bucket", 0).topicID, 0) {
		size += s.Size
	}

	replay := func(topic string) time.Duration {
		c := newTestClient(b, br, kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{topic: {0: kgo.NewOffset().At(0)}}))
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
		defer cancel()
		start := time.Now()
		got := 0
		for got < n {
			fs := c.PollFetches(ctx)
			if ctx.Err() != nil {
				b.Fatalf("%s: replayed %d of %d records", topic, got, n)
			}
			fs.EachError(func(_ string, _ int32, err error) { b.Fatalf("%s: %v", topic, err) })
			got += fs.NumRecords()
		}
		d := time.Since(start)
		c.Close()
		return d
	}
	replay("local") // warm both paths (connections, footers) outside the measurement
	replay("bucket")
	var local, bucket time.Duration
	b.SetBytes(2 * size)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		local += replay("local")
		bucket += replay("bucket")
	}
	mb := float64(size) * float64(b.N) / 1e6
	b.ReportMetric(mb/local.Seconds(), "local-MB/s")
	b.ReportMetric(mb/bucket.Seconds(), "bucket-MB/s")
	b.ReportMetric(local.Seconds()/bucket.Seconds(), "bucket/local")
}
