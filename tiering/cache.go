package tiering

import (
	"container/list"
	"context"
	"errors"
	"io"
	"sync"
	"sync/atomic"
)

// chunkCache is RemoteLog's bounded in-memory cache of segment-object data: fixed-size, aligned
// chunks of an object's stored bytes (objects are immutable — every upload has a fresh key — so a
// chunk never goes stale). It serves three patterns the per-object read-ahead alone does not:
//   - concurrent consumers of the same partition share one GET per chunk (a loading chunk is
//     waited for, never fetched twice), where read-ahead's single prefetch per object would be
//     replaced back and forth;
//   - a consumer replaying what another read shortly before is served from memory;
//   - a sequential reader gets the next PrefetchChunks chunks fetched in parallel ahead of it, so
//     a replay keeps several GETs in flight instead of one (what bounds throughput against S3,
//     where each GET costs a round trip and a request).
//
// Footers do not go through it (RemoteLog keeps decoded footers in its own LRU). Bounded by bytes:
// loading chunks count too; ready chunks are evicted least recently used first. Prefetches only
// take a free cold-read slot (never wait for one), so they cannot starve demand reads, and a demand
// read that finds a chunk loading waits for that load, whose owner already holds a slot.
type chunkCache struct {
	chunk    int64 // bytes per chunk
	max      int64 // bytes all chunks (ready and loading) may hold
	prefetch int   // chunks fetched ahead of a sequential reader
	sem      chan struct{}
	// speculate reports whether prefetching is worth it now (nil: always). RemoteLog answers no
	// while its fetch quota delivers less than a chunk a second: a reader held to that rate gains
	// nothing from a chunk fetched ahead, and the prefetch is a burst of object-store reads that
	// the quota was lowered to avoid.
	speculate func() bool

	mu   sync.Mutex
	used int64
	lru  *list.List // ready *chunkEntry, most recently used first
	m    map[chunkID]*chunkEntry

	hits, misses, prefetched, evicted atomic.Int64
}

type chunkID struct {
	key string
	idx int64
}

type chunkEntry struct {
	id   chunkID
	size int64
	done chan struct{} // closed when data or err is set
	data []byte
	err  error
	elem *list.Element // in lru once ready
}

// Defaults for RemoteLogConfig's cache fields. 16 MiB chunks, 1 ahead (16 MiB ahead of a sequential
// reader): each GET costs the object store CPU of its own, and MinIO shares the broker's two cores
// in sediment bench. Against 8 MiB × 2, alternated in four rounds of sediment bench's replay
// (2026-11-22 19:26-21:18), the bucket replay median was higher in every pair (966/909/937/840 vs
// 860/867/711/834 MB/s), MinIO used 0.55 instead of 0.60 core, and a GiB took 75 GETs instead of
// 133. 8 MiB × 2 had replaced 4 MiB × 3 (MinIO 690-822 vs 940-1013 µs of CPU per replayed MB,
// BenchmarkTierReplayBigFetch), which had replaced 1 MiB × 4 (300-313 vs 224-263 MB/s).
// 256 MiB: a consumer fetching four partitions 10 MiB each (librdkafka's and franz-go's default
// max.partition.fetch.bytes is 1 MiB, but replay tools raise it) holds per partition the chunk it
// is in, the next one its read reaches into, one prefetched and the first one of the next object
// warmed: 4 × 4 × 16 MiB. sediment bench's replays GET each chunk exactly once at that size (767
// MiB of objects, 767 MiB in 56 GETs); at 128 MiB prefetched chunks were evicted unread and
// fetched again (807-950 MiB of GETs for 767 MiB of objects, with 8 MiB chunks).
const (
	DefaultCacheBytes      = 256 << 20
	DefaultCacheChunkBytes = 16 << 20
	DefaultPrefetchChunks  = 1
)

func newChunkCache(maxBytes, chunk int64, prefetch int, sem chan struct{}) *chunkCache {
	return &chunkCache{chunk: chunk, max: maxBytes, prefetch: prefetch, sem: sem, lru: list.New(), m: map[chunkID]*chunkEntry{}}
}

