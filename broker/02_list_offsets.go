package broker

// ListOffsets, versions 1–9.
//
// Timestamp -2 (earliest): the log start offset of the whole log, object storage included. -1
// (latest): the high watermark (consumers read below it; a replica or debug request, ReplicaID ≥ 0
// or -2, gets the log end offset). -3 (max timestamp, v7+, KIP-734): the offset and value of the
// largest record timestamp over both tiers. -4 (earliest local, v8+, KIP-405): the local log start
// offset, with the leader epoch of that offset (a follower restarts its log there after
// OFFSET_MOVED_TO_TIERED_STORAGE). -5 (latest tiered, v9+, KIP-1005): the last offset of the last
// manifest entry, offset -1 and epoch -1 while nothing is tiered (Kafka's answer for a partition
// without remote data). A special timestamp the request's version does not carry (or an unknown
// negative one) is UNSUPPORTED_VERSION for that partition, as Kafka. Any other timestamp: the first
// record whose timestamp is >= it, searching the bucket first (the footer's time index finds the
// batch with one ranged GET, the batch is decoded for the exact record) and then the local log
// (segment's time index, the same decoding), or -1/-1 when there is none below the high watermark.
// -3 leaves out an uploaded segment whose maximum lies below a log start raised by DeleteRecords
// (its remaining maximum is not indexed); Kafka's -3 ignores the bucket altogether.
//
// Isolation levels coincide (no transactions: last stable offset = high watermark). The leader
// epoch returned is the current one for "latest", the epoch of the offset for -4 and -5 when the
// local epoch cache knows it, and -1 otherwise (the client then skips its KIP-320 validation rather
// than validating against a guess). v0's OldStyleOffsets is not served.

import (
	"context"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/sediment-io/sediment/meta"
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
				out.Offset, out.Timestamp, out.LeaderEpoch, out.ErrorCode = p.listOffset(rp.Timestamp, toLEO, req.Version)
			}
			rt.Partitions = append(rt.Partitions, out)
		}
		resp.Topics = append(resp.Topics, rt)
	}
	return resp, nil
}

// listOffsetsMinVersion is the first ListOffsets version carrying each special timestamp (Kafka's
// ReplicaManager.timestampMinSupportedVersion).
var listOffsetsMinVersion = map[int64]int16{
	listOffsetsLatest:        1,
	listOffsetsEarliest:      1,
	listOffsetsMaxTimestamp:  7,
	listOffsetsEarliestLocal: 8,
	listOffsetsLatestTiered:  9,
}

// listOffset answers one ListOffsets query: offset, timestamp, leader epoch, error code.
func (p *Partition) listOffset(ts int64, toLEO bool, version int16) (int64, int64, int32, int16) {
	if v, ok := listOffsetsMinVersion[ts]; ts < 0 && (!ok || version < v) {
		return -1, -1, -1, kerr.UnsupportedVersion.Code
	}
	hw := p.hw.Load()
	switch ts {
	case listOffsetsEarliest:
		return p.log.StartOffset(), -1, -1, 0
	case listOffsetsEarliestLocal:
		off := p.localStart()
		return off, -1, p.epochForOffset(off), 0
	case listOffsetsLatest:
		if toLEO {
			return p.log.EndOffset(), -1, p.currentLeaderEpoch(), 0
		}
		return hw, -1, p.currentLeaderEpoch(), 0
	case listOffsetsLatestTiered:
		var segs []meta.RemoteSegment
		if p.tier != nil {
			segs = p.tier.b.meta.State().RemoteSegments(p.topicID, p.index)
		}
		if len(segs) == 0 {
			return -1, -1, -1, 0
		}
		off := segs[len(segs)-1].LastOffset
		return off, -1, p.epochForOffset(off), 0
	case listOffsetsMaxTimestamp:
		off, mts := p.log.MaxTimestamp()
		roff, rts, ok, err := p.remoteMaxTimestamp()
		if err != nil {
			return -1, -1, -1, p.remoteErrCode(err)
		}
		if ok && rts >= mts { // equal: the bucket's record comes first
			off, mts = roff, rts
		}
		if off < 0 {
			return -1, -1, -1, 0
		}
		return off, mts, -1, 0
	}
	off, found, ok, err := p.remoteOffsetForTimestamp(ts)
	if err != nil {
		return -1, -1, -1, p.remoteErrCode(err)
	}
	if !ok {
		if off, found, ok, err = p.log.OffsetForTimestamp(ts); err != nil {
			return -1, -1, -1, kerr.KafkaStorageError.Code
		}
	}
	if !ok || off >= hw {
		return -1, -1, -1, 0
	}
	return off, found, -1, 0
}

// epochForOffset is the leader epoch of the batch holding offset per the local epoch cache, -1 if
// the cache does not reach that far back (it starts at the local log start after a reset).
func (p *Partition) epochForOffset(off int64) int32 {
	ep := int32(-1)
	for _, e := range p.log.Epochs() {
		if e[1] > off {
			break
		}
		ep = int32(e[0])
	}
	return ep
}
