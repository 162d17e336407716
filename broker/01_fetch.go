package broker

// Fetch, versions 4–16 (RecordBatch v2; topic ids from v13; KIP-227 sessions from v7).
//
// Long poll: when fewer than MinBytes are available the request waits, up to MaxWaitMs, for an
// append to move the high watermark of one of its partitions (partition waiters, woken by the
// append path — nothing polls). It returns at once on any partition error. Requests on one
// connection are served in order, so a waiting fetch holds only its own connection.
//
// Limits: MaxBytes per response (capped by the broker's fetch.max.bytes) and PartitionMaxBytes per
// partition, except that the first partition with data returns at least one whole batch even if
// it is larger (progress, as Kafka). Batches are returned exactly as stored; a fetch from the
// middle of a batch returns the whole batch (clients skip the earlier records).
//
// Isolation: without transactions the last stable offset equals the high watermark, so
// read_committed and read_uncommitted read the same bytes and LastStableOffset = HighWatermark;
// AbortedTransactions is always empty (an empty list for read_committed, null otherwise, as Kafka).
//
// Replicas (ReplicaID, or ReplicaState.ID from v15, >= 0) are served by Partition.readForFollower:
// their fetch offset counts as their log end offset for the high watermark and they read up to the
// log end. From v15 the fetch's broker epoch (ReplicaState.Epoch, KIP-903) is checked first
// (Partition.noteReplicaEpoch): an older incarnation is NOT_LEADER_OR_FOLLOWER, a newer one resets
// what the leader knew of that follower.
//
// Follower fetching (KIP-392): a consumer fetch from v11 on (it carries client metadata, RackID) is
// served by a follower replica as well as by the leader, up to the high watermark the follower
// knows (Kafka's rule: only v11+ consumers may read from followers). With replica.selector.class =
// org.apache.kafka.common.replica.RackAwareReplicaSelector the leader answers a consumer whose
// RackID is set with PreferredReadReplica instead of records when an in-sync follower that has the
// fetch offset sits in the client's rack and the leader does not (Kafka's RackAwareReplicaSelector:
// the leader if it is in the rack, else the most caught-up replica there); such an answer ends a
// long poll at once. Deliberately absent: diverging-epoch detection (LastFetchedEpoch is ignored),
// quotas.

import (
	"context"
	"encoding/binary"
	"runtime"
	"slices"
	"sync"
	"sync/atomic"
	"time"
	"weak"

	"github.com/twmb/franz-go/pkg/kbin"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/sediment-io/sediment/meta"
	"github.com/sediment-io/sediment/tiering"
)

func init() { register(kmsg.Fetch, 4, 16, (*Broker).handleFetch) }

// fetchTarget is one partition of a fetch, resolved.
type fetchTarget struct {
	sp      *fsPartition
	p       *Partition
	name    string
	id      meta.TopicID
	errCode int16
	// readReplica is the preferred read replica the leader points the consumer at (KIP-392), -1
	// when this broker serves the records itself.
	readReplica int32
	res         readResult
	preRead     bool // res was read concurrently with the partition's own limit (readTargets)
	// durable is a replica's durable position from the partition's durable-offset tag
	// (replica_durable.go), valid when hasDurable (without it the fetch offset is durable too).
	durable    int64
	hasDurable bool
}

// readsFromFollowers reports whether a consumer fetch at this version may be served by a follower
// replica (KIP-392: Kafka allows it for requests with client metadata, v11+).
func readsFromFollowers(version int16, replicaID int32) bool { return replicaID < 0 && version >= 11 }

