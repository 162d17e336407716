package integration

// Shared machinery of the real-client compatibility tests (compat_*_test.go).
//
// Every client runs the same scenario through its own API against a real `sediment serve`:
//   - create one topic per compression codec it supports ("compat-<codec>", 3 partitions) with its
//     admin API (or auto-create where it has none);
//   - produce compatN keyed records with two headers to each topic with that codec;
//   - consume every topic back from offset 0 and report what it read.
// The Go side then checks, per codec, that the client's produce succeeded, that the batches on the
// broker really carry that codec (read back by franz-go with a batch hook, so a client that silently
// fell back to no compression fails), and that the client read back exactly what was written:
// every value once, its key and headers, a key always in one partition, offsets 0..n-1 per partition.
//
// Subtest names are the matrix: docs/compatibility.md is written from `go test -json` output of
// TestCompat* by `go run ./integration/cmd/compatmatrix` (see that file for the name scheme).

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
)

// compatN records per codec: enough for several batches per partition with every client's batching.
const compatN = 60

var allCodecs = []string{"none", "gzip", "snappy", "lz4", "zstd"}

// codecID is the RecordBatch attributes compression value (Kafka's CompressionType id).
var codecID = map[string]uint8{"none": 0, "gzip": 1, "snappy": 2, "lz4": 3, "zstd": 4}

func compatTopic(codec string) string { return "compat-" + codec }

// compatRF is the replication factor the round trip's topics are created with: 1 on one broker, 3
// inside clusterCell (set and restored there; the compat tests do not run in parallel).
var compatRF int16 = 1

// compatDeleteTopic is created and deleted by each client with an admin API.
const compatDeleteTopic = "compat-delete"

// compatKey, compatValue and compatHeaders define record i of codec for client: what each driver
// must write and what it must read back. Drivers outside Go implement the same formulas
// (integration/clients/*): keep them in step.
func compatKey(i int) string { return fmt.Sprintf("key-%d", i%7) }

// The value ends in a compressible tail: librdkafka (rightly) sends a batch uncompressed when the
// codec would not shrink it, and tiny distinct values would hide whether the codec works.
func compatValue(client, codec string, i int) string {
	return fmt.Sprintf("%s|%s|%d|\u00e9t\u00e9 %s", client, codec, i, strings.Repeat("sediment ", 16))
}

// The first header takes 3 values (not one per record) so that kcat, whose -H applies to a whole
// run, needs only 3 runs per codec.
func compatHeaders(codec string, i int) [][2]string {
	return [][2]string{{"part", fmt.Sprint(i % 3)}, {"codec", codec}}
}

// compatRecord is one consumed record as a driver reports it (JSON lines for external drivers).
type compatRecord struct {
	Topic     string      `json:"topic"`
	Partition int32       `json:"partition"`
	Offset    int64       `json:"offset"`
	Key       string      `json:"key"`
	Value     string      `json:"value"`
	Headers   [][2]string `json:"headers"`
}

// compatResult is what one client driver did.
type compatResult struct {
	Client   string            `json:"client"`
	Version  string            `json:"version"`
	Created  map[string]string `json:"created"`  // topic -> "" on success, else the client's error
	Produced map[string]string `json:"produced"` // codec -> "" on success, else the client's error
	Consumed []compatRecord    `json:"consumed"`
	// Deleted: compatDeleteTopic -> "" when the client created it and deleted it again through its
	// admin API, else the error (nil map: the client has no admin API).
	Deleted map[string]string `json:"deleted"`
	Notes   []string          `json:"notes"`
}

func newCompatResult(client, version string) *compatResult {
	return &compatResult{Client: client, Version: version, Created: map[string]string{}, Produced: map[string]string{}}
}

func errString(err error) string {
	if err == nil {
		return ""
	}
	return err.Error()
}

// requireTool finds an external client or fails the test with how to install it, unless the
// explicit opt-out variable is set to 1 (then the test is skipped, visibly).
func requireTool(t *testing.T, optOut, install string, find func() (string, error)) string {
	t.Helper()
	path, err := find()
	if err == nil {
		return path
	}
	if os.Getenv(optOut) == "1" {
		t.Skipf("%v; %s=1, skipping knowingly", err, optOut)
	}
	t.Fatalf("%v\ninstall: %s\n(or set %s=1 to skip this client knowingly)", err, install, optOut)
	return ""
}

// logVersion prints the line compatmatrix reads the client version from.
func logVersion(t *testing.T, client, version string) {
	t.Helper()
	t.Logf("compat-version: %s=%s", client, version)
}

// goModVersion is the version of a Go module this module requires (test binaries carry no
// dependency build info, so ask the go command, which TestMain already needs).
func goModVersion(path string) string {
	out, err := exec.Command("go", "list", "-m", "-f", "{{.Version}}", path).Output()
	if err != nil {
		return "unknown"
	}
	return strings.TrimSpace(string(out))
}

