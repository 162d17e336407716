package tiering_test

import (
	"bytes"
	"context"
	"io"
	"testing"
	"time"

	"github.com/sediment-io/sediment/meta"
	"github.com/sediment-io/sediment/tiering"
)

// heldStore holds back the bodies of Gets that start below gate: they deliver the bytes before
// gate, then block until open is closed (or the Get's context ends). Other Gets (the footer at the
// object's tail, chunks from gate on) pass.
type heldStore struct {
	tiering.Store
	gate int64
	open chan struct{}
}

func (s *heldStore) Get(ctx context.Context, key string, off, n int64) (io.ReadCloser, error) {
	rc, err := s.Store.Get(ctx, key, off, n)
	if err != nil || off >= s.gate {
		return rc, err
	}
	return &heldBody{rc: rc, ctx: ctx, left: s.gate - off, open: s.open}, nil
}

type heldBody struct {
	rc   io.ReadCloser
	ctx  context.Context
	left int64 // bytes before the gate
	open chan struct{}
}

func (b *heldBody) Read(p []byte) (int, error) {
	if b.left == 0 {
		select {
		case <-b.open:
		case <-b.ctx.Done():
			return 0, b.ctx.Err()
		}
		return b.rc.Read(p)
	}
	n, err := b.rc.Read(p[:min(int64(len(p)), b.left)])
	b.left -= int64(n)
	return n, err
}

func (b *heldBody) Close() error { return b.rc.Close() }

// TestReadTakesArrivedPrefix: a consumer Read from the bucket returns the whole batches that have
// arrived once its first batches are there, instead of waiting for all of its maxBytes (a replay's
// first fetch waited 47-59 ms for 10 MiB of each partition while the consumer sat idle). With the
// object's first chunk held back after 300 KiB, a Read of 900 KiB from offset 0 returns the batches
// in the first 256 KiB (one progress step of the GET) — whole batches, the object's — and after the
// gate opens, Reads from its NextOffset on return the rest of the object, byte for byte.
func TestReadTakesArrivedPrefix(t *testing.T) {
	data, obj, mem, segs := memObject(t, "segments/x/0/prefix", 11, 4<<20)
	gs := &heldStore{Store: mem, gate: 300 << 10, open: make(chan struct{})}
	rl := tiering.NewRemoteLogWith(gs, tiering.RemoteLogConfig{CacheBytes: 64 << 20, CacheChunkBytes: 1 << 20, PrefetchChunks: 1})
	plain := tiering.NewRemoteLogWith(mem, tiering.RemoteLogConfig{ReadAheadBytes: -1})

	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	first, err := rl.Read(ctx, segs, 0, 900<<10, true)
	if err != nil {
		t.Fatalf("read with the rest of the chunk held back: %v (it waited for bytes it did not need)", err)
	}
	if len(first.Data) > 256<<10 {
		t.Fatalf("the first read returned %d bytes: more than the 256 KiB that had arrived", len(first.Data))
	}
	if checkArrivedPrefix(t, plain, segs, 0, 900<<10, true, first.Data, first.NextOffset) {
		t.Fatalf("the first read returned all %d bytes asked for, though the store held them back", len(first.Data))
	}

	close(gs.open)
	got := append([]byte(nil), first.Data...)
	for off := first.NextOffset; off <= obj.Footer.LastOffset; {
		res, err := rl.Read(context.Background(), segs, off, 900<<10, true)
		if err != nil {
			t.Fatal(err)
		}
		if len(res.Data) == 0 {
			t.Fatalf("read from %d returned nothing", off)
		}
		got = append(got, res.Data...)
		off = res.NextOffset
	}
	if !bytes.Equal(got, data) {
		t.Fatalf("read back %d bytes, not the object's %d", len(got), len(data))
	}
}

// TestReadFromOffsetGapWaitsForItsBatch: a Read of an offset missing from the log (a gap, as
// compaction leaves) starts with the first batch after the gap, which begins at the index entry
// after the Read's floor entry, not before it. The Read must wait for that batch whole, not return
// an empty result because the bytes up to the next index entry had arrived (an empty fetch for a
// consumer, again and again while the GET runs). Batches of 17,384 bytes, each indexed; the one
// after the gap straddles the 256 KiB the held-back GET has delivered. Without minOneBatch (a
// fetch's partitions after the first): with it, parse reads a cut first batch again, whole.
func TestReadFromOffsetGapWaitsForItsBatch(t *testing.T) {
	const batchLen, perBatch = 17384, 16
	var data []byte
	base := int64(0)
	for i := range 40 {
		if i == 15 {
			base += 8 // offsets 240-247 are missing
		}
		data = append(data, makeBatch(base, perBatch, 1_700_000_000_000, 1_700_000_000_000, make([]byte, batchLen-61))...)
		base += perBatch
	}
	if b15 := 15 * batchLen; b15 >= 256<<10 || b15+batchLen <= 256<<10 {
		t.Fatalf("batch 15 at [%d, %d) does not straddle 256 KiB", b15, b15+batchLen)
	}
	obj, err := tiering.BuildSegmentObject(bytes.NewReader(data), int64(len(data)), 0)
	if err != nil {
		t.Fatal(err)
	}
	mem := tiering.NewMemStore()
	key := "segments/x/0/gap"
	if err := mem.Put(context.Background(), key, obj, obj.Size()); err != nil {
		t.Fatal(err)
	}
	segs := []meta.RemoteSegment{{BaseOffset: 0, LastOffset: obj.Footer.LastOffset, Size: obj.Size(), ObjectKey: key}}
	hs := &heldStore{Store: mem, gate: 300 << 10, open: make(chan struct{})}
	rl := tiering.NewRemoteLogWith(hs, tiering.RemoteLogConfig{CacheBytes: 64 << 20, CacheChunkBytes: 1 << 20, PrefetchChunks: 1})

	type result struct {
		res tiering.ReadResult
		err error
	}
	done := make(chan result, 1)
	go func() {
		res, err := rl.Read(context.Background(), segs, 244, 900<<10, false)
		done <- result{res, err}
	}()
	select {
	case r := <-done:
		t.Fatalf("the read of offset 244 returned %d bytes (next %d, %v) while its batch was held back", len(r.res.Data), r.res.NextOffset, r.err)
	case <-time.After(300 * time.Millisecond):
	}
	close(hs.open)
	r := <-done
	if r.err != nil {
		t.Fatal(r.err)
	}
	plain := tiering.NewRemoteLogWith(mem, tiering.RemoteLogConfig{ReadAheadBytes: -1})
	checkArrivedPrefix(t, plain, segs, 244, 900<<10, false, r.res.Data, r.res.NextOffset)
	if !bytes.HasPrefix(r.res.Data, data[15*batchLen:16*batchLen]) {
		t.Fatalf("the read of offset 244 did not start with the batch after the gap")
	}
}
