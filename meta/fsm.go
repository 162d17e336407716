package meta

import (
	"maps"
	"slices"
	"sort"
	"strings"
)

// applyResult is what applying one command returns. It travels as the raft.ApplyFuture response, over
// the forwarding path (JSON) and is remembered in the idempotency table.
type applyResult struct {
	Index     uint64     `json:",omitempty"` // log index the command was applied at
	Code      errCode    `json:",omitempty"` // 0 = success
	Reason    string     `json:",omitempty"`
	Epoch     int64      `json:",omitempty"` // RegisterBroker: the broker epoch
	First     int64      `json:",omitempty"` // AllocateProducerIDs: first id of the block
	TopicID   TopicID    `json:",omitzero"`  // CreateTopic
	Partition *Partition `json:",omitempty"` // AlterPartition: the partition after the change
	Errs      []itemErr  `json:",omitempty"` // batch commands: one outcome per item

	Multi []*applyResult `json:"-"` // multi entry: each inner command's result (answered locally, never stored)
}

// itemErr is one item's outcome in a batch command (Code 0 = applied).
type itemErr struct {
	Code   errCode `json:",omitempty"`
	Reason string  `json:",omitempty"`
}

func (r *applyResult) err() error {
	if r == nil || r.Code == 0 {
		return nil
	}
	return &Error{Code: r.Code, Reason: r.Reason}
}

func failed(e *Error) *applyResult { return &applyResult{Code: e.Code, Reason: e.Reason} }

// builder makes the next State from the current one, copying each map and topic at most once per
// batch of log entries (copy on write), so readers of the old State are never disturbed.
type builder struct {
	s *State

	brokersOwned, topicsOwned, remoteOwned, deletedOwned bool
	ownTopic                                             map[TopicID]bool

	events []Event
	heard  []int32 // brokers whose registration or heartbeat was applied (for the controller's clock)
	sub    int     // 1-based position of the command inside a multi entry; 0 = a plain entry
}

func newBuilder(base *State) *builder {
	s := *base
	return &builder{s: &s, ownTopic: map[TopicID]bool{}}
}

func (b *builder) brokers() map[int32]Broker {
	if !b.brokersOwned {
		b.s.brokers = maps.Clone(b.s.brokers)
		b.brokersOwned = true
	}
	return b.s.brokers
}

func (b *builder) topicsW() (map[TopicID]*Topic, map[string]TopicID) {
	if !b.topicsOwned {
		b.s.topics = maps.Clone(b.s.topics)
		b.s.byName = maps.Clone(b.s.byName)
		b.topicsOwned = true
	}
	return b.s.topics, b.s.byName
}

// topic returns a writable copy of a topic (Partitions cloned; partition slices are replaced, never
// written in place; Configs replaced, never written in place).
func (b *builder) topic(id TopicID) *Topic {
	topics, _ := b.topicsW()
	t := topics[id]
	if !b.ownTopic[id] {
		c := *t
		c.Partitions = slices.Clone(t.Partitions)
		t = &c
		topics[id] = t
		b.ownTopic[id] = true
	}
	return t
}

func (b *builder) remoteW() map[partKey][]RemoteSegment {
	if !b.remoteOwned {
		b.s.remote = maps.Clone(b.s.remote)
		b.remoteOwned = true
	}
	return b.s.remote
}

func (b *builder) deletedW() map[TopicID]string {
	if !b.deletedOwned {
		b.s.deletedTopics = maps.Clone(b.s.deletedTopics)
		b.deletedOwned = true
	}
	return b.s.deletedTopics
}

func (b *builder) emit(e Event) { b.events = append(b.events, e) }

func (b *builder) live(id int32) bool {
	br, ok := b.s.brokers[id]
	return ok && !br.Fenced
}

// apply runs one decoded command at log index idx. It validates everything before changing anything,
// so a rejected command leaves no trace. It must be deterministic: no clocks, no randomness, no map
// iteration order leaking into the state.
func (b *builder) apply(c command, idx uint64) *applyResult {
	switch x := c.body.(type) {
	case *cmdNoop:
		return &applyResult{}
	case *cmdInitCluster:
		if x.ClusterID == "" {
			return failed(reject(ErrInvalidRequest, "empty cluster id"))
		}
		if b.s.clusterID == "" { // first one wins; later ones (a retried proposal, a new leader) are no-ops
			b.s.clusterID = x.ClusterID
		}
		return &applyResult{}
	case *cmdRegisterBroker:
		return b.registerBroker(x, idx)
	case *cmdHeartbeat:
		return b.heartbeat(x)
	case *cmdFenceBroker:
		return b.fenceBroker(x)
	case *cmdCreateTopic:
		return b.createTopic(x)
	case *cmdDeleteTopic:
		return b.deleteTopic(x)
	case *cmdCreatePartitions:
		return b.createPartitions(x)
	case *cmdAlterConfigs:
		return b.alterConfigs(x)
	case *cmdAlterClusterConfigs:
		return b.alterClusterConfigs(x)
	case *cmdAlterPartition:
		return b.alterPartition(x)
	case *cmdAllocateProducerIDs:
		return b.allocateProducerIDs(x)
	case *cmdElectPreferred:
		return b.electPreferred(x)
	case *cmdCommitOffsets:
		return b.commitOffsets(x)
	case *cmdDeleteOffsets:
		return b.deleteOffsets(x)
	case *cmdCommitOffsetsBatch:
		out := &applyResult{Errs: make([]itemErr, len(x.Groups))}
		for i, g := range x.Groups {
			r := b.commitOffsets(&cmdCommitOffsets{Group: g.Group, Offsets: g.Offsets})
			out.Errs[i] = itemErr{r.Code, r.Reason}
		}
		return out
	case *cmdDeleteOffsetsBatch:
		out := &applyResult{Errs: make([]itemErr, len(x.Groups))}
		for i, g := range x.Groups {
			r := b.deleteOffsets(&cmdDeleteOffsets{Group: g.Group, Partitions: g.Partitions})
			out.Errs[i] = itemErr{r.Code, r.Reason}
		}
		return out
	case *cmdAddRemoteSegment:
		return b.addRemoteSegment(x)
	case *cmdRemoveRemoteSegments:
		return b.removeRemoteSegments(x)
	}
	return failed(reject(ErrCorruptCommand, "unknown command %T", c.body))
}

