package broker

import (
	"bytes"
	"context"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// metadataFrom asks the broker at addr itself (not whichever broker a client picks) for Metadata.
func metadataFrom(t *testing.T, addr string, topics ...string) *kmsg.MetadataResponse {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(addr))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	req := kmsg.NewPtrMetadataRequest()
	for _, tp := range topics {
		rt := kmsg.NewMetadataRequestTopic()
		rt.Topic = kmsg.StringPtr(tp)
		req.Topics = append(req.Topics, rt)
	}
	resp, err := cl.SeedBrokers()[0].Request(testCtx(t), req)
	if err != nil {
		t.Fatal(err)
	}
	return resp.(*kmsg.MetadataResponse)
}

// A fourth broker started later, with the same voters and an id not among them, joins the Raft
// group as a non-voter, registers, is listed by Metadata from every broker, and receives replicas
// (and leaderships) of topics created afterwards, which it replicates like any broker.
func TestFourthBrokerJoinsAsNonvoter(t *testing.T) {
	if testing.Short() {
		t.Skip("starts four brokers")
	}
	tune := func(cfg *Config) {
		cfg.ReplicaLagTimeMaxMs = 1500
		cfg.MetaConfig = fastClusterMeta(2*time.Second, 200*time.Millisecond)
	}
	brokers, cfgs := startTestCluster(t, 3, tune)
	cfg := testBrokerConfig(t, t.TempDir())
	cfg.NodeID = 4
	cfg.RaftListen = freePort(t)
	cfg.Voters = cfgs[0].Voters
	tune(&cfg)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	b4, err := Start(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { b4.Close() })
	brokers = append(brokers, b4)
	members, err := brokers[0].meta.Members()
	if err != nil {
		t.Fatal(err)
	}
	voters := 0
	for _, m := range members {
		if m.Voter {
			voters++
		}
		if m.ID == 4 && m.Voter {
			t.Fatal("the joined broker is a voter")
		}
	}
	if len(members) != 4 || voters != 3 {
		t.Fatalf("Raft members %+v: want 3 voters and broker 4 as a non-voter", members)
	}
	seeds := brokerAddrs(brokers)
	const topic = "after-join"
	if resp, err := kadmFor(t, seeds).CreateTopic(testCtx(t), 8, 3, nil, topic); err != nil || resp.Err != nil {
		t.Fatalf("create: %v %v", err, resp.Err)
	}
	waitFor(t, "every broker to know the topic", func() bool {
		for _, b := range brokers {
			if _, ok := b.meta.State().Topic(topic); !ok {
				return false
			}
		}
		return true
	})
	hosts, leads := 0, 0
	for _, b := range brokers {
		md := metadataFrom(t, b.Addr(), topic)
		var ids []int32
		for _, br := range md.Brokers {
			ids = append(ids, br.NodeID)
		}
		slices.Sort(ids)
		if !slices.Equal(ids, []int32{1, 2, 3, 4}) {
			t.Fatalf("Metadata from broker %d lists brokers %v", b.cfg.NodeID, ids)
		}
		if b != b4 {
			continue
		}
		for _, p := range md.Topics[0].Partitions {
			if slices.Contains(p.Replicas, 4) {
				hosts++
			}
			if p.Leader == 4 {
				leads++
			}
		}
	}
	if hosts == 0 || leads == 0 {
		t.Fatalf("broker 4 hosts %d and leads %d of the new topic's 8 partitions", hosts, leads)
	}
	// It replicates: acks=all (every ISR member, broker 4 among them where it is a replica).
	cl, err := kgo.NewClient(kgo.SeedBrokers(seeds...), kgo.DefaultProduceTopic(topic))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	for i := 0; i < 64; i++ {
		if err := cl.ProduceSync(testCtx(t), &kgo.Record{Value: []byte(fmt.Sprint(i))}).FirstErr(); err != nil {
			t.Fatal(err)
		}
	}
	mt, _ := b4.meta.State().Topic(topic)
	for _, part := range mt.Partitions {
		if !slices.Contains(part.Replicas, 4) {
			continue
		}
		var ps []*Partition
		for _, id := range part.Replicas {
			ps = append(ps, brokers[id-1].replicas.partition(mt.ID, part.Index))
		}
		waitFor(t, "broker 4's replica to match the others", func() bool {
			for _, p := range ps {
				if p.log.EndOffset() != ps[0].log.EndOffset() {
					return false
				}
			}
			return true
		})
		for _, p := range ps[1:] {
			if !bytes.Equal(localLogBytes(t, p), localLogBytes(t, ps[0])) {
				t.Fatalf("partition %d: replicas differ", part.Index)
			}
		}
	}
	t.Logf("broker 4 joined as a non-voter; hosts %d and leads %d of 8 new partitions; listed by all four brokers", hosts, leads)
}
