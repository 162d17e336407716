package segment

import (
	"encoding/binary"
	"fmt"
	"hash/crc32"
)

// RecordBatch v2 header layout (big-endian). See doc.go for the diagram.
const (
	offBaseOffset      = 0
	offBatchLength     = 8
	offLeaderEpoch     = 12
	offMagic           = 16
	offCRC             = 17
	offAttributes      = 21
	offLastOffsetDelta = 23
	offBaseTimestamp   = 27
	offMaxTimestamp    = 35
	offProducerID      = 43
	offProducerEpoch   = 51
	offBaseSequence    = 53
	offRecordCount     = 57

	// HeaderSize is the size of a RecordBatch v2 header, records excluded.
	HeaderSize = 61
	// logOverhead is baseOffset + batchLength: the bytes not counted by batchLength.
	logOverhead = 12
	// minBatchLength is the smallest legal batchLength (a header with no records).
	minBatchLength = HeaderSize - logOverhead
)

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// Codec is the compression codec in attributes bits 0-2.
type Codec int8

const (
	CodecNone   Codec = 0
	CodecGzip   Codec = 1
	CodecSnappy Codec = 2
	CodecLZ4    Codec = 3
	CodecZstd   Codec = 4
)

func (c Codec) String() string {
	switch c {
	case CodecNone:
		return "none"
	case CodecGzip:
		return "gzip"
	case CodecSnappy:
		return "snappy"
	case CodecLZ4:
		return "lz4"
	case CodecZstd:
		return "zstd"
	}
	return fmt.Sprintf("codec(%d)", int8(c))
}

// BatchHeader is a zero-copy view of the first 61 bytes of a RecordBatch v2.
// Methods read the bytes in place; the setters write them in place.
type BatchHeader []byte

// ParseBatchHeader checks that b starts with a plausible v2 header (length, magic)
// and returns a view of it. It does not check the CRC (ValidateBatch does).
func ParseBatchHeader(b []byte) (BatchHeader, error) {
	if len(b) < HeaderSize {
		return nil, fmt.Errorf("%w: %d bytes, a batch header needs %d", ErrCorrupt, len(b), HeaderSize)
	}
	h := BatchHeader(b[:HeaderSize:HeaderSize])
	if err := h.check(); err != nil {
		return nil, err
	}
	return h, nil
}

// check validates the fields that frame the batch (not the CRC).
func (h BatchHeader) check() error {
	if m := h.Magic(); m != 2 {
		return fmt.Errorf("%w: magic %d, want 2", ErrCorrupt, m)
	}
	if l := h.BatchLength(); l < minBatchLength {
		return fmt.Errorf("%w: batch length %d below the minimum %d", ErrCorrupt, l, minBatchLength)
	}
	if d := h.LastOffsetDelta(); d < 0 {
		return fmt.Errorf("%w: negative lastOffsetDelta %d", ErrCorrupt, d)
	}
	if o := h.BaseOffset(); o < 0 || o > (1<<63-1)-int64(h.LastOffsetDelta()) {
		return fmt.Errorf("%w: base offset %d out of range", ErrCorrupt, o)
	}
	return nil
}

func (h BatchHeader) BaseOffset() int64 { return int64(binary.BigEndian.Uint64(h[offBaseOffset:])) }
func (h BatchHeader) BatchLength() int32 {
	return int32(binary.BigEndian.Uint32(h[offBatchLength:]))
}
func (h BatchHeader) PartitionLeaderEpoch() int32 {
	return int32(binary.BigEndian.Uint32(h[offLeaderEpoch:]))
}
func (h BatchHeader) Magic() int8       { return int8(h[offMagic]) }
func (h BatchHeader) CRC() uint32       { return binary.BigEndian.Uint32(h[offCRC:]) }
func (h BatchHeader) Attributes() int16 { return int16(binary.BigEndian.Uint16(h[offAttributes:])) }
func (h BatchHeader) Compression() Codec {
	return Codec(h.Attributes() & 0x7)
}

