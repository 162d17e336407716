package broker

import (
	"fmt"
	"io"
	"math"
	rtmetrics "runtime/metrics"
	"sync"
	"sync/atomic"
	"time"

	"github.com/sediment-io/sediment/tiering"
)

// The adaptive cold-read budget (issue 7: "cold reads run with their own concurrency budget so that
// a replay cannot slow produce on the same broker").
//
// Why a controller and not only GET slots or a static quota: a replay from the bucket is bounded by
// CPU (CRC checks, copies, the response, the consumer, and the object store when it runs on the
// same machine), and Go's scheduler has no priorities — with every P busy, a produce request's
// goroutine waits for a P like any other, and its ack latency grows 10-30× (bench, session 4).
// A static quota (KIP-956) protects produce only if the operator picks the rate for the worst case,
// which also slows every replay that runs when nobody produces. The controller instead lowers the
// remote fetch quota only while producers are active AND the process is short of CPU, and lifts it
// as soon as either stops — so a replay alone runs at full speed.
//
// Signals, sampled every interval (50 ms: a replay that meets a producer runs unlimited for up to
// one interval, and 1 % of a produce phase — its p99 — is 100 ms of a 10 s run):
//   - producers active: a Produce request was answered within activeWindow (the broker's request
//     counter; acks=0 produce is counted too);
//   - CPU contention: the p99 of goroutine scheduling latency (runtime/metrics
//     /sched/latencies:seconds, time from runnable to running) over the last interval. It measures
//     exactly what hurts produce — a runnable goroutine waiting for a P or for its thread to get a
//     core — and includes contention from other processes (the object store, the consumer) as far
//     as it delays this one. The fsync wait is not in it (a goroutine blocked in a syscall is not
//     runnable), so a slow disk does not throttle replays.
//
// Control (AIMD on the rate of the remote fetch quota, tiering.FetchQuota.SetAdaptiveRate):
// producers idle → no adaptive limit; contention (p99 > high) → the floor at once when there was no
// limit yet (and remote reads are running) or when p99 > 4 × high, else rate × decrease, never
// below floor; clear
// (p99 < low) → the limit grows, but not above twice the rate reads actually used plus the floor
// (growing a limit nobody reaches only stores up a burst), and it is lifted once it passes
// unlimitAbove; in between: hold. How it grows follows TCP's congestion control: each back-off sets
// a threshold at half the rate that met contention (the read rate when an unlimited replay was
// cut to the floor, else the limit that was halved). Below the threshold the limit doubles every
// second (slow start): one blip of contention — a GC cycle, a burst of requests — then costs an
// unpaced replay seconds, not the 13 minutes a climb from the floor to 800 MB/s took at 1 MiB/s
// each second on a broker whose producers never stop. At or above it the limit grows linearly by
// a tenth of the threshold per second. Either way it grows by at least the floor per second, about
// all it does at the 1-1.5 MB/s where a 2-core broker beside its object store settles (bench).
// The effective rate is never above the static quota (FetchQuota takes the lower of the two),
// so KIP-956's remote.log.manager.fetch.max.bytes.per.second keeps its meaning. After a back-off
// there is no raise for hold (1 s): each raise that overshoots is a latency spike. Producers that
// arrive while a replay runs unlimited on a contended CPU get the floor from their first Produce
// request (onProduce: one atomic load per request otherwise), not from the next sample.
//
// Goroutine: one per broker with tiering (throttleLoop, started by newTierManager, ended by
// tierManager.close through tm.ctx). Lock: throttleController.mu guards the controller's state
// (taken by the loop and by /metrics; never held across anything else).

// throttleParams tune the controller (broker configs remote.log.reader.adaptive.throttle.*).
type throttleParams struct {
	interval     time.Duration
	raise        float64 // bytes/s added per clear interval, at least
	slowStart    float64 // below the threshold: factor per clear interval (2 per second)
	linear       float64 // at or above it: fraction of the threshold added per clear interval
	activeWindow time.Duration
	high, low    time.Duration // scheduling-latency p99 thresholds
	floor        float64       // bytes/s a replay always gets
	decrease     float64       // multiplicative decrease on contention
	unlimitAbove float64       // a limit raised past this (bytes/s) is lifted
	// hold: no raise for this long after a back-off. Every raise that overshoots costs a
	// contention episode (a latency spike) and each back-off says the last raise did; without a
	// hold the limit oscillated ~10 times in a 10 s produce phase (bench 12:20: 12 back-offs, 91
	// raises), and those spikes, not the steady state, made the produce p99.
	hold time.Duration
}

