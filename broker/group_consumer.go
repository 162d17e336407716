package broker

import (
	"regexp"
	"sort"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/sediment-io/sediment/meta"
)

// KIP-848 consumer groups (ConsumerGroupHeartbeat): the broker computes assignments.
//
// Epochs: the group epoch advances whenever membership, a subscription or the partition count of a
// subscribed topic changes; the target assignment (one per member) is then recomputed at once by the
// group's server-side assignor ("uniform" or "range") and carries that epoch. Each member reconciles
// towards its target over its own heartbeats, Kafka's CurrentAssignmentBuilder rules:
//
//   - partitions it owns that the target no longer gives it are revoked first: the member keeps its
//     epoch, is told its reduced assignment, and the partitions stay "pending revocation" (still owned)
//     until a heartbeat's owned-partitions list (Topics) no longer contains them — only then may another
//     member get them. A member that does not revoke within its rebalance timeout is fenced (removed).
//   - once nothing is pending revocation, the member moves to the target epoch and gets every target
//     partition no other member still owns; the rest ("unreleased") are added on a later heartbeat
//     once their previous owner released them.
//
// So no partition is ever assigned to two members at once. Session timeouts
// (group.consumer.session.timeout.ms) remove silent members; timers are time.AfterFunc.
// Deliberately simplified against Kafka: rack-aware assignment is not done (RackID is stored and
// described only); the uniform assignor is a sticky least-loaded balancer, not Kafka's exact algorithm (same balance
// guarantee: member counts differ by at most one for homogeneous subscriptions).
//
// Static members (InstanceID): a leave with epoch -2 keeps the member and its assignment reserved until
// its session times out; a join under the same instance id (new member id) takes over its epoch and
// assignment without a rebalance; a join while the instance is still active is UNRELEASED_INSTANCE_ID.

type topicPartKey struct {
	id meta.TopicID
	p  int32
}

type partSet map[topicPartKey]bool

func (s partSet) clone() partSet {
	o := make(partSet, len(s))
	for k := range s {
		o[k] = true
	}
	return o
}

func (s partSet) equal(o partSet) bool {
	if len(s) != len(o) {
		return false
	}
	for k := range s {
		if !o[k] {
			return false
		}
	}
	return true
}

type consumerGroupState struct {
	groupEpoch  int32
	targetEpoch int32
	assignor    string
	members     map[string]*cgMember
	target      map[string]partSet // member id → target assignment at targetEpoch
	static      map[string]string  // group.instance.id → member id
	topicsSig   string             // subscribed topics and partition counts at the last computation
}

type cgMember struct {
	id, instanceID, rackID string
	clientID, clientHost   string
	epoch, prevEpoch       int32
	topics                 []string // subscribed names
	regex                  *regexp.Regexp
	regexSrc               string
	assignorWanted         string
	rebalance              time.Duration
	staticLeft             bool // left with epoch -2: kept (assignment reserved) until its session expires

	assigned    partSet // what the member was told it owns
	revoking    partSet // removed from assigned, not yet confirmed released
	lastOwned   partSet // what the member last reported owning (Topics)
	sessionT    *time.Timer
	deadline    time.Time
	revokeT     *time.Timer
	sentVersion int // bumps when assigned changes; the member is told when it lags
	ackVersion  int
}

func newConsumerGroupState(assignor string) *consumerGroupState {
	return &consumerGroupState{assignor: assignor, members: map[string]*cgMember{}, target: map[string]partSet{}, static: map[string]string{}}
}

// chooseAssignor: the server assignor most members ask for, as Kafka; ties go to the one listed first
// in group.consumer.assignors, which is also the choice when nobody asks.
func (cg *consumerGroupState) chooseAssignor(configured []string) string {
	votes := map[string]int{}
	for _, m := range cg.members {
		if m.assignorWanted != "" {
			votes[m.assignorWanted]++
		}
	}
	best := configured[0]
	for _, a := range configured {
		if votes[a] > votes[best] {
			best = a
		}
	}
	return best
}

func (cg *consumerGroupState) stopTimers() {
	for _, m := range cg.members {
		m.stopTimers()
	}
}

func (m *cgMember) stopTimers() {
	if m.sessionT != nil {
		m.sessionT.Stop()
	}
	if m.revokeT != nil {
		m.revokeT.Stop()
	}
}

// subscribedTopics: every topic some member subscribes to (names; regexes resolved against st).
func (cg *consumerGroupState) subscribedTopics() []string {
	return cg.subscribedTopicsIn(nil)
}

