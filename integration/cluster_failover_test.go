package integration

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// Issue 5's failover figure with a client whose metadata behaviour is not franz-go's (whose 5 s
// MetadataMinAge sets the tail of TestKill9LeaderChase's default-client figure): librdkafka
// (confluent-kafka-python, Debian's python3-confluent-kafka) with its default timeouts and refresh
// settings, idempotence on, acks=all. Three `sediment serve` processes, the chase topic (6
// partitions, RF 3, min.insync.replicas=2); five rounds in which the leader of a partition is
// killed with kill -9 and restarted. Each round prints kill -9 → the first acks=all
// acknowledgement of a record produced after the kill to a partition the victim led. The figure
// is reported, not asserted (shared machines). Asserted: every acknowledged record is read back
// once, at its acknowledged offset, in order, and the survivors' Metadata agree after each kill.
func TestKill9FailoverLibrdkafka(t *testing.T) {
	if testing.Short() {
		t.Skip("three processes, five failovers")
	}
	py := requirePythonModules(t, "SEDIMENT_SKIP_CONFLUENT_KAFKA_PYTHON", "apt-get install python3-confluent-kafka", "confluent_kafka")
	const rounds = 5
	nodes := startCluster(t, "--conf", "replica.lag.time.max.ms=3000")
	var seeds []string
	for _, n := range nodes {
		seeds = append(seeds, n.kafka)
	}
	two := "2"
	if resp, err := nodes[0].admin(t).CreateTopic(testCtx(t), chasePartitions, 3, map[string]*string{"min.insync.replicas": &two}, chaseTopic); err != nil || resp.Err != nil {
		t.Fatalf("create: %v %v", err, resp.Err)
	}
	all := []int32{1, 2, 3}
	agreedView(t, nodes, all, true, 30*time.Second)
	load0 := loadAverage()

	prod := startRdkafkaProducer(t, py, strings.Join(seeds, ","))
	waitUntil := func(what string, d time.Duration, cond func() bool) {
		t.Helper()
		deadline := time.Now().Add(d)
		for !cond() {
			if time.Now().After(deadline) {
				t.Fatalf("timed out waiting for %s (librdkafka producer output:\n%s)", what, prod.tail())
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	waitUntil("librdkafka acknowledgements before the first kill", 30*time.Second, func() bool { return prod.count() >= 200 })
	var figures []time.Duration
	for round := 0; round < rounds; round++ {
		_, leaders := agreedView(t, nodes, all, true, 60*time.Second)
		target := int32(round % chasePartitions)
		leader := leaders[target]
		victim := nodes[leader-1]
		var led []int32
		for p, l := range leaders {
			if l == leader {
				led = append(led, p)
			}
		}
		var survivors []*node
		var live []int32
		for i, n := range nodes {
			if n != victim {
				survivors = append(survivors, n)
				live = append(live, int32(i+1))
			}
		}
		t0 := time.Now()
		victim.cmd.Process.Signal(syscall.SIGKILL)
		<-victim.exited
		agreedView(t, survivors, live, false, 60*time.Second)
		var first time.Duration
		waitUntil("a librdkafka acknowledgement on the victim's partitions", 60*time.Second, func() bool {
			first = prod.firstAckAfter(t0, led)
			return first > 0
		})
		figures = append(figures, first)
		t.Logf("round %d: killed leader %d of partition %d (it led %v); librdkafka's first acks=all ack after the kill: %v",
			round, leader, target, led, first.Round(time.Millisecond))
		restartNode(t, victim)
	}
	agreedView(t, nodes, all, true, 60*time.Second)
	acked, failed, version := prod.stop(t)
	fs := slices.Clone(figures)
	slices.Sort(fs)
	t.Logf("failover (kill -9 → first acks=all ack), librdkafka %s defaults, %d rounds: min %v median %v max %v; load average %s → %s",
		version, len(fs), fs[0].Round(time.Millisecond), fs[len(fs)/2].Round(time.Millisecond), fs[len(fs)-1].Round(time.Millisecond),
		load0, loadAverage())
	t.Logf("librdkafka: %d acknowledged, %d delivery errors", len(acked), failed)
	checkChaseReadBack(t, seeds, nodes[0], acked)
}

// loadAverage is /proc/loadavg's three averages, for the figures' context.
func loadAverage() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "?"
	}
	f := strings.Fields(string(b))
	if len(f) < 3 {
		return "?"
	}
	return strings.Join(f[:3], " ")
}

// rdkafkaProducer runs clients/python/failover_producer.py and collects its acknowledgements.
type rdkafkaProducer struct {
	cmd     *exec.Cmd
	stderr  *syncBuffer
	done    chan struct{}
	mu      sync.Mutex
	acked   map[int64]chaseAck
	failed  int
	version string
	lines   []string // the last few lines, for failure messages
}

func startRdkafkaProducer(t *testing.T, py, bootstrap string) *rdkafkaProducer {
	t.Helper()
	script, err := filepath.Abs(filepath.Join("clients", "python", "failover_producer.py"))
	if err != nil {
		t.Fatal(err)
	}
	rp := &rdkafkaProducer{done: make(chan struct{}), acked: map[int64]chaseAck{}}
	rp.cmd = exec.Command(py, script, bootstrap, chaseTopic, fmt.Sprint(chasePartitions))
	rp.cmd.Env = append(os.Environ(), "PYTHONDONTWRITEBYTECODE=1")
	rp.stderr = &syncBuffer{} // librdkafka logs each disconnect there: shown only if the test fails
	rp.cmd.Stderr = rp.stderr
	out, err := rp.cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	dieWithTest(rp.cmd)
	if err := rp.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() {
		defer close(rp.done)
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			rp.parse(sc.Text())
		}
	}()
	t.Cleanup(func() {
		rp.cmd.Process.Kill()
		<-rp.done
		rp.cmd.Wait()
		if t.Failed() {
			t.Logf("--- librdkafka producer stderr ---\n%s", tail(rp.stderr.String(), 10000))
		}
	})
	return rp
}

