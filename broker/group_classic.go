package broker

import (
	"bytes"
	"sort"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// The classic group protocol (JoinGroup/SyncGroup/Heartbeat/LeaveGroup) as Kafka's GroupCoordinator:
//
//	Empty ──join──▶ PreparingRebalance ──all rejoined / rebalance timeout──▶ CompletingRebalance
//	  ▲                    ▲      │                                                │ leader's SyncGroup
//	  └── last member gone ┘      └──────── member joins/leaves/expires ◀── Stable ◀┘
//
// Every state change happens under group.mu. JoinGroup and SyncGroup requests that must wait (for the
// other members to rejoin, for the leader's assignment) park a buffered channel on their member and
// block their connection's reader until the group answers; nothing polls. Timers are time.AfterFunc:
// one per member for the session timeout, one per group for the rebalance timeout / initial delay, one
// per pending (KIP-394) member id. Each timer callback re-checks, under the lock, that what it was armed
// for still holds (the member is still there, its deadline passed, the generation is the same).

type groupState int8

const (
	groupEmpty groupState = iota
	groupPreparingRebalance
	groupCompletingRebalance
	groupStable
	groupDead
	// KIP-848 consumer-group states (ConsumerGroupDescribe / ListGroups).
	groupAssigning
	groupReconciling
)

func (s groupState) String() string {
	switch s {
	case groupEmpty:
		return "Empty"
	case groupPreparingRebalance:
		return "PreparingRebalance"
	case groupCompletingRebalance:
		return "CompletingRebalance"
	case groupStable:
		return "Stable"
	case groupAssigning:
		return "Assigning"
	case groupReconciling:
		return "Reconciling"
	}
	return "Dead"
}

// groupType: a group is classic or consumer (KIP-848) by the protocol its members use; a group with
// no members has no fixed type (Kafka converts an empty group on first use).
type groupType int8

const (
	groupTypeNone groupType = iota
	groupTypeClassic
	groupTypeConsumer
)

type group struct {
	gc *groupCoordinator
	id string

	mu           sync.Mutex
	typ          groupType
	state        groupState
	protocolType string
	protocol     string
	generation   int32
	leader       string
	members      map[string]*member
	static       map[string]string      // group.instance.id → member id (KIP-345)
	pending      map[string]*time.Timer // member ids handed out with MEMBER_ID_REQUIRED, not yet joined (KIP-394)
	emptySince   time.Time              // when the group last became empty (offset expiry)
	fresh        bool                   // no generation formed by this coordinator yet (group_takeover.go)
	adopt        map[string]int32       // takeover: member ids presented to us, with the generation they claimed

	rebalanceTimer *time.Timer
	initialDelay   bool // the initial-rebalance-delay window is open
	newMemberAdded bool // a member joined during that window (it is extended)
	rebalanceEnd   time.Time

	cg *consumerGroupState // KIP-848 state, nil for classic groups
}

type member struct {
	id, instanceID       string
	clientID, clientHost string
	session, rebalance   time.Duration
	protocolType         string
	protocols            []kmsg.JoinGroupRequestProtocol
	assignment           []byte

	join     chan *kmsg.JoinGroupResponse // awaiting the end of the join phase
	sync     chan *kmsg.SyncGroupResponse // awaiting the leader's assignment
	timer    *time.Timer                  // session timeout
	deadline time.Time
}

func newGroup(gc *groupCoordinator, id string) *group {
	return &group{gc: gc, id: id, members: map[string]*member{}, static: map[string]string{},
		pending: map[string]*time.Timer{}, emptySince: time.Now(), fresh: true}
}

func (m *member) metadataFor(protocol string) []byte {
	for _, p := range m.protocols {
		if p.Name == protocol {
			return p.Metadata
		}
	}
	return nil
}

func sameProtocols(a, b []kmsg.JoinGroupRequestProtocol) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i].Name != b[i].Name || !bytes.Equal(a[i].Metadata, b[i].Metadata) {
			return false
		}
	}
	return true
}

