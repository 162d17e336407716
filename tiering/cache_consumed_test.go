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

// TestChunkCacheEvictsConsumedFirst: a chunk a read went through to its end is evicted before a
// chunk loaded ahead of the reader and not read yet, even when the unread one was loaded first
// (plain LRU evicted it, and four partitions replaying at once re-fetched such chunks).
func TestChunkCacheEvictsConsumedFirst(t *testing.T) {
	ctx := context.Background()
	const chunk = 1000
	data := bytes.Repeat([]byte("0123456789abcdef"), 8*chunk/16) // 8 chunks
	s := &countingStore{Store: NewMemStore()}
	if err := PutBytes(ctx, s, "o", data); err != nil {
		t.Fatal(err)
	}
	size := int64(len(data))
	c := newChunkCache(4*chunk, chunk, 0, make(chan struct{}, 8))
	read := func(from, to int64) {
		t.Helper()
		parts, err := c.read(ctx, s, "o", size, from, to)
		if err != nil {
			t.Fatal(err)
		}
		if got := bytes.Join(parts, nil); !bytes.Equal(got, data[from:to]) {
			t.Fatalf("read [%d,%d): wrong bytes", from, to)
		}
	}
	read(3*chunk, 3*chunk+1) // chunk 3: loaded ahead, one byte read
	read(0, 3*chunk)         // chunks 0-2, read to their ends
	read(4*chunk, 4*chunk+1) // chunk 4: the cache (4 chunks) evicts one
	before := s.gets.Load()
	read(3*chunk+1, 4*chunk) // the rest of chunk 3: must still be cached
	if n := s.gets.Load() - before; n != 0 {
		t.Fatalf("reading the rest of the unread chunk took %d GETs: it was evicted before a consumed one", n)
	}
	if st := c.stats(); st.Evicted != 1 || st.Bytes > 4*chunk {
		t.Fatalf("stats %+v: want one eviction within the bound", st)
	}
}
