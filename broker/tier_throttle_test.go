package broker

import (
	"context"
	"math"
	rtmetrics "runtime/metrics"
	"sync/atomic"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/sediment-io/sediment/segment"
	"github.com/sediment-io/sediment/tiering"
)

// throttleScript drives a controller with a fake clock: each tick advances 100 ms, produce and
// read counters move as the test says, and the scheduling-latency p99 is injected.
type throttleScript struct {
	t       *testing.T
	c       *throttleController
	now     time.Time
	produce int64
	read    int64
}

func newThrottleScript(t *testing.T, p throttleParams) *throttleScript {
	s := &throttleScript{t: t, c: newThrottleController(p), now: time.Unix(1000, 0)}
	s.c.step(throttleSample{now: s.now})
	return s
}

// tick: one interval in which producers sent n requests, remote reads returned readRate bytes/s,
// and scheduling latency had p99 lat. Returns the adaptive limit.
func (s *throttleScript) tick(n int64, readRate float64, lat time.Duration) float64 {
	s.now = s.now.Add(100 * time.Millisecond)
	s.produce += n
	s.read += int64(readRate / 10)
	return s.c.step(throttleSample{now: s.now, produceRequests: s.produce, readBytes: s.read, schedP99: lat})
}

func testThrottleParams() throttleParams {
	return throttleParams{interval: 100 * time.Millisecond, raise: 4 << 20, activeWindow: time.Second,
		high: time.Millisecond, low: 500 * time.Microsecond, floor: 4 << 20, decrease: 0.5, unlimitAbove: 4 << 30}
}

// TestTierThrottleController: the AIMD controller backs off under contention while producers are
// active (halving from the measured read rate, then from its own limit), holds at the floor,
// recovers gradually when contention clears (never above what readers use), is lifted as soon as
// producers stop, and ignores contention when nothing is read from the bucket or nobody produces.
func TestTierThrottleController(t *testing.T) {
	const busy, calm, mid = 3 * time.Millisecond, 100 * time.Microsecond, 700 * time.Microsecond
	const replay = 800 << 20 // an unpaced replay's read rate
	s := newThrottleScript(t, testThrottleParams())

	// A replay alone (no producers), the CPU saturated: no limit.
	for range 20 {
		if r := s.tick(0, replay, busy); !math.IsInf(r, 1) {
			t.Fatalf("no producers, contention: limit %.0f, want none", r)
		}
	}
	// Producers active, CPU to spare: no limit.
	for range 5 {
		if r := s.tick(50, replay, calm); !math.IsInf(r, 1) {
			t.Fatalf("producers, no contention: limit %.0f, want none", r)
		}
	}
	// Producers active, contention, but nothing read from the bucket: not ours to relieve.
	if r := s.tick(50, 0, busy); !math.IsInf(r, 1) {
		t.Fatalf("contention without remote reads: limit %.0f, want none", r)
	}
	// Contention with a replay: straight to the floor, and never below it.
	r := s.tick(50, replay, busy)
	if r != 4<<20 {
		t.Fatalf("first back-off: limit %.0f, want the floor %d at once", r, 4<<20)
	}
	// Later back-offs halve (from a limit that had grown), never below the floor.
	s.c.rate = 64 << 20
	prev := s.c.rate
	for range 20 {
		r = s.tick(50, min(prev, replay), busy)
		if want := max(prev/2, 4<<20); r != want {
			t.Fatalf("back-off: limit %.0f after %.0f, want %.0f", r, prev, want)
		}
		prev = r
	}
	if r != 4<<20 {
		t.Fatalf("limit %.0f after sustained contention, want the floor %d", r, 4<<20)
	}
	// Severe contention (p99 > 4 × high) from a grown limit: the floor at once.
	s.c.rate = 64 << 20
	if r = s.tick(50, 64<<20, 4*time.Millisecond+1); r != 4<<20 {
		t.Fatalf("severe contention: limit %.0f, want the floor", r)
	}
	backoffs := s.c.backoffs
	// Between the thresholds: hold.
	if r = s.tick(50, 4<<20, mid); r != 4<<20 {
		t.Fatalf("latency between thresholds: limit %.0f, want it held at %d", r, 4<<20)
	}
	// Clear: grows by at least the floor each interval while readers use it, never above twice
	// what they read plus the floor.
	prev = r
	for range 10 {
		r = s.tick(50, prev, calm)
		if r != prev+4<<20 {
			t.Fatalf("recovery: limit %.0f after %.0f", r, prev)
		}
		prev = r
	}
	if got := s.tick(50, 1<<20, calm); got > 2*(1<<20)+4<<20 && got > prev {
		t.Fatalf("readers using 1 MiB/s: limit raised to %.0f", got)
	}
	if s.c.increases != 10 || s.c.backoffs != backoffs {
		t.Fatalf("counters: increases %d, backoffs %d (was %d)", s.c.increases, s.c.backoffs, backoffs)
	}
	// Producers stop: the limit stays for the activity window (they may be between requests),
	// then goes.
	r = s.tick(0, 4<<20, busy)
	if math.IsInf(r, 1) {
		t.Fatal("limit lifted 100 ms after the last produce request")
	}
	for range 10 {
		r = s.tick(0, 4<<20, busy)
	}
	if !math.IsInf(r, 1) || s.c.lifts != 1 {
		t.Fatalf("producers idle for over a second: limit %.0f (lifts %d), want none", r, s.c.lifts)
	}
}