// preferredReadReplica is Kafka's RackAwareReplicaSelector on the leader: among the leader and the
// in-sync followers whose log end is at least offset, those in clientRack; the leader if it is one
// of them (-1: no redirect), else the one with the highest log end offset (ties: caught up to the
// leader's end most recently). -1 when none qualifies, when this replica is not the leader or when
// the client has no rack. A follower registered as fenced in meta is skipped.
func (p *Partition) preferredReadReplica(st *meta.State, leaderRack, clientRack string, offset int64) int32 {
	if clientRack == "" || leaderRack == clientRack {
		return -1
	}
	p.stateMu.RLock()
	defer p.stateMu.RUnlock()
	if !p.leader {
		return -1
	}
	best, bestLEO, bestCaught := int32(-1), int64(0), time.Time{}
	for _, id := range p.isr {
		leo, ok := p.followerLEO[id]
		if id == p.nodeID || !ok || leo < offset {
			continue
		}
		if br, ok := st.Broker(id); !ok || br.Fenced || br.Rack != clientRack {
			continue
		}
		caught := p.caughtUp[id]
		if best < 0 || leo > bestLEO || leo == bestLEO && caught.After(bestCaught) {
			best, bestLEO, bestCaught = id, leo, caught
		}
	}
	return best
}

func (b *Broker) handleFetch(ctx context.Context, c *connCtx, kreq kmsg.Request) (kmsg.Response, error) {
	req := kreq.(*kmsg.FetchRequest)
	resp := req.ResponseKind().(*kmsg.FetchResponse)
	rm := b.replicas

	// Replica fetches from v15 carry the follower's broker epoch (KIP-903); see noteReplicaEpoch.
	replicaID, replicaEpoch, aliveEpoch := req.ReplicaID, int64(-1), int64(-1)
	if req.Version >= 15 {
		replicaID, replicaEpoch = req.ReplicaState.ID, req.ReplicaState.Epoch
	}
	if replicaID >= 0 {
		aliveEpoch = rm.liveEpoch(replicaID)
	}
	fctx := rm.sessions.begin(req, replicaID >= 0)
	if fctx.errCode != 0 {
		resp.ErrorCode = fctx.errCode
		return resp, nil
	}
	defer fctx.done()
	resp.SessionID = fctx.sessionID

	durables := replicaDurableOffsets(req, replicaID)
	st := b.meta.State()
	rackAware := b.cfg.ReplicaSelectorClass == rackAwareReplicaSelector
	targets := make([]fetchTarget, len(fctx.parts))
	for i, sp := range fctx.parts {
		t := &targets[i]
		t.sp = sp
		t.readReplica = -1
		t.durable, t.hasDurable = durables[sp.key]
		var mt *meta.Topic
		var ok bool
		if req.Version >= 13 {
			t.id = sp.key.topicID
			if mt, ok = st.TopicByID(t.id); ok {
				t.name = mt.Name
			} else {
				t.errCode = kerr.UnknownTopicID.Code
				continue
			}
		} else {
			t.name = sp.key.topic
			if mt, ok = st.Topic(t.name); ok {
				t.id = mt.ID
			} else {
				t.errCode = kerr.UnknownTopicOrPartition.Code
				continue
			}
		}
		p, _, code := rm.lookupIn(mt, sp.key.partition)
		if code == 0 {
			code = p.checkLeader(sp.currentLeaderEpoch)
			// checkLeader answers NOT_LEADER only once the epoch matched (or was not given):
			// a follower replica here may serve this consumer (KIP-392).
			if code == kerr.NotLeaderForPartition.Code && readsFromFollowers(req.Version, replicaID) {
				code = 0
			} else if code == 0 && rackAware && readsFromFollowers(req.Version, replicaID) {
				t.readReplica = p.preferredReadReplica(st, b.cfg.Rack, req.Rack, sp.fetchOffset)
			}
		}
		if code == 0 && replicaID >= 0 {
			code = p.noteReplicaEpoch(replicaID, replicaEpoch, aliveEpoch)
		}
		t.p, t.errCode = p, code
	}

	maxBytes := int(req.MaxBytes)
	if limit := int(b.cfg.FetchMaxBytes); limit > 0 && (maxBytes <= 0 || maxBytes > limit) {
		maxBytes = limit
	}

	// Register before the first read so that an append between the read and the wait is not
	// missed.
	var w *waiter
	if req.MaxWaitMillis > 0 && req.MinBytes > 0 {
		w = newWaiter()
		seen := map[*Partition]bool{}
		for i := range targets {
			if p := targets[i].p; p != nil && !seen[p] {
				seen[p] = true
				p.watch(w)
				defer p.unwatch(w)
			}
		}
	}
	var timer *time.Timer
	for {
		total, errs := readTargets(targets, maxBytes, replicaID)
		if w == nil || errs || total >= int(req.MinBytes) || readBucket(targets) || ctx.Err() != nil {
			break
		}
		if timer == nil {
			timer = time.NewTimer(time.Duration(req.MaxWaitMillis) * time.Millisecond)
			defer timer.Stop()
		}
		// A partition the remote fetch quota answered empty has records as soon as the quota
		// accrues a grant: read again then. Only an append would wake us otherwise, which for
		// history in the bucket never comes, so a replay under the quota would get one batch per
		// MaxWait (kgo's 5 s) instead of the quota's rate.
		var regrant *time.Timer
		var regrantC <-chan time.Time
		if d := quotaRetry(targets); d > 0 {
			regrant = time.NewTimer(d)
			regrantC = regrant.C
		}
		again := false
		select {
		case <-w.ch:
			again = true
		case <-regrantC:
			again = true
		case <-ctx.Done():
		case <-timer.C:
		}
		if regrant != nil {
			regrant.Stop()
		}
		if again {
			continue
		}
		readTargets(targets, maxBytes, replicaID)
		break
	}

	// Build the response, grouping consecutive partitions of a topic, leaving out what an
	// incremental session need not send.
	var rt *kmsg.FetchResponseTopic
	var split []splitRecordSet
	leaders := map[int32]bool{}
	for i := range targets {
		t := &targets[i]
		rp := kmsg.NewFetchResponseTopicPartition()
		rp.Partition = t.sp.key.partition
		code := t.errCode
		if code == 0 {
			code = t.res.err
		}
		rp.ErrorCode = code
		// Never a null record set: librdkafka (kcat) rejects MessageSetSize -1; Kafka always
		// sends an empty one.
		rp.RecordBatches = []byte{}
		if code == 0 {
			rp.PreferredReadReplica = t.readReplica
			rp.HighWatermark = t.res.hw
			rp.LastStableOffset = t.res.hw
			rp.LogStartOffset = t.res.logStart
			if req.IsolationLevel == 1 {
				// As Kafka: read_committed gets an empty aborted list, read_uncommitted null.
				rp.AbortedTransactions = []kmsg.FetchResponseTopicPartitionAbortedTransaction{}
			}
			if len(t.res.data) > 0 {
				rp.RecordBatches = t.res.data
			} else if t.res.parts != nil {
				// Several slices (a read from the bucket across cached chunks): the first one
				// here, all of them in split (see splitRecordSet).
				rp.RecordBatches = t.res.parts[0]
			}
		} else {
			rp.HighWatermark, rp.LastStableOffset, rp.LogStartOffset = -1, -1, -1
			if req.Version >= 12 && (code == kerr.NotLeaderForPartition.Code || code == kerr.FencedLeaderEpoch.Code) {
				// KIP-951: point the client at the current leader without a metadata round trip.
				if part, ok := metaPartition(st, t.name, t.id, rp.Partition); ok && part.Leader >= 0 {
					rp.CurrentLeader.LeaderID, rp.CurrentLeader.LeaderEpoch = part.Leader, part.LeaderEpoch
					leaders[part.Leader] = true
				}
			}
		}
		// A redirect is always sent (the client must learn where to fetch from).
		nrec := len(rp.RecordBatches)
		if code == 0 && t.res.parts != nil {
			nrec = t.res.size()
		}
		if !fctx.include(t.sp, rp.HighWatermark, rp.LogStartOffset, code, nrec) && rp.PreferredReadReplica < 0 {
			continue
		}
		if t.p != nil {
			t.p.bytesOut.Add(int64(nrec))
		}
		if rt == nil || rt.Topic != t.sp.key.topic || rt.TopicID != t.sp.key.topicID {
			resp.Topics = append(resp.Topics, kmsg.NewFetchResponseTopic())
			rt = &resp.Topics[len(resp.Topics)-1]
			rt.Topic = t.sp.key.topic
			rt.TopicID = t.sp.key.topicID
		}
		rt.Partitions = append(rt.Partitions, rp)
		if code == 0 && t.res.parts != nil {
			split = append(split, splitRecordSet{topic: len(resp.Topics) - 1, partition: len(rt.Partitions) - 1, parts: t.res.parts})
		}
	}
	// Every read's chunk-cache buffers stay held until the connection has written the response
	// (a partition left out of it holds its buffers a moment longer than needed, no more).
	var holds []*tiering.Hold
	for i := range targets {
		if h := targets[i].res.hold; h != nil {
			holds = append(holds, h)
		}
	}
	attachFetch(resp, fetchAttachment{split: split, holds: holds})
	if req.Version >= 16 {
		for id := range leaders {
			if br, ok := st.Broker(id); ok {
				e := kmsg.NewFetchResponseBroker()
				e.NodeID, e.Host, e.Port = br.ID, br.Host, br.Port
				if br.Rack != "" {
					e.Rack = kmsg.StringPtr(br.Rack)
				}
				resp.Brokers = append(resp.Brokers, e)
			}
		}
	}
	return resp, nil
}

