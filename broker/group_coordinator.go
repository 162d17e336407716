package broker

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"hash/fnv"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"

	"github.com/sediment-io/sediment/meta"
)

// groupConfig is the group coordinator's view of its broker configs (broker.Config's group.* and
// offsets.* fields, Kafka's names and defaults) as durations. It is swapped whole (atomic pointer), so
// tests may adjust it on a running broker.
type groupConfig struct {
	InitialRebalanceDelay time.Duration // group.initial.rebalance.delay.ms (3000)
	MinSessionTimeout     time.Duration // group.min.session.timeout.ms (6000)
	MaxSessionTimeout     time.Duration // group.max.session.timeout.ms (1800000)
	MaxSize               int           // group.max.size (MaxInt32)
	OffsetsRetention      time.Duration // offsets.retention.minutes (10080 = 7 days)
	RetentionCheck        time.Duration // offsets.retention.check.interval.ms (600000)
	OffsetMetadataMax     int           // offset.metadata.max.bytes (4096)

	// KIP-848 (group.consumer.*).
	ConsumerHeartbeatInterval time.Duration // group.consumer.heartbeat.interval.ms (5000)
	ConsumerSessionTimeout    time.Duration // group.consumer.session.timeout.ms (45000)
	ConsumerAssignors         []string      // group.consumer.assignors ("uniform,range"); the first is the default
}

func groupConfigFrom(c *Config) groupConfig {
	ms := func(v int64) time.Duration { return time.Duration(v) * time.Millisecond }
	var assignors []string
	for _, a := range strings.Split(c.GroupConsumerAssignors, ",") {
		if a = strings.TrimSpace(a); a != "" {
			assignors = append(assignors, a)
		}
	}
	if len(assignors) == 0 {
		assignors = []string{"uniform", "range"}
	}
	return groupConfig{
		InitialRebalanceDelay:     ms(int64(c.GroupInitialRebalanceDelayMs)),
		MinSessionTimeout:         ms(int64(c.GroupMinSessionTimeoutMs)),
		MaxSessionTimeout:         ms(int64(c.GroupMaxSessionTimeoutMs)),
		MaxSize:                   int(c.GroupMaxSize),
		OffsetsRetention:          time.Duration(c.OffsetsRetentionMinutes) * time.Minute,
		RetentionCheck:            ms(c.OffsetsRetentionCheckIntervalMs),
		OffsetMetadataMax:         int(c.OffsetMetadataMaxBytes),
		ConsumerHeartbeatInterval: ms(int64(c.GroupConsumerHeartbeatIntervalMs)),
		ConsumerSessionTimeout:    ms(int64(c.GroupConsumerSessionTimeoutMs)),
		ConsumerAssignors:         assignors,
	}
}

// defaultGroupConfig is Kafka's defaults (DefaultConfig's values).
func defaultGroupConfig() groupConfig {
	c := DefaultConfig()
	return groupConfigFrom(&c)
}

// groupCoordinator is this broker's consumer-group coordinator: the in-memory state of the groups it
// coordinates (classic and KIP-848) and the commit batcher that turns offset commits into Raft
// entries. See group_doc.go for the design, goroutines and lock order.
type groupCoordinator struct {
	b   *Broker
	cfg atomic.Pointer[groupConfig] // replaced whole (tests, future dynamic configs)

	mu     sync.Mutex // guards groups and closed; taken before any group's mu
	groups map[string]*group
	closed bool
	expiry *time.Timer // offsets.retention.check.interval.ms

	commits *commitBatcher
	adopted atomic.Int64 // members adopted at a takeover (group_takeover.go)

	loadMu   sync.Mutex // leaf lock: the load barrier (loaded)
	loadSig  string     // live brokers the last barrier was for
	loadDone bool
	loadCh   chan struct{} // closed when that barrier finished
	started  time.Time     // offsets of groups not in memory count as empty since then (expiry)
}

// newGroupCoordinator is called by Start once meta is ready and the replica manager runs.
func newGroupCoordinator(b *Broker) *groupCoordinator {
	gc := &groupCoordinator{b: b, groups: map[string]*group{}, started: time.Now()}
	cfg := groupConfigFrom(&b.cfg)
	gc.cfg.Store(&cfg)
	gc.commits = newCommitBatcher(b.meta)
	gc.mu.Lock()
	gc.armExpiryLocked()
	gc.mu.Unlock()
	return gc
}

func (gc *groupCoordinator) config() *groupConfig { return gc.cfg.Load() }

// close stops every timer, answers parked JoinGroup/SyncGroup requests with NOT_COORDINATOR, and waits
// for commits in flight. Called by Close after connections drained, before meta closes.
func (gc *groupCoordinator) close() {
	gc.mu.Lock()
	gc.closed = true
	if gc.expiry != nil {
		gc.expiry.Stop()
	}
	groups := make([]*group, 0, len(gc.groups))
	for _, g := range gc.groups {
		groups = append(groups, g)
	}
	gc.groups = map[string]*group{}
	gc.mu.Unlock()
	for _, g := range groups {
		g.mu.Lock()
		g.shutdownLocked(kerr.NotCoordinator.Code)
		g.mu.Unlock()
	}
	gc.commits.wait()
}

// coordinatorFor picks the broker coordinating a group: rendezvous (highest random weight) hashing of
// the group id over the live (registered, unfenced) brokers. Committed offsets are in Raft, readable
// by every broker, so any deterministic choice works; rendezvous hashing moves only the groups of a
// broker that leaves (or a share of groups to one that joins). ok=false: no live broker.
func coordinatorFor(st *meta.State, groupID string) (meta.Broker, bool) {
	return pickCoordinator(st.Brokers(), groupID)
}

