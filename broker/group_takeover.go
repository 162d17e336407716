package broker

import (
	"github.com/twmb/franz-go/pkg/kerr"
)

// Coordinator takeover: rebuilding membership from the members themselves.
//
// Kafka's new coordinator reloads a group's members and generation from __consumer_offsets, so after
// a failover the members carry on. Sediment replicates only the committed offsets; membership lives in
// the coordinator's memory. Without more, the first heartbeat or commit of every member after a
// failover (or a broker restart) would get UNKNOWN_MEMBER_ID, and clients would drop their partitions
// ("lost") and reprocess everything since their last commit.
//
// Instead, a group that this coordinator has not yet formed a generation for ("fresh"), and that
// existed before (it has committed offsets in Raft), adopts members that present themselves:
//   - a Heartbeat from member X claiming generation G is answered REBALANCE_IN_PROGRESS, and X is
//     remembered with G; the group's generation is raised to the largest G claimed, so the generation
//     formed next is newer than anything the previous coordinator handed out;
//   - X's OffsetCommit under G is accepted, but only where it does not move a committed offset
//     backwards (a zombie of an older generation cannot undo progress; a partition it would move back
//     answers REBALANCE_IN_PROGRESS);
//   - X's JoinGroup with its old member id is accepted as a known member's rejoin (no
//     MEMBER_ID_REQUIRED round trip, and no initial rebalance delay: this is not a new group).
// Once a generation is formed here the group is no longer fresh and every rule is Kafka's again.
// KIP-848 members are adopted from a full heartbeat (their epoch, owned partitions and subscription):
// see adoptConsumerMemberLocked in group_consumer.go.
// What a takeover cannot know (which member was the leader, the previous assignment) is rebuilt by
// the rebalance the adopted members are sent into, as after any Kafka rebalance.

// adoptableLocked reports whether an unknown member id presented with a generation may be adopted.
func (g *group) adoptableLocked(memberID string, generation int32) bool {
	if !g.fresh || memberID == "" || generation < 0 || g.typ == groupTypeConsumer {
		return false
	}
	if _, ok := g.adopt[memberID]; ok {
		return true
	}
	return len(g.gc.b.meta.State().CommittedOffsets(g.id)) > 0
}

// adoptLocked records member X as having claimed generation G.
func (g *group) adoptLocked(memberID string, generation int32) {
	if g.adopt == nil {
		g.adopt = map[string]int32{}
	}
	if _, ok := g.adopt[memberID]; !ok {
		g.gc.adopted.Add(1)
	}
	g.adopt[memberID] = generation
	if generation > g.generation {
		g.generation = generation
	}
}

// takeoverHeartbeatLocked answers a heartbeat from an unknown member of a fresh group: adopt it and
// send it to rejoin. ok=false: not a takeover case.
func (g *group) takeoverHeartbeatLocked(memberID string, generation int32) (int16, bool) {
	if g.members[memberID] != nil || !g.adoptableLocked(memberID, generation) {
		return 0, false
	}
	g.adoptLocked(memberID, generation)
	return kerr.RebalanceInProgress.Code, true
}
