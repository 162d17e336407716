package broker

import (
	"slices"
	"testing"
)

// The controller id a client is given must be one of the brokers it is given, or librdkafka's
// admin client waits for a controller connection it can never make ("waiting for controller").
func TestAnsweredControllerIDIsAListedBroker(t *testing.T) {
	b := &Broker{cfg: Config{NodeID: 2}}
	for _, tc := range []struct {
		name       string
		raftLeader int32
		listed     []int32
		want       int32
	}{
		{"raft leader listed", 3, []int32{1, 2, 3}, 3},
		{"raft leader not registered yet: this broker", 3, []int32{1, 2}, 2},
		{"raft leader fenced, this broker not listed: first listed", 3, []int32{1, 4}, 1},
		{"no raft leader known", -1, []int32{1, 2}, 2},
		{"nothing listed", 3, nil, -1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := b.answeredControllerID(tc.raftLeader, slices.Values(tc.listed))
			if got != tc.want {
				t.Fatalf("answeredControllerID(%d, %v) = %d, want %d", tc.raftLeader, tc.listed, got, tc.want)
			}
			if got != -1 && !slices.Contains(tc.listed, got) {
				t.Fatalf("controller %d is not among the listed brokers %v", got, tc.listed)
			}
		})
	}
}
