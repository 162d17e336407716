package broker

import (
	"context"
	"math/rand/v2"
	"slices"
	"strings"
	"time"

	"github.com/sediment-io/sediment/meta"
	"github.com/sediment-io/sediment/segment"
	"github.com/sediment-io/sediment/tiering"
)

// tierTask is the tiering work of one partition this broker leads, on one goroutine (so that the
// archiver's upload passes, its orphan collection and remote retention never run concurrently for
// the partition, as tiering requires):
//
//   - upload passes (tiering.PartitionArchiver.RunOnce): on a wake (the HW moved, a segment rolled),
//     at most one per minPassGap, and every remote.log.manager.task.interval.ms as a safety net; a
//     failed pass is retried with jittered exponential backoff between
//     remote.log.manager.task.retry.backoff.ms and ...backoff.max.ms. Skipped while the topic, or the
//     cluster (the BROKER resource "", cluster_config.go), has remote.log.copy.disable=true (uploads
//     paused; local retention then keeps every segment not uploaded, so nothing is lost); the
//     cluster-wide switch wakes every task when it changes (tierManager.wakeAll);
//   - remote retention (retention.ms / retention.bytes over the whole log, and manifest entries
//     wholly below the log start after DeleteRecords): raise the log start, remove the manifest
//     entries, delete the objects;
//   - orphan collection (objects of failed attempts), every orphanEvery.
//
// Started by Partition.updateTiering when the partition becomes leader of a tiered topic, stopped
// (stop: cancel and wait) on leadership loss, when remote storage is turned off, and on close.
type tierTask struct {
	tm   *tierManager
	p    *Partition
	arch *tiering.PartitionArchiver

	cancel    context.CancelFunc
	done      chan struct{}
	wake      chan struct{} // upload pass wanted (coalesces)
	retention chan struct{} // remote retention wanted now (DeleteRecords)

	last tiering.ArchiverStats // counters already added to the manager's totals

	// dataLen memoizes, by object key, the segment bytes each manifest entry holds (its footer's
	// DataLen). retention.bytes counts log bytes, as Kafka does; an lz4 object is much smaller than
	// the segment it holds (remote.log.segment.compression.type), so the manifest's object Size would
	// keep several times retention.bytes. Only run's goroutine touches it.
	dataLen map[string]int64
}

// partitionLogView adapts a Partition to tiering.LogView.
type partitionLogView struct{ p *Partition }

func (v partitionLogView) Segments() []segment.SegmentInfo { return v.p.log.Segments() }

// UploadLimit is the high watermark: only committed data goes to the bucket (the last stable
// offset once transactions exist).
func (v partitionLogView) UploadLimit() int64 { return v.p.HighWatermark() }
func (v partitionLogView) LeaderEpoch() int32 { return v.p.currentLeaderEpoch() }

// PinSegment keeps a segment's file from being recycled while the archiver reads it by path.
func (v partitionLogView) PinSegment(base int64) (func(), bool) { return v.p.log.PinSegment(base) }

// startTask starts p's upload task. The caller (Partition.updateTiering) holds p.tierMu.
func (tm *tierManager) startTask(p *Partition) *tierTask {
	ctx, cancel := context.WithCancel(tm.ctx)
	t := &tierTask{tm: tm, p: p, cancel: cancel, done: make(chan struct{}),
		wake: make(chan struct{}, 1), retention: make(chan struct{}, 1)}
	t.arch = tiering.NewPartitionArchiver(tm.store, p.topicID, p.index, partitionLogView{p}, tm.manifest(p.topicID, p.index),
		tiering.ArchiverConfig{FS: p.fs, Logger: tm.log, OrphanGrace: tm.tune.orphanGrace, CopyQuota: tm.copyQuota,
			// remote.log.segment.compression.type=lz4 (the topic's, defaulting to the broker's; read per
			// upload, so an AlterConfigs applies from the next segment): segments of uncompressed batches
			// go up as lz4 chunks. The reader tells the kinds apart by the footer; a bucket may hold both.
			CompressFunc: func() bool { return strings.EqualFold(p.config().RemoteLogSegmentCompression, "lz4") }})
	tm.mu.Lock()
	tm.tasks[p] = t
	tm.mu.Unlock()
	tm.log.Info("tiering: uploads started", "partition", p.String(), "leader_epoch", p.currentLeaderEpoch())
	go t.run(ctx)
	return t
}

