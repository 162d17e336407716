package integration

// The replay-from-bucket cell of the compatibility matrix (issue 8: "read from offset 0 after the
// data has moved to the bucket"; issue 7's tiering, driven by real clients):
//
//  1. a `sediment serve` whose object store is a real MinIO bucket (one MinIO per test binary, a key
//     prefix per cell), with remote.log.storage.system.enable=true and local retention checked every
//     replayCheckMs (log.retention.check.interval.ms);
//  2. kadm creates compat-replay (replayPartitions partitions) with Kafka's topic configs
//     remote.storage.enable=true, segment.bytes=replaySegmentBytes (a few flushed batches per segment)
//     and local.retention.ms=replayLocalRetentionMs;
//  3. the client under test produces replayN keyed records with two headers through its own producer
//     API in replayRounds flushed rounds (one batch or more per round and partition: many segments);
//  4. the test waits until the data is only in the bucket, judged independently of the read path the
//     client will use: segment objects of this topic and partition listed in the bucket (minio-go),
//     and per partition ListOffsets earliest (-2) = 0 while earliest-local (-4, KIP-405) is above 0,
//     with at least a quarter of the records below the earliest-local offsets. Never reaching that state FAILS the cell;
//  5. the client consumes every partition from offset 0 through its own consumer API. Every record
//     must come back exactly once, with its key, value and headers, at offsets 0..n-1 per partition.

import (
	"context"
	"encoding/hex"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/minio/minio-go/v7"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/sediment-io/sediment/localstack"
)

const (
	replayTopic      = "compat-replay"
	replayPartitions = 3
	replayRounds     = 16
	replayPerRound   = 14 // two records per key: every partition that has keys gets a batch per round
	replayN          = replayRounds * replayPerRound
	// replayCodec names the records (compatValue's codec field); they are produced uncompressed.
	replayCodec = "replay"
	// A record is ~225 bytes, so a round's batch for one partition is 0.5-3.2 KB: below segment.bytes
	// (Kafka refuses a batch larger than a segment: RECORD_LIST_TOO_LARGE) yet large enough that
	// every few rounds roll a segment.
	replaySegmentBytes     = 4096
	replayLocalRetentionMs = 1000
	replayCheckMs          = 250
	// replayWait bounds how long segments may take to reach the bucket and leave the local disk.
	replayWait = 60 * time.Second
)

// replayClient is one client's side of the cell: produce replayN records (compatKey,
// compatValue(client, replayCodec, i), compatHeaders(replayCodec, i)) in replayRounds flushed rounds,
// and consume every partition of replayTopic from offset 0 until n records or a timeout.
type replayClient struct {
	name    string // compatValue's client field
	produce func(t *testing.T, n *node) error
	consume func(t *testing.T, n *node) ([]compatRecord, error)
}

// replayRound is the range of record indexes produced in round r.
func replayRound(r int) (from, to int) { return r * replayPerRound, (r + 1) * replayPerRound }

// sharedMinIO is started by the first cell that needs it and stopped by TestMain.
var sharedMinIO struct {
	mu   sync.Mutex
	srv  *localstack.Server
	dir  string
	err  error
	used atomic.Int64 // prefixes handed out
}

// replayMinIO returns the test binary's MinIO (started on first use; installed by
// localstack/minio.sh when absent). SEDIMENT_SKIP_MINIO=1 skips the cell knowingly.
func replayMinIO(t *testing.T) *localstack.Server {
	t.Helper()
	if os.Getenv("SEDIMENT_SKIP_MINIO") == "1" {
		t.Skip("SEDIMENT_SKIP_MINIO=1: skipping a cell that needs a real MinIO, knowingly")
	}
	sharedMinIO.mu.Lock()
	defer sharedMinIO.mu.Unlock()
	if sharedMinIO.srv == nil && sharedMinIO.err == nil {
		dir, err := os.MkdirTemp("", "sediment-integration-minio-")
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Minute) // a first install builds MinIO
		defer cancel()
		sharedMinIO.dir = dir
		sharedMinIO.srv, sharedMinIO.err = localstack.Start(ctx, localstack.Options{DataDir: dir, Logf: t.Logf})
	}
	if sharedMinIO.err != nil {
		t.Fatalf("starting MinIO: %v\n(install it with `make minio` or localstack/minio.sh install, or set SEDIMENT_SKIP_MINIO=1 to skip knowingly)", sharedMinIO.err)
	}
	return sharedMinIO.srv
}

