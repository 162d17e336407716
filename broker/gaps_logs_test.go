package broker

import (
	"fmt"
	"testing"

	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// Issue #4's structured logs: one line per notable event (broker started, topic created or
// auto-created, partition leadership changed, segment rolled), and no line per record. The
// broker's slog output (Config.Logger, JSON at Info as `sediment serve` logs by default) is
// captured and the named lines counted per event.
func TestNotableEventsLoggedOnceNoLinePerRecord(t *testing.T) {
	var logs *capturedLog
	b := newTestBroker(t, func(c *Config) { logs = captureLogs(c) })
	count := func(msg string, attrs map[string]any) int { return len(logs.withMsg(t, msg, attrs)) }

	if n := count("sediment broker started", nil); n != 1 {
		t.Fatalf("%d 'sediment broker started' lines, want 1", n)
	}
	// Not tiered, so that only the log's own events happen while producing.
	createTopic(t, b, "ev", 2, map[string]*string{"segment.bytes": ptr("4096"), "remote.storage.enable": ptr("false")})
	if n := count("topic created", map[string]any{"topic": "ev"}); n != 1 {
		t.Fatalf("%d 'topic created' lines for ev, want 1", n)
	}
	cl := newTestClient(t, b, kgo.DefaultProduceTopic("ev"), kgo.ProducerBatchCompression(kgo.NoCompression()),
		kgo.RecordPartitioner(kgo.ManualPartitioner()))
	md := kmsg.NewPtrMetadataRequest()
	md.AllowAutoTopicCreation = true
	md.Topics = []kmsg.MetadataRequestTopic{{Topic: kmsg.StringPtr("ev-auto")}}
	if resp, err := md.RequestWith(testCtx(t), cl); err != nil || resp.Topics[0].ErrorCode != 0 {
		t.Fatalf("auto-create: %v %+v", err, resp)
	}
	if n := count("topic auto-created", map[string]any{"topic": "ev-auto"}); n != 1 {
		t.Fatalf("%d 'topic auto-created' lines, want 1", n)
	}
	for _, part := range []string{"ev-0", "ev-1", "ev-auto-0"} {
		waitFor(t, "leadership of "+part, func() bool {
			return count("partition leadership changed", map[string]any{"partition": part}) >= 1
		})
	}

	// N records, one batch each (~24 per segment), to ev-0: rolls, and nothing per record.
	before := len(logs.records(t))
	const n, size = 200, 100
	produceValues(t, cl, 0, n, size)
	p := tierPartition(t, b, "ev", 0)
	segs := p.log.Segments()
	rolls := logs.withMsg(t, "segment rolled", map[string]any{"partition": "ev-0"})
	if len(segs) < 5 || len(rolls) != len(segs)-1 {
		t.Fatalf("%d 'segment rolled' lines for %d segments, want one per roll", len(rolls), len(segs))
	}
	for i, r := range rolls {
		if r["old_base_offset"] != float64(segs[i].BaseOffset) || r["new_base_offset"] != float64(segs[i+1].BaseOffset) ||
			r["size"] != float64(segs[i].Size) || r["reason"] != "size" || r["level"] != "INFO" {
			t.Fatalf("roll line %d: %v, want segment %d..%d of %d bytes, reason size", i, r, segs[i].BaseOffset, segs[i+1].BaseOffset, segs[i].Size)
		}
	}
	// Whatever else was logged meanwhile is per segment at most (a roll, an upload, ...): no
	// message more often than there are segments, and far fewer lines than records.
	added := logs.records(t)[before:]
	perMsg := map[string]int{}
	for _, r := range added {
		perMsg[fmt.Sprint(r["msg"])]++
	}
	for msg, c := range perMsg {
		if c > len(segs) {
			t.Fatalf("producing %d records in %d segments logged %q %d times: a line per record or batch", n, len(segs), msg, c)
		}
	}
	if len(added) >= n/2 {
		t.Fatalf("producing %d records wrote %d log lines: %v", n, len(added), perMsg)
	}
	// Each event once: no repeated lines for events that happened once.
	for msg, attrs := range map[string]map[string]any{
		"sediment broker started":      nil,
		"topic created":                {"topic": "ev"},
		"topic auto-created":           {"topic": "ev-auto"},
		"partition leadership changed": {"partition": "ev-0"},
	} {
		if got := count(msg, attrs); got != 1 {
			t.Fatalf("%d %q lines (%v), want 1", got, msg, attrs)
		}
	}
}
