package broker

import (
	"context"
	"log/slog"
	"math"
	"sync"
	"sync/atomic"
	"time"

	"github.com/sediment-io/sediment/meta"
	"github.com/sediment-io/sediment/tiering"
)

// tierManager is the broker's side of tiered storage (issue 7): the object store named by
// Config.ObjectStore (metered on /metrics), the remote-log reader shared by every partition, one
// upload task per led partition of a topic with remote storage (tier_task.go), and the
// broker-wide background work (tier_background.go): deleting the objects of deleted topics and
// sweeping objects no topic owns. One per broker, created before the replica manager so that
// partitions can reach it, closed after it.
//
// Goroutines: one tierTask per led partition with remote storage (started and stopped by the
// partition, Partition.updateTiering), one background loop (started once, by start), and the
// adaptive cold-read throttle's loop when enabled (tier_throttle.go, started by newTierManager). All end
// when close cancels ctx; tasks are also stopped one by one on leadership loss and partition close.
//
// Locks: mu guards tasks only; it is taken after a partition's tierMu and never held across I/O.
type tierManager struct {
	b      *Broker
	store  *tiering.MeteredStore
	remote *tiering.RemoteLog
	// quota is remote's fetch quota for the broker's life (never nil): its configured rate follows
	// remote.log.manager.fetch.max.bytes.per.second, dynamic levels included (applyRemoteQuotas), and
	// the adaptive throttle lowers it below that while producers are short of CPU.
	quota *tiering.FetchQuota
	// copyQuota paces every upload of the broker (remote.log.manager.copy.max.bytes.per.second,
	// dynamic levels included: applyRemoteQuotas). Never nil; unlimited by default.
	copyQuota *tiering.FetchQuota
	log       *slog.Logger
	tune      tierTuning

	throttle *tierThrottle // adaptive cold-read budget (tier_throttle.go); nil when off

	ctx    context.Context // cancelled by close: archiver loops and remote reads stop
	cancel context.CancelFunc
	wg     sync.WaitGroup // background loop
	once   sync.Once

	mu    sync.Mutex
	tasks map[*Partition]*tierTask

	claimMu sync.Mutex  // serializes claimStore's first check
	claimed atomic.Bool // the store holds this cluster's id (tiering.ClaimStore)

	// Broker-wide counters over every task this broker ran (a task's own stats end with it).
	segmentsUploaded     atomic.Int64
	bytesUploaded        atomic.Int64
	segmentBytesUploaded atomic.Int64 // segment (uncompressed) bytes of the uploaded objects
	uploadFailures       atomic.Int64
	orphansDeleted       atomic.Int64
	staleUploadsAborted  atomic.Int64 // unfinished uploads aborted by the controller's sweep
	corruptReads         atomic.Int64 // remote reads refused because the object's bytes are damaged
	corruptLog           logEvery     // at most one error line a minute for them: consumers retry
	missingReads         atomic.Int64 // remote reads refused because a listed object is missing
	missingLog           logEvery     // at most one error line a minute for them
	remoteDeleted        atomic.Int64 // segments removed by remote retention / DeleteRecords
	topicsPurged         atomic.Int64 // deleted topics whose objects are all gone
}

// tierTuning holds the timings of the tiering loops. The Kafka-named ones come from broker
// configs; the rest are Sediment's and only tests change them (Config.tierTuning).
type tierTuning struct {
	taskInterval time.Duration // remote.log.manager.task.interval.ms: safety-net pass period
	retryBase    time.Duration // remote.log.manager.task.retry.backoff.ms
	retryMax     time.Duration // remote.log.manager.task.retry.backoff.max.ms
	minPassGap   time.Duration // at most one upload pass per partition this often (wakes coalesce)
	retention    time.Duration // remote retention check period (log.retention.check.interval.ms)
	orphanEvery  time.Duration // per-partition orphan collection period
	orphanGrace  time.Duration // an unlisted object younger than this may still be committed
	deleteEvery  time.Duration // controller: deleted topics' objects and the bucket sweep
	sweepEvery   time.Duration // controller: objects of topics meta no longer knows
	staleGrace   time.Duration // controller: unfinished uploads begun longer ago are aborted
}

