package segment

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"math/rand/v2"
	"path/filepath"
	"syscall"
	"testing"

	"github.com/sediment-io/sediment/segment/vfs"
)

// tieredLog opens /p with small segments and appends n batches of 10 records
// (epoch = batch index / 4), so the log has several closed segments.
func tieredLog(t *testing.T, fsys *vfs.MemFS, n int) (*Log, Config) {
	t.Helper()
	cfg := testConfig(fsys)
	cfg.SegmentBytes = 1000
	l := mustOpen(t, "/p", cfg)
	for i := 0; i < n; i++ {
		mustAppend(t, l, testBatch(10, 20, int64(i)), int32(i/4))
	}
	if len(l.Segments()) < 4 {
		t.Fatalf("only %d segments", len(l.Segments()))
	}
	return l, cfg
}

// checkBounds asserts StartOffset, LocalStartOffset and EndOffset, that reads
// below the log start are out of range, reads in [start, local start) are
// ErrNotLocal, and local data reads back from the local start.
func checkBounds(t *testing.T, l *Log, start, local, end int64) {
	t.Helper()
	if g := l.StartOffset(); g != start {
		t.Fatalf("StartOffset %d, want %d", g, start)
	}
	if g := l.LocalStartOffset(); g != local {
		t.Fatalf("LocalStartOffset %d, want %d", g, local)
	}
	if g := l.EndOffset(); g != end {
		t.Fatalf("EndOffset %d, want %d", g, end)
	}
	if start > 0 {
		if _, err := l.Read(start-1, ReadOptions{MaxBytes: 1 << 20}); !errors.Is(err, ErrOffsetOutOfRange) {
			t.Fatalf("Read(%d) below the log start: %v, want ErrOffsetOutOfRange", start-1, err)
		}
	}
	for _, off := range []int64{start, (start + local) / 2, local - 1} {
		if off < start || off >= local {
			continue
		}
		_, err := l.Read(off, ReadOptions{MaxBytes: 1 << 20})
		if !errors.Is(err, ErrNotLocal) || errors.Is(err, ErrOffsetOutOfRange) {
			t.Fatalf("Read(%d) in [%d, %d): %v, want ErrNotLocal only", off, start, local, err)
		}
	}
	if local < end {
		r, err := l.Read(local, ReadOptions{MaxBytes: 1 << 20, MinOneBatch: true})
		if err != nil || len(r.Data) == 0 {
			t.Fatalf("Read(%d) at the local start: %d bytes, %v", local, len(r.Data), err)
		}
		if b := BatchHeader(r.Data).BaseOffset(); b > local {
			t.Fatalf("Read(%d) starts at batch %d", local, b)
		}
		// ScanBatches from the whole-log start covers local data only,
		// starting at the local start (the broker rebuilds producer state so).
		first := int64(-1)
		if err := l.ScanBatches(start, func(h BatchHeader) bool { first = h.BaseOffset(); return false }); err != nil || first > local || first < 0 {
			t.Fatalf("ScanBatches(%d): first batch %d, %v; local start %d", start, first, err, local)
		}
	}
}

