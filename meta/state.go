package meta

import (
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"maps"
	"slices"
	"sort"
	"sync/atomic"

	"github.com/benbjohnson/immutable"
)

// TopicID is a topic's UUID (Kafka's topic id). String/MarshalText use Kafka's rendering: URL-safe
// base64 without padding.
type TopicID [16]byte

func (id TopicID) String() string { return base64.RawURLEncoding.EncodeToString(id[:]) }

// IsZero reports whether id is the zero UUID (Kafka's "no topic id").
func (id TopicID) IsZero() bool { return id == TopicID{} }

func (id TopicID) MarshalText() ([]byte, error) { return []byte(id.String()), nil }

func (id *TopicID) UnmarshalText(b []byte) error {
	// Check the length first: Decode panics when dst is shorter than the decoded input.
	if len(b) != base64.RawURLEncoding.EncodedLen(16) {
		return fmt.Errorf("meta: bad topic id %q", b)
	}
	var out [16]byte
	n, err := base64.RawURLEncoding.Decode(out[:], b)
	if err != nil || n != 16 {
		return fmt.Errorf("meta: bad topic id %q", b)
	}
	*id = out
	return nil
}

// Broker is a registered broker as the controller sees it.
type Broker struct {
	ID       int32
	Host     string
	Port     int32
	Rack     string
	RaftAddr string
	// Incarnation identifies one run of the broker process; a new incarnation re-registers.
	Incarnation string
	// Epoch identifies the registration (Kafka's broker epoch): the Raft index of its entry << 16 | its
	// position in a multi entry. Strictly increasing per broker.
	Epoch  int64
	Fenced bool
}

// Topic is one topic. Values reached through a State are shared and must not be modified.
type Topic struct {
	ID         TopicID
	Name       string
	Partitions []Partition
	Configs    map[string]string // explicit overrides only (Kafka names)
}

// Partition is one partition's replica placement and leadership.
type Partition struct {
	Index          int32
	Replicas       []int32
	ISR            []int32
	Leader         int32 // -1 none
	LeaderEpoch    int32
	PartitionEpoch int32
}

// RemoteSegment is one segment in object storage (the tiering manifest).
type RemoteSegment struct {
	BaseOffset     int64
	LastOffset     int64
	FirstTimestamp int64
	MaxTimestamp   int64
	Size           int64
	ObjectKey      string
	LeaderEpoch    int32
}

// OffsetCommit is one committed consumer-group offset in a CommitOffsets call.
type OffsetCommit struct {
	Topic       string
	Partition   int32
	Offset      int64
	LeaderEpoch int32
	Metadata    string
	CommitTime  int64 // ms since the epoch
}

// CommittedOffset is the stored value for one group/topic/partition.
type CommittedOffset struct {
	Offset      int64
	LeaderEpoch int32
	Metadata    string
	CommitTime  int64
}

// TopicPartition names a partition by topic name.
type TopicPartition struct {
	Topic     string
	Partition int32
}

// groupOffsets maps offsetKey(topic, partition) to a group's committed offset.
type groupOffsets = *immutable.Map[string, CommittedOffset]

func newGroupOffsets() groupOffsets { return immutable.NewMap[string, CommittedOffset](nil) }

// offsetKey packs topic and partition into one string key ("\x00" cannot occur in a topic name).
func offsetKey(topic string, partition int32) string {
	var b [4]byte
	binary.BigEndian.PutUint32(b[:], uint32(partition))
	return topic + "\x00" + string(b[:])
}

func splitOffsetKey(k string) TopicPartition {
	if len(k) < 5 {
		return TopicPartition{}
	}
	return TopicPartition{Topic: k[:len(k)-5], Partition: int32(binary.BigEndian.Uint32([]byte(k[len(k)-4:])))}
}

type partKey struct {
	Topic     TopicID
	Partition int32
}

// State is an immutable view of the whole metadata at one applied Raft index. Every apply builds a new
// State (copy on write, sharing untouched parts) and swaps a pointer, so reads take no lock.
type State struct {
	index          uint64
	clusterID      string
	brokers        map[int32]Broker
	topics         map[TopicID]*Topic
	byName         map[string]TopicID
	nextProducerID int64
	offsets        *immutable.Map[string, groupOffsets] // group → offsets; persistent maps: O(log n) per update
	remote         map[partKey][]RemoteSegment
	deletedTopics  map[TopicID]string // topics deleted while they still had remote segments: name at deletion
	clusterConfigs map[string]string  // cluster-wide dynamic broker defaults (BROKER ""); replaced, never written in place

	controller *atomic.Int32 // the node's view of the Raft leader; not part of the replicated state
}

