package tiering

import (
	"bufio"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"math"

	"github.com/pierrec/lz4/v4"

	"github.com/sediment-io/sediment/segment"
)

// SegmentObject is an upload body: a closed segment's bytes followed by its footer. It is an
// io.ReaderAt (re-readable for retries and parallel multipart parts) over the segment file, which must
// stay unchanged until the upload ends (closed segments are immutable until retention deletes them).
type SegmentObject struct {
	Footer *Footer
	data   io.ReaderAt
	footer []byte
}

// Size is the object's length: the stored data section + the footer.
func (o *SegmentObject) Size() int64 { return o.Footer.StoredLen + int64(len(o.footer)) }

// ReadAt reads the concatenation data | footer.
func (o *SegmentObject) ReadAt(p []byte, off int64) (int, error) {
	if off < 0 {
		return 0, errors.New("tiering: negative offset")
	}
	n := 0
	stored := o.Footer.StoredLen
	if off < stored {
		k := int(min(int64(len(p)), stored-off))
		m, err := o.data.ReadAt(p[:k], off)
		n += m
		if m < k {
			if err == nil || err == io.EOF {
				err = io.ErrUnexpectedEOF // the segment file shrank under us
			}
			return n, err
		}
		p, off = p[k:], off+int64(k)
	}
	if len(p) == 0 {
		return n, nil
	}
	fo := off - stored
	if fo >= int64(len(o.footer)) {
		return n, io.EOF
	}
	m := copy(p, o.footer[fo:])
	n += m
	if m < len(p) {
		return n, io.EOF
	}
	return n, nil
}

// BuildSegmentObject builds a verbatim (uncompressed) object: BuildSegmentObjectWith without Compress.
func BuildSegmentObject(data io.ReaderAt, size int64, indexInterval int) (*SegmentObject, error) {
	return BuildSegmentObjectWith(data, size, BuildOptions{IndexInterval: indexInterval})
}

// BuildOptions tunes BuildSegmentObjectWith.
type BuildOptions struct {
	IndexInterval int // footer index spacing; ≤ 0: DefaultIndexInterval
	// Compress stores the data as independently decodable lz4 chunks when every batch in the segment
	// was sent uncompressed (a segment holding any compressed batch is stored verbatim: compressing
	// compressed data costs CPU for nothing). Chunks that lz4 does not shrink are stored raw.
	Compress  bool
	ChunkSize int // logical bytes per chunk; ≤ 0: DefaultChunkSize
}

