package broker

import (
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/sediment-io/sediment/localstack"
	"github.com/sediment-io/sediment/tiering"
)

// putFaults is a transport in front of MinIO that fails object PUTs: every applyEvery-th one is
// applied by MinIO and then answered 500 (the object exists but the client believes it failed),
// every rejectEvery-th one is answered 503 SlowDown without reaching MinIO. Every cutGetEvery-th
// GET with a body is cut after half of it: the proxy aborts the reply, and the client sees its
// connection end mid-body.
//
// It also watches what follows a cut: a GET of the same object whose range starts where the cut
// one stopped (within the proxy's write buffer, which an aborted reply may not flush) is the
// reader resuming (counted in resumed), not the chunk being fetched again from its start.
type putFaults struct {
	next                    http.RoundTripper
	applyEvery, rejectEvery int64
	cutGetEvery             int64
	puts, applied, rejected atomic.Int64
	gets, cut, resumed      atomic.Int64
	cutRanged               atomic.Int64 // cut GETs of an object range (not listings)

	mu        sync.Mutex
	cutPoints map[string][]int64 // object path → where cut GETs stopped, not yet resumed
}

// rangeStart is the first byte of a "bytes=S-E" Range header, 0 without one.
func rangeStart(h string) int64 {
	var start int64
	fmt.Sscanf(h, "bytes=%d-", &start)
	return start
}

// noteResume counts r as a resume if it starts at most resumeSlack bytes before a cut point of its
// object, and forgets that point.
func (f *putFaults) noteResume(r *http.Request) {
	const resumeSlack = 64 << 10
	start := rangeStart(r.Header.Get("Range"))
	f.mu.Lock()
	defer f.mu.Unlock()
	pts := f.cutPoints[r.URL.Path]
	for i, at := range pts {
		if start <= at && start >= at-resumeSlack && start > 0 {
			f.cutPoints[r.URL.Path] = append(pts[:i], pts[i+1:]...)
			f.resumed.Add(1)
			return
		}
	}
}

// unresumed lists the cut points no GET has resumed, by object path (for a failure message).
func (f *putFaults) unresumed() map[string][]int64 {
	f.mu.Lock()
	defer f.mu.Unlock()
	left := map[string][]int64{}
	for path, pts := range f.cutPoints {
		if len(pts) > 0 {
			left[path] = slices.Clone(pts)
		}
	}
	return left
}

// cutBody ends a reply body with an error after left bytes; httputil.ReverseProxy then aborts the
// response (http.ErrAbortHandler), which closes the client's connection mid-body.
type cutBody struct {
	io.ReadCloser
	left int64
}

func (c *cutBody) Read(p []byte) (int, error) {
	if c.left <= 0 {
		return 0, io.ErrUnexpectedEOF
	}
	n, err := c.ReadCloser.Read(p[:min(int64(len(p)), c.left)])
	c.left -= int64(n)
	return n, err
}