// readParallelism bounds how many partitions of one fetch are read at the same time.
const readParallelism = 8

// readTargets reads every resolved partition within the response budget and reports the bytes
// read and whether any partition has an error or a preferred read replica (which ends a long poll
// at once).
//
// Kafka's rules are serial: partition i may use min(its PartitionMaxBytes, what the response has
// left), and only the first partition that returns data may exceed that by one batch. Read one by
// one, a consumer of many partitions whose history is in the bucket would wait for the sum of their
// GETs. So the pass in request order reads ahead (readAhead): at a partition with records to read,
// the longest run of following partitions with records whose limits add up to no more than what
// the response has left are read at once, each with its own limit. Within such a run the serial
// rules would have given each partition its own limit, so the reads are the serial ones. The next
// run starts at the partition that did not fit, with what the response then has left; when fewer
// than two fit, the next few partitions are read at once with no less than the pass can give them
// (the tail of a nearly full response, where each would otherwise cost a serial GET for a few
// bytes). The pass applies the rules to every result and re-reads serially the partition whose
// result they would have cut (a second oversized batch, or less room left than it was read with).
// A consumer at Java's or franz-go's defaults (50 MiB responses, 1 MiB per partition) thus gets 50
// partitions read at a time, not one. The result is what the serial reads would have returned.
func readTargets(targets []fetchTarget, maxBytes int, replicaID int32) (total int, errs bool) {
	return readTargetsMaybeConcurrently(targets, maxBytes, replicaID, true)
}