// BuildSegmentObjectWith reads size bytes of a closed segment (concatenated RecordBatch v2 batches)
// from data, validating every batch (framing, magic, CRC-32C, strictly increasing offsets), and builds
// the footer index. It reads the segment once, sequentially; a verbatim upload reads it again through
// the returned object, a compressed one holds the compressed chunks (compress.go: in memory up to
// compressMemBytes, else in a temporary file; Close releases them).
func BuildSegmentObjectWith(data io.ReaderAt, size int64, opts BuildOptions) (*SegmentObject, error) {
	indexInterval := opts.IndexInterval
	if indexInterval <= 0 {
		indexInterval = DefaultIndexInterval
	}
	if size <= 0 {
		return nil, fmt.Errorf("tiering: segment of %d bytes: nothing to upload", size)
	}
	if size > math.MaxUint32 {
		return nil, fmt.Errorf("tiering: segment of %d bytes exceeds the format's 4 GiB", size)
	}
	br := bufio.NewReaderSize(io.NewSectionReader(data, 0, size), 1<<20)
	crc := crc32.New(castagnoli)
	f := &Footer{Version: FormatVersion, DataLen: size, IndexInterval: uint32(indexInterval)}
	var (
		buf                 []byte
		pos                 int64
		lastOffIdx, lastTim int64 = -1, -1
		runningMax                = int64(math.MinInt64)
		prevLast                  = int64(-1)
		lastBatchDelta      uint32
		lastBatchPos        int64
		allUncompressed     = true
	)
	for pos < size {
		var prefix [12]byte
		if _, err := io.ReadFull(br, prefix[:]); err != nil {
			return nil, fmt.Errorf("%w: batch at byte %d: %v", segment.ErrCorrupt, pos, err)
		}
		n := int64(binary.BigEndian.Uint32(prefix[8:])) + 12
		if n < segment.HeaderSize || pos+n > size {
			return nil, fmt.Errorf("%w: batch at byte %d has length %d (segment %d bytes)", segment.ErrCorrupt, pos, n, size)
		}
		if int64(cap(buf)) < n {
			buf = make([]byte, n)
		}
		b := buf[:n]
		copy(b, prefix[:])
		if _, err := io.ReadFull(br, b[12:]); err != nil {
			return nil, fmt.Errorf("%w: batch at byte %d: %v", segment.ErrCorrupt, pos, err)
		}
		if err := segment.ValidateBatch(b); err != nil {
			return nil, fmt.Errorf("tiering: batch at byte %d: %w", pos, err)
		}
		crc.Write(b)
		h, _ := segment.ParseBatchHeader(b)
		if h.Compression() != segment.CodecNone {
			allUncompressed = false
		}
		if f.BatchCount == 0 {
			f.BaseOffset, f.FirstTimestamp = h.BaseOffset(), h.FirstTimestamp()
		} else if h.BaseOffset() <= prevLast {
			return nil, fmt.Errorf("%w: batch at byte %d starts at offset %d, not after %d", segment.ErrCorrupt, pos, h.BaseOffset(), prevLast)
		}
		if h.LastOffset()-f.BaseOffset > math.MaxUint32 {
			return nil, fmt.Errorf("tiering: segment spans more than 2^32 offsets")
		}
		delta := uint32(h.BaseOffset() - f.BaseOffset)
		if lastOffIdx < 0 || pos-lastOffIdx >= int64(indexInterval) {
			f.Offsets = append(f.Offsets, OffsetEntry{OffsetDelta: delta, Position: uint32(pos)})
			lastOffIdx = pos
		}
		if f.BatchCount == 0 || h.MaxTimestamp() > f.MaxTimestamp {
			f.MaxTimestamp, f.MaxTimestampOffset = h.MaxTimestamp(), h.LastOffset()
		}
		runningMax = max(runningMax, h.MaxTimestamp())
		if (lastTim < 0 || pos-lastTim >= int64(indexInterval)) && (len(f.Times) == 0 || runningMax > f.Times[len(f.Times)-1].Timestamp) {
			f.Times = append(f.Times, TimeEntry{Timestamp: runningMax, OffsetDelta: delta, Position: uint32(pos)})
			lastTim = pos
		}
		f.BatchCount++
		f.RecordCount += uint32(h.RecordCount())
		prevLast = h.LastOffset()
		lastBatchDelta, lastBatchPos = delta, pos
		pos += n
	}
	// The final maximum is always indexed, so a time lookup never misses the segment's newest data.
	if t := len(f.Times); t == 0 || f.Times[t-1].Timestamp < runningMax {
		f.Times = append(f.Times, TimeEntry{Timestamp: runningMax, OffsetDelta: lastBatchDelta, Position: uint32(lastBatchPos)})
	}
	f.LastOffset = prevLast
	f.DataCRC = crc.Sum32()
	f.StoredLen = size
	obj := &SegmentObject{Footer: f, data: data}
	if opts.Compress && allUncompressed {
		if err := compressChunks(obj, data, opts.ChunkSize); err != nil {
			return nil, err
		}
	}
	obj.footer = AppendFooter(nil, f)
	return obj, nil
}

// readLogical returns the logical (uncompressed segment) bytes [from, to) as one slice
// (readLogicalParts, joined when the range spans cached chunks).
func (r *RemoteReader) readLogical(ctx context.Context, from, to int64) ([]byte, error) {
	parts, hold, err := r.readLogicalParts(ctx, from, to)
	if err != nil {
		return nil, err
	}
	return joinReleasing(parts, hold), nil
}