// runDriver runs an external driver that prints one JSON compatResult on stdout.
func runDriver(t *testing.T, timeout time.Duration, name string, env []string, args ...string) *compatResult {
	t.Helper()
	var res compatResult
	runDriverJSON(t, timeout, name, env, &res, args...)
	return &res
}

// runDriverJSON runs an external driver and decodes the one JSON object it prints on stdout into out.
func runDriverJSON(t *testing.T, timeout time.Duration, name string, env []string, out any, args ...string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Env = append(os.Environ(), env...)
	var stdout, stderr syncBuffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	if ctx.Err() != nil {
		t.Fatalf("%s %v: timed out after %v\nstderr:\n%s", name, args, timeout, tail(stderr.String(), 4000))
	}
	if err != nil {
		t.Fatalf("%s %v: %v\nstdout:\n%s\nstderr:\n%s", name, args, err, tail(stdout.String(), 4000), tail(stderr.String(), 4000))
	}
	if err := json.Unmarshal([]byte(stdout.String()), out); err != nil {
		t.Fatalf("driver output is not one JSON object: %v\nstdout:\n%s\nstderr:\n%s", err, tail(stdout.String(), 4000), tail(stderr.String(), 4000))
	}
	if s := strings.TrimSpace(stderr.String()); s != "" {
		t.Logf("driver stderr:\n%s", tail(s, 2000))
	}
}

func tail(s string, n int) string {
	if len(s) > n {
		return "..." + s[len(s)-n:]
	}
	return s
}

// storedCodecs reads every compat topic with franz-go and returns, per topic, the compression ids of
// the batches the broker serves and the number of records in them.
func storedCodecs(t *testing.T, n *node, codecs []string) (map[string]map[uint8]int, map[string]int) {
	t.Helper()
	h := &batchHook{codecs: map[string]map[uint8]int{}}
	topics := make([]string, 0, len(codecs))
	for _, c := range codecs {
		topics = append(topics, compatTopic(c))
	}
	cl := n.client(t, kgo.ConsumeTopics(topics...), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()), kgo.WithHooks(h))
	counts := map[string]int{}
	total := 0
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	for total < compatN*len(codecs) && ctx.Err() == nil {
		fs := cl.PollFetches(ctx)
		fs.EachRecord(func(r *kgo.Record) { counts[r.Topic]++; total++ })
	}
	return h.snapshot(), counts
}

type batchHook struct {
	mu     sync.Mutex
	codecs map[string]map[uint8]int
}

func (h *batchHook) OnFetchBatchRead(_ kgo.BrokerMetadata, topic string, _ int32, m kgo.FetchBatchMetrics) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.codecs[topic] == nil {
		h.codecs[topic] = map[uint8]int{}
	}
	h.codecs[topic][m.CompressionType] += m.NumRecords
}

func (h *batchHook) snapshot() map[string]map[uint8]int {
	h.mu.Lock()
	defer h.mu.Unlock()
	out := map[string]map[uint8]int{}
	for k, v := range h.codecs {
		out[k] = map[uint8]int{}
		for c, n := range v {
			out[k][c] = n
		}
	}
	return out
}