// stop cancels the task and waits for its goroutine. An upload in flight is abandoned: its object,
// if written, is an orphan the next leader collects.
func (t *tierTask) stop() {
	t.cancel()
	<-t.done
	t.tm.mu.Lock()
	if t.tm.tasks[t.p] == t {
		delete(t.tm.tasks, t.p)
	}
	t.tm.mu.Unlock()
	t.tm.log.Info("tiering: uploads stopped", "partition", t.p.String())
}

func poke(ch chan struct{}) {
	select {
	case ch <- struct{}{}:
	default:
	}
}

func (t *tierTask) run(ctx context.Context) {
	defer close(t.done)
	tune := t.tm.tune
	var delay time.Duration // current retry backoff; 0 = healthy
	nextRetention := time.Now()
	nextOrphans := time.Now().Add(jitter(tune.orphanEvery))
	for {
		// Retention first: entries wholly below the log start (DeleteRecords, or a log start raised
		// while remote storage was off) go before the next upload is appended after them.
		if now := time.Now(); !now.Before(nextRetention) {
			if err := t.remoteRetention(ctx); err != nil && ctx.Err() == nil {
				t.tm.log.Warn("tiering: remote retention", "partition", t.p.String(), "err", err)
			}
			nextRetention = time.Now().Add(tune.retention)
		}
		wait := tune.taskInterval
		if !t.p.config().RemoteLogCopyDisable && !t.tm.b.clusterCopyDisabled() {
			err := t.tm.claimStore(ctx)
			if err == nil {
				_, err = t.arch.RunOnce(ctx)
			} else if ctx.Err() == nil {
				t.tm.uploadFailures.Add(1) // the archiver counts its own; this pass never reached it
			}
			t.account()
			if ctx.Err() != nil {
				return
			}
			if err != nil {
				delay = min(max(2*delay, tune.retryBase), tune.retryMax)
				wait = jitter(delay)
				t.tm.log.Warn("tiering: upload failed; will retry", "partition", t.p.String(), "in", wait, "err", err)
			} else {
				delay = 0
			}
		}
		if now := time.Now(); !now.Before(nextOrphans) && t.tm.claimed.Load() {
			del, err := t.arch.CollectOrphans(ctx)
			t.account()
			if err != nil && ctx.Err() == nil {
				t.tm.log.Warn("tiering: orphan collection", "partition", t.p.String(), "err", err)
			} else if len(del) > 0 {
				t.tm.log.Info("tiering: orphans deleted", "partition", t.p.String(), "objects", len(del))
			}
			nextOrphans = time.Now().Add(tune.orphanEvery)
		}
		if d := time.Until(nextRetention); d < wait {
			wait = max(d, 0)
		}
		if d := time.Until(nextOrphans); d < wait {
			wait = max(d, 0)
		}
		timer := time.NewTimer(wait)
		var wake chan struct{}
		if delay == 0 {
			wake = t.wake // while backing off, new data does not shorten the wait
		}
		select {
		case <-ctx.Done():
			timer.Stop()
			return
		case <-timer.C:
		case <-wake:
		case <-t.retention:
			nextRetention = time.Now()
		}
		timer.Stop()
		// Coalesce a burst of wakes (every HW advance pokes) into one pass per minPassGap.
		select {
		case <-ctx.Done():
			return
		case <-time.After(tune.minPassGap):
		}
	}
}

// jitter is a uniformly random duration in (0, d] (full jitter).
func jitter(d time.Duration) time.Duration {
	if d <= 0 {
		return 0
	}
	return time.Duration(rand.Int64N(int64(d))) + 1
}

