package broker

import (
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// produceVersion is the Produce version the raw-connection tests speak (v13: topics by id).
const produceVersion = 13

// produceReq builds a Produce v13 of one batch to partition 0.
func produceReq(b *Broker, topic string, acks int16, batch []byte) *kmsg.ProduceRequest {
	req := kmsg.NewPtrProduceRequest()
	req.Version = produceVersion
	req.Acks = acks
	req.TimeoutMillis = 10000
	rt := kmsg.NewProduceRequestTopic()
	rt.Topic = topic
	if mt, ok := b.meta.State().Topic(topic); ok {
		rt.TopicID = mt.ID
	}
	rp := kmsg.NewProduceRequestTopicPartition()
	rp.Records = batch
	rt.Partitions = append(rt.Partitions, rp)
	req.Topics = append(req.Topics, rt)
	return req
}

// readProduce reads one produce response frame and returns its correlation id and partition result.
func readProduce(t *testing.T, c *rawConn, version int16) (int32, kmsg.ProduceResponseTopicPartition) {
	t.Helper()
	resp := kmsg.NewPtrProduceResponse()
	resp.Version = version
	corr, err := c.read(resp)
	if err != nil {
		t.Fatalf("read produce response: %v", err)
	}
	if len(resp.Topics) != 1 || len(resp.Topics[0].Partitions) != 1 {
		t.Fatalf("produce response shape: %+v", resp)
	}
	return corr, resp.Topics[0].Partitions[0]
}

// holdDurability makes every durability wait on topic's partitions report itself on the returned
// channel and block until release is called (which the test's cleanup also does).
func holdDurability(t *testing.T, topic string) (entered <-chan int64, release func()) {
	t.Helper()
	ch := make(chan int64, 1024)
	gate := make(chan struct{})
	var once sync.Once
	release = func() { once.Do(func() { close(gate) }) }
	hook := func(p *Partition, upTo int64) {
		if p.topic != topic {
			return
		}
		ch <- upTo
		<-gate
	}
	waitDurableHook.Store(&hook)
	t.Cleanup(func() {
		release()
		waitDurableHook.Store(nil)
	})
	return ch, release
}

// Many produce requests pipelined on one connection to one partition, with metadata requests
// among them and an idempotent retry at the end: answered in request order, offsets contiguous in
// request order, the retry answered with the original's offsets and not appended again.
func TestProducePipelinedOnOneConnInOrder(t *testing.T) {
	b := newTestBroker(t)
	createTopic(t, b, "pipe", 1, nil)
	c := dialRaw(t, b)
	const n, perBatch = 60, 3
	const pid, epoch = 4242, 0
	ts := time.Now().UnixMilli()
	var all []byte
	var last []byte
	isMeta := func(i int) bool { return i%10 == 5 }
	seq := int32(0)
	for i := 0; i < n; i++ {
		if isMeta(i) {
			m := kmsg.NewPtrMetadataRequest()
			m.Version = 12
			all = append(all, frame(m, int32(i))...)
			continue
		}
		last = testBatch(t, testBatchOpts{records: perBatch, ts: ts, idempotent: true, pid: pid, epoch: epoch, seq: seq})
		seq += perBatch
		acks := int16(-1)
		if i%2 == 1 {
			acks = 1
		}
		all = append(all, frame(produceReq(b, "pipe", acks, append([]byte(nil), last...)), int32(i))...)
	}
	all = append(all, frame(produceReq(b, "pipe", -1, last), int32(n))...) // retry of the last batch
	version := int16(produceVersion)
	go c.nc.Write(all) // all at once: the broker must read ahead while earlier ones wait for fsync

	next := int64(0)
	var lastBase int64 = -1
	for i := 0; i <= n; i++ {
		if i < n && isMeta(i) {
			md := kmsg.NewPtrMetadataResponse()
			md.Version = 12
			corr, err := c.read(md)
			if err != nil || corr != int32(i) {
				t.Fatalf("response %d: corr %d err %v (out of order?)", i, corr, err)
			}
			continue
		}
		corr, rp := readProduce(t, c, version)
		if corr != int32(i) {
			t.Fatalf("response %d has correlation id %d (out of order)", i, corr)
		}
		if rp.ErrorCode != 0 {
			t.Fatalf("produce %d: %v", i, kerr.ErrorForCode(rp.ErrorCode))
		}
		if i == n {
			if rp.BaseOffset != lastBase {
				t.Fatalf("retry answered with base offset %d, want the original's %d", rp.BaseOffset, lastBase)
			}
			continue
		}
		if rp.BaseOffset != next {
			t.Fatalf("produce %d: base offset %d, want %d (offsets not contiguous in request order)", i, rp.BaseOffset, next)
		}
		lastBase = rp.BaseOffset
		next += perBatch
	}
	if end := endOffset(t, b, "pipe"); end != next {
		t.Fatalf("end offset %d, want %d (the retry must not be appended)", end, next)
	}
}

// A durability wait that does not return (a slow fsync, held by a hook) does not stop the
// connection from reading and appending the next produce request: both requests are appended and
// both wait for durability at the same time (so they can share one fsync). The responses follow
// in request order once released.
func TestProduceSlowFsyncDoesNotBlockNextRequest(t *testing.T) {
	b := newTestBroker(t)
	createTopic(t, b, "slow", 1, nil)
	entered, release := holdDurability(t, "slow")
	c := dialRaw(t, b)
	ts := time.Now().UnixMilli()
	version := int16(produceVersion)

	c.write(frame(produceReq(b, "slow", -1, testBatch(t, testBatchOpts{records: 2, ts: ts})), 1))
	waitEntered := func(want int64) {
		t.Helper()
		select {
		case got := <-entered:
			if got != want {
				t.Fatalf("durability wait up to %d, want %d", got, want)
			}
		case <-time.After(20 * time.Second):
			t.Fatalf("no durability wait up to %d: the connection did not go on to the next request while the previous one waited", want)
		}
	}
	waitEntered(2)
	// The first request's durability wait is held; the second is still read, appended and waits.
	c.write(frame(produceReq(b, "slow", 1, testBatch(t, testBatchOpts{records: 3, ts: ts})), 2))
	waitEntered(5)
	// Not answered out of order meanwhile: nothing can be read until the release, and then the
	// first response comes first.
	release()
	for i, want := range []struct {
		corr int32
		base int64
	}{{1, 0}, {2, 2}} {
		corr, rp := readProduce(t, c, version)
		if corr != want.corr || rp.ErrorCode != 0 || rp.BaseOffset != want.base {
			t.Fatalf("response %d: corr %d err %v base %d, want corr %d base %d", i, corr, kerr.ErrorForCode(rp.ErrorCode), rp.BaseOffset, want.corr, want.base)
		}
	}
}

// The pipeline is bounded: with every durability wait held, the broker stops reading after a
// bounded number of produce requests (maxPipelined queued, one at the writer, one being queued)
// instead of appending everything the client sends; once released, every request is answered in
// order.
func TestProducePipelineDepthBounded(t *testing.T) {
	b := newTestBroker(t)
	createTopic(t, b, "bound", 1, nil)
	entered, release := holdDurability(t, "bound")
	c := dialRaw(t, b)
	ts := time.Now().UnixMilli()
	version := int16(produceVersion)
	const n = maxPipelined + 12
	var all []byte
	for i := 0; i < n; i++ {
		all = append(all, frame(produceReq(b, "bound", 1, testBatch(t, testBatchOpts{ts: ts})), int32(i))...)
	}
	go c.nc.Write(all)

	const limit = maxPipelined + 2
	for i := 0; i < limit; i++ {
		select {
		case <-entered:
		case <-time.After(20 * time.Second):
			t.Fatalf("only %d requests reached the durability wait, want %d pipelined", i, limit)
		}
	}
	// No further request is appended while the pipeline is full.
	select {
	case upTo := <-entered:
		t.Fatalf("request appended up to %d beyond the pipeline bound of %d", upTo, limit)
	case <-time.After(300 * time.Millisecond):
	}
	release()
	for i := 0; i < n; i++ {
		corr, rp := readProduce(t, c, version)
		if corr != int32(i) || rp.ErrorCode != 0 || rp.BaseOffset != int64(i) {
			t.Fatalf("response %d: corr %d err %v base %d", i, corr, kerr.ErrorForCode(rp.ErrorCode), rp.BaseOffset)
		}
	}
}
