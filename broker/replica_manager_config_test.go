package broker

import (
	"crypto/rand"
	"testing"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
)

// A topic config change reaches the open partition log: lowering segment.bytes on a live topic
// makes its next appends roll segments, without reopening the partition (Kafka applies topic
// config changes to open logs too).
func TestTopicConfigChangeReachesOpenLog(t *testing.T) {
	b := newTestBroker(t)
	adm := newTestAdmin(t, b)
	ctx := testCtx(t)
	if _, err := adm.CreateTopic(ctx, 1, 1, nil, "cfg"); err != nil {
		t.Fatal(err)
	}
	cl := newTestClient(t, b, kgo.DefaultProduceTopic("cfg"), kgo.ProducerLinger(0))
	produce := func(n int) {
		t.Helper()
		for range n {
			v := make([]byte, 2048)
			rand.Read(v) // incompressible, so each batch really is ~2 KiB on disk
			if err := cl.ProduceSync(ctx, &kgo.Record{Value: v}).FirstErr(); err != nil {
				t.Fatal(err)
			}
		}
	}
	produce(10)
	p := b.replicas.partition(lookupTopicID(t, b, "cfg"), 0)
	if n := len(p.log.Segments()); n != 1 {
		t.Fatalf("%d segments before the change, want 1", n)
	}
	rs, err := adm.AlterTopicConfigs(ctx, []kadm.AlterConfig{{Name: "segment.bytes", Value: kadm.StringPtr("16384")}}, "cfg")
	if err != nil || rs[0].Err != nil {
		t.Fatalf("alter segment.bytes: %v %v", err, rs)
	}
	waitFor(t, "segment.bytes to reach the open log", func() bool { return p.log.Config().SegmentBytes == 16384 })
	produce(40) // ~80 KiB of batches: several 16 KiB segments
	if n := len(p.log.Segments()); n < 4 {
		t.Fatalf("%d segments after lowering segment.bytes to 16384 and appending ~80 KiB, want at least 4", n)
	}
}
