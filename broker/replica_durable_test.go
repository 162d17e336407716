package broker

import (
	"context"
	"errors"
	"io"
	"math"
	"net"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/sediment-io/sediment/meta"
	"github.com/sediment-io/sediment/segment"
	"github.com/sediment-io/sediment/segment/vfs"
)

// memReplica opens partition t-0 on fsys as node nodeID (flush policy always) and applies part.
func memReplica(t *testing.T, fsys *vfs.MemFS, nodeID int32, part meta.Partition) *Partition {
	t.Helper()
	sc := segment.DefaultConfig()
	sc.FS = fsys
	tc := TopicConfig{MaxMessageBytes: 1 << 20, SegmentBytes: 64 << 10, TimestampBeforeMaxMs: math.MaxInt64,
		TimestampAfterMaxMs: math.MaxInt64, MinInsyncReplicas: 1, RetentionMs: -1, RetentionBytes: -1}
	p, err := openPartition("/data/logs/t-0.x", "t", meta.TopicID{1}, 0, nodeID, sc, tc)
	if err != nil {
		t.Fatal(err)
	}
	if err := p.setLeadership(part); err != nil {
		t.Fatal(err)
	}
	return p
}

// The fault behind pipelined replication: a follower that has written (not fsynced) what it
// fetched, and says so in its next fetch's offset, must not count toward the high watermark or
// an acks=all answer; only the durable offset it reports does. Its file system then loses every
// unsynced byte (an OS crash): nothing the leader acknowledged is missing from it. With the old
// rule (fetch offset = durable) the HW would have moved to 3 before the crash, past what the
// follower still had afterwards.
func TestUnsyncedFollowerWritesNeverCountTowardHW(t *testing.T) {
	part := meta.Partition{Replicas: []int32{1, 2}, ISR: []int32{1, 2}, Leader: 1, LeaderEpoch: 1}
	leader := memReplica(t, vfs.NewMemFS(), 1, part)
	defer leader.close()
	ffs := vfs.NewMemFS()
	follower := memReplica(t, ffs, 2, part)

	r := leader.appendClient(9, -1, testBatch(t, testBatchOpts{records: 3, ts: time.Now().UnixMilli()}))
	if r.err != nil || r.lastOffset != 2 {
		t.Fatalf("append: %+v", r)
	}
	acked := make(chan int16, 1)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		acked <- leader.waitHW(ctx, r.lastOffset)
	}()

	// The follower's fetch loop: fetch, write without fsync, fetch on at once.
	fetch := func(f *Partition) readResult {
		t.Helper()
		res := leader.readForFollowerAcked(2, f.log.EndOffset(), f.durableEnd(), 1<<20, true)
		if res.err != 0 {
			t.Fatalf("follower fetch: %v", kerr.ErrorForCode(res.err))
		}
		return res
	}
	res := fetch(follower)
	if len(res.data) == 0 {
		t.Fatal("follower fetch returned no records")
	}
	if err := follower.appendFromLeader(res.data, res.hw, res.logStart, 1); err != nil {
		t.Fatal(err)
	}
	if end, d := follower.log.EndOffset(), follower.durableEnd(); end != 3 || d != 0 {
		t.Fatalf("follower after a pipelined append: end %d durable %d, want 3 and 0", end, d)
	}
	fetch(follower) // fetch offset 3, durable offset 0
	leader.stateMu.RLock()
	leo, ackedPos := leader.followerLEO[2], leader.followerAcked[2]
	leader.stateMu.RUnlock()
	if leo != 3 || ackedPos != 0 {
		t.Fatalf("leader's view of the follower: log end %d, acknowledged %d; want 3 and 0", leo, ackedPos)
	}
	if hw := leader.HighWatermark(); hw != 0 {
		t.Fatalf("HW %d counts the follower's unsynced writes", hw)
	}
	select {
	case code := <-acked:
		t.Fatalf("acks=all answered (%d) while the follower had the batch only in its page cache", code)
	case <-time.After(50 * time.Millisecond):
	}
	// For ISR membership the log end counts: the follower is caught up.
	leader.stateMu.RLock()
	caught := leader.caughtUp[2]
	leader.stateMu.RUnlock()
	if time.Since(caught) > 5*time.Second {
		t.Fatal("a follower fetching at the log end is not marked caught up")
	}

	// OS crash on the follower: the unsynced writes are gone, and the HW never counted them.
	ffs.Crash()
	follower.close()
	follower = memReplica(t, ffs, 2, part)
	defer func() { follower.close() }()
	if end := follower.log.EndOffset(); end < leader.HighWatermark() {
		t.Fatalf("follower recovered to %d, below the leader's HW %d", end, leader.HighWatermark())
	}
	if end := follower.log.EndOffset(); end != 0 {
		t.Fatalf("follower recovered to %d; the test expects the unsynced batch lost", end)
	}

	// The follower fetches again, this time the reporter's fsync completes and is reported.
	res = fetch(follower)
	if err := follower.appendFromLeader(res.data, res.hw, res.logStart, 1); err != nil {
		t.Fatal(err)
	}
	if d := follower.syncedEnd(); d != 3 {
		t.Fatalf("follower durable offset %d after its sync, want 3", d)
	}
	fetch(follower)
	if code := <-acked; code != 0 {
		t.Fatalf("acks=all after the durable report: %v", kerr.ErrorForCode(code))
	}
	if hw := leader.HighWatermark(); hw != 3 {
		t.Fatalf("HW %d after the follower reported 3 durable", hw)
	}
	ffs.Crash()
	follower.close()
	follower = memReplica(t, ffs, 2, part)
	if end := follower.log.EndOffset(); end < leader.HighWatermark() {
		t.Fatalf("follower recovered to %d after a reported sync, below the leader's HW %d", end, leader.HighWatermark())
	}
}

