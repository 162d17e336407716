package broker

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// callAPI runs a registered handler directly at the request's version (as conn.go would).
func callAPI[R kmsg.Response](t *testing.T, b *Broker, req kmsg.Request) R {
	t.Helper()
	h, ok := lookupHandler(req.Key())
	if !ok {
		t.Fatalf("API key %d not served", req.Key())
	}
	if v := req.GetVersion(); v < h.min || v > h.max {
		t.Fatalf("%s v%d outside the served %d..%d", kmsg.NameForKey(req.Key()), v, h.min, h.max)
	}
	resp, err := h.fn(b, testCtx(t), &connCtx{clientID: "test-client", remote: "127.0.0.1:1"}, req)
	if err != nil {
		t.Fatalf("%s: %v", kmsg.NameForKey(req.Key()), err)
	}
	return resp.(R)
}

func wantCode(t *testing.T, what string, got int16, want *kerr.Error) {
	t.Helper()
	wc := int16(0)
	if want != nil {
		wc = want.Code
	}
	if got != wc {
		t.Fatalf("%s: error %v, want %v", what, kerr.ErrorForCode(got), want)
	}
}

func consumerMeta(topics ...string) []byte {
	m := kmsg.NewConsumerMemberMetadata()
	m.Topics = topics
	return m.AppendTo(nil)
}

func joinReq(group, memberID string, inst *string, topics ...string) *kmsg.JoinGroupRequest {
	r := kmsg.NewPtrJoinGroupRequest()
	r.SetVersion(9)
	r.Group, r.MemberID, r.InstanceID = group, memberID, inst
	r.SessionTimeoutMillis, r.RebalanceTimeoutMillis = 5000, 5000
	r.ProtocolType = "consumer"
	r.Protocols = []kmsg.JoinGroupRequestProtocol{{Name: "range", Metadata: consumerMeta(topics...)}}
	return r
}

func syncReq(group, memberID string, gen int32, assign map[string][]byte) *kmsg.SyncGroupRequest {
	r := kmsg.NewPtrSyncGroupRequest()
	r.SetVersion(5)
	r.Group, r.MemberID, r.Generation = group, memberID, gen
	for id, a := range assign {
		r.GroupAssignment = append(r.GroupAssignment, kmsg.SyncGroupRequestGroupAssignment{MemberID: id, MemberAssignment: a})
	}
	return r
}

func heartbeatReq(group, memberID string, gen int32, inst *string) *kmsg.HeartbeatRequest {
	r := kmsg.NewPtrHeartbeatRequest()
	r.SetVersion(4)
	r.Group, r.MemberID, r.Generation, r.InstanceID = group, memberID, gen, inst
	return r
}

func commitReq(group, memberID string, gen int32, inst *string, topic string, offset int64, md string) *kmsg.OffsetCommitRequest {
	r := kmsg.NewPtrOffsetCommitRequest()
	r.SetVersion(9)
	r.Group, r.MemberID, r.Generation, r.InstanceID = group, memberID, gen, inst
	p := kmsg.NewOffsetCommitRequestTopicPartition()
	p.Partition, p.Offset, p.LeaderEpoch, p.Metadata = 0, offset, 3, &md
	r.Topics = []kmsg.OffsetCommitRequestTopic{{Topic: topic, Partitions: []kmsg.OffsetCommitRequestTopicPartition{p}}}
	return r
}

func commitCode(t *testing.T, b *Broker, r *kmsg.OffsetCommitRequest) int16 {
	t.Helper()
	resp := callAPI[*kmsg.OffsetCommitResponse](t, b, r)
	return resp.Topics[0].Partitions[0].ErrorCode
}

// joinMember does the KIP-394 dance (MEMBER_ID_REQUIRED, then join with the id) and returns the response.
func joinMember(t *testing.T, b *Broker, group string, topics ...string) *kmsg.JoinGroupResponse {
	t.Helper()
	first := callAPI[*kmsg.JoinGroupResponse](t, b, joinReq(group, "", nil, topics...))
	wantCode(t, "first join", first.ErrorCode, kerr.MemberIDRequired)
	if !strings.HasPrefix(first.MemberID, "test-client-") {
		t.Fatalf("member id %q does not start with the client id", first.MemberID)
	}
	return callAPI[*kmsg.JoinGroupResponse](t, b, joinReq(group, first.MemberID, nil, topics...))
}

