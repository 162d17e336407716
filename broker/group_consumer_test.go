package broker

import (
	"sort"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

type cgHB struct {
	t     *testing.T
	b     *Broker
	group string
}

func (h cgHB) beat(id string, epoch int32, owned []int32, mutate ...func(*kmsg.ConsumerGroupHeartbeatRequest)) *kmsg.ConsumerGroupHeartbeatResponse {
	h.t.Helper()
	r := kmsg.NewPtrConsumerGroupHeartbeatRequest()
	r.SetVersion(1)
	r.Group, r.MemberID, r.MemberEpoch = h.group, id, epoch
	if epoch == 0 {
		r.RebalanceTimeoutMillis = 5000
		r.SubscribedTopicNames = []string{"t"}
		ra := "range"
		r.ServerAssignor = &ra
	}
	if owned != nil {
		tid, _ := h.b.meta.State().Topic("t")
		r.Topics = []kmsg.ConsumerGroupHeartbeatRequestTopic{{TopicID: tid.ID, Partitions: owned}}
	}
	for _, m := range mutate {
		m(r)
	}
	return callAPI[*kmsg.ConsumerGroupHeartbeatResponse](h.t, h.b, r)
}

func assigned(r *kmsg.ConsumerGroupHeartbeatResponse) []int32 {
	if r.Assignment == nil {
		return nil
	}
	out := []int32{}
	for _, t := range r.Assignment.Topics {
		out = append(out, t.Partitions...)
	}
	sort.Slice(out, func(i, j int) bool { return out[i] < out[j] })
	return out
}

func wantParts(t *testing.T, what string, got []int32, want ...int32) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("%s: assignment %v, want %v", what, got, want)
	}
	for i := range got {
		if got[i] != want[i] {
			t.Fatalf("%s: assignment %v, want %v", what, got, want)
		}
	}
}

// A partition moves to a new owner only after the previous owner's heartbeat shows it released.
func TestConsumerGroupRevokesBeforeAssigning(t *testing.T) {
	b := newGroupTestBroker(t)
	createTopic(t, b, "t", 4, nil)
	h := cgHB{t, b, "cg"}

	a := h.beat("A", 0, nil)
	wantCode(t, "A joins", a.ErrorCode, nil)
	if a.MemberEpoch != 1 || a.HeartbeatIntervalMillis != 100 {
		t.Fatalf("A: epoch %d interval %d", a.MemberEpoch, a.HeartbeatIntervalMillis)
	}
	wantParts(t, "A alone", assigned(a), 0, 1, 2, 3)

	bj := h.beat("B", 0, nil)
	wantCode(t, "B joins", bj.ErrorCode, nil)
	if bj.MemberEpoch != 2 {
		t.Fatalf("B epoch %d, want 2", bj.MemberEpoch)
	}
	wantParts(t, "B before A released", assigned(bj))

	a = h.beat("A", 1, nil) // keepalive: told to give up 2 and 3, keeps epoch 1 until it does
	wantCode(t, "A heartbeat", a.ErrorCode, nil)
	if a.MemberEpoch != 1 {
		t.Fatalf("A moved to epoch %d before revoking", a.MemberEpoch)
	}
	wantParts(t, "A revoking", assigned(a), 0, 1)
	if r := h.beat("B", 2, []int32{}); len(assigned(r)) != 0 {
		t.Fatalf("B got %v while A still owns them", assigned(r))
	}
	// Commits under the member epochs.
	wantCode(t, "A commits under epoch 1", commitCode(t, b, commitReq("cg", "A", 1, nil, "t", 3, "")), nil)
	wantCode(t, "unknown member commits", commitCode(t, b, commitReq("cg", "Z", 2, nil, "t", 3, "")), kerr.UnknownMemberID)
	wantCode(t, "B commits under a future epoch", commitCode(t, b, commitReq("cg", "B", 7, nil, "t", 3, "")), kerr.StaleMemberEpoch)

	d := kmsg.NewPtrConsumerGroupDescribeRequest()
	d.Groups = []string{"cg", "nope"}
	dr := callAPI[*kmsg.ConsumerGroupDescribeResponse](t, b, d)
	if dr.Groups[0].State != "Reconciling" || dr.Groups[0].Epoch != 2 || dr.Groups[0].AssignorName != "range" || len(dr.Groups[0].Members) != 2 {
		t.Fatalf("describe while reconciling: %+v", dr.Groups[0])
	}
	wantCode(t, "describe unknown", dr.Groups[1].ErrorCode, kerr.GroupIDNotFound)

	a = h.beat("A", 1, []int32{0, 1}) // released
	if a.MemberEpoch != 2 {
		t.Fatalf("A epoch %d after revoking, want 2", a.MemberEpoch)
	}
	r := h.beat("B", 2, []int32{})
	wantParts(t, "B after A released", assigned(r), 2, 3)
	h.beat("B", 2, []int32{2, 3})
	dr = callAPI[*kmsg.ConsumerGroupDescribeResponse](t, b, d)
	if dr.Groups[0].State != "Stable" || dr.Groups[0].AssignmentEpoch != 2 {
		t.Fatalf("describe after reconciling: %+v", dr.Groups[0])
	}

	// Refusals.
	wantCode(t, "fenced epoch", h.beat("A", 9, nil).ErrorCode, kerr.FencedMemberEpoch)
	wantCode(t, "unknown member", h.beat("Q", 3, nil).ErrorCode, kerr.UnknownMemberID)
	wantCode(t, "unsupported assignor", h.beat("C", 0, nil, func(r *kmsg.ConsumerGroupHeartbeatRequest) {
		x := "fancy"
		r.ServerAssignor = &x
	}).ErrorCode, kerr.UnsupportedAssignor)
	wantCode(t, "v1 join without id", h.beat("", 0, nil).ErrorCode, kerr.InvalidRequest)
	wantCode(t, "join owning partitions", h.beat("D", 0, []int32{1}).ErrorCode, kerr.InvalidRequest)
	wantCode(t, "classic join into a consumer group", callAPI[*kmsg.JoinGroupResponse](t, b, joinReq("cg", "", nil, "t")).ErrorCode, kerr.InconsistentGroupProtocol)
	del := kmsg.NewPtrDeleteGroupsRequest()
	del.Groups = []string{"cg"}
	wantCode(t, "delete a live consumer group", callAPI[*kmsg.DeleteGroupsResponse](t, b, del).Groups[0].ErrorCode, kerr.NonEmptyGroup)

	// A leaves: B gets everything on its next heartbeat.
	if l := h.beat("A", -1, nil); l.ErrorCode != 0 || l.MemberEpoch != -1 {
		t.Fatalf("leave: %v epoch %d", kerr.ErrorForCode(l.ErrorCode), l.MemberEpoch)
	}
	r = h.beat("B", 2, nil)
	if r.MemberEpoch != 3 {
		t.Fatalf("B epoch %d after A left, want 3", r.MemberEpoch)
	}
	wantParts(t, "B alone", assigned(r), 0, 1, 2, 3)

	// A consumer-protocol heartbeat into a classic group is refused.
	j := joinMember(t, b, "classic", "t")
	wantCode(t, "classic join", j.ErrorCode, nil)
	wantCode(t, "consumer heartbeat into a classic group", cgHB{t, b, "classic"}.beat("E", 0, nil).ErrorCode, kerr.GroupIDNotFound)
}

