package broker

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strconv"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/sediment-io/sediment/meta"
	"github.com/sediment-io/sediment/segment"
)

// Replication by pull, follower side (issue 5). One leaderFetcher goroutine per leader broker
// fetches every partition this broker follows from it in one Fetch request (v15: ReplicaState =
// this node and its registered broker epoch, KIP-903; topics by id), as Kafka's
// ReplicaFetcherThread does, so partitions never queue behind each other's long-polls on one
// connection. What it gets is written (AppendReplicatedNoWait) and the next fetch goes out at
// once; the fetcher's durabilityReporter fsyncs and reports the durable offsets on its own
// connection, and only those count toward the leader's HW (replica_durable.go), so acks=all still
// means "on disk on every ISR member" with flush always.
//
// Before fetching for a new leader epoch the follower truncates by OffsetForLeaderEpoch
// (KIP-101/279: to the leader's end offset for the largest epoch both logs know, capped by our
// own end for that epoch; never blindly to the high watermark). The follower's high watermark is min(leader's HW, its own log end).
// Every answer (fetch, OffsetForLeaderEpoch, ListOffsets) is applied only if the replica still
// follows at the leader epoch the request was sent under (followsEpochLocked): leadership can move
// while a request is in flight. KIP-405: an OFFSET_MOVED_TO_TIERED_STORAGE answer (our offset lies
// below the leader's local log start, in data only the bucket holds) restarts the local log at the
// leader's earliest local offset (resetToLeaderLocal) instead of copying history.
//
// Locks: fetcherManager.mu guards the fetcher map; leaderFetcher.mu its partition set. Neither is
// held during a request.

// errInterrupted: the fetch was not sent or its answer not applied because the fetcher's partition
// set changed meanwhile (leaderFetcher.interrupt).
var errInterrupted = errors.New("replica fetch interrupted: the partition set changed")

type fetcherManager struct {
	rm       *ReplicaManager
	mu       sync.Mutex
	fetchers map[int32]*leaderFetcher
}

type leaderFetcher struct {
	m      *fetcherManager
	leader int32
	client replicaClient
	mu     sync.Mutex
	parts  map[*Partition]bool // value: needs truncation before the next fetch
	wake   chan struct{}
	cancel context.CancelFunc
	done   chan struct{}
	dur    *durabilityReporter // fsyncs and reports what this fetcher appended (replica_durable.go)
	// interrupt ends the fetch in flight (nil when none), under mu: a partition added to the set
	// (a new topic, a leadership change) must not wait up to MaxWaitMillis for a long poll on the
	// others to return before its first fetch, which would hold its acks=all that long.
	interrupt   context.CancelFunc
	interrupted bool
}

func newFetcherManager(rm *ReplicaManager) *fetcherManager {
	return &fetcherManager{rm: rm, fetchers: map[int32]*leaderFetcher{}}
}

// follow makes p fetched from leader (removing it from any other fetcher). truncate asks for an
// OffsetForLeaderEpoch round first (new leader or new epoch).
func (m *fetcherManager) follow(p *Partition, leader int32, truncate bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	for id, f := range m.fetchers {
		if id != leader {
			f.remove(p)
		}
	}
	f := m.fetchers[leader]
	if f == nil {
		ctx, cancel := context.WithCancel(m.rm.ctx)
		f = &leaderFetcher{m: m, leader: leader, parts: map[*Partition]bool{}, wake: make(chan struct{}, 1),
			cancel: cancel, done: make(chan struct{})}
		f.client.clientID = "sediment-replica-" + strconv.Itoa(int(m.rm.nodeID))
		f.client.from = m.rm.nodeID
		f.dur = newDurabilityReporter(f)
		m.fetchers[leader] = f
		go f.run(ctx)
	}
	f.mu.Lock()
	if need, ok := f.parts[p]; !ok || truncate || need {
		f.parts[p] = truncate || need || !ok
		if (!ok || truncate && !need) && f.interrupt != nil {
			f.interrupted = true
			f.interrupt()
		}
	}
	f.mu.Unlock()
	select {
	case f.wake <- struct{}{}:
	default:
	}
}

// unfollow stops fetching p (it became leader, or is gone).
func (m *fetcherManager) unfollow(p *Partition) {
	m.mu.Lock()
	defer m.mu.Unlock()
	for _, f := range m.fetchers {
		f.remove(p)
	}
}

func (m *fetcherManager) close() {
	m.mu.Lock()
	fs := m.fetchers
	m.fetchers = map[int32]*leaderFetcher{}
	m.mu.Unlock()
	for _, f := range fs {
		f.cancel()
		<-f.done
	}
}

