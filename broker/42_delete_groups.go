package broker

// DeleteGroups: v0–v2. Deletes an empty group: its committed offsets (one Raft entry, meta.DeleteOffsets
// with no partitions) and its in-memory state. NON_EMPTY_GROUP while it has members; GROUP_ID_NOT_FOUND
// when neither members nor offsets exist. v3 is not served.

import (
	"context"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

func init() { register(kmsg.DeleteGroups, 0, 2, (*Broker).handleDeleteGroups) }

func (b *Broker) handleDeleteGroups(ctx context.Context, c *connCtx, kreq kmsg.Request) (kmsg.Response, error) {
	req := kreq.(*kmsg.DeleteGroupsRequest)
	resp := req.ResponseKind().(*kmsg.DeleteGroupsResponse)
	gc := b.groups
	for _, id := range req.Groups {
		dg := kmsg.NewDeleteGroupsResponseGroup()
		dg.Group = id
		dg.ErrorCode = gc.deleteGroup(ctx, id)
		resp.Groups = append(resp.Groups, dg)
	}
	return resp, nil
}

func (gc *groupCoordinator) deleteGroup(ctx context.Context, id string) int16 {
	if id == "" {
		return kerr.InvalidGroupID.Code
	}
	if code := gc.coordinatorCheck(id); code != 0 {
		return code
	}
	hasOffsets := len(gc.b.meta.State().CommittedOffsets(id)) > 0
	if g := gc.getGroup(id, false); g != nil {
		g.mu.Lock()
		if !g.isEmptyLocked() {
			g.mu.Unlock()
			return kerr.NonEmptyGroup.Code
		}
		g.shutdownLocked(kerr.NotCoordinator.Code) // Dead: a racing join creates a fresh group
		g.mu.Unlock()
		gc.removeGroupIf(g)
	} else if !hasOffsets {
		return kerr.GroupIDNotFound.Code
	}
	if hasOffsets {
		if err := gc.b.meta.DeleteOffsets(ctx, id, nil); err != nil {
			return errorCode(err)
		}
	}
	return 0
}
