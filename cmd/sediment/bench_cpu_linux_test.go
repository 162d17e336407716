package main

import (
	"os"
	"testing"
	"time"
)

// TestCPUProbe: CPU this process burns between start and stop shows up as the broker's (our own)
// and, watched through /proc as the store's pid, as the store's too; the consumer's is passed
// through.
func TestCPUProbe(t *testing.T) {
	p := startCPUProbe(os.Getpid())
	if p == nil {
		t.Fatal("no probe on Linux")
	}
	burn(t, 300*time.Millisecond)
	c := p.stop(123 * time.Millisecond)
	if c == nil {
		t.Fatal("no figures")
	}
	if c.Broker < 300*time.Millisecond || c.Store < 250*time.Millisecond || c.Consumer != 123*time.Millisecond {
		t.Fatalf("after burning 300 ms of CPU: %+v", *c)
	}
	if c.Busy <= 0 || c.Busy > 1 || c.IOWait < 0 || c.IOWait > 1 {
		t.Fatalf("shares out of range: %+v", *c)
	}
	var none *cpuProbe
	if none.stop(time.Second) != nil {
		t.Fatal("a nil probe reported figures")
	}
}

// burn spins until this process has used d more CPU time (not wall time: on a busy machine the
// spinning goroutine may wait for a core).
func burn(t *testing.T, d time.Duration) {
	t.Helper()
	start, _ := selfCPU()
	deadline := time.Now().Add(30 * time.Second)
	for {
		now, ok := selfCPU()
		if !ok {
			t.Fatal("getrusage failed")
		}
		if now-start >= d {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("could not burn %v of CPU in 30 s", d)
		}
	}
}