// ---- brokers ----

func validHost(h string) bool { return h != "" && len(h) <= 255 && !strings.ContainsAny(h, " \t\r\n") }

func (b *builder) registerBroker(x *cmdRegisterBroker, idx uint64) *applyResult {
	if x.ID < 0 {
		return failed(reject(ErrInvalidRequest, "broker id %d is negative", x.ID))
	}
	if !validHost(x.Host) || x.Port <= 0 || x.Port > 65535 {
		return failed(reject(ErrInvalidRequest, "broker %d: bad listener %q:%d", x.ID, x.Host, x.Port))
	}
	if x.Incarnation == "" {
		return failed(reject(ErrInvalidRequest, "broker %d: empty incarnation id", x.ID))
	}
	if len(x.Rack) > 255 {
		return failed(reject(ErrInvalidRequest, "broker %d: rack name too long", x.ID))
	}
	old, had := b.s.brokers[x.ID]
	if had && old.Incarnation == x.Incarnation {
		b.heard = append(b.heard, x.ID)
		if old.Fenced { // the same process registering again after being fenced: let it back in
			b.setFenced(x.ID, false)
		}
		return &applyResult{Epoch: old.Epoch}
	}
	if had && !old.Fenced {
		// A new incarnation replaces the old process: whatever it led loses its leadership first (its
		// in-memory state is gone), exactly as if it had been fenced.
		b.moveLeadersAway(x.ID)
	}
	epoch := brokerEpoch(idx, b.sub)
	b.brokers()[x.ID] = Broker{
		ID: x.ID, Host: x.Host, Port: x.Port, Rack: x.Rack, RaftAddr: x.RaftAddr,
		Incarnation: x.Incarnation, Epoch: epoch, Fenced: true,
	}
	b.setFenced(x.ID, false)
	b.heard = append(b.heard, x.ID)
	return &applyResult{Epoch: epoch}
}

// brokerEpoch is Kafka's broker epoch made unique per registration: the Raft index of the entry in the
// high bits, the command's position inside a multi entry in the low 16.
func brokerEpoch(idx uint64, sub int) int64 { return int64(idx)<<16 | int64(sub) }

func (b *builder) heartbeat(x *cmdHeartbeat) *applyResult {
	br, ok := b.s.brokers[x.ID]
	if !ok {
		return failed(reject(ErrUnknownBroker, "broker %d is not registered", x.ID))
	}
	if br.Epoch != x.Epoch {
		return failed(reject(ErrStaleBrokerEpoch, "broker %d epoch %d, current %d", x.ID, x.Epoch, br.Epoch))
	}
	b.heard = append(b.heard, x.ID)
	if br.Fenced {
		b.setFenced(x.ID, false)
	}
	return &applyResult{Epoch: br.Epoch}
}

func (b *builder) fenceBroker(x *cmdFenceBroker) *applyResult {
	br, ok := b.s.brokers[x.ID]
	if !ok {
		return failed(reject(ErrUnknownBroker, "broker %d is not registered", x.ID))
	}
	if br.Epoch != x.Epoch {
		return failed(reject(ErrStaleBrokerEpoch, "broker %d epoch %d, current %d", x.ID, x.Epoch, br.Epoch))
	}
	if br.Fenced {
		return &applyResult{} // already fenced: applying twice changes nothing
	}
	b.setFenced(x.ID, true)
	return &applyResult{}
}

// setFenced flips a broker's fenced flag and performs the elections that follow from it.
func (b *builder) setFenced(id int32, fenced bool) {
	br := b.s.brokers[id]
	if br.Fenced == fenced {
		return
	}
	if fenced {
		br.Fenced = true
		b.brokers()[id] = br
		b.moveLeadersAway(id)
	} else {
		br.Fenced = false
		b.brokers()[id] = br
		b.electLeaderless(id)
	}
	b.emit(Event{Kind: BrokerChanged, BrokerID: id, Partition: -1})
}

