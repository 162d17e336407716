package segment

import (
	"bytes"
	"encoding/binary"
	"errors"
	"hash/crc32"
	"math"
	"path/filepath"
	"testing"

	"github.com/sediment-io/sediment/segment/vfs"
)

// Seed corpora live in testdata/fuzz/<FuzzName>/ and are replayed by plain
// `go test`; `go test -tags gencorpus -run TestWriteFuzzCorpus` regenerates them.

func seedLog() []byte {
	var out []byte
	next := int64(0)
	for i, n := range []int{1, 3, 2} {
		b := testBatch(n, 10*i, int64(1000+i))
		BatchHeader(b).SetBaseOffset(next)
		next += int64(n)
		out = append(out, b...)
	}
	return out
}

func batchSeeds() [][]byte {
	good := seedLog()
	badCRC := append([]byte(nil), good...)
	badCRC[len(badCRC)-1] ^= 1
	badMagic := append([]byte(nil), good...)
	badMagic[offMagic] = 1
	return [][]byte{good, good[:len(good)-7], badCRC, badMagic, good[:HeaderSize], {}, bytes.Repeat([]byte{0xff}, 80)}
}

func FuzzSplitBatches(f *testing.F) {
	for _, s := range batchSeeds() {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		hs, err := SplitBatches(data)
		if err != nil {
			if !errors.Is(err, ErrCorrupt) {
				t.Fatalf("error not ErrCorrupt: %v", err)
			}
			return
		}
		total := 0
		for _, h := range hs {
			if h.Magic() != 2 || h.Size() < HeaderSize || h.LastOffset() < h.BaseOffset() {
				t.Fatalf("accepted bad header: magic %d size %d", h.Magic(), h.Size())
			}
			if err := ValidateBatch(data[total : total+h.Size()]); err != nil {
				t.Fatalf("SplitBatches accepted what ValidateBatch rejects: %v", err)
			}
			total += h.Size()
		}
		if total != len(data) {
			t.Fatalf("headers cover %d of %d bytes", total, len(data))
		}
		if h, err := ParseBatchHeader(data); len(data) > 0 && (err != nil || h.Size() != hs[0].Size()) {
			t.Fatalf("ParseBatchHeader disagrees: %v", err)
		}
	})
}

func FuzzDecompress(f *testing.F) {
	plain := testBatch(5, 30, 1)
	for _, c := range []Codec{CodecGzip, CodecSnappy, CodecLZ4, CodecZstd} {
		f.Add(int8(c), compressWith(&testing.T{}, c, plain))
	}
	f.Add(int8(CodecSnappy), xerial(plain, 50))
	f.Fuzz(func(t *testing.T, codec int8, src []byte) {
		const limit = 1 << 16
		out, err := Decompress(Codec(codec), src, limit)
		if err == nil && len(out) > limit {
			t.Fatalf("%d bytes returned over the %d limit", len(out), limit)
		}
		if err != nil && !errors.Is(err, ErrCorrupt) && !errors.Is(err, ErrDecompressLimit) {
			t.Fatalf("unexpected error class: %v", err)
		}
	})
}

// FuzzRecoveryScan writes arbitrary bytes as the only segment (with arbitrary
// index files, and optionally a clean-shutdown marker that matches the valid
// prefix) and opens the log. Open must not panic; after an unclean open the log
// is a valid prefix of the file; any log that opens can be read at every offset
// without panicking.
func FuzzRecoveryScan(f *testing.F) {
	good := seedLog()
	for _, s := range batchSeeds() {
		f.Add(s, []byte{}, []byte{}, false)
	}
	f.Add(good, []byte{0, 0, 0, 2, 0, 0, 0, 29}, []byte{0, 0, 0, 0, 0, 0, 3, 234, 0, 0, 0, 2}, true)
	f.Add(good, []byte{0, 0, 0, 9, 0, 0, 0, 1}, []byte{1, 2, 3}, true)
	f.Fuzz(func(t *testing.T, logBytes, index, timeIndex []byte, clean bool) {
		fsys := vfs.NewMemFS()
		dir := "/p"
		if err := fsys.MkdirAll(dir, 0o755); err != nil {
			t.Fatal(err)
		}
		write := func(name string, b []byte) {
			w, err := vfs.Create(fsys, filepath.Join(dir, name))
			if err != nil {
				t.Fatal(err)
			}
			w.Write(b)
			w.Close()
		}
		write("00000000000000000000.log", logBytes)
		write("00000000000000000000.index", index)
		write("00000000000000000000.timeindex", timeIndex)
		if clean {
			_, next, _, _ := scanChunk(logBytes, 0, 0, nil)
			var p [8]byte
			putInt64(p[:], next)
			write(cleanShutdownFile, encodeCheckpoint(kindCleanShutdown, p[:]))
		}
		cfg := testConfig(fsys)
		cfg.IndexIntervalBytes = 0
		l, err := Open(dir, cfg)
		if err != nil {
			if !clean {
				t.Fatalf("unclean open failed: %v", err)
			}
			return
		}
		defer l.Close()
		var got []byte
		for off := l.StartOffset(); off < l.EndOffset(); {
			r, err := l.Read(off, ReadOptions{MaxBytes: 100, MinOneBatch: true})
			if err != nil {
				if clean {
					return // a clean open trusts the bytes; reads may then fail, not panic
				}
				t.Fatalf("Read(%d): %v", off, err)
			}
			if len(r.Data) == 0 || r.NextOffset <= off {
				t.Fatalf("Read(%d) made no progress", off)
			}
			got = append(got, r.Data...)
			off = r.NextOffset
		}
		l.OffsetForTimestamp(1000)
		if clean {
			return
		}
		if !bytes.HasPrefix(logBytes, got) {
			t.Fatal("recovered bytes are not a prefix of the file")
		}
		if _, err := SplitBatches(got); err != nil {
			t.Fatalf("recovered log has an invalid batch: %v", err)
		}
		// Not just a valid prefix: the longest one. Recovery that cut too much would lose
		// acknowledged batches and still pass the checks above.
		if want := oracleValidPrefix(logBytes); len(got) != want {
			t.Fatalf("recovery kept %d bytes; the longest valid prefix is %d", len(got), want)
		}
	})
}

