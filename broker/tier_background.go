package broker

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sort"
	"strconv"
	"time"

	"github.com/sediment-io/sediment/meta"
	"github.com/sediment-io/sediment/tiering"
)

// backgroundLoop is the broker-wide tiering work, done only while this broker is the controller
// (the Raft leader), so that one broker does it:
//
//   - deleted topics: for every topic meta still lists as deleted-with-remote-data, delete all its
//     objects and then its manifest entries (tiering.DeleteTopicObjects; idempotent, retried every
//     deleteEvery until meta forgets the topic);
//   - bucket sweep: objects under segments/ whose topic meta no longer knows at all (an upload that
//     was in flight when its topic was deleted, after the topic's manifest was already purged) are
//     deleted once older than orphanGrace. Nothing is left behind in the bucket. It runs only once
//     the store is known to be this cluster's (claimStore): another cluster's topics are unknown
//     here too, and sweeping a shared bucket would delete their history;
//   - unfinished uploads: S3 multipart uploads (or a file store's temp files) that a broker killed
//     mid-upload left open under segments/, aborted once older than staleGrace. They are no
//     objects, so neither collector above sees them, yet S3 bills their parts until aborted.
func (tm *tierManager) backgroundLoop() {
	t := time.NewTicker(tm.tune.deleteEvery)
	defer t.Stop()
	var nextSweep time.Time
	for {
		select {
		case <-tm.ctx.Done():
			return
		case <-t.C:
		}
		if tm.b.ctx.Err() != nil || !tm.b.meta.IsController() {
			continue // shutting down (meta may already be closed), or another broker's job
		}
		tm.purgeDeletedTopics()
		if now := time.Now(); now.After(nextSweep) {
			if err := tm.claimStore(tm.ctx); errors.Is(err, tiering.ErrForeignStore) {
				tm.log.Error("tiering: the object store belongs to another cluster: no uploads, no sweeps", "err", err)
				nextSweep = now.Add(min(time.Minute, tm.tune.sweepEvery))
			} else if err != nil {
				// Unreachable, or refusing us (credentials, a missing bucket): said within seconds of
				// start, not only once a tiered partition tries its first upload.
				tm.log.Warn("tiering: bucket sweep postponed: the object store could not be checked", "err", err)
				nextSweep = now.Add(min(time.Minute, tm.tune.sweepEvery))
			} else if n, err := tm.sweepUnknownTopics(); err != nil {
				tm.log.Warn("tiering: bucket sweep", "err", err)
			} else {
				if n > 0 {
					tm.log.Info("tiering: bucket sweep deleted objects of deleted topics", "objects", n)
				}
				tm.abortStaleUploads()
				nextSweep = now.Add(tm.tune.sweepEvery)
			}
		}
	}
}

func (tm *tierManager) purgeDeletedTopics() {
	for _, id := range tm.b.meta.State().DeletedTopicsWithRemoteData() {
		ctx, cancel := context.WithTimeout(tm.ctx, time.Minute)
		err := tiering.DeleteTopicObjects(ctx, tm.store, tm.b.meta, id)
		cancel()
		if err != nil {
			if tm.ctx.Err() == nil {
				tm.log.Warn("tiering: deleting a deleted topic's objects; will retry", "topic_id", id.String(), "err", err)
			}
			continue
		}
		tm.topicsPurged.Add(1)
		tm.log.Info("tiering: deleted topic's objects removed", "topic_id", id.String())
	}
}

