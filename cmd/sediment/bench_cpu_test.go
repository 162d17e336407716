package main

import (
	"testing"
	"time"
)

func TestParseProcStat(t *testing.T) {
	m, ok := parseProcStat([]byte("cpu  100 5 30 800 40 2 3 7 0 0\ncpu0 50 2 15 400 20 1 1 3 0 0\n"))
	if !ok || m != (machineTicks{busy: 100 + 5 + 30 + 2 + 3 + 7, idle: 800, iowait: 40}) {
		t.Fatalf("got %+v %v", m, ok)
	}
	for _, bad := range []string{"", "cpu0 1 2 3 4 5 6 7 8\n", "cpu 1 2 3\n", "cpu 1 2 3 x 5 6 7 8\n"} {
		if _, ok := parseProcStat([]byte(bad)); ok {
			t.Errorf("%q parsed", bad)
		}
	}
}

func TestParsePidStat(t *testing.T) {
	// A command name with a space and a ')' in it: fields are counted after the last ')'.
	line := "4242 (minio ser) x) S 1 4242 4242 0 -1 4194560 900 0 0 0 250 130 0 0 20 0 12 0 100 0 0\n"
	d, ok := parsePidStat([]byte(line))
	if !ok || d != 3800*time.Millisecond {
		t.Fatalf("got %v %v, want 3.8s (380 ticks)", d, ok)
	}
	if _, ok := parsePidStat([]byte("4242 (short) S 1 2\n")); ok {
		t.Error("a truncated line parsed")
	}
}