func (b *builder) uncleanAllowed(t *Topic) bool {
	return strings.EqualFold(strings.TrimSpace(t.Configs["unclean.leader.election.enable"]), "true")
}

// sortedTopicIDs gives a deterministic iteration order (events are ordered by it too).
func (b *builder) sortedTopicIDs() []TopicID {
	ids := make([]TopicID, 0, len(b.s.topics))
	for id := range b.s.topics {
		ids = append(ids, id)
	}
	sort.Slice(ids, func(i, j int) bool { return string(ids[i][:]) < string(ids[j][:]) })
	return ids
}

// moveLeadersAway removes broker id (which is or is about to be fenced) from every ISR it is in and
// gives every partition it led a new leader from the remaining ISR, bumping the leader epoch once.
// If the ISR holds nobody else: an unclean election if the topic allows it, otherwise no leader
// (Leader -1) with the ISR left as the last member (Kafka's rule, so it can come back as leader).
func (b *builder) moveLeadersAway(id int32) {
	for _, tid := range b.sortedTopicIDs() {
		t := b.s.topics[tid]
		for i, p := range t.Partitions {
			inISR := slices.Contains(p.ISR, id)
			if p.Leader != id && !inISR {
				continue
			}
			np := p
			if inISR && len(p.ISR) > 1 {
				np.ISR = without(p.ISR, id)
			}
			if p.Leader == id {
				np.Leader = -1
				for _, r := range p.Replicas { // preferred order
					if r != id && slices.Contains(np.ISR, r) && b.live(r) {
						np.Leader = r
						break
					}
				}
				if np.Leader == -1 && b.uncleanAllowed(t) {
					for _, r := range p.Replicas {
						if r != id && b.live(r) {
							np.Leader, np.ISR = r, []int32{r}
							break
						}
					}
				}
				np.LeaderEpoch++
			}
			if np.Leader == p.Leader && slices.Equal(np.ISR, p.ISR) {
				continue
			}
			np.PartitionEpoch++
			b.topic(tid).Partitions[i] = np
			b.emit(Event{Kind: PartitionChanged, Topic: t.Name, TopicID: tid, Partition: int32(i)})
		}
	}
}

// electLeaderless makes a newly live broker the leader of leaderless partitions where it is in the ISR
// (or, with unclean election allowed, where it is merely a replica).
func (b *builder) electLeaderless(id int32) {
	for _, tid := range b.sortedTopicIDs() {
		t := b.s.topics[tid]
		for i, p := range t.Partitions {
			if p.Leader != -1 || !slices.Contains(p.Replicas, id) {
				continue
			}
			np := p
			switch {
			case slices.Contains(p.ISR, id):
				np.Leader = id
			case b.uncleanAllowed(t):
				np.Leader, np.ISR = id, []int32{id}
			default:
				continue
			}
			np.LeaderEpoch++
			np.PartitionEpoch++
			b.topic(tid).Partitions[i] = np
			b.emit(Event{Kind: PartitionChanged, Topic: t.Name, TopicID: tid, Partition: int32(i)})
		}
	}
}

func without(s []int32, v int32) []int32 {
	out := make([]int32, 0, len(s))
	for _, x := range s {
		if x != v {
			out = append(out, x)
		}
	}
	return out
}

// ---- topics ----

const maxTopicNameLen = 249

// ValidateTopicName applies Kafka's rules: 1..249 characters of [a-zA-Z0-9._-], not "." or "..".
func ValidateTopicName(name string) error {
	if name == "" || name == "." || name == ".." {
		return reject(ErrInvalidTopic, "topic name %q is not allowed", name)
	}
	if len(name) > maxTopicNameLen {
		return reject(ErrInvalidTopic, "topic name is %d characters, the limit is %d", len(name), maxTopicNameLen)
	}
	for _, r := range name {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '.' || r == '_' || r == '-') {
			return reject(ErrInvalidTopic, "topic name %q contains %q; allowed are ASCII letters, digits, '.', '_' and '-'", name, r)
		}
	}
	return nil
}

// maxPartitions bounds one topic (and one command) so a bad request cannot make the state enormous.
const maxPartitions = 100000

