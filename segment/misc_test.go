package segment

import (
	"errors"
	"testing"

	"github.com/sediment-io/sediment/segment/vfs"
)

func TestScanBatchesAndDelete(t *testing.T) {
	fsys := vfs.NewMemFS()
	cfg := testConfig(fsys)
	cfg.SegmentBytes = 500
	l := mustOpen(t, "/topic-0", cfg)
	fill(t, l, 12, 3, nil)
	var bases []int64
	if err := l.ScanBatches(7, func(h BatchHeader) bool {
		bases = append(bases, h.BaseOffset())
		return len(bases) < 4
	}); err != nil {
		t.Fatal(err)
	}
	if len(bases) != 4 || bases[0] != 6 || bases[3] != 15 {
		t.Fatalf("ScanBatches(7) visited %v, want [6 9 12 15]", bases)
	}
	if err := l.Delete(); err != nil {
		t.Fatal(err)
	}
	if _, err := fsys.Stat("/topic-0"); err == nil {
		t.Fatal("directory survives Delete")
	}
	if _, err := l.Append(testBatch(1, 1, 1), 0); !errors.Is(err, ErrClosed) {
		t.Fatalf("append after Delete: %v", err)
	}
	if _, err := l.Read(0, ReadOptions{MaxBytes: 10}); !errors.Is(err, ErrClosed) {
		t.Fatalf("read after Delete: %v", err)
	}
}

func TestEpochCheckpointRebuiltWhenCorrupt(t *testing.T) {
	fsys := vfs.NewMemFS()
	cfg := testConfig(fsys)
	l := mustOpen(t, "/p", cfg)
	fill(t, l, 6, 2, func(i int) int32 { return int32(1 + i/2) }) // 1@0, 2@4, 3@8
	want := l.Epochs()
	l.Close()
	if err := vfs.WriteFileAtomic(fsys, "/p/"+leaderEpochFile, []byte("garbage")); err != nil {
		t.Fatal(err)
	}
	l = mustOpen(t, "/p", cfg)
	defer l.Close()
	got := l.Epochs()
	if len(got) != len(want) {
		t.Fatalf("rebuilt epochs %v, want %v", got, want)
	}
	for i := range got {
		if got[i] != want[i] {
			t.Fatalf("rebuilt epochs %v, want %v", got, want)
		}
	}
}

func TestCorruptCheckpointsDetected(t *testing.T) {
	b := encodeCheckpoint(kindLogStart, []byte{0, 0, 0, 0, 0, 0, 0, 9})
	if _, err := decodeCheckpoint("x", b, kindLogStart); err != nil {
		t.Fatal(err)
	}
	for i := range b {
		c := append([]byte(nil), b...)
		c[i] ^= 0x10
		if _, err := decodeCheckpoint("x", c, kindLogStart); !errors.Is(err, ErrCorrupt) {
			t.Fatalf("flipping byte %d went unnoticed", i)
		}
	}
	if _, err := decodeCheckpoint("x", b, kindRecoveryPoint); err == nil {
		t.Fatal("wrong kind accepted")
	}
	// An unreadable log-start checkpoint fails Open rather than guessing.
	fsys := vfs.NewMemFS()
	l := mustOpen(t, "/p", testConfig(fsys))
	mustAppend(t, l, testBatch(1, 1, 1), 0)
	l.SetStartOffset(1)
	l.Close()
	vfs.WriteFileAtomic(fsys, "/p/"+logStartFile, b[:10])
	if _, err := Open("/p", testConfig(fsys)); !errors.Is(err, ErrCorrupt) {
		t.Fatalf("Open with a torn log-start checkpoint: %v", err)
	}
}

func TestStartOffsetBeyondRecoveredEndRestartsEmpty(t *testing.T) {
	// Under FlushOS a crash can lose the unsynced tail while the (always
	// synced) log-start checkpoint points into it: Kafka restarts the log empty
	// at the start offset.
	fsys := vfs.NewMemFS()
	cfg := testConfig(fsys)
	cfg.FlushPolicy = FlushOS
	l := mustOpen(t, "/p", cfg)
	fill(t, l, 10, 2, nil)
	if err := l.SetStartOffset(15); err != nil {
		t.Fatal(err)
	}
	fsys.Crash()
	l = mustOpen(t, "/p", cfg)
	defer l.Close()
	if l.StartOffset() != 15 || l.EndOffset() != 15 {
		t.Fatalf("start %d end %d, want 15/15", l.StartOffset(), l.EndOffset())
	}
	r := mustAppend(t, l, testBatch(1, 1, 1), 0)
	if r.FirstOffset != 15 {
		t.Fatalf("next append at %d", r.FirstOffset)
	}
}
