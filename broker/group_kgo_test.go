package broker

import (
	"context"
	"fmt"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
)

// newGroupTestBroker is a broker whose group timings suit tests: a short initial rebalance delay and
// session timeouts of a second or two accepted.
func newGroupTestBroker(t testing.TB, opts ...func(*Config)) *Broker {
	t.Helper()
	return newTestBroker(t, append([]func(*Config){groupTestConfig}, opts...)...)
}

// groupTestConfig shortens the group timings of a broker Config (the group.* broker configs).
func groupTestConfig(c *Config) {
	c.GroupInitialRebalanceDelayMs = 100
	c.GroupMinSessionTimeoutMs = 500
	c.GroupConsumerHeartbeatIntervalMs = 100
	c.GroupConsumerSessionTimeoutMs = 2000
}

// groupOpts are kgo options for a group member with short timings.
func groupOpts(group, topic string) []kgo.Opt {
	return []kgo.Opt{
		kgo.ConsumerGroup(group), kgo.ConsumeTopics(topic),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
		kgo.SessionTimeout(2 * time.Second), kgo.HeartbeatInterval(100 * time.Millisecond),
		kgo.RebalanceTimeout(5 * time.Second),
		kgo.FetchMaxWait(100 * time.Millisecond),
	}
}

// ledger records which consumer processed which record, to check "every record once".
type ledger struct {
	mu    sync.Mutex
	seen  map[string]int // "p/offset" → times processed
	total int
	cond  *sync.Cond
}

func newLedger() *ledger {
	l := &ledger{seen: map[string]int{}}
	l.cond = sync.NewCond(&l.mu)
	return l
}

func (l *ledger) add(r *kgo.Record) {
	l.mu.Lock()
	l.seen[fmt.Sprintf("%d/%d", r.Partition, r.Offset)]++
	l.total++
	l.cond.Broadcast()
	l.mu.Unlock()
}

// waitDistinct waits until n distinct records were processed (or the context ends).
func (l *ledger) waitDistinct(ctx context.Context, n int) bool {
	stop := context.AfterFunc(ctx, func() { l.mu.Lock(); l.cond.Broadcast(); l.mu.Unlock() })
	defer stop()
	l.mu.Lock()
	defer l.mu.Unlock()
	for len(l.seen) < n {
		if ctx.Err() != nil {
			return false
		}
		l.cond.Wait()
	}
	return true
}

func (l *ledger) dups() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	d := 0
	for _, n := range l.seen {
		d += n - 1
	}
	return d
}

// groupMember is one kgo consumer processing records into a ledger. Offsets are committed by hand:
// after each processed poll, and in OnPartitionsRevoked, with BlockRebalanceOnPoll so that a rebalance
// never happens between processing a record and committing it. Then no record may be processed twice.
type groupMember struct {
	cl   *kgo.Client
	stop context.CancelFunc
	done chan struct{}

	mu         sync.Mutex
	owned      map[int32]bool // partitions currently assigned
	processed  int
	lostEvents int
	commitErrs int
	assigned   chan struct{} // closed at the first non-empty assignment
}

func (m *groupMember) snapshot() (owned []int32, processed int) {
	m.mu.Lock()
	defer m.mu.Unlock()
	for p := range m.owned {
		owned = append(owned, p)
	}
	return owned, m.processed
}

func startMember(t *testing.T, b *Broker, l *ledger, extra ...kgo.Opt) *groupMember {
	t.Helper()
	return startMemberSeeds(t, []string{b.Addr()}, l, true, extra...)
}

