package meta

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/hashicorp/raft"
)

// testCluster is an in-process cluster on raft.InmemTransport. Links can be cut per node (both Raft
// traffic and proposal forwarding), nodes killed and restarted from their data dirs.
type testCluster struct {
	t      testing.TB
	net    *inprocNet
	voters []Peer
	dirs   map[int32]string
	nodes  map[int32]*Node
	trans  map[int32]*raft.InmemTransport
	tweak  func(*Config)
}

func addrOf(id int32) raft.ServerAddress { return raft.ServerAddress(fmt.Sprintf("node-%d", id)) }

func newTestCluster(t testing.TB, voters int, tweak func(*Config)) *testCluster {
	c := &testCluster{t: t, net: newInprocNet(), dirs: map[int32]string{}, nodes: map[int32]*Node{},
		trans: map[int32]*raft.InmemTransport{}, tweak: tweak}
	for i := 1; i <= voters; i++ {
		c.voters = append(c.voters, Peer{ID: int32(i), Addr: string(addrOf(int32(i)))})
	}
	for i := 1; i <= voters; i++ {
		c.start(int32(i))
	}
	t.Cleanup(func() {
		for id := range c.nodes {
			c.kill(id)
		}
	})
	return c
}

// start opens node id (fresh or from its existing dir) and connects it to every running node.
func (c *testCluster) start(id int32) *Node {
	c.t.Helper()
	if c.dirs[id] == "" {
		c.dirs[id] = filepath.Join(c.t.TempDir(), fmt.Sprint("n", id))
	}
	_, tr := raft.NewInmemTransport(addrOf(id))
	cfg := fastConfig(id, c.dirs[id])
	cfg.Transport = tr
	cfg.Voters = c.voters
	cfg.forwarder = c.net
	if c.tweak != nil {
		c.tweak(&cfg)
	}
	n, err := Open(cfg)
	if err != nil {
		c.t.Fatalf("open node %d: %v", id, err)
	}
	c.nodes[id], c.trans[id] = n, tr
	c.net.setCut(addrOf(id), false)
	for oid, ot := range c.trans {
		if oid != id {
			tr.Connect(addrOf(oid), ot)
			ot.Connect(addrOf(id), tr)
		}
	}
	return n
}

// kill stops node id abruptly (as far as the others can tell).
func (c *testCluster) kill(id int32) {
	n := c.nodes[id]
	if n == nil {
		return
	}
	delete(c.nodes, id)
	tr := c.trans[id]
	delete(c.trans, id)
	for _, ot := range c.trans {
		ot.Disconnect(addrOf(id))
	}
	tr.DisconnectAll()
	if err := n.Close(); err != nil {
		c.t.Logf("close node %d: %v", id, err)
	}
}

// cut isolates node id from every other node; heal reconnects it.
func (c *testCluster) cut(id int32) {
	c.trans[id].DisconnectAll()
	for oid, ot := range c.trans {
		if oid != id {
			ot.Disconnect(addrOf(id))
		}
	}
	c.net.setCut(addrOf(id), true)
}

func (c *testCluster) heal(id int32) {
	tr := c.trans[id]
	for oid, ot := range c.trans {
		if oid != id {
			tr.Connect(addrOf(oid), ot)
			ot.Connect(addrOf(id), tr)
		}
	}
	c.net.setCut(addrOf(id), false)
}

func (c *testCluster) leader() *Node {
	c.t.Helper()
	var out *Node
	eventually(c.t, 30*time.Second, "a leader", func() bool {
		for _, n := range c.nodes {
			if n.IsController() {
				out = n
				return true
			}
		}
		return false
	})
	return out
}

