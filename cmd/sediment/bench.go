package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"runtime/pprof"
	"strings"
	"syscall"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"

	"github.com/sediment-io/sediment/broker"
	"github.com/sediment-io/sediment/internal/loadgen"
)

func init() {
	registerSubcommand("bench", "load generator: produce/consume throughput and end-to-end latency (vs franz-go's kfake)", runBench)
}

// runBench is `sediment bench`: with no --brokers it starts a Sediment broker in this process
// (fresh temp data dir, loopback, the given flush policy), runs the loadgen workload against it,
// then (unless --kfake=false) runs the same workload against franz-go's in-memory kfake cluster
// and prints both side by side with ratios.
func runBench(args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("bench", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprint(stderr, `Usage: sediment bench [flags]

Runs a franz-go load generator: a produce phase (--records as fast as the client settings allow),
a consume phase (the same records read back), and a latency phase (--rate records/s for
--latency-duration, reporting produce→consume latency p50/p99/p99.9). With no --brokers it starts
a Sediment broker in this process on a temp data dir; with --kfake (default) it then runs the same
workload against franz-go's in-memory kfake cluster and prints both side by side with ratios.

Flags:
`)
		fs.PrintDefaults()
	}
	d := loadgen.DefaultConfig()
	brokers := fs.String("brokers", "", "comma-separated Kafka brokers to target (default: start a Sediment broker in this process)")
	withKfake := fs.Bool("kfake", true, "also run the workload against franz-go's in-memory kfake cluster and print ratios")
	flush := fs.String("flush", "always", "log.flush.policy of the in-process broker: always, interval or os")
	dataDir := fs.String("data-dir", "", "data dir of the in-process broker (default: a temp dir, removed afterwards)")
	fs.StringVar(&d.Topic, "topic", d.Topic, "topic (created if missing)")
	partitions := fs.Int("partitions", int(d.Partitions), "partitions of the topic")
	fs.IntVar(&d.RecordSize, "record-size", d.RecordSize, "value bytes per record")
	fs.Int64Var(&d.Records, "records", d.Records, "records in the throughput phases (0 = skip them)")
	fs.IntVar(&d.Rate, "rate", d.Rate, "records/s in the latency phase")
	fs.DurationVar(&d.LatencyFor, "latency-duration", d.LatencyFor, "length of the latency phase (0 = skip it)")
	fs.DurationVar(&d.Linger, "linger", d.Linger, "producer linger")
	batch := fs.Int("batch-max-bytes", int(d.BatchMaxBytes), "producer batch.max.bytes per partition")
	fs.StringVar(&d.Acks, "acks", d.Acks, "acks: all, 1 or 0")
	fs.StringVar(&d.Compression, "compression", d.Compression, "compression: none, gzip, snappy, lz4, zstd")
	fs.DurationVar(&d.Timeout, "timeout", d.Timeout, "bound on each phase")
	cpuProfile := fs.String("cpuprofile", "", "write a CPU profile of the whole run (client and in-process broker) to this file")
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

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if *cpuProfile != "" {
		f, err := os.Create(*cpuProfile)
		if err != nil {
			return err
		}
		defer f.Close()
		if err := pprof.StartCPUProfile(f); err != nil {
			return err
		}
		defer pprof.StopCPUProfile()
	}

	var results []loadgen.Named
	target := "sediment"
	if *brokers != "" {
		target = "target"
		d.Brokers = strings.Split(*brokers, ",")
	} else {
		dir := *dataDir
		if dir == "" {
			tmp, err := os.MkdirTemp("", "sediment-bench-")
			if err != nil {
				return err
			}
			defer os.RemoveAll(tmp)
			dir = tmp
		}
		cfg := broker.DefaultConfig()
		cfg.DataDir = dir
		cfg.ObjectStore = "file://" + dir + "/objects"
		cfg.Listen = "127.0.0.1:0"
		cfg.RaftListen = "127.0.0.1:0"
		cfg.HTTPListen = ""
		cfg.Logger = slog.New(slog.DiscardHandler)
		if err := cfg.Set("log.flush.policy", *flush); err != nil {
			return usageErrorf("--flush: %v", err)
		}
		sctx, cancel := context.WithTimeout(ctx, time.Minute)
		b, err := broker.Start(sctx, cfg)
		cancel()
		if err != nil {
			return fmt.Errorf("starting the in-process broker: %w", err)
		}
		defer b.Close()
		d.Brokers = []string{b.Addr()}
		fmt.Fprintf(stdout, "sediment broker in-process at %s (data %s, log.flush.policy=%s)\n", b.Addr(), dir, *flush)
	}
	fmt.Fprintf(stdout, "== %s\n", target)
	r, err := loadgen.Run(ctx, d, stdout)
	if err != nil {
		return fmt.Errorf("%s: %w", target, err)
	}
	results = append(results, loadgen.Named{Name: target, Result: r})

	if *withKfake {
		cluster, err := kfake.NewCluster(kfake.NumBrokers(1))
		if err != nil {
			return fmt.Errorf("kfake: %w", err)
		}
		defer cluster.Close()
		k := d
		k.Brokers = cluster.ListenAddrs()
		fmt.Fprintf(stdout, "== kfake (in-memory) at %s\n", strings.Join(k.Brokers, ","))
		r, err := loadgen.Run(ctx, k, stdout)
		if err != nil {
			return fmt.Errorf("kfake: %w", err)
		}
		results = append(results, loadgen.Named{Name: "kfake", Result: r})
	}
	loadgen.Report(stdout, d, results...)
	return nil
}
