package broker

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"

	"github.com/sediment-io/sediment/meta"
	"github.com/sediment-io/sediment/segment"
	"github.com/sediment-io/sediment/segment/vfs"
)

// Partition is this broker's replica of one topic partition: the local segment.Log and the state
// Kafka keeps next to it (high watermark, leader epoch, ISR, idempotent producer state, and the
// waiters of long-poll fetches and acks=all produces).
//
// High watermark. The HW is the minimum log end offset over the ISR. The leader's own LEO counts
// only once its append is durable per the flush policy (Append returns after that), and each
// follower's LEO is what its fetches report (replication, later: updateFollower). With one broker
// the ISR is the leader alone and the HW follows its durable LEO. Consumers read only below the
// HW; acks=all waits for the HW to pass the batch. After a restart the HW starts at the local log
// end offset: everything in the log was durable before it was acknowledged, and the recovered log
// contains nothing that was not fsynced (segment's recovery truncates torn tails).
//
// Locks: appendMu (appends, producer state, log start changes) → stateMu (leadership, ISR) →
// waitMu (waiter set). hw is atomic. No lock is held while waiting. tierMu (the tiering upload
// task's start/stop) is taken with none of them held, since stopping the task waits for a
// goroutine that takes appendMu and stateMu.
type Partition struct {
	topic   string
	topicID meta.TopicID
	index   int32
	dir     string
	log     *segment.Log
	fs      vfs.FS // the log's file system (producer snapshots go through it too)
	now     func() time.Time
	nodeID  int32

	cfg atomic.Pointer[TopicConfig]

	// tier is the broker's tiered-storage side (tiering.go); set by the replica manager on open.
	tier *tierManager
	// tierMu serialises starting and stopping this partition's upload task (updateTiering, close);
	// taken with no other partition lock held. tierTask is set under it; tierCur mirrors it for
	// the lock-free wake on HW advance.
	tierMu     sync.Mutex
	tierTask   *tierTask
	tierCur    atomic.Pointer[tierTask]
	tierClosed bool
	tierOpened bool // restoreFromRemote ran (first setLeadership, appendMu held)

	appendMu  sync.Mutex
	producers *producerStateManager

	stateMu     sync.RWMutex
	leader      bool
	leaderEpoch int32
	isr         []int32
	replicas    []int32
	followerLEO map[int32]int64     // replication: each follower's fetched-up-to offset
	caughtUp    map[int32]time.Time // replication: last time each follower had fetched up to the log end
	// followerEpoch: the broker epoch (KIP-903) each follower's fetches carry, -1 for fetches before
	// v15; what the leader's evidence (followerLEO, caughtUp) belongs to. See noteReplicaEpoch.
	followerEpoch map[int32]int64
	partEpoch     int32 // meta's partition epoch (for AlterPartition)
	leo           int64 // the leader's durable log end offset (what counts for the HW)
	flushAlways   bool

	// followerAcked: the offset below which each follower has reported its log durable (the
	// durable-offset tag of its fetches, replica_durable.go; its fetch offset when it sends no
	// tag). This, not followerLEO (its log end: ISR membership, lag, KIP-392), counts toward the
	// HW: a pipelining follower fetches on before its fsync, so its fetch offset may cover writes
	// an OS crash would lose. Guarded by stateMu.
	followerAcked map[int32]int64
	// lastReport: the leader's durable LEO and the time at each follower's previous fetch, for
	// the caught-up rule (updateCaughtUpLocked). Guarded by stateMu.
	lastReport map[int32]leoAt

	hw atomic.Int64

	waitMu  sync.Mutex
	waiters map[*waiter]struct{}

	// Metrics (replica_metrics.go).
	bytesIn, recordsIn, duplicates, bytesOut atomic.Int64
}

// waiter is a long-poll fetch or an acks=all produce waiting for the HW to move on one or more
// partitions. Signals coalesce (channel of one).
type waiter struct{ ch chan struct{} }

func newWaiter() *waiter { return &waiter{ch: make(chan struct{}, 1)} }

func (p *Partition) watch(w *waiter) {
	p.waitMu.Lock()
	p.waiters[w] = struct{}{}
	p.waitMu.Unlock()
}

