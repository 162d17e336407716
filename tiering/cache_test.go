package tiering_test

import (
	"bytes"
	"context"
	"errors"
	"io"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/sediment-io/sediment/meta"
	"github.com/sediment-io/sediment/tiering"
)

// flakyGetStore counts Gets and fails them while fail is set.
type flakyGetStore struct {
	tiering.Store
	fail atomic.Bool
	gets atomic.Int64
}

var errFlaky = errors.New("injected GET failure")

func (s *flakyGetStore) Get(ctx context.Context, key string, off, n int64) (io.ReadCloser, error) {
	s.gets.Add(1)
	if s.fail.Load() {
		return nil, errFlaky
	}
	return s.Store.Get(ctx, key, off, n)
}

// cacheFixture is one uploaded segment object and its manifest entry.
func cacheFixture(t *testing.T, batches int) (*flakyGetStore, []meta.RemoteSegment, *tiering.SegmentObject) {
	t.Helper()
	ctx := context.Background()
	data, _ := genSegment(rand.New(rand.NewPCG(21, 21)), 0, batches)
	obj, err := tiering.BuildSegmentObject(bytes.NewReader(data), int64(len(data)), 0)
	if err != nil {
		t.Fatal(err)
	}
	fs := &flakyGetStore{Store: tiering.NewMemStore()}
	if err := fs.Put(ctx, "segments/c/0/k", obj, obj.Size()); err != nil {
		t.Fatal(err)
	}
	return fs, []meta.RemoteSegment{{BaseOffset: obj.Footer.BaseOffset, LastOffset: obj.Footer.LastOffset, Size: obj.Size(), ObjectKey: "segments/c/0/k"}}, obj
}

// readAll reads the whole object sequentially in reads of maxBytes.
func readAll(t *testing.T, rl *tiering.RemoteLog, segs []meta.RemoteSegment, maxBytes int, check func()) []byte {
	t.Helper()
	var out []byte
	for off := segs[0].BaseOffset; off <= segs[0].LastOffset; {
		res, err := rl.Read(context.Background(), segs, off, maxBytes, true)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, res.Data...)
		off = res.NextOffset
		if check != nil {
			check()
		}
	}
	return out
}

// TestChunkCacheBoundedAndExact: reads through a cache much smaller than the object return exactly
// the bytes of uncached reads (sequential; random ones a whole-batch prefix of them when the rest
// was still arriving: checkArrivedPrefix), the cache never holds more than its bound,
// and a sequential reader's next chunks are prefetched so that its reads hit.
func TestChunkCacheBoundedAndExact(t *testing.T) {
	fs, segs, obj := cacheFixture(t, 400)
	const bound = 32 << 10
	if obj.Footer.StoredLen < 4*bound {
		t.Fatalf("object of %d bytes too small for the test", obj.Footer.StoredLen)
	}
	plain := tiering.NewRemoteLogWith(fs.Store, tiering.RemoteLogConfig{ReadAheadBytes: -1})
	rl := tiering.NewRemoteLogWith(fs, tiering.RemoteLogConfig{ReadAheadBytes: -1, CacheBytes: bound, CacheChunkBytes: 4096, PrefetchChunks: 3})
	want := readAll(t, plain, segs, 3000, nil)
	got := readAll(t, rl, segs, 3000, func() {
		if st := rl.CacheStats(); st.Bytes > bound {
			t.Fatalf("cache holds %d bytes, bound %d", st.Bytes, bound)
		}
	})
	if !bytes.Equal(got, want) {
		t.Fatalf("cached sequential read: %d bytes differ from the %d uncached", len(got), len(want))
	}
	st := rl.CacheStats()
	if st.Prefetched == 0 || st.Hits == 0 || st.Evicted == 0 {
		t.Fatalf("stats %+v: want prefetches, hits and evictions", st)
	}
	rng := rand.New(rand.NewPCG(5, 5))
	for range 200 {
		off := rng.Int64N(segs[0].LastOffset + 1)
		mb, one := 1+rng.IntN(20000), rng.IntN(2) == 0
		a, err := rl.Read(context.Background(), segs, off, mb, one)
		if err != nil {
			t.Fatal(err)
		}
		checkArrivedPrefix(t, plain, segs, off, mb, one, a.Data, a.NextOffset)
	}
	rl.Forget(segs[0].ObjectKey)
	if st := rl.CacheStats(); st.Bytes != 0 {
		t.Fatalf("after Forget the cache holds %d bytes", st.Bytes)
	}
}