// A durable offset above the fetch offset is capped by it (the leader never counts offsets the
// follower has not even fetched), and a fetch without the tag keeps the old meaning (its fetch
// offset is durable).
func TestDurableOffsetCappedAndOptional(t *testing.T) {
	part := meta.Partition{Replicas: []int32{1, 2, 3}, ISR: []int32{1, 2, 3}, Leader: 1, LeaderEpoch: 1}
	leader := memReplica(t, vfs.NewMemFS(), 1, part)
	defer leader.close()
	if r := leader.appendClient(9, -1, testBatch(t, testBatchOpts{records: 5, ts: time.Now().UnixMilli()})); r.err != nil {
		t.Fatal(r.err)
	}
	leader.readForFollowerAcked(2, 2, 5, 1<<20, true) // claims 5 durable with 2 fetched
	leader.readForFollower(3, 4, 1<<20, true)         // no tag: 4 is durable
	if hw := leader.HighWatermark(); hw != 2 {
		t.Fatalf("HW %d, want 2 (follower 2's durable offset capped by its fetch offset)", hw)
	}
	leader.readForFollowerAcked(2, 5, 5, 1<<20, true)
	if hw := leader.HighWatermark(); hw != 4 {
		t.Fatalf("HW %d, want 4 (follower 3 without the tag at 4)", hw)
	}
}