// readTargetsMaybeConcurrently is readTargets; allowConcurrent false forces the serial reads
// (tests compare the two).
func readTargetsMaybeConcurrently(targets []fetchTarget, maxBytes int, replicaID int32, allowConcurrent bool) (total int, errs bool) {
	for i := range targets {
		targets[i].preRead = false
		targets[i].discard() // a long poll's earlier pass: every partition is read again
	}
	remaining := maxBytes
	first := true
	readAheadFrom := 0 // the next target at which a run may be read ahead
	for i := range targets {
		t := &targets[i]
		if t.errCode != 0 {
			errs = true
			continue
		}
		if t.readReplica >= 0 {
			// Pointed elsewhere (KIP-392): no records, the offsets only; answered at once.
			t.res = t.p.read(t.sp.fetchOffset, 0, false)
			errs = true
			continue
		}
		if allowConcurrent && i >= readAheadFrom {
			readAheadFrom = readAhead(targets, i, remaining, replicaID)
		}
		limit := min(int(t.sp.maxBytes), remaining)
		// Kafka: the first partition that returns data may exceed the limits by one batch.
		if !t.preRead || (!first && t.res.size() > limit) {
			t.discard()
			t.readPart(limit, first, replicaID)
		}
		if t.res.err != 0 {
			errs = true
			continue
		}
		if n := t.res.size(); n > 0 {
			first = false
			total += n
			remaining = max(remaining-n, 0)
		}
	}
	return total, errs
}

