package broker

import (
	"fmt"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// epochProbe sends one raw request of each kind that carries CurrentLeaderEpoch (Fetch,
// ListOffsets, OffsetForLeaderEpoch; Produce has no such field in the Kafka protocol) for
// partition 0 of topic to the broker at addr, as a consumer would (replica id -1), and returns
// the partition's error codes. Versions are whatever kgo negotiates (the newest both serve).
type epochProbe struct {
	t     *testing.T
	cl    *kgo.Client
	topic string
	id    [16]byte
}

func newEpochProbe(t *testing.T, addr, topic string, id [16]byte) *epochProbe {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(addr))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cl.Close)
	return &epochProbe{t: t, cl: cl, topic: topic, id: id}
}

func (e *epochProbe) request(req kmsg.Request) kmsg.Response {
	e.t.Helper()
	resp, err := e.cl.SeedBrokers()[0].Request(testCtx(e.t), req)
	if err != nil {
		e.t.Fatalf("%T: %v", req, err)
	}
	return resp
}

// fetch returns the partition's answer to a sessionless consumer Fetch from offset 0.
func (e *epochProbe) fetch(epoch int32) kmsg.FetchResponseTopicPartition {
	e.t.Helper()
	return e.fetchAs(-1, -1, epoch)
}

// fetchAs is fetch sent as replica id (ReplicaID before v15, ReplicaState from v15, KIP-903)
// at broker epoch brokerEpoch; -1 is a consumer.
func (e *epochProbe) fetchAs(id int32, brokerEpoch int64, epoch int32) kmsg.FetchResponseTopicPartition {
	e.t.Helper()
	req := kmsg.NewPtrFetchRequest()
	req.ReplicaID = id
	req.ReplicaState.ID, req.ReplicaState.Epoch = id, brokerEpoch
	req.MaxWaitMillis = 0
	req.MinBytes = 0
	req.MaxBytes = 1 << 20
	req.SessionEpoch = -1
	rt := kmsg.NewFetchRequestTopic()
	rt.Topic, rt.TopicID = e.topic, e.id
	rp := kmsg.NewFetchRequestTopicPartition()
	rp.Partition = 0
	rp.CurrentLeaderEpoch = epoch
	rp.FetchOffset = 0
	rp.PartitionMaxBytes = 1 << 20
	rt.Partitions = append(rt.Partitions, rp)
	req.Topics = append(req.Topics, rt)
	resp := e.request(req).(*kmsg.FetchResponse)
	if resp.ErrorCode != 0 || len(resp.Topics) != 1 || len(resp.Topics[0].Partitions) != 1 {
		e.t.Fatalf("fetch epoch %d: top-level error %v, %d topics in the answer", epoch, kerr.ErrorForCode(resp.ErrorCode), len(resp.Topics))
	}
	return resp.Topics[0].Partitions[0]
}

func (e *epochProbe) listOffsets(epoch int32) kmsg.ListOffsetsResponseTopicPartition {
	e.t.Helper()
	req := kmsg.NewPtrListOffsetsRequest()
	req.ReplicaID = -1
	rt := kmsg.NewListOffsetsRequestTopic()
	rt.Topic = e.topic
	rp := kmsg.NewListOffsetsRequestTopicPartition()
	rp.Partition = 0
	rp.CurrentLeaderEpoch = epoch
	rp.Timestamp = -1 // latest
	rt.Partitions = append(rt.Partitions, rp)
	req.Topics = append(req.Topics, rt)
	resp := e.request(req).(*kmsg.ListOffsetsResponse)
	if len(resp.Topics) != 1 || len(resp.Topics[0].Partitions) != 1 {
		e.t.Fatalf("list offsets epoch %d: %d topics in the answer", epoch, len(resp.Topics))
	}
	return resp.Topics[0].Partitions[0]
}

