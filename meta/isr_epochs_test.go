package meta

import (
	"encoding/json"
	"errors"
	"slices"
	"strings"
	"testing"

	"github.com/hashicorp/raft"
)

// KIP-903: an ISR expansion carries the broker epoch the leader saw in each member's fetches, and
// meta refuses one whose member has re-registered since (a restarted process, maybe with an empty
// disk): the leader's evidence that it is caught up belongs to the previous incarnation.
func TestAlterPartitionRefusesStaleBrokerEpoch(t *testing.T) {
	h := fixture(t)
	tp, _ := h.st().Topic("t")
	p := tp.Partitions[0]
	lb, _ := h.st().Broker(p.Leader)
	f := p.Replicas[0]
	if f == p.Leader {
		f = p.Replicas[1]
	}
	fb, _ := h.st().Broker(f)
	old := fb.Epoch

	// The follower restarts: a new incarnation registers, which takes it out of the ISR.
	h.must(&cmdRegisterBroker{ID: f, Host: fb.Host, Port: fb.Port, Rack: fb.Rack, Incarnation: "restarted"})
	nb, _ := h.st().Broker(f)
	if nb.Epoch == old || nb.Fenced {
		t.Fatalf("re-registration: epoch %d (was %d), fenced %v", nb.Epoch, old, nb.Fenced)
	}
	tp, _ = h.st().Topic("t")
	p = tp.Partitions[0]
	if slices.Contains(p.ISR, f) {
		t.Fatalf("restarted broker %d still in the ISR %v", f, p.ISR)
	}
	isr := append(slices.Clone(p.ISR), f)
	epochs := make([]int64, len(isr))
	for i, r := range isr {
		b, _ := h.st().Broker(r)
		epochs[i] = b.Epoch
	}
	expand := func(fEpoch int64) *applyResult {
		e := slices.Clone(epochs)
		e[len(e)-1] = fEpoch
		return h.apply(&cmdAlterPartition{Topic: tp.ID, BrokerID: p.Leader, BrokerEpoch: lb.Epoch,
			LeaderEpoch: p.LeaderEpoch, PartitionEpoch: p.PartitionEpoch, ISR: isr, ISREpochs: e})
	}
	before := h.st().Digest()
	if err := expand(old).err(); !errors.Is(err, ErrIneligibleReplica) {
		t.Fatalf("expansion on the previous incarnation's epoch: %v, want INELIGIBLE_REPLICA", err)
	}
	if err := expand(nb.Epoch + 1).err(); !errors.Is(err, ErrIneligibleReplica) {
		t.Fatalf("expansion on an epoch never registered: %v, want INELIGIBLE_REPLICA", err)
	}
	if h.st().Digest() != before {
		t.Fatal("a refused expansion changed the state")
	}
	// Epoch lists must match the ISR.
	if err := h.apply(&cmdAlterPartition{Topic: tp.ID, BrokerID: p.Leader, BrokerEpoch: lb.Epoch, LeaderEpoch: p.LeaderEpoch,
		PartitionEpoch: p.PartitionEpoch, ISR: isr, ISREpochs: epochs[:1]}).err(); !errors.Is(err, ErrInvalidRequest) {
		t.Fatalf("short epoch list: %v", err)
	}
	// Evidence from the current registration is accepted.
	r := expand(nb.Epoch)
	if err := r.err(); err != nil {
		t.Fatalf("expansion at the live epoch: %v", err)
	}
	if !slices.Contains(r.Partition.ISR, f) || r.Partition.PartitionEpoch != p.PartitionEpoch+1 {
		t.Fatalf("after expansion: %+v", r.Partition)
	}
	// A member fenced since the leader saw it is refused too, even at its epoch.
	p = *r.Partition
	h.must(&cmdAlterPartition{Topic: tp.ID, BrokerID: p.Leader, BrokerEpoch: lb.Epoch, LeaderEpoch: p.LeaderEpoch,
		PartitionEpoch: p.PartitionEpoch, ISR: []int32{p.Leader}})
	h.must(&cmdFenceBroker{ID: f, Epoch: nb.Epoch})
	tp, _ = h.st().Topic("t")
	p = tp.Partitions[0]
	if err := h.apply(&cmdAlterPartition{Topic: tp.ID, BrokerID: p.Leader, BrokerEpoch: lb.Epoch, LeaderEpoch: p.LeaderEpoch,
		PartitionEpoch: p.PartitionEpoch, ISR: []int32{p.Leader, f}, ISREpochs: []int64{lb.Epoch, nb.Epoch}}).err(); !errors.Is(err, ErrIneligibleReplica) {
		t.Fatalf("fenced member at its epoch: %v", err)
	}
}

// Version 1 entries (written before ISREpochs existed) still decode and apply with the old rules;
// an entry carries version 2 only when it uses ISREpochs, and a version 1 entry that has the
// field is not from any build and is refused.
func TestAlterPartitionEpochsEncodingCompatible(t *testing.T) {
	h := fixture(t)
	tp, _ := h.st().Topic("t")
	p := tp.Partitions[0]
	lb, _ := h.st().Broker(p.Leader)
	with := &cmdAlterPartition{Topic: tp.ID, BrokerID: p.Leader, BrokerEpoch: lb.Epoch, ISR: []int32{p.Leader}, ISREpochs: []int64{lb.Epoch}}
	without := &cmdAlterPartition{Topic: tp.ID, BrokerID: p.Leader, BrokerEpoch: lb.Epoch, ISR: []int32{p.Leader}}
	if v := encodeCommand(reqID{}, with)[0]; v != 2 {
		t.Fatalf("alter-partition with epochs written as version %d", v)
	}
	for _, body := range []any{without, &cmdHeartbeat{ID: 1, Epoch: 2}, &cmdNoop{}} {
		if v := encodeCommand(reqID{}, body)[0]; v != 1 {
			t.Fatalf("%T written as version %d, want 1 (readable by builds before version 2)", body, v)
		}
	}
	// An entry as the previous build wrote it (version 1, the JSON fields it knew) applies.
	js, err := json.Marshal(without)
	if err != nil || strings.Contains(string(js), "ISREpochs") {
		t.Fatalf("version 1 body %s: %v", js, err)
	}
	v1 := append(append([]byte{1, byte(kindAlterPartition)}, make([]byte, 16)...), js...)
	h.idx++
	r := h.f.Apply(&raft.Log{Index: h.idx, Type: raft.LogCommand, Data: v1}).(*applyResult)
	if err := r.err(); err != nil || !slices.Equal(r.Partition.ISR, []int32{p.Leader}) {
		t.Fatalf("version 1 entry: %v %+v", err, r.Partition)
	}
	// Version 1 with the version 2 field: corrupt.
	bad := encodeCommand(reqID{}, with)
	bad[0] = 1
	if _, err := decodeCommand(bad); !errors.Is(err, ErrCorruptCommand) {
		t.Fatalf("version 1 entry with ISREpochs: %v", err)
	}
	// Version 2 round trip.
	c, err := decodeCommand(encodeCommand(reqID{}, with))
	if err != nil || !slices.Equal(c.body.(*cmdAlterPartition).ISREpochs, with.ISREpochs) {
		t.Fatalf("round trip: %v %+v", err, c.body)
	}
}
