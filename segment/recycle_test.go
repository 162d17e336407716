package segment

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/sediment-io/sediment/segment/vfs"
)

// recycleConfig: small segments of same-size batches, so a reused file's stale
// batches lie exactly where the new segment's next batch will start.
func recycleConfig(fsys vfs.FS) Config {
	cfg := testConfig(fsys)
	cfg.SegmentBytes = 1000
	return cfg
}

// sameBatch is a batch of n records whose size does not depend on anything
// else, so old and new batches line up in a reused file.
func sameBatch(n int) []byte { return testBatch(n, 40, 1_700_000_000_000) }

// poolFiles lists the recycle pool files in dir (names).
func poolFiles(t *testing.T, fsys vfs.FS, dir string) []string {
	t.Helper()
	ents, err := fsys.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, e := range ents {
		if strings.HasSuffix(e.Name(), recycleSuffix) {
			out = append(out, e.Name())
		}
	}
	return out
}

func fileSize(t *testing.T, fsys vfs.FS, path string) int64 {
	t.Helper()
	st, err := fsys.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	return st.Size()
}

// fillSegments appends same-size batches until the log has n closed segments.
func fillSegments(t *testing.T, l *Log, n int) {
	t.Helper()
	for len(l.Segments()) <= n {
		mustAppend(t, l, sameBatch(2), 1)
	}
}

// checkFilesMatchData asserts every segment's file is exactly its data (the
// rule for closed segments and for a cleanly closed log).
func checkFilesMatchData(t *testing.T, fsys vfs.FS, l *Log, closedOnly bool) {
	t.Helper()
	for _, s := range l.Segments() {
		if closedOnly && !s.Closed {
			continue
		}
		if got := fileSize(t, fsys, s.Path); got != s.Size {
			t.Fatalf("segment %d: file is %d bytes, data %d (closed %v)", s.BaseOffset, got, s.Size, s.Closed)
		}
	}
}

func TestRecyclePoolReuse(t *testing.T) {
	fsys := vfs.NewMemFS()
	l := mustOpen(t, "/p", recycleConfig(fsys))
	defer l.Close()
	fillSegments(t, l, 3)
	segs := l.Segments()
	old, err := vfs.ReadFile(fsys, segs[0].Path)
	if err != nil {
		t.Fatal(err)
	}
	if err := l.SetStartOffset(segs[1].BaseOffset); err != nil {
		t.Fatal(err)
	}
	want := fmt.Sprintf("%020d%s", segs[0].NextOffset, recycleSuffix) // named by its bound
	if got := poolFiles(t, fsys, "/p"); len(got) != 1 || got[0] != want {
		t.Fatalf("pool %v, want [%s]", got, want)
	}
	if _, err := fsys.Stat(segs[0].Path); err == nil {
		t.Fatal("deleted segment's .log still there")
	}
	for _, suf := range []string{indexSuffix, timeIndexSuffix} {
		if _, err := fsys.Stat(segPath("/p", segs[0].BaseOffset, suf)); err == nil {
			t.Fatalf("deleted segment's %s still there (index files are not recycled)", suf)
		}
	}
	// The next roll takes the pool file: the new active segment's file holds
	// the old segment's bytes, of which none is served.
	if err := l.Roll(); err != nil {
		t.Fatal(err)
	}
	if l.reused != 1 || len(poolFiles(t, fsys, "/p")) != 0 {
		t.Fatalf("roll did not take the pool file (reused %d, pool %v)", l.reused, poolFiles(t, fsys, "/p"))
	}
	act := l.Segments()[len(l.Segments())-1]
	if b, _ := vfs.ReadFile(fsys, act.Path); !bytes.Equal(b, old) {
		t.Fatal("new segment's file is not the recycled one")
	}
	checkFilesMatchData(t, fsys, l, true)
	if r, err := l.Read(act.BaseOffset, ReadOptions{MaxBytes: 1 << 20}); err != nil || len(r.Data) != 0 {
		t.Fatalf("read of the empty recycled segment: %d bytes, %v", len(r.Data), err)
	}
	b := sameBatch(1)
	mustAppend(t, l, b, 1)
	// The overwrite keeps the old size, unless the zeros padding it to a page
	// boundary reach past it.
	if got, want := fileSize(t, fsys, act.Path), max(int64(len(old)), (int64(len(b))+pageSize-1)/pageSize*pageSize); got != want {
		t.Fatalf("file size %d after overwriting the first %d bytes of a %d-byte file, want %d", got, len(b), len(old), want)
	}
	r, err := l.Read(act.BaseOffset, ReadOptions{MaxBytes: 1 << 20})
	if err != nil || !bytes.Equal(r.Data, b) {
		t.Fatalf("read served %d bytes (want exactly the one new batch of %d), %v", len(r.Data), len(b), err)
	}
	var n int
	if err := l.ScanBatches(act.BaseOffset, func(BatchHeader) bool { n++; return true }); err != nil || n != 1 {
		t.Fatalf("ScanBatches saw %d batches, %v", n, err)
	}
	// Rolling trims the stale tail.
	if err := l.Roll(); err != nil {
		t.Fatal(err)
	}
	checkFilesMatchData(t, fsys, l, true)
}