// startMemberSeeds: strict members fail the test on a lost partition or a refused commit; others
// count them (lostEvents, commitErrs) for tests where the client may legitimately give up (a dead
// coordinator).
func startMemberSeeds(t *testing.T, seeds []string, l *ledger, strict bool, extra ...kgo.Opt) *groupMember {
	t.Helper()
	m := &groupMember{done: make(chan struct{}), owned: map[int32]bool{}, assigned: make(chan struct{})}
	var once sync.Once
	opts := append([]kgo.Opt{
		kgo.SeedBrokers(seeds...),
		kgo.DisableAutoCommit(), kgo.BlockRebalanceOnPoll(),
		kgo.OnPartitionsRevoked(func(ctx context.Context, c *kgo.Client, revoked map[string][]int32) {
			if err := c.CommitUncommittedOffsets(ctx); err != nil {
				m.failed(t, strict, "commit on revoke: %v", err)
			}
			m.mu.Lock()
			for _, ps := range revoked {
				for _, p := range ps {
					delete(m.owned, p)
				}
			}
			m.mu.Unlock()
		}),
		kgo.OnPartitionsLost(func(ctx context.Context, c *kgo.Client, lost map[string][]int32) {
			m.mu.Lock()
			m.lostEvents++
			m.owned = map[int32]bool{}
			m.mu.Unlock()
			if strict {
				t.Errorf("partitions lost: %v", lost)
			}
		}),
		kgo.OnPartitionsAssigned(func(ctx context.Context, c *kgo.Client, added map[string][]int32) {
			m.mu.Lock()
			for _, ps := range added {
				for _, p := range ps {
					m.owned[p] = true
				}
			}
			if len(m.owned) > 0 {
				once.Do(func() { close(m.assigned) })
			}
			m.mu.Unlock()
		}),
	}, extra...)
	cl, err := kgo.NewClient(opts...)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	m.cl, m.stop = cl, cancel
	t.Cleanup(func() { // a failed test must not leave callbacks running after it ended
		cancel()
		<-m.done
		cl.Close()
	})
	go func() {
		defer close(m.done)
		for ctx.Err() == nil {
			fs := cl.PollRecords(ctx, 100)
			fs.EachRecord(l.add)
			m.mu.Lock()
			m.processed += len(fs.Records())
			m.mu.Unlock()
			if len(fs.Records()) > 0 {
				if err := cl.CommitUncommittedOffsets(context.Background()); err != nil && ctx.Err() == nil {
					m.failed(t, strict, "commit: %v", err)
				}
			}
			cl.AllowRebalance()
		}
	}()
	return m
}

func (m *groupMember) failed(t *testing.T, strict bool, format string, args ...any) {
	m.mu.Lock()
	m.commitErrs++
	m.mu.Unlock()
	if strict {
		t.Errorf(format, args...)
	}
}

// leave stops polling, commits what was processed, and closes the client (LeaveGroup).
func (m *groupMember) leave(t *testing.T) {
	m.stop()
	<-m.done
	if err := m.cl.CommitUncommittedOffsets(context.Background()); err != nil {
		t.Errorf("final commit: %v", err)
	}
	m.cl.AllowRebalance()
	m.cl.Close()
}

func produceRange(t *testing.T, cl *kgo.Client, topic string, from, to int) {
	t.Helper()
	for i := from; i < to; i++ {
		cl.Produce(context.Background(), &kgo.Record{Topic: topic, Key: []byte(strconv.Itoa(i)), Value: []byte(strconv.Itoa(i))}, func(_ *kgo.Record, err error) {
			if err != nil {
				t.Errorf("produce: %v", err)
			}
		})
	}
	if err := cl.Flush(testCtx(t)); err != nil {
		t.Fatal(err)
	}
}

// TestGroupBalancersJoinLeave runs a consumer group with each client-side balancer (and KIP-848 when
// served): two members start, a third joins while records are produced, the first leaves while records
// are produced; every record is processed exactly once (commits are taken before each rebalance).
func TestGroupBalancersJoinLeave(t *testing.T) {
	cases := []struct {
		name string
		opts []kgo.Opt
	}{
		{"range", []kgo.Opt{kgo.Balancers(kgo.RangeBalancer())}},
		{"roundrobin", []kgo.Opt{kgo.Balancers(kgo.RoundRobinBalancer())}},
		{"sticky", []kgo.Opt{kgo.Balancers(kgo.StickyBalancer())}},
		{"cooperative-sticky", []kgo.Opt{kgo.Balancers(kgo.CooperativeStickyBalancer())}},
	}
	if _, ok := apiHandlers[68]; ok {
		cases = append(cases, struct {
			name string
			opts []kgo.Opt
		}{"kip848", []kgo.Opt{kgo.Balancers(kgo.RangeBalancer()), kgo.ServerSideBalancer()}})
	}
	b := newGroupTestBroker(t)
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			topic, group := "bal-"+tc.name, "g-"+tc.name
			createTopic(t, b, topic, 6, nil)
			prod := newTestClient(t, b, kgo.DefaultProduceTopic(topic))
			l := newLedger()
			opts := append(groupOpts(group, topic), tc.opts...)
			ctx := testCtx(t)

			m1 := startMember(t, b, l, opts...)
			m2 := startMember(t, b, l, opts...)
			produceRange(t, prod, topic, 0, 300)
			if !l.waitDistinct(ctx, 300) {
				t.Fatalf("first phase: processed %d of 300", len(l.seen))
			}
			// The group runs the protocol asked for: classic for client-side balancers, KIP-848 for the
			// server-side one.
			want := groupTypeClassic
			if tc.name == "kip848" {
				want = groupTypeConsumer
			}
			g := b.groups.getGroup(group, false)
			g.mu.Lock()
			typ := g.typ
			g.mu.Unlock()
			if typ != want {
				t.Fatalf("group type %d, want %d", typ, want)
			}
			// A member joins while records keep arriving.
			var wg sync.WaitGroup
			wg.Add(1)
			go func() { defer wg.Done(); produceRange(t, prod, topic, 300, 600) }()
			m3 := startMember(t, b, l, opts...)
			select {
			case <-m3.assigned:
			case <-ctx.Done():
				t.Fatal("the joining member was never assigned a partition")
			}
			wg.Wait()
			if !l.waitDistinct(ctx, 600) {
				t.Fatalf("after join: processed %d of 600", len(l.seen))
			}
			// A member leaves while records keep arriving.
			wg.Add(1)
			go func() { defer wg.Done(); produceRange(t, prod, topic, 600, 900) }()
			m1.leave(t)
			wg.Wait()
			if !l.waitDistinct(ctx, 900) {
				t.Fatalf("after leave: processed %d of 900", len(l.seen))
			}
			// The two remaining members end up owning all six partitions between them, without overlap
			// (the last assignment may still be on its way when the records are all processed).
			var o2, o3 []int32
			var n3 int
			for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(10 * time.Millisecond) {
				o2, _ = m2.snapshot()
				o3, n3 = m3.snapshot()
				owners := map[int32]int{}
				for _, p := range append(o2, o3...) {
					owners[p]++
				}
				if len(owners) == 6 && len(o2)+len(o3) == 6 {
					break
				}
				if time.Now().After(deadline) {
					t.Fatalf("after the leave: member 2 owns %v, member 3 owns %v; want the 6 partitions split", o2, o3)
				}
			}
			if n3 == 0 {
				t.Fatal("the member that joined processed nothing")
			}
			m2.leave(t)
			m3.leave(t)
			if d := l.dups(); d != 0 {
				t.Fatalf("%d records processed twice", d)
			}
			if l.total != 900 {
				t.Fatalf("processed %d records, want 900", l.total)
			}
		})
	}
}

