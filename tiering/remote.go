package tiering

import (
	"container/list"
	"context"
	"errors"
	"fmt"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"github.com/sediment-io/sediment/meta"
	"github.com/sediment-io/sediment/segment"
)

// MetaManifest adapts a meta.Node to Manifest (and ManifestRemover) for one partition.
type MetaManifest struct {
	Node      *meta.Node
	Topic     meta.TopicID
	Partition int32
}

func (m MetaManifest) RemoteSegments() []meta.RemoteSegment {
	return m.Node.State().RemoteSegments(m.Topic, m.Partition)
}

func (m MetaManifest) AddRemoteSegment(ctx context.Context, s meta.RemoteSegment) error {
	return m.Node.AddRemoteSegment(ctx, m.Topic, m.Partition, s)
}

// CatchUp waits until this node's metadata holds every commit the quorum had made when it was
// called (meta.Node.CatchUp); see ManifestSyncer.
func (m MetaManifest) CatchUp(ctx context.Context) error { return m.Node.CatchUp(ctx) }

func (m MetaManifest) RemoveRemoteSegments(ctx context.Context, keys []string) error {
	return m.Node.RemoveRemoteSegments(ctx, m.Topic, m.Partition, keys)
}

// ManifestRemover drops entries from a partition's manifest (meta.Node.RemoveRemoteSegments).
type ManifestRemover interface {
	RemoveRemoteSegments(ctx context.Context, keys []string) error
}

