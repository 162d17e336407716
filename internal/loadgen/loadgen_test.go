package loadgen

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"
)

// The load generator is checked against kfake: every produced record must be consumed back and
// every latency sample accounted for.
func TestRunAgainstKfake(t *testing.T) {
	c := kfakeConfig(t)
	c.Partitions = 3
	c.Records = 2000
	c.RecordSize = 200
	c.Rate = 500
	c.LatencyFor = 500 * time.Millisecond
	c.Compression = "lz4"
	c.Timeout = 60 * time.Second
	c.WarmConsume = true

	var log bytes.Buffer
	res, err := Run(context.Background(), c, &log)
	if err != nil {
		t.Fatalf("run: %v\n%s", err, log.String())
	}
	if res.Produce.Records != 2000 || res.Produce.Bytes != 2000*200 {
		t.Fatalf("produce: %+v", res.Produce)
	}
	if res.Consume.Records != 2000 {
		t.Fatalf("consume: %+v", res.Consume)
	}
	if res.ConsumeWarm.Records != 2000 || res.ConsumeWarm.Elapsed <= 0 {
		t.Fatalf("warm consume: %+v", res.ConsumeWarm)
	}
	l := res.Latency
	if l.Sent < 200 || l.Received != l.Sent-l.ProduceErrors || l.ProduceErrors != 0 {
		t.Fatalf("latency phase: %+v", l)
	}
	if l.P50 <= 0 || l.P50 > l.P99 || l.P99 > l.P999 || l.P999 > l.Max {
		t.Fatalf("percentiles out of order: %+v", l)
	}

	if l.AckP50 <= 0 || l.AckP50 > l.AckP99 || l.AckP99 > l.AckP999 {
		t.Fatalf("ack percentiles out of order: %+v", l)
	}

	rows := BuildRows(c, "b", Limits{}, []Named{{Name: "a", Result: res}, {Name: "b", Result: res}})
	cmp := &Comparison{Workload: c, Peer: "b", Targets: []Named{{Name: "a", Result: res}, {Name: "b", Result: res}}, Rows: rows}
	var out bytes.Buffer
	cmp.WriteText(&out)
	if !strings.Contains(out.String(), "e2e p99") || !strings.Contains(out.String(), "1.00") || !strings.Contains(out.String(), "consume, cache warm") {
		t.Fatalf("report:\n%s", out.String())
	}
}

// Ratios: figure/peer for every non-peer target, figure/limit where the row has a limit; a failed
// target has no cells.
func TestBuildRowsRatios(t *testing.T) {
	c := DefaultConfig()
	c.RecordSize = 1024
	c.Records = 1
	c.LatencyFor = time.Second
	mk := func(mb float64, p99 time.Duration) Result {
		b := int64(mb * (1 << 20))
		return Result{
			Produce: Throughput{Records: b / 1024, Bytes: b, Elapsed: time.Second},
			Consume: Throughput{Records: b / 1024, Bytes: b, Elapsed: time.Second},
			Latency: Latency{P99: p99, AckP99: p99},
		}
	}
	lim := Limits{
		Disk: &DiskResult{Bytes: 400 << 20, SyncEvery: 1 << 20, Elapsed: time.Second},
		Sync: &SyncLatency{Files: 8, Rate: 5000, RecordSize: 1024, P50: time.Millisecond / 2, P99: 2 * time.Millisecond, P999: 3 * time.Millisecond},
		TCP:  &TCPResult{Bytes: 1000 << 20, Elapsed: time.Second},
	}
	ts := []Named{{Name: "sed", Result: mk(100, 4*time.Millisecond)}, {Name: "kfake", Result: mk(200, time.Millisecond)}, {Name: "broken", Err: "x"}}
	rows := BuildRows(c, "kfake", lim, ts)
	get := func(metric, unit, target string) Cell {
		for _, r := range rows {
			if r.Metric == metric && r.Unit == unit {
				for _, cl := range r.Cells {
					if cl.Target == target {
						return cl
					}
				}
			}
		}
		t.Fatalf("no cell %s %s %s in %+v", metric, unit, target, rows)
		return Cell{}
	}
	near := func(a, b float64) bool { return a > b*0.999 && a < b*1.001 }
	if c := get("produce", "MB/s", "sed"); !near(c.VsPeer, 0.5) || !near(c.VsLimit, 0.25) {
		t.Fatalf("produce: %+v", c)
	}
	if c := get("consume", "MB/s", "kfake"); c.VsPeer != 0 || !near(c.VsLimit, 0.2) { // TCP: no disk read figure
		t.Fatalf("consume kfake: %+v", c)
	}
	if c := get("e2e p99", "ms", "sed"); !near(c.VsPeer, 4) || !near(c.VsLimit, 2) {
		t.Fatalf("e2e p99: %+v", c)
	}
	// With a disk read figure below TCP, consume is held against the disk.
	lim.Disk.ReadBytes, lim.Disk.ReadElapsed = 500<<20, time.Second
	rows2 := BuildRows(c, "kfake", lim, ts)
	if r := rows2[2]; r.Metric != "consume" || r.Limit != 500 || !near(r.Cells[0].VsLimit, 0.2) {
		t.Fatalf("consume vs disk read: %+v", r)
	}
	// MinIO limits give pending rows for the bucket workloads, with their limits and no figures.
	lim.Object = &ObjectResult{Objects: 2, ObjectSize: 64 << 20, PutElapsed: time.Second, GetElapsed: time.Second / 4}
	rows3 := BuildRows(c, "kfake", lim, ts)
	last := rows3[len(rows3)-1]
	if !last.Pending || last.Metric != "replay from bucket" || last.Limit != 512 || len(last.Cells) != 0 || rows3[len(rows3)-2].Limit != 128 {
		t.Fatalf("bucket rows: %+v %+v", rows3[len(rows3)-2], last)
	}
	var txt bytes.Buffer
	(&Comparison{Workload: c, Peer: "kfake", Limits: lim, Targets: ts, Rows: rows3}).WriteText(&txt)
	if !strings.Contains(txt.String(), "replay from bucket") || !strings.Contains(txt.String(), "pending") {
		t.Fatalf("text:\n%s", txt.String())
	}
	for _, r := range rows {
		for _, cl := range r.Cells {
			if cl.Target == "broken" {
				t.Fatalf("failed target has a cell in %s", r.Metric)
			}
		}
	}
}

