package tiering

import (
	"bytes"
	"context"
	"io"
	"sync/atomic"
	"testing"
)

// countingStore counts Gets.
type countingStore struct {
	Store
	gets atomic.Int64
}

func (s *countingStore) Get(ctx context.Context, key string, off, n int64) (io.ReadCloser, error) {
	s.gets.Add(1)
	return s.Store.Get(ctx, key, off, n)
}

// TestChunkCacheEvictsConsumedFirst: a chunk a reader has moved past (it read from the next one) is
// evicted before a chunk loaded ahead of the reader and not read yet, even when the unread one was
// loaded first (plain LRU evicted it, and four partitions replaying at once re-fetched such chunks);
// a chunk whose end a read's range covered but that the reader has not moved past is not "consumed"
// (the read's batches may stop short of its end, and the next read start inside it).
func TestChunkCacheEvictsConsumedFirst(t *testing.T) {
	ctx := context.Background()
	const chunk = 1000
	data := bytes.Repeat([]byte("0123456789abcdef"), 8*chunk/16) // 8 chunks
	s := &countingStore{Store: NewMemStore()}
	if err := PutBytes(ctx, s, "o", data); err != nil {
		t.Fatal(err)
	}
	size := int64(len(data))
	c := newChunkCache(4*chunk, chunk, 0, newSlots(8))
	read := func(from, to int64) {
		t.Helper()
		parts, _, err := c.read(ctx, objectRef{s: s, key: "o", size: size}, from, to)
		if err != nil {
			t.Fatal(err)
		}
		if got := bytes.Join(parts, nil); !bytes.Equal(got, data[from:to]) {
			t.Fatalf("read [%d,%d): wrong bytes", from, to)
		}
	}
	read(3*chunk, 3*chunk+1)  // chunk 3: loaded ahead, one byte read
	read(0, chunk)            // chunk 0
	read(chunk, 2*chunk)      // chunk 1: the reader is past chunk 0
	read(2*chunk-10, 3*chunk) // back into chunk 1, through chunk 2's end: past none of them yet
	read(4*chunk, 4*chunk+1)  // chunk 4: the cache (4 chunks) evicts one, chunk 0
	before := s.gets.Load()
	read(3*chunk+1, 4*chunk) // the rest of chunk 3: must still be cached
	read(2*chunk, 2*chunk+1) // chunk 2, read to its end by range but not moved past: cached
	if n := s.gets.Load() - before; n != 0 {
		t.Fatalf("reading on took %d GETs: an unread or half-read chunk was evicted before a consumed one", n)
	}
	if st := c.stats(); st.Evicted != 1 || st.Bytes > 4*chunk {
		t.Fatalf("stats %+v: want one eviction within the bound", st)
	}
}
