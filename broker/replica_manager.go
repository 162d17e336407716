package broker

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"

	"github.com/sediment-io/sediment/meta"
	"github.com/sediment-io/sediment/segment"
)

var (
	unknownTopicCode   = kerr.UnknownTopicOrPartition.Code
	unknownTopicIDCode = kerr.UnknownTopicID.Code
	notLeaderCode      = kerr.NotLeaderForPartition.Code
)

// ReplicaManager owns this broker's partition replicas: it opens, creates and deletes local logs
// as the metadata says (a replica for every partition whose replica set names this broker;
// leadership where meta's leader is this broker), and runs local retention.
//
// Layout: one directory per partition replica under DataDir/logs, named
// "<topic>-<partition>.<topic id>" (the id in base64url, which has no '.'), so a topic deleted and
// re-created under the same name never reuses the old data, and a directory left behind by a
// deletion this broker missed while down is recognised as stray and removed.
//
// Goroutines: one reconciling meta events (no polling: meta.Subscribe pushes), one running the
// retention loop every log.retention.check.interval.ms. Both stop in Close.
//
// Locks: mu guards the partition map only; it is never held while a log is opened, appended or
// deleted. reconcileMu serializes reconciliations (events and start).
type ReplicaManager struct {
	b      *Broker
	dir    string
	log    *slog.Logger
	nodeID int32

	mu    sync.RWMutex
	parts map[partitionKey]*Partition

	fetchers         *fetcherManager
	reconcileMu      sync.Mutex
	lastOnDemandFail atomic.Int64 // unix nanos of the last failed on-demand reconcile
	sessions         *fetchSessionCache

	pidMu   sync.Mutex
	pidNext int64
	pidEnd  int64 // exclusive

	// hwCheckpoint: the HW checkpoint read at start (replica_hw_checkpoint.go); hwWritten: what the
	// last checkpoint write held (the checkpoint goroutine, then Close after it stopped).
	hwCheckpoint map[partitionKey]int64
	hwWritten    map[partitionKey]int64

	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup
}

type partitionKey struct {
	id    meta.TopicID
	index int32
}

const (
	// max.incremental.fetch.session.cache.slots and min.incremental.fetch.session.eviction.ms.
	fetchSessionSlots      = 1000
	fetchSessionEvictAfter = 120 * time.Second
	// producer.id.expiration.ms (Kafka's default: 1 day).
	producerIDExpiration = 24 * time.Hour
	// producerIDBlock is how many producer ids one meta.AllocateProducerIDs call reserves.
	producerIDBlock = 1000
)

func newReplicaManager(b *Broker) (*ReplicaManager, error) {
	rm := &ReplicaManager{
		b:        b,
		dir:      filepath.Join(b.cfg.DataDir, "logs"),
		log:      b.log.With("component", "replicas"),
		nodeID:   b.cfg.NodeID,
		parts:    map[partitionKey]*Partition{},
		sessions: newFetchSessionCache(fetchSessionSlots, fetchSessionEvictAfter),
	}
	rm.ctx, rm.cancel = context.WithCancel(b.ctx)
	rm.fetchers = newFetcherManager(rm)
	if err := os.MkdirAll(rm.dir, 0o755); err != nil {
		return nil, err
	}
	ck, err := readHWCheckpoint(rm.dir)
	if err != nil {
		rm.log.Warn("high-watermark checkpoint ignored: replicated partitions start their HW at the log start", "err", err)
	}
	rm.hwCheckpoint = ck
	// Subscribe before the first reconciliation so no change between the two is missed.
	events, cancelSub := b.meta.Subscribe()
	if err := rm.reconcile(true); err != nil {
		cancelSub()
		rm.fetchers.close()
		rm.closeAll()
		return nil, err
	}
	b.metrics.addCollector(rm.writeMetrics)
	rm.wg.Add(4)
	go func() {
		defer rm.wg.Done()
		rm.isrLoop()
	}()
	go func() {
		defer rm.wg.Done()
		rm.hwCheckpointLoop(&rm.hwWritten)
	}()
	go func() {
		defer rm.wg.Done()
		defer cancelSub()
		rm.eventLoop(events)
	}()
	go func() {
		defer rm.wg.Done()
		rm.retentionLoop()
	}()
	return rm, nil
}

