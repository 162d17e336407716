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
