package meta

import (
	"bytes"
	"crypto/rand"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/hashicorp/raft"
)

// harness drives the state machine directly, one log entry at a time, as raft would.
type harness struct {
	t   testing.TB
	f   *fsm
	idx uint64
	evs []Event
}

func newHarness(t testing.TB) *harness {
	h := &harness{t: t, f: newFSM(new(atomic.Int32))}
	h.f.after = func(_ *State, evs []Event, _ []int32) { h.evs = append(h.evs, evs...) }
	return h
}

func (h *harness) applyReq(id reqID, body any) *applyResult {
	h.idx++
	return h.f.Apply(&raft.Log{Index: h.idx, Type: raft.LogCommand, Data: encodeCommand(id, body)}).(*applyResult)
}

func (h *harness) apply(body any) *applyResult {
	var id reqID
	rand.Read(id[:])
	return h.applyReq(id, body)
}

func (h *harness) must(body any) *applyResult {
	h.t.Helper()
	r := h.apply(body)
	if err := r.err(); err != nil {
		h.t.Fatalf("%T: %v", body, err)
	}
	return r
}

func (h *harness) st() *State { return h.f.state.Load() }

func (h *harness) broker(id int32, rack string) int64 {
	h.t.Helper()
	return h.must(&cmdRegisterBroker{ID: id, Host: "127.0.0.1", Port: 9000 + id, Rack: rack, Incarnation: fmt.Sprint("inc-", id)}).Epoch
}

func (h *harness) topic(name string, parts int32, rf int16, cfg map[string]string) *Topic {
	h.t.Helper()
	r := h.must(&cmdCreateTopic{ID: newTopicID(), Name: name, Partitions: parts, ReplicationFactor: rf, Configs: cfg})
	t, _ := h.st().TopicByID(r.TopicID)
	return t
}

// standard fixture: brokers 1,2,3 (racks a,b,c), topic "t" with 3 partitions RF 3 (leaders 1,2,3 in
// some order), topic "one" with 1 partition RF 1.
func fixture(t testing.TB) *harness {
	h := newHarness(t)
	h.must(&cmdInitCluster{ClusterID: "c1"})
	h.broker(1, "a")
	h.broker(2, "b")
	h.broker(3, "c")
	h.topic("t", 3, 3, nil)
	h.topic("one", 1, 1, nil)
	return h
}

