package tiering

import (
	"container/list"
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
	"sync"
	"sync/atomic"
)

// chunkCache is RemoteLog's bounded in-memory cache of segment-object data: fixed-size, aligned
// chunks of an object's stored bytes (objects are immutable — every upload has a fresh key — so a
// chunk never goes stale). It serves three patterns the per-object read-ahead alone does not:
//   - concurrent consumers of the same partition share one GET per chunk (a loading chunk is
//     read as its bytes arrive, never fetched twice), where read-ahead's single prefetch per
//     object would be replaced back and forth;
//   - a consumer replaying what another read shortly before is served from memory;
//   - a sequential reader gets the next PrefetchChunks chunks fetched in parallel ahead of it, so
//     a replay keeps several GETs in flight instead of one (what bounds throughput against S3,
//     where each GET costs a round trip and a request).
//
// Footers do not go through it (RemoteLog keeps decoded footers in its own LRU). Bounded by bytes:
// loading chunks count too; ready chunks are evicted least recently used first. Prefetches only
// take a free cold-read slot (never wait for one), so they cannot starve demand reads, and a demand
// read that finds a chunk loading waits for that load's bytes, whose owner holds a slot (the
// reader that started it, or after that reader returned, a slot of the load's own: fetchRun).
//
// Chunk buffers are reused. Allocating a fresh 16 MiB buffer for every chunk loaded made the
// kernel map and zero its pages again as the body arrived (page faults inside the socket reads).
// In sediment bench's replays from the bucket (2026-11-24, replay-only runs alternated, four with
// reuse and four without), reuse took the broker's CPU from a median 0.54-0.74 to 0.56-0.60 s per
// GB (0.73-0.83 to 0.72-0.79 in each run's first replay) and the bucket medians from 769-935 to
// 835-903 MB/s. A buffer may be reused only when nothing can
// read it any more, and a read's slices outlive the read: a fetch response writes them to the
// socket later (parts.go). So each chunk counts its references (chunkEntry.refs): the cache's
// while the chunk is in m, the load's while it runs, and one per read result holding a slice of
// it (Hold), which its holder releases once done. The last release returns the buffer to spare.
// A holder that never releases only keeps its buffer from being reused (the GC frees it);
// releasing too early would let a reader see another chunk's bytes, so only a holder that has
// finished with the slices may release.
type chunkCache struct {
	chunk    int64 // bytes per chunk
	max      int64 // bytes all chunks (ready and loading) may hold
	prefetch int   // chunks fetched ahead of a sequential reader
	sem      *slots
	// speculate reports whether reading more than asked is worth it now (nil: always): prefetching,
	// and loading whole chunks. RemoteLog answers no while its fetch quota delivers less than a
	// chunk a second: a reader held to that rate gains nothing from bytes fetched ahead of it, and
	// a whole chunk is a burst of object-store reads (16 MiB from the store's disk at once) that the
	// quota was lowered to avoid. Reads of chunks not cached then fetch exactly their range.
	speculate func() bool

	mu    sync.Mutex
	used  int64
	lru   *list.List // ready *chunkEntry, most recently used first
	m     map[chunkID]*chunkEntry
	loads map[*chunkLoad]struct{} // GETs in flight (shed)

	// spare holds full-size chunk buffers no chunk references any more, for the next loads
	// (takeBuf); at most maxSpare of them, beyond max (spareMu, not mu: the last reference may
	// be dropped with mu held).
	spareMu sync.Mutex
	spare   [][]byte

	hits, misses, prefetched, evicted, direct, shed, reused atomic.Int64
	checkedOnArrival                                        atomic.Int64 // batch bytes CRC-checked by loads
}

// maxSpare bounds the spare buffers: a replay frees one chunk for each it loads, so a few cover
// the loads in flight at once (a run of two chunks and the prefetches); more would only sit idle
// after a replay, on top of the max bytes the cache itself keeps.
func (c *chunkCache) maxSpare() int { return c.prefetch + 2 }

// takeBuf returns a buffer for a chunk of size bytes: a spare one when the chunk is full size,
// else a new one (its contents undefined either way: the load overwrites all of it).
func (c *chunkCache) takeBuf(size int64) []byte {
	if size == c.chunk {
		c.spareMu.Lock()
		if n := len(c.spare); n > 0 {
			b := c.spare[n-1]
			c.spare[n-1] = nil
			c.spare = c.spare[:n-1]
			c.spareMu.Unlock()
			c.reused.Add(1)
			return b
		}
		c.spareMu.Unlock()
	}
	return makeNoZero(int(size))
}

