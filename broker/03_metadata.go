package broker

// Metadata: v0–v12.
//
// Brokers are the registered, unfenced brokers; ControllerID is the metadata (Raft) leader when it is
// one of them, else a listed broker (see answeredControllerID); ClusterID is meta's. Topics carry their ids (v10+) and may be asked for
// by id (v10+; unknown id → UNKNOWN_TOPIC_ID). OfflineReplicas (v5+) are replicas on brokers that are
// fenced or unregistered. A partition without a leader answers LEADER_NOT_AVAILABLE.
//
// Auto topic creation as Kafka: an unknown topic asked for by name is created with num.partitions and
// default.replication.factor when auto.create.topics.enable is true and the request allows it (always
// for v0–v3, AllowAutoTopicCreation for v4+). An invalid name then answers INVALID_TOPIC_EXCEPTION.
// Kafka's internal topic names (__consumer_offsets, __transaction_state) are never auto-created:
// Sediment keeps group offsets in Raft, so they answer UNKNOWN_TOPIC_OR_PARTITION.
// Unlike Kafka, which answers LEADER_NOT_AVAILABLE until the controller has propagated the new topic,
// the topic's full metadata is returned at once: CreateTopic returns after the Raft commit is applied
// on the broker that served it. Another broker applies the commit a moment later (its Raft learns
// the commit index within RaftCommitTimeout): a topic asked for by name or id that a non-controller
// broker does not know yet is waited for, up to metadataCatchUp, before UNKNOWN_TOPIC_OR_PARTITION /
// UNKNOWN_TOPIC_ID (or auto-creation). Without that wait, franz-go, which refreshes metadata at most
// every 5 s (MetadataMinAge), stalled a producer started right after CreateTopics for 5 s whenever its
// metadata request reached a lagging broker (seen in `sediment bench`'s RF3 target: no ack for 5 s).
//
// Authorized operations (v8+) are reported as "everything a topic/cluster supports" when asked:
// Sediment has no ACLs. Deliberately absent: v13's top-level error code (KIP-1102 rebootstrap).

import (
	"context"
	"errors"
	"iter"
	"slices"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/sediment-io/sediment/meta"
)

func init() { register(kmsg.Metadata, 0, 12, (*Broker).handleMetadata) }

// Bit sets of ACL operations (Kafka's AclOperation codes) that apply to a topic / the cluster;
// with no authorizer everything is allowed.
const (
	topicAuthorizedOps   = 1<<3 | 1<<4 | 1<<5 | 1<<6 | 1<<7 | 1<<8 | 1<<10 | 1<<11 // READ WRITE CREATE DELETE ALTER DESCRIBE DESCRIBE_CONFIGS ALTER_CONFIGS
	clusterAuthorizedOps = 1<<5 | 1<<7 | 1<<8 | 1<<9 | 1<<10 | 1<<11 | 1<<12       // CREATE ALTER DESCRIBE CLUSTER_ACTION DESCRIBE_CONFIGS ALTER_CONFIGS IDEMPOTENT_WRITE
	notRequestedOps      = -2147483648
	autoCreateTimeout    = 10 * time.Second
	// metadataCatchUp bounds the wait for a topic a non-controller broker does not know yet: a few
	// RaftCommitTimeouts (50 ms by default) on a loaded machine.
	metadataCatchUp = 300 * time.Millisecond
)