// checkCompat turns a driver's result into the matrix subtests:
//
//	create_topic                 every topic was created through the client (or auto-created)
//	produce/<codec>              the client acknowledged every record, and the broker holds them in <codec> batches
//	consume/<codec>              the client read back exactly what was written: values once, keys, headers, offsets
//	headers                      (within consume) — reported separately so the matrix shows it
func checkCompat(t *testing.T, n *node, res *compatResult, codecs []string, createdBy string) {
	t.Helper()
	t.Run("create_topic", func(t *testing.T) {
		t.Logf("topics created by: %s", createdBy)
		for _, c := range codecs {
			e, ok := res.Created[compatTopic(c)]
			if !ok {
				t.Errorf("%s: driver did not report creating it", compatTopic(c))
			} else if e != "" {
				t.Errorf("%s: %s", compatTopic(c), e)
			}
		}
		// The broker must agree: every topic exists with 3 partitions.
		md, err := n.admin(t).ListTopics(testCtx(t))
		if err != nil {
			t.Fatal(err)
		}
		for _, c := range codecs {
			td, ok := md[compatTopic(c)]
			if !ok {
				t.Errorf("%s not in the broker's metadata", compatTopic(c))
			} else if createdBy != "auto-create" && len(td.Partitions) != 3 {
				t.Errorf("%s has %d partitions, want 3", compatTopic(c), len(td.Partitions))
			}
		}
	})

	stored, storedCount := storedCodecs(t, n, codecs)
	byTopic := map[string][]compatRecord{}
	for _, r := range res.Consumed {
		byTopic[r.Topic] = append(byTopic[r.Topic], r)
	}
	for _, c := range codecs {
		c := c
		t.Run("produce/"+c, func(t *testing.T) {
			e, ok := res.Produced[c]
			if !ok {
				t.Fatalf("driver did not report producing with %s", c)
			}
			if e != "" {
				t.Fatalf("producing with %s: %s", c, e)
			}
			topic := compatTopic(c)
			if storedCount[topic] != compatN {
				t.Errorf("broker serves %d records in %s, want %d", storedCount[topic], topic, compatN)
			}
			got := stored[topic]
			if len(got) != 1 || got[codecID[c]] == 0 {
				t.Errorf("batches in %s by compression id (records): %v, want all id %d (%s)", topic, got, codecID[c], c)
			}
		})
		t.Run("consume/"+c, func(t *testing.T) {
			checkConsumed(t, res.Client, c, byTopic[compatTopic(c)])
		})
	}
	if res.Deleted != nil {
		t.Run("delete_topic", func(t *testing.T) {
			e, ok := res.Deleted[compatDeleteTopic]
			if !ok {
				t.Fatal("driver did not report deleting " + compatDeleteTopic)
			}
			if e != "" {
				t.Fatal(e)
			}
			md, err := n.admin(t).ListTopics(testCtx(t))
			if err != nil {
				t.Fatal(err)
			}
			if md.Has(compatDeleteTopic) {
				t.Errorf("%s still in the broker's metadata after the client deleted it", compatDeleteTopic)
			}
		})
	}
	t.Run("headers", func(t *testing.T) {
		n := 0
		for _, r := range res.Consumed {
			var i int
			if _, err := fmt.Sscanf(lastField(r.Value), "%d", &i); err != nil {
				continue // reported by consume/<codec>
			}
			codec := strings.TrimPrefix(r.Topic, "compat-")
			if want := compatHeaders(codec, i); !equalHeaders(r.Headers, want) {
				t.Errorf("%s p%d@%d: headers %q, want %q", r.Topic, r.Partition, r.Offset, r.Headers, want)
			}
			n++
		}
		if n == 0 {
			t.Fatal("no records consumed, so no headers checked")
		}
	})
}

// lastField: compatValue is client|codec|i|été...; return i.
func lastField(v string) string {
	parts := strings.Split(v, "|")
	if len(parts) != 4 {
		return ""
	}
	return parts[2]
}

func equalHeaders(a, b [][2]string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

func checkConsumed(t *testing.T, client, codec string, recs []compatRecord) {
	t.Helper()
	want := map[string]int{} // value -> i
	for i := 0; i < compatN; i++ {
		want[compatValue(client, codec, i)] = i
	}
	seen := map[string]bool{}
	keyPart := map[string]int32{}
	perPart := map[int32][]int64{}
	for _, r := range recs {
		i, ok := want[r.Value]
		if !ok {
			t.Errorf("p%d@%d: unexpected value %q", r.Partition, r.Offset, r.Value)
			continue
		}
		if seen[r.Value] {
			t.Errorf("p%d@%d: value %q read twice", r.Partition, r.Offset, r.Value)
		}
		seen[r.Value] = true
		if r.Key != compatKey(i) {
			t.Errorf("p%d@%d: key %q, want %q", r.Partition, r.Offset, r.Key, compatKey(i))
		}
		if p, ok := keyPart[r.Key]; ok && p != r.Partition {
			t.Errorf("key %q in partitions %d and %d: keyed partitioning broken", r.Key, p, r.Partition)
		}
		keyPart[r.Key] = r.Partition
		perPart[r.Partition] = append(perPart[r.Partition], r.Offset)
	}
	if len(seen) != compatN {
		t.Errorf("read back %d of %d records; missing indexes %v", len(seen), compatN, missingIndexes(want, seen))
	}
	for p, offs := range perPart {
		sort.Slice(offs, func(a, b int) bool { return offs[a] < offs[b] })
		for j, o := range offs {
			if o != int64(j) {
				t.Errorf("partition %d offsets %v: want 0..%d contiguous", p, offs, len(offs)-1)
				break
			}
		}
	}
}

// missingIndexes: the record indexes of want (value -> index) whose values were not seen, sorted.
func missingIndexes(want map[string]int, seen map[string]bool) []int {
	var missing []int
	for v, i := range want {
		if !seen[v] {
			missing = append(missing, i)
		}
	}
	sort.Ints(missing)
	return missing
}

// recordCollector gathers consumed records from several goroutines and calls cancel once want
// records arrived.
type recordCollector struct {
	want   int
	cancel func()
	mu     sync.Mutex
	out    []compatRecord
	errs   []error
}

func (c *recordCollector) add(r compatRecord) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.out = append(c.out, r)
	if len(c.out) >= c.want {
		c.cancel()
	}
}

func (c *recordCollector) fail(err error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.errs = append(c.errs, err)
}

func (c *recordCollector) result() ([]compatRecord, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.out, errors.Join(c.errs...)
}
