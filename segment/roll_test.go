package segment

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/sediment-io/sediment/segment/vfs"
)

func TestRollBySize(t *testing.T) {
	cfg := testConfig(vfs.NewMemFS())
	b := testBatch(4, 100, 1)
	cfg.SegmentBytes = int64(3 * len(b)) // three batches per segment
	l := mustOpen(t, "/p", cfg)
	defer l.Close()
	var want []byte
	for i := 0; i < 10; i++ {
		c := append([]byte(nil), b...)
		mustAppend(t, l, c, 0)
		want = append(want, c...)
	}
	segs := l.Segments()
	if len(segs) != 4 {
		t.Fatalf("%d segments, want 4", len(segs))
	}
	for i, s := range segs {
		if s.BaseOffset != int64(12*i) || s.Closed == (i == 3) {
			t.Errorf("segment %d: base %d closed %v", i, s.BaseOffset, s.Closed)
		}
		if s.Closed {
			if _, err := l.fs.Stat(s.IndexPath); err != nil {
				t.Errorf("closed segment %d: index file: %v", i, err)
			}
			if _, err := l.fs.Stat(s.TimeIndexPath); err != nil {
				t.Errorf("closed segment %d: time index file: %v", i, err)
			}
		}
		if s.Size > cfg.SegmentBytes {
			t.Errorf("segment %d is %d bytes, over segment.bytes", i, s.Size)
		}
		if filepath.Base(s.Path) != []string{"00000000000000000000.log", "00000000000000000012.log", "00000000000000000024.log", "00000000000000000036.log"}[i] {
			t.Errorf("segment %d path %s", i, s.Path)
		}
	}
	if got := readAll(t, l, 0); !bytes.Equal(got, want) {
		t.Fatal("bytes across segments differ")
	}
	// A batch bigger than segment.bytes is refused.
	big := testBatch(1, int(cfg.SegmentBytes), 1)
	if _, err := l.Append(big, 0); !errors.Is(err, ErrBatchTooLarge) {
		t.Fatalf("oversized batch: %v", err)
	}
}

func TestRollByTimeAndIndexFull(t *testing.T) {
	t.Run("segment.ms by batch timestamp", func(t *testing.T) {
		cfg := testConfig(vfs.NewMemFS())
		cfg.SegmentMs = time.Hour
		l := mustOpen(t, "/p", cfg)
		defer l.Close()
		mustAppend(t, l, testBatch(1, 1, 1_000_000), 0)
		mustAppend(t, l, testBatch(1, 1, 1_000_000+3_600_000), 0) // exactly segment.ms: no roll
		if n := len(l.Segments()); n != 1 {
			t.Fatalf("rolled too early: %d segments", n)
		}
		mustAppend(t, l, testBatch(1, 1, 1_000_000+3_600_001), 0)
		if n := len(l.Segments()); n != 2 {
			t.Fatalf("%d segments after segment.ms passed", n)
		}
	})
	t.Run("segment.ms by wall clock without timestamps", func(t *testing.T) {
		now := fixedNow
		cfg := testConfig(vfs.NewMemFS())
		cfg.SegmentMs = time.Minute
		cfg.Now = func() time.Time { return now }
		l := mustOpen(t, "/p", cfg)
		defer l.Close()
		mustAppend(t, l, testBatch(1, 1, -1), 0) // NO_TIMESTAMP
		now = now.Add(2 * time.Minute)
		mustAppend(t, l, testBatch(1, 1, -1), 0)
		if n := len(l.Segments()); n != 2 {
			t.Fatalf("%d segments", n)
		}
	})
	t.Run("index full", func(t *testing.T) {
		cfg := testConfig(vfs.NewMemFS())
		cfg.SegmentIndexBytes = 3 * timeIndexEntrySize // 4 offset entries, 2 time entries + the final one
		cfg.IndexIntervalBytes = 0                     // an entry per batch (after the first)
		l := mustOpen(t, "/p", cfg)
		defer l.Close()
		for i := 0; i < 20; i++ {
			mustAppend(t, l, testBatch(1, 10, int64(i)), 0)
		}
		segs := l.Segments()
		if len(segs) < 5 {
			t.Fatalf("only %d segments with a tiny index", len(segs))
		}
		for _, s := range segs[:len(segs)-1] {
			if n := s.NextOffset - s.BaseOffset; n > 3 {
				t.Errorf("segment %d holds %d batches with room for 2 time entries before the final one", s.BaseOffset, n)
			}
		}
		if got := readAll(t, l, 0); len(got) != 20*len(testBatch(1, 10, 0)) {
			t.Fatalf("read %d bytes", len(got))
		}
	})
}

