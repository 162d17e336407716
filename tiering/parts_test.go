package tiering_test

import (
	"bytes"
	"context"
	"errors"
	"math/rand/v2"
	"testing"

	"github.com/sediment-io/sediment/meta"
	"github.com/sediment-io/sediment/segment"
	"github.com/sediment-io/sediment/tiering"
)

// TestReadPartsAcrossChunks: through a chunk cache with chunks smaller than many batches, ReadParts
// returns the same bytes and next offset as an uncached Read (or a whole-batch prefix of them:
// checkArrivedPrefix), as several slices when the range spans
// chunks (not joined), sequentially and at random offsets.
func TestReadPartsAcrossChunks(t *testing.T) {
	fs, segs, _ := cacheFixture(t, 300)
	ctx := context.Background()
	plain := tiering.NewRemoteLogWith(fs.Store, tiering.RemoteLogConfig{ReadAheadBytes: -1})
	for _, ra := range []int64{-1, 0} { // without and with read-ahead (which holds parts too)
		rl := tiering.NewRemoteLogWith(fs, tiering.RemoteLogConfig{ReadAheadBytes: ra, CacheBytes: 64 << 20, CacheChunkBytes: 1000, PrefetchChunks: 2})
		multi := 0
		check := func(off int64, mb int, one bool) int64 {
			t.Helper()
			got, err := rl.ReadParts(ctx, segs, off, mb, one)
			if err != nil {
				t.Fatal(err)
			}
			joined := bytes.Join(got.Parts, nil)
			if got.Len() != len(joined) {
				t.Fatalf("read-ahead %d: ReadParts(%d, %d, %v): Len %d of %d bytes", ra, off, mb, one, got.Len(), len(joined))
			}
			checkArrivedPrefix(t, plain, segs, off, mb, one, joined, got.NextOffset)
			if len(got.Parts) > 1 {
				multi++
			}
			return got.NextOffset
		}
		for off := segs[0].BaseOffset; off <= segs[0].LastOffset; {
			off = check(off, 7000, true)
		}
		rng := rand.New(rand.NewPCG(7, 7))
		for range 300 {
			check(rng.Int64N(segs[0].LastOffset+1), 1+rng.IntN(12000), rng.IntN(2) == 0)
		}
		if multi < 50 {
			t.Fatalf("read-ahead %d: only %d reads came in several parts: the test does not cross chunks", ra, multi)
		}
	}
}

// TestReadPartsCorruptByteAfterChunkBoundary: a byte flipped inside a batch that straddles a cache
// chunk boundary, just after the boundary, is a CRC error (segment.ErrCorrupt), never data — the
// CRC is computed across the parts, not over the first part only.
func TestReadPartsCorruptByteAfterChunkBoundary(t *testing.T) {
	ctx := context.Background()
	data, bs := genSegment(rand.New(rand.NewPCG(3, 3)), 0, 200)
	obj, err := tiering.BuildSegmentObject(bytes.NewReader(data), int64(len(data)), 0)
	if err != nil {
		t.Fatal(err)
	}
	raw, err := readAllAt(obj, obj.Size())
	if err != nil {
		t.Fatal(err)
	}
	const chunk = 1000
	var victim *modelBatch
	var at int
	for i := range bs {
		b := &bs[i]
		// the first chunk boundary after the batch's CRC-covered start and before its end
		k := (b.pos+30)/chunk*chunk + chunk
		if k < b.pos+len(b.bytes)-1 {
			victim, at = b, k
			break
		}
	}
	if victim == nil {
		t.Fatal("no batch straddles a chunk boundary")
	}
	raw[at] ^= 0x40
	s := tiering.NewMemStore()
	if err := tiering.PutBytes(ctx, s, "segments/x/0/bad", raw); err != nil {
		t.Fatal(err)
	}
	segs := []meta.RemoteSegment{{BaseOffset: obj.Footer.BaseOffset, LastOffset: obj.Footer.LastOffset, Size: int64(len(raw)), ObjectKey: "segments/x/0/bad"}}
	rl := tiering.NewRemoteLogWith(s, tiering.RemoteLogConfig{ReadAheadBytes: -1, CacheBytes: 1 << 20, CacheChunkBytes: chunk, PrefetchChunks: -1})
	res, err := rl.ReadParts(ctx, segs, victim.base, 1, true) // exactly the victim batch
	if !errors.Is(err, segment.ErrCorrupt) {
		t.Fatalf("ReadParts of the corrupt batch at byte %d (flipped byte %d): %d bytes, err %v; want ErrCorrupt", victim.pos, at, res.Len(), err)
	}
	if _, err := rl.Read(ctx, segs, victim.base, 1, true); !errors.Is(err, segment.ErrCorrupt) {
		t.Fatalf("Read of the corrupt batch: err %v; want ErrCorrupt", err)
	}
	// The batches before it are still served.
	if victim.base > bs[0].base {
		if res, err := rl.ReadParts(ctx, segs, bs[0].base, victim.pos, true); err != nil || res.Len() != victim.pos {
			t.Fatalf("reading the %d bytes before the corrupt batch: %d bytes, %v", victim.pos, res.Len(), err)
		}
	}
}

// TestBatchesBelowAcrossParts: BatchesBelow keeps exactly the leading whole batches ending below
// maxOffset, whatever the split of the bytes into parts (headers straddling parts included).
func TestBatchesBelowAcrossParts(t *testing.T) {
	data, bs := genSegment(rand.New(rand.NewPCG(9, 9)), 100, 40)
	rng := rand.New(rand.NewPCG(1, 9))
	for range 200 {
		var parts [][]byte
		for rest := data; len(rest) > 0; {
			n := min(len(rest), 1+rng.IntN(2*segment.HeaderSize))
			if rng.IntN(4) == 0 {
				n = min(len(rest), 1+rng.IntN(4000))
			}
			parts, rest = append(parts, rest[:n]), rest[n:]
		}
		maxOffset := bs[0].base + rng.Int64N(bs[len(bs)-1].last-bs[0].base+2)
		want := 0
		for _, b := range bs {
			if b.last >= maxOffset {
				break
			}
			want += len(b.bytes)
		}
		got := tiering.BatchesBelow(parts, maxOffset)
		if joined := bytes.Join(got, nil); !bytes.Equal(joined, data[:want]) {
			t.Fatalf("maxOffset %d over %d parts: kept %d bytes, want %d", maxOffset, len(parts), len(joined), want)
		}
		if want == 0 && got != nil {
			t.Fatalf("maxOffset %d: nothing below it, got %d parts", maxOffset, len(got))
		}
		if len(got) > 0 {
			if last := got[len(got)-1]; cap(last) != len(last) {
				t.Fatal("the last part's capacity reaches past the kept bytes")
			}
		}
	}
	if got := tiering.BatchesBelow([][]byte{data}, 0); len(got) != 1 || len(got[0]) != len(data) {
		t.Fatal("maxOffset 0 must keep everything")
	}
}
