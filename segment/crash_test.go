package segment

import (
	"bytes"
	"errors"
	"fmt"
	"math/rand/v2"
	"path/filepath"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/sediment-io/sediment/segment/vfs"
)

// model tracks what a test wrote: the byte stream of the log from its start, and
// how much of it was acknowledged durable.
type model struct {
	data  []byte // every batch appended successfully, in order, as stamped
	acked int    // len(data) acknowledged by FlushAlways
}

// checkRecovered asserts the reopened log holds a prefix of everything written
// that includes every acknowledged byte, byte-identical, and nothing else.
func (m *model) checkRecovered(t *testing.T, l *Log, start int64) {
	t.Helper()
	got := readAll(t, l, start)
	if len(got) < m.acked {
		t.Fatalf("recovered %d bytes, but %d were acknowledged", len(got), m.acked)
	}
	if len(got) > len(m.data) {
		t.Fatalf("recovered %d bytes, only %d were written", len(got), len(m.data))
	}
	hs, err := SplitBatches(got)
	if err != nil {
		t.Fatalf("recovered log holds an invalid batch: %v", err)
	}
	// Byte-identical except, beyond the acknowledged (synced) part, the
	// partitionLeaderEpoch field: Kafka's batch CRC does not cover it, so a
	// garbled epoch that stays >= -1 is undetectable by any reader.
	pos := 0
	for _, h := range hs {
		n := h.Size()
		g, w := got[pos:pos+n], m.data[pos:pos+n]
		if pos+n > m.acked {
			g = append(append([]byte(nil), g[:offLeaderEpoch]...), g[offMagic:]...)
			w = append(append([]byte(nil), w[:offLeaderEpoch]...), w[offMagic:]...)
		}
		if !bytes.Equal(g, w) {
			t.Fatalf("recovered batch at byte %d (offset %d) differs from what was written", pos, h.BaseOffset())
		}
		pos += n
	}
}

// garble keeps a random prefix of the unsynced tail and sometimes flips a byte
// in it: a torn write with garbage, as a real disk may leave.
func garble(rng *rand.Rand) func(string, []byte) []byte {
	return func(_ string, b []byte) []byte {
		if len(b) == 0 || rng.IntN(3) == 0 {
			return nil
		}
		b = b[:rng.IntN(len(b)+1)]
		if len(b) > 0 && rng.IntN(2) == 0 {
			b[rng.IntN(len(b))] ^= byte(1 + rng.IntN(255))
		}
		return b
	}
}

func TestCrashKeepsAcknowledged(t *testing.T) {
	for seed := uint64(1); seed <= 40; seed++ {
		t.Run(fmt.Sprint(seed), func(t *testing.T) {
			rng := rand.New(rand.NewPCG(seed, 7))
			fsys := vfs.NewMemFS()
			cfg := testConfig(fsys)
			cfg.SegmentBytes = int64(1000 + rng.IntN(3000))
			cfg.IndexIntervalBytes = rng.IntN(600)
			policies := []FlushPolicy{FlushAlways, FlushOS}
			cfg.FlushPolicy = policies[rng.IntN(2)]
			m := &model{}
			l := mustOpen(t, "/d/p", cfg)
			for round := 0; round < 4; round++ {
				for i, n := 0, rng.IntN(40); i < n; i++ {
					b := testBatch(1+rng.IntN(4), rng.IntN(200), int64(i))
					if _, err := l.Append(b, int32(round)); err != nil {
						t.Fatal(err)
					}
					m.data = append(m.data, b...)
					if cfg.FlushPolicy == FlushAlways {
						m.acked = len(m.data)
					}
					if rng.IntN(15) == 0 {
						if err := l.Roll(); err != nil {
							t.Fatal(err)
						}
						m.acked = len(m.data) // a roll syncs the closed segment
					}
				}
				if rng.IntN(2) == 0 {
					fsys.CrashKeep(garble(rng))
				} else {
					fsys.CrashKeep(vfs.TearLast(1 + rng.IntN(100)))
				}
				var err error
				if l, err = Open("/d/p", cfg); err != nil {
					t.Fatalf("reopen after crash: %v", err)
				}
				m.checkRecovered(t, l, 0)
				// What survived is now the log; continue from it.
				m.data = readAll(t, l, 0)
				m.acked = len(m.data)
				if e := l.EndOffset(); e > 0 {
					if last, ok := l.LatestEpoch(); !ok || last > int32(round) {
						t.Fatalf("epoch cache %v after crash", l.Epochs())
					}
				}
			}
			l.Close()
		})
	}
}

