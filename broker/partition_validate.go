package broker

import (
	"fmt"

	"github.com/twmb/franz-go/pkg/kerr"

	"github.com/sediment-io/sediment/segment"
)

// Produce validation: what Kafka's ProduceRequest.validateRecords, UnifiedLog
// .analyzeAndValidateRecords and LogValidator check, done on the RecordBatch header only. Records
// are never decoded on the produce path: the CRC covers them, and the header carries everything
// the broker needs (count, offsets delta, timestamps, producer fields).
//
// In Kafka's order, each failure with the code a Java client expects:
//
//	no batch, more than one batch, magic != 2            INVALID_RECORD (request validation, v3+)
//	ZSTD in a request older than v7                      UNSUPPORTED_COMPRESSION_TYPE
//	non-zero base offset from a client                   INVALID_RECORD
//	batch larger than max.message.bytes                  MESSAGE_TOO_LARGE
//	framing or CRC-32C mismatch                          CORRUPT_MESSAGE
//	record set larger than segment.bytes                 RECORD_LIST_TOO_LARGE
//	control batch from a client, count != delta+1, no records   INVALID_RECORD
//	CreateTime outside before/after.max.ms of now        INVALID_TIMESTAMP
//	transactional batch (transactions are absent)        INVALID_TXN_STATE
//
// Kafka checks each record's timestamp; here the batch's first and max timestamps are checked,
// which covers every record except one whose timestamp delta is negative (producers never write
// those: deltas are relative to the first record and franz-go/Java write them non-negative).

type produceLimits struct {
	maxMessageBytes int32
	segmentBytes    int64
	beforeMaxMs     int64 // message.timestamp.before.max.ms
	afterMaxMs      int64 // message.timestamp.after.max.ms
}

func limitsOf(tc TopicConfig) produceLimits {
	return produceLimits{
		maxMessageBytes: tc.MaxMessageBytes,
		segmentBytes:    tc.SegmentBytes,
		beforeMaxMs:     tc.TimestampBeforeMaxMs,
		afterMaxMs:      tc.TimestampAfterMaxMs,
	}
}

// produceError is a per-partition Kafka error with a message for ErrorMessage (v8+).
type produceError struct {
	code int16
	msg  string
}

func (e *produceError) Error() string { return e.msg }

func perr(code *kerr.Error, format string, args ...any) *produceError {
	return &produceError{code: code.Code, msg: fmt.Sprintf(format, args...)}
}

// checkRequestRecords is Kafka's ProduceRequest.validateRecords: exactly one v2 batch per
// partition (v3+), and no ZSTD before v7. It only reads the framing, not the CRC.
func checkRequestRecords(version int16, records []byte) *produceError {
	if len(records) < segment.HeaderSize {
		return perr(kerr.InvalidRecord, "produce requests of version %d must have exactly one record batch per partition, got %d bytes", version, len(records))
	}
	h := segment.BatchHeader(records[:segment.HeaderSize])
	if h.Magic() != 2 {
		return perr(kerr.InvalidRecord, "produce requests of version %d may only contain record batches with magic 2, got magic %d", version, h.Magic())
	}
	if version < 7 && h.Compression() == segment.CodecZstd {
		return perr(kerr.UnsupportedCompressionType, "ZSTD compression needs produce version 7 or later, got %d", version)
	}
	if n := h.Size(); n > 0 && n < len(records) {
		return perr(kerr.InvalidRecord, "produce requests of version %d must have exactly one record batch per partition (%d bytes after the first batch)", version, len(records)-n)
	}
	return nil
}

// validateBatch checks one client batch against the topic's limits at broker time nowMs.
func validateBatch(b []byte, lim produceLimits, nowMs int64) (segment.BatchHeader, *produceError) {
	h := segment.BatchHeader(b[:segment.HeaderSize])
	if h.BaseOffset() != 0 {
		return nil, perr(kerr.InvalidRecord, "the base offset of a produced record batch must be 0, got %d", h.BaseOffset())
	}
	if size := h.Size(); size > int(lim.maxMessageBytes) {
		return nil, perr(kerr.MessageTooLarge, "record batch of %d bytes exceeds max.message.bytes %d", size, lim.maxMessageBytes)
	}
	if err := segment.ValidateBatch(b); err != nil {
		return nil, perr(kerr.CorruptMessage, "%v", err)
	}
	if int64(len(b)) > lim.segmentBytes {
		return nil, perr(kerr.RecordListTooLarge, "record set of %d bytes exceeds segment.bytes %d", len(b), lim.segmentBytes)
	}
	if h.IsControl() {
		return nil, perr(kerr.InvalidRecord, "clients may not write control batches")
	}
	if n := h.RecordCount(); n < 1 || int64(n) != int64(h.LastOffsetDelta())+1 {
		return nil, perr(kerr.InvalidRecord, "record batch has %d records but lastOffsetDelta %d", n, h.LastOffsetDelta())
	}
	if h.IsTransactional() {
		return nil, perr(kerr.InvalidTxnState, "transactions are not supported by Sediment (transactional batch from producer %d)", h.ProducerID())
	}
	if h.TimestampType() == 0 {
		for _, ts := range [2]int64{h.FirstTimestamp(), h.MaxTimestamp()} {
			if ts == -1 { // NO_TIMESTAMP
				continue
			}
			if lim.beforeMaxMs >= 0 && ts < nowMs && nowMs-ts > lim.beforeMaxMs {
				return nil, perr(kerr.InvalidTimestamp, "timestamp %d is more than message.timestamp.before.max.ms %d before broker time %d", ts, lim.beforeMaxMs, nowMs)
			}
			if lim.afterMaxMs >= 0 && ts > nowMs && ts-nowMs > lim.afterMaxMs {
				return nil, perr(kerr.InvalidTimestamp, "timestamp %d is more than message.timestamp.after.max.ms %d after broker time %d", ts, lim.afterMaxMs, nowMs)
			}
		}
	}
	return h, nil
}
