package broker

// DeleteRecords, versions 0–2.
//
// Offset -1 means the high watermark. The log start offset is raised to the offset (persisted by
// segment.SetStartOffset, which also deletes the segments wholly below it); offsets above the high
// watermark are OFFSET_OUT_OF_RANGE, as in Kafka. LowWatermark in the answer is the new log start
// offset. With a single replica the low watermark is final when the call returns; with followers
// Kafka waits (up to TimeoutMillis) for every replica to follow — that waits for replication.
//
// Tiered partitions: the offset may lie below the local log start (in the bucket); the whole-log
// start is raised all the same (segment.SetStartOffset only moves the start there), and the
// partition's tier task then removes the remote segments wholly below it — manifest entries
// first, then the objects (tier_task.go remoteRetention, woken at once).

import (
	"context"

	"github.com/twmb/franz-go/pkg/kmsg"
)

func init() { register(kmsg.DeleteRecords, 0, 2, (*Broker).handleDeleteRecords) }

func (b *Broker) handleDeleteRecords(ctx context.Context, c *connCtx, kreq kmsg.Request) (kmsg.Response, error) {
	req := kreq.(*kmsg.DeleteRecordsRequest)
	resp := req.ResponseKind().(*kmsg.DeleteRecordsResponse)
	st := b.meta.State()
	for i := range req.Topics {
		t := &req.Topics[i]
		rt := kmsg.NewDeleteRecordsResponseTopic()
		rt.Topic = t.Topic
		for j := range t.Partitions {
			rp := &t.Partitions[j]
			out := kmsg.NewDeleteRecordsResponseTopicPartition()
			out.Partition = rp.Partition
			out.LowWatermark = -1
			p, _, code := b.replicas.lookupPartition(st, t.Topic, rp.Partition)
			if code == 0 {
				code = p.checkLeader(-1)
			}
			if code == 0 {
				out.LowWatermark, code = p.deleteRecords(rp.Offset)
			}
			out.ErrorCode = code
			rt.Partitions = append(rt.Partitions, out)
		}
		resp.Topics = append(resp.Topics, rt)
	}
	return resp, nil
}