func (b *builder) createTopic(x *cmdCreateTopic) *applyResult {
	if err := ValidateTopicName(x.Name); err != nil {
		return failed(err.(*Error))
	}
	if x.ID.IsZero() {
		return failed(reject(ErrInvalidRequest, "topic %q: zero topic id", x.Name))
	}
	if id, ok := b.s.byName[x.Name]; ok {
		if id == x.ID {
			return &applyResult{TopicID: id} // the same proposal applied twice
		}
		return failed(reject(ErrTopicExists, "topic %q already exists", x.Name))
	}
	if _, ok := b.s.topics[x.ID]; ok {
		return failed(reject(ErrInvalidRequest, "topic id %s already in use", x.ID))
	}
	if e := validateTopicConfigs(x.Configs); e != nil {
		return failed(e)
	}
	var assign [][]int32
	if len(x.Assignments) > 0 {
		if x.Partitions > 0 && int(x.Partitions) != len(x.Assignments) || x.ReplicationFactor > 0 {
			return failed(reject(ErrInvalidRequest, "topic %q: give either assignments or partitions/replication factor, not both", x.Name))
		}
		if len(x.Assignments) > maxPartitions {
			return failed(reject(ErrInvalidPartitions, "topic %q: %d partitions exceeds %d", x.Name, len(x.Assignments), maxPartitions))
		}
		if e := b.checkAssignments(x.Name, x.Assignments, len(x.Assignments[0])); e != nil {
			return failed(e)
		}
		assign = x.Assignments
	} else {
		if x.Partitions <= 0 || x.Partitions > maxPartitions {
			return failed(reject(ErrInvalidPartitions, "topic %q: number of partitions must be in 1..%d, got %d", x.Name, maxPartitions, x.Partitions))
		}
		if x.ReplicationFactor <= 0 {
			return failed(reject(ErrInvalidReplicationFactor, "topic %q: replication factor must be positive, got %d", x.Name, x.ReplicationFactor))
		}
		var e *Error
		assign, e = b.place(x.Name, int(x.Partitions), int(x.ReplicationFactor), 0)
		if e != nil {
			return failed(e)
		}
	}
	t := &Topic{ID: x.ID, Name: x.Name, Configs: maps.Clone(x.Configs)}
	if t.Configs == nil {
		t.Configs = map[string]string{}
	}
	for i, r := range assign {
		t.Partitions = append(t.Partitions, b.newPartition(int32(i), r))
	}
	topics, byName := b.topicsW()
	topics[t.ID] = t
	byName[t.Name] = t.ID
	b.ownTopic[t.ID] = true
	b.emit(Event{Kind: TopicCreated, Topic: t.Name, TopicID: t.ID, Partition: -1})
	for i := range t.Partitions {
		b.emit(Event{Kind: PartitionChanged, Topic: t.Name, TopicID: t.ID, Partition: int32(i)})
	}
	return &applyResult{TopicID: t.ID}
}

// newPartition: the ISR is the live replicas; the leader is the first of them (the first replica when
// every replica is live), leader epoch 0.
func (b *builder) newPartition(idx int32, replicas []int32) Partition {
	p := Partition{Index: idx, Replicas: slices.Clone(replicas), Leader: -1}
	for _, r := range replicas {
		if b.live(r) {
			p.ISR = append(p.ISR, r)
		}
	}
	if len(p.ISR) > 0 {
		p.Leader = p.ISR[0]
	}
	return p
}

// checkAssignments validates manual replica assignments as Kafka does.
func (b *builder) checkAssignments(topic string, assign [][]int32, rf int) *Error {
	for i, r := range assign {
		if len(r) == 0 {
			return reject(ErrInvalidReplicaAssignment, "topic %q partition %d: empty replica list", topic, i)
		}
		if len(r) != rf {
			return reject(ErrInvalidReplicaAssignment, "topic %q partition %d: %d replicas, other partitions have %d", topic, i, len(r), rf)
		}
		anyLive := false
		for j, id := range r {
			if slices.Contains(r[:j], id) {
				return reject(ErrInvalidReplicaAssignment, "topic %q partition %d: broker %d listed twice", topic, i, id)
			}
			if _, ok := b.s.brokers[id]; !ok {
				return reject(ErrInvalidReplicaAssignment, "topic %q partition %d: broker %d is not registered", topic, i, id)
			}
			anyLive = anyLive || b.live(id)
		}
		if !anyLive {
			return reject(ErrInvalidReplicaAssignment, "topic %q partition %d: all assigned brokers are fenced", topic, i)
		}
	}
	return nil
}

// place assigns replicas for n new partitions (indexes first..first+n-1) over the live brokers,
// deterministically: each replica goes to the broker with the least load among those whose rack is not
// yet used by the partition (when such a broker exists); the leader slot counts leaderships, the other
// slots count replicas; ties go to the lower load of the other kind, then to a rotation by partition
// index so equal brokers take turns. Load includes every existing topic, so topics spread too.
func (b *builder) place(topic string, n, rf, first int) ([][]int32, *Error) {
	var live []Broker
	for _, br := range b.s.brokers {
		if !br.Fenced {
			live = append(live, br)
		}
	}
	sort.Slice(live, func(i, j int) bool { return live[i].ID < live[j].ID })
	if rf > len(live) {
		return nil, reject(ErrInvalidReplicationFactor, "topic %q: replication factor %d is larger than the %d available brokers", topic, rf, len(live))
	}
	replicas := map[int32]int{}
	leaders := map[int32]int{}
	for _, t := range b.s.topics {
		for _, p := range t.Partitions {
			for _, r := range p.Replicas {
				replicas[r]++
			}
			if len(p.Replicas) > 0 {
				leaders[p.Replicas[0]]++
			}
		}
	}
	out := make([][]int32, n)
	for i := 0; i < n; i++ {
		pidx := first + i
		var chosen []int32
		racks := map[string]bool{}
		for slot := 0; slot < rf; slot++ {
			best, bestPos := -1, 0
			for k := range live {
				pos := (k - pidx%len(live) + len(live)) % len(live) // rotation for ties
				c := live[k]
				if slices.Contains(chosen, c.ID) {
					continue
				}
				if best == -1 {
					best, bestPos = k, pos
					continue
				}
				bb := live[best]
				newRack, bestNewRack := !racks[c.Rack], !racks[bb.Rack]
				if newRack != bestNewRack {
					if newRack {
						best, bestPos = k, pos
					}
					continue
				}
				p1, s1 := leaders[c.ID], replicas[c.ID]
				p2, s2 := leaders[bb.ID], replicas[bb.ID]
				if slot > 0 {
					p1, s1, p2, s2 = s1, p1, s2, p2
				}
				if p1 < p2 || p1 == p2 && (s1 < s2 || s1 == s2 && pos < bestPos) {
					best, bestPos = k, pos
				}
			}
			c := live[best]
			chosen = append(chosen, c.ID)
			racks[c.Rack] = true
			replicas[c.ID]++
			if slot == 0 {
				leaders[c.ID]++
			}
		}
		out[i] = chosen
	}
	return out, nil
}

