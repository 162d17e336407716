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
// backend (S3Store's own Stats add the HTTP-level view: retries, multipart parts). ConditionalPutter is
// passed through when the backend has it.
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
// providers and tiers differ, retries and multipart parts are not seen at this level.
var requestPricePer1000 = map[string]float64{"put": 0.005, "list": 0.005, "get": 0.0004, "head": 0.0004, "delete": 0}

// EstimatedCostUSD is the request cost of the calls counted so far.
func (m *MeteredStore) EstimatedCostUSD() float64 {
	total := 0.0
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
	fmt.Fprintln(w, "# TYPE sediment_objectstore_request_cost_usd_estimate counter")
	fmt.Fprintf(w, "sediment_objectstore_request_cost_usd_estimate %g\n", m.EstimatedCostUSD())
}

// ArchiverStats is one partition archiver's progress.
type ArchiverStats struct {
	SegmentsUploaded int64 // committed by this archiver
	BytesUploaded    int64 // object bytes committed by this archiver
	Failures         int64 // failed upload or commit attempts
	OrphansDeleted   int64
	LagSegments      int64 // closed local segments not yet (wholly) in the manifest
	LagBytes         int64 // their bytes
}

type archiverCounters struct {
	segments, bytes, failures, orphans atomic.Int64
}

// Stats returns the archiver's counters and its current upload lag. Safe to call from any goroutine.
func (a *PartitionArchiver) Stats() ArchiverStats {
	st := ArchiverStats{
		SegmentsUploaded: a.stats.segments.Load(), BytesUploaded: a.stats.bytes.Load(),
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