func (f *leaderFetcher) remove(p *Partition) {
	f.mu.Lock()
	delete(f.parts, p)
	f.mu.Unlock()
}

func (f *leaderFetcher) leaderAddr() (string, bool) {
	br, ok := f.m.rm.b.meta.State().Broker(f.leader)
	if !ok || br.Host == "" {
		return "", false
	}
	return net.JoinHostPort(br.Host, strconv.Itoa(int(br.Port))), true
}

// fetchable snapshots the partitions this fetcher fetches (those not waiting for truncation),
// each with the leader epoch it follows at (read now, before any offset the caller reads after).
func (f *leaderFetcher) fetchable() map[*Partition]int32 {
	f.mu.Lock()
	defer f.mu.Unlock()
	out := make(map[*Partition]int32, len(f.parts))
	for p, truncate := range f.parts {
		if !truncate {
			out[p] = p.currentLeaderEpoch()
		}
	}
	return out
}

func (f *leaderFetcher) run(ctx context.Context) {
	defer close(f.done)
	durDone := make(chan struct{})
	go func() {
		defer close(durDone)
		f.dur.run(ctx)
	}()
	defer func() { <-durDone }() // the reporter ends with ctx
	defer f.client.close()
	log := f.m.rm.log.With("leader", f.leader)
	backoff := func() {
		select {
		case <-ctx.Done():
		case <-time.After(100 * time.Millisecond):
		}
	}
	for ctx.Err() == nil {
		f.mu.Lock()
		parts := make(map[*Partition]bool, len(f.parts))
		for p, t := range f.parts {
			parts[p] = t
		}
		f.mu.Unlock()
		if len(parts) == 0 {
			select {
			case <-ctx.Done():
			case <-f.wake:
			}
			continue
		}
		addr, ok := f.leaderAddr()
		if !ok {
			backoff()
			continue
		}
		if f.client.addr != addr {
			f.client.close()
			f.client.addr = addr
		}
		fetchable, truncFailed := false, false
		for p, truncate := range parts {
			if !truncate {
				fetchable = true
				continue
			}
			if err := f.truncate(ctx, p); err != nil {
				log.Warn("replica truncation", "partition", p.String(), "err", err)
				truncFailed = true
				continue
			}
			fetchable = true
			f.mu.Lock()
			if _, still := f.parts[p]; still {
				f.parts[p] = false
			}
			f.mu.Unlock()
			parts[p] = false
		}
		if truncFailed && !fetchable {
			// Every partition waits for a truncation round that failed (typically an epoch error
			// until this broker or the leader applies the new leadership from meta): without a pause
			// the loop would resend OffsetForLeaderEpoch at once, hundreds of times a second. Short:
			// acks=all on these partitions waits for this follower.
			select {
			case <-ctx.Done():
			case <-time.After(20 * time.Millisecond):
			}
			continue
		}
		if err := f.fetchOnce(ctx, parts); err != nil {
			f.mu.Lock()
			interrupted := f.interrupted
			f.interrupted = false
			f.mu.Unlock()
			if interrupted {
				continue // the partition set changed: fetch again at once, with the new set
			}
			if ctx.Err() == nil {
				log.Debug("replica fetch", "err", err)
			}
			backoff()
		}
	}
}

// truncate runs one OffsetForLeaderEpoch round for p and truncates its log to the leader's end
// offset for our latest epoch when that is below our log end.
func (f *leaderFetcher) truncate(ctx context.Context, p *Partition) error {
	latest, ok := p.log.LatestEpoch()
	if !ok {
		return nil // an empty epoch cache: nothing appended under any leader yet
	}
	req := kmsg.NewPtrOffsetForLeaderEpochRequest()
	req.Version = 4
	req.ReplicaID = f.m.rm.nodeID
	rt := kmsg.NewOffsetForLeaderEpochRequestTopic()
	rt.Topic = p.topic
	rp := kmsg.NewOffsetForLeaderEpochRequestTopicPartition()
	rp.Partition = p.index
	rp.CurrentLeaderEpoch = p.currentLeaderEpoch()
	rp.LeaderEpoch = latest
	rt.Partitions = append(rt.Partitions, rp)
	req.Topics = append(req.Topics, rt)
	resp := kmsg.NewPtrOffsetForLeaderEpochResponse()
	rctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if err := f.client.request(rctx, req, resp); err != nil {
		return err
	}
	if len(resp.Topics) != 1 || len(resp.Topics[0].Partitions) != 1 {
		return fmt.Errorf("OffsetForLeaderEpoch: malformed response")
	}
	out := resp.Topics[0].Partitions[0]
	if out.ErrorCode != 0 {
		return kerr.ErrorForCode(out.ErrorCode)
	}
	if target, ok := p.truncationTarget(latest, out.LeaderEpoch, out.EndOffset); ok {
		return p.truncateTo(target, rp.CurrentLeaderEpoch)
	}
	return nil
}

