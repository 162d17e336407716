package tiering_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/sediment-io/sediment/meta"
	"github.com/sediment-io/sediment/tiering"
)

// TestRemoteLogReadAhead: a sequential consumer's next range is fetched in the background after each
// Read, so the next Read finds it and makes no request of its own; the data is the same either way.
func TestRemoteLogReadAhead(t *testing.T) {
	ctx := context.Background()
	data, bs := genSegment(rand.New(rand.NewPCG(11, 11)), 0, 300)
	obj, err := tiering.BuildSegmentObject(bytes.NewReader(data), int64(len(data)), 0)
	if err != nil {
		t.Fatal(err)
	}
	ls := &loggingStore{Store: tiering.NewMemStore()}
	ls.Put(ctx, "segments/x/0/k", obj, obj.Size())
	segs := []meta.RemoteSegment{{BaseOffset: obj.Footer.BaseOffset, LastOffset: obj.Footer.LastOffset, Size: obj.Size(), ObjectKey: "segments/x/0/k"}}
	ls.take()

	gets := func() int {
		ls.mu.Lock()
		defer ls.mu.Unlock()
		return strings.Count(strings.Join(ls.ops, "\n"), "GET ")
	}
	waitGets := func(n int) {
		t.Helper()
		deadline := time.Now().Add(10 * time.Second)
		for gets() < n {
			if time.Now().After(deadline) {
				t.Fatalf("%d GETs, want %d:\n%s", gets(), n, strings.Join(ls.ops, "\n"))
			}
			time.Sleep(time.Millisecond)
		}
	}
	rl := tiering.NewRemoteLog(ls, 16)
	var got []byte
	reads := 0
	for off := int64(0); off <= obj.Footer.LastOffset; reads++ {
		res, err := rl.Read(ctx, segs, off, 20000, true)
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, res.Data...)
		off = res.NextOffset
		// footer + first read, then one prefetch per read that did not reach the end.
		if off <= obj.Footer.LastOffset {
			waitGets(2 + reads + 1)
		}
		time.Sleep(time.Millisecond)
		if g := gets(); off > obj.Footer.LastOffset && g != 2+reads {
			t.Fatalf("after the last read: %d GETs, want %d (every read after the first served by read-ahead)", g, 2+reads)
		}
	}
	if !bytes.Equal(got, data) {
		t.Fatalf("read %d bytes, want the segment's %d", len(got), len(data))
	}
	if reads < 10 {
		t.Fatalf("only %d reads", reads)
	}

	// A jump elsewhere: the pending prefetch does not match; the read goes to the store, correctly.
	ls.take()
	rl2 := tiering.NewRemoteLog(ls, 16)
	rl2.Read(ctx, segs, 0, 20000, true)
	waitGets(3) // footer, read, prefetch
	target := bs[250]
	res, err := rl2.Read(ctx, segs, target.base, 1, true)
	if err != nil || !bytes.Equal(res.Data, target.bytes) {
		t.Fatalf("jump read: %d bytes, %v", len(res.Data), err)
	}
	waitGets(5) // the jump's own GET and its prefetch; the stale one was discarded

	// No budget, no read-ahead: exactly one GET per Read.
	ls.take()
	rl3 := tiering.NewRemoteLogWith(ls, tiering.RemoteLogConfig{MaxFooters: 16, ReadAheadBytes: -1})
	for off, i := int64(0), 0; i < 5; i++ {
		res, err := rl3.Read(ctx, segs, off, 20000, true)
		if err != nil {
			t.Fatal(err)
		}
		off = res.NextOffset
	}
	time.Sleep(20 * time.Millisecond)
	if g := gets(); g != 1+5 {
		t.Fatalf("without read-ahead: %d GETs, want 6", g)
	}
}

// slowStore holds each Get for a while and records how many were in flight at once.
type slowStore struct {
	tiering.Store
	mu            sync.Mutex
	inflight, max int
}

func (s *slowStore) Get(ctx context.Context, key string, off, n int64) (io.ReadCloser, error) {
	s.mu.Lock()
	s.inflight++
	s.max = max(s.max, s.inflight)
	s.mu.Unlock()
	time.Sleep(15 * time.Millisecond)
	rc, err := s.Store.Get(ctx, key, off, n)
	s.mu.Lock()
	s.inflight--
	s.mu.Unlock()
	return rc, err
}

