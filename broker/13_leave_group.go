package broker

// LeaveGroup: v0–v5. v0–v2 remove one member by id (the error is top level); v3+ remove a batch of
// members, each by member id or by group.instance.id (KIP-345), with an error per member. Reasons
// (v5) are logged. The remaining members rebalance.

import (
	"context"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

func init() { register(kmsg.LeaveGroup, 0, 5, (*Broker).handleLeaveGroup) }

func (b *Broker) handleLeaveGroup(ctx context.Context, c *connCtx, kreq kmsg.Request) (kmsg.Response, error) {
	req := kreq.(*kmsg.LeaveGroupRequest)
	resp := req.ResponseKind().(*kmsg.LeaveGroupResponse)
	gc := b.groups
	leaving := req.Members
	if req.Version < 3 {
		lm := kmsg.NewLeaveGroupRequestMember()
		lm.MemberID = req.MemberID
		leaving = []kmsg.LeaveGroupRequestMember{lm}
	}
	top := int16(0)
	if req.Group == "" {
		top = kerr.InvalidGroupID.Code
	} else {
		top = gc.coordinatorCheck(req.Group)
	}
	var g *group
	if top == 0 {
		if g = gc.getGroup(req.Group, false); g == nil {
			top = kerr.UnknownMemberID.Code
		}
	}
	if top != 0 {
		resp.ErrorCode = top
		return resp, nil
	}
	g.mu.Lock()
	removed := false
	for _, lm := range leaving {
		code := g.leaveLocked(lm.MemberID, lm.InstanceID)
		removed = removed || code == 0
		rm := kmsg.NewLeaveGroupResponseMember()
		rm.MemberID, rm.InstanceID, rm.ErrorCode = lm.MemberID, lm.InstanceID, code
		resp.Members = append(resp.Members, rm)
		reason := ""
		if lm.Reason != nil {
			reason = *lm.Reason
		}
		b.log.Debug("group member leaving", "group", req.Group, "member", lm.MemberID, "code", code, "reason", reason)
	}
	if removed {
		g.membershipChangedLocked()
	}
	g.mu.Unlock()
	if req.Version < 3 {
		resp.ErrorCode = resp.Members[0].ErrorCode
		resp.Members = nil
	}
	return resp, nil
}