func TestRecyclePoolCap(t *testing.T) {
	for _, k := range []int{0, 1, 2, 3} {
		t.Run(fmt.Sprint(k), func(t *testing.T) {
			fsys := vfs.NewMemFS()
			cfg := recycleConfig(fsys)
			cfg.RecycleSegments = k
			l := mustOpen(t, "/p", cfg)
			defer l.Close()
			fillSegments(t, l, 5)
			segs := l.Segments()
			if err := l.SetStartOffset(segs[4].BaseOffset); err != nil { // deletes 4
				t.Fatal(err)
			}
			got := poolFiles(t, fsys, "/p")
			if len(got) != min(k, 4) {
				t.Fatalf("pool %v, want %d files", got, min(k, 4))
			}
			for i, name := range got { // the lowest bounds are kept
				if want := fmt.Sprintf("%020d%s", segs[i].NextOffset, recycleSuffix); name != want {
					t.Fatalf("pool %v, want the %d lowest bounds", got, k)
				}
			}
			ents, _ := fsys.ReadDir("/p")
			var logs int
			for _, e := range ents {
				if filepath.Ext(e.Name()) == logSuffix {
					logs++
				}
			}
			if logs != len(l.Segments()) {
				t.Fatalf("%d .log files for %d segments", logs, len(l.Segments()))
			}
		})
	}
	if err := (Config{SegmentBytes: 100, SegmentMs: 1e9, SegmentIndexBytes: 100, RecycleSegments: -1}).Validate(); err == nil {
		t.Fatal("negative RecycleSegments accepted")
	}
	if DefaultConfig().RecycleSegments < 1 {
		t.Fatal("recycling is not on by default")
	}
}

// TestRecycleRefusedAtOrBelowBound: after a truncation the pool holds files
// with batches at offsets the log will assign again; reusing one for a segment
// whose base is below its bound would let a stale batch carry exactly the next
// expected offset, so recovery would resurrect truncated records. Such files
// are removed instead, and a crash cannot bring the truncated batches back.
func TestRecycleRefusedAtOrBelowBound(t *testing.T) {
	fsys := vfs.NewMemFS()
	cfg := recycleConfig(fsys)
	l := mustOpen(t, "/p", cfg)
	fillSegments(t, l, 3)
	segs := l.Segments()
	// Truncate into segment 1: segments 2 and 3 (the active) go to the pool.
	cut := segs[1].BaseOffset + 2
	if err := l.TruncateTo(cut); err != nil {
		t.Fatal(err)
	}
	if got := poolFiles(t, fsys, "/p"); len(got) != 2 {
		t.Fatalf("pool after truncation %v", got)
	}
	// Append the same batches again: the next roll creates a segment at
	// segs[2].BaseOffset, below both pool files' bounds.
	for l.EndOffset() < segs[2].BaseOffset {
		mustAppend(t, l, sameBatch(2), 1)
	}
	if err := l.Roll(); err != nil {
		t.Fatal(err)
	}
	act := l.Segments()[len(l.Segments())-1]
	if act.BaseOffset != segs[2].BaseOffset {
		t.Fatalf("new segment at %d, want %d", act.BaseOffset, segs[2].BaseOffset)
	}
	if l.reused != 0 || len(poolFiles(t, fsys, "/p")) != 0 {
		t.Fatalf("a pool file with a bound above the new base was reused (%d) or kept (%v)", l.reused, poolFiles(t, fsys, "/p"))
	}
	if fileSize(t, fsys, act.Path) != 0 {
		t.Fatal("new segment did not start in a new file")
	}
	b := sameBatch(2)
	mustAppend(t, l, b, 1)
	end := l.EndOffset()
	fsys.Crash()
	l = mustOpen(t, "/p", cfg)
	defer l.Close()
	if l.EndOffset() != end {
		t.Fatalf("after the crash the log ends at %d, want %d (truncated batches resurrected?)", l.EndOffset(), end)
	}
}

// TestRecycleResetLocal: ResetLocal past the old end reuses the dropped files;
// back below it does not.
func TestRecycleResetLocal(t *testing.T) {
	fsys := vfs.NewMemFS()
	cfg := recycleConfig(fsys)
	l := mustOpen(t, "/p", cfg)
	defer l.Close()
	fillSegments(t, l, 2)
	end := l.EndOffset()
	if err := l.ResetLocal(end+100, end+100); err != nil {
		t.Fatal(err)
	}
	if l.reused != 1 {
		t.Fatalf("reset past the end reused %d files, want 1", l.reused)
	}
	b := sameBatch(1)
	mustAppend(t, l, b, 2)
	if got := readAll(t, l, end+100); !bytes.Equal(got, b) {
		t.Fatal("after a reset into a recycled file the log serves more than it holds")
	}
	if err := l.ResetLocal(5, 5); err != nil {
		t.Fatal(err)
	}
	if l.reused != 1 || len(poolFiles(t, fsys, "/p")) != 0 {
		t.Fatalf("reset below the pool's bounds reused (%d) or kept (%v) a file", l.reused, poolFiles(t, fsys, "/p"))
	}
}

func TestRecyclePoolAdoptedAtOpen(t *testing.T) {
	fsys := vfs.NewMemFS()
	cfg := recycleConfig(fsys)
	l := mustOpen(t, "/p", cfg)
	fillSegments(t, l, 2)
	end := l.EndOffset()
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{
		fmt.Sprintf("%020d%s", 7, recycleSuffix), fmt.Sprintf("%020d%s", 3, recycleSuffix),
		fmt.Sprintf("%020d%s", 9, recycleSuffix), "junk" + recycleSuffix,
	} {
		if err := vfs.WriteFileAtomic(fsys, filepath.Join("/p", name), sameBatch(1)); err != nil {
			t.Fatal(err)
		}
	}
	l = mustOpen(t, "/p", cfg)
	want := []string{fmt.Sprintf("%020d%s", 3, recycleSuffix), fmt.Sprintf("%020d%s", 7, recycleSuffix)}
	if got := poolFiles(t, fsys, "/p"); fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("pool after Open %v, want %v (the K lowest bounds; bad names removed)", got, want)
	}
	if l.EndOffset() != end || len(l.Segments()) != 3 {
		t.Fatalf("pool files changed the log: end %d segments %d", l.EndOffset(), len(l.Segments()))
	}
	if err := l.Roll(); err != nil { // empty active: no-op
		t.Fatal(err)
	}
	mustAppend(t, l, sameBatch(1), 1)
	if err := l.Roll(); err != nil {
		t.Fatal(err)
	}
	if l.reused == 0 || len(poolFiles(t, fsys, "/p")) != 2-l.reused {
		t.Fatalf("adopted pool not used: reused %d, pool %v", l.reused, poolFiles(t, fsys, "/p"))
	}
	l.Close()
	cfg.RecycleSegments = 0
	l = mustOpen(t, "/p", cfg)
	defer l.Close()
	if got := poolFiles(t, fsys, "/p"); len(got) != 0 {
		t.Fatalf("recycling off, but Open kept %v", got)
	}
}

