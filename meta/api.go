package meta

import (
	"context"
	"crypto/rand"
	"fmt"
	"time"
)

func randomBytes(n int) []byte {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return b
}

// newTopicID returns a random (version 4) UUID that is not zero.
func newTopicID() TopicID {
	var id TopicID
	copy(id[:], randomBytes(16))
	id[6] = id[6]&0x0f | 0x40
	id[8] = id[8]&0x3f | 0x80
	return id
}

// RegisterBroker registers this node's broker and keeps its session alive with heartbeats every
// HeartbeatInterval until Close. It returns the broker epoch (Kafka's: the Raft index of the
// registration). Calling it again re-registers with the same incarnation (same epoch unless fenced).
func (n *Node) RegisterBroker(ctx context.Context, b BrokerRegistration) (int64, error) {
	res, err := n.propose(ctx, &cmdRegisterBroker{
		ID: b.ID, Host: b.Host, Port: b.Port, Rack: b.Rack,
		RaftAddr: n.cfg.RaftAdvertise, Incarnation: n.incarnation,
	}, true)
	if err != nil {
		return 0, err
	}
	n.regMu.Lock()
	reg := b
	n.reg = &reg
	n.brokerEp.Store(res.Epoch)
	n.hbPaused.Store(false)
	start := !n.hbStarted
	n.hbStarted = true
	n.regMu.Unlock()
	if start {
		n.wg.Add(1)
		go n.heartbeatLoop()
	}
	return res.Epoch, nil
}

// BrokerEpoch returns this node's registered broker id and epoch.
func (n *Node) BrokerEpoch() (id int32, epoch int64, ok bool) {
	n.regMu.Lock()
	defer n.regMu.Unlock()
	if n.reg == nil {
		return -1, 0, false
	}
	return n.reg.ID, n.brokerEp.Load(), true
}

func (n *Node) heartbeatLoop() {
	defer n.wg.Done()
	t := time.NewTicker(n.cfg.HeartbeatInterval)
	defer t.Stop()
	for {
		select {
		case <-n.closing:
			return
		case <-t.C:
		}
		n.heartbeatOnce()
	}
}

// heartbeatOnce sends one heartbeat, re-registering if the controller no longer knows this incarnation.
// It holds hbMu throughout, so ControlledShutdown can wait for it and no heartbeat lands after its fence.
func (n *Node) heartbeatOnce() {
	n.hbMu.Lock()
	defer n.hbMu.Unlock()
	if n.hbPaused.Load() {
		return
	}
	id, epoch, _ := n.BrokerEpoch()
	// A third of the session, not all of it: a heartbeat forwarded to a controller that stops
	// answering without closing its connections (a paused process) waits out this timeout. With the
	// whole session the next heartbeat, to the newly elected controller, came too late and the new
	// controller fenced this live broker as well; now up to three attempts fit in one session.
	ctx, cancel := context.WithTimeout(context.Background(), n.cfg.SessionTimeout/3)
	defer cancel()
	_, err := n.propose(ctx, &cmdHeartbeat{ID: id, Epoch: epoch}, false)
	if err == nil {
		return
	}
	select {
	case <-n.closing:
		return
	default:
	}
	if isCode(err, ErrStaleBrokerEpoch) || isCode(err, ErrUnknownBroker) {
		n.regMu.Lock()
		reg := *n.reg
		n.regMu.Unlock()
		if _, err := n.RegisterBroker(ctx, reg); err != nil {
			n.log.Warn("re-registration failed", "err", err)
		}
		return
	}
	n.log.Warn("broker heartbeat failed", "err", err)
}

func isCode(err error, sentinel error) bool {
	e, ok := err.(*Error)
	return ok && e.Unwrap() == sentinel
}

// TopicSpec describes a topic to create. Partitions/ReplicationFactor, or Assignments (replica lists
// per partition; the first replica is the preferred leader) with Partitions/ReplicationFactor <= 0.
type TopicSpec struct {
	Name              string
	Partitions        int32
	ReplicationFactor int16
	Assignments       [][]int32
	Configs           map[string]string
	ValidateOnly      bool
}

// CreateTopic creates a topic with a new UUID and returns it as committed. With ValidateOnly it runs
// the same checks against the local state and returns the topic it would create, committing nothing
// (callers answering a client call CatchUp first: the local state can trail the committed log).
func (n *Node) CreateTopic(ctx context.Context, spec TopicSpec) (*Topic, error) {
	cmd := &cmdCreateTopic{ID: newTopicID(), Name: spec.Name, Partitions: spec.Partitions,
		ReplicationFactor: spec.ReplicationFactor, Assignments: spec.Assignments, Configs: spec.Configs}
	if spec.ValidateOnly {
		b := newBuilder(n.State())
		if r := b.createTopic(cmd); r.err() != nil {
			return nil, r.err()
		}
		t, _ := b.s.TopicByID(cmd.ID)
		return t, nil
	}
	res, err := n.propose(ctx, cmd, true)
	if err != nil {
		return nil, err
	}
	t, ok := n.State().TopicByID(res.TopicID)
	if !ok {
		return nil, reject(ErrUnknownTopic, "topic %q was deleted right after creation", spec.Name)
	}
	return t, nil
}

