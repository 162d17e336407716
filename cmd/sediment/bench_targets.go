package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"runtime/pprof"
	"runtime/trace"
	"strings"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"

	"github.com/sediment-io/sediment/broker"
	"github.com/sediment-io/sediment/internal/loadgen"
	"github.com/sediment-io/sediment/localstack"
)

// The targets of `sediment bench`, in the default order. Each runs the same loadgen workload on a
// fresh cluster with its own data directory under the bench's parent dir.
var allTargets = []string{"sediment-always", "sediment-os", "sediment-rf3", "kfake", "kfake-disk", "kfake-disk-sync"}

var targetKinds = map[string]string{
	"target":            "the cluster at --brokers",
	"sediment-always":   "Sediment, 1 broker in-process, log.flush.policy=always (fdatasync before acks)",
	"sediment-interval": "Sediment, 1 broker in-process, log.flush.policy=interval",
	"sediment-os":       "Sediment, 1 broker in-process, log.flush.policy=os (page cache, no fsync per append)",
	"sediment-rf3":      "Sediment, 3 brokers in this one process, topic RF 3, log.flush.policy=always (acks=all waits for the ISR)",
	"kfake":             "franz-go kfake, 1 broker, in memory",
	"kfake-disk":        "franz-go kfake, 1 broker, kfake.DataDir (persisted, no fsync per batch)",
	"kfake-disk-sync":   "franz-go kfake, 1 broker, kfake.DataDir + SyncWrites (fsync per batch)",
}

// runTarget starts the named cluster, runs the workload against it and stops it.
func runTarget(ctx context.Context, name string, c loadgen.Config, parent, brokers string, coldConsume bool, out io.Writer) (loadgen.Result, string, error) {
	desc := targetKinds[name]
	dir := filepath.Join(parent, name)
	switch {
	case name == "target":
		c.Brokers = strings.Split(brokers, ",")
	case name == "sediment-rf3":
		bs, err := startCluster(ctx, dir, 3)
		if err != nil {
			return loadgen.Result{}, desc, err
		}
		defer func() {
			for _, b := range bs {
				b.Close()
			}
		}()
		c.Brokers = nil
		for _, b := range bs {
			c.Brokers = append(c.Brokers, b.Addr())
		}
		c.Replication = 3
	case strings.HasPrefix(name, "sediment-"):
		cfg := broker.DefaultConfig()
		cfg.DataDir = dir
		cfg.ObjectStore = "file://" + dir + "/objects"
		cfg.Listen = "127.0.0.1:0"
		cfg.RaftListen = "127.0.0.1:0"
		cfg.HTTPListen = ""
		cfg.Logger = slog.New(slog.DiscardHandler)
		if err := cfg.Set("log.flush.policy", strings.TrimPrefix(name, "sediment-")); err != nil {
			return loadgen.Result{}, desc, err
		}
		sctx, cancel := context.WithTimeout(ctx, time.Minute)
		b, err := broker.Start(sctx, cfg)
		cancel()
		if err != nil {
			return loadgen.Result{}, desc, fmt.Errorf("starting the in-process broker: %w", err)
		}
		defer b.Close()
		c.Brokers = []string{b.Addr()}
	case strings.HasPrefix(name, "kfake"):
		opts := []kfake.Opt{kfake.NumBrokers(1)}
		if name != "kfake" {
			opts = append(opts, kfake.DataDir(dir))
		}
		if name == "kfake-disk-sync" {
			opts = append(opts, kfake.SyncWrites())
		}
		cluster, err := kfake.NewCluster(opts...)
		if err != nil {
			return loadgen.Result{}, desc, fmt.Errorf("kfake: %w", err)
		}
		defer cluster.Close()
		c.Brokers = cluster.ListenAddrs()
	default:
		return loadgen.Result{}, desc, fmt.Errorf("unknown target %q", name)
	}
	if coldConsume && name != "target" && name != "kfake" {
		// Consume from the disk, not from the page cache the produce phase just filled.
		prev := c.OnPhase
		c.OnPhase = func(phase string, start bool) {
			if prev != nil {
				prev(phase, start)
			}
			if phase == "consume" && start {
				n, err := loadgen.DropCache(dir)
				if err != nil {
					fmt.Fprintf(out, "  dropping the page cache of %s: %v\n", dir, err)
				} else {
					fmt.Fprintf(out, "  dropped the page cache of %d MiB of log files (consume reads the disk)\n", n>>20)
				}
			}
		}
	}
	fmt.Fprintf(out, "== %s: %s at %s (load1 %.2f)\n", name, desc, strings.Join(c.Brokers, ","), loadgen.LoadAvg()[0])
	r, err := loadgen.Run(ctx, c, out)
	return r, desc, err
}

// phaseProfiler returns an OnPhase hook that records the named phase: a CPU profile into
// cpuPath and/or an execution trace into tracePath (either may be empty).
func phaseProfiler(cpuPath, tracePath, want string, stderr io.Writer) func(string, bool) {
	var cpuF, trF *os.File
	return func(phase string, start bool) {
		if phase != want {
			return
		}
		if start {
			if cpuPath != "" {
				f, err := os.Create(cpuPath)
				if err == nil {
					if err = pprof.StartCPUProfile(f); err != nil {
						f.Close()
					} else {
						cpuF = f
					}
				}
				if err != nil {
					fmt.Fprintf(stderr, "cpuprofile: %v\n", err)
				}
			}
			if tracePath != "" {
				f, err := os.Create(tracePath)
				if err == nil {
					if err = trace.Start(f); err != nil {
						f.Close()
					} else {
						trF = f
					}
				}
				if err != nil {
					fmt.Fprintf(stderr, "trace: %v\n", err)
				}
			}
			return
		}
		if cpuF != nil {
			pprof.StopCPUProfile()
			cpuF.Close()
			cpuF = nil
		}
		if trF != nil {
			trace.Stop()
			trF.Close()
			trF = nil
		}
	}
}