// TestRecycleCrashStaleTail: crashes of a log whose active segment is a reused
// file: before the first write, after some synced writes (the stale bytes
// after them are whole valid batches with old offsets, exactly aligned), with
// an unsynced overwrite torn, or with garbage in the stale part. Every
// acknowledged batch comes back, nothing else, and the file is cut to the data.
func TestRecycleCrashStaleTail(t *testing.T) {
	for _, tc := range []struct {
		name    string
		synced  int // batches appended and acknowledged after the reuse
		pending int // batches written (FlushOS) but not synced
		garbage bool
		crash   func(*vfs.MemFS)
	}{
		{"before-first-write", 0, 0, false, (*vfs.MemFS).Crash},
		{"stale-valid-batches", 2, 0, false, (*vfs.MemFS).Crash},
		{"stale-garbage", 2, 0, true, (*vfs.MemFS).Crash},
		{"unsynced-overwrite-lost", 1, 2, false, (*vfs.MemFS).Crash},
		{"unsynced-overwrite-torn", 1, 2, false, func(m *vfs.MemFS) { m.CrashKeep(vfs.TearLast(30)) }},
		{"unsynced-overwrite-pages", 1, 3, false, func(m *vfs.MemFS) {
			m.CrashPages(64, func(_ string, p int) bool { return p%3 != 1 })
		}},
		{"unsynced-overwrite-kept", 1, 2, false, func(m *vfs.MemFS) { m.CrashKeep(func(_ string, b []byte) []byte { return b }) }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			fsys := vfs.NewMemFS()
			cfg := recycleConfig(fsys)
			l := mustOpen(t, "/p", cfg)
			fillSegments(t, l, 3)
			segs := l.Segments()
			if err := l.SetStartOffset(segs[1].BaseOffset); err != nil {
				t.Fatal(err)
			}
			if tc.garbage {
				pf := filepath.Join("/p", poolFiles(t, fsys, "/p")[0])
				f, err := fsys.OpenFile(pf, 2, 0)
				if err != nil {
					t.Fatal(err)
				}
				junk := bytes.Repeat([]byte{0xA5}, 400)
				f.WriteAt(junk, 100)
				f.Sync()
				f.Close()
			}
			if err := l.Roll(); err != nil {
				t.Fatal(err)
			}
			if l.reused != 1 {
				t.Fatal("no reuse")
			}
			var acked []byte
			for _, s := range l.Segments()[:len(l.Segments())-1] {
				r, err := l.Read(max(s.BaseOffset, l.StartOffset()), ReadOptions{MaxBytes: 1 << 20})
				if err != nil {
					t.Fatal(err)
				}
				acked = append(acked, r.Data...)
			}
			for i := 0; i < tc.synced; i++ {
				b := sameBatch(2)
				mustAppend(t, l, b, 1)
				acked = append(acked, b...)
			}
			written := append([]byte(nil), acked...)
			if tc.pending > 0 {
				c := l.Config()
				c.FlushPolicy = FlushOS
				if err := l.SetConfig(c); err != nil {
					t.Fatal(err)
				}
				for i := 0; i < tc.pending; i++ {
					b := sameBatch(2)
					mustAppend(t, l, b, 1)
					written = append(written, b...)
				}
			}
			start := l.StartOffset()
			tc.crash(fsys)
			l = mustOpen(t, "/p", cfg)
			defer l.Close()
			got := readAll(t, l, start)
			if len(got) < len(acked) || !bytes.Equal(got[:len(acked)], acked) {
				t.Fatalf("recovered %d bytes; the %d acknowledged are not all there byte-identical", len(got), len(acked))
			}
			if !bytes.HasPrefix(written, got) {
				t.Fatalf("recovered %d bytes that were not written (stale data served)", len(got))
			}
			if _, err := SplitBatches(got); err != nil {
				t.Fatal(err)
			}
			checkFilesMatchData(t, fsys, l, false)
		})
	}
}

// TestRecycleFaultSweep fails the k-th file-system operation of each kind
// during a steady-state workload (appends, rolls, retention: every step of the
// pool dance, rename into the pool, rename out of it, first write, trim), lets
// it run on, then crashes (pages of unsynced writes landing at random) and
// reopens: Open succeeds, every acknowledged batch is there byte-identical,
// and nothing that was not written is served.
func TestRecycleFaultSweep(t *testing.T) {
	ops := []vfs.Op{vfs.OpOpen, vfs.OpWrite, vfs.OpSync, vfs.OpTruncate, vfs.OpRemove, vfs.OpRename, vfs.OpSyncDir, vfs.OpStat}
	reused := 0
	for _, op := range ops {
		for k := 1; k <= 16; k++ {
			fsys := vfs.NewMemFS()
			cfg := recycleConfig(fsys)
			var n atomic.Int32
			fsys.SetInjector(func(o vfs.Op, name string) error {
				if o == op && n.Add(1) == int32(k) {
					return syscall.EIO
				}
				return nil
			})
			var batches [][]byte // acknowledged, from offset 0
			start := int64(0)
			if l, err := Open("/p", cfg); err == nil {
				for i := 0; i < 40; i++ {
					b := sameBatch(2)
					if _, err := l.Append(b, 1); err == nil {
						batches = append(batches, b)
					}
					if i%6 == 5 {
						if err := l.SetStartOffset(l.EndOffset() - 8); err == nil {
							start = l.EndOffset() - 8
						}
					}
				}
				reused += l.reused
				l.Close()
			}
			fsys.SetInjector(nil)
			rng := rand.New(rand.NewPCG(uint64(op), uint64(k)))
			fsys.CrashPages(64, func(string, int) bool { return rng.IntN(2) == 0 })
			l, err := Open("/p", cfg)
			if err != nil {
				t.Fatalf("%v #%d: reopen: %v", op, k, err)
			}
			var want []byte
			for _, b := range batches {
				if BatchHeader(b).LastOffset() >= max(start, l.StartOffset()) {
					want = append(want, b...)
				}
			}
			got := readAll(t, l, max(start, l.StartOffset()))
			if !bytes.Equal(got, want) {
				t.Fatalf("%v #%d: recovered %d bytes, acknowledged %d (start %d, log start %d)", op, k, len(got), len(want), start, l.StartOffset())
			}
			l.Close()
		}
	}
	if reused == 0 {
		t.Fatal("the workload never reused a file")
	}
}

