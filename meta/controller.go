package meta

import (
	"context"
	"errors"
	"net"
	"slices"
	"sync"
	"syscall"
	"time"

	"github.com/hashicorp/raft"
)

// controller runs on every node but acts only while its node is the Raft leader. It keeps, in local
// memory, when each broker was last heard from (the apply of a registration or heartbeat on this
// node, leader or follower), and fences brokers whose session expired. A node that just became leader
// counts sessions from the heartbeats it applied as a follower, with a short grace period after its
// election (sessionExpiry).
type controller struct {
	n *Node

	mu       sync.Mutex
	lastSeen map[int32]time.Time

	lastRebalance time.Time           // controller goroutine only
	lastProbe     map[int32]time.Time // controller goroutine only

	// probe reports whether a broker's Raft address refuses connections (nothing listens there:
	// the process is gone). Tests replace it.
	probe func(addr string) bool
}

func newController(n *Node) *controller {
	probe := n.cfg.probe
	if probe == nil {
		probe = refusesConnections
	}
	return &controller{n: n, lastSeen: map[int32]time.Time{}, lastProbe: map[int32]time.Time{}, probe: probe}
}

// refusesConnections dials addr once: true only for ECONNREFUSED, the kernel's answer when no
// process listens on the port. A timeout, a reset or any other error proves nothing (a paused or
// overloaded process, a lossy network) and returns false.
func refusesConnections(addr string) bool {
	c, err := net.DialTimeout("tcp", addr, probeTimeout)
	if err == nil {
		c.Close()
		return false
	}
	return errors.Is(err, syscall.ECONNREFUSED)
}

// probeTimeout bounds one liveness probe; probes of several brokers run in parallel.
const probeTimeout = 200 * time.Millisecond

func (c *controller) heard(ids []int32) {
	now := time.Now()
	c.mu.Lock()
	for _, id := range ids {
		c.lastSeen[id] = now
	}
	c.mu.Unlock()
}

// tick is how often sessions are checked: a 20th of the session timeout, within [10ms, 100ms]
// (the fast path below fences a dead broker within a tick or two of its missed heartbeat).
func (c *controller) tick() time.Duration {
	return min(max(c.n.cfg.SessionTimeout/20, 10*time.Millisecond), 100*time.Millisecond)
}

// overdue is how long past its last heartbeat a broker is probed: one heartbeat interval plus a
// margin for the heartbeat's own Raft commit.
func (c *controller) overdue() time.Duration {
	return c.n.cfg.HeartbeatInterval + max(c.n.cfg.HeartbeatInterval/2, 100*time.Millisecond)
}

func (c *controller) run() {
	defer c.n.wg.Done()
	t := time.NewTicker(c.tick())
	defer t.Stop()
	var leaderSince time.Time
	leader := false
	for {
		select {
		case <-c.n.closing:
			return
		case <-t.C:
		}
		if c.n.raft.State() != raft.Leader {
			leader = false
			continue
		}
		if !leader {
			leader, leaderSince = true, time.Now()
			c.lastRebalance = leaderSince
		}
		c.step(leaderSince)
		if iv := c.n.cfg.LeaderImbalanceCheckInterval; iv > 0 && time.Since(c.lastRebalance) >= iv {
			c.lastRebalance = time.Now()
			c.rebalance()
		}
	}
}

// sessionExpiry is when a broker last heard at heard (the apply, on this node, of its latest
// heartbeat or registration; zero if never) is fenced by a controller elected at leaderSince:
// SessionTimeout after it was last heard, but no sooner than electionGrace after the election.
//
// Every node applies every heartbeat, so a new controller knows from its own applies how recent each
// broker's heartbeats were; it need not restart every session from its election (Kafka's new active
// controller does: a paused or dead controller's own broker then took election + a full session to
// fence, about 7.4 s instead of 6 s with the defaults). The grace covers the election gap, when no
// heartbeat can commit: a live broker gets electionGrace to reach the new controller, several of its
// heartbeat intervals, even if the gap outlasted its session.
func (c *controller) sessionExpiry(heard, leaderSince time.Time) time.Time {
	return later(heard.Add(c.n.cfg.SessionTimeout), leaderSince.Add(c.electionGrace()))
}

// electionGrace: a third of the session timeout, at least four heartbeat intervals, at most the session.
func (c *controller) electionGrace() time.Duration {
	return min(max(c.n.cfg.SessionTimeout/3, 4*c.n.cfg.HeartbeatInterval), c.n.cfg.SessionTimeout)
}

func later(a, b time.Time) time.Time {
	if a.After(b) {
		return a
	}
	return b
}

