package segment

import (
	"bytes"
	"path/filepath"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/sediment-io/sediment/segment/vfs"
)

// A roll no longer fsyncs the closed segment's index files or writes the
// recovery point under the log's lock: the checkpointer does both in the
// background. Appends, rolls and syncs must go on while it is stuck, and a
// crash meanwhile loses nothing acknowledged: the segments whose indexes were
// not yet durable lie at or above the persisted recovery point, so Open scans
// them and rebuilds their indexes.
func TestRollDoesNotWaitForRecoveryCheckpoint(t *testing.T) {
	for _, tc := range []struct {
		name  string
		stuck func(op vfs.Op, name string) bool
	}{
		{"index fsync", func(op vfs.Op, name string) bool {
			return op == vfs.OpSync && filepath.Ext(name) == indexSuffix
		}},
		{"checkpoint rename", func(op vfs.Op, name string) bool {
			return op == vfs.OpRename && filepath.Base(name) == recoveryPointFile+".tmp"
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			fsys := vfs.NewMemFS()
			stuck := newStuckAt(fsys, tc.stuck)
			cfg := testConfig(fsys)
			cfg.SegmentBytes = 1 << 20 // only the test's rolls
			l := mustOpen(t, "/p", cfg)
			defer l.Close()
			defer stuck.unblock()

			// Three segments checkpointed as before; then the checkpointer sticks.
			for i := 0; i < 3; i++ {
				mustAppend(t, l, testBatch(3, 100, int64(1000+i)), 1)
				if err := l.Roll(); err != nil {
					t.Fatal(err)
				}
			}
			settledRecoveryPoint(t, l, fsys, "/p", l.Segments()[3].BaseOffset)
			rp0 := l.Segments()[3].BaseOffset
			stuck.armed.Store(true)
			// Appends (flush always: each returns once fsynced) and rolls go on
			// while the checkpointer the first roll started is stuck.
			done := make(chan error, 1)
			go func() {
				for i := 0; i < 5; i++ {
					if _, err := l.Append(testBatch(3, 100, int64(3000+i)), 1); err != nil {
						done <- err
						return
					}
					if err := l.Roll(); err != nil {
						done <- err
						return
					}
					if i == 0 {
						<-stuck.started
					}
				}
				_, err := l.Append(testBatch(3, 100, 4000), 1)
				done <- err
			}()
			wait(t, stuck.started, "the checkpointer reaching the stuck operation")
			if err := wait(t, done, "appends and rolls while the checkpoint is stuck"); err != nil {
				t.Fatal(err)
			}
			if got := persistedRecoveryPoint(t, fsys, "/p"); got != rp0 {
				t.Fatalf("recovery point %d on disk while the checkpointer is stuck, want %d", got, rp0)
			}
			want := readAll(t, l, 0)
			end, segs := l.EndOffset(), len(l.Segments())

			// Power fails with the checkpointer stuck. A closed segment above
			// the recovery point lost its index contents (never fsynced) ...
			fsys.Crash()
			stuck.unblock() // the dead process's operation now fails
			lost := segPath("/p", l.Segments()[len(l.Segments())-2].BaseOffset, timeIndexSuffix)
			if b, err := vfs.ReadFile(fsys, lost); err != nil || len(b) != 0 {
				t.Fatalf("index %s after the crash: %d bytes, %v; want the file, empty (its contents were never fsynced)", lost, len(b), err)
			}
			// ... and Open rebuilds it: every batch is found by offset.
			l2 := mustOpen(t, "/p", cfg)
			defer l2.Close()
			if l2.EndOffset() != end || len(l2.Segments()) != segs {
				t.Fatalf("after the crash: end %d, %d segments; want %d, %d", l2.EndOffset(), len(l2.Segments()), end, segs)
			}
			if got := readAll(t, l2, 0); !bytes.Equal(got, want) {
				t.Fatalf("after the crash the log reads %d bytes, not the %d acknowledged", len(got), len(want))
			}
			for off := int64(0); off < end; off++ {
				r, err := l2.Read(off, ReadOptions{MaxBytes: 1, MinOneBatch: true})
				if err != nil || len(r.Data) == 0 {
					t.Fatalf("Read(%d) after the crash: %d bytes, %v", off, len(r.Data), err)
				}
				if h := BatchHeader(r.Data); off < h.BaseOffset() || off > h.LastOffset() {
					t.Fatalf("Read(%d) returned batch [%d, %d]", off, h.BaseOffset(), h.LastOffset())
				}
			}
			if b, err := vfs.ReadFile(fsys, lost); err != nil || len(b) == 0 {
				t.Fatalf("index %s after Open: %d bytes, %v; want it rebuilt", lost, len(b), err)
			}
		})
	}
}