// readLogicalParts returns the logical (uncompressed segment) bytes [from, to) with one ranged GET
// of the stored bytes that hold them, decompressing chunks as needed. A verbatim object's bytes come
// as the cached chunk slices they span (shared, not joined: parts.go), with their Hold.
func (r *RemoteReader) readLogicalParts(ctx context.Context, from, to int64) ([][]byte, *Hold, error) {
	return r.readLogicalPartsAs(ctx, from, to, false)
}

// readLogicalPartsAs is readLogicalParts; background (read-ahead) waits for a cold-read slot
// behind every consumer read.
func (r *RemoteReader) readLogicalPartsAs(ctx context.Context, from, to int64, background bool) ([][]byte, *Hold, error) {
	f := r.Footer
	if to <= from {
		return nil, nil, nil
	}
	c0, c1, sFrom, sTo := f.storedRange(from, to)
	if err := r.sem.acquire(ctx, background); err != nil {
		return nil, nil, err
	}
	parts, hold, err := readRangeParts(ctx, r.store, r.key, sFrom, sTo-sFrom)
	r.sem.release()
	if err != nil {
		return nil, nil, err
	}
	if n := int64(partsLen(parts)); n != sTo-sFrom {
		hold.Release()
		return nil, nil, fmt.Errorf("tiering: %s: short read %d of %d bytes", r.key, n, sTo-sFrom)
	}
	if f.Flags&FlagLZ4Chunks == 0 {
		return parts, hold, nil
	}
	defer hold.Release() // decoded into a buffer of our own
	// lz4 blocks need their bytes in one piece; the copy is small next to decoding.
	raw := joinParts(parts)
	cs := int64(f.ChunkSize)
	out := make([]byte, 0, (c1-c0+1)*int(cs))
	for i := c0; i <= c1; i++ {
		e := f.Chunks[i]
		b := raw[int64(e.StoredPos)-sFrom : int64(e.StoredPos)-sFrom+int64(e.StoredLen)]
		if got := crc32.Checksum(b, castagnoli); got != e.CRC {
			return nil, nil, fmt.Errorf("%w: %s: chunk %d CRC %08x, footer says %08x", segment.ErrCorrupt, r.key, i, got, e.CRC)
		}
		want := f.chunkLogicalLen(i)
		if e.Raw {
			out = append(out, b...)
			continue
		}
		dst := out[len(out) : len(out)+int(want)]
		n, err := lz4.UncompressBlock(b, dst)
		if err != nil || int64(n) != want {
			return nil, nil, fmt.Errorf("%w: %s: chunk %d decodes to %d bytes (want %d): %v", segment.ErrCorrupt, r.key, i, n, want, err)
		}
		out = out[:len(out)+n]
	}
	base := int64(c0) * cs
	return [][]byte{out[from-base : to-base]}, nil, nil
}

// RemoteReader reads one uploaded segment object: it fetches the footer once (one ranged GET of the
// object's tail, a second only for footers beyond 64 KiB), then serves each read with one ranged GET.
// Safe for concurrent use.
type RemoteReader struct {
	store  Store
	key    string
	size   int64
	Footer *Footer
	ra     *readAhead // nil: no read-ahead (RemoteLog sets it)
	sem    *slots     // nil: no concurrency budget (RemoteLog sets it)
}

// OpenRemote reads key's footer. size is the object's size if known (from the manifest), else -1 (a Head).
func OpenRemote(ctx context.Context, s Store, key string, size int64) (*RemoteReader, error) {
	if size < 0 {
		info, err := s.Head(ctx, key)
		if err != nil {
			return nil, err
		}
		size = info.Size
	}
	if size < headerLenV1+tailLen {
		return nil, fmt.Errorf("%w: %s: object of %d bytes is too small", ErrBadFooter, key, size)
	}
	n := min(size, footerReadAhead)
	tail, err := ReadRange(ctx, s, key, size-n, n)
	if err != nil {
		return nil, err
	}
	flen, _, err := footerLenFromTail(tail)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", key, err)
	}
	if int64(flen) > size {
		return nil, fmt.Errorf("%w: %s: footer of %d bytes in a %d-byte object", ErrBadFooter, key, flen, size)
	}
	if flen > len(tail) {
		if tail, err = ReadRange(ctx, s, key, size-int64(flen), int64(flen)); err != nil {
			return nil, err
		}
	}
	f, err := DecodeFooter(tail, size)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", key, err)
	}
	return &RemoteReader{store: s, key: key, size: size, Footer: f}, nil
}

