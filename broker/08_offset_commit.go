package broker

// OffsetCommit: v0–v9.
//
// Offsets are stored in Raft (meta.CommitOffsets) through the commit batcher (group_commit.go), which
// coalesces concurrent commits into few Raft entries; the response is sent only after the entry is
// committed and applied. There is no __consumer_offsets topic.
//
// Checks, as Kafka: a group-less ("simple") commit has generation -1 and is accepted while the group has
// no members; otherwise FENCED_INSTANCE_ID (static member replaced), UNKNOWN_MEMBER_ID, ILLEGAL_GENERATION,
// REBALANCE_IN_PROGRESS (while the group completes a rebalance). For KIP-848 consumer groups (v9+) the
// generation is the member epoch: STALE_MEMBER_EPOCH / UNKNOWN_MEMBER_ID. Per partition:
// UNKNOWN_TOPIC_OR_PARTITION, OFFSET_METADATA_TOO_LARGE (offset.metadata.max.bytes).
// The leader epoch (v6+) and metadata are stored and returned by OffsetFetch. The commit time is the
// broker's clock (v1's per-partition timestamp when given); v2–v4's RetentionTimeMillis is ignored, as
// Kafka ≥ 2.1 ignores it (offsets.retention.minutes applies). v10 names topics by id
// (UNKNOWN_TOPIC_ID for an id that does not exist).

import (
	"context"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/sediment-io/sediment/meta"
)

func init() { register(kmsg.OffsetCommit, 0, 10, (*Broker).handleOffsetCommit) }

func (b *Broker) handleOffsetCommit(ctx context.Context, c *connCtx, kreq kmsg.Request) (kmsg.Response, error) {
	req := kreq.(*kmsg.OffsetCommitRequest)
	resp := req.ResponseKind().(*kmsg.OffsetCommitResponse)
	gc := b.groups

	// Answer skeleton, same shape as the request.
	for _, rt := range req.Topics {
		t := kmsg.NewOffsetCommitResponseTopic()
		t.Topic, t.TopicID = rt.Topic, rt.TopicID
		for _, rp := range rt.Partitions {
			p := kmsg.NewOffsetCommitResponseTopicPartition()
			p.Partition = rp.Partition
			t.Partitions = append(t.Partitions, p)
		}
		resp.Topics = append(resp.Topics, t)
	}
	setAll := func(code int16) {
		for i := range resp.Topics {
			for j := range resp.Topics[i].Partitions {
				if resp.Topics[i].Partitions[j].ErrorCode == 0 {
					resp.Topics[i].Partitions[j].ErrorCode = code
				}
			}
		}
	}
	if req.Group == "" {
		setAll(kerr.InvalidGroupID.Code)
		return resp, nil
	}
	if code := gc.coordinatorCheck(req.Group); code != 0 {
		setAll(code)
		return resp, nil
	}
	generation := req.Generation
	if req.Version == 0 {
		generation = -1
	}
	code, monotonic := gc.commitCheck(req.Group, generation, req.MemberID, req.InstanceID)
	if code != 0 {
		setAll(code)
		return resp, nil
	}

	st := b.meta.State()
	now := time.Now().UnixMilli()
	var offsets []meta.OffsetCommit
	type ref struct{ t, p int }
	var refs []ref
	for i, rt := range req.Topics {
		topic, tok := st.Topic(rt.Topic)
		if req.Version >= 10 {
			topic, tok = st.TopicByID(rt.TopicID)
		}
		for j, rp := range rt.Partitions {
			code := int16(0)
			switch {
			case !tok && req.Version >= 10:
				code = kerr.UnknownTopicID.Code
			case !tok || rp.Partition < 0 || int(rp.Partition) >= len(topic.Partitions):
				code = kerr.UnknownTopicOrPartition.Code
			case rp.Metadata != nil && len(*rp.Metadata) > gc.config().OffsetMetadataMax:
				code = kerr.OffsetMetadataTooLarge.Code
			case rp.Offset < -1:
				code = kerr.InvalidRequest.Code
			case monotonic:
				// An adopted member after a coordinator takeover: never move an offset back.
				if cur, ok := st.CommittedOffset(req.Group, topic.Name, rp.Partition); ok && rp.Offset < cur.Offset {
					code = kerr.RebalanceInProgress.Code
				}
			}
			if code != 0 {
				resp.Topics[i].Partitions[j].ErrorCode = code
				continue
			}
			o := meta.OffsetCommit{Topic: topic.Name, Partition: rp.Partition, Offset: rp.Offset, LeaderEpoch: -1, CommitTime: now}
			if req.Version >= 6 {
				o.LeaderEpoch = rp.LeaderEpoch
			}
			if req.Version == 1 && rp.Timestamp >= 0 {
				o.CommitTime = rp.Timestamp
			}
			if rp.Metadata != nil {
				o.Metadata = *rp.Metadata
			}
			offsets = append(offsets, o)
			refs = append(refs, ref{i, j})
		}
	}
	if len(offsets) == 0 {
		return resp, nil
	}
	if err := gc.commits.commit(req.Group, offsets); err != nil {
		code := errorCode(err)
		if code == kerr.NotController.Code || code == kerr.RequestTimedOut.Code || code == kerr.UnknownServerError.Code {
			// Raft could not commit in time (no quorum, leadership change, shutdown): the client
			// retries; COORDINATOR_NOT_AVAILABLE makes Java and franz-go clients re-find and retry.
			code = kerr.CoordinatorNotAvailable.Code
		}
		b.log.Warn("offset commit failed", "group", req.Group, "err", err)
		for _, r := range refs {
			resp.Topics[r.t].Partitions[r.p].ErrorCode = code
		}
	}
	return resp, nil
}

// commitCheck validates an OffsetCommit's member and generation against the in-memory group.
// monotonic: the commit is accepted only for partitions it does not move backwards (takeover).
func (gc *groupCoordinator) commitCheck(groupID string, generation int32, memberID string, inst *string) (int16, bool) {
	g := gc.getGroup(groupID, false)
	if g == nil {
		switch {
		case generation < 0:
			return 0, false // simple commit from a consumer that does not use group membership
		case memberID == "":
			return kerr.IllegalGeneration.Code, false
		case len(gc.b.meta.State().CommittedOffsets(groupID)) == 0:
			return kerr.UnknownMemberID.Code, false
		}
		// A member of a group this coordinator holds nothing of yet: possibly a takeover.
		if g = gc.getGroup(groupID, true); g == nil {
			return kerr.NotCoordinator.Code, false
		}
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.commitCheckLocked(generation, memberID, inst)
}