// Once the checkpointer has caught up, the recovery point is the active
// segment's base and every closed segment's index files are durable: a crash
// then keeps them byte for byte.
func TestRecoveryCheckpointMakesIndexesDurable(t *testing.T) {
	fsys := vfs.NewMemFS()
	cfg := recycleConfig(fsys)   // 1000-byte segments: the appends roll by size
	cfg.IndexIntervalBytes = 100 // every segment's offset index has entries
	l := mustOpen(t, "/p", cfg)
	defer l.Close()
	for i := 0; i < 40; i++ {
		mustAppend(t, l, testBatch(2, 60, int64(1000+i)), 1)
	}
	segs := l.Segments()
	if len(segs) < 5 {
		t.Fatalf("%d segments; the test needs rolls", len(segs))
	}
	active := segs[len(segs)-1].BaseOffset
	settledRecoveryPoint(t, l, fsys, "/p", active)
	before := map[string][]byte{}
	for _, s := range segs[:len(segs)-1] {
		for _, p := range []string{s.IndexPath, s.TimeIndexPath} {
			b, err := vfs.ReadFile(fsys, p)
			if err != nil || len(b) == 0 {
				t.Fatalf("%s: %d bytes, %v", p, len(b), err)
			}
			before[p] = b
		}
	}
	fsys.Crash()
	for p, b := range before {
		got, err := vfs.ReadFile(fsys, p)
		if err != nil || !bytes.Equal(got, b) {
			t.Fatalf("%s after the crash: %d bytes (%v), had %d: the checkpoint moved past it unsynced", p, len(got), err, len(b))
		}
	}
	if got := persistedRecoveryPoint(t, fsys, "/p"); got != active {
		t.Fatalf("recovery point %d after the crash, want %d", got, active)
	}
}

// Close waits for a checkpointer inside its write, and leaves the recovery
// point at the active segment with every index file durable, whichever of the
// two (the checkpointer or Close's shutdown) syncs the files the later rolls left.
func TestCloseWaitsForCheckpointer(t *testing.T) {
	fsys := vfs.NewMemFS()
	stuck := newStuckAt(fsys, func(op vfs.Op, name string) bool {
		return op == vfs.OpRename && filepath.Base(name) == recoveryPointFile+".tmp"
	})
	cfg := testConfig(fsys)
	cfg.SegmentBytes = 1 << 20
	l := mustOpen(t, "/p", cfg)
	defer stuck.unblock()
	stuck.armed.Store(true)
	for i := 0; i < 3; i++ {
		mustAppend(t, l, testBatch(3, 100, int64(1000+i)), 1)
		if err := l.Roll(); err != nil {
			t.Fatal(err)
		}
	}
	wait(t, stuck.started, "the checkpointer reaching the stuck rename")
	closed := make(chan error, 1)
	go func() { closed <- l.Close() }()
	select {
	case err := <-closed:
		t.Fatalf("Close returned (%v) while the checkpointer was inside its write", err)
	case <-time.After(20 * time.Millisecond): // Close waits for the checkpointer (changeMu)
	}
	stuck.unblock()
	if err := wait(t, closed, "Close after the release"); err != nil {
		t.Fatal(err)
	}
	segs := l.Segments()
	if got, want := persistedRecoveryPoint(t, fsys, "/p"), segs[len(segs)-1].BaseOffset; got != want {
		t.Fatalf("recovery point %d after Close, want the active segment %d", got, want)
	}
	before := map[string][]byte{}
	for _, s := range segs {
		b, err := vfs.ReadFile(fsys, s.IndexPath)
		if err != nil {
			t.Fatal(err)
		}
		before[s.IndexPath] = b
	}
	fsys.Crash()
	for p, b := range before {
		if got, _ := vfs.ReadFile(fsys, p); !bytes.Equal(got, b) {
			t.Fatalf("%s lost its contents in a crash after Close", p)
		}
	}
}

