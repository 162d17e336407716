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

// countingStore is an offsetStore that counts proposals and can hold those of one group.
type countingStore struct {
	mu      sync.Mutex
	calls   int
	groups  map[string]int
	last    map[string][]meta.OffsetCommit
	holdOf  string
	gate    chan struct{} // proposals of group holdOf wait for it to be closed
	entered chan struct{}
	fail    error
}

func (s *countingStore) CommitOffsets(ctx context.Context, group string, offsets []meta.OffsetCommit) error {
	if group == s.holdOf && s.gate != nil {
		s.entered <- struct{}{}
		<-s.gate
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.calls++
	s.groups[group]++
	s.last[group] = offsets
	return s.fail
}

// Commits of a group that arrive while its entry is in flight are merged into one next entry; other
// groups are not held up meanwhile.
func TestCommitBatcherCoalesces(t *testing.T) {
	st := &countingStore{groups: map[string]int{}, last: map[string][]meta.OffsetCommit{}, holdOf: "g",
		gate: make(chan struct{}), entered: make(chan struct{}, 1)}
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
	go commit("g", 0, 1)
	<-st.entered // g's first entry is in flight and held
	if !cb.hasPending("g") {
		t.Fatal("an unanswered commit is not pending")
	}
	const queued = 40
	for i := 0; i < queued; i++ {
		wg.Add(1)
		go commit("g", int32(i%3), int64(100+i))
	}
	// Another group commits (and is answered) while g is held.
	if err := cb.commit("other", []meta.OffsetCommit{{Topic: "t", Offset: 5}}); err != nil {
		t.Fatal(err)
	}
	// Wait until all of g's commits are queued behind the held entry.
	for {
		cb.mu.Lock()
		n := 0
		if q := cb.pending["g"]; q != nil {
			n = len(q.waiters)
		}
		cb.mu.Unlock()
		if n == queued {
			break
		}
		time.Sleep(time.Millisecond)
	}
	close(st.gate)
	wg.Wait()
	if errs.Load() != 0 {
		t.Fatalf("%d commits failed", errs.Load())
	}
	if st.groups["g"] != 2 || st.groups["other"] != 1 {
		t.Fatalf("proposals per group %v; want g: 2 (1 + %d merged), other: 1", st.groups, queued)
	}
	if offs := st.last["g"]; len(offs) != 3 {
		t.Fatalf("merged entry has %d offsets, want one per partition (3)", len(offs))
	}
	if cb.hasPending("g") || cb.commits.Load() != 1+queued+1 {
		t.Fatalf("pending after every commit was answered (answered %d)", cb.commits.Load())
	}
	// A failed proposal fails every commit it carried.
	st.fail = errors.New("no quorum")
	if err := cb.commit("x", []meta.OffsetCommit{{Topic: "t"}}); err == nil {
		t.Fatal("a failed proposal was acknowledged")
	}
}

// multiStore adds the multi-group capability to countingStore.
type multiStore struct {
	*countingStore
	entries [][]string // groups of each multi-group entry
}

func (s *multiStore) CommitOffsetsBatch(ctx context.Context, groups []meta.GroupOffsets) ([]error, error) {
	var names []string
	for _, g := range groups {
		names = append(names, g.Group)
	}
	if s.gate != nil && len(s.entries) == 0 {
		s.entered <- struct{}{}
		<-s.gate
	}
	s.mu.Lock()
	s.entries = append(s.entries, names)
	s.mu.Unlock()
	errs := make([]error, len(groups))
	for i, g := range groups {
		if g.Group == "bad" {
			errs[i] = errors.New("unknown topic")
		}
	}
	return errs, nil
}

// With a store that commits many groups in one entry, commits of many groups arriving while an entry
// is in flight all go in the next single entry; a group refused inside it fails alone.
func TestCommitBatcherMultiGroup(t *testing.T) {
	st := &multiStore{countingStore: &countingStore{groups: map[string]int{}, last: map[string][]meta.OffsetCommit{},
		gate: make(chan struct{}), entered: make(chan struct{}, 1)}}
	cb := newCommitBatcher(st)
	if cb.multi == nil {
		t.Fatal("multi-group capability not detected")
	}
	var wg sync.WaitGroup
	errs := map[string]error{}
	var mu sync.Mutex
	commit := func(group string) {
		defer wg.Done()
		err := cb.commit(group, []meta.OffsetCommit{{Topic: "t", Offset: 1}})
		mu.Lock()
		errs[group] = err
		mu.Unlock()
	}
	wg.Add(1)
	go commit("first")
	<-st.entered
	const groups = 100
	for i := 0; i < groups; i++ {
		wg.Add(1)
		go commit(fmt.Sprintf("g%d", i))
	}
	wg.Add(1)
	go commit("bad")
	for {
		cb.mu.Lock()
		n := len(cb.pending)
		cb.mu.Unlock()
		if n == groups+1 {
			break
		}
		time.Sleep(time.Millisecond)
	}
	close(st.gate)
	wg.Wait()
	if len(st.entries) != 2 || len(st.entries[1]) != groups+1 {
		t.Fatalf("entries: %d (second with %d groups); want 2, the second with all %d", len(st.entries), len(st.entries[len(st.entries)-1]), groups+1)
	}
	if st.calls != 0 {
		t.Fatalf("%d single-group proposals in multi-group mode", st.calls)
	}
	if errs["bad"] == nil || errs["g7"] != nil || errs["first"] != nil {
		t.Fatalf("per-group results: bad=%v g7=%v first=%v", errs["bad"], errs["g7"], errs["first"])
	}
}

// The coordinator choice is deterministic, ignores fenced brokers, spreads groups evenly, and when a
// broker goes away only its groups move (rendezvous hashing).
func TestPickCoordinator(t *testing.T) {
	brokers := []meta.Broker{{ID: 1}, {ID: 2}, {ID: 3}, {ID: 4}}
	const n = 4000
	count := map[int32]int{}
	before := map[string]int32{}
	for i := 0; i < n; i++ {
		g := fmt.Sprintf("group-%d", i)
		br, ok := pickCoordinator(brokers, g)
		if !ok {
			t.Fatal("no coordinator among live brokers")
		}
		if again, _ := pickCoordinator([]meta.Broker{brokers[3], brokers[1], brokers[0], brokers[2]}, g); again.ID != br.ID {
			t.Fatalf("%s: %d, then %d with the brokers listed in another order", g, br.ID, again.ID)
		}
		before[g] = br.ID
		count[br.ID]++
	}
	for id, c := range count {
		if c < n/4*8/10 || c > n/4*12/10 {
			t.Fatalf("broker %d coordinates %d of %d groups: uneven %v", id, c, n, count)
		}
	}
	fenced := []meta.Broker{{ID: 1}, {ID: 2, Fenced: true}, {ID: 3}, {ID: 4}}
	moved := 0
	for g, was := range before {
		now, _ := pickCoordinator(fenced, g)
		if now.ID == 2 {
			t.Fatalf("%s coordinated by fenced broker 2", g)
		}
		if was != 2 && now.ID != was {
			t.Fatalf("%s moved from %d to %d though broker %d is alive", g, was, now.ID, was)
		}
		if now.ID != was {
			moved++
		}
	}
	if moved != count[2] {
		t.Fatalf("%d groups moved, want exactly broker 2's %d", moved, count[2])
	}
	if _, ok := pickCoordinator([]meta.Broker{{ID: 1, Fenced: true}}, "g"); ok {
		t.Fatal("a coordinator was chosen with no live broker")
	}
}

// The broker's batcher uses meta's multi-group command: concurrent commits of many groups share entries.
func TestBrokerBatcherUsesMultiGroupEntries(t *testing.T) {
	b := newGroupTestBroker(t)
	createTopic(t, b, "t", 1, nil)
	gc := b.groups
	if gc.commits.multi == nil {
		t.Fatal("meta's CommitOffsetsBatch not detected")
	}
	e0 := gc.commits.entries.Load()
	var wg sync.WaitGroup
	const n = 200
	for i := 0; i < n; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := gc.commits.commit(fmt.Sprintf("m%d", i), []meta.OffsetCommit{{Topic: "t", Offset: int64(i), LeaderEpoch: -1}}); err != nil {
				t.Error(err)
			}
		}()
	}
	wg.Wait()
	st := b.meta.State()
	for i := 0; i < n; i++ {
		if o, ok := st.CommittedOffset(fmt.Sprintf("m%d", i), "t", 0); !ok || o.Offset != int64(i) {
			t.Fatalf("group m%d: %+v %v", i, o, ok)
		}
	}
	if entries := gc.commits.entries.Load() - e0; entries >= n {
		t.Fatalf("%d Raft entries for %d concurrent commits of distinct groups", entries, n)
	}
	// A group refused inside a shared entry (unknown partition) fails alone.
	var bad, good error
	wg.Add(2)
	go func() {
		defer wg.Done()
		bad = gc.commits.commit("bad", []meta.OffsetCommit{{Topic: "t", Partition: 9}})
	}()
	go func() {
		defer wg.Done()
		good = gc.commits.commit("good", []meta.OffsetCommit{{Topic: "t", Offset: 1}})
	}()
	wg.Wait()
	if bad == nil || good != nil {
		t.Fatalf("bad: %v, good: %v", bad, good)
	}
}

// A member that lost its JoinGroup answer and rejoins with the same metadata gets the current
// generation back at once while the group completes the rebalance (the leader with the members), as
// Kafka; no new rebalance starts.
func TestRejoinDuringCompletingRebalance(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		gc := bareCoordinator(0)
		g := newGroup(gc, "g")
		a := <-joinAsync(g, "", 10*time.Second, 10*time.Second)
		if s, _, _ := stateOf(g); s != groupCompletingRebalance {
			t.Fatalf("state %v", s)
		}
		again := <-joinAsync(g, a.MemberID, 10*time.Second, 10*time.Second)
		if again.ErrorCode != 0 || again.Generation != a.Generation || len(again.Members) != 1 {
			t.Fatalf("rejoin answered %v gen %d members %d; want the current generation %d", kerr.ErrorForCode(again.ErrorCode), again.Generation, len(again.Members), a.Generation)
		}
		if s, gen, _ := stateOf(g); s != groupCompletingRebalance || gen != a.Generation {
			t.Fatalf("rejoin changed the group: %v gen %d", s, gen)
		}
		g.mu.Lock()
		g.shutdownLocked(kerr.NotCoordinator.Code)
		g.mu.Unlock()
	})
}
