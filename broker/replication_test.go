package broker

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/sediment-io/sediment/meta"
	"github.com/sediment-io/sediment/segment"
)

// brokerAddrs is the brokers' listener addresses (a client's seeds).
func brokerAddrs(bs []*Broker) []string {
	out := make([]string, len(bs))
	for i, b := range bs {
		out[i] = b.Addr()
	}
	return out
}

// startReplCluster starts n brokers forming one Raft group, with a short replica.lag.time.max.ms.
func startReplCluster(t testing.TB, n int) []*Broker {
	bs, _ := startReplClusterConfigs(t, n)
	return bs
}

// startReplClusterConfigs is startReplCluster returning each broker's Config too (restarts).
func startReplClusterConfigs(t testing.TB, n int) ([]*Broker, []Config) {
	t.Helper()
	return startTestCluster(t, n, func(cfg *Config) {
		cfg.ReplicaLagTimeMaxMs = 1500
		cfg.MetaConfig = fastClusterMeta(2*time.Second, 200*time.Millisecond)
	})
}

// localLogBytes reads a replica's whole local log.
func localLogBytes(t *testing.T, p *Partition) []byte {
	t.Helper()
	// From the local start: below it (KIP-405) the data lives only in the bucket.
	return localLogBytesFrom(t, p, p.log.LocalStartOffset())
}

