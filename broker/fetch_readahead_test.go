package broker

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/sediment-io/sediment/tiering"
	"github.com/sediment-io/sediment/tiering/objstoretest"
)

// wideTieredTopic creates topic with n partitions (segments of segmentBytes), produces perPartition
// bytes of 1000-byte records to each and moves every partition's records to the bucket (tierAll).
func wideTieredTopic(t testing.TB, b *Broker, topic string, n int32, segmentBytes, perPartition int) {
	t.Helper()
	cl := newTestClient(t, b, kgo.ProducerLinger(5*time.Millisecond), kgo.ProducerBatchMaxBytes(int32(min(segmentBytes/4, 256<<10))),
		kgo.ProducerBatchCompression(kgo.NoCompression()), kgo.RecordPartitioner(kgo.ManualPartitioner()))
	newTierTopicN(t, kadm.NewClient(cl), topic, n, segmentBytes)
	val := make([]byte, 1000)
	for p := range n {
		recs := make([]*kgo.Record, 0, perPartition/len(val))
		for range perPartition / len(val) {
			recs = append(recs, &kgo.Record{Topic: topic, Partition: p, Value: val})
		}
		if err := cl.ProduceSync(testCtx(t), recs...).FirstErr(); err != nil {
			t.Fatal(err)
		}
		tierAll(t, b, tierTestPartition(t, b, topic, p))
	}
}

// A consumer fetching more partitions than its response holds at their limits (six partitions of
// 16 KiB each, a 64 KiB response) still gets the partitions that fit read at once: their GETs from
// the bucket overlap. Kafka's limits are kept: the first four partitions get records, none more
// than its 16 KiB, and the response no more than its 64 KiB.
func TestFetchReadsAheadColdPartitions(t *testing.T) {
	b := newTestBroker(t)
	const topic = "wide"
	wideTieredTopic(t, b, topic, 6, 16<<10, 48<<10)
	// GETs grouped by partition: a partition's own GETs one after another are one partition.
	st := &objstoretest.MeetStore{Store: b.tier.store, Wait: 500 * time.Millisecond, Group: func(key string) string {
		k, _ := tiering.ParseSegmentKey(key)
		return fmt.Sprint(k.Partition)
	}}
	// No chunk cache and no read-ahead: a partition's GETs end with its read.
	b.tier.remote = tiering.NewRemoteLogWith(st, tiering.RemoteLogConfig{ReadAheadBytes: -1})

	req := fetchPartitionsReq(t, b, topic, 6, 16<<10, 4*16<<10)
	kresp, err := newTestClient(t, b).Request(testCtx(t), req)
	if err != nil {
		t.Fatal(err)
	}
	resp := kresp.(*kmsg.FetchResponse)
	if len(resp.Topics) != 1 || len(resp.Topics[0].Partitions) != 6 {
		t.Fatalf("response: %+v", resp.Topics)
	}
	total := 0
	for i, rp := range resp.Topics[0].Partitions {
		n := len(rp.RecordBatches)
		if rp.ErrorCode != 0 || (i < 4 && n == 0) || n > 16<<10 {
			t.Fatalf("partition %d: error %d, %d record bytes; want at most 16 KiB, and records in each of the first four", rp.Partition, rp.ErrorCode, n)
		}
		total += n
	}
	if total > int(req.MaxBytes) {
		t.Fatalf("%d record bytes in a %d-byte response", total, req.MaxBytes)
	}
	if most := st.MostInFlight(); most < 2 {
		t.Fatalf("GETs of at most %d partition in flight at once: the partitions were read one by one", most)
	}
}

// fetchPartitionsReq is a Fetch v12 of partitions 0..n-1 of topic from offset 0, each with
// partMax bytes, the response with maxBytes (the topic named by id too, as kgo's newest version
// does).
func fetchPartitionsReq(t *testing.T, b *Broker, topic string, n int32, partMax, maxBytes int32) *kmsg.FetchRequest {
	req := kmsg.NewPtrFetchRequest()
	req.Version = 12
	req.MaxWaitMillis, req.MinBytes, req.MaxBytes = 0, 1, maxBytes
	req.SessionEpoch = -1
	rt := kmsg.NewFetchRequestTopic()
	rt.Topic, rt.TopicID = topic, lookupTopicID(t, b, topic)
	for p := range n {
		rp := kmsg.NewFetchRequestTopicPartition()
		rp.Partition, rp.FetchOffset, rp.PartitionMaxBytes = p, 0, partMax
		rt.Partitions = append(rt.Partitions, rp)
	}
	req.Topics = append(req.Topics, rt)
	return req
}

