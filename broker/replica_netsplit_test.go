package broker

import (
	"bytes"
	"context"
	"errors"
	"net"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/sediment-io/sediment/meta"
)

// linkCutter is an in-process network between brokers: every broker-to-broker TCP connection
// (Raft, forwarded proposals, replica fetches) is dialed through it, so one broker's links can be
// cut both ways — existing connections closed, new ones refused — while the process runs on and
// clients can still reach it (the split-brain case).
type linkCutter struct {
	mu       sync.Mutex
	owner    map[string]int32 // Raft and Kafka addresses → node id
	isolated map[int32]bool
	conns    []cutConn
}

type cutConn struct {
	from, to int32
	c        net.Conn
}

var errPartitioned = errors.New("network partition (test)")

func newLinkCutter() *linkCutter {
	return &linkCutter{owner: map[string]int32{}, isolated: map[int32]bool{}}
}

func (lc *linkCutter) dial(ctx context.Context, from int32, addr string) (net.Conn, error) {
	lc.mu.Lock()
	to, known := lc.owner[addr]
	cut := lc.isolated[from] || known && lc.isolated[to]
	lc.mu.Unlock()
	if cut {
		return nil, errPartitioned
	}
	var d net.Dialer
	c, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return nil, err
	}
	lc.mu.Lock()
	defer lc.mu.Unlock()
	if lc.isolated[from] || known && lc.isolated[to] { // cut while dialing
		c.Close()
		return nil, errPartitioned
	}
	lc.conns = append(lc.conns, cutConn{from, to, c})
	return c, nil
}

// startCuttableCluster starts n brokers (ReplicaLagTimeMaxMs 1.5 s, a 2 s broker session, then
// tune) whose links to each other all go through one linkCutter. Returns it, the brokers and
// their Kafka addresses.
func startCuttableCluster(t *testing.T, n int, tune func(*Config)) (*linkCutter, []*Broker, []string) {
	t.Helper()
	lc := newLinkCutter()
	hook := lc.dial
	replicaDialHook.Store(&hook)
	t.Cleanup(func() { replicaDialHook.Store(nil) })
	brokers, cfgs := startTestCluster(t, n, func(cfg *Config) {
		cfg.ReplicaLagTimeMaxMs = 1500
		if tune != nil {
			tune(cfg)
		}
		id := cfg.NodeID
		cfg.MetaConfig = func(mc *meta.Config) {
			fastClusterMeta(2*time.Second, 200*time.Millisecond)(mc)
			mc.Dial = func(ctx context.Context, addr string) (net.Conn, error) { return lc.dial(ctx, id, addr) }
		}
	})
	var seeds []string
	lc.mu.Lock()
	for i, b := range brokers {
		seeds = append(seeds, b.Addr())
		lc.owner[b.Addr()] = b.cfg.NodeID
		lc.owner[cfgs[i].RaftListen] = b.cfg.NodeID
	}
	lc.mu.Unlock()
	return lc, brokers, seeds
}

// isolate cuts every link of node id (both directions); heal restores new connections.
func (lc *linkCutter) isolate(id int32) {
	lc.mu.Lock()
	defer lc.mu.Unlock()
	lc.isolated[id] = true
	keep := lc.conns[:0]
	for _, cc := range lc.conns {
		if cc.from == id || cc.to == id {
			cc.c.Close()
		} else {
			keep = append(keep, cc)
		}
	}
	lc.conns = keep
}

func (lc *linkCutter) heal(id int32) {
	lc.mu.Lock()
	defer lc.mu.Unlock()
	delete(lc.isolated, id)
}