// localLogBytesFrom is the raw local log from offset from (at or above the local start) to the end.
func localLogBytesFrom(t *testing.T, p *Partition, from int64) []byte {
	t.Helper()
	var out []byte
	for off := from; off < p.log.EndOffset(); {
		rr, err := p.log.Read(off, segment.ReadOptions{MaxBytes: 1 << 20, MaxOffset: p.log.EndOffset(), MinOneBatch: true})
		if err != nil {
			t.Fatal(err)
		}
		if len(rr.Data) == 0 {
			break
		}
		out = append(out, rr.Data...)
		off = rr.NextOffset
	}
	return out
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// Three brokers, a topic with replication factor 3: acks=all produce, every replica ends with a
// byte-identical log, consumers read every record once; a stopped follower leaves the ISR and
// acks=all produce goes on with the two that are left.
func TestReplicationThreeBrokers(t *testing.T) {
	if testing.Short() {
		t.Skip("starts three brokers")
	}
	brokers, cfgs := startReplClusterConfigs(t, 3)
	seeds := brokerAddrs(brokers)
	adm := kadmFor(t, seeds)
	const topic = "rep"
	resp, err := adm.CreateTopic(testCtx(t), 2, 3, nil, topic)
	if err != nil || resp.Err != nil {
		t.Fatalf("create: %v %v", err, resp.Err)
	}
	cl, err := kgo.NewClient(kgo.SeedBrokers(seeds...), kgo.DefaultProduceTopic(topic),
		kgo.RecordPartitioner(kgo.RoundRobinPartitioner()))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	produce := func(from, n int) {
		t.Helper()
		var recs []*kgo.Record
		for i := from; i < from+n; i++ {
			recs = append(recs, &kgo.Record{Value: []byte(fmt.Sprintf("rec-%05d", i))})
		}
		if err := cl.ProduceSync(testCtx(t), recs...).FirstErr(); err != nil {
			t.Fatalf("produce: %v", err)
		}
	}
	produce(0, 1000)

	mt, _ := brokers[0].meta.State().Topic(topic)
	replicasOf := func(index int32) []*Partition {
		var ps []*Partition
		for _, b := range brokers {
			if p := b.replicas.partition(mt.ID, index); p != nil {
				ps = append(ps, p)
			}
		}
		return ps
	}
	for idx := int32(0); idx < 2; idx++ {
		ps := replicasOf(idx)
		if len(ps) != 3 {
			t.Fatalf("partition %d has %d local replicas", idx, len(ps))
		}
		waitFor(t, fmt.Sprintf("partition %d replicas to converge", idx), func() bool {
			for _, p := range ps[1:] {
				if p.log.EndOffset() != ps[0].log.EndOffset() || p.HighWatermark() != ps[0].HighWatermark() {
					return false
				}
			}
			return ps[0].log.EndOffset() > 0
		})
		want := localLogBytes(t, ps[0])
		for _, p := range ps[1:] {
			if !bytes.Equal(localLogBytes(t, p), want) {
				t.Fatalf("partition %d: replica logs differ", idx)
			}
		}
	}

	// Stop a broker that leads neither partition: it drops out of both ISRs.
	st := brokers[0].meta.State()
	mt, _ = st.Topic(topic)
	var victim *Broker
	for _, b := range brokers {
		if b.cfg.NodeID != mt.Partitions[0].Leader && b.cfg.NodeID != mt.Partitions[1].Leader {
			victim = b
			break
		}
	}
	if victim == nil { // two partitions over three brokers always leave one leading neither
		t.Fatalf("no broker leads neither partition (leaders %d and %d)", mt.Partitions[0].Leader, mt.Partitions[1].Leader)
	}
	victim.Close()
	var live *Broker
	for _, b := range brokers {
		if b != victim {
			live = b
			break
		}
	}
	waitFor(t, "the stopped follower to leave the ISRs", func() bool {
		mt, _ := live.meta.State().Topic(topic)
		for _, p := range mt.Partitions {
			if slices.Contains(p.ISR, victim.cfg.NodeID) || len(p.ISR) != 2 {
				return false
			}
		}
		return true
	})
	var liveAddrs []string
	for _, b := range brokers {
		if b != victim {
			liveAddrs = append(liveAddrs, b.Addr())
		}
	}
	// Issue 5: Metadata from every (live) broker agrees after the fault.
	newMetadataWatch(t, topic, liveAddrs...).waitAgreed(t, "the live brokers' Metadata without the stopped follower", func(v metadataView) bool {
		for _, p := range v.parts {
			if len(p.isr) != 2 || slices.Contains(p.isr, victim.cfg.NodeID) || p.leader == victim.cfg.NodeID {
				return false
			}
		}
		return len(v.brokers) == 2 && len(v.parts) == 2
	})
	produce(1000, 500)

	// The follower comes back on its data dir: it catches up (truncating by epoch if needed),
	// rejoins both ISRs, and every replica ends byte-identical again.
	var vcfg Config
	for _, c := range cfgs {
		if c.NodeID == victim.cfg.NodeID {
			vcfg = c
		}
	}
	back, err := Start(testCtx(t), vcfg)
	if err != nil {
		t.Fatalf("restart follower: %v", err)
	}
	t.Cleanup(func() { back.Close() })
	waitFor(t, "the restarted follower to rejoin the ISRs", func() bool {
		mt, _ := live.meta.State().Topic(topic)
		for _, p := range mt.Partitions {
			if !slices.Contains(p.ISR, vcfg.NodeID) {
				return false
			}
		}
		return true
	})
	// Every broker, the restarted one included, gives the same Metadata: three brokers, full ISRs.
	newMetadataWatch(t, topic, append(liveAddrs, back.Addr())...).waitAgreed(t, "every broker's Metadata after the rejoin", func(v metadataView) bool {
		for _, p := range v.parts {
			if len(p.isr) != 3 || p.leader < 0 {
				return false
			}
		}
		return len(v.brokers) == 3 && len(v.parts) == 2
	})
	for idx := int32(0); idx < 2; idx++ {
		var ps []*Partition
		for _, b := range []*Broker{back, live} {
			ps = append(ps, b.replicas.partition(mt.ID, idx))
		}
		for _, b := range brokers {
			if b != victim && b != live {
				ps = append(ps, b.replicas.partition(mt.ID, idx))
			}
		}
		waitFor(t, "all three replicas to converge again", func() bool {
			return ps[0].log.EndOffset() == ps[1].log.EndOffset() && ps[1].log.EndOffset() == ps[2].log.EndOffset()
		})
		want := localLogBytes(t, ps[1])
		for _, p := range []*Partition{ps[0], ps[2]} {
			if !bytes.Equal(localLogBytes(t, p), want) {
				t.Fatalf("partition %d: replica logs differ after the follower rejoined", idx)
			}
		}
	}

	// Consumers read every record exactly once.
	cons, err := kgo.NewClient(kgo.SeedBrokers(live.Addr()), kgo.ConsumeTopics(topic),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	if err != nil {
		t.Fatal(err)
	}
	defer cons.Close()
	seen := map[string]bool{}
	ctx := testCtx(t)
	for len(seen) < 1500 {
		fs := cons.PollFetches(ctx)
		if ctx.Err() != nil {
			t.Fatalf("consumed %d of 1500", len(seen))
		}
		for _, r := range fs.Records() {
			if seen[string(r.Value)] {
				t.Fatalf("%s twice", r.Value)
			}
			seen[string(r.Value)] = true
		}
	}
}

func kadmFor(t testing.TB, seeds []string) *kadm.Client {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(seeds...))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cl.Close)
	return kadm.NewClient(cl)
}

