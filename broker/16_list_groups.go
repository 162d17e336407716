package broker

// ListGroups: v0–v5. Lists the groups this broker coordinates: those in memory, and those that exist
// only as committed offsets in Raft (reported Empty with an empty protocol type, as Kafka reports a
// group created by simple commits). v4+ StatesFilter and v5+ TypesFilter ("classic", "consumer") are
// matched case-insensitively, as Kafka does.

import (
	"context"
	"strings"

	"github.com/twmb/franz-go/pkg/kmsg"
)

func init() { register(kmsg.ListGroups, 0, 5, (*Broker).handleListGroups) }

func (b *Broker) handleListGroups(ctx context.Context, c *connCtx, kreq kmsg.Request) (kmsg.Response, error) {
	req := kreq.(*kmsg.ListGroupsRequest)
	resp := req.ResponseKind().(*kmsg.ListGroupsResponse)
	gc := b.groups
	st := b.meta.State()
	match := func(filter []string, v string) bool {
		if len(filter) == 0 {
			return true
		}
		for _, f := range filter {
			if strings.EqualFold(f, v) {
				return true
			}
		}
		return false
	}
	seen := map[string]bool{}
	add := func(id, ptype, state, typ string) {
		seen[id] = true
		if (req.Version >= 4 && !match(req.StatesFilter, state)) || (req.Version >= 5 && !match(req.TypesFilter, typ)) {
			return
		}
		lg := kmsg.NewListGroupsResponseGroup()
		lg.Group, lg.ProtocolType, lg.GroupState, lg.GroupType = id, ptype, state, typ
		resp.Groups = append(resp.Groups, lg)
	}
	self := b.cfg.NodeID
	for _, g := range gc.snapshotGroups() {
		if br, ok := coordinatorFor(st, g.id); !ok || br.ID != self {
			continue
		}
		g.mu.Lock()
		state, ptype, typ := g.state, g.protocolType, "classic"
		if g.typ == groupTypeConsumer {
			state, ptype, typ = g.cg.stateLocked(g), "consumer", "consumer"
		}
		g.mu.Unlock()
		if state == groupDead {
			continue
		}
		add(g.id, ptype, state.String(), typ)
	}
	for _, id := range st.Groups() {
		if seen[id] {
			continue
		}
		if br, ok := coordinatorFor(st, id); !ok || br.ID != self {
			continue
		}
		add(id, "", groupEmpty.String(), "classic")
	}
	return resp, nil
}
