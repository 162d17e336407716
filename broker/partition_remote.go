package broker

import (
	"context"
	"errors"
	"sort"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"

	"github.com/sediment-io/sediment/meta"
	"github.com/sediment-io/sediment/segment"
	"github.com/sediment-io/sediment/tiering"
)

// Reads below the local log start (issue 7, KIP-405): offsets in [StartOffset(), LocalStartOffset())
// live only in the bucket. They are served from the partition's manifest (meta) through the broker's
// shared tiering.RemoteLog, which brings footer caching, read-ahead for sequential consumers and the
// cold-read concurrency budget (RemoteLogConfig.MaxConcurrentReads: a replay queues on its own GET
// slots instead of taking the broker from produce).
//
// Races, and how each ends:
//   - local retention (DeleteLocalBelow) moves the local start above offset between our check and
//     the local read: segment answers ErrNotLocal and the read is retried from the bucket;
//   - the local start was read before an upload + DeleteLocalBelow, so the manifest is read after it
//     and covers everything below it (the archiver commits the manifest entry before local retention
//     may delete the segment);
//   - remote retention deletes the object under us (tiering.ErrNotFound) or trims the manifest
//     below offset: OFFSET_OUT_OF_RANGE, as for any offset below the log start (the client resets);
//   - an object the manifest still lists is missing (deleted behind our back): KAFKA_STORAGE_ERROR,
//     an error line a minute and sediment_tier_remote_missing_object_reads_total, never
//     OFFSET_OUT_OF_RANGE (which would loop a consumer resetting to the earliest offset);
//   - the object store fails or hangs: the read is bounded by remoteReadTimeout and answers
//     KAFKA_STORAGE_ERROR, which every client retries (Kafka itself answers UNKNOWN_SERVER_ERROR
//     for a RemoteStorageException; see COMPAT.md) — never a hung Fetch;
//   - an object's bytes are damaged (a batch or chunk CRC disagrees): KAFKA_STORAGE_ERROR for reads
//     of the damaged batch only, an error line a minute and sediment_tier_remote_corrupt_reads_total;
//     the store is not treated as failing, so other cold reads keep their full timeout.

// remoteReadTimeout bounds one read from the bucket. It stays well below clients' request timeouts
// (kgo: MaxWait + 10 s; the Java consumer: request.timeout.ms 30 s) so that a hung store turns into
// a retriable error the client sees, not a request timeout and a reconnect. The S3 client retries
// failed GETs inside this bound. A variable for tests only.
var remoteReadTimeout = 5 * time.Second

// While the store is failing (a read failed within remoteFailingWindow and none succeeded since),
// reads get remoteReadTimeoutFailing instead: a Fetch of many remote partitions then answers
// KAFKA_STORAGE_ERROR for all of them within the first timeout plus a fraction of a second each.
// Variables for tests only.
var (
	remoteReadTimeoutFailing = 250 * time.Millisecond
	remoteFailingWindow      = 10 * time.Second
)

// remoteQuotaMaxWait bounds how long a fetch waits for a grant of the remote fetch quota before
// answering without data for that partition (well under clients' fetch long-poll and request
// timeouts). Grants are what has accrued (tiering.FetchQuota), so a waiting read normally gets one
// within the time the quota takes to accrue its minimum grant (50 ms) plus the overdraft of a
// concurrent read's first batch.
const remoteQuotaMaxWait = 500 * time.Millisecond

// remoteReadAttempts bounds the local↔remote retries of one read when retention moves the tier
// boundary under it (each attempt re-reads the boundary, so two always suffice unless retention
// runs again in between).
const remoteReadAttempts = 3

// localStart is the first offset held on local disk (KIP-405's local-log-start-offset).
func (p *Partition) localStart() int64 { return p.log.LocalStartOffset() }