// The machine-limit probes write and stream what they say they did.
func TestLimitsProbes(t *testing.T) {
	ctx := context.Background()
	d, err := DiskWrite(ctx, t.TempDir(), 3<<20+5, 1<<20, 5)
	if err != nil {
		t.Fatal(err)
	}
	if d.Bytes != 3<<20+5 || d.ReadBytes != d.Bytes || d.ReadElapsed <= 0 || d.SmallSyncs != 5 || d.SmallSyncP50 <= 0 || d.SmallSyncP50 > d.SmallSyncP99 || d.SmallSyncP99 > d.SmallSyncMax {
		t.Fatalf("disk: %+v", d)
	}
	if _, err := DiskWrite(ctx, t.TempDir(), 1<<20, 0, 0); err == nil {
		t.Fatal("zero sync interval accepted")
	}
	sl, err := PacedSyncLatency(ctx, t.TempDir(), 2, 200, 100, 200*time.Millisecond)
	if err != nil {
		t.Fatal(err)
	}
	// 200/s over 0.2 s: ~40 samples; at least one per file even on a stalled disk, never more than paced.
	if sl.Samples < 2 || sl.Samples > 44 || sl.P50 <= 0 || sl.P50 > sl.P99 || sl.P99 > sl.P999 || sl.P999 > sl.Max {
		t.Fatalf("sync latency: %+v", sl)
	}
	if _, err := PacedSyncLatency(ctx, t.TempDir(), 0, 200, 100, time.Millisecond); err == nil {
		t.Fatal("zero files accepted")
	}
	cdir := t.TempDir()
	if err := os.MkdirAll(filepath.Join(cdir, "p-0"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(cdir, "p-0", "0.log"), make([]byte, 12345), 0o644); err != nil {
		t.Fatal(err)
	}
	if n, err := DropCache(cdir); err != nil || n != 12345 {
		t.Fatalf("DropCache: %d, %v", n, err)
	}
	tc, err := LoopbackTCP(ctx, 50*time.Millisecond)
	if err != nil {
		t.Fatal(err)
	}
	if tc.Bytes < 1<<20 || tc.Elapsed < 50*time.Millisecond {
		t.Fatalf("tcp: %+v", tc)
	}
}

func TestConfigValidate(t *testing.T) {
	c := DefaultConfig()
	if err := c.Validate(); err == nil || !strings.Contains(err.Error(), "no brokers") {
		t.Fatalf("want no brokers error, got %v", err)
	}
	c.Brokers = []string{"127.0.0.1:1"}
	c.Acks = "2"
	c.Compression = "brotli"
	err := c.Validate()
	if err == nil || !strings.Contains(err.Error(), "acks") || !strings.Contains(err.Error(), "compression") {
		t.Fatalf("got %v", err)
	}
}

// A latency phase longer than Timeout runs its whole length: Timeout bounds the waiting around it,
// not the run (a 400 s interleaved tiering run was cut at the 300 s Timeout and failed for the
// records in flight at the cut).
func TestLatencyPhaseLongerThanTimeout(t *testing.T) {
	c := kfakeConfig(t)
	c.Partitions = 1
	c.RecordSize = 100
	c.Rate = 400
	c.LatencyFor = 2 * time.Second
	c.Timeout = 700 * time.Millisecond
	var log bytes.Buffer
	l, err := FixedRateLatency(context.Background(), c, &log)
	if err != nil {
		t.Fatalf("latency phase: %v\n%s", err, log.String())
	}
	if want := int64(c.Rate) * 2; l.Sent < want*9/10 || l.Received != l.Sent {
		t.Fatalf("sent %d (want about %d, the whole 2 s), received %d", l.Sent, want, l.Received)
	}
}

// kfakeConfig is the default workload against a one-broker kfake cluster that ends with the test.
func kfakeConfig(t *testing.T) Config {
	t.Helper()
	cluster, err := kfake.NewCluster(kfake.NumBrokers(1))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cluster.Close)
	c := DefaultConfig()
	c.Brokers = cluster.ListenAddrs()
	return c
}