// oracleValidPrefix is the length of the longest prefix of b made of whole, valid RecordBatch v2
// frames of a log starting at offset 0, by the rules in doc.go, written apart from the package's
// own parser (its own offsets into the Kafka header, its own CRC call) so that a bug in one is not
// in both: length field at least 49 and the frame inside b; magic 2; CRC-32C (Castagnoli) of
// everything after the CRC field; base offset exactly the previous batch's last offset + 1 (0 for
// the first); lastOffsetDelta >= 0; partition leader epoch >= -1; last offset within int32 of 0.
func oracleValidPrefix(b []byte) int {
	table := crc32.MakeTable(crc32.Castagnoli)
	pos, next := 0, int64(0)
	for len(b)-pos >= 61 {
		f := b[pos:]
		length := int64(int32(binary.BigEndian.Uint32(f[8:12])))
		if length < 49 || int64(len(f)) < 12+length {
			break
		}
		frame := f[:12+length]
		base := int64(binary.BigEndian.Uint64(frame[0:8]))
		epoch := int32(binary.BigEndian.Uint32(frame[12:16]))
		delta := int64(int32(binary.BigEndian.Uint32(frame[23:27])))
		if frame[16] != 2 || binary.BigEndian.Uint32(frame[17:21]) != crc32.Checksum(frame[21:], table) ||
			base != next || delta < 0 || epoch < -1 || base+delta > math.MaxInt32 {
			break
		}
		pos += len(frame)
		next = base + delta + 1
	}
	return pos
}

// FuzzClosedSegmentIndex gives a closed segment of valid batches arbitrary index
// files (loaded at open from their last entries and lazily in full on first
// read) and checks every offset still reads back the right batch.
func FuzzClosedSegmentIndex(f *testing.F) {
	f.Add([]byte{}, []byte{}, true)
	f.Add([]byte{0, 0, 0, 2, 0, 0, 0, 29}, []byte{0, 0, 0, 0, 0, 0, 3, 234, 0, 0, 0, 2}, true)
	f.Add([]byte{0, 0, 0, 1, 0, 0, 0, 29, 0, 0, 0, 3, 0, 0, 0, 0x7f}, []byte{1, 2, 3}, false)
	f.Fuzz(func(t *testing.T, index, timeIndex []byte, clean bool) {
		fsys := vfs.NewMemFS()
		cfg := testConfig(fsys)
		cfg.IndexIntervalBytes = 0
		l := mustOpen(t, "/p", cfg)
		var batches [][]byte
		for i := 0; i < 6; i++ {
			b := testBatch(1+i%3, 5*i, int64(1000+10*i))
			mustAppend(t, l, b, 0)
			batches = append(batches, b)
			if i == 3 {
				if err := l.Roll(); err != nil {
					t.Fatal(err)
				}
			}
		}
		if err := l.Close(); err != nil {
			t.Fatal(err)
		}
		for name, b := range map[string][]byte{"/p/00000000000000000000.index": index, "/p/00000000000000000000.timeindex": timeIndex} {
			if err := vfs.WriteFileAtomic(fsys, name, b); err != nil {
				t.Fatal(err)
			}
		}
		if !clean {
			fsys.Remove("/p/" + cleanShutdownFile)
			fsys.SyncDir("/p")
		}
		l, err := Open("/p", cfg)
		if err != nil {
			t.Fatalf("open: %v", err)
		}
		defer l.Close()
		for _, b := range batches {
			h := BatchHeader(b)
			for off := h.BaseOffset(); off <= h.LastOffset(); off++ {
				r, err := l.Read(off, ReadOptions{MaxBytes: 1, MinOneBatch: true})
				if err != nil || !bytes.Equal(r.Data, b) {
					t.Fatalf("Read(%d): %v", off, err)
				}
			}
			if off, _, ok, err := l.OffsetForTimestamp(h.FirstTimestamp()); err != nil || !ok || off != h.BaseOffset() {
				t.Fatalf("OffsetForTimestamp(%d) = %d %v %v", h.FirstTimestamp(), off, ok, err)
			}
		}
	})
}