func (b *Broker) handleMetadata(ctx context.Context, c *connCtx, kreq kmsg.Request) (kmsg.Response, error) {
	req := kreq.(*kmsg.MetadataRequest)
	resp := req.ResponseKind().(*kmsg.MetadataResponse)
	st := b.meta.State()

	for _, br := range st.Brokers() {
		if br.Fenced {
			continue
		}
		mb := kmsg.NewMetadataResponseBroker()
		mb.NodeID, mb.Host, mb.Port = br.ID, br.Host, br.Port
		if br.Rack != "" {
			rack := br.Rack
			mb.Rack = &rack
		}
		resp.Brokers = append(resp.Brokers, mb)
	}
	cid := st.ClusterID()
	resp.ClusterID = &cid
	resp.ControllerID = b.answeredControllerID(st.ControllerID(), func(yield func(int32) bool) {
		for _, mb := range resp.Brokers {
			if !yield(mb.NodeID) {
				return
			}
		}
	})
	if req.IncludeClusterAuthorizedOperations {
		resp.AuthorizedOperations = clusterAuthorizedOps
	}

	all := req.Topics == nil || (req.Version == 0 && len(req.Topics) == 0)
	if all {
		for _, t := range st.Topics() {
			resp.Topics = append(resp.Topics, b.topicMetadata(st, t, req.IncludeTopicAuthorizedOperations))
		}
		return resp, nil
	}

	if !b.meta.IsController() {
		st = waitForState(ctx, st, b.meta.State, func(st *meta.State) bool { return knowsAll(st, req.Topics) }, metadataCatchUp)
	}
	b.openHosted(st, req.Topics)
	autoCreate := b.cfg.AutoCreateTopicsEnable && (req.Version < 4 || req.AllowAutoTopicCreation)
	for _, rt := range req.Topics {
		var t *meta.Topic
		var ok bool
		switch {
		case rt.Topic != nil:
			t, ok = st.Topic(*rt.Topic)
		case rt.TopicID != [16]byte{}:
			t, ok = st.TopicByID(meta.TopicID(rt.TopicID))
			if !ok {
				mt := kmsg.NewMetadataResponseTopic()
				mt.TopicID = rt.TopicID
				mt.ErrorCode = kerr.UnknownTopicID.Code
				resp.Topics = append(resp.Topics, mt)
				continue
			}
		default:
			mt := kmsg.NewMetadataResponseTopic()
			mt.ErrorCode = kerr.InvalidRequest.Code
			resp.Topics = append(resp.Topics, mt)
			continue
		}
		if ok {
			resp.Topics = append(resp.Topics, b.topicMetadata(st, t, req.IncludeTopicAuthorizedOperations))
			continue
		}
		name := *rt.Topic
		mt := kmsg.NewMetadataResponseTopic()
		mt.Topic = &name
		if !autoCreate || internalTopic(name) {
			mt.ErrorCode = kerr.UnknownTopicOrPartition.Code
			resp.Topics = append(resp.Topics, mt)
			continue
		}
		t, err := b.autoCreateTopic(ctx, name)
		if err != nil {
			mt.ErrorCode = errorCode(err)
			resp.Topics = append(resp.Topics, mt)
			continue
		}
		st = b.meta.State()
		resp.Topics = append(resp.Topics, b.topicMetadata(st, t, req.IncludeTopicAuthorizedOperations))
	}
	return resp, nil
}

// openHosted applies the metadata now (as produce and fetch do on demand, lookupIn) when a
// partition of an asked-for topic is assigned to this broker but not open here yet, so that a
// broker never lists a replica it has not opened: a client or test that acts on this answer at
// once finds it. Meta's event loop would open it a moment later anyway.
func (b *Broker) openHosted(st *meta.State, topics []kmsg.MetadataRequestTopic) {
	rm := b.replicas
	for _, rt := range topics {
		t, ok := requestedTopic(st, rt)
		if !ok {
			continue
		}
		for _, part := range t.Partitions {
			if slices.Contains(part.Replicas, rm.nodeID) && rm.partition(t.ID, part.Index) == nil && rm.onDemandAllowed() {
				if err := rm.reconcile(false); err != nil {
					rm.lastOnDemandFail.Store(time.Now().UnixNano())
					rm.log.Warn("applying metadata on demand", "err", err)
				}
				return
			}
		}
	}
}

// knowsAll reports whether st has every topic asked for by name or id.
func knowsAll(st *meta.State, topics []kmsg.MetadataRequestTopic) bool {
	for _, rt := range topics {
		if _, ok := requestedTopic(st, rt); !ok && (rt.Topic != nil || rt.TopicID != [16]byte{}) {
			return false
		}
	}
	return true
}

// requestedTopic looks a Metadata request's topic up by name, or by id when it has no name.
func requestedTopic(st *meta.State, rt kmsg.MetadataRequestTopic) (*meta.Topic, bool) {
	switch {
	case rt.Topic != nil:
		return st.Topic(*rt.Topic)
	case rt.TopicID != [16]byte{}:
		return st.TopicByID(meta.TopicID(rt.TopicID))
	}
	return nil, false
}

