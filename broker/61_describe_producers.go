package broker

// DescribeProducers, version 0 (KIP-664): the idempotent producer state of each partition, as
// `kafka-transactions.sh describe-producers` and kadm show it. For every producer id with state:
// its epoch, the last sequence and the max timestamp of its last batch. CoordinatorEpoch is -1 and
// CurrentTxnStartOffset -1 (no transactions). Only the leader answers (NOT_LEADER_OR_FOLLOWER).

import (
	"context"
	"sort"

	"github.com/twmb/franz-go/pkg/kmsg"
)

func init() { register(kmsg.DescribeProducers, 0, 0, (*Broker).handleDescribeProducers) }

func (b *Broker) handleDescribeProducers(ctx context.Context, c *connCtx, kreq kmsg.Request) (kmsg.Response, error) {
	req := kreq.(*kmsg.DescribeProducersRequest)
	resp := req.ResponseKind().(*kmsg.DescribeProducersResponse)
	st := b.meta.State()
	for i := range req.Topics {
		t := &req.Topics[i]
		rt := kmsg.NewDescribeProducersResponseTopic()
		rt.Topic = t.Topic
		for _, idx := range t.Partitions {
			rp := kmsg.NewDescribeProducersResponseTopicPartition()
			rp.Partition = idx
			p, _, code := b.replicas.lookupPartition(st, t.Topic, idx)
			if code == 0 {
				code = p.checkLeader(-1)
			}
			if code == 0 {
				rp.ActiveProducers = p.activeProducers()
			}
			rp.ErrorCode = code
			rt.Partitions = append(rt.Partitions, rp)
		}
		resp.Topics = append(resp.Topics, rt)
	}
	return resp, nil
}

func (p *Partition) activeProducers() []kmsg.DescribeProducersResponseTopicPartitionActiveProducer {
	p.appendMu.Lock()
	defer p.appendMu.Unlock()
	var out []kmsg.DescribeProducersResponseTopicPartitionActiveProducer
	for pid, e := range p.producers.producers {
		if len(e.batches) == 0 {
			continue
		}
		last := e.batches[len(e.batches)-1]
		ap := kmsg.NewDescribeProducersResponseTopicPartitionActiveProducer()
		ap.ProducerID = pid
		ap.ProducerEpoch = int32(e.epoch)
		ap.LastSequence = last.lastSeq
		ap.LastTimestamp = last.timestamp
		ap.CoordinatorEpoch = -1
		ap.CurrentTxnStartOffset = -1
		out = append(out, ap)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ProducerID < out[j].ProducerID })
	return out
}