func TestFSMRejectsInvalidCommands(t *testing.T) {
	tid := func(h *harness, name string) TopicID { tp, _ := h.st().Topic(name); return tp.ID }
	part := func(h *harness, name string, p int32) Partition { tp, _ := h.st().Topic(name); return tp.Partitions[p] }
	cases := []struct {
		name string
		cmd  func(h *harness) any
		want error
		text string // a fragment of the reason
	}{
		{"init empty cluster id", func(*harness) any { return &cmdInitCluster{} }, ErrInvalidRequest, "empty cluster id"},
		{"register negative id", func(*harness) any { return &cmdRegisterBroker{ID: -1, Host: "h", Port: 1, Incarnation: "x"} }, ErrInvalidRequest, "negative"},
		{"register bad port", func(*harness) any { return &cmdRegisterBroker{ID: 9, Host: "h", Port: 0, Incarnation: "x"} }, ErrInvalidRequest, "bad listener"},
		{"register no incarnation", func(*harness) any { return &cmdRegisterBroker{ID: 9, Host: "h", Port: 1} }, ErrInvalidRequest, "incarnation"},
		{"heartbeat unknown broker", func(*harness) any { return &cmdHeartbeat{ID: 42, Epoch: 1} }, ErrUnknownBroker, "not registered"},
		{"heartbeat stale epoch", func(*harness) any { return &cmdHeartbeat{ID: 1, Epoch: 999} }, ErrStaleBrokerEpoch, "epoch 999"},
		{"fence stale epoch", func(*harness) any { return &cmdFenceBroker{ID: 1, Epoch: 999} }, ErrStaleBrokerEpoch, "epoch 999"},
		{"fence unknown", func(*harness) any { return &cmdFenceBroker{ID: 77, Epoch: 1} }, ErrUnknownBroker, ""},
		{"create bad name", func(*harness) any {
			return &cmdCreateTopic{ID: newTopicID(), Name: "a/b", Partitions: 1, ReplicationFactor: 1}
		}, ErrInvalidTopic, "contains"},
		{"create dot name", func(*harness) any {
			return &cmdCreateTopic{ID: newTopicID(), Name: "..", Partitions: 1, ReplicationFactor: 1}
		}, ErrInvalidTopic, "not allowed"},
		{"create long name", func(*harness) any {
			return &cmdCreateTopic{ID: newTopicID(), Name: strings.Repeat("x", 250), Partitions: 1, ReplicationFactor: 1}
		}, ErrInvalidTopic, "limit"},
		{"create exists", func(*harness) any {
			return &cmdCreateTopic{ID: newTopicID(), Name: "t", Partitions: 1, ReplicationFactor: 1}
		}, ErrTopicExists, "already exists"},
		{"create zero id", func(*harness) any { return &cmdCreateTopic{Name: "n", Partitions: 1, ReplicationFactor: 1} }, ErrInvalidRequest, "zero topic id"},
		{"create reused id", func(h *harness) any {
			return &cmdCreateTopic{ID: tid(h, "t"), Name: "n", Partitions: 1, ReplicationFactor: 1}
		}, ErrInvalidRequest, "in use"},
		{"create zero partitions", func(*harness) any {
			return &cmdCreateTopic{ID: newTopicID(), Name: "n", Partitions: 0, ReplicationFactor: 1}
		}, ErrInvalidPartitions, "1.."},
		{"create zero rf", func(*harness) any {
			return &cmdCreateTopic{ID: newTopicID(), Name: "n", Partitions: 1, ReplicationFactor: 0}
		}, ErrInvalidReplicationFactor, "positive"},
		{"create rf too large", func(*harness) any {
			return &cmdCreateTopic{ID: newTopicID(), Name: "n", Partitions: 1, ReplicationFactor: 4}
		}, ErrInvalidReplicationFactor, "3 available"},
		{"create unknown config", func(*harness) any {
			return &cmdCreateTopic{ID: newTopicID(), Name: "n", Partitions: 1, ReplicationFactor: 1, Configs: map[string]string{"retention.mss": "1"}}
		}, ErrInvalidConfig, "unknown topic config"},
		{"create bad config value", func(*harness) any {
			return &cmdCreateTopic{ID: newTopicID(), Name: "n", Partitions: 1, ReplicationFactor: 1, Configs: map[string]string{"cleanup.policy": "shred"}}
		}, ErrInvalidConfig, "cleanup.policy"},
		{"create bad bool", func(*harness) any {
			return &cmdCreateTopic{ID: newTopicID(), Name: "n", Partitions: 1, ReplicationFactor: 1, Configs: map[string]string{"unclean.leader.election.enable": "yes"}}
		}, ErrInvalidConfig, "boolean"},
		{"create min isr 0", func(*harness) any {
			return &cmdCreateTopic{ID: newTopicID(), Name: "n", Partitions: 1, ReplicationFactor: 1, Configs: map[string]string{"min.insync.replicas": "0"}}
		}, ErrInvalidConfig, "at least 1"},
		{"create local retention above total", func(*harness) any {
			return &cmdCreateTopic{ID: newTopicID(), Name: "n", Partitions: 1, ReplicationFactor: 1, Configs: map[string]string{"retention.ms": "1000", "local.retention.ms": "2000"}}
		}, ErrInvalidConfig, "must not exceed"},
		{"assign duplicate broker", func(*harness) any {
			return &cmdCreateTopic{ID: newTopicID(), Name: "n", Assignments: [][]int32{{1, 1}}}
		}, ErrInvalidReplicaAssignment, "twice"},
		{"assign unknown broker", func(*harness) any {
			return &cmdCreateTopic{ID: newTopicID(), Name: "n", Assignments: [][]int32{{1, 9}}}
		}, ErrInvalidReplicaAssignment, "not registered"},
		{"assign uneven", func(*harness) any {
			return &cmdCreateTopic{ID: newTopicID(), Name: "n", Assignments: [][]int32{{1, 2}, {3}}}
		}, ErrInvalidReplicaAssignment, "other partitions"},
		{"assign empty", func(*harness) any { return &cmdCreateTopic{ID: newTopicID(), Name: "n", Assignments: [][]int32{{}}} }, ErrInvalidReplicaAssignment, "empty"},
		{"assign and rf", func(*harness) any {
			return &cmdCreateTopic{ID: newTopicID(), Name: "n", ReplicationFactor: 2, Assignments: [][]int32{{1, 2}}}
		}, ErrInvalidRequest, "either"},
		{"delete unknown", func(*harness) any { return &cmdDeleteTopic{Name: "nope"} }, ErrUnknownTopic, "does not exist"},
		{"delete wrong id", func(*harness) any { return &cmdDeleteTopic{Name: "t", ID: newTopicID()} }, ErrUnknownTopic, ""},
		{"partitions not larger", func(*harness) any { return &cmdCreatePartitions{Name: "t", Total: 3} }, ErrInvalidPartitions, "must be larger"},
		{"partitions unknown topic", func(*harness) any { return &cmdCreatePartitions{Name: "zz", Total: 3} }, ErrUnknownTopic, ""},
		{"partitions assignment count", func(*harness) any {
			return &cmdCreatePartitions{Name: "t", Total: 5, Assignments: [][]int32{{1, 2, 3}}}
		}, ErrInvalidReplicaAssignment, "2 new"},
		{"partitions assignment rf", func(*harness) any { return &cmdCreatePartitions{Name: "t", Total: 4, Assignments: [][]int32{{1}}} }, ErrInvalidReplicaAssignment, "other partitions"},
		{"alter configs unknown topic", func(*harness) any { return &cmdAlterConfigs{Name: "zz", Set: map[string]string{"retention.ms": "1"}} }, ErrUnknownTopic, ""},
		{"alter configs bad name", func(*harness) any { return &cmdAlterConfigs{Name: "t", Set: map[string]string{"foo": "1"}} }, ErrInvalidConfig, "foo"},
		{"alter configs bad value", func(*harness) any { return &cmdAlterConfigs{Name: "t", Set: map[string]string{"segment.bytes": "-5"}} }, ErrInvalidConfig, "segment.bytes"},
		{"alter configs remove unknown", func(*harness) any { return &cmdAlterConfigs{Name: "t", Remove: []string{"bogus"}} }, ErrInvalidConfig, "bogus"},
		{"alter configs timestamp type", func(*harness) any {
			return &cmdAlterConfigs{Name: "t", Set: map[string]string{"message.timestamp.type": "Now"}}
		}, ErrInvalidConfig, "CreateTime"},
		{"alter cluster configs unknown name", func(*harness) any {
			return &cmdAlterClusterConfigs{Set: map[string]string{"num.io.threads": "1"}}
		}, ErrInvalidConfig, "num.io.threads"},
		{"alter cluster configs not a bool", func(*harness) any {
			return &cmdAlterClusterConfigs{Set: map[string]string{"remote.log.copy.disable": "yes"}}
		}, ErrInvalidConfig, "remote.log.copy.disable"},
		{"alter cluster configs remove unknown", func(*harness) any { return &cmdAlterClusterConfigs{Remove: []string{"bogus"}} }, ErrInvalidConfig, "bogus"},
		{"alter partition unknown topic", func(*harness) any {
			return &cmdAlterPartition{Topic: newTopicID(), BrokerID: 1, BrokerEpoch: 2, ISR: []int32{1}}
		}, ErrUnknownTopicID, ""},
		{"alter partition bad index", func(h *harness) any {
			return &cmdAlterPartition{Topic: tid(h, "t"), Partition: 7, BrokerID: 1, ISR: []int32{1}}
		}, ErrUnknownTopic, "no partition 7"},
		{"alter partition stale broker epoch", func(h *harness) any {
			p := part(h, "t", 0)
			return &cmdAlterPartition{Topic: tid(h, "t"), BrokerID: p.Leader, BrokerEpoch: 12345, ISR: p.ISR}
		}, ErrStaleBrokerEpoch, ""},
		{"alter partition not leader", func(h *harness) any {
			p := part(h, "t", 0)
			f := p.ISR[1]
			if f == p.Leader {
				f = p.ISR[0]
			}
			b, _ := h.st().Broker(f)
			return &cmdAlterPartition{Topic: tid(h, "t"), BrokerID: f, BrokerEpoch: b.Epoch, ISR: p.ISR}
		}, ErrNotLeader, "not the leader"},
		{"alter partition fenced leader epoch", func(h *harness) any {
			p := part(h, "t", 0)
			b, _ := h.st().Broker(p.Leader)
			return &cmdAlterPartition{Topic: tid(h, "t"), BrokerID: p.Leader, BrokerEpoch: b.Epoch, LeaderEpoch: 5, ISR: p.ISR}
		}, ErrFencedLeaderEpoch, "leader epoch 5"},
		{"alter partition stale partition epoch", func(h *harness) any {
			p := part(h, "t", 0)
			b, _ := h.st().Broker(p.Leader)
			return &cmdAlterPartition{Topic: tid(h, "t"), BrokerID: p.Leader, BrokerEpoch: b.Epoch, PartitionEpoch: 3, ISR: p.ISR}
		}, ErrStalePartitionEpoch, "partition epoch 3"},
		{"alter partition isr without leader", func(h *harness) any {
			p := part(h, "t", 0)
			b, _ := h.st().Broker(p.Leader)
			return &cmdAlterPartition{Topic: tid(h, "t"), BrokerID: p.Leader, BrokerEpoch: b.Epoch, ISR: without(p.ISR, p.Leader)}
		}, ErrInvalidRequest, "must contain the leader"},
		{"alter partition non replica", func(h *harness) any {
			p := part(h, "one", 0)
			b, _ := h.st().Broker(p.Leader)
			other := int32(1)
			if p.Leader == 1 {
				other = 2
			}
			return &cmdAlterPartition{Topic: tid(h, "one"), BrokerID: p.Leader, BrokerEpoch: b.Epoch, ISR: []int32{p.Leader, other}}
		}, ErrInvalidRequest, "not a replica"},
		{"producer ids unknown broker", func(*harness) any { return &cmdAllocateProducerIDs{BrokerID: 99, Count: 10} }, ErrUnknownBroker, ""},
		{"producer ids zero count", func(*harness) any { return &cmdAllocateProducerIDs{BrokerID: 1, Count: 0} }, ErrInvalidRequest, "block size"},
		{"commit empty group", func(*harness) any { return &cmdCommitOffsets{Offsets: []OffsetCommit{{Topic: "t"}}} }, ErrInvalidRequest, "group id"},
		{"commit unknown partition", func(*harness) any {
			return &cmdCommitOffsets{Group: "g", Offsets: []OffsetCommit{{Topic: "t", Partition: 0, Offset: 1}, {Topic: "t", Partition: 9, Offset: 1}}}
		}, ErrUnknownTopic, "t-9"},
		{"commit bad offset", func(*harness) any {
			return &cmdCommitOffsets{Group: "g", Offsets: []OffsetCommit{{Topic: "t", Offset: -7}}}
		}, ErrInvalidRequest, "offset -7"},
		{"remote unknown topic", func(*harness) any {
			return &cmdAddRemoteSegment{Topic: newTopicID(), Segment: RemoteSegment{ObjectKey: "k", LastOffset: 1}}
		}, ErrUnknownTopicID, ""},
		{"remote bad offsets", func(h *harness) any {
			return &cmdAddRemoteSegment{Topic: tid(h, "t"), Segment: RemoteSegment{ObjectKey: "k", BaseOffset: 5, LastOffset: 1}}
		}, ErrInvalidRequest, "bad remote segment"},
		{"remote empty key", func(h *harness) any {
			return &cmdAddRemoteSegment{Topic: tid(h, "t"), Segment: RemoteSegment{LastOffset: 1}}
		}, ErrInvalidRequest, "bad remote segment"},
		{"remote remove unknown topic", func(*harness) any { return &cmdRemoveRemoteSegments{Topic: newTopicID(), ObjectKeys: []string{"k"}} }, ErrUnknownTopicID, ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			h := fixture(t)
			before := h.st().Digest()
			r := h.apply(c.cmd(h))
			err := r.err()
			if !errors.Is(err, c.want) {
				t.Fatalf("got %v, want %v", err, c.want)
			}
			if !strings.Contains(err.Error(), c.text) {
				t.Fatalf("reason %q lacks %q", err.Error(), c.text)
			}
			if after := h.st().Digest(); after != before {
				t.Fatal("a rejected command changed the state")
			}
		})
	}
}

