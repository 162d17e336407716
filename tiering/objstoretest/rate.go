package objstoretest

import (
	"context"
	"io"
	"time"

	"github.com/sediment-io/sediment/tiering"
)

// RateStore models the read side of a remote object store for benchmarks that must not depend on
// this machine's MinIO: every Get answers after Latency, and its body then flows at BytesPerSec
// (per body, as one connection's; AWS quotes 85-90 MB/s per S3 connection). Everything else goes
// to the Store it wraps, unchanged.
type RateStore struct {
	tiering.Store
	Latency     time.Duration
	BytesPerSec float64
}

// Get waits Latency (or until ctx ends), then returns the wrapped store's body paced at BytesPerSec.
func (s *RateStore) Get(ctx context.Context, key string, off, n int64) (io.ReadCloser, error) {
	select {
	case <-time.After(s.Latency):
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	rc, err := s.Store.Get(ctx, key, off, n)
	if err != nil {
		return nil, err
	}
	return &rateBody{rc: rc, perSec: s.BytesPerSec, start: time.Now()}, nil
}

type rateBody struct {
	rc     io.ReadCloser
	perSec float64
	start  time.Time
	sent   int64
}

// Read returns at most 64 KiB, no sooner than the rate allows for everything sent so far.
func (b *rateBody) Read(p []byte) (int, error) {
	n, err := b.rc.Read(p[:min(len(p), 64<<10)])
	b.sent += int64(n)
	due := b.start.Add(time.Duration(float64(b.sent) / b.perSec * float64(time.Second)))
	time.Sleep(time.Until(due))
	return n, err
}

func (b *rateBody) Close() error { return b.rc.Close() }
