package broker

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/minio/minio-go/v7"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/sediment-io/sediment/localstack"
	"github.com/sediment-io/sediment/tiering"
)

// The upload side against a real MinIO, checked independently with minio-go: closed segments
// appear as objects, local segments go, the manifest is contiguous; MinIO stopped for 30 s while
// producing (5 s with -short): no segment that was not uploaded is deleted locally, and after
// MinIO is back on the same address the backlog drains; every record reads back from offset 0;
// deleting the topic leaves the bucket empty. Skipped only under SEDIMENT_SKIP_MINIO=1.
func TestTierUploadMinIO(t *testing.T) {
	srv := localstack.StartMinIO(t)
	bk := newMinIOBucket(t, srv, "tier-upload")
	// staleGrace 1 s: the planted upload below goes soon, and no live upload can be aborted (this
	// test's segments are single PUTs, never multipart).
	b := newTestBroker(t, tieredConfig, bk.useStore(t, srv.Endpoint, 3), tierTuned(func(t *tierTuning) { t.staleGrace = time.Second }))
	statObject, listObjects := bk.stat, bk.list

	createTopic(t, b, "tm", 1, tierTopicConfigs())
	cl := newTestClient(t, b, kgo.DefaultProduceTopic("tm"), kgo.ProducerBatchCompression(kgo.NoCompression()),
		kgo.RecordDeliveryTimeout(30*time.Second))
	const size = 500
	produceValues(t, cl, 0, 90, size)
	p := tierPartition(t, b, "tm", 0)
	waitFor(t, "uploads to MinIO and local retention", func() bool {
		return uploadedAndTrimmed(p)
	})
	segs := checkManifest(t, b.meta.State(), p.topicID, 0, statObject)
	if objs := listObjects(tiering.PartitionPrefix(p.topicID, 0)); len(objs) < len(segs) || len(segs) < 10 {
		t.Fatalf("%d manifest entries, %d objects in the bucket", len(segs), len(objs))
	}

	// MinIO down while producing.
	outage := 30 * time.Second
	if testing.Short() {
		outage = 5 * time.Second
	}
	if err := srv.Stop(); err != nil {
		t.Fatal(err)
	}
	upAtOutage := uploadedEnd(b.meta.State().RemoteSegments(p.topicID, 0))
	next := 90
	for start := time.Now(); time.Since(start) < outage; next++ {
		produceValues(t, cl, next, 1, size)
		if err := localInvariant(p); err != nil {
			t.Fatal(err)
		}
		if p.log.LocalStartOffset() > upAtOutage {
			t.Fatalf("local start %d above the uploaded end %d during the outage", p.log.LocalStartOffset(), upAtOutage)
		}
		time.Sleep(100 * time.Millisecond)
	}
	if got := uploadedEnd(b.meta.State().RemoteSegments(p.topicID, 0)); got != upAtOutage {
		t.Fatalf("manifest moved while MinIO was down: %d -> %d", upAtOutage, got)
	}
	lagSegs := len(p.log.Segments())
	bin, err := localstack.MinIOBinary(testCtx(t), t.Logf)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	srv2, err := localstack.Start(ctx, localstack.Options{Binary: bin, DataDir: srv.DataDir, Addr: srv.Addr})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { srv2.Stop() })
	recovered := time.Now()
	waitFor(t, "the backlog to drain after MinIO is back", func() bool {
		if err := localInvariant(p); err != nil {
			t.Fatal(err)
		}
		return uploadedAndTrimmed(p)
	})
	t.Logf("outage %v: %d records produced during it, %d local segments at its end; backlog drained %v after MinIO returned",
		outage, next-90, lagSegs, time.Since(recovered).Round(time.Millisecond))
	segs = checkManifest(t, b.meta.State(), p.topicID, 0, statObject)
	if segs[0].BaseOffset != 0 {
		t.Fatalf("manifest starts at %d", segs[0].BaseOffset)
	}
	consumeAllValues(t, []string{b.Addr()}, "tm", next, size)

	// A broker killed during a multipart upload leaves it open: no object, but parts S3 bills for.
	// Planted with minio-go; the controller's sweep must abort it.
	killed := bk.prefix + "/" + tiering.SegmentKey{Topic: p.topicID, Partition: 0, BaseOffset: int64(next), LeaderEpoch: 1, UploadID: tiering.NewUploadID()}.String()
	bk.plantUpload(killed)
	waitFor(t, "the unfinished multipart upload to be aborted", func() bool { return bk.openUploads(killed) == 0 })
	if v, _ := metricValue(scrape(t, b), "sediment_tier_stale_uploads_aborted_total"); v != "1" {
		t.Fatalf("sediment_tier_stale_uploads_aborted_total = %q, want 1", v)
	}

	// Deleting the topic empties the bucket.
	id := p.topicID
	if _, err := newTestAdmin(t, b).DeleteTopics(testCtx(t), "tm"); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the deleted topic's objects to go", func() bool {
		st := b.meta.State()
		return len(listObjects(tiering.TopicPrefix(id))) == 0 && len(st.DeletedTopicsWithRemoteData()) == 0
	})
	// Only the store's owner marker stays: it is the cluster's, not the topic's.
	if objs := listObjects(""); len(objs) != 1 || objs[0] != tiering.ClusterClaimKey {
		t.Fatalf("objects left in the bucket: %v, want only %s", objs, tiering.ClusterClaimKey)
	}
}