// A static member (group.instance.id) that crashes — closes without leaving, as kgo does for static
// members — and restarts under the same instance id takes its partitions back without a rebalance and
// resumes from its last commit: nothing lost, nothing processed twice.
func TestStaticMemberCrashAndRestart(t *testing.T) {
	t.Run("classic", func(t *testing.T) { testStaticRestart(t, false) })
	t.Run("kip848", func(t *testing.T) { testStaticRestart(t, true) })
}

// epochOf is the group's generation (classic) or group epoch (KIP-848) and its member count.
func epochOf(g *group) (int32, int) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.typ == groupTypeConsumer {
		return g.cg.groupEpoch, len(g.cg.members)
	}
	return g.generation, len(g.members)
}

func testStaticRestart(t *testing.T, kip848 bool) {
	b := newGroupTestBroker(t)
	topic, group := "static-kgo", "g-static-kgo"
	createTopic(t, b, topic, 4, nil)
	prod := newTestClient(t, b, kgo.DefaultProduceTopic(topic))
	l := newLedger()
	ctx := testCtx(t)
	member := func(inst string) *groupMember {
		opts := append(groupOpts(group, topic), kgo.InstanceID(inst), kgo.Balancers(kgo.RangeBalancer()))
		if kip848 {
			opts = append(opts, kgo.ServerSideBalancer())
		}
		return startMember(t, b, l, opts...)
	}
	ms := map[string]*groupMember{"a": member("a"), "b": member("b")}
	produceRange(t, prod, topic, 0, 200)
	if !l.waitDistinct(ctx, 200) {
		t.Fatalf("processed %d of 200", len(l.seen))
	}
	g := b.groups.getGroup(group, false)
	follower := "b"
	if !kip848 { // restart a follower: a classic static leader's return triggers a rebalance by design
		g.mu.Lock()
		if lm := g.members[g.leader]; lm != nil && lm.instanceID == "b" {
			follower = "a"
		}
		g.mu.Unlock()
	}
	gen, _ := epochOf(g)

	crashed := ms[follower]
	crashed.stop()
	<-crashed.done
	crashed.cl.Close() // static: classic sends no LeaveGroup; KIP-848 leaves with epoch -2
	produceRange(t, prod, topic, 200, 400)
	ms[follower] = member(follower)
	select {
	case <-ms[follower].assigned:
	case <-ctx.Done():
		t.Fatal("the restarted static member got no partitions")
	}
	if !l.waitDistinct(ctx, 400) {
		t.Fatalf("processed %d of 400", len(l.seen))
	}
	if genAfter, n := epochOf(g); genAfter != gen || n != 2 {
		t.Fatalf("generation/epoch %d → %d with %d members: the static restart caused a rebalance", gen, genAfter, n)
	}
	for _, m := range ms {
		m.leave(t)
	}
	if d := l.dups(); d != 0 {
		t.Fatalf("%d records processed twice", d)
	}
}
