package tiering

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"
	"unicode/utf8"
)

// Store is the object-store seam: the handful of operations tiering needs from S3, a local directory
// or memory. Every method is safe for concurrent use. Keys are validated identically by every
// backend (see ValidKey) so that code tested against memory behaves the same against S3.
//
// Failure semantics common to all methods:
//   - A not-found condition is reported as an error wrapping ErrNotFound (test with errors.Is).
//   - Any other error may be transient (network, 5xx, timeout) even after the backend's own retries;
//     callers may retry. Retried writes must reuse the same key and the same bytes, which makes them
//     idempotent: tiering never overwrites a key with different content (keys carry a unique upload id).
//   - Context cancellation is honoured; the error then wraps ctx.Err().
type Store interface {
	// Put stores size bytes read from body (at offsets 0..size-1) under key, replacing any existing
	// object. The object appears atomically: a concurrent Get or Head sees the old object (or none)
	// or the whole new one, never a prefix. body is an io.ReaderAt so that a backend can re-read it
	// on retry and upload parts in parallel; it must stay valid and unchanged until Put returns.
	//
	// On error the object may or may not exist with the new content: a request can succeed on the
	// server while its reply is lost (the fault "PUT succeeded, answered 500"). A retry of the same Put
	// converges to the same state. Put never leaves a partially written object visible under key;
	// a failed multipart upload is aborted on a best-effort basis, and one that a crash left open is
	// removed later by the store's UploadSweeper.
	Put(ctx context.Context, key string, body io.ReaderAt, size int64) error

	// Get returns a reader over length bytes of the object starting at off; length -1 means "to the
	// end". A range extending past the end is cut at the end. off must be < the object's size, except
	// for the whole-object read Get(key, 0, -1), which also works on an empty object; otherwise the error
	// wraps ErrInvalidRange. Missing object: ErrNotFound, returned by Get itself (not by the first Read).
	//
	// The reader may fail mid-stream (a connection reset); backends resume transparently where they can
	// (S3 re-requests the remaining range, pinned to the same object version by ETag). A reader that
	// still fails returns a non-nil, non-EOF error: callers never mistake a truncated body for the end.
	// The caller must Close the reader.
	Get(ctx context.Context, key string, off, length int64) (io.ReadCloser, error)

	// Head returns the object's size and modification time, or ErrNotFound.
	Head(ctx context.Context, key string) (ObjectInfo, error)

	// List returns every object whose key starts with prefix, sorted by key. Objects Put (or Deleted)
	// before List was called are reflected (S3 is strongly consistent since 2020; file and memory are
	// trivially); objects written concurrently with List may or may not appear. An empty prefix lists all.
	List(ctx context.Context, prefix string) ([]ObjectInfo, error)

	// Delete removes the object. Deleting a missing key succeeds (it makes retries idempotent); an error
	// means the object may still exist.
	Delete(ctx context.Context, key string) error

	// Close releases the backend's resources. Calls after Close fail.
	Close() error
}

// ConditionalPutter is an optional capability of a Store (find it by type assertion): a Put that
// succeeds only if no object exists under key (S3 If-None-Match: *).
//
// Failure semantics: ErrExists (wrapped) means an object was already there and nothing was written.
// Beware retries: if a first attempt succeeded but its reply was lost, the retry observes ErrExists for
// the caller's own write. A caller that must distinguish "mine" from "someone else's" compares content
// (Head size, or a Get) after ErrExists.
type ConditionalPutter interface {
	PutIfAbsent(ctx context.Context, key string, body io.ReaderAt, size int64) error
}

// UploadSweeper is an optional capability of a Store (find it with SweepStaleUploads): removing
// writes that began and never finished. A broker killed during a Put leaves one behind, an S3
// multipart upload or a file store's temp file, which neither List nor Get shows yet which holds
// storage: S3 bills an incomplete multipart upload's parts until it is aborted, and keeps it
// forever unless the bucket has a lifecycle rule for it. MinIO expires them itself after a day.
//
// AbortStaleUploads aborts every unfinished write under prefix that began before cutoff and
// returns how many it removed. Nothing finished is touched: an object that is visible stays.
// A Put still running that began before cutoff is aborted too; it then fails and its caller
// retries it, so cutoff must lie further back than any live Put runs. An error may come after some
// writes were removed (the count says how many); the rest are found by the next call.
type UploadSweeper interface {
	AbortStaleUploads(ctx context.Context, prefix string, cutoff time.Time) (int, error)
}

// SweepStaleUploads runs the UploadSweeper of s, or of the store s wraps (following Unwrap() Store
// methods, as MeteredStore has). A store without one (memory: a Put is never half done) has nothing
// to remove: 0, nil.
func SweepStaleUploads(ctx context.Context, s Store, prefix string, cutoff time.Time) (int, error) {
	if us, ok := capability[UploadSweeper](s); ok {
		return us.AbortStaleUploads(ctx, prefix, cutoff)
	}
	return 0, nil
}

// capability finds the first store in the chain s, s.Unwrap(), ... that implements T.
func capability[T any](s Store) (T, bool) {
	for i := 0; s != nil && i < 16; i++ {
		if c, ok := s.(T); ok {
			return c, true
		}
		u, ok := s.(interface{ Unwrap() Store })
		if !ok {
			break
		}
		s = u.Unwrap()
	}
	var zero T
	return zero, false
}

// ObjectInfo describes one stored object.
type ObjectInfo struct {
	Key     string
	Size    int64
	ModTime time.Time // as the store reports it; second precision on S3
}