// TestTierThrottleRecoversToUnlimited: with contention gone for good the limit grows back and is
// lifted once it passes unlimitAbove, even while producers keep producing.
func TestTierThrottleRecoversToUnlimited(t *testing.T) {
	p := testThrottleParams()
	p.unlimitAbove = 1 << 30
	s := newThrottleScript(t, p)
	if r := s.tick(50, 800<<20, 5*time.Millisecond); r != 4<<20 {
		t.Fatalf("limit %.0f, want the floor", r)
	}
	r := 4.0 * (1 << 20)
	for i := 0; ; i++ {
		if i > 300 {
			t.Fatalf("limit still %.0f after 10 s of calm", r)
		}
		prev := r
		if r = s.tick(50, r, 50*time.Microsecond); math.IsInf(r, 1) {
			break
		}
		if r <= prev {
			t.Fatalf("calm: limit %.0f after %.0f, want it to grow", r, prev)
		}
	}
	if s.c.lifts != 1 {
		t.Fatalf("lifts %d, want 1", s.c.lifts)
	}
}

// TestTierThrottleHistP99: the p99 of a cumulative histogram's increment since the previous read.
func TestTierThrottleHistP99(t *testing.T) {
	h := &rtmetrics.Float64Histogram{Buckets: []float64{math.Inf(-1), 0, 1e-6, 1e-5, 1e-4, 1e-3, math.Inf(1)}}
	prev := make([]uint64, 6)
	h.Counts = []uint64{0, 0, 990, 9, 1, 0}
	if q := histP99(h, prev); q != 10*time.Microsecond {
		t.Fatalf("p99 %v, want 10µs (the 990th of 1000 lies in [1µs, 10µs))", q)
	}
	// Next interval: 100 more, 2 of them in [100µs, 1ms): p99 there.
	h.Counts = []uint64{0, 0, 1088, 9, 1, 2}
	if q := histP99(h, prev); q != time.Millisecond {
		t.Fatalf("p99 of the increment %v, want 1ms", q)
	}
	// Nothing new: 0.
	if q := histP99(h, prev); q != 0 {
		t.Fatalf("no new samples: p99 %v", q)
	}
	// A sample above the last finite bound: its lower bound (the histogram's +Inf is no value).
	h.Counts = []uint64{0, 0, 1088, 9, 1, 2}
	h.Counts = append(h.Counts, 0)
	h.Buckets = append(h.Buckets[:6], 1e-2, math.Inf(1))
	prev = append(prev, 0)
	h.Counts[6] = 5
	if q := histP99(h, prev); q != 10*time.Millisecond {
		t.Fatalf("5 samples above 10ms: p99 %v, want 10ms", q)
	}
}

// TestTierThrottleSchedLatency: the runtime exposes the histogram the controller reads.
func TestTierThrottleSchedLatency(t *testing.T) {
	s := newSchedLatency()
	s.p99()
	if s.sample[0].Value.Kind() != rtmetrics.KindFloat64Histogram {
		t.Fatalf("/sched/latencies:seconds is not a histogram in this runtime (kind %v)", s.sample[0].Value.Kind())
	}
	if len(s.prev) == 0 {
		t.Fatal("no buckets read")
	}
}