func TestIndexLookupAndTimestamps(t *testing.T) {
	cfg := testConfig(vfs.NewMemFS())
	cfg.IndexIntervalBytes = 1000
	cfg.SegmentBytes = 50_000
	l := mustOpen(t, "/p", cfg)
	var batches [][]byte
	for i := 0; i < 300; i++ {
		b := testBatch(1+i%5, 50+i%200, int64(1000+10*i))
		mustAppend(t, l, b, 0)
		batches = append(batches, b)
	}
	check := func(l *Log) {
		t.Helper()
		if len(l.Segments()) < 3 {
			t.Fatalf("want several segments, have %d", len(l.Segments()))
		}
		for _, b := range batches {
			h := BatchHeader(b)
			for _, off := range []int64{h.BaseOffset(), h.LastOffset()} {
				r, err := l.Read(off, ReadOptions{MaxBytes: 1, MinOneBatch: true})
				if err != nil {
					t.Fatal(err)
				}
				if !bytes.Equal(r.Data, b) {
					t.Fatalf("Read(%d) returned batch at %d", off, BatchHeader(r.Data).BaseOffset())
				}
			}
			// Record j of batch i has timestamp 1000+10i+j: the max is its last record.
			off, ts, ok, err := l.OffsetForTimestamp(h.MaxTimestamp())
			if err != nil || !ok || off != h.LastOffset() || ts != h.MaxTimestamp() {
				t.Fatalf("OffsetForTimestamp(%d) = %d %d %v %v, want %d", h.MaxTimestamp(), off, ts, ok, err, h.LastOffset())
			}
			if off, _, _, _ := l.OffsetForTimestamp(h.FirstTimestamp()); off != h.BaseOffset() {
				t.Fatalf("OffsetForTimestamp(first %d) = %d, want %d", h.FirstTimestamp(), off, h.BaseOffset())
			}
		}
		if _, _, ok, _ := l.OffsetForTimestamp(1 << 40); ok {
			t.Fatal("timestamp beyond all batches found something")
		}
		if off, _, ok, _ := l.OffsetForTimestamp(0); !ok || off != 0 {
			t.Fatalf("timestamp 0 -> %d %v", off, ok)
		}
		last := BatchHeader(batches[len(batches)-1])
		if off, ts := l.MaxTimestamp(); ts != last.MaxTimestamp() || off != last.LastOffset() {
			t.Fatalf("MaxTimestamp = %d@%d", ts, off)
		}
	}
	check(l)
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	l = mustOpen(t, "/p", cfg) // clean reopen: indexes from files
	check(l)
	l.Close()
}

