package broker

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// fetchLinkCut cuts single replica-fetch links (follower → leader's Kafka address) and nothing
// else: Raft, heartbeats and forwarded proposals keep flowing, so the follower stays alive and
// registered in meta while it can no longer copy the log. It is installed as replicaDialHook.
type fetchLinkCut struct {
	mu    sync.Mutex
	cut   map[fetchLink]bool
	conns map[fetchLink][]net.Conn
}

type fetchLink struct {
	from int32  // the fetching broker
	to   string // the leader's Kafka address
}

var errFetchLinkCut = errors.New("replica fetch link cut (test)")

func newFetchLinkCut() *fetchLinkCut {
	return &fetchLinkCut{cut: map[fetchLink]bool{}, conns: map[fetchLink][]net.Conn{}}
}

func (fc *fetchLinkCut) dial(ctx context.Context, from int32, addr string) (net.Conn, error) {
	l := fetchLink{from, addr}
	fc.mu.Lock()
	cut := fc.cut[l]
	fc.mu.Unlock()
	if cut {
		return nil, errFetchLinkCut
	}
	var d net.Dialer
	c, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return nil, err
	}
	fc.mu.Lock()
	defer fc.mu.Unlock()
	if fc.cut[l] { // cut while dialing
		c.Close()
		return nil, errFetchLinkCut
	}
	fc.conns[l] = append(fc.conns[l], c)
	return c, nil
}

// sever refuses new replica fetch connections from node from to addr and closes the open ones
// (an in-flight fetch fails at once).
func (fc *fetchLinkCut) sever(from int32, addr string) {
	l := fetchLink{from, addr}
	fc.mu.Lock()
	defer fc.mu.Unlock()
	fc.cut[l] = true
	for _, c := range fc.conns[l] {
		c.Close()
	}
	delete(fc.conns, l)
}

func (fc *fetchLinkCut) heal(from int32, addr string) {
	fc.mu.Lock()
	defer fc.mu.Unlock()
	delete(fc.cut, fetchLink{from, addr})
}

// metadataView is one broker's Metadata answer for one topic, reduced to what every broker must
// agree on: the live brokers it lists and, per partition, the error, leader, leader epoch,
// replicas (in order: the first is the preferred leader) and ISR (as a set).
type metadataView struct {
	brokers []int32
	parts   []partitionView // by partition index
}

type partitionView struct {
	err         int16
	leader      int32
	leaderEpoch int32
	replicas    []int32
	isr         []int32 // sorted
}

func (v metadataView) String() string {
	var sb strings.Builder
	fmt.Fprintf(&sb, "brokers %v", v.brokers)
	for i, p := range v.parts {
		fmt.Fprintf(&sb, "; p%d err %d leader %d epoch %d replicas %v isr %v", i, p.err, p.leader, p.leaderEpoch, p.replicas, p.isr)
	}
	return sb.String()
}

func (v metadataView) equal(w metadataView) bool {
	return slices.Equal(v.brokers, w.brokers) && slices.EqualFunc(v.parts, w.parts, func(a, b partitionView) bool {
		return a.err == b.err && a.leader == b.leader && a.leaderEpoch == b.leaderEpoch &&
			slices.Equal(a.replicas, b.replicas) && slices.Equal(a.isr, b.isr)
	})
}

// metadataWatch asks each of a set of brokers itself (one client per broker, each seeded with
// that broker only, so no client-side routing) for Metadata on one topic.
type metadataWatch struct {
	topic string
	addrs []string
	cls   []*kgo.Client
}

func newMetadataWatch(t *testing.T, topic string, addrs ...string) *metadataWatch {
	t.Helper()
	mw := &metadataWatch{topic: topic, addrs: addrs}
	for _, a := range addrs {
		cl, err := kgo.NewClient(kgo.SeedBrokers(a))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(cl.Close)
		mw.cls = append(mw.cls, cl)
	}
	return mw
}

