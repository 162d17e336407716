package broker

import (
	"fmt"
	"strconv"
	"testing"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/sediment-io/sediment/localstack"
)

// Tiering metrics read from /metrics and checked against the state they describe: upload lag in
// bytes while uploads are paused, bytes uploaded once they resume, chunk-cache hits on a second
// replay, and (against MinIO) the S3 requests by operation behind the cost estimate.

// metricInt is the integer value of a sample on a /metrics body; the test fails if it is absent.
func metricInt(t *testing.T, body, sample string) int64 {
	t.Helper()
	v, ok := metricValue(body, sample)
	if !ok {
		t.Fatalf("/metrics lacks %s", sample)
	}
	n, err := strconv.ParseInt(v, 10, 64)
	if err != nil {
		t.Fatalf("%s = %q: %v", sample, v, err)
	}
	return n
}

func TestTierMetricsLagBytesUploadedBytesCacheHits(t *testing.T) {
	b := newTestBroker(t, tieredConfig)
	const topic = "tmx"
	createTopic(t, b, topic, 1, pausedTierTopicConfigs())
	cl := newTestClient(t, b, kgo.DefaultProduceTopic(topic), kgo.ProducerBatchCompression(kgo.NoCompression()))
	const n, size = 60, 500
	produceValues(t, cl, 0, n, size)
	p := tierPartition(t, b, topic, 0)

	// Paused: every closed segment is lag, and nothing is uploaded.
	var lagSegs, lagBytes int64
	for _, s := range p.log.Segments() {
		if s.Closed {
			lagSegs++
			lagBytes += s.Size
		}
	}
	if lagSegs < 5 {
		t.Fatalf("%d closed segments", lagSegs)
	}
	body := scrape(t, b)
	lagSample := fmt.Sprintf(`sediment_tier_upload_lag_bytes{topic=%q,partition="0"}`, topic)
	if got := metricInt(t, body, lagSample); got != lagBytes {
		t.Fatalf("%s = %d, the %d closed local segments hold %d bytes", lagSample, got, lagSegs, lagBytes)
	}
	if got := metricInt(t, body, "sediment_tier_broker_upload_lag_bytes"); got != lagBytes {
		t.Fatalf("sediment_tier_broker_upload_lag_bytes = %d, want %d", got, lagBytes)
	}
	if got := metricInt(t, body, `sediment_tier_upload_lag_segments{topic="tmx",partition="0"}`); got != lagSegs {
		t.Fatalf("upload lag segments = %d, want %d", got, lagSegs)
	}
	if got := metricInt(t, body, "sediment_tier_uploaded_bytes_total"); got != 0 {
		t.Fatalf("sediment_tier_uploaded_bytes_total = %d while uploads are paused", got)
	}

	// Resumed: the lag drains; uploaded bytes are the manifest's object bytes.
	rs, err := kadm.NewClient(cl).AlterTopicConfigs(testCtx(t), resumeUploads, topic)
	if err != nil || rs[0].Err != nil {
		t.Fatalf("resume uploads: %v %v", err, rs)
	}
	waitFor(t, "uploads and local retention", func() bool { return uploadedAndTrimmed(p) })
	var objBytes int64
	segs := b.meta.State().RemoteSegments(p.topicID, 0)
	for _, s := range segs {
		objBytes += s.Size
	}
	body = scrape(t, b)
	if got := metricInt(t, body, "sediment_tier_uploaded_bytes_total"); got != objBytes || got <= lagBytes {
		t.Fatalf("sediment_tier_uploaded_bytes_total = %d, the manifest's %d objects hold %d bytes (segments and footers; %d segment bytes were lagging)",
			got, len(segs), objBytes, lagBytes)
	}
	if got := metricInt(t, body, lagSample); got != 0 {
		t.Fatalf("%s = %d after the backlog drained", lagSample, got)
	}

	// A first replay misses the chunk cache; a second one of the same history hits it.
	hits0 := metricInt(t, body, "sediment_tier_remote_cache_hits_total")
	consumeAllValues(t, []string{b.Addr()}, topic, n, size)
	body = scrape(t, b)
	hits1, misses1 := metricInt(t, body, "sediment_tier_remote_cache_hits_total"), metricInt(t, body, "sediment_tier_remote_cache_misses_total")
	if misses1 == 0 {
		t.Fatal("first replay from the bucket: no cache misses counted")
	}
	consumeAllValues(t, []string{b.Addr()}, topic, n, size)
	body = scrape(t, b)
	hits2, misses2 := metricInt(t, body, "sediment_tier_remote_cache_hits_total"), metricInt(t, body, "sediment_tier_remote_cache_misses_total")
	if hits2 <= hits1 || misses2 != misses1 {
		t.Fatalf("second replay: cache hits %d -> %d -> %d, misses %d -> %d; want more hits and no new misses", hits0, hits1, hits2, misses1, misses2)
	}
}

// TestTierMetricsS3Requests: against MinIO the broker's /metrics has the S3 requests by operation,
// and the cost estimate prices them (at least the PutObjects of the uploaded segments).
func TestTierMetricsS3Requests(t *testing.T) {
	srv := localstack.StartMinIO(t)
	bk := newMinIOBucket(t, srv, "tier-metrics")
	b := newTestBroker(t, tieredConfig, bk.useStore(t, srv.Endpoint, 3))
	createTopic(t, b, "ts3", 1, tierTopicConfigs())
	cl := newTestClient(t, b, kgo.DefaultProduceTopic("ts3"), kgo.ProducerBatchCompression(kgo.NoCompression()))
	produceValues(t, cl, 0, 40, 500)
	p := tierPartition(t, b, "ts3", 0)
	waitFor(t, "uploads to MinIO", func() bool { return uploadedAndTrimmed(p) })
	segs := b.meta.State().RemoteSegments(p.topicID, 0)
	consumeAllValues(t, []string{b.Addr()}, "ts3", 40, 500)
	body := scrape(t, b)
	puts := metricInt(t, body, `sediment_objectstore_backend_requests_total{operation="PutObject"}`)
	billedPuts := metricInt(t, body, `sediment_objectstore_backend_billed_requests_total{operation="PutObject"}`)
	gets := metricInt(t, body, `sediment_objectstore_backend_requests_total{operation="GetObject"}`)
	if puts < int64(len(segs)) || billedPuts < int64(len(segs)) || gets == 0 {
		t.Fatalf("%d segments uploaded and replayed; /metrics says PutObject %d (billed %d), GetObject %d", len(segs), puts, billedPuts, gets)
	}
	v, _ := metricValue(body, "sediment_objectstore_request_cost_usd_estimate")
	cost, err := strconv.ParseFloat(v, 64)
	if min := float64(billedPuts) * 0.005 / 1000; err != nil || cost < min*(1-1e-9) {
		t.Fatalf("cost estimate %q, want at least %g for %d billed PutObjects", v, min, billedPuts)
	}
}
