package broker

import (
	"testing"
	"time"

	"github.com/sediment-io/sediment/segment"
	"github.com/sediment-io/sediment/segment/vfs"
)

func TestRetentionPlan(t *testing.T) {
	now := time.UnixMilli(10_000_000)
	ms := func(v int64) time.Time { return time.UnixMilli(v) }
	segs := []segment.SegmentInfo{
		{BaseOffset: 0, NextOffset: 10, Size: 100, MaxTimestamp: 1_000_000, Created: ms(900_000), Closed: true},
		{BaseOffset: 10, NextOffset: 20, Size: 100, MaxTimestamp: 5_000_000, Created: ms(2_000_000), Closed: true},
		// Future-dated records: broker time (next segment's creation) bounds them.
		{BaseOffset: 20, NextOffset: 30, Size: 100, MaxTimestamp: 99_000_000, Created: ms(6_000_000), Closed: true},
		{BaseOffset: 30, NextOffset: 35, Size: 50, MaxTimestamp: 9_000_000, Created: ms(7_000_000)},
	}
	cases := []struct {
		name            string
		hw, rMs, rBytes int64
		wantStart       int64
		wantN           int
	}{
		{"unlimited", 35, -1, -1, -1, 0},
		{"time: first two are old", 35, 4_000_000, -1, 20, 2},
		{"time: future-dated segment ages by broker time", 35, 2_000_000, -1, 30, 3},
		{"time: the active segment is never deleted", 35, 0, -1, 30, 3},
		{"bytes: keep at least 250", 35, -1, 250, 10, 1},
		{"bytes: keep at least 1", 35, -1, 1, 30, 3},
		{"high watermark bounds deletion", 15, 0, -1, 10, 1},
	}
	for _, c := range cases {
		start, n := retentionPlan(segs, c.hw, c.rMs, c.rBytes, now)
		if start != c.wantStart || n != c.wantN {
			t.Errorf("%s: got start %d n %d, want %d %d", c.name, start, n, c.wantStart, c.wantN)
		}
	}
}

// segment.ms: an idle, non-empty active segment older than segment.ms is rolled by the retention
// check (so its data can age out), an empty one is not.
func TestRetentionRollsIdleActiveSegment(t *testing.T) {
	p := memPartition(t, vfs.NewMemFS())
	defer p.close()
	tc := p.config()
	tc.SegmentMs = 60_000
	p.cfg.Store(&tc)
	if n := len(p.log.Segments()); n != 1 {
		t.Fatalf("segments %d", n)
	}
	if _, err := p.enforceRetention(time.Now().Add(time.Hour)); err != nil {
		t.Fatal(err)
	}
	if n := len(p.log.Segments()); n != 1 {
		t.Fatalf("empty active segment rolled: %d segments", n)
	}
	if r := p.appendClient(9, -1, testBatch(t, testBatchOpts{ts: time.Now().UnixMilli()})); r.err != nil {
		t.Fatal(r.err)
	}
	if _, err := p.enforceRetention(time.Now()); err != nil {
		t.Fatal(err)
	}
	if n := len(p.log.Segments()); n != 1 {
		t.Fatalf("young segment rolled: %d segments", n)
	}
	if _, err := p.enforceRetention(time.Now().Add(time.Hour)); err != nil {
		t.Fatal(err)
	}
	segs := p.log.Segments()
	if len(segs) != 2 || !segs[0].Closed || segs[1].BaseOffset != 1 {
		t.Fatalf("after segment.ms: %+v", segs)
	}
}
