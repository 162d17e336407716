package tiering_test

import (
	"bytes"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"
)

// faultKind is what the proxy does to a matching request.
type faultKind int

const (
	faultSlowDown    faultKind = iota // answer 503 SlowDown without forwarding
	fault500                          // answer 500 InternalError without forwarding
	faultResetBody                    // forward, send the headers and half the body, then reset the connection
	faultOKThen500                    // forward (the server applies it), discard the reply, answer 500
	faultHang                         // hold the request for a while before forwarding (a timeout upstream)
	faultResetEarly                   // reset the connection before answering (request not forwarded)
	faultCorruptBody                  // flip one byte of the request body in transit, then forward
	faultStallBody                    // read 64 KiB of the request body, then stop reading (Hang or until closed)
	faultStallReply                   // forward, send the headers and half the reply body, then go silent
)

func (k faultKind) String() string {
	return [...]string{"503-slowdown", "500", "reset-mid-body", "ok-then-500", "hang", "reset-early", "corrupt-body", "stall-body", "stall-reply"}[k]
}

// fault applies to the next Times requests for which Match returns true.
type fault struct {
	Kind  faultKind
	Match func(r *http.Request) bool
	Times int
	Hang  time.Duration
}

// faultProxy is an HTTP reverse proxy in front of MinIO that injects faults. The Host header is kept
// so that SigV4 signatures made for the proxy address still verify at MinIO.
type faultProxy struct {
	t      testing.TB
	target *url.URL
	srv    *httptest.Server
	tr     *http.Transport

	closing chan struct{} // closed at cleanup: stalled handlers give up

	mu     sync.Mutex
	faults []*fault
	log    []string // "METHOD path?query -> outcome", in arrival order
}

func newFaultProxy(t testing.TB, target string) *faultProxy {
	u, err := url.Parse(target)
	if err != nil {
		t.Fatal(err)
	}
	p := &faultProxy{t: t, target: u, tr: &http.Transport{MaxIdleConnsPerHost: 32}, closing: make(chan struct{})}
	p.srv = httptest.NewServer(p) // 127.0.0.1:0
	t.Cleanup(func() { close(p.closing); p.srv.Close(); p.tr.CloseIdleConnections() })
	return p
}

func (p *faultProxy) URL() string { return p.srv.URL }

func (p *faultProxy) inject(f fault) {
	if f.Times == 0 {
		f.Times = 1
	}
	p.mu.Lock()
	p.faults = append(p.faults, &f)
	p.mu.Unlock()
}

// Log returns the requests seen so far.
func (p *faultProxy) Log() []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]string(nil), p.log...)
}

func (p *faultProxy) resetLog() {
	p.mu.Lock()
	p.log = nil
	p.mu.Unlock()
}

// count returns how many logged requests start with prefix ("PUT", "GET ...").
func (p *faultProxy) count(prefix string) int {
	n := 0
	for _, l := range p.Log() {
		if strings.HasPrefix(l, prefix) {
			n++
		}
	}
	return n
}

func (p *faultProxy) pick(r *http.Request) *fault {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, f := range p.faults {
		if f.Times > 0 && (f.Match == nil || f.Match(r)) {
			f.Times--
			return f
		}
	}
	return nil
}

func (p *faultProxy) record(r *http.Request, outcome string) {
	p.mu.Lock()
	p.log = append(p.log, fmt.Sprintf("%s %s -> %s", r.Method, r.URL.RequestURI(), outcome))
	p.mu.Unlock()
}

func s3Error(w http.ResponseWriter, status int, code string) {
	w.Header().Set("Content-Type", "application/xml")
	w.WriteHeader(status)
	fmt.Fprintf(w, `<?xml version="1.0" encoding="UTF-8"?><Error><Code>%s</Code><Message>injected by faultProxy</Message></Error>`, code)
}

func reset(w http.ResponseWriter) {
	conn, _, err := w.(http.Hijacker).Hijack()
	if err != nil {
		return
	}
	if tc, ok := conn.(*net.TCPConn); ok {
		tc.SetLinger(0) // RST, not FIN
	}
	conn.Close()
}