// readTiered reads from offset (logStart <= offset < hw) from whichever tier holds it, batches
// ending below maxOffset only, as consecutive slices of whole batches: one for a local read, the
// chunk cache's slices for a read from the bucket (written in place by the fetch response, never
// joined; tiering.PartsResult). retry > 0: the remote fetch quota gave no grant, and will have one
// after retry (readRemote).
func (p *Partition) readTiered(offset int64, maxBytes int, minOneBatch bool, maxOffset int64) tieredRead {
	for attempt := 0; ; attempt++ {
		if offset < p.localStart() {
			tr, local := p.readRemote(offset, maxBytes, minOneBatch, maxOffset)
			if !local || attempt+1 >= remoteReadAttempts {
				return tr
			}
			continue
		}
		rr, err := p.log.Read(offset, segment.ReadOptions{MaxBytes: maxBytes, MaxOffset: maxOffset, MinOneBatch: minOneBatch})
		if errors.Is(err, segment.ErrNotLocal) && attempt+1 < remoteReadAttempts {
			continue // local retention raced: the bucket has it
		}
		if err != nil {
			return tieredRead{code: readErr(err)}
		}
		if len(rr.Data) == 0 {
			return tieredRead{}
		}
		return tieredRead{recs: [][]byte{rr.Data}}
	}
}

// tieredRead is what readTiered returns: the records (recs) or an error code; retry > 0: none
// because the remote fetch quota had no grant, one will have accrued after retry; charged: what a
// read from the bucket took from that quota (readResult.charged).
type tieredRead struct {
	recs    [][]byte
	hold    *tiering.Hold // the chunk-cache buffers recs lie in (a read from the bucket), until released
	code    int16
	retry   time.Duration
	charged int
}

// objectLost decides, for an object the store says is missing, whether it was lost behind our back
// (true) or deleted by remote retention (false: its manifest entry is gone). covered reports
// whether this broker's manifest still lists the object. Retention removes the entry through meta
// before it deletes the object, but this broker's meta replica may not have applied that removal
// yet (a follower of the Raft group trails the commit by a heartbeat): so before calling the object
// lost, catchUp (meta.Node.CatchUp) brings the replica up to what is committed and covered is asked
// again. Without it such a broker answered KAFKA_STORAGE_ERROR where OFFSET_OUT_OF_RANGE was right,
// and logged an ERROR and counted a missing object for a read that raced retention. If catchUp
// fails (no meta leader), the object counts as lost: the consumer retries at its offset, which is
// safe, rather than being sent back to the log start.
func objectLost(ctx context.Context, covered func() bool, catchUp func(context.Context) error) bool {
	if !covered() {
		return false
	}
	return catchUp(ctx) != nil || covered()
}

