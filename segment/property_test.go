package segment

import (
	"bytes"
	"errors"
	"fmt"
	"math/rand/v2"
	"sync"
	"testing"
	"time"

	"github.com/sediment-io/sediment/segment/vfs"
)

// TestRandomOpsMatchModel drives a log with random appends, reads, truncations,
// start-offset moves, rolls and clean reopens, and checks every answer against a
// plain list of batches.
func TestRandomOpsMatchModel(t *testing.T) {
	for seed := uint64(1); seed <= 25; seed++ {
		t.Run(fmt.Sprint(seed), func(t *testing.T) {
			rng := rand.New(rand.NewPCG(seed, 99))
			fsys := vfs.NewMemFS()
			cfg := testConfig(fsys)
			cfg.SegmentBytes = int64(1600 + rng.IntN(4000))
			cfg.IndexIntervalBytes = rng.IntN(1000)
			cfg.SegmentIndexBytes = 12 * (1 + rng.IntN(20))
			l := mustOpen(t, "/p", cfg)
			var model [][]byte // batches from the log start on
			start := int64(0)
			end := func() int64 {
				if len(model) == 0 {
					return l.EndOffset()
				}
				return BatchHeader(model[len(model)-1]).LastOffset() + 1
			}
			for op := 0; op < 300; op++ {
				switch k := rng.IntN(20); {
				case k < 10:
					b := testBatch(1+rng.IntN(5), rng.IntN(300), int64(op*10))
					want := end()
					r, err := l.Append(b, int32(op/50))
					if err != nil {
						t.Fatal(err)
					}
					if r.FirstOffset != want {
						t.Fatalf("op %d: appended at %d, want %d", op, r.FirstOffset, want)
					}
					model = append(model, b)
				case k < 15 && len(model) > 0:
					i := rng.IntN(len(model))
					h := BatchHeader(model[i])
					off := h.BaseOffset() + rng.Int64N(int64(h.LastOffsetDelta())+1)
					if off < start {
						off = start
					}
					maxBytes := rng.IntN(3000)
					r, err := l.Read(off, ReadOptions{MaxBytes: maxBytes, MinOneBatch: true})
					if err != nil {
						t.Fatalf("op %d: Read(%d): %v", op, off, err)
					}
					if !bytes.HasPrefix(r.Data, model[i]) && !(off >= start && bytes.HasPrefix(r.Data, model[i])) {
						t.Fatalf("op %d: Read(%d) does not start with batch %d", op, off, i)
					}
					if len(r.Data) > max(maxBytes, len(model[i])) {
						t.Fatalf("op %d: Read returned %d bytes for MaxBytes %d", op, len(r.Data), maxBytes)
					}
					var want []byte
					for _, b := range model[i:] {
						if len(want)+len(b) > len(r.Data) {
							break
						}
						want = append(want, b...)
					}
					if !bytes.Equal(r.Data, want) {
						t.Fatalf("op %d: Read(%d) returned %d bytes not matching the model", op, off, len(r.Data))
					}
				case k == 15 && len(model) > 0:
					i := rng.IntN(len(model))
					h := BatchHeader(model[i])
					off := h.BaseOffset() + rng.Int64N(int64(h.LastOffsetDelta())+1)
					if err := l.TruncateTo(off); err != nil {
						t.Fatal(err)
					}
					if off <= start {
						model, start = nil, off
						if l.EndOffset() != off {
							t.Fatalf("full truncation to %d: end %d", off, l.EndOffset())
						}
					} else {
						model = model[:i]
					}
				case k == 16 && len(model) > 1:
					i := rng.IntN(len(model))
					h := BatchHeader(model[i])
					off := h.BaseOffset() + rng.Int64N(int64(h.LastOffsetDelta())+1)
					if err := l.SetStartOffset(off); err != nil {
						t.Fatal(err)
					}
					if off > start {
						start = off
						model = model[i:]
						if off > h.BaseOffset() && off > h.LastOffset() {
							model = model[1:]
						}
					}
				case k == 17:
					if err := l.Roll(); err != nil {
						t.Fatal(err)
					}
				case k == 18:
					if err := l.Close(); err != nil {
						t.Fatal(err)
					}
					l = mustOpen(t, "/p", cfg)
				case k == 19:
					fsys.Crash() // everything was fsynced (FlushAlways): nothing may change
					l = mustOpen(t, "/p", cfg)
				}
				if l.StartOffset() != start || l.EndOffset() != end() {
					t.Fatalf("op %d: start/end %d/%d, model %d/%d", op, l.StartOffset(), l.EndOffset(), start, end())
				}
			}
			var want []byte
			for _, b := range model {
				want = append(want, b...)
			}
			if got := readAll(t, l, start); !bytes.Equal(got, want) {
				t.Fatal("final contents differ from the model")
			}
			l.Close()
		})
	}
}

