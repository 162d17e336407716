package tiering

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"sort"
)

// The remote segment object format: see doc.go for the byte diagram and the versioning rules.

const (
	// FormatVersion is the newest object format this code writes; it reads 1 and 2.
	FormatVersion = 2
	// footerMagic ends every object.
	footerMagic = "SDRS"
	// tailLen is the fixed tail (footerLen, version, reserved, footerCRC, magic), identical in all versions.
	tailLen = 16
	// headerLenV1 and headerLenV2 are the header sizes; later versions only append fields.
	headerLenV1   = 80
	headerLenV2   = 96
	chunkEntryLen = 12
	offEntryLen   = 8
	timeEntryLen  = 16
	// FlagLZ4Chunks marks a data section stored as independently decodable lz4 blocks (v2).
	FlagLZ4Chunks = 1
	// DefaultChunkSize is the logical (uncompressed) size of one lz4 chunk.
	DefaultChunkSize = 64 << 10
	minChunkSize     = 4 << 10
	maxChunkSize     = 16 << 20
	chunkRawBit      = 1 << 31
	// DefaultIndexInterval is the byte spacing of index entries (Kafka's index.interval.bytes).
	DefaultIndexInterval = 4096
	// footerReadAhead is how much of an object's end a reader fetches to find the footer in one GET.
	footerReadAhead = 64 << 10
	// maxFooterLen bounds what a decoder accepts (a 2 GiB segment of tiny batches at interval 1 stays below).
	maxFooterLen = 1 << 30
)

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// ErrBadFooter: an object's footer failed validation (magic, CRC, lengths, ordering).
var ErrBadFooter = errors.New("tiering: bad segment object footer")

// ErrUnsupportedVersion: the object was written by a newer format version than this code reads.
var ErrUnsupportedVersion = errors.New("tiering: unsupported segment object version")

// OffsetEntry maps a batch's base offset (as a delta from the object's base offset) to its byte
// position in the data section.
type OffsetEntry struct {
	OffsetDelta uint32
	Position    uint32
}

// TimeEntry: Timestamp is the largest batch maxTimestamp in the object up to and including the batch
// at OffsetDelta/Position (a running maximum, so entries strictly increase).
type TimeEntry struct {
	Timestamp   int64
	OffsetDelta uint32
	Position    uint32
}

// Footer is the decoded index of a segment object.
type Footer struct {
	Version            uint16
	BaseOffset         int64 // first offset of the first batch
	LastOffset         int64 // last offset of the last batch
	FirstTimestamp     int64 // the first batch's firstTimestamp
	MaxTimestamp       int64 // largest batch maxTimestamp
	MaxTimestampOffset int64 // last offset of the (first) batch holding MaxTimestamp
	DataLen            int64
	DataCRC            uint32 // CRC-32C of the data section
	BatchCount         uint32
	RecordCount        uint32
	IndexInterval      uint32
	Flags              uint32 // FlagLZ4Chunks, or 0: data stored verbatim
	// v2: the chunking of the data section (ChunkSize 0 and no Chunks when stored verbatim). DataLen and
	// every index position are logical (uncompressed segment) bytes; StoredLen is the data section's
	// size in the object.
	ChunkSize uint32
	StoredLen int64
	Chunks    []ChunkEntry
	Offsets   []OffsetEntry
	Times     []TimeEntry
}

// ChunkEntry locates one chunk of ChunkSize logical bytes (the last may be shorter) in the stored data
// section. Raw chunks are stored uncompressed (lz4 did not shrink them).
type ChunkEntry struct {
	StoredPos uint32
	StoredLen uint32
	Raw       bool
	CRC       uint32 // CRC-32C of the stored bytes: every ranged read verifies the chunks it fetched
}

// storedRange maps the logical byte range [from, to) (to > from) to the chunks holding it: chunk
// indexes [c0, c1] and the stored byte range [sFrom, sTo) to fetch.
func (f *Footer) storedRange(from, to int64) (c0, c1 int, sFrom, sTo int64) {
	if f.Flags&FlagLZ4Chunks == 0 {
		return 0, 0, from, to
	}
	cs := int64(f.ChunkSize)
	c0, c1 = int(from/cs), int((to-1)/cs)
	return c0, c1, int64(f.Chunks[c0].StoredPos), int64(f.Chunks[c1].StoredPos) + int64(f.Chunks[c1].StoredLen)
}

