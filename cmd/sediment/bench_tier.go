package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/minio/minio-go/v7"
	"github.com/minio/minio-go/v7/pkg/credentials"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/sediment-io/sediment/broker"
	"github.com/sediment-io/sediment/internal/loadgen"
	"github.com/sediment-io/sediment/internal/testport"
	"github.com/sediment-io/sediment/localstack"
	"github.com/sediment-io/sediment/meta"
	"github.com/sediment-io/sediment/tiering"
)

// tierOptions are the flags of the tiering workloads (issue 7's figures).
type tierOptions struct {
	mode             string // on, off, auto
	mib              int64  // volume per topic
	partitions       int32
	segmentMiB       int64
	minioMode        string // binary discovery, as --minio
	endpoint         string // an already running S3 endpoint instead of starting MinIO
	accessKey        string
	secretKey        string
	bucket           string
	trimWait         time.Duration
	latencyFor       time.Duration
	uploadTimeout    time.Duration
	replayPace       int64 // bytes/s of the replay during the latency run (0 = unpaced)
	replays          int   // bucket/local replay pairs, alternated
	replayInProc     bool  // replay consumers in this process, not replay-worker children (bench_replay.go)
	interleavePairs  int   // interleaved latency run: windows of each kind (0 = none)
	interleaveWindow time.Duration
	conf             []string                       // extra broker configs KEY=VALUE (--tier-conf)
	onPhase          func(phase string, start bool) // called around tier-upload, tier-replay-bucket, tier-replay-local, tier-latency-replay
}

func (o tierOptions) phase(name string, start bool) {
	if o.onPhase != nil {
		o.onPhase(name, start)
	}
}

// tierStore is the bucket the tiering workloads use: a MinIO we started or one given by
// --minio-endpoint, seen through a counting proxy (the broker and the raw PUT both go through it).
type tierStore struct {
	srv      *localstack.Server // nil with --minio-endpoint
	proxy    *loadgen.CountingProxy
	direct   *minio.Client // straight to MinIO: listing the bucket does not disturb the counts
	viaProxy *minio.Client // the raw PUT baseline takes the same path as the broker
	bucket   string
	// prefix is the key prefix the broker's objects go under: "" in a MinIO the bench started (its
	// data dir is new each run), a per-run prefix in a --minio-endpoint bucket, whose earlier runs'
	// clusters have claimed their own prefixes (tiering.ClaimStore) and must not meet this one.
	prefix   string
	endpoint string // the store itself, not the proxy
	dataDir  string // MinIO's data dir when we started it (its page cache can be dropped)
	desc     string
}

// pid is the MinIO process the bench started, 0 with --minio-endpoint (not ours to watch).
func (s *tierStore) pid() int {
	if s.srv == nil {
		return 0
	}
	return s.srv.Pid()
}

// url is the broker's --object-store for the bucket at endpoint (the proxy or the store itself).
func (s *tierStore) url(endpoint string) string {
	where := s.bucket
	if s.prefix != "" {
		where += "/" + s.prefix
	}
	return "s3://" + where + "?endpoint=" + endpoint + "&region=" + localstack.DefaultRegion + "&path-style=true"
}

// key is the bucket key of a broker's object key.
func (s *tierStore) key(k string) string {
	if s.prefix == "" {
		return k
	}
	return s.prefix + "/" + k
}

func (s *tierStore) close() {
	if s.proxy != nil {
		s.proxy.Close()
	}
	if s.srv != nil {
		s.srv.Stop()
	}
}

func openTierStore(ctx context.Context, o tierOptions, parent string) (*tierStore, error) {
	s := &tierStore{bucket: o.bucket}
	endpoint, access, secret := o.endpoint, o.accessKey, o.secretKey
	if endpoint == "" {
		if o.minioMode == "off" {
			return nil, errors.New("no bucket: --minio off and no --minio-endpoint")
		}
		bin, err := minioBinary(o.minioMode)
		if err != nil {
			return nil, err
		}
		s.dataDir = filepath.Join(parent, "tier-minio")
		os.RemoveAll(s.dataDir) // the bench's own dir: an earlier run's bucket would skew the figures
		if err := os.MkdirAll(s.dataDir, 0o755); err != nil {
			return nil, err
		}
		srv, err := localstack.Start(ctx, localstack.Options{Binary: bin, DataDir: s.dataDir, Bucket: o.bucket})
		if err != nil {
			return nil, fmt.Errorf("starting MinIO: %w", err)
		}
		s.srv = srv
		endpoint, access, secret, s.bucket = srv.Endpoint, srv.AccessKey, srv.SecretKey, srv.Bucket
		s.desc = "MinIO started by the bench on loopback, data in " + s.dataDir
	} else {
		s.prefix = fmt.Sprintf("sediment-bench-%d", time.Now().UnixNano())
		s.desc = "S3 endpoint " + endpoint + " (--minio-endpoint), objects under " + s.prefix + "/"
	}
	s.endpoint = endpoint
	var err error
	if s.proxy, err = loadgen.StartCountingProxy(endpoint); err != nil {
		s.close()
		return nil, err
	}
	mk := func(ep string) (*minio.Client, error) {
		host := strings.TrimPrefix(strings.TrimPrefix(ep, "http://"), "https://")
		return minio.New(host, &minio.Options{Creds: credentials.NewStaticV4(access, secret, ""),
			Secure: strings.HasPrefix(ep, "https://"), Region: localstack.DefaultRegion, BucketLookup: minio.BucketLookupPath})
	}
	if s.direct, err = mk(endpoint); err == nil {
		s.viaProxy, err = mk(s.proxy.URL)
	}
	if err != nil {
		s.close()
		return nil, err
	}
	if ok, err := s.direct.BucketExists(ctx, s.bucket); err != nil || !ok {
		s.close()
		return nil, fmt.Errorf("bucket %q at %s: exists=%v err=%v", s.bucket, endpoint, ok, err)
	}
	// The broker's S3 client takes credentials from the standard chain.
	os.Setenv("AWS_ACCESS_KEY_ID", access)
	os.Setenv("AWS_SECRET_ACCESS_KEY", secret)
	os.Setenv("AWS_REGION", localstack.DefaultRegion)
	return s, nil
}

