package broker

// The HTTP endpoint: /metrics (Prometheus text exposition format 0.0.4), /healthz (the process is
// up) and /readyz (the broker serves Kafka: started, metadata has a leader, not shutting down).
//
// The exposition is hand-rolled rather than github.com/prometheus/client_golang: the broker exports
// a handful of counters, gauges and one histogram family, all kept in atomics on the hot path; the
// text format is small and stable, and it avoids pulling a large dependency tree into every build.

import (
	"fmt"
	"io"
	"math"
	"net/http"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/twmb/franz-go/pkg/kmsg"
)

// latencyBuckets are the upper bounds (seconds) of the request latency histogram.
var latencyBuckets = []float64{0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30}

const maxAPIKey = 128

type apiStats struct {
	requests atomic.Int64
	errors   atomic.Int64 // requests that closed the connection (handler Go error)
	sumNanos atomic.Int64
	buckets  [16]atomic.Int64 // len(latencyBuckets)+1 (+Inf)
}

type metrics struct {
	start       time.Time
	connsActive atomic.Int64
	connsTotal  atomic.Int64
	bytesIn     atomic.Int64
	bytesOut    atomic.Int64
	frameErrors atomic.Int64
	panics      atomic.Int64
	apis        [maxAPIKey]apiStats

	mu         sync.Mutex
	collectors []func(w io.Writer)
}

func newMetrics() *metrics { return &metrics{start: time.Now()} }

func (m *metrics) observe(key int16, d time.Duration, failed bool) {
	if key < 0 || int(key) >= maxAPIKey {
		return
	}
	s := &m.apis[key]
	s.requests.Add(1)
	if failed {
		s.errors.Add(1)
	}
	s.sumNanos.Add(int64(d))
	sec := d.Seconds()
	i := sort.SearchFloat64s(latencyBuckets, sec) // first bucket with bound >= sec
	s.buckets[i].Add(1)
}

// addCollector lets other parts of the broker (replica manager, fetch sessions) append their own
// metric families to /metrics. fn writes complete exposition lines (# HELP, # TYPE, samples).
func (m *metrics) addCollector(fn func(w io.Writer)) {
	m.mu.Lock()
	m.collectors = append(m.collectors, fn)
	m.mu.Unlock()
}

func (m *metrics) writeTo(w io.Writer, ready bool) {
	family(w, "sediment_ready", "gauge", "1 while the broker serves Kafka requests (started, not shutting down), else 0.")
	r := 0
	if ready {
		r = 1
	}
	fmt.Fprintf(w, "sediment_ready %d\n", r)
	family(w, "sediment_uptime_seconds", "gauge", "Seconds since the broker started.")
	fmt.Fprintf(w, "sediment_uptime_seconds %g\n", time.Since(m.start).Seconds())
	family(w, "sediment_connections_active", "gauge", "Open Kafka client connections.")
	fmt.Fprintf(w, "sediment_connections_active %d\n", m.connsActive.Load())
	family(w, "sediment_connections_total", "counter", "Kafka client connections accepted.")
	fmt.Fprintf(w, "sediment_connections_total %d\n", m.connsTotal.Load())
	family(w, "sediment_network_received_bytes_total", "counter", "Request bytes read, framing included.")
	fmt.Fprintf(w, "sediment_network_received_bytes_total %d\n", m.bytesIn.Load())
	family(w, "sediment_network_sent_bytes_total", "counter", "Response bytes written, framing included.")
	fmt.Fprintf(w, "sediment_network_sent_bytes_total %d\n", m.bytesOut.Load())
	family(w, "sediment_invalid_frames_total", "counter", "Request frames refused (size, header, API/version not served, undecodable body); each closed its connection.")
	fmt.Fprintf(w, "sediment_invalid_frames_total %d\n", m.frameErrors.Load())
	family(w, "sediment_handler_panics_total", "counter", "Panics recovered in request handlers and in the response writer (always a bug; the writer closes that connection).")
	fmt.Fprintf(w, "sediment_handler_panics_total %d\n", m.panics.Load())

	family(w, "sediment_requests_total", "counter", "Kafka requests handled, by API.")
	m.eachAPI(func(api string, s *apiStats) {
		fmt.Fprintf(w, "sediment_requests_total{api=%q} %d\n", api, s.requests.Load())
	})
	family(w, "sediment_request_failures_total", "counter", "Kafka requests whose handler closed the connection, by API.")
	m.eachAPI(func(api string, s *apiStats) {
		fmt.Fprintf(w, "sediment_request_failures_total{api=%q} %d\n", api, s.errors.Load())
	})
	family(w, "sediment_request_duration_seconds", "histogram", "Time from a request decoded to its response queued, by API.")
	m.eachAPI(func(api string, s *apiStats) {
		var cum int64
		for i, ub := range latencyBuckets {
			cum += s.buckets[i].Load()
			fmt.Fprintf(w, "sediment_request_duration_seconds_bucket{api=%q,le=%q} %d\n", api, formatFloat(ub), cum)
		}
		cum += s.buckets[len(latencyBuckets)].Load()
		fmt.Fprintf(w, "sediment_request_duration_seconds_bucket{api=%q,le=\"+Inf\"} %d\n", api, cum)
		fmt.Fprintf(w, "sediment_request_duration_seconds_sum{api=%q} %g\n", api, float64(s.sumNanos.Load())/1e9)
		fmt.Fprintf(w, "sediment_request_duration_seconds_count{api=%q} %d\n", api, cum)
	})

	m.mu.Lock()
	cs := append([]func(io.Writer){}, m.collectors...)
	m.mu.Unlock()
	for _, c := range cs {
		c(w)
	}
}

// eachAPI visits the served APIs (registry order), so every family has the same label set.
func (m *metrics) eachAPI(fn func(api string, s *apiStats)) {
	for _, h := range servedAPIs() {
		if int(h.key) < maxAPIKey {
			fn(kmsg.NameForKey(int16(h.key)), &m.apis[h.key])
		}
	}
}

func family(w io.Writer, name, typ, help string) {
	fmt.Fprintf(w, "# HELP %s %s\n# TYPE %s %s\n", name, strings.ReplaceAll(help, "\n", " "), name, typ)
}

func formatFloat(f float64) string {
	if math.IsInf(f, 1) {
		return "+Inf"
	}
	return fmt.Sprintf("%g", f)
}

func (b *Broker) startHTTP() {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /metrics", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain; version=0.0.4; charset=utf-8")
		b.metrics.writeTo(w, b.ready.Load())
	})
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, "ok\n")
	})
	mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, r *http.Request) {
		if !b.ready.Load() {
			http.Error(w, "not ready: starting or shutting down", http.StatusServiceUnavailable)
			return
		}
		if _, ok := b.meta.LeaderID(); !ok {
			http.Error(w, "not ready: no metadata (Raft) leader", http.StatusServiceUnavailable)
			return
		}
		io.WriteString(w, "ready\n")
	})
	b.httpSrv = &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	go func() {
		if err := b.httpSrv.Serve(b.httpLn); err != nil && err != http.ErrServerClosed {
			b.log.Error("http server stopped", "err", err)
		}
	}()
}