// readAhead reads at once partitions with records from `from` on, marks them preRead and returns
// the index at which the caller should call it again (with what the response then has left).
//
// It reads the longest run of them whose limits add up to no more than room, each with its own
// limit, and returns the index of the partition that did not fit. When fewer than two fit (the
// response is nearly full: the tail of a fetch of many partitions), it reads the next
// readParallelism of them each with min(its limit, room) instead: no less than the serial pass
// can give them, since what is left only shrinks, so the pass keeps each result that is within the
// partition's limit then and re-reads the others (from the chunk cache or the page cache, which
// this read filled). What such a round reads and does not send is at most readParallelism × room.
func readAhead(targets []fetchTarget, from, room int, replicaID int32) (next int) {
	if room <= 0 {
		return len(targets) // every partition left gets nothing (or one oversized batch if first: read in the pass)
	}
	type read struct{ i, limit int }
	var run []read
	sum := 0
	next = len(targets)
	for i := from; i < len(targets); i++ {
		t := &targets[i]
		if !t.toRead(replicaID) {
			continue // nothing of the response's budget is spent here
		}
		limit := max(int(t.sp.maxBytes), 0)
		if sum+limit > room {
			next = i
			break
		}
		sum += limit
		run = append(run, read{i, limit})
	}
	if len(run) < 2 {
		run, next = run[:0], len(targets)
		for i := from; i < len(targets); i++ {
			t := &targets[i]
			if !t.toRead(replicaID) {
				continue
			}
			if len(run) == readParallelism {
				next = i
				break
			}
			run = append(run, read{i, min(max(int(t.sp.maxBytes), 0), room)})
		}
		if len(run) < 2 {
			return next
		}
	}
	// Helpers that start after the work is gone just exit: the caller waits for the reads, not for
	// the helpers (a fetch never waits on the scheduler for an idle goroutine).
	var taken atomic.Int32
	var left sync.WaitGroup
	left.Add(len(run))
	work := func() {
		for {
			k := int(taken.Add(1) - 1)
			if k >= len(run) {
				return
			}
			t := &targets[run[k].i]
			t.readPart(run[k].limit, true, replicaID)
			t.preRead = true
			left.Done()
		}
	}
	for range min(len(run), readParallelism) - 1 {
		go work()
	}
	work()
	left.Wait()
	return next
}

// readBucket reports whether a partition of the fetch got records from the bucket. Such a fetch
// is answered at once, whatever its MinBytes, as Kafka answers one once its remote read completes
// (DelayedRemoteFetch): a read from the bucket returns the batches that have arrived, which may be
// fewer than MinBytes while more are on the way, and only an append — which never comes for
// history — would wake a fetch waiting for MinBytes. A replay whose consumer sets
// fetch.min.bytes above what one read returns would otherwise wait MaxWait on every fetch.
func readBucket(targets []fetchTarget) bool {
	for i := range targets {
		if targets[i].res.charged > 0 {
			return true
		}
	}
	return false
}

// quotaRetry is the soonest time after which a target the remote fetch quota answered without
// records will get a grant; 0 if none was answered so.
func quotaRetry(targets []fetchTarget) time.Duration {
	var d time.Duration
	for i := range targets {
		if r := targets[i].res.retry; r > 0 && targets[i].res.size() == 0 && (d == 0 || r < d) {
			d = r
		}
	}
	return d
}

