package broker

import (
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/sediment-io/sediment/meta"
)

// fetchHook records which broker served each batch a kgo consumer read.
type fetchHook struct {
	mu    sync.Mutex
	nodes map[int32]int
}

func (h *fetchHook) OnFetchBatchRead(m kgo.BrokerMetadata, _ string, _ int32, fm kgo.FetchBatchMetrics) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.nodes[m.NodeID] += fm.NumRecords
}

// KIP-392 in a 3-broker cluster, each broker in its own rack, replica.selector.class =
// RackAwareReplicaSelector on brokers 2 and 3 (not on 1): the leader points a v11+ consumer in a
// follower's rack at that follower (PreferredReadReplica, no records), serves a consumer in its own
// rack or without a rack itself; the follower serves v11+ consumers below its high watermark and
// refuses v10; a kgo consumer with client.rack set reads every record from the follower in its
// rack; and a leader without the selector (broker 1) never redirects.
func TestFetchFromFollowerRackAware(t *testing.T) {
	if testing.Short() {
		t.Skip("starts three brokers")
	}
	brokers, _ := startTestCluster(t, 3, func(cfg *Config) {
		cfg.Rack = fmt.Sprintf("rack-%d", cfg.NodeID)
		if cfg.NodeID != 1 {
			cfg.ReplicaSelectorClass = rackAwareReplicaSelector
		}
		cfg.ReplicaLagTimeMaxMs = 5000
		cfg.MetaConfig = fastClusterMeta(5*time.Second, 200*time.Millisecond)
	})
	var seeds []string
	byID := map[int32]*Broker{}
	for _, b := range brokers {
		seeds = append(seeds, b.Addr())
		byID[b.cfg.NodeID] = b
	}
	const topic, offTopic, n = "ff", "ff-off", 500
	// Leaders by assignment (the first replica): broker 2 for topic, broker 1 for offTopic.
	createAssigned(t, seeds, topic, 2, 1, 3)
	createAssigned(t, seeds, offTopic, 1, 2, 3)
	prod, err := kgo.NewClient(kgo.SeedBrokers(seeds...), kgo.DefaultProduceTopic(topic))
	if err != nil {
		t.Fatal(err)
	}
	defer prod.Close()
	for i := range n {
		prod.Produce(testCtx(t), &kgo.Record{Value: fmt.Appendf(nil, "rec-%04d", i)}, nil)
	}
	for i := range n {
		prod.Produce(testCtx(t), &kgo.Record{Topic: offTopic, Value: fmt.Appendf(nil, "rec-%04d", i)}, nil)
	}
	if err := prod.Flush(testCtx(t)); err != nil {
		t.Fatal(err)
	}

	// The leader, and a follower that is in sync with all n records (acks=all: the HW is n).
	var part meta.Partition
	var leader, follower *Broker
	deadline := time.Now().Add(20 * time.Second)
	for {
		st := brokers[0].meta.State()
		mt, _ := st.Topic(topic)
		part, _ = st.Partition(mt.ID, 0)
		leader = byID[part.Leader]
		if leader != nil && len(part.ISR) == 3 {
			if p := leader.replicas.partition(mt.ID, 0); p != nil && p.HighWatermark() == n {
				break
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("partition never had 3 in sync with HW %d: %+v", n, part)
		}
		time.Sleep(50 * time.Millisecond)
	}
	for _, id := range part.ISR {
		if id != part.Leader {
			follower = byID[id]
			break
		}
	}
	if leader.cfg.NodeID != 2 {
		t.Fatalf("leader of %s is %d, want the first assigned replica 2", topic, leader.cfg.NodeID)
	}
	fetchTopic := func(b *Broker, topic string, version int16, rack string) kmsg.FetchResponseTopicPartition {
		t.Helper()
		req := fetchRequest(b, topic, 0, 100, 1, 1<<20, 1<<20)
		req.Version = version
		req.Rack = rack
		mt, _ := b.meta.State().Topic(topic)
		req.Topics[0].TopicID = mt.ID
		resp := rawFetch(t, dialRaw(t, b), req, 1)
		if len(resp.Topics) != 1 || len(resp.Topics[0].Partitions) != 1 {
			t.Fatalf("v%d from %d: %d topics", version, b.cfg.NodeID, len(resp.Topics))
		}
		return resp.Topics[0].Partitions[0]
	}
	fetch := func(b *Broker, version int16, rack string) kmsg.FetchResponseTopicPartition {
		t.Helper()
		return fetchTopic(b, topic, version, rack)
	}

	// The leader redirects a consumer in the follower's rack: no records, the offsets.
	for _, v := range []int16{11, 12, 16} {
		p := fetch(leader, v, follower.cfg.Rack)
		if p.ErrorCode != 0 || p.PreferredReadReplica != follower.cfg.NodeID || len(p.RecordBatches) != 0 || p.HighWatermark != n {
			t.Fatalf("leader v%d, client in the follower's rack: err %v preferred %d (want %d) records %d hw %d",
				v, kerr.ErrorForCode(p.ErrorCode), p.PreferredReadReplica, follower.cfg.NodeID, len(p.RecordBatches), p.HighWatermark)
		}
	}
	// Only a follower that has the fetch offset qualifies (Kafka: replica log end >= fetch offset).
	lp := leader.replicas.partition(lookupTopicID(t, leader, topic), 0)
	if id := lp.preferredReadReplica(leader.meta.State(), leader.cfg.Rack, follower.cfg.Rack, n); id != follower.cfg.NodeID {
		t.Fatalf("selector at offset %d: %d, want %d", n, id, follower.cfg.NodeID)
	}
	if id := lp.preferredReadReplica(leader.meta.State(), leader.cfg.Rack, follower.cfg.Rack, n+1); id != -1 {
		t.Fatalf("selector at offset %d, beyond every follower's log end: %d, want -1", n+1, id)
	}
	// It serves a consumer in its own rack, without a rack, or in a rack no replica is in.
	for _, rack := range []string{leader.cfg.Rack, "", "rack-elsewhere"} {
		p := fetch(leader, 12, rack)
		if p.ErrorCode != 0 || p.PreferredReadReplica != -1 || len(p.RecordBatches) == 0 {
			t.Fatalf("leader, client rack %q: err %v preferred %d records %d", rack, kerr.ErrorForCode(p.ErrorCode), p.PreferredReadReplica, len(p.RecordBatches))
		}
	}
	// The follower serves v11+ consumers (its own HW, never above the leader's), not v10 ones.
	if p := fetch(follower, 10, ""); p.ErrorCode != kerr.NotLeaderForPartition.Code {
		t.Fatalf("follower v10: %v, want NOT_LEADER_OR_FOLLOWER", kerr.ErrorForCode(p.ErrorCode))
	}
	for _, v := range []int16{11, 13, 16} {
		p := fetch(follower, v, follower.cfg.Rack)
		hs, err := splitTestBatches(p.RecordBatches)
		if p.ErrorCode != 0 || p.PreferredReadReplica != -1 || p.HighWatermark > n || err != nil ||
			(p.HighWatermark > 0 && (len(hs) == 0 || hs[0] != 0)) {
			t.Fatalf("follower v%d: err %v preferred %d hw %d batches %v (%v)", v, kerr.ErrorForCode(p.ErrorCode), p.PreferredReadReplica, p.HighWatermark, hs, err)
		}
	}

	// A consumer long-polling the follower at the end of the log is woken when the follower's HW
	// moves past it, not only when its MaxWait expires.
	const maxWait = 30 * time.Second
	produced := make(chan error, 1)
	go func() {
		time.Sleep(300 * time.Millisecond) // let the long poll park first
		produced <- prod.ProduceSync(testCtx(t), &kgo.Record{Value: []byte("late")}).FirstErr()
	}()
	lpReq := fetchRequest(follower, topic, n, int32(maxWait.Milliseconds()), 1, 1<<20, 1<<20)
	lpReq.Version = 11
	lpReq.Rack = follower.cfg.Rack
	began := time.Now()
	lpResp := rawFetch(t, dialRaw(t, follower), lpReq, 1)
	waited := time.Since(began)
	if err := <-produced; err != nil {
		t.Fatal(err)
	}
	if len(lpResp.Topics) != 1 || len(lpResp.Topics[0].Partitions) != 1 {
		t.Fatalf("long poll on the follower: %d topics", len(lpResp.Topics))
	}
	lp0 := lpResp.Topics[0].Partitions[0]
	if hs, err := splitTestBatches(lp0.RecordBatches); lp0.ErrorCode != 0 || err != nil || len(hs) == 0 || hs[0] != n {
		t.Fatalf("long poll on the follower after %v: err %v batches %v (%v), want the batch at %d", waited, kerr.ErrorForCode(lp0.ErrorCode), hs, err, n)
	}
	if waited >= maxWait {
		t.Fatalf("long poll on the follower answered after its full MaxWait %v: the HW advance did not wake it", maxWait)
	}

	// Broker 1 leads offTopic without the selector: it serves a client in another replica's rack.
	waitHW(t, byID[1], offTopic, n)
	if p := fetchTopic(byID[1], offTopic, 12, "rack-2"); p.ErrorCode != 0 || p.PreferredReadReplica != -1 || len(p.RecordBatches) == 0 {
		t.Fatalf("leader without selector: err %v preferred %d records %d", kerr.ErrorForCode(p.ErrorCode), p.PreferredReadReplica, len(p.RecordBatches))
	}

	// A kgo consumer with client.rack = the follower's rack reads everything from the follower.
	hook := &fetchHook{nodes: map[int32]int{}}
	cons, err := kgo.NewClient(kgo.SeedBrokers(seeds...), kgo.ConsumeTopics(topic), kgo.Rack(follower.cfg.Rack),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()), kgo.FetchMaxWait(200*time.Millisecond), kgo.WithHooks(hook))
	if err != nil {
		t.Fatal(err)
	}
	defer cons.Close()
	var got []string
	for len(got) < n+1 { // the n records and the long poll's "late" one
		fs := cons.PollFetches(testCtx(t))
		if err := fs.Err0(); err != nil {
			t.Fatal(err)
		}
		fs.EachRecord(func(r *kgo.Record) { got = append(got, string(r.Value)) })
	}
	for i, v := range got {
		want := fmt.Sprintf("rec-%04d", i)
		if i == n {
			want = "late"
		}
		if v != want {
			t.Fatalf("record %d = %q, want %q", i, v, want)
		}
	}
	hook.mu.Lock()
	defer hook.mu.Unlock()
	if hook.nodes[follower.cfg.NodeID] != n+1 || len(hook.nodes) != 1 {
		t.Fatalf("records read per broker: %v; want all %d from the follower %d (leader %d)", hook.nodes, n+1, follower.cfg.NodeID, leader.cfg.NodeID)
	}
}

