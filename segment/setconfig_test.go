package segment

import (
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/sediment-io/sediment/segment/vfs"
)

func mustSetConfig(t *testing.T, l *Log, change func(*Config)) {
	t.Helper()
	c := l.Config()
	change(&c)
	if err := l.SetConfig(c); err != nil {
		t.Fatalf("SetConfig: %v", err)
	}
}

func TestSetConfigSegmentBytes(t *testing.T) {
	l := mustOpen(t, "/p", testConfig(vfs.NewMemFS()))
	defer l.Close()
	b := testBatch(4, 100, 1)
	for i := 0; i < 6; i++ {
		mustAppend(t, l, append([]byte(nil), b...), 0)
	}
	if n := len(l.Segments()); n != 1 {
		t.Fatalf("%d segments before the change", n)
	}
	// Lowered below the active segment's size: the next append rolls, and
	// later segments hold two batches each.
	mustSetConfig(t, l, func(c *Config) { c.SegmentBytes = int64(2 * len(b)) })
	for i := 0; i < 4; i++ {
		mustAppend(t, l, append([]byte(nil), b...), 0)
	}
	segs := l.Segments()
	if len(segs) != 3 || segs[1].BaseOffset != 24 || segs[2].BaseOffset != 32 {
		t.Fatalf("segments after lowering segment.bytes: %+v", segs)
	}
	if _, err := l.Append(testBatch(1, 3*len(b), 1), 0); !errors.Is(err, ErrBatchTooLarge) {
		t.Fatalf("batch over the new segment.bytes: %v", err)
	}
	// Raised: no roll until the new size.
	mustSetConfig(t, l, func(c *Config) { c.SegmentBytes = 1 << 20 })
	for i := 0; i < 5; i++ {
		mustAppend(t, l, append([]byte(nil), b...), 0)
	}
	if n := len(l.Segments()); n != 3 {
		t.Fatalf("%d segments after raising segment.bytes, want 3", n)
	}
}

func TestSetConfigSegmentMs(t *testing.T) {
	l := mustOpen(t, "/p", testConfig(vfs.NewMemFS()))
	defer l.Close()
	hour := time.Hour.Milliseconds()
	mustAppend(t, l, testBatch(1, 1, 10*hour), 0)
	mustAppend(t, l, testBatch(1, 1, 12*hour), 0) // 2h later: within the default 7 days
	if n := len(l.Segments()); n != 1 {
		t.Fatalf("%d segments", n)
	}
	mustSetConfig(t, l, func(c *Config) { c.SegmentMs = time.Hour })
	mustAppend(t, l, testBatch(1, 1, 12*hour), 0)
	if segs := l.Segments(); len(segs) != 2 || segs[1].BaseOffset != 2 {
		t.Fatalf("segment.ms lowered to 1h: segments %+v, want a roll at offset 2", segs)
	}
}

func TestSetConfigIndexSettings(t *testing.T) {
	cfg := testConfig(vfs.NewMemFS())
	cfg.IndexIntervalBytes = 1 << 20
	l := mustOpen(t, "/p", cfg)
	defer l.Close()
	entries := func() int {
		l.mu.RLock()
		defer l.mu.RUnlock()
		return len(l.active().idx.entries)
	}
	for i := 0; i < 5; i++ {
		mustAppend(t, l, testBatch(2, 10, int64(i)), 0)
	}
	before := entries()
	// index.interval.bytes 0: every batch gets an offset-index entry.
	mustSetConfig(t, l, func(c *Config) { c.IndexIntervalBytes = 0 })
	for i := 0; i < 5; i++ {
		mustAppend(t, l, testBatch(2, 10, int64(10+i)), 0)
	}
	if got := entries(); got != before+5 {
		t.Fatalf("offset-index entries %d, want %d after index.interval.bytes=0", got, before+5)
	}
	// segment.index.bytes below what the active segment's index holds: the
	// next append rolls; then segments roll whenever the index would pass it.
	mustSetConfig(t, l, func(c *Config) { c.SegmentIndexBytes = 3 * indexEntrySize })
	for i := 0; i < 6; i++ {
		mustAppend(t, l, testBatch(1, 10, int64(20+i)), 0)
	}
	segs := l.Segments()
	if len(segs) < 3 || segs[1].BaseOffset != 20 {
		t.Fatalf("after lowering segment.index.bytes: %+v", segs)
	}
	for _, s := range segs[1:] {
		if n := s.NextOffset - s.BaseOffset; n > 3 {
			t.Fatalf("segment %d holds %d one-record batches with room for 3 index entries", s.BaseOffset, n)
		}
	}
}