func (p *Partition) unwatch(w *waiter) {
	p.waitMu.Lock()
	delete(p.waiters, w)
	p.waitMu.Unlock()
}

func (p *Partition) notify() {
	p.waitMu.Lock()
	for w := range p.waiters {
		select {
		case w.ch <- struct{}{}:
		default:
		}
	}
	p.waitMu.Unlock()
}

// openPartition opens (or creates) the log in dir and rebuilds the producer state from it.
func openPartition(dir, topic string, id meta.TopicID, index int32, nodeID int32, scfg segment.Config, tc TopicConfig) (*Partition, error) {
	if lg := scfg.Logger; lg != nil { // #4: one line per notable event, a roll included
		name := fmt.Sprintf("%s-%d", topic, index)
		scfg.OnRoll = func(ri segment.RollInfo) {
			lg.Info("segment rolled", "partition", name, "old_base_offset", ri.OldBase,
				"new_base_offset", ri.NewBase, "size", ri.Size, "reason", ri.Reason.String())
		}
	}
	l, err := segment.Open(dir, scfg)
	if err != nil {
		return nil, err
	}
	now := scfg.Now
	if now == nil {
		now = time.Now
	}
	fsys := scfg.FS
	if fsys == nil {
		fsys = vfs.OS
	}
	p := &Partition{
		fs:            fsys,
		topic:         topic,
		topicID:       id,
		index:         index,
		dir:           dir,
		log:           l,
		now:           now,
		nodeID:        nodeID,
		producers:     newProducerStateManager(),
		followerLEO:   map[int32]int64{},
		caughtUp:      map[int32]time.Time{},
		waiters:       map[*waiter]struct{}{},
		followerEpoch: map[int32]int64{},
		leaderEpoch:   -1,
	}
	p.followerAcked = map[int32]int64{}
	p.lastReport = map[int32]leoAt{}
	p.cfg.Store(&tc)
	p.hw.Store(l.EndOffset())
	p.leo = l.EndOffset()
	p.flushAlways = scfg.FlushPolicy == segment.FlushAlways
	if err := p.rebuildProducers(); err != nil {
		l.Close()
		return nil, fmt.Errorf("rebuilding producer state of %s-%d: %w", topic, index, err)
	}
	return p, nil
}

// rebuildProducers loads the producer-state snapshot, if it fits the log, and replays the batch
// headers after it (all of them without a snapshot).
func (p *Partition) rebuildProducers() error {
	m, from := p.loadProducerSnapshot()
	if m == nil {
		m, from = newProducerStateManager(), p.log.StartOffset()
	}
	from = max(from, p.log.StartOffset())
	now := p.now()
	err := p.log.ScanBatches(from, func(h segment.BatchHeader) bool {
		if h.ProducerID() >= 0 && !h.IsControl() && h.LastOffset() >= from {
			m.apply(h.ProducerID(), h.ProducerEpoch(), producerBatch{
				firstSeq:    h.BaseSequence(),
				lastSeq:     batchLastSeq(h.BaseSequence(), h.LastOffsetDelta()),
				firstOffset: h.BaseOffset(),
				lastOffset:  h.LastOffset(),
				timestamp:   h.MaxTimestamp(),
			}, now)
		}
		return true
	})
	if err != nil {
		return err
	}
	m.truncateHead(p.log.StartOffset())
	p.producers = m
	return nil
}

func (p *Partition) String() string { return fmt.Sprintf("%s-%d", p.topic, p.index) }

func (p *Partition) config() TopicConfig { return *p.cfg.Load() }

// resetHW sets the HW without the monotonicity check (open, before anything is served).
func (p *Partition) resetHW(hw int64) {
	p.stateMu.Lock()
	p.hw.Store(hw)
	p.stateMu.Unlock()
}

// HighWatermark is the offset below which records are committed (visible to consumers).
func (p *Partition) HighWatermark() int64 { return p.hw.Load() }

// setLeadership applies the partition's state from meta. For a new leader epoch the log's epoch
// cache gets an entry at the current end offset (KIP-101), so batches appended from now on carry
// it and OffsetForLeaderEpoch can answer for it.
func (p *Partition) setLeadership(part meta.Partition) error {
	err := p.setLeadershipLocked(part)
	// Outside the partition locks: stopping a task waits for its goroutine, which takes them.
	p.updateTiering()
	return err
}

