package tiering

import (
	"context"
	"testing"
	"time"
)

// TestFetchQuota: a second's worth of bytes may be read at once, an overdraft blocks reads until
// the rate has repaid it, refill stops at one second's worth, and nil is unlimited.
func TestFetchQuota(t *testing.T) {
	if q := NewFetchQuota(0); q != nil || !q.Allow() || q.Throttled() != 0 {
		t.Fatal("quota 0 must be nil and unlimited")
	}
	now := time.Unix(1000, 0)
	q := NewFetchQuota(1000)
	q.now = func() time.Time { return now }
	q.last = now
	if !q.Allow() {
		t.Fatal("a full budget refused a read")
	}
	q.Charge(3000) // one read may overdraw: 1000 - 3000 = -2000
	for _, step := range []struct {
		after time.Duration
		allow bool
	}{{0, false}, {time.Second, false}, {999 * time.Millisecond, false}, {2 * time.Millisecond, true}} {
		now = now.Add(step.after)
		if got := q.Allow(); got != step.allow {
			t.Fatalf("after +%v: Allow = %v, want %v (tokens %v)", step.after, got, step.allow, q.tokens)
		}
	}
	if q.Throttled() != 3 {
		t.Fatalf("throttled %d, want 3", q.Throttled())
	}
	now = now.Add(time.Hour)
	q.Charge(1)
	if q.tokens > 1000 {
		t.Fatalf("refill above one second's worth: %v", q.tokens)
	}
}

// TestFetchQuotaWait: a short deficit is waited out; a longer one than maxWait is refused at once.
func TestFetchQuotaWait(t *testing.T) {
	q := NewFetchQuota(100_000) // 100 KB/s
	q.Charge(100_000 + 2_000)   // 20 ms in debt
	start := time.Now()
	if !q.Wait(context.Background(), time.Second) {
		t.Fatal("a 20 ms deficit was not waited out")
	}
	if d := time.Since(start); d < 15*time.Millisecond {
		t.Fatalf("waited only %v for a 20 ms deficit", d)
	}
	q.Charge(100_000) // 1 s in debt
	start = time.Now()
	if q.Wait(context.Background(), 100*time.Millisecond) || time.Since(start) > 50*time.Millisecond {
		t.Fatalf("a 1 s deficit with maxWait 100 ms: want an immediate refusal (took %v)", time.Since(start))
	}
}
