package loadgen

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
)

// Config is one workload. The zero value is not valid; start from DefaultConfig.
type Config struct {
	Brokers       []string
	Topic         string
	Partitions    int32
	Replication   int16         // replication factor of the topic (0 = 1)
	RecordSize    int           // value bytes per record (>= 8: the send timestamp)
	Records       int64         // records for the produce and consume phases (0 = skip both)
	WarmConsume   bool          // also read the records back right after producing, from the page cache the produce left warm (phase "consume-warm", before "consume")
	Rate          int           // records/s in the latency phase
	LatencyFor    time.Duration // length of the latency phase (0 = skip)
	Linger        time.Duration // producer linger (kgo.ProducerLinger)
	BatchMaxBytes int32         // per-partition batch limit (kgo.ProducerBatchMaxBytes)
	Acks          string        // "all", "1", "0"
	MaxInflight   int           // produce requests in flight per broker (0 = franz-go's default: 5 when idempotent)
	Compression   string        // none, gzip, snappy, lz4, zstd
	Timeout       time.Duration // bound on each phase

	// OnPhase, when set, is called as each phase starts (start=true) and ends, e.g. to profile
	// only the produce phase. Not part of the workload.
	OnPhase func(phase string, start bool) `json:"-"`
	// ProgressEvery is the interval of the progress line during a phase (0 = 1 s; < 0 = none).
	ProgressEvery time.Duration `json:"-"`
}

// DefaultConfig: 1 KiB records, acks=all, no compression, 8 partitions, linger 0.
func DefaultConfig() Config {
	return Config{
		Topic:         "sediment-bench",
		Partitions:    8,
		RecordSize:    1024,
		Records:       200_000,
		Rate:          5000,
		LatencyFor:    10 * time.Second,
		Linger:        0,
		BatchMaxBytes: 1 << 20,
		Acks:          "all",
		Compression:   "none",
		Timeout:       5 * time.Minute,
	}
}