// supportsProtocols: a joining member must share the group's protocol type and at least one protocol
// that every current member supports (Kafka's INCONSISTENT_GROUP_PROTOCOL otherwise).
func (g *group) supportsProtocolsLocked(ptype string, protos []kmsg.JoinGroupRequestProtocol, except string) bool {
	others := 0
	for id := range g.members {
		if id != except {
			others++
		}
	}
	if others == 0 {
		return true
	}
	if ptype != g.protocolType {
		return false
	}
	for _, p := range protos {
		all := true
		for id, m := range g.members {
			if id != except && !hasProtocol(m.protocols, p.Name) {
				all = false
				break
			}
		}
		if all {
			return true
		}
	}
	return false
}

func hasProtocol(ps []kmsg.JoinGroupRequestProtocol, name string) bool {
	for _, p := range ps {
		if p.Name == name {
			return true
		}
	}
	return false
}

// selectProtocolLocked: the candidates are the protocols every member supports; each member votes for
// the first candidate in its own preference order; most votes wins (ties: the name first in sort order,
// so that the choice is deterministic).
func (g *group) selectProtocolLocked() string {
	var candidates []string
	var any *member
	for _, m := range g.members {
		any = m
		break
	}
	for _, p := range any.protocols {
		ok := true
		for _, m := range g.members {
			if !hasProtocol(m.protocols, p.Name) {
				ok = false
				break
			}
		}
		if ok {
			candidates = append(candidates, p.Name)
		}
	}
	votes := map[string]int{}
	for _, m := range g.members {
		for _, p := range m.protocols {
			if contains(candidates, p.Name) {
				votes[p.Name]++
				break
			}
		}
	}
	sort.Strings(candidates)
	best := ""
	for _, c := range candidates {
		if best == "" || votes[c] > votes[best] {
			best = c
		}
	}
	return best
}

func contains(ss []string, s string) bool {
	for _, x := range ss {
		if x == s {
			return true
		}
	}
	return false
}

// touchLocked restarts a member's session timeout (join, sync, heartbeat, commit).
func (g *group) touchLocked(m *member) {
	m.deadline = time.Now().Add(m.session)
	if m.timer == nil {
		m.timer = time.AfterFunc(m.session, func() { g.sessionCheck(m) })
		return
	}
	m.timer.Reset(m.session)
}

func (g *group) sessionCheck(m *member) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.members[m.id] != m || g.state == groupDead {
		return
	}
	if left := time.Until(m.deadline); left > 0 {
		m.timer.Reset(left)
		return
	}
	if m.join != nil && g.state == groupPreparingRebalance {
		// A member parked in JoinGroup is alive: the rebalance timeout decides for it, as Kafka.
		m.deadline = time.Now().Add(m.session)
		m.timer.Reset(m.session)
		return
	}
	g.gc.b.log.Info("group member session expired", "group", g.id, "member", m.id)
	g.removeMemberLocked(m, kerr.UnknownMemberID.Code)
	g.membershipChangedLocked()
}

// removeMemberLocked drops a member, answering its parked requests with code.
func (g *group) removeMemberLocked(m *member, code int16) {
	if m.timer != nil {
		m.timer.Stop()
	}
	delete(g.members, m.id)
	if m.instanceID != "" && g.static[m.instanceID] == m.id {
		delete(g.static, m.instanceID)
	}
	if g.leader == m.id {
		g.leader = ""
	}
	if m.join != nil {
		r := kmsg.NewPtrJoinGroupResponse()
		r.ErrorCode, r.MemberID, r.Generation = code, m.id, -1
		m.join <- r
		m.join = nil
	}
	if m.sync != nil {
		r := kmsg.NewPtrSyncGroupResponse()
		r.ErrorCode = code
		m.sync <- r
		m.sync = nil
	}
}

