package broker

// SyncGroup: v0–v5. The leader's request carries every member's assignment; the others park until it
// arrives (or a rebalance starts: REBALANCE_IN_PROGRESS). The broker only relays assignments, which is
// why every client-side assignor (range, roundrobin, sticky, cooperative-sticky / KIP-429) works.
// v5 checks ProtocolType/Protocol against the group's (INCONSISTENT_GROUP_PROTOCOL).

import (
	"context"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

func init() { register(kmsg.SyncGroup, 0, 5, (*Broker).handleSyncGroup) }

func (b *Broker) handleSyncGroup(ctx context.Context, c *connCtx, kreq kmsg.Request) (kmsg.Response, error) {
	req := kreq.(*kmsg.SyncGroupRequest)
	gc := b.groups
	fail := func(code int16) (kmsg.Response, error) {
		resp := req.ResponseKind().(*kmsg.SyncGroupResponse)
		resp.ErrorCode = code
		return resp, nil
	}
	if req.Group == "" {
		return fail(kerr.InvalidGroupID.Code)
	}
	if code := gc.coordinatorCheck(req.Group); code != 0 {
		return fail(code)
	}
	g := gc.getGroup(req.Group, false)
	if g == nil {
		return fail(kerr.UnknownMemberID.Code)
	}
	g.mu.Lock()
	resp, ch := g.syncLocked(req)
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