// Close stops the loops and closes every log cleanly.
func (rm *ReplicaManager) Close() error {
	rm.cancel()
	rm.wg.Wait()
	rm.fetchers.close()
	rm.checkpointHWs(&rm.hwWritten) // the HWs as they are now, for the next start
	return rm.closeAll()
}

func (rm *ReplicaManager) closeAll() error {
	rm.mu.Lock()
	parts := rm.parts
	rm.parts = map[partitionKey]*Partition{}
	rm.mu.Unlock()
	var errs []error
	for _, p := range parts {
		if err := p.close(); err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", p, err))
		}
	}
	return errors.Join(errs...)
}

// partition returns the local replica, if any.
func (rm *ReplicaManager) partition(id meta.TopicID, index int32) *Partition {
	rm.mu.RLock()
	defer rm.mu.RUnlock()
	return rm.parts[partitionKey{id, index}]
}

// Partitions lists the local replicas (DescribeLogDirs, metrics).
func (rm *ReplicaManager) Partitions() []*Partition {
	rm.mu.RLock()
	defer rm.mu.RUnlock()
	out := make([]*Partition, 0, len(rm.parts))
	for _, p := range rm.parts {
		out = append(out, p)
	}
	return out
}

func (rm *ReplicaManager) eventLoop(events <-chan meta.Event) {
	for {
		select {
		case <-rm.ctx.Done():
			return
		case ev, ok := <-events:
			if !ok {
				return
			}
			if ev.Kind == meta.BrokerChanged || ev.Kind == meta.ControllerChanged || ev.Kind == meta.RemoteManifestChanged {
				continue
			}
			// Coalesce a burst (a topic with many partitions is many events) into one pass. A dynamic
			// broker config change (ClusterConfigChanged) changes topics' effective configs, so it
			// reconciles too, and like a restored snapshot it wakes the upload tasks (a cluster-wide
			// resume of uploads drains the backlog without waiting for the safety-net pass).
			wake := ev.Kind == meta.StateRestored || ev.Kind == meta.ClusterConfigChanged
		drain:
			for {
				select {
				case e := <-events:
					wake = wake || e.Kind == meta.ClusterConfigChanged || e.Kind == meta.StateRestored
				default:
					break drain
				}
			}
			if err := rm.reconcile(false); err != nil {
				rm.log.Error("applying metadata to local replicas", "err", err)
			}
			if wake {
				rm.b.tier.applyRemoteQuotas()
				rm.b.tier.wakeAll()
			}
		}
	}
}

func partitionDirName(topic string, index int32, id meta.TopicID) string {
	return topic + "-" + strconv.Itoa(int(index)) + "." + id.String()
}

// parsePartitionDirName is partitionDirName's inverse.
func parsePartitionDirName(name string) (topic string, index int32, id meta.TopicID, ok bool) {
	dot := strings.LastIndexByte(name, '.')
	if dot < 0 {
		return "", 0, id, false
	}
	if err := id.UnmarshalText([]byte(name[dot+1:])); err != nil {
		return "", 0, id, false
	}
	rest := name[:dot]
	dash := strings.LastIndexByte(rest, '-')
	if dash <= 0 {
		return "", 0, id, false
	}
	n, err := strconv.ParseInt(rest[dash+1:], 10, 32)
	if err != nil || n < 0 {
		return "", 0, id, false
	}
	return rest[:dash], int32(n), id, true
}

