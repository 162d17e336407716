package broker

// Produce, versions 3–13 (RecordBatch v2 only; v13 names topics by id).
//
// acks=0: no response; as Kafka, if any partition failed the connection is closed instead, so the
// producer notices and refreshes its metadata. acks=1: answered once the batch is durable on the
// leader per the flush policy. acks=-1 (all): answered once the high watermark (the minimum log end
// offset over the ISR) has passed the batch, or with REQUEST_TIMED_OUT after TimeoutMillis. Any
// other acks value is INVALID_REQUIRED_ACKS.
//
// Partitions of one request are appended concurrently (each to its own log, so their fsyncs
// overlap), and answered in request order. Validation is partition_validate.go; idempotent
// producer checks are partition_producers.go.
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
	failed := !acksOK // any partition error: with acks=0 the connection is closed instead
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
				failed = true
				rp.ErrorCode = code
				fillProduceLeader(rp, st, t.Topic, t.TopicID, req.Version)
				continue
			}
			jobs = append(jobs, &job{p: p, rp: rp, recs: tp.Records})
		}
	}

	run := func(j *job) { j.res = j.p.appendClient(req.Version, req.Acks, j.recs) }
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

	for _, j := range jobs {
		rp := j.rp
		if j.res.err != nil {
			failed = true
			rp.ErrorCode = j.res.err.code
			if req.Version >= 8 {
				rp.ErrorMessage = kmsg.StringPtr(j.res.err.msg)
			}
			fillProduceLeader(rp, st, j.p.topic, j.p.topicID, req.Version)
			continue
		}
		rp.BaseOffset = j.res.baseOffset
		rp.LogAppendTime = j.res.logAppendTime
		rp.LogStartOffset = j.res.logStart
	}

	if req.Version >= 12 {
		// KIP-951: with CurrentLeader hints, also the endpoints of those leaders.
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

	if req.Acks == 0 {
		if failed {
			return nil, errors.New("produce with acks=0 failed on at least one partition: closing the connection as Kafka does")
		}
		return nil, nil
	}
	if req.Acks == -1 {
		wctx, cancel := context.WithTimeout(ctx, time.Duration(max(req.TimeoutMillis, 0))*time.Millisecond)
		defer cancel()
		for _, j := range jobs {
			if j.res.err != nil {
				continue
			}
			if code := j.p.waitHW(wctx, j.res.lastOffset); code != 0 {
				j.rp.ErrorCode = code
				if req.Version >= 8 {
					j.rp.ErrorMessage = kmsg.StringPtr(fmt.Sprintf("waiting for the ISR of %s to reach offset %d: %s", j.p, j.res.lastOffset+1, kerr.ErrorForCode(code)))
				}
			}
		}
	}
	return resp, nil
}

// fillProduceLeader sets the v12+ CurrentLeader hint (KIP-951) from meta on NOT_LEADER_OR_FOLLOWER
// and FENCED_LEADER_EPOCH, so the client can redirect without waiting for a metadata refresh.
func fillProduceLeader(rp *kmsg.ProduceResponseTopicPartition, st *meta.State, topic string, id meta.TopicID, version int16) {
	if version < 12 || (rp.ErrorCode != kerr.NotLeaderForPartition.Code && rp.ErrorCode != kerr.FencedLeaderEpoch.Code) {
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
