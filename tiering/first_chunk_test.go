package tiering_test

import (
	"bytes"
	"context"
	"testing"
	"time"

	"github.com/sediment-io/sediment/tiering"
	"github.com/sediment-io/sediment/tiering/objstoretest"
)

// A read from an object's first offset whose footer is not loaded yet fetches the object's first
// chunk while the footer loads (the read needs those bytes whatever the footer says): the two
// GETs overlap, the read returns the object's first batches, and the cache counts the read's
// miss. A read from a later offset waits for the footer to know where to read.
func TestRemoteReadFromFirstOffsetOverlapsFooter(t *testing.T) {
	ctx := context.Background()
	data, _, mem, segs := memObject(t, "segments/x/0/first", 5, 3<<20)
	for _, from := range []int64{0, 160} {
		st := &objstoretest.MeetStore{Store: mem, Wait: 300 * time.Millisecond}
		rl := tiering.NewRemoteLogWith(st, tiering.RemoteLogConfig{CacheBytes: 64 << 20, CacheChunkBytes: 1 << 20, PrefetchChunks: -1})
		res, err := rl.Read(ctx, segs, from, 64<<10, true)
		if err != nil {
			t.Fatal(err)
		}
		pos := batchAt(data, from)
		if len(res.Data) == 0 || !bytes.Equal(res.Data, data[pos:pos+len(res.Data)]) || res.NextOffset <= from {
			t.Fatalf("from %d: %d bytes up to offset %d, not the object's batches from there", from, len(res.Data), res.NextOffset)
		}
		most := st.MostInFlight()
		if want := map[int64]int{0: 2, 160: 1}[from]; most != want {
			t.Fatalf("from %d: at most %d GETs in flight, want %d (footer and first chunk together only from the first offset)", from, most, want)
		}
		// The chunk loaded for the read is the read's miss, not a prefetch another read hit.
		if cs := rl.CacheStats(); cs.Misses != 1 || cs.Hits != 0 || cs.Prefetched != 0 {
			t.Fatalf("from %d: cache stats %+v, want one miss", from, cs)
		}
	}
}