func (e *epochProbe) offsetForLeaderEpoch(current, asked int32) kmsg.OffsetForLeaderEpochResponseTopicPartition {
	e.t.Helper()
	req := kmsg.NewPtrOffsetForLeaderEpochRequest()
	req.ReplicaID = -1 // a consumer (KIP-320 truncation detection)
	rt := kmsg.NewOffsetForLeaderEpochRequestTopic()
	rt.Topic = e.topic
	rp := kmsg.NewOffsetForLeaderEpochRequestTopicPartition()
	rp.Partition = 0
	rp.CurrentLeaderEpoch = current
	rp.LeaderEpoch = asked
	rt.Partitions = append(rt.Partitions, rp)
	req.Topics = append(req.Topics, rt)
	resp := e.request(req).(*kmsg.OffsetForLeaderEpochResponse)
	if len(resp.Topics) != 1 || len(resp.Topics[0].Partitions) != 1 {
		e.t.Fatalf("offset for leader epoch, current %d: %d topics in the answer", current, len(resp.Topics))
	}
	return resp.Topics[0].Partitions[0]
}

// produce sends one record with the given acks and returns the partition's answer.
func (e *epochProbe) produce(acks int16) kmsg.ProduceResponseTopicPartition {
	e.t.Helper()
	req := kmsg.NewPtrProduceRequest()
	req.Acks = acks
	req.TimeoutMillis = 5000
	rt := kmsg.NewProduceRequestTopic()
	rt.Topic, rt.TopicID = e.topic, e.id // v13 names topics by id
	rp := kmsg.NewProduceRequestTopicPartition()
	rp.Partition = 0
	rp.Records = testBatch(e.t, testBatchOpts{ts: time.Now().UnixMilli(), value: []byte("to-a-follower")})
	rt.Partitions = append(rt.Partitions, rp)
	req.Topics = append(req.Topics, rt)
	resp := e.request(req).(*kmsg.ProduceResponse)
	if len(resp.Topics) != 1 || len(resp.Topics[0].Partitions) != 1 {
		e.t.Fatalf("produce acks=%d: %d topics in the answer", acks, len(resp.Topics))
	}
	return resp.Topics[0].Partitions[0]
}

func codeName(code int16) string {
	if code == 0 {
		return "NONE"
	}
	if ke, ok := kerr.ErrorForCode(code).(*kerr.Error); ok {
		return ke.Message
	}
	return fmt.Sprint("error ", code)
}