func (p *Partition) setLeadershipLocked(part meta.Partition) error {
	p.appendMu.Lock()
	defer p.appendMu.Unlock()
	p.stateMu.Lock()
	defer p.stateMu.Unlock()
	if !p.tierOpened {
		p.tierOpened = true
		if err := p.restoreFromRemoteLocked(); err != nil {
			return err
		}
	}
	wasLeader := p.leader
	p.leader = part.Leader == p.nodeID
	p.partEpoch = part.PartitionEpoch
	if wasLeader && !p.leader {
		// acks=all produces waiting on this partition must learn that leadership moved.
		defer p.notify()
	}
	if p.leader && (!wasLeader || part.LeaderEpoch != p.leaderEpoch) {
		// A new leadership: followers' positions are unknown until they fetch; give each a full
		// lag window. A former follower fetches on before its fsyncs complete (replica_durable.go),
		// so only what is durable of its log counts as its LEO: sync the rest now (once per
		// leadership change) so that the HW can reach the end without waiting for a new append.
		// A leader that only changes epoch keeps its durable mark (appends may be in flight).
		if !wasLeader {
			p.leo = p.syncedEnd()
		}
		clear(p.followerLEO)
		clear(p.followerAcked)
		clear(p.lastReport)
		clear(p.followerEpoch)
		now := p.now()
		for _, id := range part.Replicas {
			p.caughtUp[id] = now
		}
	}
	p.replicas = slices.Clone(part.Replicas)
	p.isr = slices.Clone(part.ISR)
	if p.leader && part.LeaderEpoch > p.leaderEpoch {
		if latest, ok := p.log.LatestEpoch(); !ok || latest < part.LeaderEpoch {
			if err := p.log.AssignEpoch(part.LeaderEpoch, p.log.EndOffset()); err != nil {
				return err
			}
		}
	}
	p.leaderEpoch = part.LeaderEpoch
	p.maybeAdvanceHWLocked()
	return nil
}

// restoreFromRemoteLocked runs once, when the partition is first given its state: a partition
// whose local log is empty while its remote manifest is not (a broker restarted with an emptied
// data directory, a new replica) starts its local log at the manifest's end with the whole-log
// start at the manifest's start (segment.ResetLocal), so all history stays readable from the
// bucket and appends or replication continue after it. Everything in the manifest was below the
// HW when uploaded, so the HW and the durable LEO start at its end. Producer state of that
// history is not rebuilt (it is in no local batch): idempotent producers get a fresh sequence
// check (KIP-360 treats them as unknown). appendMu and stateMu held.
func (p *Partition) restoreFromRemoteLocked() error {
	if p.tier == nil || p.log.EndOffset() != p.log.LocalStartOffset() {
		return nil
	}
	segs := p.tier.b.meta.State().RemoteSegments(p.topicID, p.index)
	end := uploadedEnd(segs)
	if end <= p.log.EndOffset() {
		return nil
	}
	logStart := min(max(segs[0].BaseOffset, p.log.StartOffset()), end)
	if err := p.log.ResetLocal(end, logStart); err != nil {
		return fmt.Errorf("restoring %s from the remote manifest: %w", p, err)
	}
	p.producers = newProducerStateManager()
	p.leo = end
	p.hw.Store(end)
	p.tier.log.Info("tiering: empty local log restored from the remote manifest", "partition", p.String(),
		"log_start", logStart, "local_start", end)
	return nil
}

// maybeAdvanceHWLocked recomputes the HW as the minimum durable LEO over the ISR: the leader's own
// p.leo and each follower's acknowledged (durable) position (stateMu held).
func (p *Partition) maybeAdvanceHWLocked() {
	if !p.leader {
		return
	}
	hw := p.leo
	for _, id := range p.isr {
		if id == p.nodeID {
			continue
		}
		acked, ok := p.followerAcked[id]
		if !ok {
			acked = p.hw.Load()
		}
		hw = min(hw, acked)
	}
	if hw > p.hw.Load() {
		p.checkHWInvariantLocked(hw)
		p.hw.Store(hw)
		p.notify()
		if t := p.tierCur.Load(); t != nil {
			poke(t.wake) // a closed segment may now lie wholly below the HW
		}
	}
}