// chunkLogicalLen is the uncompressed length of chunk i.
func (f *Footer) chunkLogicalLen(i int) int64 {
	cs := int64(f.ChunkSize)
	return min(cs, f.DataLen-int64(i)*cs)
}

// FooterLen is the encoded size of f.
func (f *Footer) FooterLen() int {
	return headerLenV2 + chunkEntryLen*len(f.Chunks) + offEntryLen*len(f.Offsets) + timeEntryLen*len(f.Times) + tailLen
}

// AppendFooter encodes f (as version FormatVersion) after dst.
func AppendFooter(dst []byte, f *Footer) []byte {
	start := len(dst)
	be := binary.BigEndian
	dst = be.AppendUint32(dst, headerLenV2)
	dst = be.AppendUint64(dst, uint64(f.BaseOffset))
	dst = be.AppendUint64(dst, uint64(f.LastOffset))
	dst = be.AppendUint64(dst, uint64(f.FirstTimestamp))
	dst = be.AppendUint64(dst, uint64(f.MaxTimestamp))
	dst = be.AppendUint64(dst, uint64(f.MaxTimestampOffset))
	dst = be.AppendUint64(dst, uint64(f.DataLen))
	dst = be.AppendUint32(dst, f.DataCRC)
	dst = be.AppendUint32(dst, f.BatchCount)
	dst = be.AppendUint32(dst, f.RecordCount)
	dst = be.AppendUint32(dst, uint32(len(f.Offsets)))
	dst = be.AppendUint32(dst, uint32(len(f.Times)))
	dst = be.AppendUint32(dst, f.IndexInterval)
	dst = be.AppendUint32(dst, f.Flags)
	dst = be.AppendUint32(dst, f.ChunkSize)
	dst = be.AppendUint32(dst, uint32(len(f.Chunks)))
	dst = be.AppendUint64(dst, uint64(f.StoredLen))
	for _, c := range f.Chunks {
		l := c.StoredLen
		if c.Raw {
			l |= chunkRawBit
		}
		dst = be.AppendUint32(dst, c.StoredPos)
		dst = be.AppendUint32(dst, l)
		dst = be.AppendUint32(dst, c.CRC)
	}
	for _, e := range f.Offsets {
		dst = be.AppendUint32(dst, e.OffsetDelta)
		dst = be.AppendUint32(dst, e.Position)
	}
	for _, e := range f.Times {
		dst = be.AppendUint64(dst, uint64(e.Timestamp))
		dst = be.AppendUint32(dst, e.OffsetDelta)
		dst = be.AppendUint32(dst, e.Position)
	}
	footerLen := len(dst) - start + tailLen
	dst = be.AppendUint32(dst, uint32(footerLen))
	dst = be.AppendUint16(dst, FormatVersion)
	dst = be.AppendUint16(dst, 0)
	dst = be.AppendUint32(dst, crc32.Checksum(dst[start:], castagnoli))
	return append(dst, footerMagic...)
}

// footerLenFromTail reads the footer length from an object's last tailLen bytes (after checking magic
// and version), so a reader knows how much more to fetch when its first read was too short.
func footerLenFromTail(tail []byte) (int, uint16, error) {
	if len(tail) < tailLen {
		return 0, 0, fmt.Errorf("%w: %d bytes, shorter than the %d-byte tail", ErrBadFooter, len(tail), tailLen)
	}
	t := tail[len(tail)-tailLen:]
	if string(t[12:16]) != footerMagic {
		return 0, 0, fmt.Errorf("%w: magic %q, want %q", ErrBadFooter, t[12:16], footerMagic)
	}
	v := binary.BigEndian.Uint16(t[4:])
	if v == 0 || v > FormatVersion {
		return 0, v, fmt.Errorf("%w: version %d (this build reads 1..%d)", ErrUnsupportedVersion, v, FormatVersion)
	}
	if r := binary.BigEndian.Uint16(t[6:]); r != 0 {
		return 0, v, fmt.Errorf("%w: reserved tail field %#x, want 0", ErrBadFooter, r)
	}
	n := binary.BigEndian.Uint32(t[0:])
	if n < headerLenV1+tailLen || n > maxFooterLen {
		return 0, v, fmt.Errorf("%w: footer length %d", ErrBadFooter, n)
	}
	return int(n), v, nil
}

