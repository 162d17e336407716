package tiering

import (
	"fmt"
	"hash/crc32"

	"github.com/sediment-io/sediment/segment"
)

// Reads from the bucket without joining chunks.
//
// The chunk cache holds an object's bytes in separate chunk buffers (cache.go), so a read range
// that spans chunk boundaries is several slices. Copying them into one buffer (bytes.Join) was 9 %
// of the broker's CPU in a replay from the bucket (bench profile, 2026-11-22 11:22), one full pass
// over every byte served. Instead a read result is carried as its consecutive slices ("parts")
// from the cache to the fetch response, which writes them with writev (broker/01_fetch.go).
// Batches straddle chunk boundaries, so parsing copies only a batch's 61-byte header when it
// straddles, and the batch CRC is computed across parts (crc32.Update).
//
// Parts are shared with the cache: callers must not modify them. A chunk's bytes never change
// while it is cached, and its buffer is reused for another chunk only once every Hold on it has
// been released (cache.go), so a part stays valid until its result's Hold is released.

// PartsResult is RemoteLog.ReadParts's result: whole batches as consecutive slices of cached
// chunks (one slice when the range lies in one chunk or the cache is off), and the offset after
// the last batch.
type PartsResult struct {
	Parts      [][]byte
	NextOffset int64
	// Hold keeps the chunk buffers Parts lie in from being reused (nil: nothing to hold). The
	// holder calls Hold.Release once it no longer reads Parts: a fetch response after its bytes
	// went to the socket. Not releasing is safe, only wasteful.
	Hold *Hold
}

// Len is the number of bytes in the result.
func (r PartsResult) Len() int { return partsLen(r.Parts) }

// joinReleasing is joinParts for parts held by hold: when the join copies, hold is released; when
// it returns a part itself, hold is kept (never released: that buffer is left to the GC).
func joinReleasing(parts [][]byte, hold *Hold) []byte {
	if len(parts) == 1 {
		return parts[0]
	}
	b := joinParts(parts)
	nonEmpty := 0
	for _, p := range parts {
		if len(p) > 0 {
			nonEmpty++
		}
	}
	if nonEmpty != 1 {
		hold.Release()
	}
	return b
}

func partsLen(parts [][]byte) int {
	n := 0
	for _, p := range parts {
		n += len(p)
	}
	return n
}

// joinParts returns parts as one slice: parts[0] itself when it is the only non-empty one.
func joinParts(parts [][]byte) []byte {
	var one []byte
	count := 0
	for _, p := range parts {
		if len(p) > 0 {
			one = p
			count++
		}
	}
	if count <= 1 {
		return one
	}
	out := make([]byte, 0, partsLen(parts))
	for _, p := range parts {
		out = append(out, p...)
	}
	return out
}

// partsView addresses consecutive parts as one logical byte range [0, n).
type partsView struct {
	parts [][]byte
	ends  []int // ends[i]: logical position just after parts[i]
}

func newPartsView(parts [][]byte) partsView {
	v := partsView{parts: parts, ends: make([]int, len(parts))}
	n := 0
	for i, p := range parts {
		n += len(p)
		v.ends[i] = n
	}
	return v
}

func (v partsView) len() int {
	if len(v.ends) == 0 {
		return 0
	}
	return v.ends[len(v.ends)-1]
}

// locate returns the part holding logical position pos (< len) and pos's index in it.
func (v partsView) locate(pos int) (int, int) {
	i := 0
	for v.ends[i] <= pos { // few parts (a fetch spans a handful of chunks): linear is fine
		i++
	}
	return i, pos - (v.ends[i] - len(v.parts[i]))
}

// header returns the len(dst) bytes at pos: a slice of the part when they lie in one, else a
// copy into dst. pos+len(dst) must be ≤ len.
func (v partsView) header(pos int, dst []byte) []byte {
	i, j := v.locate(pos)
	if j+len(dst) <= len(v.parts[i]) {
		return v.parts[i][j : j+len(dst)]
	}
	n := 0
	for n < len(dst) {
		n += copy(dst[n:], v.parts[i][j:])
		i, j = i+1, 0
	}
	return dst
}

// slice returns the parts covering [from, to) (from < to ≤ len), sharing their memory.
func (v partsView) slice(from, to int) [][]byte {
	i, j := v.locate(from)
	var out [][]byte
	for from < to {
		p := v.parts[i][j:]
		p = p[:min(len(p), to-from)]
		out = append(out, p)
		from += len(p)
		i, j = i+1, 0
	}
	return out
}

// crc is the CRC-32C of [from, to) (from < to ≤ len), computed across parts.
func (v partsView) crc(from, to int) uint32 {
	i, j := v.locate(from)
	var c uint32
	for from < to {
		p := v.parts[i][j:]
		p = p[:min(len(p), to-from)]
		c = crc32.Update(c, castagnoli, p)
		from += len(p)
		i, j = i+1, 0
	}
	return c
}

// batchCRCFrom is where a RecordBatch v2's CRC-32C starts (attributes; Kafka's format: baseOffset 8,
// batchLength 4, partitionLeaderEpoch 4, magic 1, crc 4).
const batchCRCFrom = 21

// validateBatchAt is segment.ValidateBatch for the batch at pos whose header h was parsed: it
// lies within the view, and (checkCRC) its CRC-32C, computed across parts, matches the header's.
func (v partsView) validateBatchAt(pos int, h segment.BatchHeader, checkCRC bool) error {
	size := h.Size()
	if pos+size > v.len() {
		return fmt.Errorf("%w: batch of %d bytes truncated to %d", segment.ErrCorrupt, size, v.len()-pos)
	}
	if !checkCRC {
		return nil
	}
	if got, want := v.crc(pos+batchCRCFrom, pos+size), h.CRC(); got != want {
		return fmt.Errorf("%w: crc32c %08x, header says %08x", segment.ErrCorrupt, got, want)
	}
	return nil
}

// BatchesBelow returns the leading whole batches of parts (consecutive slices of whole batches,
// as ReadParts returns) that end below maxOffset, sharing their memory (the last slice's capacity
// is cut). maxOffset ≤ 0: parts unchanged. None: nil.
func BatchesBelow(parts [][]byte, maxOffset int64) [][]byte {
	if maxOffset <= 0 {
		return parts
	}
	v := newPartsView(parts)
	total := v.len()
	var hb [segment.HeaderSize]byte
	n := 0
	for n+segment.HeaderSize <= total {
		h := segment.BatchHeader(v.header(n, hb[:]))
		if h.LastOffset() >= maxOffset || n+h.Size() > total {
			break
		}
		n += h.Size()
	}
	if n == 0 {
		return nil
	}
	out := v.slice(0, n)
	last := out[len(out)-1]
	out[len(out)-1] = last[:len(last):len(last)]
	return out
}