// TestRemoteLogConcurrencyBudget: many concurrent cold reads (a replay of many partitions) never have
// more than MaxConcurrentReads GETs in flight — footer loads, reads and prefetches together.
func TestRemoteLogConcurrencyBudget(t *testing.T) {
	ctx := context.Background()
	mem := tiering.NewMemStore()
	var segsList [][]meta.RemoteSegment
	for p := 0; p < 12; p++ {
		data, _ := genSegment(rand.New(rand.NewPCG(uint64(p), 1)), 0, 30)
		obj, err := tiering.BuildSegmentObject(bytes.NewReader(data), int64(len(data)), 0)
		if err != nil {
			t.Fatal(err)
		}
		key := fmt.Sprintf("segments/x/%d/k", p)
		mem.Put(ctx, key, obj, obj.Size())
		segsList = append(segsList, []meta.RemoteSegment{{BaseOffset: 0, LastOffset: obj.Footer.LastOffset, Size: obj.Size(), ObjectKey: key}})
	}
	ss := &slowStore{Store: mem}
	rl := tiering.NewRemoteLogWith(ss, tiering.RemoteLogConfig{MaxConcurrentReads: 3})
	var wg sync.WaitGroup
	for _, segs := range segsList {
		wg.Go(func() {
			for off := int64(0); off <= segs[0].LastOffset; {
				res, err := rl.Read(ctx, segs, off, 5000, true)
				if err != nil {
					t.Error(err)
					return
				}
				off = res.NextOffset
			}
		})
	}
	wg.Wait()
	if ss.max > 3 || ss.max < 2 {
		t.Fatalf("max GETs in flight = %d, want ≤ 3 (and the budget used: ≥ 2)", ss.max)
	}
	// A read waiting for a slot gives up with its context.
	gs := &gateStore{Store: mem, gate: make(chan struct{}), entered: make(chan struct{}, 1)}
	block := tiering.NewRemoteLogWith(gs, tiering.RemoteLogConfig{MaxConcurrentReads: 1, ReadAheadBytes: -1})
	if _, err := block.Read(ctx, segsList[0], 0, 100, true); err != nil { // footer loaded, gate not armed
		t.Fatal(err)
	}
	gs.armed.Store(true)
	held := make(chan error, 1)
	go func() { _, err := block.Read(ctx, segsList[0], 0, 100, true); held <- err }()
	<-gs.entered // the first read holds the only slot, blocked in the store
	cctx, cancel := context.WithTimeout(ctx, 20*time.Millisecond)
	defer cancel()
	if _, err := block.Read(cctx, segsList[0], 0, 100, true); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("read without a slot = %v, want its context's deadline", err)
	}
	close(gs.gate)
	if err := <-held; err != nil {
		t.Fatalf("the slot holder: %v", err)
	}
}

// gateStore blocks Gets while armed until gate closes, signalling entered.
type gateStore struct {
	tiering.Store
	armed   atomic.Bool
	gate    chan struct{}
	entered chan struct{}
}

func (g *gateStore) Get(ctx context.Context, key string, off, n int64) (io.ReadCloser, error) {
	if g.armed.Load() {
		select {
		case g.entered <- struct{}{}:
		default:
		}
		<-g.gate
	}
	return g.Store.Get(ctx, key, off, n)
}

// TestRemoteLogWarmsNextSegment: a sequential consumer nearing the end of one remote segment gets the
// next one's footer and first range fetched in the background, so crossing the boundary costs no
// request of its own.
func TestRemoteLogWarmsNextSegment(t *testing.T) {
	ctx := context.Background()
	ls := &loggingStore{Store: tiering.NewMemStore()}
	var segs []meta.RemoteSegment
	base := int64(0)
	for i := 0; i < 2; i++ {
		data, _ := genSegment(rand.New(rand.NewPCG(uint64(i), 5)), base, 40)
		obj, err := tiering.BuildSegmentObject(bytes.NewReader(data), int64(len(data)), 0)
		if err != nil {
			t.Fatal(err)
		}
		key := fmt.Sprintf("segments/x/0/%d", i)
		ls.Put(ctx, key, obj, obj.Size())
		segs = append(segs, meta.RemoteSegment{BaseOffset: obj.Footer.BaseOffset, LastOffset: obj.Footer.LastOffset, Size: obj.Size(), ObjectKey: key})
		base = obj.Footer.LastOffset + 1
	}
	ls.take()
	gets := func(key string) int {
		ls.mu.Lock()
		defer ls.mu.Unlock()
		n := 0
		for _, op := range ls.ops {
			if strings.HasPrefix(op, "GET "+key+" ") {
				n++
			}
		}
		return n
	}
	rl := tiering.NewRemoteLog(ls, 16)
	off := int64(0)
	for off <= segs[0].LastOffset {
		res, err := rl.Read(ctx, segs, off, 20000, true)
		if err != nil {
			t.Fatal(err)
		}
		off = res.NextOffset
	}
	deadline := time.Now().Add(10 * time.Second)
	for gets(segs[1].ObjectKey) < 2 { // footer + first range, in the background
		if time.Now().After(deadline) {
			t.Fatalf("next segment not warmed:\n%s", strings.Join(ls.ops, "\n"))
		}
		time.Sleep(time.Millisecond)
	}
	before := gets(segs[1].ObjectKey)
	res, err := rl.Read(ctx, segs, off, 20000, true)
	if err != nil || res.NextOffset <= off {
		t.Fatalf("read across the boundary: %+v %v", res.NextOffset, err)
	}
	time.Sleep(20 * time.Millisecond) // let this read's own prefetch (if any) be logged
	if after := gets(segs[1].ObjectKey); after > before+1 {
		t.Fatalf("crossing the boundary made %d requests of its own, want none (≤ 1 prefetch for the next range)", after-before)
	}
}