// checkLeader answers whether this replica may serve client produce/fetch/list-offsets, with the
// KIP-320 leader epoch check: a client epoch older than ours is FENCED_LEADER_EPOCH, newer is
// UNKNOWN_LEADER_EPOCH (-1 = no check).
func (p *Partition) checkLeader(clientEpoch int32) int16 {
	p.stateMu.RLock()
	defer p.stateMu.RUnlock()
	if clientEpoch >= 0 {
		if clientEpoch < p.leaderEpoch {
			return kerr.FencedLeaderEpoch.Code
		}
		if clientEpoch > p.leaderEpoch {
			return kerr.UnknownLeaderEpoch.Code
		}
	}
	if !p.leader {
		return kerr.NotLeaderForPartition.Code
	}
	return 0
}

// noteReplicaEpoch is the leader's KIP-903 check of a replica fetch, before readForFollower
// records its position (Kafka's Replica.updateFetchStateOrThrow). epoch is the broker epoch the
// fetch carries (ReplicaState.Epoch, Fetch v15+; -1 before), alive the replica's current live
// registration in meta (-1: fenced or unknown here).
//   - A fetch from an older incarnation than meta's live one, or than one already seen (a process
//     that was replaced, still fetching), is NOT_LEADER_OR_FOLLOWER and moves nothing.
//   - A fetch from a newer incarnation than the one seen means the follower restarted (maybe with an
//     empty disk): what the leader knew of it (its log end, when it was last caught up) described
//     the previous process, so it is forgotten (Kafka's resetReplicaState for a follower not in
//     sync). The follower counts as caught up again only once its own fetches show it, and so only
//     then rejoins the ISR; while meta still lists it in the ISR its new position holds the HW.
func (p *Partition) noteReplicaEpoch(id int32, epoch, alive int64) int16 {
	p.stateMu.Lock()
	defer p.stateMu.Unlock()
	if !p.leader || id == p.nodeID || !slices.Contains(p.replicas, id) {
		return 0 // readForFollower answers NOT_LEADER_OR_FOLLOWER
	}
	seen, had := p.followerEpoch[id]
	if epoch < 0 {
		if !had {
			p.followerEpoch[id] = -1
		}
		return 0
	}
	if alive > epoch || had && seen > epoch {
		return kerr.NotLeaderForPartition.Code
	}
	if had && seen >= 0 && epoch > seen {
		delete(p.followerLEO, id)
		// What it reported durable belonged to the old process too (its disk may be new).
		delete(p.followerAcked, id)
		delete(p.lastReport, id)
		p.caughtUp[id] = time.Time{}
	}
	p.followerEpoch[id] = epoch
	return 0
}

func (p *Partition) currentLeaderEpoch() int32 {
	p.stateMu.RLock()
	defer p.stateMu.RUnlock()
	return p.leaderEpoch
}

// appendResult is one partition's produce outcome.
type appendResult struct {
	err           *produceError
	baseOffset    int64
	lastOffset    int64
	logAppendTime int64 // -1 unless the topic uses LogAppendTime
	logStart      int64

	// What completeAppend still has to wait for after appendClientNoWait: durability of the
	// offsets below waitUpTo (0: nothing pending), for a duplicate (dup) or a new append of
	// bytes bytes.
	waitUpTo int64
	dup      bool
	bytes    int
}

// appendClient validates and appends one client batch (a produce request's records for this
// partition), then waits until it is durable per the flush policy: appendClientNoWait followed by
// completeAppend. acks=all callers then wait with waitHW.
func (p *Partition) appendClient(version int16, acks int16, records []byte) appendResult {
	res := p.appendClientNoWait(version, acks, records)
	p.completeAppend(&res)
	return res
}

