package loadgen

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/minio/minio-go/v7"
	"github.com/minio/minio-go/v7/pkg/credentials"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
)

// fakeS3 answers PUT, GET and DELETE of whole objects in memory, enough for minio-go's PutObject
// (single PUT below its multipart size) and RemoveObject.
type fakeS3 struct {
	mu      sync.Mutex
	objects map[string][]byte
	hosts   map[string]bool // Host headers seen
}

func (f *fakeS3) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.hosts[r.Host] = true
	switch r.Method {
	case http.MethodPut:
		b, _ := io.ReadAll(r.Body)
		f.objects[r.URL.Path] = b
		w.Header().Set("ETag", `"00000000000000000000000000000000"`)
	case http.MethodGet:
		b, ok := f.objects[r.URL.Path]
		if !ok {
			w.WriteHeader(http.StatusNotFound)
			return
		}
		w.Write(b)
	case http.MethodDelete:
		delete(f.objects, r.URL.Path)
		w.WriteHeader(http.StatusNoContent)
	default:
		w.WriteHeader(http.StatusMethodNotAllowed)
	}
}

// The raw PUT baseline through the counting proxy: every size PUT once, bytes and requests
// counted on the way, the client's Host header passed through (SigV4 signs it), objects deleted
// afterwards; GET bytes and error statuses counted too.
func TestObjectPutSizesThroughCountingProxy(t *testing.T) {
	f := &fakeS3{objects: map[string][]byte{}, hosts: map[string]bool{}}
	s3 := httptest.NewServer(f)
	defer s3.Close()
	p, err := StartCountingProxy(s3.URL)
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	host := strings.TrimPrefix(p.URL, "http://")
	cl, err := minio.New(host, &minio.Options{Creds: credentials.NewStaticV4("a", "b", ""), Region: "us-east-1", BucketLookup: minio.BucketLookupPath})
	if err != nil {
		t.Fatal(err)
	}
	sizes := []int64{17 << 20, 100 << 10, 200 << 10, 1} // 17 MiB: above minio-go's multipart size, still one PUT
	r, err := ObjectPutSizes(context.Background(), cl, "bucket", sizes, 2)
	if err != nil {
		t.Fatal(err)
	}
	var total int64
	for _, s := range sizes {
		total += s
	}
	if r.Objects != 4 || r.Bytes != total || r.Concurrency != 2 || r.Elapsed <= 0 {
		t.Fatalf("result %+v", r)
	}
	c := p.Counts()
	// Wire bytes: minio-go signs the body in chunks over plain HTTP (aws-chunked framing on top).
	if c.Puts != 4 || c.PutBytes < total || c.PutBytes > total+total/100 || c.Posts != 0 || c.Errors != 0 {
		t.Fatalf("proxy counts %+v", c)
	}
	if c.Other != 4 { // the four DELETEs
		t.Fatalf("deletes: %+v", c)
	}
	f.mu.Lock()
	left, hosts := len(f.objects), f.hosts
	f.mu.Unlock()
	if left != 0 {
		t.Fatalf("%d objects left behind", left)
	}
	if !hosts[host] || len(hosts) != 1 {
		t.Fatalf("Host headers at the store: %v (want only the proxy's %s, which the client signed)", hosts, host)
	}

	// GET bytes and errors.
	f.mu.Lock()
	f.objects["/bucket/k"] = bytes.Repeat([]byte{7}, 1000)
	f.mu.Unlock()
	before := p.Counts()
	for _, k := range []string{"k", "missing"} {
		resp, err := http.Get(p.URL + "/bucket/" + k)
		if err != nil {
			t.Fatal(err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
	}
	d := p.Counts().Sub(before)
	if d.Gets != 2 || d.GetBytes != 1000 || d.Errors != 1 || d.Puts != 0 {
		t.Fatalf("GET counts %+v", d)
	}
}

// Replay reads exactly [0, end) of each partition named, from a fresh consumer, and ignores
// partitions with end 0.
func TestReplayBounded(t *testing.T) {
	cluster, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.SeedTopics(3, "t"))
	if err != nil {
		t.Fatal(err)
	}
	defer cluster.Close()
	cl, err := kgo.NewClient(kgo.SeedBrokers(cluster.ListenAddrs()...), kgo.RecordPartitioner(kgo.ManualPartitioner()))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	for p := int32(0); p < 3; p++ {
		for i := 0; i < 100; i++ {
			if err := cl.ProduceSync(context.Background(), &kgo.Record{Topic: "t", Partition: p, Value: make([]byte, 10+int(p))}).FirstErr(); err != nil {
				t.Fatal(err)
			}
		}
	}
	got, err := Replay(context.Background(), cluster.ListenAddrs(), "t", map[int32]int64{0: 40, 1: 100, 2: 0}, 30*time.Second, nil, 0)
	if err != nil {
		t.Fatal(err)
	}
	if got.Records != 140 || got.Bytes != 40*10+100*11 || got.Elapsed <= 0 || got.First <= 0 || got.First > got.Elapsed {
		t.Fatalf("replay %+v", got)
	}
	if _, err := Replay(context.Background(), cluster.ListenAddrs(), "t", map[int32]int64{0: 0}, time.Second, nil, 0); err == nil {
		t.Fatal("replay of nothing succeeded")
	}
	// Paced: 1,500 value bytes at 5,000 B/s cannot take much less than 0.3 s (the first fetch is free).
	var seen atomic.Int64
	paced, err := Replay(context.Background(), cluster.ListenAddrs(), "t", map[int32]int64{0: 100, 1: 50}, 30*time.Second, &seen, 5000)
	if err != nil {
		t.Fatal(err)
	}
	if paced.Bytes != 100*10+50*11 || seen.Load() != paced.Bytes {
		t.Fatalf("paced replay %+v, progress %d", paced, seen.Load())
	}
	// An end past the log's end cannot be reached: the timeout ends it with an error, not a hang.
	if _, err := Replay(context.Background(), cluster.ListenAddrs(), "t", map[int32]int64{0: 101}, 500*time.Millisecond, nil, 0); err == nil {
		t.Fatal("replay past the end succeeded")
	}
}

// Ratios, targets and missing figures of the tiering rows.
func TestTierRows(t *testing.T) {
	tr := TierResult{
		UploadBytes: 1 << 30, UploadElapsed: 4 * time.Second, UploadRequests: ProxyCounts{Puts: 11, Posts: 1},
		RawPut: ObjectPutResult{Objects: 11, Bytes: 1 << 30, Concurrency: 4, Elapsed: 2 * time.Second}, RawPutRequests: ProxyCounts{Puts: 11},
		ReplayBucket: Throughput{Bytes: 300 << 20, Elapsed: time.Second},
		ReplayLocal:  Throughput{Bytes: 300 << 20, Elapsed: 500 * time.Millisecond},
		LatencyAlone: Latency{Sent: 10, AckP99: 10 * time.Millisecond, AckP50: time.Millisecond, P99: 20 * time.Millisecond},
		DuringReplay: []ReplayLatency{{Bucket: "cold", Latency: Latency{Sent: 10, AckP99: 11 * time.Millisecond, AckP50: 2 * time.Millisecond, P99: 30 * time.Millisecond}},
			{Bucket: "warm", Latency: Latency{Sent: 10, AckP99: 13 * time.Millisecond, AckP50: 1 * time.Millisecond, P99: 20 * time.Millisecond}},
			{Bucket: "local", Latency: Latency{Sent: 10, AckP99: 30 * time.Millisecond, AckP50: 1 * time.Millisecond, P99: 20 * time.Millisecond}}},
	}
	rows := TierRows(tr)
	by := map[string]TierRow{}
	for _, r := range rows {
		by[r.Metric] = r
	}
	check := func(name string, value, ratio float64, met *bool) {
		t.Helper()
		r, ok := by[name]
		if !ok {
			t.Fatalf("no row %q in %+v", name, rows)
		}
		if d := r.Value - value; d > 1e-9 || d < -1e-9 {
			t.Fatalf("%s value %v, want %v", name, r.Value, value)
		}
		if d := r.Ratio - ratio; d > 1e-9 || d < -1e-9 {
			t.Fatalf("%s ratio %v, want %v", name, r.Ratio, ratio)
		}
		if (met == nil) != (r.Met == nil) || met != nil && *met != *r.Met {
			t.Fatalf("%s met %v, want %v", name, r.Met, met)
		}
	}
	yes, no := true, false
	check("upload to bucket", 256, 0.5, &no)
	// With a PUT before the upload too, the baseline is both PUTs' bytes over both PUTs' time.
	tr.RawPutBefore = ObjectPutResult{Objects: 11, Bytes: 1 << 30, Concurrency: 4, Elapsed: 6 * time.Second}
	by = map[string]TierRow{}
	for _, r := range TierRows(tr) {
		by[r.Metric] = r
	}
	check("upload to bucket", 256, 1, &yes)
	check("PUT requests per GiB uploaded", 12, 12.0/11, &yes)
	check("replay from bucket", 300, 0.5, &no)
	check("produce ack p99 during replay (bucket cold)", 11, 1.1, &yes)
	check("produce ack p50 during replay (bucket cold)", 2, 2, nil)
	check("e2e p99 during replay (bucket cold)", 30, 1.5, nil)
	check("produce ack p99 during replay (bucket warm)", 13, 1.3, &no)
	check("e2e p99 during replay (bucket warm)", 20, 1, nil)
	check("produce ack p99 during replay (from local disk, reference)", 30, 3, nil) // no target
	// With a second run alone after the replays, the baseline is the mean of the two.
	tr.LatencyAloneAfter = Latency{Sent: 10, AckP99: 12 * time.Millisecond, AckP50: 3 * time.Millisecond, P99: 20 * time.Millisecond}
	by = map[string]TierRow{}
	for _, r := range TierRows(tr) {
		by[r.Metric] = r
	}
	check("produce ack p99 during replay (bucket cold)", 11, 1, &yes)
	check("produce ack p50 during replay (bucket warm)", 1, 0.5, nil)

	// Nothing measured: every row says why, none carries a figure.
	rows = TierRows(TierResult{UploadErr: "no MinIO", ReplayErr: "not wired"})
	if len(rows) != 4 {
		t.Fatalf("rows %+v", rows)
	}
	for _, r := range rows {
		if r.Missing == "" || r.Value != 0 || r.Met != nil {
			t.Fatalf("row %+v", r)
		}
	}
	var out bytes.Buffer
	cmp := &Comparison{Tier: &TierResult{UploadErr: "no MinIO"}, TierRows: rows}
	cmp.WriteText(&out)
	if s := out.String(); !strings.Contains(s, "missing: no MinIO") || strings.Contains(s, "produce  ") {
		t.Fatalf("text:\n%s", s)
	}
}

// The replay figures are each side's median run (the lower middle of an even count).
func TestReplayMedians(t *testing.T) {
	run := func(mb int64, get int64) ReplayRun {
		return ReplayRun{Throughput: Throughput{Bytes: mb << 20, Elapsed: time.Second}, GetBytes: get, Gets: 1}
	}
	tr := TierResult{
		ReplayBucketRuns: []ReplayRun{run(300, 3), run(100, 1), run(200, 2)},
		ReplayLocalRuns:  []ReplayRun{run(500, 0), run(400, 0)},
	}
	tr.SetReplayMedians()
	if tr.ReplayBucket.MBps() != 200 || tr.ReplayRequests.GetBytes != 2 || tr.ReplayLocal.MBps() != 400 {
		t.Fatalf("medians: bucket %v (GET %d), local %v", tr.ReplayBucket.MBps(), tr.ReplayRequests.GetBytes, tr.ReplayLocal.MBps())
	}
	if tr.ReplayBucketRuns[0].MBps() != 300 {
		t.Fatal("the runs were reordered")
	}
}

// TestReplayCPUReport: the CPU line of a replay and the medians of the summary are per GB of the
// run's bytes, each figure's median taken on its own; runs without figures are left out, and no
// run with figures means no summary.
func TestReplayCPUReport(t *testing.T) {
	c := &ReplayCPU{Busy: 0.88, IOWait: 0.02, Broker: 400 * time.Millisecond, Store: 300 * time.Millisecond, Consumer: 200 * time.Millisecond}
	want := "CPU meanwhile: machine 88% busy, 2% iowait; CPU seconds per GB replayed: broker 0.80, MinIO 0.60, consumer 0.40"
	if got := c.String(5e8, "MinIO"); got != want {
		t.Fatalf("String:\n got %s\nwant %s", got, want)
	}
	if got := (&ReplayCPU{Busy: 0.5, Broker: time.Second}).String(1e9, "MinIO"); got != "CPU meanwhile: machine 50% busy, 0% iowait; CPU seconds per GB replayed: broker 1.00" {
		t.Fatalf("String without store or consumer: %s", got)
	}
	run := func(bytes int64, busy float64, broker time.Duration) ReplayRun {
		return ReplayRun{Throughput: Throughput{Bytes: bytes}, CPU: &ReplayCPU{Busy: busy, Broker: broker}}
	}
	runs := []ReplayRun{run(1e9, 0.9, 3*time.Second), {Throughput: Throughput{Bytes: 1e9}}, run(2e9, 0.5, 2*time.Second), run(1e9, 0.7, 2*time.Second)}
	// busy 0.5/0.7/0.9 → 0.7; broker s/GB 3/1/2 → 2.
	if got, want := replayCPUMedians(runs), "machine 70% busy, 0% iowait; CPU s/GB broker 2.00, store 0.00, consumer 0.00"; got != want {
		t.Fatalf("medians:\n got %s\nwant %s", got, want)
	}
	if got := replayCPUMedians([]ReplayRun{{Throughput: Throughput{Bytes: 1e9}}}); got != "" {
		t.Fatalf("medians of runs without figures: %q", got)
	}
}