// A member that does not release revoked partitions within its rebalance timeout is fenced, and its
// partitions go to the others.
func TestConsumerGroupRevocationTimeoutFences(t *testing.T) {
	b := newGroupTestBroker(t)
	createTopic(t, b, "t", 2, nil)
	h := cgHB{t, b, "cg2"}
	short := func(r *kmsg.ConsumerGroupHeartbeatRequest) { r.RebalanceTimeoutMillis = 200 }
	wantParts(t, "A alone", assigned(h.beat("A", 0, nil, short)), 0, 1)
	h.beat("B", 0, nil)
	wantParts(t, "A told to revoke", assigned(h.beat("A", 1, nil)), 0)
	time.Sleep(400 * time.Millisecond) // A never confirms
	wantCode(t, "fenced member", h.beat("A", 1, nil).ErrorCode, kerr.UnknownMemberID)
	r := h.beat("B", 2, []int32{})
	wantParts(t, "B after A was fenced", assigned(r), 0, 1)
}

// The uniform assignor balances and is sticky: adding a member moves only what it must.
func TestUniformAssignorSticky(t *testing.T) {
	b := newGroupTestBroker(t)
	createTopic(t, b, "t", 6, nil)
	h := cgHB{t, b, "cg3"}
	uni := func(r *kmsg.ConsumerGroupHeartbeatRequest) {
		if r.MemberEpoch == 0 {
			u := "uniform"
			r.ServerAssignor = &u
		}
	}
	h.beat("A", 0, nil, uni)
	h.beat("B", 0, nil, uni)
	g := b.groups.getGroup("cg3", false)
	snapshot := func() map[string]int {
		g.mu.Lock()
		defer g.mu.Unlock()
		out := map[string]int{}
		for id, ps := range g.cg.target {
			out[id] = len(ps)
		}
		return out
	}
	before := map[string]partSet{}
	g.mu.Lock()
	for id, ps := range g.cg.target {
		before[id] = ps.clone()
	}
	g.mu.Unlock()
	if s := snapshot(); s["A"] != 3 || s["B"] != 3 {
		t.Fatalf("two members: %v", s)
	}
	h.beat("C", 0, nil, uni)
	if s := snapshot(); s["A"] != 2 || s["B"] != 2 || s["C"] != 2 {
		t.Fatalf("three members: %v", s)
	}
	g.mu.Lock()
	for _, id := range []string{"A", "B"} {
		for k := range g.cg.target[id] {
			if !before[id][k] {
				t.Errorf("member %s was given partition %d it did not have: not sticky", id, k.p)
			}
		}
	}
	g.mu.Unlock()
}

