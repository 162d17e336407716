package segment

import (
	"slices"
	"testing"
	"time"

	"github.com/sediment-io/sediment/segment/vfs"
)

// rollRecorder collects OnRoll calls.
type rollRecorder struct{ rolls []RollInfo }

func (r *rollRecorder) reasons() []RollReason {
	var out []RollReason
	for _, ri := range r.rolls {
		out = append(out, ri.Reason)
	}
	return out
}

// Config.OnRoll is called once per roll with the closed segment's base and size, the new base
// (= the closed segment's next offset, i.e. the new active segment's base), and why it rolled.
func TestOnRollReportsEveryRoll(t *testing.T) {
	t.Run("size", func(t *testing.T) {
		var rec rollRecorder
		cfg := testConfig(vfs.NewMemFS())
		b := testBatch(4, 100, 1)
		cfg.SegmentBytes = int64(3 * len(b))
		cfg.OnRoll = func(ri RollInfo) { rec.rolls = append(rec.rolls, ri) }
		l := mustOpen(t, "/p", cfg)
		defer l.Close()
		for i := 0; i < 10; i++ {
			mustAppend(t, l, append([]byte(nil), b...), 0)
		}
		segs := l.Segments()
		if len(rec.rolls) != len(segs)-1 || len(rec.rolls) != 3 {
			t.Fatalf("%d rolls reported for %d segments", len(rec.rolls), len(segs))
		}
		for i, ri := range rec.rolls {
			want := RollInfo{OldBase: segs[i].BaseOffset, NewBase: segs[i+1].BaseOffset, Size: segs[i].Size, Reason: RollSize}
			if ri != want || ri.NewBase != segs[i].NextOffset {
				t.Fatalf("roll %d: %+v, want %+v", i, ri, want)
			}
		}
		// One append of several batches crossing two boundaries reports both rolls.
		var multi []byte
		for i := 0; i < 6; i++ {
			multi = append(multi, b...)
		}
		mustAppend(t, l, multi, 0)
		if got := len(rec.rolls); got != 5 || rec.rolls[4].OldBase != 48 || rec.rolls[4].NewBase != 60 {
			t.Fatalf("after a 6-batch append: %d rolls, last %+v", got, rec.rolls[got-1])
		}
	})
	t.Run("time, requested, start offset", func(t *testing.T) {
		var rec rollRecorder
		now := fixedNow
		cfg := testConfig(vfs.NewMemFS())
		cfg.SegmentMs = time.Minute
		cfg.Now = func() time.Time { return now }
		cfg.OnRoll = func(ri RollInfo) { rec.rolls = append(rec.rolls, ri) }
		l := mustOpen(t, "/p", cfg)
		defer l.Close()
		mustAppend(t, l, testBatch(1, 1, -1), 0) // no timestamp: wall clock
		now = now.Add(2 * time.Minute)
		mustAppend(t, l, testBatch(1, 1, -1), 0) // rolls by segment.ms
		if err := l.Roll(); err != nil {         // young segment: an explicit roll
			t.Fatal(err)
		}
		if err := l.Roll(); err != nil { // empty active segment: no roll, nothing reported
			t.Fatal(err)
		}
		mustAppend(t, l, testBatch(1, 1, -1), 0)
		now = now.Add(2 * time.Minute)
		if err := l.Roll(); err != nil { // old segment: what the broker does for segment.ms when idle
			t.Fatal(err)
		}
		mustAppend(t, l, testBatch(1, 1, -1), 0)
		if err := l.SetStartOffset(l.EndOffset()); err != nil { // DeleteRecords to the end
			t.Fatal(err)
		}
		want := []RollReason{RollTime, RollRequested, RollTime, RollStartOffset}
		if got := rec.reasons(); !slices.Equal(got, want) {
			t.Fatalf("reasons %v, want %v", got, want)
		}
		for i, ri := range rec.rolls {
			if ri.OldBase != int64(i) || ri.NewBase != int64(i+1) || ri.Size != int64(len(testBatch(1, 1, -1))) {
				t.Fatalf("roll %d: %+v", i, ri)
			}
		}
	})
	t.Run("index full", func(t *testing.T) {
		var rec rollRecorder
		cfg := testConfig(vfs.NewMemFS())
		cfg.SegmentIndexBytes = 3 * timeIndexEntrySize
		cfg.IndexIntervalBytes = 0
		cfg.OnRoll = func(ri RollInfo) { rec.rolls = append(rec.rolls, ri) }
		l := mustOpen(t, "/p", cfg)
		defer l.Close()
		for i := 0; i < 20; i++ {
			mustAppend(t, l, testBatch(1, 10, int64(i)), 0)
		}
		if len(rec.rolls) != len(l.Segments())-1 || len(rec.rolls) < 4 {
			t.Fatalf("%d rolls for %d segments", len(rec.rolls), len(l.Segments()))
		}
		for _, r := range rec.reasons() {
			if r != RollIndexFull {
				t.Fatalf("reasons %v, want all index-full", rec.reasons())
			}
		}
	})
	t.Run("SetConfig keeps OnRoll; String", func(t *testing.T) {
		var rec rollRecorder
		cfg := testConfig(vfs.NewMemFS())
		cfg.OnRoll = func(ri RollInfo) { rec.rolls = append(rec.rolls, ri) }
		l := mustOpen(t, "/p", cfg)
		defer l.Close()
		c2 := cfg
		c2.OnRoll = nil
		c2.SegmentBytes = 200
		if err := l.SetConfig(c2); err != nil {
			t.Fatal(err)
		}
		mustAppend(t, l, testBatch(1, 60, 1), 0)
		mustAppend(t, l, testBatch(1, 60, 1), 0)
		if len(rec.rolls) != 1 || rec.rolls[0].Reason.String() != "size" {
			t.Fatalf("rolls after SetConfig: %+v", rec.rolls)
		}
		names := map[RollReason]string{RollSize: "size", RollTime: "time", RollIndexFull: "index-full",
			RollOffsetRange: "offset-range", RollRequested: "requested", RollStartOffset: "start-offset"}
		for r, n := range names {
			if r.String() != n {
				t.Fatalf("%d.String() = %q, want %q", int(r), r.String(), n)
			}
		}
	})
}
