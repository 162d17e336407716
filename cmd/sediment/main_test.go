package main

import (
	"os"
	"testing"
)

// TestMain lets this test binary stand in for the sediment executable: the tiering bench starts
// `<its own executable> replay-worker ...` children (bench_replay.go), which in a test run is this
// binary.
func TestMain(m *testing.M) {
	if len(os.Args) > 1 && os.Args[1] == "replay-worker" {
		os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
	}
	os.Exit(m.Run())
}
