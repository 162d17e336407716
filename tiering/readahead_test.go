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

// slowStore holds each Get for a while and records how many were in flight at once: a GET is in
// flight from the call until its body is closed (chunk loads go on reading a body after the read
// that started them returned).
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
	if err != nil {
		s.done()
		return nil, err
	}
	return &slowStoreBody{ReadCloser: rc, s: s}, nil
}

func (s *slowStore) done() {
	s.mu.Lock()
	s.inflight--
	s.mu.Unlock()
}

type slowStoreBody struct {
	io.ReadCloser
	s    *slowStore
	once sync.Once
}

func (b *slowStoreBody) Read(p []byte) (int, error) {
	time.Sleep(time.Millisecond) // bodies take time too, so that loads overlap reads
	return b.ReadCloser.Read(p)
}

func (b *slowStoreBody) Close() error {
	b.once.Do(b.s.done)
	return b.ReadCloser.Close()
}

// TestRemoteLogConcurrencyBudget: many concurrent cold reads (a replay of many partitions) never have
// more than MaxConcurrentReads GETs in flight — footer loads, reads and prefetches together, and,
// with the chunk cache, the rest of a chunk still arriving after the read that started it returned.
func TestRemoteLogConcurrencyBudget(t *testing.T) {
	ctx := context.Background()
	mem := tiering.NewMemStore()
	var segsList [][]meta.RemoteSegment
	var dataLen []int64
	put := func(prefix string, data []byte) {
		obj, err := tiering.BuildSegmentObject(bytes.NewReader(data), int64(len(data)), 0)
		if err != nil {
			t.Fatal(err)
		}
		key := fmt.Sprintf("segments/x/%s%d/k", prefix, len(segsList))
		mem.Put(ctx, key, obj, obj.Size())
		segsList = append(segsList, []meta.RemoteSegment{{BaseOffset: 0, LastOffset: obj.Footer.LastOffset, Size: obj.Size(), ObjectKey: key}})
		dataLen = append(dataLen, obj.Footer.DataLen)
	}
	for p := 0; p < 12; p++ {
		data, _ := genSegment(rand.New(rand.NewPCG(uint64(p), 1)), 0, 30)
		put("small", data)
	}
	for p := 0; p < 6; p++ { // chunks of 1 MiB, several per object, each read asking for 64 KiB
		data, _ := randomBatches(rand.New(rand.NewPCG(uint64(p), 2)), 0, 3<<20, 16, 16<<10-61)
		put("big", data)
	}
	for _, tc := range []struct {
		name  string
		cfg   tiering.RemoteLogConfig
		parts []int
		fetch int
	}{
		{"read-ahead", tiering.RemoteLogConfig{MaxConcurrentReads: 3}, []int{0, 12}, 5000},
		{"chunk-cache", tiering.RemoteLogConfig{MaxConcurrentReads: 3, CacheBytes: 64 << 20, CacheChunkBytes: 1 << 20}, []int{12, 18}, 64 << 10},
	} {
		ss := &slowStore{Store: mem}
		rl := tiering.NewRemoteLogWith(ss, tc.cfg)
		var wg sync.WaitGroup
		for p := tc.parts[0]; p < tc.parts[1]; p++ {
			segs := segsList[p]
			wg.Go(func() {
				var n int64
				for off := int64(0); off <= segs[0].LastOffset; {
					res, err := rl.Read(ctx, segs, off, tc.fetch, true)
					if err != nil {
						t.Error(err)
						return
					}
					n += int64(len(res.Data))
					off = res.NextOffset
				}
				if n != dataLen[p] {
					t.Errorf("%s: partition %d: read %d bytes, want %d", tc.name, p, n, dataLen[p])
				}
			})
		}
		wg.Wait()
		time.Sleep(50 * time.Millisecond) // chunk loads finishing after their readers returned
		ss.mu.Lock()
		peak, left := ss.max, ss.inflight
		ss.mu.Unlock()
		if peak > 3 || peak < 2 || left != 0 {
			t.Fatalf("%s: max GETs in flight = %d, want ≤ 3 (and the budget used: ≥ 2); %d still open", tc.name, peak, left)
		}
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