func TestFSMCorruptCommandRejected(t *testing.T) {
	h := fixture(t)
	before := h.st().Digest()
	for _, data := range [][]byte{nil, {1}, append([]byte{9, 1}, make([]byte, 16)...), append([]byte{1, 200}, make([]byte, 16)...),
		append(append([]byte{1, byte(kindCreateTopic)}, make([]byte, 16)...), `{"Name":1}`...),
		append(append([]byte{1, byte(kindCreateTopic)}, make([]byte, 16)...), `{"Nope":1}`...)} {
		h.idx++
		r := h.f.Apply(&raft.Log{Index: h.idx, Type: raft.LogCommand, Data: data}).(*applyResult)
		if !errors.Is(r.err(), ErrCorruptCommand) && !errors.Is(r.err(), ErrUnsupportedVersion) {
			t.Fatalf("%x: %v", data, r.err())
		}
	}
	if h.st().Digest() != before {
		t.Fatal("corrupt command changed the state")
	}
}

func TestFSMCommands(t *testing.T) {
	t.Run("register gives epoch from index and re-registration keeps it", func(t *testing.T) {
		h := newHarness(t)
		e := h.broker(1, "")
		if e != brokerEpoch(h.idx, 0) {
			t.Fatalf("epoch %d index %d", e, h.idx)
		}
		if again := h.broker(1, ""); again != e {
			t.Fatalf("same incarnation got epoch %d, want %d", again, e)
		}
		r := h.must(&cmdRegisterBroker{ID: 1, Host: "h", Port: 1, Incarnation: "new"})
		if r.Epoch <= e {
			t.Fatalf("new incarnation epoch %d not above %d", r.Epoch, e)
		}
	})
	t.Run("create topic places leaders evenly, epoch 0, ISR all replicas", func(t *testing.T) {
		h := fixture(t)
		tp, _ := h.st().Topic("t")
		leaders := map[int32]int{}
		for _, p := range tp.Partitions {
			if p.LeaderEpoch != 0 || p.PartitionEpoch != 0 || p.Leader != p.Replicas[0] || !slices.Equal(p.ISR, p.Replicas) || len(p.Replicas) != 3 {
				t.Fatalf("partition %+v", p)
			}
			leaders[p.Leader]++
		}
		if len(leaders) != 3 {
			t.Fatalf("leaders %v", leaders)
		}
	})
	t.Run("create topic with manual assignment", func(t *testing.T) {
		h := fixture(t)
		r := h.must(&cmdCreateTopic{ID: newTopicID(), Name: "m", Assignments: [][]int32{{3, 1}, {2, 3}}})
		tp, _ := h.st().TopicByID(r.TopicID)
		if tp.Partitions[0].Leader != 3 || tp.Partitions[1].Leader != 2 || !slices.Equal(tp.Partitions[1].Replicas, []int32{2, 3}) {
			t.Fatalf("%+v", tp.Partitions)
		}
	})
	t.Run("delete topic removes it and its offsets, keeps remote segments listed", func(t *testing.T) {
		h := fixture(t)
		tp, _ := h.st().Topic("t")
		h.must(&cmdCommitOffsets{Group: "g", Offsets: []OffsetCommit{{Topic: "t", Partition: 1, Offset: 5}, {Topic: "one", Offset: 2}}})
		h.must(&cmdAddRemoteSegment{Topic: tp.ID, Partition: 0, Segment: RemoteSegment{ObjectKey: "k0", LastOffset: 9, Size: 100}})
		h.must(&cmdDeleteTopic{Name: "t", ID: tp.ID})
		if _, ok := h.st().Topic("t"); ok {
			t.Fatal("still there")
		}
		if _, ok := h.st().CommittedOffset("g", "t", 1); ok {
			t.Fatal("offset of deleted topic kept")
		}
		if o, ok := h.st().CommittedOffset("g", "one", 0); !ok || o.Offset != 2 {
			t.Fatal("offset of other topic lost")
		}
		if d := h.st().DeletedTopicsWithRemoteData(); len(d) != 1 || d[0] != tp.ID || len(h.st().RemoteSegments(tp.ID, 0)) != 1 {
			t.Fatalf("deleted topic's remote data not listed: %v", d)
		}
		h.must(&cmdRemoveRemoteSegments{Topic: tp.ID, Partition: 0, ObjectKeys: []string{"k0"}})
		if d := h.st().DeletedTopicsWithRemoteData(); len(d) != 0 {
			t.Fatalf("still listed: %v", d)
		}
	})
	t.Run("create partitions", func(t *testing.T) {
		h := fixture(t)
		h.must(&cmdCreatePartitions{Name: "t", Total: 6})
		tp, _ := h.st().Topic("t")
		if len(tp.Partitions) != 6 || tp.Partitions[5].Index != 5 || len(tp.Partitions[5].Replicas) != 3 {
			t.Fatalf("%+v", tp.Partitions)
		}
	})
	t.Run("alter configs set and remove", func(t *testing.T) {
		h := fixture(t)
		h.must(&cmdAlterConfigs{Name: "t", Set: map[string]string{"retention.ms": "100", "cleanup.policy": "compact,delete"}})
		h.must(&cmdAlterConfigs{Name: "t", Remove: []string{"retention.ms"}})
		tp, _ := h.st().Topic("t")
		if len(tp.Configs) != 1 || tp.Configs["cleanup.policy"] != "compact,delete" {
			t.Fatalf("%v", tp.Configs)
		}
	})
	t.Run("alter partition shrinks and expands ISR with epoch checks", func(t *testing.T) {
		h := fixture(t)
		tp, _ := h.st().Topic("t")
		p := tp.Partitions[0]
		b, _ := h.st().Broker(p.Leader)
		shrunk := []int32{p.Leader}
		r := h.must(&cmdAlterPartition{Topic: tp.ID, BrokerID: p.Leader, BrokerEpoch: b.Epoch, LeaderEpoch: 0, PartitionEpoch: 0, ISR: shrunk})
		if r.Partition.PartitionEpoch != 1 || !slices.Equal(r.Partition.ISR, shrunk) || r.Partition.LeaderEpoch != 0 {
			t.Fatalf("%+v", r.Partition)
		}
		// The same request again is now stale.
		if err := h.apply(&cmdAlterPartition{Topic: tp.ID, BrokerID: p.Leader, BrokerEpoch: b.Epoch, PartitionEpoch: 0, ISR: shrunk}).err(); !errors.Is(err, ErrStalePartitionEpoch) {
			t.Fatalf("stale: %v", err)
		}
		// A fenced broker may not join the ISR.
		f := p.Replicas[1]
		if f == p.Leader {
			f = p.Replicas[0]
		}
		fb, _ := h.st().Broker(f)
		h.must(&cmdFenceBroker{ID: f, Epoch: fb.Epoch})
		if err := h.apply(&cmdAlterPartition{Topic: tp.ID, BrokerID: p.Leader, BrokerEpoch: b.Epoch, PartitionEpoch: 1, ISR: []int32{p.Leader, f}}).err(); !errors.Is(err, ErrIneligibleReplica) {
			t.Fatalf("fenced joined ISR: %v", err)
		}
		h.must(&cmdHeartbeat{ID: f, Epoch: fb.Epoch})
		r = h.must(&cmdAlterPartition{Topic: tp.ID, BrokerID: p.Leader, BrokerEpoch: b.Epoch, PartitionEpoch: 1, ISR: []int32{f, p.Leader}})
		if r.Partition.PartitionEpoch != 2 || len(r.Partition.ISR) != 2 {
			t.Fatalf("%+v", r.Partition)
		}
	})
	t.Run("producer id blocks never overlap", func(t *testing.T) {
		h := fixture(t)
		a := h.must(&cmdAllocateProducerIDs{BrokerID: 1, Count: 1000}).First
		b := h.must(&cmdAllocateProducerIDs{BrokerID: 2, Count: 1000}).First
		if a != 0 || b != 1000 || h.st().NextProducerID() != 2000 {
			t.Fatalf("%d %d %d", a, b, h.st().NextProducerID())
		}
	})
	t.Run("commit many offsets in one entry, delete some, delete group", func(t *testing.T) {
		h := fixture(t)
		var offs []OffsetCommit
		for p := int32(0); p < 3; p++ {
			offs = append(offs, OffsetCommit{Topic: "t", Partition: p, Offset: int64(10 * p), LeaderEpoch: 0, Metadata: "m", CommitTime: 77})
		}
		before := h.idx
		h.must(&cmdCommitOffsets{Group: "g", Offsets: offs})
		if h.idx != before+1 {
			t.Fatal("not one entry")
		}
		if o, _ := h.st().CommittedOffset("g", "t", 2); o.Offset != 20 || o.Metadata != "m" || o.CommitTime != 77 {
			t.Fatalf("%+v", o)
		}
		h.must(&cmdDeleteOffsets{Group: "g", Partitions: []TopicPartition{{"t", 0}}})
		if len(h.st().CommittedOffsets("g")) != 2 {
			t.Fatal("delete one")
		}
		h.must(&cmdDeleteOffsets{Group: "g"})
		if len(h.st().Groups()) != 0 {
			t.Fatal("delete group")
		}
	})
	t.Run("commit offsets batch: groups stand or fall alone, one entry", func(t *testing.T) {
		h := fixture(t)
		before := h.idx
		r := h.must(&cmdCommitOffsetsBatch{Groups: []GroupOffsets{
			{Group: "a", Offsets: []OffsetCommit{{Topic: "t", Partition: 0, Offset: 3}}},
			{Group: "bad", Offsets: []OffsetCommit{{Topic: "nope", Partition: 0, Offset: 3}}},
			{Group: "c", Offsets: []OffsetCommit{{Topic: "one", Partition: 0, Offset: 4}}},
		}})
		if h.idx != before+1 {
			t.Fatal("not one entry")
		}
		errs := itemErrors(r, 3)
		if errs[0] != nil || errs[2] != nil || !errors.Is(errs[1], ErrUnknownTopic) {
			t.Fatalf("%v", errs)
		}
		if o, _ := h.st().CommittedOffset("c", "one", 0); o.Offset != 4 {
			t.Fatal("group c not applied")
		}
		if len(h.st().CommittedOffsets("bad")) != 0 {
			t.Fatal("rejected group applied")
		}
		r = h.must(&cmdDeleteOffsetsBatch{Groups: []GroupPartitions{{Group: "a"}, {Group: "c", Partitions: []TopicPartition{{"one", 0}}}}})
		if len(h.st().Groups()) != 0 {
			t.Fatalf("groups left: %v", h.st().Groups())
		}
	})
	t.Run("remote manifest add in order, reject overlap, remove", func(t *testing.T) {
		h := fixture(t)
		tp, _ := h.st().Topic("t")
		s1 := RemoteSegment{BaseOffset: 0, LastOffset: 99, FirstTimestamp: 1, MaxTimestamp: 5, Size: 1000, ObjectKey: "a", LeaderEpoch: 0}
		s2 := RemoteSegment{BaseOffset: 100, LastOffset: 199, Size: 1000, ObjectKey: "b"}
		h.must(&cmdAddRemoteSegment{Topic: tp.ID, Partition: 1, Segment: s1})
		h.must(&cmdAddRemoteSegment{Topic: tp.ID, Partition: 1, Segment: s1}) // same segment twice: no-op
		h.must(&cmdAddRemoteSegment{Topic: tp.ID, Partition: 1, Segment: s2})
		if err := h.apply(&cmdAddRemoteSegment{Topic: tp.ID, Partition: 1, Segment: RemoteSegment{BaseOffset: 150, LastOffset: 300, ObjectKey: "c"}}).err(); !errors.Is(err, ErrInvalidRequest) {
			t.Fatalf("overlap: %v", err)
		}
		if segs := h.st().RemoteSegments(tp.ID, 1); len(segs) != 2 || segs[0] != s1 || segs[1] != s2 {
			t.Fatalf("%+v", segs)
		}
		h.must(&cmdRemoveRemoteSegments{Topic: tp.ID, Partition: 1, ObjectKeys: []string{"a"}})
		h.must(&cmdRemoveRemoteSegments{Topic: tp.ID, Partition: 1, ObjectKeys: []string{"a"}})
		if segs := h.st().RemoteSegments(tp.ID, 1); len(segs) != 1 || segs[0] != s2 {
			t.Fatalf("%+v", segs)
		}
	})
}