// persistedRecoveryPoint reads dir's recovery-point checkpoint (-1 if absent:
// a new log has none until its first checkpoint).
func persistedRecoveryPoint(t *testing.T, fsys vfs.FS, dir string) int64 {
	t.Helper()
	rp, ok, err := readOffsetCheckpoint(fsys, dir, recoveryPointFile, kindRecoveryPoint)
	if err != nil {
		t.Fatalf("recovery point in %s: %v", dir, err)
	}
	if !ok {
		return -1
	}
	return rp
}

// settledRecoveryPoint waits for the checkpointer and checks that it
// persisted want.
func settledRecoveryPoint(t *testing.T, l *Log, fsys vfs.FS, dir string, want int64) {
	t.Helper()
	settle(l)
	if got := persistedRecoveryPoint(t, fsys, dir); got != want {
		t.Fatalf("recovery point %d once the checkpointer settled, want %d", got, want)
	}
}

// A reset to a local start above segments whose index files the checkpointer
// has not synced must not persist a recovery point above them before they are
// gone: a crash part-way would leave them trusted with empty indexes. (The
// test holds changeMu, as a checkpointer that had not yet started would find
// it held, to keep the checkpointer out.)
func TestResetDoesNotTrustUnsyncedIndexes(t *testing.T) {
	fsys := vfs.NewMemFS()
	cfg := testConfig(fsys)
	cfg.SegmentBytes = 1 << 20
	l := mustOpen(t, "/p", cfg)
	mustAppend(t, l, testBatch(3, 100, 1000), 1)
	if err := l.Roll(); err != nil {
		t.Fatal(err)
	}
	rp0 := l.Segments()[1].BaseOffset
	settledRecoveryPoint(t, l, fsys, "/p", rp0)
	l.changeMu.Lock()
	for i := 0; i < 2; i++ {
		mustAppend(t, l, testBatch(3, 100, int64(2000+i)), 1)
		if err := l.Roll(); err != nil {
			t.Fatal(err)
		}
	}
	unsynced := l.Segments()[1].TimeIndexPath
	var crashed atomic.Bool
	fsys.SetInjector(func(op vfs.Op, name string) error {
		if op == vfs.OpRemove && crashed.CompareAndSwap(false, true) {
			fsys.Crash() // at the reset's first removal
			return syscall.EIO
		}
		return nil
	})
	l.syncMu.Lock()
	l.mu.Lock()
	err := l.resetLocked(l.end+100, l.start)
	l.mu.Unlock()
	l.syncMu.Unlock()
	l.changeMu.Unlock()
	if err == nil || !crashed.Load() {
		t.Fatalf("reset through a crash: %v (crashed %v)", err, crashed.Load())
	}
	fsys.SetInjector(nil)
	l.Close() // the dead process's log: its checkpointer ends
	if got := persistedRecoveryPoint(t, fsys, "/p"); got != rp0 {
		t.Fatalf("recovery point %d after a crash inside the reset, want %d (below the segments with unsynced indexes)", got, rp0)
	}
	if b, _ := vfs.ReadFile(fsys, unsynced); len(b) != 0 {
		t.Fatalf("%s survived the crash with %d bytes; the test needs it unsynced", unsynced, len(b))
	}
	l2 := mustOpen(t, "/p", cfg)
	defer l2.Close()
	if b, err := vfs.ReadFile(fsys, unsynced); err != nil || len(b) == 0 {
		t.Fatalf("%s after Open: %d bytes, %v; want it rebuilt", unsynced, len(b), err)
	}
}
