package segment

import (
	"bytes"
	"errors"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/sediment-io/sediment/segment/vfs"
)

// stuckAt blocks the first file-system operation that match accepts, once armed,
// until release is closed; started is closed when it blocks.
type stuckAt struct {
	armed   atomic.Bool
	hit     atomic.Bool
	started chan struct{}
	release chan struct{}
	once    sync.Once
}

// unblock lets the stuck operation go on (idempotent; deferred, so that a
// failing test does not leave the log's Close waiting behind it).
func (s *stuckAt) unblock() { s.once.Do(func() { close(s.release) }) }

func newStuckAt(fsys *vfs.MemFS, match func(op vfs.Op, name string) bool) *stuckAt {
	s := &stuckAt{started: make(chan struct{}), release: make(chan struct{})}
	fsys.SetInjector(func(op vfs.Op, name string) error {
		if s.armed.Load() && match(op, name) && s.hit.CompareAndSwap(false, true) {
			close(s.started)
			<-s.release
		}
		return nil
	})
	return s
}

// wait is a deadlock guard, not a timing assertion: what it waits for takes
// microseconds when the code is right and never happens when it is wrong.
func wait[T any](t *testing.T, ch <-chan T, what string) T {
	t.Helper()
	select {
	case v := <-ch:
		return v
	case <-time.After(20 * time.Second):
		t.Fatalf("%s: still blocked after 20s", what)
		panic("unreachable")
	}
}

// Retention's file-system work (the start checkpoint, unlinking index files,
// renaming .log files into the recycle pool, the directory fsync) used to run
// holding the log's lock and syncMu, so every append and ack of the partition
// waited for it: several journal commits per deleted segment on ext4. Appends
// and syncs must now go on while it is stuck.
func TestRetentionDoesNotHoldUpAppends(t *testing.T) {
	for _, tc := range []struct {
		name  string
		stuck func(op vfs.Op, name string) bool
		apply func(l *Log, below int64) error
	}{
		{"SetStartOffset/checkpoint", func(op vfs.Op, name string) bool {
			return op == vfs.OpRename && filepath.Base(name) == logStartFile+".tmp"
		}, func(l *Log, below int64) error { return l.SetStartOffset(below) }},
		{"SetStartOffset/unlink", func(op vfs.Op, name string) bool {
			return op == vfs.OpRemove && filepath.Ext(name) == timeIndexSuffix
		}, func(l *Log, below int64) error { return l.SetStartOffset(below) }},
		{"DeleteLocalBelow/dirsync", func(op vfs.Op, name string) bool {
			return op == vfs.OpSyncDir
		}, func(l *Log, below int64) error { _, err := l.DeleteLocalBelow(below); return err }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			fsys := vfs.NewMemFS()
			stuck := newStuckAt(fsys, tc.stuck)
			cfg := recycleConfig(fsys)
			cfg.SegmentBytes = 1 << 20 // no roll (and its directory fsync) during the test's appends
			l := mustOpen(t, "/p", cfg)
			defer l.Close()
			defer stuck.unblock()
			for i := 0; i < 3; i++ {
				mustAppend(t, l, sameBatch(2), 1)
				if err := l.Roll(); err != nil {
					t.Fatal(err)
				}
			}
			below := l.Segments()[2].BaseOffset // drop the first two segments
			stuck.armed.Store(true)
			retention := make(chan error, 1)
			go func() { retention <- tc.apply(l, below) }()
			wait(t, stuck.started, "retention reaching the stuck operation")

			appended := make(chan error, 1)
			go func() {
				_, err := l.Append(sameBatch(2), 1) // flush always: returns once fsynced
				appended <- err
			}()
			if err := wait(t, appended, "an append while retention is stuck"); err != nil {
				t.Fatalf("append while retention is stuck: %v", err)
			}
			if d, e := l.DurableOffset(), l.EndOffset(); d != e {
				t.Fatalf("durable offset %d, end %d: the append returned before its sync", d, e)
			}
			select {
			case err := <-retention:
				t.Fatalf("retention returned (%v) while its file operation was stuck", err)
			default:
			}

			stuck.unblock()
			if err := wait(t, retention, "retention after the release"); err != nil {
				t.Fatal(err)
			}
			if got := l.Segments()[0].BaseOffset; got != below {
				t.Fatalf("first segment %d after retention, want %d", got, below)
			}
			if got := len(poolFiles(t, fsys, "/p")); got != 2 {
				t.Fatalf("%d files in the recycle pool, want the 2 dropped segments'", got)
			}
			// Everything acknowledged survives a crash, and the deletion stands.
			end := l.EndOffset()
			fsys.Crash()
			l2 := mustOpen(t, "/p", cfg)
			defer l2.Close()
			if l2.EndOffset() != end || l2.LocalStartOffset() != below {
				t.Fatalf("after a crash: end %d local start %d, want %d and %d", l2.EndOffset(), l2.LocalStartOffset(), end, below)
			}
		})
	}
}

// A failed file operation in retention's unlocked part makes the log refuse
// writes, as it did under the lock, and the error names the operation.
func TestRetentionFailureIsSticky(t *testing.T) {
	fsys := vfs.NewMemFS()
	eio := errors.New("injected EIO")
	var armed atomic.Bool
	fsys.SetInjector(func(op vfs.Op, name string) error {
		if armed.Load() && op == vfs.OpRename && filepath.Ext(name) == logSuffix {
			return eio
		}
		return nil
	})
	l := mustOpen(t, "/p", recycleConfig(fsys))
	defer l.Close()
	fillSegments(t, l, 3)
	armed.Store(true)
	err := l.SetStartOffset(l.Segments()[2].BaseOffset)
	if !errors.Is(err, eio) {
		t.Fatalf("SetStartOffset = %v, want the injected error", err)
	}
	if _, err := l.Append(sameBatch(2), 1); !errors.Is(err, eio) {
		t.Fatalf("append after the failed deletion = %v, want a refusal carrying the injected error", err)
	}
}

