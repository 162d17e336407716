package meta

import (
	"context"
	"crypto/rand"
	"errors"
	"testing"
	"time"
)

// A subscriber that does not read never blocks publishing, and later receives each distinct event once.
func TestSubscriberCoalescesAndNeverBlocks(t *testing.T) {
	var h hub
	ch, cancel := h.subscribe()
	defer cancel()
	done := make(chan struct{})
	go func() {
		for i := 0; i < 10000; i++ {
			h.publish([]Event{{Kind: PartitionChanged, Topic: "t", Partition: int32(i % 3)}, {Kind: BrokerChanged, BrokerID: 1}})
		}
		close(done)
	}()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("publish blocked on a reader that does not read")
	}
	seen := map[Event]int{}
	for quiet := false; !quiet; {
		select {
		case e := <-ch:
			seen[e]++
		case <-time.After(300 * time.Millisecond):
			quiet = true
		}
	}
	if len(seen) != 4 {
		t.Fatalf("distinct events %v", seen)
	}
	// At most the channel buffer plus one pending copy of each: far fewer than the 20000 published.
	total := 0
	for _, n := range seen {
		total += n
	}
	if total > 64+4 {
		t.Fatalf("received %d events, expected coalescing", total)
	}
	cancel()
	if _, ok := <-ch; ok {
		// drain whatever is buffered; the channel must end up closed
		for range ch {
		}
	}
}

// A proposal retried with the same bytes (what proposeBytes does after ErrLeadershipLost) is applied once.
func TestRetriedProposalAppliedOnceOnNode(t *testing.T) {
	n := openTestNode(t, nil)
	ctx, cancelCtx := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancelCtx()
	var id reqID
	rand.Read(id[:])
	data := encodeCommand(id, &cmdAllocateProducerIDs{BrokerID: 1, Count: 1000})
	r1, err := n.proposeBytes(ctx, data)
	if err != nil {
		t.Fatal(err)
	}
	r2, err := n.proposeBytes(ctx, data)
	if err != nil {
		t.Fatal(err)
	}
	if r1.First != r2.First || n.State().NextProducerID() != r1.First+1000 {
		t.Fatalf("first %d/%d next %d", r1.First, r2.First, n.State().NextProducerID())
	}
	if r2.Index <= r1.Index {
		t.Fatal("the retry was not a second log entry")
	}
}

func TestOversizedCommandRefusedBeforeProposing(t *testing.T) {
	cfg := fastConfig(1, t.TempDir())
	cfg.RaftBind = "127.0.0.1:0"
	n, err := Open(cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer n.Close()
	ctx := ctxT(t)
	if err := n.WaitReady(ctx); err != nil {
		t.Fatal(err)
	}
	big := make([]OffsetCommit, 1)
	big[0] = OffsetCommit{Topic: "t", Metadata: string(make([]byte, maxCommandSize))}
	idx := n.raft.LastIndex()
	err = n.CommitOffsets(ctx, "g", big)
	if !errors.Is(err, ErrInvalidRequest) || n.raft.LastIndex() != idx {
		t.Fatalf("err %v, last index %d -> %d", err, idx, n.raft.LastIndex())
	}
}

// Concurrent proposals on the leader share Raft entries (multi entries) and each gets its own result.
func TestConcurrentProposalsShareEntries(t *testing.T) {
	n := openTestNode(t, nil)
	ctx := ctxT(t)
	start := n.raft.LastIndex()
	const workers, each = 64, 20
	firsts := make(chan int64, workers*each)
	errs := make(chan error, workers)
	for w := 0; w < workers; w++ {
		go func() {
			for i := 0; i < each; i++ {
				f, err := n.AllocateProducerIDs(ctx, 1, 10)
				if err != nil {
					errs <- err
					return
				}
				firsts <- f
			}
			errs <- nil
		}()
	}
	for w := 0; w < workers; w++ {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
	close(firsts)
	seen := map[int64]bool{}
	for f := range firsts {
		if seen[f] || f%10 != 0 {
			t.Fatalf("block %d handed out twice or misaligned", f)
		}
		seen[f] = true
	}
	if len(seen) != workers*each || n.State().NextProducerID() != int64(workers*each*10) {
		t.Fatalf("%d blocks, next %d", len(seen), n.State().NextProducerID())
	}
	entries := n.raft.LastIndex() - start
	t.Logf("%d proposals in %d log entries", workers*each, entries)
	if entries >= workers*each {
		t.Fatalf("%d proposals took %d entries: no batching", workers*each, entries)
	}
}
