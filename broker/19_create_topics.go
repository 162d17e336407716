package broker

// CreateTopics: v0–v7.
//
// Per topic, checked in Kafka's order with the code a Java AdminClient expects:
// a name given twice in one request → INVALID_REQUEST (for each copy); a bad name (empty, ".", "..",
// > 249 chars, outside [a-zA-Z0-9._-]) → INVALID_TOPIC_EXCEPTION; a name colliding with an existing
// topic once '.' and '_' are treated alike → INVALID_TOPIC_EXCEPTION (Kafka's metric-name collision
// rule); Kafka's internal topics (__consumer_offsets, __transaction_state) → INVALID_REQUEST, as Kafka
// refuses creating them by hand; existing → TOPIC_ALREADY_EXISTS; partitions 0 or < -1 → INVALID_PARTITIONS; replication factor
// 0, < -1, or more than the live brokers → INVALID_REPLICATION_FACTOR; assignments together with an
// explicit partition count or replication factor → INVALID_REQUEST; bad assignments →
// INVALID_REPLICA_ASSIGNMENT; unknown config name, bad value, or a value Sediment does not implement
// (cleanup.policy=compact, compression.type other than producer) → INVALID_CONFIG. -1 (v4+) takes
// num.partitions / default.replication.factor. validateOnly checks everything and creates nothing.
// v5+ responses carry the resulting partition count, replication factor and configs; v7 the topic id.
// TimeoutMillis bounds the wait for the metadata commit (REQUEST_TIMED_OUT past it).

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/sediment-io/sediment/meta"
)

func init() { register(kmsg.CreateTopics, 0, 7, (*Broker).handleCreateTopics) }

// adminTimeout turns a request's TimeoutMillis into a context; <= 0 still gets a bounded wait.
func adminTimeout(ctx context.Context, ms int32) (context.Context, context.CancelFunc) {
	d := time.Duration(ms) * time.Millisecond
	if d <= 0 {
		d = 30 * time.Second
	}
	return context.WithTimeout(ctx, d)
}

func (b *Broker) handleCreateTopics(ctx context.Context, c *connCtx, kreq kmsg.Request) (kmsg.Response, error) {
	req := kreq.(*kmsg.CreateTopicsRequest)
	resp := req.ResponseKind().(*kmsg.CreateTopicsResponse)
	ctx, cancel := adminTimeout(ctx, req.TimeoutMillis)
	defer cancel()

	count := map[string]int{}
	for _, rt := range req.Topics {
		count[rt.Topic]++
	}
	// A dry run is checked here, not by the state machine, so it first catches up with the committed
	// metadata: this broker's view may trail it (a topic just created, a broker just registered).
	var stale error
	if req.ValidateOnly {
		stale = b.meta.CatchUp(ctx)
	}
	for _, rt := range req.Topics {
		t := kmsg.NewCreateTopicsResponseTopic()
		t.Topic = rt.Topic
		t.NumPartitions, t.ReplicationFactor = -1, -1
		fail := func(code *kerr.Error, msg string) {
			t.ErrorCode = code.Code
			t.ErrorMessage = strPtr(msg)
		}
		if count[rt.Topic] > 1 {
			fail(kerr.InvalidRequest, fmt.Sprintf("topic %q appears more than once in the request", rt.Topic))
			resp.Topics = append(resp.Topics, t)
			continue
		}
		spec, err := b.topicSpec(rt, req.ValidateOnly)
		if stale != nil {
			err = stale
		}
		if err != nil {
			t.ErrorCode, t.ErrorMessage = errorCode(err), errorMessage(err)
			resp.Topics = append(resp.Topics, t)
			continue
		}
		created, err := b.meta.CreateTopic(ctx, spec)
		if err != nil {
			t.ErrorCode, t.ErrorMessage = errorCode(err), errorMessage(err)
			if t.ErrorCode == kerr.TopicAlreadyExists.Code {
				t.ErrorMessage = strPtr(fmt.Sprintf("Topic '%s' already exists.", rt.Topic))
			}
			resp.Topics = append(resp.Topics, t)
			continue
		}
		if created != nil {
			if !req.ValidateOnly { // a dry run's id names no topic; Kafka answers the zero id
				t.TopicID = created.ID
			}
			t.NumPartitions = int32(len(created.Partitions))
			if len(created.Partitions) > 0 {
				t.ReplicationFactor = int16(len(created.Partitions[0].Replicas))
			}
		} else { // validateOnly without a dry-run topic: report what was asked
			t.NumPartitions, t.ReplicationFactor = spec.Partitions, spec.ReplicationFactor
		}
		for _, e := range b.topicConfigEntries(spec.Configs, nil) {
			tc := kmsg.NewCreateTopicsResponseTopicConfig()
			tc.Name, tc.Value, tc.ReadOnly, tc.Source = e.name, strPtr(e.value), e.readOnly, int8(e.source)
			t.Configs = append(t.Configs, tc)
		}
		if !req.ValidateOnly {
			b.log.Info("topic created", "topic", rt.Topic, "topic_id", meta.TopicID(t.TopicID).String(),
				"partitions", t.NumPartitions, "replication_factor", t.ReplicationFactor, "client_id", c.clientID)
		}
		resp.Topics = append(resp.Topics, t)
	}
	return resp, nil
}

