package broker

import (
	"bufio"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"reflect"
	"runtime/debug"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/twmb/franz-go/pkg/kbin"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/sediment-io/sediment/tiering"
)

// connCtx is what a handler knows about the connection a request came on.
type connCtx struct {
	remote   string // client address
	clientID string // from the request header ("" when null)
	corr     int32  // correlation id of the request being served
}

// request is one decoded request frame.
type request struct {
	key      int16
	version  int16
	corr     int32
	clientID string
	kreq     kmsg.Request // nil when answered without decoding (unknown ApiVersions version)
	// refused: an advertised-but-not-served version (Produce v0–v2, see advertisedMin), decoded
	// only to be answered with UNSUPPORTED_VERSION.
	refused bool
}

// response is one frame for the writer goroutine.
type response struct {
	corr  int32
	kresp kmsg.Response
	// For a deferred response (see handlers.go): closed when its wait has returned; the writer
	// encodes kresp only after that. nil for a response complete at once.
	done <-chan struct{}
	// panicked is set (before done is closed) when the wait panicked: the connection is closed.
	panicked *bool
}

// maxPipelined bounds the responses queued per connection between the reader and the writer,
// deferred ones included: with that many not yet written (e.g. produce requests waiting for their
// fsync), the reader stops reading until the oldest is written, so a client cannot make the
// broker hold an unbounded number of requests. A deferred produce holds its response, not its
// records (they are in the log once its wait starts).
const maxPipelined = 16

// errFrame is a request frame the connection cannot continue after (Kafka closes the connection
// for these too: a size over the limit, a header that does not parse, an API or version not
// served, a body that does not decode).
var errFrame = errors.New("invalid request frame")

// minHeaderSize: api key (2) + version (2) + correlation id (4) + client id length (2).
const minHeaderSize = 10

// conn serves one client connection with two goroutines:
//
//   - the reader reads a frame, decodes it, runs the handler, and queues the response;
//   - the writer encodes queued responses and writes them, batching what is queued into one write.
//
// Requests are therefore handled one at a time in arrival order (Kafka's per-connection contract)
// and answered in that order, while the client may pipeline: the next request is read while the
// previous response is still being written. A handler may defer the end of its work
// (deferredResponse, handlers.go: Produce waits for durability and the ISR that way): its wait
// runs on a goroutine of its own while the reader goes on to the next request, and the writer,
// which takes responses strictly in queue order, waits for it before writing it and anything
// after it. So pipelined produce requests are appended in order and share one group-committed
// fsync, and are still answered in order. The queue is bounded (maxPipelined), so a client that
// does not read its responses, or pipelines faster than the disk syncs, stops being read from
// (back-pressure) instead of growing memory. Shutdown: a wait ends when the log closes or the
// broker's ctx ends (acks=all), and the connection is closed only after the writer has written
// every queued response, so no wait goroutine outlives its connection for long.
type conn struct {
	b      *Broker
	nc     net.Conn
	remote string
	log    *slog.Logger
	resps  chan response // reader → writer; closed by the reader when it stops
	wdone  chan struct{} // closed when the writer has returned
}

func (b *Broker) serveConn(ctx context.Context, nc net.Conn) {
	c := &conn{
		b:      b,
		nc:     nc,
		remote: nc.RemoteAddr().String(),
		resps:  make(chan response, maxPipelined),
		wdone:  make(chan struct{}),
	}
	c.log = b.log.With("remote", c.remote)
	b.metrics.connsActive.Add(1)
	b.metrics.connsTotal.Add(1)
	defer b.metrics.connsActive.Add(-1)

	go c.writeLoop()
	err := c.readLoop(ctx)
	close(c.resps)
	<-c.wdone // the writer flushes what was queued, then returns
	nc.Close()
	switch {
	case err == nil, errors.Is(err, io.EOF), errors.Is(err, net.ErrClosed):
		c.log.Debug("connection closed")
	case errors.Is(err, os.ErrDeadlineExceeded) && ctx.Err() == nil:
		c.log.Debug("closing idle connection", "idle_ms", b.cfg.ConnectionsMaxIdleMs)
	case ctx.Err() != nil:
		c.log.Debug("connection closed by shutdown")
	default:
		c.log.Info("closing connection", "err", err)
	}
}