// The durable offset travels as a Fetch partition tag: kmsg keeps it through encoding and
// decoding, the leader reads it only from replica fetches, and ignores a malformed one.
func TestDurableOffsetTagOnTheWire(t *testing.T) {
	id := [16]byte{7}
	for _, version := range []int16{12, 15} { // by name; by topic id (the follower's v15)
		req := kmsg.NewPtrFetchRequest()
		req.Version = version
		req.ReplicaID = 2
		req.ReplicaState.ID = 2
		rt := kmsg.NewFetchRequestTopic()
		rt.Topic, rt.TopicID = "t", id
		for i, d := range []int64{7, -1, 1 << 40} {
			rp := kmsg.NewFetchRequestTopicPartition()
			rp.Partition = int32(i)
			rp.FetchOffset = 9
			if d >= 0 {
				setDurableOffset(&rp, d)
			}
			rt.Partitions = append(rt.Partitions, rp)
		}
		bad := kmsg.NewFetchRequestTopicPartition()
		bad.Partition = 3
		bad.UnknownTags.Set(durableOffsetTag, []byte{1, 2, 3})
		rt.Partitions = append(rt.Partitions, bad)
		req.Topics = append(req.Topics, rt)

		got := kmsg.NewPtrFetchRequest()
		got.Version = version
		if err := got.ReadFrom(req.AppendTo(nil)); err != nil {
			t.Fatal(err)
		}
		key := func(p int32) fsKey {
			if version >= 13 {
				return fsKey{topicID: id, partition: p}
			}
			return fsKey{topic: "t", partition: p}
		}
		ds := replicaDurableOffsets(got, 2)
		want := map[fsKey]int64{key(0): 7, key(2): 1 << 40}
		if len(ds) != len(want) {
			t.Fatalf("v%d: durable offsets %v, want %v", version, ds, want)
		}
		for k, v := range want {
			if ds[k] != v {
				t.Fatalf("v%d: durable offsets %v, want %v", version, ds, want)
			}
		}
		if ds := replicaDurableOffsets(got, -1); ds != nil {
			t.Fatalf("v%d: a consumer fetch yielded durable offsets %v", version, ds)
		}
	}
}

// A position-only replica fetch (PartitionMaxBytes 0: the durability report) records the
// follower's positions and returns no records, even as the first partition (which a fetch
// otherwise lets exceed its limit by one batch).
func TestDurabilityReportReturnsNoRecords(t *testing.T) {
	part := meta.Partition{Replicas: []int32{1, 2}, ISR: []int32{1, 2}, Leader: 1, LeaderEpoch: 1}
	leader := memReplica(t, vfs.NewMemFS(), 1, part)
	defer leader.close()
	if r := leader.appendClient(9, -1, testBatch(t, testBatchOpts{records: 4, ts: time.Now().UnixMilli()})); r.err != nil {
		t.Fatal(r.err)
	}
	ts := []fetchTarget{{sp: &fsPartition{key: fsKey{topic: "t"}, fetchOffset: 1, maxBytes: 0}, p: leader,
		readReplica: -1, durable: 1, hasDurable: true}}
	total, errs := readTargets(ts, 1<<20, 2)
	if errs || total != 0 || len(ts[0].res.data) != 0 {
		t.Fatalf("position report read %d bytes (errs %v)", total, errs)
	}
	if hw := leader.HighWatermark(); hw != 1 {
		t.Fatalf("HW %d after the report of 1 durable, want 1", hw)
	}
	// The same fetch with room for records reads them.
	ts[0].sp.maxBytes = 1 << 20
	if total, _ := readTargets(ts, 1<<20, 2); total == 0 {
		t.Fatal("a replica fetch with PartitionMaxBytes > 0 read nothing")
	}
}

