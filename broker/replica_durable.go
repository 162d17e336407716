package broker

import (
	"context"
	"encoding/binary"
	"errors"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/sediment-io/sediment/meta"
)

// Pipelined replication with separate durability reports (issue 5: acks=all means "on disk on
// every ISR member", without making the follower's fetch loop wait for its fsyncs).
//
// A follower used to append what a fetch returned, fdatasync it, and only then send the next
// fetch, whose fetch offset told the leader its position: one fetch round trip plus every
// partition's fsync, one after another, per cycle, and a record produced meanwhile waited for the
// rest of the cycle, its own cycle and the next fetch. Now the follower's loop appends (write only)
// and fetches on at once; the fetcher's durabilityReporter fsyncs each partition that has unsynced
// writes on a goroutine of its own, in parallel, and reports the offsets now durable to the leader
// at once on a connection of its own (the data connection may be in a long poll).
//
// The leader must not count a follower's fetch offset toward the high watermark any more: it may
// cover writes still in the follower's page cache. So every replica fetch from this follower
// carries, per partition, a tagged field (durableOffsetTag) with its durable offset; the leader
// uses min(tag, fetch offset) as the follower's acknowledged position for the HW
// (Partition.followerAcked) and the fetch offset as its log end (followerLEO: ISR rejoin,
// KIP-392). Lag (caughtUp) follows the acknowledged position with Kafka's previous-fetch rule
// (updateCaughtUpLocked). A fetch without the tag (another implementation, a test's raw fetch)
// keeps the old meaning: its fetch offset is durable and counts for all of these.
// Apache Kafka brokers ignore unknown tags, and Sediment's leaders never need the tag from a
// follower that syncs before fetching.
//
// A durability report is an ordinary replica Fetch (v15, topics by id, ReplicaState with this
// broker's epoch, like the fetch loop's) with MaxWaitMillis 0 and PartitionMaxBytes 0: the leader
// applies the same leader-epoch and KIP-903 checks, records the positions and answers at once
// without records.
//
// With a flush policy other than always nothing is fsynced per append anywhere (the leader's own
// acks=all does not wait for a sync either), so the durable offset reported is the log end.
//
// Goroutines: one durabilityReporter per leaderFetcher, started and stopped with it: sendLoop
// reports, and one syncer goroutine per partition with unsynced writes fsyncs it (written). None
// takes a partition lock while it fsyncs or waits for the leader.

// durableOffsetTag is the Fetch request partition tag carrying a follower's durable offset (an
// int64, big endian). Kafka uses partition tag 0 (ReplicaDirectoryId, v17); this number is far
// from any Kafka will assign.
const durableOffsetTag = 0x5ED1

// setDurableOffset puts durable into rp's tagged fields.
func setDurableOffset(rp *kmsg.FetchRequestTopicPartition, durable int64) {
	rp.UnknownTags.Set(durableOffsetTag, binary.BigEndian.AppendUint64(nil, uint64(durable)))
}

// replicaDurableOffsets collects the durable-offset tags of a replica's fetch by partition key
// (nil for consumers). A malformed tag (not 8 bytes, negative) is ignored: the partition then
// counts its fetch offset, the old meaning.
func replicaDurableOffsets(req *kmsg.FetchRequest, replicaID int32) map[fsKey]int64 {
	if replicaID < 0 || req.Version < 12 {
		return nil // tags exist only in flexible versions (12+)
	}
	var out map[fsKey]int64
	for i := range req.Topics {
		t := &req.Topics[i]
		for j := range t.Partitions {
			rp := &t.Partitions[j]
			if rp.UnknownTags.Len() == 0 {
				continue
			}
			rp.UnknownTags.Each(func(key uint32, val []byte) {
				if key != durableOffsetTag || len(val) != 8 {
					return
				}
				d := int64(binary.BigEndian.Uint64(val))
				if d < 0 {
					return
				}
				if out == nil {
					out = map[fsKey]int64{}
				}
				out[keyOf(req.Version, t, rp.Partition)] = d
			})
		}
	}
	return out
}

// durableEnd is the offset below which this replica's log is on disk as far as acks=all is
// concerned: the log's durable offset with flush policy always, its end otherwise.
func (p *Partition) durableEnd() int64 {
	if !p.flushAlways {
		return p.log.EndOffset()
	}
	return p.log.DurableOffset()
}

