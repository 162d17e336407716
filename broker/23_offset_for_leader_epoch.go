package broker

// OffsetForLeaderEpoch, versions 2–4 (KIP-101/279 truncation, KIP-320 consumer validation).
//
// For each partition: the largest epoch <= the requested one that this log knows, and the end
// offset of that epoch (the start offset of the next epoch, or the log end offset for the latest).
// An epoch older than anything in the log is answered -1/-1 (UNDEFINED_EPOCH, UNDEFINED_EPOCH_OFFSET).
// CurrentLeaderEpoch is checked as for Fetch (FENCED_LEADER_EPOCH, UNKNOWN_LEADER_EPOCH); only
// the leader answers (NOT_LEADER_OR_FOLLOWER).

import (
	"context"

	"github.com/twmb/franz-go/pkg/kmsg"
)

func init() { register(kmsg.OffsetForLeaderEpoch, 2, 4, (*Broker).handleOffsetForLeaderEpoch) }

func (b *Broker) handleOffsetForLeaderEpoch(ctx context.Context, c *connCtx, kreq kmsg.Request) (kmsg.Response, error) {
	req := kreq.(*kmsg.OffsetForLeaderEpochRequest)
	resp := req.ResponseKind().(*kmsg.OffsetForLeaderEpochResponse)
	st := b.meta.State()
	for i := range req.Topics {
		t := &req.Topics[i]
		rt := kmsg.NewOffsetForLeaderEpochResponseTopic()
		rt.Topic = t.Topic
		for j := range t.Partitions {
			rp := &t.Partitions[j]
			out := kmsg.NewOffsetForLeaderEpochResponseTopicPartition()
			out.Partition = rp.Partition
			out.LeaderEpoch, out.EndOffset = -1, -1
			p, _, code := b.replicas.lookupPartition(st, t.Topic, rp.Partition)
			if code == 0 {
				code = p.checkLeader(rp.CurrentLeaderEpoch)
			}
			if code == 0 {
				if epoch, end, ok := p.log.EndOffsetForEpoch(rp.LeaderEpoch); ok {
					out.LeaderEpoch, out.EndOffset = epoch, end
				}
			}
			out.ErrorCode = code
			rt.Partitions = append(rt.Partitions, out)
		}
		resp.Topics = append(resp.Topics, rt)
	}
	return resp, nil
}