// After a leadership change (the leader shut down, a follower elected at a higher leader epoch),
// a client still holding the old epoch is fenced and one claiming a future epoch is told the
// broker does not know it yet (KIP-320, Kafka's Partition.checkCurrentLeaderEpoch): on the new
// leader and on the remaining follower, Fetch, ListOffsets and OffsetForLeaderEpoch with
// CurrentLeaderEpoch older than the partition's answer FENCED_LEADER_EPOCH, newer
// UNKNOWN_LEADER_EPOCH. With the current epoch (or none, -1) the leader serves all three and the
// follower serves only the consumer Fetch (KIP-392) and answers NOT_LEADER_OR_FOLLOWER to the
// others: the epoch is checked before leadership, as in Kafka. A fenced Fetch (v12+) points the
// client at the current leader and epoch (KIP-951). Produce, which carries no leader epoch, sent
// to the follower is NOT_LEADER_OR_FOLLOWER with the same hint and appends nothing there. A
// replica Fetch (follower id and broker epoch) with a stale or future leader epoch is fenced too.
func TestStaleLeaderEpochFenced(t *testing.T) {
	if testing.Short() {
		t.Skip("starts three brokers")
	}
	brokers := startReplCluster(t, 3)
	seeds := brokerAddrs(brokers)
	const topic = "epochs"
	off := "false"
	if resp, err := kadmFor(t, seeds).CreateTopic(testCtx(t), 1, 3, map[string]*string{"remote.storage.enable": &off}, topic); err != nil || resp.Err != nil {
		t.Fatalf("create: %v %v", err, resp.Err)
	}
	cl, err := kgo.NewClient(kgo.SeedBrokers(seeds...), kgo.DefaultProduceTopic(topic),
		kgo.RecordPartitioner(kgo.ManualPartitioner()), kgo.MetadataMinAge(250*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	produce := func(from, n int) {
		t.Helper()
		var recs []*kgo.Record
		for i := from; i < from+n; i++ {
			recs = append(recs, &kgo.Record{Value: []byte(fmt.Sprintf("%06d", i))})
		}
		if err := cl.ProduceSync(testCtx(t), recs...).FirstErr(); err != nil {
			t.Fatalf("produce: %v", err)
		}
	}
	const before = 10
	produce(0, before)

	mt, _ := brokers[0].meta.State().Topic(topic)
	oldLeader, oldEpoch := mt.Partitions[0].Leader, mt.Partitions[0].LeaderEpoch
	var survivors []*Broker
	for _, b := range brokers {
		if b.cfg.NodeID == oldLeader {
			if err := b.Close(); err != nil { // controlled shutdown: leadership moves now
				t.Fatal(err)
			}
		} else {
			survivors = append(survivors, b)
		}
	}
	// Both survivors have applied the new leadership to their replica (a sync point for the wire
	// checks below, which are the assertions).
	var leader, follower *Broker
	var epoch int32
	waitFor(t, "a new leader applied on both survivors", func() bool {
		mt, _ := survivors[0].meta.State().Topic(topic)
		part := mt.Partitions[0]
		if part.Leader < 0 || part.Leader == oldLeader {
			return false
		}
		epoch = part.LeaderEpoch
		for _, b := range survivors {
			p := b.replicas.partition(mt.ID, 0)
			if p == nil {
				return false
			}
			want := kerr.NotLeaderForPartition.Code
			if b.cfg.NodeID == part.Leader {
				leader, want = b, 0
			} else {
				follower = b
			}
			if p.checkLeader(epoch) != want {
				return false
			}
		}
		return true
	})
	if epoch <= oldEpoch {
		t.Fatalf("leader epoch %d after the change, was %d", epoch, oldEpoch)
	}
	// Records in the new epoch, so that the old epoch has an end offset of its own.
	produce(before, 10)
	waitFor(t, "both replicas' high watermark at the log end", func() bool {
		for _, b := range survivors {
			if b.replicas.partition(mt.ID, 0).hw.Load() != 2*before {
				return false
			}
		}
		return true
	})

	for _, tc := range []struct {
		who     string
		b       *Broker
		leading bool
	}{{"leader", leader, true}, {"follower", follower, false}} {
		pr := newEpochProbe(t, tc.b.Addr(), topic, mt.ID)
		notLeader := kerr.NotLeaderForPartition.Code
		if tc.leading {
			notLeader = 0
		}
		for _, c := range []struct {
			name    string
			epoch   int32
			fetch   int16 // Fetch is served by a follower too (KIP-392)
			partial int16 // ListOffsets and OffsetForLeaderEpoch: the leader only
		}{
			{"older", epoch - 1, kerr.FencedLeaderEpoch.Code, kerr.FencedLeaderEpoch.Code},
			{"the pre-change", oldEpoch, kerr.FencedLeaderEpoch.Code, kerr.FencedLeaderEpoch.Code},
			{"newer", epoch + 1, kerr.UnknownLeaderEpoch.Code, kerr.UnknownLeaderEpoch.Code},
			{"current", epoch, 0, notLeader},
			{"no", -1, 0, notLeader},
		} {
			fp := pr.fetch(c.epoch)
			if fp.ErrorCode != c.fetch {
				t.Errorf("%s (broker %d): Fetch with %s epoch (%d, partition at %d): %s, want %s",
					tc.who, tc.b.cfg.NodeID, c.name, c.epoch, epoch, codeName(fp.ErrorCode), codeName(c.fetch))
			}
			switch {
			case fp.ErrorCode == kerr.FencedLeaderEpoch.Code:
				if fp.CurrentLeader.LeaderID != leader.cfg.NodeID || fp.CurrentLeader.LeaderEpoch != epoch {
					t.Errorf("%s: fenced Fetch points at leader %d epoch %d, want %d epoch %d", tc.who,
						fp.CurrentLeader.LeaderID, fp.CurrentLeader.LeaderEpoch, leader.cfg.NodeID, epoch)
				}
			case fp.ErrorCode != 0:
			case len(fp.RecordBatches) == 0 || fp.HighWatermark != 2*before:
				t.Errorf("%s: served Fetch has %d bytes, high watermark %d (want data, %d)", tc.who, len(fp.RecordBatches), fp.HighWatermark, 2*before)
			}
			if fp.ErrorCode != 0 && len(fp.RecordBatches) > 0 {
				t.Errorf("%s: Fetch answered %s with %d bytes of records", tc.who, codeName(fp.ErrorCode), len(fp.RecordBatches))
			}

			lp := pr.listOffsets(c.epoch)
			if lp.ErrorCode != c.partial {
				t.Errorf("%s (broker %d): ListOffsets with %s epoch (%d, partition at %d): %s, want %s",
					tc.who, tc.b.cfg.NodeID, c.name, c.epoch, epoch, codeName(lp.ErrorCode), codeName(c.partial))
			}
			if lp.ErrorCode == 0 && (lp.Offset != 2*before || lp.LeaderEpoch != epoch) {
				t.Errorf("%s: ListOffsets latest = %d at epoch %d, want %d at %d", tc.who, lp.Offset, lp.LeaderEpoch, 2*before, epoch)
			}

			op := pr.offsetForLeaderEpoch(c.epoch, oldEpoch)
			if op.ErrorCode != c.partial {
				t.Errorf("%s (broker %d): OffsetForLeaderEpoch with %s epoch (%d, partition at %d): %s, want %s",
					tc.who, tc.b.cfg.NodeID, c.name, c.epoch, epoch, codeName(op.ErrorCode), codeName(c.partial))
			}
			// The old epoch ends where the new leader's first batch begins.
			if op.ErrorCode == 0 && (op.LeaderEpoch != oldEpoch || op.EndOffset != before) {
				t.Errorf("%s: end of epoch %d = %d (epoch %d), want %d", tc.who, oldEpoch, op.EndOffset, op.LeaderEpoch, before)
			} else if op.ErrorCode != 0 && op.EndOffset != -1 {
				t.Errorf("%s: OffsetForLeaderEpoch answered %s with end offset %d", tc.who, codeName(op.ErrorCode), op.EndOffset)
			}
		}
	}

	// A replica fetch (the follower's id and live broker epoch) is fenced the same way, before
	// anything about the follower's position is looked at. (Only stale and future epochs are sent:
	// a served replica fetch from offset 0 would move the follower's position on the leader.)
	br, _ := leader.meta.State().Broker(follower.cfg.NodeID)
	for _, tc := range []struct {
		who string
		b   *Broker
	}{{"leader", leader}, {"follower", follower}} {
		pr := newEpochProbe(t, tc.b.Addr(), topic, mt.ID)
		for _, c := range []struct {
			epoch int32
			want  int16
		}{{epoch - 1, kerr.FencedLeaderEpoch.Code}, {epoch + 1, kerr.UnknownLeaderEpoch.Code}} {
			if fp := pr.fetchAs(follower.cfg.NodeID, br.Epoch, c.epoch); fp.ErrorCode != c.want || len(fp.RecordBatches) > 0 {
				t.Errorf("%s: replica Fetch from broker %d with leader epoch %d (partition at %d): %s with %d bytes, want %s",
					tc.who, follower.cfg.NodeID, c.epoch, epoch, codeName(fp.ErrorCode), len(fp.RecordBatches), codeName(c.want))
			}
		}
	}

	// Produce carries no leader epoch; sent to the follower it is NOT_LEADER_OR_FOLLOWER, with the
	// current leader and epoch (KIP-951, v10+), and appends nothing there.
	fp := follower.replicas.partition(mt.ID, 0)
	end := fp.log.EndOffset()
	pr := newEpochProbe(t, follower.Addr(), topic, mt.ID)
	for _, acks := range []int16{1, -1} {
		rp := pr.produce(acks)
		if rp.ErrorCode != kerr.NotLeaderForPartition.Code {
			t.Errorf("Produce acks=%d to the follower: %s, want NOT_LEADER_OR_FOLLOWER", acks, codeName(rp.ErrorCode))
		}
		if rp.CurrentLeader.LeaderID != leader.cfg.NodeID || rp.CurrentLeader.LeaderEpoch != epoch {
			t.Errorf("Produce acks=%d to the follower points at leader %d epoch %d, want %d epoch %d", acks,
				rp.CurrentLeader.LeaderID, rp.CurrentLeader.LeaderEpoch, leader.cfg.NodeID, epoch)
		}
	}
	if e := fp.log.EndOffset(); e != end {
		t.Errorf("the follower's log end moved from %d to %d after refused produces", end, e)
	}
	t.Logf("leader %d shut down at epoch %d; new leader %d at epoch %d", oldLeader, oldEpoch, leader.cfg.NodeID, epoch)
}