var (
	// ErrNotFound: no object under the key.
	ErrNotFound = errors.New("tiering: object not found")
	// ErrExists: a conditional put found an object already under the key.
	ErrExists = errors.New("tiering: object already exists")
	// ErrInvalidRange: Get's off/length do not fit the object.
	ErrInvalidRange = errors.New("tiering: invalid range")
	// ErrInvalidKey: a key that ValidKey rejects.
	ErrInvalidKey = errors.New("tiering: invalid object key")
	// ErrClosed: the store was closed.
	ErrClosed = errors.New("tiering: object store closed")
)

// MaxKeyLen is S3's limit on key length in bytes.
const MaxKeyLen = 1024

// ValidKey checks a key against the rules all backends share: non-empty, at most MaxKeyLen bytes of
// valid UTF-8 without NUL or backslash, '/'-separated components that are non-empty and not "." or
// "..". The rules are stricter than S3's so that every key also maps to a file path unambiguously.
// Callers must also not use a key that is a '/'-prefix of another ("a" and "a/b"): MinIO's
// file-backed layout rejects such pairs, so portable code avoids them (tiering's keys never form one).
func ValidKey(key string) error {
	bad := func(why string) error { return fmt.Errorf("%w %q: %s", ErrInvalidKey, key, why) }
	switch {
	case key == "":
		return bad("empty")
	case len(key) > MaxKeyLen:
		return bad(fmt.Sprintf("longer than %d bytes", MaxKeyLen))
	case !utf8.ValidString(key):
		return bad("not valid UTF-8")
	case strings.ContainsAny(key, "\x00\\"):
		return bad("contains NUL or backslash")
	}
	for _, c := range strings.Split(key, "/") {
		if c == "" || c == "." || c == ".." {
			return bad("empty, '.' or '..' path component")
		}
	}
	return nil
}

// validPrefix checks a List prefix: empty, or a key prefix without NUL/backslash.
func validPrefix(prefix string) error {
	if len(prefix) > MaxKeyLen || !utf8.ValidString(prefix) || strings.ContainsAny(prefix, "\x00\\") {
		return fmt.Errorf("%w: list prefix %q", ErrInvalidKey, prefix)
	}
	return nil
}

func checkRange(key string, off, length, size int64) (end int64, err error) {
	if off < 0 || length < -1 {
		return 0, fmt.Errorf("%w: %s: offset %d length %d", ErrInvalidRange, key, off, length)
	}
	if off == 0 && length == -1 {
		return size, nil
	}
	if off >= size {
		return 0, fmt.Errorf("%w: %s: offset %d beyond size %d", ErrInvalidRange, key, off, size)
	}
	end = size
	if length >= 0 && off+length < size {
		end = off + length
	}
	return end, nil
}

// ReadRange reads length bytes at off (length -1: to the end) and returns them, failing rather
// than returning fewer bytes than the object holds in that range. From the chunk cache: the cached
// bytes without a copy when they lie in one chunk, else one copy (readRangeParts avoids it).
func ReadRange(ctx context.Context, s Store, key string, off, length int64) ([]byte, error) {
	parts, hold, err := readRangeParts(ctx, s, key, off, length)
	if err != nil {
		return nil, err
	}
	return joinReleasing(parts, hold), nil
}

// readRangeParts is ReadRange returning the bytes as consecutive slices: the cached chunks a Get
// through the chunk cache covers (shared, never joined: parts.go) with their Hold, else one buffer
// (and no Hold).
func readRangeParts(ctx context.Context, s Store, key string, off, length int64) ([][]byte, *Hold, error) {
	rc, err := s.Get(ctx, key, off, length)
	if err != nil {
		return nil, nil, err
	}
	defer rc.Close()
	if pr, ok := rc.(*partsReader); ok {
		parts, hold := pr.parts, pr.hold
		pr.parts, pr.hold = nil, nil // ours now: Close must not release it
		return parts, hold, nil
	}
	b, err := readBody(rc, key, off, length)
	if err != nil {
		return nil, nil, err
	}
	return [][]byte{b}, nil, nil
}

// readBody reads a Get's body into one buffer of the asked length.
func readBody(rc io.Reader, key string, off, length int64) ([]byte, error) {
	if length <= 0 {
		b, err := io.ReadAll(rc)
		if err != nil {
			return nil, fmt.Errorf("tiering: reading %s [%d,+%d): %w", key, off, length, err)
		}
		return b, nil
	}
	// One buffer of the asked length: a bytes.Buffer grown to it doubled on the Read that finds
	// EOF (a second zeroed allocation and a copy of everything read). Up to 64 MiB up front, as
	// before; a longer range grows by append.
	buf := make([]byte, min(length, 64<<20))
	n, err := io.ReadFull(rc, buf)
	switch {
	case err == io.EOF || err == io.ErrUnexpectedEOF:
		return buf[:n], nil // the object ends inside the range: the store cut it (Get's contract)
	case err != nil:
		return nil, fmt.Errorf("tiering: reading %s [%d,+%d): %w", key, off, length, err)
	}
	// Read on to EOF: the rest of a range above 64 MiB, and the EOF an S3 body must see before
	// Close to keep its keep-alive connection (into a small array: appending to the full buffer
	// would double it).
	var more [4096]byte
	for {
		m, err := rc.Read(more[:])
		buf = append(buf, more[:m]...)
		if err == io.EOF {
			return buf, nil
		}
		if err != nil {
			return nil, fmt.Errorf("tiering: reading %s [%d,+%d): %w", key, off, length, err)
		}
	}
}

// PutBytes stores b under key.
func PutBytes(ctx context.Context, s Store, key string, b []byte) error {
	return s.Put(ctx, key, bytes.NewReader(b), int64(len(b)))
}