// membershipChangedLocked reacts to a member leaving or expiring.
func (g *group) membershipChangedLocked() {
	switch g.state {
	case groupStable, groupCompletingRebalance:
		g.prepareRebalanceLocked()
	case groupPreparingRebalance:
		g.maybeCompleteJoinLocked()
	}
	if len(g.members) == 0 && len(g.pending) == 0 && g.state == groupPreparingRebalance && !g.initialDelay {
		g.completeJoinLocked()
	}
}

func (g *group) maxRebalanceTimeoutLocked() time.Duration {
	var d time.Duration
	for _, m := range g.members {
		d = max(d, m.rebalance)
	}
	return d
}

// prepareRebalanceLocked enters PreparingRebalance: every member must rejoin within the largest
// rebalance timeout. From Empty, the first join opens Kafka's initial rebalance delay window instead,
// extended by each new member up to the rebalance timeout, so a starting group rebalances once.
func (g *group) prepareRebalanceLocked() {
	if g.state == groupCompletingRebalance {
		for _, m := range g.members { // assignments of the generation being completed are void
			if m.sync != nil {
				r := kmsg.NewPtrSyncGroupResponse()
				r.ErrorCode = kerr.RebalanceInProgress.Code
				m.sync <- r
				m.sync = nil
			}
		}
	}
	wasEmpty := g.state == groupEmpty
	g.state = groupPreparingRebalance
	if g.rebalanceTimer != nil {
		g.rebalanceTimer.Stop()
	}
	gen := g.generation
	timeout := g.maxRebalanceTimeoutLocked()
	if wasEmpty && g.gc.config().InitialRebalanceDelay > 0 && len(g.adopt) == 0 {
		g.initialDelay, g.newMemberAdded = true, false
		g.rebalanceEnd = time.Now().Add(timeout)
		g.rebalanceTimer = time.AfterFunc(min(g.gc.config().InitialRebalanceDelay, timeout), func() { g.initialDelayFired(gen) })
		return
	}
	g.initialDelay = false
	g.rebalanceTimer = time.AfterFunc(timeout, func() {
		g.mu.Lock()
		defer g.mu.Unlock()
		if g.state == groupPreparingRebalance && g.generation == gen {
			g.completeJoinLocked()
		}
	})
}

func (g *group) initialDelayFired(gen int32) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.state != groupPreparingRebalance || g.generation != gen || !g.initialDelay {
		return
	}
	if left := time.Until(g.rebalanceEnd); g.newMemberAdded && left > 0 {
		g.newMemberAdded = false
		g.rebalanceTimer = time.AfterFunc(min(g.gc.config().InitialRebalanceDelay, left), func() { g.initialDelayFired(gen) })
		return
	}
	g.initialDelay = false
	g.completeJoinLocked()
}

func (g *group) allJoinedLocked() bool {
	if len(g.pending) > 0 {
		return false
	}
	for id := range g.adopt { // takeover: members that presented themselves are expected back
		if g.members[id] == nil {
			return false
		}
	}
	for _, m := range g.members {
		if m.join == nil {
			return false
		}
	}
	return true
}

func (g *group) maybeCompleteJoinLocked() {
	if g.state == groupPreparingRebalance && !g.initialDelay && g.allJoinedLocked() {
		g.completeJoinLocked()
	}
}

// completeJoinLocked ends the join phase: members that did not rejoin are removed, the generation
// advances, a protocol and a leader are chosen, and every parked JoinGroup is answered (the leader with
// all members' metadata).
func (g *group) completeJoinLocked() {
	if g.rebalanceTimer != nil {
		g.rebalanceTimer.Stop()
		g.rebalanceTimer = nil
	}
	g.initialDelay = false
	for _, m := range g.members {
		if m.join == nil {
			g.removeMemberLocked(m, kerr.UnknownMemberID.Code)
		}
	}
	for id, t := range g.pending {
		t.Stop()
		delete(g.pending, id)
	}
	g.generation++
	if len(g.members) == 0 {
		g.state, g.protocol, g.leader, g.typ = groupEmpty, "", "", groupTypeNone
		g.emptySince = time.Now()
		return
	}
	g.fresh, g.adopt = false, nil
	g.protocol = g.selectProtocolLocked()
	if _, ok := g.members[g.leader]; !ok {
		ids := make([]string, 0, len(g.members))
		for id := range g.members {
			ids = append(ids, id)
		}
		sort.Strings(ids)
		g.leader = ids[0]
	}
	g.state = groupCompletingRebalance
	for _, m := range g.members {
		m.join <- g.joinResponseLocked(m)
		m.join = nil
		g.touchLocked(m)
	}
}

