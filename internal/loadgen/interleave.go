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
	Replay Throughput    `json:"replay"` // what the replay read in the whole run
}

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
func InterleavedStats(samples []AckSample, windows []Window, skip time.Duration) (alone, during WindowStats) {
	ws := slices.Clone(windows)
	sort.Slice(ws, func(i, j int) bool { return ws[i].Start.Before(ws[j].Start) })
	var a, d []time.Duration
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
		if ws[i].During {
			d = append(d, s.Ack)
		} else {
			a = append(a, s.Ack)
		}
	}
	fill := func(st *WindowStats, v []time.Duration) {
		slices.Sort(v)
		st.Acks = len(v)
		st.P50, st.P99, st.P999 = pct(v, 0.50), pct(v, 0.99), pct(v, 0.999)
		st.P50ms, st.P99ms, st.P999ms = float64(st.P50)/1e6, float64(st.P99)/1e6, float64(st.P999)/1e6
	}
	fill(&alone, a)
	fill(&during, d)
	return alone, during
}