// recycle keeps b (a full-size chunk buffer nothing references) for reuse, if there is room.
func (c *chunkCache) recycle(b []byte) {
	c.spareMu.Lock()
	if len(c.spare) < c.maxSpare() {
		c.spare = append(c.spare, b)
	}
	c.spareMu.Unlock()
}

// chunkLoad is one GET of the cache in flight (load): the chunks it fills and how to cancel it.
type chunkLoad struct {
	run    []*chunkEntry
	cancel context.CancelFunc
}

type chunkID struct {
	key string
	idx int64
}

// chunkEntry is one chunk, loading or ready. While it loads, its data fills from the front
// (readInto's progress): filled says how much of data is final, and a reader needing only a prefix
// takes it as soon as it is there instead of waiting for the whole chunk (a 1 MiB consumer fetch
// would otherwise wait for 16 MiB).
type chunkEntry struct {
	id     chunkID
	size   int64
	done   chan struct{} // closed when the load ended: data complete, or err set
	data   []byte        // set before filled first grows; bytes [0, filled) are final
	filled atomic.Int64
	err    error
	elem   *list.Element // in lru once ready
	// forRead: loaded by loadFirst for a read still loading the footer; that read counts the
	// miss when it reaches the chunk (under chunkCache.mu).
	forRead bool
	// readers counts the reads that need bytes of this chunk and have not returned (readOnce): a
	// load none of whose chunks has one is one shedIdle may cancel.
	readers atomic.Int32
	// refs counts what may still read data (see chunkCache): the cache's reference while the
	// chunk is in m, the load's while it runs, each read's until it returns, and each Hold's
	// until released. Taken only under chunkCache.mu while the chunk is in m, so it never rises
	// again once it has reached 0.
	refs  atomic.Int32
	cache *chunkCache
	// checkedFrom and checkedTo bound, in chunk positions, the batches whose CRC the load checked
	// as they arrived (arrival_check.go); checkedTo 0: none. checkedFrom is stored first.
	checkedFrom, checkedTo atomic.Int64

	wakeMu sync.Mutex
	wake   chan struct{} // closed when filled grows; made by a waiting reader (nil: none waits)
}

// unref drops one reference to the chunk's buffer; the last one hands a full-size buffer back to
// the cache for reuse.
func (e *chunkEntry) unref() {
	if e.refs.Add(-1) != 0 {
		return
	}
	if b := e.data; b != nil && int64(cap(b)) == e.cache.chunk {
		e.cache.recycle(b[:cap(b)])
	}
}

// Hold is a read result's claim on the chunk buffers its slices lie in (PartsResult.Hold): until
// released, the cache does not reuse them. Release once nothing will read the slices again — a
// fetch response releases after its bytes were written to the socket. Never releasing is safe
// (the buffers are left to the GC); releasing while the slices are still read is not.
type Hold struct {
	entries  []*chunkEntry
	released atomic.Bool
}

func newHold(entries []*chunkEntry) *Hold {
	if len(entries) == 0 {
		return nil
	}
	return &Hold{entries: entries}
}

// Release gives the buffers back. Safe on a nil Hold and more than once (only the first counts).
func (h *Hold) Release() {
	if h == nil || !h.released.CompareAndSwap(false, true) {
		return
	}
	for _, e := range h.entries {
		e.unref()
	}
}

// Released reports whether Release was called.
func (h *Hold) Released() bool { return h != nil && h.released.Load() }

// joinHolds returns one Hold for the buffers of a and b, which are consumed (neither is released
// on its own any more).
func joinHolds(a, b *Hold) *Hold {
	switch {
	case a == nil:
		return b
	case b == nil:
		return a
	}
	a.released.Store(true)
	b.released.Store(true)
	return newHold(append(slices.Clip(a.entries), b.entries...))
}

// advance publishes that the first n bytes of data are final and wakes the readers waiting.
func (e *chunkEntry) advance(n int64) {
	e.filled.Store(n)
	e.wakeMu.Lock()
	if e.wake != nil {
		close(e.wake)
		e.wake = nil
	}
	e.wakeMu.Unlock()
}