func TestFindCoordinator(t *testing.T) {
	b := newGroupTestBroker(t)
	r := kmsg.NewPtrFindCoordinatorRequest()
	r.SetVersion(3)
	r.CoordinatorKey = "g"
	resp := callAPI[*kmsg.FindCoordinatorResponse](t, b, r)
	wantCode(t, "v3", resp.ErrorCode, nil)
	if resp.NodeID != b.cfg.NodeID || resp.Host != b.advHost || resp.Port != b.advPort || len(resp.Coordinators) != 0 {
		t.Fatalf("v3 answer %+v, want node %d at %s:%d at top level", resp, b.cfg.NodeID, b.advHost, b.advPort)
	}

	r = kmsg.NewPtrFindCoordinatorRequest()
	r.SetVersion(5)
	r.CoordinatorKeys = []string{"a", "b", ""}
	resp = callAPI[*kmsg.FindCoordinatorResponse](t, b, r)
	if len(resp.Coordinators) != 3 {
		t.Fatalf("batched lookup answered %d keys", len(resp.Coordinators))
	}
	for i, c := range resp.Coordinators[:2] {
		wantCode(t, "batched "+c.Key, c.ErrorCode, nil)
		if c.Key != r.CoordinatorKeys[i] || c.NodeID != b.cfg.NodeID || c.Port != b.advPort {
			t.Fatalf("batched answer %+v", c)
		}
	}
	wantCode(t, "empty key", resp.Coordinators[2].ErrorCode, kerr.InvalidRequest)

	r.CoordinatorType = 1 // transactions: absent, said honestly
	r.CoordinatorKeys = []string{"txn"}
	resp = callAPI[*kmsg.FindCoordinatorResponse](t, b, r)
	wantCode(t, "transaction coordinator", resp.Coordinators[0].ErrorCode, kerr.InvalidRequest)
	if m := resp.Coordinators[0].ErrorMessage; m == nil || !strings.Contains(*m, "transactions") {
		t.Fatalf("transaction lookup message %v", m)
	}

	// kgo finds the coordinator through the same API and its group requests work (kadm).
	adm := newTestAdmin(t, b)
	if _, err := adm.ListGroups(testCtx(t)); err != nil {
		t.Fatal(err)
	}
}

