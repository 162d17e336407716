package segment

import (
	"encoding/binary"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/sediment-io/sediment/segment/vfs"
)

// SEDIMENT_NOYIELD=1 turns off the group-commit yield (WaitDurable), and
// SEDIMENT_NOPAD=1 the zero padding of appends to a page boundary
// (Log.writeData), for A/B runs of the same benchmarks.
func init() {
	if os.Getenv("SEDIMENT_NOYIELD") != "" {
		groupCommitYield = false
	}
	if os.Getenv("SEDIMENT_NOPAD") != "" {
		padToPage = false
	}
}

// benchTs is benchBatch's first timestamp.
const benchTs = 1_700_000_000_000

// benchBatch is 16 records of 1 KiB: a ~16.5 KiB batch, the workload.
func benchBatch() []byte { return testBatch(16, 1000, benchTs) }

// BenchmarkAppend appends 16 KiB batches from concurrent writers to 1 or 8
// partition logs on the real file system under each flush policy. writers is the
// number of goroutines per partition: with 1 the per-partition latency bounds
// throughput; with more, a log's group commit shares each fdatasync (w16 shows
// how durable throughput scales with the bytes each fdatasync covers; w64 how far it goes).
func BenchmarkAppend(b *testing.B) {
	for _, pol := range []FlushPolicy{FlushAlways, FlushInterval, FlushOS} {
		for _, parts := range []int{1, 8} {
			for _, writers := range []int{1, 4, 16, 64} {
				b.Run(fmt.Sprintf("%s/p%d/w%d", pol, parts, writers), func(b *testing.B) {
					benchAppend(b, pol, parts, writers)
				})
				if pol == FlushAlways && parts == 8 && writers >= 16 {
					b.Run(fmt.Sprintf("%s/p%d/w%d/recycled", pol, parts, writers), func(b *testing.B) {
						benchAppendSteady(b, parts, writers, DefaultRecycleSegments)
					})
					b.Run(fmt.Sprintf("%s/p%d/w%d/unlinked", pol, parts, writers), func(b *testing.B) {
						benchAppendSteady(b, parts, writers, 0)
					})
					if dropPoolPages != nil {
						b.Run(fmt.Sprintf("%s/p%d/w%d/recycled-evicted", pol, parts, writers), func(b *testing.B) {
							benchAppendSteady(b, parts, writers, -DefaultRecycleSegments)
						})
					}
				}
			}
		}
	}
}

// BenchmarkAppend's steady-state rows, always/p8/w16 and w64 only:
// .../recycled: a broker in steady state — 32 MiB segments, and each log keeps
// only a trailing window of 2 segments' worth of offsets (retention through
// SetStartOffset, called by one writer per log inside the timed loop), so every roll
// takes its file from the recycle pool; the rolls' trims and the deletions
// are timed. A warm-up before the timer (FlushOS) writes 4 segments per log,
// deletes below the window once, which fills the pool, and rolls (which
// syncs), so the timed appends start in a pool file (its pages still in the
// page cache; later pool files were written during the timed loop).
// .../unlinked: the same with RecycleSegments = 0 (every new segment a new
// file, every deleted one unlinked): the A/B for recycling. The fresh-log
// rows (no suffix) use 1 GiB segments and never roll or delete.
// .../recycled-evicted: recycled, with each pool file's pages dropped from the
// page cache as it enters the pool (recycle < 0 here): a broker whose deleted
// segments were written days ago, whose pages are long gone. Appends that do not
// end on a page boundary would each read a page from disk first, but for the
// zero padding (Log.writeData).
func benchAppendSteady(b *testing.B, parts, writers, recycle int) {
	evict := recycle < 0
	recycle = max(recycle, -recycle)
	const segBytes = 32 << 20
	dir := b.TempDir()
	cfg := DefaultConfig()
	cfg.SegmentBytes = segBytes
	cfg.RecycleSegments = recycle
	cfg.FlushPolicy = FlushOS
	batch := benchBatch()
	perSeg := int64(segBytes / len(batch) * 16) // offsets per segment (16 records a batch)
	window := 2 * perSeg
	logs := make([]*Log, parts)
	for i := range logs {
		l, err := Open(filepath.Join(dir, fmt.Sprint(i)), cfg)
		if err != nil {
			b.Fatal(err)
		}
		logs[i] = l
		for n := 0; n < 4*segBytes; n += len(batch) {
			if _, err := l.Append(batch, 1); err != nil {
				b.Fatal(err)
			}
		}
		if err := l.SetStartOffset(l.EndOffset() - window); err != nil {
			b.Fatal(err)
		}
		if evict {
			dropPoolPages(l)
		}
		if got := len(l.pool); got != min(recycle, 2) {
			b.Fatalf("warm-up left %d files in the pool, want %d", got, min(recycle, 2))
		}
		if err := l.Roll(); err != nil { // syncs the warm-up's data; the new segment is a pool file
			b.Fatal(err)
		}
		c := l.Config()
		c.FlushPolicy = FlushAlways
		if err := l.SetConfig(c); err != nil {
			b.Fatal(err)
		}
	}
	defer func() {
		for _, l := range logs {
			l.Close()
		}
	}()
	appendConcurrently(b, logs, writers, batch, func(l *Log, first bool, r AppendResult) error {
		// One writer per log applies retention, as a broker's one retention
		// task per partition would.
		if from := r.LastOffset + 1 - window; first && from > l.StartOffset()+perSeg/2 {
			if err := l.SetStartOffset(from); err != nil {
				return err
			}
			if evict {
				dropPoolPages(l)
			}
		}
		return nil
	})
	reused := 0
	for _, l := range logs {
		reused += l.reused - min(recycle, 1) // the warm-up's roll took one
	}
	// New segments the timed loop took from the pool (with -benchtime large
	// enough to roll; 0 in the unlinked rows).
	b.ReportMetric(float64(reused), "reused")
}

