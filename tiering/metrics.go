package tiering

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sort"
	"sync"
	"sync/atomic"
)

// MeteredStore counts a Store's calls, failures and bytes by operation, for /metrics. It wraps any
// backend; a backend that counts its own requests (RequestCounter: S3Store, which sees multipart
// parts and retries) has those exported too, and the cost estimate is based on them. ConditionalPutter
// is passed through when the backend has it.
type MeteredStore struct {
	Store
	mu  sync.Mutex
	ops map[string]*opCounters
}

type opCounters struct {
	calls, errors, bytes atomic.Int64
}

// NewMeteredStore wraps s.
func NewMeteredStore(s Store) *MeteredStore {
	m := &MeteredStore{Store: s, ops: map[string]*opCounters{}}
	for _, op := range []string{"put", "get", "head", "list", "delete"} {
		m.ops[op] = &opCounters{}
	}
	return m
}

func (m *MeteredStore) count(op string, n int64, err error) {
	c := m.ops[op]
	c.calls.Add(1)
	c.bytes.Add(n)
	if err != nil && !errors.Is(err, ErrNotFound) && !errors.Is(err, ErrExists) && !errors.Is(err, context.Canceled) {
		c.errors.Add(1)
	}
}

func (m *MeteredStore) Put(ctx context.Context, key string, body io.ReaderAt, size int64) error {
	err := m.Store.Put(ctx, key, body, size)
	m.count("put", size, err)
	return err
}

// PutIfAbsent forwards to the backend's conditional put (ErrUnsupported wrapped when it has none).
func (m *MeteredStore) PutIfAbsent(ctx context.Context, key string, body io.ReaderAt, size int64) error {
	cp, ok := m.Store.(ConditionalPutter)
	if !ok {
		return fmt.Errorf("tiering: conditional put: %w", errors.ErrUnsupported)
	}
	err := cp.PutIfAbsent(ctx, key, body, size)
	m.count("put", size, err)
	return err
}

type meteredReader struct {
	io.ReadCloser
	c *opCounters
}

func (r meteredReader) Read(p []byte) (int, error) {
	n, err := r.ReadCloser.Read(p)
	r.c.bytes.Add(int64(n))
	if err != nil && err != io.EOF {
		r.c.errors.Add(1)
	}
	return n, err
}

func (m *MeteredStore) Get(ctx context.Context, key string, off, n int64) (io.ReadCloser, error) {
	rc, err := m.Store.Get(ctx, key, off, n)
	m.count("get", 0, err)
	if err != nil {
		return nil, err
	}
	return meteredReader{rc, m.ops["get"]}, nil
}

func (m *MeteredStore) Head(ctx context.Context, key string) (ObjectInfo, error) {
	i, err := m.Store.Head(ctx, key)
	m.count("head", 0, err)
	return i, err
}

func (m *MeteredStore) List(ctx context.Context, prefix string) ([]ObjectInfo, error) {
	is, err := m.Store.List(ctx, prefix)
	m.count("list", 0, err)
	return is, err
}

func (m *MeteredStore) Delete(ctx context.Context, key string) error {
	err := m.Store.Delete(ctx, key)
	m.count("delete", 0, err)
	return err
}

// Request prices used for the cost estimate: S3 Standard, us-east-1, USD per 1,000 requests
// (PUT/COPY/POST/LIST 0.005; GET/HEAD and others 0.0004; DELETE free). An estimate: other
// providers and tiers differ. requestPricePer1000 prices Store calls, for backends that do not
// count their requests; s3RequestPricePer1000 prices the S3 operations S3Store sends (a multipart
// Put is Create + one UploadPart per part + Complete; retries are separate requests).
var (
	requestPricePer1000   = map[string]float64{"put": 0.005, "list": 0.005, "get": 0.0004, "head": 0.0004, "delete": 0}
	s3RequestPricePer1000 = map[string]float64{
		"PutObject": 0.005, "CreateMultipartUpload": 0.005, "UploadPart": 0.005, "CompleteMultipartUpload": 0.005,
		"ListObjectsV2": 0.005, "GetObject": 0.0004, "HeadObject": 0.0004, "DeleteObject": 0, "AbortMultipartUpload": 0,
		"ListMultipartUploads": 0.005,
	}
)

// s3RequestPrice is the USD price of one billed request of an S3 operation. An operation not in
// the table is priced at the higher (PUT/LIST) rate, so the estimate errs high.
func s3RequestPrice(op string) float64 {
	p, ok := s3RequestPricePer1000[op]
	if !ok {
		p = 0.005
	}
	return p / 1000
}

// RequestCount is what a backend sent for one operation.
type RequestCount struct {
	Requests int64   // requests sent, every attempt included
	Retries  int64   // attempts after the first (the SDK's retryer)
	Errors   int64   // requests without an answer or answered with a 5xx status
	Billed   int64   // requests the provider bills (S3: answered, status below 500)
	PriceUSD float64 // price of one billed request
}

// RequestCounter is an optional capability of a backend that sees the billable requests behind each
// Store call (S3Store). MeteredStore then exports those counts and prices them instead of the calls,
// which undercount: one Put of a large object is several requests, and any call may be retried.
// A Store wrapping another passes the capability on by an Unwrap() Store method.
type RequestCounter interface {
	RequestCounts() map[string]RequestCount // by operation name
}