// TestClassicGroupErrors drives one group through join, sync, heartbeat, commit and a second member's
// join, checking every refusal a Java client expects.
func TestClassicGroupErrors(t *testing.T) {
	b := newGroupTestBroker(t)
	createTopic(t, b, "t", 1, nil)
	const g = "g1"

	bad := joinReq(g, "", nil, "t")
	bad.SessionTimeoutMillis = 100
	wantCode(t, "tiny session timeout", callAPI[*kmsg.JoinGroupResponse](t, b, bad).ErrorCode, kerr.InvalidSessionTimeout)
	wantCode(t, "unknown member id", callAPI[*kmsg.JoinGroupResponse](t, b, joinReq(g, "nobody", nil, "t")).ErrorCode, kerr.UnknownMemberID)

	j1 := joinMember(t, b, g, "t")
	wantCode(t, "join", j1.ErrorCode, nil)
	if j1.Generation != 1 || j1.LeaderID != j1.MemberID || len(j1.Members) != 1 || *j1.Protocol != "range" {
		t.Fatalf("join answer: gen %d leader %q member %q members %d", j1.Generation, j1.LeaderID, j1.MemberID, len(j1.Members))
	}
	m1 := j1.MemberID
	other := joinReq(g, "", nil, "t")
	other.ProtocolType = "connect"
	wantCode(t, "other protocol type", callAPI[*kmsg.JoinGroupResponse](t, b, other).ErrorCode, kerr.InconsistentGroupProtocol)

	wantCode(t, "commit while completing", commitCode(t, b, commitReq(g, m1, 1, nil, "t", 5, "")), kerr.RebalanceInProgress)
	s1 := callAPI[*kmsg.SyncGroupResponse](t, b, syncReq(g, m1, 1, map[string][]byte{m1: []byte("A1")}))
	wantCode(t, "sync", s1.ErrorCode, nil)
	if string(s1.MemberAssignment) != "A1" {
		t.Fatalf("assignment %q", s1.MemberAssignment)
	}
	wantCode(t, "sync stale generation", callAPI[*kmsg.SyncGroupResponse](t, b, syncReq(g, m1, 0, nil)).ErrorCode, kerr.IllegalGeneration)

	wantCode(t, "heartbeat", callAPI[*kmsg.HeartbeatResponse](t, b, heartbeatReq(g, m1, 1, nil)).ErrorCode, nil)
	wantCode(t, "heartbeat stale generation", callAPI[*kmsg.HeartbeatResponse](t, b, heartbeatReq(g, m1, 0, nil)).ErrorCode, kerr.IllegalGeneration)
	wantCode(t, "heartbeat unknown member", callAPI[*kmsg.HeartbeatResponse](t, b, heartbeatReq(g, "x", 1, nil)).ErrorCode, kerr.UnknownMemberID)

	wantCode(t, "commit", commitCode(t, b, commitReq(g, m1, 1, nil, "t", 7, "meta")), nil)
	wantCode(t, "commit unknown member", commitCode(t, b, commitReq(g, "intruder", 1, nil, "t", 9, "")), kerr.UnknownMemberID)
	wantCode(t, "commit stale generation", commitCode(t, b, commitReq(g, m1, 0, nil, "t", 9, "")), kerr.IllegalGeneration)
	wantCode(t, "simple commit into a live group", commitCode(t, b, commitReq(g, "", -1, nil, "t", 9, "")), kerr.UnknownMemberID)
	wantCode(t, "metadata too large", commitCode(t, b, commitReq(g, m1, 1, nil, "t", 9, strings.Repeat("x", 4097))), kerr.OffsetMetadataTooLarge)
	wantCode(t, "unknown topic", commitCode(t, b, commitReq(g, m1, 1, nil, "nope", 9, "")), kerr.UnknownTopicOrPartition)
	if o, ok := b.meta.State().CommittedOffset(g, "t", 0); !ok || o.Offset != 7 || o.Metadata != "meta" || o.LeaderEpoch != 3 {
		t.Fatalf("committed offset in Raft: %+v %v, want 7/meta/epoch 3 (refused commits must not land)", o, ok)
	}

	// Describe and list while stable.
	dr := kmsg.NewPtrDescribeGroupsRequest()
	dr.SetVersion(5)
	dr.Groups = []string{g, "never"}
	d := callAPI[*kmsg.DescribeGroupsResponse](t, b, dr)
	if d.Groups[0].State != "Stable" || d.Groups[0].Protocol != "range" || len(d.Groups[0].Members) != 1 ||
		string(d.Groups[0].Members[0].MemberAssignment) != "A1" || d.Groups[0].Members[0].ClientID != "test-client" {
		t.Fatalf("describe: %+v", d.Groups[0])
	}
	if d.Groups[1].State != "Dead" {
		t.Fatalf("unknown group described as %q", d.Groups[1].State)
	}
	listed := func(states ...string) bool {
		lr := kmsg.NewPtrListGroupsRequest()
		lr.SetVersion(5)
		lr.StatesFilter = states
		for _, lg := range callAPI[*kmsg.ListGroupsResponse](t, b, lr).Groups {
			if lg.Group == g {
				return true
			}
		}
		return false
	}
	if !listed() || !listed("stable") || listed("Empty") {
		t.Fatal("ListGroups state filter")
	}

	// Admin refusals while the group has a member subscribed to t.
	od := kmsg.NewPtrOffsetDeleteRequest()
	od.Group = g
	od.Topics = []kmsg.OffsetDeleteRequestTopic{{Topic: "t", Partitions: []kmsg.OffsetDeleteRequestTopicPartition{{Partition: 0}}}}
	odr := callAPI[*kmsg.OffsetDeleteResponse](t, b, od)
	wantCode(t, "offset delete", odr.ErrorCode, nil)
	wantCode(t, "offset delete of a subscribed topic", odr.Topics[0].Partitions[0].ErrorCode, kerr.GroupSubscribedToTopic)
	del := kmsg.NewPtrDeleteGroupsRequest()
	del.SetVersion(2)
	del.Groups = []string{g, "never"}
	dg := callAPI[*kmsg.DeleteGroupsResponse](t, b, del)
	wantCode(t, "delete non-empty group", dg.Groups[0].ErrorCode, kerr.NonEmptyGroup)
	wantCode(t, "delete unknown group", dg.Groups[1].ErrorCode, kerr.GroupIDNotFound)

	// A second member joins: the group rebalances; the first learns it from its heartbeat.
	j2ch := make(chan *kmsg.JoinGroupResponse, 1)
	first := callAPI[*kmsg.JoinGroupResponse](t, b, joinReq(g, "", nil, "t"))
	go func() {
		h, _ := lookupHandler(int16(kmsg.JoinGroup))
		r, _ := h.fn(b, context.Background(), &connCtx{clientID: "c2"}, joinReq(g, first.MemberID, nil, "t"))
		j2ch <- r.(*kmsg.JoinGroupResponse)
	}()
	waitState(t, b, g, groupPreparingRebalance)
	wantCode(t, "heartbeat during rebalance", callAPI[*kmsg.HeartbeatResponse](t, b, heartbeatReq(g, m1, 1, nil)).ErrorCode, kerr.RebalanceInProgress)
	wantCode(t, "commit during rebalance (current generation)", commitCode(t, b, commitReq(g, m1, 1, nil, "t", 8, "")), nil)
	wantCode(t, "sync during rebalance", callAPI[*kmsg.SyncGroupResponse](t, b, syncReq(g, m1, 1, nil)).ErrorCode, kerr.RebalanceInProgress)
	j1b := callAPI[*kmsg.JoinGroupResponse](t, b, joinReq(g, m1, nil, "t"))
	j2 := <-j2ch
	wantCode(t, "rejoin", j1b.ErrorCode, nil)
	wantCode(t, "second join", j2.ErrorCode, nil)
	if j1b.Generation != 2 || j2.Generation != 2 || j1b.LeaderID != m1 || len(j1b.Members) != 2 || len(j2.Members) != 0 {
		t.Fatalf("generation 2: leader %q (want %q), members %d/%d", j1b.LeaderID, m1, len(j1b.Members), len(j2.Members))
	}
	wantCode(t, "commit with the old generation", commitCode(t, b, commitReq(g, m1, 1, nil, "t", 9, "")), kerr.IllegalGeneration)

	// Leave both; the group becomes empty and can then be deleted with its offsets.
	lv := kmsg.NewPtrLeaveGroupRequest()
	lv.SetVersion(5)
	lv.Group = g
	lv.Members = []kmsg.LeaveGroupRequestMember{{MemberID: m1}, {MemberID: j2.MemberID}, {MemberID: "ghost"}}
	lr := callAPI[*kmsg.LeaveGroupResponse](t, b, lv)
	wantCode(t, "leave 1", lr.Members[0].ErrorCode, nil)
	wantCode(t, "leave 2", lr.Members[1].ErrorCode, nil)
	wantCode(t, "leave unknown", lr.Members[2].ErrorCode, kerr.UnknownMemberID)
	waitState(t, b, g, groupEmpty)
	wantCode(t, "simple commit into the empty group", commitCode(t, b, commitReq(g, "", -1, nil, "t", 11, "")), nil)
	dg = callAPI[*kmsg.DeleteGroupsResponse](t, b, del)
	wantCode(t, "delete empty group", dg.Groups[0].ErrorCode, nil)
	if _, ok := b.meta.State().CommittedOffset(g, "t", 0); ok {
		t.Fatal("offsets survived DeleteGroups")
	}
}