func throttleParamsFrom(cfg *Config) throttleParams {
	high := time.Duration(cfg.RemoteLogReaderAdaptiveThrottleSchedLatencyUs) * time.Microsecond
	return throttleParams{
		interval:     50 * time.Millisecond,
		raise:        float64(cfg.RemoteLogReaderAdaptiveThrottleMinBytesPerSec) / 20, // the floor per second
		slowStart:    math.Pow(2, 1.0/20),                                             // ×2 per second
		linear:       0.1 / 20,                                                        // a tenth of the threshold per second
		activeWindow: time.Second,
		high:         high,
		low:          high / 2,
		floor:        float64(cfg.RemoteLogReaderAdaptiveThrottleMinBytesPerSec),
		decrease:     0.5,
		unlimitAbove: 4 << 30,
		hold:         time.Second,
	}
}

// throttleSample is what the loop feeds the controller each tick.
type throttleSample struct {
	now             time.Time
	produceRequests int64         // cumulative Produce requests answered
	readBytes       int64         // cumulative bytes returned by remote reads (FetchQuota.Used)
	schedP99        time.Duration // goroutine scheduling latency p99 since the previous sample
}

// throttleController is the pure decision part: deterministic given its samples.
type throttleController struct {
	p throttleParams

	mu            sync.Mutex
	rate          float64 // the adaptive limit, bytes/s; +Inf: none
	threshold     float64 // slow start below, linear growth above: half the rate that last met contention
	started       bool
	lastAt        time.Time
	lastProduce   int64
	lastProduceAt time.Time
	lastRead      int64
	lastBackoffAt time.Time

	// Observed at the last tick, and decision counts (metrics).
	active              bool
	schedP99            time.Duration
	readRate            float64
	backoffs, increases int64
	lifts               int64 // limit removed (producers idle, or raised past unlimitAbove)
}

func newThrottleController(p throttleParams) *throttleController {
	return &throttleController{p: p, rate: math.Inf(1)}
}

// step takes one sample and returns the adaptive limit (+Inf: none).
func (c *throttleController) step(s throttleSample) float64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	if !c.started {
		c.started = true
		c.lastAt, c.lastProduce, c.lastRead = s.now, s.produceRequests, s.readBytes
		return c.rate
	}
	if s.produceRequests != c.lastProduce {
		c.lastProduce, c.lastProduceAt = s.produceRequests, s.now
	}
	dt := s.now.Sub(c.lastAt).Seconds()
	c.readRate = 0
	if dt > 0 {
		// Never negative: a fetch's refund of a discarded read (FetchQuota.Refund) can land in
		// the interval after the read was counted.
		c.readRate = max(0, float64(s.readBytes-c.lastRead)/dt)
	}
	c.lastAt, c.lastRead = s.now, s.readBytes
	c.schedP99 = s.schedP99
	c.active = !c.lastProduceAt.IsZero() && s.now.Sub(c.lastProduceAt) <= c.p.activeWindow
	limited := !math.IsInf(c.rate, 1)
	switch {
	case !c.active:
		if limited {
			c.lifts++
		}
		c.rate = math.Inf(1)
	case s.schedP99 > c.p.high:
		switch {
		case limited && s.schedP99 > 4*c.p.high:
			c.threshold = c.rate * c.p.decrease
			c.rate = c.p.floor // severe: every interval spent halving shows in the produce p99
		case limited:
			c.rate = max(c.p.floor, c.rate*c.p.decrease)
			c.threshold = c.rate
		case c.readRate > 0:
			// The first back-off goes straight to the floor: halving an unpaced replay's
			// ~800 MB/s would take 7-8 intervals, and those 0.8 s of contention alone are
			// more than the 1 % of a produce phase that makes its p99 (bench, 11:39).
			c.threshold = c.readRate * c.p.decrease
			c.rate = c.p.floor
		default:
			return c.rate // nothing read from the bucket: the contention is not ours to relieve
		}
		c.backoffs++
		c.lastBackoffAt = s.now
	case s.schedP99 < c.p.low && limited && s.now.Sub(c.lastBackoffAt) >= c.p.hold:
		r := c.grown()
		r = min(r, max(c.rate, 2*c.readRate+c.p.floor))
		if r >= c.p.unlimitAbove {
			c.rate = math.Inf(1)
			c.lifts++
		} else if r > c.rate {
			c.rate = r
			c.increases++
		}
	}
	return c.rate
}