// account adds the archiver's counters since the last call to the manager's totals.
func (t *tierTask) account() {
	st := t.arch.Stats()
	t.tm.segmentsUploaded.Add(st.SegmentsUploaded - t.last.SegmentsUploaded)
	t.tm.bytesUploaded.Add(st.BytesUploaded - t.last.BytesUploaded)
	t.tm.segmentBytesUploaded.Add(st.SegmentBytes - t.last.SegmentBytes)
	t.tm.uploadFailures.Add(st.Failures - t.last.Failures)
	t.tm.orphansDeleted.Add(st.OrphansDeleted - t.last.OrphansDeleted)
	t.last = st
}

// remoteRetention applies retention.ms / retention.bytes to the whole log (remote + local, whole
// segments from the start, sizes in log bytes even for lz4 objects: logBytes; broker time decides for
// future-dated segments) and removes manifest
// entries wholly below the log start (DeleteRecords). Order: raise the log start first (readers
// stop being sent below it; local copies below it go), then remove the manifest entries, then the
// objects; an object whose deletion fails is an orphan for CollectOrphans.
func (t *tierTask) remoteRetention(ctx context.Context) error {
	p := t.p
	tc := p.config()
	m := t.tm.manifest(p.topicID, p.index)
	segs := m.RemoteSegments()
	if len(segs) == 0 {
		return nil
	}
	below := 0
	for start := p.log.StartOffset(); below < len(segs) && segs[below].LastOffset < start; below++ {
	}
	up := uploadedEnd(segs)
	var localBytes int64 // local bytes not (wholly) in the manifest
	for _, s := range p.log.Segments() {
		if s.NextOffset > up {
			localBytes += s.Size
		}
	}
	sized := segs
	if tc.RetentionBytes >= 0 {
		sized = t.logBytes(ctx, segs)
	}
	n, err := tiering.ExpiredRemoteSegments(ctx, t.tm.store, sized, localBytes,
		tiering.RetentionPolicy{RetentionMs: tc.RetentionMs, RetentionBytes: tc.RetentionBytes}, p.now())
	if err != nil && n < below {
		return err
	}
	n = max(n, below)
	if n == 0 {
		return err
	}
	del := segs[:n]
	if err := p.raiseLogStart(del[n-1].LastOffset + 1); err != nil {
		return err
	}
	keys := make([]string, len(del))
	for i, s := range del {
		keys[i] = s.ObjectKey
	}
	derr := tiering.DeleteRemoteSegments(ctx, t.tm.store, m, del)
	t.tm.remote.Forget(keys...)
	if now := m.RemoteSegments(); len(now) == 0 || now[0].ObjectKey != keys[0] { // the entries are gone
		t.tm.remoteDeleted.Add(int64(n))
		t.tm.log.Info("tiering: remote segments deleted by retention", "partition", p.String(), "segments", n,
			"log_start", p.log.StartOffset())
	}
	return derr
}

// logBytes returns a copy of segs whose Size is the segment (log) bytes each object holds rather than
// the object's size: one footer read per object for the first pass that sees it (the remote reader's
// footer cache, else one ranged GET), memoized for as long as this broker leads the partition. An
// object whose footer cannot be read counts by its object size this pass, which can only make
// retention delete less.
func (t *tierTask) logBytes(ctx context.Context, segs []meta.RemoteSegment) []meta.RemoteSegment {
	out := slices.Clone(segs)
	known := make(map[string]int64, len(segs))
	for i, s := range out {
		n, ok := t.dataLen[s.ObjectKey]
		if !ok {
			f, err := t.tm.remote.Footer(ctx, s)
			if err != nil {
				continue
			}
			n = f.DataLen
		}
		known[s.ObjectKey] = n
		out[i].Size = n
	}
	t.dataLen = known // entries removed from the manifest are forgotten
	return out
}