// waitFilled waits until the first n bytes of the chunk are final (nil) or its load failed first
// (the load's error) or ctx ends.
func (e *chunkEntry) waitFilled(ctx context.Context, n int64) error {
	for {
		if e.filled.Load() >= n {
			return nil
		}
		e.wakeMu.Lock()
		if e.filled.Load() >= n { // grew before we registered
			e.wakeMu.Unlock()
			return nil
		}
		if e.wake == nil {
			e.wake = make(chan struct{})
		}
		wake := e.wake
		e.wakeMu.Unlock()
		select {
		case <-wake:
		case <-e.done:
			if e.filled.Load() >= n {
				return nil
			}
			if e.err != nil {
				return e.err
			}
			return fmt.Errorf("tiering: chunk %d of %s loaded %d of its %d bytes", e.id.idx, e.id.key, e.filled.Load(), e.size)
		case <-ctx.Done():
			return ctx.Err()
		}
	}
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

func newChunkCache(maxBytes, chunk int64, prefetch int, sem *slots) *chunkCache {
	return &chunkCache{chunk: chunk, max: maxBytes, prefetch: prefetch, sem: sem, lru: list.New(), m: map[chunkID]*chunkEntry{},
		loads: map[*chunkLoad]struct{}{}}
}

// CacheStats counts the chunk cache's work since the RemoteLog was made.
type CacheStats struct {
	Hits, Misses int64 // chunks a read found ready (or loading) / had to fetch itself
	Prefetched   int64 // chunks fetched ahead of a sequential reader
	Evicted      int64
	Direct       int64 // reads fetched exactly, past the cache, while speculation was off
	Shed         int64 // GETs cancelled, no read needing them, when the quota fell (shedIdle)
	Reused       int64 // chunk loads into the buffer of a chunk nothing referenced any more
	Bytes        int64 // bytes held now (ready and loading)
	// CheckedOnArrival counts the batch bytes whose CRC a load checked as they arrived, so that
	// the reads serving them did not check them again (arrival_check.go).
	CheckedOnArrival int64
}

func (c *chunkCache) stats() CacheStats {
	c.mu.Lock()
	used := c.used
	c.mu.Unlock()
	return CacheStats{Hits: c.hits.Load(), Misses: c.misses.Load(), Prefetched: c.prefetched.Load(), Evicted: c.evicted.Load(), Direct: c.direct.Load(), Shed: c.shed.Load(), Reused: c.reused.Load(), Bytes: used, CheckedOnArrival: c.checkedOnArrival.Load()}
}

// cachedObject is the Store a RemoteReader of one object reads its data through: Gets of that key
// go through the cache, everything else to the backing store.
type cachedObject struct {
	Store
	c    *chunkCache
	key  string
	size int64
	// batches: where the object's batches start, for checking them as chunks arrive (the
	// reader's footer; nil: not checked on arrival).
	batches batchLocator
}

func (o *cachedObject) ref() objectRef {
	return objectRef{s: o.Store, key: o.key, size: o.size, batches: o.batches}
}

// objectRef is the object a cache read or load is for: its backing store, key and size, and
// where its batches start (nil: the load does not check them on arrival, arrival_check.go).
type objectRef struct {
	s       Store
	key     string
	size    int64
	batches batchLocator
}

func (o *cachedObject) Get(ctx context.Context, key string, off, n int64) (io.ReadCloser, error) {
	if key != o.key || off < 0 || off >= o.size {
		return o.Store.Get(ctx, key, off, n)
	}
	end := o.size
	if n >= 0 {
		end = min(off+n, o.size)
	}
	parts, hold, err := o.c.read(ctx, o.ref(), off, end)
	if err != nil {
		return nil, err
	}
	return &partsReader{parts: parts, hold: hold}, nil
}

// partsReader reads the cached chunk slices a Get covers without assembling them into one buffer
// first (the caller copies once, through WriteTo; readRangeParts takes the slices themselves, and
// their Hold). Close releases the Hold: a caller that read through Read or WriteTo has its copy.
type partsReader struct {
	parts [][]byte
	hold  *Hold
}

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

func (r *partsReader) Close() error {
	r.hold.Release()
	r.hold = nil
	return nil
}

func (c *chunkCache) chunkLen(idx, size int64) int64 { return min(c.chunk, size-idx*c.chunk) }

// read returns the object's bytes [from, to) (0 <= from < to <= size) as consecutive slices of
// cached chunks (shared: the caller must not modify them), held until the Hold is released.
func (c *chunkCache) read(ctx context.Context, o objectRef, from, to int64) ([][]byte, *Hold, error) {
	return c.readPrefix(ctx, o, from, to, to)
}

// readPrefix is read for a reader that can use fewer bytes than it asks for: it waits only for
// [from, need) (from < need <= to) and returns [from, x), where x <= to is as far as the bytes
// from `from` on have all arrived by then. A consumer fetch from the bucket waits this way for its
// first batch, not for all of its maxBytes: a replay's first fetch took 47-59 ms waiting for 10 MiB
// of each partition to arrive from MinIO while the consumer sat idle (sediment bench, 2026-11-23),
// and later fetches that caught up with the prefetch waited 18-37 ms the same way.
func (c *chunkCache) readPrefix(ctx context.Context, o objectRef, from, need, to int64) ([][]byte, *Hold, error) {
	b, h, err := c.readOnce(ctx, o, from, need, to)
	if err != nil && ctx.Err() == nil && (errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded)) {
		// A chunk we waited for was being loaded under another reader's context, which ended:
		// not our failure; load it ourselves.
		b, h, err = c.readOnce(ctx, o, from, need, to)
	}
	return b, h, err
}