// DeleteTopic deletes a topic by name.
func (n *Node) DeleteTopic(ctx context.Context, name string) error {
	st := n.State()
	t, ok := st.Topic(name)
	if !ok {
		return reject(ErrUnknownTopic, "topic %q does not exist", name)
	}
	_, err := n.propose(ctx, &cmdDeleteTopic{Name: name, ID: t.ID}, true)
	return err
}

// CreatePartitions raises a topic's partition count to total.
func (n *Node) CreatePartitions(ctx context.Context, name string, total int32, assignments [][]int32, validateOnly bool) error {
	cmd := &cmdCreatePartitions{Name: name, Total: total, Assignments: assignments}
	if validateOnly {
		return newBuilder(n.State()).createPartitions(cmd).err()
	}
	_, err := n.propose(ctx, cmd, true)
	return err
}

// AlterTopicConfigs sets and removes topic config overrides (validated Kafka names and values).
func (n *Node) AlterTopicConfigs(ctx context.Context, name string, set map[string]string, remove []string) error {
	_, err := n.propose(ctx, &cmdAlterConfigs{Name: name, Set: set, Remove: remove}, true)
	return err
}

// AlterClusterConfigs sets and removes cluster-wide dynamic broker defaults (Kafka's BROKER resource
// "", entity-default), for every broker at once. Only the names IsClusterConfig accepts.
func (n *Node) AlterClusterConfigs(ctx context.Context, set map[string]string, remove []string) error {
	_, err := n.propose(ctx, &cmdAlterClusterConfigs{Set: set, Remove: remove}, true)
	return err
}

// ValidateClusterConfigs checks what AlterClusterConfigs would do against the local state, committing
// nothing.
func (n *Node) ValidateClusterConfigs(set map[string]string, remove []string) error {
	return newBuilder(n.State()).alterClusterConfigs(&cmdAlterClusterConfigs{Set: set, Remove: remove}).err()
}

// ValidateTopicConfigs checks what AlterTopicConfigs would do against the local state, committing nothing.
func (n *Node) ValidateTopicConfigs(name string, set map[string]string, remove []string) error {
	return newBuilder(n.State()).alterConfigs(&cmdAlterConfigs{Name: name, Set: set, Remove: remove}).err()
}

// AlterPartition proposes a new ISR for a partition this node's broker leads (Kafka's AlterPartition).
// It returns the partition as committed.
func (n *Node) AlterPartition(ctx context.Context, topic TopicID, partition int32, leaderEpoch, partitionEpoch int32, isr []int32) (Partition, error) {
	return n.AlterPartitionWithEpochs(ctx, topic, partition, leaderEpoch, partitionEpoch, isr, nil)
}

// AlterPartitionWithEpochs is AlterPartition with the broker epoch of each ISR member as the leader
// saw it in that member's fetches (parallel to isr; -1 = unknown, not checked), Kafka's
// NewIsrWithEpochs (KIP-903): a member whose epoch is not its current live registration (it
// restarted since, perhaps with an empty disk) makes the change fail with ErrIneligibleReplica.
func (n *Node) AlterPartitionWithEpochs(ctx context.Context, topic TopicID, partition int32, leaderEpoch, partitionEpoch int32, isr []int32, epochs []int64) (Partition, error) {
	id, epoch, ok := n.BrokerEpoch()
	if !ok {
		return Partition{}, ErrNotRegistered
	}
	if epochs != nil && len(epochs) != len(isr) {
		return Partition{}, fmt.Errorf("meta: alter partition: %d epochs for %d ISR members", len(epochs), len(isr))
	}
	res, err := n.propose(ctx, &cmdAlterPartition{Topic: topic, Partition: partition, BrokerID: id, BrokerEpoch: epoch,
		LeaderEpoch: leaderEpoch, PartitionEpoch: partitionEpoch, ISR: isr, ISREpochs: epochs}, true)
	if err != nil {
		return Partition{}, err
	}
	if res.Partition == nil {
		return Partition{}, fmt.Errorf("meta: alter partition: no partition in result")
	}
	return *res.Partition, nil
}

// AllocateProducerIDs reserves count producer ids for brokerID; ids are never handed out twice.
func (n *Node) AllocateProducerIDs(ctx context.Context, brokerID int32, count int64) (first int64, err error) {
	res, err := n.propose(ctx, &cmdAllocateProducerIDs{BrokerID: brokerID, Count: count}, true)
	if err != nil {
		return 0, err
	}
	return res.First, nil
}