// A follower whose fsyncs stall (its fetch offset keeps up, its durable offset does not) leaves
// the ISR after replica.lag.time.max.ms, so acks=all is not held by a failing disk; a follower
// whose durable offset trails the leader by one fsync under steady load stays in.
func TestStalledFollowerSyncLeavesISR(t *testing.T) {
	part := meta.Partition{Replicas: []int32{1, 2, 3}, ISR: []int32{1, 2, 3}, Leader: 1, LeaderEpoch: 1}
	leader := memReplica(t, vfs.NewMemFS(), 1, part)
	defer leader.close()
	clock := time.Unix(1_000_000, 0)
	leader.now = func() time.Time { return clock }
	if err := leader.setLeadership(meta.Partition{Replicas: []int32{1, 2, 3}, ISR: []int32{1, 2, 3}, Leader: 1, LeaderEpoch: 2}); err != nil {
		t.Fatal(err)
	}
	const lag = time.Second
	prevEnd := leader.log.EndOffset()
	var f2durable int64
	for i := 0; i < 10; i++ {
		clock = clock.Add(300 * time.Millisecond)
		if r := leader.appendClient(9, -1, testBatch(t, testBatchOpts{ts: time.Now().UnixMilli()})); r.err != nil {
			t.Fatal(r.err)
		}
		end := leader.log.EndOffset()
		leader.readForFollowerAcked(2, end, prevEnd, 1<<20, true) // durable one append behind
		f2durable = prevEnd
		leader.readForFollowerAcked(3, end, 0, 1<<20, true) // fetches on, never syncs
		prevEnd = end
	}
	isr, _, _, _, change := leader.desiredISR(clock, lag, func(int32, int64) bool { return true })
	if !change || len(isr) != 2 || isr[0] != 1 || isr[1] != 2 {
		t.Fatalf("desired ISR %v (change %v), want [1 2]: the stalled follower 3 out, the trailing follower 2 in", isr, change)
	}
	if hw := leader.HighWatermark(); hw != 0 {
		t.Fatalf("HW %d with the stalled follower still in the ISR, want 0", hw)
	}
	// Meta applies the shrink: the HW follows the durable positions of the remaining ISR.
	if err := leader.setLeadership(meta.Partition{Replicas: []int32{1, 2, 3}, ISR: isr, Leader: 1, LeaderEpoch: 2}); err != nil {
		t.Fatal(err)
	}
	if hw := leader.HighWatermark(); hw != f2durable {
		t.Fatalf("HW %d after the shrink, want follower 2's durable offset %d", hw, f2durable)
	}
}

// A partition added to a leader's fetcher (a new topic, a leadership change) interrupts the fetch
// in flight, so its first fetch does not wait for a long poll on the other partitions to end;
// a follow() that changes nothing (reconcile re-applies the same state) does not.
func TestFollowNewPartitionInterruptsTheFetchInFlight(t *testing.T) {
	f := &leaderFetcher{parts: map[*Partition]bool{}, wake: make(chan struct{}, 1)}
	m := &fetcherManager{fetchers: map[int32]*leaderFetcher{7: f}}
	a, b := &Partition{topic: "a"}, &Partition{topic: "b"}
	f.parts[a] = false
	calls := 0
	f.interrupt = func() { calls++ }
	m.follow(a, 7, false) // already fetched: nothing changes
	if calls != 0 || f.interrupted {
		t.Fatalf("re-following a fetched partition interrupted the fetch (%d calls)", calls)
	}
	m.follow(b, 7, false)
	if calls != 1 || !f.interrupted || f.parts[b] != true {
		t.Fatalf("a new partition: %d interrupts, interrupted %v, needs truncation %v", calls, f.interrupted, f.parts[b])
	}
	f.interrupted = false
	m.follow(a, 7, true) // a new leader epoch: truncate first
	if calls != 2 || !f.interrupted {
		t.Fatalf("a truncation request: %d interrupts, interrupted %v", calls, f.interrupted)
	}
}

// The replica client's request ends when its context is cancelled, even while it waits for an
// answer that never comes (a long poll), and the connection is not reused.
func TestReplicaClientRequestHonoursCancel(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		c, err := ln.Accept()
		if err == nil {
			defer c.Close()
			io.Copy(io.Discard, c) // read the request, never answer
		}
	}()
	c := replicaClient{addr: ln.Addr().String(), clientID: "test"}
	defer c.close()
	// No deadline on ctx: without the cancellation the read would wait for the client's own 30 s
	// deadline, past the test's 20 s bound below.
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	time.AfterFunc(100*time.Millisecond, cancel)
	req := kmsg.NewPtrFetchRequest()
	req.Version = 15
	done := make(chan error, 1)
	go func() { done <- c.request(ctx, req, kmsg.NewPtrFetchResponse()) }()
	select {
	case err = <-done:
	case <-time.After(20 * time.Second):
		t.Fatal("request still blocked 20 s after its context was cancelled")
	}
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("request after cancel: %v, want the cancellation", err)
	}
	if c.nc != nil {
		t.Fatal("the interrupted connection is kept for reuse")
	}
}
