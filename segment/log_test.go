package segment

import (
	"bytes"
	"errors"
	"testing"

	"github.com/sediment-io/sediment/segment/vfs"
)

func TestAppendReadReopen(t *testing.T) {
	for _, fsName := range []string{"os", "mem"} {
		t.Run(fsName, func(t *testing.T) {
			var fsys vfs.FS = vfs.OS
			if fsName == "mem" {
				fsys = vfs.NewMemFS()
			}
			dir := t.TempDir()
			cfg := testConfig(fsys)
			l := mustOpen(t, dir, cfg)
			var want []byte
			for i := 0; i < 10; i++ {
				b := testBatch(i+1, 20, int64(100*i))
				r := mustAppend(t, l, b, 3)
				if r.LastOffset-r.FirstOffset != int64(i) {
					t.Fatalf("append %d: offsets %d..%d", i, r.FirstOffset, r.LastOffset)
				}
				if h := BatchHeader(b); h.BaseOffset() != r.FirstOffset || h.PartitionLeaderEpoch() != 3 {
					t.Fatalf("header not stamped: base %d epoch %d", h.BaseOffset(), h.PartitionLeaderEpoch())
				}
				want = append(want, b...)
			}
			if got := l.EndOffset(); got != 55 {
				t.Fatalf("EndOffset = %d, want 55", got)
			}
			if got := readAll(t, l, 0); !bytes.Equal(got, want) {
				t.Fatal("read bytes differ from appended bytes")
			}
			// A read from the middle of a batch starts with that batch.
			r, err := l.Read(12, ReadOptions{MaxBytes: 1})
			if err != nil || len(r.Data) != 0 {
				t.Fatalf("MaxBytes 1 without MinOneBatch: %d bytes, %v", len(r.Data), err)
			}
			r, err = l.Read(12, ReadOptions{MaxBytes: 1, MinOneBatch: true})
			if err != nil {
				t.Fatal(err)
			}
			if h := BatchHeader(r.Data); h.BaseOffset() != 10 || r.NextOffset != 15 || len(r.Data) != h.Size() {
				t.Fatalf("Read(12) got batch at %d, next %d", h.BaseOffset(), r.NextOffset)
			}
			if _, err := l.Read(56, ReadOptions{MaxBytes: 100}); !errors.Is(err, ErrOffsetOutOfRange) {
				t.Fatalf("Read past end: %v", err)
			}
			if r, err := l.Read(55, ReadOptions{MaxBytes: 100}); err != nil || len(r.Data) != 0 || r.NextOffset != 55 {
				t.Fatalf("Read at end: %v %d", err, len(r.Data))
			}
			// MaxOffset (high watermark) hides batches ending at or after it.
			r, err = l.Read(0, ReadOptions{MaxBytes: 1 << 20, MaxOffset: 6})
			if err != nil || r.NextOffset != 6 {
				t.Fatalf("Read with MaxOffset 6: next %d, %v", r.NextOffset, err)
			}
			if err := l.Close(); err != nil {
				t.Fatal(err)
			}
			l = mustOpen(t, dir, cfg)
			defer l.Close()
			if l.EndOffset() != 55 {
				t.Fatalf("after reopen EndOffset = %d", l.EndOffset())
			}
			if got := readAll(t, l, 0); !bytes.Equal(got, want) {
				t.Fatal("read bytes after reopen differ")
			}
			if e, ok := l.LatestEpoch(); !ok || e != 3 {
				t.Fatalf("LatestEpoch = %d %v", e, ok)
			}
		})
	}
}

func TestAppendRejectsInvalidWithoutWriting(t *testing.T) {
	l := mustOpen(t, t.TempDir(), testConfig(vfs.NewMemFS()))
	defer l.Close()
	good := testBatch(2, 10, 1)
	bad := testBatch(2, 10, 1)
	bad[len(bad)-1] ^= 1
	if _, err := l.Append(append(append([]byte(nil), good...), bad...), 0); !errors.Is(err, ErrCorrupt) {
		t.Fatalf("Append corrupt: %v", err)
	}
	if l.EndOffset() != 0 || l.Segments()[0].Size != 0 {
		t.Fatal("a rejected append wrote something")
	}
	if _, err := l.AppendReplicated(good); err != nil {
		t.Fatalf("AppendReplicated at 0: %v", err)
	}
	b := testBatch(1, 1, 1)
	BatchHeader(b).SetBaseOffset(7)
	if _, err := l.AppendReplicated(b); !errors.Is(err, ErrInvalidOffset) {
		t.Fatalf("AppendReplicated with a gap: %v", err)
	}
}

// TestDurableAppendAllocs: the requirement, at most one allocation per
// appended batch on the durable path (fdatasync per append under "always"),
// and under "os", on the real file system. The batch is built once; Append
// stamps its offset and epoch in place.
func TestDurableAppendAllocs(t *testing.T) {
	for _, pol := range []FlushPolicy{FlushAlways, FlushOS} {
		t.Run(pol.String(), func(t *testing.T) {
			cfg := DefaultConfig()
			cfg.FlushPolicy = pol
			l := mustOpen(t, t.TempDir(), cfg)
			defer l.Close()
			batch := benchBatch()
			var err error
			allocs := testing.AllocsPerRun(50, func() {
				if _, e := l.Append(batch, 1); e != nil {
					err = e
				}
			})
			if err != nil {
				t.Fatal(err)
			}
			if allocs > 1 {
				t.Fatalf("%.1f allocations per durable append of one batch, want <= 1", allocs)
			}
			t.Logf("%.1f allocations per append", allocs)
		})
	}
}