// Leader failover: an idempotent producer writes continuously with acks=all to a partition with
// RF 3 and min.insync.replicas=2 while its leader is stopped; the controller elects a new leader
// from the ISR, the clients follow, and every acknowledged record is read back exactly once, in
// produce order; the surviving replicas' logs are byte-identical.
func TestReplicationLeaderFailover(t *testing.T) {
	if testing.Short() {
		t.Skip("starts three brokers")
	}
	brokers := startReplCluster(t, 3)
	seeds := brokerAddrs(brokers)
	const topic = "fail"
	two := "2"
	if resp, err := kadmFor(t, seeds).CreateTopic(testCtx(t), 1, 3, map[string]*string{"min.insync.replicas": &two}, topic); err != nil || resp.Err != nil {
		t.Fatalf("create: %v %v", err, resp.Err)
	}
	cl, err := kgo.NewClient(kgo.SeedBrokers(seeds...), kgo.DefaultProduceTopic(topic),
		kgo.ProducerLinger(time.Millisecond), kgo.RecordDeliveryTimeout(30*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()

	prod := startSyncProducer(cl, 0)
	count := prod.count
	waitFor(t, "records before the failover", func() bool { return count() >= 200 })

	mt, _ := brokers[0].meta.State().Topic(topic)
	oldLeader := mt.Partitions[0].Leader
	victim, live := splitOff(brokers, oldLeader)
	killedAt := time.Now()
	ackedAtKill := count()
	victim.Close()
	waitFor(t, "a new leader", func() bool {
		mt, _ := live[0].meta.State().Topic(topic)
		l := mt.Partitions[0].Leader
		return l >= 0 && l != oldLeader
	})
	waitFor(t, "the first acknowledgement after the failover", func() bool { return count() > ackedAtKill+1 })
	failover := time.Since(killedAt)
	// Issue 5: both survivors' Metadata agree on the new leadership, at a higher epoch, without
	// the stopped leader in the ISR or the broker list.
	failed := newMetadataWatch(t, topic, live[0].Addr(), live[1].Addr()).waitAgreed(t, "the survivors' Metadata after the failover", func(v metadataView) bool {
		p := v.parts[0]
		return len(v.brokers) == 2 && p.leader >= 0 && p.leader != oldLeader && !slices.Contains(p.isr, oldLeader)
	})
	if failed.parts[0].leaderEpoch <= mt.Partitions[0].LeaderEpoch {
		t.Fatalf("leader epoch %d after the failover, %d before", failed.parts[0].leaderEpoch, mt.Partitions[0].LeaderEpoch)
	}
	before := count()
	waitFor(t, "records after the failover", func() bool { return count() >= before+200 })
	acked := prod.stop()
	got := checkReadBackOnce(t, []string{live[0].Addr(), live[1].Addr()}, topic, 0, acked)
	// The two survivors converge to identical logs.
	var ps []*Partition
	for _, b := range live {
		ps = append(ps, b.replicas.partition(mt.ID, 0))
	}
	waitFor(t, "survivors to converge", func() bool {
		return ps[0].log.EndOffset() == ps[1].log.EndOffset() && ps[0].HighWatermark() == ps[1].HighWatermark()
	})
	if !bytes.Equal(localLogBytes(t, ps[0]), localLogBytes(t, ps[1])) {
		t.Fatal("surviving replica logs differ")
	}
	t.Logf("acknowledged %d (%d after the failover), consumed %d; leader stop → acks=all again: %v",
		len(acked), len(acked)-before, len(got), failover.Round(time.Millisecond))
}

var benchTopicSeq atomic.Int64

// BenchmarkReplicatedProduce: acks=all produce throughput with replication factor 1 and 3 on a
// 3-broker in-process cluster (1 KiB records, 4 partitions, linger 1 ms), for the RF3/RF1 ratio.
func BenchmarkReplicatedProduce(b *testing.B) {
	brokers := startReplCluster(b, 3)
	seeds := brokerAddrs(brokers)
	adm := kadmFor(b, seeds)
	for _, rf := range []int16{1, 3} {
		b.Run(fmt.Sprintf("rf=%d", rf), func(b *testing.B) {
			topic := fmt.Sprintf("bench-rf%d-%d", rf, benchTopicSeq.Add(1))
			if resp, err := adm.CreateTopic(context.Background(), 4, rf, nil, topic); err != nil || resp.Err != nil {
				b.Fatalf("create: %v %v", err, resp.Err)
			}
			cl, err := kgo.NewClient(kgo.SeedBrokers(seeds...), kgo.DefaultProduceTopic(topic),
				kgo.ProducerLinger(time.Millisecond), kgo.RecordPartitioner(kgo.RoundRobinPartitioner()))
			if err != nil {
				b.Fatal(err)
			}
			defer cl.Close()
			val := make([]byte, 1024)
			// Warm up metadata and producer ids outside the timing.
			if err := cl.ProduceSync(context.Background(), &kgo.Record{Value: val}).FirstErr(); err != nil {
				b.Fatal(err)
			}
			b.SetBytes(int64(len(val)))
			b.ResetTimer()
			var wg sync.WaitGroup
			var failed error
			var mu sync.Mutex
			for i := 0; i < b.N; i++ {
				wg.Add(1)
				cl.Produce(context.Background(), &kgo.Record{Value: val}, func(_ *kgo.Record, err error) {
					defer wg.Done()
					if err != nil {
						mu.Lock()
						failed = err
						mu.Unlock()
					}
				})
			}
			wg.Wait()
			if failed != nil {
				b.Fatal(failed)
			}
		})
	}
}

// Controlled shutdown (SIGTERM → Broker.Close with other brokers live): the closing leader fences
// itself through meta before its listener stops, so its leaderships move to in-sync replicas at
// once. The session timeout (60 s) and heartbeat interval (20 s) are long enough that neither session
// expiry nor the controller's dead-process probe can explain the move; an idempotent acks=all
// producer keeps going, and every acknowledged record is read back once, in order.
func TestControlledShutdownMovesLeadership(t *testing.T) {
	if testing.Short() {
		t.Skip("starts three brokers")
	}
	brokers, _ := startTestCluster(t, 3, func(cfg *Config) {
		cfg.ReplicaLagTimeMaxMs = 1500
		cfg.MetaConfig = fastClusterMeta(60*time.Second, 20*time.Second)
	})
	seeds := brokerAddrs(brokers)
	const topic = "controlled"
	two := "2"
	if resp, err := kadmFor(t, seeds).CreateTopic(testCtx(t), 3, 3, map[string]*string{"min.insync.replicas": &two}, topic); err != nil || resp.Err != nil {
		t.Fatalf("create: %v %v", err, resp.Err)
	}
	cl, err := kgo.NewClient(kgo.SeedBrokers(seeds...), kgo.DefaultProduceTopic(topic),
		kgo.ProducerLinger(time.Millisecond), kgo.RecordDeliveryTimeout(30*time.Second),
		kgo.RecordPartitioner(kgo.ManualPartitioner()), kgo.MetadataMinAge(250*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	prod := startSyncProducer(cl, 0)
	count := prod.count
	waitFor(t, "records before the shutdown", func() bool { return count() >= 100 })

	mt, _ := brokers[0].meta.State().Topic(topic)
	victimID := mt.Partitions[0].Leader
	var victim, watch *Broker
	for _, b := range brokers {
		if b.cfg.NodeID == victimID {
			victim = b
		} else {
			watch = b
		}
	}
	led := 0
	for _, p := range mt.Partitions {
		if p.Leader == victimID {
			led++
		}
	}
	if err := victim.Close(); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the closed broker fenced and its leaderships moved", func() bool {
		if br, ok := watch.meta.State().Broker(victimID); !ok || !br.Fenced {
			return false
		}
		mt, _ := watch.meta.State().Topic(topic)
		for _, p := range mt.Partitions {
			if p.Leader == victimID || p.Leader < 0 || slices.Contains(p.ISR, victimID) {
				return false
			}
		}
		return true
	})
	var live []string
	for _, b := range brokers {
		if b != victim {
			live = append(live, b.Addr())
		}
	}
	// Issue 5: both survivors' Metadata agree: no partition led by the closed broker, none with
	// it in the ISR, and it is not listed.
	newMetadataWatch(t, topic, live...).waitAgreed(t, "the survivors' Metadata after the controlled shutdown", func(v metadataView) bool {
		for _, p := range v.parts {
			if p.leader < 0 || p.leader == victimID || slices.Contains(p.isr, victimID) {
				return false
			}
		}
		return len(v.brokers) == 2 && len(v.parts) == 3
	})
	before := count()
	waitFor(t, "acks=all after the shutdown", func() bool { return count() >= before+100 })
	acked := prod.stop()
	checkReadBackOnce(t, live, topic, 0, acked)
	t.Logf("broker %d led %d of 3 partitions; acknowledged %d (%d after the shutdown), none lost", victimID, led, len(acked), len(acked)-before)
}

// syncProducer produces records "000000", "000001", … one at a time (ProduceSync) to a partition
// until stopped, remembering which were acknowledged.
type syncProducer struct {
	mu    sync.Mutex
	acked []int
	quit  chan struct{}
	done  chan struct{}
}

func startSyncProducer(cl *kgo.Client, partition int32) *syncProducer {
	sp := &syncProducer{quit: make(chan struct{}), done: make(chan struct{})}
	go func() {
		defer close(sp.done)
		for i := 0; ; i++ {
			select {
			case <-sp.quit:
				return
			default:
			}
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			err := cl.ProduceSync(ctx, &kgo.Record{Partition: partition, Value: []byte(fmt.Sprintf("%06d", i))}).FirstErr()
			cancel()
			if err == nil {
				sp.mu.Lock()
				sp.acked = append(sp.acked, i)
				sp.mu.Unlock()
			}
		}
	}()
	return sp
}

func (sp *syncProducer) count() int { sp.mu.Lock(); defer sp.mu.Unlock(); return len(sp.acked) }

// stop ends the producer and returns the acknowledged record numbers, in order.
func (sp *syncProducer) stop() []int {
	close(sp.quit)
	<-sp.done
	return sp.acked
}

// checkReadBackOnce consumes the partition from the start through seeds and fails unless every
// acknowledged record is there exactly once and in produce order (unacknowledged retries may
// have landed too). It returns the record numbers read.
func checkReadBackOnce(t *testing.T, seeds []string, topic string, partition int32, acked []int) []int {
	t.Helper()
	cons, err := kgo.NewClient(kgo.SeedBrokers(seeds...), kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{
		topic: {partition: kgo.NewOffset().AtStart()}}))
	if err != nil {
		t.Fatal(err)
	}
	defer cons.Close()
	var got []int
	seen := map[int]bool{}
	last := -1
	ctx := testCtx(t)
	for len(got) < len(acked) {
		fs := cons.PollFetches(ctx)
		if ctx.Err() != nil {
			t.Fatalf("consumed %d of %d acknowledged", len(got), len(acked))
		}
		for _, r := range fs.Records() {
			var v int
			fmt.Sscanf(string(r.Value), "%d", &v)
			if seen[v] || v <= last {
				t.Fatalf("record %d twice or out of order (after %d)", v, last)
			}
			seen[v], last = true, v
			got = append(got, v)
		}
	}
	for _, v := range acked {
		if !seen[v] {
			t.Fatalf("acknowledged record %d lost", v)
		}
	}
	return got
}

// KIP-903 across a real restart: a follower stops, loses its copy of the partition, and starts
// again (a new registration, a new broker epoch). The leader still holds what the previous process
// told it (its log end, caught up a moment ago): that evidence must not put the empty replica back
// into the ISR. While the new process cannot fetch, it stays out of the ISR over several ISR checks;
// a fetch carrying the previous incarnation's epoch is NOT_LEADER_OR_FOLLOWER; once it can fetch it
// copies the log, rejoins the ISR at its new epoch, and its log is byte-identical to the leader's.
func TestRestartedEmptyFollowerRejoinsOnlyAfterCatchingUp(t *testing.T) {
	if testing.Short() {
		t.Skip("starts three brokers")
	}
	var blocked atomic.Int32 // a node id whose replica fetches are refused
	hook := func(ctx context.Context, from int32, addr string) (net.Conn, error) {
		if from == blocked.Load() {
			return nil, errors.New("replica fetches cut (test)")
		}
		var d net.Dialer
		return d.DialContext(ctx, "tcp", addr)
	}
	replicaDialHook.Store(&hook)
	defer replicaDialHook.Store(nil)
	const lagMs = 4000 // ISR checks every 2 s; the old evidence stays "caught up" that long
	brokers, cfgs := startTestCluster(t, 3, func(cfg *Config) {
		cfg.ReplicaLagTimeMaxMs = lagMs
		cfg.MetaConfig = fastClusterMeta(2*time.Second, 200*time.Millisecond)
	})
	const topic, n = "restarted", 50
	_, mt := replicatedTopicWithRecords(t, brokers, topic, n)
	leaderID := mt.Partitions[0].Leader
	lb := brokers[leaderID-1]
	lp := lb.replicas.partition(mt.ID, 0)
	fi := int(leaderID) % 3 // a follower
	fid := brokers[fi].cfg.NodeID
	waitFor(t, "the follower to be caught up on the leader", func() bool {
		lp.stateMu.RLock()
		defer lp.stateMu.RUnlock()
		return lp.followerLEO[fid] == n && lp.hw.Load() == n
	})
	oldBr, _ := lb.meta.State().Broker(fid)

	// Stop the follower, wipe its copy, start it again unable to fetch.
	blocked.Store(fid)
	if err := brokers[fi].Close(); err != nil {
		t.Fatal(err)
	}
	dirs, _ := filepath.Glob(filepath.Join(cfgs[fi].DataDir, "logs", topic+"-0.*"))
	if len(dirs) != 1 {
		t.Fatalf("partition dir of the stopped follower: %v", dirs)
	}
	if err := os.RemoveAll(dirs[0]); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	fb, err := Start(ctx, cfgs[fi])
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { fb.Close() })
	isrHas := func() bool {
		mt, _ := lb.meta.State().Topic(topic)
		return slices.Contains(mt.Partitions[0].ISR, fid)
	}
	var newBr meta.Broker
	waitFor(t, "the leader to see the new registration", func() bool {
		newBr, _ = lb.meta.State().Broker(fid)
		return newBr.Epoch != oldBr.Epoch && !newBr.Fenced && !isrHas()
	})
	// Several ISR checks pass; the leader's old evidence would call the empty replica caught up.
	for end := time.Now().Add(2*lagMs*time.Millisecond + 500*time.Millisecond); time.Now().Before(end); time.Sleep(20 * time.Millisecond) {
		if isrHas() {
			fp := fb.replicas.partition(mt.ID, 0)
			t.Fatalf("the restarted, empty replica %d was put back into the ISR (its log: %v)", fid, fp != nil && fp.log.EndOffset() > 0)
		}
	}
	// The previous incarnation's epoch is fenced by the leader's Fetch handler.
	req := kmsg.NewPtrFetchRequest()
	req.Version = 15
	req.ReplicaState.ID, req.ReplicaState.Epoch = fid, oldBr.Epoch
	req.SessionEpoch = -1
	rt := kmsg.NewFetchRequestTopic()
	rt.TopicID = mt.ID
	rp := kmsg.NewFetchRequestTopicPartition()
	rp.FetchOffset, rp.CurrentLeaderEpoch, rp.PartitionMaxBytes = n, -1, 1<<20
	rt.Partitions = append(rt.Partitions, rp)
	req.Topics = append(req.Topics, rt)
	resp := callAPI[*kmsg.FetchResponse](t, lb, req)
	if len(resp.Topics) != 1 || len(resp.Topics[0].Partitions) != 1 || resp.Topics[0].Partitions[0].ErrorCode != kerr.NotLeaderForPartition.Code {
		t.Fatalf("fetch at the previous incarnation's epoch: %+v, want NOT_LEADER_OR_FOLLOWER", resp.Topics)
	}

	// Let it fetch: it copies the log and only then rejoins, at its new epoch.
	blocked.Store(-1)
	var fp *Partition
	waitFor(t, "the restarted replica to rejoin the ISR", func() bool {
		if !isrHas() {
			return false
		}
		fp = fb.replicas.partition(mt.ID, 0)
		if fp == nil || fp.log.EndOffset() < n {
			t.Fatalf("replica %d back in the ISR with %v of %d records", fid, fp != nil && fp.log.EndOffset() > 0, n)
		}
		return true
	})
	lp.stateMu.RLock()
	seen := lp.followerEpoch[fid]
	lp.stateMu.RUnlock()
	if seen != newBr.Epoch {
		t.Fatalf("leader saw epoch %d in the follower's fetches, want its new registration %d", seen, newBr.Epoch)
	}
	waitFor(t, "byte-identical logs", func() bool { return fp.log.EndOffset() == lp.log.EndOffset() })
	if !bytes.Equal(localLogBytes(t, fp), localLogBytes(t, lp)) {
		t.Fatal("the restarted replica's log differs from the leader's")
	}
}