func defaultTierTuning(cfg *Config) tierTuning {
	t := tierTuning{
		taskInterval: time.Duration(cfg.RemoteLogManagerTaskIntervalMs) * time.Millisecond,
		retryBase:    time.Duration(cfg.RemoteLogManagerTaskRetryBackoffMs) * time.Millisecond,
		retryMax:     time.Duration(cfg.RemoteLogManagerTaskRetryBackoffMaxMs) * time.Millisecond,
		minPassGap:   200 * time.Millisecond,
		retention:    time.Duration(cfg.LogRetentionCheckMs) * time.Millisecond,
		orphanEvery:  time.Hour,
		orphanGrace:  15 * time.Minute,
		deleteEvery:  5 * time.Second,
		sweepEvery:   time.Hour,
		staleGrace:   24 * time.Hour,
	}
	if cfg.tierTuning != nil {
		cfg.tierTuning(&t)
	}
	if t.taskInterval <= 0 {
		t.taskInterval = 30 * time.Second
	}
	if t.retryBase <= 0 {
		t.retryBase = 500 * time.Millisecond
	}
	if t.retryMax < t.retryBase {
		t.retryMax = t.retryBase
	}
	if t.retention <= 0 {
		t.retention = 5 * time.Minute
	}
	return t
}

// remoteFooterCache bounds how many segment-object footers (offset and time indexes) the broker
// keeps in memory for reads from the bucket.
const remoteFooterCache = 1024

func newTierManager(b *Broker, store tiering.Store) *tierManager {
	if b.cfg.tierStoreWrap != nil {
		store = b.cfg.tierStoreWrap(store)
	}
	tm := &tierManager{b: b, store: tiering.NewMeteredStore(store), log: b.log.With("component", "tiering"),
		tune: defaultTierTuning(&b.cfg), tasks: map[*Partition]*tierTask{}}
	// The chunk cache (remote.log.reader.cache.bytes) lets concurrent replays of one object share
	// GETs (T2's measurements: cold replay from MinIO ~1.5-1.8x faster with it).
	tm.remote = tiering.NewRemoteLogWith(tm.store, tiering.RemoteLogConfig{MaxFooters: remoteFooterCache,
		CacheBytes: b.cfg.RemoteLogReaderCacheBytes})
	// One quota object, installed before any read: its rate changes in place (a dynamic config
	// change, the adaptive throttle), never by replacing it under readers. Until meta is open
	// (start) it has the static value.
	tm.quota = tiering.NewAdaptiveFetchQuota(unlimitedIfMax(b.cfg.RemoteLogManagerFetchMaxBytesPerSec))
	tm.remote.SetQuota(tm.quota)
	tm.copyQuota = tiering.NewAdaptiveFetchQuota(unlimitedIfMax(b.cfg.RemoteLogManagerCopyMaxBytesPerSec))
	tm.ctx, tm.cancel = context.WithCancel(context.Background())
	tm.startThrottle()
	b.metrics.addCollector(tm.store.WriteMetrics)
	b.metrics.addCollector(tm.writeMetrics)
	b.metrics.addCollector(tm.writeThrottleMetrics)
	return tm
}

// start runs the broker-wide background loop (deleted topics' objects, bucket sweep). It needs
// the metadata node, so it is called once meta is open: by Start, and by the first partition that
// opens (which may come first: the replica manager opens partitions as it starts). Idempotent.
func (tm *tierManager) start() {
	tm.once.Do(func() {
		tm.applyRemoteQuotas()
		tm.wg.Add(1)
		go func() {
			defer tm.wg.Done()
			tm.backgroundLoop()
		}()
	})
}

// claimStore makes sure the object store is this cluster's (tiering.ClaimStore) before this broker
// uploads to it or deletes from it; reads need no claim. Checked until it succeeds once; callers
// treat an error as a failed pass and retry with their backoff. A store claimed by another
// cluster thus stops uploads (local retention, which deletes only uploaded segments, then keeps
// everything) and the sweeps, and is logged on every retry until an operator fixes the
// configuration.
func (tm *tierManager) claimStore(ctx context.Context) error {
	if tm.claimed.Load() {
		return nil
	}
	tm.claimMu.Lock()
	defer tm.claimMu.Unlock()
	if tm.claimed.Load() {
		return nil
	}
	if err := tiering.ClaimStore(ctx, tm.store, tm.b.meta.State().ClusterID()); err != nil {
		return err
	}
	tm.claimed.Store(true)
	return nil
}