func (c *chunkCache) readOnce(ctx context.Context, o objectRef, from, need, to int64) ([][]byte, *Hold, error) {
	s, key, size := o.s, o.key, o.size
	c0, c1 := from/c.chunk, (to-1)/c.chunk
	if c.speculate != nil && !c.speculate() && !c.holdsAny(key, c0, c1) {
		// Held below a chunk a second: fetch what was asked, not whole chunks (see speculate).
		buf := makeNoZero(int(to - from))
		if err := readInto(ctx, s, key, from, buf, nil); err != nil {
			return nil, nil, err
		}
		c.direct.Add(1)
		return [][]byte{buf}, nil, nil // not a cache buffer: nothing to hold
	}
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
		case e.forRead:
			e.forRead = false // loadFirst started this GET for us (it may have ended already)
			if e.elem != nil {
				c.lru.MoveToFront(e.elem)
			}
			c.misses.Add(1)
		case e.elem != nil:
			c.lru.MoveToFront(e.elem)
			c.hits.Add(1)
		default:
			c.hits.Add(1) // loading for someone else: shared
		}
		// This read's reference, taken now: the chunk is in m, so the cache's reference still
		// stands and the buffer cannot have been reused; a later addLocked in this loop may evict
		// it, and without ours its buffer would go back to spare under us.
		e.refs.Add(1)
		entries = append(entries, e)
	}
	sequential := c0 == 0 || c.m[chunkID{key, c0 - 1}] != nil
	// Counted under mu, so that shedIdle never cancels a load this read is about to wait for.
	for _, e := range entries {
		e.readers.Add(1)
	}
	c.mu.Unlock()
	held := 0 // entries[:held] have slices in the result: their references go to its Hold
	defer func() {
		for _, e := range entries {
			e.readers.Add(-1)
		}
		for _, e := range entries[held:] {
			e.unref()
		}
	}()

	// Fetch our missing chunks, one GET per run of consecutive ones, each up to the bytes this read
	// must wait for (the rest of the last run may still be arriving when we return).
	for i := 0; i < len(mine); {
		j := i + 1
		for j < len(mine) && mine[j].id.idx == mine[j-1].id.idx+1 {
			j++
		}
		if err := c.fetchRun(ctx, o, mine[i:j], need); err != nil {
			c.drop(mine[j:], err) // registered, never started
			return nil, nil, err  // no prefetch either: a store that just failed gets no speculative requests
		}
		i = j
	}
	if sequential {
		c.prefetchAfter(o, c1)
	}
	if c0 > 0 {
		c.consumed(chunkID{key, c0 - 1})
	}
	out := make([][]byte, 0, len(entries))
	for k, e := range entries {
		lo := e.id.idx * c.chunk
		if lo < need { // wait for this chunk's bytes below need only
			if err := e.waitFilled(ctx, min(need-lo, e.size)); err != nil {
				held = 0 // no result: every reference goes
				return nil, nil, err
			}
		}
		begin, reach := max(from, lo)-lo, min(to-lo, e.size)
		got := min(reach, e.filled.Load()) // e.data is set before filled first grows
		if got <= begin {
			break
		}
		out = append(out, e.data[begin:got])
		held = k + 1
		if got < reach {
			break // the bytes after got have not arrived: the result ends here
		}
	}
	return out, newHold(entries[:held:held]), nil
}

