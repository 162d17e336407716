package loadgen

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"slices"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"text/tabwriter"
	"time"

	"github.com/minio/minio-go/v7"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// Building blocks of the tiering workloads (issue 7's figures): a counting proxy in front of the
// object store, topics with configs, a bounded replay consumer, and a raw PUT of given object sizes.
// The orchestration (which broker, which bucket, when the upload lag is zero) lives in the caller.

// ProxyCounts are the object-store requests that passed through a CountingProxy.
type ProxyCounts struct {
	Puts     int64 `json:"puts"`      // PUT requests (whole objects and multipart parts)
	Posts    int64 `json:"posts"`     // POST requests (multipart initiate/complete, bulk delete)
	PutBytes int64 `json:"put_bytes"` // request body bytes of PUTs on the wire (with any aws-chunked signing framing)
	Gets     int64 `json:"gets"`
	GetBytes int64 `json:"get_bytes"` // response body bytes of GETs
	Other    int64 `json:"other"`     // HEAD, DELETE, LIST (GET with no key counts as a GET)
	Errors   int64 `json:"errors"`    // responses with status >= 400 (and proxy failures)
}

// Sub is c - o, the requests between two snapshots.
func (c ProxyCounts) Sub(o ProxyCounts) ProxyCounts {
	return ProxyCounts{c.Puts - o.Puts, c.Posts - o.Posts, c.PutBytes - o.PutBytes, c.Gets - o.Gets,
		c.GetBytes - o.GetBytes, c.Other - o.Other, c.Errors - o.Errors}
}

// WriteRequests is PUTs plus POSTs: what S3 bills as PUT-class requests.
func (c ProxyCounts) WriteRequests() int64 { return c.Puts + c.Posts }

// CountingProxy is a reverse proxy on loopback in front of an S3 endpoint that counts requests and
// bytes by method, so that the bench sees what the broker really sends to the bucket (retries and
// multipart parts included) without trusting the broker's own metrics. SigV4 signatures stay valid:
// the Host header the client signed is passed through unchanged.
type CountingProxy struct {
	URL string // http://127.0.0.1:PORT

	srv                                   *http.Server
	ln                                    net.Listener
	puts, posts, putBytes, gets, getBytes atomic.Int64
	other, errs                           atomic.Int64
}

// StartCountingProxy listens on 127.0.0.1:0 and forwards to target (http://host:port).
func StartCountingProxy(target string) (*CountingProxy, error) {
	u, err := url.Parse(target)
	if err != nil || u.Host == "" {
		return nil, fmt.Errorf("counting proxy: bad target %q", target)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	p := &CountingProxy{URL: "http://" + ln.Addr().String(), ln: ln}
	rp := httputil.NewSingleHostReverseProxy(u) // keeps req.Host: the signed host header
	rp.Transport = &http.Transport{Proxy: nil, MaxIdleConnsPerHost: 64, DisableCompression: true}
	rp.FlushInterval = -1
	rp.ModifyResponse = func(r *http.Response) error {
		if r.StatusCode >= 400 {
			p.errs.Add(1)
		}
		if r.Request.Method == http.MethodGet {
			r.Body = CountingBody(r.Body, &p.getBytes)
		}
		return nil
	}
	rp.ErrorHandler = func(w http.ResponseWriter, r *http.Request, err error) {
		p.errs.Add(1)
		w.WriteHeader(http.StatusBadGateway)
	}
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.Method {
		case http.MethodPut:
			p.puts.Add(1)
			if r.Body != nil {
				r.Body = CountingBody(r.Body, &p.putBytes)
			}
		case http.MethodPost:
			p.posts.Add(1)
		case http.MethodGet:
			p.gets.Add(1)
		default:
			p.other.Add(1)
		}
		rp.ServeHTTP(w, r)
	})
	p.srv = &http.Server{Handler: h, ReadHeaderTimeout: 30 * time.Second}
	go p.srv.Serve(ln)
	return p, nil
}

// CountingBody wraps rc so that every byte read from it is added to n (the proxy's body counters;
// tests count the bytes a store's Gets return with it too).
func CountingBody(rc io.ReadCloser, n *atomic.Int64) io.ReadCloser {
	return &countingBody{ReadCloser: rc, n: n}
}

type countingBody struct {
	io.ReadCloser
	n *atomic.Int64
}

func (b *countingBody) Read(p []byte) (int, error) {
	n, err := b.ReadCloser.Read(p)
	b.n.Add(int64(n))
	return n, err
}

// Counts is a snapshot of the counters.
func (p *CountingProxy) Counts() ProxyCounts {
	return ProxyCounts{Puts: p.puts.Load(), Posts: p.posts.Load(), PutBytes: p.putBytes.Load(), Gets: p.gets.Load(),
		GetBytes: p.getBytes.Load(), Other: p.other.Load(), Errors: p.errs.Load()}
}