// syncedEnd makes the whole local log durable (flush policy always) and returns durableEnd. A
// failed sync leaves the durable offset where it was (the log then refuses writes: segment's
// sticky error), so what it returns is still only what is on disk.
func (p *Partition) syncedEnd() int64 {
	if p.flushAlways {
		_ = p.log.WaitDurable(p.log.EndOffset())
	}
	return p.durableEnd()
}

// leoAt is the leader's durable log end at a follower's fetch.
type leoAt struct {
	leo int64
	at  time.Time
}

// updateCaughtUpLocked applies Kafka's caught-up rule (Replica.updateFetchState) to the
// follower's acknowledged (durable) position: caught up now if it reaches the leader's durable
// LEO, else caught up as of its previous fetch if it reaches the LEO the leader had then. The
// durable position, not the fetch offset, so that a follower whose fsyncs stall (a failing disk)
// while it goes on fetching leaves the ISR after replica.lag.time.max.ms instead of holding every
// acks=all produce; the previous-fetch clause keeps a follower that trails by one fsync under
// steady load in the ISR (its durable offset rarely equals the moving LEO). stateMu held.
func (p *Partition) updateCaughtUpLocked(replicaID int32) {
	now := p.now()
	acked := p.followerAcked[replicaID]
	if acked >= p.leo {
		p.caughtUp[replicaID] = now
	} else if prev, ok := p.lastReport[replicaID]; ok && acked >= prev.leo && prev.at.After(p.caughtUp[replicaID]) {
		p.caughtUp[replicaID] = prev.at
	}
	p.lastReport[replicaID] = leoAt{leo: p.leo, at: now}
}

// durabilityReporter fsyncs what its leaderFetcher appended and reports durable offsets to the
// leader (see the file comment).
type durabilityReporter struct {
	f      *leaderFetcher
	client replicaClient
	synced chan struct{} // cap 1: a partition's durable offset moved; sendLoop reports
	// reported is the durable offset last reported per partition (sendLoop's).
	reported map[*Partition]int64

	mu      sync.Mutex
	syncing map[*Partition]*partitionSync // per partition with unsynced writes: its syncer
	closed  bool                          // run has ended: no new syncers
	syncers sync.WaitGroup
}

// partitionSync is one partition's syncer state (under durabilityReporter.mu): the log end it
// must make durable and whether its goroutine runs.
type partitionSync struct {
	target  int64
	running bool
}

func newDurabilityReporter(f *leaderFetcher) *durabilityReporter {
	r := &durabilityReporter{f: f, synced: make(chan struct{}, 1), reported: map[*Partition]int64{},
		syncing: map[*Partition]*partitionSync{}}
	r.client.clientID = f.client.clientID + "-durable"
	r.client.from = f.client.from
	return r
}

// kickSend wakes sendLoop (coalesces).
func (r *durabilityReporter) kickSend() {
	select {
	case r.synced <- struct{}{}:
	default:
	}
}

// written is called by the fetch loop after it appended to p: p's syncer makes the new log end
// durable, starting at once. One syncer goroutine per partition with unsynced writes, looping
// while the fetch loop moves the target (segment's group commit shares each fsync among the
// writes it covers): a partition's fsync never waits for a round over the other partitions, nor
// for a report's answer. (A first version synced all dirty partitions in rounds: under a busy
// disk, 1 MiB batches, the median from a follower's fetch to its acknowledgement was 125-160 ms
// against fsync rounds of 15-27 ms and report round trips of 10-33 ms.)
func (r *durabilityReporter) written(p *Partition) {
	if !p.flushAlways {
		r.kickSend() // nothing is fsynced per append: the log end is the durable offset
		return
	}
	end := p.log.EndOffset()
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.closed {
		return
	}
	s := r.syncing[p]
	if s == nil {
		s = &partitionSync{}
		r.syncing[p] = s
	}
	s.target = max(s.target, end)
	if s.running {
		return
	}
	s.running = true
	r.syncers.Add(1)
	go r.syncPartition(p, s)
}

// syncPartition fsyncs p up to its target until the target stops moving, waking sendLoop after
// each sync. An error (truncated meanwhile, closed, I/O) ends it: the durable offset stays below
// the end, and only the durable offset is ever reported; the next write starts a new syncer.
func (r *durabilityReporter) syncPartition(p *Partition, s *partitionSync) {
	defer r.syncers.Done()
	for {
		r.mu.Lock()
		target := s.target
		r.mu.Unlock()
		err := p.log.WaitDurable(target)
		r.kickSend()
		r.mu.Lock()
		if err != nil || s.target <= target || r.closed {
			s.running = false
			delete(r.syncing, p)
			r.mu.Unlock()
			return
		}
		r.mu.Unlock()
	}
}