func TestFSMRetriedProposalAppliedOnce(t *testing.T) {
	for _, c := range []struct {
		name string
		body func(h *harness) any
	}{
		{"producer ids", func(*harness) any { return &cmdAllocateProducerIDs{BrokerID: 1, Count: 10} }},
		{"create topic", func(*harness) any {
			return &cmdCreateTopic{ID: newTopicID(), Name: "x", Partitions: 2, ReplicationFactor: 2}
		}},
		{"create partitions", func(*harness) any { return &cmdCreatePartitions{Name: "t", Total: 4} }},
		{"alter partition", func(h *harness) any {
			tp, _ := h.st().Topic("t")
			p := tp.Partitions[0]
			b, _ := h.st().Broker(p.Leader)
			return &cmdAlterPartition{Topic: tp.ID, BrokerID: p.Leader, BrokerEpoch: b.Epoch, ISR: []int32{p.Leader}}
		}},
		{"delete topic", func(*harness) any { return &cmdDeleteTopic{Name: "one"} }},
		{"register broker", func(*harness) any { return &cmdRegisterBroker{ID: 4, Host: "h", Port: 1, Incarnation: "i4"} }},
	} {
		t.Run(c.name, func(t *testing.T) {
			h := fixture(t)
			var id reqID
			rand.Read(id[:])
			body := c.body(h)
			first := h.applyReq(id, body)
			if first.err() != nil {
				t.Fatal(first.err())
			}
			d := h.st().Digest()
			second := h.applyReq(id, body)
			if h.st().Digest() != d {
				t.Fatal("second application changed the state")
			}
			first.Index, second.Index = 0, 0
			if fmt.Sprint(*first) != fmt.Sprint(*second) {
				t.Fatalf("results differ: %+v vs %+v", first, second)
			}
		})
	}
}