func (cg *consumerGroupState) subscribedTopicsIn(st *meta.State) []string {
	seen := map[string]bool{}
	var out []string
	add := func(t string) {
		if !seen[t] {
			seen[t] = true
			out = append(out, t)
		}
	}
	for _, m := range cg.members {
		for _, t := range m.topics {
			add(t)
		}
		if m.regex != nil && st != nil {
			for _, t := range st.Topics() {
				if m.regex.MatchString(t.Name) {
					add(t.Name)
				}
			}
		}
	}
	sort.Strings(out)
	return out
}

func (m *cgMember) subscribes(name string) bool {
	for _, t := range m.topics {
		if t == name {
			return true
		}
	}
	return m.regex != nil && m.regex.MatchString(name)
}

func (cg *consumerGroupState) memberEpochCheckLocked(memberID string, epoch int32) int16 {
	m := cg.members[memberID]
	if m == nil {
		return kerr.UnknownMemberID.Code
	}
	if epoch != m.epoch {
		return kerr.StaleMemberEpoch.Code
	}
	return 0
}

// commitCheckLocked: OffsetCommit v9+ carries the member epoch as the generation. The member's
// previous epoch is accepted too: a member that just moved to a new epoch may still be committing
// what it processed under the old one (Kafka 4.3 relaxes this the same way).
func (cg *consumerGroupState) commitCheckLocked(g *group, epoch int32, memberID string) int16 {
	if epoch < 0 && memberID == "" && len(cg.members) == 0 {
		return 0
	}
	m := cg.members[memberID]
	if m == nil {
		return kerr.UnknownMemberID.Code
	}
	if epoch != m.epoch && epoch != m.prevEpoch {
		return kerr.StaleMemberEpoch.Code
	}
	return 0
}

func (cg *consumerGroupState) stateLocked(g *group) groupState {
	if len(cg.members) == 0 {
		return groupEmpty
	}
	if cg.targetEpoch < cg.groupEpoch {
		return groupAssigning
	}
	for id, m := range cg.members {
		if m.epoch != cg.targetEpoch || len(m.revoking) > 0 || !m.assigned.equal(cg.target[id]) {
			return groupReconciling
		}
	}
	return groupStable
}

func (cg *consumerGroupState) describeClassicLocked(g *group, dg *kmsg.DescribeGroupsResponseGroup) {
	dg.State = cg.stateLocked(g).String()
	dg.ProtocolType = "consumer"
	for _, id := range sortedKeys(cg.members) {
		m := cg.members[id]
		dm := kmsg.NewDescribeGroupsResponseGroupMember()
		dm.MemberID, dm.ClientID, dm.ClientHost = m.id, m.clientID, m.clientHost
		dg.Members = append(dg.Members, dm)
	}
}

func sortedKeys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// topicsSignature: subscribed topics with their ids and partition counts; a change means the target
// assignment must be recomputed (topic created/deleted, partitions added).
func (cg *consumerGroupState) topicsSignature(st *meta.State) string {
	var sig []byte
	for _, name := range cg.subscribedTopicsIn(st) {
		t, ok := st.Topic(name)
		if !ok {
			continue
		}
		sig = append(sig, name...)
		sig = append(sig, t.ID[:]...)
		n := len(t.Partitions)
		sig = append(sig, byte(n>>24), byte(n>>16), byte(n>>8), byte(n), 0)
	}
	return string(sig)
}

// bumpLocked advances the group epoch and recomputes the target assignment.
func (cg *consumerGroupState) bumpLocked(st *meta.State) {
	cg.groupEpoch++
	cg.computeTargetLocked(st)
}

func (cg *consumerGroupState) computeTargetLocked(st *meta.State) {
	cg.topicsSig = cg.topicsSignature(st)
	switch cg.assignor {
	case "range":
		cg.target = assignRange(st, cg.members)
	default:
		cg.target = assignUniform(st, cg.members, cg.target)
	}
	cg.targetEpoch = cg.groupEpoch
}

