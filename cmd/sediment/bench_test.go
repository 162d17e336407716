package main

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/sediment-io/sediment/internal/loadgen"
)

// `sediment bench` end to end, tiny: limits (disk, TCP; MinIO off), an in-process broker and kfake
// one after another, a table with ratio columns, and JSON carrying the same figures.
func TestBenchSubcommand(t *testing.T) {
	var out, errOut bytes.Buffer
	dir := t.TempDir()
	jsonPath := filepath.Join(dir, "bench.json")
	code := run([]string{"bench", "--targets", "sediment-always,kfake", "--records", "300", "--record-size", "100",
		"--partitions", "2", "--rate", "200", "--latency-duration", "300ms", "--data-dir", filepath.Join(dir, "data"),
		"--disk-mib", "2", "--disk-small-syncs", "3", "--sync-duration", "100ms", "--tcp-duration", "50ms", "--minio", "off",
		"--json", jsonPath, "--cpuprofile", filepath.Join(dir, "cpu.pprof"), "--trace", filepath.Join(dir, "produce.trace")}, &out, &errOut)
	if code != 0 {
		t.Fatalf("exit %d\nstdout:\n%s\nstderr:\n%s", code, out.String(), errOut.String())
	}
	s := out.String()
	for _, want := range []string{"sediment-always/kfake", "sediment-always/limit", "produce", "consume", "e2e p99", "ack p99.9",
		"received", "loopback TCP", "dropped the page cache", "fdatasync floor: 2 files", "fdatasync every 1 MiB", "pending: upload to the bucket"} {
		if !strings.Contains(s, want) {
			t.Fatalf("report lacks %q:\n%s", want, s)
		}
	}
	for _, f := range []string{"cpu.pprof", "produce.trace"} {
		if st, err := os.Stat(filepath.Join(dir, f)); err != nil || st.Size() == 0 {
			t.Fatalf("%s: %v", f, err)
		}
	}
	b, err := os.ReadFile(jsonPath)
	if err != nil {
		t.Fatal(err)
	}
	var cmp loadgen.Comparison
	if err := json.Unmarshal(b, &cmp); err != nil {
		t.Fatal(err)
	}
	if len(cmp.Targets) != 2 || cmp.Targets[0].Name != "sediment-always" || cmp.Targets[1].Name != "kfake" {
		t.Fatalf("targets: %+v", cmp.Targets)
	}
	if cmp.Limits.Disk == nil || cmp.Limits.Disk.Bytes != 2<<20 || cmp.Limits.TCP == nil || cmp.Limits.Sync == nil || cmp.Limits.Sync.Samples == 0 || cmp.Limits.Object != nil {
		t.Fatalf("limits: %+v", cmp.Limits)
	}
	var produce *loadgen.Row
	for i, r := range cmp.Rows {
		if r.Metric == "produce" && r.Unit == "MB/s" {
			produce = &cmp.Rows[i]
		}
	}
	if produce == nil || len(produce.Cells) != 2 || produce.Cells[0].VsPeer <= 0 || produce.Cells[0].VsLimit <= 0 || produce.Limit <= 0 {
		t.Fatalf("produce row: %+v", produce)
	}
	if cmp.Targets[0].Result.Produce.Records != 300 || cmp.Targets[1].Result.Consume.Records != 300 {
		t.Fatalf("results: %+v", cmp.Targets)
	}

	if code := run([]string{"bench", "--acks", "2"}, &out, &errOut); code != 2 {
		t.Fatalf("bad flag: exit %d", code)
	}
	if code := run([]string{"bench", "--profile-phase", "warmup"}, &out, &errOut); code != 2 {
		t.Fatalf("bad profile phase: exit %d", code)
	}
	if code := run([]string{"bench", "--targets", "redpanda"}, &out, &errOut); code != 2 {
		t.Fatalf("unknown target: exit %d", code)
	}
}

// The RF 3 target: three in-process brokers, a topic with three replicas, every phase completes.
func TestBenchRF3Target(t *testing.T) {
	var out, errOut bytes.Buffer
	dir := t.TempDir()
	jsonPath := filepath.Join(dir, "bench.json")
	code := run([]string{"bench", "--targets", "sediment-rf3", "--records", "200", "--record-size", "100",
		"--partitions", "2", "--rate", "200", "--latency-duration", "200ms", "--data-dir", filepath.Join(dir, "data"),
		"--limits=false", "--json", jsonPath}, &out, &errOut)
	if code != 0 {
		t.Fatalf("exit %d\nstdout:\n%s\nstderr:\n%s", code, out.String(), errOut.String())
	}
	b, err := os.ReadFile(jsonPath)
	if err != nil {
		t.Fatal(err)
	}
	var cmp loadgen.Comparison
	if err := json.Unmarshal(b, &cmp); err != nil {
		t.Fatal(err)
	}
	if len(cmp.Targets) != 1 || cmp.Targets[0].Err != "" {
		t.Fatalf("targets: %+v", cmp.Targets)
	}
	r := cmp.Targets[0].Result
	if r.Produce.Records != 200 || r.Consume.Records != 200 || r.Latency.Received != r.Latency.Sent || r.Latency.Sent == 0 {
		t.Fatalf("result: %+v", r)
	}
	if cmp.Limits.Disk != nil || cmp.Limits.DiskErr == "" {
		t.Fatalf("limits measured with --limits=false: %+v", cmp.Limits)
	}
	if !strings.Contains(out.String(), "3 brokers") {
		t.Fatalf("output:\n%s", out.String())
	}
}
