package segment

import (
	"bytes"
	"encoding/binary"
	"errors"
	"hash/crc32"
	"os"
	"slices"
	"testing"
	"time"

	"github.com/sediment-io/sediment/segment/vfs"
)

// testBatch builds an uncompressed RecordBatch v2 with n records of valueSize
// bytes, timestamps ts, ts+1, ... The base offset and epoch are left 0.
func testBatch(n, valueSize int, ts int64) []byte {
	var recs []byte
	val := bytes.Repeat([]byte{'v'}, valueSize)
	for i := 0; i < n; i++ {
		var body []byte
		body = append(body, 0)                            // attributes
		body = binary.AppendVarint(body, int64(i))        // timestamp delta
		body = binary.AppendVarint(body, int64(i))        // offset delta
		body = binary.AppendVarint(body, -1)              // key: null
		body = binary.AppendVarint(body, int64(len(val))) // value
		body = append(body, val...)
		body = binary.AppendVarint(body, 0) // headers
		recs = binary.AppendVarint(recs, int64(len(body)))
		recs = append(recs, body...)
	}
	return wrapRecords(recs, n, ts, ts+int64(n)-1, 0)
}

// wrapRecords frames encoded records (possibly compressed) into a batch.
func wrapRecords(recs []byte, n int, firstTs, maxTs int64, attrs int16) []byte {
	b := make([]byte, HeaderSize, HeaderSize+len(recs))
	binary.BigEndian.PutUint32(b[offBatchLength:], uint32(HeaderSize-logOverhead+len(recs)))
	b[offMagic] = 2
	binary.BigEndian.PutUint16(b[offAttributes:], uint16(attrs))
	binary.BigEndian.PutUint32(b[offLastOffsetDelta:], uint32(max(n-1, 0)))
	binary.BigEndian.PutUint64(b[offBaseTimestamp:], uint64(firstTs))
	binary.BigEndian.PutUint64(b[offMaxTimestamp:], uint64(maxTs))
	binary.BigEndian.PutUint64(b[offProducerID:], ^uint64(0))
	binary.BigEndian.PutUint16(b[offProducerEpoch:], 0xffff)
	binary.BigEndian.PutUint32(b[offBaseSequence:], 0xffffffff)
	binary.BigEndian.PutUint32(b[offRecordCount:], uint32(n))
	b = append(b, recs...)
	binary.BigEndian.PutUint32(b[offCRC:], crc32.Checksum(b[offAttributes:], crc32.MakeTable(crc32.Castagnoli)))
	return b
}

func testConfig(fsys vfs.FS) Config {
	c := DefaultConfig()
	c.FS = fsys
	return c
}

func mustOpen(t testing.TB, dir string, cfg Config) *Log {
	t.Helper()
	l, err := Open(dir, cfg)
	if err != nil {
		t.Fatalf("Open(%s): %v", dir, err)
	}
	return l
}

func mustAppend(t testing.TB, l *Log, b []byte, epoch int32) AppendResult {
	t.Helper()
	r, err := l.Append(b, epoch)
	if err != nil {
		t.Fatalf("Append: %v", err)
	}
	return r
}

// readAll reads every batch from offset from to the end.
func readAll(t testing.TB, l *Log, from int64) []byte {
	t.Helper()
	var out []byte
	for off := from; off < l.EndOffset(); {
		r, err := l.Read(off, ReadOptions{MaxBytes: 1 << 20, MinOneBatch: true})
		if err != nil {
			t.Fatalf("Read(%d): %v", off, err)
		}
		if len(r.Data) == 0 {
			t.Fatalf("Read(%d) returned nothing before the end %d", off, l.EndOffset())
		}
		out = append(out, r.Data...)
		off = r.NextOffset
	}
	return out
}

var fixedNow = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)

// readUntilStopped calls read until stop closes, as a concurrent reader of a
// log that changes under it: an error in moved (the start moved between the
// caller's two calls) is skipped; any other error, or data that is not whole
// batches, fails t.
func readUntilStopped(t *testing.T, stop <-chan struct{}, read func() (ReadResult, error), moved ...error) {
	for {
		select {
		case <-stop:
			return
		default:
		}
		res, err := read()
		if slices.ContainsFunc(moved, func(m error) bool { return errors.Is(err, m) }) {
			continue
		}
		if err != nil {
			t.Error(err)
			return
		}
		if _, err := SplitBatches(res.Data); err != nil {
			t.Errorf("reader saw a partial batch: %v", err)
			return
		}
	}
}

// settle waits for the log's checkpointer, for tests that count or intercept
// file-system operations and need them in a fixed order. Not concurrent with
// rolls: the caller appends from one goroutine.
func settle(l *Log) { l.cpDone.Wait() }

// crashAt waits for l's checkpointer, persists rp as the recovery point and
// crashes fsys (no Close, so no clean-shutdown marker): the next Open trusts
// the segments below rp and scans the others.
func crashAt(t testing.TB, l *Log, fsys *vfs.MemFS, rp int64) {
	t.Helper()
	settle(l)
	if err := writeOffsetCheckpoint(fsys, l.Dir(), recoveryPointFile, kindRecoveryPoint, rp); err != nil {
		t.Fatal(err)
	}
	fsys.Crash()
}

// corruptByte flips the byte at pos of the file at path, durably.
func corruptByte(t testing.TB, fsys vfs.FS, path string, pos int64) {
	t.Helper()
	f, err := fsys.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var b [1]byte
	if _, err := f.ReadAt(b[:], pos); err != nil {
		t.Fatal(err)
	}
	b[0] ^= 0xff
	if _, err := f.WriteAt(b[:], pos); err != nil {
		t.Fatal(err)
	}
	if err := f.Sync(); err != nil {
		t.Fatal(err)
	}
}
