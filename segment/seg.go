package segment

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"math"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/sediment-io/sediment/segment/vfs"
)

const (
	logSuffix       = ".log"
	indexSuffix     = ".index"
	timeIndexSuffix = ".timeindex"
	nameDigits      = 20
)

func segPath(dir string, base int64, suffix string) string {
	return filepath.Join(dir, fmt.Sprintf("%020d%s", base, suffix))
}

func isNotExist(err error) bool { return errors.Is(err, fs.ErrNotExist) }

// segment is one .log file with its in-memory offset and time indexes. The log's
// mutex guards every field; the file supports concurrent ReadAt.
type segment struct {
	base    int64
	next    int64 // offset after the last batch (base when empty)
	size    int64 // bytes of valid batches; the file may be longer (a failed write, or stale bytes of a reused file)
	f       vfs.File
	path    string
	idx     offsetIndex
	tidx    timeIndex
	created time.Time
	closed  bool // rolled: no longer the active segment

	// Indexes of closed segments are loaded lazily and may be evicted (see
	// lazyindex.go); loaded and lastUse are guarded by Log.idxMu. The active
	// segment's indexes are always in memory.
	loaded  bool
	lastUse uint64

	// fileMu lets Read copy bytes without holding the log's lock: readers hold
	// it for reading; closing the file or truncating it takes it for writing
	// (with the log's lock held). Appends, which only write past what readers
	// saw, do not take it.
	fileMu sync.RWMutex

	bytesSinceIndex int
	maxTs           int64 // largest batch maxTimestamp, -1 none
	maxTsOffset     int64 // last offset of the batch holding maxTs
	rollTs          int64 // maxTimestamp of the first batch (segment.ms), -1 none

	// fileSize is the file's size when it may exceed size: a recycled file
	// holds stale bytes, and every file the zeros padding its last append to
	// a page boundary, up to it until a roll or Close trims them (0 for a new
	// file before its first padded append; size once trimmed). maxNext is the highest next offset the
	// segment ever had (before truncations): with next it bounds every offset
	// the file held, the bound it takes into the recycle pool.
	fileSize int64
	maxNext  int64
}

func newSegment(f vfs.File, path string, base int64, cfg *Config) *segment {
	s := &segment{base: base, next: base, f: f, path: path, created: cfg.Now()}
	s.idx = offsetIndex{base: base, maxEntries: cfg.SegmentIndexBytes / indexEntrySize}
	s.tidx = timeIndex{base: base, maxEntries: cfg.SegmentIndexBytes / timeIndexEntrySize}
	s.resetStats()
	return s
}

func (s *segment) resetStats() {
	s.size = 0
	s.next = s.base
	s.bytesSinceIndex = 0
	s.maxTs, s.maxTsOffset, s.rollTs = -1, -1, -1
	s.idx.entries = s.idx.entries[:0]
	s.tidx.entries = s.tidx.entries[:0]
}

// onBatch accounts for a batch now stored at pos: stats, next offset, and an index
// entry every index.interval.bytes (Kafka's rule: the entry is added before the
// batch's bytes are counted, so the first batch of a segment is never indexed).
func (s *segment) onBatch(pos int64, h BatchHeader, interval int) {
	if pos == 0 {
		s.rollTs = h.MaxTimestamp()
	}
	if ts := h.MaxTimestamp(); ts > s.maxTs {
		s.maxTs, s.maxTsOffset = ts, h.LastOffset()
	}
	if s.bytesSinceIndex > interval {
		s.idx.add(h.LastOffset(), pos)
		s.tidx.maybeAdd(s.maxTs, s.maxTsOffset, false)
		s.bytesSinceIndex = 0
	}
	n := h.Size()
	s.bytesSinceIndex += n
	s.next = h.LastOffset() + 1
	s.size = pos + int64(n)
}

// readHeader reads and checks the batch header at pos (into buf, len >= HeaderSize).
func (s *segment) readHeader(pos int64, buf []byte) (BatchHeader, error) {
	if pos+HeaderSize > s.size {
		return nil, fmt.Errorf("%w: %s: batch header at byte %d runs past the end (%d bytes)", ErrCorrupt, s.path, pos, s.size)
	}
	if _, err := s.f.ReadAt(buf[:HeaderSize], pos); err != nil {
		return nil, fmt.Errorf("segment: read %s at byte %d: %w", s.path, pos, err)
	}
	h, err := ParseBatchHeader(buf)
	if err != nil {
		return nil, fmt.Errorf("%s at byte %d: %w", s.path, pos, err)
	}
	if pos+int64(h.Size()) > s.size {
		return nil, fmt.Errorf("%w: %s: batch at byte %d of %d bytes runs past the end (%d bytes)", ErrCorrupt, s.path, pos, h.Size(), s.size)
	}
	return h, nil
}

