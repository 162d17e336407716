package broker

import (
	"context"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"

	"github.com/sediment-io/sediment/meta"
	"github.com/sediment-io/sediment/segment/vfs"
)

// The leader side of replication by pull: with a follower in the ISR, the high watermark waits
// for the follower's fetch position, acks=all waits for the high watermark, consumers see nothing
// above it, the follower reads past it, and an ISR without the follower lets the HW move again.
func TestHighWatermarkFollowsTheISR(t *testing.T) {
	p := memPartition(t, vfs.NewMemFS())
	defer p.close()
	if err := p.setLeadership(meta.Partition{Replicas: []int32{1, 2}, ISR: []int32{1, 2}, Leader: 1, LeaderEpoch: 1}); err != nil {
		t.Fatal(err)
	}
	r := p.appendClient(9, -1, testBatch(t, testBatchOpts{records: 3, ts: time.Now().UnixMilli()}))
	if r.err != nil || r.lastOffset != 2 {
		t.Fatalf("append: %+v", r)
	}
	if hw := p.HighWatermark(); hw != 0 {
		t.Fatalf("HW %d before the follower fetched", hw)
	}
	acked := make(chan int16, 1)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		acked <- p.waitHW(ctx, r.lastOffset)
	}()
	// Consumers see nothing above the HW; the follower reads to the log end.
	if c := p.read(0, 1<<20, true); c.err != 0 || len(c.data) != 0 || c.hw != 0 {
		t.Fatalf("consumer read above HW: %+v", c)
	}
	f := p.readForFollower(2, 0, 1<<20, true)
	if f.err != 0 || len(f.data) == 0 || f.hw != 0 {
		t.Fatalf("follower read: err %d, %d bytes, hw %d", f.err, len(f.data), f.hw)
	}
	select {
	case code := <-acked:
		t.Fatalf("acks=all answered (%d) before the follower had the batch", code)
	case <-time.After(50 * time.Millisecond):
	}
	// The follower's next fetch position says it has offsets 0-2: the HW moves, acks=all returns.
	if f = p.readForFollower(2, 3, 1<<20, true); f.err != 0 || f.hw != 3 {
		t.Fatalf("follower at 3: %+v", f)
	}
	if code := <-acked; code != 0 {
		t.Fatalf("acks=all: %v", kerr.ErrorForCode(code))
	}
	if c := p.read(0, 1<<20, true); c.err != 0 || len(c.data) == 0 || c.hw != 3 {
		t.Fatalf("consumer read below HW: err %d, %d bytes, hw %d", c.err, len(c.data), c.hw)
	}
	// Not a replica.
	if f = p.readForFollower(3, 0, 1<<20, true); f.err != kerr.NotLeaderForPartition.Code {
		t.Fatalf("non-replica fetch: %d", f.err)
	}
	// The follower falls out of the ISR (meta's decision): the HW follows the leader alone.
	if r = p.appendClient(9, -1, testBatch(t, testBatchOpts{ts: time.Now().UnixMilli()})); r.err != nil {
		t.Fatal(r.err)
	}
	if hw := p.HighWatermark(); hw != 3 {
		t.Fatalf("HW %d moved without the follower", hw)
	}
	if err := p.setLeadership(meta.Partition{Replicas: []int32{1, 2}, ISR: []int32{1}, Leader: 1, LeaderEpoch: 1}); err != nil {
		t.Fatal(err)
	}
	if hw := p.HighWatermark(); hw != 4 {
		t.Fatalf("HW %d after the ISR shrank, want 4", hw)
	}
	// min.insync.replicas=2 with an ISR of one: acks=all refused.
	tc := p.config()
	tc.MinInsyncReplicas = 2
	p.cfg.Store(&tc)
	if r = p.appendClient(9, -1, testBatch(t, testBatchOpts{ts: time.Now().UnixMilli()})); r.err == nil || r.err.code != kerr.NotEnoughReplicas.Code {
		t.Fatalf("acks=all with ISR below min.insync.replicas: %+v", r)
	}
	// A batch whose HW wait ends while the ISR is below min.insync.replicas.
	if code := p.waitHW(context.Background(), 0); code != kerr.NotEnoughReplicasAfterAppend.Code {
		t.Fatalf("waitHW with a shrunk ISR: %v", kerr.ErrorForCode(code))
	}
}