func stopSharedMinIO() {
	sharedMinIO.mu.Lock()
	defer sharedMinIO.mu.Unlock()
	if sharedMinIO.srv != nil {
		if err := sharedMinIO.srv.Stop(); err != nil {
			fmt.Fprintln(os.Stderr, "stopping MinIO:", err)
		}
		sharedMinIO.srv = nil
	}
	if sharedMinIO.dir != "" {
		os.RemoveAll(sharedMinIO.dir)
	}
}

// startTieredNode runs a broker whose object store is the shared MinIO under a fresh key prefix.
func startTieredNode(t *testing.T, s *localstack.Server) (*node, string) {
	t.Helper()
	prefix := fmt.Sprintf("%s-%d", strings.NewReplacer("/", "-", " ", "-").Replace(t.Name()), sharedMinIO.used.Add(1))
	n := startNodeEnv(t, "", s.Env(),
		"--object-store", s.ObjectStoreURL(prefix),
		"--conf", "remote.log.storage.system.enable=true",
		"--conf", fmt.Sprintf("log.retention.check.interval.ms=%d", replayCheckMs),
	)
	return n, prefix
}

// replayCell runs the cell as subtest replay_from_bucket.
func replayCell(t *testing.T, c replayClient) {
	t.Helper()
	t.Run("replay_from_bucket", func(t *testing.T) {
		s := replayMinIO(t)
		n, prefix := startTieredNode(t, s)
		topicID := createReplayTopic(t, n)
		if err := c.produce(t, n); err != nil {
			t.Fatalf("%s produce: %v", c.name, err)
		}
		hw := waitOnlyInBucket(t, n, s, prefix, topicID)
		recs, err := c.consume(t, n)
		if err != nil {
			t.Errorf("%s consume: %v", c.name, err)
		}
		checkReplayed(t, c.name, hw, recs)
	})
}

// createReplayTopic creates replayTopic with the tiering configs and returns its topic id (hex, as
// in the bucket's object keys).
func createReplayTopic(t *testing.T, n *node) string {
	t.Helper()
	ctx := testCtx(t)
	adm := n.admin(t)
	str := func(s string) *string { return &s }
	r, err := adm.CreateTopic(ctx, replayPartitions, 1, map[string]*string{
		"remote.storage.enable": str("true"),
		"segment.bytes":         str(fmt.Sprint(replaySegmentBytes)),
		"local.retention.ms":    str(fmt.Sprint(replayLocalRetentionMs)),
	}, replayTopic)
	if err == nil {
		err = r.Err
	}
	if err != nil {
		t.Fatalf("create %s with tiering configs: %v", replayTopic, err)
	}
	td, err := adm.ListTopics(ctx, replayTopic)
	if err != nil || td[replayTopic].Err != nil {
		t.Fatalf("metadata of %s: %v %v", replayTopic, err, td[replayTopic].Err)
	}
	id := td[replayTopic].ID
	return hex.EncodeToString(id[:])
}

// listOffsets asks the broker for every partition's offset at timestamp ts (-1 latest, -2 earliest,
// -4 earliest local) through kmsg, so the check does not depend on any client's offset API.
func listOffsets(ctx context.Context, cl *kgo.Client, ts int64) (map[int32]int64, error) {
	return listOffsetsOf(ctx, cl, replayTopic, replayPartitions, ts)
}

// listOffsetsOf is listOffsets for partitions 0..partitions-1 of any topic.
func listOffsetsOf(ctx context.Context, cl *kgo.Client, topic string, partitions int32, ts int64) (map[int32]int64, error) {
	req := kmsg.NewPtrListOffsetsRequest()
	req.ReplicaID = -1
	rt := kmsg.NewListOffsetsRequestTopic()
	rt.Topic = topic
	for p := int32(0); p < partitions; p++ {
		rp := kmsg.NewListOffsetsRequestTopicPartition()
		rp.Partition, rp.Timestamp, rp.CurrentLeaderEpoch = p, ts, -1
		rt.Partitions = append(rt.Partitions, rp)
	}
	req.Topics = append(req.Topics, rt)
	resp, err := req.RequestWith(ctx, cl)
	if err != nil {
		return nil, err
	}
	out := map[int32]int64{}
	for _, t := range resp.Topics {
		for _, p := range t.Partitions {
			if err := kerr.ErrorForCode(p.ErrorCode); err != nil {
				return nil, fmt.Errorf("ListOffsets(%d) partition %d: %w", ts, p.Partition, err)
			}
			out[p.Partition] = p.Offset
		}
	}
	if len(out) != int(partitions) {
		return nil, fmt.Errorf("ListOffsets(%d) answered %d partitions, want %d", ts, len(out), partitions)
	}
	return out, nil
}

