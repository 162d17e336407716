package broker

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/minio/minio-go/v7"
	"github.com/twmb/franz-go/pkg/kerr"

	"github.com/sediment-io/sediment/localstack"
	"github.com/sediment-io/sediment/tiering"
)

// newMinIOBroker starts a private MinIO (localstack.StartMinIO: skipped only under
// SEDIMENT_SKIP_MINIO=1) and a test broker whose object store is a fresh prefix of its bucket.
func newMinIOBroker(t testing.TB, prefix string, opts ...func(*Config)) (*Broker, *localstack.Server) {
	t.Helper()
	srv := localstack.StartMinIO(t)
	for _, kv := range srv.Env() {
		k, v, _ := strings.Cut(kv, "=")
		t.Setenv(k, v)
	}
	b := newTestBroker(t, append(opts, func(c *Config) { c.ObjectStore = srv.ObjectStoreURL(prefix) })...)
	return b, srv
}

// TestTierReadReplayFromMinIO is TestTierReadReplayThroughBrokerUploads against a real S3 server
// (the broker uploads, local retention deletes); the objects the reads come from are checked with
// an independent client (minio-go).
func TestTierReadReplayFromMinIO(t *testing.T) {
	b, srv := newMinIOBroker(t, "replay", tieredConfig)
	testTierReplay(t, b, tierByBroker)

	cl, err := srv.Client()
	if err != nil {
		t.Fatal(err)
	}
	var objects int
	for o := range cl.ListObjects(context.Background(), srv.Bucket, minio.ListObjectsOptions{Prefix: "replay/" + tiering.SegmentsRoot, Recursive: true}) {
		if o.Err != nil {
			t.Fatal(o.Err)
		}
		objects++
	}
	st := b.meta.State()
	var manifest int
	for _, p := range b.replicas.Partitions() {
		manifest += len(st.RemoteSegments(p.topicID, p.index))
	}
	if objects != manifest || objects < 10 {
		t.Fatalf("%d objects in the bucket, %d manifest entries", objects, manifest)
	}
}

// TestTierReadMinIOOutage: the S3 server goes away while a consumer replays from the bucket (the
// broker's S3 client meets refused connections, retries, gives up within the read bound): fetches
// answer KAFKA_STORAGE_ERROR instead of hanging, and once MinIO is back on the same address with
// the same data the consumer finishes with every record as produced.
func TestTierReadMinIOOutage(t *testing.T) {
	b, srv := newMinIOBroker(t, "outage")
	const topic = "mo"
	_, want, p := tieredTopic(t, b, topic, 800, time.Now().Add(-time.Minute).Truncate(time.Millisecond), 10)
	b.tier.remote = tiering.NewRemoteLog(b.tier.store, 16) // no chunk cache: every read goes to MinIO
	defer func(d time.Duration) { remoteReadTimeout = d }(remoteReadTimeout)
	remoteReadTimeout = time.Second

	if err := srv.Stop(); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	if r := p.read(0, 1<<20, true); r.err != kerr.KafkaStorageError.Code {
		t.Fatalf("read with MinIO down: err %d, %d bytes", r.err, len(r.data))
	}
	if d := time.Since(start); d > 5*remoteReadTimeout {
		t.Fatalf("read with MinIO down took %v", d)
	}
	done := make(chan error, 1)
	go func() { done <- consumeCheck(t, b, topic, want, 90*time.Second) }()
	time.Sleep(time.Second) // the consumer meets the outage
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	srv2, err := localstack.Start(ctx, localstack.Options{DataDir: srv.DataDir, Addr: srv.Addr, Logf: t.Logf})
	if err != nil {
		t.Fatalf("restarting MinIO on %s: %v", srv.Addr, err)
	}
	t.Cleanup(func() { srv2.Stop() })
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}
