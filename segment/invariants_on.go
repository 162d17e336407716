//go:build invariants

package segment

import "fmt"

// checkInvariants panics when the log's in-memory state is inconsistent. Built
// only with -tags invariants (tests: go test -tags invariants ./segment/); mu held.
func (l *Log) checkInvariants() {
	if len(l.segs) == 0 {
		panic("segment invariant: no segments")
	}
	for i, s := range l.segs {
		if s.next < s.base || s.size < 0 {
			panic(fmt.Sprintf("segment invariant: %s next %d base %d size %d", s.path, s.next, s.base, s.size))
		}
		if i > 0 && l.segs[i-1].next > s.base {
			panic(fmt.Sprintf("segment invariant: %s overlaps its predecessor", s.path))
		}
		if s.closed != (i < len(l.segs)-1) {
			panic(fmt.Sprintf("segment invariant: %s closed=%v at %d of %d", s.path, s.closed, i, len(l.segs)))
		}
		if s.closed && s.fileSize > s.size {
			panic(fmt.Sprintf("segment invariant: closed %s keeps stale bytes (file %d, data %d)", s.path, s.fileSize, s.size))
		}
	}
	for i, p := range l.pool {
		if i > 0 && l.pool[i-1].bound >= p.bound || len(l.pool) > l.cfg.RecycleSegments {
			panic(fmt.Sprintf("segment invariant: recycle pool %v (cap %d)", l.pool, l.cfg.RecycleSegments))
		}
	}
	if l.end != l.active().next {
		panic(fmt.Sprintf("segment invariant: end %d, active segment ends at %d", l.end, l.active().next))
	}
	if l.start < 0 || l.start > l.end || l.localStart() > l.end {
		panic(fmt.Sprintf("segment invariant: start %d, local start %d, end %d", l.start, l.localStart(), l.end))
	}
	for i := 1; i < len(l.epochs); i++ {
		if l.epochs[i].epoch <= l.epochs[i-1].epoch || l.epochs[i].start < l.epochs[i-1].start {
			panic(fmt.Sprintf("segment invariant: epochs %v not increasing", l.epochs))
		}
	}
	if n := len(l.epochs); n > 0 && l.epochs[n-1].start > l.end {
		panic(fmt.Sprintf("segment invariant: epoch %v starts past end %d", l.epochs[n-1], l.end))
	}
	l.fmu.Lock()
	d := l.durable
	l.fmu.Unlock()
	if d > l.end {
		panic(fmt.Sprintf("segment invariant: durable %d past end %d", d, l.end))
	}
}