func (g *group) joinResponseLocked(m *member) *kmsg.JoinGroupResponse {
	r := kmsg.NewPtrJoinGroupResponse()
	r.Generation = g.generation
	pt, p := g.protocolType, g.protocol
	r.ProtocolType, r.Protocol = &pt, &p
	r.LeaderID, r.MemberID = g.leader, m.id
	if m.id == g.leader {
		ids := make([]string, 0, len(g.members))
		for id := range g.members {
			ids = append(ids, id)
		}
		sort.Strings(ids)
		for _, id := range ids {
			o := g.members[id]
			rm := kmsg.NewJoinGroupResponseMember()
			rm.MemberID = id
			if o.instanceID != "" {
				inst := o.instanceID
				rm.InstanceID = &inst
			}
			rm.ProtocolMetadata = o.metadataFor(g.protocol)
			r.Members = append(r.Members, rm)
		}
	}
	return r
}

// shutdownLocked answers everything parked with code and stops every timer (coordinator closing,
// group unloaded or deleted).
func (g *group) shutdownLocked(code int16) {
	for _, m := range g.members {
		g.removeMemberLocked(m, code)
	}
	for id, t := range g.pending {
		t.Stop()
		delete(g.pending, id)
	}
	if g.rebalanceTimer != nil {
		g.rebalanceTimer.Stop()
	}
	if g.cg != nil {
		g.cg.stopTimers()
	}
	g.state = groupDead
}

// isEmptyLocked: no members of either protocol and nothing in progress (expiry, deletion).
func (g *group) isEmptyLocked() bool {
	if g.typ == groupTypeConsumer {
		return len(g.cg.members) == 0
	}
	return len(g.members) == 0 && len(g.pending) == 0 && g.state == groupEmpty
}

// joinArgs is a JoinGroup request with what the connection adds.
type joinArgs struct {
	req        *kmsg.JoinGroupRequest
	clientID   string
	clientHost string
}