// toRead reports whether this broker reads records of t's partition for the fetch: no error, no
// preferred read replica elsewhere, and records at the fetch offset.
func (t *fetchTarget) toRead(replicaID int32) bool {
	return t.errCode == 0 && t.readReplica < 0 && t.hasRecords(replicaID)
}

// hasRecords reports whether t's partition has records at or after the fetch offset for this
// fetcher (a consumer reads below the high watermark, a replica to the log end).
func (t *fetchTarget) hasRecords(replicaID int32) bool {
	if replicaID >= 0 {
		return t.sp.fetchOffset < t.p.log.EndOffset()
	}
	return t.sp.fetchOffset < t.p.HighWatermark()
}

// discard drops t's last read: that result is about to be replaced by a new read and is never
// sent. It gives back to the remote fetch quota what the read took from it: the new read comes from
// the chunk cache the discarded one filled, so without this a consumer of many partitions under a
// quota (KIP-956 or the adaptive throttle) was charged twice for the bytes its fetches read ahead
// and then cut. And it releases the chunk-cache buffers the records lay in.
func (t *fetchTarget) discard() {
	if t.res.charged > 0 && t.p != nil && t.p.tier != nil && t.p.tier.remote != nil {
		t.p.tier.remote.Quota().Refund(t.res.charged)
	}
	t.res.charged = 0
	if t.res.hold != nil {
		t.res.data, t.res.parts = nil, nil // nothing may read them once released
		t.res.hold.Release()
		t.res.hold = nil
	}
}

// readPart reads t's partition from its fetch offset: a replica's fetch through readForFollower
// (which also records the replica's position), a consumer's through read.
func (t *fetchTarget) readPart(limit int, minOneBatch bool, replicaID int32) {
	if replicaID >= 0 {
		if t.sp.maxBytes <= 0 {
			// A position report only (the follower's durability report, replica_durable.go).
			limit, minOneBatch = 0, false
		}
		durable := int64(-1)
		if t.hasDurable {
			durable = t.durable
		}
		t.res = t.p.readForFollowerAcked(replicaID, t.sp.fetchOffset, durable, limit, minOneBatch)
	} else {
		t.res = t.p.readParts(t.sp.fetchOffset, limit, minOneBatch)
	}
}

// Encoding a fetch response without copying its record bytes.
//
// kmsg (the project's only codec) would copy every record byte into the response buffer, and the
// connection would then copy the buffer into the socket: for a consumer reading from disk that is
// one full extra pass over the data per fetch (the largest broker cost in the consume profile). So
// a large FetchResponse is encoded by kmsg twice with its record sets replaced — E0 with every
// non-empty record set empty, E1 with each of them one byte long — and the two encodings are
// walked side by side: they are identical except at each replaced record set, where E0 has the
// length prefix of an empty set (int32 0, or uvarint 1 when flexible) and E1 the prefix of a 1-byte
// set plus that byte. Those places are exactly where the record sets go, in encoding order. The
// frame is then E0 with each empty prefix swapped for the real one (kbin), and the record sets
// written from where they are (net.Buffers, one writev). No byte offset is computed by hand, and
// the walk checks every assumption; if one fails the response is encoded the ordinary way.

// spliceMinRecordBytes: a fetch response with fewer record bytes is copied as usual (one memmove of
// a few KiB costs less than a second metadata encoding and more iovecs).
const spliceMinRecordBytes = 64 << 10

// spliceScratch is reused across responses on one connection (the writer goroutine's).
type spliceScratch struct {
	e0, e1 []byte
	parts  []*kmsg.FetchResponseTopicPartition // the partitions whose record sets are spliced
	recs   [][]byte                            // their record sets
	many   [][][]byte                          // per spliced partition: its record set's slices when split (else nil)
	sizes  []int                               // per spliced partition: its record set's length
	at     []int                               // per replaced record set: index in e0 of the last byte of its empty length prefix
}

