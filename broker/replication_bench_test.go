package broker

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
)

// BenchmarkReplicatedProduceLatency: one acks=all record at a time (ProduceSync, 1 KiB, one
// partition) with replication factor 1 and 3 on a 3-broker in-process cluster. ns/op is the ack
// round trip; p50/p99 are reported too. Nothing else is in flight, so the figure shows the waits
// on the acks=all path itself (follower wake-up, follower fsync, position report, HW advance)
// rather than throughput.
func BenchmarkReplicatedProduceLatency(b *testing.B) {
	brokers := startReplCluster(b, 3)
	seeds := brokerAddrs(brokers)
	adm := kadmFor(b, seeds)
	for _, rf := range []int16{1, 3} {
		b.Run(fmt.Sprintf("rf=%d", rf), func(b *testing.B) {
			topic := fmt.Sprintf("benchlat-rf%d-%d", rf, benchTopicSeq.Add(1))
			if resp, err := adm.CreateTopic(context.Background(), 1, rf, nil, topic); err != nil || resp.Err != nil {
				b.Fatalf("create: %v %v", err, resp.Err)
			}
			cl, err := kgo.NewClient(kgo.SeedBrokers(seeds...), kgo.DefaultProduceTopic(topic))
			if err != nil {
				b.Fatal(err)
			}
			defer cl.Close()
			val := make([]byte, 1024)
			// Metadata, producer id, and the followers' first fetches outside the timing.
			for i := 0; i < 20; i++ {
				if err := cl.ProduceSync(context.Background(), &kgo.Record{Value: val}).FirstErr(); err != nil {
					b.Fatal(err)
				}
			}
			lat := make([]time.Duration, 0, b.N)
			b.SetBytes(int64(len(val)))
			b.ReportAllocs()
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				start := time.Now()
				if err := cl.ProduceSync(context.Background(), &kgo.Record{Value: val}).FirstErr(); err != nil {
					b.Fatal(err)
				}
				lat = append(lat, time.Since(start))
			}
			b.StopTimer()
			reportLatencies(b, lat)
		})
	}
	// Eight producers, one per partition, each with one acks=all record in flight: fetch responses
	// then carry several partitions, so the follower's per-cycle work (one fsync per partition)
	// is on the path, as in `sediment bench`'s paced latency phase.
	for _, rf := range []int16{1, 3} {
		b.Run(fmt.Sprintf("rf=%d/partitions=8", rf), func(b *testing.B) {
			const parts = 8
			topic := fmt.Sprintf("benchlat8-rf%d-%d", rf, benchTopicSeq.Add(1))
			if resp, err := adm.CreateTopic(context.Background(), parts, rf, nil, topic); err != nil || resp.Err != nil {
				b.Fatalf("create: %v %v", err, resp.Err)
			}
			cl, err := kgo.NewClient(kgo.SeedBrokers(seeds...), kgo.DefaultProduceTopic(topic),
				kgo.RecordPartitioner(kgo.ManualPartitioner()))
			if err != nil {
				b.Fatal(err)
			}
			defer cl.Close()
			val := make([]byte, 1024)
			for p := int32(0); p < parts; p++ {
				if err := cl.ProduceSync(context.Background(), &kgo.Record{Value: val, Partition: p}).FirstErr(); err != nil {
					b.Fatal(err)
				}
			}
			lats := make([][]time.Duration, parts)
			var wg sync.WaitGroup
			var failed atomic.Pointer[error]
			b.SetBytes(int64(len(val)))
			b.ResetTimer()
			for p := int32(0); p < parts; p++ {
				wg.Add(1)
				go func() {
					defer wg.Done()
					for i := int(p); i < b.N; i += parts {
						start := time.Now()
						if err := cl.ProduceSync(context.Background(), &kgo.Record{Value: val, Partition: p}).FirstErr(); err != nil {
							failed.Store(&err)
							return
						}
						lats[p] = append(lats[p], time.Since(start))
					}
				}()
			}
			wg.Wait()
			b.StopTimer()
			if err := failed.Load(); err != nil {
				b.Fatal(*err)
			}
			reportLatencies(b, slices.Concat(lats...))
		})
	}
}

func reportLatencies(b *testing.B, lat []time.Duration) {
	if len(lat) == 0 {
		return
	}
	slices.Sort(lat)
	b.ReportMetric(float64(lat[len(lat)/2].Microseconds())/1000, "p50-ms")
	b.ReportMetric(float64(lat[len(lat)*99/100].Microseconds())/1000, "p99-ms")
}
