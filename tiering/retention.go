package tiering

import (
	"context"
	"time"

	"github.com/sediment-io/sediment/meta"
)

// RetentionPolicy is the whole-log retention of a topic (Kafka's names; local + remote together).
type RetentionPolicy struct {
	RetentionMs    int64 // retention.ms; negative = unlimited
	RetentionBytes int64 // retention.bytes; negative = unlimited
}

// ExpiredRemoteSegments returns how many entries at the start of segs (a partition's manifest, oldest
// first) retention removes; the caller passes segs[:n] to DeleteRemoteSegments. Whole segments only,
// from the start only, as Kafka.
//
// By time, a segment expires when all its records are older than retention.ms: MaxTimestamp <
// now − retention.ms. A segment whose MaxTimestamp lies in the future (a producer's clock) would never
// expire that way, so for it broker time decides instead: the object's upload time (its ModTime, one
// Head) — future-dated timestamps cannot keep data forever.
// By size, the oldest segments go while the log's total (remote object sizes + localBytes, the bytes of
// local segments not in the manifest) without them still holds at least retention.bytes.
func ExpiredRemoteSegments(ctx context.Context, s Store, segs []meta.RemoteSegment, localBytes int64, p RetentionPolicy, now time.Time) (int, error) {
	n := 0
	if p.RetentionMs >= 0 {
		cutoff := now.UnixMilli() - p.RetentionMs
		for n < len(segs) {
			sg := segs[n]
			if sg.MaxTimestamp < cutoff {
				n++
				continue
			}
			if sg.MaxTimestamp > now.UnixMilli() {
				info, err := s.Head(ctx, sg.ObjectKey)
				if err != nil {
					return n, err
				}
				if info.ModTime.UnixMilli() < cutoff {
					n++
					continue
				}
			}
			break
		}
	}
	if p.RetentionBytes >= 0 {
		total := localBytes
		for _, sg := range segs {
			total += sg.Size
		}
		for i := 0; i < n; i++ {
			total -= segs[i].Size
		}
		for n < len(segs) && total-segs[n].Size >= p.RetentionBytes {
			total -= segs[n].Size
			n++
		}
	}
	return n, nil
}