// TestTierThrottleLimitsRemoteFetch: through the broker, with the controller's real produce signal
// (a client producing) and injected contention: remote reads are cut to the adaptive quota
// (a sequential read of the bucket meets reads answered empty) while producers are active and the
// CPU is "contended", and run unlimited once the producer stops — or when the feature is off.
func TestTierThrottleLimitsRemoteFetch(t *testing.T) {
	var contended atomic.Bool
	b := newTestBroker(t, func(c *Config) {
		c.RemoteLogReaderAdaptiveThrottleMinBytesPerSec = 16 << 10 // floor: 16 KiB/s
		c.tierThrottleSchedP99 = func(p99 *time.Duration) {
			if contended.Load() {
				*p99 = 50 * time.Millisecond
			} else {
				*p99 = 0
			}
		}
	})
	if b.tier.throttle == nil || b.tier.remote.Quota() != b.tier.throttle.quota {
		t.Fatal("remote.log.reader.adaptive.throttle.enable (default on): the remote log does not read under the adaptive quota")
	}
	cl, _, p := tieredTopic(t, b, "tt", 3000, time.Now().Add(-time.Hour).Truncate(time.Millisecond), 21)
	end := p.localStart()
	if end <= 100 {
		t.Fatalf("local start %d: too little in the bucket", end)
	}
	q := b.tier.throttle.quota

	// readThrough reads [0, end) of the bucket sequentially, 1 MiB asked per read; it returns how
	// many reads came back empty before the end (at most limit of them) and the bytes read.
	var bytes int
	readThrough := func(limit int) (empty int) {
		t.Helper()
		bytes = 0
		for off := int64(0); off < end; {
			r := p.read(off, 1<<20, false)
			if r.err != 0 {
				t.Fatalf("read at %d: error %d", off, r.err)
			}
			if len(r.data) == 0 {
				if empty++; empty >= limit {
					return empty
				}
				continue
			}
			bytes += len(r.data)
			for n := 0; n+segment.HeaderSize <= len(r.data); {
				h := segment.BatchHeader(r.data[n:])
				off, n = h.LastOffset()+1, n+h.Size()
			}
		}
		return empty
	}

	// Contention, but nobody produces (tieredTopic's producer is done once its activity window,
	// a second, has passed): no limit, every read returns data.
	contended.Store(true)
	time.Sleep(1500 * time.Millisecond)
	if e := readThrough(1); e != 0 || !math.IsInf(q.Rate(), 1) {
		t.Fatalf("no producers: %d empty reads, quota rate %v; want none and unlimited", e, q.Rate())
	}

	// A producer and contention: the controller backs off (it needs remote reads to see a rate)
	// down to the 16 KiB/s floor, and a sequential read then meets empty answers.
	ctx, stop := context.WithCancel(context.Background())
	produced := make(chan struct{})
	go func() {
		defer close(produced)
		for ctx.Err() == nil {
			cl.ProduceSync(ctx, &kgo.Record{Topic: "tt", Partition: 0, Value: []byte("live")})
			time.Sleep(10 * time.Millisecond)
		}
	}()
	defer func() { stop(); <-produced }()
	deadline := time.Now().Add(15 * time.Second)
	for q.Rate() != 16<<10 {
		if time.Now().After(deadline) {
			t.Fatalf("producing under contention: quota rate %v after 15 s, want the floor %d", q.Rate(), 16<<10)
		}
		p.read(0, 1<<20, false)
		time.Sleep(20 * time.Millisecond)
	}
	// Rate-limited: what a sequential read gets is at most the burst (64 KiB at this floor) plus
	// what accrues meanwhile (the limit is a byte rate: a slow machine only lowers what we read),
	// and reads come back empty once the budget is spent (a grant would take over 500 ms).
	throttled, start := q.Throttled(), time.Now()
	e := readThrough(3)
	allowed := 64<<10 + int(time.Since(start).Seconds()*(16<<10)) + 1
	if e == 0 || q.Throttled() == throttled || bytes > allowed {
		t.Fatalf("throttled to 16 KiB/s: %d empty reads, %d throttled, %d bytes in %v (allowed %d)",
			e, q.Throttled()-throttled, bytes, time.Since(start), allowed)
	}

	// Contention gone while still producing: the limit grows (not lifted at once).
	contended.Store(false)
	time.Sleep(300 * time.Millisecond)
	if r := q.Rate(); math.IsInf(r, 1) {
		t.Fatal("contention cleared: limit lifted at once, want gradual growth while producers are active")
	}

	// The producer stops: the limit goes within the activity window, reads run unlimited.
	stop()
	<-produced
	contended.Store(true)
	deadline = time.Now().Add(10 * time.Second)
	for !math.IsInf(q.Rate(), 1) {
		if time.Now().After(deadline) {
			t.Fatalf("producer stopped: quota rate still %v after 10 s", q.Rate())
		}
		time.Sleep(50 * time.Millisecond)
	}
	throttled = q.Throttled()
	if e := readThrough(1); e != 0 || q.Throttled() != throttled {
		t.Fatalf("producer stopped: %d empty reads", e)
	}
}

