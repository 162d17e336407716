package tiering

import (
	"context"
	"sync"
	"sync/atomic"
	"time"
)

// readAhead prefetches, for a consumer reading a remote segment sequentially, the byte range its next
// Read will ask for, while the current result travels to the consumer. One prefetch per open segment
// object; a shared byte budget bounds the memory all prefetches of a RemoteLog may hold.
type readAhead struct {
	budget *atomic.Int64 // bytes still available for prefetched data, shared by a RemoteLog

	mu  sync.Mutex
	cur *prefetch
}

type prefetch struct {
	start, end int64 // logical bytes
	done       chan struct{}
	parts      [][]byte // the logical bytes [start, end) (readLogicalParts: cached chunks, not joined)
	hold       *Hold    // parts's; goes to the Read that takes them (a prefetch never taken keeps it)
	err        error
	cancel     context.CancelFunc
}

// prefetchTimeout bounds one background fetch (no request context owns it).
const prefetchTimeout = 30 * time.Second

// take returns the prefetched bytes [start, end) if the pending prefetch covers them, waiting for it
// to complete (or ctx to end), with their Hold. ok=false: read directly.
func (ra *readAhead) take(ctx context.Context, start, end int64) (parts [][]byte, hold *Hold, ok bool) {
	ra.mu.Lock()
	pf := ra.cur
	if pf == nil || pf.start != start || pf.end < end {
		ra.mu.Unlock()
		return nil, nil, false
	}
	ra.cur = nil
	ra.mu.Unlock()
	defer ra.budget.Add(pf.end - pf.start)
	select {
	case <-pf.done:
	case <-ctx.Done():
		pf.cancel()
		return nil, nil, false
	}
	if pf.err != nil || int64(partsLen(pf.parts)) != pf.end-pf.start || end == start {
		pf.hold.Release() // taken off ra.cur and done: nobody else reads these
		return nil, nil, false
	}
	return newPartsView(pf.parts).slice(0, int(end-start)), pf.hold, true
}

// launch starts prefetching [start, end) unless the budget is exhausted, replacing (and cancelling)
// any pending prefetch.
func (ra *readAhead) launch(r *RemoteReader, start, end int64) {
	n := end - start
	if n <= 0 {
		return
	}
	if ra.budget.Add(-n) < 0 {
		ra.budget.Add(n)
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), prefetchTimeout)
	pf := &prefetch{start: start, end: end, done: make(chan struct{}), cancel: cancel}
	ra.mu.Lock()
	old := ra.cur
	ra.cur = pf
	ra.mu.Unlock()
	if old != nil {
		old.cancel()
		ra.budget.Add(old.end - old.start)
	}
	go func() {
		defer close(pf.done)
		defer cancel()
		pf.parts, pf.hold, pf.err = r.readLogicalPartsAs(ctx, start, end, true)
	}()
}

// discard drops a pending prefetch (the reader left the cache).
func (ra *readAhead) discard() {
	ra.mu.Lock()
	pf := ra.cur
	ra.cur = nil
	ra.mu.Unlock()
	if pf != nil {
		pf.cancel()
		ra.budget.Add(pf.end - pf.start)
	}
}