func (f *putFaults) RoundTrip(r *http.Request) (*http.Response, error) {
	if r.Method == http.MethodGet && f.cutGetEvery > 0 {
		f.noteResume(r)
		resp, err := f.next.RoundTrip(r)
		// Only object bytes are cut (2xx): an error reply's body is the SDK's to read, not a range
		// the reader would resume.
		if err == nil && resp.StatusCode/100 == 2 && resp.ContentLength > 1 && f.gets.Add(1)%f.cutGetEvery == 0 {
			f.cut.Add(1)
			left := resp.ContentLength / 2
			if r.Header.Get("Range") != "" {
				f.cutRanged.Add(1)
				f.mu.Lock()
				if f.cutPoints == nil {
					f.cutPoints = map[string][]int64{}
				}
				f.cutPoints[r.URL.Path] = append(f.cutPoints[r.URL.Path], rangeStart(r.Header.Get("Range"))+left)
				f.mu.Unlock()
			}
			resp.Body = &cutBody{ReadCloser: resp.Body, left: left}
		}
		return resp, err
	}
	if r.Method != http.MethodPut {
		return f.next.RoundTrip(r)
	}
	n := f.puts.Add(1)
	fail := func(code int, s3code string) *http.Response {
		body := `<?xml version="1.0" encoding="UTF-8"?><Error><Code>` + s3code + `</Code><Message>injected</Message></Error>`
		return &http.Response{StatusCode: code, Status: http.StatusText(code), Proto: "HTTP/1.1", ProtoMajor: 1, ProtoMinor: 1,
			Header: http.Header{"Content-Type": {"application/xml"}}, Body: io.NopCloser(strings.NewReader(body)),
			ContentLength: int64(len(body)), Request: r}
	}
	if n%f.rejectEvery == 0 {
		f.rejected.Add(1)
		if r.Body != nil {
			io.Copy(io.Discard, r.Body)
			r.Body.Close()
		}
		return fail(http.StatusServiceUnavailable, "SlowDown"), nil
	}
	resp, err := f.next.RoundTrip(r)
	if err != nil || n%f.applyEvery != 0 || resp.StatusCode != http.StatusOK {
		return resp, err
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	f.applied.Add(1)
	return fail(http.StatusInternalServerError, "InternalError"), nil
}

// Faults between the broker and MinIO (PUTs applied but answered 500, PUTs refused with 503; the
// S3 client makes one attempt, so every fault fails the upload; GETs whose connection ends
// mid-body): every record stays readable, every cut read of an object resumes where it was cut,
// the manifest is contiguous, and the objects of failed attempts are collected, leaving exactly
// the manifest's objects in the bucket.
func TestTierUploadFaultsMinIO(t *testing.T) {
	srv := localstack.StartMinIO(t)
	target, err := url.Parse(srv.Endpoint)
	if err != nil {
		t.Fatal(err)
	}
	faults := &putFaults{next: http.DefaultTransport, applyEvery: 3, rejectEvery: 7, cutGetEvery: 4}
	proxy := httputil.NewSingleHostReverseProxy(target)
	proxy.Transport = faults
	// Flush every write: a cut reply has then delivered its first half, and the reader's resume
	// asks for the rest (with the reply buffered, the cut would deliver nothing, and a resume would
	// ask for the same range as a fresh read).
	proxy.FlushInterval = -1
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	hs := &http.Server{Handler: proxy}
	go hs.Serve(ln)
	t.Cleanup(func() { hs.Close() })

	bk := newMinIOBucket(t, srv, "tier-faults") // inspected straight at MinIO, around the faults
	b := newTestBroker(t, tieredConfig, bk.useStore(t, "http://"+ln.Addr().String(), 1))
	createTopic(t, b, "tf", 1, tierTopicConfigs())
	cl := newTestClient(t, b, kgo.DefaultProduceTopic("tf"), kgo.ProducerBatchCompression(kgo.NoCompression()))
	const n, size = 120, 500
	produceValues(t, cl, 0, n, size)
	p := tierPartition(t, b, "tf", 0)

	bucketKeys := func() map[string]bool {
		keys := map[string]bool{}
		for _, k := range bk.list(tiering.SegmentsRoot) {
			keys[k] = true
		}
		return keys
	}
	waitFor(t, "uploads through the faults and local retention", func() bool {
		if err := localInvariant(p); err != nil {
			t.Fatal(err)
		}
		return uploadedAndTrimmed(p)
	})
	if faults.applied.Load() == 0 || faults.rejected.Load() == 0 {
		t.Fatalf("faults injected: %d applied-but-500, %d rejected", faults.applied.Load(), faults.rejected.Load())
	}
	segs := checkManifest(t, b.meta.State(), p.topicID, 0, bk.stat)
	// The history is read back from the bucket while every 4th GET is cut mid-body.
	cutBefore := faults.cut.Load()
	consumeAllValues(t, []string{b.Addr()}, "tf", n, size)
	if faults.cut.Load() == cutBefore {
		t.Fatalf("no GET cut mid-body during the replay (%d GETs)", faults.gets.Load())
	}
	// Every applied-but-500 PUT left an object no manifest entry names; the collector removes them.
	waitFor(t, "orphans collected", func() bool {
		keys := bucketKeys()
		if len(keys) != len(b.meta.State().RemoteSegments(p.topicID, 0)) {
			return false
		}
		for _, s := range b.meta.State().RemoteSegments(p.topicID, 0) {
			if !keys[s.ObjectKey] {
				t.Fatalf("manifest entry %d..%d: object %s missing", s.BaseOffset, s.LastOffset, s.ObjectKey)
			}
		}
		return true
	})
	body := scrape(t, b)
	if v, _ := metricValue(body, "sediment_tier_orphans_deleted_total"); v == "" || v == "0" {
		t.Fatalf("sediment_tier_orphans_deleted_total = %q", v)
	}
	// /metrics counts every injected PUT fault as a backend error, and the bytes the replay read.
	if got, want := metricInt(t, body, `sediment_objectstore_backend_errors_total{operation="PutObject"}`), faults.applied.Load()+faults.rejected.Load(); got != want {
		t.Errorf("backend PutObject errors on /metrics = %d, the proxy injected %d", got, want)
	}
	var objBytes int64
	for _, s := range segs {
		objBytes += s.Size
	}
	if got := metricInt(t, body, `sediment_objectstore_bytes_total{op="get"}`); got < objBytes/2 {
		t.Errorf("GET bytes on /metrics = %d after replaying %d bytes of objects", got, objBytes)
	}
	// Every cut read of an object range was resumed where it stopped, not fetched again from its
	// start (s3Reader's resume, seen from the wire). Waited for: a read the consumer no longer
	// needs (its last Fetch in flight when it had every record) still runs, and may be cut, and
	// resume, after the replay returned.
	if faults.cutRanged.Load() == 0 {
		t.Errorf("no GET of an object range was cut mid-body")
	}
	for deadline := time.Now().Add(20 * time.Second); faults.resumed.Load() != faults.cutRanged.Load(); time.Sleep(20 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Errorf("%d GETs of object ranges cut mid-body, %d resumed from where they were cut; want all; not resumed (object → cut points): %v",
				faults.cutRanged.Load(), faults.resumed.Load(), faults.unresumed())
			break
		}
	}
	t.Logf("%d PUTs: %d applied but answered 500, %d refused with 503; %d segments committed; %d GETs, %d cut mid-body (%d object ranges), %d resumed where cut", faults.puts.Load(),
		faults.applied.Load(), faults.rejected.Load(), len(segs), faults.gets.Load(), faults.cut.Load(), faults.cutRanged.Load(), faults.resumed.Load())
}