// readRemote serves offset from the bucket. local=true: the offset turned out to be local after all
// (the manifest ends below it and the local start is at or below it now): read it there. retry > 0:
// no data because the remote fetch quota had no grant within remoteQuotaMaxWait; one will have
// accrued after retry, which a long-polling fetch waits for rather than its whole MaxWait.
func (p *Partition) readRemote(offset int64, maxBytes int, minOneBatch bool, maxOffset int64) (tr tieredRead, local bool) {
	tm := p.tier
	if tm == nil || tm.remote == nil {
		return tieredRead{code: kerr.KafkaStorageError.Code}, false
	}
	timeout := remoteReadTimeout
	failing := tm.remote.Failing(remoteFailingWindow)
	if failing {
		// The store failed moments ago: don't let the partitions of a Fetch wait out the full
		// bound in turn (readTargets reads some of them one after another: a partition read alone,
		// a result re-read under Kafka's rules, runs of readParallelism), which would outlast the
		// client's request timeout.
		timeout = min(timeout, remoteReadTimeoutFailing)
	}
	ctx, cancel := context.WithTimeout(tm.ctx, timeout)
	defer cancel()
	q := tm.remote.Quota()
	// A minOneBatch read of 0 bytes (the response budget is spent, the first batch still comes)
	// needs a grant too.
	granted, wait := q.Reserve(ctx, max(maxBytes, 1), remoteQuotaMaxWait)
	if granted == 0 && q != nil {
		// Remote fetch quota spent (KIP-956) for longer than we pace: no data for this partition
		// now; the consumer asks again, as Kafka answers when the quota is exceeded.
		return tieredRead{retry: max(wait, time.Millisecond)}, false
	}
	// At most the grant (what the quota has accrued); the first batch of a fetch still comes
	// whole (minOneBatch), overdrawing the quota by the rest of it.
	segs := tm.b.meta.State().RemoteSegments(p.topicID, p.index)
	res, err := tm.remote.ReadParts(ctx, segs, offset, min(granted, maxBytes), minOneBatch)
	used := 0
	if err == nil {
		used = res.Len()
	}
	q.Settle(granted, used)
	switch {
	case err == nil:
		return tieredRead{recs: recordsBelow(res.Parts, maxOffset), hold: res.Hold, charged: used}, false
	case errors.Is(err, segment.ErrOffsetOutOfRange):
		if offset >= p.log.StartOffset() && offset >= p.localStart() {
			return tieredRead{}, true
		}
		if offset >= p.log.StartOffset() {
			// Neither tier holds an offset inside the log: a manifest gap. Never expected
			// (uploads are contiguous, local retention waits for the upload); say so loudly.
			tm.b.log.Error("tiering: offset inside the log is neither local nor in the manifest",
				"topic", p.topic, "partition", p.index, "offset", offset,
				"log_start", p.log.StartOffset(), "local_start", p.localStart(), "manifest_entries", len(segs))
		}
		return tieredRead{code: kerr.OffsetOutOfRange.Code}, false
	case errors.Is(err, tiering.ErrNotFound):
		covered := func() bool { return manifestCovers(tm.b.meta.State().RemoteSegments(p.topicID, p.index), offset) }
		if !objectLost(ctx, covered, tm.b.meta.CatchUp) {
			// Remote retention deleted the object after we read the manifest (it removes the
			// entries first, then the objects): the offset is below the log start now.
			return tieredRead{code: kerr.OffsetOutOfRange.Code}, false
		}
		// The manifest still lists the object, so retention did not delete it: it was lost
		// behind our back (the bucket emptied, a lifecycle rule, a wrong prefix). Not
		// OFFSET_OUT_OF_RANGE: that would send a consumer with auto.offset.reset=earliest back
		// to the log start, to read the history again and hit the same hole, for ever.
		// KAFKA_STORAGE_ERROR keeps it at its offset, retrying, until an operator restores the
		// object or deletes the records (DeleteRecords past the hole).
		tm.missingReads.Add(1)
		if tm.missingLog.Allow() {
			tm.b.log.Error("tiering: a manifest entry's object is missing from the bucket, not served",
				"topic", p.topic, "partition", p.index, "offset", offset, "err", err)
		}
		return tieredRead{code: kerr.KafkaStorageError.Code}, false
	case tm.ctx.Err() != nil:
		// Broker shutting down: the client goes elsewhere.
		return tieredRead{code: kerr.NotLeaderForPartition.Code}, false
	case errors.Is(err, segment.ErrCorrupt):
		// Damaged bytes in the bucket (the batch CRC or the chunk CRC disagrees). The batch is
		// never served; the consumer retries and stays at it, as with a corrupt local log, until
		// an operator restores the object. Not an outage: the store's other reads go on.
		tm.corruptReads.Add(1)
		if tm.corruptLog.Allow() {
			tm.b.log.Error("tiering: damaged data in the object store, not served",
				"topic", p.topic, "partition", p.index, "offset", offset, "err", err)
		}
		return tieredRead{code: kerr.KafkaStorageError.Code}, false
	}
	if !failing { // once per outage, not once per fetch
		tm.b.log.Warn("tiering: remote read failed", "topic", p.topic, "partition", p.index, "offset", offset, "err", err)
	}
	return tieredRead{code: kerr.KafkaStorageError.Code}, false
}

// manifestCovers reports whether an entry of segs holds offset.
func manifestCovers(segs []meta.RemoteSegment, offset int64) bool {
	i := sort.Search(len(segs), func(i int) bool { return segs[i].LastOffset >= offset })
	return i < len(segs) && segs[i].BaseOffset <= offset
}

// remoteReadCtx bounds one remote operation of a request (read, timestamp lookup).
func (tm *tierManager) remoteReadCtx() (context.Context, context.CancelFunc) {
	return context.WithTimeout(tm.ctx, remoteReadTimeout)
}

// remoteSegments is the part of the partition's manifest that matters to a reader: entries holding
// offsets at or above the log start and below the local start (entries wholly at or above the local
// start are on disk too, where they are cheaper to read).
func (p *Partition) remoteSegments() []meta.RemoteSegment {
	if p.tier == nil {
		return nil
	}
	segs := p.tier.b.meta.State().RemoteSegments(p.topicID, p.index)
	logStart, localStart := p.log.StartOffset(), p.localStart()
	i := sort.Search(len(segs), func(i int) bool { return segs[i].LastOffset >= logStart })
	j := sort.Search(len(segs), func(j int) bool { return segs[j].BaseOffset >= localStart })
	if i >= j {
		return nil
	}
	return segs[i:j]
}