// reportBytesPerSync, deferred right before the timed loop, reports the
// appended bytes per group-commit fdatasync (B/sync) under FlushAlways: what
// bounds durable throughput (status-segment.md).
func reportBytesPerSync(b *testing.B, logs []*Log, batchLen int) func() {
	var before int64
	for _, l := range logs {
		before += l.syncRounds.Load()
	}
	return func() {
		var n int64
		for _, l := range logs {
			n += l.syncRounds.Load()
		}
		if n > before {
			b.ReportMetric(float64(int64(b.N)*int64(batchLen))/float64(n-before), "B/sync")
		}
	}
}

func benchAppend(b *testing.B, pol FlushPolicy, parts, writers int) {
	dir := b.TempDir()
	cfg := DefaultConfig()
	cfg.FlushPolicy = pol
	logs := make([]*Log, parts)
	for i := range logs {
		l, err := Open(filepath.Join(dir, fmt.Sprint(i)), cfg)
		if err != nil {
			b.Fatal(err)
		}
		logs[i] = l
	}
	defer func() {
		for _, l := range logs {
			l.Close()
		}
	}()
	appendConcurrently(b, logs, writers, benchBatch(), nil)
}

// appendConcurrently is the timed loop of the Append benchmarks: writers
// goroutines per log append copies of batch until b.N appends are done; after,
// if set, runs after each append (first: the goroutine is its log's first
// writer). It reports MB/s, allocations and bytes per sync.
func appendConcurrently(b *testing.B, logs []*Log, writers int, batch []byte, after func(l *Log, first bool, r AppendResult) error) {
	b.SetBytes(int64(len(batch)))
	b.ReportAllocs()
	defer reportBytesPerSync(b, logs, len(batch))()
	var next atomic.Int64
	var wg sync.WaitGroup
	b.ResetTimer()
	for g := 0; g < len(logs)*writers; g++ {
		wg.Add(1)
		go func(l *Log, first bool) {
			defer wg.Done()
			buf := append([]byte(nil), batch...)
			for next.Add(1) <= int64(b.N) {
				r, err := l.Append(buf, 1)
				if err == nil && after != nil {
					err = after(l, first, r)
				}
				if err != nil {
					b.Error(err)
					return
				}
			}
		}(logs[g%len(logs)], g < len(logs))
	}
	wg.Wait()
	b.StopTimer()
}

// BenchmarkDiskReference is `dd if=/dev/zero bs=1M count=1024 conv=fdatasync` in
// Go, on the same file system as the append benchmarks (b.TempDir): one op
// writes 1 MiB sequentially; every 1 GiB, and at the end, the file is
// fdatasynced and writing restarts at offset 0, so any -benchtime uses at most
// 1 GiB of disk. -benchtime 1024x is exactly the dd run. Compare
// Append/always/p8 to it in the same run.
func BenchmarkDiskReference(b *testing.B) {
	const window = 1024 // MiB
	f, err := vfs.OS.OpenFile(filepath.Join(b.TempDir(), "ref"), os.O_RDWR|os.O_CREATE|os.O_TRUNC, 0o644)
	if err != nil {
		b.Fatal(err)
	}
	defer f.Close()
	buf := make([]byte, 1<<20)
	b.SetBytes(int64(len(buf)))
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if _, err := f.WriteAt(buf, int64(i%window)<<20); err != nil {
			b.Fatal(err)
		}
		if i%window == window-1 {
			if err := f.Datasync(); err != nil {
				b.Fatal(err)
			}
		}
	}
	if err := f.Datasync(); err != nil {
		b.Fatal(err)
	}
}