// assignRange is the range assignor per topic: members subscribing to the topic, sorted by id, get
// contiguous ranges, the first ones one partition more when it does not divide evenly.
func assignRange(st *meta.State, members map[string]*cgMember) map[string]partSet {
	out := map[string]partSet{}
	for id := range members {
		out[id] = partSet{}
	}
	for _, t := range st.Topics() {
		var subs []string
		for id, m := range members {
			if m.subscribes(t.Name) {
				subs = append(subs, id)
			}
		}
		if len(subs) == 0 {
			continue
		}
		sort.Strings(subs)
		n := len(t.Partitions)
		per, extra := n/len(subs), n%len(subs)
		p := 0
		for i, id := range subs {
			k := per
			if i < extra {
				k++
			}
			for j := 0; j < k; j++ {
				out[id][topicPartKey{t.ID, int32(p)}] = true
				p++
			}
		}
	}
	return out
}

// assignUniform balances partition counts across members, sticky: a partition stays with its previous
// target owner while that member still subscribes and is under its quota; the others go to the
// least-loaded subscribing member (ties by member id).
func assignUniform(st *meta.State, members map[string]*cgMember, prev map[string]partSet) map[string]partSet {
	out := map[string]partSet{}
	ids := sortedKeys(members)
	for _, id := range ids {
		out[id] = partSet{}
	}
	if len(ids) == 0 {
		return out
	}
	type tp struct {
		key  topicPartKey
		name string
	}
	var all []tp
	for _, t := range st.Topics() {
		for p := range t.Partitions {
			all = append(all, tp{topicPartKey{t.ID, int32(p)}, t.Name})
		}
	}
	owner := map[topicPartKey]string{}
	for id, ps := range prev {
		if _, ok := members[id]; ok {
			for k := range ps {
				owner[k] = id
			}
		}
	}
	// Quota: an even share of the partitions the member could take.
	total := 0
	for _, x := range all {
		for _, id := range ids {
			if members[id].subscribes(x.name) {
				total++
				break
			}
		}
	}
	quota := (total + len(ids) - 1) / len(ids)
	var rest []tp
	for _, x := range all {
		if id, ok := owner[x.key]; ok && members[id].subscribes(x.name) && len(out[id]) < quota {
			out[id][x.key] = true
			continue
		}
		rest = append(rest, x)
	}
	for _, x := range rest {
		best := ""
		for _, id := range ids {
			if members[id].subscribes(x.name) && (best == "" || len(out[id]) < len(out[best])) {
				best = id
			}
		}
		if best != "" {
			out[best][x.key] = true
		}
	}
	return out
}

// ownedByOthersLocked: partitions some other member still owns (assigned or pending revocation).
func (cg *consumerGroupState) ownedByOthersLocked(except string) partSet {
	o := partSet{}
	for id, m := range cg.members {
		if id == except {
			continue
		}
		for k := range m.assigned {
			o[k] = true
		}
		for k := range m.revoking {
			o[k] = true
		}
	}
	return o
}

// reconcileLocked moves member m towards its target (see the file comment).
func (g *group) reconcileLocked(m *cgMember) {
	cg := g.cg
	if len(m.revoking) > 0 && m.lastOwned != nil {
		still := false
		for k := range m.revoking {
			if m.lastOwned[k] {
				still = true
				break
			}
		}
		if !still {
			m.revoking = partSet{}
			if m.revokeT != nil {
				m.revokeT.Stop()
			}
		}
	}
	if len(m.revoking) > 0 {
		return // waiting for the member to release what it must revoke
	}
	target := cg.target[m.id]
	var revoke []topicPartKey
	for k := range m.assigned {
		if !target[k] {
			revoke = append(revoke, k)
		}
	}
	if len(revoke) > 0 {
		for _, k := range revoke {
			delete(m.assigned, k)
			m.revoking[k] = true
		}
		m.sentVersion++
		if m.revokeT != nil {
			m.revokeT.Stop()
		}
		id := m.id
		m.revokeT = time.AfterFunc(m.rebalance, func() {
			g.mu.Lock()
			defer g.mu.Unlock()
			if g.cg == nil || g.cg.members[id] != m || len(m.revoking) == 0 {
				return
			}
			g.gc.b.log.Info("consumer group member did not revoke in its rebalance timeout; fencing it", "group", g.id, "member", id)
			g.removeConsumerMemberLocked(m)
		})
		return
	}
	if m.epoch != cg.targetEpoch {
		m.prevEpoch, m.epoch = m.epoch, cg.targetEpoch
	}
	taken := cg.ownedByOthersLocked(m.id)
	changed := false
	for k := range target {
		if !m.assigned[k] && !taken[k] {
			m.assigned[k] = true
			changed = true
		}
	}
	if changed {
		m.sentVersion++
	}
}