func (p *faultProxy) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	f := p.pick(r)
	if f != nil {
		switch f.Kind {
		case faultSlowDown:
			io.Copy(io.Discard, r.Body)
			p.record(r, "503 (injected)")
			s3Error(w, 503, "SlowDown")
			return
		case fault500:
			io.Copy(io.Discard, r.Body)
			p.record(r, "500 (injected)")
			s3Error(w, 500, "InternalError")
			return
		case faultResetEarly:
			io.Copy(io.Discard, r.Body)
			p.record(r, "reset (injected)")
			reset(w)
			return
		case faultStallBody:
			// The client's socket buffers fill and its writes block: only a write-side timeout
			// notices. Afterwards the body read fails if the client gave up and closed.
			io.CopyN(io.Discard, r.Body, 64<<10)
			p.record(r, "stopped reading the body (injected)")
			p.stall(f.Hang)
			io.Copy(io.Discard, r.Body)
			s3Error(w, 500, "InternalError")
			return
		case faultHang:
			select {
			case <-time.After(f.Hang):
			case <-r.Context().Done():
				p.record(r, "hung, client gave up (injected)")
				return
			}
		}
	}
	if f != nil && f.Kind == faultCorruptBody {
		body, _ := io.ReadAll(r.Body)
		if len(body) > 0 {
			body[len(body)/2] ^= 0x01
		}
		r.Body = io.NopCloser(bytes.NewReader(body))
	}
	out := r.Clone(r.Context())
	out.URL.Scheme, out.URL.Host = p.target.Scheme, p.target.Host
	out.RequestURI = ""
	out.Host = r.Host
	resp, err := p.tr.RoundTrip(out)
	if err != nil {
		p.record(r, "upstream error "+err.Error())
		http.Error(w, err.Error(), http.StatusBadGateway)
		return
	}
	defer resp.Body.Close()
	if f != nil && f.Kind == faultOKThen500 {
		io.Copy(io.Discard, resp.Body)
		p.record(r, fmt.Sprintf("%d upstream, answered 500 (injected)", resp.StatusCode))
		s3Error(w, 500, "InternalError")
		return
	}
	for k, vs := range resp.Header {
		for _, v := range vs {
			w.Header().Add(k, v)
		}
	}
	w.WriteHeader(resp.StatusCode)
	if f != nil && f.Kind == faultResetBody && resp.ContentLength > 1 {
		p.record(r, fmt.Sprintf("%d, reset after %d of %d body bytes (injected)", resp.StatusCode, resp.ContentLength/2, resp.ContentLength))
		io.CopyN(w, resp.Body, resp.ContentLength/2)
		w.(http.Flusher).Flush()
		reset(w)
		return
	}
	if f != nil && f.Kind == faultStallReply && resp.ContentLength > 1 {
		p.record(r, fmt.Sprintf("%d, silent after %d of %d body bytes (injected)", resp.StatusCode, resp.ContentLength/2, resp.ContentLength))
		io.CopyN(w, resp.Body, resp.ContentLength/2)
		w.(http.Flusher).Flush()
		p.stall(f.Hang)
		return
	}
	// Logged before the body is sent: the client may act on the reply before this handler returns.
	p.record(r, fmt.Sprint(resp.StatusCode))
	io.Copy(w, resp.Body)
}

// stall waits for d or until the proxy closes.
func (p *faultProxy) stall(d time.Duration) {
	select {
	case <-time.After(d):
	case <-p.closing:
	}
}

// Matchers.
func method(m string) func(*http.Request) bool {
	return func(r *http.Request) bool { return r.Method == m }
}

func isUploadPart(r *http.Request) bool {
	return r.Method == http.MethodPut && r.URL.Query().Has("partNumber")
}

func isCompleteMultipart(r *http.Request) bool {
	return r.Method == http.MethodPost && r.URL.Query().Has("uploadId")
}