// truncationTarget turns the leader's OffsetForLeaderEpoch answer for our latest epoch into the
// offset to truncate to, if any.
func (p *Partition) truncationTarget(latest, leaderEpoch int32, leaderEnd int64) (int64, bool) {
	if leaderEnd < 0 {
		return 0, false
	}
	target := leaderEnd
	if leaderEpoch < latest {
		// KIP-279: the leader does not know our latest epoch; our log diverges after the end of
		// the largest epoch both know, which may come before the leader's end for it.
		if _, mine, ok := p.log.EndOffsetForEpoch(leaderEpoch); ok {
			target = min(target, mine)
		}
	}
	return target, target < p.log.EndOffset()
}

func (f *leaderFetcher) fetchOnce(ctx context.Context, parts map[*Partition]bool) error {
	req := kmsg.NewPtrFetchRequest()
	// v15 (KIP-903): the replica id and this broker's registered epoch go in ReplicaState, so the
	// leader can tell this process from an earlier one of the same broker id. Topics by id (v13+).
	req.Version = 15
	req.ReplicaState.ID = f.m.rm.nodeID
	if _, epoch, ok := f.m.rm.b.meta.BrokerEpoch(); ok {
		req.ReplicaState.Epoch = epoch
	}
	req.MaxWaitMillis = 500
	req.MinBytes = 1
	req.MaxBytes = 16 << 20
	req.SessionEpoch = -1
	byTopic := map[meta.TopicID]*kmsg.FetchRequestTopic{}
	index := map[[2]any]*Partition{}
	epochs := map[*Partition]int32{} // the leader epoch each partition was fetched under
	for p, truncate := range parts {
		if truncate {
			continue // still waiting for its truncation round
		}
		t := byTopic[p.topicID]
		if t == nil {
			req.Topics = append(req.Topics, kmsg.NewFetchRequestTopic())
			t = &req.Topics[len(req.Topics)-1]
			t.TopicID = p.topicID
			// Re-take pointers: append may have moved the slice.
			for i := range req.Topics {
				byTopic[meta.TopicID(req.Topics[i].TopicID)] = &req.Topics[i]
			}
			t = byTopic[p.topicID]
		}
		rp := kmsg.NewFetchRequestTopicPartition()
		rp.Partition = p.index
		rp.CurrentLeaderEpoch = p.currentLeaderEpoch()
		epochs[p] = rp.CurrentLeaderEpoch
		// The durable offset first, then the log end: the tag never exceeds the fetch offset.
		// The leader counts only the tag toward the HW (replica_durable.go).
		setDurableOffset(&rp, p.durableEnd())
		rp.FetchOffset = p.log.EndOffset()
		rp.LogStartOffset = p.log.StartOffset()
		rp.PartitionMaxBytes = 4 << 20
		t.Partitions = append(t.Partitions, rp)
		index[[2]any{p.topicID, p.index}] = p
	}
	if len(req.Topics) == 0 {
		return nil
	}
	resp := kmsg.NewPtrFetchResponse()
	rctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	f.mu.Lock()
	if f.interrupted {
		// follow() changed the set after this request was built, before it could be interrupted.
		f.mu.Unlock()
		return errInterrupted
	}
	f.interrupt = cancel
	f.mu.Unlock()
	err := f.client.request(rctx, req, resp)
	f.mu.Lock()
	f.interrupt = nil
	f.mu.Unlock()
	if err != nil {
		return err
	}
	if resp.ErrorCode != 0 {
		return kerr.ErrorForCode(resp.ErrorCode)
	}
	for i := range resp.Topics {
		t := &resp.Topics[i]
		for j := range t.Partitions {
			rp := &t.Partitions[j]
			p := index[[2]any{meta.TopicID(t.TopicID), rp.Partition}]
			if p == nil {
				continue
			}
			switch rp.ErrorCode {
			case 0:
				if err := p.appendFromLeader(rp.RecordBatches, rp.HighWatermark, rp.LogStartOffset, epochs[p]); err != nil {
					f.m.rm.log.Warn("replica append", "partition", p.String(), "err", err)
				}
				if len(rp.RecordBatches) > 0 {
					f.dur.written(p) // fsync it and tell the leader, while this loop fetches on
				}
			case kerr.OffsetMovedToTieredStorage.Code:
				// KIP-405: what we need next is only in the bucket; copy just the leader's local tail.
				if err := f.resetToLeaderLocal(ctx, p, epochs[p]); err != nil {
					f.m.rm.log.Warn("replica reset to the leader's local log start", "partition", p.String(), "err", err)
				}
			case kerr.OffsetOutOfRange.Code:
				// Our log end is past the leader's (a tail from an older epoch): truncate first.
				f.mu.Lock()
				if _, ok := f.parts[p]; ok {
					f.parts[p] = true
				}
				f.mu.Unlock()
			default:
				// NOT_LEADER_OR_FOLLOWER, FENCED/UNKNOWN_LEADER_EPOCH...: meta will tell us who leads.
			}
		}
	}
	return nil
}