// SetStartOffset no longer rewrites the leader-epoch checkpoint (KAFKA-15046):
// the truncation is in memory, and Open truncates the loaded cache from the
// persisted start offset again, so a crash cannot bring the dropped entries back.
func TestStartOffsetEpochTruncationSurvivesCrash(t *testing.T) {
	fsys := vfs.NewMemFS()
	cfg := testConfig(fsys)
	l := mustOpen(t, "/p", cfg)
	// epochs 1@0, 3@10, 4@15, end 20, all fsynced (flush always).
	fill(t, l, 10, 1, func(int) int32 { return 1 })
	fill(t, l, 5, 1, func(int) int32 { return 3 })
	fill(t, l, 5, 1, func(int) int32 { return 4 })
	if err := l.SetStartOffset(12); err != nil {
		t.Fatal(err)
	}
	want := [][2]int64{{3, 12}, {4, 15}}
	check := func(when string, got [][2]int64) {
		t.Helper()
		if len(got) != len(want) || got[0] != want[0] || got[1] != want[1] {
			t.Fatalf("epochs %s: %v, want %v", when, got, want)
		}
	}
	check("after SetStartOffset", l.Epochs())
	b, err := vfs.ReadFile(fsys, "/p/"+leaderEpochFile)
	if err != nil {
		t.Fatal(err)
	}
	if es, err := decodeEpochs("x", b); err != nil || len(es) != 3 {
		t.Fatalf("checkpoint file has %d entries (%v): SetStartOffset rewrote it", len(es), err)
	}
	fsys.Crash()
	l = mustOpen(t, "/p", cfg)
	defer l.Close()
	if l.StartOffset() != 12 {
		t.Fatalf("start offset after crash %d, want 12", l.StartOffset())
	}
	check("after a crash and Open", l.Epochs())
}

// Appenders, readers and retention (SetStartOffset and DeleteLocalBelow, the
// pool recycling files) all at once; then a crash. Every acknowledged batch at
// or above the final local start must come back byte-identical, in order.
func TestRetentionConcurrentWithAppendsAndReads(t *testing.T) {
	fsys := vfs.NewMemFS()
	cfg := recycleConfig(fsys)
	cfg.SegmentBytes = 2000
	l := mustOpen(t, "/p", cfg)
	const writers, perWriter = 4, 150
	var (
		mu      sync.Mutex
		acked   = map[int64][]byte{} // base offset -> batch as appended (stamped)
		wg      sync.WaitGroup
		stop    = make(chan struct{})
		deleted atomic.Int64 // segments DeleteLocalBelow removed
	)
	for w := 0; w < writers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			// Past perWriter, go on until retention has deleted a few segments
			// under the appends (it may get the locks late on a busy machine).
			for i := 0; i < perWriter || (deleted.Load() < 3 && i < 50*perWriter); i++ {
				b := sameBatch(2)
				r, err := l.Append(b, 1)
				if err != nil {
					t.Error(err)
					return
				}
				mu.Lock()
				acked[r.FirstOffset] = b
				mu.Unlock()
			}
		}()
	}
	var side sync.WaitGroup
	side.Add(2)
	go func() { // retention: keep about 600 offsets locally, 300 in the whole log
		defer side.Done()
		for i := 0; ; i++ {
			select {
			case <-stop:
				return
			default:
			}
			end := l.EndOffset()
			var err error
			if i%2 == 0 {
				var n int
				n, err = l.DeleteLocalBelow(end - 600)
				deleted.Add(int64(n))
			} else if end > 900 {
				err = l.SetStartOffset(end - 900)
			}
			if err != nil {
				t.Error(err)
				return
			}
		}
	}()
	go func() { // a reader from the local start
		defer side.Done()
		readUntilStopped(t, stop, func() (ReadResult, error) {
			return l.Read(l.LocalStartOffset(), ReadOptions{MaxBytes: 1 << 16})
		}, ErrOffsetOutOfRange, ErrNotLocal)
	}()
	wg.Wait()
	close(stop)
	side.Wait()
	if t.Failed() {
		return
	}
	start, end := l.LocalStartOffset(), l.EndOffset()
	if start == 0 {
		t.Fatal("retention never deleted a segment")
	}
	// Rolls may have emptied the pool by the end; some file must have passed through it.
	if pooled := len(poolFiles(t, fsys, "/p")); l.reused+pooled == 0 || pooled > cfg.RecycleSegments {
		t.Fatalf("%d files reused, %d in the pool: want some recycling, at most %d pooled", l.reused, pooled, cfg.RecycleSegments)
	}
	fsys.Crash()
	l2 := mustOpen(t, "/p", cfg)
	defer l2.Close()
	if l2.EndOffset() != end || l2.LocalStartOffset() != start {
		t.Fatalf("after a crash: local start %d end %d, want %d and %d", l2.LocalStartOffset(), l2.EndOffset(), start, end)
	}
	got := readAll(t, l2, start)
	var want []byte
	for off := start; off < end; off += 2 {
		b, ok := acked[off]
		if !ok {
			t.Fatalf("no acknowledged batch at offset %d", off)
		}
		want = append(want, b...)
	}
	if !bytes.Equal(got, want) {
		t.Fatalf("after a crash the log from %d differs from what was acknowledged (%d bytes, want %d)", start, len(got), len(want))
	}
}
