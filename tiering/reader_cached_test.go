package tiering_test

import (
	"bytes"
	"context"
	"fmt"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/sediment-io/sediment/meta"
	"github.com/sediment-io/sediment/tiering"
)

// TestRemoteLogCachedReadWaitsHoldNothing: with the chunk cache on, a read waiting for its chunk's
// GET holds neither a read-work slot nor more than its own GET slot, so a read of bytes already in
// the cache completes meanwhile even when both budgets are a single slot (before: the cached read
// queued for the GET slot; with the work slot taken around the whole read it would queue for that).
func TestRemoteLogCachedReadWaitsHoldNothing(t *testing.T) {
	ctx := context.Background()
	mem := tiering.NewMemStore()
	var segs [2][]meta.RemoteSegment
	var datas [2][]byte
	for p := range segs {
		data, _ := genSegment(rand.New(rand.NewPCG(uint64(p), 9)), 0, 30)
		obj, err := tiering.BuildSegmentObject(bytes.NewReader(data), int64(len(data)), 0)
		if err != nil {
			t.Fatal(err)
		}
		key := fmt.Sprintf("segments/w/%d/k", p)
		if err := mem.Put(ctx, key, obj, obj.Size()); err != nil {
			t.Fatal(err)
		}
		segs[p] = []meta.RemoteSegment{{BaseOffset: 0, LastOffset: obj.Footer.LastOffset, Size: obj.Size(), ObjectKey: key}}
		datas[p] = data
	}
	gs := &gateStore{Store: mem, gate: make(chan struct{}), entered: make(chan struct{}, 1)}
	rl := tiering.NewRemoteLogWith(gs, tiering.RemoteLogConfig{CacheBytes: tiering.DefaultCacheBytes,
		PrefetchChunks: -1, MaxConcurrentReads: 1, MaxReadWorkers: 1})
	if _, err := rl.Read(ctx, segs[1], 0, 1<<20, true); err != nil { // segment 1 now in the cache
		t.Fatal(err)
	}
	if _, err := rl.Footer(ctx, segs[0][0]); err != nil { // segment 0: footer only
		t.Fatal(err)
	}
	gs.armed.Store(true)
	type result struct {
		res tiering.ReadResult
		err error
	}
	cold := make(chan result, 1)
	go func() {
		res, err := rl.Read(ctx, segs[0], 0, 1<<20, true)
		cold <- result{res, err}
	}()
	<-gs.entered // the cold read holds the only GET slot, blocked in the store
	cctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	res, err := rl.Read(cctx, segs[1], 0, 1<<20, true)
	if err != nil {
		t.Fatalf("a read of cached bytes while a cold read waits for its GET: %v", err)
	}
	if !bytes.Equal(res.Data, datas[1]) {
		t.Fatal("cached read returned other bytes")
	}
	close(gs.gate)
	r := <-cold
	if r.err != nil || !bytes.Equal(r.res.Data, datas[0]) {
		t.Fatalf("the cold read: err %v, bytes equal %v", r.err, bytes.Equal(r.res.Data, datas[0]))
	}
	if st := rl.CacheStats(); st.Misses != 2 || st.Hits != 1 {
		t.Errorf("cache stats %+v: want 2 misses (one per segment) and 1 hit (the second read of segment 1), each read counted once", st)
	}
}
