package broker

import (
	"context"
	"fmt"
	"sort"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/sediment-io/sediment/meta"
)

// BenchmarkOffsetCommit100Groups: 100 groups commit concurrently against one broker, each from its own
// client connection (as 100 consumer applications would), one partition offset per commit, waiting for
// each answer before the next (so throughput = concurrency / latency). Reports commits/s, latency
// percentiles and how many Raft entries the batcher needed per commit.
func BenchmarkOffsetCommit100Groups(b *testing.B) {
	b.Run("one-entry-per-batch", func(b *testing.B) { benchOffsetCommits(b, false, 1) })
	b.Run("one-entry-per-group", func(b *testing.B) { benchOffsetCommits(b, true, 1) })
	// The setting: a 3-broker cluster (one Raft group of 3 voters); the 100 groups' coordinators
	// are spread over the brokers, whose batches are forwarded to the Raft leader.
	b.Run("3-brokers", func(b *testing.B) { benchOffsetCommits(b, false, 3) })
}

// singleGroupOnly hides meta's multi-group command, for the comparison.
type singleGroupOnly struct{ n *meta.Node }

func (s singleGroupOnly) CommitOffsets(ctx context.Context, group string, offsets []meta.OffsetCommit) error {
	return s.n.CommitOffsets(ctx, group, offsets)
}

func benchOffsetCommits(b *testing.B, perGroup bool, brokers int) {
	const groups = 100
	var all []*Broker
	if brokers == 1 {
		all = []*Broker{newGroupTestBroker(b)}
	} else {
		all = startGroupCluster(b, brokers)
	}
	br := all[0]
	if perGroup {
		br.groups.commits = newCommitBatcher(singleGroupOnly{br.meta})
	}
	ctx := context.Background()
	adm := newTestAdmin(b, br)
	if _, err := adm.CreateTopic(ctx, 8, 1, nil, "bench"); err != nil {
		b.Fatal(err)
	}
	var seeds []string
	for _, x := range all {
		seeds = append(seeds, x.Addr())
		for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(time.Millisecond) { // followers apply
			if _, ok := x.meta.State().Topic("bench"); ok {
				break
			}
			if time.Now().After(deadline) {
				b.Fatalf("broker %d never saw the topic", x.cfg.NodeID)
			}
		}
	}
	tb, _ := br.meta.State().Topic("bench") // every broker has it now (waited above)
	benchTopicID = tb.ID
	clients := make([]*kgo.Client, groups)
	for i := range clients {
		cl, err := kgo.NewClient(kgo.SeedBrokers(seeds...))
		if err != nil {
			b.Fatal(err)
		}
		b.Cleanup(cl.Close)
		clients[i] = cl
	}
	// Warm up: find coordinators, open connections.
	for i, cl := range clients {
		if err := benchCommit(ctx, cl, fmt.Sprintf("bench-g%d", i), 0, 0); err != nil {
			b.Fatal(err)
		}
	}
	entriesNow := func() int64 {
		var n int64
		for _, x := range all {
			n += x.groups.commits.entries.Load()
		}
		return n
	}
	entries0 := entriesNow()
	lat := make([][]time.Duration, groups)
	b.ResetTimer()
	start := time.Now()
	var wg sync.WaitGroup
	for i := 0; i < groups; i++ {
		n := b.N / groups
		if i < b.N%groups {
			n++
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			group := fmt.Sprintf("bench-g%d", i)
			for j := 0; j < n; j++ {
				t0 := time.Now()
				if err := benchCommit(ctx, clients[i], group, int32(j%8), int64(j+1)); err != nil {
					b.Error(err)
					return
				}
				lat[i] = append(lat[i], time.Since(t0))
			}
		}()
	}
	wg.Wait()
	el := time.Since(start)
	b.StopTimer()
	var lats []time.Duration
	for _, l := range lat {
		lats = append(lats, l...)
	}
	sort.Slice(lats, func(i, j int) bool { return lats[i] < lats[j] })
	pct := func(p float64) float64 {
		if len(lats) == 0 {
			return 0
		}
		return float64(lats[min(len(lats)-1, int(p*float64(len(lats))))].Microseconds()) / 1000
	}
	b.ReportMetric(float64(len(lats))/el.Seconds(), "commits/s")
	b.ReportMetric(pct(0.50), "p50-ms")
	b.ReportMetric(pct(0.99), "p99-ms")
	b.ReportMetric(float64(len(lats))/float64(max(1, entriesNow()-entries0)), "commits/raft-entry")
}

func benchCommit(ctx context.Context, cl *kgo.Client, group string, partition int32, offset int64) error {
	return commitOne(ctx, cl, benchTopicID, "bench", group, partition, offset)
}

// benchTopicID is the id of the benchmark's topic (OffsetCommit v10 names topics by id).
var benchTopicID [16]byte