func (g *group) removeConsumerMemberLocked(m *cgMember) {
	m.stopTimers()
	delete(g.cg.members, m.id)
	if m.instanceID != "" && g.cg.static[m.instanceID] == m.id {
		delete(g.cg.static, m.instanceID)
	}
	g.cg.bumpLocked(g.gc.b.meta.State())
	if len(g.cg.members) == 0 {
		g.emptySince = time.Now()
	}
}

func (g *group) touchConsumerLocked(m *cgMember, session time.Duration) {
	m.deadline = time.Now().Add(session)
	if m.sessionT == nil {
		m.sessionT = time.AfterFunc(session, func() { g.consumerSessionCheck(m) })
		return
	}
	m.sessionT.Reset(session)
}

func (g *group) consumerSessionCheck(m *cgMember) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.cg == nil || g.cg.members[m.id] != m {
		return
	}
	if left := time.Until(m.deadline); left > 0 {
		m.sessionT.Reset(left)
		return
	}
	g.gc.b.log.Info("consumer group member session expired", "group", g.id, "member", m.id)
	g.removeConsumerMemberLocked(m)
}

// assignmentOf renders a member's assignment for the wire.
func assignmentOf(ps partSet) *kmsg.ConsumerGroupHeartbeatResponseAssignment {
	a := kmsg.NewConsumerGroupHeartbeatResponseAssignment()
	byTopic := map[meta.TopicID][]int32{}
	for k := range ps {
		byTopic[k.id] = append(byTopic[k.id], k.p)
	}
	ids := make([]meta.TopicID, 0, len(byTopic))
	for id := range byTopic {
		ids = append(ids, id)
	}
	sort.Slice(ids, func(i, j int) bool { return string(ids[i][:]) < string(ids[j][:]) })
	for _, id := range ids {
		ps := byTopic[id]
		sort.Slice(ps, func(i, j int) bool { return ps[i] < ps[j] })
		t := kmsg.NewConsumerGroupHeartbeatResponseAssignmentTopic()
		t.TopicID, t.Partitions = id, ps
		a.Topics = append(a.Topics, t)
	}
	return &a
}

func ownedOf(ts []kmsg.ConsumerGroupHeartbeatRequestTopic) partSet {
	o := partSet{}
	for _, t := range ts {
		for _, p := range t.Partitions {
			o[topicPartKey{t.TopicID, p}] = true
		}
	}
	return o
}

