package broker

import (
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// rawProduce sends one ProduceRequest with the given batch to partition 0 of topic on b and
// returns that partition's response.
func rawProduce(t *testing.T, cl *kgo.Client, b *Broker, topic string, acks int16, batch []byte) kmsg.ProduceResponseTopicPartition {
	t.Helper()
	req := kmsg.NewPtrProduceRequest()
	req.Acks = acks
	req.TimeoutMillis = 5000
	rt := kmsg.NewProduceRequestTopic()
	rt.Topic = topic
	if mt, ok := b.meta.State().Topic(topic); ok {
		rt.TopicID = mt.ID // v13+ names topics by id
	}
	rp := kmsg.NewProduceRequestTopicPartition()
	rp.Partition = 0
	rp.Records = batch
	rt.Partitions = append(rt.Partitions, rp)
	req.Topics = append(req.Topics, rt)
	resp, err := req.RequestWith(testCtx(t), cl.Broker(int(b.cfg.NodeID)))
	if err != nil {
		t.Fatalf("produce request: %v", err)
	}
	if len(resp.Topics) != 1 || len(resp.Topics[0].Partitions) != 1 {
		t.Fatalf("produce response shape: %+v", resp)
	}
	return resp.Topics[0].Partitions[0]
}

func initProducerID(t *testing.T, cl *kgo.Client) (int64, int16) {
	t.Helper()
	req := kmsg.NewPtrInitProducerIDRequest()
	resp, err := req.RequestWith(testCtx(t), cl)
	if err != nil {
		t.Fatal(err)
	}
	if err := kerr.ErrorForCode(resp.ErrorCode); err != nil {
		t.Fatalf("InitProducerId: %v", err)
	}
	return resp.ProducerID, resp.ProducerEpoch
}

func endOffset(t *testing.T, b *Broker, topic string) int64 {
	t.Helper()
	adm := newTestAdmin(t, b)
	offs, err := adm.ListEndOffsets(testCtx(t), topic)
	if err != nil {
		t.Fatal(err)
	}
	o, ok := offs.Lookup(topic, 0)
	if !ok || o.Err != nil {
		t.Fatalf("end offset: %+v", o)
	}
	return o.Offset
}

// Idempotent produce with hand-built batches: retries of the same sequence are answered with the
// original offsets and not appended; gaps and fenced epochs are refused; and the producer state
// survives a restart of the broker on the same data directory.
func TestIdempotentProduceDuplicatesGapsAndRestart(t *testing.T) {
	dir := t.TempDir()
	cfg := testBrokerConfig(t, dir)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	b, err := Start(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	b1 := b
	t.Cleanup(func() { b1.Close() }) // on failure paths; Close is idempotent
	createTopic(t, b, "idem", 1, nil)
	cl := newTestClient(t, b)

	pid, epoch := initProducerID(t, cl)
	pid2, _ := initProducerID(t, cl)
	if pid < 0 || epoch != 0 || pid2 == pid {
		t.Fatalf("producer ids %d/%d epoch %d", pid, pid2, epoch)
	}
	now := time.Now().UnixMilli()
	batch := func(seq int32, n int, ep int16) []byte {
		return testBatch(t, testBatchOpts{records: n, ts: now, idempotent: true, pid: pid, epoch: ep, seq: seq})
	}

	r := rawProduce(t, cl, b, "idem", -1, batch(0, 3, 0))
	if r.ErrorCode != 0 || r.BaseOffset != 0 {
		t.Fatalf("first batch: %+v", r)
	}
	// Same sequence again: the original offsets, nothing appended.
	r = rawProduce(t, cl, b, "idem", -1, batch(0, 3, 0))
	if r.ErrorCode != 0 || r.BaseOffset != 0 {
		t.Fatalf("duplicate: %+v", r)
	}
	if end := endOffset(t, b, "idem"); end != 3 {
		t.Fatalf("end offset after duplicate = %d, want 3", end)
	}
	r = rawProduce(t, cl, b, "idem", 1, batch(3, 2, 0))
	if r.ErrorCode != 0 || r.BaseOffset != 3 {
		t.Fatalf("next batch: %+v", r)
	}
	// A gap.
	r = rawProduce(t, cl, b, "idem", -1, batch(9, 1, 0))
	if r.ErrorCode != kerr.OutOfOrderSequenceNumber.Code {
		t.Fatalf("gap: %+v, want OUT_OF_ORDER_SEQUENCE_NUMBER", r)
	}
	// A new epoch must start at 0; afterwards the old epoch is fenced.
	if r = rawProduce(t, cl, b, "idem", -1, batch(0, 1, 1)); r.ErrorCode != 0 || r.BaseOffset != 5 {
		t.Fatalf("epoch bump: %+v", r)
	}
	if r = rawProduce(t, cl, b, "idem", -1, batch(1, 1, 0)); r.ErrorCode != kerr.InvalidProducerEpoch.Code {
		t.Fatalf("stale epoch: %+v, want INVALID_PRODUCER_EPOCH", r)
	}

	// Restart on the same directory: the state is rebuilt from the log.
	if err := b.Close(); err != nil {
		t.Fatal(err)
	}
	b, err = Start(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	b2 := b
	t.Cleanup(func() { b2.Close() })
	cl = newTestClient(t, b)
	if r = rawProduce(t, cl, b, "idem", -1, batch(0, 1, 1)); r.ErrorCode != 0 || r.BaseOffset != 5 {
		t.Fatalf("duplicate after restart: %+v, want original offset 5", r)
	}
	if r = rawProduce(t, cl, b, "idem", -1, batch(5, 1, 1)); r.ErrorCode != kerr.OutOfOrderSequenceNumber.Code {
		t.Fatalf("gap after restart: %+v", r)
	}
	if r = rawProduce(t, cl, b, "idem", -1, batch(1, 1, 1)); r.ErrorCode != 0 || r.BaseOffset != 6 {
		t.Fatalf("next after restart: %+v", r)
	}
	if end := endOffset(t, b, "idem"); end != 7 {
		t.Fatalf("end offset = %d, want 7", end)
	}
	// A fresh id after restart is still unique (blocks come from Raft).
	if pid3, _ := initProducerID(t, cl); pid3 == pid || pid3 == pid2 {
		t.Fatalf("producer id %d reused after restart", pid3)
	}

	// Once more with a corrupt producer-state snapshot: it is ignored and the state is
	// rebuilt from the log's batch headers alone.
	if err := b.Close(); err != nil {
		t.Fatal(err)
	}
	snaps, _ := filepath.Glob(filepath.Join(dir, "logs", "idem-0.*", producerSnapshotFile))
	if len(snaps) != 1 {
		t.Fatalf("snapshot files: %v", snaps)
	}
	raw, err := os.ReadFile(snaps[0])
	if err != nil {
		t.Fatal(err)
	}
	raw[len(raw)/2] ^= 0xff
	if err := os.WriteFile(snaps[0], raw, 0o644); err != nil {
		t.Fatal(err)
	}
	b, err = Start(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	cl = newTestClient(t, b)
	if r = rawProduce(t, cl, b, "idem", -1, batch(1, 1, 1)); r.ErrorCode != 0 || r.BaseOffset != 6 {
		t.Fatalf("duplicate after restart without snapshot: %+v, want original offset 6", r)
	}
	if r = rawProduce(t, cl, b, "idem", -1, batch(3, 1, 1)); r.ErrorCode != kerr.OutOfOrderSequenceNumber.Code {
		t.Fatalf("gap after restart without snapshot: %+v", r)
	}
}

// franz-go's idempotent producer end to end: every record lands exactly once, in order.
func TestIdempotentProducerKgo(t *testing.T) {
	b := newTestBroker(t)
	createTopic(t, b, "idem-kgo", 3, nil)
	cl := newTestClient(t, b, kgo.DefaultProduceTopic("idem-kgo"), kgo.RecordPartitioner(kgo.RoundRobinPartitioner()))
	var recs []*kgo.Record
	for i := 0; i < 300; i++ {
		recs = append(recs, &kgo.Record{Value: []byte{byte(i), byte(i >> 8)}})
	}
	if err := cl.ProduceSync(testCtx(t), recs...).FirstErr(); err != nil {
		t.Fatal(err)
	}
	got := consumeN(t, b, "idem-kgo", 300)
	seen := map[int]bool{}
	for _, r := range got {
		v := int(r.Value[0]) | int(r.Value[1])<<8
		if seen[v] {
			t.Fatalf("record %d twice", v)
		}
		seen[v] = true
		if r.ProducerID < 0 {
			t.Fatalf("record without producer id: %+v", r)
		}
	}
}

func TestInitProducerIDTransactionalRefused(t *testing.T) {
	b := newTestBroker(t)
	cl := newTestClient(t, b)
	req := kmsg.NewPtrInitProducerIDRequest()
	req.TransactionalID = kmsg.StringPtr("tx")
	resp, err := req.RequestWith(testCtx(t), cl.Broker(int(b.cfg.NodeID)))
	if err != nil {
		t.Fatal(err)
	}
	if resp.ErrorCode != kerr.UnsupportedVersion.Code || resp.ProducerID != -1 {
		t.Fatalf("%+v", resp)
	}
}

func TestDescribeProducers(t *testing.T) {
	b := newTestBroker(t)
	createTopic(t, b, "dp", 1, nil)
	cl := newTestClient(t, b)
	pid, _ := initProducerID(t, cl)
	now := time.Now().UnixMilli()
	for seq := int32(0); seq < 6; seq += 3 {
		if r := rawProduce(t, cl, b, "dp", -1, testBatch(t, testBatchOpts{records: 3, ts: now, idempotent: true, pid: pid, seq: seq})); r.ErrorCode != 0 {
			t.Fatal(kerr.ErrorForCode(r.ErrorCode))
		}
	}
	req := kmsg.NewPtrDescribeProducersRequest()
	req.Topics = []kmsg.DescribeProducersRequestTopic{{Topic: "dp", Partitions: []int32{0, 9}}}
	resp, err := req.RequestWith(testCtx(t), cl.Broker(int(b.cfg.NodeID)))
	if err != nil {
		t.Fatal(err)
	}
	ps := resp.Topics[0].Partitions
	if len(ps) != 2 || ps[0].ErrorCode != 0 || len(ps[0].ActiveProducers) != 1 || ps[1].ErrorCode != kerr.UnknownTopicOrPartition.Code {
		t.Fatalf("%+v", resp)
	}
	ap := ps[0].ActiveProducers[0]
	if ap.ProducerID != pid || ap.ProducerEpoch != 0 || ap.LastSequence != 5 || ap.LastTimestamp != now || ap.CurrentTxnStartOffset != -1 {
		t.Fatalf("%+v", ap)
	}
}
