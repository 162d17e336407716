package tiering_test

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/minio/minio-go/v7"

	"github.com/sediment-io/sediment/localstack"
	"github.com/sediment-io/sediment/tiering"
)

func faultSetup(t *testing.T, mod ...func(*tiering.S3Config)) (*localstack.Server, *faultProxy, *tiering.S3Store, string) {
	srv := needMinIO(t)
	p := newFaultProxy(t, srv.Endpoint)
	prefix := uniquePrefix(t)
	return srv, p, newS3(t, srv, p.URL(), prefix, mod...), prefix
}

func minioBytes(t *testing.T, srv *localstack.Server, key string) ([]byte, error) {
	t.Helper()
	obj, err := inspect(t, srv).GetObject(context.Background(), srv.Bucket, key, minio.GetObjectOptions{})
	if err != nil {
		return nil, err
	}
	defer obj.Close()
	return io.ReadAll(obj)
}

func TestS3RetriesSlowDownAnd500(t *testing.T) {
	srv, p, s, prefix := faultSetup(t)
	ctx := context.Background()
	data := bytes.Repeat([]byte("x"), 100_000)

	p.inject(fault{Kind: faultSlowDown, Match: method("PUT"), Times: 2})
	p.inject(fault{Kind: fault500, Match: method("PUT"), Times: 1})
	if err := tiering.PutBytes(ctx, s, "k", data); err != nil {
		t.Fatalf("Put through 2×503 + 1×500: %v\n%s", err, strings.Join(p.Log(), "\n"))
	}
	if n := p.count("PUT"); n != 4 {
		t.Errorf("PUT requests = %d, want 4 (3 failures + 1 success):\n%s", n, strings.Join(p.Log(), "\n"))
	}
	if got, err := minioBytes(t, srv, prefix+"/k"); err != nil || !bytes.Equal(got, data) {
		t.Fatalf("minio-go sees %d bytes, err %v", len(got), err)
	}

	p.resetLog()
	p.inject(fault{Kind: fault500, Match: method("GET"), Times: 2})
	p.inject(fault{Kind: faultSlowDown, Match: method("HEAD"), Times: 2})
	if got, err := tiering.ReadRange(ctx, s, "k", 10, 100); err != nil || !bytes.Equal(got, data[10:110]) {
		t.Fatalf("Get through 2×500: %d bytes, %v", len(got), err)
	}
	if info, err := s.Head(ctx, "k"); err != nil || info.Size != int64(len(data)) {
		t.Fatalf("Head through 2×503: %+v %v", info, err)
	}
	if g, h := p.count("GET"), p.count("HEAD"); g != 3 || h != 3 {
		t.Errorf("GET %d HEAD %d requests, want 3 each:\n%s", g, h, strings.Join(p.Log(), "\n"))
	}
	if st := s.Stats(); st.Errors["PUT"] != 3 || st.Errors["GET"] != 2 || st.Errors["HEAD"] != 2 {
		t.Errorf("error counters %v, want PUT 3, GET 2, HEAD 2", st.Errors)
	}
}

// TestS3RetryGivesUp shows the retryer's bound: MaxAttempts requests, then the error surfaces and
// nothing is stored.
func TestS3RetryGivesUp(t *testing.T) {
	srv, p, s, prefix := faultSetup(t, func(c *tiering.S3Config) { c.MaxAttempts = 3 })
	p.inject(fault{Kind: faultSlowDown, Match: method("PUT"), Times: 1000})
	err := tiering.PutBytes(context.Background(), s, "k", []byte("never stored"))
	if err == nil || !strings.Contains(err.Error(), "SlowDown") {
		t.Fatalf("Put = %v, want a SlowDown error after exhausting retries", err)
	}
	if n := p.count("PUT"); n != 3 {
		t.Errorf("PUT requests = %d, want exactly MaxAttempts = 3", n)
	}
	if _, err := minioBytes(t, srv, prefix+"/k"); err == nil {
		t.Errorf("object exists after a failed Put")
	}
}