// grown is the limit after one clear interval (see the top of the file): slow start below the
// threshold (not past it), linear growth at or above it, and at least the raise either way.
func (c *throttleController) grown() float64 {
	if c.rate < c.threshold {
		return max(c.rate+c.p.raise, min(c.rate*c.p.slowStart, c.threshold))
	}
	return c.rate + max(c.p.raise, c.threshold*c.p.linear)
}

// armed reports, after a step, whether producers arriving now should get the floor at once: a
// replay runs unlimited on a contended CPU (the last sample's p99 above high, remote reads
// running) and nobody produced within the activity window. Waiting for the next sample to find
// them let the replay run unlimited against them for up to an interval — half the p99 budget of
// a 10 s produce phase.
func (c *throttleController) armed() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.started && !c.active && math.IsInf(c.rate, 1) && c.schedP99 > c.p.high && c.readRate > 0
}

// arrival is the back-off for producers arriving while armed: the floor, as the next sample would
// have decided. It reports false when a sample got there first.
func (c *throttleController) arrival(now time.Time) (float64, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.active || !math.IsInf(c.rate, 1) {
		return c.rate, false
	}
	c.lastProduceAt, c.active = now, true
	c.threshold = c.readRate * c.p.decrease
	c.rate = c.p.floor
	c.backoffs++
	c.lastBackoffAt = now
	return c.rate, true
}

// schedLatency reads the p99 of goroutine scheduling latency since its previous call from the
// runtime's cumulative histogram.
type schedLatency struct {
	sample []rtmetrics.Sample
	prev   []uint64
}

func newSchedLatency() *schedLatency {
	return &schedLatency{sample: []rtmetrics.Sample{{Name: "/sched/latencies:seconds"}}}
}

func (s *schedLatency) p99() time.Duration {
	rtmetrics.Read(s.sample)
	if s.sample[0].Value.Kind() != rtmetrics.KindFloat64Histogram {
		return 0
	}
	h := s.sample[0].Value.Float64Histogram()
	if len(s.prev) != len(h.Counts) {
		s.prev = make([]uint64, len(h.Counts))
	}
	return histP99(h, s.prev)
}

// histP99 is the 0.99 quantile (the upper bound of its bucket) of h's counts minus prev, and
// stores h's counts in prev.
func histP99(h *rtmetrics.Float64Histogram, prev []uint64) time.Duration {
	var total uint64
	for i, n := range h.Counts {
		total += n - prev[i]
	}
	var q time.Duration
	if total > 0 {
		want := uint64(math.Ceil(0.99 * float64(total)))
		var cum uint64
		for i, n := range h.Counts {
			cum += n - prev[i]
			if cum >= want {
				ub := h.Buckets[i+1]
				if math.IsInf(ub, 1) {
					ub = h.Buckets[i]
				}
				q = time.Duration(ub * float64(time.Second))
				break
			}
		}
	}
	copy(prev, h.Counts)
	return q
}

// tierThrottle runs a controller against the broker's remote fetch quota.
type tierThrottle struct {
	ctl     *throttleController
	quota   *tiering.FetchQuota
	mu      sync.Mutex  // orders SetAdaptiveRate calls (the loop's and onProduce's)
	isArmed atomic.Bool // ctl.armed() after the last sample: read on every Produce
}

// run ticks until done closes. sample supplies everything but the time.
func (t *tierThrottle) run(done <-chan struct{}, sample func(now time.Time) throttleSample) {
	tick := time.NewTicker(t.ctl.p.interval)
	defer tick.Stop()
	t.apply(sample(time.Now()))
	for {
		select {
		case <-done:
			return
		case now := <-tick.C:
			t.apply(sample(now))
		}
	}
}

func (t *tierThrottle) apply(s throttleSample) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.quota.SetAdaptiveRate(t.ctl.step(s))
	t.isArmed.Store(t.ctl.armed())
}

