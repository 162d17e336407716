package integration

import (
	"bytes"
	"context"
	"encoding/binary"
	"fmt"
	"math/rand/v2"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
)

// restartRecord derives record i's key, value and headers deterministically, so the check after
// the restart can rebuild exactly what was sent.
func restartRecord(i int) *kgo.Record {
	rng := rand.New(rand.NewPCG(uint64(i), 0x5ed1))
	val := make([]byte, 50+rng.IntN(2000))
	for j := range val {
		val[j] = byte(rng.Uint32())
	}
	key := binary.BigEndian.AppendUint64(nil, uint64(i))
	return &kgo.Record{
		Key:     key,
		Value:   val,
		Headers: []kgo.RecordHeader{{Key: "seq", Value: []byte(fmt.Sprint(i))}},
	}
}

type ackedAt struct {
	partition int32
	offset    int64
	ts        time.Time
}

// Produce with acks=all (flush policy "always", the default), kill -9 the broker while records are
// in flight, restart it on the same data directory: every acknowledged record is there, at the
// offset it was acknowledged with, in order, byte-identical. Records that were sent but not
// acknowledged may or may not be there (the crash raced their acknowledgement); none may appear
// twice (the producer is idempotent).
func TestKill9KeepsEveryAcknowledgedRecord(t *testing.T) {
	n := startNode(t, "")
	const topic = "restart"
	const partitions = 3
	if _, err := n.admin(t).CreateTopic(testCtx(t), partitions, 1, nil, topic); err != nil {
		t.Fatal(err)
	}

	cl := n.client(t,
		kgo.DefaultProduceTopic(topic),
		kgo.RequiredAcks(kgo.AllISRAcks()),
		kgo.ProducerLinger(time.Millisecond),
		kgo.RecordPartitioner(kgo.RoundRobinPartitioner()),
		kgo.RecordRetries(0), // after the kill, fail fast instead of waiting for the restart
		kgo.ProduceRequestTimeout(5*time.Second),
	)

	var (
		mu    sync.Mutex
		acked = map[int]ackedAt{}
		sent  int
	)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan struct{})
	go func() {
		defer close(done)
		for i := 0; ctx.Err() == nil; i++ {
			r := restartRecord(i)
			mu.Lock()
			sent = i + 1
			mu.Unlock()
			cl.Produce(ctx, r, func(r *kgo.Record, err error) {
				if err != nil {
					return
				}
				mu.Lock()
				acked[i] = ackedAt{r.Partition, r.Offset, r.Timestamp}
				mu.Unlock()
			})
			if i%64 == 63 {
				time.Sleep(time.Millisecond) // a steady stream, not one giant burst
			}
		}
	}()

	// Kill once a few thousand records are acknowledged, with more in flight.
	deadline := time.Now().Add(30 * time.Second)
	for {
		mu.Lock()
		a := len(acked)
		mu.Unlock()
		if a >= 3000 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("only %d records acknowledged in 30s", a)
		}
		time.Sleep(5 * time.Millisecond)
	}
	n.stop(syscall.SIGKILL)
	mu.Lock()
	ackedAtKill := len(acked)
	mu.Unlock()
	cancel()
	<-done
	cl.Close() // fails everything still buffered; no callback after Close returns
	mu.Lock()
	defer mu.Unlock()
	t.Logf("sent %d, acknowledged %d at the kill, %d in total", sent, ackedAtKill, len(acked))

	n2 := startNode(t, n.dataDir)
	adm := n2.admin(t)
	ends, err := adm.ListEndOffsets(testCtx(t), topic)
	if err != nil {
		t.Fatal(err)
	}
	want := map[int32]int64{}
	var total int64
	ends.Each(func(o kadm.ListedOffset) {
		want[o.Partition] = o.Offset
		total += o.Offset
	})
	consumer := n2.client(t, kgo.ConsumeTopics(topic), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	got := map[int32][]*kgo.Record{}
	var count int64
	cctx := testCtx(t)
	for count < total {
		fs := consumer.PollFetches(cctx)
		if cctx.Err() != nil {
			t.Fatalf("consumed %d of %d after restart", count, total)
		}
		fs.EachError(func(_ string, p int32, err error) { t.Fatalf("fetch partition %d: %v", p, err) })
		fs.EachRecord(func(r *kgo.Record) {
			got[r.Partition] = append(got[r.Partition], r)
			count++
		})
	}

	// Index what is in the log by sequence number; check order and uniqueness per partition.
	found := map[int]*kgo.Record{}
	for p, recs := range got {
		lastSeq := -1
		for j, r := range recs {
			if r.Offset != int64(j) {
				t.Fatalf("partition %d: record %d has offset %d (gap or reordering)", p, j, r.Offset)
			}
			seq := int(binary.BigEndian.Uint64(r.Key))
			if _, dup := found[seq]; dup {
				t.Fatalf("record %d appears twice", seq)
			}
			if seq <= lastSeq {
				t.Fatalf("partition %d: record %d after %d (out of produce order)", p, seq, lastSeq)
			}
			lastSeq = seq
			found[seq] = r
		}
	}
	lost := 0
	for seq, at := range acked {
		r, ok := found[seq]
		if !ok {
			lost++
			if lost < 5 {
				t.Errorf("acknowledged record %d (partition %d offset %d) is missing", seq, at.partition, at.offset)
			}
			continue
		}
		w := restartRecord(seq)
		if r.Partition != at.partition || r.Offset != at.offset {
			t.Errorf("record %d acknowledged at %d/%d, found at %d/%d", seq, at.partition, at.offset, r.Partition, r.Offset)
		}
		if !bytes.Equal(r.Key, w.Key) || !bytes.Equal(r.Value, w.Value) || len(r.Headers) != 1 ||
			r.Headers[0].Key != "seq" || !bytes.Equal(r.Headers[0].Value, w.Headers[0].Value) || !r.Timestamp.Equal(at.ts) {
			t.Errorf("record %d differs after restart", seq)
		}
	}
	t.Logf("after restart: %d records in the log, %d acknowledged, %d lost, %d unacknowledged but kept",
		len(found), len(acked), lost, len(found)-(len(acked)-lost))
	if lost > 0 {
		t.Fatalf("%d acknowledged records lost", lost)
	}
}
