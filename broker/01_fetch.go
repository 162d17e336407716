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
// AbortedTransactions is always empty.
//
// Replicas (ReplicaID, or ReplicaState.ID from v15, >= 0) are served by Partition.readForFollower:
// their fetch offset counts as their log end offset for the high watermark and they read up to the
// log end. Deliberately absent for now: ISR changes from follower lag, preferred read replica
// (always -1), diverging-epoch detection (LastFetchedEpoch is ignored), quotas, rack.

import (
	"context"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/sediment-io/sediment/meta"
)

func init() { register(kmsg.Fetch, 4, 16, (*Broker).handleFetch) }

// fetchTarget is one partition of a fetch, resolved.
type fetchTarget struct {
	sp      *fsPartition
	p       *Partition
	name    string
	id      meta.TopicID
	errCode int16
	res     readResult
}

func (b *Broker) handleFetch(ctx context.Context, c *connCtx, kreq kmsg.Request) (kmsg.Response, error) {
	req := kreq.(*kmsg.FetchRequest)
	resp := req.ResponseKind().(*kmsg.FetchResponse)
	rm := b.replicas

	replicaID := req.ReplicaID
	if req.Version >= 15 {
		replicaID = req.ReplicaState.ID
	}
	fctx := rm.sessions.begin(req, replicaID >= 0)
	if fctx.errCode != 0 {
		resp.ErrorCode = fctx.errCode
		return resp, nil
	}
	defer fctx.done()
	resp.SessionID = fctx.sessionID

	st := b.meta.State()
	targets := make([]fetchTarget, len(fctx.parts))
	for i, sp := range fctx.parts {
		t := &targets[i]
		t.sp = sp
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
		if w == nil || errs || total >= int(req.MinBytes) || ctx.Err() != nil {
			break
		}
		if timer == nil {
			timer = time.NewTimer(time.Duration(req.MaxWaitMillis) * time.Millisecond)
			defer timer.Stop()
		}
		select {
		case <-w.ch:
			continue
		case <-ctx.Done():
		case <-timer.C:
		}
		readTargets(targets, maxBytes, replicaID)
		break
	}

	// Build the response, grouping consecutive partitions of a topic, leaving out what an
	// incremental session need not send.
	var rt *kmsg.FetchResponseTopic
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
			rp.HighWatermark = t.res.hw
			rp.LastStableOffset = t.res.hw
			rp.LogStartOffset = t.res.logStart
			if len(t.res.data) > 0 {
				rp.RecordBatches = t.res.data
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
		if !fctx.include(t.sp, rp.HighWatermark, rp.LogStartOffset, code, len(rp.RecordBatches)) {
			continue
		}
		if t.p != nil {
			t.p.bytesOut.Add(int64(len(rp.RecordBatches)))
		}
		if rt == nil || rt.Topic != t.sp.key.topic || rt.TopicID != t.sp.key.topicID {
			resp.Topics = append(resp.Topics, kmsg.NewFetchResponseTopic())
			rt = &resp.Topics[len(resp.Topics)-1]
			rt.Topic = t.sp.key.topic
			rt.TopicID = t.sp.key.topicID
		}
		rt.Partitions = append(rt.Partitions, rp)
	}
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

// readTargets reads every resolved partition within the response budget and reports the bytes
// read and whether any partition has an error (which ends a long poll at once).
func readTargets(targets []fetchTarget, maxBytes int, replicaID int32) (total int, errs bool) {
	remaining := maxBytes
	first := true
	for i := range targets {
		t := &targets[i]
		if t.errCode != 0 {
			errs = true
			continue
		}
		limit := min(int(t.sp.maxBytes), remaining)
		// Kafka: the first partition that returns data may exceed the limits by one batch.
		if replicaID >= 0 {
			t.res = t.p.readForFollower(replicaID, t.sp.fetchOffset, limit, first)
		} else {
			t.res = t.p.read(t.sp.fetchOffset, limit, first)
		}
		if t.res.err != 0 {
			errs = true
			continue
		}
		if n := len(t.res.data); n > 0 {
			first = false
			total += n
			remaining -= n
			if remaining < 0 {
				remaining = 0
			}
		}
	}
	return total, errs
}