// minioBucket is a key prefix in a test MinIO's bucket, inspected with minio-go (independently of
// the broker's own S3 client).
type minioBucket struct {
	t      *testing.T
	srv    *localstack.Server
	mc     *minio.Client
	prefix string
}

func newMinIOBucket(t *testing.T, srv *localstack.Server, prefix string) *minioBucket {
	mc, err := srv.Client()
	if err != nil {
		t.Fatal(err)
	}
	return &minioBucket{t: t, srv: srv, mc: mc, prefix: prefix}
}

// useStore is a Config option making the broker use an S3 store on this prefix through endpoint
// (MinIO or a proxy in front of it), with maxAttempts tries per request and short backoffs.
func (m *minioBucket) useStore(t *testing.T, endpoint string, maxAttempts int) func(*Config) {
	s3, err := tiering.NewS3Store(testCtx(t), tiering.S3Config{
		Bucket: m.srv.Bucket, Prefix: m.prefix, Region: m.srv.Region, Endpoint: endpoint, PathStyle: true,
		Credentials: credentials.NewStaticCredentialsProvider(m.srv.AccessKey, m.srv.SecretKey, ""),
		MaxAttempts: maxAttempts, BaseBackoff: 10 * time.Millisecond, MaxBackoff: 200 * time.Millisecond,
		ResponseHeaderTimeout: 5 * time.Second,
	})
	if err != nil {
		t.Fatal(err)
	}
	return func(c *Config) {
		c.tierStoreWrap = func(fileStore tiering.Store) tiering.Store { fileStore.Close(); return s3 }
	}
}

// stat is nil when the object of a store key exists.
func (m *minioBucket) stat(key string) error {
	_, err := m.mc.StatObject(context.Background(), m.srv.Bucket, m.prefix+"/"+key, minio.StatObjectOptions{})
	return err
}

// list returns the store keys under a store-key prefix.
func (m *minioBucket) list(under string) []string {
	var keys []string
	for o := range m.mc.ListObjects(context.Background(), m.srv.Bucket, minio.ListObjectsOptions{Prefix: m.prefix + "/" + under, Recursive: true}) {
		if o.Err != nil {
			m.t.Fatalf("minio-go list: %v", o.Err)
		}
		keys = append(keys, strings.TrimPrefix(o.Key, m.prefix+"/"))
	}
	return keys
}

// plantUpload opens a multipart upload of bucket key with one 5 MiB part and leaves it open, as a
// broker killed mid-upload does.
func (m *minioBucket) plantUpload(key string) {
	core := minio.Core{Client: m.mc}
	ctx := context.Background()
	id, err := core.NewMultipartUpload(ctx, m.srv.Bucket, key, minio.PutObjectOptions{})
	if err != nil {
		m.t.Fatal(err)
	}
	part := strings.Repeat("p", 5<<20)
	if _, err := core.PutObjectPart(ctx, m.srv.Bucket, key, id, 1, strings.NewReader(part), int64(len(part)), minio.PutObjectPartOptions{}); err != nil {
		m.t.Fatal(err)
	}
	if m.openUploads(key) != 1 {
		m.t.Fatalf("planted upload of %s not listed", key)
	}
}

// openUploads counts the open multipart uploads of bucket key (MinIO lists them only by whole key).
func (m *minioBucket) openUploads(key string) int {
	n := 0
	for u := range m.mc.ListIncompleteUploads(context.Background(), m.srv.Bucket, key, true) {
		if u.Err != nil {
			m.t.Fatalf("minio-go list uploads: %v", u.Err)
		}
		if u.Key == key {
			n++
		}
	}
	return n
}
