package broker

import (
	"net"
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// On a three-broker cluster:
//   - a topic auto-created by Metadata gets default.replication.factor replicas (3) and
//     num.partitions partitions, all in sync;
//   - with default.replication.factor above the number of live brokers (broker 3 is configured
//     with 4) nothing is created and the topic is answered INVALID_REPLICATION_FACTOR (see
//     COMPAT.md: KRaft Kafka answers UNKNOWN_TOPIC_OR_PARTITION and logs the failure; ZooKeeper
//     Kafka answered INVALID_REPLICATION_FACTOR; producers wait and time out either way);
//   - a produce to a follower is refused per partition with NOT_LEADER_OR_FOLLOWER, pointing at
//     the leader (KIP-951) from v10, nothing appended on any replica; acks=0 to a follower closes
//     the connection (the only way to tell a producer that sends no response).
func TestClusterAutoCreateRFAndProduceToFollower(t *testing.T) {
	if testing.Short() {
		t.Skip("starts three brokers")
	}
	brokers, _ := startTestCluster(t, 3, func(cfg *Config) {
		cfg.MetaConfig = fastClusterMeta(2*time.Second, 200*time.Millisecond)
		cfg.AutoCreateTopicsEnable = true
		cfg.NumPartitions = 2
		cfg.DefaultReplicationFactor = 3
		if cfg.NodeID == 3 {
			cfg.DefaultReplicationFactor = 4
		}
	})
	byID := map[int32]*Broker{}
	for _, b := range brokers {
		byID[b.cfg.NodeID] = b
	}

	metadata := func(b *Broker, topic string) kmsg.MetadataResponseTopic {
		t.Helper()
		rc := dialRaw(t, b)
		req := kmsg.NewPtrMetadataRequest()
		req.Version = 12
		req.AllowAutoTopicCreation = true
		req.Topics = []kmsg.MetadataRequestTopic{{Topic: kmsg.StringPtr(topic)}}
		rc.write(frame(req, 1))
		resp := kmsg.NewPtrMetadataResponse()
		resp.Version = req.Version
		if _, err := rc.read(resp); err != nil {
			t.Fatalf("metadata from broker %d: %v", b.cfg.NodeID, err)
		}
		if len(resp.Topics) != 1 {
			t.Fatalf("metadata: %d topics", len(resp.Topics))
		}
		return resp.Topics[0]
	}

	// default.replication.factor=3 on three brokers.
	mt := metadata(byID[1], "auto3")
	if mt.ErrorCode != 0 || len(mt.Partitions) != 2 {
		t.Fatalf("auto3: error %v, %d partitions", kerr.ErrorForCode(mt.ErrorCode), len(mt.Partitions))
	}
	for _, p := range mt.Partitions {
		if r := slices.Sorted(slices.Values(p.Replicas)); !slices.Equal(r, []int32{1, 2, 3}) {
			t.Fatalf("auto3 partition %d replicas %v, want [1 2 3]", p.Partition, p.Replicas)
		}
	}
	waitFor(t, "auto3 fully in sync on every broker's view", func() bool {
		for _, b := range brokers {
			top, ok := b.meta.State().Topic("auto3")
			if !ok {
				return false
			}
			for _, p := range top.Partitions {
				if len(p.Replicas) != 3 || len(p.ISR) != 3 || p.Leader < 0 {
					return false
				}
			}
		}
		return true
	})

	// default.replication.factor=4 with three live brokers: refused, nothing created.
	if mt := metadata(byID[3], "auto4"); mt.ErrorCode != kerr.InvalidReplicationFactor.Code {
		t.Fatalf("auto4 (RF 4 on 3 brokers): %v, want INVALID_REPLICATION_FACTOR", kerr.ErrorForCode(mt.ErrorCode))
	}
	for _, b := range brokers {
		if _, ok := b.meta.State().Topic("auto4"); ok {
			t.Fatalf("auto4 exists on broker %d after a refused auto-creation", b.cfg.NodeID)
		}
	}

	// Produce to a follower of partition 0.
	top, _ := byID[1].meta.State().Topic("auto3")
	part := top.Partitions[0]
	var follower *Broker
	for _, id := range part.Replicas {
		if id != part.Leader {
			follower = byID[id]
			break
		}
	}
	waitFor(t, "the follower to host partition 0", func() bool { return follower.replicas.partition(top.ID, 0) != nil })
	rc := dialRaw(t, follower)
	corr := int32(0)
	produce := func(version, acks int16) kmsg.ProduceResponse {
		t.Helper()
		req := kmsg.NewPtrProduceRequest()
		req.Version = version
		req.Acks = acks
		req.TimeoutMillis = 5000
		rt := kmsg.NewProduceRequestTopic()
		rt.Topic = "auto3"
		if version >= 13 {
			rt.TopicID = top.ID
		}
		rt.Partitions = []kmsg.ProduceRequestTopicPartition{{Partition: 0, Records: testBatch(t, testBatchOpts{records: 2})}}
		req.Topics = []kmsg.ProduceRequestTopic{rt}
		corr++
		rc.write(frame(req, corr))
		resp := kmsg.NewPtrProduceResponse()
		resp.Version = version
		if got, err := rc.read(resp); err != nil || got != corr {
			t.Fatalf("produce v%d to follower: corr %d err %v", version, got, err)
		}
		if len(resp.Topics) != 1 || len(resp.Topics[0].Partitions) != 1 {
			t.Fatalf("produce v%d response shape %+v", version, resp)
		}
		return *resp
	}
	for _, c := range []struct{ version, acks int16 }{{9, 1}, {9, -1}, {10, 1}, {11, -1}, {12, -1}, {13, 1}} {
		resp := produce(c.version, c.acks)
		rp := resp.Topics[0].Partitions[0]
		if rp.ErrorCode != kerr.NotLeaderForPartition.Code || rp.BaseOffset != -1 {
			t.Fatalf("produce v%d acks=%d to follower %d: %v base %d, want NOT_LEADER_OR_FOLLOWER -1",
				c.version, c.acks, follower.cfg.NodeID, kerr.ErrorForCode(rp.ErrorCode), rp.BaseOffset)
		}
		if c.version < 10 && (rp.CurrentLeader.LeaderID != -1 || len(resp.Brokers) != 0) {
			t.Fatalf("v%d carries KIP-951 fields (from v10 only): %+v %+v", c.version, rp.CurrentLeader, resp.Brokers)
		}
		if c.version >= 10 {
			leader := byID[part.Leader]
			if rp.CurrentLeader.LeaderID != part.Leader || rp.CurrentLeader.LeaderEpoch != part.LeaderEpoch {
				t.Fatalf("v%d CurrentLeader %+v, want leader %d epoch %d", c.version, rp.CurrentLeader, part.Leader, part.LeaderEpoch)
			}
			if len(resp.Brokers) != 1 || resp.Brokers[0].NodeID != part.Leader || net.JoinHostPort(resp.Brokers[0].Host, strconv.Itoa(int(resp.Brokers[0].Port))) != leader.Addr() {
				t.Fatalf("v%d leader endpoints %+v, want broker %d at %s", c.version, resp.Brokers, part.Leader, leader.Addr())
			}
		}
	}
	// acks=0: no response can carry the error; the connection is closed.
	req := kmsg.NewPtrProduceRequest()
	req.Version, req.Acks, req.TimeoutMillis = 9, 0, 5000
	req.Topics = []kmsg.ProduceRequestTopic{{Topic: "auto3", Partitions: []kmsg.ProduceRequestTopicPartition{{Partition: 0, Records: testBatch(t, testBatchOpts{})}}}}
	rc.write(frame(req, 99))
	rc.expectClosed()

	// Nothing reached any replica's log; the leader still takes the same produce.
	for _, b := range brokers {
		if p := b.replicas.partition(top.ID, 0); p != nil && p.log.EndOffset() != 0 {
			t.Fatalf("broker %d: partition 0 log end %d after refused produces", b.cfg.NodeID, p.log.EndOffset())
		}
	}
	rc = dialRaw(t, byID[part.Leader])
	if rp := produce(13, -1).Topics[0].Partitions[0]; rp.ErrorCode != 0 || rp.BaseOffset != 0 {
		t.Fatalf("produce to the leader: %v base %d", kerr.ErrorForCode(rp.ErrorCode), rp.BaseOffset)
	}
}
