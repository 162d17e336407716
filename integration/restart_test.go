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

// ackLog is what the producer learned: which records (by sequence number) were acknowledged, where.
type ackLog struct {
	mu    sync.Mutex
	acked map[int]ackedAt
	sent  int // sequence numbers below this were handed to a producer
}

func (a *ackLog) count() int {
	a.mu.Lock()
	defer a.mu.Unlock()
	return len(a.acked)
}

// produceThenKill streams restartRecord(a.sent), restartRecord(a.sent+1), ... to topic with
// acks=all (flush policy "always", the default) until more further records are acknowledged, then
// kills the node with SIGKILL while records are still in flight. The producer is closed after the
// kill, so nothing is retried: an unacknowledged record is in the log or not, once.
func produceThenKill(t *testing.T, n *node, topic string, a *ackLog, more int) {
	t.Helper()
	cl := n.client(t,
		kgo.DefaultProduceTopic(topic),
		kgo.RequiredAcks(kgo.AllISRAcks()),
		kgo.ProducerLinger(time.Millisecond),
		kgo.RecordPartitioner(kgo.RoundRobinPartitioner()),
		kgo.RecordRetries(0), // after the kill, fail fast instead of waiting for the restart
		kgo.ProduceRequestTimeout(5*time.Second),
	)
	target := a.count() + more
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan struct{})
	go func() {
		defer close(done)
		for k := 0; ctx.Err() == nil; k++ {
			a.mu.Lock()
			i := a.sent
			a.sent++
			a.mu.Unlock()
			cl.Produce(ctx, restartRecord(i), func(r *kgo.Record, err error) {
				if err != nil {
					return
				}
				a.mu.Lock()
				a.acked[i] = ackedAt{r.Partition, r.Offset, r.Timestamp}
				a.mu.Unlock()
			})
			if k%64 == 63 {
				time.Sleep(time.Millisecond) // a steady stream, not one giant burst
			}
		}
	}()
	deadline := time.Now().Add(60 * time.Second)
	for a.count() < target {
		if time.Now().After(deadline) {
			t.Fatalf("only %d of %d records acknowledged in 60s", a.count(), target)
		}
		time.Sleep(5 * time.Millisecond)
	}
	n.stop(syscall.SIGKILL)
	atKill := a.count()
	cancel()
	<-done
	cl.Close() // fails everything still buffered; no callback after Close returns
	t.Logf("sent %d, acknowledged %d at the kill, %d in total", a.sent, atKill, a.count())
}

// consumeAll reads every partition of topic from offset 0 up to its end offset.
func consumeAll(t *testing.T, n *node, topic string) map[int32][]*kgo.Record {
	t.Helper()
	ends, err := n.admin(t).ListEndOffsets(testCtx(t), topic)
	if err != nil {
		t.Fatal(err)
	}
	var total int64
	ends.Each(func(o kadm.ListedOffset) { total += o.Offset })
	consumer := n.client(t, kgo.ConsumeTopics(topic), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	got := map[int32][]*kgo.Record{}
	var count int64
	cctx := testCtx(t)
	for count < total {
		fs := consumer.PollFetches(cctx)
		if cctx.Err() != nil {
			t.Fatalf("consumed %d of %d", count, total)
		}
		fs.EachError(func(_ string, p int32, err error) { t.Fatalf("fetch partition %d: %v", p, err) })
		fs.EachRecord(func(r *kgo.Record) {
			got[r.Partition] = append(got[r.Partition], r)
			count++
		})
	}
	return got
}

// checkAcked checks what was read back against what was acknowledged: every partition's offsets
// run from 0 without gaps, no record appears twice or out of produce order, and every acknowledged
// record is there at the offset it was acknowledged with, byte-identical (key, value, header,
// timestamp). Records sent but not acknowledged may or may not be there.
func checkAcked(t *testing.T, got map[int32][]*kgo.Record, a *ackLog) {
	t.Helper()
	a.mu.Lock()
	defer a.mu.Unlock()
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
	for seq, at := range a.acked {
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
	t.Logf("read back: %d records in the log, %d acknowledged, %d lost, %d unacknowledged but kept",
		len(found), len(a.acked), lost, len(found)-(len(a.acked)-lost))
	if lost > 0 {
		t.Fatalf("%d acknowledged records lost", lost)
	}
}

// Produce with acks=all, kill -9 the broker while records are in flight, restart it on the same
// data directory: every acknowledged record is there, at the offset it was acknowledged with, in
// order, byte-identical; none appears twice (the producer is idempotent).
func TestKill9KeepsEveryAcknowledgedRecord(t *testing.T) {
	n := startNode(t, "")
	const topic = "restart"
	if _, err := n.admin(t).CreateTopic(testCtx(t), 3, 1, nil, topic); err != nil {
		t.Fatal(err)
	}
	a := &ackLog{acked: map[int]ackedAt{}}
	produceThenKill(t, n, topic, a, 3000) // a few thousand acknowledged, more in flight
	n2 := startNode(t, n.dataDir)
	checkAcked(t, consumeAll(t, n2, topic), a)
}

// The same with tiering at work: small segments upload to the embedded object store (the default
// of `sediment serve`) and local retention deletes them, so every kill -9 (three, each after a few
// thousand more acknowledged records) lands among uploads, manifest commits and local deletions.
// After the last restart the history lives partly in the bucket only (earliest-local above 0),
// and a consumer from offset 0 reads every acknowledged record exactly once, byte-identical.
func TestKill9WhileTieringKeepsEveryAcknowledgedRecord(t *testing.T) {
	args := []string{"--conf", "log.retention.check.interval.ms=100"}
	n := startNode(t, "", args...)
	const topic = "restart-tiered"
	const partitions = 2
	configs := map[string]*string{
		"segment.bytes": kadm.StringPtr("32768"), "local.retention.ms": kadm.StringPtr("200"),
		"remote.storage.enable": kadm.StringPtr("true"),
	}
	if _, err := n.admin(t).CreateTopic(testCtx(t), partitions, 1, configs, topic); err != nil {
		t.Fatal(err)
	}
	a := &ackLog{acked: map[int]ackedAt{}}
	for kill := 0; kill < 3; kill++ {
		produceThenKill(t, n, topic, a, 2000)
		n = startNode(t, n.dataDir, args...)
	}
	cl := n.client(t)
	var local map[int32]int64
	deadline := time.Now().Add(60 * time.Second)
	for {
		var err error
		local, err = listOffsetsOf(testCtx(t), cl, topic, partitions, -4)
		if err == nil && local[0] > 0 && local[1] > 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("history never left the local disk: earliest-local offsets %v (err %v)", local, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
	if earliest, err := listOffsetsOf(testCtx(t), cl, topic, partitions, -2); err != nil || earliest[0] != 0 || earliest[1] != 0 {
		t.Fatalf("earliest offsets %v (err %v), want 0: the log starts in the bucket", earliest, err)
	}
	t.Logf("earliest-local offsets after the last restart: %v (below them, the records are read from the bucket)", local)
	checkAcked(t, consumeAll(t, n, topic), a)
}
