package broker

// Produce, versions 3–13 (RecordBatch v2 only; v13 names topics by id).
//
// acks=0: no response; as Kafka, if any partition failed the connection is closed instead, so the
// producer notices and refreshes its metadata. acks=1: answered once the batch is durable on the
// leader per the flush policy. acks=-1 (all): answered once the high watermark (the minimum log end
// offset over the ISR) has passed the batch, or with REQUEST_TIMED_OUT after TimeoutMillis. Any
// other acks value is INVALID_REQUIRED_ACKS.
//
// Two phases. On the connection's reader: validation, the producer-state check and the append
// (partitions of one request concurrently, each to its own log), so pipelined requests get
// offsets in request order. Then, as a deferredResponse (handlers.go) off the reader: waiting for
// durability (fsyncs of the partitions overlap, and the next pipelined requests append meanwhile
// and share the group commit) and, for acks=all, the HW; the connection answers in request order.
// acks=0 waits on the reader, as there is no response to defer. Validation is
// partition_validate.go; idempotent producer checks are partition_producers.go.
//
// Deliberately ignored: TransactionID (transactions are absent; transactional batches are refused
// with INVALID_TXN_STATE), quotas (ThrottleMillis is 0), per-record ErrorRecords (the
// ErrorMessage names the problem).

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/sediment-io/sediment/meta"
)

func init() { register(kmsg.Produce, 3, 13, (*Broker).handleProduce) }

func (b *Broker) handleProduce(ctx context.Context, c *connCtx, kreq kmsg.Request) (kmsg.Response, error) {
	req := kreq.(*kmsg.ProduceRequest)
	resp := req.ResponseKind().(*kmsg.ProduceResponse)
	if b.tier != nil {
		b.tier.throttle.onProduce() // producers arriving during a replay: cold reads back off now
	}
	st := b.meta.State()
	rm := b.replicas
	acksOK := req.Acks == 0 || req.Acks == 1 || req.Acks == -1

	type job struct {
		p    *Partition
		rp   *kmsg.ProduceResponseTopicPartition
		recs []byte
		res  appendResult
	}
	var jobs []*job
	jobs2results := func(jobs []*job) []produceJob {
		out := make([]produceJob, len(jobs))
		for i, j := range jobs {
			out[i] = produceJob{p: j.p, rp: j.rp, res: &j.res}
		}
		return out
	}
	failedEarly := !acksOK // any partition error: with acks=0 the connection is closed instead
	resp.Topics = make([]kmsg.ProduceResponseTopic, len(req.Topics))
	for i := range req.Topics {
		t := &req.Topics[i]
		rt := &resp.Topics[i]
		*rt = kmsg.NewProduceResponseTopic()
		rt.Topic, rt.TopicID = t.Topic, t.TopicID
		rt.Partitions = make([]kmsg.ProduceResponseTopicPartition, len(t.Partitions))
		for j := range t.Partitions {
			tp := &t.Partitions[j]
			rp := &rt.Partitions[j]
			*rp = kmsg.NewProduceResponseTopicPartition()
			rp.Partition = tp.Partition
			rp.BaseOffset = -1
			if !acksOK {
				rp.ErrorCode = kerr.InvalidRequiredAcks.Code
				continue
			}
			var p *Partition
			var code int16
			if req.Version >= 13 {
				p, _, code = rm.lookupPartitionByID(st, t.TopicID, tp.Partition)
			} else {
				p, _, code = rm.lookupPartition(st, t.Topic, tp.Partition)
			}
			if code == 0 {
				code = p.checkLeader(-1)
			}
			if code != 0 {
				failedEarly = true
				rp.ErrorCode = code
				fillProduceLeader(rp, st, t.Topic, t.TopicID, req.Version)
				continue
			}
			jobs = append(jobs, &job{p: p, rp: rp, recs: tp.Records})
		}
	}

	// Append phase, on the connection's reader: offsets are assigned in request order. The
	// records are not referenced afterwards, so a pending response does not pin the request.
	version, acks := req.Version, req.Acks
	run := func(j *job) { j.res = j.p.appendClientNoWait(version, acks, j.recs); j.recs = nil }
	if len(jobs) == 1 {
		run(jobs[0])
	} else if len(jobs) > 1 {
		var wg sync.WaitGroup
		for _, j := range jobs {
			wg.Add(1)
			go func() { defer wg.Done(); run(j) }()
		}
		wg.Wait()
	}

	// Completion phase: durability (and the ISR for acks=all), then the response. It runs off
	// the reader (deferredResponse) so that the next pipelined request is appended meanwhile and
	// shares the fsync.
	var wctx context.Context
	cancel := func() {}
	if acks == -1 {
		// The timeout counts from the request's arrival, not from when its wait starts.
		wctx, cancel = context.WithTimeout(ctx, time.Duration(max(req.TimeoutMillis, 0))*time.Millisecond)
	}
	finish := func() (failed bool) {
		defer cancel()
		if len(jobs) == 1 {
			jobs[0].p.completeAppend(&jobs[0].res)
		} else if len(jobs) > 1 {
			var wg sync.WaitGroup
			for _, j := range jobs {
				if j.res.err == nil && j.res.waitUpTo != 0 {
					wg.Add(1)
					go func() { defer wg.Done(); j.p.completeAppend(&j.res) }()
				}
			}
			wg.Wait()
		}
		return completeProduce(resp, st, jobs2results(jobs), version, acks, wctx) || failedEarly
	}
	if acks == 0 {
		// No response: as before, the reader waits (a failure closes the connection).
		if finish() {
			return nil, errors.New("produce with acks=0 failed on at least one partition: closing the connection as Kafka does")
		}
		return nil, nil
	}
	if len(jobs) == 0 {
		finish()
		return resp, nil
	}
	return &deferredResponse{Response: resp, wait: func() { finish() }}, nil
}

