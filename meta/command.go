package meta

import (
	"bytes"
	"encoding/json"
	"fmt"
)

// Command encoding (one Raft log entry's Data):
//
//	+---------+------+----------------+-----------------------------------+
//	| version | kind | request id     | body: JSON object of the kind's   |
//	| 1 byte  | 1 B  | 16 bytes       | struct, or binary (codec.go) for  |
//	|         |      |                | heartbeat and commit-offsets      |
//	+---------+------+----------------+-----------------------------------+
//
// See doc.go for the versioning rules.
const (
	// cmdVersion is the newest command version this build reads (and writes, when a command needs it).
	// Version 2 added cmdAlterPartition.ISREpochs (KIP-903), version 3 cmdAddRemoteSegment.FenceEpoch;
	// see versionOf.
	cmdVersion    = 3
	cmdHeaderSize = 2 + 16
	// maxCommandSize bounds what the decoder accepts (a CommitOffsets of many thousands of offsets fits).
	maxCommandSize = 8 << 20
)

type cmdKind uint8

const (
	kindNoop cmdKind = iota + 1
	kindInitCluster
	kindRegisterBroker
	kindHeartbeat
	kindFenceBroker
	kindCreateTopic
	kindDeleteTopic
	kindCreatePartitions
	kindAlterConfigs
	kindAlterPartition
	kindAllocateProducerIDs
	kindCommitOffsets
	kindDeleteOffsets
	kindAddRemoteSegment
	kindRemoveRemoteSegments
	kindCommitOffsetsBatch
	kindDeleteOffsetsBatch
	kindMulti
	kindElectPreferred
	kindAlterClusterConfigs
	kindMax // first unused kind
)

var kindNames = map[cmdKind]string{
	kindNoop: "noop", kindInitCluster: "init-cluster", kindRegisterBroker: "register-broker",
	kindHeartbeat: "heartbeat", kindFenceBroker: "fence-broker", kindCreateTopic: "create-topic",
	kindDeleteTopic: "delete-topic", kindCreatePartitions: "create-partitions", kindAlterConfigs: "alter-configs",
	kindAlterPartition: "alter-partition", kindAllocateProducerIDs: "allocate-producer-ids",
	kindCommitOffsets: "commit-offsets", kindDeleteOffsets: "delete-offsets",
	kindAddRemoteSegment: "add-remote-segment", kindRemoveRemoteSegments: "remove-remote-segments",
	kindCommitOffsetsBatch: "commit-offsets-batch", kindDeleteOffsetsBatch: "delete-offsets-batch",
	kindMulti: "multi", kindElectPreferred: "elect-preferred", kindAlterClusterConfigs: "alter-cluster-configs",
}

func (k cmdKind) String() string {
	if s, ok := kindNames[k]; ok {
		return s
	}
	return fmt.Sprintf("kind(%d)", uint8(k))
}

// reqID identifies one proposal across retries; the zero id means "no deduplication needed"
// (commands that are naturally idempotent, such as heartbeats).
type reqID [16]byte