// joinLocked applies a JoinGroup. It returns either a response to send now, or a channel the
// response will arrive on.
func (g *group) joinLocked(a joinArgs) (*kmsg.JoinGroupResponse, chan *kmsg.JoinGroupResponse) {
	req := a.req
	fail := func(code int16, memberID string) (*kmsg.JoinGroupResponse, chan *kmsg.JoinGroupResponse) {
		r := kmsg.NewPtrJoinGroupResponse()
		r.ErrorCode, r.MemberID, r.Generation = code, memberID, -1
		return r, nil
	}
	if g.state == groupDead {
		return fail(kerr.CoordinatorNotAvailable.Code, req.MemberID)
	}
	if g.typ == groupTypeConsumer {
		if len(g.cg.members) > 0 { // no online migration (KIP-848 upgrade path) in Sediment
			return fail(kerr.InconsistentGroupProtocol.Code, req.MemberID)
		}
		// An empty consumer group becomes classic on its first classic join, as Kafka converts it;
		// generations continue from the group epoch.
		g.generation, g.typ, g.cg = g.cg.groupEpoch, groupTypeNone, nil
	}
	session := time.Duration(req.SessionTimeoutMillis) * time.Millisecond
	rebalance := time.Duration(req.RebalanceTimeoutMillis) * time.Millisecond
	if req.Version == 0 {
		rebalance = session
	}
	inst := ""
	if req.InstanceID != nil {
		inst = *req.InstanceID
	}

	except := req.MemberID
	if id, ok := g.static[inst]; ok && inst != "" {
		except = id
	}
	if !g.supportsProtocolsLocked(req.ProtocolType, req.Protocols, except) {
		return fail(kerr.InconsistentGroupProtocol.Code, req.MemberID)
	}

	var m *member
	isNew := false
	switch {
	case inst != "":
		old, known := g.static[inst]
		switch {
		case req.MemberID == "" && known:
			// A static member restarted: it takes over its old identity under a new member id; the old
			// incarnation is fenced (KIP-345).
			om := g.members[old]
			if !g.supportsProtocolsLocked(req.ProtocolType, req.Protocols, old) {
				return fail(kerr.InconsistentGroupProtocol.Code, req.MemberID)
			}
			if om.join != nil {
				r := kmsg.NewPtrJoinGroupResponse()
				r.ErrorCode, r.MemberID, r.Generation = kerr.FencedInstanceID.Code, old, -1
				om.join <- r
				om.join = nil
			}
			if om.sync != nil {
				r := kmsg.NewPtrSyncGroupResponse()
				r.ErrorCode = kerr.FencedInstanceID.Code
				om.sync <- r
				om.sync = nil
			}
			delete(g.members, old)
			om.id = newMemberID(inst)
			g.members[om.id] = om
			g.static[inst] = om.id
			if g.leader == old {
				g.leader = om.id
			}
			m = om
			if g.state == groupStable && sameProtocols(m.protocols, req.Protocols) && g.leader != m.id {
				// Same subscription: no rebalance; it gets its previous assignment from SyncGroup.
				m.clientID, m.clientHost = a.clientID, a.clientHost
				m.session, m.rebalance = session, rebalance
				g.touchLocked(m)
				return g.joinResponseLocked(m), nil
			}
		case req.MemberID == "":
			isNew = true
			m = &member{id: newMemberID(inst), instanceID: inst}
		case !known:
			return fail(kerr.UnknownMemberID.Code, req.MemberID)
		case old != req.MemberID:
			return fail(kerr.FencedInstanceID.Code, req.MemberID)
		default:
			m = g.members[old]
		}
	case req.MemberID == "":
		if len(g.members)+len(g.pending) >= g.gc.config().MaxSize {
			return fail(kerr.GroupMaxSizeReached.Code, "")
		}
		if req.Version >= 4 { // KIP-394: hand out an id; the member rejoins with it
			id := newMemberID(a.clientID)
			g.pending[id] = time.AfterFunc(session, func() {
				g.mu.Lock()
				defer g.mu.Unlock()
				if t, ok := g.pending[id]; ok {
					t.Stop()
					delete(g.pending, id)
					g.maybeCompleteJoinLocked()
				}
			})
			return fail(kerr.MemberIDRequired.Code, id)
		}
		isNew = true
		m = &member{id: newMemberID(a.clientID)}
	default:
		if t, ok := g.pending[req.MemberID]; ok {
			t.Stop()
			delete(g.pending, req.MemberID)
			isNew = true
			m = &member{id: req.MemberID}
		} else if m = g.members[req.MemberID]; m == nil {
			if _, claimed := g.adopt[req.MemberID]; !claimed && !g.adoptableLocked(req.MemberID, 0) {
				return fail(kerr.UnknownMemberID.Code, req.MemberID)
			}
			// Takeover: a member of the previous coordinator rejoins under its id.
			if _, claimed := g.adopt[req.MemberID]; !claimed {
				g.adoptLocked(req.MemberID, 0)
			}
			isNew = true
			m = &member{id: req.MemberID}
		}
	}
	if isNew && len(g.members) >= g.gc.config().MaxSize {
		return fail(kerr.GroupMaxSizeReached.Code, m.id)
	}
	if !g.supportsProtocolsLocked(req.ProtocolType, req.Protocols, m.id) {
		return fail(kerr.InconsistentGroupProtocol.Code, req.MemberID)
	}

	changed := isNew || !sameProtocols(m.protocols, req.Protocols)
	m.clientID, m.clientHost = a.clientID, a.clientHost
	m.session, m.rebalance = session, rebalance
	m.protocolType, m.protocols = req.ProtocolType, req.Protocols
	if isNew {
		g.members[m.id] = m
		if inst != "" {
			g.static[inst] = m.id
		}
		if g.initialDelay {
			g.newMemberAdded = true
		}
	}
	if len(g.members) == 1 || g.typ == groupTypeNone {
		g.protocolType, g.typ = req.ProtocolType, groupTypeClassic
	}
	g.touchLocked(m)

	// An existing member rejoining with unchanged metadata gets the current generation back (it
	// probably lost the previous response): always while the group completes a rebalance, and while
	// stable unless it is the leader (a leader's rejoin asks for a new assignment), as Kafka.
	if !changed && (g.state == groupCompletingRebalance || (g.state == groupStable && m.id != g.leader)) {
		return g.joinResponseLocked(m), nil
	}
	if m.join != nil { // a duplicate join replaces the older one
		r := kmsg.NewPtrJoinGroupResponse()
		r.ErrorCode, r.MemberID, r.Generation = kerr.RebalanceInProgress.Code, m.id, -1
		m.join <- r
	}
	ch := make(chan *kmsg.JoinGroupResponse, 1)
	m.join = ch
	if g.state != groupPreparingRebalance {
		g.prepareRebalanceLocked()
	}
	g.maybeCompleteJoinLocked()
	return nil, ch
}