// produceJob is one partition's part of a produce request, for completeProduce.
type produceJob struct {
	p   *Partition
	rp  *kmsg.ProduceResponseTopicPartition
	res *appendResult
}

// completeProduce fills resp from the completed appends (errors, offsets, the v10+ leader
// endpoints) and, for acks=all, waits for the HW on each appended partition until wctx ends. It
// reports whether any partition failed.
func completeProduce(resp *kmsg.ProduceResponse, st *meta.State, jobs []produceJob, version, acks int16, wctx context.Context) (failed bool) {
	for _, j := range jobs {
		rp := j.rp
		if j.res.err != nil {
			failed = true
			rp.ErrorCode = j.res.err.code
			if version >= 8 {
				rp.ErrorMessage = kmsg.StringPtr(j.res.err.msg)
			}
			fillProduceLeader(rp, st, j.p.topic, j.p.topicID, version)
			continue
		}
		rp.BaseOffset = j.res.baseOffset
		rp.LogAppendTime = j.res.logAppendTime
		rp.LogStartOffset = j.res.logStart
	}

	if version >= 10 {
		// KIP-951 (Produce v10+): with CurrentLeader hints, also the endpoints of those leaders.
		seen := map[int32]bool{}
		for i := range resp.Topics {
			for _, rp := range resp.Topics[i].Partitions {
				if id := rp.CurrentLeader.LeaderID; id >= 0 && !seen[id] {
					seen[id] = true
					if br, ok := st.Broker(id); ok {
						e := kmsg.NewProduceResponseBroker()
						e.NodeID, e.Host, e.Port = br.ID, br.Host, br.Port
						if br.Rack != "" {
							e.Rack = kmsg.StringPtr(br.Rack)
						}
						resp.Brokers = append(resp.Brokers, e)
					}
				}
			}
		}
	}

	if acks == -1 {
		for _, j := range jobs {
			if j.res.err != nil {
				continue
			}
			if code := j.p.waitHW(wctx, j.res.lastOffset); code != 0 {
				j.rp.ErrorCode = code
				if version >= 8 {
					j.rp.ErrorMessage = kmsg.StringPtr(fmt.Sprintf("waiting for the ISR of %s to reach offset %d: %s", j.p, j.res.lastOffset+1, kerr.ErrorForCode(code)))
				}
			}
		}
	}
	return failed
}

// fillProduceLeader sets the v10+ CurrentLeader hint (KIP-951) from meta on NOT_LEADER_OR_FOLLOWER
// and FENCED_LEADER_EPOCH, so the client can redirect without waiting for a metadata refresh.
func fillProduceLeader(rp *kmsg.ProduceResponseTopicPartition, st *meta.State, topic string, id meta.TopicID, version int16) {
	if version < 10 || (rp.ErrorCode != kerr.NotLeaderForPartition.Code && rp.ErrorCode != kerr.FencedLeaderEpoch.Code) {
		return
	}
	if part, ok := metaPartition(st, topic, id, rp.Partition); ok && part.Leader >= 0 {
		rp.CurrentLeader.LeaderID = part.Leader
		rp.CurrentLeader.LeaderEpoch = part.LeaderEpoch
	}
}

// metaPartition finds a partition in meta by topic id (when non-zero) or name.
func metaPartition(st *meta.State, topic string, id meta.TopicID, index int32) (meta.Partition, bool) {
	var t *meta.Topic
	var ok bool
	if !id.IsZero() {
		t, ok = st.TopicByID(id)
	} else {
		t, ok = st.Topic(topic)
	}
	if !ok || index < 0 || int(index) >= len(t.Partitions) {
		return meta.Partition{}, false
	}
	return t.Partitions[index], true
}
