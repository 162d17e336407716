package segment

import (
	"bytes"
	"errors"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	"github.com/sediment-io/sediment/segment/vfs"
)

// fill appends n single-record... batches of k records and returns them.
func fill(t *testing.T, l *Log, n, k int, epoch func(i int) int32) [][]byte {
	t.Helper()
	var out [][]byte
	for i := 0; i < n; i++ {
		b := testBatch(k, 60, int64(100+i))
		e := int32(0)
		if epoch != nil {
			e = epoch(i)
		}
		mustAppend(t, l, b, e)
		out = append(out, b)
	}
	return out
}

func TestTruncateTo(t *testing.T) {
	fsys := vfs.NewMemFS()
	cfg := testConfig(fsys)
	cfg.SegmentBytes = 600
	l := mustOpen(t, "/p", cfg)
	bs := fill(t, l, 20, 2, func(i int) int32 { return int32(i / 5) }) // epochs 0..3, 5 batches each
	if len(l.Segments()) < 4 {
		t.Fatalf("want several segments, have %d", len(l.Segments()))
	}
	// Truncate into the middle of batch 12 (offsets 24,25): the whole batch goes.
	if err := l.TruncateTo(25); err != nil {
		t.Fatal(err)
	}
	if l.EndOffset() != 24 {
		t.Fatalf("EndOffset = %d, want 24", l.EndOffset())
	}
	var want []byte
	for _, b := range bs[:12] {
		want = append(want, b...)
	}
	if got := readAll(t, l, 0); !bytes.Equal(got, want) {
		t.Fatal("data after truncation differs")
	}
	// Epoch 2 started at offset 20; epoch 3 (offset 30) is gone.
	if e, _ := l.LatestEpoch(); e != 2 {
		t.Fatalf("latest epoch %d, want 2", e)
	}
	if e, end, ok := l.EndOffsetForEpoch(1); !ok || e != 1 || end != 20 {
		t.Fatalf("EndOffsetForEpoch(1) = %d %d %v", e, end, ok)
	}
	// Appending continues at 24 and durability waits for new data.
	r := mustAppend(t, l, testBatch(1, 5, 1), 5)
	if r.FirstOffset != 24 {
		t.Fatalf("append after truncate at %d", r.FirstOffset)
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	l = mustOpen(t, "/p", cfg)
	if l.EndOffset() != 25 {
		t.Fatalf("after reopen EndOffset = %d", l.EndOffset())
	}
	if got := l.Epochs(); len(got) != 4 || got[3] != [2]int64{5, 24} {
		t.Fatalf("epochs after reopen %v", got)
	}
	// Truncating below the first segment empties the log and restarts it there.
	if err := l.TruncateTo(0); err != nil {
		t.Fatal(err)
	}
	if l.EndOffset() != 0 || l.StartOffset() != 0 || len(l.Segments()) != 1 || len(l.Epochs()) != 0 {
		t.Fatalf("after TruncateTo(0): end %d start %d segs %d epochs %v", l.EndOffset(), l.StartOffset(), len(l.Segments()), l.Epochs())
	}
	l.Close()
}

func TestSetStartOffsetDeletesSegments(t *testing.T) {
	fsys := vfs.NewMemFS()
	cfg := testConfig(fsys)
	cfg.SegmentBytes = 600
	l := mustOpen(t, "/p", cfg)
	fill(t, l, 20, 2, func(i int) int32 { return int32(i / 5) })
	segs := l.Segments()
	cut := segs[2].BaseOffset + 1 // inside the third segment
	if err := l.SetStartOffset(cut); err != nil {
		t.Fatal(err)
	}
	if l.StartOffset() != cut || l.Segments()[0].BaseOffset != segs[2].BaseOffset {
		t.Fatalf("start %d, first segment %d", l.StartOffset(), l.Segments()[0].BaseOffset)
	}
	if _, err := l.Read(cut-1, ReadOptions{MaxBytes: 100}); !errors.Is(err, ErrOffsetOutOfRange) {
		t.Fatalf("read below start: %v", err)
	}
	if _, err := fsys.Stat(segs[0].Path); err == nil {
		t.Fatal("deleted segment file still exists")
	}
	if err := l.SetStartOffset(3); err != nil || l.StartOffset() != cut {
		t.Fatalf("lowering is a no-op: %v, start %d", err, l.StartOffset())
	}
	if err := l.SetStartOffset(l.EndOffset() + 1); !errors.Is(err, ErrOffsetOutOfRange) {
		t.Fatalf("start beyond end: %v", err)
	}
	if ep := l.Epochs(); ep[0][1] != cut {
		t.Fatalf("first epoch entry not moved to the start offset: %v", ep)
	}
	// The start offset survives a crash (not just a clean close).
	fsys.Crash()
	l2 := mustOpen(t, "/p", cfg)
	if l2.StartOffset() != cut {
		t.Fatalf("start offset after crash %d, want %d", l2.StartOffset(), cut)
	}
	// Everything: the active segment rolls and the old ones go.
	end := l2.EndOffset()
	if err := l2.SetStartOffset(end); err != nil {
		t.Fatal(err)
	}
	if s := l2.Segments(); len(s) != 1 || s[0].BaseOffset != end || s[0].Size != 0 {
		t.Fatalf("segments after deleting everything: %+v", s)
	}
	r := mustAppend(t, l2, testBatch(1, 1, 1), 9)
	if r.FirstOffset != end {
		t.Fatalf("append after full deletion at %d", r.FirstOffset)
	}
	l2.Close()
}

func TestEndOffsetForEpoch(t *testing.T) {
	l := mustOpen(t, "/p", testConfig(vfs.NewMemFS()))
	defer l.Close()
	if _, _, ok := l.EndOffsetForEpoch(0); ok {
		t.Fatal("empty cache answered")
	}
	// epochs 1@0, 3@10, 4@15 (assigned by appends), end 20.
	fill(t, l, 10, 1, func(int) int32 { return 1 })
	fill(t, l, 5, 1, func(int) int32 { return 3 })
	fill(t, l, 5, 1, func(int) int32 { return 4 })
	cases := []struct {
		ask   int32
		epoch int32
		end   int64
		ok    bool
	}{
		{0, 0, 0, true}, // below the first epoch: its start
		{1, 1, 10, true},
		{2, 1, 10, true}, // unknown epoch between: the one below, ending where 3 starts
		{3, 3, 15, true},
		{4, 4, 20, true}, // latest: log end
		{5, -1, -1, false},
	}
	for _, c := range cases {
		e, end, ok := l.EndOffsetForEpoch(c.ask)
		if e != c.epoch || end != c.end || ok != c.ok {
			t.Errorf("EndOffsetForEpoch(%d) = %d %d %v, want %d %d %v", c.ask, e, end, ok, c.epoch, c.end, c.ok)
		}
	}
	// Kafka's assign: an older epoch removes the entries it contradicts.
	if err := l.AssignEpoch(2, 12); err != nil {
		t.Fatal(err)
	}
	if got := l.Epochs(); len(got) != 2 || got[1] != [2]int64{2, 12} {
		t.Fatalf("after AssignEpoch(2,12): %v", got)
	}
}

func TestWaitDurableFailsWhenTruncatedAway(t *testing.T) {
	// White-box: whether a real TruncateTo wins the race against the waiter's own
	// sync depends on mutex scheduling, so the truncation's bookkeeping
	// (afterTruncate) is applied directly while the first sync is stuck.
	fsys := vfs.NewMemFS()
	started, block := make(chan struct{}), make(chan struct{})
	var syncs atomic.Int32
	fsys.SetInjector(func(op vfs.Op, name string) error {
		if op == vfs.OpSync && filepath.Ext(name) == ".log" && syncs.Add(1) == 1 {
			close(started)
			<-block
		}
		return nil
	})
	l := mustOpen(t, "/p", testConfig(fsys))
	r1, err := l.AppendNoWait(testBatch(2, 1, 1), 0)
	if err != nil {
		t.Fatal(err)
	}
	first := make(chan error, 1)
	go func() { first <- l.WaitDurable(r1.LastOffset + 1) }() // leads a sync covering 0-1, stuck
	<-started
	r2, err := l.AppendNoWait(testBatch(2, 1, 1), 0) // written after that sync started
	if err != nil {
		t.Fatal(err)
	}
	second := make(chan error, 1)
	go func() { second <- l.WaitDurable(r2.LastOffset + 1) }()
	time.Sleep(10 * time.Millisecond) // usually waiting by now; if not, it finds the log too short
	l.mu.Lock()
	l.end = r2.FirstOffset // the log is cut below the second append
	l.afterTruncate(l.end)
	l.mu.Unlock()
	close(block)
	if err := <-second; !errors.Is(err, ErrTruncated) {
		t.Fatalf("waiter for truncated data: %v, want ErrTruncated", err)
	}
	if err := <-first; err != nil {
		t.Fatalf("waiter for data below the cut: %v", err)
	}
	// Waiting for offsets the log never had fails instead of spinning.
	if err := l.WaitDurable(100); !errors.Is(err, ErrTruncated) {
		t.Fatalf("WaitDurable beyond the end: %v", err)
	}
}