// A leader cut off from the other brokers (not killed: its process, listener and clients carry on)
// acknowledges nothing under its stale epoch: acks=all produce sent straight to it times out,
// because its followers stop fetching and it cannot shrink the ISR without meta. The majority
// side fences it after the session timeout and elects a new leader from the ISR; an idempotent
// acks=all producer continues there. After healing, the old leader learns the new epoch, truncates
// the divergent tail it appended while isolated, catches up and rejoins the ISR; every acknowledged
// record is read back once, in order, and the three replica logs are byte-identical.
func TestNetworkPartitionedLeader(t *testing.T) {
	if testing.Short() {
		t.Skip("starts three brokers")
	}
	lc, brokers, seeds := startCuttableCluster(t, 3, nil)

	const topic = "split"
	two := "2"
	if resp, err := kadmFor(t, seeds).CreateTopic(testCtx(t), 1, 3, map[string]*string{"min.insync.replicas": &two}, topic); err != nil || resp.Err != nil {
		t.Fatalf("create: %v %v", err, resp.Err)
	}
	cl, err := kgo.NewClient(kgo.SeedBrokers(seeds...), kgo.DefaultProduceTopic(topic),
		kgo.ProducerLinger(time.Millisecond), kgo.RecordDeliveryTimeout(60*time.Second),
		kgo.RecordPartitioner(kgo.ManualPartitioner()), kgo.MetadataMinAge(250*time.Millisecond),
		// The isolated leader holds acks=all produces until their timeout (it cannot ack them):
		// a short one lets this client move on to the new leader soon.
		kgo.ProduceRequestTimeout(2*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	prod := startSyncProducer(cl, 0)
	waitFor(t, "records before the partition", func() bool { return prod.count() >= 100 })

	mt, _ := brokers[0].meta.State().Topic(topic)
	oldLeader := mt.Partitions[0].Leader
	victim, majority := splitOff(brokers, oldLeader)
	vp := victim.replicas.partition(mt.ID, 0)
	lc.isolate(oldLeader)
	isolatedAt := time.Now()

	// A client that still reaches the isolated leader keeps producing to it with acks=all, raw,
	// so it never follows the new metadata.
	direct, err := kgo.NewClient(kgo.SeedBrokers(victim.Addr()))
	if err != nil {
		t.Fatal(err)
	}
	defer direct.Close()
	stale := func() int16 {
		req := kmsg.NewPtrProduceRequest()
		req.Acks = -1
		req.TimeoutMillis = 1000
		rt := kmsg.NewProduceRequestTopic()
		rt.Topic, rt.TopicID = topic, mt.ID // v13 names topics by id
		rp := kmsg.NewProduceRequestTopicPartition()
		rp.Partition = 0
		rp.Records = testBatch(t, testBatchOpts{ts: time.Now().UnixMilli(), value: []byte("stale")})
		rt.Partitions = append(rt.Partitions, rp)
		req.Topics = append(req.Topics, rt)
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		resp, err := direct.SeedBrokers()[0].Request(ctx, req)
		if err != nil {
			return -1
		}
		return resp.(*kmsg.ProduceResponse).Topics[0].Partitions[0].ErrorCode
	}
	var staleAcked, staleTried int
	endBefore := vp.log.EndOffset()
	newLeader := int32(-1)
	for newLeader < 0 || staleTried < 3 {
		code := stale()
		staleTried++
		if code == 0 {
			staleAcked++
		}
		if code > 0 && code != kerr.RequestTimedOut.Code && code != kerr.NotEnoughReplicas.Code &&
			code != kerr.NotEnoughReplicasAfterAppend.Code && code != kerr.NotLeaderForPartition.Code {
			t.Logf("stale produce answered %v", kerr.ErrorForCode(code))
		}
		mt, _ := majority[0].meta.State().Topic(topic)
		if l := mt.Partitions[0].Leader; l >= 0 && l != oldLeader {
			newLeader = l
		}
		if time.Since(isolatedAt) > 30*time.Second {
			t.Fatal("the majority elected no new leader within 30 s")
		}
	}
	divergent := vp.log.EndOffset() - endBefore
	// The majority agrees on the new leadership (the isolated broker cannot know it yet).
	var majorityAddrs []string
	for _, b := range majority {
		majorityAddrs = append(majorityAddrs, b.Addr())
	}
	newMetadataWatch(t, topic, majorityAddrs...).waitAgreed(t, "the majority's Metadata on the new leader", func(v metadataView) bool {
		return v.parts[0].leader >= 0 && v.parts[0].leader != oldLeader && !slices.Contains(v.parts[0].isr, oldLeader)
	})
	if staleAcked > 0 {
		t.Fatalf("the isolated leader acknowledged %d of %d acks=all produces under its stale epoch", staleAcked, staleTried)
	}
	if divergent <= 0 {
		t.Fatalf("the isolated leader appended nothing (%d attempts): no divergent tail to test", staleTried)
	}
	before := prod.count()
	waitFor(t, "acks=all on the majority side", func() bool { return prod.count() >= before+100 })

	lc.heal(oldLeader)
	var ps []*Partition
	for _, b := range brokers {
		ps = append(ps, b.replicas.partition(mt.ID, 0))
	}
	waitFor(t, "the old leader back in the ISR and the logs converged", func() bool {
		mt, _ := majority[0].meta.State().Topic(topic)
		p := mt.Partitions[0]
		if len(p.ISR) != 3 || p.Leader == oldLeader {
			return false
		}
		for _, q := range ps[1:] {
			if q.log.EndOffset() != ps[0].log.EndOffset() {
				return false
			}
		}
		return true
	})
	// Issue 5: after the heal every broker, the formerly isolated one included, gives the same
	// Metadata (leader, epoch, replicas, full ISR, brokers).
	healed := newMetadataWatch(t, topic, seeds...).waitAgreed(t, "every broker's Metadata after the heal", func(v metadataView) bool {
		return len(v.brokers) == 3 && len(v.parts[0].isr) == 3 && v.parts[0].leader >= 0 && v.parts[0].leader != oldLeader
	})
	if healed.parts[0].leaderEpoch <= mt.Partitions[0].LeaderEpoch {
		t.Fatalf("leader epoch %d after the heal, %d before the partition", healed.parts[0].leaderEpoch, mt.Partitions[0].LeaderEpoch)
	}
	acked := prod.stop()
	waitFor(t, "replicas at one log end", func() bool {
		return ps[0].log.EndOffset() == ps[1].log.EndOffset() && ps[1].log.EndOffset() == ps[2].log.EndOffset()
	})
	checkReadBackOnce(t, seeds, topic, 0, acked)
	ref := localLogBytes(t, ps[0])
	for i, q := range ps[1:] {
		if !bytes.Equal(ref, localLogBytes(t, q)) {
			t.Fatalf("replica on broker %d differs from broker 1's", i+2)
		}
	}
	if bytes.Contains(ref, []byte("stale")) {
		t.Fatal("a record produced to the isolated leader survived")
	}
	t.Logf("isolated leader %d: %d acks=all produces sent to it, 0 acknowledged, %d offsets of divergent tail truncated after healing; new leader %d; %d acknowledged on the majority, all read back once, logs identical",
		oldLeader, staleTried, divergent, newLeader, len(acked))
}