// CacheStats counts the chunk cache's work since the RemoteLog was made.
type CacheStats struct {
	Hits, Misses int64 // chunks a read found ready (or loading) / had to fetch itself
	Prefetched   int64 // chunks fetched ahead of a sequential reader
	Evicted      int64
	Bytes        int64 // bytes held now (ready and loading)
}

func (c *chunkCache) stats() CacheStats {
	c.mu.Lock()
	used := c.used
	c.mu.Unlock()
	return CacheStats{Hits: c.hits.Load(), Misses: c.misses.Load(), Prefetched: c.prefetched.Load(), Evicted: c.evicted.Load(), Bytes: used}
}

// cachedObject is the Store a RemoteReader of one object reads its data through: Gets of that key
// go through the cache, everything else to the backing store.
type cachedObject struct {
	Store
	c    *chunkCache
	key  string
	size int64
}

func (o *cachedObject) Get(ctx context.Context, key string, off, n int64) (io.ReadCloser, error) {
	if key != o.key || off < 0 || off >= o.size {
		return o.Store.Get(ctx, key, off, n)
	}
	end := o.size
	if n >= 0 {
		end = min(off+n, o.size)
	}
	parts, err := o.c.read(ctx, o.Store, o.key, o.size, off, end)
	if err != nil {
		return nil, err
	}
	return &partsReader{parts: parts}, nil
}

// partsReader reads the cached chunk slices a Get covers without assembling them into one buffer
// first (the caller copies once, through WriteTo; readRangeParts takes the slices themselves).
type partsReader struct{ parts [][]byte }

func (r *partsReader) Read(p []byte) (int, error) {
	for len(r.parts) > 0 && len(r.parts[0]) == 0 {
		r.parts = r.parts[1:]
	}
	if len(r.parts) == 0 {
		return 0, io.EOF
	}
	n := copy(p, r.parts[0])
	r.parts[0] = r.parts[0][n:]
	return n, nil
}

func (r *partsReader) WriteTo(w io.Writer) (int64, error) {
	var total int64
	for len(r.parts) > 0 {
		n, err := w.Write(r.parts[0])
		total += int64(n)
		r.parts[0] = r.parts[0][n:]
		if err != nil {
			return total, err
		}
		r.parts = r.parts[1:]
	}
	return total, nil
}

func (r *partsReader) Close() error { return nil }

func (c *chunkCache) chunkLen(idx, size int64) int64 { return min(c.chunk, size-idx*c.chunk) }

// read returns the object's bytes [from, to) (0 <= from < to <= size) as consecutive slices of
// cached chunks (shared: the caller must not modify them).
func (c *chunkCache) read(ctx context.Context, s Store, key string, size, from, to int64) ([][]byte, error) {
	b, err := c.readOnce(ctx, s, key, size, from, to)
	if err != nil && ctx.Err() == nil && (errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded)) {
		// A chunk we waited for was being loaded under another reader's context, which ended:
		// not our failure; load it ourselves.
		b, err = c.readOnce(ctx, s, key, size, from, to)
	}
	return b, err
}