func TestSetConfigFlushPolicy(t *testing.T) {
	fsys := vfs.NewMemFS()
	cfg := testConfig(fsys)
	cfg.FlushPolicy = FlushOS
	l := mustOpen(t, "/p", cfg)
	mustAppend(t, l, testBatch(2, 10, 1), 0) // writes the epoch checkpoint (synced)
	s0 := fsys.Syncs()
	mustAppend(t, l, testBatch(2, 10, 1), 0)
	if fsys.Syncs() != s0 {
		t.Fatal("FlushOS synced an append")
	}
	mustSetConfig(t, l, func(c *Config) { c.FlushPolicy = FlushAlways })
	mustAppend(t, l, testBatch(2, 10, 1), 0)
	if fsys.Syncs() == s0 {
		t.Fatal("FlushAlways after SetConfig did not sync the append")
	}
	// Back to os, then interval with a short period: data appended under os
	// is synced by the timer with no further append.
	mustSetConfig(t, l, func(c *Config) { c.FlushPolicy = FlushOS })
	s1 := fsys.Syncs()
	mustAppend(t, l, testBatch(2, 10, 1), 0)
	if fsys.Syncs() != s1 {
		t.Fatal("FlushOS after SetConfig synced an append")
	}
	mustSetConfig(t, l, func(c *Config) {
		c.FlushPolicy, c.FlushInterval = FlushInterval, 5*time.Millisecond
	})
	deadline := time.Now().Add(10 * time.Second)
	for fsys.Syncs() == s1 {
		if time.Now().After(deadline) {
			t.Fatal("interval policy set by SetConfig never synced the pending data")
		}
		time.Sleep(time.Millisecond)
	}
	fsys.Crash() // without Close: only the timer's sync made the data durable
	l = mustOpen(t, "/p", cfg)
	defer l.Close()
	if e := l.EndOffset(); e != 8 {
		t.Fatalf("EndOffset %d after crash, want 8", e)
	}
}

func TestSetConfigRejectsInvalid(t *testing.T) {
	l := mustOpen(t, "/p", testConfig(vfs.NewMemFS()))
	before := l.Config()
	bad := before
	bad.SegmentBytes = 1
	if err := l.SetConfig(bad); err == nil {
		t.Fatal("segment.bytes 1 accepted")
	}
	if l.Config().SegmentBytes != before.SegmentBytes {
		t.Fatal("invalid SetConfig changed the config")
	}
	l.Close()
	if err := l.SetConfig(before); !errors.Is(err, ErrClosed) {
		t.Fatalf("SetConfig on a closed log: %v", err)
	}
}

// TestSetConfigConcurrentWithAppends is for -race: config changes while
// appends and reads run.
func TestSetConfigConcurrentWithAppends(t *testing.T) {
	l := mustOpen(t, "/p", testConfig(vfs.NewMemFS()))
	defer l.Close()
	var wg sync.WaitGroup
	for w := 0; w < 3; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < 100; i++ {
				if _, err := l.Append(testBatch(2, 50, int64(i)), 0); err != nil {
					t.Error(err)
					return
				}
			}
		}()
	}
	for i := 0; i < 50; i++ {
		c := l.Config()
		c.SegmentBytes = int64(500 + 100*(i%7))
		c.IndexIntervalBytes = 100 * (i % 3)
		c.FlushPolicy = []FlushPolicy{FlushAlways, FlushOS, FlushInterval}[i%3]
		c.FlushInterval = time.Millisecond
		if err := l.SetConfig(c); err != nil {
			t.Fatal(err)
		}
	}
	wg.Wait()
	if got := len(readAll(t, l, 0)); got == 0 {
		t.Fatal("no data")
	}
	if e := l.EndOffset(); e != 600 {
		t.Fatalf("EndOffset %d, want 600", e)
	}
}
