package broker

import (
	"context"
	"errors"
	"syscall"

	"github.com/twmb/franz-go/pkg/kerr"

	"github.com/sediment-io/sediment/meta"
	"github.com/sediment-io/sediment/segment"
)

// errorCode is the one place internal errors become Kafka error codes (the code a Java client
// expects). Handlers call it for any error from segment or meta; nil maps to 0 (NONE).
// Unrecognised errors are UNKNOWN_SERVER_ERROR: that is a bug to fix here, not in the handler.
func errorCode(err error) int16 {
	if err == nil {
		return 0
	}
	for _, m := range errorCodes {
		if errors.Is(err, m.err) {
			return m.code.Code
		}
	}
	var ke *kerr.Error
	if errors.As(err, &ke) { // already a Kafka error (handlers may return kerr values directly)
		return ke.Code
	}
	return kerr.UnknownServerError.Code
}

// errorMessage is the text for responses that carry an ErrorMessage: the error's own text, which
// names the offending value (meta's Reason, segment's file and position).
func errorMessage(err error) *string {
	if err == nil {
		return nil
	}
	s := err.Error()
	return &s
}

var errorCodes = []struct {
	err  error
	code *kerr.Error
}{
	{meta.ErrTopicExists, kerr.TopicAlreadyExists},
	{meta.ErrUnknownTopic, kerr.UnknownTopicOrPartition},
	{meta.ErrUnknownTopicID, kerr.UnknownTopicID},
	{meta.ErrInvalidTopic, kerr.InvalidTopicException},
	{meta.ErrInvalidPartitions, kerr.InvalidPartitions},
	{meta.ErrInvalidReplicationFactor, kerr.InvalidReplicationFactor},
	{meta.ErrInvalidReplicaAssignment, kerr.InvalidReplicaAssignment},
	{meta.ErrInvalidConfig, kerr.InvalidConfig},
	{meta.ErrNotController, kerr.NotController},
	{meta.ErrInvalidRequest, kerr.InvalidRequest},
	{meta.ErrStalePartitionEpoch, kerr.InvalidUpdateVersion},
	{meta.ErrFencedLeaderEpoch, kerr.FencedLeaderEpoch},
	{meta.ErrNotLeader, kerr.NotLeaderForPartition},
	{meta.ErrIneligibleReplica, kerr.IneligibleReplica},
	{meta.ErrStaleBrokerEpoch, kerr.StaleBrokerEpoch},
	{meta.ErrUnknownBroker, kerr.BrokerNotAvailable},
	{meta.ErrDuplicateBroker, kerr.DuplicateBrokerRegistration},
	{meta.ErrClosed, kerr.NotController},
	{meta.ErrUnsupportedVersion, kerr.UnsupportedVersion},
	{meta.ErrCorruptCommand, kerr.UnknownServerError},
	{segment.ErrOffsetOutOfRange, kerr.OffsetOutOfRange},
	{segment.ErrCorrupt, kerr.CorruptMessage},
	{segment.ErrClosed, kerr.NotLeaderForPartition}, // the replica is going away (deleted / shutting down): retry elsewhere
	{segment.ErrDecompressLimit, kerr.RecordListTooLarge},
	{segment.ErrBatchTooLarge, kerr.RecordListTooLarge},
	// Disk failures: Kafka answers KAFKA_STORAGE_ERROR when a log directory fails.
	{syscall.EIO, kerr.KafkaStorageError},
	{syscall.ENOSPC, kerr.KafkaStorageError},
	{syscall.EROFS, kerr.KafkaStorageError},
	// A metadata write that did not commit in time (no quorum): the client retries.
	{context.DeadlineExceeded, kerr.RequestTimedOut},
	{context.Canceled, kerr.RequestTimedOut},
}