// oneByteRecords is E1's stand-in record set; its content does not matter.
var oneByteRecords = []byte{0}

// Record sets in several slices, and buffers held until written.
//
// A read from the bucket that spans cached chunks comes as the chunks' slices (readResult.parts);
// copying them into one buffer was 9 % of the broker's CPU in a replay from the bucket. kmsg's
// RecordBatches is one []byte, so handleFetch leaves the first slice there and attaches all of
// them to the response (fetchAttachment), keyed by a weak pointer to it (the connection's response
// type stays kmsg's); the writer takes them (frameBuilder.add) and addFetch writes each slice in
// place. When it cannot splice, addFetch joins them into RecordBatches first, so the ordinary
// encoding sends the whole record set (the first slice alone would still be valid Kafka — clients
// drop a partial trailing batch and fetch again — but is never sent alone).
//
// The attachment also carries the reads' Holds on the chunk-cache buffers their records lie in:
// the writer releases them once the socket write has returned (the kernel has copied the bytes),
// and the cache may then reuse the buffers. An entry holds no pointer into its response, so a
// response that is never written (its connection closed first) becomes unreachable and a cleanup
// drops the entry; its Holds are then never released, which only leaves those buffers to the GC.
type splitRecordSet struct {
	topic, partition int // indexes in FetchResponse.Topics and in that topic's Partitions
	parts            [][]byte
}

// fetchAttachment is what handleFetch attaches to a FetchResponse for the connection's writer.
type fetchAttachment struct {
	split []splitRecordSet // record sets in several slices, in response order
	holds []*tiering.Hold  // released once the response was written
}

var (
	fetchAttached sync.Map     // weak.Pointer[kmsg.FetchResponse] → fetchAttachment
	attachPending atomic.Int64 // entries in fetchAttached: the writer looks up only when there are some
)

// attachFetch records att for resp's writer (nothing to record: no entry).
func attachFetch(resp *kmsg.FetchResponse, att fetchAttachment) {
	if len(att.split) == 0 && len(att.holds) == 0 {
		return
	}
	w := weak.Make(resp)
	fetchAttached.Store(w, att)
	attachPending.Add(1)
	runtime.AddCleanup(resp, func(w weak.Pointer[kmsg.FetchResponse]) {
		if _, ok := fetchAttached.LoadAndDelete(w); ok {
			attachPending.Add(-1)
		}
	}, w)
}

// takeAttachment returns and forgets fr's attachment.
func takeAttachment(fr *kmsg.FetchResponse) fetchAttachment {
	if attachPending.Load() == 0 {
		return fetchAttachment{}
	}
	v, ok := fetchAttached.LoadAndDelete(weak.Make(fr))
	if !ok {
		return fetchAttachment{}
	}
	attachPending.Add(-1)
	return v.(fetchAttachment)
}