// run reports (sendLoop) until ctx ends, then waits for the partition syncers.
func (r *durabilityReporter) run(ctx context.Context) {
	r.sendLoop(ctx)
	r.mu.Lock()
	r.closed = true
	r.mu.Unlock()
	r.syncers.Wait()
}

// sendLoop reports the durable offsets that moved, once per wake-up from a syncer (coalesced).
func (r *durabilityReporter) sendLoop(ctx context.Context) {
	defer r.client.close()
	for {
		select {
		case <-ctx.Done():
			return
		case <-r.synced:
		}
		// The epochs are read before the durable offsets (fetchable, then report), so a report
		// never pairs an offset of a newer log state with an older epoch.
		if err := r.report(ctx, r.f.fetchable()); err != nil && ctx.Err() == nil {
			r.f.m.rm.log.Debug("replica durability report", "leader", r.f.leader, "err", err)
			select {
			case <-ctx.Done():
				return
			case <-time.After(100 * time.Millisecond):
			}
			select { // report again: the positions are still unknown to the leader
			case r.synced <- struct{}{}:
			default:
			}
		}
	}
}

// report sends one position-only replica fetch with the durable offsets that moved since the last
// report. Partition errors in the answer are ignored: the fetch loop handles them on its own
// connection.
func (r *durabilityReporter) report(ctx context.Context, parts map[*Partition]int32) error {
	// The same kind of fetch as the fetch loop's (v15, topics by id, KIP-903 broker epoch in
	// ReplicaState): the leader applies the same epoch checks to both.
	req := kmsg.NewPtrFetchRequest()
	req.Version = 15
	req.ReplicaState.ID = r.f.m.rm.nodeID
	if _, epoch, ok := r.f.m.rm.b.meta.BrokerEpoch(); ok {
		req.ReplicaState.Epoch = epoch
	}
	req.MaxWaitMillis = 0
	req.MinBytes = 0
	req.MaxBytes = 0
	req.SessionEpoch = -1
	byTopic := map[meta.TopicID]int{}
	sent := map[*Partition]int64{}
	for p, epoch := range parts {
		d := p.durableEnd()
		if last, ok := r.reported[p]; ok && last == d {
			continue
		}
		i, ok := byTopic[p.topicID]
		if !ok {
			i = len(req.Topics)
			byTopic[p.topicID] = i
			t := kmsg.NewFetchRequestTopic()
			t.TopicID = p.topicID
			req.Topics = append(req.Topics, t)
		}
		rp := kmsg.NewFetchRequestTopicPartition()
		rp.Partition = p.index
		// The log end, read after the durable offset: never below it.
		rp.FetchOffset = p.log.EndOffset()
		rp.CurrentLeaderEpoch = epoch
		rp.LogStartOffset = p.log.StartOffset()
		rp.PartitionMaxBytes = 0 // a position report: no records wanted
		setDurableOffset(&rp, d)
		req.Topics[i].Partitions = append(req.Topics[i].Partitions, rp)
		sent[p] = d
	}
	for p := range r.reported {
		if _, ok := parts[p]; !ok {
			delete(r.reported, p) // no longer fetched from this leader
		}
	}
	if len(sent) == 0 {
		return nil
	}
	addr, ok := r.f.leaderAddr()
	if !ok {
		return errNoLeaderAddr
	}
	if r.client.addr != addr {
		r.client.close()
		r.client.addr = addr
	}
	resp := kmsg.NewPtrFetchResponse()
	rctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if err := r.client.request(rctx, req, resp); err != nil {
		return err
	}
	// Remember only what the leader took: a partition answered with an error (a stale epoch, a
	// leader that moved) is reported again next time.
	for i := range resp.Topics {
		t := &resp.Topics[i]
		for j := range t.Partitions {
			rp := &t.Partitions[j]
			if rp.ErrorCode != 0 {
				continue
			}
			for p, d := range sent {
				if p.topicID == meta.TopicID(t.TopicID) && p.index == rp.Partition {
					r.reported[p] = d
				}
			}
		}
	}
	return nil
}

var errNoLeaderAddr = errors.New("the leader's address is unknown")
