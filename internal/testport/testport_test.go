package testport

import (
	"net"
	"strconv"
	"strings"
	"testing"
)

// TestFreeIsUniqueBindableAndBelowEphemeral: many ports in a row are all distinct, all bindable,
// and below the ephemeral range when it leaves room.
func TestFreeIsUniqueBindableAndBelowEphemeral(t *testing.T) {
	low := ephemeralLow()
	seen := map[int]bool{}
	for range 500 {
		p := Port(t)
		if seen[p] {
			t.Fatalf("port %d returned twice", p)
		}
		seen[p] = true
		if low-lowestPort >= 1000 && (p < lowestPort || p >= low) {
			t.Fatalf("port %d outside [%d, %d)", p, lowestPort, low)
		}
	}
	addr := Free(t)
	if !strings.HasPrefix(addr, "127.0.0.1:") {
		t.Fatalf("Free() = %q", addr)
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		t.Fatalf("Free() returned %s, which cannot be bound: %v", addr, err)
	}
	ln.Close()
}

// TestFreeSkipsTakenPorts: a port someone holds is never returned (the fallback to the kernel's
// choice also covers a range with no room).
func TestFreeSkipsTakenPorts(t *testing.T) {
	var held []net.Listener
	defer func() {
		for _, ln := range held {
			ln.Close()
		}
	}()
	taken := map[int]bool{}
	for range 50 {
		ln, err := net.Listen("tcp", "127.0.0.1:"+strconv.Itoa(Port(t)))
		if err != nil {
			t.Fatal(err)
		}
		held = append(held, ln)
		taken[ln.Addr().(*net.TCPAddr).Port] = true
	}
	for _, low := range []int{ephemeralLow(), lowestPort} { // lowestPort: no room, kernel's choice
		for range 100 {
			p, err := free(low)
			if err != nil {
				t.Fatal(err)
			}
			if taken[p] {
				t.Fatalf("free(%d) returned port %d, which is held", low, p)
			}
		}
	}
}

// TestAddrSharesFreesPorts: Addr (the bench's) draws from the same pool as Free, below the
// ephemeral range, and never returns a port Free gave.
func TestAddrSharesFreesPorts(t *testing.T) {
	low := ephemeralLow()
	fromFree := map[string]bool{}
	for range 50 {
		fromFree[Free(t)] = true
	}
	for range 50 {
		addr, err := Addr()
		if err != nil {
			t.Fatal(err)
		}
		if fromFree[addr] {
			t.Fatalf("Addr() = %s, already given by Free", addr)
		}
		p, err := strconv.Atoi(strings.TrimPrefix(addr, "127.0.0.1:"))
		if err != nil {
			t.Fatalf("Addr() = %q", addr)
		}
		if low-lowestPort >= 1000 && (p < lowestPort || p >= low) {
			t.Fatalf("Addr() port %d outside [%d, %d)", p, lowestPort, low)
		}
	}
}