// tierBroker is the in-process broker of the tiering workloads, restartable on the same ports.
type tierBroker struct {
	cfg broker.Config
	b   *broker.Broker
}

func startTierBroker(ctx context.Context, dir string, store *tierStore, extra []string) (*tierBroker, error) {
	cfg := broker.DefaultConfig()
	cfg.DataDir = dir
	cfg.ObjectStore = store.url(store.proxy.URL)
	cfg.Listen = "127.0.0.1:0"
	// Below the ephemeral range: the restart binds this port again, and an outgoing connection
	// could otherwise take it in between.
	raft, err := testport.Addr()
	if err != nil {
		return nil, err
	}
	cfg.RaftListen = raft
	cfg.HTTPListen = "127.0.0.1:0" // /metrics: the object-store counters once the proxy is out of the path
	cfg.Logger = slog.New(slog.DiscardHandler)
	for k, v := range map[string]string{
		"log.flush.policy":                 "always",
		"log.retention.check.interval.ms":  "200",
		"remote.log.storage.system.enable": "true",
	} {
		if err := cfg.Set(k, v); err != nil {
			return nil, fmt.Errorf("broker config %s=%s: %w", k, v, err)
		}
	}
	for _, kv := range extra { // --tier-conf, after the bench's own settings
		k, v, _ := strings.Cut(kv, "=")
		if err := cfg.Set(k, v); err != nil {
			return nil, fmt.Errorf("--tier-conf %s: %w", kv, err)
		}
	}
	tb := &tierBroker{cfg: cfg}
	return tb, tb.start(ctx)
}

func (tb *tierBroker) start(ctx context.Context) error {
	sctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	b, err := broker.Start(sctx, tb.cfg)
	if err != nil {
		return fmt.Errorf("starting the in-process broker: %w", err)
	}
	tb.b = b
	tb.cfg.Listen = b.Addr() // a restart keeps the address clients know
	return nil
}

func (tb *tierBroker) restart(ctx context.Context) error {
	tb.b.Close()
	return tb.start(ctx)
}

func (tb *tierBroker) close() {
	if tb.b != nil {
		tb.b.Close()
	}
}

func (tb *tierBroker) brokers() []string { return []string{tb.b.Addr()} }

// storeGets reads the broker's object-store GET counters from its /metrics (MeteredStore): requests
// and body bytes. Used for the replays, which run with the broker talking to the store directly.
func (tb *tierBroker) storeGets(ctx context.Context) (loadgen.ProxyCounts, error) {
	var c loadgen.ProxyCounts
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+tb.b.HTTPAddr()+"/metrics", nil)
	if err != nil {
		return c, err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return c, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return c, err
	}
	found := 0
	for _, line := range strings.Split(string(body), "\n") {
		for prefix, dst := range map[string]*int64{
			`sediment_objectstore_requests_total{op="get"} `: &c.Gets,
			`sediment_objectstore_bytes_total{op="get"} `:    &c.GetBytes,
		} {
			if v, ok := strings.CutPrefix(line, prefix); ok {
				if n, err := strconv.ParseInt(strings.TrimSpace(v), 10, 64); err == nil {
					*dst = n
					found++
				}
			}
		}
	}
	if found != 2 {
		return c, fmt.Errorf("/metrics of the broker lacks sediment_objectstore_{requests,bytes}_total{op=\"get\"}")
	}
	return c, nil
}

