package tiering_test

import (
	"bytes"
	"context"
	"fmt"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/minio/minio-go/v7"

	"github.com/sediment-io/sediment/tiering"
)

// segmentObject64 builds a ~64 MiB segment object of 16 KiB batches.
func segmentObject64(b *testing.B) (*tiering.SegmentObject, []byte) {
	data, _ := randomBatches(rand.New(rand.NewPCG(9, 9)), 0, 64<<20, 16, 16<<10-61)
	obj, err := tiering.BuildSegmentObject(bytes.NewReader(data), int64(len(data)), 0)
	if err != nil {
		b.Fatal(err)
	}
	full, err := readAllAt(obj, obj.Size())
	if err != nil {
		b.Fatal(err)
	}
	return obj, full
}

// BenchmarkS3Put64MiB uploads the same 64 MiB segment object to MinIO with our S3 backend and with a
// raw minio-go PutObject, alternating within each iteration so that noise on the shared machine hits
// both alike. Reports both rates, their ratio (target ≥ 0.8), and our PUT-type requests (PUT + POST,
// retries included) per GiB uploaded (target ≤ 16).
func BenchmarkS3Put64MiB(b *testing.B) {
	srv := needMinIO(b)
	obj, full := segmentObject64(b)
	ctx := context.Background()
	prefix := uniquePrefix(b)
	s := newS3(b, srv, srv.Endpoint, prefix)
	cl := inspect(b, srv)
	var ours, raw time.Duration
	b.SetBytes(2 * obj.Size())
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		t0 := time.Now()
		if err := s.Put(ctx, fmt.Sprintf("bench/sediment-%d", i%4), obj, obj.Size()); err != nil {
			b.Fatal(err)
		}
		t1 := time.Now()
		if _, err := cl.PutObject(ctx, srv.Bucket, fmt.Sprintf("%s/bench/raw-%d", prefix, i%4), bytes.NewReader(full), int64(len(full)), minio.PutObjectOptions{}); err != nil {
			b.Fatal(err)
		}
		ours += t1.Sub(t0)
		raw += time.Since(t1)
	}
	mb := float64(b.N) * float64(obj.Size()) / 1e6
	b.ReportMetric(mb/ours.Seconds(), "sediment-MB/s")
	b.ReportMetric(mb/raw.Seconds(), "minio-go-MB/s")
	b.ReportMetric(raw.Seconds()/ours.Seconds(), "ratio")
	st := s.Stats()
	b.ReportMetric(float64(st.Requests["PUT"]+st.Requests["POST"])/(float64(b.N)*float64(obj.Size())/(1<<30)), "PUTs/GiB")
}
