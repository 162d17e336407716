package broker

import (
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
)

func TestValidateBatch(t *testing.T) {
	now := time.Now().UnixMilli()
	lim := produceLimits{maxMessageBytes: 1 << 20, segmentBytes: 1 << 30, beforeMaxMs: 60_000, afterMaxMs: 60_000}
	good := testBatch(t, testBatchOpts{records: 3, ts: now})
	if _, err := validateBatch(good, lim, now); err != nil {
		t.Fatalf("good batch: %v", err)
	}
	if err := checkRequestRecords(9, good); err != nil {
		t.Fatalf("good request: %v", err)
	}

	badCRC := append([]byte(nil), good...)
	badCRC[len(badCRC)-1] ^= 0xff
	twoBatches := append(append([]byte(nil), good...), good...)
	magic1 := append([]byte(nil), good...)
	magic1[16] = 1
	zstd := testBatch(t, testBatchOpts{ts: now, attrs: 4})

	for _, c := range []struct {
		name    string
		b       []byte
		lim     produceLimits
		version int16
		want    int16
	}{
		{"corrupt crc", badCRC, lim, 9, kerr.CorruptMessage.Code},
		{"too large", good, produceLimits{maxMessageBytes: 10, segmentBytes: 1 << 30, beforeMaxMs: -1, afterMaxMs: -1}, 9, kerr.MessageTooLarge.Code},
		{"larger than a segment", good, produceLimits{maxMessageBytes: 1 << 20, segmentBytes: 20, beforeMaxMs: -1, afterMaxMs: -1}, 9, kerr.RecordListTooLarge.Code},
		{"too old", testBatch(t, testBatchOpts{ts: now - 120_000}), lim, 9, kerr.InvalidTimestamp.Code},
		{"too new", testBatch(t, testBatchOpts{ts: now + 120_000}), lim, 9, kerr.InvalidTimestamp.Code},
		{"base offset from client", testBatch(t, testBatchOpts{ts: now, baseOffset: 5}), lim, 9, kerr.InvalidRecord.Code},
		{"control batch", testBatch(t, testBatchOpts{ts: now, attrs: 0x20}), lim, 9, kerr.InvalidRecord.Code},
		{"transactional", testBatch(t, testBatchOpts{ts: now, attrs: 0x10, idempotent: true, pid: 1}), lim, 9, kerr.InvalidTxnState.Code},
		{"two batches", twoBatches, lim, 9, kerr.InvalidRecord.Code},
		{"magic 1", magic1, lim, 9, kerr.InvalidRecord.Code},
		{"zstd before v7", zstd, lim, 6, kerr.UnsupportedCompressionType.Code},
		{"empty", nil, lim, 9, kerr.InvalidRecord.Code},
	} {
		var got int16
		if e := checkRequestRecords(c.version, c.b); e != nil {
			got = e.code
		} else if _, e := validateBatch(c.b, c.lim, now); e != nil {
			got = e.code
		}
		if got != c.want {
			t.Errorf("%s: code %d, want %d", c.name, got, c.want)
		}
	}
	// LogAppendTime batches are not checked against the bounds; nor is NO_TIMESTAMP.
	lat := testBatch(t, testBatchOpts{ts: 1, attrs: 0x8})
	if _, err := validateBatch(lat, lim, now); err != nil {
		t.Fatalf("LogAppendTime batch: %v", err)
	}
	if _, err := validateBatch(testBatch(t, testBatchOpts{ts: -1}), lim, now); err != nil {
		t.Fatalf("NO_TIMESTAMP: %v", err)
	}
}
