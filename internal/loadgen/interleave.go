package loadgen

import (
	"slices"
	"sort"
	"time"
)

// Interleaved produce-latency comparison (issue 7's "produce p99 while a replay runs vs without
// it"): one fixed-rate produce run whose time is cut into alternating windows, the background
// replay running in one kind and stopped (SIGSTOP) in the other. Each kind's p99 is taken over
// all its windows' acks pooled. Two 10 s phases minutes apart differ by as much as the effect
// measured (a control with no replay at all gave 1.05x and 1.28x on this machine); alternating
// every few seconds makes drift in the machine's load hit both sides alike.
//
// Alternating does not tame the bursts: on the 2-core VMs we measure on, a broker producing at
// 5,000 records/s with nothing else running has seconds in which over 1 % of its acks take more
// than 5 ms (71 of 600 in one trace, session 14), and a 100 s run's pooled p99 moves with how many
// of them land in each kind of window. Cut into alternating 5 s windows, that no-replay trace gave
// pooled ratios of 0.77-1.28 (10th-90th percentile over 50 hundred-second stretches), 0.78-1.24
// with 1 s windows. So each adjacent pair of windows (one of each kind) is also compared on its
// own, and the median of the pairs' p99 ratios is reported beside the pooled one: the same trace
// gave 0.90-1.10 for it with 1 s windows (at most 1.11), a median over side-by-side repetitions as
// the durable-append benchmark reports. A replay that slows produce slows it in every window with
// the replay, which moves the median; bursts that fall in a few windows of either kind do not.

// Window is one span of an interleaved run: During is true while the replay ran.
type Window struct {
	Start, End time.Time
	During     bool
}

// WindowStats are the pooled acks of one kind of window.
type WindowStats struct {
	Windows        int           `json:"windows"`
	Acks           int           `json:"acks"`
	P50, P99, P999 time.Duration `json:"-"`
	P50ms          float64       `json:"p50_ms"`
	P99ms          float64       `json:"p99_ms"`
	P999ms         float64       `json:"p999_ms"`
}

// InterleavedLatency is one interleaved run.
type InterleavedLatency struct {
	// Kind is "bucket cold" (a replay from the bucket, caches dropped before the run) or
	// "control" (the same windows with the replay consumer stopped in both kinds: what the
	// comparison shows with no replay at all, its noise floor).
	Kind   string        `json:"kind"`
	Window time.Duration `json:"window_ns"`
	Skip   time.Duration `json:"skip_ns"` // acks sent in the first Skip of each window are not counted
	Alone  WindowStats   `json:"alone"`
	During WindowStats   `json:"during"`
	Paired PairedStats   `json:"paired"`
	Replay Throughput    `json:"replay"` // what the replay read in the whole run
}

// PairedStats compares each adjacent pair of windows (one with the replay, one without) on its own.
type PairedStats struct {
	Pairs int `json:"pairs"` // pairs with at least minPairAcks acks on both sides
	// RatioMedian is the median over the pairs of p99(with) / p99(without); RatioP10 and RatioP90
	// show the spread.
	RatioMedian float64 `json:"ratio_median"`
	RatioP10    float64 `json:"ratio_p10"`
	RatioP90    float64 `json:"ratio_p90"`
	// DuringP99ms and AloneP99ms are the medians over the pairs of each side's p99.
	DuringP99ms float64 `json:"during_p99_ms"`
	AloneP99ms  float64 `json:"alone_p99_ms"`
}

// minPairAcks: a window with fewer acks has no meaningful p99 of its own.
const minPairAcks = 100

// Ratio is During.P99 / Alone.P99 (0 without alone acks).
func (l InterleavedLatency) Ratio() float64 {
	if l.Alone.P99 <= 0 {
		return 0
	}
	return float64(l.During.P99) / float64(l.Alone.P99)
}

// InterleavedStats pools samples by the kind of window they were sent in. A sample sent within
// skip of its window's start is left out (the previous window's work draining, or the replay
// resuming), as is one outside every window.
//
// paired compares the windows two by two in time order (the first with the second, the third with
// the fourth, ...): a pair counts when it holds one window of each kind with at least minPairAcks
// counted acks each.
func InterleavedStats(samples []AckSample, windows []Window, skip time.Duration) (alone, during WindowStats, paired PairedStats) {
	ws := slices.Clone(windows)
	sort.Slice(ws, func(i, j int) bool { return ws[i].Start.Before(ws[j].Start) })
	var a, d []time.Duration
	per := make([][]time.Duration, len(ws))
	for _, w := range ws {
		if w.During {
			during.Windows++
		} else {
			alone.Windows++
		}
	}
	for _, s := range samples {
		i := sort.Search(len(ws), func(i int) bool { return ws[i].End.After(s.SentAt) })
		if i == len(ws) || s.SentAt.Before(ws[i].Start.Add(skip)) {
			continue
		}
		per[i] = append(per[i], s.Ack)
		if ws[i].During {
			d = append(d, s.Ack)
		} else {
			a = append(a, s.Ack)
		}
	}
	var ratios, dp, ap []float64
	for i := 0; i+1 < len(ws); i += 2 {
		x, y := per[i], per[i+1]
		if ws[i].During == ws[i+1].During || len(x) < minPairAcks || len(y) < minPairAcks {
			continue
		}
		if !ws[i].During {
			x, y = y, x
		}
		slices.Sort(x)
		slices.Sort(y)
		dx, ay := float64(pct(x, 0.99))/1e6, float64(pct(y, 0.99))/1e6
		if ay <= 0 {
			continue
		}
		ratios, dp, ap = append(ratios, dx/ay), append(dp, dx), append(ap, ay)
	}
	if len(ratios) > 0 {
		paired = PairedStats{Pairs: len(ratios), RatioMedian: quantile(ratios, 0.5), RatioP10: quantile(ratios, 0.1),
			RatioP90: quantile(ratios, 0.9), DuringP99ms: quantile(dp, 0.5), AloneP99ms: quantile(ap, 0.5)}
	}
	fill := func(st *WindowStats, v []time.Duration) {
		slices.Sort(v)
		st.Acks = len(v)
		st.P50, st.P99, st.P999 = pct(v, 0.50), pct(v, 0.99), pct(v, 0.999)
		st.P50ms, st.P99ms, st.P999ms = float64(st.P50)/1e6, float64(st.P99)/1e6, float64(st.P999)/1e6
	}
	fill(&alone, a)
	fill(&during, d)
	return alone, during, paired
}

// quantile is the q-quantile of v (sorted in place), interpolating between neighbours; the median
// of an even count is the mean of the middle two.
func quantile(v []float64, q float64) float64 {
	slices.Sort(v)
	pos := q * float64(len(v)-1)
	i := int(pos)
	if i+1 >= len(v) {
		return v[len(v)-1]
	}
	return v[i] + (pos-float64(i))*(v[i+1]-v[i])
}
