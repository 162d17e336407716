package integration

// The consumer-group scenario of the compatibility tests (issue 6's groups, driven by real clients):
// franz-go writes groupN records to "compat-group" (3 partitions); the client under test then
//   1. joins group "compat-<client>" with auto-commit off, processes exactly groupFirst records,
//      commits what it processed through its own commit API, and leaves/closes;
//   2. joins the same group again as a new consumer and reads the rest.
// checkGroup asserts: the broker holds the committed offsets the client meant (next offset after the
// last processed record per partition), the second consumer starts each partition exactly at the
// committed offset (nothing skipped, nothing re-read), and both together read every record once.

import (
	"context"
	"fmt"
	"sort"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
)

const (
	groupTopic = "compat-group"
	groupN     = 45
	groupFirst = 20
)

func groupValue(i int) string { return fmt.Sprintf("group|%d", i) }

// groupNodeArgs: a new classic group rebalances at once instead of waiting 3 s for more members.
var groupNodeArgs = []string{"--conf", "group.initial.rebalance.delay.ms=0"}

// groupResult is what a driver reports for the group scenario.
type groupResult struct {
	Version string         `json:"version"`
	First   []compatRecord `json:"first"`  // read (and committed) by the first consumer
	Second  []compatRecord `json:"second"` // read by the second consumer of the same group
	Errors  []string       `json:"errors"`
	// CommittedAfterFirst, when set, is the group's committed offsets read between the two consumers
	// (for clients whose second consumer commits too); otherwise checkGroup reads them at the end.
	CommittedAfterFirst map[int32]int64 `json:"-"`
}

// committedOffsets reads the group's committed offsets for compat-group (-1 where none).
func committedOffsets(t *testing.T, n *node, group string) map[int32]int64 {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	offs, err := n.admin(t).FetchOffsets(ctx, group)
	if err != nil {
		t.Fatalf("OffsetFetch(%s): %v", group, err)
	}
	out := map[int32]int64{}
	for p := int32(0); p < 3; p++ {
		out[p] = -1
		if o, ok := offs.Lookup(groupTopic, p); ok && o.Err == nil {
			out[p] = o.At
		}
	}
	return out
}

// seedGroupTopic creates compat-group and writes groupN keyed records with franz-go.
func seedGroupTopic(t *testing.T, n *node) {
	t.Helper()
	createGroupTopic(t, n)
	produceGroupRange(t, n, 0, groupN)
}

func createGroupTopic(t *testing.T, n *node) {
	t.Helper()
	if r, err := n.admin(t).CreateTopic(testCtx(t), 3, compatRF, nil, groupTopic); err != nil || r.Err != nil {
		t.Fatalf("create %s: %v %v", groupTopic, err, r.Err)
	}
}

// produceGroupRange writes records from..to-1 of the group scenario.
func produceGroupRange(t *testing.T, n *node, from, to int) {
	t.Helper()
	var recs []*kgo.Record
	for i := from; i < to; i++ {
		recs = append(recs, &kgo.Record{Topic: groupTopic, Key: []byte(compatKey(i)), Value: []byte(groupValue(i))})
	}
	if err := n.client(t).ProduceSync(testCtx(t), recs...).FirstErr(); err != nil {
		t.Fatalf("seeding %s: %v", groupTopic, err)
	}
}

// checkGroup is the matrix cell "group commit/resume" (subtest group_commit_resume).
func checkGroup(t *testing.T, n *node, group string, res *groupResult) {
	t.Helper()
	t.Run("group_commit_resume", func(t *testing.T) {
		for _, e := range res.Errors {
			t.Errorf("client error: %s", e)
		}
		if len(res.First) != groupFirst {
			t.Fatalf("first consumer processed %d records, want exactly %d", len(res.First), groupFirst)
		}
		committed := res.CommittedAfterFirst
		if committed == nil {
			committed = committedOffsets(t, n, group)
		}
		// What the first consumer should have committed: last processed offset + 1 per partition.
		want := map[int32]int64{}
		for _, r := range res.First {
			if r.Topic != groupTopic {
				t.Fatalf("first consumer read %s", r.Topic)
			}
			if r.Offset+1 > want[r.Partition] {
				want[r.Partition] = r.Offset + 1
			}
		}
		for p := int32(0); p < 3; p++ {
			if w, processed := want[p]; processed && committed[p] != w {
				t.Errorf("partition %d: broker holds committed offset %d, the client processed up to %d", p, committed[p], w-1)
			}
		}
		// The second consumer starts exactly at the committed offsets (0 where none) and reads the rest.
		start := map[int32]int64{}
		for _, r := range res.Second {
			if s, ok := start[r.Partition]; !ok || r.Offset < s {
				start[r.Partition] = r.Offset
			}
		}
		for p, s := range start {
			if s != want[p] {
				t.Errorf("partition %d: second consumer started at offset %d, committed offset is %d", p, s, want[p])
			}
		}
		seen := map[string]int{}
		for _, r := range append(append([]compatRecord{}, res.First...), res.Second...) {
			seen[r.Value]++
		}
		var missing, dup []int
		for i := 0; i < groupN; i++ {
			switch seen[groupValue(i)] {
			case 0:
				missing = append(missing, i)
			case 1:
			default:
				dup = append(dup, i)
			}
		}
		sort.Ints(missing)
		if len(missing) > 0 || len(dup) > 0 || len(seen) != groupN {
			t.Errorf("across both consumers: missing %v, read twice %v, %d distinct values (want %d)", missing, dup, len(seen), groupN)
		}
	})
}
