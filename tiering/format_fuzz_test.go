package tiering

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"hash/crc32"
	"os"
	"path/filepath"
	"testing"
)

// fuzzBatch builds a minimal valid RecordBatch v2 (records are opaque to tiering).
func fuzzBatch(base int64, count int32, ts int64, payload int) []byte {
	b := make([]byte, 61+payload)
	be := binary.BigEndian
	be.PutUint64(b[0:], uint64(base))
	be.PutUint32(b[8:], uint32(len(b)-12))
	b[16] = 2
	be.PutUint32(b[23:], uint32(count-1))
	be.PutUint64(b[27:], uint64(ts))
	be.PutUint64(b[35:], uint64(ts+int64(count)))
	be.PutUint32(b[57:], uint32(count))
	for i := 61; i < len(b); i++ {
		b[i] = byte(i)
	}
	be.PutUint32(b[17:], crc32.Checksum(b[21:], castagnoli))
	return b
}

// seedObjects are whole segment objects (data + footer) of a few shapes.
func seedObjects(t testing.TB) [][]byte {
	var out [][]byte
	for _, shape := range []struct{ batches, payload, interval int }{{1, 0, 4096}, {5, 100, 1}, {40, 300, 1024}, {3, 5000, 4096}} {
		var data []byte
		off, ts := int64(100), int64(1_700_000_000_000)
		for i := 0; i < shape.batches; i++ {
			data = append(data, fuzzBatch(off, 3, ts-int64(i%3)*10, shape.payload)...)
			off += 4
			ts += 7
		}
		obj, err := BuildSegmentObject(bytes.NewReader(data), int64(len(data)), shape.interval)
		if err != nil {
			t.Fatal(err)
		}
		full := make([]byte, obj.Size())
		obj.ReadAt(full, 0)
		out = append(out, full)
	}
	return out
}

// FuzzDecodeFooter: arbitrary bytes never panic the decoder, and whatever it accepts is internally
// consistent: it re-encodes to the same bytes and the lookups a reader does stay in bounds.
func FuzzDecodeFooter(f *testing.F) {
	for _, o := range seedObjects(f) {
		f.Add(o)
		f.Add(o[len(o)-(len(o)/2):])
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		checkFooter(t, b)
		// The CRC rejects almost every mutation; also decode a copy with the CRC recomputed so the
		// fuzzer reaches the structural checks behind it.
		if len(b) >= tailLen {
			n := int(binary.BigEndian.Uint32(b[len(b)-tailLen:]))
			if n >= tailLen && n <= len(b) {
				c := bytes.Clone(b)
				fb := c[len(c)-n:]
				binary.BigEndian.PutUint32(fb[n-8:], crc32.Checksum(fb[:n-8], castagnoli))
				checkFooter(t, c)
			}
		}
	})
}

func checkFooter(t *testing.T, b []byte) {
	{
		ft, err := DecodeFooter(b, -1)
		if err != nil {
			return
		}
		n := ft.FooterLen()
		if hl := binary.BigEndian.Uint32(b[len(b)-n:]); hl == headerLenV1 {
			if re := AppendFooter(nil, ft); !bytes.Equal(re, b[len(b)-n:]) {
				t.Fatalf("re-encoding differs")
			}
		}
		for _, off := range []int64{ft.BaseOffset, ft.LastOffset, (ft.BaseOffset + ft.LastOffset) / 2} {
			i := ft.floorOffset(off)
			if i < 0 || i >= len(ft.Offsets) {
				t.Fatalf("floorOffset(%d) = %d of %d", off, i, len(ft.Offsets))
			}
			if p := ft.nextPosition(int64(ft.Offsets[i].Position)); p > ft.DataLen {
				t.Fatalf("nextPosition beyond data")
			}
		}
		for _, ts := range []int64{ft.MaxTimestamp, ft.FirstTimestamp, ft.MaxTimestamp - 1} {
			if from, to, ok := ft.timeRange(ts); ok && (from < 0 || to > ft.DataLen || from > to) {
				t.Fatalf("timeRange(%d) = [%d,%d)", ts, from, to)
			}
		}
	}
}

// TestWriteFuzzCorpus regenerates testdata/fuzz/FuzzDecodeFooter (SEDIMENT_GEN_CORPUS=1).
func TestWriteFuzzCorpus(t *testing.T) {
	if os.Getenv("SEDIMENT_GEN_CORPUS") != "1" {
		t.Skip("set SEDIMENT_GEN_CORPUS=1 to rewrite the seed corpus")
	}
	dir := filepath.Join("testdata", "fuzz", "FuzzDecodeFooter")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	for i, o := range seedObjects(t) {
		for j, b := range [][]byte{o, o[len(o)-(len(o)/2):]} {
			body := fmt.Sprintf("go test fuzz v1\n[]byte(%q)\n", b)
			if err := os.WriteFile(filepath.Join(dir, fmt.Sprintf("seed-%d-%d", i, j)), []byte(body), 0o644); err != nil {
				t.Fatal(err)
			}
		}
	}
}