// Close stops the proxy.
func (p *CountingProxy) Close() error { return p.srv.Close() }

// CreateTopicWithConfigs creates topic with the given topic configs (Kafka names); an existing
// topic is an error, so that a figure is never taken on a topic left by an earlier run.
func CreateTopicWithConfigs(ctx context.Context, brokers []string, topic string, partitions int32, rf int16, configs map[string]string) error {
	cl, err := kgo.NewClient(kgo.SeedBrokers(brokers...))
	if err != nil {
		return err
	}
	defer cl.Close()
	cfg := map[string]*string{}
	for k, v := range configs {
		cfg[k] = kadm.StringPtr(v)
	}
	cctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	if _, err := kadm.NewClient(cl).CreateTopic(cctx, partitions, rf, cfg, topic); err != nil {
		return fmt.Errorf("create topic %s: %w", topic, err)
	}
	return nil
}

// SetTopicConfigs sets topic configs with IncrementalAlterConfigs.
func SetTopicConfigs(ctx context.Context, brokers []string, topic string, set map[string]string) error {
	cl, err := kgo.NewClient(kgo.SeedBrokers(brokers...))
	if err != nil {
		return err
	}
	defer cl.Close()
	var alters []kadm.AlterConfig
	for k, v := range set {
		alters = append(alters, kadm.AlterConfig{Op: kadm.SetConfig, Name: k, Value: kadm.StringPtr(v)})
	}
	cctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	rs, err := kadm.NewClient(cl).AlterTopicConfigs(cctx, alters, topic)
	if err != nil {
		return fmt.Errorf("alter configs of %s: %w", topic, err)
	}
	for _, r := range rs {
		if r.Err != nil {
			return fmt.Errorf("alter configs of %s: %w (%s)", topic, r.Err, r.ErrMessage)
		}
	}
	return nil
}

// LatestTiered asks the partitions' leaders for the last offset in the bucket's manifest
// (ListOffsets timestamp -5, KIP-1005): -1 where nothing is tiered yet. It is the committed view of
// an upload: an object in the bucket counts once its manifest entry is committed.
func LatestTiered(ctx context.Context, cl *kgo.Client, topic string, partitions int32) (map[int32]int64, error) {
	req := kmsg.NewPtrListOffsetsRequest()
	req.ReplicaID = -1
	rt := kmsg.NewListOffsetsRequestTopic()
	rt.Topic = topic
	for p := int32(0); p < partitions; p++ {
		rp := kmsg.NewListOffsetsRequestTopicPartition()
		rp.Partition, rp.CurrentLeaderEpoch, rp.Timestamp = p, -1, -5
		rt.Partitions = append(rt.Partitions, rp)
	}
	req.Topics = append(req.Topics, rt)
	cctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	resp, err := req.RequestWith(cctx, cl)
	if err != nil {
		return nil, fmt.Errorf("ListOffsets -5 of %s: %w", topic, err)
	}
	out := map[int32]int64{}
	for _, t := range resp.Topics {
		for _, p := range t.Partitions {
			if err := kerr.ErrorForCode(p.ErrorCode); err != nil {
				return nil, fmt.Errorf("ListOffsets -5 of %s[%d]: %w", topic, p.Partition, err)
			}
			out[p.Partition] = p.Offset
		}
	}
	if len(out) != int(partitions) {
		return nil, fmt.Errorf("ListOffsets -5 of %s: %d of %d partitions answered", topic, len(out), partitions)
	}
	return out, nil
}

// Produce runs only the produce phase of c (c.Records records as fast as the client allows) on
// c.Topic, which must exist.
func Produce(ctx context.Context, c Config, log io.Writer) (Throughput, error) {
	if err := c.Validate(); err != nil {
		return Throughput{}, err
	}
	return producePhase(ctx, c, log)
}

// FixedRateLatency runs only the latency phase of c on c.Topic (created if missing).
func FixedRateLatency(ctx context.Context, c Config, log io.Writer) (Latency, error) {
	if err := c.Validate(); err != nil {
		return Latency{}, err
	}
	if err := ensureTopic(ctx, c); err != nil {
		return Latency{}, err
	}
	return latencyPhase(ctx, c, log)
}