// staticFencedLocked: the request names an instance id mapped to another member id.
func (g *group) staticFencedLocked(inst *string, memberID string) bool {
	if inst == nil || *inst == "" {
		return false
	}
	id, ok := g.static[*inst]
	return ok && id != memberID
}

func (g *group) syncLocked(req *kmsg.SyncGroupRequest) (*kmsg.SyncGroupResponse, chan *kmsg.SyncGroupResponse) {
	r := kmsg.NewPtrSyncGroupResponse()
	fail := func(code int16) (*kmsg.SyncGroupResponse, chan *kmsg.SyncGroupResponse) {
		r.ErrorCode = code
		return r, nil
	}
	if g.state == groupDead {
		return fail(kerr.CoordinatorNotAvailable.Code)
	}
	if g.staticFencedLocked(req.InstanceID, req.MemberID) {
		return fail(kerr.FencedInstanceID.Code)
	}
	m := g.members[req.MemberID]
	if m == nil {
		return fail(kerr.UnknownMemberID.Code)
	}
	if req.Generation != g.generation {
		return fail(kerr.IllegalGeneration.Code)
	}
	if (req.ProtocolType != nil && *req.ProtocolType != g.protocolType) || (req.Protocol != nil && *req.Protocol != g.protocol) {
		return fail(kerr.InconsistentGroupProtocol.Code)
	}
	pt, p := g.protocolType, g.protocol
	r.ProtocolType, r.Protocol = &pt, &p
	switch g.state {
	case groupPreparingRebalance:
		return fail(kerr.RebalanceInProgress.Code)
	case groupStable:
		g.touchLocked(m)
		r.MemberAssignment = m.assignment
		return r, nil
	case groupCompletingRebalance:
		g.touchLocked(m)
		if m.sync != nil {
			old := kmsg.NewPtrSyncGroupResponse()
			old.ErrorCode = kerr.RebalanceInProgress.Code
			m.sync <- old
		}
		ch := make(chan *kmsg.SyncGroupResponse, 1)
		m.sync = ch
		if m.id == g.leader {
			for _, o := range g.members {
				o.assignment = nil
			}
			for _, a := range req.GroupAssignment {
				if o := g.members[a.MemberID]; o != nil {
					o.assignment = a.MemberAssignment
				}
			}
			g.state = groupStable
			for _, o := range g.members {
				if o.sync != nil {
					sr := kmsg.NewPtrSyncGroupResponse()
					sr.ProtocolType, sr.Protocol = &pt, &p
					sr.MemberAssignment = o.assignment
					o.sync <- sr
					o.sync = nil
				}
			}
		}
		return nil, ch
	}
	return fail(kerr.UnknownMemberID.Code)
}

