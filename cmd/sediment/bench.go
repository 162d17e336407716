package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"slices"
	"strings"
	"syscall"
	"time"

	"github.com/sediment-io/sediment/internal/loadgen"
)

func init() {
	registerSubcommand("bench", "load generator: produce/consume throughput and end-to-end latency (vs franz-go's kfake)", runBench)
}

// runBench is `sediment bench`: the machine's limits (disk write with periodic fdatasync,
// loopback TCP, MinIO PUT/GET), then the same loadgen workload against each target one after
// another (Sediment in-process with flush always and os, kfake in memory and with its data dir),
// then one table and optionally JSON with every figure and its ratios to kfake and to the limits.
func runBench(args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("bench", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprint(stderr, `Usage: sediment bench [flags]

Measures the machine's limits first, on the --data-dir disk and loopback: sequential disk write
with periodic fdatasync and its read-back with the page cache dropped; an fdatasync floor (one file
per partition, --record-size appends + fdatasync at --rate in total); one loopback TCP stream; raw
MinIO PUT/GET of 64 MiB objects with minio-go when a MinIO binary is found. Then it runs a franz-go
load generator against each of --targets one after another, each on a fresh cluster: a produce
phase (--records as fast as the client settings allow), a warm consume phase (the same records read
back from the start at once, from the page cache the produce left: --warm-consume), a consume phase
(read back again, from disk: --cold-consume), and a latency phase (--rate records/s for
--latency-duration; produce-ack and produce→consume p50/p99/p99.9), with a progress line. Prints
one table with every figure, its ratio to kfake (in memory) and to the machine's limit.
Then (--tier) the tiering workloads on one more in-process broker with a MinIO bucket behind a
counting proxy: upload of closed segments after remote.storage.enable is switched on vs a raw
minio-go PUT of the same object sizes, PUT requests per GiB, replay from offset 0 out of the bucket
vs the same records from local disk, and fixed-rate produce latency without and during a replay;
a second table gives each figure with its same-run baseline, ratio and issue 7's target;
--json FILE writes the same as JSON. Never part of `+"`make test`"+`; `+"`make bench`"+` runs it.

Flags:
`)
		fs.PrintDefaults()
	}
	d := loadgen.DefaultConfig()
	brokers := fs.String("brokers", "", "comma-separated Kafka brokers of a running cluster to measure as target \"target\" (in addition to --targets)")
	targets := fs.String("targets", strings.Join(allTargets, ","), "targets run one after another: "+strings.Join(allTargets, ", ")+" (sediment-interval also accepted)")
	withKfake := fs.Bool("kfake", true, "include the kfake targets (false drops every kfake* target from --targets)")
	dataDir := fs.String("data-dir", "", "parent dir for broker, kfake and disk-limit data (default: a temp dir, removed afterwards); its disk is the one measured")
	jsonOut := fs.String("json", "", "also write every figure, ratio, limit and the machine's description as JSON to this file")
	cold := fs.Bool("cold-consume", true, "drop the page cache of the target's log files (fdatasync + fadvise DONTNEED) before the consume phase, so it reads the disk")
	fs.BoolVar(&d.WarmConsume, "warm-consume", true, "read the records back right after the produce phase, from the page cache the produce left warm (Kafka's usual tailing case), before the --cold-consume phase")
	limits := fs.Bool("limits", true, "measure the machine's limits first (disk, loopback TCP, MinIO)")
	diskMiB := fs.Int64("disk-mib", 512, "disk limit: MiB written sequentially (at most 1024)")
	syncMiB := fs.Int64("disk-sync-mib", 1, "disk limit: fdatasync every this many MiB")
	smallSyncs := fs.Int("disk-small-syncs", 300, "disk limit: fdatasync latency samples after 4 KiB appends")
	syncFor := fs.Duration("sync-duration", 3*time.Second, "fdatasync floor: length of the paced probe (--partitions files, --record-size appends + fdatasync at --rate in total)")
	tcpFor := fs.Duration("tcp-duration", 2*time.Second, "loopback TCP limit: length of the stream")
	minioMode := fs.String("minio", "auto", "MinIO limit: auto (run when a binary is found: $MINIO_BIN, .localstack/bin/minio, /work/.minio-bin/minio, PATH), off, or a binary path")
	objects := fs.Int("objects", 4, "MinIO limit: objects PUT then GET")
	objectMiB := fs.Int64("object-mib", 64, "MinIO limit: object size in MiB")
	fs.StringVar(&d.Topic, "topic", d.Topic, "topic (created if missing)")
	partitions := fs.Int("partitions", int(d.Partitions), "partitions of the topic")
	fs.IntVar(&d.RecordSize, "record-size", d.RecordSize, "value bytes per record")
	fs.Int64Var(&d.Records, "records", d.Records, "records in the throughput phases (0 = skip them)")
	fs.IntVar(&d.Rate, "rate", d.Rate, "records/s in the latency phase")
	fs.DurationVar(&d.LatencyFor, "latency-duration", d.LatencyFor, "length of the latency phase (0 = skip it)")
	fs.DurationVar(&d.Linger, "linger", d.Linger, "producer linger")
	batch := fs.Int("batch-max-bytes", int(d.BatchMaxBytes), "producer batch.max.bytes per partition")
	fs.StringVar(&d.Acks, "acks", d.Acks, "acks: all, 1 or 0")
	fs.IntVar(&d.MaxInflight, "max-inflight", 0, "produce requests in flight per broker (0 = franz-go's default, 5 with the idempotent producer)")
	fs.StringVar(&d.Compression, "compression", d.Compression, "compression: none, gzip, snappy, lz4, zstd")
	fs.DurationVar(&d.Timeout, "timeout", d.Timeout, "bound on each phase")
	fs.DurationVar(&d.ProgressEvery, "progress", time.Second, "interval of the progress line during a phase (negative: none)")
	var to tierOptions
	fs.StringVar(&to.mode, "tier", "auto", "tiering workloads through an in-process broker with a MinIO bucket: on, off, or auto (on when --minio-endpoint is given or a MinIO binary is found as for --minio; else reported missing) (upload vs raw PUT, PUT requests per GiB, replay from the bucket vs local disk, produce latency during a replay)")
	fs.Int64Var(&to.mib, "tier-mib", 1024, "tiering: MiB of record values produced to each of the two topics (the tiered one and the local one)")
	tierParts := fs.Int("tier-partitions", 4, "tiering: partitions of the tiered and local topics")
	fs.Int64Var(&to.segmentMiB, "tier-segment-mib", 96, "tiering: segment.bytes of both topics in MiB (one object per segment: PUT requests per GiB is about 1024 / this)")
	fs.StringVar(&to.endpoint, "minio-endpoint", "", "tiering: use this running S3 endpoint (http://host:port) instead of starting MinIO")
	fs.StringVar(&to.accessKey, "minio-access-key", "sediment", "tiering: access key for --minio-endpoint")
	fs.StringVar(&to.secretKey, "minio-secret-key", "sediment-local-secret", "tiering: secret key for --minio-endpoint")
	fs.StringVar(&to.bucket, "minio-bucket", "sediment", "tiering: bucket (must exist at --minio-endpoint; created in a MinIO the bench starts)")
	fs.DurationVar(&to.latencyFor, "tier-latency-duration", 10*time.Second, "tiering: length of each fixed-rate produce (--rate) without and with a replay")
	fs.Func("tier-conf", "tiering: a broker config KEY=VALUE for the tiering broker (repeatable), e.g. remote.log.reader.cache.bytes=268435456", func(v string) error {
		if k, _, ok := strings.Cut(v, "="); !ok || k == "" {
			return fmt.Errorf("want KEY=VALUE")
		}
		to.conf = append(to.conf, v)
		return nil
	})
	fs.IntVar(&to.replays, "tier-replays", 7, "tiering: replays from the bucket and from local disk, alternated; the figures are the medians (7: single replays spread 0.5-1.2 GB/s on the machines we measure on)")
	fs.BoolVar(&to.replayInProc, "tier-replay-in-process", false, "tiering: run the replay during the fixed-rate produce in the bench's own process (default: a child process, as a real consumer is outside the broker)")
	fs.IntVar(&to.interleavePairs, "tier-interleave-windows", 200, "tiering: interleaved latency run: windows with the replay and as many without, alternated in one fixed-rate produce (0 = skip it and its control run). 200, not 50 (before session 21): single pairs' p99 ratios spread 0.2-5 (10th-90th percentile), so the median of 50 pairs moved about 17% run to run with no replay at all (controls 0.77-1.35), more than the 1.2x target leaves; 200 pairs halve that")
	fs.DurationVar(&to.interleaveWindow, "tier-interleave-window", time.Second, "tiering: length of each window of the interleaved latency run")
	replayMBps := fs.Float64("tier-replay-mbps", 0, "tiering: pace of the replay that runs during the second fixed-rate produce, MB/s (0 = as fast as it goes)")
	fs.DurationVar(&to.trimWait, "tier-trim-wait", time.Minute, "tiering: how long to wait for local retention to delete the uploaded local segments")
	fs.DurationVar(&to.uploadTimeout, "tier-upload-timeout", 3*time.Minute, "tiering: how long to wait for the upload lag to reach zero")
	cpuProfile := fs.String("cpuprofile", "", "write a CPU profile of one phase (--profile-phase) of the first in-process Sediment target (broker and client share the process) to this file")
	traceOut := fs.String("trace", "", "write a Go execution trace of the same phase as --cpuprofile (--profile-phase) to this file (go tool trace)")
	profilePhase := fs.String("profile-phase", "produce", "phase profiled by --cpuprofile: produce, consume or latency (first in-process Sediment target), or a tiering phase: tier-upload, tier-replay-bucket, tier-replay-local, tier-latency-replay")
	if err := fs.Parse(args); err != nil {
		if err == flag.ErrHelp {
			return err
		}
		return usageErrorf("%v", err)
	}
	if fs.NArg() > 0 {
		return usageErrorf("unexpected arguments %q", fs.Args())
	}
	d.Partitions = int32(*partitions)
	d.BatchMaxBytes = int32(*batch)
	d.Brokers = []string{"placeholder"} // validated below per target
	if err := d.Validate(); err != nil {
		return usageErrorf("%v", err)
	}
	var names []string
	for _, n := range strings.Split(*targets, ",") {
		n = strings.TrimSpace(n)
		if n == "" || (!*withKfake && strings.HasPrefix(n, "kfake")) {
			continue
		}
		if _, ok := targetKinds[n]; !ok {
			return usageErrorf("--targets: unknown target %q (want %s)", n, strings.Join(allTargets, ", "))
		}
		names = append(names, n)
	}
	if *brokers != "" {
		names = append([]string{"target"}, names...)
	}
	switch to.mode {
	case "on", "off", "auto":
	default:
		return usageErrorf("--tier %q: want on, off or auto", to.mode)
	}
	if to.mode != "off" && (to.mib <= 0 || *tierParts < 1 || to.segmentMiB <= 0 || to.latencyFor <= 0 || d.Rate <= 0) {
		return usageErrorf("--tier on needs positive --tier-mib, --tier-partitions, --tier-segment-mib, --tier-latency-duration and --rate")
	}
	to.partitions, to.minioMode, to.replayPace = int32(*tierParts), *minioMode, int64(*replayMBps*(1<<20))
	if len(names) == 0 && to.mode == "off" {
		return usageErrorf("no targets")
	}
	if p := *profilePhase; !slices.Contains([]string{"produce", "consume", "latency", "tier-upload", "tier-replay-bucket", "tier-replay-local", "tier-latency-replay"}, p) {
		return usageErrorf("--profile-phase %q: want produce, consume, latency, tier-upload, tier-replay-bucket, tier-replay-local or tier-latency-replay", p)
	}
	if *diskMiB <= 0 || *diskMiB > loadgen.MaxDiskBytes>>20 || *syncMiB <= 0 {
		return usageErrorf("--disk-mib must be in 1..1024 and --disk-sync-mib positive")
	}

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()

	parent := *dataDir
	if parent == "" {
		tmp, err := os.MkdirTemp("", "sediment-bench-")
		if err != nil {
			return err
		}
		defer os.RemoveAll(tmp)
		parent = tmp
	} else if err := os.MkdirAll(parent, 0o755); err != nil {
		return err
	}

	cmp := &loadgen.Comparison{
		Started:  time.Now().UTC(),
		Command:  "sediment bench " + strings.Join(args, " "),
		Machine:  loadgen.DescribeMachine(parent),
		Workload: d,
		Peer:     "kfake",
	}
	if to.mode == "off" {
		cmp.Pending = append(cmp.Pending, "upload to the bucket, replay from the bucket vs local disk, produce latency during a replay: not run (--tier off; see docs/benchmarks.md)")
	}
	cmp.Workload.Brokers = nil
	if !*limits {
		cmp.Limits.DiskErr, cmp.Limits.SyncErr, cmp.Limits.TCPErr, cmp.Limits.ObjectErr = "(--limits=false)", "(--limits=false)", "(--limits=false)", "--limits=false"
	} else {
		measureLimits(ctx, stdout, cmp, parent, *diskMiB<<20, *syncMiB<<20, *smallSyncs, *syncFor, d, *tcpFor, *minioMode, *objects, *objectMiB<<20)
	}

	profiled := *cpuProfile == "" && *traceOut == "" || strings.HasPrefix(*profilePhase, "tier-")
	for _, name := range names {
		if ctx.Err() != nil {
			break
		}
		c := d
		c.OnPhase = nil
		if !profiled && strings.HasPrefix(name, "sediment-") {
			profiled = true
			c.OnPhase = phaseProfiler(*cpuProfile, *traceOut, *profilePhase, stderr)
		}
		nt := loadgen.Named{Name: name, LoadBefore: loadgen.LoadAvg()[0]}
		r, desc, err := runTarget(ctx, name, c, parent, *brokers, *cold, stdout)
		nt.Result, nt.Desc, nt.LoadAfter = r, desc, loadgen.LoadAvg()[0]
		if err != nil {
			nt.Err = err.Error()
			fmt.Fprintf(stdout, "%s FAILED: %v\n", name, err)
		}
		cmp.Targets = append(cmp.Targets, nt)
	}
	var tierErr error
	if to.mode != "off" && ctx.Err() == nil {
		_, err := minioBinary(*minioMode)
		if *minioMode == "off" {
			err = errors.New("--minio off")
		}
		if to.mode == "auto" && to.endpoint == "" && err != nil {
			cmp.Tier = &loadgen.TierResult{Store: "none", UploadErr: "--tier auto: no bucket: " + err.Error()}
		} else {
			if (*cpuProfile != "" || *traceOut != "") && strings.HasPrefix(*profilePhase, "tier-") {
				to.onPhase = phaseProfiler(*cpuProfile, *traceOut, *profilePhase, stderr)
			}
			cmp.Tier, tierErr = runTier(ctx, to, d, parent, stdout)
		}
		cmp.TierRows = loadgen.TierRows(*cmp.Tier)
	}
	cmp.Machine.LoadEnd = loadgen.LoadAvg()
	cmp.Finished = time.Now().UTC()
	cmp.Rows = loadgen.BuildRows(d, cmp.Peer, cmp.Limits, cmp.Targets)
	if cmp.Tier != nil { // measured (or failed, with the reason in the tiering section): no pending rows
		cmp.Rows = slices.DeleteFunc(cmp.Rows, func(r loadgen.Row) bool { return r.Pending })
	}
	cmp.WriteText(stdout)
	if *jsonOut != "" {
		f, err := os.Create(*jsonOut)
		if err != nil {
			return err
		}
		if err := cmp.WriteJSON(f); err != nil {
			f.Close()
			return err
		}
		if err := f.Close(); err != nil {
			return err
		}
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	for _, t := range cmp.Targets {
		if t.Err != "" {
			return fmt.Errorf("target %s failed: %s", t.Name, t.Err)
		}
	}
	if tierErr != nil {
		return fmt.Errorf("tiering workloads: %w", tierErr)
	}
	return nil
}
