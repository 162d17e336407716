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

const arrivalChunk = 8 << 10

// arrivalFixture is a verbatim segment object of 300 batches (up to 3 KiB each, so many straddle
// the 8 KiB chunks), every batch in its offset index (as in sediment bench's objects, whose 1 MiB
// batches each exceed the 4 KiB index interval: a load starts checking at the first indexed batch
// in its bytes), and its batches; damage, if not nil, changes the object's bytes before they are
// stored.
func arrivalFixture(t *testing.T, damage func(obj []byte)) (tiering.Store, []meta.RemoteSegment, []modelBatch) {
	t.Helper()
	data, bs := genSegment(rand.New(rand.NewPCG(31, 31)), 0, 300)
	obj, err := tiering.BuildSegmentObject(bytes.NewReader(data), int64(len(data)), 1)
	if err != nil {
		t.Fatal(err)
	}
	full, err := readAllAt(obj, obj.Size())
	if err != nil {
		t.Fatal(err)
	}
	if damage != nil {
		damage(full)
	}
	s := tiering.NewMemStore()
	if err := tiering.PutBytes(context.Background(), s, "segments/a/0/k", full); err != nil {
		t.Fatal(err)
	}
	return s, []meta.RemoteSegment{{BaseOffset: obj.Footer.BaseOffset, LastOffset: obj.Footer.LastOffset, Size: int64(len(full)), ObjectKey: "segments/a/0/k"}}, bs
}

func arrivalLog(s tiering.Store) *tiering.RemoteLog {
	return tiering.NewRemoteLogWith(s, tiering.RemoteLogConfig{CacheBytes: 1 << 20, CacheChunkBytes: arrivalChunk, PrefetchChunks: 1})
}

// replay reads segs from offset 0 in reads of up to 20,000 bytes, until the end or an error.
func replay(rl *tiering.RemoteLog, segs []meta.RemoteSegment) ([]byte, error) {
	var out []byte
	for off := segs[0].BaseOffset; off <= segs[0].LastOffset; {
		res, err := rl.Read(context.Background(), segs, off, 20000, true)
		if err != nil {
			return out, err
		}
		out = append(out, res.Data...)
		off = res.NextOffset
	}
	return out, nil
}

// straddles reports whether batch b spans two cache chunks.
func straddles(b modelBatch) bool {
	return b.pos/arrivalChunk != (b.pos+len(b.bytes)-1)/arrivalChunk
}

// pickBatches returns the first of bs that lies inside one chunk (not at its start), and the first
// after it that straddles two chunks.
func pickBatches(t *testing.T, bs []modelBatch) (inside, across modelBatch) {
	t.Helper()
	for _, b := range bs {
		if inside.bytes == nil && !straddles(b) && b.pos%arrivalChunk > 0 {
			inside = b
		}
		if inside.bytes != nil && across.bytes == nil && straddles(b) && b.pos/arrivalChunk != inside.pos/arrivalChunk {
			across = b
		}
	}
	if inside.bytes == nil || across.bytes == nil {
		t.Fatal("fixture has no batch inside a chunk or none across two after it")
	}
	return inside, across
}

// TestArrivalCheckCoversReplay: a sequential replay through the cache gets every byte, and the
// chunk loads CRC-checked almost all of them as they arrived (all but the batches straddling two
// chunks loaded by separate GETs).
func TestArrivalCheckCoversReplay(t *testing.T) {
	s, segs, bs := arrivalFixture(t, nil)
	rl := arrivalLog(s)
	got, err := replay(rl, segs)
	if err != nil {
		t.Fatal(err)
	}
	var want []byte
	var straddled int64
	for _, b := range bs {
		want = append(want, b.bytes...)
		if straddles(b) {
			straddled += int64(len(b.bytes))
		}
	}
	if !bytes.Equal(got, want) {
		t.Fatalf("replay returned %d bytes, want the %d stored, identical", len(got), len(want))
	}
	checked := rl.CacheStats().CheckedOnArrival
	if checked < int64(len(want))-straddled || checked > int64(len(want)) {
		t.Fatalf("%d of %d batch bytes checked on arrival, want at least all %d of the batches within one chunk", checked, len(want), int64(len(want))-straddled)
	}
}