// closeOrCrash closes l cleanly, or simulates power loss (every unsynced write
// and directory change dropped) for how == "crash".
func closeOrCrash(t *testing.T, how string, l *Log, fsys *vfs.MemFS) {
	t.Helper()
	if how == "crash" {
		fsys.Crash()
		return
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
}

func TestDeleteLocalBelowKeepsStartOffset(t *testing.T) {
	for _, how := range []string{"clean", "crash"} {
		t.Run(how, func(t *testing.T) {
			fsys := vfs.NewMemFS()
			l, cfg := tieredLog(t, fsys, 20)
			segs := l.Segments()
			end := l.EndOffset()
			want := readAll(t, l, segs[2].BaseOffset)
			// Only segments wholly below the offset go: one ending inside stays.
			n, err := l.DeleteLocalBelow(segs[2].BaseOffset + 1)
			if err != nil || n != 2 {
				t.Fatalf("DeleteLocalBelow: %d, %v; want 2", n, err)
			}
			for _, s := range segs[:2] {
				if _, err := fsys.Stat(s.Path); err == nil {
					t.Fatalf("%s still on disk", s.Path)
				}
			}
			checkBounds(t, l, 0, segs[2].BaseOffset, end)
			if n, err := l.DeleteLocalBelow(segs[2].BaseOffset); err != nil || n != 0 {
				t.Fatalf("second DeleteLocalBelow: %d, %v; want 0", n, err)
			}
			closeOrCrash(t, how, l, fsys) // everything above was durable: nothing may change
			l = mustOpen(t, "/p", cfg)
			defer l.Close()
			checkBounds(t, l, 0, segs[2].BaseOffset, end)
			if got := readAll(t, l, segs[2].BaseOffset); !bytes.Equal(got, want) {
				t.Fatal("local data differs after reopen")
			}
			if e := l.Epochs(); len(e) == 0 || e[0][1] != 0 {
				t.Fatalf("epoch cache %v: local deletion must not move it", e)
			}
			// Never the active segment.
			n, err = l.DeleteLocalBelow(end + 1000)
			if err != nil || len(l.Segments()) != 1 {
				t.Fatalf("DeleteLocalBelow past the end: %d, %v, %d segments left", n, err, len(l.Segments()))
			}
			checkBounds(t, l, 0, l.Segments()[0].BaseOffset, end)
			r := mustAppend(t, l, testBatch(1, 1, 99), 9)
			if r.FirstOffset != end {
				t.Fatalf("append at %d, want %d", r.FirstOffset, end)
			}
		})
	}
}

// TestDeleteLocalBelowCrashMidway: the new local start is persisted before any
// file goes, so a crash after the checkpoint finishes the deletion on Open.
func TestDeleteLocalBelowCrashMidway(t *testing.T) {
	fsys := vfs.NewMemFS()
	l, cfg := tieredLog(t, fsys, 20)
	segs := l.Segments()
	removes := 0
	fsys.SetInjector(func(op vfs.Op, name string) error {
		// A .log leaves by removal or, with recycling, by a rename into the pool.
		if (op == vfs.OpRemove || op == vfs.OpRename) && filepath.Ext(name) == ".log" {
			if removes++; removes == 2 {
				return syscall.EIO
			}
		}
		return nil
	})
	if _, err := l.DeleteLocalBelow(segs[3].BaseOffset); err == nil {
		t.Fatal("DeleteLocalBelow succeeded despite the failing remove")
	}
	fsys.SetInjector(nil)
	fsys.Crash()
	l = mustOpen(t, "/p", cfg)
	defer l.Close()
	checkBounds(t, l, 0, segs[3].BaseOffset, segs[len(segs)-1].NextOffset)
	if got := l.Segments()[0].BaseOffset; got != segs[3].BaseOffset {
		t.Fatalf("first segment %d after recovery, want %d", got, segs[3].BaseOffset)
	}
}

func TestSetStartOffsetWithTieredPrefix(t *testing.T) {
	fsys := vfs.NewMemFS()
	l, cfg := tieredLog(t, fsys, 20)
	segs := l.Segments()
	end := l.EndOffset()
	if _, err := l.DeleteLocalBelow(segs[2].BaseOffset); err != nil {
		t.Fatal(err)
	}
	local := segs[2].BaseOffset
	// Remote retention: raising the start inside the remote part deletes nothing local.
	if err := l.SetStartOffset(local - 5); err != nil {
		t.Fatal(err)
	}
	checkBounds(t, l, local-5, local, end)
	if len(l.Segments()) != len(segs)-2 {
		t.Fatalf("%d segments, want %d", len(l.Segments()), len(segs)-2)
	}
	// Above the local start: as without tiering (delete wholly-below segments,
	// LocalStartOffset = StartOffset mid-segment, version-1 checkpoint again).
	mid := segs[3].BaseOffset + 3
	if err := l.SetStartOffset(mid); err != nil {
		t.Fatal(err)
	}
	checkBounds(t, l, mid, mid, end)
	if got := l.Segments()[0].BaseOffset; got != segs[3].BaseOffset {
		t.Fatalf("first segment %d, want %d", got, segs[3].BaseOffset)
	}
	if v := checkpointVersion(t, fsys); v != 1 {
		t.Fatalf("log-start checkpoint version %d without a remote prefix, want 1", v)
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	l = mustOpen(t, "/p", cfg)
	defer l.Close()
	checkBounds(t, l, mid, mid, end)
	if _, err := l.Read(mid-1, ReadOptions{MaxBytes: 100}); !errors.Is(err, ErrOffsetOutOfRange) {
		t.Fatalf("Read below the raised start: %v", err)
	}
}

func checkpointVersion(t *testing.T, fsys vfs.FS) uint16 {
	t.Helper()
	b, err := vfs.ReadFile(fsys, "/p/"+logStartFile)
	if err != nil {
		t.Fatal(err)
	}
	return binary.BigEndian.Uint16(b[4:])
}

func TestResetLocal(t *testing.T) {
	for _, how := range []string{"clean", "crash"} {
		t.Run(how, func(t *testing.T) {
			fsys := vfs.NewMemFS()
			l, cfg := tieredLog(t, fsys, 20)
			old := l.Segments()
			if err := l.ResetLocal(1000, 400); err != nil {
				t.Fatal(err)
			}
			checkBounds(t, l, 400, 1000, 1000)
			if e := l.Epochs(); len(e) != 0 {
				t.Fatalf("epoch cache %v after ResetLocal, want empty", e)
			}
			if v := checkpointVersion(t, fsys); v != logStartVersionTiered {
				t.Fatalf("checkpoint version %d, want %d", v, logStartVersionTiered)
			}
			for _, s := range old {
				if _, err := fsys.Stat(s.Path); err == nil {
					t.Fatalf("old segment %s still on disk", s.Path)
				}
			}
			closeOrCrash(t, how, l, fsys)
			l = mustOpen(t, "/p", cfg)
			checkBounds(t, l, 400, 1000, 1000)
			if e := l.Epochs(); len(e) != 0 {
				t.Fatalf("epoch cache %v after reopen, want empty", e)
			}
			b := testBatch(3, 10, 5)
			r := mustAppend(t, l, b, 7)
			if r.FirstOffset != 1000 || r.LastOffset != 1002 {
				t.Fatalf("append after ResetLocal at [%d, %d], want [1000, 1002]", r.FirstOffset, r.LastOffset)
			}
			fsys.Crash() // the append was acknowledged: it must survive
			l = mustOpen(t, "/p", cfg)
			defer l.Close()
			checkBounds(t, l, 400, 1000, 1003)
			if got := readAll(t, l, 1000); !bytes.Equal(got, b) {
				t.Fatal("appended batch differs after crash")
			}
			if e := l.Epochs(); len(e) != 1 || e[0] != [2]int64{7, 1000} {
				t.Fatalf("epoch cache %v, want [[7 1000]]", e)
			}
		})
	}
}

func TestResetLocalRejectsBadArguments(t *testing.T) {
	l, _ := tieredLog(t, vfs.NewMemFS(), 20)
	defer l.Close()
	end := l.EndOffset()
	for _, a := range [][2]int64{{10, 11}, {5, -1}} {
		if err := l.ResetLocal(a[0], a[1]); err == nil {
			t.Fatalf("ResetLocal(%d, %d) accepted", a[0], a[1])
		}
	}
	checkBounds(t, l, 0, 0, end)
	// A reset to a lower offset (logStart == localStart) is a plain restart.
	if err := l.ResetLocal(30, 30); err != nil {
		t.Fatal(err)
	}
	checkBounds(t, l, 30, 30, 30)
}

// TestResetLocalCrashPartway fails the k-th file-system operation of ResetLocal
// for every k, crashes, reopens: the log is either a prefix of the old log with
// its old start, or exactly the reset log — never a mixture (old data above the
// new local start, or the new start over old data).
func TestResetLocalCrashPartway(t *testing.T) {
	for k := 1; ; k++ {
		fsys := vfs.NewMemFS()
		l, cfg := tieredLog(t, fsys, 20)
		oldData := readAll(t, l, 0)
		ops := 0
		fsys.SetInjector(func(op vfs.Op, name string) error {
			if ops++; ops == k {
				return syscall.EIO
			}
			return nil
		})
		err := l.ResetLocal(1000, 400)
		fsys.SetInjector(nil)
		fsys.Crash()
		l2, oerr := Open("/p", cfg)
		if oerr != nil {
			t.Fatalf("k=%d: reopen: %v", k, oerr)
		}
		start, local, end := l2.StartOffset(), l2.LocalStartOffset(), l2.EndOffset()
		switch {
		case start == 400 && local == 1000 && end == 1000:
			if len(l2.Epochs()) != 0 {
				t.Fatalf("k=%d: reset log kept epochs %v", k, l2.Epochs())
			}
		case start == 0 && local == 0:
			if got := readAll(t, l2, 0); !bytes.HasPrefix(oldData, got) {
				t.Fatalf("k=%d: recovered data is not a prefix of the old log", k)
			}
		default:
			t.Fatalf("k=%d (ResetLocal: %v): start %d, local start %d, end %d: neither old nor reset", k, err, start, local, end)
		}
		l2.Close()
		if err == nil {
			if ops < k {
				if start != 400 {
					t.Fatalf("k=%d: ResetLocal returned nil but the reset did not survive", k)
				}
				t.Logf("ResetLocal performs %d file-system operations; all failure points checked", ops)
				return
			}
			t.Fatalf("k=%d: ResetLocal returned nil although operation %d failed", k, k)
		}
	}
}

func TestTruncateBelowLocalStart(t *testing.T) {
	fsys := vfs.NewMemFS()
	l, cfg := tieredLog(t, fsys, 20)
	segs := l.Segments()
	if _, err := l.DeleteLocalBelow(segs[2].BaseOffset); err != nil {
		t.Fatal(err)
	}
	if err := l.SetStartOffset(10); err != nil {
		t.Fatal(err)
	}
	local := segs[2].BaseOffset
	// Between StartOffset and LocalStartOffset: the local log empties and
	// restarts at the offset; the remote history below it keeps StartOffset.
	to := local - 7
	if err := l.TruncateTo(to); err != nil {
		t.Fatal(err)
	}
	checkBounds(t, l, 10, to, to)
	if e := l.Epochs(); len(e) != 0 {
		t.Fatalf("epochs %v after emptying the local log", e)
	}
	fsys.Crash()
	l = mustOpen(t, "/p", cfg)
	checkBounds(t, l, 10, to, to)
	r := mustAppend(t, l, testBatch(2, 1, 1), 3)
	if r.FirstOffset != to {
		t.Fatalf("append at %d, want %d", r.FirstOffset, to)
	}
	// Below StartOffset: as Kafka, the whole log restarts there.
	if err := l.TruncateTo(4); err != nil {
		t.Fatal(err)
	}
	checkBounds(t, l, 4, 4, 4)
	l.Close()
	l = mustOpen(t, "/p", cfg)
	defer l.Close()
	checkBounds(t, l, 4, 4, 4)
}

// TestReplicatedAppendIntoEmptyTieredLog: a follower reset to the leader's local
// start accepts the leader's batches from there, and a batch straddling the
// local start restarts the local log at its base (start kept).
func TestReplicatedAppendIntoEmptyTieredLog(t *testing.T) {
	l, _ := tieredLog(t, vfs.NewMemFS(), 20)
	defer l.Close()
	if err := l.ResetLocal(100, 10); err != nil {
		t.Fatal(err)
	}
	b := testBatch(10, 1, 1)
	BatchHeader(b).SetBaseOffset(95)
	if _, err := l.AppendReplicated(b); err != nil {
		t.Fatal(err)
	}
	checkBounds(t, l, 10, 95, 105)
	b2 := testBatch(1, 1, 1)
	BatchHeader(b2).SetBaseOffset(100)
	if _, err := l.AppendReplicated(b2); !errors.Is(err, ErrInvalidOffset) {
		t.Fatalf("non-contiguous replicated append: %v", err)
	}
}

func TestStartCheckpointVersions(t *testing.T) {
	fsys := vfs.NewMemFS()
	if err := fsys.MkdirAll("/p", 0o755); err != nil {
		t.Fatal(err)
	}
	for _, c := range [][2]int64{{5, 5}, {5, 9}, {0, 1 << 40}} {
		if err := writeStartCheckpoint(fsys, "/p", c[0], c[1]); err != nil {
			t.Fatal(err)
		}
		s, ls, ok, err := readStartCheckpoint(fsys, "/p")
		if err != nil || !ok || s != c[0] || ls != c[1] {
			t.Fatalf("%v: read back %d %d %v %v", c, s, ls, ok, err)
		}
		// A build that knows only version 1 refuses the tiered form instead of
		// misreading it.
		b, _ := vfs.ReadFile(fsys, "/p/"+logStartFile)
		_, err = decodeCheckpoint("x", b, kindLogStart)
		if tiered := c[1] > c[0]; tiered != (err != nil) {
			t.Fatalf("%v: version-1 reader error %v", c, err)
		}
	}
	// Local start below log start is corrupt.
	var p [16]byte
	binary.BigEndian.PutUint64(p[:], 9)
	binary.BigEndian.PutUint64(p[8:], 5)
	b := encodeCheckpoint(kindLogStart, p[:])
	binary.BigEndian.PutUint16(b[4:], logStartVersionTiered)
	copy(b[len(b)-4:], binary.BigEndian.AppendUint32(nil, crcOf(b[:len(b)-4])))
	if err := vfs.WriteFileAtomic(fsys, "/p/"+logStartFile, b); err != nil {
		t.Fatal(err)
	}
	if _, _, _, err := readStartCheckpoint(fsys, "/p"); !errors.Is(err, ErrCorrupt) {
		t.Fatalf("local start below log start: %v", err)
	}
	if _, err := Open("/p", testConfig(fsys)); err == nil {
		t.Fatal("Open accepted a corrupt log-start checkpoint")
	} else if want := fmt.Sprint(logStartFile); !bytes.Contains([]byte(err.Error()), []byte(want)) {
		t.Fatalf("error %q does not name %s", err, want)
	}
}

func crcOf(b []byte) uint32 { return crc32.Checksum(b, castagnoli) }

// TestRandomTieredOpsMatchModel drives a log with random appends, reads,
// DeleteLocalBelow, ResetLocal, SetStartOffset, TruncateTo, rolls, clean
// reopens and crashes, checking StartOffset, LocalStartOffset, EndOffset,
// ErrNotLocal/ErrOffsetOutOfRange and the local bytes against a model. Segment
// boundaries (which DeleteLocalBelow works in) are taken from Segments().
func TestRandomTieredOpsMatchModel(t *testing.T) {
	for seed := uint64(1); seed <= 20; seed++ {
		t.Run(fmt.Sprint(seed), func(t *testing.T) {
			rng := rand.New(rand.NewPCG(seed, 405))
			fsys := vfs.NewMemFS()
			cfg := testConfig(fsys)
			cfg.SegmentBytes = int64(2000 + rng.IntN(3000))
			l := mustOpen(t, "/p", cfg)
			var local [][]byte // local batches; the first may straddle start
			var start, end int64
			localStart := func() int64 {
				if len(local) == 0 {
					return end
				}
				return max(start, BatchHeader(local[0]).BaseOffset())
			}
			dropBelow := func(off int64) { // batches wholly below off
				for len(local) > 0 && BatchHeader(local[0]).LastOffset() < off {
					local = local[1:]
				}
			}
			reset := func(ls, s int64) { local, end, start = nil, ls, s }
			for op := 0; op < 250; op++ {
				switch k := rng.IntN(22); {
				case k < 8:
					b := testBatch(1+rng.IntN(5), rng.IntN(300), int64(op))
					r := mustAppend(t, l, b, int32(op/40))
					if r.FirstOffset != end {
						t.Fatalf("op %d: appended at %d, want %d", op, r.FirstOffset, end)
					}
					local, end = append(local, b), r.LastOffset+1
				case k < 12 && end > start:
					off := start + rng.Int64N(end-start)
					r, err := l.Read(off, ReadOptions{MaxBytes: 1, MinOneBatch: true})
					if off < localStart() {
						if !errors.Is(err, ErrNotLocal) {
							t.Fatalf("op %d: Read(%d) below local start %d: %v", op, off, localStart(), err)
						}
						break
					}
					if err != nil {
						t.Fatalf("op %d: Read(%d): %v", op, off, err)
					}
					var want []byte
					for _, b := range local {
						if h := BatchHeader(b); h.BaseOffset() <= off && off <= h.LastOffset() {
							want = b
						}
					}
					if !bytes.Equal(r.Data, want) {
						t.Fatalf("op %d: Read(%d) differs from the model", op, off)
					}
				case k == 12 && start > 0:
					if _, err := l.Read(start-1, ReadOptions{MaxBytes: 1}); !errors.Is(err, ErrOffsetOutOfRange) {
						t.Fatalf("op %d: Read below start: %v", op, err)
					}
				case k == 13 || k == 14:
					off := localStart() + rng.Int64N(end-localStart()+10)
					segs := l.Segments()
					n := 0
					for n < len(segs)-1 && segs[n].NextOffset <= off {
						n++
					}
					got, err := l.DeleteLocalBelow(off)
					if err != nil || got != n {
						t.Fatalf("op %d: DeleteLocalBelow(%d) = %d, %v; want %d", op, off, got, err, n)
					}
					dropBelow(segs[n].BaseOffset)
				case k == 15:
					ls := end + rng.Int64N(50) - 25
					ls = max(ls, start)
					s := start - rng.Int64N(min(start, 5)+1)
					if rng.IntN(3) == 0 {
						s = ls
					}
					if err := l.ResetLocal(ls, s); err != nil {
						t.Fatal(err)
					}
					reset(ls, s)
				case k == 16 && end > start:
					off := start + rng.Int64N(end-start+1)
					if err := l.SetStartOffset(off); err != nil {
						t.Fatal(err)
					}
					start = max(start, off)
					dropBelow(start)
				case k == 17 && end > start:
					off := start + rng.Int64N(end-start)
					if err := l.TruncateTo(off); err != nil {
						t.Fatal(err)
					}
					if off <= localStart() {
						reset(off, min(start, off))
						break
					}
					for i, b := range local {
						if h := BatchHeader(b); h.LastOffset() >= off {
							if h.BaseOffset() < start {
								reset(start, start)
							} else {
								local, end = local[:i], h.BaseOffset()
							}
							break
						}
					}
				case k == 18:
					if err := l.Roll(); err != nil {
						t.Fatal(err)
					}
				case k == 19:
					if err := l.Close(); err != nil {
						t.Fatal(err)
					}
					l = mustOpen(t, "/p", cfg)
				case k >= 20:
					fsys.Crash() // everything was fsynced (FlushAlways): nothing may change
					l = mustOpen(t, "/p", cfg)
				}
				if l.StartOffset() != start || l.LocalStartOffset() != localStart() || l.EndOffset() != end {
					t.Fatalf("op %d: start/local/end %d/%d/%d, model %d/%d/%d", op,
						l.StartOffset(), l.LocalStartOffset(), l.EndOffset(), start, localStart(), end)
				}
			}
			var want []byte
			for _, b := range local {
				want = append(want, b...)
			}
			if got := readAll(t, l, localStart()); !bytes.Equal(got, want) {
				t.Fatal("final local contents differ from the model")
			}
			l.Close()
		})
	}
}