// TestRecycleRandomCrashes is the model-based property test with recycling in
// play: random appends (durable or not), retention, rolls, truncations,
// resets, clean reopens and crashes of every kind (unsynced pages lost, torn,
// garbled). After each crash the log holds every acknowledged batch
// byte-identical and nothing that was not written; after each clean close
// every segment file is exactly its data.
func TestRecycleRandomCrashes(t *testing.T) {
	totalReused := 0
	for seed := uint64(1); seed <= 30; seed++ {
		t.Run(fmt.Sprint(seed), func(t *testing.T) {
			rng := rand.New(rand.NewPCG(seed, 4242))
			fsys := vfs.NewMemFS()
			cfg := testConfig(fsys)
			cfg.SegmentBytes = int64(1100 + rng.IntN(2500))
			cfg.IndexIntervalBytes = rng.IntN(600)
			cfg.RecycleSegments = 1 + rng.IntN(3)
			l := mustOpen(t, "/p", cfg)
			// The model: batches from the log start on, and how many of them
			// are acknowledged durable.
			var batches [][]byte
			acked := 0
			start := int64(0)
			end := func() int64 {
				if len(batches) == 0 {
					return l.EndOffset()
				}
				return BatchHeader(batches[len(batches)-1]).LastOffset() + 1
			}
			reopen := func(crash bool) {
				if crash {
					switch rng.IntN(4) {
					case 0:
						fsys.Crash()
					case 1:
						fsys.CrashKeep(garble(rng))
					case 2:
						fsys.CrashKeep(vfs.TearLast(1 + rng.IntN(200)))
					case 3:
						fsys.CrashPages(1<<(5+rng.IntN(5)), func(string, int) bool { return rng.IntN(2) == 0 })
					}
				} else {
					if err := l.Close(); err != nil {
						t.Fatal(err)
					}
				}
				reused := l.reused
				var err error
				if l, err = Open("/p", cfg); err != nil {
					t.Fatalf("reopen (crash %v): %v", crash, err)
				}
				l.reused = reused
				if !crash {
					checkFilesMatchData(t, fsys, l, false)
				}
				got := readAll(t, l, l.StartOffset())
				if l.StartOffset() != start {
					t.Fatalf("start %d after reopen, model %d", l.StartOffset(), start)
				}
				var want []byte
				for i, b := range batches {
					if i < acked {
						want = append(want, b...)
					}
				}
				if len(got) < len(want) || !bytes.Equal(got[:len(want)], want) {
					t.Fatalf("recovered %d bytes: the %d acknowledged are not all there, byte-identical", len(got), len(want))
				}
				// Beyond the acknowledged part: whole batches that were written (the
				// leader epoch field aside, which the CRC does not cover).
				pos, i := len(want), acked
				for pos < len(got) {
					if i >= len(batches) {
						t.Fatalf("recovered %d bytes, more than was written (stale data)", len(got))
					}
					b := batches[i]
					g := got[pos:min(pos+len(b), len(got))]
					if len(g) != len(b) || !bytes.Equal(g[offMagic:], b[offMagic:]) || !bytes.Equal(g[:offLeaderEpoch], b[:offLeaderEpoch]) {
						t.Fatalf("recovered batch %d differs from what was written", i)
					}
					pos += len(b)
					i++
				}
				batches = batches[:i]
				acked = i
				if i > 0 {
					// What survived is the log now (its epoch field as recovered).
					hs, _ := SplitBatches(got)
					p := 0
					for j := range batches {
						batches[j] = got[p : p+hs[j].Size()]
						p += hs[j].Size()
					}
				}
				if l.EndOffset() != end() {
					t.Fatalf("end %d after reopen, model %d", l.EndOffset(), end())
				}
			}
			durable := true
			for op := 0; op < 250; op++ {
				switch k := rng.IntN(20); {
				case k < 11:
					b := testBatch(1+rng.IntN(4), rng.IntN(250), int64(op))
					if _, err := l.Append(b, 1); err != nil {
						t.Fatal(err)
					}
					batches = append(batches, b)
					if durable {
						acked = len(batches)
					}
				case k == 11:
					durable = !durable
					c := l.Config()
					c.FlushPolicy = FlushAlways
					if !durable {
						c.FlushPolicy = FlushOS
					}
					if err := l.SetConfig(c); err != nil {
						t.Fatal(err)
					}
				case k < 15 && len(batches) > 2: // retention below a trailing window
					i := len(batches) - 1 - rng.IntN(min(len(batches), 6))
					off := BatchHeader(batches[i]).BaseOffset()
					if err := l.SetStartOffset(off); err != nil {
						t.Fatal(err)
					}
					if off > start {
						start = off
						acked -= min(acked, i)
						batches = batches[i:]
					}
				case k == 15:
					if err := l.Roll(); err != nil {
						t.Fatal(err)
					}
					acked = len(batches) // a roll syncs the closed segment
				case k == 16 && len(batches) > 0:
					i := rng.IntN(len(batches))
					off := BatchHeader(batches[i]).BaseOffset()
					if err := l.TruncateTo(off); err != nil {
						t.Fatal(err)
					}
					if off <= start {
						batches, start = nil, off
					} else {
						batches = batches[:i]
					}
					acked = min(acked, len(batches))
					// Truncation syncs what remains.
					acked = len(batches)
				case k == 17 && rng.IntN(4) == 0:
					to := end() + int64(rng.IntN(50))
					if err := l.ResetLocal(to, to); err != nil {
						t.Fatal(err)
					}
					batches, acked, start = nil, 0, to
				case k == 18:
					reopen(false)
					acked = len(batches)
				case k == 19:
					reopen(true)
				}
				if l.StartOffset() != start || l.EndOffset() != end() {
					t.Fatalf("op %d: start/end %d/%d, model %d/%d", op, l.StartOffset(), l.EndOffset(), start, end())
				}
			}
			reopen(true)
			totalReused += l.reused
			l.Close()
		})
	}
	if totalReused < 30 {
		t.Fatalf("only %d reuses over all seeds: the test does not exercise recycling", totalReused)
	}
	t.Logf("%d files reused", totalReused)
}