// command bodies. Each is applied by fsm.go; field additions are backwards compatible (see doc.go).
type (
	cmdNoop        struct{}
	cmdInitCluster struct{ ClusterID string }
	// cmdRegisterBroker registers (or re-registers, with a new Incarnation) a broker.
	cmdRegisterBroker struct {
		ID          int32
		Host        string
		Port        int32
		Rack        string
		RaftAddr    string
		Incarnation string
	}
	cmdHeartbeat struct {
		ID    int32
		Epoch int64
	}
	// cmdFenceBroker is proposed by the controller when a broker's session expires. Conditional on Epoch.
	cmdFenceBroker struct {
		ID    int32
		Epoch int64
	}
	cmdCreateTopic struct {
		ID                TopicID
		Name              string
		Partitions        int32
		ReplicationFactor int16
		Assignments       [][]int32
		Configs           map[string]string
	}
	cmdDeleteTopic struct {
		Name string
		ID   TopicID // zero: by name only
	}
	cmdCreatePartitions struct {
		Name        string
		Total       int32
		Assignments [][]int32
	}
	cmdAlterConfigs struct {
		Name   string
		Set    map[string]string
		Remove []string
	}
	cmdAlterPartition struct {
		Topic          TopicID
		Partition      int32
		BrokerID       int32
		BrokerEpoch    int64
		LeaderEpoch    int32
		PartitionEpoch int32
		ISR            []int32
		// ISREpochs (version 2, Kafka's NewIsrWithEpochs, KIP-903): the broker epoch the leader saw in
		// each ISR member's fetches, parallel to ISR; -1 = unknown (not checked). Absent (version 1
		// entries) = no check, the old behaviour.
		ISREpochs []int64 `json:",omitempty"`
	}
	cmdAllocateProducerIDs struct {
		BrokerID int32
		Count    int64
	}
	cmdCommitOffsets struct {
		Group   string
		Offsets []OffsetCommit
	}
	// cmdDeleteOffsets deletes the listed offsets of a group, or the whole group when Partitions is empty.
	cmdDeleteOffsets struct {
		Group      string
		Partitions []TopicPartition
	}
	cmdAddRemoteSegment struct {
		Topic     TopicID
		Partition int32
		Segment   RemoteSegment
		// FenceEpoch (version 3): refuse the entry if Segment.LeaderEpoch is below the partition's
		// leader epoch (a deposed leader's late commit). Absent (older entries) = no check, so a
		// log written before the check replays to the same manifest.
		FenceEpoch bool `json:",omitempty"`
	}
	// cmdCommitOffsetsBatch commits many groups' offsets in one entry; each group stands or falls alone.
	cmdCommitOffsetsBatch struct {
		Groups []GroupOffsets
	}
	cmdDeleteOffsetsBatch struct {
		Groups []GroupPartitions
	}
	// cmdElectPreferred makes each listed partition's first replica its leader where that replica is
	// live and in the ISR (Kafka's preferred leader election). Empty Partitions = all of the topic's.
	cmdElectPreferred struct {
		Topic      string
		Partitions []int32
	}
	// cmdAlterClusterConfigs sets and removes cluster-wide dynamic broker defaults (Kafka's BROKER
	// resource "", entity-default); only the names in clusterConfigs are accepted.
	cmdAlterClusterConfigs struct {
		Set    map[string]string
		Remove []string
	}
	cmdRemoveRemoteSegments struct {
		Topic      TopicID
		Partition  int32
		ObjectKeys []string
	}
)

// command is a decoded log entry.
type command struct {
	version uint8
	kind    cmdKind
	req     reqID
	body    any // pointer to one of the cmd* structs
}

func kindOf(body any) cmdKind {
	switch body.(type) {
	case *cmdNoop:
		return kindNoop
	case *cmdInitCluster:
		return kindInitCluster
	case *cmdRegisterBroker:
		return kindRegisterBroker
	case *cmdHeartbeat:
		return kindHeartbeat
	case *cmdFenceBroker:
		return kindFenceBroker
	case *cmdCreateTopic:
		return kindCreateTopic
	case *cmdDeleteTopic:
		return kindDeleteTopic
	case *cmdCreatePartitions:
		return kindCreatePartitions
	case *cmdAlterConfigs:
		return kindAlterConfigs
	case *cmdAlterPartition:
		return kindAlterPartition
	case *cmdAllocateProducerIDs:
		return kindAllocateProducerIDs
	case *cmdCommitOffsets:
		return kindCommitOffsets
	case *cmdDeleteOffsets:
		return kindDeleteOffsets
	case *cmdAddRemoteSegment:
		return kindAddRemoteSegment
	case *cmdRemoveRemoteSegments:
		return kindRemoveRemoteSegments
	case *cmdCommitOffsetsBatch:
		return kindCommitOffsetsBatch
	case *cmdDeleteOffsetsBatch:
		return kindDeleteOffsetsBatch
	case *cmdMulti:
		return kindMulti
	case *cmdElectPreferred:
		return kindElectPreferred
	case *cmdAlterClusterConfigs:
		return kindAlterClusterConfigs
	}
	panic(fmt.Sprintf("meta: unknown command body %T", body))
}