// TimestampType is 0 for CreateTime, 1 for LogAppendTime.
func (h BatchHeader) TimestampType() int {
	return int(h.Attributes()>>3) & 1
}
func (h BatchHeader) IsTransactional() bool { return h.Attributes()&0x10 != 0 }
func (h BatchHeader) IsControl() bool       { return h.Attributes()&0x20 != 0 }
func (h BatchHeader) LastOffsetDelta() int32 {
	return int32(binary.BigEndian.Uint32(h[offLastOffsetDelta:]))
}
func (h BatchHeader) LastOffset() int64 { return h.BaseOffset() + int64(h.LastOffsetDelta()) }
func (h BatchHeader) FirstTimestamp() int64 {
	return int64(binary.BigEndian.Uint64(h[offBaseTimestamp:]))
}
func (h BatchHeader) MaxTimestamp() int64 {
	return int64(binary.BigEndian.Uint64(h[offMaxTimestamp:]))
}
func (h BatchHeader) ProducerID() int64 { return int64(binary.BigEndian.Uint64(h[offProducerID:])) }
func (h BatchHeader) ProducerEpoch() int16 {
	return int16(binary.BigEndian.Uint16(h[offProducerEpoch:]))
}
func (h BatchHeader) BaseSequence() int32 {
	return int32(binary.BigEndian.Uint32(h[offBaseSequence:]))
}
func (h BatchHeader) RecordCount() int32 {
	return int32(binary.BigEndian.Uint32(h[offRecordCount:]))
}

// Size is the whole batch's size on the wire and on disk: 12 + batchLength.
func (h BatchHeader) Size() int { return logOverhead + int(h.BatchLength()) }

// SetBaseOffset and SetPartitionLeaderEpoch write fields the CRC does not cover.
func (h BatchHeader) SetBaseOffset(o int64) { binary.BigEndian.PutUint64(h[offBaseOffset:], uint64(o)) }
func (h BatchHeader) SetPartitionLeaderEpoch(e int32) {
	binary.BigEndian.PutUint32(h[offLeaderEpoch:], uint32(e))
}

// batchCRC computes the CRC-32C of a whole batch (attributes to the end).
func batchCRC(b []byte) uint32 { return crc32.Checksum(b[offAttributes:], castagnoli) }

// ValidateBatch checks that b is exactly one RecordBatch v2: framing, magic and CRC-32C.
func ValidateBatch(b []byte) error {
	h, err := ParseBatchHeader(b)
	if err != nil {
		return err
	}
	if h.Size() != len(b) {
		return fmt.Errorf("%w: batch length says %d bytes, have %d", ErrCorrupt, h.Size(), len(b))
	}
	if got, want := batchCRC(b), h.CRC(); got != want {
		return fmt.Errorf("%w: crc32c %08x, header says %08x", ErrCorrupt, got, want)
	}
	return nil
}

// nextBatch validates the batch starting at b[0:] and returns its header and size.
// It is SplitBatches' step, exposed internally so the append path does not allocate.
func nextBatch(b []byte) (BatchHeader, int, error) {
	h, err := ParseBatchHeader(b)
	if err != nil {
		return nil, 0, err
	}
	n := h.Size()
	if n > len(b) {
		return nil, 0, fmt.Errorf("%w: batch of %d bytes truncated to %d", ErrCorrupt, n, len(b))
	}
	if got, want := batchCRC(b[:n]), h.CRC(); got != want {
		return nil, 0, fmt.Errorf("%w: crc32c %08x, header says %08x", ErrCorrupt, got, want)
	}
	return h, n, nil
}

// SplitBatches walks concatenated batches, validating each (framing, magic, CRC),
// and returns a header view of each. An error names the byte position of the
// offending batch within b.
func SplitBatches(b []byte) ([]BatchHeader, error) {
	var out []BatchHeader
	for pos := 0; pos < len(b); {
		h, n, err := nextBatch(b[pos:])
		if err != nil {
			return nil, fmt.Errorf("batch at byte %d: %w", pos, err)
		}
		out = append(out, h)
		pos += n
	}
	return out, nil
}

// SetLogAppendTime marks a batch as LogAppendTime with timestamp ts: it sets the
// timestamp-type bit, maxTimestamp and the first timestamp to ts (consumers take
// every record's timestamp from maxTimestamp for LogAppendTime batches) and
// recomputes the CRC. batch must be one whole batch; short input is left untouched.
func SetLogAppendTime(batch []byte, ts int64) {
	if len(batch) < HeaderSize {
		return
	}
	attrs := binary.BigEndian.Uint16(batch[offAttributes:]) | 0x8
	binary.BigEndian.PutUint16(batch[offAttributes:], attrs)
	binary.BigEndian.PutUint64(batch[offBaseTimestamp:], uint64(ts))
	binary.BigEndian.PutUint64(batch[offMaxTimestamp:], uint64(ts))
	binary.BigEndian.PutUint32(batch[offCRC:], batchCRC(batch))
}
