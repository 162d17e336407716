package tiering

import (
	"testing"
	"time"
)

// TestFullJitter: every delay lies in [0, min(limit, base·2^(attempt-1))], and the delays spread
// over that range (not a constant, not stuck at either end), for small and huge attempt numbers.
func TestFullJitter(t *testing.T) {
	const base, limit = 100 * time.Millisecond, 20 * time.Second
	for _, c := range []struct {
		attempt int
		ceil    time.Duration
	}{{0, base}, {1, base}, {2, 2 * base}, {5, 16 * base}, {8, 128 * base}, {9, limit}, {40, limit}, {1 << 20, limit}} {
		var lo, hi time.Duration = c.ceil, 0
		var sum time.Duration
		const n = 2000
		for range n {
			d := fullJitter(base, limit, c.attempt)
			if d < 0 || d > c.ceil {
				t.Fatalf("attempt %d: delay %v outside [0, %v]", c.attempt, d, c.ceil)
			}
			lo, hi, sum = min(lo, d), max(hi, d), sum+d
		}
		// Uniform on [0, ceil]: of 2000 draws the extremes are within 1% of the ends and the mean
		// within 10% of the middle, except with negligible probability.
		if lo > c.ceil/50 || hi < c.ceil-c.ceil/50 {
			t.Errorf("attempt %d: delays span [%v, %v], want nearly [0, %v]", c.attempt, lo, hi, c.ceil)
		}
		if mean := sum / n; mean < c.ceil*4/10 || mean > c.ceil*6/10 {
			t.Errorf("attempt %d: mean delay %v, want about %v", c.attempt, mean, c.ceil/2)
		}
	}
}