func TestFSMFenceMovesLeadershipInOneEpochBump(t *testing.T) {
	h := fixture(t)
	tp, _ := h.st().Topic("t")
	before := slices.Clone(tp.Partitions)
	victim := before[0].Leader
	vb, _ := h.st().Broker(victim)
	h.evs = nil
	h.must(&cmdFenceBroker{ID: victim, Epoch: vb.Epoch})
	h.must(&cmdFenceBroker{ID: victim, Epoch: vb.Epoch}) // applied twice: nothing more happens
	tp, _ = h.st().Topic("t")
	for i, p := range tp.Partitions {
		old := before[i]
		if slices.Contains(p.ISR, victim) {
			t.Fatalf("fenced broker still in ISR: %+v", p)
		}
		if old.Leader == victim {
			if p.Leader == victim || p.Leader == -1 || !slices.Contains(old.ISR, p.Leader) {
				t.Fatalf("bad new leader: %+v", p)
			}
			if p.LeaderEpoch != old.LeaderEpoch+1 {
				t.Fatalf("leader epoch %d, want %d", p.LeaderEpoch, old.LeaderEpoch+1)
			}
		} else if p.Leader != old.Leader || p.LeaderEpoch != old.LeaderEpoch {
			t.Fatalf("uninvolved leader changed: %+v", p)
		}
		if p.PartitionEpoch != old.PartitionEpoch+1 {
			t.Fatalf("partition epoch %d", p.PartitionEpoch)
		}
	}
	// RF 1 topic on the victim: no leader (unclean off) but ISR keeps the last member.
	one, _ := h.st().Topic("one")
	if one.Partitions[0].Replicas[0] == victim {
		if p := one.Partitions[0]; p.Leader != -1 || !slices.Equal(p.ISR, []int32{victim}) {
			t.Fatalf("%+v", p)
		}
	}
	var changed, brokerEv int
	for _, e := range h.evs {
		switch e.Kind {
		case PartitionChanged:
			changed++
		case BrokerChanged:
			brokerEv++
		}
	}
	if changed < 3 || brokerEv != 1 {
		t.Fatalf("events: %v", h.evs)
	}
	// Heartbeat again: unfenced, and leaderless partitions in its ISR get it back as leader.
	h.must(&cmdHeartbeat{ID: victim, Epoch: vb.Epoch})
	if b, _ := h.st().Broker(victim); b.Fenced {
		t.Fatal("still fenced")
	}
	if one.Partitions[0].Replicas[0] == victim {
		one, _ = h.st().Topic("one")
		if p := one.Partitions[0]; p.Leader != victim || p.LeaderEpoch != 2 {
			t.Fatalf("%+v", p)
		}
	}
}