// step fences brokers that are gone. Two ways:
//
//   - Session expiry (Kafka's broker.session.timeout.ms): unheard for SessionTimeout, and for at
//     least electionGrace since this node's election (sessionExpiry). Covers every failure,
//     including a paused process or a lossy link, at the cost of the full timeout.
//   - Fast path: a broker whose heartbeat is overdue (unheard for a heartbeat interval and a margin,
//     by the heartbeats this node applied, leader or not) and whose Raft address refuses
//     connections is fenced at once, grace period or not. A refused connection means no process
//     listens there: the broker died (kill -9, crash, OOM) or closed. Load cannot cause it (a slow
//     or paused broker still accepts: its kernel completes the handshake), so this adds no false
//     fencing; a network that drops packets times the probe out and leaves it to the session
//     timeout. Both conditions are needed: a broker whose heartbeats still arrive is never fenced,
//     even if a firewall rejects this node's connections to it.
func (c *controller) step(leaderSince time.Time) {
	n := c.n
	st := n.State()
	ctx, cancel := context.WithTimeout(context.Background(), n.cfg.SessionTimeout)
	defer cancel()
	if st.ClusterID() == "" {
		if _, err := n.propose(ctx, &cmdInitCluster{ClusterID: newClusterID()}, false); err != nil {
			n.log.Warn("controller: could not set the cluster id", "err", err)
		}
		return
	}
	now := time.Now()
	var expired, suspects []Broker
	for _, b := range st.Brokers() {
		if b.Fenced {
			continue
		}
		c.mu.Lock()
		heard := c.lastSeen[b.ID]
		c.mu.Unlock()
		switch {
		case now.After(c.sessionExpiry(heard, leaderSince)):
			n.log.Info("controller: broker session expired; fencing", "broker", b.ID, "epoch", b.Epoch, "last_heard", now.Sub(heard))
			expired = append(expired, b)
		case b.ID != n.cfg.NodeID && b.RaftAddr != "" && now.Sub(heard) > c.overdue() && now.Sub(c.lastProbe[b.ID]) >= probeTimeout:
			c.lastProbe[b.ID] = now
			suspects = append(suspects, b)
		}
	}
	if len(suspects) > 0 {
		refused := make([]bool, len(suspects))
		var wg sync.WaitGroup
		for i, b := range suspects {
			wg.Add(1)
			go func() { defer wg.Done(); refused[i] = c.probe(b.RaftAddr) }()
		}
		wg.Wait()
		for i, b := range suspects {
			if refused[i] {
				c.mu.Lock()
				heard := c.lastSeen[b.ID]
				c.mu.Unlock()
				n.log.Info("controller: broker missed its heartbeat and its Raft address refuses connections; fencing",
					"broker", b.ID, "epoch", b.Epoch, "last_heard", time.Since(heard).Round(time.Millisecond))
				expired = append(expired, b)
			}
		}
	}
	for _, b := range expired {
		if _, err := n.propose(ctx, &cmdFenceBroker{ID: b.ID, Epoch: b.Epoch}, false); err != nil {
			n.log.Warn("controller: fencing failed", "broker", b.ID, "err", err)
		}
	}
}

// newClusterID: 16 random bytes rendered as Kafka renders cluster ids (URL-safe base64, 22 chars).
func newClusterID() string {
	var id TopicID
	copy(id[:], randomBytes(16))
	return id.String()
}

// rebalance proposes a preferred leader election for every partition whose preferred replica is live,
// in sync and not leading (Kafka's auto.leader.rebalance; without its per-broker imbalance threshold:
// any such partition is moved back, since leadership away from the preferred replica is never wanted).
func (c *controller) rebalance() {
	n := c.n
	st := n.State()
	for _, t := range st.Topics() {
		var parts []int32
		for i, p := range t.Partitions {
			pref := p.Replicas[0]
			if b, ok := st.Broker(pref); ok && !b.Fenced && p.Leader != pref && slices.Contains(p.ISR, pref) {
				parts = append(parts, int32(i))
			}
		}
		if len(parts) == 0 {
			continue
		}
		ctx, cancel := context.WithTimeout(context.Background(), n.cfg.SessionTimeout)
		_, err := n.ElectPreferredLeaders(ctx, t.Name, parts)
		cancel()
		if err != nil {
			n.log.Warn("controller: preferred leader election failed", "topic", t.Name, "err", err)
		} else {
			n.log.Info("controller: moved leadership back to preferred replicas", "topic", t.Name, "partitions", len(parts))
		}
	}
}
