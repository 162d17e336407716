package main

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path"
	"path/filepath"
	"strings"
	"testing"

	"github.com/minio/minio-go/v7"

	"github.com/sediment-io/sediment/internal/loadgen"
	"github.com/sediment-io/sediment/localstack"
	"github.com/sediment-io/sediment/tiering"
)

// `sediment bench` end to end, tiny: limits (disk, TCP; MinIO off), an in-process broker and kfake
// one after another, a table with ratio columns, and JSON carrying the same figures.
func TestBenchSubcommand(t *testing.T) {
	dir := t.TempDir()
	cmp, s := runBenchJSON(t, "--targets", "sediment-always,kfake", "--records", "300", "--record-size", "100",
		"--partitions", "2", "--rate", "200", "--latency-duration", "300ms", "--data-dir", filepath.Join(dir, "data"),
		"--disk-mib", "2", "--disk-small-syncs", "3", "--sync-duration", "100ms", "--tcp-duration", "50ms", "--minio", "off", "--tier", "off",
		"--cpuprofile", filepath.Join(dir, "cpu.pprof"), "--trace", filepath.Join(dir, "produce.trace"))
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

	var out, errOut bytes.Buffer
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
	dir := t.TempDir()
	cmp, out := runBenchJSON(t, "--targets", "sediment-rf3", "--records", "200", "--record-size", "100",
		"--partitions", "2", "--rate", "200", "--latency-duration", "200ms", "--data-dir", filepath.Join(dir, "data"),
		"--limits=false", "--tier", "off")
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
	if !strings.Contains(out, "3 brokers") {
		t.Fatalf("output:\n%s", out)
	}
}

