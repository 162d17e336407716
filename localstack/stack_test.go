package localstack

import (
	"context"
	"encoding/hex"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/minio/minio-go/v7"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
)

// TestStackScript drives localstack/stack.sh up/status/down on private ports and state dir: MinIO
// comes up with its bucket, three brokers form one cluster, each started with --object-store pointing
// at that bucket, a real client round-trips records through partitions led by all three, and down
// stops everything cleanly. With tiering on, a topic's closed segments appear as objects in the bucket.
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
	minioPort := port()
	env := append(os.Environ(), "MINIO_BIN="+minioBin, "SEDIMENT_BIN="+sediment, "SEDIMENT_LOCALSTACK="+state,
		"MINIO_PORT="+minioPort, "MINIO_CONSOLE_PORT="+port(),
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
	if !strings.Contains(out, "tiering on") || !strings.Contains(out, "bucket sediment ready") {
		t.Errorf("up should create the bucket and say that tiering is on:\n%s", out)
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
		if args := strings.ReplaceAll(string(cmdline), "\x00", " "); !strings.Contains(args, "--object-store s3://sediment?endpoint=http://127.0.0.1:") || !strings.Contains(args, "--voters") ||
			!strings.Contains(args, "--conf remote.log.storage.system.enable=true") {
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
	// Every broker answers /readyz once it has registered itself; the broker this client asks may
	// apply the last registration a moment later, so wait for it to list all three.
	for {
		md, err := adm.BrokerMetadata(rctx)
		if err == nil && len(md.Brokers) == 3 {
			break
		}
		if rctx.Err() != nil {
			t.Fatalf("cluster metadata: %v brokers %v", err, md.Brokers)
		}
		time.Sleep(100 * time.Millisecond)
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
	checkStackTiers(t, rctx, "127.0.0.1:"+kafkaPort, minioPort)

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

// checkStackTiers: an RF-3 topic with remote.storage.enable=true and 4 KiB segments, written in
// acknowledged rounds so segments roll, gets its closed segments uploaded: objects under
// segments/<topic id>/ appear in the stack's bucket (listed with minio-go, not through the broker).
func checkStackTiers(t *testing.T, ctx context.Context, bootstrap, minioPort string) {
	t.Helper()
	const topic = "stack-tiered"
	pcl, err := kgo.NewClient(kgo.SeedBrokers(bootstrap), kgo.ProducerBatchCompression(kgo.NoCompression()))
	if err != nil {
		t.Fatal(err)
	}
	defer pcl.Close()
	str := func(s string) *string { return &s }
	r, err := kadm.NewClient(pcl).CreateTopic(ctx, 1, 3, map[string]*string{"remote.storage.enable": str("true"), "segment.bytes": str("4096")}, topic)
	if err != nil || r.Err != nil {
		t.Fatalf("create %s: %v %v", topic, err, r.Err)
	}
	id := hex.EncodeToString(r.ID[:])
	for round := 0; round < 8; round++ { // ~1.5 KiB per acknowledged batch: a segment rolls every few rounds
		var recs []*kgo.Record
		for i := 0; i < 10; i++ {
			recs = append(recs, &kgo.Record{Topic: topic, Value: []byte(strings.Repeat("tiered ", 20))})
		}
		if err := pcl.ProduceSync(ctx, recs...).FirstErr(); err != nil {
			t.Fatalf("produce round %d: %v", round, err)
		}
	}
	mc, err := NewClient("http://127.0.0.1:"+minioPort, DefaultAccessKey, DefaultSecretKey)
	if err != nil {
		t.Fatal(err)
	}
	var keys []string
	for ctx.Err() == nil && len(keys) == 0 {
		for o := range mc.ListObjects(ctx, DefaultBucket, minio.ListObjectsOptions{Prefix: "segments/" + id + "/", Recursive: true}) {
			if o.Err == nil {
				keys = append(keys, o.Key)
			}
		}
		time.Sleep(200 * time.Millisecond)
	}
	if len(keys) == 0 {
		t.Errorf("no segment objects of %s (id %s) in the stack's bucket: tiering did not upload", topic, id)
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