// sweepUnknownTopics deletes objects whose topic id meta knows neither as live nor as deleted.
func (tm *tierManager) sweepUnknownTopics() (int, error) {
	ctx, cancel := context.WithTimeout(tm.ctx, 5*time.Minute)
	defer cancel()
	objs, err := tm.store.List(ctx, tiering.SegmentsRoot)
	if err != nil {
		return 0, err
	}
	// Listed first, then the metadata brought up to the quorum's: a controller deposed a moment
	// ago (cut off, not yet stepped down) must not take topics created since for unknown ones.
	if err := tm.b.meta.CatchUp(ctx); err != nil {
		return 0, fmt.Errorf("syncing metadata before the sweep: %w", err)
	}
	st := tm.b.meta.State()
	deleted := map[meta.TopicID]bool{}
	for _, id := range st.DeletedTopicsWithRemoteData() {
		deleted[id] = true
	}
	cutoff := time.Now().Add(-tm.tune.orphanGrace)
	n := 0
	for _, o := range objs {
		k, err := tiering.ParseSegmentKey(o.Key)
		if err != nil || !o.ModTime.Before(cutoff) {
			continue
		}
		if _, live := st.TopicByID(k.Topic); live || deleted[k.Topic] {
			continue
		}
		if err := tm.store.Delete(ctx, o.Key); err != nil {
			return n, err
		}
		n++
	}
	tm.orphansDeleted.Add(int64(n))
	return n, nil
}

// abortStaleUploads aborts the unfinished uploads under segments/ older than staleGrace. An
// upload aborted while it still runs only fails and is retried, but one that always ran longer
// than the grace would never finish: hence a day, not orphanGrace (MinIO's own expiry is a day too).
func (tm *tierManager) abortStaleUploads() {
	ctx, cancel := context.WithTimeout(tm.ctx, 5*time.Minute)
	defer cancel()
	n, err := tiering.SweepStaleUploads(ctx, tm.store, tiering.SegmentsRoot, time.Now().Add(-tm.tune.staleGrace))
	tm.staleUploadsAborted.Add(int64(n))
	if err != nil {
		tm.log.Warn("tiering: aborting unfinished uploads", "aborted", n, "err", err)
	} else if n > 0 {
		tm.log.Info("tiering: unfinished uploads aborted", "uploads", n)
	}
}

