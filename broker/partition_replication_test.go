package broker

import (
	"context"
	"slices"
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

// KIP-903 on the leader: a follower's fetches carry its broker epoch. A fetch from an older
// incarnation than meta's live one is NOT_LEADER_OR_FOLLOWER and moves nothing; a fetch from a
// newer one (the follower restarted, here with an empty log) makes the leader forget what it knew
// of the previous process, so the follower is proposed for the ISR again only once its own fetches
// show it caught up, and only with the epoch meta lists it live at.
func TestLeaderResetsARestartedFollower(t *testing.T) {
	p := memPartition(t, vfs.NewMemFS())
	defer p.close()
	if err := p.setLeadership(meta.Partition{Replicas: []int32{1, 2}, ISR: []int32{1}, Leader: 1, LeaderEpoch: 1}); err != nil {
		t.Fatal(err)
	}
	if r := p.appendClient(9, -1, testBatch(t, testBatchOpts{records: 3, ts: time.Now().UnixMilli()})); r.err != nil {
		t.Fatal(r.err)
	}
	live := map[int32]int64{1: 10, 2: 100}
	eligible := func(id int32, epoch int64) bool { e, ok := live[id]; return ok && (epoch == -1 || e == epoch) }
	lag := 10 * time.Second
	fetch := func(epoch, offset int64) int16 {
		t.Helper()
		if code := p.noteReplicaEpoch(2, epoch, live[2]); code != 0 {
			return code
		}
		return p.readForFollower(2, offset, 1<<20, true).err
	}
	want := func(what string, isr []int32, epochs []int64) {
		t.Helper()
		got, gotEpochs, _, _, _ := p.desiredISR(p.now(), lag, eligible)
		if !slices.Equal(got, isr) || !slices.Equal(gotEpochs, epochs) {
			t.Fatalf("%s: desired ISR %v epochs %v, want %v %v", what, got, gotEpochs, isr, epochs)
		}
	}
	// Incarnation 100 fetches to the end: it may join, with its epoch for meta's check.
	if code := fetch(100, 3); code != 0 {
		t.Fatalf("fetch: %v", kerr.ErrorForCode(code))
	}
	want("caught up at epoch 100", []int32{1, 2}, []int64{-1, 100})

	// The follower restarts with an empty log: meta lists it live at 200 (and out of the ISR).
	live[2] = 200
	want("old evidence, new registration", []int32{1}, []int64{-1})
	// The old process, still fetching, is fenced and changes nothing.
	if code := fetch(100, 3); code != kerr.NotLeaderForPartition.Code {
		t.Fatalf("fetch from the replaced incarnation: %v, want NOT_LEADER_OR_FOLLOWER", kerr.ErrorForCode(code))
	}
	// The new process fetches from 0: the leader forgets the old position and caught-up time.
	if code := fetch(200, 0); code != 0 {
		t.Fatalf("fetch at the new epoch: %v", kerr.ErrorForCode(code))
	}
	p.stateMu.RLock()
	leo, caught := p.followerLEO[2], p.caughtUp[2]
	p.stateMu.RUnlock()
	if leo != 0 || !caught.IsZero() {
		t.Fatalf("after the restart the leader has follower LEO %d, caught up at %v; want 0 and never", leo, caught)
	}
	want("restarted, behind", []int32{1}, []int64{-1})
	// A fetch at an epoch below one already seen (an older process) is fenced as well, even when
	// this broker's meta has not learnt the new registration.
	live[2] = -1
	if code := fetch(100, 3); code != kerr.NotLeaderForPartition.Code {
		t.Fatalf("fetch below the epoch seen: %v", kerr.ErrorForCode(code))
	}
	live[2] = 200
	// Caught up again: it may rejoin, at its new epoch.
	if code := fetch(200, 3); code != 0 {
		t.Fatalf("fetch: %v", kerr.ErrorForCode(code))
	}
	want("restarted, caught up", []int32{1, 2}, []int64{-1, 200})

	// In the ISR when it restarts (meta has not removed it yet): its new position holds the HW
	// and the leader proposes the ISR without it.
	if err := p.setLeadership(meta.Partition{Replicas: []int32{1, 2}, ISR: []int32{1, 2}, Leader: 1, LeaderEpoch: 1, PartitionEpoch: 1}); err != nil {
		t.Fatal(err)
	}
	if code := fetch(200, 3); code != 0 || p.HighWatermark() != 3 {
		t.Fatalf("fetch %d, HW %d", code, p.HighWatermark())
	}
	live[2] = 300
	if code := fetch(300, 0); code != 0 {
		t.Fatalf("fetch at epoch 300: %v", kerr.ErrorForCode(code))
	}
	if r := p.appendClient(9, -1, testBatch(t, testBatchOpts{ts: time.Now().UnixMilli()})); r.err != nil {
		t.Fatal(r.err)
	}
	if hw := p.HighWatermark(); hw != 3 {
		t.Fatalf("HW %d moved past what the restarted ISR member has", hw)
	}
	want("ISR member restarted", []int32{1}, []int64{-1})
}
