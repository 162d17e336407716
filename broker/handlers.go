package broker

import (
	"context"
	"fmt"
	"sort"

	"github.com/twmb/franz-go/pkg/kmsg"
)

// handlerFunc serves one decoded request. It returns the response to send, (nil, nil) for no
// response (Produce with acks=0), or a Go error when the connection cannot continue (it is then
// closed). Kafka-level failures are never Go errors: they are error codes inside the response.
//
// The response must be req.ResponseKind() (or an equivalent value) at req.GetVersion(); the
// connection layer sets the version again before encoding, so a handler cannot get that wrong.
//
// Deferred responses: a handler whose request has done its ordered part (Produce: the appends) but
// must still wait for something that does not need the connection (durability, the ISR) returns a
// *deferredResponse instead of blocking. The connection then reads and handles the next request
// while wait runs on its own goroutine, and writes the response, in request order, once wait has
// returned. Everything a later request must observe has to be done before the handler returns;
// wait may only complete the response (error codes, offsets) and must end when ctx ends (or its
// own timeout).
type handlerFunc func(b *Broker, ctx context.Context, c *connCtx, req kmsg.Request) (kmsg.Response, error)

// deferredResponse is a response completed later: the connection calls wait exactly once, on a
// goroutine of its own, right after the handler returned, and encodes Response only after wait
// has returned (wait may write to it until then). Response's version is set by the connection
// layer as for any response. At most maxPipelined deferred responses are pending per connection;
// beyond that the connection stops reading (see conn.go).
type deferredResponse struct {
	kmsg.Response
	wait func()
}

// apiHandler is one registry entry: an API key, the versions served, and the handler.
type apiHandler struct {
	key      kmsg.Key
	min, max int16
	fn       handlerFunc
}

// apiHandlers is filled by register from each API file's init() and never changes after that,
// so it is read without locks.
var apiHandlers = map[int16]*apiHandler{}

// register is called from the init() of the file serving API key `key` (e.g. 00_produce.go):
//
//	func init() { register(kmsg.Produce, 3, 11, (*Broker).handleProduce) }
//
// minV..maxV are the versions served; ApiVersions advertises exactly these. A version outside the
// range is refused the way Kafka refuses it (see conn.go). Registering a key twice, a range kmsg
// cannot decode, or an empty range is a programming error and panics at start.
func register(key kmsg.Key, minV, maxV int16, fn handlerFunc) {
	req := kmsg.RequestForKey(int16(key))
	switch {
	case req == nil:
		panic(fmt.Sprintf("broker: register: kmsg does not know API key %d", key))
	case apiHandlers[int16(key)] != nil:
		panic(fmt.Sprintf("broker: register: API key %d (%s) registered twice", key, key.Name()))
	case minV < 0 || minV > maxV || maxV > req.MaxVersion():
		panic(fmt.Sprintf("broker: register: %s versions %d..%d invalid (kmsg max %d)", key.Name(), minV, maxV, req.MaxVersion()))
	case fn == nil:
		panic(fmt.Sprintf("broker: register: %s: nil handler", key.Name()))
	}
	apiHandlers[int16(key)] = &apiHandler{key: key, min: minV, max: maxV, fn: fn}
}

// lookupHandler returns the handler for key, if registered.
func lookupHandler(key int16) (*apiHandler, bool) {
	h, ok := apiHandlers[key]
	return h, ok
}

// servedAPIs lists the registry sorted by key (ApiVersions, COMPAT.md test).
func servedAPIs() []apiHandler {
	out := make([]apiHandler, 0, len(apiHandlers))
	for _, h := range apiHandlers {
		out = append(out, *h)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].key < out[j].key })
	return out
}
