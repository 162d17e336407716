package meta

import (
	"sync/atomic"
	"testing"
	"time"
)

// fenced reports whether broker id is fenced in n's state.
func fenced(n *Node, id int32) bool {
	b, ok := n.State().Broker(id)
	return ok && b.Fenced
}

// A broker process that is gone (its Raft port refuses connections) is fenced as soon as its
// heartbeat is overdue, long before its session would expire — also when it was the controller
// (the new controller skips its grace period for it). The session timeout is 60 s here, so only the
// probe path can fence within the test's wait.
func TestDeadBrokerFencedByRefusedProbe(t *testing.T) {
	// Five voters: the quorum survives both deaths.
	nodes := openTCPNodes(t, freeAddrs(t, 5), 5, func(cfg *Config) { cfg.SessionTimeout = 60 * time.Second })
	ctx := ctxT(t)
	for id, n := range nodes {
		if err := n.WaitReady(ctx); err != nil {
			t.Fatal(err)
		}
		if _, err := n.RegisterBroker(ctx, BrokerRegistration{ID: id, Host: "127.0.0.1", Port: 9000 + id}); err != nil {
			t.Fatal(err)
		}
	}
	controller := func() *Node {
		var out *Node
		eventually(t, 30*time.Second, "a controller", func() bool {
			for _, n := range nodes {
				if n.IsController() {
					out = n
					return true
				}
			}
			return false
		})
		return out
	}
	// First a broker that is not the controller, then the controller itself.
	var victim *Node
	for _, n := range nodes {
		if !n.IsController() {
			victim = n
			break
		}
	}
	for round, pick := range []func() *Node{func() *Node { return victim }, controller} {
		v := pick()
		vid := v.NodeID()
		v.Close()
		delete(nodes, vid)
		var watch *Node
		for _, n := range nodes {
			watch = n
		}
		start := time.Now()
		eventually(t, 30*time.Second, "the dead broker fenced", func() bool { return fenced(watch, vid) })
		t.Logf("round %d: broker %d fenced %v after its process closed (session timeout 60 s)", round, vid, time.Since(start).Round(time.Millisecond))
		for id, n := range nodes {
			if fenced(n, id) || fenced(watch, id) {
				t.Fatalf("live broker %d fenced", id)
			}
		}
	}
}

// The probe alone never fences: a broker whose heartbeats keep arriving stays live although every
// probe says "refused", and a broker that stops heartbeating but whose probe is inconclusive (a
// paused process, a lossy link) waits for its session to expire.
func TestProbeNeedsAnOverdueHeartbeat(t *testing.T) {
	var refuse atomic.Bool
	refuse.Store(true)
	c := newTestCluster(t, 3, func(cfg *Config) {
		cfg.SessionTimeout = 60 * time.Second
		cfg.probe = func(string) bool { return refuse.Load() }
	})
	c.waitReady()
	c.registerAll()
	l := c.leader()
	time.Sleep(10 * c.nodes[1].cfg.HeartbeatInterval)
	for id := range c.nodes {
		if fenced(l, id) {
			t.Fatalf("broker %d fenced while heartbeating", id)
		}
	}
	// Inconclusive probe: a silent broker is not fenced before its session expires.
	refuse.Store(false)
	v := c.follower()
	v.hbPaused.Store(true)
	time.Sleep(20 * v.cfg.HeartbeatInterval)
	if fenced(c.leader(), v.NodeID()) {
		t.Fatal("broker fenced with heartbeats overdue but probes inconclusive, before its session expired")
	}
	// Refused: fenced now.
	refuse.Store(true)
	eventually(t, 30*time.Second, "the silent, refusing broker fenced", func() bool { return fenced(c.leader(), v.NodeID()) })
}

// A new controller fences a broker one session timeout after the last heartbeat it applied (as a
// follower too), not one session after its own election, but never sooner than the election
// grace: a broker it never heard from, or whose heartbeats the election gap held up, gets that
// long to reach it.
func TestSessionExpiryCountsHeartbeatsAppliedBeforeTheElection(t *testing.T) {
	c := &controller{n: &Node{cfg: Config{SessionTimeout: 6 * time.Second, HeartbeatInterval: 250 * time.Millisecond}}}
	if g := c.electionGrace(); g != 2*time.Second {
		t.Fatalf("election grace %v, want a third of the session (2 s)", g)
	}
	elected := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	for _, tc := range []struct {
		what  string
		heard time.Time
		want  time.Time
	}{
		{"paused controller: last heartbeat 1 s before the election", elected.Add(-time.Second), elected.Add(5 * time.Second)},
		{"heard long before the election: the grace", elected.Add(-10 * time.Second), elected.Add(2 * time.Second)},
		{"never heard", time.Time{}, elected.Add(2 * time.Second)},
		{"heard after the election", elected.Add(3 * time.Second), elected.Add(9 * time.Second)},
	} {
		if got := c.sessionExpiry(tc.heard, elected); !got.Equal(tc.want) {
			t.Errorf("%s: fenced at election %+v, want %+v", tc.what, got.Sub(elected), tc.want.Sub(elected))
		}
	}
	// Short sessions: the grace is at least four heartbeats, at most the session.
	c.n.cfg = Config{SessionTimeout: 600 * time.Millisecond, HeartbeatInterval: 200 * time.Millisecond}
	if g := c.electionGrace(); g != 600*time.Millisecond {
		t.Fatalf("grace %v, want the session (600 ms)", g)
	}
}
