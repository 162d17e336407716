package tiering_test

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/sediment-io/sediment/meta"
	"github.com/sediment-io/sediment/segment"
	"github.com/sediment-io/sediment/tiering"
)

type modelBatch struct {
	base, last int64
	maxTS      int64
	pos        int
	bytes      []byte
}

// genSegment builds n batches with gaps between offsets (as after compaction), varied sizes and
// out-of-order timestamps.
func genSegment(r *rand.Rand, base int64, n int) ([]byte, []modelBatch) {
	return genSegmentC(r, base, n, false)
}

// genSegmentC: compressible payloads (log-like text) when text is set.
func genSegmentC(r *rand.Rand, base int64, n int, text bool) ([]byte, []modelBatch) {
	var data []byte
	var bs []modelBatch
	off := base
	ts := int64(1_700_000_000_000)
	for i := 0; i < n; i++ {
		count := int32(1 + r.IntN(20))
		ts += r.Int64N(2000) - 500 // sometimes backwards
		maxTS := ts + r.Int64N(100)
		payload := make([]byte, r.IntN(3000))
		for j := range payload {
			payload[j] = byte(r.Uint32())
		}
		if text {
			line := fmt.Sprintf("ts=%d level=info msg=\"order accepted\" user=%d ", ts, r.IntN(50))
			for j := range payload {
				payload[j] = line[j%len(line)]
			}
		}
		b := makeBatch(off, count, ts, maxTS, payload)
		bs = append(bs, modelBatch{base: off, last: off + int64(count) - 1, maxTS: maxTS, pos: len(data), bytes: b})
		data = append(data, b...)
		off += int64(count) + r.Int64N(3) // gaps
	}
	return data, bs
}

// modelRead is what Read must return, by linear scan.
func modelRead(bs []modelBatch, offset int64, maxBytes int, minOne bool) ([]byte, int64) {
	var out []byte
	next := offset
	for _, b := range bs {
		if b.last < offset {
			continue
		}
		if len(out)+len(b.bytes) > maxBytes {
			if len(out) == 0 && minOne {
				return b.bytes, b.last + 1
			}
			break
		}
		out = append(out, b.bytes...)
		next = b.last + 1
	}
	return out, next
}

