package main

import (
	"bufio"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/sediment-io/sediment/internal/loadgen"
)

// The tiering bench's replay during the fixed-rate produce runs, by default, in a child process
// (`sediment replay-worker`), as a consumer replaying history does in production: on another
// machine, or at least outside the broker's Go runtime. In the bench's own process its record
// decoding (CRC checks, a record allocated per 1 KiB value) shares the broker's two Ps and garbage
// collector, a coupling no real deployment has. The child still shares the machine's cores.
// --tier-replay-in-process keeps the old arrangement, for comparison.

func init() {
	registerSubcommand("replay-worker", "internal: the tiering bench's out-of-process replay consumer", runReplayWorker)
}

// runReplayWorker replays [0, ends[p]) of a topic over and over until its stdin closes, printing
// the record value bytes replayed so far ("bytes N") every 100 ms and once at the end.
func runReplayWorker(args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("replay-worker", flag.ContinueOnError)
	fs.SetOutput(stderr)
	brokers := fs.String("brokers", "", "seed brokers, comma separated")
	topic := fs.String("topic", "", "topic to replay")
	endsArg := fs.String("ends", "", "partition:end offset pairs, comma separated")
	pace := fs.Int64("pace", 0, "bytes/s (0 = unpaced)")
	timeout := fs.Duration("timeout", 5*time.Minute, "bound of one replay pass")
	once := fs.Bool("once", false, "one pass, then print \"done RECORDS BYTES ELAPSED_NS FIRST_RECORD_NS\" and exit")
	if err := fs.Parse(args); err != nil {
		return err
	}
	ends, err := parseEnds(*endsArg)
	if err != nil {
		return usageErrorf("--ends: %v", err)
	}
	if *brokers == "" || *topic == "" {
		return usageErrorf("--brokers and --topic are required")
	}
	if *once {
		t, err := loadgen.Replay(context.Background(), strings.Split(*brokers, ","), *topic, ends, *timeout, nil, *pace)
		if err != nil {
			return err
		}
		fmt.Fprintf(stdout, "done %d %d %d %d\n", t.Records, t.Bytes, int64(t.Elapsed), int64(t.First))
		return nil
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() { // the parent closes our stdin to stop us
		io.Copy(io.Discard, os.Stdin)
		cancel()
	}()
	var replayed atomic.Int64
	done := make(chan error, 1)
	go func() {
		done <- replayLoop(ctx, strings.Split(*brokers, ","), *topic, ends, *timeout, &replayed, *pace)
	}()
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	for {
		select {
		case err := <-done:
			fmt.Fprintf(stdout, "bytes %d\n", replayed.Load())
			return err
		case <-tick.C:
			fmt.Fprintf(stdout, "bytes %d\n", replayed.Load())
		}
	}
}

// replayLoop replays [0, ends) of topic over and over until ctx ends (nil then) or a pass fails.
func replayLoop(ctx context.Context, brokers []string, topic string, ends map[int32]int64, timeout time.Duration, replayed *atomic.Int64, pace int64) error {
	var err error
	for ctx.Err() == nil && err == nil {
		_, err = loadgen.Replay(ctx, brokers, topic, ends, timeout, replayed, pace)
	}
	if ctx.Err() != nil {
		return nil
	}
	return err
}

func parseEnds(s string) (map[int32]int64, error) {
	ends := map[int32]int64{}
	for _, kv := range strings.Split(s, ",") {
		p, e, ok := strings.Cut(kv, ":")
		pi, err1 := strconv.ParseInt(p, 10, 32)
		ei, err2 := strconv.ParseInt(e, 10, 64)
		if !ok || err1 != nil || err2 != nil {
			return nil, fmt.Errorf("%q is not partition:offset", kv)
		}
		ends[int32(pi)] = ei
	}
	return ends, nil
}

func formatEnds(ends map[int32]int64) string {
	var parts []string
	for p, e := range ends {
		parts = append(parts, fmt.Sprintf("%d:%d", p, e))
	}
	return strings.Join(parts, ",")
}

// replayWorkerCommand is `<this executable> replay-worker` for topic's [0, ends), with extra flags.
func replayWorkerCommand(brokers []string, topic string, ends map[int32]int64, pace int64, timeout time.Duration, extra ...string) (*exec.Cmd, error) {
	exe, err := os.Executable()
	if err != nil {
		return nil, err
	}
	args := append([]string{"replay-worker", "--brokers", strings.Join(brokers, ","), "--topic", topic,
		"--ends", formatEnds(ends), "--pace", strconv.FormatInt(pace, 10), "--timeout", timeout.String()}, extra...)
	return exec.Command(exe, args...), nil
}

// replayOnce runs one replay of [0, ends) of topic in a replay-worker child and returns what it
// read, timed by the child (from its client's start, as loadgen.Replay in this process), and the
// child's CPU time.
func replayOnce(brokers []string, topic string, ends map[int32]int64, timeout time.Duration) (loadgen.Throughput, time.Duration, error) {
	var t loadgen.Throughput
	cmd, err := replayWorkerCommand(brokers, topic, ends, 0, timeout, "--once")
	if err != nil {
		return t, 0, err
	}
	var errb strings.Builder
	cmd.Stderr = &errb
	out, err := cmd.Output()
	if err != nil {
		return t, 0, fmt.Errorf("replay-worker: %w: %s", err, strings.TrimSpace(errb.String()))
	}
	var ns, first int64
	if _, err := fmt.Sscanf(string(out), "done %d %d %d %d", &t.Records, &t.Bytes, &ns, &first); err != nil {
		return t, 0, fmt.Errorf("replay-worker: output %q: %w", out, err)
	}
	t.Elapsed, t.First = time.Duration(ns), time.Duration(first)
	return t, cmd.ProcessState.UserTime() + cmd.ProcessState.SystemTime(), nil
}

// replayProcess is a running replay-worker child.
type replayProcess struct {
	cmd   *exec.Cmd
	stdin io.WriteCloser
	done  chan error
	errb  strings.Builder
}

// startReplayProcess starts `sediment replay-worker` (this executable) replaying topic; replayed
// follows its progress.
func startReplayProcess(brokers []string, topic string, ends map[int32]int64, pace int64, timeout time.Duration, replayed *atomic.Int64) (*replayProcess, error) {
	rp := &replayProcess{done: make(chan error, 1)}
	var err error
	if rp.cmd, err = replayWorkerCommand(brokers, topic, ends, pace, timeout); err != nil {
		return nil, err
	}
	rp.cmd.Stderr = &rp.errb
	if rp.stdin, err = rp.cmd.StdinPipe(); err != nil {
		return nil, err
	}
	out, err := rp.cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	if err := rp.cmd.Start(); err != nil {
		return nil, fmt.Errorf("start replay-worker: %w", err)
	}
	go func() {
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			if n, ok := strings.CutPrefix(sc.Text(), "bytes "); ok {
				if v, err := strconv.ParseInt(n, 10, 64); err == nil {
					replayed.Store(v)
				}
			}
		}
		err := rp.cmd.Wait()
		if err != nil {
			err = fmt.Errorf("replay-worker: %w: %s", err, strings.TrimSpace(rp.errb.String()))
		}
		rp.done <- err
	}()
	return rp, nil
}