// DecodeFooter decodes the footer at the end of b, which holds at least the object's last footerLen
// bytes (more before them is ignored). objectSize, when ≥ 0, must equal DataLen + footerLen.
// It validates everything a reader later relies on, so a Footer it returns is safe to index with.
func DecodeFooter(b []byte, objectSize int64) (*Footer, error) {
	n, version, err := footerLenFromTail(b)
	if err != nil {
		return nil, err
	}
	if n > len(b) {
		return nil, fmt.Errorf("%w: footer of %d bytes, only %d given", ErrBadFooter, n, len(b))
	}
	fb := b[len(b)-n:]
	be := binary.BigEndian
	if got, want := crc32.Checksum(fb[:n-8], castagnoli), be.Uint32(fb[n-8:]); got != want {
		return nil, fmt.Errorf("%w: CRC %08x, stored %08x", ErrBadFooter, got, want)
	}
	bad := func(format string, a ...any) error {
		return fmt.Errorf("%w: %s", ErrBadFooter, fmt.Sprintf(format, a...))
	}
	hl := be.Uint32(fb)
	minHL := uint32(headerLenV1)
	if version >= 2 {
		minHL = headerLenV2
	}
	if hl < minHL || int64(hl) > int64(n-tailLen) {
		return nil, bad("header length %d (version %d needs ≥ %d)", hl, version, minHL)
	}
	f := &Footer{
		Version:            version,
		BaseOffset:         int64(be.Uint64(fb[4:])),
		LastOffset:         int64(be.Uint64(fb[12:])),
		FirstTimestamp:     int64(be.Uint64(fb[20:])),
		MaxTimestamp:       int64(be.Uint64(fb[28:])),
		MaxTimestampOffset: int64(be.Uint64(fb[36:])),
		DataLen:            int64(be.Uint64(fb[44:])),
		DataCRC:            be.Uint32(fb[52:]),
		BatchCount:         be.Uint32(fb[56:]),
		RecordCount:        be.Uint32(fb[60:]),
		IndexInterval:      be.Uint32(fb[72:]),
		Flags:              be.Uint32(fb[76:]),
	}
	nOff, nTime := be.Uint32(fb[64:]), be.Uint32(fb[68:])
	var nChunk uint32
	f.StoredLen = f.DataLen // v1: verbatim
	if version >= 2 {
		f.ChunkSize, nChunk, f.StoredLen = be.Uint32(fb[80:]), be.Uint32(fb[84:]), int64(be.Uint64(fb[88:]))
	}
	// Fields a newer minor layout appends to the header (hl beyond this version's size) are skipped.
	if want := int64(hl) + chunkEntryLen*int64(nChunk) + offEntryLen*int64(nOff) + timeEntryLen*int64(nTime) + tailLen; want != int64(n) {
		return nil, bad("footer length %d, header and %d+%d+%d entries need %d", n, nChunk, nOff, nTime, want)
	}
	switch {
	case f.BaseOffset < 0 || f.LastOffset < f.BaseOffset || f.LastOffset-f.BaseOffset > 1<<32-1:
		return nil, bad("offsets %d..%d", f.BaseOffset, f.LastOffset)
	case f.DataLen <= 0 || f.DataLen > 1<<32-1:
		return nil, bad("data length %d", f.DataLen)
	case f.StoredLen <= 0 || f.StoredLen > 1<<32-1:
		return nil, bad("stored data length %d", f.StoredLen)
	case objectSize >= 0 && objectSize != f.StoredLen+int64(n):
		return nil, bad("object size %d, footer says %d data + %d footer", objectSize, f.StoredLen, n)
	case f.BatchCount == 0 || nOff == 0 || nOff > f.BatchCount || nTime > f.BatchCount:
		return nil, bad("%d batches, %d offset and %d time entries", f.BatchCount, nOff, nTime)
	case f.Flags&^FlagLZ4Chunks != 0 || (version < 2 && f.Flags != 0):
		return nil, bad("flags %#x unknown to version %d", f.Flags, version)
	case f.Flags == 0 && (f.ChunkSize != 0 || nChunk != 0 || f.StoredLen != f.DataLen):
		return nil, bad("verbatim data with chunking fields (%d, %d, stored %d)", f.ChunkSize, nChunk, f.StoredLen)
	case f.Flags&FlagLZ4Chunks != 0 && (f.ChunkSize < minChunkSize || f.ChunkSize > maxChunkSize ||
		int64(nChunk) != (f.DataLen+int64(f.ChunkSize)-1)/int64(f.ChunkSize)):
		return nil, bad("chunk size %d with %d chunks for %d bytes", f.ChunkSize, nChunk, f.DataLen)
	case f.MaxTimestampOffset < f.BaseOffset || f.MaxTimestampOffset > f.LastOffset:
		return nil, bad("max timestamp offset %d outside %d..%d", f.MaxTimestampOffset, f.BaseOffset, f.LastOffset)
	}
	span := uint64(f.LastOffset - f.BaseOffset)
	p := fb[hl:]
	if nChunk > 0 {
		f.Chunks = make([]ChunkEntry, nChunk)
		var pos int64
		for i := range f.Chunks {
			sp, sl, sc := be.Uint32(p), be.Uint32(p[4:]), be.Uint32(p[8:])
			p = p[chunkEntryLen:]
			c := ChunkEntry{StoredPos: sp, StoredLen: sl &^ chunkRawBit, Raw: sl&chunkRawBit != 0, CRC: sc}
			if int64(c.StoredPos) != pos || c.StoredLen == 0 || (c.Raw && int64(c.StoredLen) != f.chunkLogicalLen(i)) {
				return nil, bad("chunk %d %+v (expected at %d)", i, c, pos)
			}
			pos += int64(c.StoredLen)
			f.Chunks[i] = c
		}
		if pos != f.StoredLen {
			return nil, bad("chunks end at %d, stored length %d", pos, f.StoredLen)
		}
	}
	f.Offsets = make([]OffsetEntry, nOff)
	for i := range f.Offsets {
		e := OffsetEntry{OffsetDelta: be.Uint32(p), Position: be.Uint32(p[4:])}
		p = p[offEntryLen:]
		if i == 0 && (e.OffsetDelta != 0 || e.Position != 0) {
			return nil, bad("first offset entry %+v, want the first batch at 0", e)
		}
		if i > 0 && (e.OffsetDelta <= f.Offsets[i-1].OffsetDelta || e.Position <= f.Offsets[i-1].Position) {
			return nil, bad("offset entry %d %+v not after %+v", i, e, f.Offsets[i-1])
		}
		if uint64(e.OffsetDelta) > span || int64(e.Position) >= f.DataLen {
			return nil, bad("offset entry %d %+v outside the segment", i, e)
		}
		f.Offsets[i] = e
	}
	f.Times = make([]TimeEntry, nTime)
	for i := range f.Times {
		e := TimeEntry{Timestamp: int64(be.Uint64(p)), OffsetDelta: be.Uint32(p[8:]), Position: be.Uint32(p[12:])}
		p = p[timeEntryLen:]
		if i > 0 && (e.Timestamp <= f.Times[i-1].Timestamp || e.OffsetDelta <= f.Times[i-1].OffsetDelta || e.Position <= f.Times[i-1].Position) {
			return nil, bad("time entry %d %+v not after %+v", i, e, f.Times[i-1])
		}
		if uint64(e.OffsetDelta) > span || int64(e.Position) >= f.DataLen || e.Timestamp > f.MaxTimestamp {
			return nil, bad("time entry %d %+v outside the segment", i, e)
		}
		f.Times[i] = e
	}
	return f, nil
}

