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