// appendClientNoWait is the ordered half of appendClient: validation, the producer-state check
// and the append itself under appendMu, so batches get offsets in the order of the calls. It does
// not wait for durability; the caller must call completeAppend (possibly on another goroutine)
// before it answers the client. Duplicates of recent idempotent batches are answered with their
// original offsets and not appended; completeAppend still waits until the original is durable.
// records is not referenced after the call returns.
func (p *Partition) appendClientNoWait(version int16, acks int16, records []byte) appendResult {
	res := appendResult{baseOffset: -1, lastOffset: -1, logAppendTime: -1, logStart: -1}
	if e := checkRequestRecords(version, records); e != nil {
		res.err = e
		return res
	}
	tc := p.config()
	now := p.now()
	h, e := validateBatch(records, limitsOf(tc), now.UnixMilli())
	if e != nil {
		res.err = e
		return res
	}

	p.appendMu.Lock()
	p.stateMu.RLock()
	leader, epoch, isr := p.leader, p.leaderEpoch, len(p.isr)
	p.stateMu.RUnlock()
	if !leader {
		p.appendMu.Unlock()
		res.err = &produceError{code: kerr.NotLeaderForPartition.Code, msg: "this broker is not the leader of " + p.String()}
		return res
	}
	if acks == -1 && int32(isr) < tc.MinInsyncReplicas {
		// Kafka refuses before appending when the ISR is already too small.
		p.appendMu.Unlock()
		res.err = &produceError{code: kerr.NotEnoughReplicas.Code, msg: fmt.Sprintf("%s has %d in-sync replicas, min.insync.replicas is %d", p, isr, tc.MinInsyncReplicas)}
		return res
	}

	pid := h.ProducerID()
	var staged *producerStateManager
	var firstSeq, lastSeq int32
	if pid >= 0 {
		firstSeq = h.BaseSequence()
		lastSeq = batchLastSeq(firstSeq, h.LastOffsetDelta())
		c := p.producers.check(nil, pid, h.ProducerEpoch(), firstSeq, lastSeq)
		if c.errCode != 0 {
			p.appendMu.Unlock()
			res.err = &produceError{code: c.errCode, msg: fmt.Sprintf("producer %d epoch %d sequence %d..%d refused on %s", pid, h.ProducerEpoch(), firstSeq, lastSeq, p)}
			return res
		}
		if c.dup {
			p.appendMu.Unlock()
			// The original may still be on its way to disk (another request's group commit):
			// completeAppend answers the retry only once it is durable, like the original.
			res.dup, res.waitUpTo = true, c.dupOf.lastOffset+1
			res.baseOffset, res.lastOffset = c.dupOf.firstOffset, c.dupOf.lastOffset
			if tc.LogAppendTime {
				res.logAppendTime = c.dupOf.timestamp
			}
			return res
		}
		staged = newProducerStateManager()
	}

	if tc.LogAppendTime {
		res.logAppendTime = now.UnixMilli()
		segment.SetLogAppendTime(records, res.logAppendTime)
	}
	// Written under appendMu (offsets and producer state move together), made durable outside
	// it so that concurrent producers to this partition share one fsync (segment's group commit).
	prevEnd := p.log.EndOffset()
	ar, err := p.log.AppendNoWait(records, epoch)
	if err != nil {
		p.appendMu.Unlock()
		res.err = appendErr(err)
		return res
	}
	p.checkAppendInvariant(prevEnd, ar.FirstOffset, ar.LastOffset, h.RecordCount())
	if staged != nil {
		p.producers.stage(staged, pid, h.ProducerEpoch(), producerBatch{
			firstSeq: firstSeq, lastSeq: lastSeq,
			firstOffset: ar.FirstOffset, lastOffset: ar.LastOffset,
			timestamp: ar.MaxTimestamp,
		}, now)
		p.producers.commit(staged)
	}
	p.appendMu.Unlock()

	p.stateMu.RLock()
	followers := len(p.replicas) > 1
	p.stateMu.RUnlock()
	if followers {
		// Wake followers' long-polls now, not after our fsync: they copy (and fsync) the batch
		// while we fsync it, which takes one disk wait off every acks=all produce.
		p.notify()
	}
	res.baseOffset, res.lastOffset = ar.FirstOffset, ar.LastOffset
	res.waitUpTo, res.bytes = ar.LastOffset+1, ar.Bytes
	return res
}