// reconcile makes the local replicas match meta's state: open what this broker should hold,
// apply leadership and configs, delete what it should no longer hold. At start it also removes
// stray directories.
func (rm *ReplicaManager) reconcile(start bool) error {
	rm.reconcileMu.Lock()
	defer rm.reconcileMu.Unlock()
	st := rm.b.meta.State()
	want := map[partitionKey]bool{}
	var errs []error
	for _, t := range st.Topics() {
		tc := rm.b.TopicConfig(t)
		for _, part := range t.Partitions {
			if !slices.Contains(part.Replicas, rm.nodeID) {
				continue
			}
			k := partitionKey{t.ID, part.Index}
			want[k] = true
			p := rm.partition(t.ID, part.Index)
			if p == nil {
				dir := filepath.Join(rm.dir, partitionDirName(t.Name, part.Index, t.ID))
				var err error
				p, err = openPartition(dir, t.Name, t.ID, part.Index, rm.nodeID, rm.b.segmentConfig(tc), tc)
				if err != nil {
					errs = append(errs, fmt.Errorf("opening %s-%d: %w", t.Name, part.Index, err))
					continue
				}
				p.tier = rm.b.tier
				if len(part.Replicas) > 1 {
					// A replicated partition's local log end may be past what the ISR committed:
					// start the HW at the checkpointed one (else the log start) and let the ISR (as
					// leader) or the leader's HW (as follower) raise it.
					p.resetHW(p.checkpointedHW(rm.hwCheckpoint))
				}
				rm.mu.Lock()
				rm.parts[k] = p
				rm.mu.Unlock()
				rm.log.Info("partition replica opened", "partition", p.String(), "log_start", p.log.StartOffset(),
					"log_end", p.log.EndOffset(), "producers", p.producers.len())
			}
			// Topic config changes reach the open log too (segment.bytes, segment.ms, ...).
			if err := p.setConfig(tc, rm.b.segmentConfig(tc)); err != nil {
				errs = append(errs, fmt.Errorf("%s: config: %w", p, err))
			}
			wasLeader := p.checkLeader(-1) == 0
			oldEpoch := p.currentLeaderEpoch()
			if err := p.setLeadership(part); err != nil {
				errs = append(errs, fmt.Errorf("%s: leadership: %w", p, err))
			}
			rm.maybeFollow(p, part, oldEpoch != part.LeaderEpoch || wasLeader)
			if isLeader := part.Leader == rm.nodeID; isLeader != wasLeader {
				rm.log.Info("partition leadership changed", "partition", p.String(), "leader", part.Leader, "leader_epoch", part.LeaderEpoch)
			}
		}
	}
	// Replicas meta no longer assigns here (topic deleted, or moved away).
	rm.mu.Lock()
	var gone []*Partition
	for k, p := range rm.parts {
		if !want[k] {
			gone = append(gone, p)
			delete(rm.parts, k)
		}
	}
	rm.mu.Unlock()
	for _, p := range gone {
		rm.fetchers.unfollow(p)
		p.close()
		if err := p.log.Delete(); err != nil {
			errs = append(errs, fmt.Errorf("deleting %s: %w", p, err))
			continue
		}
		rm.log.Info("partition replica deleted", "partition", p.String(), "topic_id", p.topicID.String())
	}
	if start {
		entries, err := os.ReadDir(rm.dir)
		if err != nil {
			return errors.Join(append(errs, err)...)
		}
		for _, e := range entries {
			if !e.IsDir() {
				continue
			}
			_, index, id, ok := parsePartitionDirName(e.Name())
			if !ok || want[partitionKey{id, index}] {
				continue
			}
			rm.log.Info("removing stray partition directory", "dir", e.Name())
			if err := os.RemoveAll(filepath.Join(rm.dir, e.Name())); err != nil {
				errs = append(errs, err)
			}
		}
	}
	return errors.Join(errs...)
}

// lookupPartition resolves a client's (topic name, partition) to the local leader replica, or the
// Kafka error: UNKNOWN_TOPIC_OR_PARTITION when meta does not know it, NOT_LEADER_OR_FOLLOWER when
// it exists but is not led here.
func (rm *ReplicaManager) lookupPartition(st *meta.State, topic string, index int32) (*Partition, *meta.Topic, int16) {
	t, ok := st.Topic(topic)
	if !ok {
		return nil, nil, unknownTopicCode
	}
	return rm.lookupIn(t, index)
}

