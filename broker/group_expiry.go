package broker

import (
	"context"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"

	"github.com/sediment-io/sediment/meta"
)

// Offset expiry (Kafka's offsets.retention.minutes, KIP-211): the offsets of a group expire once the
// group has had no members for the retention period; offsets committed while it was empty (simple
// commits) expire retention after their own commit. So an offset expires at
// max(commit time, time the group became empty) + retention, and never while the group has members.
// The check runs every offsets.retention.check.interval.ms on a time.AfterFunc (no goroutine between
// runs) over the groups this broker coordinates; expired offsets are removed with meta.DeleteOffsets
// (the whole group when all of them expired), all expiring groups in one Raft entry
// (meta.DeleteOffsetsBatch). A group not in memory (coordinator restarted or moved)
// counts as empty since the coordinator started, so a restart never expires offsets early.

func (gc *groupCoordinator) armExpiryLocked() {
	if gc.closed || gc.config().RetentionCheck <= 0 {
		return
	}
	gc.expiry = time.AfterFunc(gc.config().RetentionCheck, func() {
		if gc.b.ctx.Err() != nil {
			return // broker closing
		}
		gc.expireOffsets(time.Now())
		gc.mu.Lock()
		gc.armExpiryLocked()
		gc.mu.Unlock()
	})
}

// expireOffsets deletes the offsets expired at now; it returns how many partitions' offsets went.
// In-memory groups that are empty and have no offsets are forgotten (Kafka moves them to Dead), so
// short-lived group ids do not accumulate.
func (gc *groupCoordinator) expireOffsets(now time.Time) int {
	defer gc.forgetEmptyGroups()
	st := gc.b.meta.State()
	started := gc.started
	var batch []meta.GroupPartitions
	var counts []int
	for _, id := range st.Groups() {
		if br, ok := coordinatorFor(st, id); !ok || br.ID != gc.b.cfg.NodeID {
			continue
		}
		emptySince := started
		if g := gc.getGroup(id, false); g != nil {
			g.mu.Lock()
			busy := !g.isEmptyLocked()
			emptySince = g.emptySince
			g.mu.Unlock()
			if busy {
				continue
			}
		}
		if gc.commits.hasPending(id) {
			continue
		}
		offsets := st.CommittedOffsets(id)
		var expired []meta.TopicPartition
		for tp, o := range offsets {
			base := time.UnixMilli(o.CommitTime)
			if emptySince.After(base) {
				base = emptySince
			}
			if now.Sub(base) >= gc.config().OffsetsRetention {
				expired = append(expired, tp)
			}
		}
		if len(expired) == 0 {
			continue
		}
		del := expired
		if len(expired) == len(offsets) {
			del = nil // the whole group
		}
		batch = append(batch, meta.GroupPartitions{Group: id, Partitions: del})
		counts = append(counts, len(expired))
	}
	if len(batch) == 0 {
		return 0
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	errs, err := gc.b.meta.DeleteOffsetsBatch(ctx, batch) // one Raft entry for every expiring group
	cancel()
	if err != nil {
		gc.b.log.Warn("offset expiry failed", "groups", len(batch), "err", err)
		return 0
	}
	n := 0
	for i, gp := range batch {
		if i < len(errs) && errs[i] != nil {
			gc.b.log.Warn("offset expiry failed", "group", gp.Group, "err", errs[i])
			continue
		}
		gc.b.log.Info("expired committed offsets", "group", gp.Group, "partitions", counts[i])
		n += counts[i]
	}
	return n
}

// forgetEmptyGroups drops in-memory groups with no members, nothing in flight and no committed offsets.
func (gc *groupCoordinator) forgetEmptyGroups() {
	st := gc.b.meta.State()
	for _, g := range gc.snapshotGroups() {
		if gc.commits.hasPending(g.id) || len(st.CommittedOffsets(g.id)) > 0 {
			continue
		}
		g.mu.Lock()
		empty := g.isEmptyLocked()
		if empty {
			g.shutdownLocked(kerr.NotCoordinator.Code) // Dead: a racing join gets a fresh group
		}
		g.mu.Unlock()
		if empty {
			gc.removeGroupIf(g)
		}
	}
}