func TestS3ResetsAndTimeouts(t *testing.T) {
	srv, p, s, prefix := faultSetup(t)
	ctx := context.Background()
	data := make([]byte, 1<<20)
	for i := range data {
		data[i] = byte(i * 7)
	}
	// A connection reset before any answer: the SDK retries the PUT (body rewound).
	p.inject(fault{Kind: faultResetEarly, Match: method("PUT"), Times: 1})
	if err := tiering.PutBytes(ctx, s, "k", data); err != nil {
		t.Fatalf("Put through a reset: %v", err)
	}
	if got, err := minioBytes(t, srv, prefix+"/k"); err != nil || !bytes.Equal(got, data) {
		t.Fatalf("minio-go sees %d bytes, err %v", len(got), err)
	}

	// Resets mid-body: our reader re-requests the rest of the range (If-Match pinned).
	p.resetLog()
	p.inject(fault{Kind: faultResetBody, Match: method("GET"), Times: 2})
	if got, err := tiering.ReadRange(ctx, s, "k", 0, -1); err != nil || !bytes.Equal(got, data) {
		t.Fatalf("whole Get through 2 mid-body resets: %d bytes, %v\n%s", len(got), err, strings.Join(p.Log(), "\n"))
	}
	if n := p.count("GET"); n != 3 {
		t.Errorf("GET requests = %d, want 3 (two cut, one resumed to the end):\n%s", n, strings.Join(p.Log(), "\n"))
	}
	p.inject(fault{Kind: faultResetBody, Match: method("GET"), Times: 1})
	if got, err := tiering.ReadRange(ctx, s, "k", 1000, 300_000); err != nil || !bytes.Equal(got, data[1000:301_000]) {
		t.Fatalf("ranged Get through a mid-body reset: %d bytes, %v", len(got), err)
	}

	// Resets beyond the resume budget: an error, never a silently short read.
	p.inject(fault{Kind: faultResetBody, Match: method("GET"), Times: 100})
	got, err := tiering.ReadRange(ctx, s, "k", 0, -1)
	if err == nil {
		t.Fatalf("Get through endless resets returned %d bytes and no error", len(got))
	}
	p.mu.Lock()
	p.faults = nil
	p.mu.Unlock()

	// A hung server: ResponseHeaderTimeout turns it into a retryable timeout. (A store of its own, so
	// that a slow answer on this shared 2-core machine cannot time out the requests counted above.)
	hs := newS3(t, srv, p.URL(), prefix, func(c *tiering.S3Config) { c.ResponseHeaderTimeout = time.Second })
	p.resetLog()
	p.inject(fault{Kind: faultHang, Match: method("HEAD"), Times: 1, Hang: 10 * time.Second})
	start := time.Now()
	if info, err := hs.Head(ctx, "k"); err != nil || info.Size != int64(len(data)) {
		t.Fatalf("Head through a hang: %+v %v", info, err)
	}
	if n := p.count("HEAD"); n != 2 {
		t.Errorf("HEAD requests = %d, want 2 (hung, retried):\n%s", n, strings.Join(p.Log(), "\n"))
	}
	t.Logf("Head through a hang took %v", time.Since(start))
}