// remoteOffsetForTimestamp is ListOffsets by timestamp over the bucket: the first record at or
// above the log start whose timestamp is >= ts. The footer's time index finds the first batch
// whose maxTimestamp reaches ts (one ranged GET); batches wholly below the log start are skipped
// (DeleteRecords inside an uploaded segment), and the batch found is decoded for the exact record
// (segment.RecordAtOrAfter, as for local data).
func (p *Partition) remoteOffsetForTimestamp(ts int64) (off, rts int64, ok bool, err error) {
	segs := p.remoteSegments()
	if len(segs) == 0 {
		return 0, 0, false, nil
	}
	ctx, cancel := p.tier.remoteReadCtx()
	defer cancel()
	base, _, ok, err := p.tier.remote.OffsetForTimestamp(ctx, segs, ts)
	if err != nil || !ok {
		return 0, 0, false, err
	}
	logStart := p.log.StartOffset()
	last := segs[len(segs)-1].LastOffset
	for from := max(base, logStart); from <= last; {
		res, err := p.tier.remote.Read(ctx, segs, from, timestampScanBytes, true)
		if err != nil {
			return 0, 0, false, err
		}
		if len(res.Data) == 0 || res.NextOffset <= from {
			return 0, 0, false, nil
		}
		for q := 0; q+segment.HeaderSize <= len(res.Data); {
			h := segment.BatchHeader(res.Data[q:])
			batch := res.Data[q : q+h.Size()]
			q += h.Size()
			if h.LastOffset() < logStart || h.MaxTimestamp() < ts {
				continue
			}
			if o, t, found := segment.RecordAtOrAfter(batch, ts, logStart); found {
				return o, t, true, nil
			}
			// Undecodable, or its qualifying records lie below the log start: batch granularity,
			// as segment answers for local data.
			return max(h.BaseOffset(), logStart), h.MaxTimestamp(), true, nil
		}
		from = res.NextOffset
	}
	return 0, 0, false, nil
}

// timestampScanBytes is how much a remote timestamp lookup reads at a time: the batch the index
// points at normally answers, so little more than one batch.
const timestampScanBytes = 64 << 10

// remoteMaxTimestamp is ListOffsets -3 over the bucket: the largest timestamp in the remote part of
// the log and the offset of the first record carrying it; ok=false when the bucket holds none
// (at or above the log start). The manifest's per-entry MaxTimestamp picks the object, its footer
// the batch, and the batch is decoded for the record.
func (p *Partition) remoteMaxTimestamp() (off, ts int64, ok bool, err error) {
	segs := p.remoteSegments()
	best := -1
	for i, s := range segs {
		if best < 0 || s.MaxTimestamp > segs[best].MaxTimestamp {
			best = i
		}
	}
	if best < 0 {
		return 0, 0, false, nil
	}
	ctx, cancel := p.tier.remoteReadCtx()
	defer cancel()
	f, err := p.tier.remote.Footer(ctx, segs[best])
	if err != nil {
		return 0, 0, false, err
	}
	logStart := p.log.StartOffset()
	if f.MaxTimestampOffset < logStart {
		// The batch holding the object's maximum lies below the log start (DeleteRecords inside
		// an uploaded segment) and the maximum of the object's remaining part is not indexed:
		// the bucket is left out of the answer (documented in 02_list_offsets.go).
		return 0, 0, false, nil
	}
	res, err := p.tier.remote.Read(ctx, segs, f.MaxTimestampOffset, 1, true)
	if err != nil {
		return 0, 0, false, err
	}
	if len(res.Data) >= segment.HeaderSize {
		if o, t, found := segment.RecordAtOrAfter(res.Data, f.MaxTimestamp, logStart); found && t == f.MaxTimestamp {
			return o, t, true, nil
		}
	}
	return f.MaxTimestampOffset, f.MaxTimestamp, true, nil
}

// remoteErrCode maps an error of a remote lookup (ListOffsets) to a Kafka error code.
func (p *Partition) remoteErrCode(err error) int16 {
	switch {
	case errors.Is(err, tiering.ErrNotFound), errors.Is(err, segment.ErrOffsetOutOfRange):
		// Remote retention raced the lookup: the data sought is gone; the client retries.
		return kerr.OffsetNotAvailable.Code
	case p.tier != nil && p.tier.ctx.Err() != nil:
		return kerr.NotLeaderForPartition.Code
	}
	if p.tier != nil {
		p.tier.b.log.Warn("tiering: remote lookup failed", "topic", p.topic, "partition", p.index, "err", err)
	}
	return kerr.KafkaStorageError.Code
}
