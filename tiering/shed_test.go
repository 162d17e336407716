package tiering_test

import (
	"bytes"
	"context"
	"encoding/binary"
	"io"
	"math/rand/v2"
	"sync/atomic"
	"testing"
	"time"

	"github.com/sediment-io/sediment/internal/loadgen"
	"github.com/sediment-io/sediment/meta"
	"github.com/sediment-io/sediment/tiering"
	"github.com/sediment-io/sediment/tiering/objstoretest"
)

// countingStore counts the body bytes its Gets returned.
type countingStore struct {
	tiering.Store
	bytes atomic.Int64
}

func (s *countingStore) Get(ctx context.Context, key string, off, n int64) (io.ReadCloser, error) {
	rc, err := s.Store.Get(ctx, key, off, n)
	if err != nil {
		return nil, err
	}
	return loadgen.CountingBody(rc, &s.bytes), nil
}

// batchAt is the byte position of the batch holding offset in data (concatenated batches).
func batchAt(data []byte, offset int64) int {
	pos := 0
	for binary.BigEndian.Uint64(data[pos:])+uint64(binary.BigEndian.Uint32(data[pos+23:])) < uint64(offset) {
		pos += 12 + int(binary.BigEndian.Uint32(data[pos+8:])) // base offset (8), length (4): the batch is 12 + length bytes
	}
	return pos
}

// memObject puts a segment object of size bytes of random batches (16 records of 16 KiB each,
// from offset 0; seed picks them) at key in a new memory store, and returns the raw batches, the
// object and its one-entry manifest.
func memObject(t *testing.T, key string, seed uint64, size int) ([]byte, *tiering.SegmentObject, *tiering.MemStore, []meta.RemoteSegment) {
	t.Helper()
	data, _ := randomBatches(rand.New(rand.NewPCG(seed, seed)), 0, size, 16, 16<<10-61)
	obj, err := tiering.BuildSegmentObject(bytes.NewReader(data), int64(len(data)), 0)
	if err != nil {
		t.Fatal(err)
	}
	mem := tiering.NewMemStore()
	if err := mem.Put(context.Background(), key, obj, obj.Size()); err != nil {
		t.Fatal(err)
	}
	return data, obj, mem, []meta.RemoteSegment{{BaseOffset: 0, LastOffset: obj.Footer.LastOffset, Size: obj.Size(), ObjectKey: key}}
}

// When the fetch quota falls below a chunk a second (the adaptive throttle backing off because
// producers arrived), the chunk cache cancels its GETs that no reader waits on — the rest of a chunk
// whose reader already has its bytes, a prefetch — instead of letting each pull its whole chunk
// from the store. A GET a read needs runs on, even one the read has not reached yet (it waits for
// another chunk first), and the read gets the bytes it brought by then; later reads of a cancelled chunk read their
// exact ranges and get the object's bytes.
func TestCacheShedsIdleLoadsWhenQuotaFalls(t *testing.T) {
	ctx := context.Background()
	data, obj, mem, segs := memObject(t, "segments/x/0/shed", 7, 4<<20)
	const chunk = 1 << 20
	// Bodies at 1 MB/s: a chunk takes a second, so the loads are still running when the quota falls.
	st := &countingStore{Store: &objstoretest.RateStore{Store: mem, BytesPerSec: 1e6}}
	rl := tiering.NewRemoteLogWith(st, tiering.RemoteLogConfig{CacheBytes: 64 << 20, CacheChunkBytes: chunk, PrefetchChunks: 1})
	q := tiering.NewAdaptiveFetchQuota(0)
	rl.SetQuota(q)

	// Offset 0: chunk 0 loads (its reader returns after its 64 KiB) and chunk 1 is prefetched.
	first, err := rl.Read(ctx, segs, 0, 64<<10, true)
	if err != nil || len(first.Data) == 0 {
		t.Fatalf("first read: %v, %d bytes", err, len(first.Data))
	}
	// A reader of the end of chunk 1 (the prefetch) and most of chunk 2 (its own GET), waiting for
	// chunk 1 while the quota falls: both loads are kept for it.
	deep := obj.Footer.LastOffset / 2 // the last batches of chunk 1
	if pos := batchAt(data, deep); pos >= 2*chunk || pos < 2*chunk-64<<10 {
		t.Fatalf("offset %d is at byte %d: not in the last 64 KiB of chunk 1", deep, pos)
	}
	type result struct {
		res tiering.ReadResult
		err error
	}
	done := make(chan result, 1)
	go func() {
		res, err := rl.Read(ctx, segs, deep, 900<<10, true)
		done <- result{res, err}
	}()
	time.Sleep(100 * time.Millisecond)
	q.SetAdaptiveRate(chunk / 4)

	r := <-done
	if r.err != nil {
		t.Fatalf("the read waiting on chunk 2 when the quota fell: %v", r.err)
	}
	// It waited for chunk 1 only (readPrefix: its first batches are there) and took what chunk 2
	// held by then: at least one progress step (256 KiB) of a GET that ran on. Cancelled when the
	// quota fell (100 ms in, before its first step), chunk 2 would have given it nothing.
	if pos := batchAt(data, deep); pos+len(r.res.Data) < 2*chunk+256<<10 || !bytes.Equal(r.res.Data, data[pos:pos+len(r.res.Data)]) {
		t.Fatalf("the read waiting on chunks 1 and 2 got %d bytes from byte %d: not the object's, or not 256 KiB into chunk 2", len(r.res.Data), pos)
	}
	if cs := rl.CacheStats(); cs.Shed != 1 {
		t.Fatalf("cache stats %+v: want 1 GET shed (the rest of chunk 0)", cs)
	}
	time.Sleep(time.Second) // unshed, chunk 0 would have arrived whole by now
	// Chunks 1 and 2 whole, a step or two of chunk 0 (readStep: 256 KiB), the footer; 3 MiB if
	// chunk 0 ran on, and more if chunk 1 was cancelled and fetched again.
	if got := st.bytes.Load(); got >= 2<<20+3<<18 {
		t.Fatalf("%d bytes read from the store: chunk 0's idle load ran on, or chunk 1's was fetched twice", got)
	}

	// What the cancelled load held is read again, exactly: the records after the first read.
	for _, from := range []int64{first.NextOffset, obj.Footer.LastOffset / 8} {
		res, err := rl.Read(ctx, segs, from, 256<<10, true)
		if pos := batchAt(data, from); err != nil || len(res.Data) == 0 || !bytes.Equal(res.Data, data[pos:pos+len(res.Data)]) {
			t.Fatalf("read from %d after the shed: %v, %d bytes, not the object's", from, err, len(res.Data))
		}
	}
	if cs := rl.CacheStats(); cs.Direct != 2 {
		t.Fatalf("cache stats %+v: reads after the shed should fetch their exact ranges", cs)
	}
}