// resetToLeaderLocal is the follower side of KIP-405 (Kafka's ReplicaFetcherTierStateMachine): the
// leader answered OFFSET_MOVED_TO_TIERED_STORAGE because our fetch offset lies below its local
// log start, in data that now lives only in the bucket. Instead of copying history the bucket
// already holds, the follower asks the leader for its earliest local offset (ListOffsets -4) and
// its whole-log start (-2), empties its local log to start at the former with the latter as its
// log start (segment.ResetLocal), and fetches on from there.
func (f *leaderFetcher) resetToLeaderLocal(ctx context.Context, p *Partition, epoch int32) error {
	localStart, err := f.listOffset(ctx, p, epoch, -4)
	if err != nil {
		return fmt.Errorf("earliest local offset: %w", err)
	}
	logStart, err := f.listOffset(ctx, p, epoch, -2)
	if err != nil {
		return fmt.Errorf("log start offset: %w", err)
	}
	return p.resetLocalTo(localStart, min(logStart, localStart), epoch)
}

// listOffset asks the leader, as a replica (ListOffsets v8, ReplicaID set), for one offset of p.
func (f *leaderFetcher) listOffset(ctx context.Context, p *Partition, epoch int32, timestamp int64) (int64, error) {
	req := kmsg.NewPtrListOffsetsRequest()
	req.Version = 8 // -4 (earliest local) needs v8
	req.ReplicaID = f.m.rm.nodeID
	rt := kmsg.NewListOffsetsRequestTopic()
	rt.Topic = p.topic
	rp := kmsg.NewListOffsetsRequestTopicPartition()
	rp.Partition = p.index
	rp.CurrentLeaderEpoch = epoch
	rp.Timestamp = timestamp
	rt.Partitions = append(rt.Partitions, rp)
	req.Topics = append(req.Topics, rt)
	resp := kmsg.NewPtrListOffsetsResponse()
	rctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if err := f.client.request(rctx, req, resp); err != nil {
		return 0, err
	}
	if len(resp.Topics) != 1 || len(resp.Topics[0].Partitions) != 1 {
		return 0, fmt.Errorf("ListOffsets: malformed response")
	}
	out := resp.Topics[0].Partitions[0]
	if out.ErrorCode != 0 {
		return 0, kerr.ErrorForCode(out.ErrorCode)
	}
	return out.Offset, nil
}

// resetLocalTo empties the local log and restarts it at localStart with whole-log start logStart
// (KIP-405 follower), if this replica still follows at fetchEpoch and is still behind localStart.
// Everything below localStart was committed on the leader (it only leaves local disk once uploaded
// below the HW), so the follower's HW starts there.
func (p *Partition) resetLocalTo(localStart, logStart int64, fetchEpoch int32) error {
	p.appendMu.Lock()
	defer p.appendMu.Unlock()
	if !p.followsEpochLocked(fetchEpoch) || p.log.EndOffset() >= localStart {
		return nil
	}
	if err := p.removeProducerSnapshot(); err != nil {
		return err
	}
	if err := p.log.ResetLocal(localStart, logStart); err != nil {
		return err
	}
	if err := p.rebuildProducers(); err != nil {
		return err
	}
	p.stateMu.Lock()
	p.leo = p.log.EndOffset()
	if p.hw.Load() < localStart {
		p.hw.Store(localStart)
	}
	p.stateMu.Unlock()
	return nil
}

