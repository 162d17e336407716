package segment

import (
	"encoding/binary"
	"fmt"
	"sort"
)

const (
	indexEntrySize     = 8  // relativeOffset int32, position int32
	timeIndexEntrySize = 12 // timestamp int64, relativeOffset int32
)

// offsetIndex is the sparse offset index of one segment, held in memory and
// written whole to the .index file when the segment is rolled or the log closed.
// An entry maps the last offset of a batch to the file position where that batch
// starts (Kafka's semantics), so the batch at the position always contains the
// entry's offset.
type offsetIndex struct {
	base       int64
	entries    []idxEntry
	maxEntries int
}

type idxEntry struct {
	rel int32 // offset - base
	pos int32 // byte position in the .log file
}

func (x *offsetIndex) full() bool { return len(x.entries) >= x.maxEntries }

func (x *offsetIndex) add(offset int64, pos int64) {
	if x.full() {
		return
	}
	rel := int32(offset - x.base)
	if n := len(x.entries); n > 0 && (x.entries[n-1].rel >= rel || int64(x.entries[n-1].pos) >= pos) {
		return // keep strictly increasing (a no-op duplicate)
	}
	x.entries = append(x.entries, idxEntry{rel: rel, pos: int32(pos)})
}

// lookup returns the entry with the largest offset <= target (offset, position);
// (base, 0) when there is none.
func (x *offsetIndex) lookup(target int64) (int64, int64) {
	rel := target - x.base
	i := sort.Search(len(x.entries), func(i int) bool { return int64(x.entries[i].rel) > rel })
	if i == 0 {
		return x.base, 0
	}
	e := x.entries[i-1]
	return x.base + int64(e.rel), int64(e.pos)
}

func (x *offsetIndex) encode() []byte {
	b := make([]byte, len(x.entries)*indexEntrySize)
	for i, e := range x.entries {
		binary.BigEndian.PutUint32(b[i*8:], uint32(e.rel))
		binary.BigEndian.PutUint32(b[i*8+4:], uint32(e.pos))
	}
	return b
}

// decodeOffsetIndex parses and sanity-checks an index file against its segment:
// whole entries, offsets and positions strictly increasing, inside the segment.
func decodeOffsetIndex(b []byte, base int64, maxEntries int, segSize int64) (offsetIndex, error) {
	x := offsetIndex{base: base, maxEntries: maxEntries}
	if len(b)%indexEntrySize != 0 {
		return x, fmt.Errorf("%w: index size %d not a multiple of %d", ErrCorrupt, len(b), indexEntrySize)
	}
	n := len(b) / indexEntrySize
	x.entries = make([]idxEntry, 0, n)
	for i := 0; i < n; i++ {
		e := idxEntry{rel: int32(binary.BigEndian.Uint32(b[i*8:])), pos: int32(binary.BigEndian.Uint32(b[i*8+4:]))}
		if e.rel < 0 || e.pos < 0 || int64(e.pos) >= segSize {
			return x, fmt.Errorf("%w: index entry %d (offset %d, position %d) outside the segment (%d bytes)", ErrCorrupt, i, base+int64(e.rel), e.pos, segSize)
		}
		if i > 0 {
			p := x.entries[i-1]
			if e.rel <= p.rel || e.pos <= p.pos {
				return x, fmt.Errorf("%w: index entry %d at byte %d not increasing", ErrCorrupt, i, i*indexEntrySize)
			}
		}
		x.entries = append(x.entries, e)
	}
	return x, nil
}

// timeIndex maps a batch max timestamp to an offset (relative): entry i says that
// every batch before offset base+rel has a max timestamp <= ts, and ts is the
// largest timestamp seen so far. Timestamps and offsets strictly increase.
type timeIndex struct {
	base       int64
	entries    []tsEntry
	maxEntries int
}

type tsEntry struct {
	ts  int64
	rel int32
}

// capacity is how many entries appends and scans may add: as Kafka's
// TimeIndex.isFull, the last of maxEntries is kept for the final entry (the
// segment's maximum, added with force when it is rolled or closed), so even a
// rebuild of a segment holding more batches than its index has room for (one
// written under another index.interval.bytes) stays within segment.index.bytes.
func (x *timeIndex) capacity() int { return x.maxEntries - 1 }

func (x *timeIndex) full() bool { return len(x.entries) >= x.capacity() }

// maybeAdd appends (ts, offset) if ts is larger than the last entry's; force
// ignores fullness (the final entry written when a segment becomes inactive).
func (x *timeIndex) maybeAdd(ts, offset int64, force bool) {
	if ts < 0 || (!force && x.full()) {
		return
	}
	rel := int32(offset - x.base)
	if n := len(x.entries); n > 0 {
		last := x.entries[n-1]
		if ts <= last.ts || rel < last.rel {
			return
		}
		if rel == last.rel {
			x.entries[n-1].ts = ts
			return
		}
	}
	x.entries = append(x.entries, tsEntry{ts: ts, rel: rel})
}

// lookup returns the offset of the entry with the largest timestamp <= ts, or the
// base offset when none.
func (x *timeIndex) lookup(ts int64) int64 {
	i := sort.Search(len(x.entries), func(i int) bool { return x.entries[i].ts > ts })
	if i == 0 {
		return x.base
	}
	return x.base + int64(x.entries[i-1].rel)
}

func (x *timeIndex) last() (tsEntry, bool) {
	if len(x.entries) == 0 {
		return tsEntry{}, false
	}
	return x.entries[len(x.entries)-1], true
}

func (x *timeIndex) encode() []byte {
	b := make([]byte, len(x.entries)*timeIndexEntrySize)
	for i, e := range x.entries {
		binary.BigEndian.PutUint64(b[i*12:], uint64(e.ts))
		binary.BigEndian.PutUint32(b[i*12+8:], uint32(e.rel))
	}
	return b
}

func decodeTimeIndex(b []byte, base int64, maxEntries int, next int64) (timeIndex, error) {
	x := timeIndex{base: base, maxEntries: maxEntries}
	if len(b)%timeIndexEntrySize != 0 {
		return x, fmt.Errorf("%w: time index size %d not a multiple of %d", ErrCorrupt, len(b), timeIndexEntrySize)
	}
	n := len(b) / timeIndexEntrySize
	x.entries = make([]tsEntry, 0, n)
	for i := 0; i < n; i++ {
		e := tsEntry{ts: int64(binary.BigEndian.Uint64(b[i*12:])), rel: int32(binary.BigEndian.Uint32(b[i*12+8:]))}
		if e.rel < 0 || (next >= 0 && base+int64(e.rel) >= next) {
			return x, fmt.Errorf("%w: time index entry %d offset %d outside the segment", ErrCorrupt, i, base+int64(e.rel))
		}
		if i > 0 {
			p := x.entries[i-1]
			if e.ts <= p.ts || e.rel < p.rel {
				return x, fmt.Errorf("%w: time index entry %d at byte %d not increasing", ErrCorrupt, i, i*timeIndexEntrySize)
			}
		}
		x.entries = append(x.entries, e)
	}
	return x, nil
}
