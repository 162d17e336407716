package localstack

import (
	"context"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
)

// TestStackScript drives localstack/stack.sh up/status/down on private ports and state dir: MinIO
// comes up with its bucket, the broker starts with --object-store pointing at that bucket, a real
// client round-trips a record through it, and down stops both cleanly. (One broker: the cluster is
// pending, which `up` must say.)
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
	kafkaPort, httpPort := port(), port()
	state := t.TempDir()
	env := append(os.Environ(), "MINIO_BIN="+minioBin, "SEDIMENT_BIN="+sediment, "SEDIMENT_LOCALSTACK="+state,
		"MINIO_PORT="+port(), "MINIO_CONSOLE_PORT="+port(),
		"STACK_KAFKA_PORT="+kafkaPort, "STACK_RAFT_PORT="+port(), "STACK_HTTP_PORT="+httpPort)
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
	if !strings.Contains(out, "issue 5") || !strings.Contains(out, "bucket sediment ready") {
		t.Errorf("up should create the bucket and say the 3-broker cluster is pending:\n%s", out)
	}
	// The broker runs with the MinIO bucket as its object store.
	pid, err := os.ReadFile(filepath.Join(state, "stack", "broker-1", "pid"))
	if err != nil {
		t.Fatal(err)
	}
	cmdline, err := os.ReadFile("/proc/" + strings.TrimSpace(string(pid)) + "/cmdline")
	if err != nil {
		t.Fatal(err)
	}
	if args := strings.ReplaceAll(string(cmdline), "\x00", " "); !strings.Contains(args, "--object-store s3://sediment?endpoint=http://127.0.0.1:") {
		t.Errorf("broker not configured with the MinIO bucket: %s", args)
	}
	if out, code := run("status"); code != 0 || !strings.Contains(out, "broker 1: running") || !strings.Contains(out, "healthy") {
		t.Errorf("status: exit %d\n%s", code, out)
	}

	cl, err := kgo.NewClient(kgo.SeedBrokers("127.0.0.1:"+kafkaPort), kgo.AllowAutoTopicCreation(),
		kgo.ConsumeTopics("stack"), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	rctx, rcancel := context.WithTimeout(ctx, 30*time.Second)
	defer rcancel()
	if err := cl.ProduceSync(rctx, &kgo.Record{Topic: "stack", Value: []byte("through the stack")}).FirstErr(); err != nil {
		t.Fatalf("produce: %v", err)
	}
	var got string
	for got == "" && rctx.Err() == nil {
		cl.PollFetches(rctx).EachRecord(func(r *kgo.Record) { got = string(r.Value) })
	}
	if got != "through the stack" {
		t.Fatalf("consumed %q", got)
	}
	cl.Close()

	if out, code := run("down"); code != 0 || !strings.Contains(out, "broker 1 stopped") || !strings.Contains(out, "stopped (pid") {
		t.Fatalf("down: exit %d\n%s", code, out)
	}
	if c, err := net.DialTimeout("tcp", "127.0.0.1:"+kafkaPort, time.Second); err == nil {
		c.Close()
		t.Errorf("broker port still open after down")
	}
	logb, _ := os.ReadFile(filepath.Join(state, "stack", "broker-1", "sediment.log"))
	if !strings.Contains(string(logb), "clean shutdown complete") {
		t.Errorf("broker log has no clean shutdown:\n%s", logb)
	}
}
