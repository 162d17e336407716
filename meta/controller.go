package meta

import (
	"context"
	"slices"
	"sync"
	"time"

	"github.com/hashicorp/raft"
)

// controller runs on every node but acts only while its node is the Raft leader. It keeps, in local
// memory, when each broker was last heard from (the apply of a registration or heartbeat on this
// node), and fences brokers whose session expired. A node that just became leader grants every broker
// a grace period of one session timeout from that moment, since it cannot know how recent the heartbeats
// it applied as a follower were.
type controller struct {
	n *Node

	mu       sync.Mutex
	lastSeen map[int32]time.Time

	lastRebalance time.Time // controller goroutine only
}

func newController(n *Node) *controller {
	return &controller{n: n, lastSeen: map[int32]time.Time{}}
}

func (c *controller) heard(ids []int32) {
	now := time.Now()
	c.mu.Lock()
	for _, id := range ids {
		c.lastSeen[id] = now
	}
	c.mu.Unlock()
}

// tick is how often sessions are checked: a 20th of the session timeout, within [10ms, 250ms].
func (c *controller) tick() time.Duration {
	return min(max(c.n.cfg.SessionTimeout/20, 10*time.Millisecond), 250*time.Millisecond)
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
	for _, b := range st.Brokers() {
		if b.Fenced {
			continue
		}
		c.mu.Lock()
		seen := c.lastSeen[b.ID]
		c.mu.Unlock()
		if seen.Before(leaderSince) {
			seen = leaderSince
		}
		if now.Sub(seen) <= n.cfg.SessionTimeout {
			continue
		}
		n.log.Info("controller: broker session expired; fencing", "broker", b.ID, "epoch", b.Epoch, "last_heard", now.Sub(seen))
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
