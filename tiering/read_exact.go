package tiering

import (
	"context"
	"errors"
	"fmt"
	"io"
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
// shorter one (never a truncated result).
func readExact(ctx context.Context, s Store, key string, off, n int64) ([]byte, error) {
	rc, err := s.Get(ctx, key, off, n)
	if err != nil {
		return nil, err
	}
	defer rc.Close()
	buf := make([]byte, n)
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
