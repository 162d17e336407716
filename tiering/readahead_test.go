package tiering_test

import (
	"bytes"
	"context"
	"math/rand/v2"
	"strings"
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
	rl3 := tiering.NewRemoteLogWith(ls, 16, 0)
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
