package broker

import (
	"encoding/binary"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
)

// Several idempotent producers write to several partitions at once (concurrent appends per
// partition sharing fsyncs, multi-partition requests appended in parallel) while a consumer reads
// with long polls: every record arrives exactly once, and each producer's records arrive in the
// order it sent them within a partition.
func TestConcurrentProducersAndConsumer(t *testing.T) {
	if testing.Short() {
		t.Skip("stress test")
	}
	b := newTestBroker(t)
	const (
		topic      = "stress"
		partitions = 4
		producers  = 3
		perProd    = 4000
	)
	createTopic(t, b, topic, partitions, nil)

	total := producers * perProd
	cons := newTestClient(t, b, kgo.ConsumeTopics(topic), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
		kgo.FetchMaxWait(time.Second))
	got := make(chan []*kgo.Record, 1)
	ctx := testCtx(t)
	go func() {
		var recs []*kgo.Record
		for len(recs) < total && ctx.Err() == nil {
			fs := cons.PollFetches(ctx)
			recs = append(recs, fs.Records()...)
		}
		got <- recs
	}()

	var wg sync.WaitGroup
	errs := make(chan error, producers)
	for pr := 0; pr < producers; pr++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			cl := newTestClient(t, b, kgo.DefaultProduceTopic(topic), kgo.ProducerLinger(time.Millisecond),
				kgo.RecordPartitioner(kgo.ManualPartitioner()))
			var pwg sync.WaitGroup
			for i := 0; i < perProd; i++ {
				v := binary.BigEndian.AppendUint32(binary.BigEndian.AppendUint32(nil, uint32(pr)), uint32(i))
				pwg.Add(1)
				cl.Produce(ctx, &kgo.Record{Value: v, Partition: int32(i % partitions)}, func(_ *kgo.Record, err error) {
					defer pwg.Done()
					if err != nil {
						select {
						case errs <- err:
						default:
						}
					}
				})
			}
			pwg.Wait()
		}()
	}
	wg.Wait()
	select {
	case err := <-errs:
		t.Fatalf("produce: %v", err)
	default:
	}
	recs := <-got
	if len(recs) != total {
		t.Fatalf("consumed %d of %d", len(recs), total)
	}
	seen := map[string]bool{}
	last := map[[2]int]int{} // (producer, partition) → last index seen
	for _, r := range recs {
		pr, i := int(binary.BigEndian.Uint32(r.Value)), int(binary.BigEndian.Uint32(r.Value[4:]))
		k := fmt.Sprint(pr, "/", i)
		if seen[k] {
			t.Fatalf("record %s twice", k)
		}
		seen[k] = true
		if int(r.Partition) != i%partitions {
			t.Fatalf("record %s in partition %d", k, r.Partition)
		}
		key := [2]int{pr, int(r.Partition)}
		if prev, ok := last[key]; ok && prev >= i {
			t.Fatalf("producer %d partition %d: %d after %d", pr, r.Partition, i, prev)
		}
		last[key] = i
	}
}
