package tiering

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"unsafe"
)

// readExact reads exactly n bytes (n > 0) of key at off into a buffer allocated once at that size.
//
// Why not ReadRange: it copies into a bytes.Buffer grown to the length, and the final Read that
// finds EOF needs room, so the buffer doubles (a second allocation, a zeroed 2n array and a copy
// of everything read) and the result keeps the doubled array alive — 23-30 % of the broker's CPU
// in a replay from the bucket (bench profile, 2026-11-22), and the chunk cache held twice the
// bytes it accounted for.
//
// The body is still read to EOF (one extra Read into a small array): an HTTP body closed before
// EOF costs the S3 client its keep-alive connection. A body longer than n is an error, as is a
// shorter one (never a truncated result). The buffer is not zeroed first (makeNoZero): on success
// every byte of it was read from the body, and on failure it is dropped.
func readExact(ctx context.Context, s Store, key string, off, n int64) ([]byte, error) {
	rc, err := s.Get(ctx, key, off, n)
	if err != nil {
		return nil, err
	}
	defer rc.Close()
	buf := makeNoZero(int(n))
	if _, err := io.ReadFull(rc, buf); err != nil {
		if errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, io.EOF) {
			return nil, fmt.Errorf("tiering: %s [%d,+%d): short read: %w", key, off, n, io.ErrUnexpectedEOF)
		}
		return nil, fmt.Errorf("tiering: reading %s [%d,+%d): %w", key, off, n, err)
	}
	var extra [1]byte
	for {
		m, err := rc.Read(extra[:])
		if m > 0 {
			return nil, fmt.Errorf("tiering: %s [%d,+%d): the store returned more bytes than asked", key, off, n)
		}
		if err == io.EOF {
			return buf, nil
		}
		if err != nil {
			return nil, fmt.Errorf("tiering: reading %s [%d,+%d): %w", key, off, n, err)
		}
	}
}

// makeNoZero returns a byte slice of length and capacity n whose contents are undefined (the
// caller overwrites all of it). Zeroing an 8 MiB chunk buffer that is then filled from the HTTP
// body was about 8 % of the broker's CPU in a replay from the bucket (memclrNoHeapPointers under
// readExact's makeslice, BenchmarkTierReplayBigFetch profile 2026-11-22 12:02): a large allocation
// is zeroed whenever its memory was used before, which with chunks churning through the cache is
// nearly always. Go offers unzeroed allocation only inside the standard library; strings.Builder's
// Grow is its public door (it allocates with bytealg.MakeNoZero). The builder's only string is
// dropped here, so the memory is this slice's alone. If Grow ever allocated less than asked,
// Cap says so and a zeroed make is used instead.
func makeNoZero(n int) []byte {
	if n < 4096 {
		return make([]byte, n) // small: zeroing costs nothing worth the trick
	}
	var sb strings.Builder
	sb.Grow(n)
	if sb.Cap() < n {
		return make([]byte, n)
	}
	sb.WriteByte(0)
	s := sb.String()
	return unsafe.Slice(unsafe.StringData(s), n)
}
