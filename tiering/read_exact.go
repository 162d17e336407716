package tiering

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"unsafe"
)

// readStep is how many bytes readInto reads between two progress reports: small enough that a
// reader waiting for the first MiB of a chunk is released soon after that MiB arrives, large enough
// that the reports cost nothing next to the copying (64 per 16 MiB chunk).
const readStep = 256 << 10

// readInto reads exactly len(buf) > 0 bytes of key at off into buf, reporting progress: after each
// step of readStep bytes, progress (if not nil) is called with the number of bytes of buf filled so
// far, so that readers may use a prefix while the rest is still arriving (the chunk cache, whose
// readers would otherwise wait for a whole 16 MiB chunk before their first byte). A reported prefix
// is final: every byte of it came from the body, at its place in the range (the S3 store refuses a
// response that does not start where the range does). An error after some progress means the rest
// never arrives; the prefix stays valid.
//
// Why not ReadRange: it copies into a bytes.Buffer grown to the length, and the final Read that
// finds EOF needs room, so the buffer doubles (a second allocation, a zeroed 2n array and a copy
// of everything read) and the result keeps the doubled array alive — 23-30 % of the broker's CPU
// in a replay from the bucket (bench profile, 2026-11-22), and the chunk cache held twice the
// bytes it accounted for.
//
// The body is still read to EOF (one extra Read into a small array): an HTTP body closed before
// EOF costs the S3 client its keep-alive connection. A body longer than buf is an error, as is a
// shorter one (never a truncated result). buf need not be zeroed (makeNoZero): every byte below a
// reported or returned fill was read from the body.
func readInto(ctx context.Context, s Store, key string, off int64, buf []byte, progress func(filled int64)) error {
	return readIntoBufs(ctx, s, key, off, [][]byte{buf}, progress)
}

// readIntoBufs is readInto for a range read into several buffers, each filled in turn from one
// GET body: the chunk cache loads a run of consecutive chunks with one request, each into a chunk
// buffer of its own (so that each can be reused on its own, cache.go). progress counts the bytes
// of all of bufs filled so far, in order.
func readIntoBufs(ctx context.Context, s Store, key string, off int64, bufs [][]byte, progress func(filled int64)) error {
	n := int64(0)
	for _, b := range bufs {
		n += int64(len(b))
	}
	rc, err := s.Get(ctx, key, off, n)
	if err != nil {
		return err
	}
	defer rc.Close()
	got := int64(0)
	for _, buf := range bufs {
		for at := 0; at < len(buf); {
			if err := ctx.Err(); err != nil {
				// Cancelled between steps (chunkCache.shedIdle, a reader giving up): stop here
				// even if the body would not notice (the file store's).
				return fmt.Errorf("tiering: reading %s [%d,+%d): %w", key, off, n, err)
			}
			step := len(buf) - at
			if progress != nil {
				step = min(step, readStep)
			}
			if _, err := io.ReadFull(rc, buf[at:at+step]); err != nil {
				if errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, io.EOF) {
					return fmt.Errorf("tiering: %s [%d,+%d): short read: %w", key, off, n, io.ErrUnexpectedEOF)
				}
				return fmt.Errorf("tiering: reading %s [%d,+%d): %w", key, off, n, err)
			}
			at += step
			got += int64(step)
			if progress != nil {
				progress(got)
			}
		}
	}
	var extra [1]byte
	for {
		m, err := rc.Read(extra[:])
		if m > 0 {
			return fmt.Errorf("tiering: %s [%d,+%d): the store returned more bytes than asked", key, off, n)
		}
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return fmt.Errorf("tiering: reading %s [%d,+%d): %w", key, off, n, err)
		}
	}
}

// makeNoZero returns a byte slice of length and capacity n whose contents are undefined (the
// caller overwrites all of it). Zeroing an 8 MiB chunk buffer that is then filled from the HTTP
// body was about 8 % of the broker's CPU in a replay from the bucket (memclrNoHeapPointers under
// the chunk load's makeslice, BenchmarkTierReplayBigFetch profile 2026-11-22 12:02): a large allocation
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
