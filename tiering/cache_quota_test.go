package tiering

import (
	"context"
	"errors"
	"math"
	"testing"
	"time"
)

// fakeClockQuota is a quota of rate bytes/s on a clock the test moves.
func fakeClockQuota(rate int64) (*FetchQuota, *time.Time) {
	now := time.Unix(1000, 0)
	q := NewFetchQuota(rate)
	q.now = func() time.Time { return now }
	q.last = now
	return q, &now
}

// TestFetchQuotaGrants: a grant is what has accrued, at most what was asked; concurrent takers
// never share tokens; below the minimum grant a taker is told how long to wait; unused bytes go
// back and an overdraft is repaid; refill stops at one second's worth; nil is unlimited.
func TestFetchQuotaGrants(t *testing.T) {
	if q := NewFetchQuota(0); q != nil {
		t.Fatal("quota 0 must be nil")
	}
	var nilq *FetchQuota
	if g, w := nilq.Take(5 << 20); g != 5<<20 || w != 0 {
		t.Fatalf("nil quota: Take = %d, %v; want everything now", g, w)
	}

	const rate = 1 << 20 // 1 MiB/s: minimum grant 64 KiB (minGrantBytes > 50 ms worth)
	q, now := fakeClockQuota(rate)
	if g, _ := q.Take(300 << 10); g != 300<<10 {
		t.Fatalf("full bucket: granted %d, want the 300 KiB asked", g)
	}
	if g, _ := q.Take(10 << 20); g != rate-300<<10 {
		t.Fatalf("granted %d, want the %d left of the second's worth", g, rate-300<<10)
	}
	g, wait := q.Take(10 << 20)
	if g != 0 || wait != time.Duration(float64(64<<10)/rate*float64(time.Second)) {
		t.Fatalf("empty bucket: Take = %d, %v; want 0 and the time for 64 KiB to accrue (62.5 ms)", g, wait)
	}
	*now = now.Add(wait / 2)
	if g, _ := q.Take(10 << 20); g != 0 {
		t.Fatalf("granted %d before the minimum grant accrued", g)
	}
	*now = now.Add(wait / 2)
	if g, _ := q.Take(10 << 20); g != 64<<10 {
		t.Fatalf("granted %d, want exactly the 64 KiB accrued", g)
	}
	// A small ask is granted as soon as it has accrued, not only at the minimum grant.
	*now = now.Add(10 * time.Millisecond)
	if g, _ := q.Take(1000); g != 1000 {
		t.Fatalf("granted %d of a 1000-byte ask with 10 ms accrued", g)
	}

	// Settle: unused bytes return at once; an overdraft delays the next grant by its size.
	q, now = fakeClockQuota(rate)
	g, _ = q.Take(rate)
	q.Settle(g, g-100<<10)
	if g2, _ := q.Take(rate); g2 != 100<<10 {
		t.Fatalf("after returning 100 KiB: granted %d", g2)
	}
	q.Settle(0, 512<<10) // a first batch returned whole beyond any grant: 512 KiB in debt
	_, wait = q.Take(64 << 10)
	if want := time.Duration(float64(512<<10+64<<10) / rate * float64(time.Second)); wait != want {
		t.Fatalf("512 KiB in debt: wait %v, want %v", wait, want)
	}

	// Idle for an hour: one second's worth, not more.
	*now = now.Add(time.Hour)
	if g, _ := q.Take(100 << 20); g != rate {
		t.Fatalf("after an idle hour: granted %d, want one second's worth %d", g, rate)
	}
}