// TestArrivalCheckedBatchesAreTrusted: a read does not check again a batch its chunk's load
// checked (a byte changed in the cached chunk afterwards is served as it is: the check happened
// once, as the bytes arrived), but still checks a batch straddling two chunks (the same change
// there fails the read).
func TestArrivalCheckedBatchesAreTrusted(t *testing.T) {
	s, segs, bs := arrivalFixture(t, nil)
	inside, across := pickBatches(t, bs[len(bs)/4:])
	for _, tc := range []struct {
		name  string
		b     modelBatch
		at    int // byte of the batch changed: its first record byte (inside the CRC's range)
		trust bool
	}{{"inside one chunk", inside, 61, true}, {"across two chunks", across, len(across.bytes) - 1, false}} {
		t.Run(tc.name, func(t *testing.T) {
			rl := arrivalLog(s)
			if _, err := replay(rl, segs); err != nil { // loads (and checks) every chunk
				t.Fatal(err)
			}
			pos := tc.b.pos + tc.at
			chunk := rl.CachedChunk(segs[0].ObjectKey, int64(pos/arrivalChunk))
			if chunk == nil {
				t.Fatalf("chunk %d of the changed byte is not cached", pos/arrivalChunk)
			}
			chunk[pos%arrivalChunk] ^= 0xff
			res, err := rl.Read(context.Background(), segs, tc.b.base, len(tc.b.bytes), true)
			if tc.trust {
				if err != nil || len(res.Data) != len(tc.b.bytes) || res.Data[tc.at] != tc.b.bytes[tc.at]^0xff {
					t.Fatalf("read of a batch checked on arrival: %d bytes, err %v; want it served unchecked, changed byte and all", len(res.Data), err)
				}
				return
			}
			if !errors.Is(err, segment.ErrCorrupt) {
				t.Fatalf("read of a changed batch across two chunks: err %v, want ErrCorrupt", err)
			}
		})
	}
}

// TestArrivalCheckLeavesDamageToTheRead: an object damaged in the bucket — a flipped record byte in
// a batch inside one chunk, in one straddling two, or a batch length that still parses — serves every
// batch before the damage byte-identical, and then fails with ErrCorrupt (which the broker answers
// with KAFKA_STORAGE_ERROR), as before loads checked batches.
func TestArrivalCheckLeavesDamageToTheRead(t *testing.T) {
	_, _, bs := arrivalFixture(t, nil)
	inside, across := pickBatches(t, bs[len(bs)/2:])
	for _, tc := range []struct {
		name   string
		b      modelBatch
		damage func(obj []byte)
	}{
		{"record byte inside one chunk", inside, func(obj []byte) { obj[inside.pos+len(inside.bytes)-1] ^= 1 }},
		{"record byte across two chunks", across, func(obj []byte) { obj[across.pos+len(across.bytes)-1] ^= 1 }},
		{"batch length", inside, func(obj []byte) { obj[inside.pos+11] -= 12 }}, // batchLength, big-endian low byte
	} {
		t.Run(tc.name, func(t *testing.T) {
			s, segs, _ := arrivalFixture(t, tc.damage)
			got, err := replay(arrivalLog(s), segs)
			if !errors.Is(err, segment.ErrCorrupt) {
				t.Fatalf("replay of a damaged object: %d bytes, err %v; want ErrCorrupt", len(got), err)
			}
			var before []byte
			for _, b := range bs {
				if b.pos >= tc.b.pos {
					break
				}
				before = append(before, b.bytes...)
			}
			if len(got) > len(before) || !bytes.Equal(got, before[:len(got)]) {
				t.Fatalf("served %d bytes before the error: want a prefix of the %d bytes before the damaged batch", len(got), len(before))
			}
		})
	}
}
