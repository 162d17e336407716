package broker

import (
	"bytes"
	"slices"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kmsg"
)

// read_committed (IsolationLevel 1) without transactions: the last stable offset is the high
// watermark, every record below it is returned (the same bytes read_uncommitted gets), the
// response reports LastStableOffset = HighWatermark, and there are no aborted transactions.
// A batch appended but not yet durable (log end 16, HW 12) is not returned until the HW passes it.
// Checked at v4 (the first version with an isolation level) and v12.
func TestFetchReadCommittedWithoutTransactions(t *testing.T) {
	b := newTestBroker(t)
	createTopic(t, b, "rc", 1, nil)
	cl := newTestClient(t, b)
	for i := 0; i < 3; i++ {
		if r := rawProduce(t, cl, b, "rc", -1, testBatch(t, testBatchOpts{records: 4})); r.ErrorCode != 0 {
			t.Fatalf("produce: code %d", r.ErrorCode)
		}
	}
	// A fourth batch is appended, its durability wait held: above the HW until released.
	entered, release := holdDurability(t, "rc")
	pc := dialRaw(t, b)
	pc.write(frame(produceReq(b, "rc", 1, testBatch(t, testBatchOpts{records: 4})), 1))
	select {
	case <-entered:
	case <-time.After(20 * time.Second):
		t.Fatal("the fourth produce never reached its durability wait")
	}
	p := b.replicas.partition(mustTopicID(t, b, "rc"), 0)
	if p.log.EndOffset() != 16 || p.HighWatermark() != 12 {
		t.Fatalf("held append: log end %d HW %d, want 16 and 12", p.log.EndOffset(), p.HighWatermark())
	}

	rc := dialRaw(t, b)
	corr := int32(0)
	fetch := func(version int16, iso int8, offset int64) kmsg.FetchResponseTopicPartition {
		t.Helper()
		req := fetchRequest(b, "rc", offset, 50, 1, 1<<20, 1<<20)
		req.Version = version
		req.IsolationLevel = iso
		corr++
		resp := rawFetch(t, rc, req, corr)
		if resp.ErrorCode != 0 || len(resp.Topics) != 1 || len(resp.Topics[0].Partitions) != 1 {
			t.Fatalf("v%d iso %d: response %+v", version, iso, resp)
		}
		return resp.Topics[0].Partitions[0]
	}
	batchesOf := func(rp kmsg.FetchResponseTopicPartition) []int64 {
		t.Helper()
		offs, err := splitTestBatches(rp.RecordBatches)
		if err != nil {
			t.Fatal(err)
		}
		return offs
	}
	for _, v := range []int16{4, 12} {
		committed := fetch(v, 1, 0)
		uncommitted := fetch(v, 0, 0)
		if committed.ErrorCode != 0 || committed.HighWatermark != 12 || committed.LastStableOffset != 12 {
			t.Fatalf("v%d read_committed: code %d HW %d LSO %d, want 0 12 12", v, committed.ErrorCode, committed.HighWatermark, committed.LastStableOffset)
		}
		// As Kafka: an empty (not null) aborted list for read_committed, null for read_uncommitted.
		// (kmsg decodes a null array as nil, an empty one as an empty non-nil slice.)
		if committed.AbortedTransactions == nil || len(committed.AbortedTransactions) != 0 {
			t.Fatalf("v%d read_committed: aborted transactions %v (nil %v), want an empty list", v, committed.AbortedTransactions, committed.AbortedTransactions == nil)
		}
		if uncommitted.AbortedTransactions != nil {
			t.Fatalf("v%d read_uncommitted: aborted transactions %v, want null", v, uncommitted.AbortedTransactions)
		}
		if got := batchesOf(committed); !slices.Equal(got, []int64{0, 4, 8}) {
			t.Fatalf("v%d read_committed returned batches at %v, want [0 4 8] (below the HW only)", v, got)
		}
		if !bytes.Equal(committed.RecordBatches, uncommitted.RecordBatches) || uncommitted.LastStableOffset != 12 {
			t.Fatalf("v%d: read_committed and read_uncommitted differ (LSO %d vs %d, %d vs %d bytes)", v,
				committed.LastStableOffset, uncommitted.LastStableOffset, len(committed.RecordBatches), len(uncommitted.RecordBatches))
		}
		// At the LSO there is nothing to read yet: an empty answer after MaxWaitMs, LSO still reported.
		atEnd := fetch(v, 1, 12)
		if atEnd.ErrorCode != 0 || len(atEnd.RecordBatches) != 0 || atEnd.LastStableOffset != 12 || atEnd.HighWatermark != 12 {
			t.Fatalf("v%d read_committed at the LSO: code %d, %d bytes, HW %d LSO %d", v, atEnd.ErrorCode, len(atEnd.RecordBatches), atEnd.HighWatermark, atEnd.LastStableOffset)
		}
	}
	// Released: the produce is answered, the HW (and with it the LSO) moves to 16.
	release()
	if _, r := readProduce(t, pc, produceVersion); r.ErrorCode != 0 || r.BaseOffset != 12 {
		t.Fatalf("held produce: code %d base %d", r.ErrorCode, r.BaseOffset)
	}
	after := fetch(12, 1, 12)
	if got := batchesOf(after); after.LastStableOffset != 16 || !slices.Equal(got, []int64{12}) {
		t.Fatalf("after release: LSO %d batches %v, want 16 [12]", after.LastStableOffset, got)
	}
}

func mustTopicID(t *testing.T, b *Broker, topic string) [16]byte {
	t.Helper()
	mt, ok := b.meta.State().Topic(topic)
	if !ok {
		t.Fatalf("topic %q not in metadata", topic)
	}
	return mt.ID
}
