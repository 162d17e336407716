package tiering

import (
	"math"
	"sort"
	"sync/atomic"

	"github.com/sediment-io/sediment/segment"
)

// Checking batches as their bytes arrive.
//
// A segment object stored verbatim has no checksum of its own over its data: the batches' CRC-32Cs
// are the only check of its bytes, and every read from the bucket checks the batches it returns
// (RemoteReader.parse). Done there, the check runs on the path between a consumer's Fetch and its
// response, over bytes that arrived from the store long before and have left the CPU's caches. In
// sediment bench's replays from the bucket (2026-11-24) it was 23 % of the broker's CPU samples:
// CRC-32C ran at about 8 GB/s over such cold bytes here, against 27 GB/s over 256 KiB just written.
//
// So a chunk load checks the batches itself, each as soon as its last byte has arrived (readInto
// delivers 256 KiB at a time), and records per chunk the span of batches it checked
// (chunkEntry.checkedFrom/checkedTo). A read whose batch lies in that span skips its own check
// (Hold.checkedOnArrival). The load only ever marks batches as checked; it never fails a read. A
// batch it cannot check — one that straddles two loads, or whose CRC does not match — is left to
// the read, which checks it and reports a mismatch as it always did (segment.ErrCorrupt, which the
// broker answers with KAFKA_STORAGE_ERROR).
//
// Why a read may trust the span: batches follow each other, each header giving the next one's
// position. The load walks that chain from a batch start the footer's offset index names (or
// position 0), and a read walks it from an index entry or where its previous read ended. Both are
// batch starts of the same immutable bytes, so both walks visit the same batches, and a batch a read
// finds inside a chunk's span is one the load checked.

// batchLocator says where batches start in an object's data section.
type batchLocator interface {
	// firstBatchFrom returns the position of the first batch starting at or after pos, and the end
	// of the data section (math.MaxInt64 if not known); ok=false when no batch start is known there.
	firstBatchFrom(pos int64) (start, dataEnd int64, ok bool)
}

// firstBatchFrom implements batchLocator from the offset index: every index entry is a batch start.
// Objects stored as lz4 chunks have none to offer (their stored bytes are not batches; their chunk
// CRCs are checked instead).
func (f *Footer) firstBatchFrom(pos int64) (start, dataEnd int64, ok bool) {
	if f.Flags&FlagLZ4Chunks != 0 || pos >= f.DataLen {
		return 0, 0, false
	}
	i := sort.Search(len(f.Offsets), func(i int) bool { return int64(f.Offsets[i].Position) >= pos })
	if i == len(f.Offsets) {
		return 0, 0, false
	}
	return int64(f.Offsets[i].Position), f.DataLen, true
}

// objectStart is the batchLocator of an object whose footer has not been read yet
// (chunkCache.loadFirst): a verbatim object's data section, and so its first batch, starts at 0.
// An object stored as lz4 chunks fails the first check, and its load stops checking.
type objectStart struct{}

func (objectStart) firstBatchFrom(pos int64) (int64, int64, bool) {
	return 0, math.MaxInt64, pos == 0
}

// arrivalCheck walks the batches of one load's run of chunks as its bytes arrive.
type arrivalCheck struct {
	run     []*chunkEntry
	view    partsView // the run's chunk buffers, run positions
	chunk   int64
	pos     int64 // run position of the next batch to check
	limit   int64 // run position where the data section ends
	cur     int   // run index of the chunk whose checkedFrom was set last (-1: none)
	counter *atomic.Int64
}

// newArrivalCheck returns the check for a run starting at object position from, or nil when loc
// knows no batch start in it.
func newArrivalCheck(loc batchLocator, run []*chunkEntry, bufs [][]byte, from, chunk int64, counter *atomic.Int64) *arrivalCheck {
	if loc == nil {
		return nil
	}
	start, dataEnd, ok := loc.firstBatchFrom(from)
	if !ok {
		return nil
	}
	return &arrivalCheck{run: run, view: newPartsView(bufs), chunk: chunk, pos: start - from,
		limit: min(dataEnd-from, int64(partsLen(bufs))), cur: -1, counter: counter}
}

// arrived checks the batches that lie wholly in the run's first got bytes and were not checked
// yet. The walk ends at the first batch it cannot parse, that reaches past the data section, or
// whose CRC does not match: the reads check from there on.
func (a *arrivalCheck) arrived(got int64) {
	if a == nil {
		return
	}
	var hb [segment.HeaderSize]byte
	for a.pos >= 0 && a.pos+segment.HeaderSize <= min(got, a.limit) {
		h, err := segment.ParseBatchHeader(a.view.header(int(a.pos), hb[:]))
		if err != nil {
			a.pos = -1
			return
		}
		end := a.pos + int64(h.Size())
		if end > a.limit {
			a.pos = -1
			return
		}
		if end > got {
			return // the rest of it is still on its way
		}
		if i := a.pos / a.chunk; i == (end-1)/a.chunk {
			if a.view.crc(int(a.pos)+batchCRCFrom, int(end)) != h.CRC() {
				a.pos = -1
				return
			}
			e, lo := a.run[i], i*a.chunk
			if int(i) != a.cur {
				a.cur = int(i)
				e.checkedFrom.Store(a.pos - lo)
			}
			e.checkedTo.Store(end - lo)
			a.counter.Add(end - a.pos)
		}
		// A batch straddling two chunks of the run is left to the read (a span is per chunk);
		// the walk goes on after it.
		a.pos = end
	}
}

// checkedOnArrival reports whether the batch at object bytes [from, to) of key lies in one of the
// held chunks, inside the span its load checked.
func (h *Hold) checkedOnArrival(key string, from, to int64) bool {
	if h == nil {
		return false
	}
	for _, e := range h.entries {
		lo := e.id.idx * e.cache.chunk
		if e.id.key != key || from < lo || to > lo+e.size {
			continue
		}
		checkedTo := e.checkedTo.Load() // before checkedFrom, which was stored first
		return to-lo <= checkedTo && from-lo >= e.checkedFrom.Load()
	}
	return false
}