// find returns the position of the first batch in s whose last offset >= offset,
// or s.size when there is none; h is its header (valid until buf is reused). An
// index entry that does not point at a valid batch header is not trusted: the
// walk restarts from the segment start.
func (l *Log) find(s *segment, offset int64, buf []byte) (int64, BatchHeader, error) {
	start := l.lookupPos(s, offset)
	pos := start
	for pos < s.size {
		h, err := s.readHeader(pos, buf)
		if err != nil {
			if start > 0 && errors.Is(err, ErrCorrupt) {
				l.cfg.Logger.Warn("segment: index points at a bad batch header; scanning from the start", "file", s.path, "position", start, "err", err)
				start, pos = 0, 0
				continue
			}
			return 0, nil, err
		}
		if h.LastOffset() >= offset {
			return pos, h, nil
		}
		pos += int64(h.Size())
	}
	return s.size, nil, nil
}

// writeIndexes writes the in-memory indexes to the .index and .timeindex files,
// and fsyncs them if sync (a roll leaves that to the checkpointer). The caller
// fsyncs the directory.
func (s *segment) writeIndexes(fsys vfs.FS, dir string, sync bool) error {
	for _, f := range []struct {
		path string
		data []byte
	}{
		{segPath(dir, s.base, indexSuffix), s.idx.encode()},
		{segPath(dir, s.base, timeIndexSuffix), s.tidx.encode()},
	} {
		w, err := vfs.Create(fsys, f.path)
		if err != nil {
			return err
		}
		_, err = w.Write(f.data)
		if err == nil && sync {
			err = w.Sync()
		}
		if cerr := w.Close(); err == nil {
			err = cerr
		}
		if err != nil {
			return fmt.Errorf("segment: write %s: %w", f.path, err)
		}
	}
	return nil
}

// loadIndexes reads the index files and checks them against the segment (whose
// size is known). It then walks the batch headers after the last index entry to
// find the next offset and the stats, proving the file ends on a batch boundary.
// Any inconsistency is returned; the caller then rebuilds by a full scan.
//
// With full false only the last entry of each file is read (closed segments load
// the rest lazily, and check it then); the in-memory indexes are left unloaded.
func (s *segment) loadIndexes(fsys vfs.FS, dir string, cfg *Config, full bool) error {
	ib, err := readIndexFile(fsys, segPath(dir, s.base, indexSuffix), indexEntrySize, full)
	if err != nil {
		return err
	}
	tb, err := readIndexFile(fsys, segPath(dir, s.base, timeIndexSuffix), timeIndexEntrySize, full)
	if err != nil {
		return err
	}
	idx, err := decodeOffsetIndex(ib, s.base, cfg.SegmentIndexBytes/indexEntrySize, s.size)
	if err != nil {
		return err
	}
	tidx, err := decodeTimeIndex(tb, s.base, cfg.SegmentIndexBytes/timeIndexEntrySize, -1)
	if err != nil {
		return err
	}
	s.idx, s.tidx = idx, tidx
	var buf [HeaderSize]byte
	if s.size > 0 {
		h, err := s.readHeader(0, buf[:])
		if err != nil {
			return err
		}
		if h.BaseOffset() != s.base {
			return fmt.Errorf("%w: %s: first batch offset %d, segment base %d", ErrCorrupt, s.path, h.BaseOffset(), s.base)
		}
		s.rollTs = h.MaxTimestamp()
		s.next = h.LastOffset() + 1
	}
	if e, ok := s.tidx.last(); ok {
		s.maxTs, s.maxTsOffset = e.ts, s.base+int64(e.rel)
	}
	lastOff, pos := s.idx.lookup(math.MaxInt64)
	if pos > 0 {
		h, err := s.readHeader(pos, buf[:])
		if err != nil {
			return err
		}
		if h.LastOffset() != lastOff {
			return fmt.Errorf("%w: %s: index entry for offset %d points at a batch ending at %d", ErrCorrupt, s.path, lastOff, h.LastOffset())
		}
	}
	walkFrom := pos
	for pos < s.size {
		h, err := s.readHeader(pos, buf[:])
		if err != nil {
			return err
		}
		if h.BaseOffset() != s.next && pos > walkFrom {
			return fmt.Errorf("%w: %s: batch at byte %d has base offset %d, expected %d", ErrCorrupt, s.path, pos, h.BaseOffset(), s.next)
		}
		if ts := h.MaxTimestamp(); ts > s.maxTs {
			s.maxTs, s.maxTsOffset = ts, h.LastOffset()
		}
		s.next = h.LastOffset() + 1
		pos += int64(h.Size())
	}
	if e, ok := s.tidx.last(); ok && s.base+int64(e.rel) >= s.next {
		return fmt.Errorf("%w: %s: time index entry beyond the segment's last offset", ErrCorrupt, s.path)
	}
	s.bytesSinceIndex = int(s.size - walkFrom)
	s.loaded = full
	if !full {
		s.idx.entries, s.tidx.entries = nil, nil
	}
	return nil
}