// consumerHeartbeatLocked applies one ConsumerGroupHeartbeat to g.
func (g *group) consumerHeartbeatLocked(req *kmsg.ConsumerGroupHeartbeatRequest, clientID, clientHost string, resp *kmsg.ConsumerGroupHeartbeatResponse) {
	cfg := g.gc.config()
	st := g.gc.b.meta.State()
	fail := func(e *kerr.Error, msg string) {
		resp.ErrorCode = e.Code
		if msg != "" {
			resp.ErrorMessage = &msg
		}
	}
	if g.state == groupDead {
		fail(kerr.CoordinatorNotAvailable, "")
		return
	}
	if g.typ == groupTypeClassic && (len(g.members) > 0 || len(g.pending) > 0 || g.state != groupEmpty) {
		fail(kerr.GroupIDNotFound, "the group uses the classic protocol")
		return
	}
	if g.cg == nil {
		g.cg = newConsumerGroupState(cfg.ConsumerAssignors[0])
		g.cg.groupEpoch = g.generation // continue a classic group's numbering
		g.cg.targetEpoch = g.generation
	}
	g.typ = groupTypeConsumer
	cg := g.cg

	switch {
	case req.MemberEpoch == -1 || req.MemberEpoch == -2: // leave; -2: a static member leaving for a while
		if m := cg.members[req.MemberID]; m != nil && req.MemberEpoch == -2 && m.instanceID != "" {
			// Its assignment stays reserved: a new incarnation under the same instance id takes it over
			// without a rebalance; if none comes within the session timeout the member is removed.
			m.staticLeft = true
			if m.revokeT != nil {
				m.revokeT.Stop()
			}
		} else if m != nil {
			g.removeConsumerMemberLocked(m)
		} else if req.MemberID == "" {
			fail(kerr.UnknownMemberID, "")
			return
		}
		id := req.MemberID
		resp.MemberID, resp.MemberEpoch = &id, req.MemberEpoch
		return
	case req.MemberEpoch < -2:
		fail(kerr.InvalidRequest, "member epoch below -2")
		return
	}

	if req.ServerAssignor != nil && *req.ServerAssignor != "" && !contains(cfg.ConsumerAssignors, *req.ServerAssignor) {
		fail(kerr.UnsupportedAssignor, "server assignors: uniform, range")
		return
	}
	var m *cgMember
	takeover := false
	if req.MemberEpoch == 0 {
		if req.RebalanceTimeoutMillis <= 0 || (req.SubscribedTopicNames == nil && req.SubscribedTopicRegex == nil) {
			fail(kerr.InvalidRequest, "a join (epoch 0) needs RebalanceTimeoutMillis and SubscribedTopicNames or SubscribedTopicRegex")
			return
		}
		if len(req.Topics) > 0 {
			fail(kerr.InvalidRequest, "a join (epoch 0) must not own partitions")
			return
		}
		id := req.MemberID
		if id == "" {
			if req.Version >= 1 {
				fail(kerr.InvalidRequest, "v1+: the member id is chosen by the client")
				return
			}
			id = newMemberID(clientID)
		}
		if old := cg.members[id]; old != nil { // rejoin after being fenced client-side: start over
			old.stopTimers()
			delete(cg.members, id)
		}
		if len(cg.members) >= cfg.MaxSize {
			fail(kerr.GroupMaxSizeReached, "")
			return
		}
		m = &cgMember{id: id, assigned: partSet{}, revoking: partSet{}}
		if req.InstanceID != nil && *req.InstanceID != "" {
			m.instanceID = *req.InstanceID
			if oldID, ok := cg.static[m.instanceID]; ok && oldID != id {
				old := cg.members[oldID]
				if old != nil && !old.staticLeft {
					fail(kerr.UnreleasedInstanceID, "instance "+m.instanceID+" is still in use by member "+oldID)
					return
				}
				if old != nil { // a static member's new incarnation takes over (KIP-848 static membership)
					old.stopTimers()
					delete(cg.members, oldID)
					m.epoch, m.prevEpoch = old.epoch, old.prevEpoch
					m.topics, m.regex, m.regexSrc = old.topics, old.regex, old.regexSrc
					m.assigned = old.assigned // it owns nothing yet; the response hands these back at once
					cg.target[id] = cg.target[oldID]
					delete(cg.target, oldID)
					takeover = true
				}
			}
			cg.static[m.instanceID] = id
		}
		cg.members[id] = m
	} else {
		m = cg.members[req.MemberID]
		if m == nil {
			if m = g.adoptConsumerMemberLocked(req, st); m == nil {
				fail(kerr.UnknownMemberID, "")
				return
			}
		}
		if req.MemberEpoch != m.epoch && !(req.MemberEpoch == m.prevEpoch && req.Topics != nil && ownedOf(req.Topics).subsetOf(m.assigned)) {
			fail(kerr.FencedMemberEpoch, "")
			return
		}
		m.staticLeft = false
	}
	m.clientID, m.clientHost = clientID, clientHost
	if req.RackID != nil {
		m.rackID = *req.RackID
	}
	if req.RebalanceTimeoutMillis > 0 {
		m.rebalance = time.Duration(req.RebalanceTimeoutMillis) * time.Millisecond
	} else if m.rebalance == 0 {
		m.rebalance = time.Minute // Kafka clients' default max.poll.interval.ms / rebalance timeout
	}
	subChanged := req.MemberEpoch == 0 && !takeover
	if req.SubscribedTopicNames != nil {
		names := append([]string(nil), req.SubscribedTopicNames...)
		sort.Strings(names)
		if !equalStrings(names, m.topics) {
			m.topics, subChanged = names, true
		}
	}
	if req.SubscribedTopicRegex != nil && *req.SubscribedTopicRegex != m.regexSrc {
		m.regexSrc = *req.SubscribedTopicRegex
		m.regex = nil
		if m.regexSrc != "" {
			re, err := regexp.Compile("^(?:" + m.regexSrc + ")$")
			if err != nil {
				delete(cg.members, m.id)
				fail(kerr.InvalidRegularExpression, err.Error())
				return
			}
			m.regex = re
		}
		subChanged = true
	}
	if req.ServerAssignor != nil {
		m.assignorWanted = *req.ServerAssignor
	}
	if a := cg.chooseAssignor(cfg.ConsumerAssignors); a != cg.assignor {
		cg.assignor, subChanged = a, true
	}
	if req.Topics != nil {
		m.lastOwned = ownedOf(req.Topics)
	}
	if subChanged || cg.topicsSignature(st) != cg.topicsSig {
		cg.bumpLocked(st)
	}
	g.touchConsumerLocked(m, cfg.ConsumerSessionTimeout)
	g.reconcileLocked(m)

	id := m.id
	resp.MemberID, resp.MemberEpoch = &id, m.epoch
	resp.HeartbeatIntervalMillis = int32(cfg.ConsumerHeartbeatInterval.Milliseconds())
	full := req.MemberEpoch == 0 || (req.Topics != nil && !m.lastOwned.equal(m.assigned))
	if full || m.ackVersion != m.sentVersion {
		resp.Assignment = assignmentOf(m.assigned)
		m.ackVersion = m.sentVersion
	}
}

