package broker

// Heartbeat: v0–v4. Restarts the member's session timeout; REBALANCE_IN_PROGRESS tells it to rejoin.
// Errors as Kafka: UNKNOWN_MEMBER_ID, ILLEGAL_GENERATION, FENCED_INSTANCE_ID (v3+ static members).

import (
	"context"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

func init() { register(kmsg.Heartbeat, 0, 4, (*Broker).handleHeartbeat) }

func (b *Broker) handleHeartbeat(ctx context.Context, c *connCtx, kreq kmsg.Request) (kmsg.Response, error) {
	req := kreq.(*kmsg.HeartbeatRequest)
	resp := req.ResponseKind().(*kmsg.HeartbeatResponse)
	gc := b.groups
	if req.Group == "" {
		resp.ErrorCode = kerr.InvalidGroupID.Code
		return resp, nil
	}
	if resp.ErrorCode = gc.coordinatorCheck(req.Group); resp.ErrorCode != 0 {
		return resp, nil
	}
	g := gc.getGroup(req.Group, false)
	if g == nil && req.MemberID != "" && req.Generation >= 0 && len(b.meta.State().CommittedOffsets(req.Group)) > 0 {
		g = gc.getGroup(req.Group, true) // possibly a takeover (group_takeover.go)
	}
	if g == nil {
		resp.ErrorCode = kerr.UnknownMemberID.Code
		return resp, nil
	}
	g.mu.Lock()
	resp.ErrorCode = g.heartbeatLocked(req)
	g.mu.Unlock()
	return resp, nil
}
