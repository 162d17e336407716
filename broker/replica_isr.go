package broker

import (
	"slices"
	"time"
)

// ISR maintenance on the leader (Kafka's Partition.maybeShrinkIsr / maybeExpandIsr): a follower
// that has not been caught up to the log end for replica.lag.time.max.ms leaves the ISR; a replica
// outside the ISR whose fetch position has reached the high watermark rejoins. Changes go through
// meta (AlterPartition, fenced by leader and partition epochs) and come back as a PartitionChanged
// event like any other leadership change.

// desiredISR returns the ISR this leader wants now, and whether it differs from the current one.
func (p *Partition) desiredISR(now time.Time, lag time.Duration) ([]int32, int32, int32, bool) {
	p.stateMu.RLock()
	defer p.stateMu.RUnlock()
	if !p.leader || len(p.replicas) < 2 {
		return nil, 0, 0, false
	}
	hw := p.hw.Load()
	var isr []int32
	for _, id := range p.replicas {
		if id == p.nodeID {
			isr = append(isr, id)
			continue
		}
		inISR := slices.Contains(p.isr, id)
		caught := now.Sub(p.caughtUp[id]) <= lag
		leo, fetched := p.followerLEO[id]
		switch {
		case inISR && caught:
			isr = append(isr, id)
		case !inISR && fetched && leo >= hw && caught:
			isr = append(isr, id)
		}
	}
	same := len(isr) == len(p.isr)
	for _, id := range isr {
		same = same && slices.Contains(p.isr, id)
	}
	return isr, p.leaderEpoch, p.partEpoch, !same
}

// isrLoop checks every led partition twice per replica.lag.time.max.ms.
func (rm *ReplicaManager) isrLoop() {
	lag := time.Duration(rm.b.cfg.ReplicaLagTimeMaxMs) * time.Millisecond
	if lag <= 0 {
		lag = 30 * time.Second
	}
	t := time.NewTicker(max(lag/2, 50*time.Millisecond))
	defer t.Stop()
	for {
		select {
		case <-rm.ctx.Done():
			return
		case <-t.C:
		}
		for _, p := range rm.Partitions() {
			isr, leaderEpoch, partEpoch, change := p.desiredISR(p.now(), lag)
			if !change {
				continue
			}
			part, err := rm.b.meta.AlterPartition(rm.ctx, p.topicID, p.index, leaderEpoch, partEpoch, isr)
			if err != nil {
				rm.log.Warn("ISR change refused", "partition", p.String(), "isr", isr, "err", err)
				continue
			}
			rm.log.Info("ISR changed", "partition", p.String(), "isr", part.ISR, "partition_epoch", part.PartitionEpoch)
			if err := p.setLeadership(part); err != nil {
				rm.log.Warn("applying ISR change", "partition", p.String(), "err", err)
			}
		}
	}
}
