package broker

import (
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// consumerGroupState is the KIP-848 part of a group (ConsumerGroupHeartbeat). Filled in by
// group_consumer*.go; until the APIs are registered no group ever has it.
type consumerGroupState struct {
	members map[string]*cgMember
}

type cgMember struct {
	id         string
	epoch      int32
	topics     []string
	clientID   string
	clientHost string
	instanceID string
}

func (cg *consumerGroupState) stopTimers() {}

func (cg *consumerGroupState) subscribedTopics() []string {
	seen := map[string]bool{}
	var out []string
	for _, m := range cg.members {
		for _, t := range m.topics {
			if !seen[t] {
				seen[t] = true
				out = append(out, t)
			}
		}
	}
	return out
}

func (cg *consumerGroupState) memberEpochCheckLocked(memberID string, epoch int32) int16 {
	m := cg.members[memberID]
	if m == nil {
		return kerr.UnknownMemberID.Code
	}
	if epoch != m.epoch {
		return kerr.StaleMemberEpoch.Code
	}
	return 0
}

func (cg *consumerGroupState) commitCheckLocked(g *group, epoch int32, memberID string) int16 {
	if epoch < 0 && len(cg.members) == 0 {
		return 0
	}
	return cg.memberEpochCheckLocked(memberID, epoch)
}

func (cg *consumerGroupState) stateLocked(g *group) groupState {
	if len(cg.members) == 0 {
		return groupEmpty
	}
	return groupStable
}

func (cg *consumerGroupState) describeClassicLocked(g *group, dg *kmsg.DescribeGroupsResponseGroup) {
	dg.State = cg.stateLocked(g).String()
	dg.ProtocolType = "consumer"
}
