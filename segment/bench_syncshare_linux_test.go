//go:build linux

package segment

import (
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"

	"golang.org/x/sys/unix"
)

// BenchmarkSyncShare is the model behind the decision not to share fsyncs
// across logs (see status-segment.md, 05:00 UTC). Writers append 16.5 KiB
// batches to per-partition files (no log around them) and wait for
// durability by one of three strategies:
//
//	perfile   each writer fdatasyncs its own file (what Log does today; the
//	          kernel's journal already folds concurrent fdatasyncs of many
//	          files into one commit)
//	round     a process-wide flusher goroutine takes every file with waiters,
//	          fdatasyncs them concurrently, then wakes all their waiters
//	syncfs    the same flusher, but one syncfs(2) per round (flushes every
//	          dirty file on the file system, other processes' too)
//
// Run it with BenchmarkDiskReference and Append/always in one invocation.
// On the 2-core ext4/virtio VM of 2026-11-22 "round" lost 2-4x to
// "perfile" at p8/w1 and "syncfs" was level at best: a round lasts as long as
// its slowest sync and no writer of the round can append again before it
// ends, while per-file syncs pipeline freely. Re-measure on other hardware
// before reviving the idea. Each sub-benchmark writes b.N x 16.5 KiB.
func BenchmarkSyncShare(b *testing.B) {
	for _, mode := range []string{"perfile", "round", "syncfs"} {
		for _, parts := range []int{1, 8} {
			for _, writers := range []int{1, 4} {
				b.Run(fmt.Sprintf("%s/p%d/w%d", mode, parts, writers), func(b *testing.B) {
					benchSyncShare(b, mode, parts, writers)
				})
			}
		}
	}
}

// shareFile is one partition's file in BenchmarkSyncShare.
type shareFile struct {
	mu   sync.Mutex // orders writes (the log's lock)
	f    *os.File
	size int64
}

func benchSyncShare(b *testing.B, mode string, parts, writers int) {
	dir := b.TempDir()
	files := make([]*shareFile, parts)
	for i := range files {
		f, err := os.OpenFile(filepath.Join(dir, fmt.Sprint(i)), os.O_RDWR|os.O_CREATE, 0o644)
		if err != nil {
			b.Fatal(err)
		}
		defer f.Close()
		files[i] = &shareFile{f: f}
	}
	// Flusher state: pending files for the next round; round numbers.
	var (
		mu        sync.Mutex
		cond      = sync.Cond{L: &mu}
		pending   = map[*shareFile]bool{}
		nextRound = uint64(1) // the round a waiter registering now is covered by
		doneRound uint64
		syncErr   error
		kick      = make(chan struct{}, 1)
		stop      = make(chan struct{})
		fwg       sync.WaitGroup
	)
	if mode != "perfile" {
		fwg.Add(1)
		go func() {
			defer fwg.Done()
			var round []*shareFile
			for {
				select {
				case <-kick:
				case <-stop:
					return
				}
				mu.Lock()
				round = round[:0]
				for sf := range pending {
					round = append(round, sf)
				}
				clear(pending)
				r := nextRound
				nextRound++
				mu.Unlock()
				var err error
				if mode == "syncfs" {
					err = unix.Syncfs(int(files[0].f.Fd()))
				} else {
					var wg sync.WaitGroup
					var errMu sync.Mutex
					for _, sf := range round {
						wg.Add(1)
						go func() {
							defer wg.Done()
							if e := syscall.Fdatasync(int(sf.f.Fd())); e != nil {
								errMu.Lock()
								err = e
								errMu.Unlock()
							}
						}()
					}
					wg.Wait()
				}
				mu.Lock()
				doneRound = r
				if err != nil {
					syncErr = err
				}
				cond.Broadcast()
				mu.Unlock()
			}
		}()
	}
	batch := benchBatch()
	b.SetBytes(int64(len(batch)))
	var next atomic.Int64
	var wg sync.WaitGroup
	b.ResetTimer()
	for g := 0; g < parts*writers; g++ {
		sf := files[g%parts]
		wg.Add(1)
		go func() {
			defer wg.Done()
			for next.Add(1) <= int64(b.N) {
				sf.mu.Lock()
				_, err := sf.f.WriteAt(batch, sf.size)
				sf.size += int64(len(batch))
				sf.mu.Unlock()
				if err != nil {
					b.Error(err)
					return
				}
				if mode == "perfile" {
					if err := syscall.Fdatasync(int(sf.f.Fd())); err != nil {
						b.Error(err)
						return
					}
					continue
				}
				mu.Lock()
				pending[sf] = true
				my := nextRound
				select {
				case kick <- struct{}{}:
				default:
				}
				for doneRound < my && syncErr == nil {
					cond.Wait()
				}
				err = syncErr
				if len(pending) > 0 {
					select {
					case kick <- struct{}{}:
					default:
					}
				}
				mu.Unlock()
				if err != nil {
					b.Error(err)
					return
				}
			}
		}()
	}
	wg.Wait()
	b.StopTimer()
	close(stop)
	fwg.Wait()
}
