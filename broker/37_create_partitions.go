package broker

// CreatePartitions: v0–v3.
//
// Raises a topic's partition count. A topic given twice → INVALID_REQUEST; invalid name →
// INVALID_TOPIC_EXCEPTION; unknown → UNKNOWN_TOPIC_OR_PARTITION; a count not larger than the current
// one → INVALID_PARTITIONS; assignments of the wrong number, size or with unknown brokers →
// INVALID_REPLICA_ASSIGNMENT (meta checks them). validateOnly changes nothing. Lowering the count is
// impossible, as in Kafka.

import (
	"context"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/sediment-io/sediment/meta"
)

func init() { register(kmsg.CreatePartitions, 0, 3, (*Broker).handleCreatePartitions) }

func (b *Broker) handleCreatePartitions(ctx context.Context, c *connCtx, kreq kmsg.Request) (kmsg.Response, error) {
	req := kreq.(*kmsg.CreatePartitionsRequest)
	resp := req.ResponseKind().(*kmsg.CreatePartitionsResponse)
	ctx, cancel := adminTimeout(ctx, req.TimeoutMillis)
	defer cancel()

	count := map[string]int{}
	for _, rt := range req.Topics {
		count[rt.Topic]++
	}
	var stale error
	if req.ValidateOnly {
		stale = b.meta.CatchUp(ctx) // as CreateTopics: a dry run answers from the committed state
	}
	for _, rt := range req.Topics {
		t := kmsg.NewCreatePartitionsResponseTopic()
		t.Topic = rt.Topic
		err := stale
		if err == nil {
			err = b.createPartitions(ctx, rt, count[rt.Topic] > 1, req.ValidateOnly)
		}
		if err != nil {
			t.ErrorCode, t.ErrorMessage = errorCode(err), errorMessage(err)
		} else if !req.ValidateOnly {
			b.log.Info("partitions created", "topic", rt.Topic, "partitions", rt.Count, "client_id", c.clientID)
		}
		resp.Topics = append(resp.Topics, t)
	}
	return resp, nil
}

func (b *Broker) createPartitions(ctx context.Context, rt kmsg.CreatePartitionsRequestTopic, dup, validateOnly bool) error {
	if dup {
		return kerrf(kerr.InvalidRequest, "topic %q appears more than once in the request", rt.Topic)
	}
	if err := meta.ValidateTopicName(rt.Topic); err != nil {
		return err
	}
	t, ok := b.meta.State().Topic(rt.Topic)
	if !ok {
		return kerrf(kerr.UnknownTopicOrPartition, "topic %q does not exist", rt.Topic)
	}
	if cur := int32(len(t.Partitions)); rt.Count <= cur {
		if rt.Count == cur {
			return kerrf(kerr.InvalidPartitions, "topic %q already has %d partitions", rt.Topic, cur)
		}
		return kerrf(kerr.InvalidPartitions, "topic %q currently has %d partitions, %d would not be an increase", rt.Topic, cur, rt.Count)
	}
	var assign [][]int32
	if rt.Assignment != nil {
		if want := int(rt.Count) - len(t.Partitions); len(rt.Assignment) != want {
			return kerrf(kerr.InvalidReplicaAssignment, "topic %q: %d replica assignments given for %d new partitions", rt.Topic, len(rt.Assignment), want)
		}
		for _, a := range rt.Assignment {
			assign = append(assign, append([]int32{}, a.Replicas...))
		}
	}
	return b.meta.CreatePartitions(ctx, rt.Topic, rt.Count, assign, validateOnly)
}