func TestCorruptTailTruncatedAndLaterSegmentsRemoved(t *testing.T) {
	// LogLoaderTest: corrupt bytes in the middle of an unflushed region end the log there.
	fsys := vfs.NewMemFS()
	cfg := testConfig(fsys)
	cfg.SegmentBytes = 1000
	l := mustOpen(t, "/p", cfg)
	var all [][]byte
	for i := 0; i < 30; i++ {
		b := testBatch(2, 50, int64(i))
		mustAppend(t, l, b, 0)
		all = append(all, b)
	}
	segs := l.Segments()
	if len(segs) < 4 {
		t.Fatalf("%d segments", len(segs))
	}
	// Simulate a crash where the recovery point is still at segment 1 and a byte
	// in the records of batch 0 of segment 2 is bad. (crashAt waits for the
	// background checkpointer first: a checkpoint it wrote after ours would move
	// the recovery point past segment 2, and Open would not scan it.)
	crashAt(t, l, fsys, segs[1].BaseOffset)
	f, err := fsys.OpenFile(segs[2].Path, 2, 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.WriteAt([]byte{0xee}, 70); err != nil {
		t.Fatal(err)
	}
	f.Sync()
	f.Close()
	l = mustOpen(t, "/p", cfg)
	defer l.Close()
	if l.EndOffset() != segs[2].BaseOffset {
		t.Fatalf("EndOffset %d, want %d (the corrupt batch and all after it gone)", l.EndOffset(), segs[2].BaseOffset)
	}
	if n := len(l.Segments()); n != 3 {
		t.Fatalf("%d segments remain, want 3", n)
	}
	if _, err := fsys.Stat(segs[3].Path); err == nil {
		t.Fatal("segment after the corruption still on disk")
	}
	var want []byte
	for _, b := range all[:segs[2].BaseOffset/2] {
		want = append(want, b...)
	}
	if got := readAll(t, l, 0); !bytes.Equal(got, want) {
		t.Fatal("surviving data differs")
	}
}

// TestRecoveryPointSkipsScan: after an unclean shutdown, Open trusts the
// segments wholly below the recovery point (their data was synced when they
// rolled) and scans only the rest, as Kafka's LogLoader recovers from the
// recovery point: a record byte gone bad in an old segment (only a CRC check
// would see it) is left alone, while the same damage above the recovery point
// ends the log there.
func TestRecoveryPointSkipsScan(t *testing.T) {
	fsys := vfs.NewMemFS()
	cfg := testConfig(fsys)
	cfg.SegmentBytes = 1000
	l := mustOpen(t, "/p", cfg)
	for i := 0; i < 30; i++ {
		mustAppend(t, l, testBatch(2, 50, int64(i)), 0)
	}
	segs := l.Segments()
	if len(segs) < 4 {
		t.Fatalf("%d segments", len(segs))
	}
	crashAt(t, l, fsys, segs[2].BaseOffset)
	// Byte 70 is in the records of each segment's first batch.
	corruptByte(t, fsys, segs[0].Path, 70)
	corruptByte(t, fsys, segs[2].Path, 70)
	synced := map[string]int{} // a scanned segment is fdatasynced
	fsys.SetInjector(func(op vfs.Op, name string) error {
		if op == vfs.OpSync {
			synced[name]++
		}
		return nil
	})
	l = mustOpen(t, "/p", cfg)
	defer l.Close()
	fsys.SetInjector(nil)
	if l.EndOffset() != segs[2].BaseOffset {
		t.Fatalf("EndOffset %d, want %d: the scan from the recovery point cuts the corrupt batch", l.EndOffset(), segs[2].BaseOffset)
	}
	got := l.Segments()
	if len(got) != 3 || got[0].Size != segs[0].Size || got[0].NextOffset != segs[0].NextOffset || got[1].Size != segs[1].Size {
		t.Fatalf("segments below the recovery point changed: %+v, were %+v", got[:min(2, len(got))], segs[:2])
	}
	if synced[segs[0].Path] != 0 || synced[segs[1].Path] != 0 || synced[segs[2].Path] == 0 {
		t.Fatalf("fdatasyncs at Open %v: only segments from the recovery point on are scanned", synced)
	}
	// The bad byte is still there: reads return stored bytes unchecked.
	if err := ValidateBatch(readAll(t, l, 0)[:len(testBatch(2, 50, 0))]); !errors.Is(err, ErrCorrupt) {
		t.Fatalf("first batch validates (%v): was it rewritten?", err)
	}
}

func TestCleanShutdownSkipsScan(t *testing.T) {
	fsys := vfs.NewMemFS()
	cfg := testConfig(fsys)
	l := mustOpen(t, "/p", cfg)
	for i := 0; i < 5; i++ {
		mustAppend(t, l, testBatch(3, 20, 1), 0)
	}
	end := l.EndOffset()
	path := l.Segments()[0].Path
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := fsys.Stat("/p/" + cleanShutdownFile); err != nil {
		t.Fatalf("no clean-shutdown marker: %v", err)
	}
	// Flip a record byte (not framing) of the last batch: only a CRC scan sees it.
	f, _ := fsys.OpenFile(path, 2, 0)
	st, _ := f.Stat()
	f.WriteAt([]byte{'X'}, st.Size()-3)
	f.Sync()
	f.Close()
	l = mustOpen(t, "/p", cfg)
	if l.EndOffset() != end {
		t.Fatalf("clean open scanned and truncated: end %d", l.EndOffset())
	}
	if _, err := fsys.Stat("/p/" + cleanShutdownFile); err == nil {
		t.Fatal("marker still present after open")
	}
	// Now crash: the next open must scan and cut the bad batch.
	fsys.Crash()
	l = mustOpen(t, "/p", cfg)
	defer l.Close()
	if l.EndOffset() != end-3 {
		t.Fatalf("unclean open: end %d, want %d", l.EndOffset(), end-3)
	}
}

func TestWriteErrorsAreSticky(t *testing.T) {
	for _, errno := range []syscall.Errno{syscall.EIO, syscall.ENOSPC} {
		for _, op := range []vfs.Op{vfs.OpWrite, vfs.OpSync} {
			t.Run(fmt.Sprint(errno, "/", op), func(t *testing.T) {
				fsys := vfs.NewMemFS()
				cfg := testConfig(fsys)
				l := mustOpen(t, "/p", cfg)
				m := &model{}
				for i := 0; i < 5; i++ {
					b := testBatch(2, 30, 1)
					mustAppend(t, l, b, 0)
					m.data = append(m.data, b...)
				}
				m.acked = len(m.data)
				var fail atomic.Bool
				fail.Store(true)
				fsys.SetInjector(func(o vfs.Op, name string) error {
					if o == op && filepath.Ext(name) == ".log" && fail.Load() {
						return errno
					}
					return nil
				})
				b := testBatch(2, 30, 1)
				if _, err := l.Append(b, 0); !errors.Is(err, errno) {
					t.Fatalf("append under %v: %v", errno, err)
				}
				fail.Store(false) // the disk recovers, but the log must not trust itself
				if _, err := l.Append(testBatch(1, 1, 1), 0); err == nil {
					t.Fatal("append after a failed write/sync succeeded")
				}
				if l.Err() == nil {
					t.Fatal("no sticky error")
				}
				// Acknowledged data is still readable.
				if got := readAll(t, l, 0)[:m.acked]; !bytes.Equal(got, m.data) {
					t.Fatal("acknowledged data unreadable after failure")
				}
				// The failed append: not acknowledged, but possibly on disk
				// (whole, when only its sync failed): a crash may keep it.
				m.data = append(m.data, b...)
				l.Close()
				fsys.CrashKeep(garble(rand.New(rand.NewPCG(uint64(errno), uint64(op)))))
				l = mustOpen(t, "/p", cfg)
				defer l.Close()
				m.checkRecovered(t, l, 0)
			})
		}
	}
}

func TestOpenSurvivesShortWriteWithoutCrash(t *testing.T) {
	// A process restart (no power loss) after ENOSPC tore a write: the torn tail is
	// in the file and must be cut.
	fsys := vfs.NewMemFS()
	cfg := testConfig(fsys)
	cfg.FlushPolicy = FlushOS
	l := mustOpen(t, "/p", cfg)
	good := testBatch(3, 100, 1)
	mustAppend(t, l, good, 0)
	fsys.SetInjector(func(o vfs.Op, name string) error {
		if o == vfs.OpWrite && filepath.Ext(name) == ".log" {
			return syscall.ENOSPC
		}
		return nil
	})
	if _, err := l.Append(testBatch(3, 100, 1), 0); !errors.Is(err, syscall.ENOSPC) {
		t.Fatalf("append on a full disk: %v", err)
	}
	fsys.SetInjector(nil)
	l.Close() // no clean marker: the log failed
	l = mustOpen(t, "/p", cfg)
	defer l.Close()
	if got := readAll(t, l, 0); !bytes.Equal(got, good) || l.Segments()[0].Size != int64(len(good)) {
		t.Fatalf("after restart: %d bytes, segment %d", len(got), l.Segments()[0].Size)
	}
}

func TestGroupCommitSharesSyncs(t *testing.T) {
	fsys := vfs.NewMemFS()
	fsys.SetInjector(func(o vfs.Op, name string) error {
		if o == vfs.OpSync {
			time.Sleep(2 * time.Millisecond) // a disk with real fsync latency
		}
		return nil
	})
	l := mustOpen(t, "/p", testConfig(fsys))
	defer l.Close()
	before := fsys.Syncs()
	const writers, each = 16, 20
	var wg sync.WaitGroup
	for w := 0; w < writers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < each; i++ {
				if _, err := l.Append(testBatch(1, 10, 1), 0); err != nil {
					t.Error(err)
					return
				}
			}
		}()
	}
	wg.Wait()
	syncs := fsys.Syncs() - before
	if syncs >= writers*each/4 {
		t.Fatalf("%d syncs for %d concurrent appends: no group commit", syncs, writers*each)
	}
	if l.EndOffset() != writers*each {
		t.Fatalf("EndOffset %d", l.EndOffset())
	}
	t.Logf("%d appends, %d syncs", writers*each, syncs)
}

