package broker

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/sediment-io/sediment/meta"
)

// bareCoordinator is a coordinator without a broker behind it, to drive groups' timers inside a
// synctest bubble (fake clock: a 10 s session timeout takes no real time).
func bareCoordinator(delay time.Duration) *groupCoordinator {
	gc := &groupCoordinator{b: &Broker{log: slog.New(slog.DiscardHandler)}, groups: map[string]*group{}}
	cfg := defaultGroupConfig()
	cfg.InitialRebalanceDelay = delay
	gc.cfg.Store(&cfg)
	return gc
}

// joinAsync sends a JoinGroup to g and returns where its answer arrives.
func joinAsync(g *group, memberID string, session, rebalance time.Duration) <-chan *kmsg.JoinGroupResponse {
	req := joinReq(g.id, memberID, nil, "t")
	req.SetVersion(3) // no KIP-394 round trip
	req.SessionTimeoutMillis, req.RebalanceTimeoutMillis = int32(session.Milliseconds()), int32(rebalance.Milliseconds())
	out := make(chan *kmsg.JoinGroupResponse, 1)
	g.mu.Lock()
	r, ch := g.joinLocked(joinArgs{req: req, clientID: "c"})
	g.mu.Unlock()
	if r != nil {
		out <- r
		return out
	}
	return ch
}

func stateOf(g *group) (groupState, int32, int) {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.state, g.generation, len(g.members)
}

// The initial rebalance delay is extended by each new member, up to the rebalance timeout, so that a
// starting group of many members rebalances once.
func TestInitialRebalanceDelay(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		gc := bareCoordinator(3 * time.Second)
		g := newGroup(gc, "g")
		start := time.Now()
		a := joinAsync(g, "", 10*time.Second, 60*time.Second)
		time.Sleep(2 * time.Second)
		b := joinAsync(g, "", 10*time.Second, 60*time.Second) // extends the window by another 3 s
		ra, rb := <-a, <-b
		if el := time.Since(start); el != 5*time.Second+time.Second { // 3 s window, extended once by 3 s
			t.Fatalf("join completed after %v, want 6s (3 s delay extended once)", el)
		}
		if ra.ErrorCode != 0 || rb.ErrorCode != 0 || ra.Generation != 1 || rb.Generation != 1 {
			t.Fatalf("joins: %v/%v gen %d/%d", ra.ErrorCode, rb.ErrorCode, ra.Generation, rb.Generation)
		}
		g.mu.Lock()
		g.shutdownLocked(kerr.NotCoordinator.Code)
		g.mu.Unlock()
	})
}

// A member that stops heartbeating is removed after its session timeout and the group rebalances; a
// member that does not rejoin within the rebalance timeout is dropped from the new generation.
func TestSessionAndRebalanceTimeouts(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		gc := bareCoordinator(0)
		g := newGroup(gc, "g")
		a := <-joinAsync(g, "", 30*time.Second, 20*time.Second) // session longer than the rebalance timeout
		if a.ErrorCode != 0 || a.Generation != 1 {
			t.Fatalf("first join: %v gen %d", kerr.ErrorForCode(a.ErrorCode), a.Generation)
		}
		bch := joinAsync(g, "", 10*time.Second, 20*time.Second) // triggers a rebalance; a never rejoins
		start := time.Now()
		b := <-bch
		if el := time.Since(start); el != 20*time.Second {
			t.Fatalf("rebalance completed after %v, want the 20 s rebalance timeout", el)
		}
		if b.ErrorCode != 0 || b.Generation != 2 || b.LeaderID != b.MemberID || len(b.Members) != 1 {
			t.Fatalf("second generation: %+v", b)
		}
		if _, _, n := stateOf(g); n != 1 {
			t.Fatalf("%d members, want the silent one dropped", n)
		}
		// A heartbeat from the dropped member is refused.
		g.mu.Lock()
		code := g.heartbeatLocked(heartbeatReq("g", a.MemberID, 1, nil))
		g.mu.Unlock()
		if code != kerr.UnknownMemberID.Code {
			t.Fatalf("dropped member's heartbeat: %v", kerr.ErrorForCode(code))
		}
		// b syncs, then goes silent: the session timeout (10 s) empties the group.
		g.mu.Lock()
		sr, sch := g.syncLocked(syncReq("g", b.MemberID, 2, map[string][]byte{b.MemberID: []byte("x")}))
		g.mu.Unlock()
		if sr == nil {
			sr = <-sch
		}
		if sr == nil || sr.ErrorCode != 0 {
			t.Fatalf("sync: %+v", sr)
		}
		time.Sleep(9 * time.Second)
		if s, _, n := stateOf(g); s != groupStable || n != 1 {
			t.Fatalf("before the session timeout: %v with %d members", s, n)
		}
		time.Sleep(2 * time.Second)
		if s, gen, n := stateOf(g); s != groupEmpty || n != 0 || gen != 3 {
			t.Fatalf("after the session timeout: %v gen %d with %d members, want Empty gen 3", s, gen, n)
		}
	})
}

