package broker

// DeleteTopics: v0–v6.
//
// v0–v5 name topics; v6 names them or gives topic ids (a name and an id together must agree, else
// INVALID_REQUEST). A topic given twice → INVALID_REQUEST for each copy; unknown name →
// UNKNOWN_TOPIC_OR_PARTITION; unknown id → UNKNOWN_TOPIC_ID; invalid name → INVALID_TOPIC_EXCEPTION;
// delete.topic.enable=false → TOPIC_DELETION_DISABLED. The metadata deletion is committed before the
// answer; the replica manager then removes the partition logs (on the TopicDeleted event), and the
// controller deletes the topic's objects from the bucket, then its manifest entries, retrying until
// done (tier_background.go); meta keeps the deleted topic's manifest until then, so nothing leaks.

import (
	"context"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/sediment-io/sediment/meta"
)

func init() { register(kmsg.DeleteTopics, 0, 6, (*Broker).handleDeleteTopics) }

func (b *Broker) handleDeleteTopics(ctx context.Context, c *connCtx, kreq kmsg.Request) (kmsg.Response, error) {
	req := kreq.(*kmsg.DeleteTopicsRequest)
	resp := req.ResponseKind().(*kmsg.DeleteTopicsResponse)
	ctx, cancel := adminTimeout(ctx, req.TimeoutMillis)
	defer cancel()

	reqs := req.Topics
	if req.Version < 6 {
		reqs = nil
		for _, n := range req.TopicNames {
			reqs = append(reqs, kmsg.DeleteTopicsRequestTopic{Topic: strPtr(n)})
		}
	}
	// Resolve every entry to a name first so that duplicates are found whichever way they were named.
	type entry struct {
		rt   kmsg.DeleteTopicsRequestTopic
		name string
		err  error
	}
	st := b.meta.State()
	entries := make([]entry, len(reqs))
	count := map[string]int{}
	for i, rt := range reqs {
		e := entry{rt: rt}
		var zero [16]byte
		switch {
		case rt.TopicID != zero:
			t, ok := st.TopicByID(meta.TopicID(rt.TopicID))
			switch {
			case !ok:
				e.err = kerrf(kerr.UnknownTopicID, "topic id %s does not exist", meta.TopicID(rt.TopicID))
			case rt.Topic != nil && *rt.Topic != t.Name:
				e.err = kerrf(kerr.InvalidRequest, "topic id %s is topic %q, not %q", meta.TopicID(rt.TopicID), t.Name, *rt.Topic)
			default:
				e.name = t.Name
			}
		case rt.Topic != nil:
			e.name = *rt.Topic
			if err := meta.ValidateTopicName(e.name); err != nil {
				e.err = err
			}
		default:
			e.err = kerrf(kerr.InvalidRequest, "neither a topic name nor a topic id given")
		}
		if e.err == nil {
			count[e.name]++
		}
		entries[i] = e
	}
	for _, e := range entries {
		t := kmsg.NewDeleteTopicsResponseTopic()
		t.Topic, t.TopicID = e.rt.Topic, e.rt.TopicID
		if e.name != "" {
			t.Topic = strPtr(e.name)
		}
		err := e.err
		if err == nil && count[e.name] > 1 {
			err = kerrf(kerr.InvalidRequest, "topic %q appears more than once in the request", e.name)
		}
		if err == nil && !b.cfg.DeleteTopicEnable {
			err = kerrf(kerr.TopicDeletionDisabled, "topic deletion is disabled (delete.topic.enable=false)")
		}
		if err == nil {
			if tp, ok := b.meta.State().Topic(e.name); !ok {
				err = kerrf(kerr.UnknownTopicOrPartition, "topic %q does not exist", e.name)
			} else {
				t.TopicID = tp.ID
				err = b.meta.DeleteTopic(ctx, e.name)
			}
		}
		if err != nil {
			t.ErrorCode, t.ErrorMessage = errorCode(err), errorMessage(err)
		} else {
			b.log.Info("topic deleted", "topic", e.name, "topic_id", meta.TopicID(t.TopicID).String(), "client_id", c.clientID)
		}
		resp.Topics = append(resp.Topics, t)
	}
	return resp, nil
}
