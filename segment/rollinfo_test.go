package segment

import (
	"bytes"
	"encoding/binary"
	"math"
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

// TestRollOffsetRange: a batch whose lastOffsetDelta spans most of int32 (a
// compacted batch keeps the delta of the records it lost; a follower copies
// it as is) would put offsets more than MaxInt32 past the segment base, which
// the indexes' 32-bit relative offsets cannot hold: the segment rolls first
// (Kafka's canConvertToRelativeOffset), not when the last offset is exactly
// MaxInt32 past the base, and every offset reads back, also after a clean
// reopen and after a recovery scan.
func TestRollOffsetRange(t *testing.T) {
	// wide returns a batch with 2 records and the given lastOffsetDelta.
	wide := func(delta int32, ts int64) []byte {
		b := testBatch(2, 10, ts)
		binary.BigEndian.PutUint32(b[offLastOffsetDelta:], uint32(delta))
		binary.BigEndian.PutUint32(b[offCRC:], batchCRC(b))
		return b
	}
	for _, replicated := range []bool{false, true} {
		t.Run(map[bool]string{false: "Append", true: "AppendReplicated"}[replicated], func(t *testing.T) {
			var rec rollRecorder
			fsys := vfs.NewMemFS()
			cfg := testConfig(fsys)
			cfg.IndexIntervalBytes = 0
			cfg.OnRoll = func(ri RollInfo) { rec.rolls = append(rec.rolls, ri) }
			l := mustOpen(t, "/p", cfg)
			const m = math.MaxInt32
			batches := [][]byte{
				testBatch(2, 10, 100), // 0-1, base 0
				wide(m, 200),          // 2-(m+2): m+2 past base 0, rolls
				testBatch(2, 10, 300), // (m+3)-(m+4): m+2 past base 2, rolls
				wide(m-2, 400),        // (m+5)-(2m+3): exactly m past base m+3
				testBatch(1, 10, 500), // 2m+4: m+1 past base m+3, rolls
			}
			next := int64(0)
			for _, b := range batches {
				if replicated {
					BatchHeader(b).SetBaseOffset(next)
					if _, err := l.AppendReplicated(b); err != nil {
						t.Fatal(err)
					}
				} else {
					mustAppend(t, l, b, 0)
				}
				next = BatchHeader(b).LastOffset() + 1
			}
			if got := rec.reasons(); !slices.Equal(got, []RollReason{RollOffsetRange, RollOffsetRange, RollOffsetRange}) {
				t.Fatalf("roll reasons %v, want three offset-range rolls", got)
			}
			for i, base := range []int64{2, m + 3, 2*m + 4} {
				if rec.rolls[i].NewBase != base {
					t.Fatalf("roll %d: %+v, want new base %d", i, rec.rolls[i], base)
				}
			}
			check := func() {
				t.Helper()
				if l.EndOffset() != next || len(l.Segments()) != 4 {
					t.Fatalf("end %d, %d segments", l.EndOffset(), len(l.Segments()))
				}
				for _, b := range batches {
					h := BatchHeader(b)
					for _, off := range []int64{h.BaseOffset(), (h.BaseOffset() + h.LastOffset()) / 2, h.LastOffset()} {
						r, err := l.Read(off, ReadOptions{MaxBytes: 1, MinOneBatch: true})
						if err != nil || !bytes.Equal(r.Data, b) {
							t.Fatalf("Read(%d) = %d bytes at %d, %v; want the batch at %d", off, len(r.Data), BatchHeader(r.Data).BaseOffset(), err, h.BaseOffset())
						}
					}
					if off, _, ok, err := l.OffsetForTimestamp(h.FirstTimestamp()); err != nil || !ok || off != h.BaseOffset() {
						t.Fatalf("OffsetForTimestamp(%d) = %d %v %v, want %d", h.FirstTimestamp(), off, ok, err, h.BaseOffset())
					}
				}
			}
			check()
			if err := l.Close(); err != nil {
				t.Fatal(err)
			}
			l = mustOpen(t, "/p", cfg) // clean: indexes from files
			check()
			crashAt(t, l, fsys, 0) // unclean: every segment scanned
			l = mustOpen(t, "/p", cfg)
			defer l.Close()
			check()
		})
	}
}