// HW checkpoint (Kafka's replication-offset-checkpoint): a follower restarted cleanly reports the
// HW it had before anything from the leader reaches it (its replica fetches are cut here), instead
// of starting over at its log start; it then follows the leader's HW as before.
func TestRestartedFollowerKeepsItsHighWatermark(t *testing.T) {
	if testing.Short() {
		t.Skip("starts three brokers")
	}
	var blocked atomic.Int32
	blocked.Store(-1)
	hook := func(ctx context.Context, from int32, addr string) (net.Conn, error) {
		if from == blocked.Load() {
			return nil, errors.New("replica fetches cut (test)")
		}
		var d net.Dialer
		return d.DialContext(ctx, "tcp", addr)
	}
	replicaDialHook.Store(&hook)
	defer replicaDialHook.Store(nil)
	brokers, cfgs := startReplClusterConfigs(t, 3)
	const topic, n = "hwck", 30
	cl, mt := replicatedTopicWithRecords(t, brokers, topic, n)
	leaderID := mt.Partitions[0].Leader
	fi := int(leaderID) % 3
	fid := brokers[fi].cfg.NodeID
	waitFor(t, "every replica's HW at the end", func() bool {
		for _, b := range brokers {
			if p := b.replicas.partition(mt.ID, 0); p == nil || p.HighWatermark() != n {
				return false
			}
		}
		return true
	})
	// The periodic write (a crash keeps what it wrote last), then the one on Close.
	waitFor(t, "the follower's periodic HW checkpoint", func() bool {
		ck, err := readHWCheckpoint(filepath.Join(cfgs[fi].DataDir, "logs"))
		return err == nil && ck[partitionKey{mt.ID, 0}] == n
	})
	blocked.Store(fid)
	if err := brokers[fi].Close(); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	fb, err := Start(ctx, cfgs[fi])
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { fb.Close() })
	fp := fb.replicas.partition(mt.ID, 0)
	if fp == nil {
		t.Fatal("the restarted follower holds no replica")
	}
	if hw, end := fp.HighWatermark(), fp.log.EndOffset(); hw != n || end != n {
		t.Fatalf("restarted follower: HW %d, log end %d; want the HW it had (%d)", hw, end, n)
	}
	// It follows the leader's HW again once it can fetch.
	blocked.Store(-1)
	if err := cl.ProduceSync(testCtx(t), &kgo.Record{Value: []byte("after")}).FirstErr(); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the restarted follower to follow the leader's HW", func() bool { return fp.HighWatermark() == n+1 })
}

// replicatedTopicWithRecords creates a one-partition topic with replication factor 3 (uploads off)
// on brokers, produces n records "r0".."r<n-1>" with acks=all and returns the producing client
// (closed at cleanup) and the topic as meta had it after the produce.
func replicatedTopicWithRecords(t *testing.T, brokers []*Broker, topic string, n int) (*kgo.Client, *meta.Topic) {
	t.Helper()
	seeds := brokerAddrs(brokers)
	off := "false"
	if resp, err := kadmFor(t, seeds).CreateTopic(testCtx(t), 1, 3, map[string]*string{"remote.storage.enable": &off}, topic); err != nil || resp.Err != nil {
		t.Fatalf("create: %v %v", err, resp.Err)
	}
	cl, err := kgo.NewClient(kgo.SeedBrokers(seeds...), kgo.DefaultProduceTopic(topic), kgo.MetadataMinAge(250*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cl.Close)
	for i := 0; i < n; i++ {
		if err := cl.ProduceSync(testCtx(t), &kgo.Record{Value: []byte(fmt.Sprint("r", i))}).FirstErr(); err != nil {
			t.Fatal(err)
		}
	}
	mt, _ := brokers[0].meta.State().Topic(topic)
	return cl, mt
}
