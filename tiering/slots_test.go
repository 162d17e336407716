package tiering

import (
	"context"
	"testing"
	"time"
)

// A freed cold-read slot goes to a waiting consumer read before background work that waited
// longer, and waiters that give up leave no slot behind: afterwards all can be taken again.
func TestSlotsConsumerReadsFirst(t *testing.T) {
	ctx := context.Background()
	s := newSlots(4)
	for i := range 5 {
		if s.tryAcquire(false) != (i < 4) {
			t.Fatalf("four slots: take #%d", i+1)
		}
	}
	got := make(chan string, 3)
	wait := func(name string, background bool) {
		go func() {
			if err := s.acquire(ctx, background); err != nil {
				got <- name + ": " + err.Error()
				return
			}
			got <- name
		}()
	}
	waiting := func(fg, bg int) {
		t.Helper()
		for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(time.Millisecond) {
			s.mu.Lock()
			f, b := len(s.fg), len(s.bg)
			s.mu.Unlock()
			if f == fg && b == bg {
				return
			}
			if time.Now().After(deadline) {
				t.Fatalf("waiting: %d consumer, %d background; want %d, %d", f, b, fg, bg)
			}
		}
	}
	wait("warm-up", true)
	waiting(0, 1)
	wait("read 1", false)
	waiting(1, 1)
	wait("read 2", false)
	waiting(2, 1)
	if s.tryAcquire(false) || s.tryAcquire(true) {
		t.Fatal("tryAcquire took a slot others wait for")
	}
	for _, want := range []string{"read 1", "read 2", "warm-up"} {
		s.release()
		select {
		case name := <-got:
			if name != want {
				t.Fatalf("a freed slot went to %q, want %q", name, want)
			}
		case <-time.After(5 * time.Second):
			t.Fatalf("a freed slot reached no one (want %q)", want)
		}
	}
	if s.tryAcquire(true) || s.tryAcquire(false) {
		t.Fatal("a slot taken while all four are")
	}
	s.release()
	if !s.tryAcquire(true) {
		t.Fatal("background work found no slot, one was free")
	}

	// All four are taken. Two waiters give up (one consumer read, one background); the slots go
	// back.
	cctx, cancel := context.WithCancel(ctx)
	errs := make(chan error, 2)
	for _, bg := range []bool{false, true} {
		go func() { errs <- s.acquire(cctx, bg) }()
	}
	waiting(1, 1)
	cancel()
	for range 2 {
		if err := <-errs; err != context.Canceled {
			t.Fatalf("a waiter whose context ended: %v", err)
		}
	}
	for range 4 {
		s.release()
	}
	for i := range 5 {
		if s.tryAcquire(false) != (i < 4) {
			t.Fatalf("after the waiters gave up, all released: take #%d", i+1)
		}
	}
}