// partitionDirs finds topic's partition directories under the broker's logs dir
// (<topic>-<partition>.<topic id>) and returns them by partition, with the topic id.
func partitionDirs(dataDir, topic string) (map[int32]string, meta.TopicID, error) {
	var id meta.TopicID
	logs := filepath.Join(dataDir, "logs")
	ents, err := os.ReadDir(logs)
	if err != nil {
		return nil, id, err
	}
	dirs := map[int32]string{}
	for _, e := range ents {
		rest, ok := strings.CutPrefix(e.Name(), topic+"-")
		if !ok || !e.IsDir() {
			continue
		}
		ps, ids, ok := strings.Cut(rest, ".")
		if !ok {
			continue
		}
		p, err := strconv.ParseInt(ps, 10, 32)
		if err != nil {
			continue
		}
		var pid meta.TopicID
		if err := pid.UnmarshalText([]byte(ids)); err != nil {
			continue
		}
		id = pid
		dirs[int32(p)] = filepath.Join(logs, e.Name())
	}
	if len(dirs) == 0 {
		return nil, id, fmt.Errorf("no partition directories of %s under %s", topic, logs)
	}
	return dirs, id, nil
}

// localBases lists the base offsets of the segment files in a partition dir, ascending; the last
// one is the active segment.
func localBases(dir string) ([]int64, error) {
	ents, err := os.ReadDir(dir)
	if err != nil {
		return nil, err
	}
	var bases []int64
	for _, e := range ents {
		if s, ok := strings.CutSuffix(e.Name(), ".log"); ok {
			if b, err := strconv.ParseInt(s, 10, 64); err == nil {
				bases = append(bases, b)
			}
		}
	}
	slices.Sort(bases)
	return bases, nil
}

// closedSegmentSizes is the file sizes of topic's closed local segments.
func closedSegmentSizes(dataDir, topic string) ([]int64, error) {
	dirs, _, err := partitionDirs(dataDir, topic)
	if err != nil {
		return nil, err
	}
	var sizes []int64
	for _, d := range dirs {
		bases, err := localBases(d)
		if err != nil {
			return nil, err
		}
		for _, b := range bases[:max(len(bases)-1, 0)] {
			st, err := os.Stat(filepath.Join(d, fmt.Sprintf("%020d.log", b)))
			if err != nil {
				return nil, err
			}
			sizes = append(sizes, st.Size())
		}
	}
	slices.SortFunc(sizes, func(a, b int64) int { return int(b - a) })
	return sizes, nil
}

type bucketObject struct {
	partition int32
	base      int64
	size      int64
}

// bucketObjects lists the topic's segment objects (one per base offset; a second attempt's object
// for the same base, an orphan, is counted once).
func bucketObjects(ctx context.Context, store *tierStore, id meta.TopicID) (map[int32]map[int64]int64, error) {
	out := map[int32]map[int64]int64{}
	for o := range store.direct.ListObjects(ctx, store.bucket, minio.ListObjectsOptions{Prefix: store.key(tiering.TopicPrefix(id)), Recursive: true}) {
		if o.Err != nil {
			return nil, o.Err
		}
		k, err := tiering.ParseSegmentKey(strings.TrimPrefix(o.Key, store.key("")))
		if err != nil || k.Topic != id {
			continue
		}
		if out[k.Partition] == nil {
			out[k.Partition] = map[int64]int64{}
		}
		out[k.Partition][k.BaseOffset] = o.Size
	}
	return out, nil
}

// manifestLag counts the partitions of topic whose manifest end (ListOffsets -5 through cl) does not
// yet reach the active local segment: the broker's upload lag (closed segments not committed),
// seen from outside. Cheap enough to poll while the upload runs: a directory read per partition and
// one ListOffsets on an open connection, nothing asked of the object store.
func manifestLag(ctx context.Context, cl *kgo.Client, dataDir, topic string, partitions int32) (int, error) {
	dirs, _, err := partitionDirs(dataDir, topic)
	if err != nil {
		return 0, err
	}
	tiered, err := loadgen.LatestTiered(ctx, cl, topic, partitions)
	if err != nil {
		return 0, err
	}
	lag := 0
	for p, dir := range dirs {
		bases, err := localBases(dir)
		if err != nil {
			return 0, err
		}
		if n := len(bases); n > 0 && bases[n-1] > 0 && tiered[p] < bases[n-1]-1 {
			lag++
		}
	}
	return lag, nil
}

// uploadedObjects lists topic's objects in the bucket and counts the closed local segments that have
// none (0 once the manifest is complete: an entry is committed only after its object is PUT).
func uploadedObjects(ctx context.Context, s *tierStore, dataDir, topic string) (objs []bucketObject, missing int, err error) {
	dirs, id, err := partitionDirs(dataDir, topic)
	if err != nil {
		return nil, 0, err
	}
	inBucket, err := bucketObjects(ctx, s, id)
	if err != nil {
		return nil, 0, err
	}
	for p, dir := range dirs {
		bases, err := localBases(dir)
		if err != nil {
			return nil, 0, err
		}
		for _, b := range bases[:max(len(bases)-1, 0)] {
			if _, ok := inBucket[p][b]; !ok {
				missing++
			}
		}
	}
	for p, m := range inBucket {
		for b, size := range m {
			objs = append(objs, bucketObject{p, b, size})
		}
	}
	return objs, missing, nil
}

