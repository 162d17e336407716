package tiering_test

import (
	"bytes"
	"context"
	"fmt"
	"math"
	"net/http"
	"strconv"
	"strings"
	"testing"

	"github.com/sediment-io/sediment/tiering"
)

// TestS3RequestCountsAndCost: the S3 store counts the requests it really sends, by S3 operation
// (multipart Create/parts/Complete, SDK retries), MeteredStore exports them on its metrics, and the
// cost estimate prices the billed ones (5xx answers are not billed by S3) instead of Store calls.
// The fault proxy's own log is the independent count of what went over the wire.
func TestS3RequestCountsAndCost(t *testing.T) {
	_, p, s, _ := faultSetup(t, func(c *tiering.S3Config) {
		c.MultipartThreshold, c.PartSize, c.PartConcurrency = 5<<20, 5<<20, 1
	})
	m := tiering.NewMeteredStore(s)
	ctx := context.Background()
	big := bytes.Repeat([]byte("0123456789abcdef"), (12<<20)/16) // 12 MiB: 3 parts
	p.inject(fault{Kind: faultSlowDown, Match: isUploadPart, Times: 2})
	if err := tiering.PutBytes(ctx, m, "big", big); err != nil {
		t.Fatal(err)
	}
	if err := tiering.PutBytes(ctx, m, "small", []byte("hello")); err != nil {
		t.Fatal(err)
	}
	p.inject(fault{Kind: fault500, Match: method(http.MethodGet), Times: 1})
	if got, err := tiering.ReadRange(ctx, m, "small", 1, 3); err != nil || string(got) != "ell" {
		t.Fatalf("ReadRange = %q, %v", got, err)
	}
	if _, err := m.Head(ctx, "big"); err != nil {
		t.Fatal(err)
	}
	if _, err := m.List(ctx, ""); err != nil {
		t.Fatal(err)
	}
	if err := m.Delete(ctx, "small"); err != nil {
		t.Fatal(err)
	}

	// What the proxy saw: 1 small PUT + 3 parts + 2 refused part attempts; Create + Complete; the
	// refused GET and its retry, the LIST; one HEAD; one DELETE.
	if put, post, get, head, del := p.count("PUT"), p.count("POST"), p.count("GET"), p.count("HEAD"), p.count("DELETE"); put != 6 || post != 2 || get != 3 || head != 1 || del != 1 {
		t.Fatalf("proxy saw PUT %d POST %d GET %d HEAD %d DELETE %d:\n%s", put, post, get, head, del, strings.Join(p.Log(), "\n"))
	}
	type want struct{ requests, retries, errors, billed int64 }
	wantOps := map[string]want{
		"CreateMultipartUpload":   {1, 0, 0, 1},
		"UploadPart":              {5, 2, 2, 3},
		"CompleteMultipartUpload": {1, 0, 0, 1},
		"PutObject":               {1, 0, 0, 1},
		"GetObject":               {2, 1, 1, 1},
		"HeadObject":              {1, 0, 0, 1},
		"ListObjectsV2":           {1, 0, 0, 1},
		"DeleteObject":            {1, 0, 0, 1},
		"AbortMultipartUpload":    {0, 0, 0, 0},
	}
	ops := s.Stats().Ops
	for op, w := range wantOps {
		c := ops[op]
		if got := (want{c.Requests, c.Retries, c.Errors, c.Billed}); got != w {
			t.Errorf("%s: requests/retries/errors/billed %v, want %v", op, got, w)
		}
	}
	if len(ops) != len(wantOps)-1 { // Abort was never sent
		t.Errorf("operations counted: %v", ops)
	}

	var buf bytes.Buffer
	m.WriteMetrics(&buf)
	out := buf.String()
	for op, w := range wantOps {
		for _, l := range []string{
			fmt.Sprintf(`sediment_objectstore_backend_requests_total{operation=%q} %d`, op, w.requests),
			fmt.Sprintf(`sediment_objectstore_backend_retries_total{operation=%q} %d`, op, w.retries),
			fmt.Sprintf(`sediment_objectstore_backend_errors_total{operation=%q} %d`, op, w.errors),
			fmt.Sprintf(`sediment_objectstore_backend_billed_requests_total{operation=%q} %d`, op, w.billed),
		} {
			if !strings.Contains(out, l+"\n") {
				t.Errorf("metrics lack %q", l)
			}
		}
	}
	// The Store-call view undercounts: 2 puts for 7 billed PUT/POST-class requests.
	if !strings.Contains(out, `sediment_objectstore_requests_total{op="put"} 2`+"\n") {
		t.Errorf("store-call metrics changed:\n%s", out)
	}
	// Billed: Create + 3 parts + Complete + PutObject + List at $0.005/1000; the GET that answered
	// and the HEAD at $0.0004/1000; DELETE free; the three 5xx answers not at all.
	wantCost := (7*0.005 + 2*0.0004) / 1000
	if got := m.EstimatedCostUSD(); math.Abs(got-wantCost) > wantCost*1e-9 {
		t.Errorf("cost estimate %g, want %g", got, wantCost)
	}
	line := ""
	for _, l := range strings.Split(out, "\n") {
		if v, ok := strings.CutPrefix(l, "sediment_objectstore_request_cost_usd_estimate "); ok {
			line = v
		}
	}
	if v, err := strconv.ParseFloat(line, 64); err != nil || math.Abs(v-wantCost) > wantCost*1e-6 {
		t.Errorf("cost estimate on the metrics %q, want %g", line, wantCost)
	}
}

// TestMeteredStoreFindsWrappedRequestCounter: a store wrapping the S3 store passes its request
// counts on through Unwrap; one that does not is priced by Store calls.
func TestMeteredStoreFindsWrappedRequestCounter(t *testing.T) {
	srv := needMinIO(t)
	s := newS3(t, srv, srv.Endpoint, uniquePrefix(t))
	ctx := context.Background()
	wrapped := tiering.NewMeteredStore(unwrapStore{s})
	hidden := tiering.NewMeteredStore(hideStore{s})
	if err := tiering.PutBytes(ctx, wrapped, "k", []byte("v")); err != nil {
		t.Fatal(err)
	}
	var a, b bytes.Buffer
	wrapped.WriteMetrics(&a)
	hidden.WriteMetrics(&b)
	if !strings.Contains(a.String(), `sediment_objectstore_backend_requests_total{operation="PutObject"} 1`+"\n") {
		t.Errorf("wrapped store: backend counts missing:\n%s", a.String())
	}
	if strings.Contains(b.String(), "sediment_objectstore_backend_requests_total{") {
		t.Errorf("store without Unwrap: backend counts exported:\n%s", b.String())
	}
	if got, want := wrapped.EstimatedCostUSD(), 0.005/1000; math.Abs(got-want) > want*1e-9 {
		t.Errorf("wrapped cost %g, want %g (one billed PutObject)", got, want)
	}
	if got := hidden.EstimatedCostUSD(); got != 0 { // no call went through this MeteredStore
		t.Errorf("hidden cost %g, want 0", got)
	}
}

type unwrapStore struct{ tiering.Store }

func (u unwrapStore) Unwrap() tiering.Store { return u.Store }

type hideStore struct{ tiering.Store }