// Replay reads topic's partitions from offset 0 up to (not including) ends[p] with a fresh
// consumer and returns the volume of record values over the wall time. Partitions with ends[p] <= 0
// are not read. Records at or past their end are fetched (a fetch returns whole batches) but not
// counted. progress, when not nil, gets the value bytes as they arrive. bytesPerSec > 0 paces the
// consumer (it stops polling while it is ahead of that rate; a fetch is still as large as it comes).
func Replay(ctx context.Context, brokers []string, topic string, ends map[int32]int64, timeout time.Duration, progress *atomic.Int64, bytesPerSec int64) (Throughput, error) {
	offsets := map[int32]kgo.Offset{}
	left := map[int32]int64{}
	for p, e := range ends {
		if e > 0 {
			offsets[p] = kgo.NewOffset().At(0)
			left[p] = e
		}
	}
	if len(offsets) == 0 {
		return Throughput{}, errors.New("replay: nothing to read")
	}
	cl, err := kgo.NewClient(
		kgo.SeedBrokers(brokers...),
		kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{topic: offsets}),
		kgo.FetchMaxBytes(50<<20),
		kgo.FetchMaxPartitionBytes(10<<20),
	)
	if err != nil {
		return Throughput{}, err
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	var t Throughput
	start := time.Now()
	for len(left) > 0 {
		fs := cl.PollFetches(ctx)
		if err := ctx.Err(); err != nil {
			t.Elapsed = time.Since(start)
			return t, fmt.Errorf("replayed %d records, %d partitions unfinished: %w", t.Records, len(left), err)
		}
		var ferr error
		fs.EachError(func(tp string, p int32, err error) {
			if ferr == nil {
				ferr = fmt.Errorf("%s[%d]: %w", tp, p, err)
			}
		})
		if ferr != nil {
			t.Elapsed = time.Since(start)
			return t, ferr
		}
		var done []int32
		fs.EachRecord(func(r *kgo.Record) {
			e, ok := ends[r.Partition]
			if !ok || r.Offset >= e {
				return
			}
			if t.Records == 0 {
				t.First = time.Since(start)
			}
			t.Records++
			t.Bytes += int64(len(r.Value))
			if progress != nil {
				progress.Add(int64(len(r.Value)))
			}
			if r.Offset == e-1 {
				done = append(done, r.Partition)
			}
		})
		for _, p := range done {
			delete(left, p)
		}
		if bytesPerSec > 0 {
			due := start.Add(time.Duration(float64(t.Bytes) / float64(bytesPerSec) * float64(time.Second)))
			if d := time.Until(due); d > 0 {
				select {
				case <-time.After(d):
				case <-ctx.Done():
				}
			}
		}
		if len(done) > 0 {
			cl.PauseFetchPartitions(map[string][]int32{topic: done})
		}
	}
	t.Elapsed = time.Since(start)
	return t, nil
}

// ObjectPutResult is a raw minio-go PUT of a given list of object sizes.
type ObjectPutResult struct {
	Objects     int           `json:"objects"`
	Bytes       int64         `json:"bytes"`
	Concurrency int           `json:"concurrency"`
	Elapsed     time.Duration `json:"elapsed_ns"`
}

func (o ObjectPutResult) MBps() float64 { return mbps(o.Bytes, o.Elapsed) }

// ObjectPutSizes PUTs one object of each size (random bytes) to bucket with minio-go, one PUT
// request per object (no multipart, as the broker sends a segment below its multipart threshold),
// at most concurrency at a time, then deletes them. It is the baseline of the broker's upload: the
// same bytes in the same object sizes to the same store.
func ObjectPutSizes(ctx context.Context, cl *minio.Client, bucket string, sizes []int64, concurrency int) (ObjectPutResult, error) {
	r := ObjectPutResult{Concurrency: max(concurrency, 1)}
	var biggest int64
	for _, s := range sizes {
		biggest = max(biggest, s)
	}
	data := make([]byte, biggest)
	rand.Read(data)
	prefix := fmt.Sprintf("sediment-bench-put-%d/", time.Now().UnixNano())
	var (
		mu       sync.Mutex
		keys     []string
		firstErr error
		next     atomic.Int64
		wg       sync.WaitGroup
	)
	defer func() {
		for _, k := range keys {
			cl.RemoveObject(context.Background(), bucket, k, minio.RemoveObjectOptions{})
		}
	}()
	start := time.Now()
	for w := 0; w < r.Concurrency; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := int(next.Add(1) - 1)
				if i >= len(sizes) || ctx.Err() != nil {
					return
				}
				k := fmt.Sprintf("%sobj-%05d", prefix, i)
				_, err := cl.PutObject(ctx, bucket, k, bytes.NewReader(data[:sizes[i]]), sizes[i], minio.PutObjectOptions{DisableMultipart: true})
				mu.Lock()
				if err != nil {
					if firstErr == nil {
						firstErr = fmt.Errorf("PUT %s: %w", k, err)
					}
				} else {
					keys = append(keys, k)
					r.Objects++
					r.Bytes += sizes[i]
				}
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	r.Elapsed = time.Since(start)
	if firstErr == nil {
		firstErr = ctx.Err()
	}
	return r, firstErr
}