// holdsAny reports whether any of key's chunks c0..c1 is cached or loading.
func (c *chunkCache) holdsAny(key string, c0, c1 int64) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	for i := c0; i <= c1; i++ {
		if c.m[chunkID{key, i}] != nil {
			return true
		}
	}
	return false
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
	e := &chunkEntry{id: id, size: size, done: make(chan struct{}), cache: c}
	e.refs.Store(2) // the cache's, and the load's (load drops it when it ends)
	c.m[id] = e
	c.used += size
	for c.used > c.max && c.lru.Len() > 0 {
		old := c.lru.Remove(c.lru.Back()).(*chunkEntry)
		delete(c.m, old.id)
		c.used -= old.size
		c.evicted.Add(1)
		old.unref()
	}
	return e
}

// fetchRun loads run (consecutive chunks this reader registered as loading) with one ranged GET
// and returns once the run's bytes below the object position to have arrived: a reader needing the
// front of a chunk does not wait for all of it. The rest keeps arriving in the background for the
// readers after it, under a cold-read slot of its own (the caller returns its slot when it
// returns); with no slot free, fetchRun waits for the whole run as it did before chunks streamed,
// so that there are never more GETs in flight than slots. The GET runs under a context of its own
// (the caller's values, not its end, bounded by prefetchTimeout) because it may outlive the caller;
// if the caller gives up while the GET holds no slot of its own, the GET is cancelled.
func (c *chunkCache) fetchRun(ctx context.Context, o objectRef, run []*chunkEntry, to int64) error {
	lctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), prefetchTimeout)
	c.mu.Lock()
	l := c.trackLocked(run, cancel)
	c.mu.Unlock()
	go c.loadTracked(lctx, o, l)
	err := c.waitRun(ctx, run, to)
	last := run[len(run)-1]
	select {
	case <-last.done:
		return err
	default:
	}
	if c.sem.tryAcquire(false) { // the rest continues on a slot of its own, released when it ends
		go func() {
			<-last.done
			c.sem.release()
		}()
		return err
	}
	if err == nil {
		select {
		case <-last.done:
			return nil // our bytes arrived; a failure after them is the next reader's to see
		case <-ctx.Done():
			err = ctx.Err()
		}
	}
	cancel()
	return err
}

// waitRun waits until the run's bytes below object position to have arrived.
func (c *chunkCache) waitRun(ctx context.Context, run []*chunkEntry, to int64) error {
	for _, e := range run {
		lo := e.id.idx * c.chunk
		if lo >= to {
			break
		}
		if err := e.waitFilled(ctx, min(to-lo, e.size)); err != nil {
			return err
		}
	}
	return nil
}