// The tiering workloads end to end, tiny, against a real MinIO: segments uploaded after
// remote.storage.enable is switched on (one PUT each, through the counting proxy), the same object
// sizes PUT raw, the uploaded history replayed from the bucket (the proxy saw at least its bytes
// fetched) and the same offsets from local disk, fixed-rate produce without and with a replay.
func TestBenchTier(t *testing.T) {
	srv := localstack.StartMinIO(t)
	for _, k := range []string{"AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_REGION"} {
		t.Setenv(k, "") // the bench sets them for its in-process broker; restored after the test
	}
	dir := t.TempDir()
	cmp, text := runBenchJSON(t, "--targets", "", "--limits=false", "--tier", "on", "--tier-mib", "8", "--tier-partitions", "2",
		"--tier-segment-mib", "1", "--record-size", "1000", "--rate", "200", "--tier-latency-duration", "400ms",
		"--tier-trim-wait", "30s", "--tier-upload-timeout", "30s", "--tier-replays", "2",
		"--tier-interleave-windows", "2", "--tier-interleave-window", "1s",
		// The broker's chunk cache on: each replay from the bucket must still fetch from the bucket (fresh broker).
		"--tier-conf", "remote.log.reader.cache.bytes=134217728", "--data-dir", filepath.Join(dir, "data"),
		"--minio-endpoint", srv.Endpoint, "--minio-access-key", srv.AccessKey, "--minio-secret-key", srv.SecretKey,
		"--minio-bucket", srv.Bucket, "--cpuprofile", filepath.Join(dir, "replay.pprof"), "--profile-phase", "tier-replay-bucket")
	if st, err := os.Stat(filepath.Join(dir, "replay.pprof")); err != nil || st.Size() == 0 {
		t.Fatalf("profile of the replay from the bucket: %v", err)
	}
	tr := cmp.Tier
	if tr == nil {
		t.Fatalf("no tiering section:\n%s", text)
	}
	// 8 MiB over 2 partitions of 1 MiB segments: at least 3 closed segments each.
	if tr.UploadObjects < 6 || tr.UploadBytes < 6<<20 || tr.UploadElapsed <= 0 || tr.UploadRequests.Puts < int64(tr.UploadObjects) {
		t.Fatalf("upload: %d objects, %d bytes, %s, requests %+v", tr.UploadObjects, tr.UploadBytes, tr.UploadElapsed, tr.UploadRequests)
	}
	if tr.RawPutBefore.Objects != tr.UploadObjects || tr.RawPutBefore.Bytes > tr.UploadBytes || tr.RawPutBefore.Elapsed <= 0 {
		t.Fatalf("raw PUT before the upload %+v (want the %d closed segments, at most %d bytes)", tr.RawPutBefore, tr.UploadObjects, tr.UploadBytes)
	}
	if tr.RawPut.Objects != tr.UploadObjects || tr.RawPut.Bytes != tr.UploadBytes || tr.RawPutRequests.Puts != int64(tr.UploadObjects) || tr.RawPutRequests.Posts != 0 {
		t.Fatalf("raw PUT %+v, requests %+v (want the upload's %d objects, %d bytes, one PUT each)", tr.RawPut, tr.RawPutRequests, tr.UploadObjects, tr.UploadBytes)
	}
	if len(tr.ReplayBucketRuns) != 2 || len(tr.ReplayLocalRuns) != 2 {
		t.Fatalf("replay runs: bucket %+v, local %+v", tr.ReplayBucketRuns, tr.ReplayLocalRuns)
	}
	for _, r := range append(tr.ReplayBucketRuns, tr.ReplayLocalRuns...) {
		if r.First <= 0 || r.First > r.Elapsed {
			t.Fatalf("replay run %+v: first record not timed within the run", r)
		}
		// Where its CPU went: the broker (this process) and the consumer (the replay-worker child)
		// worked; the store is --minio-endpoint's, not the bench's to watch.
		if c := r.CPU; c == nil || c.Broker <= 0 || c.Consumer <= 0 || c.Store != 0 || c.Busy <= 0 || c.Busy > 1 {
			t.Fatalf("replay run %+v: CPU %+v", r, c)
		}
	}
	if tr.ReplayBucket.Records == 0 || tr.ReplayBucket.Bytes != tr.ReplayLocal.Bytes || tr.ReplayRequests.GetBytes < tr.ReplayBucket.Bytes {
		t.Fatalf("replay: bucket %+v (GET %d bytes), local %+v", tr.ReplayBucket, tr.ReplayRequests.GetBytes, tr.ReplayLocal)
	}
	if tr.LatencyAlone.Sent == 0 || tr.LatencyAloneAfter.Sent == 0 || len(tr.DuringReplay) != 3 || tr.DuringReplay[0].Bucket != "cold" || tr.DuringReplay[1].Bucket != "warm" || tr.DuringReplay[2].Bucket != "local" {
		t.Fatalf("latency: alone %+v, during replays %+v", tr.LatencyAlone, tr.DuringReplay)
	}
	for _, d := range tr.DuringReplay {
		if d.Latency.Sent == 0 || d.Latency.Received != d.Latency.Sent || d.Replay.Bytes == 0 || d.Requests.GetBytes == 0 && d.Bucket == "cold" {
			t.Fatalf("latency during a replay, bucket %s: %+v", d.Bucket, d)
		}
	}
	// The interleaved run and its control: both kinds of window got acks; the replay (a child
	// process) read something in the real one.
	if len(tr.Interleaved) != 2 || tr.Interleaved[0].Kind != "bucket cold" || tr.Interleaved[1].Kind != "control" {
		t.Fatalf("interleaved runs %+v", tr.Interleaved)
	}
	for _, il := range tr.Interleaved {
		if il.Alone.Acks == 0 || il.During.Acks == 0 || il.Alone.Windows < 2 || il.During.Windows < 2 || il.Alone.P99ms <= 0 || il.During.P99ms <= 0 ||
			il.Paired.Pairs < 1 || il.Paired.RatioMedian <= 0 || il.Paired.AloneP99ms <= 0 {
			t.Fatalf("interleaved %s: %+v", il.Kind, il)
		}
	}
	if tr.Interleaved[0].Replay.Bytes == 0 {
		t.Fatalf("the interleaved run's replay read nothing: %+v", tr.Interleaved[0])
	}
	if !strings.Contains(text, "produce ack p99 during replay (interleaved, bucket cold)") || !strings.Contains(text, "(interleaved, bucket cold, pooled)") ||
		!strings.Contains(text, "(bucket cold, single phase)") {
		t.Fatalf("report lacks the interleaved row or the single-phase reference:\n%s", text)
	}
	if len(cmp.TierRows) < 4 {
		t.Fatalf("rows %+v", cmp.TierRows)
	}
	for _, r := range cmp.TierRows {
		if r.Missing != "" || r.Value <= 0 || r.Ratio <= 0 {
			t.Fatalf("row %+v", r)
		}
	}
	for _, want := range []string{"upload to bucket", "PUT requests per GiB uploaded", "replay from bucket", "produce ack p99 during replay"} {
		if !strings.Contains(text, want) {
			t.Fatalf("report lacks %q:\n%s", want, text)
		}
	}

	// A second invocation against the same bucket is a second cluster: it works under a prefix of its
	// own (the first cluster claimed the objects it wrote, tiering.ClaimStore), and the bucket holds
	// both runs' claims.
	cmp2, text2 := runBenchJSON(t, "--targets", "", "--limits=false", "--tier", "on", "--tier-mib", "4", "--tier-partitions", "1",
		"--tier-segment-mib", "1", "--record-size", "1000", "--rate", "200", "--tier-latency-duration", "200ms",
		"--tier-trim-wait", "30s", "--tier-upload-timeout", "30s", "--tier-replays", "1", "--tier-interleave-windows", "0",
		"--data-dir", filepath.Join(dir, "data3"),
		"--minio-endpoint", srv.Endpoint, "--minio-access-key", srv.AccessKey, "--minio-secret-key", srv.SecretKey, "--minio-bucket", srv.Bucket)
	if cmp2.Tier == nil || cmp2.Tier.UploadObjects < 3 {
		t.Fatalf("second run against the same bucket uploaded nothing:\n%s", text2)
	}
	mc, err := srv.Client()
	if err != nil {
		t.Fatal(err)
	}
	var claims int
	for o := range mc.ListObjects(context.Background(), srv.Bucket, minio.ListObjectsOptions{Recursive: true}) {
		if path.Base(o.Key) == tiering.ClusterClaimKey {
			claims++
		}
	}
	if claims != 2 {
		t.Fatalf("%d cluster claims in the bucket after two runs, want one per run's prefix", claims)
	}

	// No bucket at hand: --tier auto reports the workloads missing, with the reason, and succeeds.
	var out, errOut bytes.Buffer
	code := run([]string{"bench", "--targets", "", "--limits=false", "--tier", "auto", "--minio", "off", "--data-dir", filepath.Join(dir, "data2")}, &out, &errOut)
	if code != 0 || !strings.Contains(out.String(), "missing: --tier auto: no bucket: --minio off") {
		t.Fatalf("--tier auto without a bucket: exit %d\n%s", code, out.String())
	}
}

// runBenchJSON runs `sediment bench args... --json FILE`, fails the test unless it exits 0, and
// returns the decoded JSON and the text report.
func runBenchJSON(t *testing.T, args ...string) (loadgen.Comparison, string) {
	t.Helper()
	var out, errOut bytes.Buffer
	jsonPath := filepath.Join(t.TempDir(), "bench.json")
	if code := run(append(append([]string{"bench"}, args...), "--json", jsonPath), &out, &errOut); code != 0 {
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
	return cmp, out.String()
}