// TierResult holds the tiering workloads of one run, each next to the baseline taken in the same
// run. A zero section was not measured; its *Err field says why.
type TierResult struct {
	Partitions   int32  `json:"partitions"`
	SegmentBytes int64  `json:"segment_bytes"`
	Records      int64  `json:"records"` // per topic (the tiered one and the local one)
	RecordSize   int    `json:"record_size"`
	Store        string `json:"store"` // what the bucket was

	Produced Throughput `json:"produced"` // the tiered topic's produce phase (remote storage still off)

	// Upload: remote.storage.enable switched on after the produce, until every closed segment is
	// an object in the bucket (upload lag zero).
	UploadObjects  int             `json:"upload_objects"`
	UploadBytes    int64           `json:"upload_bytes"` // object bytes in the bucket for the topic
	UploadElapsed  time.Duration   `json:"upload_elapsed_ns"`
	UploadRequests ProxyCounts     `json:"upload_requests"` // what went through the proxy meanwhile
	UploadErr      string          `json:"upload_error,omitempty"`
	RawPut         ObjectPutResult `json:"raw_put"`        // minio-go PUT of the same object sizes, same concurrency, after the upload
	RawPutBefore   ObjectPutResult `json:"raw_put_before"` // the same just before the upload (closed segment file sizes)
	RawPutRequests ProxyCounts     `json:"raw_put_requests"`
	RawPutErr      string          `json:"raw_put_error,omitempty"`

	// Replay: the same records read from offset 0, once from the bucket (tiered topic, local
	// segments deleted) and once from local disk (a topic with remote storage off), page caches
	// dropped before each where the bench owns the files.
	LocalTrimWait    time.Duration `json:"local_trim_wait_ns"`
	ReplayBucketRuns []ReplayRun   `json:"replay_bucket_runs"` // alternated with the local runs
	ReplayLocalRuns  []ReplayRun   `json:"replay_local_runs"`
	ReplayBucket     Throughput    `json:"replay_bucket"`          // the median bucket run
	ReplayRequests   ProxyCounts   `json:"replay_bucket_requests"` // GETs of the median bucket run (broker's /metrics: the replays bypass the proxy)
	ReplayLocal      Throughput    `json:"replay_local"`           // the median local run
	ReplayErr        string        `json:"replay_error,omitempty"`

	// Produce latency at a fixed rate without and with a replay from the bucket running.
	LatencyAlone      Latency         `json:"latency_alone"`       // before the replays
	LatencyAloneAfter Latency         `json:"latency_alone_after"` // after them
	DuringReplay      []ReplayLatency `json:"during_replay"`
	ReplayPace        int64           `json:"replay_pace_bytes_per_sec,omitempty"` // the background replay's pace (0 = as fast as it goes)
	// Interleaved runs (interleave.go): when there is one of kind "bucket cold", it carries the
	// target and the single-phase runs above are shown for reference.
	Interleaved []InterleavedLatency `json:"interleaved,omitempty"`
	LatencyErr  string               `json:"latency_error,omitempty"`

	Notes []string `json:"notes,omitempty"`
}

// ReplayLatency is one fixed-rate produce run while a consumer replays from the bucket in a loop.
type ReplayLatency struct {
	// Bucket is "cold" (the object store's files not in the page cache when the replay starts: the
	// bucket's disk reads compete with the broker's fsyncs when both share one disk, as here),
	// "warm" (read once just before, so the store serves from memory: only the broker's work remains),
	// or "local": the same replay of a topic on local disk, for reference (no target).
	Bucket   string      `json:"bucket"`
	Latency  Latency     `json:"latency"`
	Replay   Throughput  `json:"replay"`   // what the background replay read meanwhile
	Requests ProxyCounts `json:"requests"` // object-store GETs meanwhile (broker's /metrics)
}

// ReplayRun is one replay and what it fetched from the bucket.
type ReplayRun struct {
	Throughput
	GetBytes int64      `json:"get_bytes,omitempty"`
	Gets     int64      `json:"gets,omitempty"`
	CPU      *ReplayCPU `json:"cpu,omitempty"` // nil where /proc cannot be read
}

// ReplayCPU is where a replay's CPU went: the machine's busy and iowait shares over the replay, and
// the CPU time of the broker, the object store (a MinIO the bench started; 0 otherwise) and the
// consumer. On one machine the store's CPU comes out of the broker's and the consumer's: this is
// what separates "the bucket path costs more CPU" from "the bucket path waits". Measured over the
// consumer process's whole life, so its start (tens of ms of little work) is in the shares too.
type ReplayCPU struct {
	Busy     float64       `json:"machine_busy"`   // share of all CPUs' time busy (user, system, irq, steal)
	IOWait   float64       `json:"machine_iowait"` // share idle with disk reads pending
	Broker   time.Duration `json:"broker_ns"`      // the bench's own process, which hosts the broker
	Store    time.Duration `json:"store_ns,omitempty"`
	Consumer time.Duration `json:"consumer_ns,omitempty"` // the replay-worker child
}