// readIndexFile reads a whole index file, or with full false only its last
// entry (after checking the size is whole entries).
func readIndexFile(fsys vfs.FS, path string, entrySize int, full bool) ([]byte, error) {
	if full {
		return vfs.ReadFile(fsys, path)
	}
	f, err := fsys.OpenFile(path, os.O_RDONLY, 0)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return nil, err
	}
	n := st.Size()
	if n%int64(entrySize) != 0 {
		return nil, fmt.Errorf("%w: %s: size %d not a multiple of %d", ErrCorrupt, path, n, entrySize)
	}
	if n == 0 {
		return nil, nil
	}
	b := make([]byte, entrySize)
	if _, err := f.ReadAt(b, n-int64(entrySize)); err != nil && !errors.Is(err, io.EOF) {
		return nil, err
	}
	return b, nil
}

// rebuildIndexes recomputes a closed segment's indexes from its batch headers
// (used when a lazily loaded index file fails its checks).
func (s *segment) rebuildIndexes(cfg *Config) error {
	tmp := newSegment(s.f, s.path, s.base, cfg)
	var buf [HeaderSize]byte
	for p := int64(0); p < s.size; {
		tmp.size = s.size
		h, err := tmp.readHeader(p, buf[:])
		if err != nil {
			return err
		}
		tmp.onBatch(p, h, cfg.IndexIntervalBytes)
		p += int64(h.Size())
	}
	tmp.tidx.maybeAdd(tmp.maxTs, tmp.maxTsOffset, true)
	s.idx, s.tidx = tmp.idx, tmp.tidx
	return nil
}

// scanChunk validates the batches in buf, which holds a segment file from some
// position on: framing, magic, CRC-32C, base offset equal to the expected next
// offset (the segment base for the first batch), a leader epoch >= -1, and a
// relative offset that fits in int32. It
// returns the bytes of whole valid batches, the next expected offset, and either
// need > 0 (the batch at valid is incomplete in buf and needs that many bytes) or
// err (the batch at valid is corrupt). visit sees each valid batch.
func scanChunk(buf []byte, segBase, next int64, visit func(pos int, h BatchHeader)) (valid int, nextOut int64, need int, err error) {
	p := 0
	for p < len(buf) {
		if len(buf)-p < HeaderSize {
			return p, next, HeaderSize, nil
		}
		h, err := ParseBatchHeader(buf[p:])
		if err != nil {
			return p, next, 0, err
		}
		n := h.Size()
		if len(buf)-p < n {
			return p, next, n, nil
		}
		if got, want := batchCRC(buf[p:p+n]), h.CRC(); got != want {
			return p, next, 0, fmt.Errorf("%w: crc32c %08x, header says %08x", ErrCorrupt, got, want)
		}
		// Sediment logs are contiguous (Append assigns consecutive offsets,
		// AppendReplicated requires them), so any other base offset is
		// corruption: this also catches damage to the base offset, which the
		// batch CRC does not cover.
		if b := h.BaseOffset(); b != max(next, segBase) {
			return p, next, 0, fmt.Errorf("%w: base offset %d, expected %d", ErrCorrupt, b, max(next, segBase))
		}
		// The leader epoch is not covered by the CRC either; -1 (none) and up
		// are the only values a writer sets.
		if e := h.PartitionLeaderEpoch(); e < -1 {
			return p, next, 0, fmt.Errorf("%w: partition leader epoch %d", ErrCorrupt, e)
		}
		if h.LastOffset()-segBase > math.MaxInt32 {
			return p, next, 0, fmt.Errorf("%w: offset %d too far from segment base %d", ErrCorrupt, h.LastOffset(), segBase)
		}
		if visit != nil {
			visit(p, h)
		}
		next = h.LastOffset() + 1
		p += n
	}
	return p, next, 0, nil
}

