package tiering

import (
	"context"
	"sync"
	"time"
)

// FetchQuota is a broker-wide byte-rate budget for reads from the bucket (KIP-956's
// remote.log.manager.fetch.max.bytes.per.second): a replay from object storage costs the broker
// CPU (copies, CRC checks, the response) that live produce on the same cores needs; the quota caps
// it. A read that finds the budget spent waits for it (Wait) when that takes at most a bound, else
// its partition returns no data this time and the consumer asks again (Kafka only does the latter:
// with kgo's 5 s long-poll that stalls a throttled replay far below the quota). Tokens refill at
// the rate up to one second's worth; a read may overdraw (Charge), which the next reads repay.
// Safe for concurrent use. The zero rate (NewFetchQuota(0)) returns nil: no limit.
type FetchQuota struct {
	rate float64 // bytes per second

	mu     sync.Mutex
	tokens float64
	last   time.Time
	now    func() time.Time

	throttled int64
}

// NewFetchQuota returns a quota of bytesPerSecond, or nil (unlimited) when it is ≤ 0.
func NewFetchQuota(bytesPerSecond int64) *FetchQuota {
	if bytesPerSecond <= 0 {
		return nil
	}
	q := &FetchQuota{rate: float64(bytesPerSecond), now: time.Now}
	q.tokens, q.last = q.rate, q.now()
	return q
}

func (q *FetchQuota) refillLocked() {
	t := q.now()
	q.tokens = min(q.rate, q.tokens+t.Sub(q.last).Seconds()*q.rate)
	q.last = t
}

// Allow reports whether a read may start now (a nil quota always allows).
func (q *FetchQuota) Allow() bool {
	if q == nil {
		return true
	}
	q.mu.Lock()
	defer q.mu.Unlock()
	q.refillLocked()
	if q.tokens > 0 {
		return true
	}
	q.throttled++
	return false
}

// Wait blocks until a read may start, if the budget is repaid within maxWait; otherwise (or when
// ctx ends first) it returns false at once without waiting: the caller then serves nothing now.
// Pacing reads this way gives a replay a steady rate at the quota instead of a burst followed by
// empty fetches that clients answer with a long-poll wait (kgo's is 5 s).
func (q *FetchQuota) Wait(ctx context.Context, maxWait time.Duration) bool {
	if q == nil {
		return true
	}
	q.mu.Lock()
	q.refillLocked()
	if q.tokens > 0 {
		q.mu.Unlock()
		return true
	}
	d := time.Duration((-q.tokens + 1) / q.rate * float64(time.Second))
	if d > maxWait {
		q.throttled++
		q.mu.Unlock()
		return false
	}
	q.mu.Unlock()
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}

// Charge takes n bytes read from the budget.
func (q *FetchQuota) Charge(n int) {
	if q == nil || n <= 0 {
		return
	}
	q.mu.Lock()
	q.refillLocked()
	q.tokens -= float64(n)
	q.mu.Unlock()
}

// Throttled counts the reads Allow refused.
func (q *FetchQuota) Throttled() int64 {
	if q == nil {
		return 0
	}
	q.mu.Lock()
	defer q.mu.Unlock()
	return q.throttled
}