// Heartbeats keep a member alive past its session timeout.
func TestHeartbeatsKeepMemberAlive(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		gc := bareCoordinator(0)
		g := newGroup(gc, "g")
		a := <-joinAsync(g, "", 3*time.Second, 3*time.Second)
		g.mu.Lock()
		g.syncLocked(syncReq("g", a.MemberID, a.Generation, nil))
		g.mu.Unlock()
		for i := 0; i < 10; i++ {
			time.Sleep(time.Second)
			g.mu.Lock()
			code := g.heartbeatLocked(heartbeatReq("g", a.MemberID, a.Generation, nil))
			g.mu.Unlock()
			if code != 0 {
				t.Fatalf("heartbeat %d: %v", i, kerr.ErrorForCode(code))
			}
		}
		if s, _, n := stateOf(g); s != groupStable || n != 1 {
			t.Fatalf("%v with %d members", s, n)
		}
		g.mu.Lock()
		g.shutdownLocked(kerr.NotCoordinator.Code)
		g.mu.Unlock()
	})
}

// countingStore is an offsetStore that counts proposals and can hold them.
type countingStore struct {
	mu      sync.Mutex
	calls   int
	groups  map[string]int
	last    map[string][]meta.OffsetCommit
	gate    chan struct{} // when non-nil, each call waits for it to be closed
	entered chan struct{}
	fail    error
}

func (s *countingStore) CommitOffsets(ctx context.Context, group string, offsets []meta.OffsetCommit) error {
	if s.entered != nil {
		s.entered <- struct{}{}
	}
	if s.gate != nil {
		<-s.gate
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.calls++
	s.groups[group]++
	s.last[group] = offsets
	return s.fail
}

// Commits that arrive while a batch is in flight are coalesced: per group into one entry, and all of
// them into the next batch.
func TestCommitBatcherCoalesces(t *testing.T) {
	st := &countingStore{groups: map[string]int{}, last: map[string][]meta.OffsetCommit{}, gate: make(chan struct{}), entered: make(chan struct{}, 1000)}
	cb := newCommitBatcher(st)
	var wg sync.WaitGroup
	var errs atomic.Int32
	commit := func(group string, p int32, off int64) {
		defer wg.Done()
		if err := cb.commit(group, []meta.OffsetCommit{{Topic: "t", Partition: p, Offset: off}}); err != nil {
			errs.Add(1)
		}
	}
	wg.Add(1)
	go commit("first", 0, 1)
	<-st.entered // the first batch is in flight and held
	if !cb.hasPending("first") {
		t.Fatal("an unanswered commit is not pending")
	}
	const groups, perGroup = 50, 4
	for g := 0; g < groups; g++ {
		for i := 0; i < perGroup; i++ {
			wg.Add(1)
			go commit(fmt.Sprintf("g%d", g), int32(i%2), int64(i))
		}
	}
	// Wait until all 200 commits are queued behind the held batch.
	for {
		cb.mu.Lock()
		n := 0
		for _, gcm := range cb.pending {
			n += len(gcm.waiters)
		}
		cb.mu.Unlock()
		if n == groups*perGroup {
			break
		}
		time.Sleep(time.Millisecond)
	}
	close(st.gate)
	wg.Wait()
	if errs.Load() != 0 {
		t.Fatalf("%d commits failed", errs.Load())
	}
	if st.calls != 1+groups || cb.batches.Load() != 2 {
		t.Fatalf("%d proposals in %d batches for %d commits; want %d proposals in 2 batches", st.calls, cb.batches.Load(), 1+groups*perGroup, 1+groups)
	}
	for g := 0; g < groups; g++ {
		if offs := st.last[fmt.Sprintf("g%d", g)]; len(offs) != 2 {
			t.Fatalf("group g%d: merged entry has %d offsets, want 2 partitions", g, len(offs))
		}
	}
	if cb.hasPending("g1") {
		t.Fatal("pending after every commit was answered")
	}
	// A failed proposal fails every commit it carried.
	st.fail = errors.New("no quorum")
	st.gate = nil
	if err := cb.commit("x", []meta.OffsetCommit{{Topic: "t"}}); err == nil {
		t.Fatal("a failed proposal was acknowledged")
	}
}
