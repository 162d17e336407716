package broker

import (
	"strings"
	"testing"

	"github.com/twmb/franz-go/pkg/kmsg"
)

// withWriterPanic makes the response writer panic while encoding any response whose correlation
// id is corr (the seam is global: tests using it are not parallel).
func withWriterPanic(t *testing.T, corr int32) {
	t.Helper()
	hook := func(r response) {
		if r.corr == corr {
			panic("injected writer panic")
		}
	}
	writeHook.Store(&hook)
	t.Cleanup(func() { writeHook.Store(nil) })
}

// A panic in the connection's writer goroutine (response encoding, fetch splicing, the write) does
// not take the process down: it is logged once, counted in sediment_handler_panics_total, and only
// that connection is closed. Other connections, and new ones, are served. Checked for a response
// answered at once (ApiVersions) and for a deferred one (an acks=1 produce, written after its
// durability wait).
func TestWriterPanicClosesOnlyThatConnection(t *testing.T) {
	var logs *capturedLog
	b := newTestBroker(t, func(c *Config) { logs = captureLogs(c) })
	createTopic(t, b, "wp", 1, nil)
	// The raw produce below is not retried: wait until this broker leads the partition (it opens
	// it after the topic's creation commits), or the produce is refused and nothing is appended.
	waitFor(t, "wp/0 led here", func() bool {
		mt, ok := b.meta.State().Topic("wp")
		if !ok {
			return false
		}
		p, _, code := b.replicas.lookupIn(mt, 0)
		return code == 0 && p.checkLeader(-1) == 0 // what Produce checks
	})
	const bad = 0x5ed1
	withWriterPanic(t, bad)

	apiVersions := func(rc *rawConn, corr int32) {
		t.Helper()
		req := kmsg.NewPtrApiVersionsRequest()
		req.Version = 0
		rc.write(frame(req, corr))
		resp := kmsg.NewPtrApiVersionsResponse()
		resp.Version = 0
		if got, err := rc.read(resp); err != nil || got != corr || resp.ErrorCode != 0 {
			t.Fatalf("ApiVersions corr %d: got corr %d, err %v, code %d", corr, got, err, resp.ErrorCode)
		}
	}
	other := dialRaw(t, b)
	apiVersions(other, 1)

	victim := dialRaw(t, b)
	apiVersions(victim, 2) // served normally before the panic
	req := kmsg.NewPtrApiVersionsRequest()
	req.Version = 0
	victim.write(frame(req, bad))
	victim.expectClosed()

	// The deferred path: a produce answered after its wait.
	victim2 := dialRaw(t, b)
	victim2.write(frame(produceReq(b, "wp", 1, testBatch(t, testBatchOpts{records: 2})), bad))
	victim2.expectClosed()

	apiVersions(other, 3)         // the other connection is untouched
	apiVersions(dialRaw(t, b), 4) // and new ones are served
	if got := b.metrics.panics.Load(); got != 2 {
		t.Fatalf("panics counted %d, want 2", got)
	}
	lines := logs.withMsg(t, "response writer panic: closing the connection", nil)
	if len(lines) != 2 {
		t.Fatalf("%d writer-panic log lines, want 2 (one per panic)", len(lines))
	}
	if lines[0]["api"] != "ApiVersions" || lines[1]["api"] != "Produce" || lines[0]["corr"] != float64(bad) ||
		!strings.Contains(lines[0]["panic"].(string), "injected writer panic") {
		t.Fatalf("writer-panic log lines: %v", lines)
	}
	// The produce itself was appended before its response failed to encode (as for a lost
	// response: the client retries; an idempotent one would be deduplicated).
	if end := endOffset(t, b, "wp"); end != 2 {
		t.Fatalf("end offset %d, want 2", end)
	}
}