// views returns every broker's view (an error if one could not answer).
func (mw *metadataWatch) views() ([]metadataView, error) {
	out := make([]metadataView, len(mw.cls))
	for i, cl := range mw.cls {
		req := kmsg.NewPtrMetadataRequest()
		rt := kmsg.NewMetadataRequestTopic()
		rt.Topic = kmsg.StringPtr(mw.topic)
		req.Topics = append(req.Topics, rt)
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		resp, err := cl.SeedBrokers()[0].Request(ctx, req)
		cancel()
		if err != nil {
			return nil, fmt.Errorf("metadata from %s: %w", mw.addrs[i], err)
		}
		mr := resp.(*kmsg.MetadataResponse)
		var v metadataView
		for _, b := range mr.Brokers {
			v.brokers = append(v.brokers, b.NodeID)
		}
		slices.Sort(v.brokers)
		if len(mr.Topics) != 1 {
			return nil, fmt.Errorf("metadata from %s: %d topics", mw.addrs[i], len(mr.Topics))
		}
		mt := mr.Topics[0]
		if mt.ErrorCode != 0 {
			return nil, fmt.Errorf("metadata from %s: %v", mw.addrs[i], kerr.ErrorForCode(mt.ErrorCode))
		}
		v.parts = make([]partitionView, len(mt.Partitions))
		for _, p := range mt.Partitions {
			if p.Partition < 0 || int(p.Partition) >= len(v.parts) {
				return nil, fmt.Errorf("metadata from %s: partition %d of %d", mw.addrs[i], p.Partition, len(mt.Partitions))
			}
			isr := slices.Clone(p.ISR)
			slices.Sort(isr)
			v.parts[p.Partition] = partitionView{err: p.ErrorCode, leader: p.Leader, leaderEpoch: p.LeaderEpoch,
				replicas: slices.Clone(p.Replicas), isr: isr}
		}
		out[i] = v
	}
	return out, nil
}

// agreed returns the view every broker gives, or false (and what differs) when they differ.
func (mw *metadataWatch) agreed() (metadataView, string, bool) {
	vs, err := mw.views()
	if err != nil {
		return metadataView{}, err.Error(), false
	}
	for i := 1; i < len(vs); i++ {
		if !vs[i].equal(vs[0]) {
			return metadataView{}, fmt.Sprintf("%s says {%v}, %s says {%v}", mw.addrs[0], vs[0], mw.addrs[i], vs[i]), false
		}
	}
	return vs[0], "", true
}