// waitForState returns st if ok(st), else polls load until ok or until bound has passed or ctx
// ends, returning the last state loaded.
func waitForState[S any](ctx context.Context, st S, load func() S, ok func(S) bool, bound time.Duration) S {
	if ok(st) {
		return st
	}
	deadline := time.NewTimer(bound)
	defer deadline.Stop()
	tick := time.NewTicker(5 * time.Millisecond)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return st
		case <-deadline.C:
			return load()
		case <-tick.C:
			if st = load(); ok(st) {
				return st
			}
		}
	}
}

// internalTopic reports Kafka's internal topic names. Sediment has no such topics (group offsets
// live in Raft; there are no transactions), so they are never auto-created and CreateTopics refuses
// them, as Kafka refuses creating an internal topic by hand.
func internalTopic(name string) bool {
	return name == "__consumer_offsets" || name == "__transaction_state"
}

// autoCreateTopic creates name with the broker defaults; a concurrent creation of the same name is
// not an error.
func (b *Broker) autoCreateTopic(ctx context.Context, name string) (*meta.Topic, error) {
	if err := meta.ValidateTopicName(name); err != nil {
		return nil, err
	}
	ctx, cancel := context.WithTimeout(ctx, autoCreateTimeout)
	defer cancel()
	t, err := b.meta.CreateTopic(ctx, meta.TopicSpec{
		Name:              name,
		Partitions:        b.cfg.NumPartitions,
		ReplicationFactor: b.cfg.DefaultReplicationFactor,
	})
	if errors.Is(err, meta.ErrTopicExists) {
		if t, ok := b.meta.State().Topic(name); ok {
			return t, nil
		}
	}
	if err != nil {
		b.log.Warn("auto topic creation failed", "topic", name, "err", err)
		return nil, err
	}
	b.log.Info("topic auto-created", "topic", name, "partitions", len(t.Partitions), "topic_id", t.ID.String())
	return t, nil
}

func (b *Broker) topicMetadata(st *meta.State, t *meta.Topic, includeOps bool) kmsg.MetadataResponseTopic {
	mt := kmsg.NewMetadataResponseTopic()
	name := t.Name
	mt.Topic = &name
	mt.TopicID = t.ID
	if includeOps {
		mt.AuthorizedOperations = topicAuthorizedOps
	}
	alive := func(id int32) bool {
		br, ok := st.Broker(id)
		return ok && !br.Fenced
	}
	for _, p := range t.Partitions {
		mp := kmsg.NewMetadataResponseTopicPartition()
		mp.Partition = p.Index
		mp.Leader = p.Leader
		mp.LeaderEpoch = p.LeaderEpoch
		mp.Replicas = append([]int32{}, p.Replicas...)
		mp.ISR = append([]int32{}, p.ISR...)
		mp.OfflineReplicas = []int32{}
		for _, r := range p.Replicas {
			if !alive(r) {
				mp.OfflineReplicas = append(mp.OfflineReplicas, r)
			}
		}
		if p.Leader < 0 || !alive(p.Leader) {
			mp.Leader = -1
			mp.ErrorCode = kerr.LeaderNotAvailable.Code
		}
		mt.Partitions = append(mt.Partitions, mp)
	}
	return mt
}

// answeredControllerID is the controller id to put in a Metadata or DescribeCluster response whose
// broker list is listed. Clients send controller requests (CreateTopics, DeleteTopics, ...) to that
// id and librdkafka waits, until its request times out, for a connection to a controller it cannot
// find among the listed brokers (its next Metadata refresh may be minutes away). Every Sediment
// broker serves those requests by forwarding to the Raft leader, so when the Raft leader is not a
// listed broker (not registered yet right after a cluster starts, or fenced), any listed broker is
// a correct answer — this one first, as a KRaft broker answers with some alive broker. -1 when
// nothing is listed.
func (b *Broker) answeredControllerID(raftLeader int32, listed iter.Seq[int32]) int32 {
	first, self := int32(-1), false
	for id := range listed {
		if id == raftLeader {
			return raftLeader
		}
		if first < 0 {
			first = id
		}
		self = self || id == b.cfg.NodeID
	}
	if self {
		return b.cfg.NodeID
	}
	return first
}