// writeMetrics adds the tiering families to /metrics: broker-wide upload counters and, per led
// tiered partition, the upload lag.
func (tm *tierManager) writeMetrics(w io.Writer) {
	for _, c := range []struct {
		name, help string
		v          int64
	}{
		{"sediment_tier_uploaded_segments_total", "Segments uploaded to object storage and committed to the manifest by this broker.", tm.segmentsUploaded.Load()},
		{"sediment_tier_uploaded_bytes_total", "Object bytes uploaded and committed by this broker.", tm.bytesUploaded.Load()},
		{"sediment_tier_uploaded_segment_bytes_total", "Segment (log) bytes those objects hold; above sediment_tier_uploaded_bytes_total by the lz4 savings (remote.log.segment.compression.type).", tm.segmentBytesUploaded.Load()},
		{"sediment_tier_upload_failures_total", "Failed segment upload or manifest commit attempts (each is retried).", tm.uploadFailures.Load()},
		{"sediment_tier_orphans_deleted_total", "Objects of failed uploads or deleted topics removed by the collectors.", tm.orphansDeleted.Load()},
		{"sediment_tier_stale_uploads_aborted_total", "Unfinished uploads (S3 multipart uploads, file-store temp files) of brokers that died mid-upload, aborted by the controller's sweep.", tm.staleUploadsAborted.Load()},
		{"sediment_tier_remote_corrupt_reads_total", "Reads from the object store refused because a batch or chunk CRC disagreed: damaged bytes in the bucket, never served.", tm.corruptReads.Load()},
		{"sediment_tier_remote_missing_object_reads_total", "Reads from the object store refused because an object the manifest still lists is missing from the bucket (deleted behind Sediment's back).", tm.missingReads.Load()},
		{"sediment_tier_retention_deleted_segments_total", "Remote segments deleted by retention or DeleteRecords.", tm.remoteDeleted.Load()},
		{"sediment_tier_deleted_topics_purged_total", "Deleted topics whose objects were all removed by this broker.", tm.topicsPurged.Load()},
	} {
		family(w, c.name, "counter", c.help)
		fmt.Fprintf(w, "%s %d\n", c.name, c.v)
	}
	cs := tm.remote.CacheStats()
	for _, c := range []struct {
		name, typ, help string
		v               int64
	}{
		{"sediment_tier_remote_cache_hits_total", "counter", "Remote-read chunks found in the chunk cache (ready or loading).", cs.Hits},
		{"sediment_tier_remote_cache_misses_total", "counter", "Remote-read chunks a read had to fetch from the object store itself.", cs.Misses},
		{"sediment_tier_remote_cache_prefetched_total", "counter", "Chunks fetched ahead of sequential remote readers.", cs.Prefetched},
		{"sediment_tier_remote_cache_evicted_total", "counter", "Chunks evicted from the remote-read cache.", cs.Evicted},
		{"sediment_tier_remote_cache_shed_total", "counter", "Remote-read cache GETs cancelled with no reader waiting on them when the remote fetch quota fell below a chunk a second (the adaptive throttle backing off for producers).", cs.Shed},
		{"sediment_tier_remote_cache_direct_reads_total", "counter", "Remote reads fetched exactly their range, past the chunk cache, while the remote fetch quota allowed less than a chunk a second.", cs.Direct},
		{"sediment_tier_remote_cache_buffers_reused_total", "counter", "Chunk loads into the buffer of an evicted chunk that no fetch response held any more (instead of a new allocation).", cs.Reused},
		{"sediment_tier_remote_cache_checked_on_arrival_bytes_total", "counter", "Batch bytes of verbatim segment objects whose CRC a chunk load checked as they arrived from the object store, so that fetches serving them did not check them again.", cs.CheckedOnArrival},
		{"sediment_tier_remote_cache_bytes", "gauge", "Bytes held by the remote-read chunk cache.", cs.Bytes},
		{"sediment_tier_remote_fetch_throttled_total", "counter", "Remote fetches delayed or emptied by remote.log.manager.fetch.max.bytes.per.second.", tm.remote.Quota().Throttled()},
	} {
		family(w, c.name, c.typ, c.help)
		fmt.Fprintf(w, "%s %d\n", c.name, c.v)
	}
	tm.mu.Lock()
	tasks := make([]*tierTask, 0, len(tm.tasks))
	for _, t := range tm.tasks {
		tasks = append(tasks, t)
	}
	tm.mu.Unlock()
	sort.Slice(tasks, func(i, j int) bool {
		a, b := tasks[i].p, tasks[j].p
		if a.topic != b.topic {
			return a.topic < b.topic
		}
		return a.index < b.index
	})
	stats := make([]tiering.ArchiverStats, len(tasks))
	var lagSegs, lagBytes int64
	for i, t := range tasks {
		stats[i] = t.arch.Stats()
		lagSegs += stats[i].LagSegments
		lagBytes += stats[i].LagBytes
	}
	family(w, "sediment_tier_uploading_partitions", "gauge", "Led partitions of tiered topics with a running upload task.")
	fmt.Fprintf(w, "sediment_tier_uploading_partitions %d\n", len(tasks))
	family(w, "sediment_tier_upload_lag_segments", "gauge", "Closed local segments not yet in object storage, per led tiered partition.")
	for i, t := range tasks {
		fmt.Fprintf(w, "sediment_tier_upload_lag_segments{topic=%s,partition=\"%d\"} %d\n", strconv.Quote(t.p.topic), t.p.index, stats[i].LagSegments)
	}
	family(w, "sediment_tier_upload_lag_bytes", "gauge", "Bytes of closed local segments not yet in object storage, per led tiered partition.")
	for i, t := range tasks {
		fmt.Fprintf(w, "sediment_tier_upload_lag_bytes{topic=%s,partition=\"%d\"} %d\n", strconv.Quote(t.p.topic), t.p.index, stats[i].LagBytes)
	}
	family(w, "sediment_tier_broker_upload_lag_segments", "gauge", "Closed local segments not yet in object storage, over every partition this broker leads.")
	fmt.Fprintf(w, "sediment_tier_broker_upload_lag_segments %d\n", lagSegs)
	family(w, "sediment_tier_broker_upload_lag_bytes", "gauge", "Bytes of closed local segments not yet in object storage, over every partition this broker leads.")
	fmt.Fprintf(w, "sediment_tier_broker_upload_lag_bytes %d\n", lagBytes)
}
