package broker

// ListOffsets, versions 1–9.
//
// Timestamp -2 (earliest): the log start offset. -1 (latest): the high watermark (consumers read
// below it; a replica or debug request, ReplicaID ≥ 0 or -2, gets the log end offset). -3 (max
// timestamp, v7+, KIP-734): the offset and value of the largest record timestamp. -4 (earliest
// local, KIP-405): the local log start offset — with no data in object storage yet, the log start.
// -5 (latest tiered, KIP-1005): offset -1 and timestamp -1 while nothing is tiered, exactly as
// Kafka answers when remote storage is disabled. Any other timestamp: the first record whose
// timestamp is >= it (segment finds the batch through its time index and decodes that one batch
// for the exact record, as Kafka does), or -1/-1 when there is none below the high watermark.
//
// Isolation levels coincide (no transactions: last stable offset = high watermark). The leader
// epoch returned is the current one for "latest" and -1 otherwise (the client then skips its
// KIP-320 validation rather than validating against a guess). v0's OldStyleOffsets is not served.

import (
	"context"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

func init() { register(kmsg.ListOffsets, 1, 9, (*Broker).handleListOffsets) }

const (
	listOffsetsLatest        = -1
	listOffsetsEarliest      = -2
	listOffsetsMaxTimestamp  = -3
	listOffsetsEarliestLocal = -4
	listOffsetsLatestTiered  = -5
)

func (b *Broker) handleListOffsets(ctx context.Context, c *connCtx, kreq kmsg.Request) (kmsg.Response, error) {
	req := kreq.(*kmsg.ListOffsetsRequest)
	resp := req.ResponseKind().(*kmsg.ListOffsetsResponse)
	st := b.meta.State()
	toLEO := req.ReplicaID >= 0 || req.ReplicaID == -2
	for i := range req.Topics {
		t := &req.Topics[i]
		rt := kmsg.NewListOffsetsResponseTopic()
		rt.Topic = t.Topic
		for j := range t.Partitions {
			rp := &t.Partitions[j]
			out := kmsg.NewListOffsetsResponseTopicPartition()
			out.Partition = rp.Partition
			p, _, code := b.replicas.lookupPartition(st, t.Topic, rp.Partition)
			if code == 0 {
				code = p.checkLeader(rp.CurrentLeaderEpoch)
			}
			if code != 0 {
				out.ErrorCode = code
			} else {
				out.Offset, out.Timestamp, out.LeaderEpoch, out.ErrorCode = p.listOffset(rp.Timestamp, toLEO)
			}
			rt.Partitions = append(rt.Partitions, out)
		}
		resp.Topics = append(resp.Topics, rt)
	}
	return resp, nil
}

// listOffset answers one ListOffsets query: offset, timestamp, leader epoch, error code.
func (p *Partition) listOffset(ts int64, toLEO bool) (int64, int64, int32, int16) {
	hw := p.hw.Load()
	switch ts {
	case listOffsetsEarliest, listOffsetsEarliestLocal:
		return p.log.StartOffset(), -1, -1, 0
	case listOffsetsLatest:
		if toLEO {
			return p.log.EndOffset(), -1, p.currentLeaderEpoch(), 0
		}
		return hw, -1, p.currentLeaderEpoch(), 0
	case listOffsetsLatestTiered:
		return -1, -1, -1, 0
	case listOffsetsMaxTimestamp:
		off, mts := p.log.MaxTimestamp()
		if off < 0 {
			return -1, -1, -1, 0
		}
		return off, mts, -1, 0
	}
	off, found, ok, err := p.log.OffsetForTimestamp(ts)
	if err != nil {
		return -1, -1, -1, kerr.KafkaStorageError.Code
	}
	if !ok || off >= hw {
		return -1, -1, -1, 0
	}
	return off, found, -1, 0
}