func (rm *ReplicaManager) lookupPartitionByID(st *meta.State, id meta.TopicID, index int32) (*Partition, *meta.Topic, int16) {
	t, ok := st.TopicByID(id)
	if !ok {
		return nil, nil, unknownTopicIDCode
	}
	return rm.lookupIn(t, index)
}

func (rm *ReplicaManager) lookupIn(t *meta.Topic, index int32) (*Partition, *meta.Topic, int16) {
	if index < 0 || int(index) >= len(t.Partitions) {
		return nil, t, unknownTopicCode
	}
	p := rm.partition(t.ID, index)
	if p == nil && slices.Contains(t.Partitions[index].Replicas, rm.nodeID) && rm.onDemandAllowed() {
		// Meta already assigns it here but the event has not been applied yet (a request right
		// after CreateTopics returned): apply it now rather than answer a spurious error.
		if err := rm.reconcile(false); err != nil {
			rm.lastOnDemandFail.Store(time.Now().UnixNano())
			rm.log.Warn("applying metadata on demand", "err", err)
		}
		p = rm.partition(t.ID, index)
	}
	if p == nil {
		return nil, t, notLeaderCode
	}
	return p, t, 0
}

// onDemandAllowed rate-limits on-demand reconciliation after a failed one, so that a partition
// that keeps failing to open (a broken disk) does not turn every request for it into a full
// reconciliation; the event loop still retries on every metadata change.
func (rm *ReplicaManager) onDemandAllowed() bool {
	return time.Now().UnixNano()-rm.lastOnDemandFail.Load() >= int64(time.Second)
}

// allocateProducerID hands out the next producer id, reserving a new block from meta when the
// current one is used up. Ids are unique cluster-wide and never reused, across restarts too (the
// block is committed in Raft before any id of it is given out).
func (rm *ReplicaManager) allocateProducerID(ctx context.Context) (int64, error) {
	rm.pidMu.Lock()
	defer rm.pidMu.Unlock()
	if rm.pidNext >= rm.pidEnd {
		first, err := rm.b.meta.AllocateProducerIDs(ctx, rm.nodeID, producerIDBlock)
		if err != nil {
			return -1, err
		}
		rm.pidNext, rm.pidEnd = first, first+producerIDBlock
	}
	id := rm.pidNext
	rm.pidNext++
	return id, nil
}

// retentionLoop enforces retention.ms, retention.bytes and segment.ms on every local replica
// every log.retention.check.interval.ms, expires idle producer ids, and removes recycled segment
// files that waited longer than log.segment.recycle.ms for reuse.
func (rm *ReplicaManager) retentionLoop() {
	every := time.Duration(rm.b.cfg.LogRetentionCheckMs) * time.Millisecond
	if every <= 0 {
		every = 5 * time.Minute
	}
	idlePool := time.Duration(rm.b.cfg.LogSegmentRecycleMs) * time.Millisecond
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-rm.ctx.Done():
			return
		case <-t.C:
		}
		for _, p := range rm.Partitions() {
			if rm.ctx.Err() != nil {
				return
			}
			n, err := p.enforceRetention(p.now())
			if err != nil {
				rm.log.Warn("retention", "partition", p.String(), "err", err)
			} else if n > 0 {
				rm.log.Info("retention deleted segments", "partition", p.String(), "segments", n, "log_start", p.log.StartOffset())
			}
			// After retention, which may have just pooled files: those are young and stay.
			if n, err := p.log.ExpireRecyclePool(idlePool); err != nil && !errors.Is(err, segment.ErrClosed) {
				rm.log.Warn("recycle pool expiry", "partition", p.String(), "err", err)
			} else if n > 0 {
				rm.log.Info("removed idle recycled segment files", "partition", p.String(), "files", n)
			}
		}
	}
}