// stop asks the child to finish (closing its stdin) and waits for it, killing it after a bound.
func (rp *replayProcess) stop() error {
	rp.stdin.Close()
	select {
	case err := <-rp.done:
		return err
	case <-time.After(30 * time.Second):
		rp.cmd.Process.Kill()
		<-rp.done
		return errors.New("replay-worker: did not stop within 30s of its stdin closing; killed")
	}
}

// pause stops the child (SIGSTOP) and resume continues it: the interleaved latency run's windows
// without and with the replay.
func (rp *replayProcess) pause() error  { return rp.cmd.Process.Signal(syscall.SIGSTOP) }
func (rp *replayProcess) resume() error { return rp.cmd.Process.Signal(syscall.SIGCONT) }

// latencyInterleaved runs one fixed-rate produce of 2 × pairs windows while a replay-worker child
// replays [0, ends) of topic, stopped in every other window (loadgen/interleave.go). With control
// the child stays stopped throughout: the same comparison with no replay at all, its noise floor.
func latencyInterleaved(ctx context.Context, lc loadgen.Config, brokers []string, topic string, ends map[int32]int64, o tierOptions, kind string, control bool, out io.Writer) (loadgen.InterleavedLatency, error) {
	const skip = 250 * time.Millisecond
	il := loadgen.InterleavedLatency{Kind: kind, Window: o.interleaveWindow, Skip: skip}
	if o.interleaveWindow < 4*skip {
		return il, fmt.Errorf("--tier-interleave-window %s: at least %s (the first %s of each window is not counted)", o.interleaveWindow, 4*skip, skip)
	}
	lc.LatencyFor = time.Duration(2*o.interleavePairs) * o.interleaveWindow
	var replayed atomic.Int64
	rstart := time.Now()
	// One pass of the replay may take the whole run (the adaptive throttle slows it to about a
	// MiB/s): its bound is the run's length plus the usual one.
	rp, err := startReplayProcess(brokers, topic, ends, o.replayPace, lc.LatencyFor+lc.Timeout, &replayed)
	if err != nil {
		return il, err
	}
	time.Sleep(500 * time.Millisecond) // reading from the bucket before the first record is sent
	if control {
		rp.pause()
	}
	fmt.Fprintf(out, "latency, interleaved (%s): %d records/s for %s to %s, the replay of %s stopped in every other %s window%s\n",
		kind, lc.Rate, lc.LatencyFor, lc.Topic, topic, o.interleaveWindow, map[bool]string{true: " (control: stopped in all of them)"}[control])
	var windows []loadgen.Window
	done, toggled := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(toggled)
		during, start := true, time.Now()
		for {
			select {
			case <-time.After(o.interleaveWindow):
			case <-done:
				windows = append(windows, loadgen.Window{Start: start, End: time.Now(), During: during})
				return
			}
			now := time.Now()
			windows = append(windows, loadgen.Window{Start: start, End: now, During: during})
			during, start = !during, now
			if !control {
				if during {
					rp.resume()
				} else {
					rp.pause()
				}
			}
		}
	}()
	lat, err := loadgen.FixedRateLatency(ctx, lc, out)
	close(done)
	<-toggled
	rp.resume()
	rerr := rp.stop()
	il.Replay = loadgen.Throughput{Bytes: replayed.Load(), Records: replayed.Load() / int64(lc.RecordSize), Elapsed: time.Since(rstart)}
	if err != nil {
		return il, err
	}
	if rerr != nil {
		return il, fmt.Errorf("background replay: %w", rerr)
	}
	il.Alone, il.During, il.Paired = loadgen.InterleavedStats(lat.Samples, windows, skip)
	fmt.Fprintln(out, windowSummary(lat.Samples, windows))
	fmt.Fprintf(out, "  with the replay: ack p99 %.2f ms over %d acks; without: %.2f ms over %d acks; ratio %.2f\n",
		il.During.P99ms, il.During.Acks, il.Alone.P99ms, il.Alone.Acks, il.Ratio())
	fmt.Fprintf(out, "  window pairs: %d, p99 ratio median %.2f (10th-90th percentile %.2f-%.2f)\n",
		il.Paired.Pairs, il.Paired.RatioMedian, il.Paired.RatioP10, il.Paired.RatioP90)
	return il, nil
}

// windowSummary is each window's acks slower than 2 ms in its first second and in the rest (by
// send time): whether a replay's cost is the resumption or spread over the window.
func windowSummary(samples []loadgen.AckSample, windows []loadgen.Window) string {
	var b strings.Builder
	b.WriteString("  acks > 2 ms per window (R with the replay, - without; first second + rest):")
	for _, w := range windows {
		first, rest := 0, 0
		for _, s := range samples {
			if s.SentAt.Before(w.Start) || !s.SentAt.Before(w.End) || s.Ack <= 2*time.Millisecond {
				continue
			}
			if s.SentAt.Sub(w.Start) < time.Second {
				first++
			} else {
				rest++
			}
		}
		fmt.Fprintf(&b, " %s%d+%d", map[bool]string{true: "R", false: "-"}[w.During], first, rest)
	}
	return b.String()
}