// TestCleanShutdownFileSizeIsDataSize: after a workload that reuses files,
// a clean close leaves every segment file exactly its data, the reopened
// log trusts it (no scan) and every closed segment's file matches too.
func TestCleanShutdownFileSizeIsDataSize(t *testing.T) {
	fsys := vfs.NewMemFS()
	cfg := recycleConfig(fsys)
	l := mustOpen(t, "/p", cfg)
	for i := 0; i < 60; i++ {
		mustAppend(t, l, sameBatch(1+i%3), 1)
		if i%7 == 6 {
			if err := l.SetStartOffset(l.EndOffset() - 10); err != nil {
				t.Fatal(err)
			}
			checkFilesMatchData(t, fsys, l, true)
		}
	}
	if err := l.SetStartOffset(l.EndOffset() - 10); err != nil {
		t.Fatal(err)
	}
	if err := l.Roll(); err != nil {
		t.Fatal(err)
	}
	mustAppend(t, l, sameBatch(1), 1)
	if l.reused == 0 {
		t.Fatal("no file reused")
	}
	act := l.Segments()[len(l.Segments())-1]
	if fileSize(t, fsys, act.Path) <= act.Size {
		t.Fatalf("the active segment's reused file (%d bytes) should hold stale bytes past its %d of data; the test lost its point", fileSize(t, fsys, act.Path), act.Size)
	}
	want := readAll(t, l, l.StartOffset())
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	ents, _ := fsys.ReadDir("/p")
	sizes := map[string]int64{}
	for _, e := range ents {
		if filepath.Ext(e.Name()) == logSuffix {
			st, _ := e.Info()
			sizes[e.Name()] = st.Size()
		}
	}
	l = mustOpen(t, "/p", cfg)
	defer l.Close()
	var names []string
	for _, s := range l.Segments() {
		names = append(names, filepath.Base(s.Path))
		if sizes[filepath.Base(s.Path)] != s.Size {
			t.Fatalf("segment %d: file %d bytes after a clean close, data %d", s.BaseOffset, sizes[filepath.Base(s.Path)], s.Size)
		}
	}
	sort.Strings(names)
	if len(names) != len(sizes) {
		t.Fatalf("segments %v, .log files %v", names, sizes)
	}
	if got := readAll(t, l, l.StartOffset()); !bytes.Equal(got, want) {
		t.Fatal("contents changed across a clean reopen")
	}
	if !errors.Is(l.Err(), nil) {
		t.Fatal(l.Err())
	}
}

// TestRecycleNotFromRecoveryDrops: segments Open removes after a corrupt one
// have unknown contents (never scanned), so they are removed, not pooled: a
// pool file named by a guessed bound could hold batches at exactly the
// offsets the log assigns again, which a crash before the first overwrite
// would resurrect.
func TestRecycleNotFromRecoveryDrops(t *testing.T) {
	fsys := vfs.NewMemFS()
	cfg := recycleConfig(fsys)
	l := mustOpen(t, "/p", cfg)
	fillSegments(t, l, 5)
	segs := l.Segments()
	crashAt(t, l, fsys, segs[1].BaseOffset) // after the checkpointer settles: ours stays the last word
	f, err := fsys.OpenFile(segs[2].Path, 2, 0)
	if err != nil {
		t.Fatal(err)
	}
	f.WriteAt([]byte{0xee}, 70) // a corrupt byte in segment 2's first batch
	f.Sync()
	f.Close()
	l = mustOpen(t, "/p", cfg)
	if l.EndOffset() != segs[2].BaseOffset {
		t.Fatalf("end %d, want %d", l.EndOffset(), segs[2].BaseOffset)
	}
	if got := poolFiles(t, fsys, "/p"); len(got) != 0 {
		t.Fatalf("Open pooled the files of segments it dropped: %v", got)
	}
	// Reopen (a pool file on disk would be adopted), grow the log again up
	// to where the dropped segments were, roll, and crash before anything is
	// written to the new segment.
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	l = mustOpen(t, "/p", cfg)
	for l.EndOffset() < segs[3].BaseOffset {
		mustAppend(t, l, sameBatch(2), 1)
	}
	if err := l.Roll(); err != nil { // a new segment where segment 3 was
		t.Fatal(err)
	}
	end := l.EndOffset()
	if end != segs[3].BaseOffset {
		t.Fatalf("rolled at %d, want %d", end, segs[3].BaseOffset)
	}
	fsys.Crash()
	l = mustOpen(t, "/p", cfg)
	defer l.Close()
	if l.EndOffset() != end {
		t.Fatalf("after the crash the log ends at %d, want %d (dropped batches resurrected)", l.EndOffset(), end)
	}
}