func waitState(t *testing.T, b *Broker, group string, want groupState) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		if g := b.groups.getGroup(group, false); g != nil {
			g.mu.Lock()
			s := g.state
			g.mu.Unlock()
			if s == want {
				return
			}
		}
		time.Sleep(5 * time.Millisecond)
	}
	t.Fatalf("group %s never reached %v", group, want)
}

// TestStaticMembership: a static member that restarts takes over its identity; the old incarnation
// is fenced everywhere (KIP-345).
func TestStaticMembership(t *testing.T) {
	b := newGroupTestBroker(t)
	createTopic(t, b, "t", 1, nil)
	const g = "static"
	inst := "instance-1"
	follower := "instance-2"
	// Two static members: no MEMBER_ID_REQUIRED round trip for static members.
	done := make(chan *kmsg.JoinGroupResponse, 1)
	go func() {
		h, _ := lookupHandler(int16(kmsg.JoinGroup))
		r, _ := h.fn(b, context.Background(), &connCtx{clientID: "c2"}, joinReq(g, "", &follower, "t"))
		done <- r.(*kmsg.JoinGroupResponse)
	}()
	j := callAPI[*kmsg.JoinGroupResponse](t, b, joinReq(g, "", &inst, "t"))
	jf := <-done
	wantCode(t, "static join", j.ErrorCode, nil)
	wantCode(t, "static join 2", jf.ErrorCode, nil)
	leader := j
	if jf.LeaderID == jf.MemberID {
		leader = jf
	}
	s := callAPI[*kmsg.SyncGroupResponse](t, b, syncReq(g, leader.MemberID, leader.Generation, map[string][]byte{j.MemberID: []byte("P1"), jf.MemberID: []byte("P2")}))
	wantCode(t, "sync", s.ErrorCode, nil)
	old := jf.MemberID
	oldGen := jf.Generation
	if jf == leader { // restart the follower: swap roles so "old" is the follower's identity
		old, inst, follower = j.MemberID, follower, inst
	}
	_ = inst
	// The follower instance restarts (new incarnation, empty member id): no rebalance, same generation.
	r := callAPI[*kmsg.JoinGroupResponse](t, b, joinReq(g, "", &follower, "t"))
	wantCode(t, "static rejoin", r.ErrorCode, nil)
	if r.MemberID == old || r.Generation != oldGen {
		t.Fatalf("static rejoin: member %q (old %q), generation %d (want unchanged %d)", r.MemberID, old, r.Generation, oldGen)
	}
	sr := callAPI[*kmsg.SyncGroupResponse](t, b, syncReq(g, r.MemberID, r.Generation, nil))
	wantCode(t, "sync after static rejoin", sr.ErrorCode, nil)
	if len(sr.MemberAssignment) != 2 {
		t.Fatalf("static member lost its assignment: %q", sr.MemberAssignment)
	}
	wantCode(t, "old incarnation heartbeat", callAPI[*kmsg.HeartbeatResponse](t, b, heartbeatReq(g, old, oldGen, &follower)).ErrorCode, kerr.FencedInstanceID)
	wantCode(t, "old incarnation commit", commitCode(t, b, commitReq(g, old, oldGen, &follower, "t", 1, "")), kerr.FencedInstanceID)
	wantCode(t, "old incarnation join", callAPI[*kmsg.JoinGroupResponse](t, b, joinReq(g, old, &follower, "t")).ErrorCode, kerr.FencedInstanceID)
	wantCode(t, "new incarnation commit", commitCode(t, b, commitReq(g, r.MemberID, r.Generation, &follower, "t", 1, "")), nil)
	// Leave by instance id (v3+).
	lv := kmsg.NewPtrLeaveGroupRequest()
	lv.SetVersion(5)
	lv.Group = g
	lv.Members = []kmsg.LeaveGroupRequestMember{{InstanceID: &follower}, {MemberID: old, InstanceID: &follower}}
	lr := callAPI[*kmsg.LeaveGroupResponse](t, b, lv)
	wantCode(t, "leave by instance id", lr.Members[0].ErrorCode, nil)
	wantCode(t, "leave of a gone instance", lr.Members[1].ErrorCode, kerr.UnknownMemberID)
}