// TestFetchQuotaRefund: bytes a read used and whose result was discarded come back as tokens at
// once (up to the burst) and leave Used, so a re-read of the same bytes is charged only once;
// an unlimited quota still counts Used right; nil and n <= 0 are no-ops.
func TestFetchQuotaRefund(t *testing.T) {
	const rate = 1 << 20
	q, _ := fakeClockQuota(rate)
	g, _ := q.Take(rate)
	q.Settle(g, 300<<10) // returned 300 KiB: 300 KiB spent
	if g2, _ := q.Take(rate); g2 != rate-300<<10 {
		t.Fatalf("before the refund: granted %d, want %d", g2, rate-300<<10)
	} else {
		q.Settle(g2, 0)
	}
	q.Refund(200 << 10) // 200 KiB of them never sent
	if u := q.Used(); u != 100<<10 {
		t.Fatalf("Used after the refund: %d, want 100 KiB", u)
	}
	if g3, _ := q.Take(rate); g3 != rate-100<<10 {
		t.Fatalf("after the refund: granted %d, want %d", g3, rate-100<<10)
	} else {
		q.Settle(g3, 0)
	}
	q.Refund(rate) // more than was spent: tokens stop at the burst
	if g4, _ := q.Take(2 * rate); g4 != rate {
		t.Fatalf("refund beyond the burst: granted %d, want the burst %d", g4, rate)
	}

	u := NewAdaptiveFetchQuota(0) // no limit: only Used changes
	u.Settle(5000, 5000)
	u.Refund(2000)
	u.Refund(-1)
	if got := u.Used(); got != 3000 {
		t.Fatalf("unlimited quota: Used %d, want 3000", got)
	}
	var nilq *FetchQuota
	nilq.Refund(10)
}

// TestFetchQuotaDeliversItsRate: greedy readers that always ask for more than the rate, each
// waiting exactly as long as told, together get the configured rate over a simulated minute (plus
// the initial burst) — not the half that the balance-gated version delivered.
func TestFetchQuotaDeliversItsRate(t *testing.T) {
	const rate = 32 << 20
	q, now := fakeClockQuota(rate)
	start := *now
	var total int64
	for now.Sub(start) < time.Minute {
		for range 4 { // four partitions of one fetch, each asking for 10 MiB
			g, wait := q.Take(10 << 20)
			if g == 0 {
				*now = now.Add(wait)
				continue
			}
			// Whole batches of 1 MiB: a read returns what fits in its grant, or one batch
			// when the grant is smaller (the first of a fetch is returned whole).
			used := max(g/(1<<20)*(1<<20), 1<<20)
			q.Settle(g, used)
			total += int64(used)
		}
		*now = now.Add(time.Millisecond) // the consumer's turnaround
	}
	got := float64(total) / now.Sub(start).Seconds()
	if want := float64(rate); got < 0.97*want || got > 1.03*want+float64(rate)/60 {
		t.Fatalf("delivered %.1f MiB/s of a %.0f MiB/s quota", got/(1<<20), want/(1<<20))
	}
}