// drop ends the loads of entries (registered as loading) with err: their waiting readers get err,
// and the cache forgets them, so that the next read fetches them again.
func (c *chunkCache) drop(entries []*chunkEntry, err error) {
	if len(entries) == 0 {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, e := range entries {
		e.err = err
		if c.m[e.id] == e {
			delete(c.m, e.id)
			c.used -= e.size
			e.unref()
		}
		close(e.done)
	}
}

// load fetches the consecutive chunks run with one ranged GET, publishing their bytes as they
// arrive (chunkEntry.advance) and then the outcome: the chunks join the LRU, or are dropped with
// the error.
func (c *chunkCache) load(ctx context.Context, o objectRef, run []*chunkEntry) error {
	defer func() {
		for _, e := range run {
			e.unref() // the load's reference (addLocked)
		}
	}()
	from := run[0].id.idx * c.chunk
	bufs := make([][]byte, len(run))
	for i, e := range run {
		e.data = c.takeBuf(e.size) // before any advance: readers look only below filled
		bufs[i] = e.data
	}
	check := newArrivalCheck(o.batches, run, bufs, from, c.chunk, &c.checkedOnArrival)
	err := readIntoBufs(ctx, o.s, o.key, from, bufs, func(got int64) {
		check.arrived(got) // before advance: a reader that sees the bytes sees them checked
		// got bytes of the run are final: each chunk's share of them.
		start := int64(0)
		for _, e := range run {
			if f := min(max(got-start, 0), e.size); f > e.filled.Load() {
				e.advance(f)
			}
			start += e.size
		}
	})
	if err != nil {
		c.drop(run, err) // a prefix already served stays valid (readInto); whoever needs more fetches again
		return err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, e := range run {
		if c.m[e.id] == e {
			e.elem = c.lru.PushFront(e)
		}
		close(e.done)
	}
	return nil
}

// prefetchAfter starts fetching the chunks after last that are neither cached nor loading, each in
// the background with a free cold-read slot (none free, or speculate says no: no prefetch).
func (c *chunkCache) prefetchAfter(o objectRef, last int64) {
	if c.speculate != nil && !c.speculate() {
		return
	}
	for i := last + 1; i <= last+int64(c.prefetch) && i*c.chunk < o.size; i++ {
		if !c.startLoad(o, i, false) {
			return
		}
	}
}

// loadFirst starts fetching key's first chunk for a read from the object's first offset that is
// still loading the footer: the read needs those bytes whatever the footer says, so the two GETs
// overlap instead of following each other. Only with a slot free for a consumer read now, and
// only if speculate allows.
func (c *chunkCache) loadFirst(o objectRef) {
	if c.speculate != nil && !c.speculate() {
		return
	}
	c.startLoad(o, 0, true)
}

// startLoad starts fetching chunk i of key in the background, under a cold-read slot free now,
// unless the chunk is cached or loading. forRead: for a consumer read that will need the chunk
// (loadFirst), else a prefetch (background work). It reports false when no slot was free.
func (c *chunkCache) startLoad(o objectRef, i int64, forRead bool) bool {
	id := chunkID{o.key, i}
	c.mu.Lock()
	if c.m[id] != nil {
		c.mu.Unlock()
		return true
	}
	if !c.sem.tryAcquire(!forRead) {
		c.mu.Unlock()
		return false
	}
	e := c.addLocked(id, c.chunkLen(i, o.size))
	e.forRead = forRead
	ctx, cancel := context.WithTimeout(context.Background(), prefetchTimeout)
	l := c.trackLocked([]*chunkEntry{e}, cancel)
	c.mu.Unlock()
	if !forRead {
		c.prefetched.Add(1)
	}
	go func() {
		defer c.sem.release()
		c.loadTracked(ctx, o, l)
	}()
	return true
}

// trackLocked registers a GET about to start for run, cancelled by cancel (its context's).
func (c *chunkCache) trackLocked(run []*chunkEntry, cancel context.CancelFunc) *chunkLoad {
	l := &chunkLoad{run: run, cancel: cancel}
	c.loads[l] = struct{}{}
	return l
}

// loadTracked runs l's GET (load) and unregisters it when it ends.
func (c *chunkCache) loadTracked(ctx context.Context, o objectRef, l *chunkLoad) {
	defer l.cancel()
	c.load(ctx, o, l.run)
	c.mu.Lock()
	delete(c.loads, l)
	c.mu.Unlock()
}

// shedIdle cancels the GETs in flight that no read needs (chunkEntry.readers: a read counts from
// the moment it finds a chunk until it returns): prefetches, warm-ups of the next object, and the
// rest of chunks whose readers already have their bytes. RemoteLog calls it
// when the fetch quota drops below a chunk a second (the adaptive throttle backing off because
// producers are short of CPU): speculation is off from then on (speculate), but the GETs already
// started would each go on pulling up to a chunk (16 MiB) from the store at full speed, on the
// CPU and disk the quota was lowered to give back — the burst producers saw when they arrived
// during a replay (sediment bench: hundreds of acks over 2 ms in the first second). A cancelled
// load is dropped (load): a reader that comes for one of its chunks later reads its exact range,
// and one that started waiting on it in between retries (read). It returns how many it cancelled.
func (c *chunkCache) shedIdle() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	n := 0
	for l := range c.loads {
		if slices.ContainsFunc(l.run, func(e *chunkEntry) bool { return e.readers.Load() > 0 }) {
			continue
		}
		l.cancel()
		delete(c.loads, l)
		n++
	}
	c.shed.Add(int64(n))
	return n
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
			e.unref()
		}
	}
}