// TestOffsetFetchVersions: single-group (v1, v7 with require_stable) and multi-group (v8) fetches.
func TestOffsetFetchVersions(t *testing.T) {
	b := newGroupTestBroker(t)
	createTopic(t, b, "t", 2, nil)
	wantCode(t, "simple commit", commitCode(t, b, commitReq("ga", "", -1, nil, "t", 42, "hello")), nil)

	f := kmsg.NewPtrOffsetFetchRequest()
	f.SetVersion(1)
	f.Group = "ga"
	f.Topics = []kmsg.OffsetFetchRequestTopic{{Topic: "t", Partitions: []int32{0, 1}}}
	r := callAPI[*kmsg.OffsetFetchResponse](t, b, f)
	if len(r.Topics) != 1 || r.Topics[0].Partitions[0].Offset != 42 || *r.Topics[0].Partitions[0].Metadata != "hello" || r.Topics[0].Partitions[1].Offset != -1 {
		t.Fatalf("v1 fetch: %+v", r.Topics)
	}
	f.SetVersion(7)
	f.Topics = nil // all
	f.RequireStable = true
	r = callAPI[*kmsg.OffsetFetchResponse](t, b, f)
	if len(r.Topics) != 1 || len(r.Topics[0].Partitions) != 1 || r.Topics[0].Partitions[0].Offset != 42 || r.Topics[0].Partitions[0].LeaderEpoch != 3 {
		t.Fatalf("v7 fetch all: %+v", r.Topics)
	}
	f8 := kmsg.NewPtrOffsetFetchRequest()
	f8.SetVersion(8)
	f8.Groups = []kmsg.OffsetFetchRequestGroup{{Group: "ga"}, {Group: "none", Topics: []kmsg.OffsetFetchRequestGroupTopic{{Topic: "t", Partitions: []int32{1}}}}, {Group: ""}}
	r = callAPI[*kmsg.OffsetFetchResponse](t, b, f8)
	if len(r.Groups) != 3 || r.Groups[0].Topics[0].Partitions[0].Offset != 42 || r.Groups[1].Topics[0].Partitions[0].Offset != -1 {
		t.Fatalf("v8 fetch: %+v", r.Groups)
	}
	wantCode(t, "empty group id", r.Groups[2].ErrorCode, kerr.InvalidGroupID)
}

