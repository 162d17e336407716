package tiering_test

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"math/rand/v2"
	"sync"
	"testing"
	"time"

	"github.com/sediment-io/sediment/meta"
	"github.com/sediment-io/sediment/tiering"
)

// putReplayPartitions stores four partitions of objects segment objects each, each object about
// objBytes of incompressible data in batches of batchBytes, and returns the partitions' manifests
// and the objects' stored data bytes in all.
func putReplayPartitions(tb testing.TB, st tiering.Store, objects int, objBytes, batchBytes int) ([4][]meta.RemoteSegment, int64) {
	tb.Helper()
	ctx := context.Background()
	rng := rand.New(rand.NewPCG(4, 4))
	var parts [4][]meta.RemoteSegment
	var total int64
	off := int64(0)
	for p := range parts {
		for o := range objects {
			base := off
			var data []byte
			data, off = randomBatches(rng, base, objBytes, 256, batchBytes)
			obj, err := tiering.BuildSegmentObject(bytes.NewReader(data), int64(len(data)), 0)
			if err != nil {
				tb.Fatal(err)
			}
			key := fmt.Sprintf("segments/replay/%d/%d", p, o)
			if err := st.Put(ctx, key, obj, obj.Size()); err != nil {
				tb.Fatal(err)
			}
			parts[p] = append(parts[p], meta.RemoteSegment{BaseOffset: base, LastOffset: off - 1, Size: obj.Size(), ObjectKey: key})
			total += obj.Footer.StoredLen
		}
	}
	return parts, total
}

// replayRounds reads every partition from its first offset to its end as one consumer fetching
// the four partitions at once does: each round reads all unfinished partitions concurrently,
// maxBytes each, and the next round starts when all have answered.
func replayRounds(tb testing.TB, rl *tiering.RemoteLog, parts [4][]meta.RemoteSegment, maxBytes int) {
	tb.Helper()
	ctx := context.Background()
	var next [4]int64
	for p := range next {
		next[p] = parts[p][0].BaseOffset
	}
	for busy := true; busy; {
		busy = false
		var wg sync.WaitGroup
		errs := make([]error, len(parts))
		for p := range parts {
			segs := parts[p]
			if next[p] > segs[len(segs)-1].LastOffset {
				continue
			}
			busy = true
			wg.Go(func() {
				res, err := rl.ReadParts(ctx, segs, next[p], maxBytes, true)
				errs[p] = err
				next[p] = res.NextOffset
			})
		}
		wg.Wait()
		for _, err := range errs {
			if err != nil {
				tb.Fatal(err)
			}
		}
	}
}

// chunkFetchStore answers Gets after a delay like an object store's (a round trip plus the bytes
// at a per-stream rate) and counts, per object, the Gets starting at each chunk boundary: the
// chunk cache's loads (footer reads start elsewhere).
type chunkFetchStore struct {
	tiering.Store
	chunk int64
	mu    sync.Mutex
	loads map[string]map[int64]int // key → chunk index → Gets
}

func (s *chunkFetchStore) Get(ctx context.Context, key string, off, n int64) (io.ReadCloser, error) {
	time.Sleep(2*time.Millisecond + time.Duration(n)*time.Second/(256<<20))
	if off%s.chunk == 0 {
		s.mu.Lock()
		if s.loads[key] == nil {
			s.loads[key] = map[int64]int{}
		}
		for i := off / s.chunk; i*s.chunk < off+n; i++ {
			s.loads[key][i]++
		}
		s.mu.Unlock()
	}
	return s.Store.Get(ctx, key, off, n)
}

// TestReplayFourPartitionsFetchesEachChunkOnce: a consumer replaying four partitions at once from
// the bucket, with the broker's default cache, chunk and prefetch settings scaled down together
// (chunks of 1 MiB instead of 16, reads of 0.625 MiB as 10 MiB fetches are to 16 MiB chunks), gets
// every chunk of every object fetched exactly once. The cache used to evict chunks it had
// prefetched or half-served before they were read, and fetch them again: sediment bench replays
// fetched 807-950 MiB for 767 MiB of objects, 5-24 % more GET bytes and requests than needed.
func TestReplayFourPartitionsFetchesEachChunkOnce(t *testing.T) {
	const scale = tiering.DefaultCacheChunkBytes >> 20 // chunks of 1 MiB
	chunk := int64(tiering.DefaultCacheChunkBytes / scale)
	st := &chunkFetchStore{Store: tiering.NewMemStore(), chunk: chunk, loads: map[string]map[int64]int{}}
	// Objects of 96 MiB at the default chunk size, as sediment bench's segments are.
	objChunks := int64(96<<20) / tiering.DefaultCacheChunkBytes
	parts, _ := putReplayPartitions(t, st.Store, 2, int(objChunks*chunk), 32<<10)
	rl := tiering.NewRemoteLogWith(st, tiering.RemoteLogConfig{CacheBytes: tiering.DefaultCacheBytes / scale,
		CacheChunkBytes: chunk, ReadAheadBytes: tiering.DefaultReadAheadBytes / scale})
	replayRounds(t, rl, parts, 10<<20/scale)
	time.Sleep(100 * time.Millisecond) // prefetches still in flight land (and would count)
	st.mu.Lock()
	defer st.mu.Unlock()
	chunks, twice := 0, 0
	for p := range parts {
		for _, seg := range parts[p] {
			for i, n := range st.loads[seg.ObjectKey] {
				chunks++
				if n != 1 {
					twice++
					t.Errorf("%s chunk %d fetched %d times", seg.ObjectKey, i, n)
				}
			}
		}
	}
	if int64(chunks) < 4*2*objChunks {
		t.Fatalf("only %d chunk loads seen for 8 objects of %d+ chunks: the store's counting is off", chunks, objChunks)
	}
	if twice > 0 {
		t.Fatalf("%d of %d chunks fetched more than once; cache stats %+v", twice, chunks, rl.CacheStats())
	}
}