func TestCorruptIndexIsRebuilt(t *testing.T) {
	dir := t.TempDir()
	cfg := testConfig(vfs.OS)
	cfg.SegmentBytes = 4000
	cfg.IndexIntervalBytes = 100
	l := mustOpen(t, dir, cfg)
	var want []byte
	for i := 0; i < 40; i++ {
		b := testBatch(2, 100, int64(i))
		mustAppend(t, l, b, 0)
		want = append(want, b...)
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	// Scribble over the first segment's index (entries now point nowhere) and
	// truncate the second's time index to a partial entry.
	idx := filepath.Join(dir, "00000000000000000000.index")
	if err := os.WriteFile(idx, bytes.Repeat([]byte{0x7f}, 16), 0o644); err != nil {
		t.Fatal(err)
	}
	segs := l.Segments()
	tix := filepath.Join(dir, filepath.Base(segs[1].Path[:len(segs[1].Path)-4])+".timeindex")
	if err := os.WriteFile(tix, []byte{1, 2, 3}, 0o644); err != nil {
		t.Fatal(err)
	}
	os.Remove(filepath.Join(dir, filepath.Base(segs[2].Path[:len(segs[2].Path)-4])+".index"))
	l = mustOpen(t, dir, cfg)
	defer l.Close()
	if got := readAll(t, l, 0); !bytes.Equal(got, want) {
		t.Fatal("data differs after index rebuild")
	}
	for i := int64(0); i < l.EndOffset(); i += 7 {
		r, err := l.Read(i, ReadOptions{MaxBytes: 1, MinOneBatch: true})
		if err != nil || BatchHeader(r.Data).LastOffset() < i || BatchHeader(r.Data).BaseOffset() > i {
			t.Fatalf("Read(%d) after rebuild: %v", i, err)
		}
	}
	b, err := os.ReadFile(idx)
	if err != nil || len(b)%indexEntrySize != 0 || bytes.Equal(b, bytes.Repeat([]byte{0x7f}, 16)) {
		t.Fatalf("index file not rewritten: %d bytes, %v", len(b), err)
	}
}

func TestLazyIndexesBoundedAndChecked(t *testing.T) {
	fsys := vfs.NewMemFS()
	cfg := testConfig(fsys)
	cfg.SegmentBytes = 2000
	cfg.IndexIntervalBytes = 0
	l := mustOpen(t, "/p", cfg)
	var all [][]byte
	for i := 0; i < 200; i++ {
		b := testBatch(1, 100, int64(i))
		mustAppend(t, l, b, 0)
		all = append(all, b)
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	// Break the middle of segment 1's index (its last entry stays valid, so only
	// the lazy load's full check can notice).
	segs := l.Segments()
	ip := segs[1].Path[:len(segs[1].Path)-len(".log")] + ".index"
	b, err := vfs.ReadFile(fsys, ip)
	if err != nil || len(b) < 3*indexEntrySize {
		t.Fatalf("index of segment 1: %d bytes, %v", len(b), err)
	}
	copy(b[indexEntrySize:], []byte{0x7f, 0, 0, 0, 0x7f, 0, 0, 0})
	if err := vfs.WriteFileAtomic(fsys, ip, b); err != nil {
		t.Fatal(err)
	}
	l = mustOpen(t, "/p", cfg)
	defer l.Close()
	countLoaded := func() int {
		l.idxMu.Lock()
		defer l.idxMu.Unlock()
		n := 0
		for _, s := range l.segs {
			if s.closed && s.loaded {
				n++
			}
		}
		return n
	}
	if n := countLoaded(); n != 0 {
		t.Fatalf("%d closed segments' indexes loaded at open", n)
	}
	for i, want := range all {
		r, err := l.Read(int64(i), ReadOptions{MaxBytes: 1, MinOneBatch: true})
		if err != nil || !bytes.Equal(r.Data, want) {
			t.Fatalf("Read(%d): %v", i, err)
		}
		if n := countLoaded(); n > maxLoadedClosed {
			t.Fatalf("%d closed segments' indexes in memory, cap %d", n, maxLoadedClosed)
		}
	}
}

// checkIndexSizes fails t when an index file in dir is larger than
// segment.index.bytes rounded down to whole entries.
func checkIndexSizes(t *testing.T, fsys vfs.FS, dir string, indexBytes int) {
	t.Helper()
	des, err := fsys.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, de := range des {
		limit := 0
		switch filepath.Ext(de.Name()) {
		case indexSuffix:
			limit = indexBytes / indexEntrySize * indexEntrySize
		case timeIndexSuffix:
			limit = indexBytes / timeIndexEntrySize * timeIndexEntrySize
		default:
			continue
		}
		st, err := fsys.Stat(filepath.Join(dir, de.Name()))
		if err != nil {
			t.Fatal(err)
		}
		if st.Size() > int64(limit) {
			t.Errorf("%s is %d bytes, segment.index.bytes %d allows %d", de.Name(), st.Size(), indexBytes, limit)
		}
	}
}

// TestTimeIndexKeepsSlotForFinalEntry: as Kafka's TimeIndex.isFull, the time
// index counts as full one entry early, so the entry a roll (or Close) adds
// for the segment's maximum timestamp never takes it past segment.index.bytes.
func TestTimeIndexKeepsSlotForFinalEntry(t *testing.T) {
	for _, indexBytes := range []int{12, 24, 36, 40, 100} {
		for _, interval := range []int{0, 150, 1000} {
			t.Run(fmt.Sprint(indexBytes, "/", interval), func(t *testing.T) {
				fsys := vfs.NewMemFS()
				cfg := testConfig(fsys)
				cfg.SegmentIndexBytes = indexBytes
				cfg.IndexIntervalBytes = interval
				l := mustOpen(t, "/p", cfg)
				for i := 0; i < 120; i++ {
					// Timestamps grow with every batch, so the final entry
					// of a segment is new unless its last batch was indexed.
					b := testBatch(1+i%3, 40+i%70, int64(100*i))
					if i%4 == 3 { // two batches in one append
						b = append(b, testBatch(1, 30, int64(100*i+50))...)
					}
					mustAppend(t, l, b, 0)
					if i%25 == 24 {
						if err := l.Close(); err != nil {
							t.Fatal(err)
						}
						checkIndexSizes(t, fsys, "/p", indexBytes)
						l = mustOpen(t, "/p", cfg)
					}
				}
				if len(l.Segments()) < 3 {
					t.Fatalf("%d segments: the index never filled", len(l.Segments()))
				}
				checkIndexSizes(t, fsys, "/p", indexBytes)
				if err := l.Close(); err != nil {
					t.Fatal(err)
				}
				checkIndexSizes(t, fsys, "/p", indexBytes)
				// Recovery rebuilds every segment's indexes, here under a
				// smaller index.interval.bytes than they were written with.
				if err := writeOffsetCheckpoint(fsys, "/p", recoveryPointFile, kindRecoveryPoint, 0); err != nil {
					t.Fatal(err)
				}
				if err := fsys.Remove("/p/" + cleanShutdownFile); err != nil {
					t.Fatal(err)
				}
				cfg.IndexIntervalBytes = 0
				l = mustOpen(t, "/p", cfg)
				defer l.Close()
				checkIndexSizes(t, fsys, "/p", indexBytes)
				for _, s := range l.Segments() {
					if s.Closed {
						if off, ts, ok, err := l.OffsetForTimestamp(s.MaxTimestamp); err != nil || !ok || ts != s.MaxTimestamp || off >= s.NextOffset {
							t.Fatalf("OffsetForTimestamp(%d) = %d %d %v %v in segment %d", s.MaxTimestamp, off, ts, ok, err, s.BaseOffset)
						}
					}
				}
			})
		}
	}
}

// TestOffsetIndexIsSparse pins index.interval.bytes: with batches of S bytes
// and interval N, an entry is added before a batch once more than N bytes
// were written since the last one (Kafka's rule; the first batch is never
// indexed), so entries lie (N/S+1)*S bytes apart, not one per batch, and
// every offset is still found through them.
func TestOffsetIndexIsSparse(t *testing.T) {
	const batches = 200
	size := len(testBatch(2, 100, 0))
	for _, interval := range []int{0, size - 1, size, 3*size + 7, 10 * size} {
		t.Run(fmt.Sprint(interval), func(t *testing.T) {
			fsys := vfs.NewMemFS()
			cfg := testConfig(fsys)
			cfg.IndexIntervalBytes = interval
			l := mustOpen(t, "/p", cfg)
			var all [][]byte
			for i := 0; i < batches; i++ {
				b := testBatch(2, 100, int64(i))
				mustAppend(t, l, b, 0)
				all = append(all, b)
			}
			checkReads := func() {
				t.Helper()
				for off := int64(0); off < l.EndOffset(); off++ {
					r, err := l.Read(off, ReadOptions{MaxBytes: 1, MinOneBatch: true})
					if err != nil || !bytes.Equal(r.Data, all[off/2]) {
						t.Fatalf("Read(%d): %v", off, err)
					}
				}
			}
			checkReads()
			if err := l.Close(); err != nil {
				t.Fatal(err)
			}
			segs := l.Segments()
			b, err := vfs.ReadFile(fsys, segs[0].IndexPath)
			if err != nil || len(segs) != 1 {
				t.Fatalf("%d segments, index: %v", len(segs), err)
			}
			idx, err := decodeOffsetIndex(b, 0, cfg.SegmentIndexBytes/indexEntrySize, segs[0].Size)
			if err != nil {
				t.Fatal(err)
			}
			every := interval/size + 1 // batches from one entry to the next
			if want := (batches - 1) / every; len(idx.entries) != want {
				t.Fatalf("%d index entries for %d batches of %d bytes, want %d", len(idx.entries), batches, size, want)
			}
			for i, e := range idx.entries {
				k := (i + 1) * every // the indexed batch
				if int(e.pos) != k*size || int64(e.rel) != BatchHeader(all[k]).LastOffset() {
					t.Fatalf("entry %d is (offset %d, byte %d), want (%d, %d)", i, e.rel, e.pos, BatchHeader(all[k]).LastOffset(), k*size)
				}
			}
			l = mustOpen(t, "/p", cfg)
			defer l.Close()
			checkReads()
		})
	}
}
