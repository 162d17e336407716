package meta

import (
	"errors"
	"fmt"
)

// Sentinel errors returned by the write methods. The broker maps each to one Kafka error code with
// errors.Is; the comment names the code a Java client expects.
var (
	ErrTopicExists              = errors.New("meta: topic already exists")                    // TOPIC_ALREADY_EXISTS (36)
	ErrUnknownTopic             = errors.New("meta: unknown topic or partition")              // UNKNOWN_TOPIC_OR_PARTITION (3)
	ErrUnknownTopicID           = errors.New("meta: unknown topic id")                        // UNKNOWN_TOPIC_ID (100)
	ErrInvalidTopic             = errors.New("meta: invalid topic name")                      // INVALID_TOPIC_EXCEPTION (17)
	ErrInvalidPartitions        = errors.New("meta: invalid number of partitions")            // INVALID_PARTITIONS (37)
	ErrInvalidReplicationFactor = errors.New("meta: invalid replication factor")              // INVALID_REPLICATION_FACTOR (38)
	ErrInvalidReplicaAssignment = errors.New("meta: invalid replica assignment")              // INVALID_REPLICA_ASSIGNMENT (39)
	ErrInvalidConfig            = errors.New("meta: invalid config")                          // INVALID_CONFIG (40)
	ErrNotController            = errors.New("meta: not the controller")                      // NOT_CONTROLLER (41)
	ErrInvalidRequest           = errors.New("meta: invalid request")                         // INVALID_REQUEST (42)
	ErrStalePartitionEpoch      = errors.New("meta: stale partition epoch")                   // INVALID_UPDATE_VERSION (96)
	ErrFencedLeaderEpoch        = errors.New("meta: fenced leader epoch")                     // FENCED_LEADER_EPOCH (74)
	ErrNotLeader                = errors.New("meta: broker is not the partition leader")      // NOT_LEADER_OR_FOLLOWER (6)
	ErrIneligibleReplica        = errors.New("meta: ineligible replica")                      // INELIGIBLE_REPLICA (107)
	ErrStaleBrokerEpoch         = errors.New("meta: stale broker epoch")                      // STALE_BROKER_EPOCH (77)
	ErrUnknownBroker            = errors.New("meta: unknown broker")                          // BROKER_NOT_AVAILABLE (8)
	ErrDuplicateBroker          = errors.New("meta: broker id registered by another process") // DUPLICATE_BROKER_REGISTRATION (101)
	ErrAlreadyBootstrapped      = errors.New("meta: data directory already holds Raft state; refusing to bootstrap again")
	ErrNotRegistered            = errors.New("meta: this node has not registered a broker")
	ErrClosed                   = errors.New("meta: node closed")
	ErrUnsupportedVersion       = errors.New("meta: unsupported command version")
	ErrCorruptCommand           = errors.New("meta: corrupt command")
	ErrElectionNotNeeded        = errors.New("meta: the preferred replica is already the leader")   // ELECTION_NOT_NEEDED (84)
	ErrPreferredNotAvailable    = errors.New("meta: the preferred replica is not live and in sync") // PREFERRED_LEADER_NOT_AVAILABLE (80)
)

// errCode numbers the sentinels so a rejected command's reason survives the trip through the Raft
// log's response, the forwarding path and the idempotency table. Append only; never renumber.
type errCode uint8

var errTable = []error{
	0:  nil,
	1:  ErrTopicExists,
	2:  ErrUnknownTopic,
	3:  ErrUnknownTopicID,
	4:  ErrInvalidTopic,
	5:  ErrInvalidPartitions,
	6:  ErrInvalidReplicationFactor,
	7:  ErrInvalidReplicaAssignment,
	8:  ErrInvalidConfig,
	9:  ErrNotController,
	10: ErrInvalidRequest,
	11: ErrStalePartitionEpoch,
	12: ErrFencedLeaderEpoch,
	13: ErrNotLeader,
	14: ErrIneligibleReplica,
	15: ErrStaleBrokerEpoch,
	16: ErrUnknownBroker,
	17: ErrDuplicateBroker,
	18: ErrUnsupportedVersion,
	19: ErrCorruptCommand,
	20: ErrNotRegistered,
	21: ErrElectionNotNeeded,
	22: ErrPreferredNotAvailable,
}

// Error is a command rejected by the state machine: Reason says why, Unwrap gives the sentinel.
type Error struct {
	Code   errCode
	Reason string
}

func (e *Error) Error() string {
	s := e.Unwrap()
	if s == nil {
		return e.Reason
	}
	if e.Reason == "" {
		return s.Error()
	}
	return s.Error() + ": " + e.Reason
}

func (e *Error) Unwrap() error {
	if int(e.Code) < len(errTable) {
		return errTable[e.Code]
	}
	return ErrInvalidRequest
}

func codeOf(sentinel error) errCode {
	for i, e := range errTable {
		if e == sentinel {
			return errCode(i)
		}
	}
	return 10
}

// reject builds the error a command is rejected with.
func reject(sentinel error, format string, args ...any) *Error {
	return &Error{Code: codeOf(sentinel), Reason: fmt.Sprintf(format, args...)}
}