func TestFSMElectPreferred(t *testing.T) {
	h := fixture(t)
	tp, _ := h.st().Topic("t")
	p0 := tp.Partitions[0]
	pref := p0.Replicas[0]
	pb, _ := h.st().Broker(pref)
	h.must(&cmdFenceBroker{ID: pref, Epoch: pb.Epoch})
	if r := h.must(&cmdElectPreferred{Topic: "t", Partitions: []int32{0}}); !errors.Is(itemErrors(r, 1)[0], ErrPreferredNotAvailable) {
		t.Fatalf("fenced preferred: %v", itemErrors(r, 1))
	}
	h.must(&cmdHeartbeat{ID: pref, Epoch: pb.Epoch})
	tp, _ = h.st().Topic("t")
	lead := tp.Partitions[0]
	if lead.Leader == pref {
		t.Fatal("preferred replica led without an election")
	}
	// Back in the ISR (its leader says so), it can be elected.
	lb, _ := h.st().Broker(lead.Leader)
	h.must(&cmdAlterPartition{Topic: tp.ID, BrokerID: lead.Leader, BrokerEpoch: lb.Epoch, LeaderEpoch: lead.LeaderEpoch, PartitionEpoch: lead.PartitionEpoch, ISR: p0.Replicas})
	r := h.must(&cmdElectPreferred{Topic: "t"})
	errs := itemErrors(r, 3)
	if errs[0] != nil {
		t.Fatalf("partition 0: %v", errs[0])
	}
	for i := 1; i < 3; i++ {
		if tp.Partitions[i].Leader == tp.Partitions[i].Replicas[0] && !errors.Is(errs[i], ErrElectionNotNeeded) {
			t.Fatalf("partition %d: %v", i, errs[i])
		}
	}
	tp, _ = h.st().Topic("t")
	if p := tp.Partitions[0]; p.Leader != pref || p.LeaderEpoch != lead.LeaderEpoch+1 {
		t.Fatalf("%+v", p)
	}
	if err := h.apply(&cmdElectPreferred{Topic: "nope"}).err(); !errors.Is(err, ErrUnknownTopic) {
		t.Fatal(err)
	}
}

func TestFSMUncleanElection(t *testing.T) {
	h := newHarness(t)
	h.broker(1, "")
	h.broker(2, "")
	r := h.must(&cmdCreateTopic{ID: newTopicID(), Name: "u", Assignments: [][]int32{{1, 2}}, Configs: map[string]string{"unclean.leader.election.enable": "true"}})
	r2 := h.must(&cmdCreateTopic{ID: newTopicID(), Name: "c", Assignments: [][]int32{{1, 2}}})
	for _, id := range []TopicID{r.TopicID, r2.TopicID} {
		tp, _ := h.st().TopicByID(id)
		b1, _ := h.st().Broker(1)
		h.must(&cmdAlterPartition{Topic: id, BrokerID: 1, BrokerEpoch: b1.Epoch, ISR: []int32{1}})
		_ = tp
	}
	b1, _ := h.st().Broker(1)
	h.must(&cmdFenceBroker{ID: 1, Epoch: b1.Epoch})
	u, _ := h.st().TopicByID(r.TopicID)
	c, _ := h.st().TopicByID(r2.TopicID)
	if p := u.Partitions[0]; p.Leader != 2 || !slices.Equal(p.ISR, []int32{2}) || p.LeaderEpoch != 1 {
		t.Fatalf("unclean topic: %+v", p)
	}
	if p := c.Partitions[0]; p.Leader != -1 || !slices.Equal(p.ISR, []int32{1}) || p.LeaderEpoch != 1 {
		t.Fatalf("clean topic: %+v", p)
	}
	// Switching unclean election on elects a live replica for the leaderless partition.
	h.must(&cmdAlterConfigs{Name: "c", Set: map[string]string{"unclean.leader.election.enable": "true"}})
	c, _ = h.st().TopicByID(r2.TopicID)
	if p := c.Partitions[0]; p.Leader != 2 || p.LeaderEpoch != 2 {
		t.Fatalf("after enabling unclean: %+v", p)
	}
}