// commitOne sends one simple (generation -1) OffsetCommit through kgo (which finds the coordinator).
func commitOne(ctx context.Context, cl *kgo.Client, topicID [16]byte, topic, group string, partition int32, offset int64) error {
	r := kmsg.NewPtrOffsetCommitRequest()
	r.Group, r.Generation = group, -1
	p := kmsg.NewOffsetCommitRequestTopicPartition()
	p.Partition, p.Offset, p.LeaderEpoch = partition, offset, -1
	r.Topics = []kmsg.OffsetCommitRequestTopic{{Topic: topic, TopicID: topicID, Partitions: []kmsg.OffsetCommitRequestTopicPartition{p}}}
	resp, err := r.RequestWith(ctx, cl)
	if err != nil {
		return err
	}
	if c := resp.Topics[0].Partitions[0].ErrorCode; c != 0 {
		return fmt.Errorf("commit %s: code %d", group, c)
	}
	return nil
}

// BenchmarkRaftCommitDirect100Groups is the reference without the broker and without batching: 100
// goroutines each calling meta.CommitOffsets (one Raft entry per commit) on the same node.
func BenchmarkRaftCommitDirect100Groups(b *testing.B) {
	const groups = 100
	br := newGroupTestBroker(b)
	ctx := context.Background()
	if _, err := newTestAdmin(b, br).CreateTopic(ctx, 8, 1, nil, "bench"); err != nil {
		b.Fatal(err)
	}
	b.ResetTimer()
	start := time.Now()
	var wg sync.WaitGroup
	for i := 0; i < groups; i++ {
		n := b.N / groups
		if i < b.N%groups {
			n++
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			for j := 0; j < n; j++ {
				err := br.meta.CommitOffsets(ctx, fmt.Sprintf("d%d", i), []meta.OffsetCommit{{Topic: "bench", Partition: int32(j % 8), Offset: int64(j), LeaderEpoch: -1}})
				if err != nil {
					b.Error(err)
					return
				}
			}
		}()
	}
	wg.Wait()
	b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "commits/s")
}

// BenchmarkRebalanceOneOfTenLeaves: a stable group of 10 kgo members (heartbeat interval 100 ms,
// eager range balancer, or KIP-848 with the range server assignor) loses one member (Close → leave);
// the time until the group is stable again with 9 members, every one holding its new assignment.
func BenchmarkRebalanceOneOfTenLeaves(b *testing.B) {
	for _, kip848 := range []bool{false, true} {
		name := "classic-range"
		if kip848 {
			name = "kip848-range"
		}
		b.Run(name, func(b *testing.B) {
			br := newGroupTestBroker(b)
			ctx := context.Background()
			if _, err := newTestAdmin(b, br).CreateTopic(ctx, 30, 1, nil, "rb"); err != nil {
				b.Fatal(err)
			}
			var total time.Duration
			for i := 0; i < b.N; i++ {
				b.StopTimer()
				group := fmt.Sprintf("rb-%s-%d", name, i)
				var members []*kgo.Client
				for j := 0; j < 10; j++ {
					opts := append(groupOpts(group, "rb"), kgo.SeedBrokers(br.Addr()), kgo.Balancers(kgo.RangeBalancer()))
					if kip848 {
						opts = append(opts, kgo.ServerSideBalancer())
					}
					cl, err := kgo.NewClient(opts...)
					if err != nil {
						b.Fatal(err)
					}
					members = append(members, cl)
					go func() {
						for {
							if fs := cl.PollFetches(ctx); fs.IsClientClosed() {
								return
							}
						}
					}()
				}
				waitGroupStable(b, br, group, 10, -1)
				gen := groupGeneration(br, group)
				b.StartTimer()
				t0 := time.Now()
				members[0].Close()
				waitGroupStable(b, br, group, 9, gen)
				total += time.Since(t0)
				b.StopTimer()
				for _, cl := range members[1:] {
					cl.Close()
				}
			}
			b.ReportMetric(float64(total.Milliseconds())/float64(b.N), "ms/rebalance")
		})
	}
}

func groupGeneration(br *Broker, id string) int32 {
	g := br.groups.getGroup(id, false)
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.typ == groupTypeConsumer {
		return g.cg.groupEpoch
	}
	return g.generation
}

// waitGroupStable waits (polling every millisecond: a benchmark harness, not production code) until
// the group is Stable with n members at a generation/epoch above after.
func waitGroupStable(b *testing.B, br *Broker, id string, n int, after int32) {
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		if g := br.groups.getGroup(id, false); g != nil {
			g.mu.Lock()
			ok := false
			switch g.typ {
			case groupTypeConsumer:
				ok = len(g.cg.members) == n && g.cg.stateLocked(g) == groupStable && g.cg.groupEpoch > after
			case groupTypeClassic:
				ok = len(g.members) == n && g.state == groupStable && g.generation > after
				for _, m := range g.members {
					ok = ok && m.sync == nil // every member got its SyncGroup answer
				}
			}
			g.mu.Unlock()
			if ok {
				return
			}
		}
		time.Sleep(time.Millisecond)
	}
	b.Fatalf("group %s never became stable with %d members", id, n)
}
