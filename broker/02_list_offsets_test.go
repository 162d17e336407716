package broker

import (
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

func listOffset(t *testing.T, cl *kgo.Client, b *Broker, topic string, ts int64) kmsg.ListOffsetsResponseTopicPartition {
	t.Helper()
	req := kmsg.NewPtrListOffsetsRequest()
	rt := kmsg.NewListOffsetsRequestTopic()
	rt.Topic = topic
	rp := kmsg.NewListOffsetsRequestTopicPartition()
	rp.Timestamp = ts
	rt.Partitions = append(rt.Partitions, rp)
	req.Topics = append(req.Topics, rt)
	resp, err := req.RequestWith(testCtx(t), cl.Broker(int(b.cfg.NodeID)))
	if err != nil {
		t.Fatal(err)
	}
	return resp.Topics[0].Partitions[0]
}

func TestListOffsetsAndDeleteRecords(t *testing.T) {
	b := newTestBroker(t)
	createTopic(t, b, "lo", 1, nil)
	cl := newTestClient(t, b, kgo.DefaultProduceTopic("lo"))
	base := time.Now().Add(-time.Minute).Truncate(time.Millisecond)
	// Five batches, one record each, timestamps base+0s, +10s, ... +40s.
	for i := 0; i < 5; i++ {
		r := &kgo.Record{Value: []byte{byte(i)}, Timestamp: base.Add(time.Duration(i) * 10 * time.Second)}
		if err := cl.ProduceSync(testCtx(t), r).FirstErr(); err != nil {
			t.Fatal(err)
		}
	}
	ms := func(d time.Duration) int64 { return base.Add(d).UnixMilli() }
	cases := []struct {
		name           string
		ts             int64
		wantOff, wantT int64
	}{
		{"earliest", -2, 0, -1},
		{"latest", -1, 5, -1},
		{"max timestamp", -3, 4, ms(40 * time.Second)},
		{"earliest local", -4, 0, -1},
		{"latest tiered (nothing tiered)", -5, -1, -1},
		{"exact timestamp", ms(20 * time.Second), 2, ms(20 * time.Second)},
		{"between timestamps", ms(15 * time.Second), 2, ms(20 * time.Second)},
		{"before everything", ms(-time.Hour), 0, ms(0)},
		{"after everything", ms(time.Hour), -1, -1},
	}
	for _, c := range cases {
		p := listOffset(t, cl, b, "lo", c.ts)
		if p.ErrorCode != 0 || p.Offset != c.wantOff || p.Timestamp != c.wantT {
			t.Errorf("%s: offset %d ts %d err %d, want %d %d", c.name, p.Offset, p.Timestamp, p.ErrorCode, c.wantOff, c.wantT)
		}
	}
	// The same lookup as a user makes it, through kadm.
	adm0 := newTestAdmin(t, b)
	lo, err := adm0.ListOffsetsAfterMilli(testCtx(t), ms(15*time.Second), "lo")
	if err != nil {
		t.Fatal(err)
	}
	if o, ok := lo.Lookup("lo", 0); !ok || o.Err != nil || o.Offset != 2 || o.Timestamp != ms(20*time.Second) {
		t.Fatalf("kadm ListOffsetsAfterMilli: %+v", o)
	}
	if p := listOffset(t, cl, b, "nope", -1); p.ErrorCode != kerr.UnknownTopicOrPartition.Code {
		t.Fatalf("unknown topic: %v", kerr.ErrorForCode(p.ErrorCode))
	}

	// DeleteRecords through kadm.
	adm := newTestAdmin(t, b)
	offs := kadmOffsets("lo", 0, 3)
	res, err := adm.DeleteRecords(testCtx(t), offs)
	if err != nil {
		t.Fatal(err)
	}
	dr, _ := res.Lookup("lo", 0)
	if dr.Err != nil || dr.LowWatermark != 3 {
		t.Fatalf("delete records: %+v", dr)
	}
	if p := listOffset(t, cl, b, "lo", -2); p.Offset != 3 {
		t.Fatalf("earliest after delete: %d", p.Offset)
	}
	// A consumer from the start now begins at 3.
	got := consumeN(t, b, "lo", 2)
	if got[0].Offset != 3 || got[1].Offset != 4 {
		t.Fatalf("consumed offsets %d,%d", got[0].Offset, got[1].Offset)
	}
	// Fetching below the log start: OFFSET_OUT_OF_RANGE.
	rc := dialRaw(t, b)
	if c := rawFetch(t, rc, fetchRequest(b, "lo", 1, 0, 1, 1<<20, 1<<20), 1).Topics[0].Partitions[0].ErrorCode; c != kerr.OffsetOutOfRange.Code {
		t.Fatalf("fetch below log start: %v", kerr.ErrorForCode(c))
	}
	// Above the high watermark: OFFSET_OUT_OF_RANGE, nothing changes.
	res, err = adm.DeleteRecords(testCtx(t), kadmOffsets("lo", 0, 9))
	if err != nil {
		t.Fatal(err)
	}
	if dr, _ := res.Lookup("lo", 0); dr.Err != kerr.OffsetOutOfRange {
		t.Fatalf("delete above HW: %v", dr.Err)
	}
	// -1 = up to the high watermark.
	res, err = adm.DeleteRecords(testCtx(t), kadmOffsets("lo", 0, -1))
	if err != nil {
		t.Fatal(err)
	}
	if dr, _ := res.Lookup("lo", 0); dr.Err != nil || dr.LowWatermark != 5 {
		t.Fatalf("delete to HW: %+v", dr)
	}
}

func TestOffsetForLeaderEpoch(t *testing.T) {
	b := newTestBroker(t)
	createTopic(t, b, "ofle", 1, nil)
	cl := newTestClient(t, b, kgo.DefaultProduceTopic("ofle"))
	for i := 0; i < 3; i++ {
		if err := cl.ProduceSync(testCtx(t), &kgo.Record{Value: []byte("x")}).FirstErr(); err != nil {
			t.Fatal(err)
		}
	}
	req := kmsg.NewPtrOffsetForLeaderEpochRequest()
	req.ReplicaID = -1
	rt := kmsg.NewOffsetForLeaderEpochRequestTopic()
	rt.Topic = "ofle"
	rp := kmsg.NewOffsetForLeaderEpochRequestTopicPartition()
	rp.LeaderEpoch = 0
	rt.Partitions = append(rt.Partitions, rp)
	req.Topics = append(req.Topics, rt)
	resp, err := req.RequestWith(testCtx(t), cl.Broker(int(b.cfg.NodeID)))
	if err != nil {
		t.Fatal(err)
	}
	p := resp.Topics[0].Partitions[0]
	if p.ErrorCode != 0 || p.LeaderEpoch != 0 || p.EndOffset != 3 {
		t.Fatalf("epoch 0: %+v", p)
	}
	req.Topics[0].Partitions[0].CurrentLeaderEpoch = 5
	resp, err = req.RequestWith(testCtx(t), cl.Broker(int(b.cfg.NodeID)))
	if err != nil {
		t.Fatal(err)
	}
	if c := resp.Topics[0].Partitions[0].ErrorCode; c != kerr.UnknownLeaderEpoch.Code {
		t.Fatalf("future current epoch: %v", kerr.ErrorForCode(c))
	}
}

func kadmOffsets(topic string, partition int32, offset int64) kadm.Offsets {
	return kadm.Offsets{topic: {partition: kadm.Offset{Topic: topic, Partition: partition, At: offset}}}
}