// readLoop returns when the client goes away, the connection is idle too long, a frame is
// invalid, a handler returns an error, or the broker shuts down (ctx done).
func (c *conn) readLoop(ctx context.Context) error {
	br := bufio.NewReaderSize(c.nc, 64<<10)
	var sizeBuf [4]byte
	idle := time.Duration(c.b.cfg.ConnectionsMaxIdleMs) * time.Millisecond
	var held int64 // bytes of queued.max.request.bytes taken by the request being read or handled
	defer func() { c.b.reqMem.release(held) }()
	for {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		// The idle timer runs while we wait for the next request's size. Once a request started
		// arriving, the same bound applies to the rest of it (a client that stalls mid-frame for
		// connections.max.idle.ms is as gone as an idle one).
		if idle > 0 {
			c.nc.SetReadDeadline(time.Now().Add(idle))
		}
		if _, err := io.ReadFull(br, sizeBuf[:]); err != nil {
			return err
		}
		size := int32(binary.BigEndian.Uint32(sizeBuf[:]))
		// Checked BEFORE allocating: a hostile size never becomes a 2 GiB make().
		if size < minHeaderSize || size > c.b.cfg.SocketRequestMaxBytes {
			c.b.metrics.frameErrors.Add(1)
			return fmt.Errorf("%w: size %d outside [%d, socket.request.max.bytes=%d]", errFrame, size, minHeaderSize, c.b.cfg.SocketRequestMaxBytes)
		}
		// queued.max.request.bytes: while the broker-wide budget is spent, read nothing more.
		if err := c.b.reqMem.acquire(ctx, int64(size)); err != nil {
			return err
		}
		if held = int64(size); idle > 0 && c.b.reqMem.bounded() {
			c.nc.SetReadDeadline(time.Now().Add(idle)) // the wait for the budget is not the client's stall
		}
		body := make([]byte, size)
		if _, err := io.ReadFull(br, body); err != nil {
			return err
		}
		c.b.metrics.bytesIn.Add(int64(size) + 4)

		start := time.Now()
		req, err := decodeRequest(body)
		if err != nil {
			c.b.metrics.frameErrors.Add(1)
			return err
		}
		resp, err := c.b.handle(ctx, &connCtx{remote: c.remote, clientID: req.clientID, corr: req.corr}, req)
		c.b.reqMem.release(held)
		held = 0
		d, deferred := resp.(*deferredResponse)
		if !deferred {
			c.b.metrics.observe(req.key, time.Since(start), err != nil)
		}
		if err != nil {
			return fmt.Errorf("%s v%d: %w", kmsg.NameForKey(req.key), req.version, err)
		}
		if resp == nil {
			continue // acks=0
		}
		r := response{corr: req.corr, kresp: resp}
		if deferred {
			r = c.startDeferred(req, d, start)
		}
		select {
		case c.resps <- r:
		case <-c.wdone:
			return errors.New("writer stopped")
		}
	}
}

// startDeferred runs d's wait on its own goroutine and returns the queue entry the writer waits
// on. A panic in wait is logged like a handler panic and closes the connection (a produce
// response has no top-level error code to carry it).
func (c *conn) startDeferred(req request, d *deferredResponse, start time.Time) response {
	done := make(chan struct{})
	panicked := new(bool)
	go func() {
		defer close(done)
		defer func() {
			if p := recover(); p != nil {
				*panicked = true
				c.log.Error("handler panic", "api", kmsg.NameForKey(req.key), "version", req.version,
					"client_id", req.clientID, "panic", fmt.Sprint(p), "stack", string(debug.Stack()))
				c.b.metrics.panics.Add(1)
				panicHook.Lock()
				if panicHook.fn != nil {
					panicHook.fn(req.key, p)
				}
				panicHook.Unlock()
			}
			c.b.metrics.observe(req.key, time.Since(start), *panicked)
		}()
		d.wait()
	}()
	return response{corr: req.corr, kresp: d.Response, done: done, panicked: panicked}
}

// ready reports whether r can be encoded now (not a deferred response still waiting).
func (r *response) ready() bool {
	if r.done == nil {
		return true
	}
	select {
	case <-r.done:
		return true
	default:
		return false
	}
}