func (rp *rdkafkaProducer) parse(line string) {
	rp.mu.Lock()
	defer rp.mu.Unlock()
	if rp.lines = append(rp.lines, line); len(rp.lines) > 20 {
		rp.lines = rp.lines[1:]
	}
	var v, off, sent, at int64
	var p int32
	switch {
	case strings.HasPrefix(line, "ack "):
		if n, _ := fmt.Sscanf(line, "ack %d %d %d %d %d", &v, &p, &off, &sent, &at); n == 5 {
			rp.acked[v] = chaseAck{partition: p, offset: off, sent: time.Unix(0, sent), at: time.Unix(0, at)}
		}
	case strings.HasPrefix(line, "err "):
		rp.failed++
	case strings.HasPrefix(line, "done "):
		rp.version = strings.TrimPrefix(line, "done ")
	}
}

func (rp *rdkafkaProducer) count() int { rp.mu.Lock(); defer rp.mu.Unlock(); return len(rp.acked) }

func (rp *rdkafkaProducer) tail() string {
	rp.mu.Lock()
	defer rp.mu.Unlock()
	return strings.Join(rp.lines, "\n")
}

// firstAckAfter is how long after t0 the first record sent after t0 to one of parts was
// acknowledged (0: none yet).
func (rp *rdkafkaProducer) firstAckAfter(t0 time.Time, parts []int32) time.Duration {
	rp.mu.Lock()
	defer rp.mu.Unlock()
	var first time.Duration
	for _, a := range rp.acked {
		if a.sent.Before(t0) || !slices.Contains(parts, a.partition) {
			continue
		}
		if d := a.at.Sub(t0); first == 0 || d < first {
			first = d
		}
	}
	return first
}