func newBody(k cmdKind) any {
	switch k {
	case kindNoop:
		return &cmdNoop{}
	case kindInitCluster:
		return &cmdInitCluster{}
	case kindRegisterBroker:
		return &cmdRegisterBroker{}
	case kindHeartbeat:
		return &cmdHeartbeat{}
	case kindFenceBroker:
		return &cmdFenceBroker{}
	case kindCreateTopic:
		return &cmdCreateTopic{}
	case kindDeleteTopic:
		return &cmdDeleteTopic{}
	case kindCreatePartitions:
		return &cmdCreatePartitions{}
	case kindAlterConfigs:
		return &cmdAlterConfigs{}
	case kindAlterPartition:
		return &cmdAlterPartition{}
	case kindAllocateProducerIDs:
		return &cmdAllocateProducerIDs{}
	case kindCommitOffsets:
		return &cmdCommitOffsets{}
	case kindDeleteOffsets:
		return &cmdDeleteOffsets{}
	case kindAddRemoteSegment:
		return &cmdAddRemoteSegment{}
	case kindRemoveRemoteSegments:
		return &cmdRemoveRemoteSegments{}
	case kindCommitOffsetsBatch:
		return &cmdCommitOffsetsBatch{}
	case kindDeleteOffsetsBatch:
		return &cmdDeleteOffsetsBatch{}
	case kindMulti:
		return &cmdMulti{}
	case kindElectPreferred:
		return &cmdElectPreferred{}
	case kindAlterClusterConfigs:
		return &cmdAlterClusterConfigs{}
	}
	return nil
}

// encodeCommand serialises a command body (a pointer to a cmd* struct) with its request id.
func encodeCommand(req reqID, body any) []byte {
	if bb, ok := body.(binaryBody); ok {
		out := make([]byte, 0, cmdHeaderSize+64)
		out = append(out, versionOf(body), byte(kindOf(body)))
		out = append(out, req[:]...)
		return bb.appendBinary(out)
	}
	js, err := json.Marshal(body)
	if err != nil {
		panic(fmt.Sprintf("meta: encode %T: %v", body, err)) // plain structs: cannot fail
	}
	out := make([]byte, 0, cmdHeaderSize+len(js))
	out = append(out, versionOf(body), byte(kindOf(body)))
	out = append(out, req[:]...)
	return append(out, js...)
}

// versionOf is the lowest command version that has every field body uses: entries that need no
// newer field keep version 1, so a build that reads only version 1 still reads all of them.
func versionOf(body any) uint8 {
	switch x := body.(type) {
	case *cmdAlterPartition:
		if x.ISREpochs != nil {
			return 2
		}
	case *cmdAddRemoteSegment:
		if x.FenceEpoch {
			return 3
		}
	}
	return 1
}

// decodeCommand parses a log entry. It never panics: any input either decodes or returns an error
// wrapping ErrCorruptCommand or ErrUnsupportedVersion.
func decodeCommand(b []byte) (command, error) {
	if len(b) < cmdHeaderSize {
		return command{}, fmt.Errorf("%w: %d bytes, header needs %d", ErrCorruptCommand, len(b), cmdHeaderSize)
	}
	if len(b) > maxCommandSize {
		return command{}, fmt.Errorf("%w: %d bytes exceeds %d", ErrCorruptCommand, len(b), maxCommandSize)
	}
	c := command{version: b[0], kind: cmdKind(b[1])}
	if c.version == 0 || c.version > cmdVersion {
		return command{}, fmt.Errorf("%w: version %d (this build reads 1..%d)", ErrUnsupportedVersion, c.version, cmdVersion)
	}
	copy(c.req[:], b[2:18])
	c.body = newBody(c.kind)
	if c.body == nil {
		return command{}, fmt.Errorf("%w: unknown kind %d", ErrCorruptCommand, b[1])
	}
	if bb, ok := c.body.(binaryBody); ok {
		if err := bb.decodeBinary(b[cmdHeaderSize:]); err != nil {
			return command{}, fmt.Errorf("%w: %s body: %v", ErrCorruptCommand, c.kind, err)
		}
		return c, nil
	}
	dec := json.NewDecoder(bytes.NewReader(b[cmdHeaderSize:]))
	dec.DisallowUnknownFields() // same version, unknown field: written by a build we do not understand
	if err := dec.Decode(c.body); err != nil {
		return command{}, fmt.Errorf("%w: %s body: %v", ErrCorruptCommand, c.kind, err)
	}
	if dec.More() {
		return command{}, fmt.Errorf("%w: %s body: trailing data", ErrCorruptCommand, c.kind)
	}
	if v := versionOf(c.body); v > c.version {
		// A field this entry's version does not have: not written by any build we know.
		return command{}, fmt.Errorf("%w: %s body: version %d entry uses version %d fields", ErrCorruptCommand, c.kind, c.version, v)
	}
	return c, nil
}