// bucketObjects counts the objects under prefix per partition of topic (keys
// <prefix>/segments/<topic id hex>/<partition>/<object>).
func bucketObjects(ctx context.Context, s *localstack.Server, prefix, topicID string) (map[int32]int, error) {
	cl, err := s.Client()
	if err != nil {
		return nil, err
	}
	out := map[int32]int{}
	for o := range cl.ListObjects(ctx, s.Bucket, minio.ListObjectsOptions{Prefix: prefix + "/", Recursive: true}) {
		if o.Err != nil {
			return nil, o.Err
		}
		parts := strings.Split(strings.TrimPrefix(o.Key, prefix+"/"), "/")
		if len(parts) != 4 || parts[0] != "segments" || parts[1] != topicID {
			continue
		}
		var p int32
		if _, err := fmt.Sscan(parts[2], &p); err == nil {
			out[p]++
		}
	}
	return out, nil
}

// replayState is one observation of where the data is.
type replayState struct {
	objects                 map[int32]int
	earliest, local, latest map[int32]int64
	err                     error
}

func (s replayState) String() string {
	if s.err != nil {
		return s.err.Error()
	}
	return fmt.Sprintf("objects in bucket per partition %v; ListOffsets earliest(-2) %v, earliest-local(-4) %v, latest(-1) %v",
		s.objects, s.earliest, s.local, s.latest)
}

// onlyInBucket: everything produced is acknowledged (latest sums to replayN), nothing was deleted
// (earliest 0), every partition with data has objects in the bucket and its earliest local offset
// above 0, and at least a quarter of the records are below the local start (only the active
// segment, which holds the last rounds, may stay local).
func (s replayState) onlyInBucket() bool {
	if s.err != nil {
		return false
	}
	var total, remoteOnly int64
	for p := int32(0); p < replayPartitions; p++ {
		total += s.latest[p]
		if s.latest[p] == 0 {
			continue
		}
		if s.earliest[p] != 0 || s.local[p] <= 0 || s.objects[p] == 0 {
			return false
		}
		remoteOnly += s.local[p]
	}
	return total == replayN && 4*remoteOnly >= replayN
}

