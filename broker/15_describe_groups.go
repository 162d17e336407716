package broker

// DescribeGroups: v0–v5. A group this broker coordinates is described from memory (state, protocol,
// members; member metadata and assignments only while Stable, as Kafka). A group known only by its
// committed offsets (no members since the coordinator started) is Empty. An unknown group answers
// state Dead with no error (Kafka's behaviour before v6); v6 (GROUP_ID_NOT_FOUND) is not served.
// KIP-848 groups are described with protocol type "consumer" and their members; use
// ConsumerGroupDescribe for their assignments. AuthorizedOperations: everything (no ACLs).

import (
	"context"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

func init() { register(kmsg.DescribeGroups, 0, 5, (*Broker).handleDescribeGroups) }

const groupAuthorizedOps = 1<<3 | 1<<6 | 1<<8 // READ DELETE DESCRIBE

func (b *Broker) handleDescribeGroups(ctx context.Context, c *connCtx, kreq kmsg.Request) (kmsg.Response, error) {
	req := kreq.(*kmsg.DescribeGroupsRequest)
	resp := req.ResponseKind().(*kmsg.DescribeGroupsResponse)
	gc := b.groups
	st := b.meta.State()
	for _, id := range req.Groups {
		dg := kmsg.NewDescribeGroupsResponseGroup()
		dg.Group = id
		if req.IncludeAuthorizedOperations {
			dg.AuthorizedOperations = groupAuthorizedOps
		}
		if id == "" {
			dg.ErrorCode = kerr.InvalidGroupID.Code
		} else if dg.ErrorCode = gc.coordinatorCheck(id); dg.ErrorCode == 0 {
			g := gc.getGroup(id, false)
			switch {
			case g != nil:
				g.mu.Lock()
				g.describeLocked(&dg)
				g.mu.Unlock()
			case len(st.CommittedOffsets(id)) > 0:
				dg.State = groupEmpty.String()
			default:
				dg.State = groupDead.String()
			}
		}
		resp.Groups = append(resp.Groups, dg)
	}
	return resp, nil
}

func (g *group) describeLocked(dg *kmsg.DescribeGroupsResponseGroup) {
	if g.typ == groupTypeConsumer {
		g.cg.describeClassicLocked(g, dg)
		return
	}
	dg.State = g.state.String()
	dg.ProtocolType = g.protocolType
	if g.state == groupStable {
		dg.Protocol = g.protocol
	}
	for _, m := range sortedMembers(g.members) {
		dm := kmsg.NewDescribeGroupsResponseGroupMember()
		dm.MemberID, dm.ClientID, dm.ClientHost = m.id, m.clientID, m.clientHost
		if m.instanceID != "" {
			inst := m.instanceID
			dm.InstanceID = &inst
		}
		if g.state == groupStable {
			dm.ProtocolMetadata = m.metadataFor(g.protocol)
			dm.MemberAssignment = m.assignment
		}
		dg.Members = append(dg.Members, dm)
	}
}

func sortedMembers(ms map[string]*member) []*member {
	out := make([]*member, 0, len(ms))
	for _, m := range ms {
		out = append(out, m)
	}
	for i := 1; i < len(out); i++ {
		for j := i; j > 0 && out[j].id < out[j-1].id; j-- {
			out[j], out[j-1] = out[j-1], out[j]
		}
	}
	return out
}