// TestRecycleCrashAtEveryStep crashes the machine right before the k-th
// file-system operation of a steady-state workload (appends, rolls with
// trims, retention into the pool, new segments out of it), for every k: the
// operation and all later ones never happen, and unsynced pages land at
// random. The reopened log holds every acknowledged batch byte-identical
// from its start on, and nothing that was not written.
func TestRecycleCrashAtEveryStep(t *testing.T) {
	run := func(fsys *vfs.MemFS, cfg Config) (acked, tried [][]byte, start int64, reused int) {
		l, err := Open("/p", cfg)
		if err != nil {
			return nil, nil, 0, 0
		}
		defer l.Close()
		for i := 0; i < 50; i++ {
			b := sameBatch(1 + i%2)
			tried = append(tried, b)
			_, err := l.Append(b, 1)
			settle(l) // the background checkpoint's operations, in a fixed place
			if err != nil {
				return acked, tried, start, l.reused
			}
			acked = append(acked, b)
			if i%5 == 4 {
				s := l.EndOffset() - 6
				if err := l.SetStartOffset(s); err != nil {
					return acked, tried, start, l.reused
				}
				start = s
			}
		}
		return acked, tried, start, l.reused
	}
	// Count the workload's operations once.
	var total atomic.Int32
	{
		fsys := vfs.NewMemFS()
		fsys.SetInjector(func(vfs.Op, string) error { total.Add(1); return nil })
		if _, _, _, reused := run(fsys, recycleConfig(fsys)); reused < 3 {
			t.Fatalf("workload reused %d files", reused)
		}
	}
	for k := int32(1); k <= total.Load(); k++ {
		fsys := vfs.NewMemFS()
		cfg := recycleConfig(fsys)
		rng := rand.New(rand.NewPCG(uint64(k), 3))
		var n atomic.Int32
		var crashed atomic.Bool
		fsys.SetInjector(func(vfs.Op, string) error {
			if crashed.Load() {
				return syscall.EIO
			}
			if n.Add(1) == k {
				crashed.Store(true)
				fsys.CrashPages(1<<(5+rng.IntN(6)), func(string, int) bool { return rng.IntN(2) == 0 })
				return syscall.EIO
			}
			return nil
		})
		acked, tried, start, _ := run(fsys, cfg)
		fsys.SetInjector(nil)
		if !crashed.Load() {
			t.Fatalf("op %d never came", k)
		}
		l, err := Open("/p", cfg)
		if err != nil {
			t.Fatalf("crash before op %d: reopen: %v", k, err)
		}
		from := l.StartOffset()
		if from < start {
			t.Fatalf("crash before op %d: log start %d below the acknowledged %d", k, from, start)
		}
		var want, written []byte
		for i, b := range tried {
			if BatchHeader(b).LastOffset() < from {
				continue
			}
			if i < len(acked) {
				want = append(want, b...)
			}
			written = append(written, b...)
		}
		got := readAll(t, l, from)
		if !bytes.HasPrefix(got, want) {
			t.Fatalf("crash before op %d: %d bytes from %d recovered, the %d acknowledged are not all there", k, len(got), from, len(want))
		}
		if !bytes.HasPrefix(written, got) {
			t.Fatalf("crash before op %d: recovered bytes that were never written", k)
		}
		l.Close()
	}
	t.Logf("crashed before each of %d operations", total.Load())
}

// TestRecycleStraddlingRestart: a follower's first batch straddling the end of
// an empty log restarts the log at the batch's base, below the end: pool
// files whose bound is above that base are removed, one below it may be
// reused, and after a crash the log holds exactly the replicated batch.
func TestRecycleStraddlingRestart(t *testing.T) {
	fsys := vfs.NewMemFS()
	cfg := recycleConfig(fsys)
	l := mustOpen(t, "/p", cfg)
	fillSegments(t, l, 3) // segments of 12 offsets: bounds 12, 24, 36, ...
	end := l.EndOffset()
	if err := l.ResetLocal(end, end); err != nil {
		t.Fatal(err)
	}
	b := testBatch(10, 1, 1)
	base := end - 5
	BatchHeader(b).SetBaseOffset(base)
	reused := l.reused
	if _, err := l.AppendReplicated(b); err != nil {
		t.Fatal(err)
	}
	for _, name := range poolFiles(t, fsys, "/p") {
		if bound, _ := parsePoolName(name); bound > base {
			t.Fatalf("pool file %s kept after a restart at %d", name, base)
		}
	}
	if l.reused == reused {
		t.Logf("no pool file at or below %d to reuse", base)
	}
	fsys.Crash()
	l = mustOpen(t, "/p", cfg)
	defer l.Close()
	if l.EndOffset() != base+10 {
		t.Fatalf("end %d after the crash, want %d", l.EndOffset(), base+10)
	}
	if got := readAll(t, l, base); !bytes.Equal(got, b) {
		t.Fatal("log holds more or other than the replicated batch")
	}
}