func (b *builder) deleteTopic(x *cmdDeleteTopic) *applyResult {
	id, ok := b.s.byName[x.Name]
	if !ok || (!x.ID.IsZero() && id != x.ID) {
		return failed(reject(ErrUnknownTopic, "topic %q does not exist", x.Name))
	}
	t := b.s.topics[id]
	topics, byName := b.topicsW()
	delete(topics, id)
	delete(byName, t.Name)
	// Committed offsets of a deleted topic go with it (a re-created topic starts fresh).
	for _, g := range b.s.Groups() {
		m, _ := b.s.offsets.Get(g)
		nm := m
		for i := range t.Partitions {
			nm = nm.Delete(offsetKey(t.Name, int32(i)))
		}
		switch {
		case nm.Len() == 0:
			b.s.offsets = b.s.offsets.Delete(g)
		case nm.Len() != m.Len():
			b.s.offsets = b.s.offsets.Set(g, nm)
		}
	}
	// Remote segments stay listed until tiering deletes the objects: never leak them in the bucket.
	for k := range b.s.remote {
		if k.Topic == id {
			b.deletedW()[id] = t.Name
			break
		}
	}
	b.emit(Event{Kind: TopicDeleted, Topic: t.Name, TopicID: id, Partition: -1})
	return &applyResult{TopicID: id}
}

func (b *builder) createPartitions(x *cmdCreatePartitions) *applyResult {
	id, ok := b.s.byName[x.Name]
	if !ok {
		return failed(reject(ErrUnknownTopic, "topic %q does not exist", x.Name))
	}
	t := b.s.topics[id]
	cur := int32(len(t.Partitions))
	if x.Total <= cur {
		return failed(reject(ErrInvalidPartitions, "topic %q has %d partitions; the new total %d must be larger", x.Name, cur, x.Total))
	}
	if x.Total > maxPartitions {
		return failed(reject(ErrInvalidPartitions, "topic %q: %d partitions exceeds %d", x.Name, x.Total, maxPartitions))
	}
	rf := len(t.Partitions[0].Replicas)
	n := int(x.Total - cur)
	var assign [][]int32
	if len(x.Assignments) > 0 {
		if len(x.Assignments) != n {
			return failed(reject(ErrInvalidReplicaAssignment, "topic %q: %d assignments for %d new partitions", x.Name, len(x.Assignments), n))
		}
		if e := b.checkAssignments(x.Name, x.Assignments, rf); e != nil {
			return failed(e)
		}
		assign = x.Assignments
	} else {
		var e *Error
		if assign, e = b.place(x.Name, n, rf, int(cur)); e != nil {
			return failed(e)
		}
	}
	nt := b.topic(id)
	for i, r := range assign {
		idx := cur + int32(i)
		nt.Partitions = append(nt.Partitions, b.newPartition(idx, r))
		b.emit(Event{Kind: PartitionChanged, Topic: t.Name, TopicID: id, Partition: idx})
	}
	return &applyResult{TopicID: id}
}

// alterClusterConfigs changes the cluster-wide dynamic broker defaults. Removes apply before sets, as
// for topics; the whole change is validated before anything is written.
func (b *builder) alterClusterConfigs(x *cmdAlterClusterConfigs) *applyResult {
	next, e := changedConfigs(b.s.clusterConfigs, x.Remove, x.Set, IsClusterConfig, "cluster", validateClusterConfigs)
	if e != nil {
		return failed(e)
	}
	if maps.Equal(next, b.s.clusterConfigs) {
		return &applyResult{}
	}
	b.s.clusterConfigs = next // a new map: readers of the old State keep theirs
	b.emit(Event{Kind: ClusterConfigChanged, Partition: -1})
	return &applyResult{}
}