// TestTierThrottleDisabled: remote.log.reader.adaptive.throttle.enable=false starts no controller
// and leaves the fetch quota at its configured rate (here none: unlimited).
func TestTierThrottleDisabled(t *testing.T) {
	b := newTestBroker(t, func(c *Config) { c.RemoteLogReaderAdaptiveThrottleEnable = false })
	if b.tier.throttle != nil || !math.IsInf(b.tier.remote.Quota().Rate(), 1) {
		t.Fatalf("throttle off: controller %v, quota rate %v; want no controller, unlimited", b.tier.throttle, b.tier.remote.Quota().Rate())
	}
}

// TestTierThrottleHoldsAfterBackoff: after a back-off the limit is not raised for the hold, however
// calm the CPU looks, and grows again after it.
func TestTierThrottleHoldsAfterBackoff(t *testing.T) {
	p := testThrottleParams()
	p.hold = time.Second
	s := newThrottleScript(t, p)
	if r := s.tick(50, 800<<20, 5*time.Millisecond); r != 4<<20 {
		t.Fatalf("limit %.0f, want the floor", r)
	}
	for i := range 9 { // 0.9 s after the back-off
		if r := s.tick(50, 4<<20, 50*time.Microsecond); r != 4<<20 {
			t.Fatalf("tick %d after the back-off: limit %.0f raised within the hold", i+1, r)
		}
	}
	if r := s.tick(50, 4<<20, 50*time.Microsecond); r != 8<<20 {
		t.Fatalf("1 s after the back-off: limit %.0f, want the floor + raise", r)
	}
}

// TestTierThrottleArmedOnProducerArrival: while a replay runs unlimited on a contended CPU with no
// producers, the throttle is armed; the first Produce then sets the floor at once (not at the next
// sample). Not armed when the CPU is calm, when nothing is read from the bucket, or once limited.
func TestTierThrottleArmedOnProducerArrival(t *testing.T) {
	q := tiering.NewAdaptiveFetchQuota(0)
	tt := &tierThrottle{ctl: newThrottleController(testThrottleParams()), quota: q}
	now := time.Unix(1000, 0)
	var produce, read int64
	sample := func(n int64, readRate float64, lat time.Duration) {
		now = now.Add(100 * time.Millisecond)
		produce += n
		read += int64(readRate / 10)
		tt.apply(throttleSample{now: now, produceRequests: produce, readBytes: read, schedP99: lat})
	}
	sample(0, 0, 0)
	sample(0, 800<<20, 100*time.Microsecond) // replay, calm CPU
	tt.onProduce()
	if !math.IsInf(q.Rate(), 1) {
		t.Fatalf("calm CPU: a producer arriving set the quota to %.0f", q.Rate())
	}
	sample(0, 0, 5*time.Millisecond) // contended, nothing from the bucket
	tt.onProduce()
	if !math.IsInf(q.Rate(), 1) {
		t.Fatalf("no remote reads: a producer arriving set the quota to %.0f", q.Rate())
	}
	sample(0, 800<<20, 5*time.Millisecond) // replay alone on a contended CPU: armed, not limited
	if !tt.isArmed.Load() || !math.IsInf(q.Rate(), 1) {
		t.Fatalf("replay alone, contended: armed %v, quota %.0f; want armed and unlimited", tt.isArmed.Load(), q.Rate())
	}
	tt.onProduce()
	if q.Rate() != 4<<20 {
		t.Fatalf("producer arrived while armed: quota %.0f, want the floor %d at once", q.Rate(), 4<<20)
	}
	if tt.isArmed.Load() || tt.ctl.backoffs != 1 {
		t.Fatalf("after the arrival: armed %v, backoffs %d", tt.isArmed.Load(), tt.ctl.backoffs)
	}
	// The next sample (producers now active, still contended) keeps it limited.
	sample(50, 4<<20, 5*time.Millisecond)
	if q.Rate() != 4<<20 {
		t.Fatalf("next sample: quota %.0f, want the floor", q.Rate())
	}
}