// Validate checks the settings.
func (c Config) Validate() error {
	var errs []error
	if len(c.Brokers) == 0 {
		errs = append(errs, errors.New("no brokers"))
	}
	if c.Topic == "" {
		errs = append(errs, errors.New("empty topic"))
	}
	if c.Partitions < 1 {
		errs = append(errs, fmt.Errorf("partitions %d < 1", c.Partitions))
	}
	if c.RecordSize < 8 {
		errs = append(errs, fmt.Errorf("record size %d < 8", c.RecordSize))
	}
	if c.Records < 0 || c.Rate < 0 || c.LatencyFor < 0 || c.Linger < 0 || c.MaxInflight < 0 {
		errs = append(errs, errors.New("negative count, rate or duration"))
	}
	if c.LatencyFor > 0 && c.Rate == 0 {
		errs = append(errs, errors.New("latency phase needs a rate"))
	}
	if _, err := c.acks(); err != nil {
		errs = append(errs, err)
	}
	if _, err := c.codec(); err != nil {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

func (c Config) acks() (kgo.Acks, error) {
	switch c.Acks {
	case "all", "-1":
		return kgo.AllISRAcks(), nil
	case "1":
		return kgo.LeaderAck(), nil
	case "0":
		return kgo.NoAck(), nil
	}
	return kgo.Acks{}, fmt.Errorf("acks %q: want all, 1 or 0", c.Acks)
}

func (c Config) codec() (kgo.CompressionCodec, error) {
	switch strings.ToLower(c.Compression) {
	case "", "none":
		return kgo.NoCompression(), nil
	case "gzip":
		return kgo.GzipCompression(), nil
	case "snappy":
		return kgo.SnappyCompression(), nil
	case "lz4":
		return kgo.Lz4Compression(), nil
	case "zstd":
		return kgo.ZstdCompression(), nil
	}
	return kgo.CompressionCodec{}, fmt.Errorf("compression %q: want none, gzip, snappy, lz4 or zstd", c.Compression)
}

// Throughput is one phase's volume over its wall time.
type Throughput struct {
	Records int64
	Bytes   int64 // value bytes
	Elapsed time.Duration
	// First is, for a replay, the wait from the consumer's start until its first record: what a
	// consumer reading history notices first (0 when not measured).
	First time.Duration `json:",omitempty"`
}

func (t Throughput) MBps() float64 {
	if t.Elapsed <= 0 {
		return 0
	}
	return float64(t.Bytes) / (1 << 20) / t.Elapsed.Seconds()
}

func (t Throughput) RecordsPerSec() float64 {
	if t.Elapsed <= 0 {
		return 0
	}
	return float64(t.Records) / t.Elapsed.Seconds()
}

// Latency holds produce→consume latency percentiles of the latency phase.
type Latency struct {
	Sent, Received   int64
	P50, P99, P999   time.Duration
	Max              time.Duration
	AchievedRate     float64 // records/s actually sent
	ProduceErrors    int64
	AckP50, AckP99   time.Duration // produce call → ack
	AckP999          time.Duration
	ConsumeOutOfSync int64 // records consumed whose timestamp could not be read
	// AckBySecond is the ack latency per second of the phase (by when the record was sent):
	// whether a p99 comes from one burst (the start of a replay) or from the whole phase.
	AckBySecond []SecondLatency `json:",omitempty"`
	// Samples are every ack, by send time (for windowed comparisons: InterleavedStats).
	Samples []AckSample `json:"-"`
}

// AckSample is one acknowledged record of a latency phase.
type AckSample struct {
	SentAt time.Time
	Ack    time.Duration
}

// SecondLatency is the ack latency of the records sent in one second of a latency phase.
type SecondLatency struct {
	Acks     int
	P99, Max time.Duration
	Over2ms  int // acks slower than 2 ms
	Over5ms  int
}

// Result is a whole run.
type Result struct {
	Produce     Throughput
	ConsumeWarm Throughput // zero unless Config.WarmConsume
	Consume     Throughput
	Latency     Latency
}

func (c Config) producerOpts() ([]kgo.Opt, error) {
	acks, err := c.acks()
	if err != nil {
		return nil, err
	}
	codec, err := c.codec()
	if err != nil {
		return nil, err
	}
	opts := []kgo.Opt{
		kgo.SeedBrokers(c.Brokers...),
		kgo.DefaultProduceTopic(c.Topic),
		kgo.RequiredAcks(acks),
		kgo.ProducerLinger(c.Linger),
		kgo.ProducerBatchMaxBytes(c.BatchMaxBytes),
		kgo.ProducerBatchCompression(codec),
		kgo.RecordPartitioner(kgo.RoundRobinPartitioner()),
		kgo.MaxBufferedRecords(1 << 16),
	}
	if c.Acks != "all" && c.Acks != "-1" {
		opts = append(opts, kgo.DisableIdempotentWrite())
	}
	if c.MaxInflight > 0 {
		opts = append(opts, kgo.MaxProduceRequestsInflightPerBroker(c.MaxInflight))
	}
	return opts, nil
}

// Run executes the configured phases against c.Brokers, creating the topic first if needed.
func Run(ctx context.Context, c Config, log io.Writer) (Result, error) {
	var res Result
	if err := c.Validate(); err != nil {
		return res, err
	}
	if log == nil {
		log = io.Discard
	}
	if err := ensureTopic(ctx, c); err != nil {
		return res, err
	}
	if c.Records > 0 {
		fmt.Fprintf(log, "produce: %d records of %d bytes, acks=%s, linger=%s, batch=%d, compression=%s, %d partitions\n",
			c.Records, c.RecordSize, c.Acks, c.Linger, c.BatchMaxBytes, c.Compression, c.Partitions)
		c.phase("produce", true)
		t, err := producePhase(ctx, c, log)
		c.phase("produce", false)
		res.Produce = t
		if err != nil {
			return res, fmt.Errorf("produce phase: %w", err)
		}
		if c.WarmConsume {
			// A consumer tailing close behind the producers reads what the page cache holds; this is
			// Kafka's usual case and the one an in-memory broker is compared with.
			fmt.Fprintf(log, "consume-warm: reading %d records back right after producing\n", c.Records)
			c.phase("consume-warm", true)
			t, err = consumePhase(ctx, c, c.Records, log)
			c.phase("consume-warm", false)
			res.ConsumeWarm = t
			if err != nil {
				return res, fmt.Errorf("consume-warm phase: %w", err)
			}
		}
		fmt.Fprintf(log, "consume: reading %d records back\n", c.Records)
		c.phase("consume", true)
		t, err = consumePhase(ctx, c, c.Records, log)
		c.phase("consume", false)
		res.Consume = t
		if err != nil {
			return res, fmt.Errorf("consume phase: %w", err)
		}
	}
	if c.LatencyFor > 0 {
		fmt.Fprintf(log, "latency: %d records/s for %s\n", c.Rate, c.LatencyFor)
		c.phase("latency", true)
		l, err := latencyPhase(ctx, c, log)
		c.phase("latency", false)
		res.Latency = l
		if err != nil {
			return res, fmt.Errorf("latency phase: %w", err)
		}
	}
	return res, nil
}

func (c Config) phase(name string, start bool) {
	if c.OnPhase != nil {
		c.OnPhase(name, start)
	}
}

// progress prints line() every c.ProgressEvery until the returned stop is called.
func (c Config) progress(log io.Writer, line func(elapsed time.Duration) string) (stop func()) {
	every := c.ProgressEvery
	if every == 0 {
		every = time.Second
	}
	if every < 0 || log == io.Discard {
		return func() {}
	}
	done := make(chan struct{})
	finished := make(chan struct{})
	start := time.Now()
	go func() {
		defer close(finished)
		t := time.NewTicker(every)
		defer t.Stop()
		for {
			select {
			case <-done:
				return
			case <-t.C:
				fmt.Fprintf(log, "  .. %5.1fs %s\n", time.Since(start).Seconds(), line(time.Since(start)))
			}
		}
	}()
	return func() { close(done); <-finished }
}

func ensureTopic(ctx context.Context, c Config) error {
	cl, err := kgo.NewClient(kgo.SeedBrokers(c.Brokers...))
	if err != nil {
		return err
	}
	defer cl.Close()
	adm := kadm.NewClient(cl)
	cctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	rf := c.Replication
	if rf == 0 {
		rf = 1
	}
	resp, err := adm.CreateTopic(cctx, c.Partitions, rf, nil, c.Topic)
	if err != nil && !strings.Contains(err.Error(), "TOPIC_ALREADY_EXISTS") {
		return fmt.Errorf("create topic %s: %w", c.Topic, err)
	}
	if resp.Err != nil && !strings.Contains(resp.Err.Error(), "TOPIC_ALREADY_EXISTS") {
		return fmt.Errorf("create topic %s: %w", c.Topic, resp.Err)
	}
	return nil
}

func newValue(size int) []byte {
	v := make([]byte, size)
	binary.BigEndian.PutUint64(v, uint64(time.Now().UnixNano()))
	return v
}

func producePhase(ctx context.Context, c Config, log io.Writer) (Throughput, error) {
	opts, err := c.producerOpts()
	if err != nil {
		return Throughput{}, err
	}
	cl, err := kgo.NewClient(opts...)
	if err != nil {
		return Throughput{}, err
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(ctx, c.Timeout)
	defer cancel()

	var (
		acked    atomic.Int64
		firstErr atomic.Pointer[error]
		wg       sync.WaitGroup
	)
	start := time.Now()
	stop := c.progress(log, func(el time.Duration) string {
		n := acked.Load()
		return fmt.Sprintf("produce: %d/%d acknowledged, %.1f MB/s", n, c.Records, mbps(n*int64(c.RecordSize), el))
	})
	defer stop()
	for i := int64(0); i < c.Records; i++ {
		if ctx.Err() != nil {
			break
		}
		wg.Add(1)
		cl.Produce(ctx, &kgo.Record{Value: newValue(c.RecordSize)}, func(_ *kgo.Record, err error) {
			defer wg.Done()
			if err != nil {
				firstErr.CompareAndSwap(nil, &err)
				return
			}
			acked.Add(1)
		})
	}
	wg.Wait()
	t := Throughput{Records: acked.Load(), Bytes: acked.Load() * int64(c.RecordSize), Elapsed: time.Since(start)}
	if p := firstErr.Load(); p != nil {
		return t, *p
	}
	if err := ctx.Err(); err != nil {
		return t, err
	}
	return t, nil
}

func consumePhase(ctx context.Context, c Config, want int64, log io.Writer) (Throughput, error) {
	cl, err := kgo.NewClient(
		kgo.SeedBrokers(c.Brokers...),
		kgo.ConsumeTopics(c.Topic),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
		kgo.FetchMaxBytes(50<<20),
		kgo.FetchMaxPartitionBytes(10<<20),
	)
	if err != nil {
		return Throughput{}, err
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(ctx, c.Timeout)
	defer cancel()
	var t Throughput
	var seen atomic.Int64
	start := time.Now()
	stop := c.progress(log, func(el time.Duration) string {
		n := seen.Load()
		return fmt.Sprintf("consume: %d/%d records, %.1f MB/s", n, want, mbps(n*int64(c.RecordSize), el))
	})
	defer stop()
	for t.Records < want {
		fs := cl.PollFetches(ctx)
		if err := ctx.Err(); err != nil {
			t.Elapsed = time.Since(start)
			return t, fmt.Errorf("consumed %d of %d: %w", t.Records, want, err)
		}
		var ferr error
		fs.EachError(func(topic string, p int32, err error) {
			if ferr == nil {
				ferr = fmt.Errorf("%s[%d]: %w", topic, p, err)
			}
		})
		if ferr != nil {
			return t, ferr
		}
		fs.EachRecord(func(r *kgo.Record) {
			t.Records++
			t.Bytes += int64(len(r.Value))
		})
		seen.Store(t.Records)
	}
	t.Elapsed = time.Since(start)
	return t, nil
}

func latencyPhase(ctx context.Context, c Config, log io.Writer) (Latency, error) {
	var l Latency
	opts, err := c.producerOpts()
	if err != nil {
		return l, err
	}
	prod, err := kgo.NewClient(opts...)
	if err != nil {
		return l, err
	}
	defer prod.Close()
	cons, err := kgo.NewClient(
		kgo.SeedBrokers(c.Brokers...),
		kgo.ConsumeTopics(c.Topic),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtEnd()),
		kgo.FetchMaxWait(500*time.Millisecond),
	)
	if err != nil {
		return l, err
	}
	defer cons.Close()
	// The phase runs for LatencyFor by design; Timeout bounds what it waits for on top of that
	// (warm-up, the last acks and records). A bound of Timeout alone cut a run longer than it short
	// and then failed it for the records still in flight at the cut.
	ctx, cancel := context.WithTimeout(ctx, c.LatencyFor+c.Timeout)
	defer cancel()

	// Make sure the consumer has its position at the end before anything is sent, so that the
	// first records are not measured from a cold start (metadata, ListOffsets).
	if err := warmConsumer(ctx, prod, cons, c); err != nil {
		return l, err
	}

	var (
		mu       sync.Mutex
		lats     = make([]time.Duration, 0, int(c.LatencyFor.Seconds()+1)*c.Rate)
		ackLats  = make([]time.Duration, 0, cap(lats))
		samples  = make([]AckSample, 0, cap(lats))
		received atomic.Int64
		bad      atomic.Int64
		prodErrs atomic.Int64
		sent     int64
		wg       sync.WaitGroup
	)
	cctx, stopConsumer := context.WithCancel(ctx)
	consDone := make(chan struct{})
	go func() {
		defer close(consDone)
		for cctx.Err() == nil {
			fs := cons.PollFetches(cctx)
			now := time.Now().UnixNano()
			fs.EachRecord(func(r *kgo.Record) {
				if len(r.Value) < 8 || len(r.Value) != c.RecordSize {
					bad.Add(1) // a warm-up record
					return
				}
				sentAt := int64(binary.BigEndian.Uint64(r.Value))
				mu.Lock()
				lats = append(lats, time.Duration(now-sentAt))
				mu.Unlock()
				received.Add(1)
			})
		}
	}()

	interval := time.Second / time.Duration(c.Rate)
	var sentA atomic.Int64
	stop := c.progress(log, func(el time.Duration) string {
		return fmt.Sprintf("latency: %d sent, %d received (target %d records/s for %s)", sentA.Load(), received.Load(), c.Rate, c.LatencyFor)
	})
	defer stop()
	start := time.Now()
	end := start.Add(c.LatencyFor)
	for next := start; next.Before(end) && ctx.Err() == nil; {
		if d := time.Until(next); d > 0 {
			time.Sleep(d)
		}
		// Send every record that is due (sleep granularity is coarser than the interval at
		// high rates).
		for now := time.Now(); !next.After(now) && next.Before(end); next = next.Add(interval) {
			sent++
			sentA.Store(sent)
			wg.Add(1)
			sendAt := time.Now()
			prod.Produce(ctx, &kgo.Record{Value: newValue(c.RecordSize)}, func(_ *kgo.Record, err error) {
				defer wg.Done()
				if err != nil {
					prodErrs.Add(1)
					return
				}
				d := time.Since(sendAt)
				mu.Lock()
				ackLats = append(ackLats, d)
				samples = append(samples, AckSample{sendAt, d})
				mu.Unlock()
			})
		}
	}
	l.AchievedRate = float64(sent) / time.Since(start).Seconds()
	wg.Wait()
	// Give the consumer until the timeout to see everything that was acknowledged.
	want := sent - prodErrs.Load()
	deadline := time.Now().Add(10 * time.Second)
	for received.Load() < want && time.Now().Before(deadline) && ctx.Err() == nil {
		time.Sleep(10 * time.Millisecond)
	}
	stopConsumer()
	<-consDone

	mu.Lock()
	defer mu.Unlock()
	l.Sent = sent
	l.Received = received.Load()
	l.ProduceErrors = prodErrs.Load()
	l.ConsumeOutOfSync = bad.Load()
	slices.Sort(lats)
	slices.Sort(ackLats)
	l.P50, l.P99, l.P999 = pct(lats, 0.50), pct(lats, 0.99), pct(lats, 0.999)
	if len(lats) > 0 {
		l.Max = lats[len(lats)-1]
	}
	l.AckP50, l.AckP99, l.AckP999 = pct(ackLats, 0.50), pct(ackLats, 0.99), pct(ackLats, 0.999)
	l.Samples = samples
	l.AckBySecond = bySecond(samples, start)
	if l.Received < want {
		return l, fmt.Errorf("consumed %d of %d acknowledged records", l.Received, want)
	}
	return l, nil
}

// bySecond summarises acks per second of the phase that began at start, by send time.
func bySecond(samples []AckSample, start time.Time) []SecondLatency {
	var secs [][]time.Duration
	for _, s := range samples {
		i := max(int(s.SentAt.Sub(start)/time.Second), 0)
		for len(secs) <= i {
			secs = append(secs, nil)
		}
		secs[i] = append(secs[i], s.Ack)
	}
	var out []SecondLatency
	for _, v := range secs {
		if len(v) == 0 {
			continue
		}
		slices.Sort(v)
		sl := SecondLatency{Acks: len(v), P99: pct(v, 0.99), Max: v[len(v)-1]}
		for _, d := range v {
			if d > 2*time.Millisecond {
				sl.Over2ms++
			}
			if d > 5*time.Millisecond {
				sl.Over5ms++
			}
		}
		out = append(out, sl)
	}
	return out
}

// warmConsumer sends one short record per partition and waits until the consumer has seen at
// least one, so that both clients have metadata, connections and positions.
func warmConsumer(ctx context.Context, prod, cons *kgo.Client, c Config) error {
	wctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	seen := make(chan struct{})
	var once sync.Once
	go func() {
		for wctx.Err() == nil {
			fs := cons.PollFetches(wctx)
			if fs.NumRecords() > 0 {
				once.Do(func() { close(seen) })
				return
			}
		}
	}()
	// The consumer resets to the end; keep sending warm-up records until one arrives.
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	for {
		if err := prod.ProduceSync(wctx, &kgo.Record{Value: []byte("warmup")}).FirstErr(); err != nil {
			return fmt.Errorf("warm-up produce: %w", err)
		}
		select {
		case <-seen:
			return nil
		case <-wctx.Done():
			return fmt.Errorf("warm-up: consumer saw nothing: %w", wctx.Err())
		case <-tick.C:
		}
	}
}

func pct(sorted []time.Duration, q float64) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	i := int(q*float64(len(sorted))+0.5) - 1
	if i < 0 {
		i = 0
	}
	if i >= len(sorted) {
		i = len(sorted) - 1
	}
	return sorted[i]
}
