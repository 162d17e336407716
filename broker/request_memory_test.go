package broker

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// The budget itself: admitted while anything is left (one request may overdraw), waits once spent,
// wakes on release, gives up with its context; unbounded does nothing.
func TestRequestMemoryBudget(t *testing.T) {
	m := newRequestMemory(100)
	ctx := testCtx(t) // a wrong wait fails the test instead of hanging it
	if err := m.acquire(ctx, 60); err != nil {
		t.Fatal(err)
	}
	if err := m.acquire(ctx, 500); err != nil { // 40 left: admitted, overdraws
		t.Fatal(err)
	}
	if m.inUse() != 560 {
		t.Fatalf("in use %d", m.inUse())
	}
	got := make(chan error, 1)
	go func() { got <- m.acquire(ctx, 1) }()
	select {
	case err := <-got:
		t.Fatalf("acquired with the budget spent: %v", err)
	case <-time.After(100 * time.Millisecond):
	}
	m.release(500) // 60 in use: the waiter gets in
	select {
	case err := <-got:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("waiter not woken by release")
	}
	if m.inUse() != 61 {
		t.Fatalf("in use %d", m.inUse())
	}
	m.release(61)
	if err := m.acquire(ctx, 100); err != nil {
		t.Fatal(err)
	}
	cctx, cancel := context.WithTimeout(ctx, 50*time.Millisecond)
	defer cancel()
	if err := m.acquire(cctx, 1); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("spent budget, context ended: %v", err)
	}
	for _, u := range []*requestMemory{nil, newRequestMemory(-1), newRequestMemory(0)} {
		if err := u.acquire(ctx, 1<<40); err != nil || u.inUse() != 0 {
			t.Fatalf("unbounded %v: %v in use %d", u, err, u.inUse())
		}
	}
}

// Through the wire: with queued.max.request.bytes spent, a client's requests are not read (no answer)
// until bytes are given back; a request larger than the whole budget is still served; handled
// requests give their bytes back.
func TestQueuedMaxRequestBytes(t *testing.T) {
	b := newTestBroker(t, func(c *Config) { c.QueuedMaxRequestBytes = 64 })
	createTopic(t, b, "q", 1, nil)
	ctx := testCtx(t)
	cl := newTestClient(t, b, kgo.DefaultProduceTopic("q"))
	// A produce request of ~10 KiB against a 64-byte budget: admitted (non-strict), appended.
	if err := cl.ProduceSync(ctx, &kgo.Record{Value: make([]byte, 10<<10)}).FirstErr(); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "handled requests to give their bytes back", func() bool { return b.reqMem.inUse() == 0 })

	// Spend the budget as if other connections' requests were queued.
	if err := b.reqMem.acquire(ctx, 64); err != nil {
		t.Fatal(err)
	}
	other := newTestClient(t, b)
	done := make(chan error, 1)
	go func() {
		_, err := kmsg.NewPtrMetadataRequest().RequestWith(ctx, other)
		done <- err
	}()
	select {
	case err := <-done:
		t.Fatalf("a request was answered while queued.max.request.bytes was spent: %v", err)
	case <-time.After(300 * time.Millisecond):
	}
	b.reqMem.release(64)
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the request was not answered after the budget was given back")
	}
	waitFor(t, "every byte given back", func() bool { return b.reqMem.inUse() == 0 })
}