func (c *chunkCache) readOnce(ctx context.Context, s Store, key string, size, from, to int64) ([][]byte, error) {
	c0, c1 := from/c.chunk, (to-1)/c.chunk
	entries := make([]*chunkEntry, 0, c1-c0+1)
	var mine []*chunkEntry
	c.mu.Lock()
	for i := c0; i <= c1; i++ {
		id := chunkID{key, i}
		e := c.m[id]
		switch {
		case e == nil:
			e = c.addLocked(id, c.chunkLen(i, size))
			mine = append(mine, e)
			c.misses.Add(1)
		case e.elem != nil:
			c.lru.MoveToFront(e.elem)
			c.hits.Add(1)
		default:
			c.hits.Add(1) // loading for someone else: shared
		}
		entries = append(entries, e)
	}
	sequential := c0 == 0 || c.m[chunkID{key, c0 - 1}] != nil
	c.mu.Unlock()

	// Fetch our missing chunks, one GET per run of consecutive ones.
	failed := false
	for i := 0; i < len(mine); {
		j := i + 1
		for j < len(mine) && mine[j].id.idx == mine[j-1].id.idx+1 {
			j++
		}
		failed = c.load(ctx, s, size, mine[i:j]) != nil || failed
		i = j
	}
	if sequential && !failed { // a store that just failed gets no speculative requests
		c.prefetchAfter(s, key, size, c1)
	}
	if c0 > 0 {
		c.consumed(chunkID{key, c0 - 1})
	}
	out := make([][]byte, 0, len(entries))
	for _, e := range entries {
		select {
		case <-e.done:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
		if e.err != nil {
			return nil, e.err
		}
		lo, hi := e.id.idx*c.chunk, e.id.idx*c.chunk+int64(len(e.data))
		out = append(out, e.data[max(from, lo)-lo:min(to, hi)-lo])
	}
	return out, nil
}

// consumed moves a chunk a sequential reader is past to the back of the LRU: evicting it before the
// chunks prefetched ahead of readers (loaded earlier, so older in a plain LRU) keeps those until
// they are read. Plain LRU evicted prefetched chunks under four partitions replaying at once and
// re-fetched them (sediment bench, 11:57: 894.7 MiB of GETs for 766 MiB of objects).
//
// A reader is past a chunk when it reads from the next one, not when a read's range covers the
// chunk's end: a read asks for up to maxBytes but serves only the whole batches within them, so the
// next read starts inside the chunk again (marking it on the range evicted it first, and 10 MiB
// fetches over 8 MiB chunks re-fetched about one chunk in ten; TestReplayFourPartitionsFetchesEachChunkOnce).
func (c *chunkCache) consumed(id chunkID) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if e := c.m[id]; e != nil && e.elem != nil {
		c.lru.MoveToBack(e.elem)
	}
}

// addLocked registers a loading chunk and makes room for it.
func (c *chunkCache) addLocked(id chunkID, size int64) *chunkEntry {
	e := &chunkEntry{id: id, size: size, done: make(chan struct{})}
	c.m[id] = e
	c.used += size
	for c.used > c.max && c.lru.Len() > 0 {
		old := c.lru.Remove(c.lru.Back()).(*chunkEntry)
		delete(c.m, old.id)
		c.used -= old.size
		c.evicted.Add(1)
	}
	return e
}

// load fetches the consecutive chunks run with one ranged GET and publishes them (or the error).
func (c *chunkCache) load(ctx context.Context, s Store, size int64, run []*chunkEntry) error {
	from := run[0].id.idx * c.chunk
	to := from
	for _, e := range run {
		to += e.size
	}
	b, err := readExact(ctx, s, run[0].id.key, from, to-from)
	c.mu.Lock()
	defer c.mu.Unlock()
	pos := int64(0)
	for _, e := range run {
		if err != nil {
			e.err = err
			if c.m[e.id] == e {
				delete(c.m, e.id)
				c.used -= e.size
			}
		} else {
			e.data = b[pos : pos+e.size : pos+e.size]
			pos += e.size
			if c.m[e.id] == e {
				e.elem = c.lru.PushFront(e)
			}
		}
		close(e.done)
	}
	return err
}

// prefetchAfter starts fetching the chunks after last that are neither cached nor loading, each in
// the background with a free cold-read slot (none free, or speculate says no: no prefetch).
func (c *chunkCache) prefetchAfter(s Store, key string, size, last int64) {
	if c.speculate != nil && !c.speculate() {
		return
	}
	for i := last + 1; i <= last+int64(c.prefetch) && i*c.chunk < size; i++ {
		id := chunkID{key, i}
		c.mu.Lock()
		if c.m[id] != nil {
			c.mu.Unlock()
			continue
		}
		select {
		case c.sem <- struct{}{}:
		default:
			c.mu.Unlock()
			return
		}
		e := c.addLocked(id, c.chunkLen(i, size))
		c.mu.Unlock()
		c.prefetched.Add(1)
		go func() {
			defer func() { <-c.sem }()
			ctx, cancel := context.WithTimeout(context.Background(), prefetchTimeout)
			defer cancel()
			c.load(ctx, s, size, []*chunkEntry{e})
		}()
	}
}

// forget drops every chunk of keys (the objects were deleted).
func (c *chunkCache) forget(keys ...string) {
	drop := map[string]bool{}
	for _, k := range keys {
		drop[k] = true
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	for id, e := range c.m {
		if drop[id.key] {
			delete(c.m, id)
			c.used -= e.size
			if e.elem != nil {
				c.lru.Remove(e.elem)
			}
		}
	}
}