func TestSegmentObjectRoundTrip(t *testing.T) {
	ctx := context.Background()
	r := rand.New(rand.NewPCG(42, 7))
	for _, tc := range []struct {
		name      string
		batches   int
		interval  int
		compress  bool
		text      bool
		chunkSize int
	}{
		{"sparse", 400, 4096, false, false, 0}, {"every-batch", 50, 1, false, false, 0},
		{"one-batch", 1, 4096, false, false, 0}, {"coarse", 300, 1 << 20, false, false, 0},
		{"lz4-text", 400, 4096, true, true, 0}, {"lz4-small-chunks", 300, 4096, true, true, 4096},
		{"lz4-incompressible", 200, 4096, true, false, 8192}, {"lz4-one-batch", 1, 4096, true, true, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			data, bs := genSegmentC(r, 1000, tc.batches, tc.text)
			obj, err := tiering.BuildSegmentObjectWith(bytes.NewReader(data), int64(len(data)), tiering.BuildOptions{IndexInterval: tc.interval, Compress: tc.compress, ChunkSize: tc.chunkSize})
			if err != nil {
				t.Fatal(err)
			}
			if chunked := obj.Footer.Flags&tiering.FlagLZ4Chunks != 0; chunked != tc.compress {
				t.Fatalf("chunked = %v, want %v", chunked, tc.compress)
			}
			if tc.compress && tc.text && obj.Footer.StoredLen*2 > obj.Footer.DataLen {
				t.Fatalf("text stored in %d bytes of %d: lz4 did not compress", obj.Footer.StoredLen, obj.Footer.DataLen)
			}
			if tc.compress && !tc.text && obj.Footer.StoredLen != obj.Footer.DataLen {
				t.Fatalf("incompressible data: stored %d of %d (raw chunks expected)", obj.Footer.StoredLen, obj.Footer.DataLen)
			}
			t.Logf("%s: %d data bytes stored in %d, footer %d", tc.name, obj.Footer.DataLen, obj.Footer.StoredLen, obj.Footer.FooterLen())
			f := obj.Footer
			var maxTS, maxOff int64 = bs[0].maxTS, bs[0].last
			var records uint32
			for _, b := range bs {
				if b.maxTS > maxTS {
					maxTS, maxOff = b.maxTS, b.last
				}
				h, _ := segment.ParseBatchHeader(b.bytes)
				records += uint32(h.RecordCount())
			}
			if f.BaseOffset != 1000 || f.LastOffset != bs[len(bs)-1].last || f.BatchCount != uint32(len(bs)) ||
				f.RecordCount != records || f.MaxTimestamp != maxTS || f.MaxTimestampOffset != maxOff ||
				f.DataLen != int64(len(data)) || f.DataCRC != crc32.Checksum(data, castagnoli) {
				t.Fatalf("footer %+v does not match the segment", *f)
			}
			base := &loggingStore{Store: tiering.NewMemStore()}
			key := tiering.SegmentKey{Partition: 3, BaseOffset: 1000, LeaderEpoch: 2, UploadID: tiering.NewUploadID()}.String()
			if err := base.Put(ctx, key, obj, obj.Size()); err != nil {
				t.Fatal(err)
			}
			if whole, _ := tiering.ReadRange(ctx, base, key, 0, -1); !tc.compress && !bytes.Equal(whole[:len(data)], data) {
				t.Fatal("object does not start with the segment bytes verbatim")
			}
			base.take()
			rr, err := tiering.OpenRemote(ctx, base, key, obj.Size())
			if err != nil {
				t.Fatal(err)
			}
			if ops := base.take(); strings.Count(ops, "GET") != 1 {
				t.Errorf("opening took %q, want one GET", ops)
			}
			for i := 0; i < 300; i++ {
				offset := 1000 + r.Int64N(f.LastOffset-1000+1)
				maxBytes := r.IntN(20000)
				minOne := r.IntN(2) == 0
				got, err := rr.Read(ctx, offset, maxBytes, minOne)
				if err != nil {
					t.Fatalf("Read(%d, %d, %v): %v", offset, maxBytes, minOne, err)
				}
				want, next := modelRead(bs, offset, maxBytes, minOne)
				if !bytes.Equal(got.Data, want) || got.NextOffset != next {
					t.Fatalf("Read(%d, %d, %v) = %d bytes next %d, want %d bytes next %d", offset, maxBytes, minOne, len(got.Data), got.NextOffset, len(want), next)
				}
				if ops := base.take(); strings.Count(ops, "GET") != 1 && !(minOne && len(want) > maxBytes) {
					t.Fatalf("Read(%d, %d) made requests %q, want exactly one GET", offset, maxBytes, ops)
				}
			}
			for i := 0; i < 200; i++ {
				ts := bs[0].maxTS - 1000 + r.Int64N(maxTS-bs[0].maxTS+2000)
				off, gotTS, ok, err := rr.OffsetForTimestamp(ctx, ts)
				if err != nil {
					t.Fatal(err)
				}
				var wantOff, wantTS int64
				wantOK := false
				for _, b := range bs {
					if b.maxTS >= ts {
						wantOff, wantTS, wantOK = b.base, b.maxTS, true
						break
					}
				}
				if ok != wantOK || off != wantOff || gotTS != wantTS {
					t.Fatalf("OffsetForTimestamp(%d) = %d,%d,%v want %d,%d,%v", ts, off, gotTS, ok, wantOff, wantTS, wantOK)
				}
				if ops := base.take(); ok && strings.Count(ops, "GET") != 1 {
					t.Fatalf("OffsetForTimestamp made %q, want one GET", ops)
				}
			}
			for _, bad := range []int64{999, f.LastOffset + 1} {
				if _, err := rr.Read(ctx, bad, 100, true); !errors.Is(err, segment.ErrOffsetOutOfRange) {
					t.Errorf("Read(%d) = %v, want ErrOffsetOutOfRange", bad, err)
				}
			}
		})
	}
}