func TestConcurrentReadersDuringAppends(t *testing.T) {
	cfg := testConfig(vfs.NewMemFS())
	cfg.SegmentBytes = 5000
	l := mustOpen(t, "/p", cfg)
	defer l.Close()
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for r := 0; r < 4; r++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			readUntilStopped(t, stop, func() (ReadResult, error) {
				end := l.EndOffset()
				return l.Read(l.StartOffset(), ReadOptions{MaxBytes: 1 << 20, MaxOffset: end})
			}, ErrOffsetOutOfRange)
		}()
	}
	for i := 0; i < 300; i++ {
		mustAppend(t, l, testBatch(2, 40, int64(i)), 0)
		if i%100 == 99 {
			if err := l.SetStartOffset(l.EndOffset() - 50); err != nil {
				t.Fatal(err)
			}
		}
	}
	close(stop)
	wg.Wait()
}

func TestFlushIntervalSyncsInBackground(t *testing.T) {
	fsys := vfs.NewMemFS()
	cfg := testConfig(fsys)
	cfg.FlushPolicy = FlushInterval
	cfg.FlushInterval = 5 * time.Millisecond
	l := mustOpen(t, "/p", cfg)
	defer l.Close()
	b := testBatch(3, 10, 1)
	if _, err := l.AppendNoWait(b, 0); err != nil { // the broker's path: it never waits under interval
		t.Fatal(err)
	}
	deadline := time.Now().Add(5 * time.Second)
	for {
		l.fmu.Lock()
		d := l.durable
		l.fmu.Unlock()
		if d == 3 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("interval flush never happened")
		}
		time.Sleep(time.Millisecond)
	}
	fsys.Crash()
	l2 := mustOpen(t, "/p", cfg)
	defer l2.Close()
	if got := readAll(t, l2, 0); !bytes.Equal(got, b) {
		t.Fatal("interval-flushed batch lost in a crash")
	}
	if _, err := l.Append(testBatch(1, 1, 1), 0); err == nil || !errors.Is(err, vfs.ErrCrashed) {
		t.Logf("append on a pre-crash handle: %v", err)
	}
}

func TestReadersDuringTruncation(t *testing.T) {
	cfg := testConfig(vfs.NewMemFS())
	cfg.SegmentBytes = 3000
	cfg.FlushPolicy = FlushOS
	l := mustOpen(t, "/p", cfg)
	defer l.Close()
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for r := 0; r < 3; r++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			readUntilStopped(t, stop, func() (ReadResult, error) {
				return l.Read(l.StartOffset(), ReadOptions{MaxBytes: 1 << 16})
			}, ErrOffsetOutOfRange)
		}()
	}
	for round := 0; round < 30; round++ {
		for i := 0; i < 20; i++ {
			mustAppend(t, l, testBatch(2, 40, int64(i)), 0)
		}
		if err := l.TruncateTo(l.EndOffset() - 25); err != nil {
			t.Fatal(err)
		}
	}
	close(stop)
	wg.Wait()
}