func emptyState() *State {
	return &State{
		brokers:        map[int32]Broker{},
		topics:         map[TopicID]*Topic{},
		byName:         map[string]TopicID{},
		offsets:        immutable.NewMap[string, groupOffsets](nil),
		remote:         map[partKey][]RemoteSegment{},
		deletedTopics:  map[TopicID]string{},
		clusterConfigs: map[string]string{},
	}
}

// Index is the Raft log index this state reflects.
func (s *State) Index() uint64 { return s.index }

// ClusterID is the id chosen when the cluster first elected a leader ("" before that).
func (s *State) ClusterID() string { return s.clusterID }

// ControllerID is the node id of the current Raft leader as this node knows it, -1 if none.
func (s *State) ControllerID() int32 {
	if s.controller == nil {
		return -1
	}
	return s.controller.Load()
}

// Brokers lists the registered brokers sorted by id.
func (s *State) Brokers() []Broker {
	out := make([]Broker, 0, len(s.brokers))
	for _, b := range s.brokers {
		out = append(out, b)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	return out
}

// Broker returns one registered broker.
func (s *State) Broker(id int32) (Broker, bool) {
	b, ok := s.brokers[id]
	return b, ok
}

// Topics lists the topics sorted by name.
func (s *State) Topics() []*Topic {
	out := make([]*Topic, 0, len(s.topics))
	for _, t := range s.topics {
		out = append(out, t)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}

// Topic finds a topic by name.
func (s *State) Topic(name string) (*Topic, bool) {
	id, ok := s.byName[name]
	if !ok {
		return nil, false
	}
	return s.topics[id], true
}

// TopicByID finds a topic by id.
func (s *State) TopicByID(id TopicID) (*Topic, bool) {
	t, ok := s.topics[id]
	return t, ok
}

// Partition returns one partition of a topic.
func (s *State) Partition(id TopicID, partition int32) (Partition, bool) {
	t, ok := s.topics[id]
	if !ok || partition < 0 || int(partition) >= len(t.Partitions) {
		return Partition{}, false
	}
	return t.Partitions[partition], true
}

// NextProducerID is the first producer id not yet handed out.
func (s *State) NextProducerID() int64 { return s.nextProducerID }

// Groups lists the groups with committed offsets, sorted.
func (s *State) Groups() []string {
	out := make([]string, 0, s.offsets.Len())
	for it := s.offsets.Iterator(); !it.Done(); {
		g, _, _ := it.Next()
		out = append(out, g)
	}
	sort.Strings(out)
	return out
}

// CommittedOffsets returns a copy of a group's committed offsets.
func (s *State) CommittedOffsets(group string) map[TopicPartition]CommittedOffset {
	m, _ := s.offsets.Get(group)
	if m == nil {
		return map[TopicPartition]CommittedOffset{}
	}
	out := make(map[TopicPartition]CommittedOffset, m.Len())
	for it := m.Iterator(); !it.Done(); {
		k, v, _ := it.Next()
		out[splitOffsetKey(k)] = v
	}
	return out
}

// CommittedOffset returns one committed offset.
func (s *State) CommittedOffset(group, topic string, partition int32) (CommittedOffset, bool) {
	m, ok := s.offsets.Get(group)
	if !ok {
		return CommittedOffset{}, false
	}
	return m.Get(offsetKey(topic, partition))
}

// ClusterConfigs returns a copy of the cluster-wide dynamic broker defaults that are set.
func (s *State) ClusterConfigs() map[string]string { return maps.Clone(s.clusterConfigs) }

// ClusterConfig returns one cluster-wide dynamic broker default, if set.
func (s *State) ClusterConfig(name string) (string, bool) {
	v, ok := s.clusterConfigs[name]
	return v, ok
}

// RemoteSegments lists a partition's remote segments ordered by base offset. The slice is shared.
func (s *State) RemoteSegments(topic TopicID, partition int32) []RemoteSegment {
	return s.remote[partKey{topic, partition}]
}

// DeletedTopicsWithRemoteData lists ids of deleted topics whose remote segments still await deletion
// from object storage (the tiering layer deletes the objects, then RemoveRemoteSegments).
func (s *State) DeletedTopicsWithRemoteData() []TopicID {
	var out []TopicID
	for id := range s.deletedTopics {
		out = append(out, id)
	}
	sort.Slice(out, func(i, j int) bool { return string(out[i][:]) < string(out[j][:]) })
	return out
}

// RemotePartitions lists the partitions of a (possibly deleted) topic that have remote segments.
func (s *State) RemotePartitions(topic TopicID) []int32 {
	var out []int32
	for k := range s.remote {
		if k.Topic == topic {
			out = append(out, k.Partition)
		}
	}
	slices.Sort(out)
	return out
}

// stateFile is the canonical serialised form of a State: used for snapshots and the digest. Go's
// encoding/json writes map keys sorted and slices in order, so equal states encode to equal bytes.
type stateFile struct {
	ClusterID      string
	Brokers        []Broker
	Topics         []*Topic
	NextProducerID int64
	Offsets        []groupFile
	Remote         []remoteFile
	DeletedTopics  []deletedTopicFile
	// ClusterConfigs is omitted when empty, so states without any encode (and digest) as before.
	ClusterConfigs map[string]string `json:",omitempty"`
}

type groupFile struct {
	Group   string
	Offsets []offsetFile
}

type offsetFile struct {
	Topic     string
	Partition int32
	CommittedOffset
}

type remoteFile struct {
	Topic     TopicID
	Partition int32
	Segments  []RemoteSegment
}

type deletedTopicFile struct {
	ID   TopicID
	Name string
}

func (s *State) file() *stateFile {
	f := &stateFile{
		ClusterID:      s.clusterID,
		Brokers:        s.Brokers(),
		Topics:         s.Topics(),
		NextProducerID: s.nextProducerID,
	}
	if len(s.clusterConfigs) > 0 {
		f.ClusterConfigs = maps.Clone(s.clusterConfigs)
	}
	for _, g := range s.Groups() {
		gf := groupFile{Group: g}
		for tp, o := range s.CommittedOffsets(g) {
			gf.Offsets = append(gf.Offsets, offsetFile{tp.Topic, tp.Partition, o})
		}
		sort.Slice(gf.Offsets, func(i, j int) bool {
			a, b := gf.Offsets[i], gf.Offsets[j]
			if a.Topic != b.Topic {
				return a.Topic < b.Topic
			}
			return a.Partition < b.Partition
		})
		f.Offsets = append(f.Offsets, gf)
	}
	for k, segs := range s.remote {
		f.Remote = append(f.Remote, remoteFile{k.Topic, k.Partition, segs})
	}
	sort.Slice(f.Remote, func(i, j int) bool {
		a, b := f.Remote[i], f.Remote[j]
		if a.Topic != b.Topic {
			return string(a.Topic[:]) < string(b.Topic[:])
		}
		return a.Partition < b.Partition
	})
	for _, id := range s.DeletedTopicsWithRemoteData() {
		f.DeletedTopics = append(f.DeletedTopics, deletedTopicFile{id, s.deletedTopics[id]})
	}
	return f
}

func (f *stateFile) state() (*State, error) {
	s := emptyState()
	s.clusterID = f.ClusterID
	s.nextProducerID = f.NextProducerID
	for _, b := range f.Brokers {
		if _, dup := s.brokers[b.ID]; dup {
			return nil, fmt.Errorf("duplicate broker %d", b.ID)
		}
		s.brokers[b.ID] = b
	}
	for _, t := range f.Topics {
		if t == nil {
			return nil, fmt.Errorf("nil topic")
		}
		if _, dup := s.byName[t.Name]; dup {
			return nil, fmt.Errorf("duplicate topic %q", t.Name)
		}
		if _, dup := s.topics[t.ID]; dup {
			return nil, fmt.Errorf("duplicate topic id %s", t.ID)
		}
		for i, p := range t.Partitions {
			if p.Index != int32(i) {
				return nil, fmt.Errorf("topic %q partition %d has index %d", t.Name, i, p.Index)
			}
		}
		if t.Configs == nil {
			t.Configs = map[string]string{}
		}
		s.topics[t.ID] = t
		s.byName[t.Name] = t.ID
	}
	for _, g := range f.Offsets {
		b := immutable.NewMapBuilder[string, CommittedOffset](nil)
		for _, o := range g.Offsets {
			b.Set(offsetKey(o.Topic, o.Partition), o.CommittedOffset)
		}
		if b.Len() > 0 {
			s.offsets = s.offsets.Set(g.Group, b.Map())
		}
	}
	for _, r := range f.Remote {
		s.remote[partKey{r.Topic, r.Partition}] = r.Segments
	}
	for _, d := range f.DeletedTopics {
		s.deletedTopics[d.ID] = d.Name
	}
	if len(f.ClusterConfigs) > 0 {
		s.clusterConfigs = maps.Clone(f.ClusterConfigs)
	}
	return s, nil
}

// Digest is a SHA-256 over the canonical encoding of the replicated state (everything a snapshot holds;
// not the local controller view). Two nodes that applied the same log have the same digest.
func (s *State) Digest() string {
	b, err := json.Marshal(s.file())
	if err != nil {
		panic(err) // plain structs of strings and numbers: cannot fail
	}
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:])
}

func clonePartition(p Partition) Partition {
	p.Replicas = slices.Clone(p.Replicas)
	p.ISR = slices.Clone(p.ISR)
	return p
}
