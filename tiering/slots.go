package tiering

import (
	"context"
	"sync"
)

// slots is the cold-read budget: at most n object-store GETs in flight. A freed slot goes to the
// longest-waiting consumer read first, and to background work (warming the next object of a
// sequential reader, read-ahead) only when no consumer read waits: under load, what a client
// waits for now comes before what it may want next. (Keeping slots free for consumer reads as
// well, a quarter of them, got a many-partition consumer its first records 8 % sooner but
// replayed 9 % slower: BenchmarkFetchColdManyPartitions.) A nil *slots is no budget.
type slots struct {
	mu   sync.Mutex
	free int
	fg   []chan struct{} // waiting consumer reads, oldest first
	bg   []chan struct{} // waiting background work, oldest first
}

func newSlots(n int) *slots { return &slots{free: n} }

// acquire takes a slot, waiting behind earlier reads (background: behind every consumer read
// too), or fails with ctx's error.
func (s *slots) acquire(ctx context.Context, background bool) error {
	if s == nil {
		return nil
	}
	s.mu.Lock()
	if s.freeFor(background) {
		s.free--
		s.mu.Unlock()
		return nil
	}
	ch := make(chan struct{})
	q := &s.fg
	if background {
		q = &s.bg
	}
	*q = append(*q, ch)
	s.mu.Unlock()
	select {
	case <-ch:
		return nil
	case <-ctx.Done():
		s.mu.Lock()
		defer s.mu.Unlock()
		for i, w := range *q {
			if w == ch {
				*q = append((*q)[:i], (*q)[i+1:]...)
				return ctx.Err()
			}
		}
		// release handed us the slot as ctx ended: pass it on.
		s.releaseLocked()
		return ctx.Err()
	}
}

// tryAcquire takes a slot only if acquire would not wait for it.
func (s *slots) tryAcquire(background bool) bool {
	if s == nil {
		return true
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.freeFor(background) {
		s.free--
		return true
	}
	return false
}

// freeFor reports whether a slot is free for a consumer read (background false) or for
// background work, with nobody waiting ahead.
func (s *slots) freeFor(background bool) bool {
	if len(s.fg) > 0 {
		return false
	}
	if background {
		return len(s.bg) == 0 && s.free > 0
	}
	return s.free > 0
}

// release returns a slot: to the oldest waiting consumer read, else to the oldest background
// waiter.
func (s *slots) release() {
	if s == nil {
		return
	}
	s.mu.Lock()
	s.releaseLocked()
	s.mu.Unlock()
}

func (s *slots) releaseLocked() {
	switch {
	case len(s.fg) > 0:
		close(s.fg[0])
		s.fg = s.fg[1:]
	case len(s.bg) > 0:
		close(s.bg[0])
		s.bg = s.bg[1:]
	default:
		s.free++
	}
}
