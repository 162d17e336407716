package tiering

import (
	"context"
	"math"
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
// An adaptive limit (SetAdaptiveRate) may lower the rate below the configured one while the broker
// is short of CPU for its producers (broker/tier_throttle.go); it never raises it. Its burst is
// shorter (adaptiveBurstTime), so that a lowered rate takes effect within a controller tick instead
// of after a second's worth of saved-up tokens.
//
// Safe for concurrent use. NewFetchQuota(0) returns nil: no limit (every method accepts nil);
// NewAdaptiveFetchQuota(0) returns a quota with no limit until SetAdaptiveRate sets one.
type FetchQuota struct {
	static   float64 // configured bytes per second (KIP-956); +Inf: none
	adaptive float64 // the adaptive limit; +Inf: none
	rate     float64 // effective bytes per second: min(static, adaptive); +Inf: unlimited
	burst    float64 // most tokens that accrue while nobody reads
	minGrant float64 // a grant waits until this much has accrued (or what was asked, if less)

	mu     sync.Mutex
	tokens float64
	last   time.Time
	now    func() time.Time

	throttled int64
	used      int64 // bytes reads returned under grants (Settle), limited or not

	// lowered, if set, is called (outside mu) each time SetAdaptiveRate lowers the effective
	// rate: RemoteLog sheds the chunk loads no read needs (SetQuota).
	lowered func()
}

// adaptiveBurstTime is the burst of an adaptive limit: 250 ms worth, at least minGrantBytes (a
// static quota keeps one second's worth, as before).
const adaptiveBurstTime = 250 * time.Millisecond

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
	return NewAdaptiveFetchQuota(bytesPerSecond)
}

// NewAdaptiveFetchQuota returns a quota of at most bytesPerSecond (≤ 0: no configured limit) whose
// rate SetAdaptiveRate may lower. Never nil.
func NewAdaptiveFetchQuota(bytesPerSecond int64) *FetchQuota {
	q := &FetchQuota{static: math.Inf(1), adaptive: math.Inf(1), now: time.Now}
	if bytesPerSecond > 0 {
		q.static = float64(bytesPerSecond)
	}
	q.last = q.now()
	q.setRateLocked()
	q.tokens = q.burst
	return q
}

// setRateLocked derives rate, burst and minGrant from the two limits, keeping the tokens already
// accrued (at most the new burst); a bucket that was unlimited starts full.
func (q *FetchQuota) setRateLocked() {
	wasUnlimited := math.IsInf(q.rate, 1) || q.rate == 0
	q.rate = min(q.static, q.adaptive)
	if math.IsInf(q.rate, 1) {
		q.burst, q.minGrant, q.tokens = 0, 0, 0
		return
	}
	q.burst = q.rate // one second's worth
	if q.adaptive < q.static {
		// At least a minimum grant: an adaptive rate may be low (its floor is a config), and a
		// grant smaller than a batch returns nothing but the first batch of a fetch.
		q.burst = max(q.rate*adaptiveBurstTime.Seconds(), min(q.static, minGrantBytes))
	}
	q.minGrant = min(q.burst, max(q.rate*minGrantTime.Seconds(), minGrantBytes))
	if wasUnlimited {
		q.tokens = q.burst
	}
	q.tokens = min(q.tokens, q.burst)
}

// SetAdaptiveRate lowers the quota to bytesPerSecond (never above the configured rate); ≤ 0 or
// +Inf lifts the adaptive limit. Tokens accrued so far at the old rate are kept, up to the new
// burst.
func (q *FetchQuota) SetAdaptiveRate(bytesPerSecond float64) {
	if q == nil {
		return
	}
	if bytesPerSecond <= 0 || math.IsNaN(bytesPerSecond) {
		bytesPerSecond = math.Inf(1)
	}
	q.setLimit(&q.adaptive, bytesPerSecond)
}

// setLimit sets one of the two limits (a field of q, guarded by mu) to bytesPerSecond (+Inf:
// none), keeping the tokens accrued so far at the old rate, and tells lowered if the effective
// rate fell.
func (q *FetchQuota) setLimit(limit *float64, bytesPerSecond float64) {
	q.mu.Lock()
	if bytesPerSecond == *limit {
		q.mu.Unlock()
		return
	}
	q.refillLocked()
	*limit = bytesPerSecond
	was := q.rate
	q.setRateLocked()
	now, lowered := q.rate, q.lowered
	q.mu.Unlock()
	if lowered != nil && now < was {
		lowered()
	}
}

// SetConfiguredRate replaces the configured rate (KIP-956's
// remote.log.manager.fetch.max.bytes.per.second, which Kafka lets operators change at run time);
// ≤ 0 removes it. The adaptive limit stays as it is and still applies below the new rate. Tokens
// accrued so far are kept, up to the new burst; a quota that was unlimited starts with a full one.
func (q *FetchQuota) SetConfiguredRate(bytesPerSecond int64) {
	if q == nil {
		return
	}
	r := math.Inf(1)
	if bytesPerSecond > 0 {
		r = float64(bytesPerSecond)
	}
	q.setLimit(&q.static, r)
}

// Rate is the effective rate in bytes per second (+Inf: unlimited).
func (q *FetchQuota) Rate() float64 {
	if q == nil {
		return math.Inf(1)
	}
	q.mu.Lock()
	defer q.mu.Unlock()
	return q.rate
}

// Used counts the bytes reads returned under this quota's grants (Settle), limited or not: the
// adaptive controller's measure of how fast the bucket is being read.
func (q *FetchQuota) Used() int64 {
	if q == nil {
		return 0
	}
	q.mu.Lock()
	defer q.mu.Unlock()
	return q.used
}

func (q *FetchQuota) refillLocked() {
	t := q.now()
	if d := t.Sub(q.last); d > 0 && !math.IsInf(q.rate, 1) {
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
	if math.IsInf(q.rate, 1) {
		return want, 0
	}
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
	if q == nil {
		return
	}
	q.mu.Lock()
	q.used += int64(max(used, 0))
	if granted != used {
		q.refillLocked()
		if !math.IsInf(q.rate, 1) {
			q.tokens = min(q.burst, q.tokens+float64(granted-used))
		}
	}
	q.mu.Unlock()
}

// Refund gives back n bytes a settled read took whose result was never sent: a fetch that read a
// partition ahead of Kafka's serial limits and then re-read it with less room, or a long poll that
// reads every partition again after waiting. Without it those bytes were charged twice, once for
// the discarded read and once for the read whose result was sent (from the chunk cache the first
// one filled). It also takes them out of Used, which the adaptive controller reads as the rate
// the bucket is being read at.
func (q *FetchQuota) Refund(n int) {
	if q == nil || n <= 0 {
		return
	}
	q.mu.Lock()
	q.used -= int64(n)
	q.refillLocked()
	if !math.IsInf(q.rate, 1) {
		q.tokens = min(q.burst, q.tokens+float64(n))
	}
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

// SetQuota replaces r's fetch quota (nil: unlimited). Call it before r serves reads: the broker
// installs one quota (NewAdaptiveFetchQuota) for its life and changes its rates in place
// (SetConfiguredRate, SetAdaptiveRate).
// Whenever the quota is then lowered below a chunk a second, the chunk cache's GETs that no reader
// waits on are cancelled (chunkCache.shedIdle).
func (r *RemoteLog) SetQuota(q *FetchQuota) {
	r.quota = q
	if q == nil || r.cache == nil {
		return
	}
	q.mu.Lock()
	q.lowered = func() {
		if !r.cache.speculate() { // the rate is below a chunk a second now
			r.cache.shedIdle()
		}
	}
	q.mu.Unlock()
}