// writeHook, when set (tests), is called by the writer with each response just before it is
// encoded: a test seam to make encoding panic.
var writeHook atomic.Pointer[func(r response)]

// writeLoop encodes and writes responses in the order queued, coalescing whatever is already
// queued and complete into one write. It waits for a deferred response at the head of the queue;
// what is queued behind it waits with it (responses go out in request order).
//
// A panic while encoding or writing (a bug, like a handler panic; the reader's recover does not
// cover this goroutine) is recovered: logged once with its stack, counted with the handler
// panics, and this connection alone is closed (a frame may be half written, so nothing more can
// be sent on it). The process and every other connection go on.
func (c *conn) writeLoop() {
	defer close(c.wdone)
	fail := func() {
		c.nc.Close() // unblocks the reader
		for range c.resps {
		}
	}
	var cur response // the response being encoded (when encoding), for the panic report
	encoding := false
	defer func() {
		p := recover()
		if p == nil {
			return
		}
		api, corr, key := "", int32(-1), int16(-1)
		if encoding && cur.kresp != nil {
			key, corr = cur.kresp.Key(), cur.corr
			api = kmsg.NameForKey(key)
		}
		c.log.Error("response writer panic: closing the connection", "api", api, "corr", corr,
			"panic", fmt.Sprint(p), "stack", string(debug.Stack()))
		c.b.metrics.panics.Add(1)
		panicHook.Lock()
		if panicHook.fn != nil {
			panicHook.fn(key, p)
		}
		panicHook.Unlock()
		fail()
	}()
	var fb frameBuilder
	add := func(r response) {
		cur, encoding = r, true
		if h := writeHook.Load(); h != nil {
			(*h)(r)
		}
		fb.add(r)
		cur, encoding = response{}, false
	}
	var held *response // taken from the queue by the drain below, not complete yet
	for {
		var r response
		if held != nil {
			r, held = *held, nil
		} else {
			var ok bool
			if r, ok = <-c.resps; !ok {
				return
			}
		}
		if r.done != nil {
			<-r.done
			if *r.panicked {
				fail()
				return
			}
		}
		fb.reset()
		add(r)
	drain:
		for fb.size < 1<<20 {
			select {
			case r2, ok := <-c.resps:
				if !ok {
					break drain
				}
				if !r2.ready() || (r2.panicked != nil && *r2.panicked) {
					held = &r2 // write what is complete first
					break drain
				}
				add(r2)
			default:
				break drain
			}
		}
		// A client that stops reading must not pin the writer forever.
		c.nc.SetWriteDeadline(time.Now().Add(writeTimeout(c.b.cfg)))
		n, err := fb.writeTo(c.nc)
		if err != nil {
			c.log.Debug("write failed", "err", err)
			fail()
			return
		}
		c.b.metrics.bytesOut.Add(n)
	}
}

// frameBuilder collects the response frames of one socket write: the bytes it encodes in buf,
// and record sets of fetch responses referenced where they are (see addFetch), written together
// with one writev. The writer goroutine owns it and reuses its buffers.
type frameBuilder struct {
	buf    []byte
	parts  []framePart // in write order; the open tail of buf (from mark) is not listed yet
	mark   int
	size   int // bytes to write
	vecs   net.Buffers
	splice spliceScratch
	holds  []*tiering.Hold // chunk-cache buffers of the record sets added, released after the write
}

// framePart is either buf[off:end] (ext == nil) or ext, a record set written in place.
type framePart struct {
	off, end int
	ext      []byte
}

func (fb *frameBuilder) reset() {
	if cap(fb.buf) > 4<<20 {
		fb.buf = nil // do not keep a huge buffer per idle connection
	}
	fb.buf, fb.parts, fb.mark, fb.size = fb.buf[:0], fb.parts[:0], 0, 0
}

// add appends one response frame.
func (fb *frameBuilder) add(r response) {
	if fr, ok := r.kresp.(*kmsg.FetchResponse); ok {
		att := takeAttachment(fr)
		fb.holds = append(fb.holds, att.holds...)
		if fb.addFetch(r.corr, fr, att.split, spliceMinRecordBytes) {
			return
		}
	}
	n := len(fb.buf)
	fb.buf = appendResponse(fb.buf, r)
	fb.size += len(fb.buf) - n
}