// changedConfigs is cur with remove applied, then set, as a new map (readers of the old State keep
// cur); the whole result is validated before anything is written. what names the kind of config in
// the rejection of an unknown name.
func changedConfigs(cur map[string]string, remove []string, set map[string]string, known func(string) bool, what string, validate func(map[string]string) *Error) (map[string]string, *Error) {
	next := maps.Clone(cur)
	if next == nil {
		next = map[string]string{}
	}
	for _, k := range remove {
		if !known(k) {
			return nil, reject(ErrInvalidConfig, "unknown %s config %q", what, k)
		}
		delete(next, k)
	}
	maps.Copy(next, set)
	if e := validate(next); e != nil {
		return nil, e
	}
	return next, nil
}

func (b *builder) alterConfigs(x *cmdAlterConfigs) *applyResult {
	id, ok := b.s.byName[x.Name]
	if !ok {
		return failed(reject(ErrUnknownTopic, "topic %q does not exist", x.Name))
	}
	next, e := changedConfigs(b.s.topics[id].Configs, x.Remove, x.Set, func(k string) bool { _, ok := topicConfigs[k]; return ok }, "topic", validateTopicConfigs)
	if e != nil {
		return failed(e)
	}
	if maps.Equal(next, b.s.topics[id].Configs) {
		return &applyResult{TopicID: id}
	}
	t := b.topic(id)
	wasUnclean := b.uncleanAllowed(t)
	t.Configs = next
	b.emit(Event{Kind: TopicConfigChanged, Topic: t.Name, TopicID: id, Partition: -1})
	if !wasUnclean && b.uncleanAllowed(t) {
		// Kafka elects leaderless partitions when unclean election is switched on.
		for i, p := range t.Partitions {
			if p.Leader != -1 {
				continue
			}
			for _, r := range p.Replicas {
				if b.live(r) {
					np := p
					np.Leader, np.ISR = r, []int32{r}
					np.LeaderEpoch++
					np.PartitionEpoch++
					t.Partitions[i] = np
					b.emit(Event{Kind: PartitionChanged, Topic: t.Name, TopicID: id, Partition: int32(i)})
					break
				}
			}
		}
	}
	return &applyResult{TopicID: id}
}

// alterPartition validates an ISR change proposed by a partition leader as Kafka's AlterPartition:
// the requester must be the live leader at its current broker epoch, the leader epoch and partition
// epoch must be current, the ISR must contain the leader and only replicas, and brokers added to it
// must be live. Members given with a broker epoch (KIP-903) must be live at exactly that epoch.
func (b *builder) alterPartition(x *cmdAlterPartition) *applyResult {
	t, ok := b.s.topics[x.Topic]
	if !ok {
		return failed(reject(ErrUnknownTopicID, "topic id %s does not exist", x.Topic))
	}
	if x.Partition < 0 || int(x.Partition) >= len(t.Partitions) {
		return failed(reject(ErrUnknownTopic, "topic %q has no partition %d", t.Name, x.Partition))
	}
	p := t.Partitions[x.Partition]
	br, ok := b.s.brokers[x.BrokerID]
	if !ok || br.Epoch != x.BrokerEpoch || br.Fenced {
		return failed(reject(ErrStaleBrokerEpoch, "broker %d epoch %d is not the current live registration", x.BrokerID, x.BrokerEpoch))
	}
	if p.Leader != x.BrokerID {
		return failed(reject(ErrNotLeader, "%s-%d: broker %d is not the leader (leader %d)", t.Name, x.Partition, x.BrokerID, p.Leader))
	}
	if x.LeaderEpoch != p.LeaderEpoch {
		return failed(reject(ErrFencedLeaderEpoch, "%s-%d: leader epoch %d, current %d", t.Name, x.Partition, x.LeaderEpoch, p.LeaderEpoch))
	}
	if x.PartitionEpoch != p.PartitionEpoch {
		return failed(reject(ErrStalePartitionEpoch, "%s-%d: partition epoch %d, current %d", t.Name, x.Partition, x.PartitionEpoch, p.PartitionEpoch))
	}
	if !slices.Contains(x.ISR, x.BrokerID) {
		return failed(reject(ErrInvalidRequest, "%s-%d: the ISR must contain the leader %d", t.Name, x.Partition, x.BrokerID))
	}
	if x.ISREpochs != nil && len(x.ISREpochs) != len(x.ISR) {
		return failed(reject(ErrInvalidRequest, "%s-%d: %d ISR epochs for %d ISR members", t.Name, x.Partition, len(x.ISREpochs), len(x.ISR)))
	}
	for i, r := range x.ISR {
		if slices.Contains(x.ISR[:i], r) {
			return failed(reject(ErrInvalidRequest, "%s-%d: broker %d is listed twice in the ISR", t.Name, x.Partition, r))
		}
		if !slices.Contains(p.Replicas, r) {
			return failed(reject(ErrInvalidRequest, "%s-%d: broker %d is not a replica", t.Name, x.Partition, r))
		}
		if !slices.Contains(p.ISR, r) && !b.live(r) {
			return failed(reject(ErrIneligibleReplica, "%s-%d: broker %d is fenced and cannot join the ISR", t.Name, x.Partition, r))
		}
		// KIP-903: the leader's evidence (fetch positions) must come from the broker's current
		// registration; a replica that restarted since (maybe with an empty disk) is not in sync.
		if x.ISREpochs != nil && x.ISREpochs[i] != -1 {
			if br, ok := b.s.brokers[r]; !ok || br.Fenced || br.Epoch != x.ISREpochs[i] {
				return failed(reject(ErrIneligibleReplica, "%s-%d: broker %d epoch %d is not its current live registration (%d)",
					t.Name, x.Partition, r, x.ISREpochs[i], br.Epoch))
			}
		}
	}
	np := p
	// Keep the ISR in replica order so equal sets compare equal across nodes and retries.
	np.ISR = nil
	for _, r := range p.Replicas {
		if slices.Contains(x.ISR, r) {
			np.ISR = append(np.ISR, r)
		}
	}
	np.PartitionEpoch++
	b.topic(x.Topic).Partitions[x.Partition] = np
	b.emit(Event{Kind: PartitionChanged, Topic: t.Name, TopicID: x.Topic, Partition: x.Partition})
	out := clonePartition(np)
	return &applyResult{Partition: &out}
}