func TestPlacementEvenAcrossBrokersAndRacks(t *testing.T) {
	h := newHarness(t)
	racks := []string{"a", "a", "b", "b", "c", "c"}
	for i, r := range racks {
		h.broker(int32(i+1), r)
	}
	tp := h.topic("big", 60, 3, nil)
	leaders, replicas := map[int32]int{}, map[int32]int{}
	for _, p := range tp.Partitions {
		leaders[p.Leader]++
		seen := map[string]bool{}
		for _, r := range p.Replicas {
			replicas[r]++
			rack := racks[r-1]
			if seen[rack] {
				t.Fatalf("partition %d has two replicas in rack %s: %v", p.Index, rack, p.Replicas)
			}
			seen[rack] = true
		}
	}
	for id := int32(1); id <= 6; id++ {
		if leaders[id] != 10 || replicas[id] != 30 {
			t.Fatalf("broker %d: %d leaders, %d replicas (want 10, 30): %v %v", id, leaders[id], replicas[id], leaders, replicas)
		}
	}
	// A second topic keeps the totals balanced.
	h.topic("small", 3, 1, nil)
	h.topic("small2", 3, 1, nil)
	tot := map[int32]int{}
	for _, name := range []string{"small", "small2"} {
		tp, _ := h.st().Topic(name)
		for _, p := range tp.Partitions {
			tot[p.Leader]++
		}
	}
	if len(tot) != 6 {
		t.Fatalf("six single-replica partitions over six brokers landed on %v", tot)
	}
}

func TestSnapshotRestoreSameDigest(t *testing.T) {
	h := fixture(t)
	tp, _ := h.st().Topic("t")
	h.must(&cmdCommitOffsets{Group: "g", Offsets: []OffsetCommit{{Topic: "t", Partition: 2, Offset: 42, Metadata: "x", CommitTime: 9}}})
	h.must(&cmdAddRemoteSegment{Topic: tp.ID, Partition: 0, Segment: RemoteSegment{LastOffset: 9, ObjectKey: "k"}})
	h.must(&cmdAllocateProducerIDs{BrokerID: 1, Count: 5})
	h.must(&cmdAlterConfigs{Name: "t", Set: map[string]string{"retention.ms": "5000"}})
	var id reqID
	rand.Read(id[:])
	first := h.applyReq(id, &cmdAllocateProducerIDs{BrokerID: 2, Count: 7})
	snap, err := h.f.Snapshot()
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	if err := writeSnapshot(&buf, snap.(*fsmSnapshot).st, snap.(*fsmSnapshot).dedup); err != nil {
		t.Fatal(err)
	}
	data := buf.Bytes()
	h2 := newHarness(t)
	if err := h2.f.Restore(nopCloser{bytes.NewReader(data)}); err != nil {
		t.Fatal(err)
	}
	if a, b := h.st().Digest(), h2.st().Digest(); a != b {
		t.Fatalf("digest %s != %s", a, b)
	}
	if h2.st().Index() != h.st().Index() || h2.f.applied.Load() != h.idx {
		t.Fatalf("index %d vs %d", h2.st().Index(), h.st().Index())
	}
	// The dedup table survives the snapshot: a retry after restore is still recognised.
	h2.idx = h.idx
	again := h2.applyReq(id, &cmdAllocateProducerIDs{BrokerID: 2, Count: 7})
	if again.First != first.First || h2.st().NextProducerID() != h.st().NextProducerID() {
		t.Fatalf("retry after restore applied again: %d vs %d", again.First, first.First)
	}
	// Both continue identically.
	h.idx = h2.idx
	for _, hh := range []*harness{h, h2} {
		hh.applyReq(reqID{1}, &cmdCreateTopic{ID: TopicID{9}, Name: "after", Partitions: 2, ReplicationFactor: 2})
	}
	if a, b := h.st().Digest(), h2.st().Digest(); a != b {
		t.Fatalf("diverged after restore: %s != %s", a, b)
	}
	// Damaged snapshots are refused, never half-restored.
	for i, bad := range [][]byte{data[:10], append([]byte("XXXX"), data[4:]...), flip(data, len(data)-3)} {
		h3 := newHarness(t)
		if err := h3.f.Restore(nopCloser{bytes.NewReader(bad)}); err == nil {
			t.Fatalf("damaged snapshot %d restored", i)
		}
		if len(h3.st().Topics()) != 0 {
			t.Fatal("partial restore")
		}
	}
}

// TestFSMClusterConfigs: cluster-wide dynamic broker defaults are applied, rejected as a whole, change
// the digest, raise one event per effective change, and survive a snapshot.
func TestFSMClusterConfigs(t *testing.T) {
	h := fixture(t)
	empty := h.st().Digest()
	h.evs = nil
	h.must(&cmdAlterClusterConfigs{Set: map[string]string{"remote.log.copy.disable": "true"}})
	if v, ok := h.st().ClusterConfig("remote.log.copy.disable"); !ok || v != "true" {
		t.Fatalf("after set: %q %v", v, ok)
	}
	if len(h.evs) != 1 || h.evs[0].Kind != ClusterConfigChanged {
		t.Fatalf("events %v", h.evs)
	}
	paused := h.st().Digest()
	if paused == empty {
		t.Fatal("digest unchanged by a cluster config")
	}
	// The same value again changes nothing and raises no event.
	h.evs = nil
	h.must(&cmdAlterClusterConfigs{Set: map[string]string{"remote.log.copy.disable": "true"}})
	if len(h.evs) != 0 || h.st().Digest() != paused {
		t.Fatalf("no-op alter: events %v", h.evs)
	}
	// A change with one bad part is rejected whole.
	r := h.apply(&cmdAlterClusterConfigs{Set: map[string]string{"remote.log.copy.disable": "false", "nope": "1"}})
	if !errors.Is(r.err(), ErrInvalidConfig) || h.st().Digest() != paused {
		t.Fatalf("partial alter: %+v", r)
	}
	// Readers of an old State are not disturbed by later changes.
	old := h.st()
	h.must(&cmdAlterClusterConfigs{Set: map[string]string{"remote.log.copy.disable": "false"}})
	if v, _ := old.ClusterConfig("remote.log.copy.disable"); v != "true" {
		t.Fatalf("old state changed to %q", v)
	}
	h.must(&cmdAlterClusterConfigs{Set: map[string]string{"remote.log.copy.disable": "TRUE"}})

	// Snapshot and restore keep it.
	snap, err := h.f.Snapshot()
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	if err := writeSnapshot(&buf, snap.(*fsmSnapshot).st, snap.(*fsmSnapshot).dedup); err != nil {
		t.Fatal(err)
	}
	h2 := newHarness(t)
	if err := h2.f.Restore(nopCloser{bytes.NewReader(buf.Bytes())}); err != nil {
		t.Fatal(err)
	}
	if v, _ := h2.st().ClusterConfig("remote.log.copy.disable"); v != "TRUE" {
		t.Fatalf("restored value %q", v)
	}
	if a, b := h.st().Digest(), h2.st().Digest(); a != b {
		t.Fatalf("digest %s != %s after restore", a, b)
	}
	// Removing it returns to the state (and digest) of a cluster that never set it.
	h.must(&cmdAlterClusterConfigs{Remove: []string{"remote.log.copy.disable"}})
	if _, ok := h.st().ClusterConfig("remote.log.copy.disable"); ok || h.st().Digest() != empty {
		t.Fatalf("after remove: %v, digest back to empty: %v", h.st().ClusterConfigs(), h.st().Digest() == empty)
	}
}

