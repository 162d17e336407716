package meta

import (
	"context"
	"encoding/binary"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hashicorp/raft"
)

// BenchmarkCommit measures committed commands per second on one node with the real raft-wal store on
// the test's disk: one proposer at a time (every command pays its own fsync) against many concurrent
// proposers (raft takes up to MaxAppendEntries queued proposals into one log write and one fsync).
// Each command is a one-offset CommitOffsets, applied to the state machine before the proposer returns.
func BenchmarkCommit(b *testing.B) {
	for _, proposers := range []int{1, 16, 256, 1024} {
		b.Run(fmt.Sprint("proposers=", proposers), func(b *testing.B) {
			n := openTestNode(b, func(cfg *Config) { cfg.MaxAppendEntries = 1024 })
			ctx := context.Background()
			if _, err := n.CreateTopic(ctx, TopicSpec{Name: "t", Partitions: 64, ReplicationFactor: 1}); err != nil {
				b.Fatal(err)
			}
			groups := make([]string, proposers)
			for i := range groups {
				groups[i] = fmt.Sprint("group-", i)
			}
			var next atomic.Int64
			var wg sync.WaitGroup
			b.ReportAllocs()
			b.ResetTimer()
			start := time.Now()
			for w := 0; w < proposers; w++ {
				wg.Add(1)
				go func(w int) {
					defer wg.Done()
					for {
						i := next.Add(1)
						if i > int64(b.N) {
							return
						}
						err := n.CommitOffsets(ctx, groups[w], []OffsetCommit{{Topic: "t", Partition: int32(i % 64), Offset: i}})
						if err != nil {
							b.Error(err)
							return
						}
					}
				}(w)
			}
			wg.Wait()
			el := time.Since(start)
			b.StopTimer()
			b.ReportMetric(float64(b.N)/el.Seconds(), "cmds/s")
		})
	}
}

// BenchmarkFailover measures the time from stopping a broker that leads partitions to every one of those
// partitions having a new leader, with Kafka's default session timeout (6 s) and heartbeat interval
// (1 s), in a 3-node in-process cluster. "broker": the stopped broker is not the controller.
// "controller": it is also the Raft leader, so a new controller is elected first; it counts the session
// from the heartbeats it applied as a follower (sessionExpiry), with a short grace after its election.
// Run with -benchtime=1x; one iteration takes about one session timeout.
func BenchmarkFailover(b *testing.B) {
	for _, kind := range []string{"broker", "controller"} {
		b.Run(kind, func(b *testing.B) {
			var total time.Duration
			for i := 0; i < b.N; i++ {
				b.StopTimer()
				c := newTestCluster(b, 3, func(cfg *Config) {
					cfg.SessionTimeout = 6 * time.Second
					cfg.HeartbeatInterval = time.Second
				})
				c.waitReady()
				c.registerAll()
				ctx := ctxT(b)
				if _, err := c.leader().CreateTopic(ctx, TopicSpec{Name: "t", Partitions: 30, ReplicationFactor: 3}); err != nil {
					b.Fatal(err)
				}
				victim := c.follower()
				if kind == "controller" {
					victim = c.leader()
				}
				vid := victim.NodeID()
				var watch *Node
				for id, n := range c.nodes {
					if id != vid {
						watch = n
					}
				}
				c.converged()
				events, cancel := watch.Subscribe()
				ledByVictim := func() int {
					tp, _ := watch.State().Topic("t")
					k := 0
					for _, p := range tp.Partitions {
						if p.Leader == vid {
							k++
						}
					}
					return k
				}
				if ledByVictim() == 0 {
					b.Fatalf("victim %d leads nothing", vid)
				}
				b.StartTimer()
				start := time.Now()
				c.kill(vid)
				timeout := time.After(30 * time.Second)
				for ledByVictim() > 0 {
					select {
					case <-events:
					case <-timeout:
						b.Fatal("leaderships did not move within 30s")
					}
				}
				el := time.Since(start)
				b.StopTimer()
				cancel()
				total += el
				for id := range c.nodes {
					c.kill(id)
				}
			}
			b.ReportMetric(float64(total.Milliseconds())/float64(b.N), "ms/failover")
		})
	}
}

// BenchmarkCommitBatchingRatio interleaves the two modes on one node and disk, one round per
// iteration (200 commands by one proposer, then 1024 proposers × 20 commands), and reports both rates
// and their ratio, so disk noise from a shared machine hits both sides alike.
func BenchmarkCommitBatchingRatio(b *testing.B) {
	n := openTestNode(b, func(cfg *Config) { cfg.MaxAppendEntries = 1024 })
	ctx := context.Background()
	if _, err := n.CreateTopic(ctx, TopicSpec{Name: "t", Partitions: 64, ReplicationFactor: 1}); err != nil {
		b.Fatal(err)
	}
	const serialN, workers, perWorker = 200, 1024, 20
	groups := make([]string, workers)
	for i := range groups {
		groups[i] = fmt.Sprint("group-", i)
	}
	commit := func(g string, i int) {
		if err := n.CommitOffsets(ctx, g, []OffsetCommit{{Topic: "t", Partition: int32(i % 64), Offset: int64(i)}}); err != nil {
			b.Error(err)
		}
	}
	var serial, batched time.Duration
	for it := 0; it < b.N; it++ {
		start := time.Now()
		for i := 0; i < serialN; i++ {
			commit("serial", i)
		}
		serial += time.Since(start)
		start = time.Now()
		var wg sync.WaitGroup
		for w := 0; w < workers; w++ {
			wg.Add(1)
			go func(w int) {
				defer wg.Done()
				for i := 0; i < perWorker; i++ {
					commit(groups[w], i)
				}
			}(w)
		}
		wg.Wait()
		batched += time.Since(start)
	}
	sRate := float64(serialN*b.N) / serial.Seconds()
	bRate := float64(workers*perWorker*b.N) / batched.Seconds()
	b.ReportMetric(sRate, "serial-cmds/s")
	b.ReportMetric(bRate, "batched-cmds/s")
	b.ReportMetric(bRate/sRate, "ratio")
}

// BenchmarkApply measures the state machine alone (decode + apply + state swap), batches of 256
// entries as raft hands them over, no disk: the CPU floor under the commit rate.
func BenchmarkApply(b *testing.B) {
	h := fixture(b)
	for i := 0; i < 64; i++ {
		h.topic(fmt.Sprint("x", i), 16, 1, nil)
	}
	const batch = 256
	logs := make([]*raft.Log, batch)
	for i := range logs {
		logs[i] = &raft.Log{Type: raft.LogCommand}
	}
	b.ReportAllocs()
	b.ResetTimer()
	for n := 0; n < b.N; n += batch {
		b.StopTimer()
		for i := range logs {
			var id reqID
			binary.BigEndian.PutUint64(id[8:], uint64(n+i+1))
			h.idx++
			logs[i].Index = h.idx
			logs[i].Data = encodeCommand(id, &cmdCommitOffsets{Group: fmt.Sprint("g", i), Offsets: []OffsetCommit{{Topic: "t", Partition: int32(i % 3), Offset: int64(n)}}})
		}
		b.StartTimer()
		h.f.ApplyBatch(logs)
	}
}