// There is no __consumer_offsets topic: listing topics (internal ones included) after groups committed
// never shows one, and asking for it by name does not create it.
func TestNoConsumerOffsetsTopic(t *testing.T) {
	b := newGroupTestBroker(t)
	createTopic(t, b, "t", 1, nil)
	wantCode(t, "commit", commitCode(t, b, commitReq("g", "", -1, nil, "t", 1, "")), nil)
	adm := newTestAdmin(t, b)
	topics, err := adm.ListTopicsWithInternal(testCtx(t))
	if err != nil {
		t.Fatal(err)
	}
	if topics.Has("__consumer_offsets") || len(topics) != 1 {
		t.Fatalf("topics listed: %v", topics.Names())
	}
	// Asking for it by name (old tools probe it) neither creates it nor errors the request.
	md := kmsg.NewPtrMetadataRequest()
	md.SetVersion(12)
	name := "__consumer_offsets"
	md.Topics = []kmsg.MetadataRequestTopic{{Topic: &name}}
	md.AllowAutoTopicCreation = true
	resp := callAPI[*kmsg.MetadataResponse](t, b, md)
	if _, ok := b.meta.State().Topic(name); ok {
		t.Fatalf("asking for %s created it", name)
	}
	wantCode(t, "metadata for __consumer_offsets", resp.Topics[0].ErrorCode, kerr.UnknownTopicOrPartition)
}

// After a coordinator takeover (here: a group known only by its committed offsets, as after a broker
// restart or failover) members that present themselves are adopted instead of refused; commits from
// them never move an offset backwards; a group that never existed still refuses unknown members.
func TestTakeoverAdoptsMembers(t *testing.T) {
	b := newGroupTestBroker(t)
	createTopic(t, b, "t", 1, nil)
	wantCode(t, "seed commit", commitCode(t, b, commitReq("old", "", -1, nil, "t", 50, "")), nil)

	wantCode(t, "unknown member of a group that never existed", callAPI[*kmsg.HeartbeatResponse](t, b, heartbeatReq("new", "ghost", 3, nil)).ErrorCode, kerr.UnknownMemberID)
	wantCode(t, "unknown member commit to a group that never existed", commitCode(t, b, commitReq("new", "ghost", 3, nil, "t", 1, "")), kerr.UnknownMemberID)

	// Member X of the previous coordinator's generation 7.
	wantCode(t, "heartbeat of a member of the previous coordinator", callAPI[*kmsg.HeartbeatResponse](t, b, heartbeatReq("old", "X", 7, nil)).ErrorCode, kerr.RebalanceInProgress)
	wantCode(t, "its commit moving the offset forward", commitCode(t, b, commitReq("old", "X", 7, nil, "t", 60, "")), nil)
	wantCode(t, "its commit moving the offset back", commitCode(t, b, commitReq("old", "X", 7, nil, "t", 40, "")), kerr.RebalanceInProgress)
	wantCode(t, "another generation claimed by the same member", commitCode(t, b, commitReq("old", "X", 6, nil, "t", 70, "")), kerr.UnknownMemberID)
	if o, _ := b.meta.State().CommittedOffset("old", "t", 0); o.Offset != 60 {
		t.Fatalf("committed %d, want 60", o.Offset)
	}
	// X rejoins under its old id: accepted without MEMBER_ID_REQUIRED; the generation is newer than 7.
	j := callAPI[*kmsg.JoinGroupResponse](t, b, joinReq("old", "X", nil, "t"))
	wantCode(t, "rejoin under the old id", j.ErrorCode, nil)
	if j.MemberID != "X" || j.Generation != 8 || j.LeaderID != "X" {
		t.Fatalf("rejoin: member %q generation %d leader %q; want X, 8, X", j.MemberID, j.Generation, j.LeaderID)
	}
	// The group is formed: Kafka's rules again.
	wantCode(t, "a stranger after the takeover", callAPI[*kmsg.HeartbeatResponse](t, b, heartbeatReq("old", "Y", 7, nil)).ErrorCode, kerr.UnknownMemberID)
	wantCode(t, "the old generation after the takeover", commitCode(t, b, commitReq("old", "X", 7, nil, "t", 70, "")), kerr.IllegalGeneration)
}

