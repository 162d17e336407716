package meta

import (
	"errors"
	"fmt"
	"testing"
)

// A follower's state trails the committed log by up to a heartbeat. CatchUp must bring it up to at
// least what was committed when it was called, so that a dry run (validateOnly) through that node
// refuses a topic the leader has just created. Twenty rounds: without the catch-up, replication
// would have to win the race every time.
func TestCatchUpSeesWhatTheLeaderCommitted(t *testing.T) {
	c := newTestCluster(t, 3, nil)
	c.waitReady()
	c.registerAll()
	ctx := ctxT(t)
	f := c.follower()
	lagged := 0
	for i := 0; i < 20; i++ {
		name := fmt.Sprintf("t%d", i)
		c.onLeader("create "+name, func(l *Node) error {
			_, err := l.CreateTopic(ctx, TopicSpec{Name: name, Partitions: 1, ReplicationFactor: 3})
			if errors.Is(err, ErrTopicExists) {
				return nil // a retried create after a leadership move
			}
			return err
		})
		if _, ok := f.State().Topic(name); !ok {
			lagged++
		}
		if err := f.CatchUp(ctx); err != nil {
			t.Fatal(err)
		}
		if _, ok := f.State().Topic(name); !ok {
			t.Fatalf("round %d: the follower does not see %s after CatchUp", i, name)
		}
		_, err := f.CreateTopic(ctx, TopicSpec{Name: name, Partitions: 1, ReplicationFactor: 3, ValidateOnly: true})
		if !errors.Is(err, ErrTopicExists) {
			t.Fatalf("round %d: validateOnly create of %s through the follower = %v, want ErrTopicExists", i, name, err)
		}
	}
	t.Logf("the follower had not applied the new topic before CatchUp in %d of 20 rounds", lagged)
}
