package broker

import (
	"bytes"
	"encoding/binary"
	"io"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

func fetchRequest(b *Broker, topic string, offset int64, maxWait, minBytes, maxBytes, partMax int32) *kmsg.FetchRequest {
	req := kmsg.NewPtrFetchRequest()
	req.Version = 12
	req.MaxWaitMillis = maxWait
	req.MinBytes = minBytes
	req.MaxBytes = maxBytes
	req.SessionEpoch = -1 // sessionless
	rt := kmsg.NewFetchRequestTopic()
	rt.Topic = topic
	rp := kmsg.NewFetchRequestTopicPartition()
	rp.FetchOffset = offset
	rp.PartitionMaxBytes = partMax
	rt.Partitions = append(rt.Partitions, rp)
	req.Topics = append(req.Topics, rt)
	return req
}

func rawFetch(t *testing.T, rc *rawConn, req *kmsg.FetchRequest, corr int32) *kmsg.FetchResponse {
	t.Helper()
	rc.write(frame(req, corr))
	resp := kmsg.NewPtrFetchResponse()
	resp.Version = req.Version
	if _, err := rc.read(resp); err != nil {
		t.Fatal(err)
	}
	return resp
}

// A fetch waiting for data (MinBytes 1, a long MaxWaitMs) is answered as soon as a record is
// appended, woken by the append, not when MaxWaitMs runs out.
func TestFetchLongPollWakesOnAppend(t *testing.T) {
	b := newTestBroker(t)
	createTopic(t, b, "lp", 1, nil)
	rc := dialRaw(t, b)
	// MaxWaitMs (60 s) is longer than the connection's deadline (20 s): if the append did not
	// wake the fetch, the read below fails.
	req := fetchRequest(b, "lp", 0, 60_000, 1, 1<<20, 1<<20)
	rc.write(frame(req, 1))

	got := make(chan *kmsg.FetchResponse, 1)
	go func() {
		resp := kmsg.NewPtrFetchResponse()
		resp.Version = req.Version
		if _, err := rc.read(resp); err != nil {
			got <- nil
			return
		}
		got <- resp
	}()
	select {
	case r := <-got:
		t.Fatalf("fetch answered before any data: %+v", r)
	case <-time.After(300 * time.Millisecond):
	}
	cl := newTestClient(t, b, kgo.DefaultProduceTopic("lp"))
	if err := cl.ProduceSync(testCtx(t), &kgo.Record{Value: []byte("wake")}).FirstErr(); err != nil {
		t.Fatal(err)
	}
	r := <-got
	if r == nil {
		t.Fatal("fetch was not answered")
	}
	p := r.Topics[0].Partitions[0]
	if p.ErrorCode != 0 || p.HighWatermark != 1 || len(p.RecordBatches) == 0 {
		t.Fatalf("woken fetch: err %d hw %d %d bytes", p.ErrorCode, p.HighWatermark, len(p.RecordBatches))
	}
}

// MinBytes not reached: the fetch returns what there is after MaxWaitMs.
func TestFetchMaxWaitExpires(t *testing.T) {
	b := newTestBroker(t)
	createTopic(t, b, "mw", 1, nil)
	rc := dialRaw(t, b)
	r := rawFetch(t, rc, fetchRequest(b, "mw", 0, 100, 1, 1<<20, 1<<20), 1)
	p := r.Topics[0].Partitions[0]
	if p.ErrorCode != 0 || p.HighWatermark != 0 || len(p.RecordBatches) != 0 {
		t.Fatalf("%+v", p)
	}
}

func TestFetchLimitsAndOutOfRange(t *testing.T) {
	b := newTestBroker(t)
	createTopic(t, b, "lim", 1, nil)
	cl := newTestClient(t, b, kgo.DefaultProduceTopic("lim"))
	// Three separate batches of ~1 KiB each.
	for i := 0; i < 3; i++ {
		if err := cl.ProduceSync(testCtx(t), &kgo.Record{Value: make([]byte, 1000)}).FirstErr(); err != nil {
			t.Fatal(err)
		}
	}
	rc := dialRaw(t, b)
	// PartitionMaxBytes smaller than one batch: exactly one batch (progress).
	r := rawFetch(t, rc, fetchRequest(b, "lim", 0, 0, 1, 1<<20, 10), 1)
	p := r.Topics[0].Partitions[0]
	hs, err := splitTestBatches(p.RecordBatches)
	if err != nil || len(hs) != 1 || p.HighWatermark != 3 || p.LastStableOffset != 3 || p.LogStartOffset != 0 {
		t.Fatalf("one batch for progress: %d batches (%v) hw %d", len(hs), err, p.HighWatermark)
	}
	// A budget of two batches.
	r = rawFetch(t, rc, fetchRequest(b, "lim", 0, 0, 1, 1<<20, int32(2*len(p.RecordBatches))), 2)
	if hs, _ := splitTestBatches(r.Topics[0].Partitions[0].RecordBatches); len(hs) != 2 {
		t.Fatalf("two-batch budget returned %d batches", len(hs))
	}
	// Beyond the log end.
	r = rawFetch(t, rc, fetchRequest(b, "lim", 4, 0, 1, 1<<20, 1<<20), 3)
	if c := r.Topics[0].Partitions[0].ErrorCode; c != kerr.OffsetOutOfRange.Code {
		t.Fatalf("offset 4: %v", kerr.ErrorForCode(c))
	}
	// At the log end: empty, no error.
	r = rawFetch(t, rc, fetchRequest(b, "lim", 3, 0, 1, 1<<20, 1<<20), 4)
	if p := r.Topics[0].Partitions[0]; p.ErrorCode != 0 || len(p.RecordBatches) != 0 {
		t.Fatalf("at end: %+v", p)
	}
	// Unknown topic.
	r = rawFetch(t, rc, fetchRequest(b, "nope", 0, 0, 1, 1<<20, 1<<20), 5)
	if c := r.Topics[0].Partitions[0].ErrorCode; c != kerr.UnknownTopicOrPartition.Code {
		t.Fatalf("unknown topic: %v", kerr.ErrorForCode(c))
	}
	// Stale leader epoch (KIP-320).
	req := fetchRequest(b, "lim", 0, 0, 1, 1<<20, 1<<20)
	req.Topics[0].Partitions[0].CurrentLeaderEpoch = 99
	if c := rawFetch(t, rc, req, 6).Topics[0].Partitions[0].ErrorCode; c != kerr.UnknownLeaderEpoch.Code {
		t.Fatalf("future epoch: %v", kerr.ErrorForCode(c))
	}
}

// Fetch sessions over the wire: a full fetch opens a session, an incremental one with nothing new
// leaves the partition out, a wrong epoch is refused.
func TestFetchSessionsOverTheWire(t *testing.T) {
	b := newTestBroker(t)
	createTopic(t, b, "fs", 1, nil)
	cl := newTestClient(t, b, kgo.DefaultProduceTopic("fs"))
	if err := cl.ProduceSync(testCtx(t), &kgo.Record{Value: []byte("a")}).FirstErr(); err != nil {
		t.Fatal(err)
	}
	rc := dialRaw(t, b)
	req := fetchRequest(b, "fs", 0, 0, 1, 1<<20, 1<<20)
	req.SessionEpoch = 0
	r := rawFetch(t, rc, req, 1)
	if r.ErrorCode != 0 || r.SessionID == 0 || len(r.Topics) != 1 || len(r.Topics[0].Partitions[0].RecordBatches) == 0 {
		t.Fatalf("full fetch: %+v", r)
	}
	// Incremental, position moved to the end: nothing changed, so no partition in the answer.
	inc := fetchRequest(b, "fs", 1, 0, 1, 1<<20, 1<<20)
	inc.SessionID, inc.SessionEpoch = r.SessionID, 1
	r2 := rawFetch(t, rc, inc, 2)
	if r2.ErrorCode != 0 || r2.SessionID != r.SessionID || len(r2.Topics) != 0 {
		t.Fatalf("incremental: %+v", r2)
	}
	// New data: the partition comes back.
	if err := cl.ProduceSync(testCtx(t), &kgo.Record{Value: []byte("b")}).FirstErr(); err != nil {
		t.Fatal(err)
	}
	inc.Topics = nil
	inc.SessionEpoch = 2
	r3 := rawFetch(t, rc, inc, 3)
	if len(r3.Topics) != 1 || r3.Topics[0].Partitions[0].HighWatermark != 2 || len(r3.Topics[0].Partitions[0].RecordBatches) == 0 {
		t.Fatalf("incremental with data: %+v", r3)
	}
	inc.SessionEpoch = 7
	if r4 := rawFetch(t, rc, inc, 4); r4.ErrorCode != kerr.InvalidFetchSessionEpoch.Code {
		t.Fatalf("bad epoch: %v", kerr.ErrorForCode(r4.ErrorCode))
	}
	inc.SessionID++
	if r5 := rawFetch(t, rc, inc, 5); r5.ErrorCode != kerr.FetchSessionIDNotFound.Code {
		t.Fatalf("bad id: %v", kerr.ErrorForCode(r5.ErrorCode))
	}
}

// splitTestBatches lists the base offsets of the batches in fetched bytes (kmsg decodes them).
func splitTestBatches(b []byte) ([]int64, error) {
	var out []int64
	for len(b) >= 61 {
		var rb kmsg.RecordBatch
		if err := rb.ReadFrom(b); err != nil {
			return nil, err
		}
		out = append(out, rb.FirstOffset)
		b = b[12+int(rb.Length):]
	}
	return out, nil
}

// Partitions answered without data carry an empty, non-null record set (librdkafka rejects null).
func TestFetchEmptyRecordSetIsNotNull(t *testing.T) {
	b := newTestBroker(t)
	createTopic(t, b, "empty", 1, nil)
	rc := dialRaw(t, b)
	for i, req := range []*kmsg.FetchRequest{
		fetchRequest(b, "empty", 0, 0, 1, 1<<20, 1<<20), // no data
		fetchRequest(b, "empty", 5, 0, 1, 1<<20, 1<<20), // error partition
		fetchRequest(b, "nope", 0, 0, 1, 1<<20, 1<<20),  // unknown topic
	} {
		req.Version = 11
		rc.write(frame(req, int32(i)))
		// Decode by hand the size of the records field: kmsg maps both null and empty to len 0.
		var size [4]byte
		if _, err := io.ReadFull(rc.br, size[:]); err != nil {
			t.Fatal(err)
		}
		body := make([]byte, binary.BigEndian.Uint32(size[:]))
		if _, err := io.ReadFull(rc.br, body); err != nil {
			t.Fatal(err)
		}
		// v11 is not flexible: the records field is the last 4 bytes (int32 length, 0 = empty, -1 = null).
		if n := int32(binary.BigEndian.Uint32(body[len(body)-4:])); n != 0 {
			t.Fatalf("request %d: records length %d, want 0 (empty, not null)", i, n)
		}
	}
}

// The same through franz-go: a consumer with a 60 s FetchMaxWait gets a record produced while
// its fetch is parked (the test context gives up after 20 s).
func TestFetchLongPollKgo(t *testing.T) {
	b := newTestBroker(t)
	createTopic(t, b, "lpk", 1, nil)
	cons := newTestClient(t, b, kgo.ConsumeTopics("lpk"), kgo.FetchMaxWait(60*time.Second),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	prod := newTestClient(t, b, kgo.DefaultProduceTopic("lpk"))
	ctx := testCtx(t)
	got := make(chan []*kgo.Record, 1)
	go func() { got <- cons.PollFetches(ctx).Records() }()
	time.Sleep(300 * time.Millisecond) // let the consumer park its fetch
	if err := prod.ProduceSync(ctx, &kgo.Record{Value: []byte("late")}).FirstErr(); err != nil {
		t.Fatal(err)
	}
	recs := <-got
	if ctx.Err() != nil || len(recs) != 1 || string(recs[0].Value) != "late" {
		t.Fatalf("records %v, ctx %v", recs, ctx.Err())
	}
}

// Partitions read concurrently within one fetch return exactly what Kafka's serial rules give:
// only the first partition with data may exceed its limit by one batch, later partitions get what
// the response has left. Batches of 300 KB, 40 KB and 5 KB against 100 KB partition limits and
// several response budgets, some below the limits' sum (runs of partitions read ahead, then the
// next run with what is left, and the tail of a nearly full response); every case is compared with the serial reads, partition by
// partition.
func TestFetchConcurrentReadsMatchSerial(t *testing.T) {
	b := newTestBroker(t)
	createTopic(t, b, "par", 5, nil)
	cl := newTestClient(t, b, kgo.DefaultProduceTopic("par"), kgo.ProducerBatchCompression(kgo.NoCompression()),
		kgo.ProducerBatchMaxBytes(1<<20), kgo.MaxBufferedRecords(1), kgo.RecordPartitioner(kgo.ManualPartitioner()))
	sizes := map[int32][]int{ // record value sizes per partition, one batch each (MaxBufferedRecords 1)
		0: {300_000, 5_000},
		1: {300_000, 40_000},
		2: {40_000, 40_000, 40_000, 5_000},
		3: {5_000, 5_000, 5_000, 5_000, 5_000, 5_000, 5_000},
		4: {40_000, 300_000},
	}
	for p, vs := range sizes {
		for _, n := range vs {
			if err := cl.ProduceSync(testCtx(t), &kgo.Record{Partition: p, Value: make([]byte, n)}).FirstErr(); err != nil {
				t.Fatal(err)
			}
		}
	}
	mt, _ := b.meta.State().Topic("par")
	mk := func(order []int32, offsets map[int32]int64) []fetchTarget {
		ts := make([]fetchTarget, len(order))
		for i, p := range order {
			part, _, code := b.replicas.lookupIn(mt, p)
			if code != 0 {
				t.Fatalf("partition %d: %v", p, kerr.ErrorForCode(code))
			}
			ts[i] = fetchTarget{sp: &fsPartition{key: fsKey{topic: "par", partition: p}, fetchOffset: offsets[p], maxBytes: 100_000}, p: part, readReplica: -1}
		}
		return ts
	}
	concurrentCases := 0
	for _, order := range [][]int32{{0, 1, 2, 3, 4}, {3, 0, 4, 1, 2}, {2, 4, 0, 3, 1}, {4, 3, 2, 1, 0}} {
		for _, offsets := range []map[int32]int64{{}, {0: 1, 1: 1, 4: 1}} {
			for _, maxBytes := range []int{500_000, 520_000, 600_000, 1 << 20, 450_000, 350_000, 250_000, 100_000} {
				serial, conc := mk(order, offsets), mk(order, offsets)
				ts, _ := readTargetsMaybeConcurrently(serial, maxBytes, -1, false)
				tc, _ := readTargetsMaybeConcurrently(conc, maxBytes, -1, true)
				readAhead := 0
				for i := range conc {
					if conc[i].preRead {
						readAhead++
					}
				}
				// Every partition has records and a 100_000 limit: all five fit at 500_000 and more,
				// the first four at 450_000 (the fifth is then read alone), at least the first three
				// at 350_000 and two at 250_000 (what follows depends on what they returned); at
				// 100_000 only one fits, so all five are read at once each with the 100_000 the
				// response has (the tail of a nearly full response).
				want, exact := 5, true
				switch maxBytes {
				case 450_000:
					want = 4
				case 350_000:
					want, exact = 3, false
				case 250_000:
					want, exact = 2, false
				}
				if readAhead < want || exact && readAhead != want {
					t.Fatalf("order %v offsets %v maxBytes %d: %d partitions read ahead, want %d", order, offsets, maxBytes, readAhead, want)
				}
				if readAhead > 0 {
					concurrentCases++
				}
				if order[0] == 0 && len(offsets) == 0 && maxBytes == 1<<20 &&
					(len(serial[0].res.data) < 300_000 || len(serial[1].res.data) != 0 || len(serial[2].res.data) == 0) {
					t.Fatalf("first partition's oversized batch / second's refused / third's data: %d, %d, %d bytes",
						len(serial[0].res.data), len(serial[1].res.data), len(serial[2].res.data))
				}
				if ts != tc {
					t.Fatalf("order %v offsets %v maxBytes %d: serial %d bytes, concurrent %d", order, offsets, maxBytes, ts, tc)
				}
				for i := range serial {
					if !bytes.Equal(serial[i].res.data, conc[i].res.data) || serial[i].res.err != conc[i].res.err {
						t.Fatalf("order %v offsets %v maxBytes %d partition %d: serial %d bytes, concurrent %d",
							order, offsets, maxBytes, order[i], len(serial[i].res.data), len(conc[i].res.data))
					}
				}
			}
		}
	}
	if concurrentCases == 0 {
		t.Fatal("no case took the concurrent path")
	}
}
