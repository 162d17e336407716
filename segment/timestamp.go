package segment

import (
	"encoding/binary"
	"errors"
)

// RecordAtOrAfter finds, in one whole batch (as stored, fetched, or read back
// from object storage), the first record whose timestamp is >= ts and whose
// offset is >= minOffset: what OffsetForTimestamp does for the batch the time
// index leads to, for callers holding batch bytes from elsewhere. ok=false
// when no record qualifies or the batch cannot be decoded (bad framing, short,
// corrupt records); callers then answer at batch granularity. Never panics on
// bad input; a compressed batch is inflated with a bound.
func RecordAtOrAfter(batch []byte, ts, minOffset int64) (offset, timestamp int64, ok bool) {
	h, err := ParseBatchHeader(batch)
	if err != nil || len(batch) < h.Size() || h.RecordCount() < 0 {
		return 0, 0, false
	}
	return recordAtOrAfter(batch[:h.Size()], ts, minOffset)
}

// recordAtOrAfter finds, inside one whole batch, the first record whose
// timestamp is >= ts and whose offset is >= minOffset (Kafka's
// searchForTimestamp). Compressed batches are inflated with a bound; any
// failure returns ok=false and the caller falls back to batch granularity.
func recordAtOrAfter(batch []byte, ts, minOffset int64) (offset, timestamp int64, ok bool) {
	h := BatchHeader(batch)
	if h.TimestampType() == 1 { // LogAppendTime: every record carries maxTimestamp
		if h.MaxTimestamp() >= ts {
			return max(h.BaseOffset(), minOffset), h.MaxTimestamp(), true
		}
		return 0, 0, false
	}
	recs := batch[HeaderSize:]
	if c := h.Compression(); c != CodecNone {
		var err error
		// Records are at least 7 bytes; a batch cannot legitimately inflate to
		// much more than its count allows, and 64 MiB bounds any bomb.
		if recs, err = Decompress(c, recs, min(64<<20, int(h.RecordCount())*(1<<20)+1<<10)); err != nil {
			return 0, 0, false
		}
	}
	base, baseTs := h.BaseOffset(), h.FirstTimestamp()
	for i, p := int32(0), 0; i < h.RecordCount(); i++ {
		n, off, rts, err := parseRecordTimes(recs[p:])
		if err != nil {
			return 0, 0, false
		}
		o := base + off
		if t := baseTs + rts; t >= ts && o >= minOffset {
			return o, t, true
		}
		p += n
	}
	return 0, 0, false
}

var errRecord = errors.New("bad record")

// parseRecordTimes reads a record's length, timestamp delta and offset delta,
// returning the record's total size.
func parseRecordTimes(b []byte) (size int, offDelta, tsDelta int64, err error) {
	length, n := binary.Varint(b)
	if n <= 0 || length < 0 || int64(len(b)-n) < length {
		return 0, 0, 0, errRecord
	}
	rec := b[n : n+int(length)]
	if len(rec) < 1 {
		return 0, 0, 0, errRecord
	}
	q := 1 // attributes
	tsDelta, m := binary.Varint(rec[q:])
	if m <= 0 {
		return 0, 0, 0, errRecord
	}
	q += m
	offDelta, m = binary.Varint(rec[q:])
	if m <= 0 || offDelta < 0 {
		return 0, 0, 0, errRecord
	}
	return n + int(length), offDelta, tsDelta, nil
}