// electPreferred moves leadership back to each partition's preferred (first) replica when it is live
// and in the ISR: leader epoch and partition epoch +1. Per-partition outcomes in Errs.
func (b *builder) electPreferred(x *cmdElectPreferred) *applyResult {
	id, ok := b.s.byName[x.Topic]
	if !ok {
		return failed(reject(ErrUnknownTopic, "topic %q does not exist", x.Topic))
	}
	t := b.s.topics[id]
	parts := x.Partitions
	if len(parts) == 0 {
		for i := range t.Partitions {
			parts = append(parts, int32(i))
		}
	}
	out := &applyResult{TopicID: id, Errs: make([]itemErr, len(parts))}
	for i, pi := range parts {
		if pi < 0 || int(pi) >= len(b.s.topics[id].Partitions) {
			e := reject(ErrUnknownTopic, "%s has no partition %d", t.Name, pi)
			out.Errs[i] = itemErr{e.Code, e.Reason}
			continue
		}
		p := b.s.topics[id].Partitions[pi]
		pref := p.Replicas[0]
		switch {
		case p.Leader == pref:
			e := reject(ErrElectionNotNeeded, "%s-%d: broker %d already leads", t.Name, pi, pref)
			out.Errs[i] = itemErr{e.Code, e.Reason}
		case !b.live(pref) || !slices.Contains(p.ISR, pref):
			e := reject(ErrPreferredNotAvailable, "%s-%d: preferred replica %d is fenced or out of sync", t.Name, pi, pref)
			out.Errs[i] = itemErr{e.Code, e.Reason}
		default:
			np := p
			np.Leader = pref
			np.LeaderEpoch++
			np.PartitionEpoch++
			b.topic(id).Partitions[pi] = np
			b.emit(Event{Kind: PartitionChanged, Topic: t.Name, TopicID: id, Partition: pi})
		}
	}
	return out
}

// ---- producer ids, offsets, remote segments ----

// maxProducerIDBlock bounds one allocation (Kafka hands out blocks of 1000).
const maxProducerIDBlock = 1 << 20

func (b *builder) allocateProducerIDs(x *cmdAllocateProducerIDs) *applyResult {
	if _, ok := b.s.brokers[x.BrokerID]; !ok {
		return failed(reject(ErrUnknownBroker, "broker %d is not registered", x.BrokerID))
	}
	if x.Count <= 0 || x.Count > maxProducerIDBlock {
		return failed(reject(ErrInvalidRequest, "producer id block size must be in 1..%d, got %d", maxProducerIDBlock, x.Count))
	}
	first := b.s.nextProducerID
	if first > (1<<63-1)-x.Count {
		return failed(reject(ErrInvalidRequest, "producer id space exhausted"))
	}
	b.s.nextProducerID = first + x.Count
	return &applyResult{First: first}
}

const maxGroupNameLen = 32767

func (b *builder) commitOffsets(x *cmdCommitOffsets) *applyResult {
	if x.Group == "" || len(x.Group) > maxGroupNameLen {
		return failed(reject(ErrInvalidRequest, "group id must be 1..%d bytes", maxGroupNameLen))
	}
	if len(x.Offsets) == 0 {
		return &applyResult{}
	}
	for _, o := range x.Offsets {
		id, ok := b.s.byName[o.Topic]
		if !ok || o.Partition < 0 || int(o.Partition) >= len(b.s.topics[id].Partitions) {
			return failed(reject(ErrUnknownTopic, "group %q: %s-%d does not exist", x.Group, o.Topic, o.Partition))
		}
		if o.Offset < -1 {
			return failed(reject(ErrInvalidRequest, "group %q: %s-%d: offset %d", x.Group, o.Topic, o.Partition, o.Offset))
		}
	}
	m, ok := b.s.offsets.Get(x.Group)
	if !ok {
		m = newGroupOffsets()
	}
	for _, o := range x.Offsets {
		m = m.Set(offsetKey(o.Topic, o.Partition), CommittedOffset{Offset: o.Offset, LeaderEpoch: o.LeaderEpoch, Metadata: o.Metadata, CommitTime: o.CommitTime})
	}
	b.s.offsets = b.s.offsets.Set(x.Group, m)
	return &applyResult{}
}

