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

// desiredISR returns the ISR this leader wants now with the broker epoch each member's fetches
// carried (-1: unknown, for meta's KIP-903 check), and whether it differs from the current one.
// eligible says whether meta lists a replica as live at a broker epoch (-1: at any); a replica
// whose evidence comes from another incarnation is not added (Kafka's isReplicaIsrEligible).
func (p *Partition) desiredISR(now time.Time, lag time.Duration, eligible func(id int32, epoch int64) bool) ([]int32, []int64, int32, int32, bool) {
	p.stateMu.RLock()
	defer p.stateMu.RUnlock()
	if !p.leader || len(p.replicas) < 2 {
		return nil, nil, 0, 0, false
	}
	hw := p.hw.Load()
	var isr []int32
	var epochs []int64
	for _, id := range p.replicas {
		epoch, ok := p.followerEpoch[id]
		if !ok || id == p.nodeID {
			epoch = -1 // the leader's own epoch is checked by meta as the requester's
		}
		if id == p.nodeID {
			isr, epochs = append(isr, id), append(epochs, epoch)
			continue
		}
		inISR := slices.Contains(p.isr, id)
		caught := now.Sub(p.caughtUp[id]) <= lag
		leo, fetched := p.followerLEO[id]
		switch {
		case inISR && caught:
			isr, epochs = append(isr, id), append(epochs, epoch)
		case !inISR && fetched && leo >= hw && caught && eligible(id, epoch):
			isr, epochs = append(isr, id), append(epochs, epoch)
		}
	}
	same := len(isr) == len(p.isr)
	for _, id := range isr {
		same = same && slices.Contains(p.isr, id)
	}
	return isr, epochs, p.leaderEpoch, p.partEpoch, !same
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
			isr, epochs, leaderEpoch, partEpoch, change := p.desiredISR(p.now(), lag, rm.liveAt)
			if !change {
				continue
			}
			part, err := rm.b.meta.AlterPartitionWithEpochs(rm.ctx, p.topicID, p.index, leaderEpoch, partEpoch, isr, epochs)
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

// liveAt reports whether meta (as this broker has applied it) lists broker id as live at broker
// epoch epoch (-1: at any epoch).
func (rm *ReplicaManager) liveAt(id int32, epoch int64) bool {
	br, ok := rm.b.meta.State().Broker(id)
	return ok && !br.Fenced && (epoch == -1 || br.Epoch == epoch)
}

// liveEpoch is broker id's live registration epoch as this broker knows it, -1 when it is fenced or
// unknown (the fetch-side KIP-903 check then has nothing to compare with).
func (rm *ReplicaManager) liveEpoch(id int32) int64 {
	br, ok := rm.b.meta.State().Broker(id)
	if !ok || br.Fenced {
		return -1
	}
	return br.Epoch
}