// Follower truncation (KIP-101/279): a follower whose tail was written under an epoch the new
// leader never had truncates to where the logs diverge, rebuilds its producer state, and keeps
// the common prefix.
func TestFollowerTruncationByEpoch(t *testing.T) {
	p := memPartition(t, vfs.NewMemFS())
	defer p.close()
	// Epoch 0: offsets 0-4 (a producer's batches); epoch 1: offsets 5-9 (a tail the new leader lacks).
	for i := int32(0); i < 5; i++ {
		if r := p.appendClient(9, 1, testBatch(t, testBatchOpts{ts: time.Now().UnixMilli(), idempotent: true, pid: 7, seq: i})); r.err != nil {
			t.Fatal(r.err)
		}
	}
	if err := p.setLeadership(meta.Partition{Replicas: []int32{1}, ISR: []int32{1}, Leader: 1, LeaderEpoch: 1}); err != nil {
		t.Fatal(err)
	}
	for i := int32(5); i < 10; i++ {
		if r := p.appendClient(9, 1, testBatch(t, testBatchOpts{ts: time.Now().UnixMilli(), idempotent: true, pid: 7, seq: i})); r.err != nil {
			t.Fatal(r.err)
		}
	}
	latest, _ := p.log.LatestEpoch()
	if latest != 1 || p.log.EndOffset() != 10 {
		t.Fatalf("setup: epoch %d end %d", latest, p.log.EndOffset())
	}
	// Becomes a follower of a leader that knows epochs 0 and 2: for our epoch 1 it answers
	// (epoch 0, end 7) — it has 0-6 under epoch 0. Our own epoch 0 ends at 5: truncate to 5.
	if err := p.setLeadership(meta.Partition{Replicas: []int32{1, 2}, ISR: []int32{2}, Leader: 2, LeaderEpoch: 2}); err != nil {
		t.Fatal(err)
	}
	target, ok := p.truncationTarget(latest, 0, 7)
	if !ok || target != 5 {
		t.Fatalf("target %d %v, want 5", target, ok)
	}
	// An answer to a request sent under an older epoch is not applied.
	if err := p.truncateTo(target, 1); err != nil || p.log.EndOffset() != 10 {
		t.Fatalf("stale-epoch truncation applied: end %d, err %v", p.log.EndOffset(), err)
	}
	if err := p.truncateTo(target, 2); err != nil {
		t.Fatal(err)
	}
	if p.log.EndOffset() != 5 || p.HighWatermark() > 5 {
		t.Fatalf("after truncation: end %d hw %d", p.log.EndOffset(), p.HighWatermark())
	}
	// Producer state follows the log: seq 4 is the last one kept, seq 5 would be next.
	if c := p.producers.check(nil, 7, 0, 5, 5); c.errCode != 0 || c.dup {
		t.Fatalf("seq 5 after truncation: %+v", c)
	}
	if c := p.producers.check(nil, 7, 0, 4, 4); !c.dup {
		t.Fatalf("seq 4 should still be known: %+v", c)
	}
	// Same epoch known by both and nothing past the leader's end: no truncation.
	if _, ok := p.truncationTarget(0, 0, 5); ok {
		t.Fatal("truncation with nothing past the leader's end")
	}
}

// A replica fetch response applies only under the leadership it was fetched under: one from the
// old leader that arrives after this replica became leader (or after the epoch moved on) is
// dropped, so no old-epoch batch lands behind the new leader's epoch start (that batch would sit
// past the LEO the leader counts for its HW, and an idempotent retry of it would wait forever).
func TestFollowerDropsFetchResponseFromAnOlderLeadership(t *testing.T) {
	p := memPartition(t, vfs.NewMemFS())
	defer p.close()
	if err := p.setLeadership(meta.Partition{Replicas: []int32{1, 2}, ISR: []int32{1, 2}, Leader: 2, LeaderEpoch: 3}); err != nil {
		t.Fatal(err)
	}
	leader := memPartition(t, vfs.NewMemFS())
	defer leader.close()
	if err := leader.setLeadership(meta.Partition{Replicas: []int32{1, 2}, ISR: []int32{2}, Leader: 1, LeaderEpoch: 3}); err != nil {
		t.Fatal(err)
	}
	if r := leader.appendClient(9, 1, testBatch(t, testBatchOpts{ts: time.Now().UnixMilli()})); r.err != nil {
		t.Fatal(r.err)
	}
	batch := localLogBytes(t, leader)
	if err := p.appendFromLeader(batch, 1, 0, 2); err != nil || p.log.EndOffset() != 0 {
		t.Fatalf("response fetched under epoch 2 applied at epoch 3: end %d, err %v", p.log.EndOffset(), err)
	}
	if err := p.appendFromLeader(batch, 1, 0, 3); err != nil || p.log.EndOffset() != 1 {
		t.Fatalf("current-epoch response: end %d, err %v", p.log.EndOffset(), err)
	}
	// Now this replica leads (epoch 4): a late response fetched under epoch 3 is dropped.
	if err := p.setLeadership(meta.Partition{Replicas: []int32{1, 2}, ISR: []int32{1, 2}, Leader: 1, LeaderEpoch: 4}); err != nil {
		t.Fatal(err)
	}
	if err := p.appendFromLeader(batch, 2, 0, 3); err != nil || p.log.EndOffset() != 1 {
		t.Fatalf("late response applied to a leader: end %d, err %v", p.log.EndOffset(), err)
	}
}