func (g *group) heartbeatLocked(req *kmsg.HeartbeatRequest) int16 {
	if g.state == groupDead {
		return kerr.CoordinatorNotAvailable.Code
	}
	if g.staticFencedLocked(req.InstanceID, req.MemberID) {
		return kerr.FencedInstanceID.Code
	}
	m := g.members[req.MemberID]
	if m == nil {
		if code, ok := g.takeoverHeartbeatLocked(req.MemberID, req.Generation); ok {
			return code
		}
		return kerr.UnknownMemberID.Code
	}
	if req.Generation != g.generation {
		return kerr.IllegalGeneration.Code
	}
	g.touchLocked(m)
	if g.state == groupPreparingRebalance {
		return kerr.RebalanceInProgress.Code
	}
	return 0
}

// leaveLocked removes one member (by member id, or by instance id for static members, v3+).
func (g *group) leaveLocked(memberID string, inst *string) int16 {
	var m *member
	if inst != nil && *inst != "" {
		id, ok := g.static[*inst]
		if !ok {
			return kerr.UnknownMemberID.Code
		}
		if memberID != "" && memberID != id {
			return kerr.FencedInstanceID.Code
		}
		m = g.members[id]
	} else {
		if t, ok := g.pending[memberID]; ok {
			t.Stop()
			delete(g.pending, memberID)
			g.maybeCompleteJoinLocked()
			return 0
		}
		m = g.members[memberID]
	}
	if m == nil {
		return kerr.UnknownMemberID.Code
	}
	g.removeMemberLocked(m, kerr.UnknownMemberID.Code)
	return 0
}

// commitCheckLocked validates a classic OffsetCommit's generation and member (Kafka's rules).
// A group-less ("simple") commit has generation -1 and is accepted while the group is empty.
// monotonic: accepted only where no committed offset moves backwards (takeover, group_takeover.go).
func (g *group) commitCheckLocked(generation int32, memberID string, inst *string) (code int16, monotonic bool) {
	if g.state != groupDead && g.typ != groupTypeConsumer && g.members[memberID] == nil && !g.staticFencedLocked(inst, memberID) {
		if claimed, ok := g.adopt[memberID]; (ok && claimed == generation) || (!ok && g.adoptableLocked(memberID, generation)) {
			g.adoptLocked(memberID, generation)
			return 0, true
		}
	}
	return g.commitCheckStrictLocked(generation, memberID, inst), false
}

func (g *group) commitCheckStrictLocked(generation int32, memberID string, inst *string) int16 {
	if g.state == groupDead {
		return kerr.CoordinatorNotAvailable.Code
	}
	if g.typ == groupTypeConsumer {
		return g.cg.commitCheckLocked(g, generation, memberID)
	}
	if generation < 0 && g.state == groupEmpty {
		return 0
	}
	if g.staticFencedLocked(inst, memberID) {
		return kerr.FencedInstanceID.Code
	}
	m := g.members[memberID]
	if m == nil {
		return kerr.UnknownMemberID.Code
	}
	if generation != g.generation {
		return kerr.IllegalGeneration.Code
	}
	if g.state == groupCompletingRebalance {
		return kerr.RebalanceInProgress.Code
	}
	g.touchLocked(m)
	return 0
}

// subscribedTopicsLocked: topics the members subscribe to, from their consumer-protocol metadata
// (classic) or their subscriptions (KIP-848). ok=false when the protocol is not the consumer one.
func (g *group) subscribedTopicsLocked() (map[string]bool, bool) {
	out := map[string]bool{}
	if g.typ == groupTypeConsumer {
		for _, t := range g.cg.subscribedTopics() {
			out[t] = true
		}
		return out, true
	}
	if g.protocolType != "consumer" {
		return nil, false
	}
	for _, m := range g.members {
		var md kmsg.ConsumerMemberMetadata
		if err := md.ReadFrom(m.metadataFor(g.protocol)); err != nil {
			continue
		}
		for _, t := range md.Topics {
			out[t] = true
		}
	}
	return out, true
}