// PerGB is d per GB (1e9 bytes) of bytes: CPU seconds per GB replayed.
func PerGB(d time.Duration, bytes int64) float64 {
	if bytes <= 0 {
		return 0
	}
	return d.Seconds() / (float64(bytes) / 1e9)
}

// String is the line the bench prints after a replay of bytes.
func (c *ReplayCPU) String(bytes int64, store string) string {
	s := fmt.Sprintf("CPU meanwhile: machine %.0f%% busy, %.0f%% iowait; CPU seconds per GB replayed: broker %.2f", 100*c.Busy, 100*c.IOWait, PerGB(c.Broker, bytes))
	if c.Store > 0 {
		s += fmt.Sprintf(", %s %.2f", store, PerGB(c.Store, bytes))
	}
	if c.Consumer > 0 {
		s += fmt.Sprintf(", consumer %.2f", PerGB(c.Consumer, bytes))
	}
	return s
}

// SetReplayMedians sets ReplayBucket/ReplayRequests and ReplayLocal to the median run of each side
// (by MB/s; the lower middle of an even count).
func (t *TierResult) SetReplayMedians() {
	med := func(runs []ReplayRun) (ReplayRun, bool) {
		if len(runs) == 0 {
			return ReplayRun{}, false
		}
		s := append([]ReplayRun(nil), runs...)
		sort.Slice(s, func(i, j int) bool { return s[i].MBps() < s[j].MBps() })
		return s[(len(s)-1)/2], true
	}
	if r, ok := med(t.ReplayBucketRuns); ok {
		t.ReplayBucket, t.ReplayRequests = r.Throughput, ProxyCounts{Gets: r.Gets, GetBytes: r.GetBytes}
	}
	if r, ok := med(t.ReplayLocalRuns); ok {
		t.ReplayLocal = r.Throughput
	}
}

func (t TierResult) UploadMBps() float64 { return mbps(t.UploadBytes, t.UploadElapsed) }

// PutsPerGiB is the PUT-class requests (PUT + POST through the proxy) per GiB uploaded.
func (t TierResult) PutsPerGiB() float64 {
	if t.UploadBytes <= 0 {
		return 0
	}
	return float64(t.UploadRequests.WriteRequests()) / (float64(t.UploadBytes) / (1 << 30))
}

// TierRow is one tiering figure next to its same-run baseline and the target for the ratio.
type TierRow struct {
	Metric   string  `json:"metric"`
	Unit     string  `json:"unit"`
	Value    float64 `json:"value"`
	Baseline float64 `json:"baseline,omitempty"`
	BaseName string  `json:"baseline_name,omitempty"`
	Ratio    float64 `json:"ratio,omitempty"` // value / baseline
	Target   string  `json:"target,omitempty"`
	Met      *bool   `json:"met,omitempty"`
	Missing  string  `json:"missing,omitempty"` // why there is no figure
}