func (b *builder) deleteOffsets(x *cmdDeleteOffsets) *applyResult {
	m, ok := b.s.offsets.Get(x.Group)
	if !ok {
		return &applyResult{} // nothing to delete: also what a second application sees
	}
	if len(x.Partitions) > 0 {
		for _, tp := range x.Partitions {
			m = m.Delete(offsetKey(tp.Topic, tp.Partition))
		}
	}
	if len(x.Partitions) == 0 || m.Len() == 0 {
		b.s.offsets = b.s.offsets.Delete(x.Group)
	} else {
		b.s.offsets = b.s.offsets.Set(x.Group, m)
	}
	return &applyResult{}
}

func (b *builder) addRemoteSegment(x *cmdAddRemoteSegment) *applyResult {
	t, ok := b.s.topics[x.Topic]
	if !ok {
		return failed(reject(ErrUnknownTopicID, "topic id %s does not exist", x.Topic))
	}
	if x.Partition < 0 || int(x.Partition) >= len(t.Partitions) {
		return failed(reject(ErrUnknownTopic, "topic %q has no partition %d", t.Name, x.Partition))
	}
	s := x.Segment
	if s.ObjectKey == "" || s.BaseOffset < 0 || s.LastOffset < s.BaseOffset || s.Size < 0 {
		return failed(reject(ErrInvalidRequest, "%s-%d: bad remote segment (key %q, offsets %d..%d, size %d)", t.Name, x.Partition, s.ObjectKey, s.BaseOffset, s.LastOffset, s.Size))
	}
	k := partKey{x.Topic, x.Partition}
	segs := b.s.remote[k]
	for _, old := range segs {
		if old.ObjectKey == s.ObjectKey && old == s {
			return &applyResult{} // applied twice (checked first: the epoch may have moved since)
		}
	}
	// Fencing: only the current leader commits uploads. A deposed leader's late commit (its task
	// not yet stopped when leadership moved) is refused; its object is an orphan for the collector.
	// Only for entries that ask (version 3), so older logs replay to the manifest they built.
	if cur := t.Partitions[x.Partition].LeaderEpoch; x.FenceEpoch && s.LeaderEpoch < cur {
		return failed(reject(ErrFencedLeaderEpoch, "%s-%d: segment %d..%d uploaded under leader epoch %d, the partition is at %d", t.Name, x.Partition, s.BaseOffset, s.LastOffset, s.LeaderEpoch, cur))
	}
	for _, old := range segs {
		if old.ObjectKey == s.ObjectKey {
			return failed(reject(ErrInvalidRequest, "%s-%d: object key %q already used by another segment", t.Name, x.Partition, s.ObjectKey))
		}
	}
	if n := len(segs); n > 0 && s.BaseOffset <= segs[n-1].LastOffset {
		return failed(reject(ErrInvalidRequest, "%s-%d: segment %d..%d overlaps the manifest's end at %d", t.Name, x.Partition, s.BaseOffset, s.LastOffset, segs[n-1].LastOffset))
	}
	b.remoteW()[k] = append(slices.Clip(segs), s)
	b.emit(Event{Kind: RemoteManifestChanged, Topic: t.Name, TopicID: x.Topic, Partition: x.Partition})
	return &applyResult{}
}

func (b *builder) removeRemoteSegments(x *cmdRemoveRemoteSegments) *applyResult {
	k := partKey{x.Topic, x.Partition}
	segs, ok := b.s.remote[k]
	if !ok {
		if _, live := b.s.topics[x.Topic]; !live {
			if _, deleted := b.s.deletedTopics[x.Topic]; !deleted {
				return failed(reject(ErrUnknownTopicID, "topic id %s does not exist", x.Topic))
			}
		}
		return &applyResult{}
	}
	var kept []RemoteSegment
	for _, s := range segs {
		if !slices.Contains(x.ObjectKeys, s.ObjectKey) {
			kept = append(kept, s)
		}
	}
	if len(kept) == len(segs) {
		return &applyResult{} // absent keys: already removed
	}
	name := ""
	if t, ok := b.s.topics[x.Topic]; ok {
		name = t.Name
	}
	if len(kept) == 0 {
		delete(b.remoteW(), k)
		if _, deleted := b.s.deletedTopics[x.Topic]; deleted {
			still := false
			for rk := range b.s.remote {
				if rk.Topic == x.Topic {
					still = true
					break
				}
			}
			if !still {
				delete(b.deletedW(), x.Topic)
			}
		}
	} else {
		b.remoteW()[k] = kept
	}
	b.emit(Event{Kind: RemoteManifestChanged, Topic: name, TopicID: x.Topic, Partition: x.Partition})
	return &applyResult{}
}
