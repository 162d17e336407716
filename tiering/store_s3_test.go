package tiering_test

import (
	"bytes"
	"context"
	"errors"
	"io"
	"testing"

	"github.com/minio/minio-go/v7"

	"github.com/sediment-io/sediment/tiering"
	"github.com/sediment-io/sediment/tiering/objstoretest"
)

func TestS3StoreConformanceMinIO(t *testing.T) {
	srv := needMinIO(t)
	objstoretest.Run(t, func(t *testing.T) tiering.Store {
		// A 5 MiB threshold and part size make the suite's 11 MiB object a 3-part multipart upload.
		return newS3(t, srv, srv.Endpoint, uniquePrefix(t), func(c *tiering.S3Config) {
			c.MultipartThreshold, c.PartSize = 5<<20, 5<<20
		})
	}, objstoretest.Options{LargeSize: 11<<20 + 3})
}

// TestS3StoreVisibleToMinIOClient checks what we wrote with an independent client: the key layout
// under the prefix, sizes and bytes, for a single PUT and a multipart upload.
func TestS3StoreVisibleToMinIOClient(t *testing.T) {
	srv := needMinIO(t)
	prefix := uniquePrefix(t)
	s := newS3(t, srv, srv.Endpoint, prefix, func(c *tiering.S3Config) { c.MultipartThreshold, c.PartSize = 5<<20, 5<<20 })
	ctx := context.Background()
	small := bytes.Repeat([]byte("seg"), 1000)
	big := bytes.Repeat([]byte("0123456789abcdef"), (12<<20)/16)
	if err := tiering.PutBytes(ctx, s, "t/0/small", small); err != nil {
		t.Fatal(err)
	}
	if err := tiering.PutBytes(ctx, s, "t/0/big", big); err != nil {
		t.Fatal(err)
	}
	cl := inspect(t, srv)
	for key, want := range map[string][]byte{"t/0/small": small, "t/0/big": big} {
		obj, err := cl.GetObject(ctx, srv.Bucket, prefix+"/"+key, minio.GetObjectOptions{})
		if err != nil {
			t.Fatal(err)
		}
		got, err := io.ReadAll(obj)
		obj.Close()
		if err != nil || !bytes.Equal(got, want) {
			t.Fatalf("minio-go read %s: %d bytes (err %v), want %d identical", key, len(got), err, len(want))
		}
	}
	st, err := cl.StatObject(ctx, srv.Bucket, prefix+"/t/0/big", minio.StatObjectOptions{})
	if err != nil {
		t.Fatal(err)
	}
	// A multipart object's ETag ends in "-<parts>".
	if !bytes.HasSuffix([]byte(st.ETag), []byte("-3")) {
		t.Errorf("big object ETag %q: want a 3-part multipart upload", st.ETag)
	}
	// No multipart upload is left open. MinIO lists uploads only by whole key (a shorter prefix
	// lists none, whatever is open), so ask for the multipart object's key itself.
	for u := range cl.ListIncompleteUploads(ctx, srv.Bucket, prefix+"/t/0/big", true) {
		t.Errorf("incomplete multipart upload left: %+v", u)
	}
	stats := s.Stats()
	if stats.Requests["PUT"] != 1+3 || stats.Requests["POST"] != 2 {
		t.Errorf("requests = %v, want PUT 4 (1 object + 3 parts), POST 2 (create + complete)", stats.Requests)
	}
}

func TestOpenURL(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	s, err := tiering.OpenURL(ctx, "file://"+dir)
	if err != nil {
		t.Fatal(err)
	}
	if fs, ok := s.(*tiering.FileStore); !ok || fs.Root() != dir {
		t.Fatalf("file URL gave %T %+v", s, s)
	}
	if s, err := tiering.OpenURL(ctx, "mem://"); err != nil {
		t.Fatal(err)
	} else if _, ok := s.(*tiering.MemStore); !ok {
		t.Fatalf("mem URL gave %T", s)
	}
	if s, err := tiering.OpenURL(ctx, "s3://bucket/some/prefix?endpoint=http://127.0.0.1:9000&region=eu-west-1&path-style=true&part-size=8388608&multipart-threshold=16777216"); err != nil {
		t.Fatal(err)
	} else if _, ok := s.(*tiering.S3Store); !ok {
		t.Fatalf("s3 URL gave %T", s)
	}
	for _, bad := range []string{
		"", "objects", "ftp://x", "file://", "file:///x?y=1", "mem://host", "s3://", "s3:///prefix",
		"s3://b?endpoint=notaurl", "s3://b?endpoint=ftp://x", "s3://b?region=", "s3://b?path-style=maybe",
		"s3://b?part-size=1", "s3://b?part-size=-5", "s3://b?bogus=1", "s3://b?region=a&region=b",
		"s3://b/bad//prefix", "%zz",
	} {
		if s, err := tiering.OpenURL(ctx, bad); err == nil {
			t.Errorf("OpenURL(%q) = %T, want an error", bad, s)
		} else {
			t.Logf("OpenURL(%q): %v", bad, err)
		}
	}
}

// TestOpenURLMinIO drives a real bucket through a URL and the standard credential chain (env).
func TestOpenURLMinIO(t *testing.T) {
	srv := needMinIO(t)
	t.Setenv("AWS_ACCESS_KEY_ID", srv.AccessKey)
	t.Setenv("AWS_SECRET_ACCESS_KEY", srv.SecretKey)
	t.Setenv("AWS_CONFIG_FILE", "/nonexistent")
	t.Setenv("AWS_SHARED_CREDENTIALS_FILE", "/nonexistent")
	prefix := uniquePrefix(t)
	s, err := tiering.OpenURL(context.Background(), srv.ObjectStoreURL(prefix))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if err := tiering.PutBytes(context.Background(), s, "k", []byte("via url")); err != nil {
		t.Fatal(err)
	}
	st, err := inspect(t, srv).StatObject(context.Background(), srv.Bucket, prefix+"/k", minio.StatObjectOptions{})
	if err != nil || st.Size != 7 {
		t.Fatalf("minio-go stat: %+v %v", st, err)
	}
}

// TestS3ConditionalMultipart: PutIfAbsent above the multipart threshold sends If-None-Match on
// CompleteMultipartUpload; a second one finds the object and fails with ErrExists, leaving no upload.
func TestS3ConditionalMultipart(t *testing.T) {
	srv := needMinIO(t)
	prefix := uniquePrefix(t)
	s := newS3(t, srv, srv.Endpoint, prefix, func(c *tiering.S3Config) { c.MultipartThreshold, c.PartSize = 5<<20, 5<<20 })
	ctx := context.Background()
	a := bytes.Repeat([]byte("a"), 11<<20)
	b := bytes.Repeat([]byte("b"), 11<<20)
	if err := s.PutIfAbsent(ctx, "big", bytes.NewReader(a), int64(len(a))); err != nil {
		t.Fatal(err)
	}
	if err := s.PutIfAbsent(ctx, "big", bytes.NewReader(b), int64(len(b))); !errors.Is(err, tiering.ErrExists) {
		t.Fatalf("second multipart PutIfAbsent = %v, want ErrExists", err)
	}
	got, err := minioBytes(t, srv, prefix+"/big")
	if err != nil || !bytes.Equal(got, a) {
		t.Fatalf("object overwritten or unreadable (%v)", err)
	}
	for u := range inspect(t, srv).ListIncompleteUploads(ctx, srv.Bucket, prefix+"/", true) {
		t.Errorf("incomplete multipart upload left: %+v", u)
	}
}