// addFetch appends fr (at its version) as one frame with correlation id corr to fb, splicing in
// record sets instead of copying them when the response carries at least minSplice record bytes.
// split is fr's record sets in several slices (fetchAttachment). It reports false (and leaves fb
// unchanged) when the response should be encoded the usual way; split record sets are then joined
// into their RecordBatches first.
func (fb *frameBuilder) addFetch(corr int32, fr *kmsg.FetchResponse, split []splitRecordSet, minSplice int) bool {
	s := &fb.splice
	ps, recs, many, sizes, total := s.parts[:0], s.recs[:0], s.many[:0], s.sizes[:0], 0
	for i := range fr.Topics {
		for j := range fr.Topics[i].Partitions {
			if p := &fr.Topics[i].Partitions[j]; len(p.RecordBatches) > 0 {
				var parts [][]byte
				if len(split) > 0 && split[0].topic == i && split[0].partition == j {
					parts, split = split[0].parts, split[1:]
				}
				n := len(p.RecordBatches)
				if parts != nil {
					n = 0
					for _, b := range parts {
						n += len(b)
					}
				}
				ps = append(ps, p)
				recs = append(recs, p.RecordBatches)
				many = append(many, parts)
				sizes = append(sizes, n)
				total += n
			}
		}
	}
	s.parts, s.recs, s.many, s.sizes = ps, recs, many, sizes
	defer func() { clear(s.parts); clear(s.recs); clear(s.many) }() // pin nothing after the write
	unsplit := func() bool {
		for k, parts := range many {
			if parts != nil {
				ps[k].RecordBatches = slices.Concat(parts...)
			}
		}
		return false
	}
	if total == 0 || total < minSplice {
		return unsplit()
	}
	for _, p := range ps {
		p.RecordBatches = []byte{}
	}
	s.e0 = fr.AppendTo(s.e0[:0])
	for _, p := range ps {
		p.RecordBatches = oneByteRecords
	}
	s.e1 = fr.AppendTo(s.e1[:0])
	for k, p := range ps {
		p.RecordBatches = recs[k]
	}

	flexible := fr.IsFlexible()
	at, ok := findRecordFields(s.e0, s.e1, flexible, s.at[:0])
	s.at = at
	if !ok || len(at) != len(recs) {
		return unsplit()
	}

	// The frame: size, correlation id, the flexible header's empty tag section, then E0 with
	// each empty record-set prefix replaced by the real prefix and the records.
	size := 4 + len(s.e0) + total
	if flexible {
		size++
	}
	start := len(fb.buf)
	fb.buf = binary.BigEndian.AppendUint32(fb.buf, 0)
	fb.buf = binary.BigEndian.AppendUint32(fb.buf, uint32(corr))
	if flexible {
		fb.buf = append(fb.buf, 0)
	}
	last := 0
	for k, i := range at {
		prefixStart, emptyLen := i, 1
		if !flexible {
			prefixStart, emptyLen = i-3, 4
		}
		fb.buf = append(fb.buf, s.e0[last:prefixStart]...)
		before := len(fb.buf)
		if flexible {
			fb.buf = kbin.AppendUvarint(fb.buf, uint32(sizes[k]+1))
		} else {
			fb.buf = kbin.AppendInt32(fb.buf, int32(sizes[k]))
		}
		size += len(fb.buf) - before - emptyLen
		if many[k] != nil {
			for _, b := range many[k] {
				fb.external(b)
			}
		} else {
			fb.external(recs[k])
		}
		last = i + 1
	}
	fb.buf = append(fb.buf, s.e0[last:]...)
	binary.BigEndian.PutUint32(fb.buf[start:], uint32(size))
	fb.size += size + 4
	return true
}

// findRecordFields walks e0 and e1 (see above) and appends to at, for each record set that is
// empty in e0 and one byte long in e1, the index in e0 of the last byte of its length prefix. It
// reports false when the two encodings differ in any other way.
func findRecordFields(e0, e1 []byte, flexible bool, at []int) ([]int, bool) {
	i, j := 0, 0
	for {
		n := commonPrefixLen(e0[i:], e1[j:])
		i += n
		j += n
		if i == len(e0) {
			return at, j == len(e1)
		}
		// e0[i] ends an empty prefix; e1[j] ends a 1-byte prefix, followed by the byte.
		if j+1 >= len(e1) {
			return at, false
		}
		if flexible {
			if e0[i] != 1 || e1[j] != 2 {
				return at, false
			}
		} else if i < 3 || e0[i-3]|e0[i-2]|e0[i-1]|e0[i] != 0 || e1[j] != 1 {
			return at, false
		}
		at = append(at, i)
		i++
		j += 2
	}
}

// commonPrefixLen is the length of the longest common prefix of a and b.
func commonPrefixLen(a, b []byte) int {
	n := min(len(a), len(b))
	i := 0
	for i+8 <= n && binary.LittleEndian.Uint64(a[i:]) == binary.LittleEndian.Uint64(b[i:]) {
		i += 8
	}
	for i < n && a[i] == b[i] {
		i++
	}
	return i
}