// onProduce is called by every Produce request: one atomic load unless armed.
func (t *tierThrottle) onProduce() {
	if t == nil || !t.isArmed.Load() {
		return
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	if !t.isArmed.Swap(false) {
		return
	}
	if r, changed := t.ctl.arrival(time.Now()); changed {
		t.quota.SetAdaptiveRate(r)
	}
}

// startThrottle starts the controller of the fetch quota's adaptive limit (never above the
// configured rate), when remote.log.reader.adaptive.throttle.enable is on.
func (tm *tierManager) startThrottle() {
	if !tm.b.cfg.RemoteLogReaderAdaptiveThrottleEnable {
		return
	}
	q := tm.quota
	tm.throttle = &tierThrottle{ctl: newThrottleController(throttleParamsFrom(&tm.b.cfg)), quota: q}
	sched := newSchedLatency()
	produce := &tm.b.metrics.apis[0].requests // API key 0: Produce
	hook := tm.b.cfg.tierThrottleSchedP99
	tm.wg.Add(1)
	go func() {
		defer tm.wg.Done()
		tm.throttle.run(tm.ctx.Done(), func(now time.Time) throttleSample {
			s := throttleSample{now: now, produceRequests: produce.Load(), readBytes: q.Used(), schedP99: sched.p99()}
			if hook != nil {
				hook(&s.schedP99)
			}
			return s
		})
	}()
}

// writeThrottleMetrics exports the controller's state on /metrics.
func (tm *tierManager) writeThrottleMetrics(w io.Writer) {
	if tm.throttle == nil {
		return
	}
	st := tm.b.TierThrottleStats()
	rate, eff := st.Limit, st.Quota
	if math.IsInf(rate, 1) {
		rate = -1
	}
	if math.IsInf(eff, 1) {
		eff = -1
	}
	act := 0
	if st.ProducersActive {
		act = 1
	}
	p99, readRate, backoffs, increases, lifts := st.SchedP99, st.ReadRate, st.Backoffs, st.Increases, st.Lifts
	for _, g := range []struct {
		name, typ, help string
		v               float64
	}{
		{"sediment_tier_remote_throttle_rate_bytes_per_second", "gauge", "Adaptive limit on reads from object storage (remote.log.reader.adaptive.throttle.*); -1: none.", rate},
		{"sediment_tier_remote_fetch_quota_bytes_per_second", "gauge", "Effective remote fetch quota: the lower of the adaptive limit and remote.log.manager.fetch.max.bytes.per.second; -1: unlimited.", eff},
		{"sediment_tier_remote_throttle_producers_active", "gauge", "1 while Produce requests were answered within the last second (the adaptive throttle may act).", float64(act)},
		{"sediment_tier_remote_throttle_sched_latency_p99_seconds", "gauge", "Goroutine scheduling latency p99 over the throttle's last interval (its contention signal).", p99.Seconds()},
		{"sediment_tier_remote_read_rate_bytes_per_second", "gauge", "Bytes per second remote fetches returned over the throttle's last interval.", readRate},
		{"sediment_tier_remote_throttle_backoffs_total", "counter", "Intervals in which the adaptive throttle lowered the remote read rate (producers active, CPU contended).", float64(backoffs)},
		{"sediment_tier_remote_throttle_increases_total", "counter", "Intervals in which the adaptive throttle raised the remote read rate.", float64(increases)},
		{"sediment_tier_remote_throttle_lifts_total", "counter", "Times the adaptive limit was removed (producers idle, or raised past 4 GiB/s).", float64(lifts)},
	} {
		family(w, g.name, g.typ, g.help)
		fmt.Fprintf(w, "%s %g\n", g.name, g.v)
	}
}

// TierThrottleStats is the adaptive cold-read throttle's state (benchmarks read it in process).
type TierThrottleStats struct {
	Enabled         bool
	Limit           float64       // adaptive limit, bytes/s; +Inf: none
	Quota           float64       // effective remote fetch quota, bytes/s; +Inf: unlimited
	ProducersActive bool          // at the last tick
	SchedP99        time.Duration // contention signal at the last tick
	ReadRate        float64       // remote read bytes/s over the last tick
	Backoffs        int64
	Increases       int64
	Lifts           int64
	Shed            int64 // chunk-cache GETs cancelled as the limit fell (tiering.CacheStats.Shed)
}

// TierThrottleStats returns the throttle's state; Enabled false when it is off or the broker has
// no tiering.
func (b *Broker) TierThrottleStats() TierThrottleStats {
	if b.tier == nil || b.tier.throttle == nil {
		return TierThrottleStats{Limit: math.Inf(1), Quota: math.Inf(1)}
	}
	t := b.tier.throttle
	c := t.ctl
	c.mu.Lock()
	s := TierThrottleStats{Enabled: true, Limit: c.rate, ProducersActive: c.active, SchedP99: c.schedP99,
		ReadRate: c.readRate, Backoffs: c.backoffs, Increases: c.increases, Lifts: c.lifts}
	c.mu.Unlock()
	s.Quota = t.quota.Rate()
	s.Shed = b.tier.remote.CacheStats().Shed
	return s
}
