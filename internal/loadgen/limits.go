package loadgen

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"slices"
	"time"

	"github.com/minio/minio-go/v7"
	"golang.org/x/sys/unix"
)

// The machine's limits, measured in the same invocation as the broker runs so that a ratio
// compares figures taken under the same (shared, noisy) conditions.

// DiskResult is a sequential write with periodic fdatasync, and the latency of an fdatasync after
// a small append (the floor under an acks=all produce with flush policy `always`).
type DiskResult struct {
	Bytes        int64         `json:"bytes"`
	SyncEvery    int64         `json:"sync_every_bytes"`
	Elapsed      time.Duration `json:"elapsed_ns"`
	ReadBytes    int64         `json:"read_bytes"`
	ReadElapsed  time.Duration `json:"read_elapsed_ns"`
	SmallSyncs   int           `json:"small_syncs"`
	SmallSyncP50 time.Duration `json:"small_sync_p50_ns"`
	SmallSyncP99 time.Duration `json:"small_sync_p99_ns"`
	SmallSyncMax time.Duration `json:"small_sync_max_ns"`
}

func (d DiskResult) MBps() float64 { return mbps(d.Bytes, d.Elapsed) }

// ReadMBps is the sequential read of the written bytes after their page cache was dropped.
func (d DiskResult) ReadMBps() float64 { return mbps(d.ReadBytes, d.ReadElapsed) }

func mbps(n int64, d time.Duration) float64 {
	if d <= 0 {
		return 0
	}
	return float64(n) / (1 << 20) / d.Seconds()
}

// MaxDiskBytes bounds DiskWrite whatever it is asked for.
const MaxDiskBytes = 1 << 30

// DiskWrite writes total bytes (at most MaxDiskBytes) in 1 MiB writes to a new file in dir,
// fdatasync after every syncEvery bytes and at the end, then measures smallSyncs appends of 4 KiB
// each followed by an fdatasync. The file is removed afterwards.
func DiskWrite(ctx context.Context, dir string, total, syncEvery int64, smallSyncs int) (DiskResult, error) {
	if total > MaxDiskBytes {
		total = MaxDiskBytes
	}
	if total <= 0 || syncEvery <= 0 {
		return DiskResult{}, errors.New("disk: total and sync interval must be positive")
	}
	f, err := os.CreateTemp(dir, "sediment-bench-disk-*")
	if err != nil {
		return DiskResult{}, err
	}
	defer os.Remove(f.Name())
	defer f.Close()
	buf := make([]byte, 1<<20)
	rand.Read(buf) // incompressible, in case the file system compresses
	r := DiskResult{SyncEvery: syncEvery}
	start := time.Now()
	var sinceSync int64
	for r.Bytes < total {
		if err := ctx.Err(); err != nil {
			return r, err
		}
		n := int64(len(buf))
		if total-r.Bytes < n {
			n = total - r.Bytes
		}
		if _, err := f.Write(buf[:n]); err != nil {
			return r, err
		}
		r.Bytes += n
		sinceSync += n
		if sinceSync >= syncEvery {
			if err := unix.Fdatasync(int(f.Fd())); err != nil {
				return r, err
			}
			sinceSync = 0
		}
	}
	if err := unix.Fdatasync(int(f.Fd())); err != nil {
		return r, err
	}
	r.Elapsed = time.Since(start)

	// Sequential read of the same bytes from the disk (page cache dropped first).
	if err := unix.Fadvise(int(f.Fd()), 0, 0, unix.FADV_DONTNEED); err != nil {
		return r, err
	}
	start = time.Now()
	for off := int64(0); off < r.Bytes; {
		n, err := f.ReadAt(buf, off)
		off += int64(n)
		r.ReadBytes += int64(n)
		if err != nil {
			if err == io.EOF {
				break
			}
			return r, err
		}
	}
	r.ReadElapsed = time.Since(start)

	lats := make([]time.Duration, 0, smallSyncs)
	for i := 0; i < smallSyncs && ctx.Err() == nil; i++ {
		t := time.Now()
		if _, err := f.Write(buf[:4096]); err != nil {
			return r, err
		}
		if err := unix.Fdatasync(int(f.Fd())); err != nil {
			return r, err
		}
		lats = append(lats, time.Since(t))
	}
	slices.Sort(lats)
	r.SmallSyncs = len(lats)
	r.SmallSyncP50, r.SmallSyncP99 = pct(lats, 0.50), pct(lats, 0.99)
	if len(lats) > 0 {
		r.SmallSyncMax = lats[len(lats)-1]
	}
	return r, nil
}