// TestFaultSweep fails the k-th file-system operation of each kind during a
// workload of appends and rolls (and the Open before it), lets the workload run
// on, then crashes and reopens: Open must succeed and every acknowledged batch be
// there, byte-identical; nothing panics.
func TestFaultSweep(t *testing.T) {
	ops := []vfs.Op{vfs.OpOpen, vfs.OpWrite, vfs.OpSync, vfs.OpTruncate, vfs.OpRemove, vfs.OpRename, vfs.OpSyncDir, vfs.OpRead}
	for _, op := range ops {
		for k := 1; k <= 12; k++ {
			for _, errno := range []syscall.Errno{syscall.EIO, syscall.ENOSPC} {
				fsys := vfs.NewMemFS()
				cfg := testConfig(fsys)
				cfg.SegmentBytes = 1200
				var n atomic.Int32
				fsys.SetInjector(func(o vfs.Op, name string) error {
					if o == op && n.Add(1) == int32(k) {
						return errno
					}
					return nil
				})
				m := &model{}
				if l, err := Open("/p", cfg); err == nil {
					for i := 0; i < 25; i++ {
						b := testBatch(2, 60, int64(i))
						failed := l.Err() != nil
						if _, err := l.Append(b, int32(i/10)); err == nil {
							m.data = append(m.data, b...)
							m.acked = len(m.data)
						} else if l.Err() == nil && !errors.Is(err, errno) {
							t.Fatalf("%v #%d: append failed without a sticky error: %v", op, k, err)
						} else if !failed {
							// The append that met the fault: not acknowledged, maybe
							// written (whole, if the fault was its sync's).
							m.data = append(m.data, b...)
						}
						if i == 12 {
							l.Roll()
						}
					}
					l.Close()
				}
				fsys.SetInjector(nil)
				fsys.CrashKeep(vfs.TearLast(7))
				l, err := Open("/p", cfg)
				if err != nil {
					t.Fatalf("%v #%d %v: reopen: %v", op, k, errno, err)
				}
				m.checkRecovered(t, l, 0)
				l.Close()
			}
		}
	}
}