const recoverChunk = 1 << 20

// recover rebuilds the segment's state and indexes by validating every batch from
// the start of the file. Bytes after the first invalid or incomplete batch are cut
// off (and the truncation fsynced). It returns whether anything was cut. Read
// errors are returned as they are: an unreadable file is not a corrupt one.
func (s *segment) recover(prevNext int64, cfg *Config) (truncated bool, err error) {
	st, err := s.f.Stat()
	if err != nil {
		return false, fmt.Errorf("segment: stat %s: %w", s.path, err)
	}
	fileSize := st.Size()
	s.resetStats()
	buf := make([]byte, min(fileSize, recoverChunk))
	var pos int64
	next := max(prevNext, s.base)
	var reason error
	visit := func(p int, h BatchHeader) { s.onBatch(pos+int64(p), h, cfg.IndexIntervalBytes) }
	for pos < fileSize {
		n := min(int64(len(buf)), fileSize-pos)
		if _, err := s.f.ReadAt(buf[:n], pos); err != nil && !errors.Is(err, io.EOF) {
			return false, fmt.Errorf("segment: read %s at byte %d: %w", s.path, pos, err)
		}
		valid, nx, need, err := scanChunk(buf[:n], s.base, next, visit)
		pos += int64(valid)
		next = nx
		if err != nil {
			reason = err
			break
		}
		if need > 0 {
			if pos+int64(need) > fileSize {
				reason = fmt.Errorf("%w: incomplete batch (%d of %d bytes)", ErrCorrupt, fileSize-pos, need)
				break
			}
			if need > len(buf) {
				buf = make([]byte, need)
			}
		}
	}
	s.size = pos
	if pos < fileSize {
		cfg.Logger.Warn("segment: truncating invalid tail", "file", s.path, "position", pos, "bytes", fileSize-pos, "reason", reason)
		if err := s.f.Truncate(pos); err != nil {
			return false, fmt.Errorf("segment: truncate %s at byte %d: %w", s.path, pos, err)
		}
		if err := s.f.Datasync(); err != nil {
			return false, fmt.Errorf("segment: sync %s: %w", s.path, err)
		}
		return true, nil
	}
	return false, nil
}

// truncateAt cuts the segment at pos (a batch boundary) and rebuilds its stats and
// indexes from the remaining batch headers.
func (s *segment) truncateAt(pos int64, cfg *Config) error {
	s.maxNext = max(s.maxNext, s.next)
	if err := s.f.Truncate(pos); err != nil {
		return fmt.Errorf("segment: truncate %s at byte %d: %w", s.path, pos, err)
	}
	if err := s.f.Datasync(); err != nil {
		return fmt.Errorf("segment: sync %s: %w", s.path, err)
	}
	s.resetStats()
	s.size = pos
	s.fileSize = pos // the truncation dropped a reused file's stale bytes too
	var buf [HeaderSize]byte
	for p := int64(0); p < pos; {
		s.size = pos // onBatch moved it to p; headers may lie anywhere below pos
		h, err := s.readHeader(p, buf[:])
		if err != nil {
			return err
		}
		s.onBatch(p, h, cfg.IndexIntervalBytes)
		p += int64(h.Size())
	}
	return nil
}

func openSegmentFile(fsys vfs.FS, dir string, base int64, create bool) (vfs.File, string, error) {
	path := segPath(dir, base, logSuffix)
	flag := os.O_RDWR
	if create {
		flag |= os.O_CREATE | os.O_EXCL
	}
	f, err := fsys.OpenFile(path, flag, 0o644)
	if err != nil {
		return nil, path, fmt.Errorf("segment: open %s: %w", path, err)
	}
	return f, path, nil
}

// removeIndexFiles removes a segment's index files; the caller then removes
// or recycles the .log. Index files go first: a crash part-way leaves a .log
// whose indexes are rebuilt, never an index pointing into a missing log.
func removeIndexFiles(fsys vfs.FS, dir string, base int64) error {
	for _, suf := range []string{timeIndexSuffix, indexSuffix} {
		if err := fsys.Remove(segPath(dir, base, suf)); err != nil && !isNotExist(err) {
			return fmt.Errorf("segment: remove: %w", err)
		}
	}
	return nil
}
