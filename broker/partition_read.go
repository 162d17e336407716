package broker

import (
	"errors"
	"slices"
	"time"

	"github.com/sediment-io/sediment/segment"
	"github.com/sediment-io/sediment/tiering"
	"github.com/twmb/franz-go/pkg/kerr"
)

// The partition's read path: consumer fetches (below the HW) and replica fetches (up to the log
// end). Consumer reads below the local log start are served from the bucket (partition_remote.go);
// replica reads there are answered OFFSET_MOVED_TO_TIERED_STORAGE (KIP-405).

// readResult is what a fetch gets from one partition.
type readResult struct {
	// data is the record bytes, or nil when parts holds them: a read from the bucket that spans
	// cached chunks comes as the consecutive chunk slices (tiering.PartsResult), which the fetch
	// response writes in place (01_fetch.go) instead of joining them (one copy of every byte).
	data     []byte
	parts    [][]byte // nil, or at least two non-empty slices
	hw       int64
	logStart int64
	err      int16
	// retry > 0: no records because the remote fetch quota had no grant; one will have accrued
	// after retry (a long-polling fetch re-reads then instead of waiting out MaxWait).
	retry time.Duration
	// charged is what the read took from the remote fetch quota (the bytes it read from the
	// bucket); a fetch that discards the result gives them back (fetchTarget.discard).
	charged int
	// hold keeps the chunk-cache buffers that data or parts lie in (a read from the bucket) from
	// being reused; released once the records were written to the socket or the result dropped
	// (tiering.Hold: never releasing is safe, releasing while the bytes are still read is not).
	hold *tiering.Hold
}

// size is the number of record bytes.
func (r *readResult) size() int {
	n := len(r.data)
	for _, b := range r.parts {
		n += len(b)
	}
	return n
}

// setRecords stores a read's record bytes: one slice in data, several in parts.
func (r *readResult) setRecords(recs [][]byte) {
	r.data, r.parts = nil, nil
	k := 0
	for _, b := range recs {
		if len(b) > 0 {
			k++
		}
	}
	switch {
	case k == 1:
		for _, b := range recs {
			if len(b) > 0 {
				r.data = b
			}
		}
	case k > 1:
		r.parts = make([][]byte, 0, k)
		for _, b := range recs {
			if len(b) > 0 {
				r.parts = append(r.parts, b)
			}
		}
	}
}

// read returns whole batches from offset, at most maxBytes unless minOneBatch lets the first
// batch through whole; only batches below the HW (isolation levels coincide while there are no
// transactions: the last stable offset equals the HW). Offsets below the local log start (the
// whole log's start is lower once segments live in the bucket) are read from object storage.
// The records are in data (readParts: possibly in parts).
func (p *Partition) read(offset int64, maxBytes int, minOneBatch bool) readResult {
	r := p.readParts(offset, maxBytes, minOneBatch)
	if r.parts != nil {
		r.data, r.parts = slices.Concat(r.parts...), nil
		r.hold.Release() // copied
	}
	r.hold = nil // one slice of a chunk: kept by the caller for as long as it likes, never released
	return r
}

// readParts is read for a fetch response: records read from the bucket across cached chunks stay
// in those chunks (r.parts), not copied into one buffer.
func (p *Partition) readParts(offset int64, maxBytes int, minOneBatch bool) readResult {
	hw := p.hw.Load()
	r := readResult{hw: hw, logStart: p.log.StartOffset()}
	if offset < r.logStart || offset > p.log.EndOffset() {
		r.err = kerr.OffsetOutOfRange.Code
		return r
	}
	if offset >= hw || maxBytes <= 0 && !minOneBatch {
		return r
	}
	tr := p.readTiered(offset, maxBytes, minOneBatch, hw)
	r.err, r.retry, r.charged, r.hold = tr.code, tr.retry, tr.charged, tr.hold
	r.setRecords(tr.recs)
	return r
}

