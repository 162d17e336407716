package tiering_test

import (
	"bytes"
	"context"
	"encoding/binary"
	"fmt"
	"hash/crc32"
	"io"
	"math/rand/v2"
	"os"
	"strings"
	"sync"
	"testing"

	"github.com/sediment-io/sediment/meta"
	"github.com/sediment-io/sediment/tiering"
)

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// makeBatch builds a RecordBatch v2 with records covering [base, base+count) and payload bytes of
// opaque record data (tiering never decodes records; the CRC covers them).
func makeBatch(base int64, count int32, firstTS, maxTS int64, payload []byte) []byte {
	b := make([]byte, 61+len(payload))
	be := binary.BigEndian
	be.PutUint64(b[0:], uint64(base))
	be.PutUint32(b[8:], uint32(len(b)-12))
	be.PutUint32(b[12:], 3) // partition leader epoch
	b[16] = 2               // magic
	be.PutUint16(b[21:], 0) // attributes
	be.PutUint32(b[23:], uint32(count-1))
	be.PutUint64(b[27:], uint64(firstTS))
	be.PutUint64(b[35:], uint64(maxTS))
	be.PutUint64(b[43:], ^uint64(0)) // producer id -1
	be.PutUint16(b[51:], 0xffff)
	be.PutUint32(b[53:], 0xffffffff)
	be.PutUint32(b[57:], uint32(count))
	copy(b[61:], payload)
	be.PutUint32(b[17:], crc32.Checksum(b[21:], castagnoli))
	return b
}

// randomBatches builds at least size bytes of batches from offset base, count records and payloadLen
// random (incompressible) bytes each, and returns them and the offset after the last batch.
func randomBatches(r *rand.Rand, base int64, size int, count int32, payloadLen int) ([]byte, int64) {
	payload := make([]byte, payloadLen)
	var data []byte
	for len(data) < size {
		for i := range payload {
			payload[i] = byte(r.Uint32())
		}
		data = append(data, makeBatch(base, count, 1_700_000_000_000+base, 1_700_000_000_000+base, payload)...)
		base += int64(count)
	}
	return data, base
}

// loggingStore wraps a Store and records each operation, in order, so tests can assert the exact
// sequence of requests (PUT/GET/HEAD/LIST/DELETE) a piece of code makes.
type loggingStore struct {
	tiering.Store
	mu  sync.Mutex
	ops []string
}

func (l *loggingStore) add(s string) {
	l.mu.Lock()
	l.ops = append(l.ops, s)
	l.mu.Unlock()
}

// take returns the operations logged since the last take.
func (l *loggingStore) take() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	s := strings.Join(l.ops, "\n")
	l.ops = nil
	return s
}

func (l *loggingStore) Put(ctx context.Context, key string, body io.ReaderAt, size int64) error {
	err := l.Store.Put(ctx, key, body, size)
	l.add(fmt.Sprintf("PUT %s %d%s", key, size, errSuffix(err)))
	return err
}

func (l *loggingStore) Get(ctx context.Context, key string, off, n int64) (io.ReadCloser, error) {
	rc, err := l.Store.Get(ctx, key, off, n)
	l.add(fmt.Sprintf("GET %s %d+%d%s", key, off, n, errSuffix(err)))
	return rc, err
}

func (l *loggingStore) Head(ctx context.Context, key string) (tiering.ObjectInfo, error) {
	i, err := l.Store.Head(ctx, key)
	l.add(fmt.Sprintf("HEAD %s%s", key, errSuffix(err)))
	return i, err
}

func (l *loggingStore) List(ctx context.Context, prefix string) ([]tiering.ObjectInfo, error) {
	is, err := l.Store.List(ctx, prefix)
	l.add(fmt.Sprintf("LIST %s -> %d%s", prefix, len(is), errSuffix(err)))
	return is, err
}

func (l *loggingStore) Delete(ctx context.Context, key string) error {
	err := l.Store.Delete(ctx, key)
	l.add(fmt.Sprintf("DELETE %s%s", key, errSuffix(err)))
	return err
}

func errSuffix(err error) string {
	if err != nil {
		return " ERR " + err.Error()
	}
	return ""
}

func readAllAt(r io.ReaderAt, n int64) ([]byte, error) {
	b := make([]byte, n)
	_, err := r.ReadAt(b, 0)
	if err == io.EOF {
		err = nil
	}
	return b, err
}

func readFile(path string, size int64) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return readAllAt(f, size)
}

// checkArrivedPrefix checks a Read through the chunk cache (got, next) of (off, maxBytes, minOne)
// against plain, an uncached RemoteLog of the same objects. A cached Read may return fewer bytes
// than plain's when the rest of its range was still arriving (chunkCache.readPrefix); then its
// bytes must be a non-empty run of whole batches at the start of plain's, and next must follow
// them: exactly what plain returns when asked for that many bytes. It reports whether got was
// all of plain's result.
func checkArrivedPrefix(t testing.TB, plain *tiering.RemoteLog, segs []meta.RemoteSegment, off int64, maxBytes int, minOne bool, got []byte, next int64) bool {
	t.Helper()
	ctx := context.Background()
	want, err := plain.Read(ctx, segs, off, maxBytes, minOne)
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Equal(got, want.Data) && next == want.NextOffset {
		return true
	}
	if len(got) == 0 || len(got) >= len(want.Data) || !bytes.Equal(got, want.Data[:len(got)]) {
		t.Fatalf("Read(%d, %d, %v): cached %d bytes next %d, uncached %d bytes next %d: not a prefix", off, maxBytes, minOne, len(got), next, len(want.Data), want.NextOffset)
	}
	short, err := plain.Read(ctx, segs, off, len(got), false)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(short.Data, got) || short.NextOffset != next {
		t.Fatalf("Read(%d, %d, %v): cached %d bytes next %d: not whole batches (uncached, %d bytes asked: %d bytes next %d)", off, maxBytes, minOne, len(got), next, len(got), len(short.Data), short.NextOffset)
	}
	return false
}
