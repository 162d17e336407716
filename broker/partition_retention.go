package broker

import (
	"fmt"
	"time"

	"github.com/sediment-io/sediment/segment"
)

// Local retention over whole segments, as Kafka's UnifiedLog.deleteOldSegments:
//
//   - segment.ms: an active segment that is non-empty and older than segment.ms is rolled, so that
//     an idle partition's data can age out too (Kafka rolls only on the next append);
//   - retention.ms: a closed segment is deleted once its newest record is older than retention.ms.
//     "Newest" is the smaller of the segment's max record timestamp and the broker time at which
//     it was closed (the creation time of the next segment): a producer's future-dated timestamps
//     cannot keep a segment forever, which is a known weak spot of Kafka's timestamp-only rule;
//   - retention.bytes: oldest closed segments are deleted while the partition stays at or above
//     retention.bytes without them.
//
// Only closed segments wholly below the high watermark are deleted; the active segment never is.
// Deletion raises the log start offset (segment.SetStartOffset persists it and removes the files),
// and producers left without data are forgotten, as Kafka does.
//
// Tiered topics (remote.storage.enable, KIP-405) split this in two:
//
//   - local retention, here: local.retention.ms / local.retention.bytes (-2 = retention.ms /
//     retention.bytes) over the local segments, deleting only segments wholly below both the HW
//     and the end of the committed remote manifest (segment.DeleteLocalBelow: the log start offset
//     does not move; the data lives on in the bucket). A segment not yet uploaded is never deleted
//     locally, whatever the store does (down, uploads paused): it waits for its upload;
//   - whole-log retention: retention.ms / retention.bytes over remote + local, done by the leader's
//     tier task (tier_task.go remoteRetention), which raises the log start offset.

// retentionPlan returns the new log start offset implied by the retention configs, or -1 when
// nothing is due. segs are oldest first, the last one active.
func retentionPlan(segs []segment.SegmentInfo, hw int64, retentionMs, retentionBytes int64, now time.Time) (newStart int64, n int) {
	newStart = -1
	if len(segs) < 2 {
		return newStart, 0
	}
	var total int64
	for _, s := range segs {
		total += s.Size
	}
	nowMs := now.UnixMilli()
	for i := 0; i < len(segs)-1; i++ {
		s := segs[i]
		if !s.Closed || s.NextOffset > hw {
			break
		}
		newest := segs[i+1].Created.UnixMilli()
		if s.MaxTimestamp >= 0 && s.MaxTimestamp < newest {
			newest = s.MaxTimestamp
		}
		byTime := retentionMs >= 0 && nowMs-newest > retentionMs
		bySize := retentionBytes >= 0 && total-s.Size >= retentionBytes
		if !byTime && !bySize {
			break
		}
		total -= s.Size
		newStart = s.NextOffset
		n++
	}
	return newStart, n
}

// enforceRetention applies segment.ms, retention.ms and retention.bytes once; it returns how many
// segments were deleted.
func (p *Partition) enforceRetention(now time.Time) (int, error) {
	tc := p.config()
	if tc.SegmentMs > 0 {
		segs := p.log.Segments()
		if len(segs) > 0 {
			a := segs[len(segs)-1]
			if a.NextOffset > a.BaseOffset && now.Sub(a.Created) >= time.Duration(tc.SegmentMs)*time.Millisecond {
				p.appendMu.Lock()
				err := p.log.Roll()
				p.appendMu.Unlock()
				if err != nil {
					return 0, err
				}
				if t := p.tierCur.Load(); t != nil {
					poke(t.wake) // the rolled segment is closed and below the HW: upload it now
				}
			}
		}
	}
	p.appendMu.Lock()
	defer p.appendMu.Unlock()
	// An expired producer is simply unknown again (KIP-360): its next batch is accepted.
	p.producers.expire(now, producerIDExpiration)
	// Bound the header scan after a crash to what was appended since the last check.
	if err := p.writeProducerSnapshot(); err != nil {
		return 0, fmt.Errorf("producer snapshot: %w", err)
	}
	if p.tier.enabled(tc) {
		return p.enforceLocalRetention(tc, now)
	}
	newStart, n := retentionPlan(p.log.Segments(), p.hw.Load(), tc.RetentionMs, tc.RetentionBytes, now)
	if newStart <= p.log.StartOffset() {
		return 0, nil
	}
	if err := p.log.SetStartOffset(newStart); err != nil {
		return 0, err
	}
	p.producers.truncateHead(p.log.StartOffset())
	p.notify()
	return n, nil
}

// enforceLocalRetention is local retention of a tiered partition (appendMu held): uploaded segments
// only, the log start offset unchanged.
func (p *Partition) enforceLocalRetention(tc TopicConfig, now time.Time) (int, error) {
	localMs, localBytes := tc.LocalRetentionMs, tc.LocalRetentionBytes
	if localMs == -2 {
		localMs = tc.RetentionMs
	}
	if localBytes == -2 {
		localBytes = tc.RetentionBytes
	}
	limit := min(p.hw.Load(), uploadedEnd(p.tier.b.meta.State().RemoteSegments(p.topicID, p.index)))
	newLocal, n := retentionPlan(p.log.Segments(), limit, localMs, localBytes, now)
	if n == 0 || newLocal <= p.log.LocalStartOffset() {
		return 0, nil
	}
	return p.log.DeleteLocalBelow(newLocal)
}