func (s partSet) subsetOf(o partSet) bool {
	for k := range s {
		if !o[k] {
			return false
		}
	}
	return true
}

func equalStrings(a, b []string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// describeConsumerLocked fills a ConsumerGroupDescribe answer.
func (g *group) describeConsumerLocked(dg *kmsg.ConsumerGroupDescribeResponseGroup, st *meta.State) {
	cg := g.cg
	dg.State = cg.stateLocked(g).String()
	dg.Epoch, dg.AssignmentEpoch, dg.AssignorName = cg.groupEpoch, cg.targetEpoch, cg.assignor
	render := func(ps partSet) kmsg.Assignment {
		a := kmsg.NewAssignment()
		wire := assignmentOf(ps)
		for _, t := range wire.Topics {
			at := kmsg.NewAssignmentTopicPartition()
			at.TopicID, at.Partitions = t.TopicID, t.Partitions
			if tt, ok := st.TopicByID(t.TopicID); ok {
				at.Topic = tt.Name
			}
			a.TopicPartitions = append(a.TopicPartitions, at)
		}
		return a
	}
	for _, id := range sortedKeys(cg.members) {
		m := cg.members[id]
		dm := kmsg.NewConsumerGroupDescribeResponseGroupMember()
		dm.MemberID, dm.MemberEpoch, dm.ClientID, dm.ClientHost = m.id, m.epoch, m.clientID, m.clientHost
		if m.instanceID != "" {
			inst := m.instanceID
			dm.InstanceID = &inst
		}
		if m.rackID != "" {
			rack := m.rackID
			dm.RackID = &rack
		}
		dm.SubscribedTopics = m.topics
		if m.regexSrc != "" {
			re := m.regexSrc
			dm.SubscribedTopicRegex = &re
		}
		dm.Assignment = render(m.assigned)
		dm.TargetAssignment = render(cg.target[id])
		dm.MemberType = 1 // consumer protocol (not a classic member of a consumer group)
		dg.Members = append(dg.Members, dm)
	}
}

// adoptConsumerMemberLocked: the KIP-848 side of a coordinator takeover (group_takeover.go). A member
// unknown here that sends a full heartbeat (its epoch, the partitions it owns, its subscription) for a
// group that existed (committed offsets in Raft) is re-admitted at its epoch owning those partitions,
// unless another member owns one of them; the group epoch moves past its epoch, and it reconciles
// from there like any member. nil: not adoptable (the member gets UNKNOWN_MEMBER_ID and rejoins).
func (g *group) adoptConsumerMemberLocked(req *kmsg.ConsumerGroupHeartbeatRequest, st *meta.State) *cgMember {
	cg := g.cg
	if req.MemberEpoch <= 0 || req.MemberID == "" || req.Topics == nil ||
		(req.SubscribedTopicNames == nil && req.SubscribedTopicRegex == nil) ||
		len(st.CommittedOffsets(g.id)) == 0 {
		return nil
	}
	owned := ownedOf(req.Topics)
	taken := cg.ownedByOthersLocked(req.MemberID)
	for k := range owned {
		if taken[k] {
			return nil
		}
	}
	m := &cgMember{id: req.MemberID, epoch: req.MemberEpoch, assigned: owned, revoking: partSet{}}
	if req.InstanceID != nil && *req.InstanceID != "" {
		if other, ok := cg.static[*req.InstanceID]; ok && other != m.id {
			return nil
		}
		m.instanceID = *req.InstanceID
		cg.static[m.instanceID] = m.id
	}
	cg.members[m.id] = m
	if cg.groupEpoch < m.epoch {
		cg.groupEpoch = m.epoch
	}
	g.gc.adopted.Add(1)
	return m
}