// filledLog returns a log of about size bytes of bench batches (FlushOS to
// fill fast), restamped so that the record at offset o has timestamp
// benchTs+o: timestamps grow through the log as offsets do.
func filledLog(b *testing.B, size int) (*Log, int64) {
	cfg := DefaultConfig()
	cfg.FlushPolicy = FlushOS
	cfg.SegmentBytes = 64 << 20
	l, err := Open(b.TempDir(), cfg)
	if err != nil {
		b.Fatal(err)
	}
	batch := benchBatch()
	for n := 0; n < size; n += len(batch) {
		first := benchTs + l.EndOffset()
		binary.BigEndian.PutUint64(batch[offBaseTimestamp:], uint64(first))
		binary.BigEndian.PutUint64(batch[offMaxTimestamp:], uint64(first)+uint64(BatchHeader(batch).LastOffsetDelta()))
		binary.BigEndian.PutUint32(batch[offCRC:], batchCRC(batch))
		if _, err := l.Append(batch, 1); err != nil {
			b.Fatal(err)
		}
	}
	return l, l.EndOffset()
}

// BenchmarkReadSequential reads the whole log front to back in 1 MiB fetches.
func BenchmarkReadSequential(b *testing.B) {
	l, end := filledLog(b, 128<<20)
	defer l.Close()
	b.ReportAllocs()
	b.ResetTimer()
	var total int64
	off := int64(0)
	for i := 0; i < b.N; i++ {
		if off >= end {
			off = 0
		}
		r, err := l.Read(off, ReadOptions{MaxBytes: 1 << 20, MinOneBatch: true})
		if err != nil {
			b.Fatal(err)
		}
		total += int64(len(r.Data))
		off = r.NextOffset
	}
	b.SetBytes(total / int64(b.N))
}

// BenchmarkIndexLookup reads one batch at random offsets (index lookup, header
// walk, one batch read), and looks up random timestamps, spread over the whole
// log as the offsets are (time index, offset index, header walk, one batch
// read and decoded). Both read one batch per lookup: MB/s counts its bytes.
func BenchmarkIndexLookup(b *testing.B) {
	l, end := filledLog(b, 128<<20)
	defer l.Close()
	rng := rand.New(rand.NewPCG(1, 2))
	batchLen := int64(len(benchBatch()))
	b.Run("offset", func(b *testing.B) {
		b.SetBytes(batchLen)
		b.ReportAllocs()
		for i := 0; i < b.N; i++ {
			off := rng.Int64N(end)
			r, err := l.Read(off, ReadOptions{MaxBytes: 1, MinOneBatch: true})
			if err != nil || len(r.Data) == 0 {
				b.Fatal(err)
			}
		}
	})
	b.Run("timestamp", func(b *testing.B) {
		b.SetBytes(batchLen)
		b.ReportAllocs()
		for i := 0; i < b.N; i++ {
			want := rng.Int64N(end) // the record with timestamp benchTs+want
			if off, _, ok, err := l.OffsetForTimestamp(benchTs + want); err != nil || !ok || off != want {
				b.Fatalf("OffsetForTimestamp(%d) = %d %v %v, want %d", benchTs+want, off, ok, err, want)
			}
		}
	})
}

// BenchmarkRawWriteDatasync is the floor under Append/always/pN/w1: N goroutines
// each write 16.5 KiB to their own file and fdatasync, with no log around it.
func BenchmarkRawWriteDatasync(b *testing.B) {
	for _, parts := range []int{1, 8} {
		b.Run(fmt.Sprintf("p%d", parts), func(b *testing.B) {
			dir := b.TempDir()
			batch := benchBatch()
			b.SetBytes(int64(len(batch)))
			var next atomic.Int64
			var wg sync.WaitGroup
			b.ResetTimer()
			for g := 0; g < parts; g++ {
				f, err := vfs.OS.OpenFile(filepath.Join(dir, fmt.Sprint(g)), os.O_RDWR|os.O_CREATE, 0o644)
				if err != nil {
					b.Fatal(err)
				}
				wg.Add(1)
				go func() {
					defer wg.Done()
					defer f.Close()
					for next.Add(1) <= int64(b.N) {
						if _, err := f.Write(batch); err != nil {
							b.Error(err)
							return
						}
						if err := f.Datasync(); err != nil {
							b.Error(err)
							return
						}
					}
				}()
			}
			wg.Wait()
		})
	}
}

// BenchmarkRecover measures an unclean Open of a log whose ~60 MiB active
// segment must be scanned (length, magic, CRC-32C, offsets) and re-indexed.
func BenchmarkRecover(b *testing.B) {
	l, _ := filledLog(b, 60<<20)
	dir := l.Dir()
	size := l.Segments()[len(l.Segments())-1].Size
	l.Close()
	cfg := DefaultConfig()
	cfg.FlushPolicy = FlushOS
	cfg.SegmentBytes = 64 << 20
	b.SetBytes(size)
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		b.StopTimer()
		os.Remove(filepath.Join(dir, cleanShutdownFile)) // make the next open unclean
		b.StartTimer()
		l, err := Open(dir, cfg)
		if err != nil {
			b.Fatal(err)
		}
		b.StopTimer()
		if got := l.Segments()[len(l.Segments())-1].Size; got != size {
			b.Fatalf("recovered %d of %d bytes", got, size)
		}
		l.Close()
		b.StartTimer()
	}
}
