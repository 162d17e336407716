package broker

// FindCoordinator: v0–v5.
//
// Key type 0 (group) answers the broker coordinating the group: a deterministic function of the group
// id and the live (registered, unfenced) brokers (rendezvous hashing, group_coordinator.go). Sediment
// keeps committed offsets in Raft, not in Kafka's __consumer_offsets topic, so there is no offsets
// partition leader to follow: when the set of live brokers changes, coordination of some groups moves,
// the old coordinator answers NOT_COORDINATOR and clients find the new one here.
// v4+ batches keys (CoordinatorKeys → Coordinators); v0–v3 answer the single key at top level.
//
// Key type 1 (transaction) answers INVALID_REQUEST with a message: Sediment has no transactions, and
// COORDINATOR_NOT_AVAILABLE would make a transactional producer retry forever. v6 (KIP-932 share-group
// keys) is not served. An empty group id answers INVALID_REQUEST as Kafka does.

import (
	"context"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

func init() { register(kmsg.FindCoordinator, 0, 5, (*Broker).handleFindCoordinator) }

func (b *Broker) handleFindCoordinator(ctx context.Context, c *connCtx, kreq kmsg.Request) (kmsg.Response, error) {
	req := kreq.(*kmsg.FindCoordinatorRequest)
	resp := req.ResponseKind().(*kmsg.FindCoordinatorResponse)
	keys := req.CoordinatorKeys
	if req.Version < 4 {
		keys = []string{req.CoordinatorKey}
	}
	for _, key := range keys {
		rc := kmsg.NewFindCoordinatorResponseCoordinator()
		rc.Key, rc.NodeID, rc.Port = key, -1, -1
		var msg string
		switch {
		case req.CoordinatorType == 1:
			rc.ErrorCode, msg = kerr.InvalidRequest.Code, "transactions are not supported by Sediment: there is no transaction coordinator"
		case req.CoordinatorType != 0:
			rc.ErrorCode, msg = kerr.InvalidRequest.Code, "unsupported coordinator key type"
		case key == "":
			rc.ErrorCode, msg = kerr.InvalidRequest.Code, "empty group id"
		default:
			if br, ok := coordinatorFor(b.meta.State(), key); ok {
				rc.NodeID, rc.Host, rc.Port = br.ID, br.Host, br.Port
			} else {
				rc.ErrorCode, msg = kerr.CoordinatorNotAvailable.Code, "no live broker"
			}
		}
		if msg != "" {
			rc.ErrorMessage = &msg
		}
		resp.Coordinators = append(resp.Coordinators, rc)
	}
	if req.Version < 4 {
		rc := resp.Coordinators[0]
		resp.Coordinators = nil
		resp.ErrorCode, resp.ErrorMessage, resp.NodeID, resp.Host, resp.Port = rc.ErrorCode, rc.ErrorMessage, rc.NodeID, rc.Host, rc.Port
	}
	return resp, nil
}