// external queues b to be written, unchanged, after what buf holds so far.
func (fb *frameBuilder) external(b []byte) {
	if len(fb.buf) > fb.mark {
		fb.parts = append(fb.parts, framePart{off: fb.mark, end: len(fb.buf)})
		fb.mark = len(fb.buf)
	}
	fb.parts = append(fb.parts, framePart{ext: b})
}

// buffers returns the pending write in order (valid until the next add or reset).
func (fb *frameBuilder) buffers() net.Buffers {
	fb.vecs = fb.vecs[:0]
	for _, p := range fb.parts {
		if p.ext != nil {
			fb.vecs = append(fb.vecs, p.ext)
		} else {
			fb.vecs = append(fb.vecs, fb.buf[p.off:p.end])
		}
	}
	if len(fb.buf) > fb.mark {
		fb.vecs = append(fb.vecs, fb.buf[fb.mark:])
	}
	return fb.vecs
}

// writeTo writes everything added since reset to w (writev for a TCP connection), then drops its
// references to record sets.
func (fb *frameBuilder) writeTo(w io.Writer) (int64, error) {
	vecs := fb.buffers()
	var n int64
	var err error
	if len(vecs) == 1 {
		var m int
		m, err = w.Write(vecs[0])
		n = int64(m)
	} else {
		n, err = vecs.WriteTo(w) // consumes its copy of the slice header, not fb.vecs's backing array
	}
	clear(fb.vecs[:cap(fb.vecs)])
	clear(fb.parts)
	// The write has returned, failed or not: the kernel has copied what it took and nothing
	// reads the record sets any more, so their chunk buffers may be reused.
	for _, h := range fb.holds {
		h.Release()
	}
	clear(fb.holds)
	fb.holds = fb.holds[:0]
	return n, err
}

func writeTimeout(cfg Config) time.Duration {
	if cfg.ConnectionsMaxIdleMs > 0 {
		return time.Duration(cfg.ConnectionsMaxIdleMs) * time.Millisecond
	}
	return 10 * time.Minute
}

// appendResponse appends one response frame: size, correlation id, the response header's empty
// tag section when the response is flexible (except ApiVersions, whose response header is always
// v0 so that a client can parse it before it knows our versions), then the body.
func appendResponse(buf []byte, r response) []byte {
	// Grow once to the frame's size: a fetch response is mostly record bytes, and letting append
	// double its way up to several MiB would copy them about twice.
	buf = slices.Grow(buf, 16+fetchRecordBytes(r.kresp))
	start := len(buf)
	buf = append(buf, 0, 0, 0, 0)
	buf = binary.BigEndian.AppendUint32(buf, uint32(r.corr))
	if r.kresp.IsFlexible() && r.kresp.Key() != int16(kmsg.ApiVersions) {
		buf = append(buf, 0)
	}
	buf = r.kresp.AppendTo(buf)
	binary.BigEndian.PutUint32(buf[start:], uint32(len(buf)-start-4))
	return buf
}

// fetchRecordBytes is a size hint for a response frame: the record bytes a fetch response carries
// plus a little per partition for the fields around them; 0 for other responses.
func fetchRecordBytes(kresp kmsg.Response) int {
	fr, ok := kresp.(*kmsg.FetchResponse)
	if !ok {
		return 0
	}
	n := 64
	for i := range fr.Topics {
		t := &fr.Topics[i]
		n += 32 + len(t.Topic)
		for j := range t.Partitions {
			n += 64 + len(t.Partitions[j].RecordBatches)
		}
	}
	return n
}