// waitAgreed waits until every broker gives the same Metadata and that view satisfies want
// (what it waits for, e.g. the ISR after a fault), and returns it. A timeout reports the last
// disagreement or the last agreed view.
func (mw *metadataWatch) waitAgreed(t *testing.T, what string, want func(metadataView) bool) metadataView {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		v, diff, ok := mw.agreed()
		if ok && want(v) {
			return v
		}
		if time.Now().After(deadline) {
			if ok {
				t.Fatalf("timed out waiting for %s: every broker says {%v}", what, v)
			}
			t.Fatalf("timed out waiting for %s: the brokers disagree: %s", what, diff)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func sortedIDs(ids ...int32) []int32 {
	s := slices.Clone(ids)
	slices.Sort(s)
	return s
}

// cutCluster starts three brokers (replica.lag.time.max.ms 1.5 s; 2 s broker session, 200 ms
// heartbeats) with fc as the replica fetch dialer, and creates topic (RF 3, the given
// min.insync.replicas, no tiering); it returns the brokers and their addresses once every
// broker's Metadata agrees on a leader and a full ISR for every partition.
func cutCluster(t *testing.T, fc *fetchLinkCut, topic string, partitions int32, minISR string) ([]*Broker, []string, *metadataWatch) {
	t.Helper()
	hook := fc.dial
	replicaDialHook.Store(&hook)
	t.Cleanup(func() { replicaDialHook.Store(nil) })
	brokers := startReplCluster(t, 3)
	seeds := brokerAddrs(brokers)
	off := "false"
	if resp, err := kadmFor(t, seeds).CreateTopic(testCtx(t), partitions, 3,
		map[string]*string{"min.insync.replicas": &minISR, "remote.storage.enable": &off}, topic); err != nil || resp.Err != nil {
		t.Fatalf("create: %v %v", err, resp.Err)
	}
	mw := newMetadataWatch(t, topic, seeds...)
	mw.waitAgreed(t, "leaders and full ISRs", func(v metadataView) bool {
		for _, p := range v.parts {
			if p.leader < 0 || len(p.isr) != 3 {
				return false
			}
		}
		return len(v.brokers) == 3 && len(v.parts) == int(partitions)
	})
	return brokers, seeds, mw
}

// roles picks the partition's leader and one follower (x, the one to cut off) and the other (y).
func roles(t *testing.T, brokers []*Broker, v metadataView) (leader, x, y *Broker) {
	t.Helper()
	for _, b := range brokers {
		switch {
		case b.cfg.NodeID == v.parts[0].leader:
			leader = b
		case x == nil:
			x = b
		default:
			y = b
		}
	}
	if leader == nil || x == nil || y == nil {
		t.Fatalf("no leader among the brokers: %v", v)
	}
	return leader, x, y
}

// sameLogs waits until the three replicas have one log end and checks their logs byte for byte.
func sameLogs(t *testing.T, ps []*Partition) {
	t.Helper()
	waitFor(t, "replicas at one log end", func() bool {
		return ps[0].log.EndOffset() == ps[1].log.EndOffset() && ps[1].log.EndOffset() == ps[2].log.EndOffset()
	})
	ref := localLogBytes(t, ps[0])
	for i, q := range ps[1:] {
		if !bytes.Equal(ref, localLogBytes(t, q)) {
			t.Fatalf("replica %d's log differs from replica 0's (%d vs %d bytes)", i+1, len(localLogBytes(t, q)), len(ref))
		}
	}
}

// A follower whose replica fetches to one leader are cut — only that link: it stays alive,
// heartbeating and registered in meta — leaves the ISR of that leader's partitions within about
// replica.lag.time.max.ms; with min.insync.replicas=2 acks=all produce goes on there with the
// leader and the other follower while the cut follower's copy does not move. The partitions other
// brokers lead keep their full ISR (the follower fetches from each leader independently) and keep
// acknowledging. After the link heals the follower catches up and rejoins. After the shrink and
// after the rejoin every broker's Metadata agrees (leaders, leader epochs, replicas, ISRs,
// brokers); no leadership changes; every acknowledged record is read back once, in order, per
// partition; every partition's three logs are byte-identical.
func TestFollowerCutOffLeavesISRAndRejoins(t *testing.T) {
	if testing.Short() {
		t.Skip("starts three brokers")
	}
	fc := newFetchLinkCut()
	const topic, partitions = "cut", 3
	brokers, seeds, mw := cutCluster(t, fc, topic, partitions, "2")
	cl, err := kgo.NewClient(kgo.SeedBrokers(seeds...), kgo.DefaultProduceTopic(topic),
		kgo.ProducerLinger(time.Millisecond), kgo.RecordDeliveryTimeout(30*time.Second),
		kgo.RecordPartitioner(kgo.ManualPartitioner()), kgo.MetadataMinAge(250*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	var prods []*syncProducer
	for i := int32(0); i < partitions; i++ {
		prods = append(prods, startSyncProducer(cl, i))
	}
	defer func() {
		// Closing the client first fails the producers' pending records: an idempotent record
		// already sent is never failed by its delivery timeout, and a failed test may leave
		// one waiting for an acknowledgement that cannot come.
		cl.Close()
		for _, sp := range prods {
			select {
			case <-sp.quit:
			default:
				sp.stop()
			}
		}
	}()
	counts := func() []int {
		var c []int
		for _, sp := range prods {
			c = append(c, sp.count())
		}
		return c
	}
	// each waits until every partition has n more acknowledgements than at base.
	each := func(what string, base []int, n int) {
		t.Helper()
		waitFor(t, what, func() bool {
			for i, c := range counts() {
				if c < base[i]+n {
					return false
				}
			}
			return true
		})
	}
	each("acks=all on every partition before the cut", make([]int, partitions), 50)

	start, _, _ := mw.agreed()
	if len(start.parts) != partitions {
		t.Fatalf("before the cut: %v", start)
	}
	leader, x, y := roles(t, brokers, start)
	lid, xid, yid := leader.cfg.NodeID, x.cfg.NodeID, y.cfg.NodeID
	mt, _ := leader.meta.State().Topic(topic)
	replicas := func(i int32) []*Partition {
		return []*Partition{leader.replicas.partition(mt.ID, i), x.replicas.partition(mt.ID, i), y.replicas.partition(mt.ID, i)}
	}
	var cut []int32 // the partitions the cut link's leader leads
	for i, p := range start.parts {
		if p.leader == lid {
			cut = append(cut, int32(i))
		}
	}

	fc.sever(xid, leader.Addr())
	cutAt := time.Now()
	ackedAtCut := counts()
	shrunk := mw.waitAgreed(t, fmt.Sprintf("follower %d out of broker %d's ISRs on every broker", xid, lid), func(v metadataView) bool {
		for _, p := range v.parts {
			if p.leader == lid && !slices.Equal(p.isr, sortedIDs(lid, yid)) {
				return false
			}
		}
		return true
	})
	shrinkAfter := time.Since(cutAt)
	for i, p := range shrunk.parts {
		s := start.parts[i]
		if p.leader != s.leader || p.leaderEpoch != s.leaderEpoch || !slices.Equal(p.replicas, s.replicas) {
			t.Fatalf("the ISR shrink changed more than the ISR: before {%v}, after {%v}", start, shrunk)
		}
		if p.leader != lid && len(p.isr) != 3 {
			t.Fatalf("partition %d (led by %d, not behind the cut link) lost ISR members: {%v}", i, p.leader, shrunk)
		}
	}
	if !slices.Equal(shrunk.brokers, sortedIDs(1, 2, 3)) {
		t.Fatalf("follower %d is alive and registered but Metadata lists brokers %v", xid, shrunk.brokers)
	}
	for _, b := range brokers {
		if br, ok := b.meta.State().Broker(xid); !ok || br.Fenced {
			t.Fatalf("broker %d sees the cut-off follower %d fenced (only its replica fetches are cut)", b.cfg.NodeID, xid)
		}
	}

	// acks=all goes on everywhere: with ISR {leader, y} = min.insync.replicas behind the cut link,
	// with the full ISR elsewhere; the cut follower's copies behind the cut link stand still.
	xEnd := map[int32]int64{}
	for _, i := range cut {
		xEnd[i] = replicas(i)[1].log.EndOffset()
	}
	each("acks=all on every partition with the follower cut off", counts(), 100)
	for _, i := range cut {
		ps := replicas(i)
		if end := ps[1].log.EndOffset(); end != xEnd[i] {
			t.Fatalf("partition %d: the cut-off follower's log moved from %d to %d: the cut leaks", i, xEnd[i], end)
		}
		if lend, yend := ps[0].log.EndOffset(), ps[2].log.EndOffset(); lend <= xEnd[i] || yend <= xEnd[i] {
			t.Fatalf("partition %d: leader log end %d, follower %d's %d, cut-off follower's %d: no progress without it", i, lend, yid, yend, xEnd[i])
		}
	}

	fc.heal(xid, leader.Addr())
	healedAt := time.Now()
	rejoined := mw.waitAgreed(t, fmt.Sprintf("follower %d back in the ISRs on every broker", xid), func(v metadataView) bool {
		for _, p := range v.parts {
			if len(p.isr) != 3 {
				return false
			}
		}
		return true
	})
	rejoinAfter := time.Since(healedAt)
	for i, p := range rejoined.parts {
		if s := start.parts[i]; p.leader != s.leader || p.leaderEpoch != s.leaderEpoch || !slices.Equal(p.replicas, s.replicas) {
			t.Fatalf("the rejoin changed more than the ISR: before {%v}, after {%v}", start, rejoined)
		}
	}
	for _, i := range cut {
		if end := replicas(i)[1].log.EndOffset(); end <= xEnd[i] {
			t.Fatalf("partition %d: follower %d rejoined the ISR at log end %d, where it was cut off", i, xid, end)
		}
	}
	// Still acknowledged with the full ISRs again.
	ackedAtRejoin := counts()
	each("acks=all on every partition after the rejoin", ackedAtRejoin, 50)
	total := 0
	for i, sp := range prods {
		acked := sp.stop()
		total += len(acked)
		sameLogs(t, replicas(int32(i)))
		checkReadBackOnce(t, seeds, topic, int32(i), acked)
	}
	final := mw.waitAgreed(t, "every broker's Metadata at the end", func(v metadataView) bool {
		for _, p := range v.parts {
			if len(p.isr) != 3 {
				return false
			}
		}
		return true
	})
	for i, p := range final.parts {
		if p.leader != start.parts[i].leader || p.leaderEpoch != start.parts[i].leaderEpoch {
			t.Fatalf("leadership changed during the test: before {%v}, at the end {%v}", start, final)
		}
	}
	t.Logf("follower %d cut from leader %d (partitions %v of %d): out of those ISRs after %v (replica.lag.time.max.ms %d), acks per partition at the cut %v, at the rejoin %v; back %v after healing; %d acknowledged, all read back once, logs identical",
		xid, lid, cut, partitions, shrinkAfter.Round(time.Millisecond), leader.cfg.ReplicaLagTimeMaxMs, ackedAtCut, ackedAtRejoin,
		rejoinAfter.Round(time.Millisecond), total)
}

// rawProducer sends acks=all Produce requests straight to one broker (no client retries, no
// rerouting), one record per request, valued "000000", "000001", … in send order.
type rawProducer struct {
	t     *testing.T
	cl    *kgo.Client
	topic string
	id    [16]byte
	next  int
	acked []int
}

func newRawProducer(t *testing.T, addr, topic string, id [16]byte) *rawProducer {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(addr))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cl.Close)
	return &rawProducer{t: t, cl: cl, topic: topic, id: id}
}

// produce sends the next record with a 1 s acks timeout and returns the partition's error code.
func (rp *rawProducer) produce() int16 {
	rp.t.Helper()
	return rp.produceWithin(1000)
}

// produceWithin is produce with the given acks timeout (Produce TimeoutMillis).
func (rp *rawProducer) produceWithin(timeoutMs int32) int16 {
	rp.t.Helper()
	n := rp.next
	rp.next++
	req := kmsg.NewPtrProduceRequest()
	req.Acks = -1
	req.TimeoutMillis = timeoutMs
	rt := kmsg.NewProduceRequestTopic()
	rt.Topic, rt.TopicID = rp.topic, rp.id // v13 names topics by id
	pp := kmsg.NewProduceRequestTopicPartition()
	pp.Partition = 0
	pp.Records = testBatch(rp.t, testBatchOpts{ts: time.Now().UnixMilli(), value: []byte(fmt.Sprintf("%06d", n))})
	rt.Partitions = append(rt.Partitions, pp)
	req.Topics = append(req.Topics, rt)
	ctx, cancel := context.WithTimeout(context.Background(), time.Duration(timeoutMs)*time.Millisecond+10*time.Second)
	defer cancel()
	resp, err := rp.cl.SeedBrokers()[0].Request(ctx, req)
	if err != nil {
		rp.t.Fatalf("produce %d: %v", n, err)
	}
	code := resp.(*kmsg.ProduceResponse).Topics[0].Partitions[0].ErrorCode
	if code == 0 {
		rp.acked = append(rp.acked, n)
	}
	return code
}

// readBackTo consumes the partition from the start up to offset end (exclusive) and fails unless
// the record numbers increase strictly (nothing twice, nothing reordered) and every acknowledged
// number is there. Records that were appended but not acknowledged may be there too.
func readBackTo(t *testing.T, seeds []string, topic string, end int64, acked []int) {
	t.Helper()
	cons, err := kgo.NewClient(kgo.SeedBrokers(seeds...), kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{
		topic: {0: kgo.NewOffset().AtStart()}}))
	if err != nil {
		t.Fatal(err)
	}
	defer cons.Close()
	seen := map[int]bool{}
	last, next := -1, int64(0)
	ctx := testCtx(t)
	for next < end {
		fs := cons.PollFetches(ctx)
		if ctx.Err() != nil {
			t.Fatalf("consumed up to offset %d of %d", next, end)
		}
		for _, r := range fs.Records() {
			var v int
			if _, err := fmt.Sscanf(string(r.Value), "%d", &v); err != nil || v <= last {
				t.Fatalf("offset %d: record %q after %d", r.Offset, r.Value, last)
			}
			seen[v], last, next = true, v, r.Offset+1
		}
	}
	for _, v := range acked {
		if !seen[v] {
			t.Fatalf("acknowledged record %d lost", v)
		}
	}
}

// With min.insync.replicas=3 on RF 3 the same follower-only cut stops acks=all: a produce in
// flight at the cut is appended but never acknowledged — the high watermark waits for the cut
// follower, and once the follower has left the ISR the answer is NOT_ENOUGH_REPLICAS_AFTER_APPEND;
// from then on Produce is refused with NOT_ENOUGH_REPLICAS before anything is appended (the
// leader's log does not grow). After the link heals the follower rejoins, every broker's Metadata
// agrees on the full ISR, acks=all succeeds again, every acknowledged record is read back once and
// in order, and the logs are byte-identical.
func TestFollowerCutOffBelowMinISRRefusesAcksAll(t *testing.T) {
	if testing.Short() {
		t.Skip("starts three brokers")
	}
	fc := newFetchLinkCut()
	const topic = "cut3"
	brokers, seeds, mw := cutCluster(t, fc, topic, 1, "3")
	start, _, _ := mw.agreed()
	leader, x, y := roles(t, brokers, start)
	lid, xid, yid := leader.cfg.NodeID, x.cfg.NodeID, y.cfg.NodeID
	mt, _ := leader.meta.State().Topic(topic)
	lp, xp, yp := leader.replicas.partition(mt.ID, 0), x.replicas.partition(mt.ID, 0), y.replicas.partition(mt.ID, 0)
	rp := newRawProducer(t, leader.Addr(), topic, mt.ID)
	for i := 0; i < 20; i++ {
		if code := rp.produce(); code != 0 {
			t.Fatalf("acks=all with the full ISR: %s", codeName(code))
		}
	}
	ackedBefore := len(rp.acked)

	fc.sever(xid, leader.Addr())
	// A produce sent right after the cut is appended and waits for the high watermark, which
	// waits for the cut follower while it is in the ISR. When the ISR shrinks the HW passes the
	// record with fewer in-sync replicas than min.insync.replicas: NOT_ENOUGH_REPLICAS_AFTER_APPEND
	// (Kafka's checkEnoughReplicasReachOffset), not an acknowledgement. Its timeout (20 s) is far
	// longer than replica.lag.time.max.ms (1.5 s), so the shrink, not the timeout, answers it.
	cutAt := time.Now()
	if code := rp.produceWithin(20000); code != kerr.NotEnoughReplicasAfterAppend.Code {
		t.Fatalf("acks=all in flight when follower %d left the ISR (min.insync.replicas 3): %s, want NOT_ENOUGH_REPLICAS_AFTER_APPEND", xid, codeName(code))
	}
	answeredAfter := time.Since(cutAt)
	// From then on the leader refuses before appending.
	if code := rp.produce(); code != kerr.NotEnoughReplicas.Code {
		t.Fatalf("acks=all after follower %d left the ISR (min.insync.replicas 3): %s, want NOT_ENOUGH_REPLICAS", xid, codeName(code))
	}
	shrunk := mw.waitAgreed(t, fmt.Sprintf("follower %d out of the ISR on every broker", xid), func(v metadataView) bool {
		return slices.Equal(v.parts[0].isr, sortedIDs(lid, yid))
	})
	if p := shrunk.parts[0]; p.leader != lid || p.leaderEpoch != start.parts[0].leaderEpoch {
		t.Fatalf("the ISR shrink changed the leadership: before {%v}, after {%v}", start, shrunk)
	}
	// Refused before the append: the leader's log does not grow.
	end := lp.log.EndOffset()
	for i := 0; i < 5; i++ {
		if code := rp.produce(); code != kerr.NotEnoughReplicas.Code {
			t.Fatalf("acks=all with ISR %v < min.insync.replicas 3: %s, want NOT_ENOUGH_REPLICAS", shrunk.parts[0].isr, codeName(code))
		}
	}
	if e := lp.log.EndOffset(); e != end {
		t.Fatalf("NOT_ENOUGH_REPLICAS produces appended: leader log end %d → %d", end, e)
	}
	if len(rp.acked) != ackedBefore {
		t.Fatalf("%d records acknowledged with the follower cut off", len(rp.acked)-ackedBefore)
	}

	fc.heal(xid, leader.Addr())
	rejoined := mw.waitAgreed(t, fmt.Sprintf("follower %d back in the ISR on every broker", xid), func(v metadataView) bool {
		return len(v.parts[0].isr) == 3
	})
	if p := rejoined.parts[0]; p.leader != lid || p.leaderEpoch != start.parts[0].leaderEpoch {
		t.Fatalf("the rejoin changed the leadership: before {%v}, after {%v}", start, rejoined)
	}
	// Meta (what Metadata reports) may list the full ISR a moment before the leader's partition
	// has applied it: NOT_ENOUGH_REPLICAS (nothing appended) until then, success from then on.
	for tries := 0; ; tries++ {
		code := rp.produce()
		if code == 0 {
			break
		}
		if code != kerr.NotEnoughReplicas.Code || tries == 50 {
			t.Fatalf("acks=all after the rejoin (ISR %v), try %d: %s", rejoined.parts[0].isr, tries+1, codeName(code))
		}
		time.Sleep(20 * time.Millisecond)
	}
	for i := 0; i < 20; i++ {
		if code := rp.produce(); code != 0 {
			t.Fatalf("acks=all after the rejoin (ISR %v): %s", rejoined.parts[0].isr, codeName(code))
		}
	}
	sameLogs(t, []*Partition{lp, xp, yp})
	readBackTo(t, seeds, topic, lp.log.EndOffset(), rp.acked)
	t.Logf("follower %d cut from leader %d (min.insync.replicas 3): the produce in flight answered NOT_ENOUGH_REPLICAS_AFTER_APPEND after %v; %d acknowledged (%d before, %d after healing), all read back, logs identical",
		xid, lid, answeredAfter.Round(time.Millisecond), len(rp.acked), ackedBefore, len(rp.acked)-ackedBefore)
}

// A follower that left the ISR because its link to the leader was cut lacks acknowledged records,
// so when the leader then goes away the controller elects the other, in-sync follower — never the
// out-of-sync one, even though it is live and first in the preferred replica order — at a higher
// leader epoch. The out-of-sync follower (its link to the new leader works) copies the log from
// the new leader and rejoins the ISR; acks=all resumes once the ISR is back at
// min.insync.replicas; every record acknowledged before and after the failover is read back once,
// in order, and the two survivors' logs are byte-identical.
func TestOutOfSyncFollowerIsNotElected(t *testing.T) {
	if testing.Short() {
		t.Skip("starts three brokers")
	}
	fc := newFetchLinkCut()
	const topic = "unclean"
	brokers, seeds, mw := cutCluster(t, fc, topic, 1, "2")
	cl, err := kgo.NewClient(kgo.SeedBrokers(seeds...), kgo.DefaultProduceTopic(topic),
		kgo.ProducerLinger(time.Millisecond), kgo.RecordDeliveryTimeout(30*time.Second),
		kgo.RecordPartitioner(kgo.ManualPartitioner()), kgo.MetadataMinAge(250*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	prod := startSyncProducer(cl, 0)
	defer func() {
		cl.Close() // fails pending idempotent records (see TestFollowerCutOffLeavesISRAndRejoins)
		select {
		case <-prod.quit:
		default:
			prod.stop()
		}
	}()
	waitFor(t, "acks=all before the cut", func() bool { return prod.count() >= 50 })
	start, _, _ := mw.agreed()
	// x: the first follower in the preferred replica order, the one an election ignoring the
	// ISR would pick.
	var leader, x, y *Broker
	byID := map[int32]*Broker{}
	for _, b := range brokers {
		byID[b.cfg.NodeID] = b
	}
	leader = byID[start.parts[0].leader]
	for _, r := range start.parts[0].replicas {
		switch {
		case r == leader.cfg.NodeID:
		case x == nil:
			x = byID[r]
		default:
			y = byID[r]
		}
	}
	lid, xid, yid := leader.cfg.NodeID, x.cfg.NodeID, y.cfg.NodeID
	mt, _ := leader.meta.State().Topic(topic)
	xp, yp := x.replicas.partition(mt.ID, 0), y.replicas.partition(mt.ID, 0)

	fc.sever(xid, leader.Addr())
	mw.waitAgreed(t, fmt.Sprintf("follower %d out of the ISR on every broker", xid), func(v metadataView) bool {
		return slices.Equal(v.parts[0].isr, sortedIDs(lid, yid))
	})
	before := prod.count()
	waitFor(t, "acks=all the cut-off follower does not have", func() bool { return prod.count() >= before+100 })
	xEnd := xp.log.EndOffset()
	if yEnd := yp.log.EndOffset(); yEnd <= xEnd {
		t.Fatalf("in-sync follower's log end %d, cut-off follower's %d: nothing to lose", yEnd, xEnd)
	}

	if err := leader.Close(); err != nil {
		t.Fatal(err)
	}
	survivors := newMetadataWatch(t, topic, x.Addr(), y.Addr())
	elected := survivors.waitAgreed(t, "a new leader on both survivors", func(v metadataView) bool {
		if l := v.parts[0].leader; l == xid {
			t.Fatalf("the out-of-sync follower %d (log end %d, in-sync follower at %d) was elected: {%v}", xid, xEnd, yp.log.EndOffset(), v)
		}
		return v.parts[0].leader == yid
	})
	if elected.parts[0].leaderEpoch <= start.parts[0].leaderEpoch {
		t.Fatalf("leader epoch %d after the failover, %d before", elected.parts[0].leaderEpoch, start.parts[0].leaderEpoch)
	}
	rejoined := survivors.waitAgreed(t, fmt.Sprintf("follower %d in the new leader's ISR", xid), func(v metadataView) bool {
		return slices.Equal(v.parts[0].isr, sortedIDs(xid, yid))
	})
	if rejoined.parts[0].leader != yid {
		t.Fatalf("leadership moved again: {%v}", rejoined)
	}
	after := prod.count()
	waitFor(t, "acks=all after the follower rejoined", func() bool { return prod.count() >= after+50 })
	acked := prod.stop()

	waitFor(t, "survivors at one log end", func() bool { return xp.log.EndOffset() == yp.log.EndOffset() })
	if !bytes.Equal(localLogBytes(t, xp), localLogBytes(t, yp)) {
		t.Fatal("the survivors' logs differ")
	}
	checkReadBackOnce(t, []string{x.Addr(), y.Addr()}, topic, 0, acked)
	t.Logf("follower %d cut from leader %d at log end %d; leader closed; elected %d at epoch %d; %d acknowledged (%d by the rejoin), all read back once, logs identical",
		xid, lid, xEnd, yid, elected.parts[0].leaderEpoch, len(acked), after)
}
