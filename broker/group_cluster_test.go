package broker

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/sediment-io/sediment/meta"
)

// startGroupCluster starts n brokers forming one Raft group, with fast broker fencing (1 s session).
func startGroupCluster(t testing.TB, n int) []*Broker {
	t.Helper()
	brokers, _ := startTestCluster(t, n, func(cfg *Config) {
		groupTestConfig(cfg)
		cfg.MetaConfig = fastClusterMeta(time.Second, 100*time.Millisecond)
	})
	return brokers
}

// The coordinator's broker dies while a consumer group commits: the group's coordination moves to a
// live broker (FindCoordinator), consumers continue, every record is processed, and committed offsets
// never go backwards.
func TestCoordinatorFailover(t *testing.T) {
	t.Run("classic", func(t *testing.T) { testCoordinatorFailover(t, false) })
	t.Run("kip848", func(t *testing.T) { testCoordinatorFailover(t, true) })
}

func testCoordinatorFailover(t *testing.T, kip848 bool) {
	brokers := startGroupCluster(t, 3)
	const topic, group = "fo", "g-failover"
	coord, ok := coordinatorFor(brokers[0].meta.State(), group)
	if !ok {
		t.Fatal("no coordinator")
	}
	victim, others := splitOff(brokers, coord.ID)
	// The data lives on a broker that survives (replication is not this test's subject).
	seeds := kgo.SeedBrokers(others[0].Addr(), others[1].Addr())
	keep := others[0].cfg.NodeID
	if _, err := others[0].meta.CreateTopic(testCtx(t), meta.TopicSpec{Name: topic, Assignments: [][]int32{{keep}, {keep}, {keep}}}); err != nil {
		t.Fatal(err)
	}
	prod, err := kgo.NewClient(seeds, kgo.DefaultProduceTopic(topic))
	if err != nil {
		t.Fatal(err)
	}
	defer prod.Close()
	produceRange(t, prod, topic, 0, 300)

	l := newLedger()
	opts := append(groupOpts(group, topic), kgo.Balancers(kgo.CooperativeStickyBalancer()))
	if kip848 {
		opts = append(groupOpts(group, topic), kgo.Balancers(kgo.RangeBalancer()), kgo.ServerSideBalancer())
	}
	m1 := startMemberSeeds(t, []string{others[0].Addr(), others[1].Addr()}, l, false, opts...)
	ctx := testCtx(t)
	if !l.waitDistinct(ctx, 300) {
		t.Fatalf("processed %d of 300 before the failover", len(l.seen))
	}
	committed := func(b *Broker) map[int32]int64 {
		out := map[int32]int64{}
		for tp, o := range b.meta.State().CommittedOffsets(group) {
			out[tp.Partition] = o.Offset
		}
		return out
	}
	// Commits went through the coordinator; wait until a surviving node has applied them.
	var before map[int32]int64
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(5 * time.Millisecond) {
		before = committed(others[0])
		var sum int64
		for _, o := range before {
			sum += o
		}
		if sum == 300 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("commits before the failover not replicated: %v", before)
		}
	}

	// Kill the coordinator's broker while records keep coming and the member keeps committing.
	produced := make(chan struct{})
	go func() {
		defer close(produced)
		for i := 300; i < 600; i++ {
			prod.Produce(context.Background(), &kgo.Record{Topic: topic, Value: []byte(fmt.Sprint(i))}, func(_ *kgo.Record, err error) {
				if err != nil {
					t.Errorf("produce: %v", err)
				}
			})
		}
		prod.Flush(context.Background())
	}()
	if err := victim.Close(); err != nil {
		t.Logf("close victim: %v", err)
	}
	<-produced
	if !l.waitDistinct(ctx, 600) {
		t.Fatalf("processed %d of 600 after the failover", len(l.seen))
	}
	newCoord, _ := coordinatorFor(others[0].meta.State(), group)
	if newCoord.ID == victim.cfg.NodeID {
		t.Fatalf("coordination did not move off the dead broker %d", victim.cfg.NodeID)
	}
	m1.leave(t)
	m1.mu.Lock()
	lost, commitErrs := m1.lostEvents, m1.commitErrs
	m1.mu.Unlock()
	adopted := others[0].groups.adopted.Load() + others[1].groups.adopted.Load()
	t.Logf("after the failover: partitions lost %d times, %d refused commits, %d members adopted by the new coordinator", lost, commitErrs, adopted)
	if lost == 0 && adopted == 0 {
		t.Fatal("the member kept its partitions but the new coordinator never adopted it")
	}
	var after map[int32]int64
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(5 * time.Millisecond) {
		after = committed(others[1])
		var sum int64
		for _, o := range after {
			sum += o
		}
		if sum == 600 || time.Now().After(deadline) {
			break
		}
	}
	for p, off := range before {
		if after[p] < off {
			t.Fatalf("partition %d: committed offset went back from %d to %d", p, off, after[p])
		}
	}
	var sum int64
	for _, off := range after {
		sum += off
	}
	if sum != 600 {
		t.Fatalf("committed offsets sum to %d, want 600 (every record committed)", sum)
	}
	// kgo drops its partitions when its heartbeat cannot reach the dead coordinator before the broker is
	// fenced and coordination moves (a client decision); then it re-consumes from the last commit. So a
	// record may be processed twice only at or after the offset committed when the broker died. If the
	// member kept its partitions (it was adopted, group_takeover.go), nothing may be processed twice.
	l.mu.Lock()
	for k, n := range l.seen {
		var p int32
		var off int64
		fmt.Sscanf(k, "%d/%d", &p, &off)
		if n > 1 && (lost == 0 || off < before[p]) {
			t.Errorf("record %s processed %d times (committed before the failover: %d, partitions lost %d times)", k, n, before[p], lost)
		}
	}
	l.mu.Unlock()
}
