package broker

import (
	"encoding/binary"
	"hash/crc32"
	"testing"

	"github.com/twmb/franz-go/pkg/kmsg"
)

// testBatchOpts describes a RecordBatch v2 built for tests.
type testBatchOpts struct {
	records    int
	ts         int64 // first timestamp (all records share it)
	idempotent bool  // set pid/epoch/seq; otherwise the batch has no producer id
	pid        int64
	epoch      int16
	seq        int32
	attrs      int16
	baseOffset int64
	value      []byte
}

// testBatch encodes a RecordBatch v2 with a correct CRC-32C, using kmsg's record and batch
// encoders (no hand-written codec).
func testBatch(t testing.TB, o testBatchOpts) []byte {
	t.Helper()
	if o.records == 0 {
		o.records = 1
	}
	var recs []byte
	for i := 0; i < o.records; i++ {
		r := kmsg.Record{OffsetDelta: int32(i), Key: []byte{byte(i)}, Value: o.value}
		if r.Value == nil {
			r.Value = []byte("value")
		}
		enc := r.AppendTo(nil)
		r.Length = int32(len(enc) - 1) // Length 0 encodes as one varint byte
		recs = r.AppendTo(recs)
	}
	b := kmsg.RecordBatch{
		FirstOffset:     o.baseOffset,
		Magic:           2,
		Attributes:      o.attrs,
		LastOffsetDelta: int32(o.records - 1),
		FirstTimestamp:  o.ts,
		MaxTimestamp:    o.ts,
		ProducerID:      o.pid,
		ProducerEpoch:   o.epoch,
		FirstSequence:   o.seq,
		NumRecords:      int32(o.records),
		Records:         recs,
	}
	if !o.idempotent {
		b.ProducerID, b.ProducerEpoch, b.FirstSequence = -1, -1, -1
	}
	raw := b.AppendTo(nil)
	binary.BigEndian.PutUint32(raw[8:], uint32(len(raw)-12))
	binary.BigEndian.PutUint32(raw[17:], crc32.Checksum(raw[21:], crc32.MakeTable(crc32.Castagnoli)))
	return raw
}
