package tiering

import (
	"context"
	"sync"
	"time"
)

// FetchQuota is a broker-wide byte-rate budget for reads from the bucket (KIP-956's
// remote.log.manager.fetch.max.bytes.per.second): a replay from object storage costs the broker
// CPU (copies, CRC checks, the response) and the store's disk that live produce on the same
// machine needs; the quota caps it.
//
// A token bucket: tokens accrue at the rate up to one second's worth (the burst). A read takes a
// grant of what has accrued, at most what it may return (Take), reads at most that many bytes,
// and settles: what it did not use goes back, and the first batch of a fetch, which Kafka returns
// whole even above the limits, may overdraw by the rest of that batch (Settle), which the next
// grants repay. A grant waits until at least minGrant has accrued (a few hundred bytes would
// return no whole batch, and an empty answer costs the consumer a round trip). Reserve waits for a
// grant when that takes at most a bound; otherwise the partition returns no data this time
// (Kafka only does the latter).
//
// Why grants and not "let any read start while the balance is positive" (the first version): a
// fetch of 4 partitions × 10 MiB then overdrew the budget by 40 MiB at once, the next fetch found
// 1.25 s of debt, waited 500 ms, gave up with no data, and the consumer's long poll then waited out
// its 5 s: a 32 MiB/s quota delivered 15.8 MiB/s (bench, 07:24). With grants the debt is at most
// one batch per concurrent read and a greedy reader gets the rate.
//
// Safe for concurrent use. NewFetchQuota(0) returns nil: no limit (every method accepts nil).
type FetchQuota struct {
	rate     float64 // bytes per second
	burst    float64 // most tokens that accrue while nobody reads: one second's worth
	minGrant float64 // a grant waits until this much has accrued (or what was asked, if less)

	mu     sync.Mutex
	tokens float64
	last   time.Time
	now    func() time.Time

	throttled int64
}

// minGrantTime sets the smallest grant: 50 ms worth of the rate (1.6 MiB at 32 MiB/s), at least
// minGrantBytes — a grant smaller than one batch returns nothing unless it is the first of its
// fetch (which then overdraws).
const (
	minGrantTime  = 50 * time.Millisecond
	minGrantBytes = 64 << 10
)

// NewFetchQuota returns a quota of bytesPerSecond, or nil (unlimited) when it is ≤ 0.
func NewFetchQuota(bytesPerSecond int64) *FetchQuota {
	if bytesPerSecond <= 0 {
		return nil
	}
	rate := float64(bytesPerSecond)
	q := &FetchQuota{rate: rate, burst: rate, now: time.Now}
	q.minGrant = min(q.burst, max(rate*minGrantTime.Seconds(), minGrantBytes))
	q.tokens, q.last = q.burst, q.now()
	return q
}

func (q *FetchQuota) refillLocked() {
	t := q.now()
	if d := t.Sub(q.last); d > 0 {
		q.tokens = min(q.burst, q.tokens+d.Seconds()*q.rate)
	}
	q.last = t
}

// Take grants up to want bytes (want > 0) out of what has accrued, once at least
// min(want, minGrant) has; the grant is taken from the budget at once, so concurrent reads never
// share it. granted 0: wait is how long until a grant of that size will have accrued. A nil quota
// grants want.
func (q *FetchQuota) Take(want int) (granted int, wait time.Duration) {
	if q == nil || want <= 0 {
		return max(want, 0), 0
	}
	q.mu.Lock()
	defer q.mu.Unlock()
	q.refillLocked()
	need := min(float64(want), q.minGrant)
	if q.tokens >= need {
		g := min(float64(want), q.tokens)
		q.tokens -= g
		return int(g), 0
	}
	return 0, time.Duration((need - q.tokens) / q.rate * float64(time.Second))
}

// Settle ends a grant: a read that returned used bytes out of granted gives back the rest, or
// overdraws by the difference (the first batch of a fetch is returned whole).
func (q *FetchQuota) Settle(granted, used int) {
	if q == nil || granted == used {
		return
	}
	q.mu.Lock()
	q.refillLocked()
	q.tokens = min(q.burst, q.tokens+float64(granted-used))
	q.mu.Unlock()
}

// Reserve is Take that waits for a grant (re-trying as concurrent readers take what accrues) for
// at most maxWait, or until ctx ends. granted 0: none within maxWait — the caller returns no data
// for this read, and throttle is how long until one would have been granted (Kafka's
// throttle_time_ms), counted in Throttled.
func (q *FetchQuota) Reserve(ctx context.Context, want int, maxWait time.Duration) (granted int, throttle time.Duration) {
	if q == nil {
		return max(want, 0), 0
	}
	var deadline time.Time
	for {
		g, wait := q.Take(want)
		if g > 0 || want <= 0 {
			return g, 0
		}
		now := q.now()
		if deadline.IsZero() {
			deadline = now.Add(maxWait)
		}
		if now.Add(wait).After(deadline) || ctx.Err() != nil {
			q.mu.Lock()
			q.throttled++
			q.mu.Unlock()
			return 0, wait
		}
		t := time.NewTimer(wait)
		select {
		case <-t.C:
		case <-ctx.Done():
		}
		t.Stop()
	}
}

// Throttled counts the reads Reserve answered with no grant.
func (q *FetchQuota) Throttled() int64 {
	if q == nil {
		return 0
	}
	q.mu.Lock()
	defer q.mu.Unlock()
	return q.throttled
}