// floorOffset returns the index of the last offset entry whose offset is ≤ offset (offset within range).
func (f *Footer) floorOffset(offset int64) int {
	d := uint32(offset - f.BaseOffset)
	i := sort.Search(len(f.Offsets), func(i int) bool { return f.Offsets[i].OffsetDelta > d })
	return max(i-1, 0)
}

// nextPosition returns the position of the first offset entry after pos, or DataLen.
func (f *Footer) nextPosition(pos int64) int64 {
	i := sort.Search(len(f.Offsets), func(i int) bool { return int64(f.Offsets[i].Position) > pos })
	if i < len(f.Offsets) {
		return int64(f.Offsets[i].Position)
	}
	return f.DataLen
}

// timeRange returns the byte range [from, to) of the data section that holds the first batch whose
// maxTimestamp ≥ ts; ok=false when no batch in the object reaches ts.
func (f *Footer) timeRange(ts int64) (from, to int64, ok bool) {
	if ts > f.MaxTimestamp {
		return 0, 0, false
	}
	j := sort.Search(len(f.Times), func(i int) bool { return f.Times[i].Timestamp >= ts })
	if j == len(f.Times) { // the writer always indexes the final maximum; tolerate a footer without times
		if j == 0 {
			return 0, f.DataLen, true
		}
		return int64(f.Times[j-1].Position), f.DataLen, true
	}
	if j > 0 {
		from = int64(f.Times[j-1].Position)
	}
	return from, f.nextPosition(int64(f.Times[j].Position)), true
}