// DeleteRemoteSegments is remote retention's last step for segs (chosen by the caller, oldest first):
// remove the entries from the manifest first, so no reader is sent to them any more, then delete
// the objects. An object whose deletion fails is no longer in the manifest, so CollectOrphans
// removes it later; the error is still returned. A reader that raced the removal gets ErrNotFound
// from the store and should answer as for an offset below the log start.
func DeleteRemoteSegments(ctx context.Context, s Store, m ManifestRemover, segs []meta.RemoteSegment) error {
	if len(segs) == 0 {
		return nil
	}
	keys := make([]string, len(segs))
	for i, sg := range segs {
		keys[i] = sg.ObjectKey
	}
	if err := m.RemoveRemoteSegments(ctx, keys); err != nil {
		return fmt.Errorf("tiering: removing %d manifest entries: %w", len(keys), err)
	}
	var errs []error
	for _, k := range keys {
		if err := s.Delete(ctx, k); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// DeleteTopicObjects removes every object of a deleted topic (committed or orphaned: everything under
// its prefix), then the manifest entries of each partition, after which meta forgets the topic
// (State.DeletedTopicsWithRemoteData). Idempotent: rerun it until it returns nil.
func DeleteTopicObjects(ctx context.Context, s Store, n *meta.Node, topic meta.TopicID) error {
	objs, err := s.List(ctx, TopicPrefix(topic))
	if err != nil {
		return err
	}
	for _, o := range objs {
		if err := s.Delete(ctx, o.Key); err != nil {
			return err
		}
	}
	st := n.State()
	for _, p := range st.RemotePartitions(topic) {
		var keys []string
		for _, sg := range st.RemoteSegments(topic, p) {
			keys = append(keys, sg.ObjectKey)
		}
		if err := n.RemoveRemoteSegments(ctx, topic, p, keys); err != nil {
			return err
		}
	}
	return nil
}

// RemoteLog serves reads of a partition's remote history from its manifest entries, keeping the
// decoded footers of recently used objects in a bounded LRU (so a seek costs one ranged GET once the
// footer is cached). Safe for concurrent use; one RemoteLog can serve every partition of a broker.
type RemoteLog struct {
	store  Store
	max    int
	budget *atomic.Int64 // read-ahead bytes available; nil = no read-ahead
	sem    *slots        // cold-read concurrency budget: one slot per in-flight GET
	cache  *chunkCache   // object data chunks (cache.go); nil = disabled
	quota  *FetchQuota   // nil = unlimited
	failed atomic.Int64  // unix nanos of the last Read that failed for the store's sake; 0 after a success

	mu      sync.Mutex
	lru     *list.List // of *RemoteReader, most recent first
	byKey   map[string]*list.Element
	warming map[string]bool // objects being opened in the background
}

// DefaultReadAheadBytes bounds the memory a RemoteLog's prefetches hold at once.
const DefaultReadAheadBytes = 64 << 20

// DefaultMaxConcurrentReads bounds a RemoteLog's in-flight object-store reads.
const DefaultMaxConcurrentReads = 8

// RemoteLogConfig tunes a RemoteLog. Zero values take the defaults.
type RemoteLogConfig struct {
	MaxFooters     int   // decoded footers cached; default 1024
	ReadAheadBytes int64 // memory all prefetches may hold; default DefaultReadAheadBytes; negative disables read-ahead. Without a cache only: with one, the cache prefetches chunks instead
	// MaxConcurrentReads is the cold-read budget: object-store GETs (reads, prefetches, footer loads) in
	// flight at once, so a replay from the bucket queues on its own slots instead of taking the broker's
	// network and CPU from produce. Default DefaultMaxConcurrentReads.
	MaxConcurrentReads int
	// CacheBytes bounds the chunk cache of object data (cache.go): shared GETs for concurrent
	// consumers, re-reads from memory and PrefetchChunks chunks fetched in parallel ahead of a
	// sequential reader. 0 or negative: no cache (and no chunk prefetch); DefaultCacheBytes is the
	// size the broker uses.
	CacheBytes      int64
	CacheChunkBytes int64 // default DefaultCacheChunkBytes
	PrefetchChunks  int   // default DefaultPrefetchChunks; negative: none
	// FetchBytesPerSecond caps the bytes consumer fetches read from the bucket (FetchQuota, KIP-956's
	// remote.log.manager.fetch.max.bytes.per.second); 0: unlimited. The caller checks Quota().
	FetchBytesPerSecond int64
}

// NewRemoteLog returns a reader with a cache of at most maxFooters footers (≤ 0: 1024), read-ahead for
// sequential consumers within DefaultReadAheadBytes and DefaultMaxConcurrentReads GETs in flight.
func NewRemoteLog(s Store, maxFooters int) *RemoteLog {
	return NewRemoteLogWith(s, RemoteLogConfig{MaxFooters: maxFooters})
}

// NewRemoteLogWith builds a RemoteLog from a config.
func NewRemoteLogWith(s Store, cfg RemoteLogConfig) *RemoteLog {
	if cfg.MaxFooters <= 0 {
		cfg.MaxFooters = 1024
	}
	if cfg.ReadAheadBytes == 0 {
		cfg.ReadAheadBytes = DefaultReadAheadBytes
	}
	if cfg.MaxConcurrentReads <= 0 {
		cfg.MaxConcurrentReads = DefaultMaxConcurrentReads
	}
	r := &RemoteLog{store: s, max: cfg.MaxFooters, lru: list.New(), byKey: map[string]*list.Element{},
		sem: newSlots(cfg.MaxConcurrentReads)}
	r.quota = NewFetchQuota(cfg.FetchBytesPerSecond)
	if cfg.CacheChunkBytes <= 0 {
		cfg.CacheChunkBytes = DefaultCacheChunkBytes
	}
	if cfg.PrefetchChunks == 0 {
		cfg.PrefetchChunks = DefaultPrefetchChunks
	}
	if cfg.CacheBytes > 0 {
		r.cache = newChunkCache(cfg.CacheBytes, cfg.CacheChunkBytes, max(cfg.PrefetchChunks, 0), r.sem)
		chunk := float64(cfg.CacheChunkBytes)
		r.cache.speculate = func() bool { return r.quota.Rate() >= chunk }
	}
	if cfg.ReadAheadBytes > 0 && r.cache == nil {
		// With the cache, its chunk prefetches are the read-ahead: a range read-ahead on top
		// fetched through the cache too, marked chunks read before they were, and held the
		// budget's worth of chunks more than 10 MiB fetches of four partitions left room for.
		r.budget = new(atomic.Int64)
		r.budget.Store(cfg.ReadAheadBytes)
	}
	return r
}

// isOpen reports whether key's reader (its footer) is cached.
func (r *RemoteLog) isOpen(key string) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	_, ok := r.byKey[key]
	return ok
}

// open returns the reader of seg's object: cached, or its footer loaded under a cold-read slot.
func (r *RemoteLog) open(ctx context.Context, seg meta.RemoteSegment) (*RemoteReader, error) {
	return r.openAs(ctx, seg, false)
}

// openAs is open; background (a warm-up) loads a footer not cached only when no consumer read
// waits for a cold-read slot.
func (r *RemoteLog) openAs(ctx context.Context, seg meta.RemoteSegment, background bool) (*RemoteReader, error) {
	r.mu.Lock()
	if e, ok := r.byKey[seg.ObjectKey]; ok {
		r.lru.MoveToFront(e)
		rr := e.Value.(*RemoteReader)
		r.mu.Unlock()
		return rr, nil
	}
	r.mu.Unlock()
	if err := r.sem.acquire(ctx, background); err != nil {
		return nil, err
	}
	rr, err := OpenRemote(ctx, r.store, seg.ObjectKey, seg.Size)
	r.sem.release()
	if err != nil {
		return nil, err
	}
	rr.sem = r.sem
	if r.cache != nil {
		rr.store = &cachedObject{Store: r.store, c: r.cache, key: seg.ObjectKey, size: rr.size, batches: rr.Footer}
	}
	if rr.Footer.BaseOffset != seg.BaseOffset || rr.Footer.LastOffset != seg.LastOffset {
		return nil, fmt.Errorf("%w: %s holds offsets %d..%d, the manifest says %d..%d", ErrBadFooter, seg.ObjectKey, rr.Footer.BaseOffset, rr.Footer.LastOffset, seg.BaseOffset, seg.LastOffset)
	}
	if r.budget != nil {
		rr.ra = &readAhead{budget: r.budget}
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if e, ok := r.byKey[seg.ObjectKey]; ok { // opened concurrently
		return e.Value.(*RemoteReader), nil
	}
	r.byKey[seg.ObjectKey] = r.lru.PushFront(rr)
	for r.lru.Len() > r.max {
		old := r.lru.Back()
		r.lru.Remove(old)
		o := old.Value.(*RemoteReader)
		delete(r.byKey, o.key)
		if o.ra != nil {
			o.ra.discard()
		}
	}
	return rr, nil
}

// Quota is the fetch byte-rate budget (nil: unlimited; FetchQuota's methods accept nil).
func (r *RemoteLog) Quota() *FetchQuota { return r.quota }

// CacheStats reports the chunk cache's counters (zero when the cache is disabled).
func (r *RemoteLog) CacheStats() CacheStats {
	if r.cache == nil {
		return CacheStats{}
	}
	return r.cache.stats()
}

// Forget drops cached footers and data of keys (after remote retention deleted them).
func (r *RemoteLog) Forget(keys ...string) {
	if r.cache != nil {
		r.cache.forget(keys...)
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, k := range keys {
		if e, ok := r.byKey[k]; ok {
			r.lru.Remove(e)
			delete(r.byKey, k)
			if o := e.Value.(*RemoteReader); o.ra != nil {
				o.ra.discard()
			}
		}
	}
}

// Read returns whole batches from the remote segment holding offset (segs: the partition's manifest,
// ordered), as segment.Log.Read does for one local segment: at most maxBytes unless minOneBatch and
// the first batch is larger. An offset in a gap between entries reads from the next entry.
// offset below the first entry or above the last: segment.ErrOffsetOutOfRange.
func (r *RemoteLog) Read(ctx context.Context, segs []meta.RemoteSegment, offset int64, maxBytes int, minOneBatch bool) (ReadResult, error) {
	res, err := r.ReadParts(ctx, segs, offset, maxBytes, minOneBatch)
	if err != nil {
		return ReadResult{}, err
	}
	return ReadResult{Data: joinReleasing(res.Parts, res.Hold), NextOffset: res.NextOffset}, nil
}

// ReadParts is Read with the batches as the consecutive cached chunk slices they span, not copied
// into one buffer (parts.go; a fetch response writes them in place). The caller must not modify them.
func (r *RemoteLog) ReadParts(ctx context.Context, segs []meta.RemoteSegment, offset int64, maxBytes int, minOneBatch bool) (PartsResult, error) {
	res, err := r.read(ctx, segs, offset, maxBytes, minOneBatch)
	switch {
	case err == nil:
		r.failed.Store(0)
	case errors.Is(err, segment.ErrOffsetOutOfRange), errors.Is(err, ErrNotFound), errors.Is(err, context.Canceled):
		// The reader's doing (or retention's), not the store's.
	case errors.Is(err, segment.ErrCorrupt):
		// One object's bytes are damaged; the store answers. Counting that as an outage would
		// shorten every other cold read's timeout for as long as a consumer retries the batch.
	default:
		r.failed.Store(time.Now().UnixNano())
	}
	return res, err
}

// Failing reports whether the last Read that reached the store failed (error or timeout) within the
// last d: callers can then bound their next reads more tightly instead of waiting out a full
// timeout per partition while the store is down.
func (r *RemoteLog) Failing(d time.Duration) bool {
	t := r.failed.Load()
	return t != 0 && time.Since(time.Unix(0, t)) < d
}

func (r *RemoteLog) read(ctx context.Context, segs []meta.RemoteSegment, offset int64, maxBytes int, minOneBatch bool) (PartsResult, error) {
	i := sort.Search(len(segs), func(i int) bool { return segs[i].LastOffset >= offset })
	if len(segs) == 0 || offset < segs[0].BaseOffset || i == len(segs) {
		return PartsResult{}, fmt.Errorf("%w: offset %d not in remote storage", segment.ErrOffsetOutOfRange, offset)
	}
	seg := segs[i]
	offset = max(offset, seg.BaseOffset)
	if offset == seg.BaseOffset && r.cache != nil && !r.isOpen(seg.ObjectKey) {
		r.cache.loadFirst(objectRef{s: r.store, key: seg.ObjectKey, size: seg.Size, batches: objectStart{}})
	}
	rr, err := r.open(ctx, seg)
	if err != nil {
		return PartsResult{}, err
	}
	res, err := rr.ReadParts(ctx, offset, maxBytes, minOneBatch)
	if err == nil && (r.budget != nil || r.cache != nil) && i+1 < len(segs) && len(res.Parts) > 0 {
		// Nearing this object's end: warm the next one (footer and first range) so that a sequential
		// consumer crosses the segment boundary without waiting for two GETs.
		f := rr.Footer
		near := res.NextOffset > f.LastOffset
		if !near {
			s2 := int64(f.Offsets[f.floorOffset(res.NextOffset)].Position)
			near = f.nextPosition(s2)+int64(max(maxBytes, 0)) >= f.DataLen
		}
		if near {
			r.warm(segs[i+1], maxBytes)
		}
	}
	return res, err
}

// warm opens seg in the background (at most one warm-up per object at a time) and prefetches its
// first maxBytes (with the chunk cache: its first PrefetchChunks chunks).
func (r *RemoteLog) warm(seg meta.RemoteSegment, maxBytes int) {
	r.mu.Lock()
	_, cached := r.byKey[seg.ObjectKey]
	if cached || r.warming[seg.ObjectKey] {
		r.mu.Unlock()
		return
	}
	if r.warming == nil {
		r.warming = map[string]bool{}
	}
	r.warming[seg.ObjectKey] = true
	r.mu.Unlock()
	go func() {
		defer func() {
			r.mu.Lock()
			delete(r.warming, seg.ObjectKey)
			r.mu.Unlock()
		}()
		ctx, cancel := context.WithTimeout(context.Background(), prefetchTimeout)
		defer cancel()
		rr, err := r.openAs(ctx, seg, true)
		if err != nil {
			return
		}
		if rr.ra == nil {
			if r.cache != nil {
				r.cache.prefetchAfter(objectRef{s: r.store, key: seg.ObjectKey, size: rr.size, batches: rr.Footer}, -1) // its first chunks
			}
			return
		}
		f := rr.Footer
		rr.ra.launch(rr, 0, min(f.DataLen, f.nextPosition(0)+int64(max(maxBytes, 0))))
	}()
}

// Footer returns the decoded footer (indexes, max timestamp and its offset, counts) of seg's object,
// from the cache or with one ranged GET.
func (r *RemoteLog) Footer(ctx context.Context, seg meta.RemoteSegment) (*Footer, error) {
	rr, err := r.open(ctx, seg)
	if err != nil {
		return nil, err
	}
	return rr.Footer, nil
}

// OffsetForTimestamp finds, across the manifest, the first batch whose maxTimestamp ≥ ts: its base
// offset and maxTimestamp (batch granularity; the caller decodes the batch for the exact record).
// The manifest's per-segment MaxTimestamp picks the object without touching the others.
func (r *RemoteLog) OffsetForTimestamp(ctx context.Context, segs []meta.RemoteSegment, ts int64) (offset, timestamp int64, ok bool, err error) {
	for _, seg := range segs {
		if seg.MaxTimestamp < ts {
			continue
		}
		rr, err := r.open(ctx, seg)
		if err != nil {
			return 0, 0, false, err
		}
		return rr.OffsetForTimestamp(ctx, ts)
	}
	return 0, 0, false, nil
}