// decodeRequest parses a frame body (everything after the size): the header by hand, then the body
// with kmsg. It decides which requests are refused before any handler runs.
func decodeRequest(body []byte) (req request, err error) {
	r := kbin.Reader{Src: body}
	req.key = r.Int16()
	req.version = r.Int16()
	req.corr = r.Int32()
	cid := r.NullableString()
	if !r.Ok() {
		return req, fmt.Errorf("%w: short request header", errFrame)
	}
	if cid != nil {
		req.clientID = *cid
	}
	h, ok := lookupHandler(req.key)
	if !ok {
		return req, fmt.Errorf("%w: API key %d (%s) is not served", errFrame, req.key, kmsg.NameForKey(req.key))
	}
	if req.version < h.min || req.version > h.max {
		// KIP-511: a client may open with an ApiVersions newer than we know; it is answered at v0
		// with UNSUPPORTED_VERSION and our ranges, and the client retries at a version we have.
		// Its body is in a format we may not know, so it is not decoded.
		if req.key == int16(kmsg.ApiVersions) && req.version > h.max {
			return req, nil
		}
		if m, ok := advertisedMin[h.key]; ok && req.version >= m && req.version < h.min {
			req.refused = true
		} else {
			return req, fmt.Errorf("%w: %s version %d not served (%d..%d)", errFrame, kmsg.NameForKey(req.key), req.version, h.min, h.max)
		}
	}
	kreq := kmsg.RequestForKey(req.key)
	kreq.SetVersion(req.version)
	if kreq.IsFlexible() && !skipHeaderTags(&r) {
		return req, fmt.Errorf("%w: bad tagged fields in request header", errFrame)
	}
	if err := readFromSafe(kreq, r.Src); err != nil {
		return req, fmt.Errorf("%w: %s v%d body: %v", errFrame, kmsg.NameForKey(req.key), req.version, err)
	}
	req.kreq = kreq
	return req, nil
}

// skipHeaderTags skips the request header's tagged fields. Not kmsg.SkipTags: that loops as many
// times as the (hostile) count says even after the input ran out — a 4-byte count made one
// 18-byte frame cost seconds of CPU (found by FuzzRequestFrame). Every tag takes at least two
// bytes, so a count above half the remaining bytes is refused before looping.
func skipHeaderTags(r *kbin.Reader) bool {
	n := r.Uvarint()
	if !r.Ok() || int64(n) > int64(len(r.Src)/2) {
		return false
	}
	for ; n > 0 && r.Ok(); n-- {
		r.Uvarint() // tag
		r.Span(int(r.Uvarint()))
	}
	return r.Ok()
}

// readFromSafe guards against a decoder panic on hostile input (kmsg is not known to panic; the
// fuzz test checks that, this only keeps one bad frame from taking the process down).
func readFromSafe(kreq kmsg.Request, src []byte) (err error) {
	defer func() {
		if p := recover(); p != nil {
			err = fmt.Errorf("decoder panic: %v", p)
		}
	}()
	return kreq.ReadFrom(src)
}

// panicHook, when set (tests, fuzzing), is told of every recovered handler panic.
var panicHook struct {
	sync.Mutex
	fn func(key int16, p any)
}

// handle runs the handler for a decoded request. A panic is recovered, logged with its stack and
// answered as UNKNOWN_SERVER_ERROR where the response has a top-level error code, otherwise the
// connection is closed; it is a bug either way, never the intended path.
func (b *Broker) handle(ctx context.Context, cc *connCtx, req request) (resp kmsg.Response, err error) {
	if req.kreq == nil { // ApiVersions at an unknown version
		return b.apiVersionsUnsupported(), nil
	}
	if req.refused {
		return refuseOldProduce(req.kreq)
	}
	h, _ := lookupHandler(req.key)
	defer func() {
		p := recover()
		if p == nil {
			return
		}
		b.log.Error("handler panic", "api", kmsg.NameForKey(req.key), "version", req.version,
			"client_id", req.clientID, "remote", cc.remote, "panic", fmt.Sprint(p), "stack", string(debug.Stack()))
		b.metrics.panics.Add(1)
		panicHook.Lock()
		if panicHook.fn != nil {
			panicHook.fn(req.key, p)
		}
		panicHook.Unlock()
		resp = req.kreq.ResponseKind()
		resp.SetVersion(req.version)
		if !setTopLevelError(req.kreq, resp, kerr.UnknownServerError.Code) {
			resp, err = nil, fmt.Errorf("handler panic: %v", p)
		}
	}()
	resp, err = h.fn(b, ctx, cc, req.kreq)
	if resp != nil {
		resp.SetVersion(req.version)
	}
	return resp, err
}

