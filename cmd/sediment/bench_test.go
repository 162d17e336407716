package main

import (
	"bytes"
	"strings"
	"testing"
)

// `sediment bench` end to end, tiny: an in-process broker and kfake, both phases, a report with a
// ratio column.
func TestBenchSubcommand(t *testing.T) {
	var out, errOut bytes.Buffer
	code := run([]string{"bench", "--records", "300", "--record-size", "100", "--partitions", "2",
		"--rate", "200", "--latency-duration", "300ms", "--data-dir", t.TempDir()}, &out, &errOut)
	if code != 0 {
		t.Fatalf("exit %d\nstdout:\n%s\nstderr:\n%s", code, out.String(), errOut.String())
	}
	s := out.String()
	for _, want := range []string{"sediment/kfake", "produce", "consume", "e2e p99", "received"} {
		if !strings.Contains(s, want) {
			t.Fatalf("report lacks %q:\n%s", want, s)
		}
	}
	if code := run([]string{"bench", "--acks", "2"}, &out, &errOut); code != 2 {
		t.Fatalf("bad flag: exit %d", code)
	}
}