func flip(b []byte, i int) []byte {
	c := slices.Clone(b)
	c[i] ^= 0x40
	return c
}

type nopCloser struct{ *bytes.Reader }

func (nopCloser) Close() error { return nil }

func TestFSMMultiEntry(t *testing.T) {
	h := fixture(t)
	var dup reqID
	rand.Read(dup[:])
	inner := [][]byte{
		encodeCommand(reqID{9, 1}, &cmdRegisterBroker{ID: 7, Host: "h", Port: 1, Incarnation: "a"}),
		encodeCommand(reqID{9, 2}, &cmdRegisterBroker{ID: 7, Host: "h", Port: 1, Incarnation: "b"}),
		encodeCommand(dup, &cmdAllocateProducerIDs{BrokerID: 1, Count: 10}),
		encodeCommand(dup, &cmdAllocateProducerIDs{BrokerID: 1, Count: 10}), // a retry inside the same entry
		encodeCommand(reqID{9, 3}, &cmdCreateTopic{ID: newTopicID(), Name: "t", Partitions: 1, ReplicationFactor: 1}),
		encodeCommand(reqID{}, &cmdMulti{Entries: [][]byte{encodeCommand(reqID{}, &cmdNoop{})}}),
	}
	r := h.apply(&cmdMulti{Entries: inner})
	if len(r.Multi) != len(inner) {
		t.Fatalf("%d results", len(r.Multi))
	}
	if r.Multi[0].Epoch == r.Multi[1].Epoch || r.Multi[1].Epoch <= r.Multi[0].Epoch {
		t.Fatalf("two registrations in one entry: epochs %d, %d", r.Multi[0].Epoch, r.Multi[1].Epoch)
	}
	if b, _ := h.st().Broker(7); b.Incarnation != "b" || b.Epoch != r.Multi[1].Epoch {
		t.Fatalf("%+v", b)
	}
	if r.Multi[2].First != r.Multi[3].First || h.st().NextProducerID() != r.Multi[2].First+10 {
		t.Fatal("retry inside a multi entry applied twice")
	}
	if !errors.Is(r.Multi[4].err(), ErrTopicExists) || !errors.Is(r.Multi[5].err(), ErrCorruptCommand) {
		t.Fatalf("%v / %v", r.Multi[4].err(), r.Multi[5].err())
	}
	for _, m := range r.Multi {
		if m.Index != h.idx {
			t.Fatal("inner result without the entry's index")
		}
	}
}

// TestFSMRemoteSegmentFencedByLeaderEpoch: once leadership moved (epoch bumped), a commit made
// under the old epoch is refused when it asks for fencing (version 3 entries, what AddRemoteSegment
// writes), and applies as before when it does not (entries written before the check existed, so a
// replayed log builds the same manifest).
func TestFSMRemoteSegmentFencedByLeaderEpoch(t *testing.T) {
	h := fixture(t)
	tp, _ := h.st().Topic("t")
	old := tp.Partitions[0]
	vb, _ := h.st().Broker(old.Leader)
	h.must(&cmdFenceBroker{ID: old.Leader, Epoch: vb.Epoch}) // leadership moves: epoch + 1
	tp, _ = h.st().Topic("t")
	cur := tp.Partitions[0].LeaderEpoch
	if cur != old.LeaderEpoch+1 {
		t.Fatalf("leader epoch %d after fencing the leader, want %d", cur, old.LeaderEpoch+1)
	}
	stale := RemoteSegment{BaseOffset: 0, LastOffset: 9, Size: 10, ObjectKey: "stale", LeaderEpoch: old.LeaderEpoch}
	err := h.apply(&cmdAddRemoteSegment{Topic: tp.ID, Segment: stale, FenceEpoch: true}).err()
	if !errors.Is(err, ErrFencedLeaderEpoch) || !strings.Contains(err.Error(), "leader epoch") {
		t.Fatalf("stale-epoch commit = %v, want ErrFencedLeaderEpoch", err)
	}
	if segs := h.st().RemoteSegments(tp.ID, 0); len(segs) != 0 {
		t.Fatalf("fenced commit applied: %+v", segs)
	}
	if v := versionOf(&cmdAddRemoteSegment{FenceEpoch: true}); v != 3 {
		t.Fatalf("a fencing entry is written as version %d, want 3", v)
	}
	fresh := RemoteSegment{BaseOffset: 0, LastOffset: 9, Size: 10, ObjectKey: "fresh", LeaderEpoch: cur}
	h.must(&cmdAddRemoteSegment{Topic: tp.ID, Segment: fresh, FenceEpoch: true})
	h.must(&cmdAddRemoteSegment{Topic: tp.ID, Segment: fresh, FenceEpoch: true}) // applied twice: no-op
	// A version-1 entry (no FenceEpoch) with the old epoch still applies, as it did when written.
	legacy := RemoteSegment{BaseOffset: 10, LastOffset: 19, Size: 10, ObjectKey: "legacy", LeaderEpoch: old.LeaderEpoch}
	h.must(&cmdAddRemoteSegment{Topic: tp.ID, Segment: legacy})
	if segs := h.st().RemoteSegments(tp.ID, 0); len(segs) != 2 || segs[0] != fresh || segs[1] != legacy {
		t.Fatalf("manifest %+v", segs)
	}
}
