package broker

import (
	"testing"

	"github.com/twmb/franz-go/pkg/kmsg"
)

// TestEveryServedVersionAnswersOnOneConnection sends every served API at every served version —
// default-valued (empty) requests, the least a client can send — on ONE connection, and expects a
// response with the right correlation id to each: valid framing never drops the connection, and no
// handler fails on empty input.
func TestEveryServedVersionAnswersOnOneConnection(t *testing.T) {
	b := newTestBroker(t)
	c := dialRaw(t, b)
	corr := int32(0)
	for _, h := range servedAPIs() {
		for v := h.min; v <= h.max; v++ {
			req := kmsg.RequestForKey(int16(h.key))
			req.SetVersion(v)
			switch r := req.(type) {
			case *kmsg.ProduceRequest:
				r.Acks = 1 // acks=0 has no response by design
			case *kmsg.FetchRequest:
				r.MaxWaitMillis = 10
			case *kmsg.ApiVersionsRequest:
				r.ClientSoftwareName, r.ClientSoftwareVersion = "test", "1"
			}
			corr++
			c.write(frame(req, corr))
			resp := req.ResponseKind()
			resp.SetVersion(v)
			got, err := c.read(resp)
			if err != nil {
				t.Fatalf("%s v%d: no valid response: %v", h.key.Name(), v, err)
			}
			if got != corr {
				t.Fatalf("%s v%d: correlation id %d, want %d", h.key.Name(), v, got, corr)
			}
		}
	}
	if got := b.metrics.panics.Load(); got != 0 {
		t.Fatalf("%d handler panics", got)
	}
	t.Logf("%d requests answered on one connection", corr)
}
