package broker

import (
	"context"
	"strings"
	"testing"

	"github.com/minio/minio-go/v7"

	"github.com/sediment-io/sediment/localstack"
)

// newMinIOBroker starts a private MinIO (localstack.StartMinIO: skipped only under
// SEDIMENT_SKIP_MINIO=1) and a test broker whose object store is a fresh prefix of its bucket.
func newMinIOBroker(t testing.TB, prefix string) (*Broker, *localstack.Server) {
	t.Helper()
	srv := localstack.StartMinIO(t)
	for _, kv := range srv.Env() {
		k, v, _ := strings.Cut(kv, "=")
		t.Setenv(k, v)
	}
	b := newTestBroker(t, func(c *Config) { c.ObjectStore = srv.ObjectStoreURL(prefix) })
	return b, srv
}

// TestTierReadReplayFromMinIO is TestTierReadReplayFromBucket against a real S3 server; the objects
// the reads come from are checked with an independent client (minio-go).
func TestTierReadReplayFromMinIO(t *testing.T) {
	b, srv := newMinIOBroker(t, "replay")
	testTierReplay(t, b)

	cl, err := srv.Client()
	if err != nil {
		t.Fatal(err)
	}
	var objects int
	for o := range cl.ListObjects(context.Background(), srv.Bucket, minio.ListObjectsOptions{Prefix: "replay/", Recursive: true}) {
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