// enabled reports whether a partition of a topic with effective config tc is tiered: the broker
// has remote storage (remote.log.storage.system.enable) and the topic asks for it
// (remote.storage.enable).
func (tm *tierManager) enabled(tc TopicConfig) bool {
	return tm != nil && tm.b.cfg.RemoteLogStorageEnable && tc.RemoteStorageEnable
}

// applyRemoteQuotas sets the configured rates of the fetch and copy quotas to
// remote.log.manager.fetch.max.bytes.per.second and remote.log.manager.copy.max.bytes.per.second in
// force: this broker's dynamic value, else the cluster-wide one, else the static one (Kafka lets
// operators change both at run time, KIP-956). Called when meta is open and on every dynamic
// config change.
func (tm *tierManager) applyRemoteQuotas() {
	if tm == nil {
		return
	}
	dyn := tm.b.dynamicConfigs()
	inForce := func(name string) int64 {
		n, ok := tm.b.brokerConfigInt64(dyn, name)
		if !ok {
			return 0 // validated on the way in
		}
		return unlimitedIfMax(n)
	}
	tm.quota.SetConfiguredRate(inForce(fetchQuotaConfig))
	tm.copyQuota.SetConfiguredRate(inForce(copyQuotaConfig))
}

// KIP-956's quotas, dynamic broker configs.
const (
	fetchQuotaConfig = "remote.log.manager.fetch.max.bytes.per.second"
	copyQuotaConfig  = "remote.log.manager.copy.max.bytes.per.second"
)

// unlimitedIfMax maps a quota config's default (Long.MAX_VALUE: no limit) to 0, FetchQuota's none.
func unlimitedIfMax(n int64) int64 {
	if n >= math.MaxInt64 {
		return 0
	}
	return n
}

// wakeAll asks every upload task for a pass now (the cluster-wide upload switch changed).
func (tm *tierManager) wakeAll() {
	if tm == nil {
		return
	}
	tm.mu.Lock()
	defer tm.mu.Unlock()
	if len(tm.tasks) > 0 {
		tm.log.Info("tiering: cluster-wide upload switch changed", "paused", tm.b.clusterCopyDisabled(), "tasks", len(tm.tasks))
	}
	for _, t := range tm.tasks {
		poke(t.wake)
	}
}

// manifest is the meta-backed manifest of one partition.
func (tm *tierManager) manifest(id meta.TopicID, index int32) tiering.MetaManifest {
	return tiering.MetaManifest{Node: tm.b.meta, Topic: id, Partition: index}
}

// close stops tiering work and closes the object store.
func (tm *tierManager) close() error {
	tm.cancel()
	tm.mu.Lock()
	tasks := make([]*tierTask, 0, len(tm.tasks))
	for _, t := range tm.tasks {
		tasks = append(tasks, t)
	}
	tm.mu.Unlock()
	for _, t := range tasks {
		<-t.done
	}
	tm.wg.Wait()
	return tm.store.Close()
}

// uploadedEnd is the offset below which a partition's records are in the committed manifest (the
// last entry's LastOffset + 1), or -1 when the manifest is empty. Only local segments wholly below
// it may be deleted by local retention.
func uploadedEnd(segs []meta.RemoteSegment) int64 {
	if len(segs) == 0 {
		return -1
	}
	return segs[len(segs)-1].LastOffset + 1
}

// logEvery lets a repeated event be logged at most once a minute: Allow reports whether this
// occurrence gets a line.
type logEvery struct {
	last atomic.Int64 // unix nanos of the last allowed occurrence
}

func (l *logEvery) Allow() bool {
	now := time.Now().UnixNano()
	last := l.last.Load()
	return (last == 0 || now-last >= int64(time.Minute)) && l.last.CompareAndSwap(last, now)
}