// TestFetchChargesRemoteQuotaOnce: under a remote fetch quota, what a Fetch takes from it is what
// it sends. Eight partitions of 16 KiB limits in a 20 KiB response: the tail round reads them all
// at once with 16 KiB each, and the pass then cuts most of them and re-reads them with the little
// room left (from the chunk cache). A long poll that waits for more than there is reads every
// partition again when its wait ends. Before, the cut and the earlier pass were charged as well.
func TestFetchChargesRemoteQuotaOnce(t *testing.T) {
	b := newTestBroker(t)
	const topic = "wideq"
	wideTieredTopic(t, b, topic, 8, 16<<10, 48<<10)
	b.tier.remote = tiering.NewRemoteLogWith(b.tier.store, tiering.RemoteLogConfig{FetchBytesPerSecond: 1 << 30})
	q := b.tier.remote.Quota()
	cl := newTestClient(t, b)

	sent := func(req *kmsg.FetchRequest) int64 {
		t.Helper()
		kresp, err := cl.Request(testCtx(t), req)
		if err != nil {
			t.Fatal(err)
		}
		var n int64
		for _, rt := range kresp.(*kmsg.FetchResponse).Topics {
			for _, rp := range rt.Partitions {
				if rp.ErrorCode != 0 {
					t.Fatalf("partition %d: error %d", rp.Partition, rp.ErrorCode)
				}
				n += int64(len(rp.RecordBatches))
			}
		}
		return n
	}

	// The tail round: records sent, the quota charged exactly that.
	n := sent(fetchPartitionsReq(t, b, topic, 8, 16<<10, 20<<10))
	if n == 0 || n > 20<<10+16<<10 {
		t.Fatalf("%d record bytes in a 20 KiB response", n)
	}
	if used := q.Used(); used != n {
		t.Fatalf("a fetch that sent %d record bytes took %d from the remote fetch quota", n, used)
	}

	// A long poll for more than all the partitions hold: the pass before the wait is discarded.
	before := q.Used()
	req := fetchPartitionsReq(t, b, topic, 8, 16<<10, 1<<20)
	req.MinBytes, req.MaxWaitMillis = 1<<20, 300
	n = sent(req)
	if n == 0 {
		t.Fatal("long poll: no records")
	}
	if used := q.Used() - before; used != n {
		t.Fatalf("a long poll that sent %d record bytes took %d from the remote fetch quota", n, used)
	}
}

// BenchmarkFetchColdManyPartitions is a consumer at franz-go's defaults (50 MiB responses, 1 MiB per
// partition) starting from offset 0 on 64 partitions whose history is only in the bucket, through
// the broker's default chunk cache, cold for each consumer. The partitions' limits add up to more
// than a response holds. Stores: store=model is objstoretest.RateStore over the file:// store (20
// ms per GET, 100 MB/s per connection, a model of S3); store=minio a real MinIO on loopback
// (skipped under SEDIMENT_SKIP_MINIO=1), where a GET answers in about a millisecond and MinIO
// shares the machine's two cores. Reported: the wait for the first records and the rate of the
// whole replay (2 MiB per partition).
//
//	go test ./broker/ -run '^$' -bench FetchColdManyPartitions -benchtime 5x
func BenchmarkFetchColdManyPartitions(b *testing.B) {
	b.Run("store=model", func(b *testing.B) {
		br := newTestBroker(b)
		benchFetchColdManyPartitions(b, br, &objstoretest.RateStore{Store: br.tier.store, Latency: 20 * time.Millisecond, BytesPerSec: 100e6})
	})
	b.Run("store=minio", func(b *testing.B) {
		br, _ := newMinIOBroker(b, "many")
		benchFetchColdManyPartitions(b, br, br.tier.store)
	})
}

func benchFetchColdManyPartitions(b *testing.B, br *Broker, st tiering.Store) {
	const (
		topic        = "wide"
		partitions   = 64
		perPartition = 2 << 20
	)
	wideTieredTopic(b, br, topic, partitions, 1<<20, perPartition)
	offsets := map[int32]kgo.Offset{}
	for p := range int32(partitions) {
		offsets[p] = kgo.NewOffset().At(0)
	}
	want := partitions * (perPartition / 1000)
	var first, all time.Duration
	for b.Loop() {
		br.tier.remote = tiering.NewRemoteLogWith(st, tiering.RemoteLogConfig{CacheBytes: tiering.DefaultCacheBytes})
		cl := newTestClient(b, br, kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{topic: offsets}))
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
		start := time.Now()
		for got := 0; got < want; {
			fs := cl.PollFetches(ctx)
			if ctx.Err() != nil {
				b.Fatalf("replayed %d of %d records", got, want)
			}
			if err := fs.Err(); err != nil {
				b.Fatal(err)
			}
			if got == 0 && fs.NumRecords() > 0 {
				first += time.Since(start)
			}
			got += fs.NumRecords()
		}
		all += time.Since(start)
		cancel()
		cl.Close()
	}
	b.ReportMetric(float64(first.Microseconds())/1e3/float64(b.N), "first-records-ms")
	b.ReportMetric(float64(partitions*perPartition)*float64(b.N)/1e6/all.Seconds(), "replay-MB/s")
}
