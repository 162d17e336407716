package broker

// ConsumerGroupHeartbeat: v0–v1 (KIP-848; state machine and assignors in group_consumer.go).
//
// v0: the coordinator chooses the member id at the first heartbeat; v1: the client does (a join with an
// empty id is INVALID_REQUEST) and may subscribe with a regex (RE2 syntax, as Kafka's RE2J; matched
// against whole topic names). Server assignors: "uniform" (default) and "range"
// (group.consumer.assignors); any other answers UNSUPPORTED_ASSIGNOR. The heartbeat interval returned is
// group.consumer.heartbeat.interval.ms; members silent for group.consumer.session.timeout.ms are removed.
// A classic group with members answers GROUP_ID_NOT_FOUND (no online migration between protocols).

import (
	"context"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

func init() { register(kmsg.ConsumerGroupHeartbeat, 0, 1, (*Broker).handleConsumerGroupHeartbeat) }

func (b *Broker) handleConsumerGroupHeartbeat(ctx context.Context, c *connCtx, kreq kmsg.Request) (kmsg.Response, error) {
	req := kreq.(*kmsg.ConsumerGroupHeartbeatRequest)
	resp := req.ResponseKind().(*kmsg.ConsumerGroupHeartbeatResponse)
	gc := b.groups
	if req.Group == "" {
		resp.ErrorCode = kerr.InvalidGroupID.Code
		return resp, nil
	}
	if resp.ErrorCode = gc.coordinatorCheck(req.Group); resp.ErrorCode != 0 {
		return resp, nil
	}
	g := gc.getGroup(req.Group, true)
	if g == nil {
		resp.ErrorCode = kerr.NotCoordinator.Code
		return resp, nil
	}
	g.mu.Lock()
	g.consumerHeartbeatLocked(req, c.clientID, c.remote, resp)
	g.mu.Unlock()
	return resp, nil
}
