package broker

import (
	"errors"
	"slices"

	"github.com/sediment-io/sediment/segment"
	"github.com/twmb/franz-go/pkg/kerr"
)

// The partition's read path: consumer fetches (below the HW) and replica fetches (up to the log
// end). Consumer reads below the local log start are served from the bucket (partition_remote.go);
// replica reads there are answered OFFSET_MOVED_TO_TIERED_STORAGE (KIP-405).

// readResult is what a fetch gets from one partition.
type readResult struct {
	data     []byte
	hw       int64
	logStart int64
	err      int16
}

// read returns whole batches from offset, at most maxBytes unless minOneBatch lets the first
// batch through whole; only batches below the HW (isolation levels coincide while there are no
// transactions: the last stable offset equals the HW). Offsets below the local log start (the
// whole log's start is lower once segments live in the bucket) are read from object storage.
func (p *Partition) read(offset int64, maxBytes int, minOneBatch bool) readResult {
	hw := p.hw.Load()
	r := readResult{hw: hw, logStart: p.log.StartOffset()}
	if offset < r.logStart || offset > p.log.EndOffset() {
		r.err = kerr.OffsetOutOfRange.Code
		return r
	}
	if offset >= hw || maxBytes <= 0 && !minOneBatch {
		return r
	}
	r.data, r.err = p.readTiered(offset, maxBytes, minOneBatch, hw)
	return r
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
