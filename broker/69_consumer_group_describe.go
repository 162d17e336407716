package broker

// ConsumerGroupDescribe: v0–v1 (KIP-848). Group epoch, target assignment epoch, assignor, and per member
// its epoch, subscription, current and target assignment (topic ids and names). A group unknown here or
// using the classic protocol answers GROUP_ID_NOT_FOUND, as Kafka does.

import (
	"context"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

func init() { register(kmsg.ConsumerGroupDescribe, 0, 1, (*Broker).handleConsumerGroupDescribe) }

func (b *Broker) handleConsumerGroupDescribe(ctx context.Context, c *connCtx, kreq kmsg.Request) (kmsg.Response, error) {
	req := kreq.(*kmsg.ConsumerGroupDescribeRequest)
	resp := req.ResponseKind().(*kmsg.ConsumerGroupDescribeResponse)
	gc := b.groups
	st := b.meta.State()
	for _, id := range req.Groups {
		dg := kmsg.NewConsumerGroupDescribeResponseGroup()
		dg.Group = id
		if req.IncludeAuthorizedOperations {
			dg.AuthorizedOperations = groupAuthorizedOps
		}
		if id == "" {
			dg.ErrorCode = kerr.InvalidGroupID.Code
		} else if dg.ErrorCode = gc.coordinatorCheck(id); dg.ErrorCode == 0 {
			g := gc.getGroup(id, false)
			found := false
			if g != nil {
				g.mu.Lock()
				if g.typ == groupTypeConsumer && g.state != groupDead {
					g.describeConsumerLocked(&dg, st)
					found = true
				}
				g.mu.Unlock()
			}
			if !found {
				dg.ErrorCode = kerr.GroupIDNotFound.Code
				msg := "group " + id + " is not a consumer (KIP-848) group coordinated here"
				dg.ErrorMessage = &msg
			}
		}
		resp.Groups = append(resp.Groups, dg)
	}
	return resp, nil
}