// completeAppend is the durability half of appendClient: it waits until what appendClientNoWait
// appended (or, for a duplicate, the original) is durable per the flush policy, then counts it
// and moves the LEO/HW. On failure res.err is set (KAFKA_STORAGE_ERROR for an I/O failure,
// NOT_LEADER_OR_FOLLOWER when the log was truncated or closed meanwhile). It returns at once when
// nothing is pending (res.err set, or already completed). It ends when the log closes.
func (p *Partition) completeAppend(res *appendResult) {
	upTo := res.waitUpTo
	if res.err != nil || upTo == 0 {
		return
	}
	res.waitUpTo = 0
	if err := p.waitDurable(upTo); err != nil {
		res.err = appendErr(err)
		res.baseOffset, res.lastOffset, res.logAppendTime = -1, -1, -1
		return
	}
	res.logStart = p.log.StartOffset()
	if res.dup {
		p.duplicates.Add(1)
		return
	}
	p.bytesIn.Add(int64(res.bytes))
	p.recordsIn.Add(res.lastOffset - res.baseOffset + 1)
	p.advanceLEO(upTo)
}

// waitDurableHook, when set (tests), runs at the start of every waitDurable: a test can hold one
// request's durability wait to show that the connection goes on reading and appending.
var waitDurableHook atomic.Pointer[func(p *Partition, upTo int64)]

// waitDurable returns once offsets below upTo are durable per the flush policy: fsynced for
// "always" (shared with concurrent appenders), written to the OS otherwise.
func (p *Partition) waitDurable(upTo int64) error {
	if h := waitDurableHook.Load(); h != nil {
		(*h)(p, upTo)
	}
	if !p.flushAlways {
		return nil
	}
	return p.log.WaitDurable(upTo)
}

// advanceLEO records that the leader's log is durable up to upTo and moves the HW if the ISR
// allows.
func (p *Partition) advanceLEO(upTo int64) {
	p.stateMu.Lock()
	if upTo > p.leo {
		p.leo = upTo
	}
	hwBefore := p.hw.Load()
	p.maybeAdvanceHWLocked()
	followers := len(p.replicas) > 1
	p.stateMu.Unlock()
	if followers && p.hw.Load() == hwBefore {
		// With followers the HW waits for them: wake their long-polls on the new data itself.
		p.notify()
	}
}

func appendErr(err error) *produceError {
	switch {
	case errors.Is(err, segment.ErrCorrupt):
		return &produceError{code: kerr.CorruptMessage.Code, msg: err.Error()}
	case errors.Is(err, segment.ErrBatchTooLarge):
		return &produceError{code: kerr.RecordListTooLarge.Code, msg: err.Error()}
	case errors.Is(err, segment.ErrClosed), errors.Is(err, segment.ErrTruncated):
		// Shut down, deleted, or truncated under us by a leadership change.
		return &produceError{code: kerr.NotLeaderForPartition.Code, msg: err.Error()}
	}
	// An I/O failure: the log refuses further writes (segment's sticky error). Kafka answers
	// KAFKA_STORAGE_ERROR and takes the log dir offline; clients retry elsewhere.
	return &produceError{code: kerr.KafkaStorageError.Code, msg: err.Error()}
}

// waitHW blocks until the HW is past offset (acks=all), the partition loses leadership or the
// context ends. It returns a Kafka error code (0 on success, REQUEST_TIMED_OUT on timeout,
// NOT_LEADER_OR_FOLLOWER when leadership moved).
func (p *Partition) waitHW(ctx context.Context, offset int64) int16 {
	if p.hw.Load() > offset {
		return p.enoughISRAfterAppend()
	}
	w := newWaiter()
	p.watch(w)
	defer p.unwatch(w)
	for {
		if p.hw.Load() > offset {
			return p.enoughISRAfterAppend()
		}
		p.stateMu.RLock()
		leader := p.leader
		p.stateMu.RUnlock()
		if !leader {
			return kerr.NotLeaderForPartition.Code
		}
		select {
		case <-w.ch:
		case <-ctx.Done():
			if p.hw.Load() > offset {
				return p.enoughISRAfterAppend()
			}
			return kerr.RequestTimedOut.Code
		}
	}
}

