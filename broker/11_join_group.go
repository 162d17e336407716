package broker

// JoinGroup: v0–v9 (classic group protocol; state machine in group_classic.go).
//
// v4+: a member joining without an id gets MEMBER_ID_REQUIRED and an id to rejoin with (KIP-394).
// v5+: group.instance.id (static membership, KIP-345): a restarted static member takes over its old
// identity (the previous incarnation is fenced with FENCED_INSTANCE_ID) and, when its subscription is
// unchanged and the group is stable, gets its old assignment without a rebalance.
// The request parks until the join phase ends (all members rejoined, or the rebalance timeout), or
// the broker shuts down (NOT_COORDINATOR). Reasons (v8+) are logged, not stored. SkipAssignment (v9) is
// never set: a static leader that restarts triggers a normal rebalance instead.

import (
	"context"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

func init() { register(kmsg.JoinGroup, 0, 9, (*Broker).handleJoinGroup) }

func (b *Broker) handleJoinGroup(ctx context.Context, c *connCtx, kreq kmsg.Request) (kmsg.Response, error) {
	req := kreq.(*kmsg.JoinGroupRequest)
	gc := b.groups
	fail := func(code int16) (kmsg.Response, error) {
		resp := req.ResponseKind().(*kmsg.JoinGroupResponse)
		resp.ErrorCode, resp.MemberID, resp.Generation = code, req.MemberID, -1
		return resp, nil
	}
	if req.Group == "" {
		return fail(kerr.InvalidGroupID.Code)
	}
	if code := gc.coordinatorCheck(req.Group); code != 0 {
		return fail(code)
	}
	session := int64(req.SessionTimeoutMillis)
	if session < gc.config().MinSessionTimeout.Milliseconds() || session > gc.config().MaxSessionTimeout.Milliseconds() {
		return fail(kerr.InvalidSessionTimeout.Code)
	}
	if req.ProtocolType == "" || len(req.Protocols) == 0 {
		return fail(kerr.InconsistentGroupProtocol.Code)
	}
	if req.InstanceID != nil && *req.InstanceID == "" {
		return fail(kerr.InvalidRequest.Code)
	}
	g := gc.getGroup(req.Group, true)
	if g == nil {
		return fail(kerr.NotCoordinator.Code)
	}
	g.mu.Lock()
	resp, ch := g.joinLocked(joinArgs{req: req, clientID: c.clientID, clientHost: c.remote})
	g.mu.Unlock()
	if resp != nil {
		return resp, nil
	}
	select {
	case r := <-ch:
		return r, nil
	case <-ctx.Done():
		return fail(kerr.NotCoordinator.Code)
	}
}
