package segment

import (
	"encoding/binary"
	"errors"
	"fmt"
	"regexp"
	"strings"
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

func TestMaxTimestampFindsTheRecord(t *testing.T) {
	l := mustOpen(t, "/p", testConfig(vfs.NewMemFS()))
	defer l.Close()
	if off, ts := l.MaxTimestamp(); off != -1 || ts != -1 {
		t.Fatalf("empty log: %d@%d", ts, off)
	}
	mustAppend(t, l, testBatch(3, 10, 500), 0) // 0..2 at 500..502
	// A CreateTime batch whose largest timestamp is on its second record:
	// 995, 1000, 997 at offsets 3..5.
	var recs []byte
	for i, d := range []int64{0, 5, 2} {
		body := []byte{0}
		body = binary.AppendVarint(body, d)
		body = binary.AppendVarint(body, int64(i))
		body = binary.AppendVarint(body, -1)
		body = binary.AppendVarint(body, 1)
		body = append(body, 'x')
		body = binary.AppendVarint(body, 0)
		recs = binary.AppendVarint(recs, int64(len(body)))
		recs = append(recs, body...)
	}
	mustAppend(t, l, wrapRecords(recs, 3, 995, 1000, 0), 0)
	if off, ts := l.MaxTimestamp(); ts != 1000 || off != 4 {
		t.Fatalf("MaxTimestamp = %d@%d, want 1000@4", ts, off)
	}
	if off, ts, _, _ := l.OffsetForTimestamp(996); off != 4 || ts != 1000 {
		t.Fatalf("OffsetForTimestamp(996) = %d@%d, want the record at 4 (1000)", ts, off)
	}
	mustAppend(t, l, testBatch(2, 10, 700), 0) // 6..7 at 700..701
	if off, ts := l.MaxTimestamp(); ts != 1000 || off != 4 {
		t.Fatalf("MaxTimestamp after a later, older batch = %d@%d, want 1000@4", ts, off)
	}
	lat := testBatch(4, 10, 1)
	SetLogAppendTime(lat, 5000) // 8..11, all 5000: the first record carries it
	mustAppend(t, l, lat, 0)
	if off, ts := l.MaxTimestamp(); ts != 5000 || off != 8 {
		t.Fatalf("MaxTimestamp with LogAppendTime = %d@%d, want 5000@8", ts, off)
	}
}

func TestEpochEntriesPastRecoveredEndDropped(t *testing.T) {
	// The epoch checkpoint is written (synced) before the batch that starts the
	// epoch; if a crash loses that batch, recovery drops the entry (Kafka's
	// truncateFromEnd on load).
	fsys := vfs.NewMemFS()
	cfg := testConfig(fsys)
	cfg.FlushPolicy = FlushOS
	l := mustOpen(t, "/p", cfg)
	fill(t, l, 2, 2, func(int) int32 { return 1 })
	if err := l.Roll(); err != nil { // offsets 0..3 durable
		t.Fatal(err)
	}
	fill(t, l, 2, 2, func(int) int32 { return 5 }) // 4..7, never synced
	if got := l.Epochs(); len(got) != 2 || got[1] != [2]int64{5, 4} {
		t.Fatalf("epochs before crash %v", got)
	}
	fsys.Crash()
	l = mustOpen(t, "/p", cfg)
	defer l.Close()
	if l.EndOffset() != 4 {
		t.Fatalf("end after crash %d, want 4", l.EndOffset())
	}
	if got := l.Epochs(); len(got) != 1 || got[0] != [2]int64{1, 0} {
		t.Fatalf("epochs after crash %v, want [[1 0]]", got)
	}
	b, err := vfs.ReadFile(fsys, "/p/"+leaderEpochFile)
	if err != nil {
		t.Fatal(err)
	}
	if es, err := decodeEpochs("x", b); err != nil || len(es) != 1 {
		t.Fatalf("checkpoint file not rewritten: %v %v", es, err)
	}
}

// TestCorruptBatchErrorNamesFileAndPosition: a batch whose header went bad in
// a closed segment after a clean shutdown (Open trusts it) is found by the
// readers, which report ErrCorrupt naming the segment file and the batch's
// byte position, and never panic.
func TestCorruptBatchErrorNamesFileAndPosition(t *testing.T) {
	const k = 2 // the corrupt batch: neither a segment's first nor its last
	size := len(testBatch(2, 50, 0))
	for _, c := range []struct {
		name string
		at   int // byte of the batch header flipped
	}{
		{"magic", offMagic},
		{"negative length", offBatchLength},
		{"length past the end", offBatchLength + 1},
		{"negative lastOffsetDelta", offLastOffsetDelta},
	} {
		t.Run(c.name, func(t *testing.T) {
			fsys := vfs.NewMemFS()
			cfg := testConfig(fsys)
			cfg.SegmentBytes = int64(6 * size)
			cfg.IndexIntervalBytes = 0
			l := mustOpen(t, "/p", cfg)
			for i := 0; i < 20; i++ {
				mustAppend(t, l, testBatch(2, 50, int64(10*i)), 0)
			}
			if err := l.Close(); err != nil {
				t.Fatal(err)
			}
			path := l.Segments()[0].Path
			pos := int64(k * size)
			corruptByte(t, fsys, path, pos+int64(c.at))
			l = mustOpen(t, "/p", cfg)
			defer l.Close()
			check := func(what string, f func() error) {
				t.Helper()
				var err error
				func() {
					defer func() {
						if p := recover(); p != nil {
							t.Fatalf("%s panicked: %v", what, p)
						}
					}()
					err = f()
				}()
				if !errors.Is(err, ErrCorrupt) || !strings.Contains(err.Error(), path) || !regexp.MustCompile(fmt.Sprintf(`\bbyte %d\b`, pos)).MatchString(err.Error()) {
					t.Errorf("%s: %v, want ErrCorrupt naming %s and byte %d", what, err, path, pos)
				}
			}
			read := func(off int64, maxBytes int) func() error {
				return func() error {
					_, err := l.Read(off, ReadOptions{MaxBytes: maxBytes, MinOneBatch: true})
					return err
				}
			}
			check("Read of the batch", read(2*k, 1))
			check("Read across it", read(0, 1<<20))
			check("ScanBatches", func() error { return l.ScanBatches(0, func(BatchHeader) bool { return true }) })
			check("OffsetForTimestamp", func() error { _, _, _, err := l.OffsetForTimestamp(10*k + 1); return err })
		})
	}
}
