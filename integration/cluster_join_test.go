package integration

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// metadataOf asks node n itself (not whichever broker a client picks) for Metadata.
func metadataOf(t *testing.T, n *node, topics ...string) *kmsg.MetadataResponse {
	t.Helper()
	cl := n.client(t)
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

// Issue 5: a fourth `sediment serve` started later with the same --voters and --node-id 4 joins the
// running cluster as a Raft non-voter; Metadata from every broker lists it, and a topic created
// afterwards places replicas (and leaderships) on it, which replicate with acks=all and read back.
func TestFourthBrokerJoinsRunningCluster(t *testing.T) {
	if testing.Short() {
		t.Skip("four processes")
	}
	nodes := startCluster(t)
	var voters []string
	for i, n := range nodes {
		voters = append(voters, fmt.Sprintf("%d=%s", i+1, n.raft))
	}
	n4 := startNode(t, "", "--node-id", "4", "--voters", strings.Join(voters, ","))
	nodes = append(nodes, n4)
	deadline := time.Now().Add(30 * time.Second)
	for _, n := range nodes {
		for {
			var ids []int32
			for _, b := range metadataOf(t, n).Brokers {
				ids = append(ids, b.NodeID)
			}
			slices.Sort(ids)
			if slices.Equal(ids, []int32{1, 2, 3, 4}) {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("Metadata from %s lists brokers %v, want 1-4", n.kafka, ids)
			}
			time.Sleep(100 * time.Millisecond)
		}
	}
	const topic = "joined"
	if resp, err := n4.admin(t).CreateTopic(testCtx(t), 8, 3, nil, topic); err != nil || resp.Err != nil {
		t.Fatalf("create through the new broker: %v %v", err, resp.Err)
	}
	var hosts, leads int
	for {
		hosts, leads = 0, 0
		md := metadataOf(t, nodes[0], topic)
		if len(md.Topics) == 1 && md.Topics[0].ErrorCode == 0 {
			for _, p := range md.Topics[0].Partitions {
				if slices.Contains(p.Replicas, 4) {
					hosts++
				}
				if p.Leader == 4 {
					leads++
				}
			}
		}
		if hosts > 0 && leads > 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("broker 4 hosts %d and leads %d of the new topic's partitions", hosts, leads)
		}
		time.Sleep(100 * time.Millisecond)
	}
	var seeds []string
	for _, n := range nodes {
		seeds = append(seeds, n.kafka)
	}
	cl, err := kgo.NewClient(kgo.SeedBrokers(seeds...), kgo.DefaultProduceTopic(topic), kgo.RecordPartitioner(kgo.RoundRobinPartitioner()))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	const n = 200
	for i := 0; i < n; i++ {
		if err := cl.ProduceSync(testCtx(t), &kgo.Record{Value: []byte(fmt.Sprint(i))}).FirstErr(); err != nil {
			t.Fatal(err)
		}
	}
	cons, err := kgo.NewClient(kgo.SeedBrokers(n4.kafka), kgo.ConsumeTopics(topic), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	if err != nil {
		t.Fatal(err)
	}
	defer cons.Close()
	seen := map[string]bool{}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	for len(seen) < n {
		fs := cons.PollFetches(ctx)
		if ctx.Err() != nil {
			t.Fatalf("read back %d of %d", len(seen), n)
		}
		for _, r := range fs.Records() {
			seen[string(r.Value)] = true
		}
	}
	t.Logf("broker 4 joined; hosts %d and leads %d of 8 partitions created after it joined; %d records acks=all written and read back", hosts, leads, n)
}