// enoughISRAfterAppend is Kafka's last check for acks=all once the HW has passed the batch: if the
// ISR shrank below min.insync.replicas meanwhile, the write is committed on fewer replicas than
// asked: NOT_ENOUGH_REPLICAS_AFTER_APPEND (the producer may retry; idempotence dedupes).
func (p *Partition) enoughISRAfterAppend() int16 {
	p.stateMu.RLock()
	isr := len(p.isr)
	p.stateMu.RUnlock()
	if int32(isr) < p.config().MinInsyncReplicas {
		return kerr.NotEnoughReplicasAfterAppend.Code
	}
	return 0
}

// deleteRecords raises the log start offset to offset (-1 = the HW), as DeleteRecords does.
// Offsets above the HW are OFFSET_OUT_OF_RANGE. Returns the new low watermark.
func (p *Partition) deleteRecords(offset int64) (int64, int16) {
	p.appendMu.Lock()
	defer p.appendMu.Unlock()
	hw := p.hw.Load()
	if offset == -1 {
		offset = hw
	}
	if offset < 0 || offset > hw {
		return -1, kerr.OffsetOutOfRange.Code
	}
	if err := p.log.SetStartOffset(offset); err != nil {
		return -1, kerr.KafkaStorageError.Code
	}
	start := p.log.StartOffset()
	p.producers.truncateHead(start)
	p.notify() // long-polls see the new log start
	if t := p.tierCur.Load(); t != nil {
		poke(t.retention) // remote segments wholly below the new start go now
	}
	return start, 0
}

// raiseLogStart raises the whole-log start offset to offset (remote retention: the records below
// it were deleted from the bucket), deleting local segments wholly below it. Never above the HW.
func (p *Partition) raiseLogStart(offset int64) error {
	p.appendMu.Lock()
	defer p.appendMu.Unlock()
	offset = min(offset, p.hw.Load())
	if offset <= p.log.StartOffset() {
		return nil
	}
	if err := p.log.SetStartOffset(offset); err != nil {
		return err
	}
	p.producers.truncateHead(p.log.StartOffset())
	p.notify()
	return nil
}

// updateTiering starts this partition's upload task when it leads a tiered topic and stops it
// otherwise (leadership lost, remote.storage.enable turned off, partition closed). Called after
// every leadership/config application, with no partition lock held.
func (p *Partition) updateTiering() {
	if p.tier == nil {
		return
	}
	p.tier.start()
	p.stateMu.RLock()
	leader := p.leader
	p.stateMu.RUnlock()
	p.tierMu.Lock()
	defer p.tierMu.Unlock()
	want := leader && !p.tierClosed && p.tier.enabled(p.config())
	switch {
	case want && p.tierTask == nil:
		p.tierTask = p.tier.startTask(p)
		p.tierCur.Store(p.tierTask)
	case !want && p.tierTask != nil:
		p.tierCur.Store(nil)
		p.tierTask.stop()
		p.tierTask = nil
	}
}

// stopTiering stops the upload task for good (close).
func (p *Partition) stopTiering() {
	p.tierMu.Lock()
	defer p.tierMu.Unlock()
	p.tierClosed = true
	if p.tierTask != nil {
		p.tierCur.Store(nil)
		p.tierTask.stop()
		p.tierTask = nil
	}
}

// close snapshots the producer state, closes the log (clean-shutdown marker) and wakes every
// waiter.
func (p *Partition) close() error {
	p.stopTiering() // before the locks: the task takes them
	p.appendMu.Lock()
	defer p.appendMu.Unlock()
	p.stateMu.Lock()
	p.leader = false
	p.stateMu.Unlock()
	p.notify()
	// A failed snapshot only costs a longer scan at the next open.
	snapErr := p.writeProducerSnapshot()
	if err := p.log.Close(); err != nil {
		return err
	}
	if snapErr != nil {
		return fmt.Errorf("producer snapshot: %w", snapErr)
	}
	return nil
}

// setConfig applies a topic's new effective configuration: the typed config the partition reads
// and, from the next append, the log's segment settings (segment.bytes, segment.ms, index sizes,
// flush policy). The replica manager calls it wherever a partition's TopicConfig is replaced.
func (p *Partition) setConfig(tc TopicConfig, sc segment.Config) error {
	p.cfg.Store(&tc)
	return p.log.SetConfig(sc)
}