// minioBinary finds a MinIO server without installing one: $MINIO_BIN, <repo>/.localstack/bin/minio,
// /work/.minio-bin/minio, then PATH.
func minioBinary(mode string) (string, error) {
	if mode != "auto" {
		return mode, nil
	}
	var cands []string
	if b := os.Getenv("MINIO_BIN"); b != "" {
		cands = append(cands, b)
	}
	if root, err := localstack.RepoRoot(); err == nil {
		cands = append(cands, filepath.Join(root, ".localstack", "bin", "minio"))
	}
	cands = append(cands, "/work/.minio-bin/minio")
	for _, c := range cands {
		if st, err := os.Stat(c); err == nil && !st.IsDir() {
			return c, nil
		}
	}
	if p, err := exec.LookPath("minio"); err == nil {
		return p, nil
	}
	return "", fmt.Errorf("no MinIO binary (looked at %s and PATH; `make minio` installs one)", strings.Join(cands, ", "))
}

// measureLimits fills cmp.Limits: disk, loopback TCP, then MinIO (started and stopped here so that
// it does not run during the broker targets).
func measureLimits(ctx context.Context, out io.Writer, cmp *loadgen.Comparison, parent string,
	diskBytes, syncEvery int64, smallSyncs int, syncFor time.Duration, c loadgen.Config, tcpFor time.Duration, minioMode string, objects int, objectSize int64) {
	fmt.Fprintf(out, "== limits: disk (%d MiB, fdatasync every %d MiB) in %s\n", diskBytes>>20, syncEvery>>20, parent)
	if d, err := loadgen.DiskWrite(ctx, parent, diskBytes, syncEvery, smallSyncs); err != nil {
		cmp.Limits.DiskErr = err.Error()
	} else {
		cmp.Limits.Disk = &d
	}
	if syncFor > 0 && c.LatencyFor > 0 {
		fmt.Fprintf(out, "== limits: fdatasync floor, %d files × %d B appends at %d/s for %s\n", c.Partitions, c.RecordSize, c.Rate, syncFor)
		if s, err := loadgen.PacedSyncLatency(ctx, parent, int(c.Partitions), c.Rate, c.RecordSize, syncFor); err != nil {
			cmp.Limits.SyncErr = err.Error()
		} else {
			cmp.Limits.Sync = &s
		}
	}
	fmt.Fprintf(out, "== limits: loopback TCP for %s\n", tcpFor)
	if t, err := loadgen.LoopbackTCP(ctx, tcpFor); err != nil {
		cmp.Limits.TCPErr = err.Error()
	} else {
		cmp.Limits.TCP = &t
	}
	if minioMode == "off" {
		cmp.Limits.ObjectErr = "--minio off"
		return
	}
	bin, err := minioBinary(minioMode)
	if err != nil {
		cmp.Limits.ObjectErr = err.Error()
		return
	}
	fmt.Fprintf(out, "== limits: MinIO %s, %d × %d MiB PUT then GET\n", bin, objects, objectSize>>20)
	mdir := filepath.Join(parent, "minio")
	if err := os.MkdirAll(mdir, 0o755); err != nil {
		cmp.Limits.ObjectErr = err.Error()
		return
	}
	defer os.RemoveAll(mdir)
	srv, err := localstack.Start(ctx, localstack.Options{Binary: bin, DataDir: mdir})
	if err != nil {
		cmp.Limits.ObjectErr = err.Error()
		return
	}
	defer srv.Stop()
	cl, err := srv.Client()
	if err != nil {
		cmp.Limits.ObjectErr = err.Error()
		return
	}
	o, err := loadgen.ObjectPutGet(ctx, cl, srv.Bucket, objects, objectSize)
	if err != nil {
		cmp.Limits.ObjectErr = err.Error()
		return
	}
	cmp.Limits.Object = &o
}

// startCluster starts n brokers in this process as one Raft cluster (flush always, loopback).
func startCluster(ctx context.Context, dir string, n int) ([]*broker.Broker, error) {
	var voters []broker.Voter
	for i := 1; i <= n; i++ {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, err
		}
		voters = append(voters, broker.Voter{ID: int32(i), Addr: l.Addr().String()})
		l.Close()
	}
	bs := make([]*broker.Broker, n)
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := 0; i < n; i++ {
		cfg := broker.DefaultConfig()
		cfg.NodeID = int32(i + 1)
		cfg.DataDir = filepath.Join(dir, fmt.Sprintf("broker-%d", i+1))
		cfg.ObjectStore = "file://" + cfg.DataDir + "/objects"
		cfg.Listen = "127.0.0.1:0"
		cfg.RaftListen = voters[i].Addr
		cfg.Voters = voters
		cfg.HTTPListen = ""
		cfg.Logger = slog.New(slog.DiscardHandler)
		if err := cfg.Set("log.flush.policy", "always"); err != nil {
			return nil, err
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			sctx, cancel := context.WithTimeout(ctx, time.Minute)
			defer cancel()
			bs[i], errs[i] = broker.Start(sctx, cfg)
		}()
	}
	wg.Wait()
	var err error
	for i, e := range errs {
		if e != nil && err == nil {
			err = fmt.Errorf("broker %d: %w", i+1, e)
		}
	}
	if err != nil {
		for _, b := range bs {
			if b != nil {
				b.Close()
			}
		}
		return nil, err
	}
	return bs, nil
}