// TierRows turns a TierResult into rows with ratios and the targets of issue 7.
func TierRows(t TierResult) []TierRow {
	var rows []TierRow
	met := func(ok bool) *bool { return &ok }
	msOf := func(d time.Duration) float64 { return float64(d) / 1e6 }
	if t.UploadErr != "" || t.UploadElapsed == 0 {
		rows = append(rows, TierRow{Metric: "upload to bucket", Unit: "MB/s", Missing: orDefault(t.UploadErr, "not measured")},
			TierRow{Metric: "PUT requests per GiB uploaded", Unit: "req/GiB", Missing: orDefault(t.UploadErr, "not measured")})
	} else {
		r := TierRow{Metric: "upload to bucket", Unit: "MB/s", Value: t.UploadMBps(), Target: ">= 0.8x raw PUT"}
		if t.RawPutErr == "" && t.RawPut.Elapsed > 0 {
			r.Baseline = t.RawPut.MBps()
			r.BaseName = fmt.Sprintf("minio-go PUT of the same %d object sizes, %d at a time, after the upload", t.RawPut.Objects, t.RawPut.Concurrency)
			if t.RawPutBefore.Elapsed > 0 {
				r.Baseline = mbps(t.RawPut.Bytes+t.RawPutBefore.Bytes, t.RawPut.Elapsed+t.RawPutBefore.Elapsed)
				r.BaseName = fmt.Sprintf("minio-go PUT of the same %d object sizes, %d at a time, once before and once after the upload (%.1f / %.1f MB/s)",
					t.RawPut.Objects, t.RawPut.Concurrency, t.RawPutBefore.MBps(), t.RawPut.MBps())
			}
			r.Ratio = r.Value / r.Baseline
			r.Met = met(r.Ratio >= 0.8)
		} else {
			r.Missing = "baseline: " + orDefault(t.RawPutErr, "not measured")
		}
		rows = append(rows, r)
		p := TierRow{Metric: "PUT requests per GiB uploaded", Unit: "req/GiB", Value: t.PutsPerGiB(), Target: "<= 16"}
		p.Met = met(p.Value <= 16)
		if t.RawPut.Bytes > 0 && t.RawPutRequests.WriteRequests() > 0 {
			p.Baseline = float64(t.RawPutRequests.WriteRequests()) / (float64(t.RawPut.Bytes) / (1 << 30))
			p.BaseName = "minio-go PUT of the same sizes"
			p.Ratio = p.Value / p.Baseline
		}
		rows = append(rows, p)
	}
	if t.ReplayErr != "" || t.ReplayBucket.Elapsed == 0 {
		rows = append(rows, TierRow{Metric: "replay from bucket", Unit: "MB/s", Missing: orDefault(t.ReplayErr, "not measured")})
	} else {
		r := TierRow{Metric: "replay from bucket", Unit: "MB/s", Value: t.ReplayBucket.MBps(), Target: ">= 0.8x local disk"}
		if t.ReplayLocal.Elapsed > 0 {
			r.Baseline, r.BaseName = t.ReplayLocal.MBps(), "the same records from local disk"
			r.Ratio = r.Value / r.Baseline
			r.Met = met(r.Ratio >= 0.8)
		}
		rows = append(rows, r)
	}
	if len(t.DuringReplay) == 0 {
		rows = append(rows, TierRow{Metric: "produce ack p99 during replay", Unit: "ms", Missing: orDefault(t.LatencyErr, "not measured")})
	}
	// The baseline is the run without a replay, or the mean of the runs before and after the replays.
	alone := func(f func(Latency) time.Duration) time.Duration {
		if t.LatencyAloneAfter.Sent == 0 {
			return f(t.LatencyAlone)
		}
		return (f(t.LatencyAlone) + f(t.LatencyAloneAfter)) / 2
	}
	baseName := "same rate, no replay"
	if t.LatencyAloneAfter.Sent > 0 {
		baseName = fmt.Sprintf("same rate, no replay: mean of the runs before and after the replays (ack p99 %.2f / %.2f ms)",
			msOf(t.LatencyAlone.AckP99), msOf(t.LatencyAloneAfter.AckP99))
	}
	interleaved := false
	for _, il := range t.Interleaved {
		if il.Alone.Acks == 0 || il.During.Acks == 0 {
			continue
		}
		// The target is on the median of the window pairs' ratios (interleave.go: the pooled
		// ratio's spread with no replay at all exceeds the target's tolerance); the pooled
		// ratio follows as a reference.
		r := TierRow{Metric: "produce ack p99 during replay (interleaved, " + il.Kind + ")", Unit: "ms",
			Value: il.Paired.DuringP99ms, Baseline: il.Paired.AloneP99ms, Ratio: il.Paired.RatioMedian,
			BaseName: fmt.Sprintf("the window without the replay next to each window with it: median over %d pairs of the pairs' p99 ratios (10th-90th percentile %.2f-%.2f; value and baseline: median p99 of each kind), %s windows, the first %s of each not counted",
				il.Paired.Pairs, il.Paired.RatioP10, il.Paired.RatioP90, il.Window, il.Skip)}
		if il.Paired.Pairs == 0 {
			r = TierRow{Metric: r.Metric, Unit: "ms", Missing: fmt.Sprintf("no pair of windows with %d acks on each side", minPairAcks)}
		}
		if il.Kind == "bucket cold" {
			r.Target, interleaved = "<= 1.2x", true
			if il.Paired.Pairs > 0 {
				r.Met = met(r.Ratio <= 1.2)
			}
		}
		rows = append(rows, r)
		rows = append(rows, TierRow{Metric: "produce ack p99 during replay (interleaved, " + il.Kind + ", pooled)", Unit: "ms",
			Value: il.During.P99ms, Baseline: il.Alone.P99ms, Ratio: il.Ratio(),
			BaseName: fmt.Sprintf("the same run's windows without the replay: %d × %s windows of each kind alternated, the first %s of each not counted, acks pooled (%d with, %d without)",
				il.During.Windows, il.Window, il.Skip, il.During.Acks, il.Alone.Acks)})
	}
	for _, d := range t.DuringReplay {
		for _, q := range []struct {
			name   string
			v, b   time.Duration
			target bool
		}{
			{"produce ack p99 during replay", d.Latency.AckP99, alone(func(l Latency) time.Duration { return l.AckP99 }), true},
			{"produce ack p50 during replay", d.Latency.AckP50, alone(func(l Latency) time.Duration { return l.AckP50 }), false},
			{"e2e p99 during replay", d.Latency.P99, alone(func(l Latency) time.Duration { return l.P99 }), false},
		} {
			suffix := " (bucket " + d.Bucket + ")"
			if d.Bucket == "local" {
				suffix, q.target = " (from local disk, reference)", false
			}
			r := TierRow{Metric: q.name + suffix, Unit: "ms", Value: msOf(q.v), Baseline: msOf(q.b), BaseName: baseName}
			if q.b > 0 {
				r.Ratio = float64(q.v) / float64(q.b)
			}
			if interleaved && q.target {
				// The interleaved run carries the target; this single phase is a reference.
				suffix, q.target = strings.TrimSuffix(suffix, ")")+", single phase)", false
			}
			r.Metric = q.name + suffix
			if q.target && r.Ratio > 0 {
				r.Target = "<= 1.2x"
				r.Met = met(r.Ratio <= 1.2)
			}
			rows = append(rows, r)
		}
	}
	if t.LatencyErr != "" && len(t.DuringReplay) > 0 {
		rows = append(rows, TierRow{Metric: "produce ack p99 during replay (incomplete)", Unit: "ms", Missing: t.LatencyErr})
	}
	return rows
}