// waitOnlyInBucket polls until the data is only in the bucket and returns the high watermarks;
// it fails the test with the last observation when that never happens within replayWait.
func waitOnlyInBucket(t *testing.T, n *node, s *localstack.Server, prefix, topicID string) map[int32]int64 {
	t.Helper()
	cl := n.client(t)
	deadline := time.Now().Add(replayWait)
	start := time.Now()
	var st replayState
	for {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		st = replayState{}
		st.objects, st.err = bucketObjects(ctx, s, prefix, topicID)
		if st.err == nil {
			st.earliest, st.err = listOffsets(ctx, cl, -2)
		}
		if st.err == nil {
			st.local, st.err = listOffsets(ctx, cl, -4)
		}
		if st.err == nil {
			st.latest, st.err = listOffsets(ctx, cl, -1)
		}
		cancel()
		if st.onlyInBucket() {
			t.Logf("data only in the bucket after %v: %v", time.Since(start).Round(time.Millisecond), st)
			return st.latest
		}
		if time.Now().After(deadline) {
			t.Fatalf("the data never moved to the bucket within %v (want per partition with data: objects in the bucket, "+
				"earliest 0, earliest-local > 0; latest summing to %d; at least a quarter of the records below earliest-local).\nlast: %v",
				replayWait, replayN, st)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// checkReplayed: every produced record read back once, with its key, value and headers, and the
// offsets of every partition exactly 0..hw-1.
func checkReplayed(t *testing.T, client string, hw map[int32]int64, recs []compatRecord) {
	t.Helper()
	want := map[string]int{}
	for i := 0; i < replayN; i++ {
		want[compatValue(client, replayCodec, i)] = i
	}
	seen := map[string]bool{}
	perPart := map[int32][]int64{}
	bad := 0
	for _, r := range recs {
		i, ok := want[r.Value]
		switch {
		case r.Topic != replayTopic:
			t.Errorf("record from topic %q", r.Topic)
		case !ok:
			t.Errorf("p%d@%d: unexpected value %q", r.Partition, r.Offset, r.Value)
		case seen[r.Value]:
			t.Errorf("p%d@%d: value %q read twice", r.Partition, r.Offset, r.Value)
		default:
			seen[r.Value] = true
			if r.Key != compatKey(i) {
				t.Errorf("p%d@%d: key %q, want %q", r.Partition, r.Offset, r.Key, compatKey(i))
				bad++
			}
			if h := compatHeaders(replayCodec, i); !equalHeaders(r.Headers, h) {
				t.Errorf("p%d@%d: headers %q, want %q", r.Partition, r.Offset, r.Headers, h)
				bad++
			}
		}
		perPart[r.Partition] = append(perPart[r.Partition], r.Offset)
		if bad > 20 {
			t.Fatal("too many mismatches; stopping")
		}
	}
	if len(seen) != replayN {
		t.Errorf("read back %d of %d records; missing indexes %v", len(seen), replayN, missingIndexes(want, seen))
	}
	for p := int32(0); p < replayPartitions; p++ {
		offs := perPart[p]
		sort.Slice(offs, func(a, b int) bool { return offs[a] < offs[b] })
		if int64(len(offs)) != hw[p] {
			t.Errorf("partition %d: read %d records, high watermark %d", p, len(offs), hw[p])
		}
		for j, o := range offs {
			if o != int64(j) {
				t.Errorf("partition %d: offsets read %v, want 0..%d each once", p, offs, hw[p]-1)
				break
			}
		}
	}
}

// replayRecords is the records of round r as the cell defines them, for Go producers.
func replayRecords(client string, r int) []*kgo.Record {
	from, to := replayRound(r)
	var recs []*kgo.Record
	for i := from; i < to; i++ {
		rec := &kgo.Record{Topic: replayTopic, Key: []byte(compatKey(i)), Value: []byte(compatValue(client, replayCodec, i))}
		for _, h := range compatHeaders(replayCodec, i) {
			rec.Headers = append(rec.Headers, kgo.RecordHeader{Key: h[0], Value: []byte(h[1])})
		}
		recs = append(recs, rec)
	}
	return recs
}

// replayDriverArgs is the command line of an external driver's replay modes.
func replayDriverArgs(n *node, mode string) []string {
	return []string{"--mode", mode, "--bootstrap", n.kafka, "--topic", replayTopic, "--n", fmt.Sprint(replayN),
		"--rounds", fmt.Sprint(replayRounds), "--partitions", fmt.Sprint(replayPartitions), "--timeout", "45"}
}

// replayDriverClient is the replayClient of an external driver run as name args... --mode replay-produce
// and --mode replay-consume (a compatResult with produced["replay"] and consumed).
func replayDriverClient(client, name string, env []string, args ...string) replayClient {
	run := func(t *testing.T, n *node, mode string) *compatResult {
		return runDriver(t, 150*time.Second, name, env, append(append([]string{}, args...), replayDriverArgs(n, mode)...)...)
	}
	return replayClient{
		name: client,
		produce: func(t *testing.T, n *node) error {
			res := run(t, n, "replay-produce")
			e, ok := res.Produced[replayCodec]
			if !ok {
				return fmt.Errorf("driver did not report producing")
			}
			if e != "" {
				return fmt.Errorf("%s", e)
			}
			return nil
		},
		consume: func(t *testing.T, n *node) ([]compatRecord, error) {
			res := run(t, n, "replay-consume")
			var err error
			if len(res.Notes) > 0 {
				err = fmt.Errorf("driver notes: %s", strings.Join(res.Notes, "; "))
			}
			return res.Consumed, err
		},
	}
}

// pythonReplayClient is the replay side of a Python driver (integration/clients/python).
func pythonReplayClient(t *testing.T, client, py, script string) replayClient {
	dir, err := filepath.Abs(filepath.Join("clients", "python"))
	if err != nil {
		t.Fatal(err)
	}
	return replayDriverClient(client, py, []string{"PYTHONPATH=" + dir, "PYTHONDONTWRITEBYTECODE=1"}, filepath.Join(dir, script))
}