// appendFromLeader appends what a replica fetch returned (offsets and epochs set by the leader),
// without waiting for an fsync (the fetcher's durabilityReporter makes it durable and reports
// that; only then does it count for the leader's HW), and follows the leader's high watermark
// and log start offset.
// fetchEpoch is the leader epoch the fetch was sent under: a response that arrives after this
// replica's leadership view changed is dropped (see followsEpochLocked).
func (p *Partition) appendFromLeader(batches []byte, leaderHW, leaderLogStart int64, fetchEpoch int32) error {
	p.appendMu.Lock()
	defer p.appendMu.Unlock()
	if !p.followsEpochLocked(fetchEpoch) {
		return nil
	}
	if len(batches) > 0 {
		if _, err := p.log.AppendReplicatedNoWait(batches); err != nil {
			return err
		}
		if err := p.rebuildProducersFrom(batches); err != nil {
			return err
		}
	}
	if leaderLogStart > p.log.StartOffset() && leaderLogStart <= p.log.EndOffset() {
		if err := p.log.SetStartOffset(leaderLogStart); err != nil {
			return err
		}
		p.producers.truncateHead(p.log.StartOffset())
	}
	p.stateMu.Lock()
	defer p.stateMu.Unlock()
	if p.leader {
		return nil
	}
	p.leo = p.log.EndOffset()
	// A follower's HW is the leader's, capped by its own log (it may go down after a restart,
	// when it started from the local log end). Consumers fetching from this follower (KIP-392)
	// long-poll on it: wake them when it moves, as a leader's HW advance does.
	if leaderHW >= 0 {
		if hw := min(leaderHW, p.leo); p.hw.Swap(hw) != hw {
			defer p.notify()
		}
	}
	return nil
}

// rebuildProducersFrom applies the producer fields of replicated batches to the producer state, so
// a follower that becomes leader recognises retries of batches it only replicated.
func (p *Partition) rebuildProducersFrom(batches []byte) error {
	now := p.now()
	for pos := 0; pos+segment.HeaderSize <= len(batches); {
		h, err := segment.ParseBatchHeader(batches[pos:])
		if err != nil {
			return err
		}
		if h.ProducerID() >= 0 && !h.IsControl() {
			p.producers.apply(h.ProducerID(), h.ProducerEpoch(), producerBatch{
				firstSeq: h.BaseSequence(), lastSeq: batchLastSeq(h.BaseSequence(), h.LastOffsetDelta()),
				firstOffset: h.BaseOffset(), lastOffset: h.LastOffset(), timestamp: h.MaxTimestamp(),
			}, now)
		}
		pos += h.Size()
	}
	return nil
}

// followsEpochLocked reports whether this replica is still a follower at leader epoch epoch.
// A fetch or OffsetForLeaderEpoch answer is only applied under the leadership it was asked
// under: a response from the old leader that lands after this broker became leader (a controlled
// shutdown answers in-flight fetches before it closes) would otherwise append old-epoch batches
// behind the new leader's epoch start, past the LEO it acknowledges from, and stall acks=all.
// setLeadership changes leadership under appendMu, which the caller holds.
func (p *Partition) followsEpochLocked(epoch int32) bool {
	p.stateMu.RLock()
	defer p.stateMu.RUnlock()
	return !p.leader && p.leaderEpoch == epoch
}

// truncateTo drops the log from offset on (follower truncation) and rebuilds what depends on it,
// if this replica still follows at leader epoch fetchEpoch.
func (p *Partition) truncateTo(offset int64, fetchEpoch int32) error {
	p.appendMu.Lock()
	defer p.appendMu.Unlock()
	if !p.followsEpochLocked(fetchEpoch) {
		return nil
	}
	if err := p.removeProducerSnapshot(); err != nil {
		return err
	}
	if err := p.log.TruncateTo(offset); err != nil {
		return err
	}
	if err := p.rebuildProducers(); err != nil {
		return err
	}
	p.stateMu.Lock()
	p.leo = p.log.EndOffset()
	if p.hw.Load() > p.leo {
		p.hw.Store(p.leo)
	}
	p.stateMu.Unlock()
	return nil
}

// maybeFollow is called by reconcile after setLeadership: start, keep or stop fetching p.
func (rm *ReplicaManager) maybeFollow(p *Partition, part meta.Partition, epochChanged bool) {
	if part.Leader == rm.nodeID || part.Leader < 0 {
		rm.fetchers.unfollow(p)
		return
	}
	rm.fetchers.follow(p, part.Leader, epochChanged)
}