func orDefault(s, d string) string {
	if s == "" {
		return d
	}
	return s
}

// writeTier prints the tiering section of the report.
func writeTier(w io.Writer, t *TierResult, rows []TierRow) {
	fmt.Fprintf(w, "\ntiering (%s): %d partitions, segment.bytes %d MiB, %d records of %d B per topic\n",
		t.Store, t.Partitions, t.SegmentBytes>>20, t.Records, t.RecordSize)
	if t.UploadElapsed > 0 {
		fmt.Fprintf(w, "  upload: %d objects, %.1f MiB in %.2fs after remote.storage.enable=true; through the proxy meanwhile: %d PUT, %d POST, %d GET, %d other, %d errors\n",
			t.UploadObjects, float64(t.UploadBytes)/(1<<20), t.UploadElapsed.Seconds(), t.UploadRequests.Puts, t.UploadRequests.Posts,
			t.UploadRequests.Gets, t.UploadRequests.Other, t.UploadRequests.Errors)
	}
	if t.RawPutBefore.Elapsed > 0 {
		fmt.Fprintf(w, "  raw PUT before the upload: %d objects, %.1f MiB, %d at a time in %.2fs\n", t.RawPutBefore.Objects,
			float64(t.RawPutBefore.Bytes)/(1<<20), t.RawPutBefore.Concurrency, t.RawPutBefore.Elapsed.Seconds())
	}
	if t.RawPut.Elapsed > 0 {
		fmt.Fprintf(w, "  raw PUT after the upload: %d objects, %.1f MiB, %d at a time in %.2fs (%d PUT, %d POST)\n", t.RawPut.Objects,
			float64(t.RawPut.Bytes)/(1<<20), t.RawPut.Concurrency, t.RawPut.Elapsed.Seconds(), t.RawPutRequests.Puts, t.RawPutRequests.Posts)
	}
	if t.ReplayBucket.Elapsed > 0 {
		fmt.Fprintf(w, "  replay (median of %d alternated runs each): %d records from the bucket in %.2fs (GET %.1f MiB in %d requests, broker's object-store metrics); from local disk in %.2fs\n",
			len(t.ReplayBucketRuns), t.ReplayBucket.Records, t.ReplayBucket.Elapsed.Seconds(), float64(t.ReplayRequests.GetBytes)/(1<<20), t.ReplayRequests.Gets, t.ReplayLocal.Elapsed.Seconds())
		var b, l, bf, lf []string
		for _, r := range t.ReplayBucketRuns {
			b = append(b, fmt.Sprintf("%.1f", r.MBps()))
			bf = append(bf, fmt.Sprintf("%.1f", ms(r.First)))
		}
		for _, r := range t.ReplayLocalRuns {
			l = append(l, fmt.Sprintf("%.1f", r.MBps()))
			lf = append(lf, fmt.Sprintf("%.1f", ms(r.First)))
		}
		fmt.Fprintf(w, "  replay runs MB/s: bucket %s; local %s\n", strings.Join(b, " / "), strings.Join(l, " / "))
		fmt.Fprintf(w, "  replay runs, first record after ms: bucket %s; local %s\n", strings.Join(bf, " / "), strings.Join(lf, " / "))
		if b, l := replayCPUMedians(t.ReplayBucketRuns), replayCPUMedians(t.ReplayLocalRuns); b != "" && l != "" {
			fmt.Fprintf(w, "  replay CPU (medians of the runs): bucket: %s; local: %s\n", b, l)
		}
	}
	if len(t.DuringReplay) > 0 {
		fmt.Fprintf(w, "  latency: %.0f rec/s alone (ack p50/p99/p99.9 %.2f/%.2f/%.2f ms)\n",
			t.LatencyAlone.AchievedRate, ms(t.LatencyAlone.AckP50), ms(t.LatencyAlone.AckP99), ms(t.LatencyAlone.AckP999))
	}
	if t.LatencyAloneAfter.Sent > 0 {
		fmt.Fprintf(w, "  latency: %.0f rec/s alone again after the replays (ack p50/p99/p99.9 %.2f/%.2f/%.2f ms)\n",
			t.LatencyAloneAfter.AchievedRate, ms(t.LatencyAloneAfter.AckP50), ms(t.LatencyAloneAfter.AckP99), ms(t.LatencyAloneAfter.AckP999))
	}
	for _, d := range t.DuringReplay {
		fmt.Fprintf(w, "  latency: %.0f rec/s during a replay, %s (ack p50/p99/p99.9 %.2f/%.2f/%.2f ms) while the replay (%s) read %.1f MB/s (GET %.1f MiB from the bucket)\n",
			d.Latency.AchievedRate, map[string]string{"cold": "bucket cold", "warm": "bucket warm", "local": "from local disk"}[d.Bucket], ms(d.Latency.AckP50), ms(d.Latency.AckP99), ms(d.Latency.AckP999),
			pace(t.ReplayPace), d.Replay.MBps(), float64(d.Requests.GetBytes)/(1<<20))
	}
	for _, il := range t.Interleaved {
		fmt.Fprintf(w, "  latency, interleaved (%s): %d + %d windows of %s, ack p50/p99/p99.9 with the replay %.2f/%.2f/%.2f ms (%d acks), without %.2f/%.2f/%.2f ms (%d acks); the replay read %.1f MB/s over the run\n",
			il.Kind, il.During.Windows, il.Alone.Windows, il.Window, il.During.P50ms, il.During.P99ms, il.During.P999ms, il.During.Acks,
			il.Alone.P50ms, il.Alone.P99ms, il.Alone.P999ms, il.Alone.Acks, il.Replay.MBps())
		fmt.Fprintf(w, "  latency, interleaved (%s): %d window pairs, p99 ratio with/without the replay: median %.2f, 10th-90th percentile %.2f-%.2f\n",
			il.Kind, il.Paired.Pairs, il.Paired.RatioMedian, il.Paired.RatioP10, il.Paired.RatioP90)
	}
	tw := newTable(w)
	fmt.Fprintln(tw, "metric\tunit\tsediment\tbaseline\tratio\ttarget\tmet\t")
	for _, r := range rows {
		if r.Missing != "" && r.Value == 0 {
			fmt.Fprintf(tw, "%s\t%s\tmissing\t-\t-\t-\t-\t\n", r.Metric, r.Unit)
			continue
		}
		base, ratio, met := "-", "-", "-"
		if r.Baseline > 0 {
			base = fmt.Sprintf("%.2f", r.Baseline)
		}
		if r.Ratio > 0 {
			ratio = fmt.Sprintf("%.2f", r.Ratio)
		}
		if r.Met != nil {
			met = map[bool]string{true: "yes", false: "no"}[*r.Met]
		}
		fmt.Fprintf(tw, "%s\t%s\t%.2f\t%s\t%s\t%s\t%s\t\n", r.Metric, r.Unit, r.Value, base, ratio, orDefault(r.Target, "-"), met)
	}
	tw.Flush()
	for _, r := range rows {
		if r.BaseName != "" {
			fmt.Fprintf(w, "  %s baseline: %s\n", r.Metric, r.BaseName)
		}
		if r.Missing != "" {
			fmt.Fprintf(w, "  %s: missing: %s\n", r.Metric, r.Missing)
		}
	}
	for _, n := range t.Notes {
		fmt.Fprintf(w, "  note: %s\n", n)
	}
}

