package segment

import (
	"bytes"
	"compress/gzip"
	"encoding/binary"
	"errors"
	"testing"

	"github.com/klauspost/compress/snappy"
	"github.com/klauspost/compress/zstd"
	"github.com/pierrec/lz4/v4"
	"github.com/sediment-io/sediment/segment/vfs"
)

func compressWith(t *testing.T, c Codec, src []byte) []byte {
	t.Helper()
	var buf bytes.Buffer
	switch c {
	case CodecNone:
		return src
	case CodecGzip:
		w := gzip.NewWriter(&buf)
		w.Write(src)
		w.Close()
	case CodecSnappy:
		return snappy.Encode(nil, src)
	case CodecLZ4:
		w := lz4.NewWriter(&buf)
		if _, err := w.Write(src); err != nil {
			t.Fatal(err)
		}
		w.Close()
	case CodecZstd:
		w, err := zstd.NewWriter(&buf)
		if err != nil {
			t.Fatal(err)
		}
		w.Write(src)
		w.Close()
	}
	return buf.Bytes()
}

// xerial frames src as snappy-java's SnappyOutputStream does, in blocks of blockSize.
func xerial(src []byte, blockSize int) []byte {
	out := append([]byte(nil), xerialMagic...)
	out = binary.BigEndian.AppendUint32(out, 1)
	out = binary.BigEndian.AppendUint32(out, 1)
	for len(src) > 0 {
		n := min(blockSize, len(src))
		blk := snappy.Encode(nil, src[:n])
		out = binary.BigEndian.AppendUint32(out, uint32(len(blk)))
		out = append(out, blk...)
		src = src[n:]
	}
	return out
}

func TestDecompressRoundTrip(t *testing.T) {
	// Records of a real batch: what the broker would look inside.
	plain := testBatch(50, 100, 1)[HeaderSize:]
	for _, c := range []Codec{CodecNone, CodecGzip, CodecSnappy, CodecLZ4, CodecZstd} {
		t.Run(c.String(), func(t *testing.T) {
			got, err := Decompress(c, compressWith(t, c, plain), len(plain))
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(got, plain) {
				t.Fatal("round trip differs")
			}
			if _, err := Decompress(c, compressWith(t, c, plain), len(plain)-1); !errors.Is(err, ErrDecompressLimit) {
				t.Fatalf("limit one below the size: %v", err)
			}
		})
	}
	t.Run("snappy-xerial", func(t *testing.T) {
		got, err := Decompress(CodecSnappy, xerial(plain, 1000), len(plain))
		if err != nil || !bytes.Equal(got, plain) {
			t.Fatalf("xerial round trip: %v", err)
		}
		if _, err := Decompress(CodecSnappy, xerial(plain, 1000), len(plain)-1); !errors.Is(err, ErrDecompressLimit) {
			t.Fatalf("xerial limit: %v", err)
		}
	})
}

func TestDecompressBomb(t *testing.T) {
	bomb := make([]byte, 2<<20) // 2 MiB of zeros compresses to a few KiB
	for _, c := range []Codec{CodecGzip, CodecSnappy, CodecLZ4, CodecZstd} {
		t.Run(c.String(), func(t *testing.T) {
			src := compressWith(t, c, bomb)
			if len(src) > len(bomb)/8 {
				t.Fatalf("test input did not compress (%d bytes)", len(src))
			}
			out, err := Decompress(c, src, 16<<10)
			if !errors.Is(err, ErrDecompressLimit) || out != nil {
				t.Fatalf("bomb: %d bytes, %v", len(out), err)
			}
		})
	}
}

