package broker

import (
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/sediment-io/sediment/meta"
)

func TestPartitionDirName(t *testing.T) {
	id := meta.TopicID{1, 2, 3, 250, 251, 252}
	for _, topic := range []string{"a", "a-1", "my.topic-7", "x_y-z"} {
		name := partitionDirName(topic, 12, id)
		gt, gi, gid, ok := parsePartitionDirName(name)
		if !ok || gt != topic || gi != 12 || gid != id {
			t.Fatalf("%q → %q → %q %d %v %v", topic, name, gt, gi, gid, ok)
		}
	}
	for _, bad := range []string{"", "topic", "topic-1", "topic.x", "-1.AAAAAAAAAAAAAAAAAAAAAA", "t-x.AAAAAAAAAAAAAAAAAAAAAA"} {
		if _, _, _, ok := parsePartitionDirName(bad); ok {
			t.Fatalf("%q parsed", bad)
		}
	}
}

func partitionDirs(t *testing.T, b *Broker) []string {
	t.Helper()
	entries, err := os.ReadDir(filepath.Join(b.cfg.DataDir, "logs"))
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, e := range entries {
		if e.IsDir() {
			out = append(out, e.Name())
		}
	}
	return out
}

// Deleting a topic deletes its local logs (through the meta event, no polling); a directory left
// over from a topic this broker no longer has is removed at start.
func TestReplicaManagerDeletesLogs(t *testing.T) {
	dir := t.TempDir()
	cfg := testBrokerConfig(t, dir)
	b, err := Start(testCtx(t), cfg)
	if err != nil {
		t.Fatal(err)
	}
	b1 := b
	t.Cleanup(func() { b1.Close() }) // on failure paths; Close is idempotent
	createTopic(t, b, "gone", 2, nil)
	createTopic(t, b, "kept", 1, nil)
	cl := newTestClient(t, b, kgo.DefaultProduceTopic("gone"))
	if err := cl.ProduceSync(testCtx(t), &kgo.Record{Value: []byte("x")}).FirstErr(); err != nil {
		t.Fatal(err)
	}
	// "kept" is opened by the replica manager's event loop, asynchronously.
	for deadline := time.Now().Add(10 * time.Second); len(partitionDirs(t, b)) != 3; time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("dirs %v", partitionDirs(t, b))
		}
	}
	if _, err := newTestAdmin(t, b).DeleteTopics(testCtx(t), "gone"); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		d := partitionDirs(t, b)
		if len(d) == 1 && strings.HasPrefix(d[0], "kept-0.") {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("dirs after delete: %v", d)
		}
		time.Sleep(10 * time.Millisecond)
	}
	if err := b.Close(); err != nil {
		t.Fatal(err)
	}
	// A stray directory (as if a deletion happened while this broker was down).
	stray := filepath.Join(dir, "logs", partitionDirName("old", 0, meta.TopicID{9}))
	if err := os.MkdirAll(stray, 0o755); err != nil {
		t.Fatal(err)
	}
	b, err = Start(testCtx(t), cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	if _, err := os.Stat(stray); !os.IsNotExist(err) {
		t.Fatalf("stray dir still there: %v", err)
	}
	if d := partitionDirs(t, b); len(d) != 1 {
		t.Fatalf("dirs after restart: %v", d)
	}
}

// Retention over a real log: small segments, retention.bytes, then retention.ms.
func TestRetentionDeletesWholeSegments(t *testing.T) {
	b := newTestBroker(t)
	segBytes, off := "2048", "false" // local retention of a non-tiered topic (tiered: tier_upload_test.go)
	createTopic(t, b, "ret", 1, map[string]*string{"segment.bytes": &segBytes, "remote.storage.enable": &off})
	cl := newTestClient(t, b, kgo.DefaultProduceTopic("ret"), kgo.ProducerBatchCompression(kgo.NoCompression()))
	for i := 0; i < 20; i++ {
		if err := cl.ProduceSync(testCtx(t), &kgo.Record{Value: make([]byte, 500)}).FirstErr(); err != nil {
			t.Fatal(err)
		}
	}
	st := b.meta.State()
	p, _, code := b.replicas.lookupPartition(st, "ret", 0)
	if code != 0 {
		t.Fatal(code)
	}
	segs := p.log.Segments()
	if len(segs) < 4 {
		t.Fatalf("want several segments, got %d", len(segs))
	}
	// retention.bytes: keep about two segments' worth.
	tc := p.config()
	tc.RetentionBytes = 2 * segs[0].Size
	p.cfg.Store(&tc)
	n, err := p.enforceRetention(time.Now())
	if err != nil || n == 0 {
		t.Fatalf("retention.bytes: deleted %d, %v", n, err)
	}
	after := p.log.Segments()
	var total int64
	for _, s := range after {
		total += s.Size
	}
	if total < tc.RetentionBytes || after[0].BaseOffset != p.log.StartOffset() || p.log.StartOffset() == 0 {
		t.Fatalf("after retention.bytes: %d bytes in %d segments, start %d", total, len(after), p.log.StartOffset())
	}
	// retention.ms: an hour from now everything closed is old; the active segment stays.
	tc.RetentionBytes = -1
	tc.RetentionMs = 60_000
	p.cfg.Store(&tc)
	if _, err := p.enforceRetention(time.Now().Add(time.Hour)); err != nil {
		t.Fatal(err)
	}
	final := p.log.Segments()
	if len(final) != 1 || p.log.StartOffset() != final[0].BaseOffset {
		t.Fatalf("after retention.ms: %d segments, start %d", len(final), p.log.StartOffset())
	}
	// Consumers start at the new log start.
	got := consumeN(t, b, "ret", int(20-p.log.StartOffset()))
	if got[0].Offset != p.log.StartOffset() {
		t.Fatalf("first consumed offset %d, log start %d", got[0].Offset, p.log.StartOffset())
	}
}

func TestReplicaMetrics(t *testing.T) {
	b := newTestBroker(t)
	createTopic(t, b, "met", 1, nil)
	cl := newTestClient(t, b, kgo.DefaultProduceTopic("met"))
	if err := cl.ProduceSync(testCtx(t), &kgo.Record{Value: []byte("a")}, &kgo.Record{Value: []byte("b")}).FirstErr(); err != nil {
		t.Fatal(err)
	}
	consumeN(t, b, "met", 2)
	resp, err := http.Get("http://" + b.HTTPAddr() + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	for _, want := range []string{
		`sediment_partition_high_watermark{topic="met",partition="0"} 2`,
		`sediment_partition_produced_records_total{topic="met",partition="0"} 2`,
		`sediment_partition_leader{topic="met",partition="0"} 1`,
	} {
		if !strings.Contains(string(body), want) {
			t.Errorf("missing %q", want)
		}
	}
	if strings.Contains(string(body), `sediment_partition_fetched_bytes_total{topic="met",partition="0"} 0`) {
		t.Error("fetched bytes not counted")
	}
}