// CommitOffsets stores a group's offsets, all in one Raft entry.
func (n *Node) CommitOffsets(ctx context.Context, group string, offsets []OffsetCommit) error {
	_, err := n.propose(ctx, &cmdCommitOffsets{Group: group, Offsets: offsets}, true)
	return err
}

// DeleteOffsets removes some of a group's committed offsets, or the whole group if partitions is empty.
func (n *Node) DeleteOffsets(ctx context.Context, group string, partitions []TopicPartition) error {
	_, err := n.propose(ctx, &cmdDeleteOffsets{Group: group, Partitions: partitions}, true)
	return err
}

// AddRemoteSegment appends an uploaded segment to a partition's remote manifest. It fails with
// ErrFencedLeaderEpoch if seg.LeaderEpoch is below the partition's leader epoch when the entry
// applies (the uploader was deposed), and with ErrInvalidRequest if it overlaps the manifest's end.
func (n *Node) AddRemoteSegment(ctx context.Context, topic TopicID, partition int32, seg RemoteSegment) error {
	_, err := n.propose(ctx, &cmdAddRemoteSegment{Topic: topic, Partition: partition, Segment: seg, FenceEpoch: true}, true)
	return err
}

// RemoveRemoteSegments drops segments (by object key) from a partition's manifest, after the objects
// were deleted or before they are (retention). Keys not present are ignored.
func (n *Node) RemoveRemoteSegments(ctx context.Context, topic TopicID, partition int32, objectKeys []string) error {
	_, err := n.propose(ctx, &cmdRemoveRemoteSegments{Topic: topic, Partition: partition, ObjectKeys: objectKeys}, true)
	return err
}

// GroupOffsets is one group's offsets in a CommitOffsetsBatch.
type GroupOffsets struct {
	Group   string
	Offsets []OffsetCommit
}

// GroupPartitions names partitions of one group (empty Partitions = the whole group).
type GroupPartitions struct {
	Group      string
	Partitions []TopicPartition
}

func itemErrors(res *applyResult, n int) []error {
	errs := make([]error, n)
	for i := 0; i < n && i < len(res.Errs); i++ {
		if res.Errs[i].Code != 0 {
			errs[i] = &Error{Code: res.Errs[i].Code, Reason: res.Errs[i].Reason}
		}
	}
	return errs
}

// CommitOffsetsBatch commits many groups' offsets in ONE Raft entry. Each group is validated and
// applied on its own: errs[i] is group i's rejection (unknown topic or partition, bad offset) or nil,
// and a rejected group does not stop the others. err is for the entry as a whole (no quorum, closed,
// ctx); then errs is nil. One entry holds at most 8 MiB (about 100k offsets with short metadata);
// a larger batch is refused with ErrInvalidRequest before anything is proposed.
func (n *Node) CommitOffsetsBatch(ctx context.Context, groups []GroupOffsets) (errs []error, err error) {
	res, err := n.propose(ctx, &cmdCommitOffsetsBatch{Groups: groups}, true)
	if err != nil {
		return nil, err
	}
	return itemErrors(res, len(groups)), nil
}

// DeleteOffsetsBatch deletes offsets of many groups in one Raft entry (see DeleteOffsets).
func (n *Node) DeleteOffsetsBatch(ctx context.Context, groups []GroupPartitions) (errs []error, err error) {
	res, err := n.propose(ctx, &cmdDeleteOffsetsBatch{Groups: groups}, true)
	if err != nil {
		return nil, err
	}
	return itemErrors(res, len(groups)), nil
}

// ControlledShutdown is Kafka's controlled shutdown for this node's broker: it stops the heartbeats and
// fences the broker at once, so every partition it leads moves to an in-sync replica now instead of
// after the session timeout. Call it before closing the broker's listeners and logs; Close the Node
// afterwards. A later RegisterBroker (same process) unfences it again.
func (n *Node) ControlledShutdown(ctx context.Context) error {
	id, epoch, ok := n.BrokerEpoch()
	if !ok {
		return ErrNotRegistered
	}
	n.hbPaused.Store(true)
	n.hbMu.Lock() // let a heartbeat already on its way finish first
	n.hbMu.Unlock()
	_, err := n.propose(ctx, &cmdFenceBroker{ID: id, Epoch: epoch}, false)
	return err
}

// ElectPreferredLeaders runs Kafka's preferred leader election for a topic's partitions (all of them
// when partitions is empty): each partition whose first replica is live and in sync but not leading
// gets it back as leader. errs[i] is partition i's outcome: nil (elected), ErrElectionNotNeeded or
// ErrPreferredNotAvailable (or ErrUnknownTopic for a bad index).
func (n *Node) ElectPreferredLeaders(ctx context.Context, topic string, partitions []int32) (errs []error, err error) {
	res, err := n.propose(ctx, &cmdElectPreferred{Topic: topic, Partitions: partitions}, true)
	if err != nil {
		return nil, err
	}
	return itemErrors(res, len(res.Errs)), nil
}
