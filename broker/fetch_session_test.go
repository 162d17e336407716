package broker

import (
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

func fetchReq(version int16, id, epoch int32, parts map[string][]int32, offset int64) *kmsg.FetchRequest {
	r := kmsg.NewPtrFetchRequest()
	r.Version = version
	r.SessionID = id
	r.SessionEpoch = epoch
	for topic, ps := range parts {
		t := kmsg.NewFetchRequestTopic()
		t.Topic = topic
		t.TopicID = [16]byte{byte(len(topic))}
		for _, p := range ps {
			rp := kmsg.NewFetchRequestTopicPartition()
			rp.Partition = p
			rp.FetchOffset = offset
			rp.PartitionMaxBytes = 1 << 20
			t.Partitions = append(t.Partitions, rp)
		}
		r.Topics = append(r.Topics, t)
	}
	return r
}

func TestFetchSessionLifecycle(t *testing.T) {
	c := newFetchSessionCache(10, time.Minute)
	ctx := c.begin(fetchReq(12, 0, 0, map[string][]int32{"a": {0, 1}}, 0), false)
	if ctx.errCode != 0 || ctx.sessionID == 0 || ctx.incremental || len(ctx.parts) != 2 {
		t.Fatalf("full fetch: %+v", ctx)
	}
	for _, p := range ctx.parts {
		if !ctx.include(p, 10, 0, 0, 0) {
			t.Fatal("a full fetch includes every partition")
		}
	}
	ctx.done()
	id := ctx.sessionID

	// Incremental, nothing changed: no partition is sent.
	ctx = c.begin(fetchReq(12, id, 1, nil, 0), false)
	if ctx.errCode != 0 || !ctx.incremental || len(ctx.parts) != 2 || ctx.sessionID != id {
		t.Fatalf("incremental: %+v", ctx)
	}
	if ctx.include(ctx.parts[0], 10, 0, 0, 0) || ctx.include(ctx.parts[1], 10, 0, 0, 0) {
		t.Fatal("unchanged partitions must be left out of an incremental response")
	}
	// Records, a new high watermark, a new log start, or an error bring a partition back.
	if !ctx.include(ctx.parts[0], 10, 0, 0, 100) {
		t.Fatal("records must be sent")
	}
	if !ctx.include(ctx.parts[1], 11, 0, 0, 0) {
		t.Fatal("a changed high watermark must be sent")
	}
	ctx.done()
	// Partition 0 returned data and rotates to the end.
	ctx = c.begin(fetchReq(12, id, 2, nil, 0), false)
	if ctx.parts[0].key.partition != 1 || ctx.parts[1].key.partition != 0 {
		t.Fatalf("rotation: got %d,%d", ctx.parts[0].key.partition, ctx.parts[1].key.partition)
	}
	if !ctx.include(ctx.parts[0], 11, 3, 0, 0) {
		t.Fatal("a changed log start offset must be sent")
	}
	if !ctx.include(ctx.parts[1], 10, 0, kerr.NotLeaderForPartition.Code, 0) {
		t.Fatal("errors must be sent")
	}
	// After an error the partition is sent again even if nothing else changed.
	ctx = c.begin(fetchReq(12, id, 3, nil, 0), false)
	p0 := ctx.parts[1]
	if !ctx.include(p0, 10, 0, 0, 0) {
		t.Fatal("a partition recovering from an error must be sent")
	}

	// Wrong epoch, unknown id.
	if ctx := c.begin(fetchReq(12, id, 3, nil, 0), false); ctx.errCode != kerr.InvalidFetchSessionEpoch.Code {
		t.Fatalf("replayed epoch: %d", ctx.errCode)
	}
	if ctx := c.begin(fetchReq(12, id+1, 1, nil, 0), false); ctx.errCode != kerr.FetchSessionIDNotFound.Code {
		t.Fatalf("unknown id: %d", ctx.errCode)
	}
	// Switching to topic ids mid-session.
	if ctx := c.begin(fetchReq(13, id, 4, nil, 0), false); ctx.errCode != kerr.FetchSessionTopicIDError.Code {
		t.Fatalf("topic id switch: %d", ctx.errCode)
	}

	// Add a partition, forget one.
	r := fetchReq(12, id, 4, map[string][]int32{"b": {5}}, 7)
	r.ForgottenTopics = []kmsg.FetchRequestForgottenTopic{{Topic: "a", Partitions: []int32{0}}}
	ctx = c.begin(r, false)
	if ctx.errCode != 0 || len(ctx.parts) != 2 {
		t.Fatalf("add/forget: %+v", ctx)
	}
	keys := map[fsKey]int64{}
	for _, p := range ctx.parts {
		keys[p.key] = p.fetchOffset
	}
	if _, ok := keys[fsKey{topic: "a", partition: 0}]; ok {
		t.Fatal("forgotten partition still in session")
	}
	if off, ok := keys[fsKey{topic: "b", partition: 5}]; !ok || off != 7 {
		t.Fatal("added partition missing or wrong offset")
	}

	// Final epoch closes the session.
	ctx = c.begin(fetchReq(12, id, -1, map[string][]int32{"a": {0}}, 0), false)
	if ctx.sessionID != 0 || ctx.incremental || len(ctx.parts) != 1 {
		t.Fatalf("final: %+v", ctx)
	}
	if c.len() != 0 {
		t.Fatal("session not removed")
	}
}

func TestFetchSessionOldVersionsAreSessionless(t *testing.T) {
	c := newFetchSessionCache(10, time.Minute)
	ctx := c.begin(fetchReq(6, 0, 0, map[string][]int32{"a": {0}}, 0), false)
	if ctx.sessionID != 0 || c.len() != 0 || len(ctx.parts) != 1 {
		t.Fatalf("%+v", ctx)
	}
}

func TestFetchSessionEviction(t *testing.T) {
	c := newFetchSessionCache(2, time.Minute)
	now := time.Unix(1000, 0)
	c.now = func() time.Time { return now }
	a := c.begin(fetchReq(12, 0, 0, map[string][]int32{"a": {0}}, 0), false).sessionID
	now = now.Add(30 * time.Second)
	b := c.begin(fetchReq(12, 0, 0, map[string][]int32{"a": {0}}, 0), false).sessionID
	if a == 0 || b == 0 || a == b {
		t.Fatalf("ids %d %d", a, b)
	}
	// Full, nothing idle long enough: a consumer gets no session.
	if id := c.begin(fetchReq(12, 0, 0, map[string][]int32{"a": {0}}, 0), false).sessionID; id != 0 {
		t.Fatal("cache over capacity")
	}
	// A follower may evict a consumer's session: the least recently used (a).
	if id := c.begin(fetchReq(12, 0, 0, map[string][]int32{"a": {0}}, 0), true).sessionID; id == 0 {
		t.Fatal("privileged session not admitted")
	}
	if ctx := c.begin(fetchReq(12, a, 1, nil, 0), false); ctx.errCode != kerr.FetchSessionIDNotFound.Code {
		t.Fatal("a should have been evicted")
	}
	// After the eviction age, an idle session can be replaced by anyone.
	now = now.Add(2 * time.Minute)
	if id := c.begin(fetchReq(12, 0, 0, map[string][]int32{"a": {0}}, 0), false).sessionID; id == 0 {
		t.Fatal("stale session not evicted")
	}
	if c.len() != 2 {
		t.Fatalf("cache holds %d", c.len())
	}
}