// TCPResult is one loopback stream: a sender writing 1 MiB buffers, a receiver discarding them.
type TCPResult struct {
	Bytes   int64         `json:"bytes"`
	Elapsed time.Duration `json:"elapsed_ns"`
}

func (t TCPResult) MBps() float64 { return mbps(t.Bytes, t.Elapsed) }

// LoopbackTCP streams from a sender to a receiver goroutine over 127.0.0.1 for d and reports the
// bytes the receiver got.
func LoopbackTCP(ctx context.Context, d time.Duration) (TCPResult, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return TCPResult{}, err
	}
	defer ln.Close()
	type got struct {
		n   int64
		err error
	}
	done := make(chan got, 1)
	go func() {
		c, err := ln.Accept()
		if err != nil {
			done <- got{err: err}
			return
		}
		defer c.Close()
		n, err := io.CopyBuffer(io.Discard, c, make([]byte, 1<<20))
		done <- got{n, err}
	}()
	c, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		return TCPResult{}, err
	}
	buf := make([]byte, 1<<20)
	start := time.Now()
	end := start.Add(d)
	for time.Now().Before(end) && ctx.Err() == nil {
		if _, err := c.Write(buf); err != nil {
			c.Close()
			return TCPResult{}, err
		}
	}
	c.Close()
	g := <-done
	el := time.Since(start)
	if g.err != nil {
		return TCPResult{}, g.err
	}
	return TCPResult{Bytes: g.n, Elapsed: el}, ctx.Err()
}

// ObjectResult is raw PUT and GET throughput of whole objects through minio-go.
type ObjectResult struct {
	Objects    int           `json:"objects"`
	ObjectSize int64         `json:"object_size"`
	PutElapsed time.Duration `json:"put_elapsed_ns"`
	GetElapsed time.Duration `json:"get_elapsed_ns"`
}

func (o ObjectResult) PutMBps() float64 { return mbps(int64(o.Objects)*o.ObjectSize, o.PutElapsed) }
func (o ObjectResult) GetMBps() float64 { return mbps(int64(o.Objects)*o.ObjectSize, o.GetElapsed) }

// ObjectPutGet PUTs n objects of size bytes (one after another) to bucket, GETs each back in
// full, checks the bytes, and deletes them.
func ObjectPutGet(ctx context.Context, cl *minio.Client, bucket string, n int, size int64) (ObjectResult, error) {
	r := ObjectResult{ObjectSize: size}
	data := make([]byte, size)
	rand.Read(data)
	prefix := fmt.Sprintf("sediment-bench-%d/", time.Now().UnixNano())
	keys := make([]string, n)
	defer func() {
		for _, k := range keys {
			if k != "" {
				cl.RemoveObject(context.Background(), bucket, k, minio.RemoveObjectOptions{})
			}
		}
	}()
	start := time.Now()
	for i := range n {
		k := filepath.ToSlash(fmt.Sprintf("%sobj-%03d", prefix, i))
		if _, err := cl.PutObject(ctx, bucket, k, bytes.NewReader(data), size, minio.PutObjectOptions{}); err != nil {
			return r, fmt.Errorf("PUT %s: %w", k, err)
		}
		keys[i] = k
		r.Objects++
	}
	r.PutElapsed = time.Since(start)
	got := make([]byte, size)
	start = time.Now()
	for _, k := range keys {
		o, err := cl.GetObject(ctx, bucket, k, minio.GetObjectOptions{})
		if err != nil {
			return r, fmt.Errorf("GET %s: %w", k, err)
		}
		_, err = io.ReadFull(o, got)
		o.Close()
		if err != nil {
			return r, fmt.Errorf("GET %s: %w", k, err)
		}
	}
	r.GetElapsed = time.Since(start)
	if !bytes.Equal(got, data) {
		return r, errors.New("GET returned other bytes than were PUT")
	}
	return r, nil
}