// TestS3PutSucceededBut500: the server stores the object but the client sees 500. The SDK retries
// the same bytes under the same key, so the outcome is the object, once, and Put reports success.
func TestS3PutSucceededBut500(t *testing.T) {
	srv, p, s, prefix := faultSetup(t)
	ctx := context.Background()
	data := bytes.Repeat([]byte("segment-bytes "), 5000)
	p.inject(fault{Kind: faultOKThen500, Match: method("PUT"), Times: 1})
	if err := tiering.PutBytes(ctx, s, "seg", data); err != nil {
		t.Fatalf("Put: %v", err)
	}
	log := p.Log()
	if len(log) != 2 || !strings.Contains(log[0], "200 upstream, answered 500") || !strings.HasSuffix(log[1], "-> 200") {
		t.Fatalf("want an applied-but-500 PUT then a successful retry, got:\n%s", strings.Join(log, "\n"))
	}
	if got, err := minioBytes(t, srv, prefix+"/seg"); err != nil || !bytes.Equal(got, data) {
		t.Fatalf("minio-go sees %d bytes, err %v", len(got), err)
	}
	infos, err := s.List(ctx, "")
	if err != nil || len(infos) != 1 {
		t.Fatalf("List = %v, %v; want exactly one object", infos, err)
	}

	// The same fault on a conditional put: the retry finds its own object and reports ErrExists —
	// the documented ambiguity; the caller resolves it by comparing (here: the bytes are its own).
	p.resetLog()
	p.inject(fault{Kind: faultOKThen500, Match: method("PUT"), Times: 1})
	err = s.PutIfAbsent(ctx, "cond", bytes.NewReader(data), int64(len(data)))
	if !errors.Is(err, tiering.ErrExists) {
		t.Fatalf("PutIfAbsent after applied-but-500 = %v, want ErrExists (own write)\n%s", err, strings.Join(p.Log(), "\n"))
	}
	if got, err := tiering.ReadRange(ctx, s, "cond", 0, -1); err != nil || !bytes.Equal(got, data) {
		t.Fatalf("conditional object: %d bytes, %v", len(got), err)
	}
}

// TestS3MultipartFaults: a part answered 503, and a Complete that is applied but answered 500.
func TestS3MultipartFaults(t *testing.T) {
	srv, p, s, prefix := faultSetup(t, func(c *tiering.S3Config) { c.MultipartThreshold, c.PartSize = 5<<20, 5<<20 })
	ctx := context.Background()
	data := make([]byte, 11<<20)
	for i := range data {
		data[i] = byte(i >> 10)
	}
	p.inject(fault{Kind: faultSlowDown, Match: isUploadPart, Times: 1})
	p.inject(fault{Kind: faultResetEarly, Match: isUploadPart, Times: 1})
	p.inject(fault{Kind: faultOKThen500, Match: isCompleteMultipart, Times: 1})
	if err := tiering.PutBytes(ctx, s, "big", data); err != nil {
		t.Fatalf("multipart Put through faults: %v\n%s", err, strings.Join(p.Log(), "\n"))
	}
	if got, err := minioBytes(t, srv, prefix+"/big"); err != nil || !bytes.Equal(got, data) {
		t.Fatalf("minio-go sees %d bytes, err %v", len(got), err)
	}
	for u := range inspect(t, srv).ListIncompleteUploads(ctx, srv.Bucket, prefix+"/", true) {
		t.Errorf("incomplete multipart upload left: %+v", u)
	}
	if n := p.count("PUT /"); n != 3+2 {
		t.Errorf("part uploads = %d, want 5 (3 parts + 2 retried):\n%s", n, strings.Join(p.Log(), "\n"))
	}

	// A part that fails for good: the upload is aborted, nothing is left.
	p.resetLog()
	p.inject(fault{Kind: fault500, Match: isUploadPart, Times: 1000})
	if err := tiering.PutBytes(ctx, s, "doomed", data); err == nil {
		t.Fatal("multipart Put with every part failing succeeded")
	}
	abortSeen := false
	for _, l := range p.Log() {
		if strings.HasPrefix(l, http.MethodDelete) && strings.Contains(l, "uploadId") {
			abortSeen = true
		}
	}
	if !abortSeen {
		t.Errorf("no AbortMultipartUpload sent:\n%s", strings.Join(p.Log(), "\n"))
	}
	for u := range inspect(t, srv).ListIncompleteUploads(ctx, srv.Bucket, prefix+"/", true) {
		t.Errorf("incomplete multipart upload left after a failed Put: %+v", u)
	}
}