// TestChunkCacheFollowsQuota: while the fetch quota allows less than a chunk a second (fixed or
// adaptive), reads of chunks not held fetch exactly their range past the cache (no whole chunks,
// no prefetch: the bursts the quota is there to avoid) and get the same bytes; chunks already
// cached still serve without a GET; lifted, whole chunks and prefetches return.
func TestChunkCacheFollowsQuota(t *testing.T) {
	fs, segs, _ := cacheFixture(t, 400)
	const chunk = 4096
	want := readAll(t, tiering.NewRemoteLogWith(fs.Store, tiering.RemoteLogConfig{ReadAheadBytes: -1}), segs, 3000, nil)
	read := func(rl *tiering.RemoteLog) tiering.CacheStats {
		if got := readAll(t, rl, segs, 3000, nil); !bytes.Equal(got, want) {
			t.Fatalf("read %d bytes, want %d identical", len(got), len(want))
		}
		time.Sleep(50 * time.Millisecond) // prefetches in flight land
		return rl.CacheStats()
	}
	cfg := tiering.RemoteLogConfig{ReadAheadBytes: -1, CacheBytes: 64 << 20, CacheChunkBytes: chunk, PrefetchChunks: 2}
	if st := read(tiering.NewRemoteLogWith(fs, cfg)); st.Prefetched == 0 || st.Direct != 0 {
		t.Fatalf("unlimited quota: stats %+v, want prefetches and no direct reads", st)
	}
	cfg.FetchBytesPerSecond = chunk - 1
	if st := read(tiering.NewRemoteLogWith(fs, cfg)); st.Prefetched != 0 || st.Misses != 0 || st.Direct == 0 || st.Bytes != 0 {
		t.Fatalf("quota of %d B/s with %d B chunks: stats %+v, want direct reads only (nothing cached or prefetched)", chunk-1, chunk, st)
	}
	cfg.FetchBytesPerSecond = 0
	rl := tiering.NewRemoteLogWith(fs, cfg)
	rl.SetQuota(tiering.NewAdaptiveFetchQuota(0)) // as the broker's adaptive throttle installs it
	rl.Quota().SetAdaptiveRate(chunk / 2)
	if st := read(rl); st.Prefetched != 0 || st.Direct == 0 {
		t.Fatalf("adaptive rate of %d B/s: stats %+v, want direct reads, no prefetch", chunk/2, st)
	}
	rl.Forget(segs[0].ObjectKey)
	rl.Quota().SetAdaptiveRate(0) // lifted
	st := read(rl)
	if st.Prefetched == 0 {
		t.Fatalf("adaptive limit lifted: stats %+v, want prefetches", st)
	}
	rl.Quota().SetAdaptiveRate(chunk / 2) // limited again, with the object now cached
	gets := fs.gets.Load()
	if st2 := read(rl); fs.gets.Load() != gets || st2.Direct != st.Direct {
		t.Fatalf("limited with every chunk cached: %d GETs, %d direct reads; want the cache to serve", fs.gets.Load()-gets, st2.Direct-st.Direct)
	}
}

// TestChunkCacheSharesConcurrentReaders: eight consumers replaying the same object at once fetch
// each chunk once between them (waiting for a chunk another is loading), not once each.
func TestChunkCacheSharesConcurrentReaders(t *testing.T) {
	fs, segs, obj := cacheFixture(t, 300)
	const chunk = 8192
	rl := tiering.NewRemoteLogWith(fs, tiering.RemoteLogConfig{ReadAheadBytes: -1, CacheBytes: 64 << 20, CacheChunkBytes: chunk, PrefetchChunks: -1})
	want := readAll(t, tiering.NewRemoteLogWith(fs.Store, tiering.RemoteLogConfig{ReadAheadBytes: -1}), segs, 5000, nil)
	fs.gets.Store(0)
	const readers = 8
	var wg sync.WaitGroup
	got := make([][]byte, readers)
	for i := range readers {
		wg.Go(func() { got[i] = readAll(t, rl, segs, 5000, nil) })
	}
	wg.Wait()
	for i := range got {
		if !bytes.Equal(got[i], want) {
			t.Fatalf("reader %d got %d bytes, want %d identical", i, len(got[i]), len(want))
		}
	}
	chunks := (obj.Footer.StoredLen + chunk - 1) / chunk
	// At most one GET per chunk, plus the footer (loaded at most once per reader that raced the open).
	if n := fs.gets.Load(); n > chunks+readers {
		t.Fatalf("%d GETs for %d readers of %d chunks: readers did not share", n, readers, chunks)
	}
}

// TestChunkCacheFailureNotCached: a failed GET fails the read and leaves nothing behind, so the
// same read succeeds once the store is back.
func TestChunkCacheFailureNotCached(t *testing.T) {
	fs, segs, _ := cacheFixture(t, 50)
	rl := tiering.NewRemoteLogWith(fs, tiering.RemoteLogConfig{ReadAheadBytes: -1, CacheBytes: 1 << 20, CacheChunkBytes: 4096, PrefetchChunks: -1})
	plain := tiering.NewRemoteLogWith(fs.Store, tiering.RemoteLogConfig{ReadAheadBytes: -1})
	if _, err := rl.Read(context.Background(), segs, 0, 1, true); err != nil { // footer and first chunk cached
		t.Fatal(err)
	}
	last := segs[0].LastOffset // in the object's last chunk, not the first
	fs.fail.Store(true)
	if _, err := rl.Read(context.Background(), segs, last, 10000, true); !errors.Is(err, errFlaky) {
		t.Fatalf("read while the store fails: %v", err)
	}
	fs.fail.Store(false)
	a, err := rl.Read(context.Background(), segs, last, 10000, true)
	if err != nil {
		t.Fatal(err)
	}
	b, err := plain.Read(context.Background(), segs, last, 10000, true)
	if err != nil || !bytes.Equal(a.Data, b.Data) || len(a.Data) == 0 {
		t.Fatalf("read after recovery: %d bytes, uncached %d (%v)", len(a.Data), len(b.Data), err)
	}
}
