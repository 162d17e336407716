package broker

// OffsetDelete: v0. Deletes some committed offsets of a group (one Raft entry). GROUP_ID_NOT_FOUND for
// a group with neither members nor offsets; NON_EMPTY_GROUP for a group with members that does not use
// the consumer protocol; per partition GROUP_SUBSCRIBED_TO_TOPIC while a member subscribes to the topic
// (Kafka's rule), UNKNOWN_TOPIC_OR_PARTITION for a partition that does not exist.

import (
	"context"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/sediment-io/sediment/meta"
)

func init() { register(kmsg.OffsetDelete, 0, 0, (*Broker).handleOffsetDelete) }

func (b *Broker) handleOffsetDelete(ctx context.Context, c *connCtx, kreq kmsg.Request) (kmsg.Response, error) {
	req := kreq.(*kmsg.OffsetDeleteRequest)
	resp := req.ResponseKind().(*kmsg.OffsetDeleteResponse)
	gc := b.groups
	if req.Group == "" {
		resp.ErrorCode = kerr.InvalidGroupID.Code
		return resp, nil
	}
	if resp.ErrorCode = gc.coordinatorCheck(req.Group); resp.ErrorCode != 0 {
		return resp, nil
	}
	st := b.meta.State()
	var subscribed map[string]bool
	inMemory := false
	if g := gc.getGroup(req.Group, false); g != nil {
		g.mu.Lock()
		if !g.isEmptyLocked() {
			inMemory = true
			var ok bool
			if subscribed, ok = g.subscribedTopicsLocked(); !ok {
				resp.ErrorCode = kerr.NonEmptyGroup.Code
			}
		}
		g.mu.Unlock()
		if resp.ErrorCode != 0 {
			return resp, nil
		}
	}
	if !inMemory && len(st.CommittedOffsets(req.Group)) == 0 {
		resp.ErrorCode = kerr.GroupIDNotFound.Code
		return resp, nil
	}
	var del []meta.TopicPartition
	for _, rt := range req.Topics {
		t := kmsg.NewOffsetDeleteResponseTopic()
		t.Topic = rt.Topic
		topic, tok := st.Topic(rt.Topic)
		for _, rp := range rt.Partitions {
			p := kmsg.NewOffsetDeleteResponseTopicPartition()
			p.Partition = rp.Partition
			switch {
			case !tok || rp.Partition < 0 || int(rp.Partition) >= len(topic.Partitions):
				p.ErrorCode = kerr.UnknownTopicOrPartition.Code
			case subscribed[rt.Topic]:
				p.ErrorCode = kerr.GroupSubscribedToTopic.Code
			default:
				del = append(del, meta.TopicPartition{Topic: rt.Topic, Partition: rp.Partition})
			}
			t.Partitions = append(t.Partitions, p)
		}
		resp.Topics = append(resp.Topics, t)
	}
	if len(del) > 0 { // never empty: an empty list would delete the whole group
		if err := b.meta.DeleteOffsets(ctx, req.Group, del); err != nil {
			resp.ErrorCode = errorCode(err)
		}
	}
	return resp, nil
}