// KIP-848 static membership: a static member that leaves with epoch -2 keeps its assignment reserved;
// its next incarnation (new member id, same instance id) gets it back at once, without a rebalance;
// a second live member under the same instance id is refused; an instance that never returns is
// removed after the session timeout.
func TestConsumerGroupStaticMember(t *testing.T) {
	b := newGroupTestBroker(t)
	createTopic(t, b, "t", 2, nil)
	h := cgHB{t, b, "cgs"}
	inst := "instance-a"
	static := func(r *kmsg.ConsumerGroupHeartbeatRequest) { r.InstanceID = &inst }
	a := h.beat("A1", 0, nil, static)
	wantParts(t, "A1", assigned(a), 0, 1)
	epoch := a.MemberEpoch
	wantCode(t, "second live incarnation", h.beat("A2", 0, nil, static).ErrorCode, kerr.UnreleasedInstanceID)
	if l := h.beat("A1", -2, nil, static); l.ErrorCode != 0 || l.MemberEpoch != -2 {
		t.Fatalf("static leave: %v epoch %d", kerr.ErrorForCode(l.ErrorCode), l.MemberEpoch)
	}
	a2 := h.beat("A2", 0, nil, static)
	wantCode(t, "new incarnation", a2.ErrorCode, nil)
	if a2.MemberEpoch != epoch {
		t.Fatalf("new incarnation at epoch %d, want the old %d (no rebalance)", a2.MemberEpoch, epoch)
	}
	wantParts(t, "new incarnation", assigned(a2), 0, 1)
	wantCode(t, "old incarnation", h.beat("A1", epoch, nil).ErrorCode, kerr.UnknownMemberID)

	// Leaves for good (session timeout 2 s in tests): the group empties.
	h.beat("A2", -2, nil, static)
	g := b.groups.getGroup("cgs", false)
	deadline := time.Now().Add(5 * time.Second)
	for {
		g.mu.Lock()
		n := len(g.cg.members)
		g.mu.Unlock()
		if n == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("a static member that left was never removed")
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// The server assignor is the one most members ask for (ties: the first configured, "uniform").
func TestConsumerGroupAssignorVote(t *testing.T) {
	b := newGroupTestBroker(t)
	createTopic(t, b, "t", 2, nil)
	h := cgHB{t, b, "vote"}
	ask := func(a string) func(*kmsg.ConsumerGroupHeartbeatRequest) {
		return func(r *kmsg.ConsumerGroupHeartbeatRequest) { r.ServerAssignor = &a }
	}
	assignor := func() string {
		g := b.groups.getGroup("vote", false)
		g.mu.Lock()
		defer g.mu.Unlock()
		return g.cg.assignor
	}
	h.beat("A", 0, nil, ask("range"))
	h.beat("B", 0, nil, ask("uniform"))
	if a := assignor(); a != "uniform" {
		t.Fatalf("tie: %s, want uniform (listed first)", a)
	}
	h.beat("C", 0, nil, ask("range"))
	if a := assignor(); a != "range" {
		t.Fatalf("majority: %s, want range", a)
	}
}

// KIP-848 side of a coordinator takeover: a member unknown here presenting a full heartbeat for a
// group that existed is re-admitted owning what it owns; a conflicting claim or a group that never
// existed is refused.
func TestConsumerGroupTakeoverAdoption(t *testing.T) {
	b := newGroupTestBroker(t)
	createTopic(t, b, "t", 3, nil)
	full := func(r *kmsg.ConsumerGroupHeartbeatRequest) {
		r.SubscribedTopicNames = []string{"t"}
		r.RebalanceTimeoutMillis = 5000
	}
	wantCode(t, "never existed", cgHB{t, b, "nope"}.beat("Z", 5, []int32{0}, full).ErrorCode, kerr.UnknownMemberID)

	wantCode(t, "seed commit", commitCode(t, b, commitReq("cgt", "", -1, nil, "t", 1, "")), nil)
	h := cgHB{t, b, "cgt"}
	wantCode(t, "keepalive without owned partitions", h.beat("Z", 5, nil).ErrorCode, kerr.UnknownMemberID)
	z := h.beat("Z", 5, []int32{0, 1}, full)
	wantCode(t, "adopted", z.ErrorCode, nil)
	if z.MemberEpoch <= 5 {
		t.Fatalf("adopted member at epoch %d, want past its old 5", z.MemberEpoch)
	}
	wantParts(t, "adopted member keeps and completes its assignment", assigned(z), 0, 1, 2)
	wantCode(t, "a second claim on partition 0", h.beat("Y", 5, []int32{0}, full).ErrorCode, kerr.UnknownMemberID)
}
