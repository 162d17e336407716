package loadgen

import (
	"testing"
	"time"
)

// InterleavedStats pools acks by the kind of window they were sent in, leaving out each window's
// first skip and anything outside every window; the rows then carry the target on the interleaved
// "bucket cold" run and turn the single-phase runs into references.
func TestInterleavedStats(t *testing.T) {
	t0 := time.Unix(1000, 0)
	at := func(ms int) time.Time { return t0.Add(time.Duration(ms) * time.Millisecond) }
	windows := []Window{ // deliberately out of order: the function sorts
		{Start: at(1000), End: at(2000), During: false},
		{Start: at(0), End: at(1000), During: true},
		{Start: at(2000), End: at(3000), During: true},
	}
	var samples []AckSample
	add := func(ms int, ack time.Duration, n int) {
		for i := 0; i < n; i++ {
			samples = append(samples, AckSample{SentAt: at(ms), Ack: ack})
		}
	}
	add(50, time.Hour, 5)              // within the skip of the first window: left out
	add(500, 3*time.Millisecond, 100)  // during
	add(2999, 5*time.Millisecond, 100) // during, second window
	add(1100, time.Hour, 3)            // within the skip of the alone window
	add(1500, time.Millisecond, 200)   // alone
	add(3000, time.Hour, 7)            // past the last window: left out
	add(-10, time.Hour, 7)             // before the first: left out
	alone, during, paired := InterleavedStats(samples, windows, 200*time.Millisecond)
	if alone.Windows != 1 || during.Windows != 2 || alone.Acks != 200 || during.Acks != 200 {
		t.Fatalf("alone %+v, during %+v", alone, during)
	}
	if alone.P99 != time.Millisecond || during.P50 != 3*time.Millisecond || during.P99 != 5*time.Millisecond || during.P99ms != 5 {
		t.Fatalf("alone %+v, during %+v", alone, during)
	}

	// One pair (the first two windows: 3 ms against 1 ms); the third window has no partner.
	if paired.Pairs != 1 || paired.RatioMedian != 3 || paired.DuringP99ms != 3 || paired.AloneP99ms != 1 {
		t.Fatalf("paired %+v", paired)
	}

	il := InterleavedLatency{Kind: "bucket cold", Window: time.Second, Skip: 200 * time.Millisecond, Alone: alone, During: during, Paired: paired}
	if il.Ratio() != 5 {
		t.Fatalf("ratio %v", il.Ratio())
	}
	ctl := il
	ctl.Kind, ctl.During, ctl.Paired = "control", alone, PairedStats{Pairs: 1, RatioMedian: 1, DuringP99ms: 1, AloneP99ms: 1}
	tr := TierResult{
		LatencyAlone: Latency{Sent: 10, AckP99: 10 * time.Millisecond},
		DuringReplay: []ReplayLatency{{Bucket: "cold", Latency: Latency{Sent: 10, AckP99: 11 * time.Millisecond}}},
		Interleaved:  []InterleavedLatency{il, ctl},
	}
	by := map[string]TierRow{}
	for _, r := range TierRows(tr) {
		by[r.Metric] = r
	}
	if r := by["produce ack p99 during replay (interleaved, bucket cold)"]; r.Ratio != 3 || r.Value != 3 || r.Baseline != 1 || r.Met == nil || *r.Met || r.Target != "<= 1.2x" {
		t.Fatalf("interleaved row %+v", r)
	}
	if r := by["produce ack p99 during replay (interleaved, bucket cold, pooled)"]; r.Ratio != 5 || r.Met != nil || r.Target != "" {
		t.Fatalf("pooled row %+v", r)
	}
	if r := by["produce ack p99 during replay (interleaved, control)"]; r.Ratio != 1 || r.Met != nil {
		t.Fatalf("control row %+v", r)
	}
	if r, ok := by["produce ack p99 during replay (bucket cold, single phase)"]; !ok || r.Met != nil || r.Ratio != 1.1 {
		t.Fatalf("single-phase row %+v (present %v), rows %+v", r, ok, by)
	}
}

// The paired median follows a slowdown present in every window with the replay, and not a burst
// confined to one window, which moves the pooled p99 as much as a slowdown everywhere would.
func TestInterleavedPairedMedian(t *testing.T) {
	t0 := time.Unix(1000, 0)
	var windows []Window
	for i := 0; i < 10; i++ {
		windows = append(windows, Window{Start: t0.Add(time.Duration(i) * time.Second), End: t0.Add(time.Duration(i+1) * time.Second), During: i%2 == 0})
	}
	trace := func(during func(w int) []time.Duration) []AckSample {
		var s []AckSample
		for w := 0; w < 10; w++ {
			acks := make([]time.Duration, 300)
			for i := range acks {
				acks[i] = time.Millisecond
			}
			if w%2 == 0 {
				acks = during(w)
			}
			for i, a := range acks {
				s = append(s, AckSample{SentAt: t0.Add(time.Duration(w)*time.Second + 300*time.Millisecond + time.Duration(i)*time.Millisecond), Ack: a})
			}
		}
		return s
	}
	burst := trace(func(w int) []time.Duration {
		acks := make([]time.Duration, 300)
		for i := range acks {
			acks[i] = time.Millisecond
			if w == 4 && i < 60 {
				acks[i] = 100 * time.Millisecond // one window's stall
			}
		}
		return acks
	})
	alone, during, paired := InterleavedStats(burst, windows, 250*time.Millisecond)
	if pooled := float64(during.P99) / float64(alone.P99); pooled != 100 || paired.Pairs != 5 || paired.RatioMedian != 1 || paired.RatioP90 <= 1 {
		t.Fatalf("one window's burst: pooled ratio %v, paired %+v", pooled, paired)
	}
	slow := trace(func(int) []time.Duration {
		acks := make([]time.Duration, 300)
		for i := range acks {
			acks[i] = 2 * time.Millisecond
		}
		return acks
	})
	if _, _, paired := InterleavedStats(slow, windows, 250*time.Millisecond); paired.Pairs != 5 || paired.RatioMedian != 2 || paired.RatioP10 != 2 {
		t.Fatalf("every window slower: paired %+v", paired)
	}
	// Windows too thin for a p99 of their own form no pair.
	if _, _, paired := InterleavedStats(burst[:50], windows, 250*time.Millisecond); paired.Pairs != 0 {
		t.Fatalf("thin windows: paired %+v", paired)
	}
}

// bySecond buckets acks by the second of the phase they were sent in, skipping empty seconds.
func TestBySecond(t *testing.T) {
	t0 := time.Unix(50, 0)
	var s []AckSample
	for i := 0; i < 100; i++ {
		s = append(s, AckSample{SentAt: t0.Add(time.Duration(i) * time.Millisecond), Ack: time.Millisecond})
	}
	s = append(s, AckSample{SentAt: t0.Add(500 * time.Millisecond), Ack: 6 * time.Millisecond},
		AckSample{SentAt: t0.Add(2500 * time.Millisecond), Ack: 3 * time.Millisecond})
	got := bySecond(s, t0)
	if len(got) != 2 || got[0].Acks != 101 || got[0].Over5ms != 1 || got[0].Over2ms != 1 || got[0].Max != 6*time.Millisecond ||
		got[1].Acks != 1 || got[1].Over2ms != 1 || got[1].Over5ms != 0 || got[1].P99 != 3*time.Millisecond {
		t.Fatalf("%+v", got)
	}
}