// TestTierThrottleRecoversFromBlip: with the broker's default parameters, one interval of contention
// while producers are active (a GC cycle, a burst of requests) takes an unpaced replay to the floor;
// once the CPU is calm again the limit must find its way back within seconds, not minutes, although
// producers keep producing: at least half the replay's rate before the blip within 15 s, and 95 % of
// it within 60 s. A limit that grew only by the floor per second (1 MiB/s each second) was still
// near 60 MiB/s after a minute and needed about 13 minutes to get back to 800 MB/s, so on a broker
// where producers never stop one blip cost a replay most of its speed for that long.
func TestTierThrottleRecoversFromBlip(t *testing.T) {
	cfg := DefaultConfig()
	p := throttleParamsFrom(&cfg)
	c := newThrottleController(p)
	const replay = 800 << 20 // what the replay reads unlimited, bytes/s
	now := time.Unix(1000, 0)
	var produce, read int64
	rate := math.Inf(1)
	tick := func(lat time.Duration) {
		use := math.Min(rate, replay) // the replay reads what the limit allows
		now = now.Add(p.interval)
		produce += 5
		read += int64(use * p.interval.Seconds())
		rate = c.step(throttleSample{now: now, produceRequests: produce, readBytes: read, schedP99: lat})
	}
	const calm, blip = 50 * time.Microsecond, 5 * time.Millisecond
	for range 20 {
		tick(calm)
	}
	if !math.IsInf(rate, 1) {
		t.Fatalf("calm CPU: limit %.0f, want none", rate)
	}
	tick(blip)
	if rate != p.floor {
		t.Fatalf("blip: limit %.0f, want the floor %.0f", rate, p.floor)
	}
	blipAt := now
	var half, most time.Duration
	for now.Sub(blipAt) < time.Minute {
		prev := rate
		tick(calm)
		if half == 0 && rate >= replay/2 {
			half = now.Sub(blipAt)
			// Doubling stops at the threshold, half the rate that met contention.
			if rate != replay/2 {
				t.Fatalf("slow start went from %.0f to %.0f, past the threshold %d", prev, rate, replay/2)
			}
		}
		if prev >= replay/2 && rate-prev > (replay/2)*p.linear*1.0001 {
			t.Fatalf("above the threshold the limit grew from %.0f to %.0f in one interval, want at most a tenth of the threshold per second", prev, rate)
		}
		if most == 0 && rate >= 0.95*replay {
			most = now.Sub(blipAt)
		}
	}
	t.Logf("after the blip: half the replay's rate in %v, 95 %% in %v; limit after a minute %.0f MiB/s", half, most, rate/(1<<20))
	if half == 0 || half > 15*time.Second {
		t.Errorf("half the replay's rate reached after %v (0: never within a minute), want within 15 s; limit after a minute %.0f MiB/s", half, rate/(1<<20))
	}
	if most == 0 || most > time.Minute {
		t.Errorf("95 %% of the replay's rate not reached within a minute of calm: limit %.0f MiB/s", rate/(1<<20))
	}

	// Contention that is real: a limit halved under contention climbs back linearly (no slow
	// start), so a replay that keeps meeting contention probes upwards slowly.
	c.rate = 600 << 20
	tick(time.Millisecond) // above high, below 4 × high (severe: the floor)
	if rate != 300<<20 {
		t.Fatalf("back-off from 600 MiB/s: limit %.0f, want it halved", rate)
	}
	for range int(p.hold / p.interval) {
		tick(calm)
	}
	for i := range 20 {
		prev := rate
		tick(calm)
		if want := prev + (300<<20)*p.linear; math.Abs(rate-want) > 1 {
			t.Fatalf("interval %d after the hold: limit %.0f after %.0f, want %.0f (linear)", i, rate, prev, want)
		}
	}
}