// readArrived is readLogicalParts(start, end) for a Read, which can do with fewer bytes: from the
// chunk cache it waits only for the bytes up to the second index entry after start, and takes as
// much more of [start, end) as has arrived by then (chunkCache.readPrefix); parse returns the whole
// batches among them. Two entries, not one: start is the entry at or below the Read's offset, and
// the first batch reaching that offset begins before the next entry, or at it when the offsets in
// between are missing (compaction, transaction markers' gaps); either way it ends by the entry
// after (index entries are batch starts). Objects stored as lz4 chunks and stores without the
// cache read [start, end) in full.
func (r *RemoteReader) readArrived(ctx context.Context, start, end int64) ([][]byte, *Hold, error) {
	co, ok := r.store.(*cachedObject)
	if !ok || co.key != r.key || r.Footer.Flags&FlagLZ4Chunks != 0 || end > co.size {
		return r.readLogicalParts(ctx, start, end)
	}
	need := min(end, r.Footer.nextPosition(r.Footer.nextPosition(start)))
	if err := r.sem.acquire(ctx, false); err != nil {
		return nil, nil, err
	}
	defer r.sem.release()
	return co.c.readPrefix(ctx, co.ref(), start, need, end)
}

// ReadResult is what RemoteReader.Read returns: whole batches and the offset after the last one.
type ReadResult struct {
	Data       []byte
	NextOffset int64
}

// Read returns whole batches starting with the one containing offset, at most maxBytes of them
// unless minOneBatch and the first is larger (then exactly that batch: Kafka's rule). One ranged GET;
// a second only when a single batch exceeds what the first fetched. Batches are CRC-checked.
// offset outside [BaseOffset, LastOffset]: segment.ErrOffsetOutOfRange.
func (r *RemoteReader) Read(ctx context.Context, offset int64, maxBytes int, minOneBatch bool) (ReadResult, error) {
	res, err := r.ReadParts(ctx, offset, maxBytes, minOneBatch)
	if err != nil {
		return ReadResult{}, err
	}
	return ReadResult{Data: joinReleasing(res.Parts, res.Hold), NextOffset: res.NextOffset}, nil
}

// ReadParts is Read with the batches as the consecutive cached chunk slices they span (parts.go):
// no copy into one buffer. The parts are shared: the caller must not modify them, and releases
// res.Hold once it no longer reads them.
func (r *RemoteReader) ReadParts(ctx context.Context, offset int64, maxBytes int, minOneBatch bool) (PartsResult, error) {
	f := r.Footer
	if offset < f.BaseOffset || offset > f.LastOffset {
		return PartsResult{}, fmt.Errorf("%w: offset %d not in remote segment %d..%d", segment.ErrOffsetOutOfRange, offset, f.BaseOffset, f.LastOffset)
	}
	start := int64(f.Offsets[f.floorOffset(offset)].Position)
	end := min(f.DataLen, f.nextPosition(start)+int64(max(maxBytes, 0)))
	var parts [][]byte
	var hold *Hold
	if r.ra != nil {
		parts, hold, _ = r.ra.take(ctx, start, end)
	}
	if parts == nil {
		var err error
		if parts, hold, err = r.readArrived(ctx, start, end); err != nil {
			return PartsResult{}, err
		}
	}
	res, err := r.parse(ctx, parts, hold, start, offset, maxBytes, minOneBatch)
	if err == nil && r.ra != nil && len(res.Parts) > 0 && res.NextOffset <= f.LastOffset {
		// A sequential consumer's next Read starts here: fetch it while this result is delivered.
		s2 := int64(f.Offsets[f.floorOffset(res.NextOffset)].Position)
		r.ra.launch(r, s2, min(f.DataLen, f.nextPosition(s2)+int64(max(maxBytes, 0))))
	}
	return res, err
}

