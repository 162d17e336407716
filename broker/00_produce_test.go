package broker

import (
	"bytes"
	"fmt"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
)

// createTopic creates a topic through kadm and fails the test on error.
func createTopic(t *testing.T, b *Broker, name string, partitions int32, configs map[string]*string) {
	t.Helper()
	adm := newTestAdmin(t, b)
	resp, err := adm.CreateTopic(testCtx(t), partitions, 1, configs, name)
	if err != nil || resp.Err != nil {
		t.Fatalf("create topic %s: %v %v", name, err, resp.Err)
	}
	// CreateTopics answers once the metadata is committed; the broker opens its
	// replicas as it applies it, and until then answers NOT_LEADER_FOR_PARTITION,
	// which a Kafka client retries but the tests' raw requests would not.
	waitFor(t, "the new topic's partitions to be led here", func() bool { return leadsWhatMetaSays(b, name) })
}

// leadsWhatMetaSays reports whether b has opened, as leader, every partition of
// topic that the metadata says it leads.
func leadsWhatMetaSays(b *Broker, topic string) bool {
	mt, ok := b.meta.State().Topic(topic)
	if !ok {
		return false
	}
	led := map[int32]bool{}
	for _, q := range b.replicas.Partitions() {
		if q.topic == topic {
			q.stateMu.RLock()
			led[q.index] = q.leader
			q.stateMu.RUnlock()
		}
	}
	for _, mp := range mt.Partitions {
		if mp.Leader == b.cfg.NodeID && !led[mp.Index] {
			return false
		}
	}
	return true
}

// consumeN reads n records of topic from the start.
func consumeN(t *testing.T, b *Broker, topic string, n int, opts ...kgo.Opt) []*kgo.Record {
	t.Helper()
	cl := newTestClient(t, b, append([]kgo.Opt{kgo.ConsumeTopics(topic), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart())}, opts...)...)
	ctx := testCtx(t)
	var out []*kgo.Record
	for len(out) < n {
		fs := cl.PollFetches(ctx)
		if ctx.Err() != nil {
			t.Fatalf("consumed %d of %d: %v", len(out), n, ctx.Err())
		}
		fs.EachError(func(topic string, p int32, err error) { t.Fatalf("fetch %s[%d]: %v", topic, p, err) })
		out = append(out, fs.Records()...)
	}
	if len(out) != n {
		t.Fatalf("consumed %d records, want %d", len(out), n)
	}
	return out
}

func TestProduceConsumeEveryCodec(t *testing.T) {
	b := newTestBroker(t)
	codecs := []struct {
		name  string
		codec kgo.CompressionCodec
	}{
		{"none", kgo.NoCompression()},
		{"gzip", kgo.GzipCompression()},
		{"snappy", kgo.SnappyCompression()},
		{"lz4", kgo.Lz4Compression()},
		{"zstd", kgo.ZstdCompression()},
	}
	for _, c := range codecs {
		t.Run(c.name, func(t *testing.T) {
			topic := "codec-" + c.name
			createTopic(t, b, topic, 1, nil)
			cl := newTestClient(t, b, kgo.DefaultProduceTopic(topic), kgo.ProducerBatchCompression(c.codec), kgo.ProducerLinger(5*time.Millisecond))
			var want []*kgo.Record
			for i := 0; i < 200; i++ {
				r := &kgo.Record{
					Key:       []byte(fmt.Sprintf("key-%d", i)),
					Value:     bytes.Repeat([]byte{byte(i)}, 100+i),
					Headers:   []kgo.RecordHeader{{Key: "h", Value: []byte(fmt.Sprint(i))}, {Key: "empty"}},
					Timestamp: time.UnixMilli(time.Now().UnixMilli() + int64(i)),
				}
				want = append(want, r)
			}
			if err := cl.ProduceSync(testCtx(t), want...).FirstErr(); err != nil {
				t.Fatalf("produce: %v", err)
			}
			got := consumeN(t, b, topic, len(want))
			for i, g := range got {
				w := want[i]
				if g.Offset != int64(i) || !bytes.Equal(g.Key, w.Key) || !bytes.Equal(g.Value, w.Value) ||
					len(g.Headers) != 2 || g.Headers[0].Key != "h" || string(g.Headers[0].Value) != fmt.Sprint(i) ||
					g.Headers[1].Key != "empty" || len(g.Headers[1].Value) != 0 || !g.Timestamp.Equal(w.Timestamp) {
					t.Fatalf("record %d differs: got %+v want %+v", i, g, w)
				}
			}
		})
	}
}