// pickCoordinator is coordinatorFor over an explicit broker list.
func pickCoordinator(brokers []meta.Broker, groupID string) (meta.Broker, bool) {
	var best meta.Broker
	var bestScore uint64
	found := false
	for _, br := range brokers {
		if br.Fenced {
			continue
		}
		h := fnv.New64a()
		h.Write([]byte(groupID))
		h.Write([]byte{0})
		h.Write([]byte(strconv.Itoa(int(br.ID))))
		s := mix64(h.Sum64())
		if !found || s > bestScore || (s == bestScore && br.ID < best.ID) {
			best, bestScore, found = br, s, true
		}
	}
	return best, found
}

// mix64 is a finaliser (splitmix64) so that FNV's weak low bits do not bias the choice.
func mix64(x uint64) uint64 {
	x ^= x >> 30
	x *= 0xbf58476d1ce4e5b9
	x ^= x >> 27
	x *= 0x94d049bb133111eb
	x ^= x >> 31
	return x
}

// coordinatorCheck returns 0 when this broker coordinates groupID, else the Kafka code the client
// should act on: NOT_COORDINATOR (re-find it) or COORDINATOR_NOT_AVAILABLE (none alive, or closing).
func (gc *groupCoordinator) coordinatorCheck(groupID string) int16 {
	if gc.b.ctx.Err() != nil {
		return kerr.NotCoordinator.Code
	}
	br, ok := coordinatorFor(gc.b.meta.State(), groupID)
	if !ok {
		return kerr.CoordinatorNotAvailable.Code
	}
	if br.ID != gc.b.cfg.NodeID {
		// Coordination moved (or never was here): drop what we hold so that a later move back starts
		// clean, as Kafka unloads a group whose __consumer_offsets partition moved away.
		gc.unload(groupID)
		return kerr.NotCoordinator.Code
	}
	if !gc.loaded(gc.b.meta.State()) {
		return kerr.CoordinatorLoadInProgress.Code
	}
	return 0
}

// loadWait bounds how long a request waits inline for the load barrier before it is answered
// COORDINATOR_LOAD_IN_PROGRESS (the client then retries).
const loadWait = 2 * time.Second

// loaded is Kafka's "offsets loaded" for Sediment: whenever the set of live brokers changes (so the
// groups this broker coordinates may have changed), the coordinator first makes sure its Raft state
// includes every commit made before — a barrier (meta.WaitReady: a no-op entry committed and applied
// here). Until then it answers COORDINATOR_LOAD_IN_PROGRESS, so a new coordinator never serves offsets
// or accepts commits against a lagging copy of the state.
func (gc *groupCoordinator) loaded(st *meta.State) bool {
	sig := liveBrokersSig(st)
	gc.loadMu.Lock()
	if gc.loadSig == sig && gc.loadDone {
		gc.loadMu.Unlock()
		return true
	}
	if gc.loadSig != sig || gc.loadCh == nil {
		gc.loadSig, gc.loadDone = sig, false
		ch := make(chan struct{})
		gc.loadCh = ch
		go func() {
			ctx, cancel := context.WithTimeout(gc.b.ctx, 10*time.Second)
			err := gc.b.meta.WaitReady(ctx)
			cancel()
			gc.loadMu.Lock()
			if gc.loadSig == sig {
				if err == nil {
					gc.loadDone = true
				} else {
					gc.loadCh = nil // the next request starts another barrier
				}
			}
			gc.loadMu.Unlock()
			close(ch)
		}()
	}
	ch := gc.loadCh
	gc.loadMu.Unlock()
	t := time.NewTimer(loadWait)
	defer t.Stop()
	select {
	case <-ch:
	case <-t.C:
	case <-gc.b.ctx.Done():
	}
	gc.loadMu.Lock()
	defer gc.loadMu.Unlock()
	return gc.loadSig == sig && gc.loadDone
}

func liveBrokersSig(st *meta.State) string {
	var b []byte
	for _, br := range st.Brokers() {
		if !br.Fenced {
			b = strconv.AppendInt(b, int64(br.ID), 10)
			b = append(b, ',')
		}
	}
	return string(b)
}

func (gc *groupCoordinator) unload(groupID string) {
	gc.mu.Lock()
	g := gc.groups[groupID]
	delete(gc.groups, groupID)
	gc.mu.Unlock()
	if g != nil {
		g.mu.Lock()
		g.shutdownLocked(kerr.NotCoordinator.Code)
		g.mu.Unlock()
	}
}

// getGroup returns the in-memory group, creating it when create is set. nil: absent (or closed).
func (gc *groupCoordinator) getGroup(id string, create bool) *group {
	gc.mu.Lock()
	defer gc.mu.Unlock()
	if gc.closed {
		return nil
	}
	g := gc.groups[id]
	if g == nil && create {
		g = newGroup(gc, id)
		gc.groups[id] = g
	}
	return g
}

// removeGroupIf drops g from the map if it is still the registered value (DeleteGroups, expiry).
func (gc *groupCoordinator) removeGroupIf(g *group) {
	gc.mu.Lock()
	if gc.groups[g.id] == g {
		delete(gc.groups, g.id)
	}
	gc.mu.Unlock()
}

// snapshotGroups lists the in-memory groups (ListGroups, expiry).
func (gc *groupCoordinator) snapshotGroups() []*group {
	gc.mu.Lock()
	defer gc.mu.Unlock()
	out := make([]*group, 0, len(gc.groups))
	for _, g := range gc.groups {
		out = append(out, g)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].id < out[j].id })
	return out
}

// newMemberID is Kafka's shape: client id (or instance id), a dash, and a random UUID-like suffix.
func newMemberID(prefix string) string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	h := hex.EncodeToString(b[:])
	return prefix + "-" + h[0:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:32]
}