// TestRecycleReadersNeverSeeStale: readers racing appends, rolls (trims),
// retention (files into the pool) and reuse (files out of it) only ever get
// the batches they asked for: contiguous offsets from the batch holding the
// requested offset on (a stale batch would carry an older offset). Run with
// -race.
func TestRecycleReadersNeverSeeStale(t *testing.T) {
	fsys := vfs.NewMemFS()
	cfg := recycleConfig(fsys)
	cfg.FlushPolicy = FlushOS
	l := mustOpen(t, "/p", cfg)
	defer l.Close()
	stop := make(chan struct{})
	errs := make(chan error, 4)
	for r := 0; r < 3; r++ {
		go func(seed uint64) {
			rng := rand.New(rand.NewPCG(seed, 1))
			for {
				select {
				case <-stop:
					errs <- nil
					return
				default:
				}
				lo, hi := l.StartOffset(), l.EndOffset()
				if hi <= lo {
					continue
				}
				off := lo + rng.Int64N(hi-lo)
				res, err := l.Read(off, ReadOptions{MaxBytes: 1 << 12, MinOneBatch: true})
				if errors.Is(err, ErrOffsetOutOfRange) {
					continue // retention moved the start
				}
				if err != nil {
					errs <- err
					return
				}
				hs, err := SplitBatches(res.Data)
				if err != nil {
					errs <- err
					return
				}
				for i, h := range hs {
					if i == 0 && (h.BaseOffset() > off || h.LastOffset() < off) {
						errs <- fmt.Errorf("Read(%d) began with batch [%d, %d]", off, h.BaseOffset(), h.LastOffset())
						return
					}
					if i > 0 && h.BaseOffset() != hs[i-1].LastOffset()+1 {
						errs <- fmt.Errorf("Read(%d): batch at %d after one ending at %d", off, h.BaseOffset(), hs[i-1].LastOffset())
						return
					}
				}
			}
		}(uint64(r))
	}
	for i := 0; i < 3000; i++ {
		mustAppend(t, l, sameBatch(1+i%3), 1)
		if i%20 == 19 {
			if err := l.SetStartOffset(l.EndOffset() - 30); err != nil {
				t.Fatal(err)
			}
		}
	}
	close(stop)
	for r := 0; r < 3; r++ {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
	if l.reused < 50 {
		t.Fatalf("only %d reuses", l.reused)
	}
}

// TestRecycleCrashMidTrim: the machine dies between the roll's truncation of
// a reused file's stale tail and the fdatasync that makes it durable (the
// truncation is lost), or right after that sync. Either way the reopened log
// holds exactly the acknowledged batches and its files hold exactly its data.
func TestRecycleCrashMidTrim(t *testing.T) {
	for _, afterSync := range []bool{false, true} {
		t.Run(fmt.Sprint("after-sync=", afterSync), func(t *testing.T) {
			fsys := vfs.NewMemFS()
			cfg := recycleConfig(fsys)
			l := mustOpen(t, "/p", cfg)
			fillSegments(t, l, 3)
			if err := l.SetStartOffset(l.Segments()[1].BaseOffset); err != nil {
				t.Fatal(err)
			}
			if err := l.Roll(); err != nil { // the active segment is now a reused file
				t.Fatal(err)
			}
			if l.reused != 1 {
				t.Fatal("no reuse")
			}
			b := sameBatch(2) // the stale batches after it are whole, valid, old ones
			mustAppend(t, l, b, 1)
			settle(l) // no checkpoint of the earlier rolls meets the injector
			start := l.StartOffset()
			want := readAll(t, l, start)
			var truncated, crashed atomic.Bool
			// Crash at the sync right after the trim's truncation, or (after-sync)
			// at the operation after that sync.
			if !afterSync {
				fsys.SetInjector(func(op vfs.Op, name string) error {
					if crashed.Load() {
						return syscall.EIO
					}
					if op == vfs.OpTruncate {
						truncated.Store(true)
						return nil
					}
					if op == vfs.OpSync && truncated.Load() && crashed.CompareAndSwap(false, true) {
						fsys.Crash()
						return syscall.EIO
					}
					return nil
				})
			} else {
				var synced atomic.Bool
				fsys.SetInjector(func(op vfs.Op, name string) error {
					if crashed.Load() {
						return syscall.EIO
					}
					if op == vfs.OpTruncate {
						truncated.Store(true)
						return nil
					}
					if op == vfs.OpSync && truncated.Load() && synced.CompareAndSwap(false, true) {
						return nil
					}
					if synced.Load() && crashed.CompareAndSwap(false, true) {
						fsys.Crash()
						return syscall.EIO
					}
					return nil
				})
			}
			if err := l.Roll(); err == nil {
				t.Fatal("roll succeeded through a crash")
			}
			if !crashed.Load() {
				t.Fatal("the trim never happened")
			}
			fsys.SetInjector(nil)
			l = mustOpen(t, "/p", cfg)
			defer l.Close()
			if got := readAll(t, l, start); !bytes.Equal(got, want) {
				t.Fatalf("recovered %d bytes, want the %d acknowledged", len(got), len(want))
			}
			checkFilesMatchData(t, fsys, l, false)
		})
	}
}

// TestPinnedSegmentIsNotRecycled: a segment pinned by a reader of its file (tiering's archiver)
// and dropped meanwhile is unlinked, not pooled, so the reader's open file keeps its bytes while
// later rolls create segments; once released, dropped segments are pooled again.
func TestPinnedSegmentIsNotRecycled(t *testing.T) {
	dir := t.TempDir()
	cfg := DefaultConfig()
	cfg.SegmentBytes = 64 << 10
	l := mustOpen(t, dir, cfg)
	defer l.Close()
	fillSegments(t, l, 4)
	segs := l.Segments()
	release, ok := l.PinSegment(segs[0].BaseOffset)
	if !ok {
		t.Fatal("PinSegment of the first segment: not found")
	}
	if _, ok := l.PinSegment(segs[0].BaseOffset + 1); ok {
		t.Fatal("PinSegment of an offset no segment starts at: ok")
	}
	f, err := os.Open(segs[0].Path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	want, err := io.ReadAll(io.NewSectionReader(f, 0, segs[0].Size))
	if err != nil {
		t.Fatal(err)
	}
	if err := l.SetStartOffset(segs[1].BaseOffset); err != nil { // drops the pinned segment
		t.Fatal(err)
	}
	if got := poolFiles(t, vfs.OS, dir); len(got) != 0 {
		t.Fatalf("pinned segment went to the pool: %v", got)
	}
	for range 3 { // new segments: none may be the pinned file
		mustAppend(t, l, sameBatch(1), 1)
		if err := l.Roll(); err != nil {
			t.Fatal(err)
		}
	}
	got, err := io.ReadAll(io.NewSectionReader(f, 0, segs[0].Size))
	if err != nil || !bytes.Equal(got, want) {
		t.Fatalf("the pinned reader's file changed under it (%v)", err)
	}
	release()
	release() // idempotent
	// Not pinned any more: the next dropped segment is pooled.
	if err := l.SetStartOffset(segs[2].BaseOffset); err != nil {
		t.Fatal(err)
	}
	if got := poolFiles(t, vfs.OS, dir); len(got) != 1 {
		t.Fatalf("unpinned dropped segment: pool %v, want one file", got)
	}
}

// poolLen is the number of files in l's recycle pool.
func poolLen(l *Log) int {
	n, _ := l.RecyclePool()
	return n
}

// TestRecyclePoolExpires: pool files that wait longer than the idle limit for a
// new segment are removed (a partition gone quiet keeps no dead segment files),
// younger ones stay and are still reused, adopted files start waiting at Open,
// a file that cannot be removed stays pooled and is reported, and 0 empties
// the pool.
func TestRecyclePoolExpires(t *testing.T) {
	fsys := vfs.NewMemFS()
	cfg := recycleConfig(fsys)
	now := fixedNow
	cfg.Now = func() time.Time { return now }
	l := mustOpen(t, "/p", cfg)
	fillSegments(t, l, 4)
	segs := l.Segments()
	if err := l.SetStartOffset(segs[1].BaseOffset); err != nil { // seg 0 into the pool at t0
		t.Fatal(err)
	}
	now = now.Add(40 * time.Minute)
	young, err := vfs.ReadFile(fsys, segs[1].Path)
	if err != nil {
		t.Fatal(err)
	}
	if err := l.SetStartOffset(segs[2].BaseOffset); err != nil { // seg 1 at t0+40m
		t.Fatal(err)
	}
	if n := poolLen(l); n != 2 {
		t.Fatalf("pool holds %d files, want 2", n)
	}
	now = now.Add(20*time.Minute + time.Second) // seg 0's file: 60m1s in the pool; seg 1's: 20m1s
	if n, err := l.ExpireRecyclePool(time.Hour); err != nil || n != 1 {
		t.Fatalf("ExpireRecyclePool(1h) = %d, %v; want 1 removed", n, err)
	}
	want := fmt.Sprintf("%020d%s", segs[1].NextOffset, recycleSuffix)
	if got := poolFiles(t, fsys, "/p"); len(got) != 1 || got[0] != want || poolLen(l) != 1 {
		t.Fatalf("pool %v (%d in memory), want only the younger file %s", got, poolLen(l), want)
	}
	if n, bytes := l.RecyclePool(); n != 1 || bytes != int64(len(young)) || bytes != fileSize(t, fsys, "/p/"+want) {
		t.Fatalf("RecyclePool() = %d files, %d bytes; want 1 file of %d bytes", n, bytes, len(young))
	}
	if n, err := l.ExpireRecyclePool(time.Hour); err != nil || n != 0 {
		t.Fatalf("second ExpireRecyclePool(1h) = %d, %v; want nothing removed", n, err)
	}
	if err := l.Roll(); err != nil {
		t.Fatal(err)
	}
	act := l.Segments()[len(l.Segments())-1]
	if b, _ := vfs.ReadFile(fsys, act.Path); l.reused != 1 || !bytes.Equal(b, young) {
		t.Fatalf("the roll did not reuse the younger pool file (reused %d)", l.reused)
	}

	// Adopted at Open: the idle period starts then.
	fillSegments(t, l, len(l.Segments())+1)
	if err := l.SetStartOffset(l.Segments()[len(l.Segments())-2].BaseOffset); err != nil {
		t.Fatal(err)
	}
	pooled := poolLen(l)
	if pooled == 0 {
		t.Fatal("retention pooled no file")
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := l.ExpireRecyclePool(0); !errors.Is(err, ErrClosed) {
		t.Fatalf("ExpireRecyclePool on a closed log: %v, want ErrClosed", err)
	}
	now = now.Add(3 * time.Hour)
	l = mustOpen(t, "/p", cfg)
	defer l.Close()
	if n, err := l.ExpireRecyclePool(time.Hour); err != nil || n != 0 || poolLen(l) != pooled {
		t.Fatalf("right after Open: ExpireRecyclePool(1h) = %d, %v with %d pooled; want 0 (adopted files start waiting at Open)", n, err, pooled)
	}
	var onDisk int64
	for _, name := range poolFiles(t, fsys, "/p") {
		onDisk += fileSize(t, fsys, "/p/"+name)
	}
	if _, bytes := l.RecyclePool(); bytes != onDisk || bytes == 0 {
		t.Fatalf("adopted pool: RecyclePool() bytes %d, files on disk %d bytes", bytes, onDisk)
	}

	// A file that cannot be removed stays in the pool; the error names it.
	now = now.Add(2 * time.Hour)
	fsys.SetInjector(func(o vfs.Op, name string) error {
		if o == vfs.OpRemove && strings.HasSuffix(name, recycleSuffix) {
			return syscall.EIO
		}
		return nil
	})
	if n, err := l.ExpireRecyclePool(time.Hour); err == nil || n != 0 || !strings.Contains(err.Error(), recycleSuffix) || poolLen(l) != pooled {
		t.Fatalf("with removal failing: %d removed, %v, %d pooled; want an error naming the file and the pool unchanged", n, err, poolLen(l))
	}
	fsys.SetInjector(nil)
	if n, err := l.ExpireRecyclePool(0); err != nil || n != pooled || len(poolFiles(t, fsys, "/p")) != 0 {
		t.Fatalf("ExpireRecyclePool(0) = %d, %v, files left %v; want the pool emptied", n, err, poolFiles(t, fsys, "/p"))
	}
	// The log still works and rolls into new files.
	mustAppend(t, l, sameBatch(2), 1)
	if err := l.Roll(); err != nil {
		t.Fatal(err)
	}
}
