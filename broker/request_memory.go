package broker

// requestMemory is Kafka's queued.max.request.bytes: a broker-wide budget of request bytes read
// from connections and not yet handled. When it is spent, connections stop reading new requests
// (their size prefix is read, the body is not) until handled requests give bytes back, so a burst
// of large produce requests from many clients cannot grow the heap without bound.
//
// As Kafka's non-strict SimpleMemoryPool, a request is admitted whenever anything is left of the
// budget, even if it is larger than what is left: a single request up to socket.request.max.bytes
// never waits forever. Bytes are given back when the handler returns (for Produce: once appended;
// a deferred durability/ISR wait holds none). Unlike Kafka, a Fetch long-poll holds its few request
// bytes while it waits, since Sediment long-polls inside the handler.
//
// A limit <= 0 (the default -1) means unbounded: acquire and release do nothing.

import (
	"context"
	"sync"
)

type requestMemory struct {
	limit int64

	mu    sync.Mutex
	used  int64
	freed chan struct{} // closed (and replaced) whenever bytes are given back
}

func newRequestMemory(limit int64) *requestMemory {
	return &requestMemory{limit: limit, freed: make(chan struct{})}
}

func (m *requestMemory) bounded() bool { return m != nil && m.limit > 0 }

// acquire takes n bytes, waiting while the budget is spent; it returns ctx's error if ctx ends first.
func (m *requestMemory) acquire(ctx context.Context, n int64) error {
	if !m.bounded() {
		return nil
	}
	for {
		m.mu.Lock()
		if m.used < m.limit {
			m.used += n
			m.mu.Unlock()
			return nil
		}
		freed := m.freed
		m.mu.Unlock()
		select {
		case <-freed:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// release gives back n bytes taken by acquire and wakes the waiting connections.
func (m *requestMemory) release(n int64) {
	if !m.bounded() || n == 0 {
		return
	}
	m.mu.Lock()
	m.used -= n
	close(m.freed)
	m.freed = make(chan struct{})
	m.mu.Unlock()
}

// inUse reports the bytes currently taken (tests, metrics).
func (m *requestMemory) inUse() int64 {
	if m == nil {
		return 0
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.used
}