// The first group request after the live-broker set changed (here: after start) waits for a Raft
// barrier, so the coordinator's state includes every earlier commit; later requests do not wait.
func TestCoordinatorLoadBarrier(t *testing.T) {
	b := newGroupTestBroker(t)
	gc := b.groups
	gc.loadMu.Lock()
	done := gc.loadDone
	gc.loadMu.Unlock()
	if done {
		t.Fatal("loaded before any group request")
	}
	idx := b.meta.State().Index()
	wantCode(t, "heartbeat", callAPI[*kmsg.HeartbeatResponse](t, b, heartbeatReq("g", "m", 1, nil)).ErrorCode, kerr.UnknownMemberID)
	gc.loadMu.Lock()
	done, sig := gc.loadDone, gc.loadSig
	gc.loadMu.Unlock()
	if !done || sig != liveBrokersSig(b.meta.State()) {
		t.Fatalf("after the first request: loaded %v for brokers %q", done, sig)
	}
	if b.meta.State().Index() <= idx {
		t.Fatal("no barrier entry was committed")
	}
	gc.loadMu.Lock()
	ch := gc.loadCh
	gc.loadMu.Unlock()
	callAPI[*kmsg.HeartbeatResponse](t, b, heartbeatReq("g", "m", 1, nil))
	gc.loadMu.Lock()
	same := gc.loadCh == ch
	gc.loadMu.Unlock()
	if !same {
		t.Fatal("a second barrier ran although the brokers did not change")
	}
}

// OffsetCommit and OffsetFetch v10 name topics by id.
func TestOffsetsByTopicID(t *testing.T) {
	b := newGroupTestBroker(t)
	createTopic(t, b, "t", 1, nil)
	tt, _ := b.meta.State().Topic("t")
	c := commitReq("gid", "", -1, nil, "", 77, "md")
	c.SetVersion(10)
	c.Topics[0].TopicID = tt.ID
	bogus := kmsg.NewOffsetCommitRequestTopic()
	bogus.TopicID = [16]byte{9, 9, 9}
	bogus.Partitions = []kmsg.OffsetCommitRequestTopicPartition{{Partition: 0, Offset: 1}}
	c.Topics = append(c.Topics, bogus)
	r := callAPI[*kmsg.OffsetCommitResponse](t, b, c)
	wantCode(t, "commit by id", r.Topics[0].Partitions[0].ErrorCode, nil)
	wantCode(t, "commit to an unknown id", r.Topics[1].Partitions[0].ErrorCode, kerr.UnknownTopicID)
	if r.Topics[0].TopicID != tt.ID {
		t.Fatal("response does not echo the topic id")
	}
	f := kmsg.NewPtrOffsetFetchRequest()
	f.SetVersion(10)
	f.Groups = []kmsg.OffsetFetchRequestGroup{{Group: "gid", Topics: []kmsg.OffsetFetchRequestGroupTopic{{TopicID: tt.ID, Partitions: []int32{0}}, {TopicID: [16]byte{9}, Partitions: []int32{0}}}}}
	fr := callAPI[*kmsg.OffsetFetchResponse](t, b, f)
	var got, unknown bool
	for _, ft := range fr.Groups[0].Topics {
		switch ft.TopicID {
		case tt.ID:
			got = ft.Partitions[0].Offset == 77 && *ft.Partitions[0].Metadata == "md"
		case [16]byte{9}:
			unknown = ft.Partitions[0].ErrorCode == kerr.UnknownTopicID.Code
		}
	}
	if !got || !unknown {
		t.Fatalf("v10 fetch: %+v", fr.Groups[0].Topics)
	}
}