// TestFetchQuotaReserve: a short wait for the minimum grant is waited out; when the grant would
// take longer than maxWait the caller gets nothing at once, a throttle time, and it is counted.
func TestFetchQuotaReserve(t *testing.T) {
	q := NewFetchQuota(1 << 20) // 1 MiB/s, minimum grant 64 KiB = 62.5 ms
	if g, _ := q.Reserve(context.Background(), 1<<20, time.Second); g != 1<<20 {
		t.Fatalf("full bucket: granted %d", g)
	}
	start := time.Now()
	g, thr := q.Reserve(context.Background(), 1<<20, time.Second)
	if g < 64<<10 || thr != 0 {
		t.Fatalf("after waiting: granted %d, throttle %v; want ≥ 64 KiB and none", g, thr)
	}
	if d := time.Since(start); d < 50*time.Millisecond {
		t.Fatalf("granted after %v: it did not wait for the minimum grant to accrue", d)
	}
	q.Settle(0, 2<<20) // 2 s in debt
	g, thr = q.Reserve(context.Background(), 1<<20, 100*time.Millisecond)
	if g != 0 || thr < time.Second {
		t.Fatalf("2 s in debt, maxWait 100 ms: granted %d, throttle %v; want 0 and ≥ 1 s", g, thr)
	}
	if q.Throttled() != 1 {
		t.Fatalf("throttled %d, want 1", q.Throttled())
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if g, _ := q.Reserve(ctx, 1<<20, time.Hour); g != 0 {
		t.Fatalf("ended context: granted %d", g)
	}
}

// TestFetchQuotaAdaptive: an adaptive quota is unlimited until SetAdaptiveRate lowers it; the
// adaptive rate takes effect at once with a short burst (250 ms worth); it never raises a
// configured quota; lifting it restores the configured one (or no limit); Used counts what reads
// returned, limited or not.
func TestFetchQuotaAdaptive(t *testing.T) {
	now := time.Unix(1000, 0)
	q := NewAdaptiveFetchQuota(0)
	q.now = func() time.Time { return now }
	q.last = now
	if g, w := q.Take(1 << 30); g != 1<<30 || w != 0 || !math.IsInf(q.Rate(), 1) {
		t.Fatalf("no limit: Take = %d, %v, rate %v; want everything now", g, w, q.Rate())
	}
	q.Settle(1<<30, 3<<20)
	if q.Used() != 3<<20 {
		t.Fatalf("Used = %d, want 3 MiB", q.Used())
	}

	const rate = 8 << 20
	q.SetAdaptiveRate(rate)
	if q.Rate() != rate {
		t.Fatalf("rate %v after SetAdaptiveRate(%d)", q.Rate(), rate)
	}
	if g, _ := q.Take(1 << 30); g != rate/4 {
		t.Fatalf("first grant under the adaptive limit: %d, want its 250 ms burst %d", g, rate/4)
	}
	if g, _ := q.Take(1 << 30); g != 0 {
		t.Fatalf("granted %d with the burst spent", g)
	}
	now = now.Add(time.Second) // a second idle: still only the 250 ms burst
	if g, _ := q.Take(1 << 30); g != rate/4 {
		t.Fatalf("after an idle second: granted %d, want %d", g, rate/4)
	}
	q.SetAdaptiveRate(math.Inf(1))
	if g, _ := q.Take(1 << 30); g != 1<<30 {
		t.Fatalf("limit lifted: granted %d", g)
	}

	// Under a configured quota the adaptive rate only lowers it.
	s := NewAdaptiveFetchQuota(32 << 20)
	s.SetAdaptiveRate(1 << 30)
	if s.Rate() != 32<<20 {
		t.Fatalf("adaptive 1 GiB/s over a 32 MiB/s quota: rate %v", s.Rate())
	}
	s.SetAdaptiveRate(4 << 20)
	if s.Rate() != 4<<20 {
		t.Fatalf("adaptive 4 MiB/s under a 32 MiB/s quota: rate %v", s.Rate())
	}
	s.SetAdaptiveRate(0)
	if s.Rate() != 32<<20 {
		t.Fatalf("adaptive limit lifted: rate %v, want the configured 32 MiB/s", s.Rate())
	}
	var nilq *FetchQuota
	nilq.SetAdaptiveRate(1) // no panic
	if !math.IsInf(nilq.Rate(), 1) || nilq.Used() != 0 {
		t.Fatal("nil quota: not unlimited")
	}
}

// TestFetchQuotaAdaptiveDelivers: greedy readers under an adaptive rate that changes mid-way get
// each rate (within the burst) — the limit binds at once and lets go at once.
func TestFetchQuotaAdaptiveDelivers(t *testing.T) {
	now := time.Unix(1000, 0)
	q := NewAdaptiveFetchQuota(0)
	q.now = func() time.Time { return now }
	q.last = now
	run := func(d time.Duration) float64 {
		start, used0 := now, q.Used()
		for now.Sub(start) < d {
			g, wait := q.Take(10 << 20)
			if g == 0 {
				now = now.Add(wait)
				continue
			}
			q.Settle(g, g)
			now = now.Add(time.Millisecond)
		}
		return float64(q.Used()-used0) / now.Sub(start).Seconds()
	}
	for _, r := range []float64{16 << 20, 4 << 20, 64 << 20} {
		q.SetAdaptiveRate(r)
		if got := run(20 * time.Second); got < 0.97*r || got > 1.03*r {
			t.Fatalf("adaptive %.0f MiB/s delivered %.2f MiB/s", r/(1<<20), got/(1<<20))
		}
	}
}

// TestFetchQuotaConfiguredRateChanges: the configured rate (a dynamic config) changes in place: the
// effective rate is the lower of it and the adaptive limit, removing it leaves the adaptive limit
// alone, a quota that was unlimited starts with a full burst at its new rate, and lowered hears of
// every fall of the effective rate (the chunk cache then sheds idle GETs), not of a rise.
func TestFetchQuotaConfiguredRateChanges(t *testing.T) {
	now := time.Unix(1000, 0)
	q := NewAdaptiveFetchQuota(0)
	q.now = func() time.Time { return now }
	q.last = now
	falls := 0
	q.lowered = func() { falls++ }

	q.SetConfiguredRate(8 << 20)
	if q.Rate() != 8<<20 || falls != 1 {
		t.Fatalf("configured 8 MiB/s: rate %v, %d falls", q.Rate(), falls)
	}
	if g, _ := q.Take(1 << 30); g != 8<<20 {
		t.Fatalf("first grant at a new configured rate: %d, want its one-second burst", g)
	}
	q.SetAdaptiveRate(2 << 20)
	q.SetConfiguredRate(32 << 20) // raised, but the adaptive limit binds
	if q.Rate() != 2<<20 || falls != 2 {
		t.Fatalf("configured 32 MiB/s under an adaptive 2 MiB/s: rate %v, %d falls", q.Rate(), falls)
	}
	q.SetConfiguredRate(1 << 20)
	if q.Rate() != 1<<20 || falls != 3 {
		t.Fatalf("configured 1 MiB/s under an adaptive 2 MiB/s: rate %v, %d falls", q.Rate(), falls)
	}
	q.SetConfiguredRate(0)
	if q.Rate() != 2<<20 || falls != 3 {
		t.Fatalf("configured rate removed: rate %v (want the adaptive 2 MiB/s), %d falls", q.Rate(), falls)
	}
	q.SetAdaptiveRate(0)
	if !math.IsInf(q.Rate(), 1) {
		t.Fatalf("both removed: rate %v", q.Rate())
	}
	var nilq *FetchQuota
	nilq.SetConfiguredRate(1) // no panic
}

// TestAwaitGrant: an upload under the copy quota starts only once the quota is out of the debt the
// last upload left (its object's size beyond the grant), and a wait ends with the upload's context.
func TestAwaitGrant(t *testing.T) {
	if g, err := awaitGrant(context.Background(), nil); g != 0 || err != nil {
		t.Fatalf("no quota: %d, %v", g, err)
	}
	const rate = 64 << 10
	q := NewAdaptiveFetchQuota(rate)
	g, err := awaitGrant(context.Background(), q)
	if err != nil || g <= 0 {
		t.Fatalf("first upload: grant %d, %v", g, err)
	}
	// An object two seconds' worth larger than its grant: the burst (a second's worth, accrued
	// while idle) covers one, the other is debt.
	q.Settle(g, g+2*rate)
	start := time.Now()
	if g, err := awaitGrant(context.Background(), q); err != nil || g <= 0 {
		t.Fatalf("second upload: grant %d, %v", g, err)
	}
	if d := time.Since(start); d < 800*time.Millisecond {
		t.Fatalf("second upload started %v after a second of debt", d)
	}

	slow := NewAdaptiveFetchQuota(1)
	g, _ = awaitGrant(context.Background(), slow)
	slow.Settle(g, 1<<20) // days of debt at 1 B/s
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		_, err := awaitGrant(ctx, slow)
		done <- err
	}()
	time.Sleep(50 * time.Millisecond)
	cancel()
	select {
	case err := <-done:
		if !errors.Is(err, context.Canceled) {
			t.Fatalf("cancelled wait: %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("a wait for the copy quota did not end with its context")
	}
}