func ms(d time.Duration) float64 { return float64(d) / 1e6 }

func pace(bytesPerSec int64) string {
	if bytesPerSec <= 0 {
		return "unpaced"
	}
	return fmt.Sprintf("paced at %.0f MB/s", float64(bytesPerSec)/(1<<20))
}

func newTable(w io.Writer) *tabwriter.Writer {
	return tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
}

// replayCPUMedians summarises the runs' CPU figures, each the median over the runs that have one
// ("" when none has).
func replayCPUMedians(runs []ReplayRun) string {
	var busy, iowait, broker, store, consumer []float64
	for _, r := range runs {
		if r.CPU == nil {
			continue
		}
		busy, iowait = append(busy, r.CPU.Busy), append(iowait, r.CPU.IOWait)
		broker = append(broker, PerGB(r.CPU.Broker, r.Bytes))
		store = append(store, PerGB(r.CPU.Store, r.Bytes))
		consumer = append(consumer, PerGB(r.CPU.Consumer, r.Bytes))
	}
	if len(busy) == 0 {
		return ""
	}
	med := func(v []float64) float64 {
		v = slices.Clone(v)
		slices.Sort(v)
		return v[(len(v)-1)/2]
	}
	return fmt.Sprintf("machine %.0f%% busy, %.0f%% iowait; CPU s/GB broker %.2f, store %.2f, consumer %.2f",
		100*med(busy), 100*med(iowait), med(broker), med(store), med(consumer))
}