func TestDecompressGarbage(t *testing.T) {
	junk := []byte("this is not compressed data at all, not even close")
	for _, c := range []Codec{CodecGzip, CodecSnappy, CodecLZ4, CodecZstd, Codec(7)} {
		if _, err := Decompress(c, junk, 1<<20); !errors.Is(err, ErrCorrupt) {
			t.Errorf("%v: garbage gave %v, want ErrCorrupt", c, err)
		}
	}
	// A xerial block whose length runs past the input.
	x := xerial([]byte("hello hello hello"), 100)
	if _, err := Decompress(CodecSnappy, x[:len(x)-2], 1<<20); !errors.Is(err, ErrCorrupt) {
		t.Errorf("truncated xerial: %v", err)
	}
}

func TestOffsetForTimestampFindsTheRecord(t *testing.T) {
	l := mustOpen(t, "/p", testConfig(vfs.NewMemFS()))
	defer l.Close()
	plain := testBatch(5, 10, 1000) // records at 1000..1004, offsets 0..4
	mustAppend(t, l, plain, 0)
	recs := testBatch(5, 10, 2000)[HeaderSize:] // 2000..2004, offsets 5..9
	gz := compressWith(t, CodecGzip, recs)
	mustAppend(t, l, wrapRecords(gz, 5, 2000, 2004, int16(CodecGzip)), 0)
	lat := testBatch(3, 10, 1) // offsets 10..12, LogAppendTime 3000
	SetLogAppendTime(lat, 3000)
	mustAppend(t, l, lat, 0)
	cases := []struct{ ts, off, got int64 }{
		{0, 0, 1000}, {1002, 2, 1002}, {1005, 5, 2000}, {2003, 8, 2003}, {2005, 10, 3000}, {3000, 10, 3000},
	}
	for _, c := range cases {
		off, ts, ok, err := l.OffsetForTimestamp(c.ts)
		if err != nil || !ok || off != c.off || ts != c.got {
			t.Errorf("OffsetForTimestamp(%d) = %d@%d %v %v, want %d@%d", c.ts, off, ts, ok, err, c.off, c.got)
		}
	}
	if err := l.SetStartOffset(7); err != nil {
		t.Fatal(err)
	}
	if off, _, _, _ := l.OffsetForTimestamp(0); off != 7 {
		t.Errorf("after start offset 7, OffsetForTimestamp(0) = %d", off)
	}
}

func TestRecordAtOrAfterExported(t *testing.T) {
	plain := testBatch(5, 10, 1000) // offsets 0..4 at 1000..1004
	BatchHeader(plain).SetBaseOffset(100)
	gz := wrapRecords(compressWith(t, CodecGzip, testBatch(5, 10, 2000)[HeaderSize:]), 5, 2000, 2004, int16(CodecGzip))
	cases := []struct {
		b               []byte
		ts, min, off, g int64
		ok              bool
	}{
		{plain, 1002, 0, 102, 1002, true},
		{plain, 0, 103, 103, 1003, true},
		{plain, 1005, 0, 0, 0, false},
		{gz, 2003, 0, 3, 2003, true},
	}
	for i, c := range cases {
		off, got, ok := RecordAtOrAfter(c.b, c.ts, c.min)
		if ok != c.ok || (ok && (off != c.off || got != c.g)) {
			t.Errorf("case %d: %d@%d %v, want %d@%d %v", i, off, got, ok, c.off, c.g, c.ok)
		}
	}
	// Bad input: every truncation, a wrong magic, garbage records.
	for n := 0; n < len(gz); n++ {
		if _, _, ok := RecordAtOrAfter(gz[:n], 0, 0); ok {
			t.Fatalf("a batch cut to %d of %d bytes decoded", n, len(gz))
		}
	}
	bad := append([]byte(nil), plain...)
	bad[offMagic] = 1
	if _, _, ok := RecordAtOrAfter(bad, 0, 0); ok {
		t.Fatal("magic 1 accepted")
	}
	junk := append([]byte(nil), plain...)
	for i := HeaderSize; i < len(junk); i++ {
		junk[i] = 0xff
	}
	if _, _, ok := RecordAtOrAfter(junk, 0, 0); ok {
		t.Fatal("garbage records decoded")
	}
}