// recordsBelow trims whole batches so that every batch returned ends below maxOffset (the HW for a
// consumer; remote data is normally all below it — only data below it is uploaded — but right after
// a leader change the new leader's HW may not have caught up yet). parts: a read from the bucket.
func recordsBelow(parts [][]byte, maxOffset int64) [][]byte {
	return tiering.BatchesBelow(parts, maxOffset)
}

// readForFollower serves a replica's fetch (replication by pull, issue 5's leader side): the
// follower has everything below offset, which becomes its log end offset for the HW (min over
// the ISR); it then reads up to the log end, not the HW. Returns NOT_LEADER_OR_FOLLOWER when
// replicaID is not one of the partition's replicas. ISR changes (replica.lag.time.max.ms) are not
// made here yet; a follower counts for the HW only while meta lists it in the ISR.
func (p *Partition) readForFollower(replicaID int32, offset int64, maxBytes int, minOneBatch bool) readResult {
	return p.readForFollowerAcked(replicaID, offset, -1, maxBytes, minOneBatch)
}

// readForFollowerAcked is readForFollower for a fetch that also reports the follower's durable
// position (durable >= 0: the durable-offset tag, replica_durable.go): offset is then only its
// log end (followerLEO: ISR rejoin, KIP-392), and durable, capped by offset, is what counts for
// the HW and for lag (updateCaughtUpLocked). Without the tag (durable < 0) the follower synced
// before fetching and offset counts for all of them.
func (p *Partition) readForFollowerAcked(replicaID int32, offset, durable int64, maxBytes int, minOneBatch bool) readResult {
	p.stateMu.Lock()
	if !p.leader || !slices.Contains(p.replicas, replicaID) || replicaID == p.nodeID {
		p.stateMu.Unlock()
		return readResult{err: kerr.NotLeaderForPartition.Code}
	}
	end := p.log.EndOffset()
	if cur, ok := p.followerLEO[replicaID]; offset <= end && (!ok || offset > cur) {
		p.followerLEO[replicaID] = offset
	}
	acked := offset
	if durable >= 0 {
		acked = min(durable, offset)
	}
	if cur, ok := p.followerAcked[replicaID]; acked <= end && (!ok || acked > cur) {
		p.followerAcked[replicaID] = acked
		p.maybeAdvanceHWLocked()
	}
	p.updateCaughtUpLocked(replicaID)
	p.stateMu.Unlock()

	r := readResult{hw: p.hw.Load(), logStart: p.log.StartOffset()}
	end = p.log.EndOffset()
	if offset < r.logStart || offset > end {
		r.err = kerr.OffsetOutOfRange.Code
		return r
	}
	if offset < p.localStart() {
		// KIP-405: a follower copies only the local tail; it asks for the earliest local offset
		// (ListOffsets -4) and restarts its log there.
		r.err = kerr.OffsetMovedToTieredStorage.Code
		return r
	}
	if offset == end || maxBytes <= 0 && !minOneBatch {
		return r
	}
	rr, err := p.log.Read(offset, segment.ReadOptions{MaxBytes: maxBytes, MaxOffset: end, MinOneBatch: minOneBatch})
	if errors.Is(err, segment.ErrNotLocal) {
		r.err = kerr.OffsetMovedToTieredStorage.Code // local retention raced the check above
		return r
	}
	if err != nil {
		r.err = readErr(err)
		return r
	}
	r.data = rr.Data
	return r
}

// readErr maps a segment read error to the fetch error code.
func readErr(err error) int16 {
	switch {
	case errors.Is(err, segment.ErrOffsetOutOfRange):
		return kerr.OffsetOutOfRange.Code
	case errors.Is(err, segment.ErrClosed):
		// Deleted or shut down while the fetch was in flight.
		return kerr.NotLeaderForPartition.Code
	}
	return kerr.KafkaStorageError.Code
}