// onLeader runs op on the current leader, again on the next one if leadership moves meanwhile
// (elections happen on a loaded CI machine with the tests' short timeouts).
func (c *testCluster) onLeader(what string, op func(l *Node) error) {
	c.t.Helper()
	var err error
	for i := 0; i < 20; i++ {
		if err = op(c.leader()); err == nil || !errors.Is(err, ErrNotController) {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	if err != nil {
		c.t.Fatalf("%s: %v", what, err)
	}
}

func (c *testCluster) follower() *Node {
	l := c.leader()
	for _, n := range c.nodes {
		if n != l {
			return n
		}
	}
	c.t.Fatal("no follower")
	return nil
}

func (c *testCluster) waitReady() {
	c.t.Helper()
	for id, n := range c.nodes {
		if err := n.WaitReady(ctxT(c.t)); err != nil {
			c.t.Fatalf("node %d: %v", id, err)
		}
	}
}

// converged waits until every running node has the same digest, and returns it.
func (c *testCluster) converged() string {
	c.t.Helper()
	var d string
	eventually(c.t, 30*time.Second, "all nodes on the same digest", func() bool {
		d = ""
		for _, n := range c.nodes {
			nd := n.State().Digest()
			if d == "" {
				d = nd
			} else if nd != d {
				return false
			}
		}
		return true
	})
	return d
}

func (c *testCluster) registerAll() {
	c.t.Helper()
	for id, n := range c.nodes {
		if _, err := n.RegisterBroker(ctxT(c.t), BrokerRegistration{ID: id, Host: "127.0.0.1", Port: 9000 + id, Rack: fmt.Sprint("r", id%3)}); err != nil {
			c.t.Fatalf("register %d: %v", id, err)
		}
	}
}

func eventually(t testing.TB, d time.Duration, what string, ok func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !ok() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", d, what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func TestCluster3KillLeaderCutNodeRestartAll(t *testing.T) {
	c := newTestCluster(t, 3, nil)
	c.waitReady()
	c.registerAll()
	ctx := ctxT(t)
	// Writes through a follower are forwarded to the leader and applied locally before returning.
	f := c.follower()
	top, err := f.CreateTopic(ctx, TopicSpec{Name: "t", Partitions: 6, ReplicationFactor: 3})
	if err != nil {
		t.Fatal(err)
	}
	if got, ok := f.State().Topic("t"); !ok || got.ID != top.ID {
		t.Fatal("follower does not see its own write")
	}
	first := c.converged()

	// Kill the Raft leader: a new one is elected and takes writes.
	old := c.leader()
	oldID := old.NodeID()
	c.kill(oldID)
	nl := c.leader()
	if nl.NodeID() == oldID {
		t.Fatal("dead node still leader")
	}
	if _, err := nl.CreateTopic(ctx, TopicSpec{Name: "t2", Partitions: 2, ReplicationFactor: 2}); err != nil {
		t.Fatal(err)
	}
	if c.converged() == first {
		t.Fatal("state did not change")
	}
	// The dead node's broker is fenced after its session timeout and loses its leaderships.
	eventually(t, 30*time.Second, "dead broker fenced", func() bool {
		b, _ := nl.State().Broker(oldID)
		return b.Fenced
	})
	tp, _ := nl.State().Topic("t")
	for _, p := range tp.Partitions {
		if p.Leader == oldID || slices.Contains(p.ISR, oldID) {
			t.Fatalf("fenced broker still leads or is in ISR: %+v", p)
		}
	}
	// Restart it from disk: it catches up and, re-registering, is unfenced.
	n := c.start(oldID)
	if err := n.WaitReady(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := n.RegisterBroker(ctx, BrokerRegistration{ID: oldID, Host: "127.0.0.1", Port: 9000 + oldID}); err != nil {
		t.Fatal(err)
	}
	eventually(t, 30*time.Second, "restarted broker unfenced", func() bool {
		b, _ := c.leader().State().Broker(oldID)
		return !b.Fenced
	})
	c.converged()

	// Cut a follower off; the majority keeps committing; healed, it catches up.
	cutID := c.follower().NodeID()
	c.cut(cutID)
	if _, err := c.leader().CreateTopic(ctx, TopicSpec{Name: "t3", Partitions: 1, ReplicationFactor: 1}); err != nil {
		t.Fatal(err)
	}
	if _, ok := c.nodes[cutID].State().Topic("t3"); ok {
		t.Fatal("cut-off node saw a write")
	}
	c.heal(cutID)
	eventually(t, 30*time.Second, "healed node catches up", func() bool {
		_, ok := c.nodes[cutID].State().Topic("t3")
		return ok
	})
	before := c.converged()

	// Restart every node from disk.
	for _, id := range []int32{1, 2, 3} {
		c.kill(id)
	}
	for _, id := range []int32{1, 2, 3} {
		c.start(id)
	}
	c.waitReady()
	after := c.converged()
	st := c.leader().State()
	for _, name := range []string{"t", "t2", "t3"} {
		if _, ok := st.Topic(name); !ok {
			t.Fatalf("topic %s lost across restart", name)
		}
	}
	if after != before {
		// Brokers may have been fenced while everything was down; compare the topics only then.
		t.Logf("digest changed across full restart (expected only if brokers were fenced in between)")
	}
}

func TestCluster5KillLeaderAndNonvoterCatchesUpBySnapshot(t *testing.T) {
	c := newTestCluster(t, 5, func(cfg *Config) {
		cfg.TrailingLogs = 4
		cfg.SnapshotThreshold = 16
	})
	c.waitReady()
	c.registerAll()
	ctx := ctxT(t)
	for i := 0; i < 10; i++ {
		if _, err := c.follower().CreateTopic(ctx, TopicSpec{Name: fmt.Sprint("topic-", i), Partitions: 3, ReplicationFactor: 3}); err != nil {
			t.Fatal(err)
		}
	}
	old := c.leader().NodeID()
	c.kill(old)
	l := c.leader()
	if err := l.CommitOffsets(ctx, "g", []OffsetCommit{{Topic: "topic-1", Partition: 2, Offset: 99}}); err != nil {
		t.Fatal(err)
	}
	// Snapshot and compact the log on every member (whichever leads later), so a new member can only
	// catch up through InstallSnapshot.
	c.converged()
	for id, n := range c.nodes {
		if err := n.Snapshot(); err != nil && !errors.Is(err, raft.ErrNothingNewToSnapshot) {
			t.Fatalf("snapshot on %d: %v", id, err)
		}
		if fi, _ := n.st.wal.FirstIndex(); fi <= 1 {
			t.Fatalf("node %d: log not compacted after snapshot: first index %d", id, fi)
		}
	}
	for i := 0; i < 10; i++ {
		if _, err := l.AllocateProducerIDs(ctx, l.NodeID(), 100); err != nil {
			t.Fatal(err)
		}
	}
	// Node 6 is not an initial voter: it starts empty, does not bootstrap, and waits to be added.
	n6 := c.start(6)
	if n6.State().Index() != 0 {
		t.Fatal("non-voter bootstrapped itself")
	}
	c.onLeader("add non-voter", func(l *Node) error { return l.AddNonvoter(ctx, 6, string(addrOf(6))) })
	c.start(old) // the old leader comes back too
	d := c.converged()
	if n6.fsm.restores.Load() == 0 {
		t.Fatal("non-voter caught up without installing a snapshot")
	}
	if o, ok := n6.State().CommittedOffset("g", "topic-1", 2); !ok || o.Offset != 99 {
		t.Fatalf("non-voter lacks committed offset: %+v", o)
	}
	if n6.State().Digest() != d {
		t.Fatal("digest mismatch")
	}
	// The non-voter reads locally and forwards writes like any member.
	if _, err := n6.CreateTopic(ctx, TopicSpec{Name: "from-nonvoter", Partitions: 1, ReplicationFactor: 1}); err != nil {
		t.Fatal(err)
	}
	c.converged()
	cfgF := l.raft.GetConfiguration()
	if err := cfgF.Error(); err != nil {
		t.Fatal(err)
	}
	for _, s := range cfgF.Configuration().Servers {
		if s.ID == serverID(6) && s.Suffrage != raft.Nonvoter {
			t.Fatalf("node 6 is %v", s.Suffrage)
		}
	}
}

func TestBrokerStopsHeartbeatingLosesLeaderships(t *testing.T) {
	c := newTestCluster(t, 3, nil)
	c.waitReady()
	c.registerAll()
	ctx := ctxT(t)
	l := c.leader()
	if _, err := l.CreateTopic(ctx, TopicSpec{Name: "t", Partitions: 9, ReplicationFactor: 3}); err != nil {
		t.Fatal(err)
	}
	// A broker that is not the controller and leads partitions.
	victim := c.follower()
	vid := victim.NodeID()
	watch := c.nodes[l.NodeID()]
	events, cancel := watch.Subscribe()
	defer cancel()
	before, _ := watch.State().Topic("t")
	led := 0
	for _, p := range before.Partitions {
		if p.Leader == vid {
			led++
		}
	}
	if led == 0 {
		t.Fatalf("broker %d leads nothing: %+v", vid, before.Partitions)
	}
	start := time.Now()
	victim.hbPaused.Store(true)
	var moved time.Duration
	eventually(t, 30*time.Second, "leaderships moved", func() bool {
		tp, _ := watch.State().Topic("t")
		for _, p := range tp.Partitions {
			if p.Leader == vid {
				return false
			}
		}
		moved = time.Since(start)
		return true
	})
	t.Logf("session timeout %v: leaderships of broker %d moved after %v", victim.cfg.SessionTimeout, vid, moved)
	after, _ := watch.State().Topic("t")
	for i, p := range after.Partitions {
		old := before.Partitions[i]
		if old.Leader != vid {
			continue
		}
		if p.LeaderEpoch <= old.LeaderEpoch {
			t.Fatalf("partition %d: leader epoch %d not above %d", i, p.LeaderEpoch, old.LeaderEpoch)
		}
		if !slices.Contains(old.ISR, p.Leader) {
			t.Fatalf("partition %d: new leader %d was not in the ISR %v", i, p.Leader, old.ISR)
		}
	}
	// The change was pushed, not polled.
	sawPartition := false
	timeout := time.After(5 * time.Second)
	for !sawPartition {
		select {
		case e := <-events:
			sawPartition = e.Kind == PartitionChanged && e.Topic == "t"
		case <-timeout:
			t.Fatal("no PartitionChanged event")
		}
	}
	// Heartbeats resume: the broker is unfenced and eligible again (it may rejoin ISRs).
	victim.hbPaused.Store(false)
	eventually(t, 30*time.Second, "unfenced", func() bool {
		b, _ := watch.State().Broker(vid)
		return !b.Fenced
	})
	tp, _ := watch.State().Topic("t")
	p := tp.Partitions[0]
	lb, _ := watch.State().Broker(p.Leader)
	leaderNode := c.nodes[p.Leader]
	isr := append(slices.Clone(p.ISR), vid)
	if slices.Contains(p.ISR, vid) {
		t.Fatalf("fenced broker was left in the ISR: %+v", p)
	}
	np, err := leaderNode.AlterPartition(ctx, tp.ID, 0, p.LeaderEpoch, p.PartitionEpoch, isr)
	if err != nil {
		t.Fatalf("rejoin ISR (leader %d epoch %d): %v", p.Leader, lb.Epoch, err)
	}
	if !slices.Contains(np.ISR, vid) || np.PartitionEpoch != p.PartitionEpoch+1 {
		t.Fatalf("%+v", np)
	}
	c.converged()
}

func TestNewControllerGracePeriod(t *testing.T) {
	// After a leader change, live brokers are not fenced: the new controller counts their sessions from
	// the heartbeats it applied as a follower, and gives each at least the election grace to reach it.
	c := newTestCluster(t, 3, func(cfg *Config) {
		cfg.SessionTimeout = 2 * time.Second
		cfg.HeartbeatInterval = 200 * time.Millisecond
	})
	c.waitReady()
	c.registerAll()
	old := c.leader().NodeID()
	c.kill(old)
	l := c.leader()
	deadline := time.Now().Add(time.Second)
	for time.Now().Before(deadline) {
		for _, b := range l.State().Brokers() {
			if b.Fenced && b.ID != old {
				t.Fatalf("live broker %d fenced during the grace period", b.ID)
			}
		}
		time.Sleep(20 * time.Millisecond)
	}
	eventually(t, 30*time.Second, "dead broker fenced", func() bool {
		b, _ := l.State().Broker(old)
		return b.Fenced
	})
	for _, b := range l.State().Brokers() {
		if b.ID != old && b.Fenced {
			t.Fatalf("live broker %d fenced", b.ID)
		}
	}
	_ = context.Background
}

func TestControlledShutdownMovesLeadershipsAtOnce(t *testing.T) {
	c := newTestCluster(t, 3, func(cfg *Config) {
		cfg.SessionTimeout = 30 * time.Second
		cfg.HeartbeatInterval = 100 * time.Millisecond
	})
	c.waitReady()
	c.registerAll()
	ctx := ctxT(t)
	l := c.leader()
	if _, err := l.CreateTopic(ctx, TopicSpec{Name: "t", Partitions: 6, ReplicationFactor: 3}); err != nil {
		t.Fatal(err)
	}
	victim := c.follower()
	vid := victim.NodeID()
	before, _ := l.State().Topic("t")
	if err := victim.ControlledShutdown(ctx); err != nil {
		t.Fatal(err)
	}
	// No waiting for the (30 s) session timeout: done when the call returns.
	after, _ := victim.State().Topic("t")
	for i, p := range after.Partitions {
		if p.Leader == vid || slices.Contains(p.ISR, vid) {
			t.Fatalf("partition %d still on the stopped broker: %+v", i, p)
		}
		if before.Partitions[i].Leader == vid && p.LeaderEpoch <= before.Partitions[i].LeaderEpoch {
			t.Fatalf("partition %d: epoch not bumped", i)
		}
	}
	time.Sleep(300 * time.Millisecond) // heartbeats would have unfenced it by now if they had not stopped
	if b, _ := l.State().Broker(vid); !b.Fenced {
		t.Fatal("broker unfenced by a heartbeat after controlled shutdown")
	}
	ms, err := l.Members()
	if err != nil || len(ms) != 3 {
		t.Fatalf("members %v %v", ms, err)
	}
	c.onLeader("remove server", func(l *Node) error { return l.RemoveServer(ctx, vid) })
	if ms, _ := c.leader().Members(); len(ms) != 2 {
		t.Fatalf("members after remove: %v", ms)
	}
}

func TestAutoLeaderRebalanceAfterBrokerReturns(t *testing.T) {
	c := newTestCluster(t, 3, func(cfg *Config) { cfg.LeaderImbalanceCheckInterval = 300 * time.Millisecond })
	c.waitReady()
	c.registerAll()
	ctx := ctxT(t)
	if _, err := c.leader().CreateTopic(ctx, TopicSpec{Name: "t", Partitions: 6, ReplicationFactor: 3}); err != nil {
		t.Fatal(err)
	}
	victim := c.follower()
	vid := victim.NodeID()
	if err := victim.ControlledShutdown(ctx); err != nil {
		t.Fatal(err)
	}
	// It comes back and its partitions' leaders put it back in their ISRs.
	if _, err := victim.RegisterBroker(ctx, BrokerRegistration{ID: vid, Host: "127.0.0.1", Port: 9000 + vid}); err != nil {
		t.Fatal(err)
	}
	tp, _ := victim.State().Topic("t")
	for i, p := range tp.Partitions {
		if slices.Contains(p.ISR, vid) {
			continue
		}
		leader := c.nodes[p.Leader]
		if _, err := leader.AlterPartition(ctx, tp.ID, int32(i), p.LeaderEpoch, p.PartitionEpoch, p.Replicas); err != nil {
			t.Fatalf("partition %d: %v", i, err)
		}
	}
	eventually(t, 30*time.Second, "preferred replicas lead again", func() bool {
		tp, _ := victim.State().Topic("t")
		for _, p := range tp.Partitions {
			if p.Leader != p.Replicas[0] {
				return false
			}
		}
		return true
	})
}
