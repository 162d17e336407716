package meta

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"testing"

	"github.com/hashicorp/raft"
)

// seedCommands is one valid command of every kind (plus the corpus' hostile variants, in testdata).
func seedCommands() [][]byte {
	tid := TopicID{1, 2, 3}
	bodies := []any{
		&cmdNoop{},
		&cmdInitCluster{ClusterID: "c"},
		&cmdRegisterBroker{ID: 4, Host: "h", Port: 9092, Rack: "r", RaftAddr: "a", Incarnation: "i"},
		&cmdHeartbeat{ID: 1, Epoch: 3},
		&cmdFenceBroker{ID: 1, Epoch: 3},
		&cmdCreateTopic{ID: tid, Name: "f", Partitions: 2, ReplicationFactor: 2, Configs: map[string]string{"retention.ms": "1"}},
		&cmdCreateTopic{ID: TopicID{7}, Name: "m", Assignments: [][]int32{{1, 2}, {2, 3}}},
		&cmdDeleteTopic{Name: "t"},
		&cmdCreatePartitions{Name: "t", Total: 5},
		&cmdAlterConfigs{Name: "t", Set: map[string]string{"cleanup.policy": "compact"}, Remove: []string{"retention.ms"}},
		&cmdAlterPartition{Topic: tid, Partition: 0, BrokerID: 1, BrokerEpoch: 3, ISR: []int32{1}},
		&cmdAllocateProducerIDs{BrokerID: 1, Count: 1000},
		&cmdCommitOffsets{Group: "g", Offsets: []OffsetCommit{{Topic: "t", Partition: 1, Offset: 5, Metadata: "m"}}},
		&cmdDeleteOffsets{Group: "g", Partitions: []TopicPartition{{"t", 1}}},
		&cmdAddRemoteSegment{Topic: tid, Segment: RemoteSegment{LastOffset: 9, ObjectKey: "k", Size: 1}},
		&cmdRemoveRemoteSegments{Topic: tid, ObjectKeys: []string{"k"}},
		&cmdCommitOffsetsBatch{Groups: []GroupOffsets{{Group: "a", Offsets: []OffsetCommit{{Topic: "t", Offset: 1}}}, {Group: "b"}}},
		&cmdDeleteOffsetsBatch{Groups: []GroupPartitions{{Group: "a"}, {Group: "b", Partitions: []TopicPartition{{"t", 0}}}}},
		&cmdElectPreferred{Topic: "t", Partitions: []int32{0, 9}},
		&cmdAlterClusterConfigs{Set: map[string]string{"remote.log.copy.disable": "true"}, Remove: []string{"remote.log.copy.disable"}},
		&cmdMulti{Entries: [][]byte{
			encodeCommand(reqID{1}, &cmdHeartbeat{ID: 1, Epoch: 3}),
			encodeCommand(reqID{2}, &cmdRegisterBroker{ID: 5, Host: "h", Port: 1, Incarnation: "a"}),
			encodeCommand(reqID{3}, &cmdRegisterBroker{ID: 5, Host: "h", Port: 1, Incarnation: "b"}),
			{1, byte(kindMulti)},
		}},
		&cmdAlterPartition{Topic: tid, Partition: 0, BrokerID: 1, BrokerEpoch: 3, ISR: []int32{1, 2}, ISREpochs: []int64{3, -1}},
	}
	var out [][]byte
	for i, b := range bodies {
		out = append(out, encodeCommand(reqID{byte(i)}, b))
	}
	return out
}

// FuzzDecodeCommand: the decoder never panics; whatever it accepts re-encodes to an equivalent command,
// and applying it to a populated state machine never panics either.
func FuzzDecodeCommand(f *testing.F) {
	for _, s := range seedCommands() {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		c, err := decodeCommand(data)
		if err != nil {
			return
		}
		again, err := decodeCommand(encodeCommand(c.req, c.body))
		if err != nil {
			t.Fatalf("re-encoded command does not decode: %v", err)
		}
		if fmt.Sprintf("%+v", again.body) != fmt.Sprintf("%+v", c.body) || again.kind != c.kind {
			t.Fatalf("round trip changed %+v into %+v", c.body, again.body)
		}
		h := fixture(t)
		h.idx++
		r := h.f.Apply(&raft.Log{Index: h.idx, Type: raft.LogCommand, Data: data}).(*applyResult)
		if r.Code != 0 && r.Reason == "" {
			t.Fatalf("rejection without a reason: %+v", r)
		}
		_ = h.st().Digest()
	})
}

// TestWriteFuzzCorpus regenerates testdata/fuzz/FuzzDecodeCommand when META_WRITE_CORPUS=1.
func TestWriteFuzzCorpus(t *testing.T) {
	if os.Getenv("META_WRITE_CORPUS") == "" {
		t.Skip("set META_WRITE_CORPUS=1 to regenerate the committed seed corpus")
	}
	dir := filepath.Join("testdata", "fuzz", "FuzzDecodeCommand")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	seeds := seedCommands()
	hostile := [][]byte{
		{}, {1}, {0, 1}, {255, 1},
		append([]byte{1, 0}, make([]byte, 16)...),
		append(append([]byte{1, byte(kindCreateTopic)}, make([]byte, 16)...), `{"Name":"x","Partitions":-1}`...),
		append(append([]byte{1, byte(kindCreateTopic)}, make([]byte, 16)...), `{"Name":"x","Partitions":2147483647,"ReplicationFactor":1}`...),
		append(append([]byte{1, byte(kindCreateTopic)}, make([]byte, 16)...), `{"ID":"AAAAAAAAAAAAAAAAAAAAAA","Name":"x"}`...),
		append(append([]byte{1, byte(kindAlterPartition)}, make([]byte, 16)...), `{"ISR":null}`...),
		append(append([]byte{1, byte(kindCommitOffsets)}, make([]byte, 16)...), `{"Group":"g","Offsets":[null]}`...),
		append(append([]byte{1, byte(kindCreatePartitions)}, make([]byte, 16)...), `{"Name":"t","Total":4,"Assignments":[[]]}`...),
		append(append([]byte{1, byte(kindAllocateProducerIDs)}, make([]byte, 16)...), `{"BrokerID":1,"Count":9223372036854775807}`...),
		append(append([]byte{1, byte(kindNoop)}, make([]byte, 16)...), `{} {}`...),
	}
	for i, s := range append(seeds, hostile...) {
		content := "go test fuzz v1\n[]byte(" + strconv.Quote(string(s)) + ")\n"
		if err := os.WriteFile(filepath.Join(dir, fmt.Sprintf("seed-%02d", i)), []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}