// stop asks the producer to finish (SIGTERM: it flushes what it has queued) and returns every
// acknowledgement, the number of failed deliveries and the librdkafka version.
func (rp *rdkafkaProducer) stop(t *testing.T) (map[int64]chaseAck, int, string) {
	t.Helper()
	rp.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-rp.done:
	case <-time.After(90 * time.Second):
		t.Fatalf("librdkafka producer did not finish after SIGTERM:\n%s", rp.tail())
	}
	if err := rp.cmd.Wait(); err != nil {
		t.Fatalf("librdkafka producer: %v\n%s", err, rp.tail())
	}
	rp.mu.Lock()
	defer rp.mu.Unlock()
	if rp.version == "" {
		t.Fatalf("librdkafka producer ended without flushing:\n%s", strings.Join(rp.lines, "\n"))
	}
	return rp.acked, rp.failed, rp.version
}

// A paused controller (SIGSTOP: its process holds its connections open but answers nothing, unlike
// a killed one) is fenced after its session expires, and no other broker is fenced meanwhile:
// their heartbeats, stuck on the paused controller until they time out, must reach the newly
// elected controller before it counts their sessions as expired. DescribeCluster (with fenced
// brokers) is polled on both survivors throughout; the time to fence is reported, not asserted.
func TestPausedControllerFencesOnlyItself(t *testing.T) {
	if testing.Short() {
		t.Skip("three processes, a paused controller")
	}
	nodes := startCluster(t)
	fencedView := func(n *node) (map[int32]bool, error) {
		cl, err := kgo.NewClient(kgo.SeedBrokers(n.kafka))
		if err != nil {
			return nil, err
		}
		defer cl.Close()
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		req := kmsg.NewPtrDescribeClusterRequest()
		req.IncludeFencedBrokers = true
		resp, err := cl.SeedBrokers()[0].Request(ctx, req)
		if err != nil {
			return nil, err
		}
		out := map[int32]bool{}
		for _, b := range resp.(*kmsg.DescribeClusterResponse).Brokers {
			out[b.NodeID] = b.IsFenced
		}
		return out, nil
	}
	var controller int32 = -1
	deadline := time.Now().Add(30 * time.Second)
	for controller < 0 {
		if time.Now().After(deadline) {
			t.Fatal("no controller with all three brokers live")
		}
		v, err := fencedView(nodes[0])
		md, merr := kmsg.NewPtrMetadataRequest().RequestWith(testCtx(t), nodes[0].client(t))
		if err == nil && merr == nil && len(v) == 3 && !v[1] && !v[2] && !v[3] && md.ControllerID > 0 {
			controller = md.ControllerID
		}
		time.Sleep(50 * time.Millisecond)
	}
	victim := nodes[controller-1]
	var survivors []*node
	for _, n := range nodes {
		if n != victim {
			survivors = append(survivors, n)
		}
	}
	load := loadAverage()
	t0 := time.Now()
	victim.cmd.Process.Signal(syscall.SIGSTOP)
	defer victim.cmd.Process.Signal(syscall.SIGCONT)
	var fencedAfter time.Duration
	for end := t0.Add(40 * time.Second); time.Now().Before(end); time.Sleep(50 * time.Millisecond) {
		for _, s := range survivors {
			v, err := fencedView(s)
			if err != nil {
				continue // no controller for a moment: nothing to read
			}
			for id, f := range v {
				if f && id != controller {
					t.Fatalf("live broker %d fenced %v after the controller (%d) was paused", id, time.Since(t0).Round(time.Millisecond), controller)
				}
			}
			if v[controller] && fencedAfter == 0 {
				fencedAfter = time.Since(t0)
				// Keep watching a while: a late fence of a survivor would come within a session.
				end = time.Now().Add(4 * time.Second)
			}
		}
	}
	if fencedAfter == 0 {
		t.Fatalf("the paused controller %d was not fenced within 40 s", controller)
	}
	t.Logf("paused controller %d fenced %v after SIGSTOP (session timeout 6 s); no survivor fenced; load average %s → %s",
		controller, fencedAfter.Round(time.Millisecond), load, loadAverage())
	victim.cmd.Process.Signal(syscall.SIGCONT)
	deadline = time.Now().Add(30 * time.Second)
	for {
		v, err := fencedView(survivors[0])
		if err == nil && len(v) == 3 && !v[1] && !v[2] && !v[3] {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the resumed broker %d is not live again: %v %v", controller, v, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}