// parse picks the batches of a Read out of parts, the logical bytes from position start, and
// checks their framing and CRC across parts. hold (parts's) goes to the result, or is released
// when parse fails or returns no batches.
func (r *RemoteReader) parse(ctx context.Context, parts [][]byte, hold *Hold, start, offset int64, maxBytes int, minOneBatch bool) (res PartsResult, err error) {
	defer func() {
		if err != nil || len(res.Parts) == 0 {
			hold.Release()
			res.Hold = nil
		} else {
			res.Hold = hold
		}
	}()
	res = PartsResult{NextOffset: offset}
	v := newPartsView(parts)
	n := v.len()
	var hb [segment.HeaderSize]byte
	from, p := -1, 0
	for p+segment.HeaderSize <= n {
		h, err := segment.ParseBatchHeader(v.header(p, hb[:]))
		if err != nil {
			return PartsResult{}, fmt.Errorf("tiering: %s at byte %d: %w", r.key, start+int64(p), err)
		}
		size := h.Size()
		if h.LastOffset() < offset {
			p += size
			continue
		}
		if from < 0 {
			from = p
		}
		if p+size > n || p+size-from > maxBytes {
			if p == from && minOneBatch {
				// The first batch alone exceeds the budget: return exactly it (second GET if needed).
				last := h.LastOffset()
				if p+size > n {
					b, h2, err := r.readLogicalParts(ctx, start+int64(p), start+int64(p)+int64(size))
					if err != nil {
						return PartsResult{}, err
					}
					hold = joinHolds(hold, h2)
					start += int64(p)
					v, n, from, p = newPartsView(b), size, 0, 0
				}
				p += size
				res.NextOffset = last + 1
			}
			break
		}
		p += size
		res.NextOffset = h.LastOffset() + 1
	}
	if from < 0 || p <= from {
		return res, nil
	}
	// A chunked object's bytes were checked on the way here: each chunk's CRC (readLogicalParts)
	// over bytes whose batches were all CRC-checked before the upload (BuildSegmentObjectWith), so
	// a batch CRC would check the same bytes twice. A verbatim object has no chunk CRC: its batch
	// CRCs are the only check of its bytes, made here unless the chunk's load made it as the
	// bytes arrived (arrival_check.go; its positions are the object's, as start's).
	verbatim := r.Footer.Flags&FlagLZ4Chunks == 0
	for q := from; q < p; {
		h, err := segment.ParseBatchHeader(v.header(q, hb[:]))
		if err == nil {
			at := start + int64(q)
			err = v.validateBatchAt(q, h, verbatim && !hold.checkedOnArrival(r.key, at, at+int64(h.Size())))
		}
		if err != nil {
			return PartsResult{}, fmt.Errorf("tiering: %s at byte %d: %w", r.key, start+int64(q), err)
		}
		q += h.Size()
	}
	res.Parts = v.slice(from, p)
	return res, nil
}

// OffsetForTimestamp returns the base offset and maxTimestamp of the first batch whose maxTimestamp is
// ≥ ts (batch granularity: the caller decodes that batch to find the exact record), with one ranged GET.
func (r *RemoteReader) OffsetForTimestamp(ctx context.Context, ts int64) (offset, timestamp int64, ok bool, err error) {
	from, to, ok := r.Footer.timeRange(ts)
	if !ok {
		return 0, 0, false, nil
	}
	buf, err := r.readLogical(ctx, from, to)
	if err != nil {
		return 0, 0, false, err
	}
	for p := 0; p+segment.HeaderSize <= len(buf); {
		h, err := segment.ParseBatchHeader(buf[p:])
		if err != nil {
			return 0, 0, false, fmt.Errorf("tiering: %s at byte %d: %w", r.key, from+int64(p), err)
		}
		if h.MaxTimestamp() >= ts {
			return h.BaseOffset(), h.MaxTimestamp(), true, nil
		}
		p += h.Size()
	}
	return 0, 0, false, fmt.Errorf("%w: %s: time index points at bytes [%d,%d) without a batch reaching %d", ErrBadFooter, r.key, from, to, ts)
}
