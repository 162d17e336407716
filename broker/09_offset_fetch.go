package broker

// OffsetFetch: v0–v9.
//
// Offsets are read from the Raft state (meta.State), which on the coordinator includes every commit it
// acknowledged. v0–v7 ask for one group, v8+ for many (Groups). Topics null (v2+) means every committed
// offset of the group. A partition without a committed offset answers offset -1, leader epoch -1.
// require_stable (v7+): while a commit of the group is accepted but not yet committed in Raft, its
// partitions answer UNSTABLE_OFFSET_COMMIT (clients retry) — Sediment has no transactional offsets, so
// this is the only pending state. v9: for KIP-848 groups a member id/epoch, when given, is checked
// (UNKNOWN_MEMBER_ID, STALE_MEMBER_EPOCH). v10 names topics by id (UNKNOWN_TOPIC_ID for an unknown one).

import (
	"context"
	"sort"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/sediment-io/sediment/meta"
)

func init() { register(kmsg.OffsetFetch, 0, 10, (*Broker).handleOffsetFetch) }

// fetchedOffset is one answer row, independent of the response version's types.
type fetchedOffset struct {
	topic     string
	partition int32
	offset    int64
	epoch     int32
	metadata  string
	code      int16
}

func (b *Broker) handleOffsetFetch(ctx context.Context, c *connCtx, kreq kmsg.Request) (kmsg.Response, error) {
	req := kreq.(*kmsg.OffsetFetchRequest)
	resp := req.ResponseKind().(*kmsg.OffsetFetchResponse)
	gc := b.groups

	if req.Version >= 8 {
		st := b.meta.State()
		for _, rg := range req.Groups {
			var topics []offsetFetchTopic
			var unknownIDs []kmsg.OffsetFetchRequestGroupTopic
			if rg.Topics != nil {
				topics = []offsetFetchTopic{}
				for _, t := range rg.Topics {
					name := t.Topic
					if req.Version >= 10 {
						tt, ok := st.TopicByID(t.TopicID)
						if !ok {
							unknownIDs = append(unknownIDs, t)
							continue
						}
						name = tt.Name
					}
					topics = append(topics, offsetFetchTopic{name, t.Partitions})
				}
			}
			rows, code := gc.fetchOffsets(rg.Group, topics, req.RequireStable, rg.MemberID, rg.MemberEpoch)
			og := kmsg.NewOffsetFetchResponseGroup()
			og.Group, og.ErrorCode = rg.Group, code
			for _, u := range unknownIDs {
				if code != 0 {
					break
				}
				t := kmsg.NewOffsetFetchResponseGroupTopic()
				t.TopicID = u.TopicID
				for _, p := range u.Partitions {
					rp := kmsg.NewOffsetFetchResponseGroupTopicPartition()
					rp.Partition, rp.Offset, rp.LeaderEpoch, rp.ErrorCode = p, -1, -1, kerr.UnknownTopicID.Code
					t.Partitions = append(t.Partitions, rp)
				}
				og.Topics = append(og.Topics, t)
			}
			for _, r := range rows {
				if n := len(og.Topics); n == 0 || og.Topics[n-1].Topic != r.topic {
					t := kmsg.NewOffsetFetchResponseGroupTopic()
					t.Topic = r.topic
					if tt, ok := st.Topic(r.topic); ok {
						t.TopicID = tt.ID
					}
					og.Topics = append(og.Topics, t)
				}
				p := kmsg.NewOffsetFetchResponseGroupTopicPartition()
				p.Partition, p.Offset, p.LeaderEpoch, p.ErrorCode = r.partition, r.offset, r.epoch, r.code
				md := r.metadata
				p.Metadata = &md
				og.Topics[len(og.Topics)-1].Partitions = append(og.Topics[len(og.Topics)-1].Partitions, p)
			}
			resp.Groups = append(resp.Groups, og)
		}
		return resp, nil
	}

	var topics []offsetFetchTopic
	if req.Topics != nil || req.Version < 2 {
		topics = []offsetFetchTopic{}
		for _, t := range req.Topics {
			topics = append(topics, offsetFetchTopic{t.Topic, t.Partitions})
		}
	}
	rows, code := gc.fetchOffsets(req.Group, topics, req.Version >= 7 && req.RequireStable, nil, -1)
	if code != 0 && req.Version < 2 {
		// v0–v1 have no top-level error: every requested partition carries it.
		for _, t := range topics {
			for _, p := range t.partitions {
				rows = append(rows, fetchedOffset{topic: t.topic, partition: p, offset: -1, epoch: -1, code: code})
			}
		}
	}
	resp.ErrorCode = code
	for _, r := range rows {
		if n := len(resp.Topics); n == 0 || resp.Topics[n-1].Topic != r.topic {
			t := kmsg.NewOffsetFetchResponseTopic()
			t.Topic = r.topic
			resp.Topics = append(resp.Topics, t)
		}
		p := kmsg.NewOffsetFetchResponseTopicPartition()
		p.Partition, p.Offset, p.LeaderEpoch, p.ErrorCode = r.partition, r.offset, r.epoch, r.code
		md := r.metadata
		p.Metadata = &md
		resp.Topics[len(resp.Topics)-1].Partitions = append(resp.Topics[len(resp.Topics)-1].Partitions, p)
	}
	return resp, nil
}

type offsetFetchTopic struct {
	topic      string
	partitions []int32
}

// fetchOffsets answers one group's OffsetFetch. topics nil = all committed offsets. The second result
// is the group-level error.
func (gc *groupCoordinator) fetchOffsets(groupID string, topics []offsetFetchTopic, requireStable bool, memberID *string, memberEpoch int32) ([]fetchedOffset, int16) {
	if groupID == "" {
		return nil, kerr.InvalidGroupID.Code
	}
	if code := gc.coordinatorCheck(groupID); code != 0 {
		return nil, code
	}
	if memberID != nil && *memberID != "" {
		if g := gc.getGroup(groupID, false); g != nil {
			g.mu.Lock()
			code := int16(0)
			if g.typ == groupTypeConsumer {
				code = g.cg.memberEpochCheckLocked(*memberID, memberEpoch)
			}
			g.mu.Unlock()
			if code != 0 {
				return nil, code
			}
		} else {
			return nil, kerr.UnknownMemberID.Code
		}
	}
	unstable := requireStable && gc.commits.hasPending(groupID)
	st := gc.b.meta.State()
	var rows []fetchedOffset
	row := func(topic string, p int32, o meta.CommittedOffset, ok bool) fetchedOffset {
		r := fetchedOffset{topic: topic, partition: p, offset: -1, epoch: -1}
		if unstable {
			r.code = kerr.UnstableOffsetCommit.Code
			return r
		}
		if ok {
			r.offset, r.epoch, r.metadata = o.Offset, o.LeaderEpoch, o.Metadata
		}
		return r
	}
	if topics == nil {
		all := st.CommittedOffsets(groupID)
		keys := make([]meta.TopicPartition, 0, len(all))
		for tp := range all {
			keys = append(keys, tp)
		}
		sort.Slice(keys, func(i, j int) bool {
			if keys[i].Topic != keys[j].Topic {
				return keys[i].Topic < keys[j].Topic
			}
			return keys[i].Partition < keys[j].Partition
		})
		for _, tp := range keys {
			rows = append(rows, row(tp.Topic, tp.Partition, all[tp], true))
		}
		return rows, 0
	}
	for _, t := range topics {
		for _, p := range t.partitions {
			o, ok := st.CommittedOffset(groupID, t.topic, p)
			rows = append(rows, row(t.topic, p, o, ok))
		}
	}
	return rows, 0
}
