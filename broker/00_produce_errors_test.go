package broker

import (
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// Bad produce requests get the Kafka error code a Java client expects, and the connection stays
// usable afterwards.
func TestProduceErrorCodes(t *testing.T) {
	b := newTestBroker(t, func(c *Config) { c.AutoCreateTopicsEnable = false })
	before, after := "60000", "60000"
	small := "200"
	createTopic(t, b, "errs", 1, map[string]*string{
		"message.timestamp.before.max.ms": &before,
		"message.timestamp.after.max.ms":  &after,
	})
	createTopic(t, b, "small", 1, map[string]*string{"max.message.bytes": &small})
	cl := newTestClient(t, b)
	now := time.Now().UnixMilli()

	good := testBatch(t, testBatchOpts{records: 2, ts: now})
	corrupt := append([]byte(nil), good...)
	corrupt[len(corrupt)-3] ^= 0x5a

	cases := []struct {
		name  string
		topic string
		acks  int16
		batch []byte
		want  int16
	}{
		{"corrupt CRC", "errs", -1, corrupt, kerr.CorruptMessage.Code},
		{"batch above max.message.bytes", "small", -1, testBatch(t, testBatchOpts{records: 5, ts: now, value: make([]byte, 100)}), kerr.MessageTooLarge.Code},
		{"timestamp too old", "errs", 1, testBatch(t, testBatchOpts{ts: now - 3_600_000}), kerr.InvalidTimestamp.Code},
		{"timestamp too far ahead", "errs", 1, testBatch(t, testBatchOpts{ts: now + 3_600_000}), kerr.InvalidTimestamp.Code},
		{"unknown topic id (v13; produce never auto-creates)", "nope", -1, good, kerr.UnknownTopicID.Code},
		{"no batch", "errs", 1, nil, kerr.InvalidRecord.Code},
		{"good batch still works", "errs", -1, good, 0},
	}
	for _, c := range cases {
		r := rawProduce(t, cl, b, c.topic, c.acks, c.batch)
		if r.ErrorCode != c.want {
			t.Errorf("%s: error %v, want %v", c.name, kerr.ErrorForCode(r.ErrorCode), kerr.ErrorForCode(c.want))
			continue
		}
		if c.want != 0 && r.BaseOffset != -1 {
			t.Errorf("%s: base offset %d on error", c.name, r.BaseOffset)
		}
		if c.want != 0 && c.want != kerr.UnknownTopicID.Code && (r.ErrorMessage == nil || *r.ErrorMessage == "") {
			t.Errorf("%s: no error message", c.name)
		}
	}
	// Nothing but the one good batch was appended.
	if end := endOffset(t, b, "errs"); end != 2 {
		t.Fatalf("end offset %d, want 2", end)
	}
	if end := endOffset(t, b, "small"); end != 0 {
		t.Fatalf("small: end offset %d, want 0", end)
	}
	// kgo picks the version and rewrites Acks, so these go over a raw connection at v9.
	rc := dialRaw(t, b)
	req := kmsg.NewPtrProduceRequest()
	req.Version = 9
	req.Acks = 1
	req.TimeoutMillis = 1000
	req.Topics = []kmsg.ProduceRequestTopic{{Topic: "errs", Partitions: []kmsg.ProduceRequestTopicPartition{{Partition: 7, Records: good}}}}
	send := func(corr int32) int16 {
		t.Helper()
		rc.write(frame(req, corr))
		presp := kmsg.NewPtrProduceResponse()
		presp.Version = req.Version
		if _, err := rc.read(presp); err != nil {
			t.Fatal(err)
		}
		return presp.Topics[0].Partitions[0].ErrorCode
	}
	if c := send(1); c != kerr.UnknownTopicOrPartition.Code {
		t.Fatalf("unknown partition: %v", kerr.ErrorForCode(c))
	}
	req.Topics[0].Topic = "nope"
	req.Topics[0].Partitions[0].Partition = 0
	if c := send(2); c != kerr.UnknownTopicOrPartition.Code {
		t.Fatalf("unknown topic (v9): %v", kerr.ErrorForCode(c))
	}
	req.Topics[0].Topic = "errs"
	req.Acks = 2
	if c := send(3); c != kerr.InvalidRequiredAcks.Code {
		t.Fatalf("acks=2: %v", kerr.ErrorForCode(c))
	}
	// acks=0 that fails: no response, the connection is closed (Kafka's signal to the producer).
	req.Acks = 0
	req.Topics[0].Partitions[0].Records = corrupt
	rc.write(frame(req, 4))
	rc.expectClosed()
	// Same for acks=0 to a topic that does not exist.
	rc = dialRaw(t, b)
	req.Topics[0].Topic = "nope"
	req.Topics[0].Partitions[0].Records = good
	rc.write(frame(req, 5))
	rc.expectClosed()
	if end := endOffset(t, b, "errs"); end != 2 {
		t.Fatalf("end offset %d after refused requests, want 2", end)
	}
}

// message.timestamp.type=LogAppendTime: the broker stamps its own time, returns it in the
// produce response, and consumers see it.
func TestProduceLogAppendTime(t *testing.T) {
	b := newTestBroker(t)
	lat := "LogAppendTime"
	createTopic(t, b, "lat", 1, map[string]*string{"message.timestamp.type": &lat})
	cl := newTestClient(t, b)
	old := time.Now().Add(-time.Hour).UnixMilli()
	before := time.Now().UnixMilli()
	r := rawProduce(t, cl, b, "lat", -1, testBatch(t, testBatchOpts{records: 3, ts: old}))
	after := time.Now().UnixMilli()
	if r.ErrorCode != 0 || r.LogAppendTime < before || r.LogAppendTime > after {
		t.Fatalf("response %+v, want LogAppendTime in [%d,%d]", r, before, after)
	}
	for _, rec := range consumeN(t, b, "lat", 3) {
		if rec.Timestamp.UnixMilli() != r.LogAppendTime || rec.Attrs.TimestampType() != 1 {
			t.Fatalf("record timestamp %v type %d, want %d type 1", rec.Timestamp.UnixMilli(), rec.Attrs.TimestampType(), r.LogAppendTime)
		}
	}
}

// acks=0 and acks=1 through kgo.
func TestProduceAcksZeroAndOne(t *testing.T) {
	b := newTestBroker(t)
	createTopic(t, b, "acks", 1, nil)
	for _, acks := range []kgo.Acks{kgo.NoAck(), kgo.LeaderAck()} {
		cl := newTestClient(t, b, kgo.DefaultProduceTopic("acks"), kgo.RequiredAcks(acks), kgo.DisableIdempotentWrite())
		if err := cl.ProduceSync(testCtx(t), &kgo.Record{Value: []byte("x")}, &kgo.Record{Value: []byte("y")}).FirstErr(); err != nil {
			t.Fatal(err)
		}
	}
	got := consumeN(t, b, "acks", 4)
	if string(got[0].Value) != "x" || string(got[3].Value) != "y" {
		t.Fatalf("values %q %q", got[0].Value, got[3].Value)
	}
}

// min.insync.replicas above the ISR size: acks=all is refused before appending
// (NOT_ENOUGH_REPLICAS), acks=1 still works.
func TestProduceNotEnoughReplicas(t *testing.T) {
	b := newTestBroker(t)
	two := "2"
	createTopic(t, b, "minisr", 1, map[string]*string{"min.insync.replicas": &two})
	cl := newTestClient(t, b)
	now := time.Now().UnixMilli()
	if r := rawProduce(t, cl, b, "minisr", -1, testBatch(t, testBatchOpts{ts: now})); r.ErrorCode != kerr.NotEnoughReplicas.Code {
		t.Fatalf("acks=all: %v", kerr.ErrorForCode(r.ErrorCode))
	}
	if end := endOffset(t, b, "minisr"); end != 0 {
		t.Fatalf("appended despite NOT_ENOUGH_REPLICAS: end %d", end)
	}
	one := newTestClient(t, b, kgo.DefaultProduceTopic("minisr"), kgo.RequiredAcks(kgo.LeaderAck()), kgo.DisableIdempotentWrite())
	if err := one.ProduceSync(testCtx(t), &kgo.Record{Value: []byte("x")}).FirstErr(); err != nil {
		t.Fatalf("acks=1: %v", err)
	}
}
