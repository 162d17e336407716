package localstack

import (
	"context"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
)

// TestStackScript drives localstack/stack.sh up/status/down on private ports and state dir: MinIO
// comes up with its bucket, three brokers form one cluster, each started with --object-store pointing
// at that bucket, a real client round-trips records through partitions led by all three, and down
// stops everything cleanly. (Uploads to the bucket are pending on tiering, which `up` must say.)
func TestStackScript(t *testing.T) {
	if os.Getenv("SEDIMENT_SKIP_MINIO") == "1" {
		t.Skip("SEDIMENT_SKIP_MINIO=1")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Minute)
	defer cancel()
	minioBin, err := MinIOBinary(ctx, t.Logf)
	if err != nil {
		t.Fatal(err)
	}
	root, err := RepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	sediment := filepath.Join(t.TempDir(), "sediment")
	build := exec.CommandContext(ctx, "go", "build", "-o", sediment, "./cmd/sediment")
	build.Dir = root
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("building sediment: %v\n%s", err, out)
	}
	port := func() string {
		a, err := freeAddr()
		if err != nil {
			t.Fatal(err)
		}
		_, p, _ := net.SplitHostPort(a)
		return p
	}
	// Node N uses node 1's ports + 10*(N-1): find a node-1 triple whose shifted ports are free too.
	var kafkaPort, raftPort, httpPort string
	for attempt := 0; ; attempt++ {
		kafkaPort, raftPort, httpPort = port(), port(), port()
		if allFree(kafkaPort, raftPort, httpPort) {
			break
		}
		if attempt == 50 {
			t.Fatal("no free port triples for a 3-broker stack")
		}
	}
	state := t.TempDir()
	env := append(os.Environ(), "MINIO_BIN="+minioBin, "SEDIMENT_BIN="+sediment, "SEDIMENT_LOCALSTACK="+state,
		"MINIO_PORT="+port(), "MINIO_CONSOLE_PORT="+port(),
		"STACK_KAFKA_PORT="+kafkaPort, "STACK_RAFT_PORT="+raftPort, "STACK_HTTP_PORT="+httpPort)
	run := func(args ...string) (string, int) {
		cmd := exec.CommandContext(ctx, "bash", append([]string{filepath.Join(root, "localstack", "stack.sh")}, args...)...)
		cmd.Env = env
		cmd.Dir = root
		out, _ := cmd.CombinedOutput()
		return string(out), cmd.ProcessState.ExitCode()
	}
	t.Cleanup(func() { run("down") })

	out, code := run("up")
	if code != 0 {
		t.Fatalf("stack.sh up: exit %d\n%s", code, out)
	}
	if !strings.Contains(out, "issue 7") || !strings.Contains(out, "bucket sediment ready") {
		t.Errorf("up should create the bucket and say that uploads (tiering) are pending:\n%s", out)
	}
	// Every broker runs with the MinIO bucket as its object store.
	for b := 1; b <= 3; b++ {
		pid, err := os.ReadFile(filepath.Join(state, "stack", "broker-"+strconv.Itoa(b), "pid"))
		if err != nil {
			t.Fatal(err)
		}
		cmdline, err := os.ReadFile("/proc/" + strings.TrimSpace(string(pid)) + "/cmdline")
		if err != nil {
			t.Fatal(err)
		}
		if args := strings.ReplaceAll(string(cmdline), "\x00", " "); !strings.Contains(args, "--object-store s3://sediment?endpoint=http://127.0.0.1:") || !strings.Contains(args, "--voters") {
			t.Errorf("broker %d not configured with the MinIO bucket and the voters: %s", b, args)
		}
	}
	if out, code := run("status"); code != 0 || !strings.Contains(out, "broker 3: running") || !strings.Contains(out, "healthy") {
		t.Errorf("status: exit %d\n%s", code, out)
	}

	cl, err := kgo.NewClient(kgo.SeedBrokers("127.0.0.1:"+kafkaPort),
		kgo.ConsumeTopics("stack"), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	rctx, rcancel := context.WithTimeout(ctx, 60*time.Second)
	defer rcancel()
	adm := kadm.NewClient(cl)
	bm, err := adm.BrokerMetadata(rctx)
	if err != nil || len(bm.Brokers) != 3 {
		t.Fatalf("cluster metadata: %v brokers %v", err, bm.Brokers)
	}
	if r, err := adm.CreateTopic(rctx, 3, 3, nil, "stack"); err != nil || r.Err != nil { // RF 3: replicated across the stack
		t.Fatalf("create: %v %v", err, r.Err)
	}
	leaders := map[int32]bool{}
	for i := 0; i < 50 && len(leaders) < 3; i++ { // metadata reaches every broker shortly after the create
		td, err := adm.ListTopics(rctx, "stack")
		if err == nil {
			for _, p := range td["stack"].Partitions {
				leaders[p.Leader] = true
			}
		}
		if len(leaders) < 3 {
			leaders = map[int32]bool{}
			time.Sleep(100 * time.Millisecond)
		}
	}
	if len(leaders) != 3 {
		t.Errorf("partition leaders %v, want one partition on each of the 3 brokers", leaders)
	}
	var recs []*kgo.Record
	for p := int32(0); p < 3; p++ {
		recs = append(recs, &kgo.Record{Topic: "stack", Partition: p, Value: []byte("through the stack " + strconv.Itoa(int(p)))})
	}
	pcl, err := kgo.NewClient(kgo.SeedBrokers("127.0.0.1:"+kafkaPort), kgo.RecordPartitioner(kgo.ManualPartitioner()))
	if err != nil {
		t.Fatal(err)
	}
	if err := pcl.ProduceSync(rctx, recs...).FirstErr(); err != nil {
		t.Fatalf("produce: %v", err)
	}
	pcl.Close()
	got := map[string]bool{}
	for len(got) < 3 && rctx.Err() == nil {
		cl.PollFetches(rctx).EachRecord(func(r *kgo.Record) { got[string(r.Value)] = true })
	}
	if len(got) != 3 {
		t.Fatalf("consumed %v, want the 3 records", got)
	}
	cl.Close()

	if out, code := run("down"); code != 0 || !strings.Contains(out, "broker 3 stopped") || !strings.Contains(out, "stopped (pid") {
		t.Fatalf("down: exit %d\n%s", code, out)
	}
	if c, err := net.DialTimeout("tcp", "127.0.0.1:"+kafkaPort, time.Second); err == nil {
		c.Close()
		t.Errorf("broker port still open after down")
	}
	for b := 1; b <= 3; b++ {
		logb, _ := os.ReadFile(filepath.Join(state, "stack", "broker-"+strconv.Itoa(b), "sediment.log"))
		if !strings.Contains(string(logb), "clean shutdown complete") {
			t.Errorf("broker %d log has no clean shutdown:\n%s", b, tailString(string(logb), 3000))
		}
	}
}

// allFree: the node-1 ports and the same ports +10 and +20 (nodes 2 and 3) can all be bound now.
func allFree(ports ...string) bool {
	for _, p := range ports {
		n, _ := strconv.Atoi(p)
		for off := 0; off <= 20; off += 10 {
			ln, err := net.Listen("tcp", "127.0.0.1:"+strconv.Itoa(n+off))
			if err != nil {
				return false
			}
			ln.Close()
		}
	}
	return true
}

func tailString(s string, n int) string {
	if len(s) > n {
		return s[len(s)-n:]
	}
	return s
}
