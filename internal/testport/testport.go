package testport

import (
	"fmt"
	"math/rand/v2"
	"net"
	"os"
	"strconv"
	"strings"
	"sync"
)

// TB is the part of testing.TB Free needs.
type TB interface {
	Helper()
	Fatal(args ...any)
}

var (
	mu    sync.Mutex
	given = map[int]bool{}
)

// lowestPort is where Free starts looking: below it are well-known and registered ports that a
// developer's machine may run services on.
const lowestPort = 10000

// Free returns a loopback port ("127.0.0.1:port") that was free a moment ago and that Free has
// not returned before in this process: below the kernel's ephemeral range when there is room,
// else (a machine whose ephemeral range starts low) one the kernel picks.
func Free(t TB) string {
	t.Helper()
	return fmt.Sprintf("127.0.0.1:%d", Port(t))
}

// Addr is Free for code that is not a test: `sediment bench` restarts its in-process broker on the
// Raft port it first gave it, and a port from the ephemeral range could be taken in between by any
// outgoing connection (TestBenchTier failed so under `go test ./...`: "raft transport: ... bind:
// address already in use").
func Addr() (string, error) {
	p, err := free(ephemeralLow())
	if err != nil {
		return "", err
	}
	return fmt.Sprintf("127.0.0.1:%d", p), nil
}

// Port is Free's port number alone.
func Port(t TB) int {
	t.Helper()
	p, err := free(ephemeralLow())
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func free(ephLow int) (int, error) {
	mu.Lock()
	defer mu.Unlock()
	if ephLow-lowestPort >= 1000 {
		for range 200 {
			p := lowestPort + rand.IntN(ephLow-lowestPort)
			if given[p] {
				continue
			}
			if ln, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", p)); err == nil {
				ln.Close()
				given[p] = true
				return p, nil
			}
		}
	}
	for range 200 {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return 0, fmt.Errorf("testport: %w", err)
		}
		p := ln.Addr().(*net.TCPAddr).Port
		ln.Close()
		if !given[p] {
			given[p] = true
			return p, nil
		}
	}
	return 0, fmt.Errorf("testport: no free loopback port found")
}

// ephemeralLow is the first port of the kernel's ephemeral range (Linux; 32768, the common
// default, elsewhere or when it cannot be read).
func ephemeralLow() int {
	b, err := os.ReadFile("/proc/sys/net/ipv4/ip_local_port_range")
	if err != nil {
		return 32768
	}
	f := strings.Fields(string(b))
	if len(f) < 1 {
		return 32768
	}
	n, err := strconv.Atoi(f[0])
	if err != nil || n <= 0 {
		return 32768
	}
	return n
}