// refuseOldProduce answers a Produce v0–v2 (advertised for librdkafka's sake, not served) with
// UNSUPPORTED_VERSION on every partition. With acks=0 there is no response to carry the error, so
// the connection is closed, as Kafka does for a failed acks=0 produce.
func refuseOldProduce(kreq kmsg.Request) (kmsg.Response, error) {
	req, ok := kreq.(*kmsg.ProduceRequest)
	if !ok {
		return nil, fmt.Errorf("%w: %s version %d not served", errFrame, kmsg.NameForKey(kreq.Key()), kreq.GetVersion())
	}
	if req.Acks == 0 {
		return nil, fmt.Errorf("%w: Produce v%d (RecordBatch v0/v1 message sets) not served", errFrame, req.Version)
	}
	resp := req.ResponseKind().(*kmsg.ProduceResponse)
	for _, t := range req.Topics {
		rt := kmsg.NewProduceResponseTopic()
		rt.Topic = t.Topic
		for _, p := range t.Partitions {
			rp := kmsg.NewProduceResponseTopicPartition()
			rp.Partition, rp.ErrorCode = p.Partition, kerr.UnsupportedVersion.Code
			rt.Partitions = append(rt.Partitions, rp)
		}
		resp.Topics = append(resp.Topics, rt)
	}
	return resp, nil
}

// setTopLevelError answers a failed request as a whole: the response's top-level ErrorCode when it
// has one (found by reflection, so every API is covered), otherwise, for the admin APIs, the error
// on every resource the request named. It reports false when neither applies (the caller then
// closes the connection).
func setTopLevelError(req kmsg.Request, resp kmsg.Response, code int16) bool {
	if f := reflect.ValueOf(resp).Elem().FieldByName("ErrorCode"); f.IsValid() && f.Kind() == reflect.Int16 && f.CanSet() {
		f.SetInt(int64(code))
		// The field may exist only in later versions (Metadata's is v13+): keep it only if it
		// survives an encode/decode round trip at this version.
		back := kmsg.ResponseForKey(resp.Key())
		back.SetVersion(resp.GetVersion())
		if back.ReadFrom(resp.AppendTo(nil)) == nil && reflect.ValueOf(back).Elem().FieldByName("ErrorCode").Int() == int64(code) {
			return true
		}
		f.SetInt(0)
	}
	switch r := resp.(type) {
	case *kmsg.CreateTopicsResponse:
		for _, t := range req.(*kmsg.CreateTopicsRequest).Topics {
			rt := kmsg.NewCreateTopicsResponseTopic()
			rt.Topic, rt.ErrorCode = t.Topic, code
			r.Topics = append(r.Topics, rt)
		}
	case *kmsg.CreatePartitionsResponse:
		for _, t := range req.(*kmsg.CreatePartitionsRequest).Topics {
			r.Topics = append(r.Topics, kmsg.CreatePartitionsResponseTopic{Topic: t.Topic, ErrorCode: code})
		}
	case *kmsg.DeleteTopicsResponse:
		q := req.(*kmsg.DeleteTopicsRequest)
		for _, n := range q.TopicNames {
			r.Topics = append(r.Topics, kmsg.DeleteTopicsResponseTopic{Topic: kmsg.StringPtr(n), ErrorCode: code})
		}
		for _, t := range q.Topics {
			r.Topics = append(r.Topics, kmsg.DeleteTopicsResponseTopic{Topic: t.Topic, TopicID: t.TopicID, ErrorCode: code})
		}
	case *kmsg.DescribeConfigsResponse:
		for _, rr := range req.(*kmsg.DescribeConfigsRequest).Resources {
			x := kmsg.NewDescribeConfigsResponseResource()
			x.ResourceType, x.ResourceName, x.ErrorCode = rr.ResourceType, rr.ResourceName, code
			r.Resources = append(r.Resources, x)
		}
	case *kmsg.AlterConfigsResponse:
		for _, rr := range req.(*kmsg.AlterConfigsRequest).Resources {
			r.Resources = append(r.Resources, kmsg.AlterConfigsResponseResource{ResourceType: rr.ResourceType, ResourceName: rr.ResourceName, ErrorCode: code})
		}
	case *kmsg.IncrementalAlterConfigsResponse:
		for _, rr := range req.(*kmsg.IncrementalAlterConfigsRequest).Resources {
			r.Resources = append(r.Resources, kmsg.IncrementalAlterConfigsResponseResource{ResourceType: rr.ResourceType, ResourceName: rr.ResourceName, ErrorCode: code})
		}
	default:
		return false
	}
	return true
}