// TestS3PutIntegrity: PUT bodies are protected end to end (over plain HTTP the SDK signs a SHA-256 of
// the payload; with TLS it may send a CRC32 trailer instead): a byte flipped in transit is rejected by
// the server, never stored.
func TestS3PutIntegrity(t *testing.T) {
	srv, p, s, prefix := faultSetup(t)
	ctx := context.Background()
	var mu sync.Mutex
	var hdr http.Header
	p.inject(fault{Kind: faultSlowDown, Times: 1, Match: func(r *http.Request) bool {
		if r.Method == http.MethodPut {
			mu.Lock()
			hdr = r.Header.Clone()
			mu.Unlock()
		}
		return false // observe only
	}})
	data := bytes.Repeat([]byte("integrity "), 10000)
	if err := tiering.PutBytes(ctx, s, "ok", data); err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	sha, trailer, crc := hdr.Get("X-Amz-Content-Sha256"), hdr.Get("X-Amz-Trailer"), hdr.Get("X-Amz-Checksum-Crc32")
	mu.Unlock()
	signed := len(sha) == 64 // a hex SHA-256 of the body, not UNSIGNED-PAYLOAD / STREAMING-*
	if !signed && crc == "" && !strings.Contains(strings.ToLower(trailer), "checksum") {
		t.Errorf("PUT body unprotected: x-amz-content-sha256 %q, crc32 %q, trailer %q", sha, crc, trailer)
	}
	p.inject(fault{Kind: faultCorruptBody, Match: method("PUT"), Times: 100})
	if err := tiering.PutBytes(ctx, s, "bad", data); err == nil {
		t.Fatal("a PUT whose body was corrupted in transit succeeded")
	}
	if _, err := minioBytes(t, srv, prefix+"/bad"); err == nil {
		t.Fatal("a corrupted body was stored")
	}
}

// TestS3StalledTransfers: a server that stops reading an upload's body, or stops sending a reply's
// body, without closing the connection. Neither ResponseHeaderTimeout (it starts after the body is
// sent) nor TCP notices for minutes; StallTimeout fails the attempt and the retry succeeds.
func TestS3StalledTransfers(t *testing.T) {
	srv, p, s, prefix := faultSetup(t, func(c *tiering.S3Config) { c.StallTimeout = time.Second })
	// Larger than loopback socket buffers on both ends (several MiB each), so the client's writes
	// block once the proxy stops reading; below the multipart threshold, so one PUT.
	data := make([]byte, 48<<20)
	for i := range data {
		data[i] = byte(i*31 + i>>16)
	}
	// The context bounds a hang if the stall went unnoticed; it is far above the 1 s window.
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()

	p.inject(fault{Kind: faultStallBody, Match: method("PUT"), Times: 1, Hang: 10 * time.Minute})
	start := time.Now()
	if err := tiering.PutBytes(ctx, s, "k", data); err != nil {
		t.Fatalf("Put through a stalled body (after %v): %v\n%s", time.Since(start), err, strings.Join(p.Log(), "\n"))
	}
	t.Logf("Put through a stalled body took %v", time.Since(start))
	if n := p.count("PUT"); n != 2 {
		t.Errorf("PUT requests = %d, want 2 (stalled, retried):\n%s", n, strings.Join(p.Log(), "\n"))
	}
	if got, err := minioBytes(t, srv, prefix+"/k"); err != nil || !bytes.Equal(got, data) {
		t.Fatalf("minio-go sees %d bytes, err %v", len(got), err)
	}

	// A reply that goes silent halfway: our reader resumes the rest of the range.
	p.resetLog()
	p.inject(fault{Kind: faultStallReply, Match: method("GET"), Times: 1, Hang: 10 * time.Minute})
	got, err := tiering.ReadRange(ctx, s, "k", 0, -1)
	if err != nil || !bytes.Equal(got, data) {
		t.Fatalf("Get through a silent reply: %d bytes, %v\n%s", len(got), err, strings.Join(p.Log(), "\n"))
	}
	if n := p.count("GET"); n != 2 {
		t.Errorf("GET requests = %d, want 2 (silent, resumed):\n%s", n, strings.Join(p.Log(), "\n"))
	}
}