// runTier runs the tiering workloads: upload, replay from the bucket vs local disk, produce latency
// during a replay. Every failure is recorded in the result (never a figure made up); the error
// returned is the first of them.
func runTier(ctx context.Context, o tierOptions, c loadgen.Config, parent string, out io.Writer) (*loadgen.TierResult, error) {
	t := &loadgen.TierResult{Partitions: o.partitions, SegmentBytes: o.segmentMiB << 20, RecordSize: c.RecordSize}
	t.Records = (o.mib << 20) / int64(c.RecordSize)
	fail := func(field *string, err error) error {
		*field = err.Error()
		fmt.Fprintf(out, "  tiering: %v\n", err)
		return err
	}
	store, err := openTierStore(ctx, o, parent)
	if err != nil {
		t.Store = "none"
		t.UploadErr = err.Error()
		return t, err
	}
	defer store.close()
	t.Store = store.desc
	dir := filepath.Join(parent, "tier-broker")
	os.RemoveAll(dir) // the bench's own dir: topics left by an earlier run with the same --data-dir
	tb, err := startTierBroker(ctx, dir, store, o.conf)
	if err != nil {
		return t, fail(&t.UploadErr, err)
	}
	defer tb.close()
	fmt.Fprintf(out, "== tiering: Sediment at %s, bucket %s through proxy %s (load1 %.2f)\n", tb.b.Addr(), store.bucket, store.proxy.URL, loadgen.LoadAvg()[0])

	tiered, local := c.Topic+"-tiered", c.Topic+"-local"
	seg := strconv.FormatInt(o.segmentMiB<<20, 10)
	for topic, remote := range map[string]string{tiered: "false", local: "false"} {
		cfgs := map[string]string{"segment.bytes": seg, "remote.storage.enable": remote}
		if topic == tiered {
			// Local copies go as soon as they are uploaded (retention checked every 200 ms).
			cfgs["local.retention.ms"] = "1000"
		}
		if err := loadgen.CreateTopicWithConfigs(ctx, tb.brokers(), topic, o.partitions, 1, cfgs); err != nil {
			return t, fail(&t.UploadErr, err)
		}
	}
	pc := c
	pc.Brokers, pc.Partitions, pc.Records, pc.OnPhase = tb.brokers(), o.partitions, t.Records, nil
	for _, topic := range []string{tiered, local} {
		pc.Topic = topic
		fmt.Fprintf(out, "produce: %d records of %d B to %s (remote storage off for now)\n", pc.Records, pc.RecordSize, topic)
		th, err := loadgen.Produce(ctx, pc, out)
		if err != nil {
			return t, fail(&t.UploadErr, fmt.Errorf("produce to %s: %w", topic, err))
		}
		if topic == tiered {
			t.Produced = th
		}
	}

	// Upload: switch remote storage on and time until every closed segment's manifest entry is
	// committed (its object PUT before that).
	// The raw PUT baseline runs once before and once after the upload (the machine's load drifts);
	// before the upload the object sizes are the closed segment files' (the objects add a footer).
	segSizes, err := closedSegmentSizes(dir, tiered)
	if err != nil {
		return t, fail(&t.UploadErr, err)
	}
	if len(segSizes) == 0 {
		return t, fail(&t.UploadErr, fmt.Errorf("no closed segment to upload: %d MiB over %d partitions does not fill one %d MiB segment", o.mib, o.partitions, o.segmentMiB))
	}
	if rp, err := loadgen.ObjectPutSizes(ctx, store.viaProxy, store.bucket, segSizes, int(o.partitions)); err != nil {
		fail(&t.RawPutErr, err)
	} else {
		t.RawPutBefore = rp
		fmt.Fprintf(out, "raw PUT before the upload: %d objects, %.1f MiB, %d at a time: %.1f MB/s\n", rp.Objects, float64(rp.Bytes)/(1<<20), rp.Concurrency, rp.MBps())
	}
	fmt.Fprintf(out, "upload: remote.storage.enable=true on %s\n", tiered)
	pcl, err := kgo.NewClient(kgo.SeedBrokers(tb.brokers()...)) // one connection for the polling
	if err != nil {
		return t, fail(&t.UploadErr, err)
	}
	defer pcl.Close()
	if _, err := loadgen.LatestTiered(ctx, pcl, tiered, o.partitions); err != nil { // connected, metadata known
		return t, fail(&t.UploadErr, err)
	}
	before := store.proxy.Counts()
	o.phase("tier-upload", true)
	defer o.phase("tier-upload", false) // after a failure; a no-op after the phase ended
	start := time.Now()
	if err := loadgen.SetTopicConfigs(ctx, tb.brokers(), tiered, map[string]string{"remote.storage.enable": "true"}); err != nil {
		return t, fail(&t.UploadErr, err)
	}
	deadline := start.Add(o.uploadTimeout)
	for {
		lag, err := manifestLag(ctx, pcl, dir, tiered, o.partitions)
		if err != nil {
			return t, fail(&t.UploadErr, err)
		}
		if lag == 0 {
			break
		}
		if time.Now().After(deadline) || ctx.Err() != nil {
			return t, fail(&t.UploadErr, fmt.Errorf("upload lag: the manifest of %d partitions still short of the active segment %s after remote.storage.enable=true (proxy saw %d PUT)",
				lag, o.uploadTimeout, store.proxy.Counts().Sub(before).Puts))
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.UploadElapsed = time.Since(start)
	o.phase("tier-upload", false)
	t.UploadRequests = store.proxy.Counts().Sub(before)
	objs, missing, err := uploadedObjects(ctx, store, dir, tiered)
	if err != nil {
		return t, fail(&t.UploadErr, err)
	}
	if missing > 0 {
		return t, fail(&t.UploadErr, fmt.Errorf("the manifest is complete but %d closed local segments have no object in the bucket", missing))
	}
	var sizes []int64
	for _, ob := range objs {
		sizes = append(sizes, ob.size)
		t.UploadBytes += ob.size
	}
	t.UploadObjects = len(objs)
	fmt.Fprintf(out, "upload: %d objects, %.1f MiB in %.2fs: %.1f MB/s\n", t.UploadObjects, float64(t.UploadBytes)/(1<<20), t.UploadElapsed.Seconds(), t.UploadMBps())

	// The same bytes, the same object sizes, as many at a time as there are partitions.
	slices.SortFunc(sizes, func(a, b int64) int { return int(b - a) })
	before = store.proxy.Counts()
	rp, err := loadgen.ObjectPutSizes(ctx, store.viaProxy, store.bucket, sizes, int(o.partitions))
	t.RawPut, t.RawPutRequests = rp, store.proxy.Counts().Sub(before)
	if err != nil {
		fail(&t.RawPutErr, err)
	} else {
		fmt.Fprintf(out, "raw PUT after the upload: %d objects, %.1f MiB, %d at a time: %.1f MB/s\n", rp.Objects, float64(rp.Bytes)/(1<<20), rp.Concurrency, rp.MBps())
	}

	// Replay: wait until local retention has removed the uploaded local copies.
	var localEnds map[int32]int64
	ends, err := waitLocalTrim(ctx, dir, tiered, o.trimWait, t)
	if err == nil {
		// Back to the default retention check: every check writes each partition's producer
		// snapshot (fsynced) under its append lock, which at 200 ms would weigh on the produce
		// latency measured below.
		// And straight to the store: the counting proxy (there to count the upload's requests)
		// would add a copy of every byte read back to the bucket side of the replay comparison.
		fmt.Fprintf(out, "restarting the broker with log.retention.check.interval.ms=300000 (200 ms was only to trim quickly), object store %s without the proxy\n", store.endpoint)
		tb.cfg.ObjectStore = store.url(store.endpoint)
		if err = tb.cfg.Set("log.retention.check.interval.ms", "300000"); err == nil {
			err = tb.restart(ctx)
		}
	}
	if err != nil {
		fail(&t.ReplayErr, err)
	} else if localEnds, err = replayBoth(ctx, tb, store, dir, tiered, local, ends, c, t, o, out); err != nil {
		fail(&t.ReplayErr, err)
	}
	if t.ReplayErr != "" {
		t.LatencyErr = "no replay from the bucket: " + t.ReplayErr
		return t, errors.New(t.ReplayErr)
	}

	// Produce latency at a fixed rate, without and then with a replay from the bucket running.
	lc := c
	lc.Brokers, lc.Topic, lc.Records, lc.LatencyFor, lc.OnPhase = tb.brokers(), c.Topic+"-latency", 0, o.latencyFor, nil
	// Warm-up, not measured: the topic's first seconds (new segment files, first fsyncs, the
	// clients' connections) had p99s of 15-28 ms in the first second, which would inflate the
	// "alone" baseline the replay runs are divided by.
	wc := lc
	wc.LatencyFor = 2 * time.Second
	fmt.Fprintf(out, "latency warm-up: %d records/s for %s to %s, not measured\n", wc.Rate, wc.LatencyFor, wc.Topic)
	if _, err := loadgen.FixedRateLatency(ctx, wc, out); err != nil {
		return t, fail(&t.LatencyErr, fmt.Errorf("latency warm-up: %w", err))
	}
	fmt.Fprintf(out, "latency: %d records/s for %s to %s, no replay\n", lc.Rate, lc.LatencyFor, lc.Topic)
	w := watchThrottle(tb.b)
	if t.LatencyAlone, err = loadgen.FixedRateLatency(ctx, lc, out); err != nil {
		return t, fail(&t.LatencyErr, err)
	}
	fmt.Fprintln(out, w())
	fmt.Fprintln(out, ackSeconds(t.LatencyAlone))
	t.ReplayPace = o.replayPace
	// Bucket cold, bucket warm, then the same replay from local disk for reference (what any
	// catching-up consumer costs the producer on this machine, tiering or not).
	for i, kind := range []string{"cold", "warm", "local"} {
		topic, rends := tiered, ends
		switch kind {
		case "cold":
			if err := tb.restart(ctx); err != nil { // nothing of the tiered topic in the broker's memory
				return t, fail(&t.LatencyErr, err)
			}
			if store.dataDir == "" {
				t.Notes = append(t.Notes, "bucket cold: the object store's page cache could not be dropped (--minio-endpoint)")
			} else if _, err := loadgen.DropCache(store.dataDir); err != nil {
				return t, fail(&t.LatencyErr, err)
			}
		case "warm":
			// One unpaced pass first, so that the store serves the replay from memory.
			if _, err := loadgen.Replay(ctx, tb.brokers(), tiered, ends, c.Timeout, nil, 0); err != nil {
				return t, fail(&t.LatencyErr, fmt.Errorf("warming the bucket: %w", err))
			}
		case "local":
			topic, rends = local, localEnds
			if _, err := loadgen.DropCache(filepath.Join(dir, "logs")); err != nil {
				return t, fail(&t.LatencyErr, err)
			}
		}
		d, err := latencyDuringReplay(ctx, lc, tb, topic, rends, o, i == 0, out)
		d.Bucket = kind
		if err != nil {
			return t, fail(&t.LatencyErr, fmt.Errorf("replay %s: %w", kind, err))
		}
		t.DuringReplay = append(t.DuringReplay, d)
	}
	// Interleaved: with and without the replay alternating within one run, then the same with no
	// replay at all (the control).
	if o.interleavePairs > 0 && o.replayInProc {
		t.Notes = append(t.Notes, "no interleaved latency run: it stops and continues the replay consumer's process, and --tier-replay-in-process has none")
	} else if o.interleavePairs > 0 {
		for _, control := range []bool{false, true} {
			kind := "bucket cold"
			if control {
				kind = "control"
			}
			if err := tb.restart(ctx); err != nil {
				return t, fail(&t.LatencyErr, err)
			}
			if store.dataDir != "" {
				if _, err := loadgen.DropCache(store.dataDir); err != nil {
					return t, fail(&t.LatencyErr, err)
				}
			}
			il, err := latencyInterleaved(ctx, lc, tb.brokers(), tiered, ends, o, kind, control, out)
			if err != nil {
				return t, fail(&t.LatencyErr, fmt.Errorf("interleaved %s: %w", kind, err))
			}
			t.Interleaved = append(t.Interleaved, il)
		}
	}
	// Alone once more: the machine's load drifts; the baseline is the mean of the two.
	select { // the last replay's fetches drain
	case <-time.After(time.Second):
	case <-ctx.Done():
	}
	fmt.Fprintf(out, "latency: %d records/s for %s to %s, no replay (again)\n", lc.Rate, lc.LatencyFor, lc.Topic)
	w = watchThrottle(tb.b)
	if t.LatencyAloneAfter, err = loadgen.FixedRateLatency(ctx, lc, out); err != nil {
		return t, fail(&t.LatencyErr, err)
	}
	fmt.Fprintln(out, w())
	fmt.Fprintln(out, ackSeconds(t.LatencyAloneAfter))
	return t, nil
}

// ackSeconds summarises a latency phase second by second (by send time): where its slow acks
// were, which tells a burst (the phase's first second, when a running replay meets the
// producer) from interference spread over the phase.
func ackSeconds(l loadgen.Latency) string {
	var b strings.Builder
	b.WriteString("ack latency by second (p99 ms / acks > 2 ms / > 5 ms):")
	for i, s := range l.AckBySecond {
		fmt.Fprintf(&b, " %d: %.2f/%d/%d", i, float64(s.P99)/float64(time.Millisecond), s.Over2ms, s.Over5ms)
	}
	return b.String()
}

// latencyDuringReplay runs the fixed-rate produce of lc while a consumer replays [0, ends) of the
// tiered topic from the bucket over and over (paced by o.replayPace).
func latencyDuringReplay(ctx context.Context, lc loadgen.Config, tb *tierBroker, topic string, ends map[int32]int64, o tierOptions, profile bool, out io.Writer) (loadgen.ReplayLatency, error) {
	var d loadgen.ReplayLatency
	before, err := tb.storeGets(ctx)
	if err != nil {
		return d, err
	}
	var replayed atomic.Int64
	rstart := time.Now()
	var stopReplay func() error
	if o.replayInProc {
		rctx, cancel := context.WithCancel(ctx)
		replayDone := make(chan error, 1)
		go func() { replayDone <- replayLoop(rctx, tb.brokers(), topic, ends, lc.Timeout, &replayed, o.replayPace) }()
		stopReplay = func() error { cancel(); return <-replayDone }
	} else {
		rp, err := startReplayProcess(tb.brokers(), topic, ends, o.replayPace, lc.Timeout, &replayed)
		if err != nil {
			return d, err
		}
		stopReplay = rp.stop
	}
	time.Sleep(500 * time.Millisecond) // the replay is reading from the bucket before the first record is sent
	fmt.Fprintf(out, "latency: %d records/s for %s to %s while a consumer replays %s\n", lc.Rate, lc.LatencyFor, lc.Topic, topic)
	if profile {
		o.phase("tier-latency-replay", true)
	}
	w := watchThrottle(tb.b)
	replayedBefore, latStart := replayed.Load(), time.Now()
	d.Latency, err = loadgen.FixedRateLatency(ctx, lc, out)
	o.phase("tier-latency-replay", false)
	fmt.Fprintf(out, "%s; replay during the produce phase %.1f MB/s\n", w(),
		float64(replayed.Load()-replayedBefore)/(1<<20)/time.Since(latStart).Seconds())
	fmt.Fprintln(out, ackSeconds(d.Latency))
	rerr := stopReplay()
	d.Replay = loadgen.Throughput{Bytes: replayed.Load(), Records: replayed.Load() / int64(lc.RecordSize), Elapsed: time.Since(rstart)}
	after, gerr := tb.storeGets(ctx)
	d.Requests = after.Sub(before)
	if err == nil && gerr != nil {
		err = gerr
	}
	if err == nil && rerr != nil {
		err = fmt.Errorf("background replay: %w", rerr)
	}
	return d, err
}

// waitLocalTrim waits until local retention has deleted every closed (uploaded) local segment of
// topic, and returns each partition's local start: the replay from the bucket reads [0, start).
func waitLocalTrim(ctx context.Context, dir, topic string, wait time.Duration, t *loadgen.TierResult) (map[int32]int64, error) {
	start := time.Now()
	for {
		dirs, _, err := partitionDirs(dir, topic)
		if err != nil {
			return nil, err
		}
		ends := map[int32]int64{}
		closed := 0
		for p, d := range dirs {
			bases, err := localBases(d)
			if err != nil {
				return nil, err
			}
			if len(bases) > 0 {
				ends[p] = bases[0]
				closed += len(bases) - 1
			}
		}
		if closed == 0 {
			t.LocalTrimWait = time.Since(start)
			return ends, nil
		}
		if time.Since(start) > wait || ctx.Err() != nil {
			return nil, fmt.Errorf("%d uploaded local segments of %s still on disk %s after the upload (local.retention.ms=1000, checked every 200 ms)", closed, topic, wait)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// replayBoth reads [0, ends[p]) of the tiered topic (now only in the bucket) and the same offsets of
// the local topic, page caches dropped before each.
func replayBoth(ctx context.Context, tb *tierBroker, s *tierStore, dir, tiered, local string, ends map[int32]int64, c loadgen.Config, t *loadgen.TierResult, o tierOptions, out io.Writer) (localEnds map[int32]int64, err error) {
	cl, err := kgo.NewClient(kgo.SeedBrokers(tb.brokers()...))
	if err != nil {
		return nil, err
	}
	lo, err := kadm.NewClient(cl).ListEndOffsets(ctx, local)
	cl.Close()
	if err != nil {
		return nil, fmt.Errorf("end offsets of %s: %w", local, err)
	}
	localEnds = map[int32]int64{}
	for p, e := range ends {
		if o, ok := lo.Lookup(local, p); ok {
			localEnds[p] = min(e, o.Offset)
		}
	}
	dropCaches := func() {
		for _, d := range []string{s.dataDir, filepath.Join(dir, "logs")} {
			if d == "" {
				continue
			}
			if _, err := loadgen.DropCache(d); err != nil {
				fmt.Fprintf(out, "  dropping the page cache of %s: %v\n", d, err)
			}
		}
	}
	var want int64
	for _, e := range ends {
		want += e
	}
	// Alternate bucket and local runs, so that a change in the machine's load hits both alike; the
	// figures are each side's median run. Only the first run of each is profiled.
	n := max(o.replays, 1)
	for i := 0; i < n; i++ {
		// A fresh broker for each replay from the bucket: nothing of the tiered topic in its
		// memory (remote-read chunk cache, footers) from the previous replay.
		if err := tb.restart(ctx); err != nil {
			return nil, err
		}
		dropCaches()
		fmt.Fprintf(out, "replay %d/%d: %d records of %s from offset 0, all in the bucket (broker restarted, page caches dropped)\n", i+1, n, want, tiered)
		before, err := tb.storeGets(ctx)
		if err != nil {
			return nil, err
		}
		if i == 0 {
			o.phase("tier-replay-bucket", true)
		}
		w := watchThrottle(tb.b) // no producers: the adaptive throttle must leave this replay alone
		rb, cpu, err := replayMeasured(ctx, tb.brokers(), tiered, ends, c.Timeout, o.replayInProc, s.pid())
		o.phase("tier-replay-bucket", false)
		fmt.Fprintln(out, w())
		if err != nil {
			return nil, fmt.Errorf("replay of %s from the bucket: %w", tiered, err)
		}
		after, err := tb.storeGets(ctx)
		if err != nil {
			return nil, err
		}
		req := after.Sub(before)
		t.ReplayBucketRuns = append(t.ReplayBucketRuns, loadgen.ReplayRun{Throughput: rb, GetBytes: req.GetBytes, Gets: req.Gets, CPU: cpu})
		fmt.Fprintf(out, "replay from the bucket: %.1f MB/s, first record after %.1f ms (GET %.1f MiB in %d requests, broker's object-store metrics)\n", rb.MBps(), float64(rb.First.Microseconds())/1e3, float64(req.GetBytes)/(1<<20), req.Gets)
		if cpu != nil {
			fmt.Fprintln(out, cpu.String(rb.Bytes, "MinIO"))
		}
		if req.GetBytes < rb.Bytes/2 {
			t.Notes = append(t.Notes, fmt.Sprintf("replay %d of %s fetched only %d bytes from the bucket for %d value bytes (served from a cache?)", i+1, tiered, req.GetBytes, rb.Bytes))
		}

		dropCaches()
		fmt.Fprintf(out, "replay %d/%d: the same offsets of %s from local disk (page cache dropped)\n", i+1, n, local)
		if i == 0 {
			o.phase("tier-replay-local", true)
		}
		// The store's CPU is watched here too: it should be idle, and if it is not, that is
		// CPU taken from this side as well.
		rl, cpu, err := replayMeasured(ctx, tb.brokers(), local, localEnds, c.Timeout, o.replayInProc, s.pid())
		o.phase("tier-replay-local", false)
		if err != nil {
			return nil, fmt.Errorf("replay of %s from local disk: %w", local, err)
		}
		t.ReplayLocalRuns = append(t.ReplayLocalRuns, loadgen.ReplayRun{Throughput: rl, CPU: cpu})
		fmt.Fprintf(out, "replay from local disk: %.1f MB/s, first record after %.1f ms\n", rl.MBps(), float64(rl.First.Microseconds())/1e3)
		if cpu != nil {
			fmt.Fprintln(out, cpu.String(rl.Bytes, "MinIO"))
		}
		if rl.Bytes != rb.Bytes {
			t.Notes = append(t.Notes, fmt.Sprintf("replay volumes differ: bucket %d B, local %d B", rb.Bytes, rl.Bytes))
		}
	}
	t.SetReplayMedians()
	return localEnds, nil
}

// replayMeasured is one timed replay: in a replay-worker child (a consumer outside the broker's
// process, as in production), or with inProc in this process. Out of process, it also says where
// the replay's CPU went (nil in process, where the consumer's CPU cannot be told from the broker's,
// or without /proc); storePid is the object store's process, 0 if not ours to watch.
func replayMeasured(ctx context.Context, brokers []string, topic string, ends map[int32]int64, timeout time.Duration, inProc bool, storePid int) (loadgen.Throughput, *loadgen.ReplayCPU, error) {
	if inProc {
		t, err := loadgen.Replay(ctx, brokers, topic, ends, timeout, nil, 0)
		return t, nil, err
	}
	probe := startCPUProbe(storePid)
	t, consumer, err := replayOnce(brokers, topic, ends, timeout)
	if err != nil {
		return t, nil, err
	}
	return t, probe.stop(consumer), nil
}

// watchThrottle samples the broker's adaptive cold-read throttle every 100 ms until the returned
// function is called, which stops it and summarises: how much of the time reads from the bucket
// were limited and to what, and the contention signal (goroutine scheduling latency p99 per
// 100 ms) — the figures behind remote.log.reader.adaptive.throttle.*'s defaults.
func watchThrottle(b *broker.Broker) func() string {
	first := b.TierThrottleStats()
	var limits, p99s []float64
	samples := 0
	done, stopped := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(stopped)
		tick := time.NewTicker(100 * time.Millisecond)
		defer tick.Stop()
		for {
			select {
			case <-done:
				return
			case <-tick.C:
			}
			st := b.TierThrottleStats()
			samples++
			if !math.IsInf(st.Quota, 1) {
				limits = append(limits, st.Quota)
			}
			p99s = append(p99s, float64(st.SchedP99)/float64(time.Microsecond))
		}
	}()
	return func() string {
		close(done)
		<-stopped
		last := b.TierThrottleStats()
		if !first.Enabled {
			return "adaptive throttle: off"
		}
		q := func(v []float64, f float64) float64 {
			if len(v) == 0 {
				return 0
			}
			v = slices.Clone(v)
			slices.Sort(v)
			return v[min(len(v)-1, int(f*float64(len(v))))]
		}
		return fmt.Sprintf("adaptive throttle: remote reads limited in %d of %d samples (limit p10/p50/p90 %.1f/%.1f/%.1f MB/s), "+
			"backoffs %d, increases %d, lifts %d, cache GETs shed %d; sched latency p99 per 100 ms: p50 %.0f / p90 %.0f / max %.0f µs",
			len(limits), samples, q(limits, 0.1)/(1<<20), q(limits, 0.5)/(1<<20), q(limits, 0.9)/(1<<20),
			last.Backoffs-first.Backoffs, last.Increases-first.Increases, last.Lifts-first.Lifts, last.Shed-first.Shed,
			q(p99s, 0.5), q(p99s, 0.9), q(p99s, 1))
	}
}