// DropCache asks the kernel to drop the page cache of every regular file under dir (fdatasync
// first, so dirty pages can go too), so that a following read phase reads from the disk rather
// than from memory. Only the bench's own data directories are ever passed here. It returns the
// bytes covered.
func DropCache(dir string) (int64, error) {
	var total int64
	err := filepath.WalkDir(dir, func(path string, d os.DirEntry, err error) error {
		if err != nil || !d.Type().IsRegular() {
			return nil // files may come and go under a running broker
		}
		f, err := os.Open(path)
		if err != nil {
			return nil
		}
		defer f.Close()
		st, err := f.Stat()
		if err != nil {
			return nil
		}
		unix.Fdatasync(int(f.Fd()))
		if err := unix.Fadvise(int(f.Fd()), 0, 0, unix.FADV_DONTNEED); err != nil {
			return err
		}
		total += st.Size()
		return nil
	})
	return total, err
}

// SyncLatency is the latency floor under a durable produce at a fixed rate: files appenders (one
// per partition), each writing recordSize bytes then fdatasync, together paced at rate per second.
type SyncLatency struct {
	Files      int           `json:"files"`
	Rate       int           `json:"rate"`
	RecordSize int           `json:"record_size"`
	Samples    int           `json:"samples"`
	P50        time.Duration `json:"p50_ns"`
	P99        time.Duration `json:"p99_ns"`
	P999       time.Duration `json:"p999_ns"`
	Max        time.Duration `json:"max_ns"`
}

// PacedSyncLatency measures SyncLatency for d in dir (files removed afterwards). An appender that
// falls behind its pace does not catch up by bursting: each sample is one write+fdatasync.
func PacedSyncLatency(ctx context.Context, dir string, files, rate, recordSize int, d time.Duration) (SyncLatency, error) {
	r := SyncLatency{Files: files, Rate: rate, RecordSize: recordSize}
	if files < 1 || rate < 1 || recordSize < 1 {
		return r, errors.New("sync latency: files, rate and record size must be positive")
	}
	type out struct {
		lats []time.Duration
		err  error
	}
	res := make(chan out, files)
	interval := time.Second * time.Duration(files) / time.Duration(rate)
	start := time.Now()
	for i := 0; i < files; i++ {
		go func(i int) {
			var o out
			defer func() { res <- o }()
			f, err := os.CreateTemp(dir, "sediment-bench-sync-*")
			if err != nil {
				o.err = err
				return
			}
			defer os.Remove(f.Name())
			defer f.Close()
			buf := make([]byte, recordSize)
			next := start.Add(interval * time.Duration(i) / time.Duration(files))
			for end := start.Add(d); time.Now().Before(end) && ctx.Err() == nil; {
				if w := time.Until(next); w > 0 {
					time.Sleep(w)
				}
				next = next.Add(interval)
				if now := time.Now(); next.Before(now) {
					next = now
				}
				t := time.Now()
				if _, err := f.Write(buf); err != nil {
					o.err = err
					return
				}
				if err := unix.Fdatasync(int(f.Fd())); err != nil {
					o.err = err
					return
				}
				o.lats = append(o.lats, time.Since(t))
			}
		}(i)
	}
	var all []time.Duration
	var firstErr error
	for i := 0; i < files; i++ {
		o := <-res
		all = append(all, o.lats...)
		if o.err != nil && firstErr == nil {
			firstErr = o.err
		}
	}
	slices.Sort(all)
	r.Samples = len(all)
	r.P50, r.P99, r.P999 = pct(all, 0.5), pct(all, 0.99), pct(all, 0.999)
	if len(all) > 0 {
		r.Max = all[len(all)-1]
	}
	return r, firstErr
}