// topicSpec validates one CreateTopics entry and fills the defaults.
func (b *Broker) topicSpec(rt kmsg.CreateTopicsRequestTopic, validateOnly bool) (meta.TopicSpec, error) {
	spec := meta.TopicSpec{Name: rt.Topic, Partitions: rt.NumPartitions, ReplicationFactor: rt.ReplicationFactor, ValidateOnly: validateOnly}
	if err := meta.ValidateTopicName(rt.Topic); err != nil {
		return spec, err
	}
	if internalTopic(rt.Topic) {
		return spec, kerrf(kerr.InvalidRequest, "Creation of internal topic %s is prohibited: Sediment keeps group offsets in Raft and has no transactions", rt.Topic)
	}
	if other, ok := b.collidingTopic(rt.Topic); ok {
		return spec, kerrf(kerr.InvalidTopicException, "topic %q collides with existing topic %q ('.' and '_' are the same in metric names)", rt.Topic, other)
	}
	if _, ok := b.meta.State().Topic(rt.Topic); ok {
		return spec, kerrf(kerr.TopicAlreadyExists, "Topic '%s' already exists.", rt.Topic)
	}
	if len(rt.ReplicaAssignment) > 0 {
		if rt.NumPartitions != -1 || rt.ReplicationFactor != -1 {
			return spec, kerrf(kerr.InvalidRequest, "topic %q: both numPartitions or replicationFactor and replicasAssignment were set; both cannot be used at the same time", rt.Topic)
		}
		spec.Partitions, spec.ReplicationFactor = 0, 0
		seen := map[int32]bool{}
		for _, a := range rt.ReplicaAssignment {
			if seen[a.Partition] || a.Partition < 0 || int(a.Partition) >= len(rt.ReplicaAssignment) {
				return spec, kerrf(kerr.InvalidReplicaAssignment, "topic %q: partitions in the replica assignment must be 0..%d, each once", rt.Topic, len(rt.ReplicaAssignment)-1)
			}
			seen[a.Partition] = true
		}
		spec.Assignments = make([][]int32, len(rt.ReplicaAssignment))
		for _, a := range rt.ReplicaAssignment {
			spec.Assignments[a.Partition] = append([]int32{}, a.Replicas...)
		}
	} else {
		if spec.Partitions == -1 {
			spec.Partitions = b.cfg.NumPartitions
		}
		if spec.ReplicationFactor == -1 {
			spec.ReplicationFactor = b.cfg.DefaultReplicationFactor
		}
		if spec.Partitions <= 0 {
			return spec, kerrf(kerr.InvalidPartitions, "topic %q: number of partitions must be larger than 0 (or -1 for the default), got %d", rt.Topic, rt.NumPartitions)
		}
		if spec.ReplicationFactor <= 0 {
			return spec, kerrf(kerr.InvalidReplicationFactor, "topic %q: replication factor must be larger than 0 (or -1 for the default), got %d", rt.Topic, rt.ReplicationFactor)
		}
		// A factor above the live brokers is refused by the metadata state machine when the
		// creation is applied (meta's placement), against the committed broker list. It is not
		// checked here: this broker's own view may not have applied the latest registrations yet
		// (a cluster just started, a broker just unfenced), and refusing from it would answer
		// INVALID_REPLICATION_FACTOR for a topic the controller would create.
	}
	if len(rt.Configs) > 0 {
		spec.Configs = make(map[string]string, len(rt.Configs))
		for _, c := range rt.Configs {
			if c.Value == nil {
				return spec, kerrf(kerr.InvalidConfig, "topic %q: config %s has a null value", rt.Topic, c.Name)
			}
			if _, dup := spec.Configs[c.Name]; dup {
				return spec, kerrf(kerr.InvalidRequest, "topic %q: config %s given twice", rt.Topic, c.Name)
			}
			spec.Configs[c.Name] = *c.Value
		}
		if err := validateTopicConfigs(spec.Configs); err != nil {
			return spec, err
		}
	}
	if err := b.checkTieredTopicConfigs(spec.Configs); err != nil {
		return spec, err
	}
	return spec, nil
}

// collidingTopic finds an existing topic whose name equals name once '.' and '_' are unified
// (Kafka refuses such pairs because their metric names collide).
func (b *Broker) collidingTopic(name string) (string, bool) {
	if !strings.ContainsAny(name, "._") {
		return "", false
	}
	norm := func(s string) string { return strings.ReplaceAll(s, ".", "_") }
	n := norm(name)
	for _, t := range b.meta.State().Topics() {
		if t.Name != name && norm(t.Name) == n {
			return t.Name, true
		}
	}
	return "", false
}

// kerrf is a Kafka error with a message; errorCode maps it to its code, errorMessage gives the text.
func kerrf(code *kerr.Error, format string, args ...any) error {
	return &kafkaError{code: code, msg: fmt.Sprintf(format, args...)}
}

type kafkaError struct {
	code *kerr.Error
	msg  string
}

func (e *kafkaError) Error() string { return e.msg }
func (e *kafkaError) Unwrap() error { return e.code }