// createAssigned creates a one-partition topic with the given replica assignment (leader first).
func createAssigned(t *testing.T, seeds []string, topic string, replicas ...int32) {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(seeds...))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	req := kmsg.NewPtrCreateTopicsRequest()
	req.TimeoutMillis = 10000
	rt := kmsg.NewCreateTopicsRequestTopic()
	rt.Topic, rt.NumPartitions, rt.ReplicationFactor = topic, -1, -1
	ra := kmsg.NewCreateTopicsRequestTopicReplicaAssignment()
	ra.Partition, ra.Replicas = 0, replicas
	rt.ReplicaAssignment = append(rt.ReplicaAssignment, ra)
	req.Topics = append(req.Topics, rt)
	resp, err := req.RequestWith(testCtx(t), cl)
	if err != nil || resp.Topics[0].ErrorCode != 0 {
		t.Fatalf("create %s on %v: %v %v", topic, replicas, err, resp)
	}
}

// waitHW waits until b's replica of topic-0 has high watermark hw.
func waitHW(t *testing.T, b *Broker, topic string, hw int64) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		if mt, ok := b.meta.State().Topic(topic); ok {
			if p := b.replicas.partition(mt.ID, 0); p != nil && p.HighWatermark() == hw {
				return
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s-0 on broker %d never reached HW %d", topic, b.cfg.NodeID, hw)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func lookupTopicID(t *testing.T, b *Broker, topic string) meta.TopicID {
	t.Helper()
	mt, ok := b.meta.State().Topic(topic)
	if !ok {
		t.Fatalf("topic %s unknown to broker %d", topic, b.cfg.NodeID)
	}
	return mt.ID
}
