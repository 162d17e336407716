package meta

import (
	"context"
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
		}
		c.step(leaderSince)
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
