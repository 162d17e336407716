package broker

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/credentials"

	"github.com/sediment-io/sediment/localstack"
	"github.com/sediment-io/sediment/meta"
	"github.com/sediment-io/sediment/tiering"
)

// TestTierStoreOfAnotherCluster: the object store already holds another cluster's id. This broker
// must neither upload into it nor sweep it (that cluster's topics are unknown here, and the sweep
// would delete their objects), and local retention keeps every not-yet-uploaded segment. Once the
// other cluster's claim is gone, this cluster claims the store and catches up.
func TestTierStoreOfAnotherCluster(t *testing.T) {
	var store tiering.Store
	var foreignTopic meta.TopicID
	rand.Read(foreignTopic[:])
	foreignKey := tiering.SegmentKey{Topic: foreignTopic, Partition: 0, BaseOffset: 0, LeaderEpoch: 0, UploadID: tiering.NewUploadID()}.String()
	var logs *capturedLog
	b := newTestBroker(t, tieredConfig, func(c *Config) {
		logs = captureLogs(c)
		c.tierStoreWrap = func(s tiering.Store) tiering.Store {
			ctx := context.Background()
			if err := tiering.PutBytes(ctx, s, tiering.ClusterClaimKey, []byte("another-cluster\n")); err != nil {
				t.Fatal(err)
			}
			if err := tiering.PutBytes(ctx, s, foreignKey, []byte("the other cluster's history")); err != nil {
				t.Fatal(err)
			}
			store = s
			return s
		}
	})
	const n, size = 60, 500
	_, p := produceTiered(t, b, "claim", n, size)

	waitFor(t, "upload attempts refused by the claim check", func() bool {
		v, _ := metricValue(scrape(t, b), "sediment_tier_upload_failures_total")
		return v != "" && v != "0"
	})
	// Several sweep and orphan periods (tieredConfig: 200 and 300 ms; grace 100 ms).
	time.Sleep(time.Second)
	if segs := b.meta.State().RemoteSegments(p.topicID, 0); len(segs) != 0 {
		t.Fatalf("%d segments uploaded into another cluster's store", len(segs))
	}
	if objs, err := store.List(testCtx(t), tiering.TopicPrefix(p.topicID)); err != nil || len(objs) != 0 {
		t.Fatalf("objects of this cluster's topic in another cluster's store: %v (%v)", objs, err)
	}
	if p.log.LocalStartOffset() != 0 {
		t.Fatalf("local retention deleted not-uploaded segments: local start %d", p.log.LocalStartOffset())
	}
	if _, err := store.Head(testCtx(t), foreignKey); err != nil {
		t.Fatalf("the other cluster's object is gone: %v", err)
	}
	if err := tiering.ClaimStore(testCtx(t), store, b.meta.State().ClusterID()); !errors.Is(err, tiering.ErrForeignStore) {
		t.Fatalf("ClaimStore = %v, want ErrForeignStore", err)
	}
	// The controller says so as an error, naming the other cluster.
	if lines := logs.withMsg(t, "tiering: the object store belongs to another cluster: no uploads, no sweeps", map[string]any{"level": "ERROR"}); len(lines) == 0 ||
		!strings.Contains(fmt.Sprint(lines[0]["err"]), `"another-cluster"`) {
		t.Fatalf("error lines about the foreign store: %v", lines)
	}

	// The other cluster is gone and its claim removed: uploads resume and this cluster owns the store.
	if err := store.Delete(testCtx(t), tiering.ClusterClaimKey); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "uploads after the claim", func() bool { return uploadedAndTrimmed(p) && p.log.LocalStartOffset() > 0 })
	checkManifest(t, b.meta.State(), p.topicID, 0, storeHead(store))
	if got, err := tiering.ReadRange(testCtx(t), store, tiering.ClusterClaimKey, 0, -1); err != nil || strings.TrimSpace(string(got)) != b.meta.State().ClusterID() {
		t.Fatalf("%s = %q (%v), want this cluster's id %q", tiering.ClusterClaimKey, got, err, b.meta.State().ClusterID())
	}
	// Now the store is this cluster's, an object of a topic it does not know is an orphan to sweep.
	waitFor(t, "the unknown topic's object swept", func() bool {
		_, err := store.Head(testCtx(t), foreignKey)
		return errors.Is(err, tiering.ErrNotFound)
	})
	consumeAllValues(t, []string{b.Addr()}, "claim", n, size)
}

// TestTierStoreRefusesCredentials: a broker whose S3 credentials the store refuses says so within
// seconds of starting, before any topic exists (the controller's first bucket check), naming the
// store's answer; it keeps running.
func TestTierStoreRefusesCredentials(t *testing.T) {
	srv := localstack.StartMinIO(t)
	bad, err := tiering.NewS3Store(testCtx(t), tiering.S3Config{
		Bucket: srv.Bucket, Prefix: "bad-credentials", Region: srv.Region, Endpoint: srv.Endpoint, PathStyle: true,
		Credentials: credentials.NewStaticCredentialsProvider(srv.AccessKey, "not-the-secret", ""),
		MaxAttempts: 1,
	})
	if err != nil {
		t.Fatal(err)
	}
	var logs *capturedLog
	b := newTestBroker(t, tieredConfig, func(c *Config) {
		logs = captureLogs(c)
		c.tierStoreWrap = func(fileStore tiering.Store) tiering.Store { fileStore.Close(); return bad }
	})
	waitFor(t, "a warning that the object store could not be checked", func() bool {
		return len(logs.withMsg(t, "tiering: bucket sweep postponed: the object store could not be checked", map[string]any{"level": "WARN"})) > 0
	})
	line := logs.withMsg(t, "tiering: bucket sweep postponed: the object store could not be checked", nil)[0]
	if msg := fmt.Sprint(line["err"]); !strings.Contains(msg, "SignatureDoesNotMatch") {
		t.Fatalf("the warning does not name the store's answer: %s", msg)
	}
	if n := len(b.replicas.Partitions()); n != 0 {
		t.Fatalf("%d partitions: the warning must come without any topic", n)
	}
	t.Logf("logged: %v", line["err"])
}