// requestCounter finds the RequestCounter under s, following Unwrap() Store methods.
func requestCounter(s Store) RequestCounter {
	rc, _ := capability[RequestCounter](s)
	return rc
}

// Unwrap returns the wrapped store.
func (m *MeteredStore) Unwrap() Store { return m.Store }

// EstimatedCostUSD is the request cost so far: the backend's billed requests when it counts them
// (RequestCounter), else the Store calls counted here.
func (m *MeteredStore) EstimatedCostUSD() float64 {
	total := 0.0
	if rc := requestCounter(m.Store); rc != nil {
		for _, c := range rc.RequestCounts() {
			total += float64(c.Billed) * c.PriceUSD
		}
		return total
	}
	for op, c := range m.ops {
		total += float64(c.calls.Load()) * requestPricePer1000[op] / 1000
	}
	return total
}

// WriteMetrics writes Prometheus text-format lines (broker-core's collector hook takes this).
func (m *MeteredStore) WriteMetrics(w io.Writer) {
	ops := make([]string, 0, len(m.ops))
	for op := range m.ops {
		ops = append(ops, op)
	}
	sort.Strings(ops)
	fmt.Fprintln(w, "# HELP sediment_objectstore_requests_total Object-store calls by Store operation (one Put may be several backend requests; see sediment_objectstore_backend_requests_total).")
	fmt.Fprintln(w, "# TYPE sediment_objectstore_requests_total counter")
	for _, op := range ops {
		fmt.Fprintf(w, "sediment_objectstore_requests_total{op=%q} %d\n", op, m.ops[op].calls.Load())
	}
	fmt.Fprintln(w, "# TYPE sediment_objectstore_errors_total counter")
	for _, op := range ops {
		fmt.Fprintf(w, "sediment_objectstore_errors_total{op=%q} %d\n", op, m.ops[op].errors.Load())
	}
	fmt.Fprintln(w, "# TYPE sediment_objectstore_bytes_total counter")
	fmt.Fprintf(w, "sediment_objectstore_bytes_total{op=\"put\"} %d\n", m.ops["put"].bytes.Load())
	fmt.Fprintf(w, "sediment_objectstore_bytes_total{op=\"get\"} %d\n", m.ops["get"].bytes.Load())
	basis := "Store calls (this backend does not count its requests)"
	if rc := requestCounter(m.Store); rc != nil {
		basis = "the backend's billed requests (multipart parts and retries included; 5xx answers are not billed)"
		counts := rc.RequestCounts()
		names := make([]string, 0, len(counts))
		for op := range counts {
			names = append(names, op)
		}
		sort.Strings(names)
		for _, f := range []struct {
			name, help string
			v          func(RequestCount) int64
		}{
			{"sediment_objectstore_backend_requests_total", "Requests the object-store backend sent, by S3 operation, every attempt included.", func(c RequestCount) int64 { return c.Requests }},
			{"sediment_objectstore_backend_retries_total", "Backend requests that were retries of an earlier attempt, by S3 operation.", func(c RequestCount) int64 { return c.Retries }},
			{"sediment_objectstore_backend_errors_total", "Backend requests that got no answer or a 5xx status, by S3 operation.", func(c RequestCount) int64 { return c.Errors }},
			{"sediment_objectstore_backend_billed_requests_total", "Backend requests the provider bills (answered with a status below 500), by S3 operation.", func(c RequestCount) int64 { return c.Billed }},
		} {
			fmt.Fprintf(w, "# HELP %s %s\n# TYPE %s counter\n", f.name, f.help, f.name)
			for _, op := range names {
				fmt.Fprintf(w, "%s{operation=%q} %d\n", f.name, op, f.v(counts[op]))
			}
		}
	}
	fmt.Fprintf(w, "# HELP sediment_objectstore_request_cost_usd_estimate Request cost in USD at S3 Standard us-east-1 prices, from %s.\n", basis)
	fmt.Fprintln(w, "# TYPE sediment_objectstore_request_cost_usd_estimate counter")
	fmt.Fprintf(w, "sediment_objectstore_request_cost_usd_estimate %g\n", m.EstimatedCostUSD())
}

// ArchiverStats is one partition archiver's progress.
type ArchiverStats struct {
	SegmentsUploaded int64 // committed by this archiver
	BytesUploaded    int64 // object bytes committed by this archiver
	SegmentBytes     int64 // segment (logical, uncompressed) bytes those objects hold
	Failures         int64 // failed upload or commit attempts
	OrphansDeleted   int64
	LagSegments      int64 // closed local segments not yet (wholly) in the manifest
	LagBytes         int64 // their bytes
}

type archiverCounters struct {
	segments, bytes, logical, failures, orphans atomic.Int64
}

// Stats returns the archiver's counters and its current upload lag. Safe to call from any goroutine.
func (a *PartitionArchiver) Stats() ArchiverStats {
	st := ArchiverStats{
		SegmentsUploaded: a.stats.segments.Load(), BytesUploaded: a.stats.bytes.Load(), SegmentBytes: a.stats.logical.Load(),
		Failures: a.stats.failures.Load(), OrphansDeleted: a.stats.orphans.Load(),
	}
	up := a.Uploaded()
	for _, s := range a.log.Segments() {
		if s.Closed && s.NextOffset > up {
			st.LagSegments++
			st.LagBytes += s.Size
		}
	}
	return st
}
