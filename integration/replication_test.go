package integration

import (
	"context"
	"fmt"
	"net/http"
	"os/exec"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
)

// restartNode runs a killed cluster node again with the same arguments (same ports, data dir,
// voters) and waits until it is ready.
func restartNode(t *testing.T, n *node) {
	t.Helper()
	args := n.cmd.Args[1:]
	n.out = &syncBuffer{}
	n.exited = make(chan struct{})
	n.cmd = exec.Command(sedimentBin, args...)
	n.cmd.Stdout, n.cmd.Stderr = n.out, n.out
	if err := n.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := n.exited
	cmd := n.cmd
	go func() { n.exitErr = cmd.Wait(); close(exited) }()
	t.Cleanup(func() {
		select {
		case <-exited:
		default:
			cmd.Process.Kill()
			<-exited
		}
	})
	deadline := time.Now().Add(60 * time.Second)
	for {
		select {
		case <-exited:
			t.Fatalf("restarted node exited: %v\n%s", n.exitErr, n.out.String())
		default:
		}
		if resp, err := http.Get("http://" + n.http + "/readyz"); err == nil {
			resp.Body.Close()
			if resp.StatusCode == 200 {
				return
			}
		}
		if time.Now().After(deadline) {
			t.Fatal("restarted node not ready within 60s")
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// Leader chase with real processes: three `sediment serve` nodes, a topic with RF 3 and
// min.insync.replicas=2, an idempotent acks=all producer running throughout while the current
// leader of partition 0 is killed with kill -9 and restarted, three times. Afterwards every
// acknowledged record is read back exactly once, in produce order per partition.
func TestKill9LeaderChase(t *testing.T) {
	if testing.Short() {
		t.Skip("three processes, several failovers")
	}
	leaderChase(t, 3, "killed", func(t *testing.T, victim *node) {
		victim.cmd.Process.Signal(syscall.SIGKILL)
		<-victim.exited
	}, restartNode)
}

// A paused leader (SIGSTOP for longer than the broker session timeout) loses its leadership; when
// it resumes it acknowledges nothing under its stale epoch (its followers have moved to the new
// leader, so its high watermark cannot pass what it appended meanwhile), it truncates its
// divergent tail as a follower, and no acknowledged record is lost or doubled.
func TestPausedLeaderAcknowledgesNothingStale(t *testing.T) {
	if testing.Short() {
		t.Skip("three processes, a failover")
	}
	leaderChase(t, 1, "paused", func(t *testing.T, victim *node) {
		victim.cmd.Process.Signal(syscall.SIGSTOP)
	}, func(t *testing.T, victim *node) {
		victim.cmd.Process.Signal(syscall.SIGCONT)
		time.Sleep(3 * time.Second) // it hears from meta, steps down, truncates, follows
	})
}

func leaderChase(t *testing.T, rounds int, verb string, disrupt, recover func(t *testing.T, victim *node)) {
	nodes := startCluster(t, "--conf", "replica.lag.time.max.ms=3000")
	var seeds []string
	for _, n := range nodes {
		seeds = append(seeds, n.kafka)
	}
	const topic = "chase"
	two := "2"
	adm := nodes[0].admin(t)
	if resp, err := adm.CreateTopic(testCtx(t), 2, 3, map[string]*string{"min.insync.replicas": &two}, topic); err != nil || resp.Err != nil {
		t.Fatalf("create: %v %v", err, resp.Err)
	}
	cl, err := kgo.NewClient(kgo.SeedBrokers(seeds...), kgo.DefaultProduceTopic(topic),
		kgo.ProducerLinger(time.Millisecond), kgo.RecordPartitioner(kgo.RoundRobinPartitioner()),
		kgo.RecordDeliveryTimeout(60*time.Second), kgo.MetadataMinAge(250*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()

	type ack struct {
		partition int32
		offset    int64
	}
	var (
		mu    sync.Mutex
		acked = map[int]ack{}
	)
	stop := make(chan struct{})
	done := make(chan struct{})
	go func() {
		defer close(done)
		var wg sync.WaitGroup
		for i := 0; ; i++ {
			select {
			case <-stop:
				wg.Wait()
				return
			default:
			}
			wg.Add(1)
			cl.Produce(context.Background(), &kgo.Record{Value: []byte(fmt.Sprintf("%07d", i))}, func(r *kgo.Record, err error) {
				defer wg.Done()
				if err == nil {
					mu.Lock()
					acked[i] = ack{r.Partition, r.Offset}
					mu.Unlock()
				}
			})
			time.Sleep(500 * time.Microsecond)
		}
	}()
	count := func() int { mu.Lock(); defer mu.Unlock(); return len(acked) }
	waitUntil := func(what string, d time.Duration, cond func() bool) {
		t.Helper()
		deadline := time.Now().Add(d)
		for !cond() {
			if time.Now().After(deadline) {
				t.Fatalf("timed out waiting for %s", what)
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
	leaderOf := func() int32 {
		for _, n := range nodes {
			select {
			case <-n.exited:
				continue
			default:
			}
			ctx, cancel := context.WithTimeout(context.Background(), time.Second) // a paused node never answers
			md, err := n.admin(t).Metadata(ctx, topic)
			cancel()
			if err != nil {
				continue
			}
			if td, ok := md.Topics[topic]; ok && len(td.Partitions) > 0 {
				return td.Partitions[0].Leader
			}
		}
		return -1
	}
	waitUntil("records before the first disruption", 30*time.Second, func() bool { return count() >= 300 })
	for round := 0; round < rounds; round++ {
		leader := leaderOf()
		if leader < 1 {
			t.Fatalf("round %d: no leader", round)
		}
		victim := nodes[leader-1]
		disrupt(t, victim)
		before := count()
		killedAt := time.Now()
		waitUntil("a new leader", 60*time.Second, func() bool { l := leaderOf(); return l >= 1 && l != leader })
		waitUntil("acknowledgements under the new leader", 60*time.Second, func() bool { return count() >= before+200 })
		t.Logf("round %d: %s leader %d; acks=all flowing again after %v", round, verb, leader, time.Since(killedAt).Round(time.Millisecond))
		recover(t, victim)
	}
	close(stop)
	<-done

	mu.Lock()
	defer mu.Unlock()
	cons, err := kgo.NewClient(kgo.SeedBrokers(seeds...), kgo.ConsumeTopics(topic),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	if err != nil {
		t.Fatal(err)
	}
	defer cons.Close()
	ends, err := nodes[0].admin(t).ListEndOffsets(testCtx(t), topic)
	if err != nil {
		t.Fatal(err)
	}
	var total int
	ends.Each(func(o kadm.ListedOffset) { total += int(o.Offset) })
	got := map[int]ack{}
	last := map[int32]int{}
	ctx := testCtx(t)
	for len(got) < total {
		fs := cons.PollFetches(ctx)
		if ctx.Err() != nil {
			t.Fatalf("consumed %d of %d in the log (%d acknowledged)", len(got), total, len(acked))
		}
		fs.EachError(func(_ string, p int32, err error) { t.Fatalf("fetch partition %d: %v", p, err) })
		for _, r := range fs.Records() {
			var v int
			fmt.Sscanf(string(r.Value), "%d", &v)
			if _, dup := got[v]; dup {
				t.Fatalf("record %d twice", v)
			}
			if prev, ok := last[r.Partition]; ok && v <= prev {
				t.Fatalf("partition %d: record %d after %d", r.Partition, v, prev)
			}
			last[r.Partition] = v
			got[v] = ack{r.Partition, r.Offset}
		}
	}
	lost := 0
	for v, a := range acked {
		g, ok := got[v]
		if !ok {
			lost++
			continue
		}
		if g != a {
			t.Errorf("record %d acknowledged at %d/%d, read at %d/%d", v, a.partition, a.offset, g.partition, g.offset)
		}
	}
	t.Logf("acknowledged %d, read %d, lost %d", len(acked), len(got), lost)
	if lost > 0 {
		t.Fatalf("%d acknowledged records lost", lost)
	}
}