// TestSegmentObjectFromLog uploads a real closed segment written by package segment and checks that
// remote reads return what the local log returns.
func TestSegmentObjectFromLog(t *testing.T) {
	ctx := context.Background()
	cfg := segment.DefaultConfig()
	cfg.SegmentBytes = 24 << 10
	l, err := segment.Open(filepath.Join(t.TempDir(), "t-0"), cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	r := rand.New(rand.NewPCG(1, 1))
	ts := time.Now().UnixMilli()
	for i := 0; i < 200; i++ {
		payload := make([]byte, 100+r.IntN(900))
		for j := range payload {
			payload[j] = byte(r.Uint32())
		}
		n := int32(1 + r.IntN(5))
		if _, err := l.Append(makeBatch(0, n, ts+int64(i), ts+int64(i)+3, payload), 1); err != nil {
			t.Fatal(err)
		}
	}
	segs := l.Segments()
	if len(segs) < 3 {
		t.Fatalf("want several segments, got %d", len(segs))
	}
	store := tiering.NewMemStore()
	var topic meta.TopicID
	topic[0] = 0xab
	for _, si := range segs {
		if !si.Closed {
			continue
		}
		raw, err := readFile(si.Path, si.Size)
		if err != nil {
			t.Fatal(err)
		}
		obj, err := tiering.BuildSegmentObject(bytes.NewReader(raw), si.Size, 0)
		if err != nil {
			t.Fatal(err)
		}
		if obj.Footer.BaseOffset != si.BaseOffset || obj.Footer.LastOffset != si.NextOffset-1 || obj.Footer.MaxTimestamp != si.MaxTimestamp {
			t.Fatalf("footer %d..%d max %d, segment [%d,%d) max %d", obj.Footer.BaseOffset, obj.Footer.LastOffset, obj.Footer.MaxTimestamp, si.BaseOffset, si.NextOffset, si.MaxTimestamp)
		}
		key := tiering.SegmentKey{Topic: topic, Partition: 0, BaseOffset: si.BaseOffset, LeaderEpoch: 1, UploadID: tiering.NewUploadID()}.String()
		if err := store.Put(ctx, key, obj, obj.Size()); err != nil {
			t.Fatal(err)
		}
		rr, err := tiering.OpenRemote(ctx, store, key, -1)
		if err != nil {
			t.Fatal(err)
		}
		for off := si.BaseOffset; off < si.NextOffset; off += 3 {
			local, err := l.Read(off, segment.ReadOptions{MaxBytes: 4000, MinOneBatch: true})
			if err != nil {
				t.Fatal(err)
			}
			remote, err := rr.Read(ctx, off, 4000, true)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(local.Data, remote.Data) || local.NextOffset != remote.NextOffset {
				t.Fatalf("offset %d: local %d bytes next %d, remote %d bytes next %d", off, len(local.Data), local.NextOffset, len(remote.Data), remote.NextOffset)
			}
		}
	}
}

func TestSegmentObjectRejectsCorruption(t *testing.T) {
	ctx := context.Background()
	data, _ := genSegment(rand.New(rand.NewPCG(3, 3)), 0, 40)
	// A flipped byte in a batch: the upload refuses (never put corrupt data in the bucket).
	bad := bytes.Clone(data)
	bad[len(bad)/2] ^= 1
	if _, err := tiering.BuildSegmentObject(bytes.NewReader(bad), int64(len(bad)), 0); !errors.Is(err, segment.ErrCorrupt) {
		t.Errorf("corrupt batch: %v, want ErrCorrupt", err)
	}
	// A torn tail.
	if _, err := tiering.BuildSegmentObject(bytes.NewReader(data), int64(len(data)-5), 0); !errors.Is(err, segment.ErrCorrupt) {
		t.Errorf("torn tail: %v, want ErrCorrupt", err)
	}
	// Offsets going backwards.
	b1, b2 := makeBatch(10, 5, 1, 1, nil), makeBatch(12, 1, 1, 1, nil)
	both := append(append([]byte{}, b1...), b2...)
	if _, err := tiering.BuildSegmentObject(bytes.NewReader(both), int64(len(both)), 0); !errors.Is(err, segment.ErrCorrupt) {
		t.Errorf("overlapping offsets: %v, want ErrCorrupt", err)
	}

	obj, err := tiering.BuildSegmentObject(bytes.NewReader(data), int64(len(data)), 0)
	if err != nil {
		t.Fatal(err)
	}
	full, _ := readAllAt(obj, obj.Size())
	flen := obj.Footer.FooterLen()
	if _, err := tiering.DecodeFooter(full, int64(len(full))); err != nil {
		t.Fatalf("valid footer rejected: %v", err)
	}
	for i := len(full) - flen; i < len(full); i++ { // every single-bit flip in the footer is caught
		c := bytes.Clone(full)
		c[i] ^= 0x10
		if _, err := tiering.DecodeFooter(c, int64(len(c))); err == nil {
			t.Fatalf("flip at footer byte %d not detected", i-(len(full)-flen))
		}
	}
	if _, err := tiering.DecodeFooter(full, int64(len(full))+1); !errors.Is(err, tiering.ErrBadFooter) {
		t.Errorf("wrong object size: %v", err)
	}
	// A future version is refused by name, not misread.
	v2 := bytes.Clone(full)
	binary.BigEndian.PutUint16(v2[len(v2)-12:], tiering.FormatVersion+1)
	if _, err := tiering.DecodeFooter(v2, int64(len(v2))); !errors.Is(err, tiering.ErrUnsupportedVersion) {
		t.Errorf("version+1: %v, want ErrUnsupportedVersion", err)
	}
	// OpenRemote on a non-segment object.
	s := tiering.NewMemStore()
	tiering.PutBytes(ctx, s, "junk", bytes.Repeat([]byte("j"), 500))
	if _, err := tiering.OpenRemote(ctx, s, "junk", -1); !errors.Is(err, tiering.ErrBadFooter) {
		t.Errorf("OpenRemote(junk) = %v, want ErrBadFooter", err)
	}
}

// TestSegmentObjectLargeFooter: a footer beyond the 64 KiB read-ahead costs exactly one more GET.
func TestSegmentObjectLargeFooter(t *testing.T) {
	ctx := context.Background()
	data, bs := genSegment(rand.New(rand.NewPCG(5, 5)), 0, 6000)
	obj, err := tiering.BuildSegmentObject(bytes.NewReader(data), int64(len(data)), 1)
	if err != nil {
		t.Fatal(err)
	}
	if obj.Footer.FooterLen() <= 64<<10 {
		t.Fatalf("footer only %d bytes", obj.Footer.FooterLen())
	}
	ls := &loggingStore{Store: tiering.NewMemStore()}
	ls.Put(ctx, "k/x", obj, obj.Size())
	ls.take()
	rr, err := tiering.OpenRemote(ctx, ls, "k/x", obj.Size())
	if err != nil {
		t.Fatal(err)
	}
	if ops := ls.take(); strings.Count(ops, "GET") != 2 {
		t.Errorf("open with a large footer: %q, want two GETs", ops)
	}
	got, err := rr.Read(ctx, bs[4321].base, 1, true)
	if err != nil || !bytes.Equal(got.Data, bs[4321].bytes) {
		t.Fatalf("Read: %d bytes %v", len(got.Data), err)
	}
}

func TestSegmentKeys(t *testing.T) {
	var topic meta.TopicID
	for i := range topic {
		topic[i] = byte(i * 17)
	}
	k := tiering.SegmentKey{Topic: topic, Partition: 12, BaseOffset: 123456, LeaderEpoch: 7, UploadID: "0123456789abcdef"}
	s := k.String()
	if want := "segments/00112233445566778899aabbccddeeff/12/00000000000000123456-7-0123456789abcdef.seg"; s != want {
		t.Fatalf("key %q, want %q", s, want)
	}
	if err := tiering.ValidKey(s); err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(s, tiering.PartitionPrefix(topic, 12)) || !strings.HasPrefix(s, tiering.TopicPrefix(topic)) {
		t.Fatal("key not under its prefixes")
	}
	if strings.HasPrefix(s, tiering.PartitionPrefix(topic, 1)) {
		t.Fatal("partition 12's key is under partition 1's prefix")
	}
	back, err := tiering.ParseSegmentKey(s)
	if err != nil || back != k {
		t.Fatalf("ParseSegmentKey = %+v, %v", back, err)
	}
	a, b := tiering.NewUploadID(), tiering.NewUploadID()
	if a == b || len(a) != 16 {
		t.Fatalf("upload ids %q %q", a, b)
	}
	// Keys sort by base offset.
	k2 := k
	k2.BaseOffset = 99999999
	if !(s < k2.String()) {
		t.Fatal("keys do not sort by offset")
	}
	for _, bad := range []string{
		"", "segments/", "other/00112233445566778899aabbccddeeff/1/00000000000000000001-0-0123456789abcdef.seg",
		"segments/00112233445566778899AABBCCDDEEFF/1/00000000000000000001-0-0123456789abcdef.seg",
		"segments/00112233445566778899aabbccddeeff/01/00000000000000000001-0-0123456789abcdef.seg",
		"segments/00112233445566778899aabbccddeeff/1/1-0-0123456789abcdef.seg",
		"segments/00112233445566778899aabbccddeeff/1/00000000000000000001-0-0123456789abcdef.log",
		"segments/00112233445566778899aabbccddeeff/1/00000000000000000001--1-0123456789abcdef.seg",
		"segments/00112233445566778899aabbccddeeff/1/00000000000000000001-0-0123.seg",
		"segments/00112233445566778899aabbccddeeff/1/x/00000000000000000001-0-0123456789abcdef.seg",
	} {
		if _, err := tiering.ParseSegmentKey(bad); err == nil {
			t.Errorf("ParseSegmentKey(%q) accepted", bad)
		}
	}
}

// TestReadsVersion1Objects: objects written by format version 1 (the committed fuzz seeds are whole v1
// objects) still open and read with the current code.
func TestReadsVersion1Objects(t *testing.T) {
	ctx := context.Background()
	for _, name := range []string{"seed-1-0", "seed-2-0", "seed-3-0"} {
		raw, err := os.ReadFile(filepath.Join("testdata", "fuzz", "FuzzDecodeFooter", name))
		if err != nil {
			t.Fatal(err)
		}
		lines := strings.SplitN(string(raw), "\n", 3)
		q := strings.TrimSuffix(strings.TrimPrefix(lines[1], "[]byte("), ")")
		s, err := strconv.Unquote(q)
		if err != nil {
			t.Fatal(err)
		}
		obj := []byte(s)
		store := tiering.NewMemStore()
		tiering.PutBytes(ctx, store, "v1/obj", obj)
		rr, err := tiering.OpenRemote(ctx, store, "v1/obj", -1)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if rr.Footer.Version != 1 || rr.Footer.StoredLen != rr.Footer.DataLen {
			t.Fatalf("%s: footer %+v, want version 1 verbatim", name, *rr.Footer)
		}
		res, err := rr.Read(ctx, rr.Footer.BaseOffset, 1<<20, true)
		if err != nil || !bytes.Equal(res.Data, obj[:rr.Footer.DataLen]) || res.NextOffset != rr.Footer.LastOffset+1 {
			t.Fatalf("%s: read %d bytes next %d (%v)", name, len(res.Data), res.NextOffset, err)
		}
	}
}

// TestCompressedObjectCorruption: a flipped byte in a stored lz4 chunk is an error (the chunk's CRC),
// never bad data — even in the header fields a batch CRC does not cover (offset, length, epoch).
func TestCompressedObjectCorruption(t *testing.T) {
	ctx := context.Background()
	data, bs := genSegmentC(rand.New(rand.NewPCG(8, 8)), 0, 100, true)
	obj, err := tiering.BuildSegmentObjectWith(bytes.NewReader(data), int64(len(data)), tiering.BuildOptions{Compress: true, ChunkSize: 4096})
	if err != nil {
		t.Fatal(err)
	}
	full, _ := readAllAt(obj, obj.Size())
	for _, at := range []int{10, int(obj.Footer.StoredLen / 2), int(obj.Footer.StoredLen - 3)} {
		c := bytes.Clone(full)
		c[at] ^= 0x55
		store := tiering.NewMemStore()
		tiering.PutBytes(ctx, store, "o", c)
		rr, err := tiering.OpenRemote(ctx, store, "o", -1)
		if err != nil {
			t.Fatal(err) // the footer is intact
		}
		bad := 0
		for _, b := range bs {
			res, err := rr.Read(ctx, b.base, 1, true)
			if err != nil {
				bad++
				continue
			}
			if !bytes.Equal(res.Data, b.bytes) {
				t.Fatalf("flip at stored byte %d: Read(%d) returned wrong bytes without an error", at, b.base)
			}
		}
		if bad == 0 {
			t.Fatalf("flip at stored byte %d went unnoticed by every read", at)
		}
	}
}
