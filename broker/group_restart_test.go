package broker

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// A consumer closed and restarted resumes from its last commit; so does one after the broker restarts
// (committed offsets are in Raft, membership is rebuilt).
func TestGroupResumeAcrossConsumerAndBrokerRestart(t *testing.T) {
	t.Run("classic", func(t *testing.T) { testGroupResume(t, nil) })
	t.Run("kip848", func(t *testing.T) {
		testGroupResume(t, []kgo.Opt{kgo.Balancers(kgo.RangeBalancer()), kgo.ServerSideBalancer()})
	})
}

func testGroupResume(t *testing.T, mode []kgo.Opt) {
	dir := t.TempDir()
	cfg := testBrokerConfig(t, dir)
	groupTestConfig(&cfg)
	b, err := Start(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	closed := false
	defer func() {
		if !closed {
			b.Close()
		}
	}()
	const topic, group = "resume", "g-resume"
	createTopic(t, b, topic, 3, nil)
	prod := newTestClient(t, b, kgo.DefaultProduceTopic(topic))
	produceRange(t, prod, topic, 0, 300)
	prod.Close()

	// Consume exactly 100 records, commit them, close.
	consumeAndCommit := func(b *Broker, n int) map[string]bool {
		t.Helper()
		cl := newTestClient(t, b, append(append(groupOpts(group, topic), kgo.DisableAutoCommit()), mode...)...)
		got := map[string]bool{}
		var recs []*kgo.Record
		ctx := testCtx(t)
		for len(got) < n {
			fs := cl.PollRecords(ctx, n-len(got))
			if ctx.Err() != nil {
				t.Fatalf("consumed %d of %d", len(got), n)
			}
			for _, r := range fs.Records() {
				if got[string(r.Value)] {
					t.Fatalf("record %s twice in one consumer", r.Value)
				}
				got[string(r.Value)] = true
				recs = append(recs, r)
			}
		}
		if err := cl.CommitRecords(ctx, recs...); err != nil {
			t.Fatal(err)
		}
		cl.Close()
		return got
	}
	first := consumeAndCommit(b, 100)
	second := consumeAndCommit(b, 100)
	for v := range second {
		if first[v] {
			t.Fatalf("record %s consumed again after a restart of the consumer", v)
		}
	}
	committed := func(b *Broker) int64 {
		adm := kadm.NewClient(newTestClient(t, b))
		os, err := adm.FetchOffsets(testCtx(t), group)
		if err != nil {
			t.Fatal(err)
		}
		var sum int64
		os.Each(func(o kadm.OffsetResponse) { sum += o.At })
		return sum
	}
	if c := committed(b); c != 200 {
		t.Fatalf("committed offsets sum to %d, want 200", c)
	}

	// Restart the broker on the same data dir.
	if err := b.Close(); err != nil {
		t.Fatal(err)
	}
	closed = true
	cfg = testBrokerConfig(t, dir)
	groupTestConfig(&cfg)
	b2, err := Start(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer b2.Close()
	if c := committed(b2); c != 200 {
		t.Fatalf("after the broker restart committed offsets sum to %d, want 200", c)
	}
	third := consumeAndCommit(b2, 100)
	for v := range third {
		if first[v] || second[v] {
			t.Fatalf("record %s consumed again after the broker restart", v)
		}
	}
	if c := committed(b2); c != 300 {
		t.Fatalf("committed offsets sum to %d, want 300", c)
	}
}

// Offsets of a group empty for longer than offsets.retention.minutes expire; a group with members keeps
// them however old they are.
func TestOffsetExpiry(t *testing.T) {
	b := newGroupTestBroker(t)
	createTopic(t, b, "t", 1, nil)
	gc := b.groups
	wantCode(t, "commit", commitCode(t, b, commitReq("lonely", "", -1, nil, "t", 5, "")), nil)
	j := joinMember(t, b, "busy", "t")
	wantCode(t, "join", j.ErrorCode, nil)
	wantCode(t, "member commit before sync", commitCode(t, b, commitReq("busy", j.MemberID, j.Generation, nil, "t", 6, "")), kerr.RebalanceInProgress)
	wantCode(t, "sync", callAPI[*kmsg.SyncGroupResponse](t, b, syncReq("busy", j.MemberID, j.Generation, nil)).ErrorCode, nil)
	wantCode(t, "member commit", commitCode(t, b, commitReq("busy", j.MemberID, j.Generation, nil, "t", 6, "")), nil)

	cfg := *gc.config()
	cfg.OffsetsRetention = time.Hour
	gc.cfg.Store(&cfg)
	if n := gc.expireOffsets(time.Now()); n != 0 {
		t.Fatalf("expired %d offsets before the retention passed", n)
	}
	if n := gc.expireOffsets(time.Now().Add(2 * time.Hour)); n != 1 {
		t.Fatalf("expired %d offsets, want the empty group's 1", n)
	}
	if _, ok := b.meta.State().CommittedOffset("lonely", "t", 0); ok {
		t.Fatal("expired offset still in Raft")
	}
	if _, ok := b.meta.State().CommittedOffset("busy", "t", 0); !ok {
		t.Fatal("a group with members lost its offsets to expiry")
	}
	// A group that emptied without ever committing is forgotten by the same check.
	j2 := joinMember(t, b, "transient", "t")
	lv := kmsg.NewPtrLeaveGroupRequest()
	lv.Group, lv.MemberID = "transient", j2.MemberID
	wantCode(t, "leave", callAPI[*kmsg.LeaveGroupResponse](t, b, lv).ErrorCode, nil)
	if gc.getGroup("transient", false) == nil {
		t.Fatal("group gone before the check")
	}
	gc.expireOffsets(time.Now())
	if gc.getGroup("transient", false) != nil {
		t.Fatal("an empty group without offsets is still held in memory")
	}
	if gc.getGroup("busy", false) == nil {
		t.Fatal("a live group was forgotten")
	}
}

// The broker shuts down while commits are in flight: after it restarts, every partition's committed
// offset is at least the last acknowledged one (acknowledged commits are never lost or rolled back)
// and no more than the last attempted one.
func TestCommitsInFlightAcrossBrokerRestart(t *testing.T) {
	dir := t.TempDir()
	cfg := testBrokerConfig(t, dir)
	groupTestConfig(&cfg)
	b, err := Start(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	createTopic(t, b, "t", 4, nil)
	tt, _ := b.meta.State().Topic("t")
	tid := tt.ID
	const workers = 8
	type result struct {
		acked, attempted int64
		err              error
	}
	results := make([]result, workers)
	var wg sync.WaitGroup
	stop := make(chan struct{})
	for w := 0; w < workers; w++ {
		cl := newTestClient(t, b, kgo.RetryTimeout(time.Second))
		wg.Add(1)
		go func() {
			defer wg.Done()
			group := fmt.Sprintf("inflight-%d", w)
			for off := int64(1); ; off++ {
				select {
				case <-stop:
					return
				default:
				}
				results[w].attempted = off
				ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
				err := commitOne(ctx, cl, tid, "t", group, int32(w%4), off)
				cancel()
				if err != nil {
					results[w].err = err
					return // the broker is going away
				}
				results[w].acked = off
			}
		}()
	}
	time.Sleep(300 * time.Millisecond)
	if err := b.Close(); err != nil {
		t.Fatal(err)
	}
	close(stop)
	wg.Wait()

	b2, err := Start(context.Background(), testBrokerConfig(t, dir))
	if err != nil {
		t.Fatal(err)
	}
	defer b2.Close()
	st := b2.meta.State()
	for w, r := range results {
		if r.acked == 0 {
			t.Fatalf("worker %d never got a commit acknowledged: %v", w, r.err)
		}
		o, ok := st.CommittedOffset(fmt.Sprintf("inflight-%d", w), "t", int32(w%4))
		if !ok || o.Offset < r.acked || o.Offset > r.attempted {
			t.Fatalf("worker %d: committed %d (present %v) after restart; acknowledged %d, attempted %d", w, o.Offset, ok, r.acked, r.attempted)
		}
	}
}
