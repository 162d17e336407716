package broker

import (
	"bufio"
	"context"
	"encoding/binary"
	"errors"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// rawConn speaks the Kafka framing by hand, to test what a normal client never sends.
type rawConn struct {
	t  testing.TB
	nc net.Conn
	br *bufio.Reader
}

func dialRaw(t testing.TB, b *Broker) *rawConn {
	t.Helper()
	nc, err := net.DialTimeout("tcp", b.Addr(), 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { nc.Close() })
	nc.SetDeadline(time.Now().Add(20 * time.Second))
	return &rawConn{t: t, nc: nc, br: bufio.NewReader(nc)}
}

// frame encodes req with request header v1/v2 as a client would.
func frame(req kmsg.Request, corr int32) []byte {
	buf := []byte{0, 0, 0, 0}
	buf = binary.BigEndian.AppendUint16(buf, uint16(req.Key()))
	buf = binary.BigEndian.AppendUint16(buf, uint16(req.GetVersion()))
	buf = binary.BigEndian.AppendUint32(buf, uint32(corr))
	buf = binary.BigEndian.AppendUint16(buf, 4)
	buf = append(buf, "test"...)
	if req.IsFlexible() {
		buf = append(buf, 0)
	}
	buf = req.AppendTo(buf)
	binary.BigEndian.PutUint32(buf, uint32(len(buf)-4))
	return buf
}

func (c *rawConn) write(b []byte) {
	c.t.Helper()
	if _, err := c.nc.Write(b); err != nil {
		c.t.Fatal(err)
	}
}

// read reads one response frame into resp (whose version must be set) and returns its correlation id.
func (c *rawConn) read(resp kmsg.Response) (int32, error) {
	var size [4]byte
	if _, err := io.ReadFull(c.br, size[:]); err != nil {
		return 0, err
	}
	body := make([]byte, binary.BigEndian.Uint32(size[:]))
	if _, err := io.ReadFull(c.br, body); err != nil {
		return 0, err
	}
	corr := int32(binary.BigEndian.Uint32(body))
	body = body[4:]
	if resp.IsFlexible() && resp.Key() != int16(kmsg.ApiVersions) {
		body = body[1:]
	}
	return corr, resp.ReadFrom(body)
}

// expectClosed asserts the broker closes the connection (EOF or reset) rather than answering.
func (c *rawConn) expectClosed() {
	c.t.Helper()
	c.nc.SetReadDeadline(time.Now().Add(10 * time.Second))
	n, err := c.br.Read(make([]byte, 1))
	var ne net.Error
	if err == nil || (errors.As(err, &ne) && ne.Timeout()) {
		c.t.Fatalf("connection still open (read %d bytes, err %v)", n, err)
	}
}

func TestConnOversizedFrameClosesBeforeAllocating(t *testing.T) {
	b := newTestBroker(t, func(c *Config) { c.SocketRequestMaxBytes = 1000 })
	// A valid request under the limit is served.
	c := dialRaw(t, b)
	req := kmsg.NewPtrApiVersionsRequest()
	req.Version = 0
	c.write(frame(req, 1))
	resp := kmsg.NewPtrApiVersionsResponse()
	resp.Version = 0
	if corr, err := c.read(resp); err != nil || corr != 1 || resp.ErrorCode != 0 {
		t.Fatalf("small request: corr %d err %v code %d", corr, err, resp.ErrorCode)
	}
	// A size prefix over socket.request.max.bytes closes the connection without the body being sent
	// (if the broker tried to read 2 GiB first, this would hang until the test deadline).
	c.write([]byte{0x7f, 0xff, 0xff, 0xff})
	c.expectClosed()
	// Just over the limit, and a negative size.
	for _, size := range []uint32{1001, 0xffffffff, 3} {
		c := dialRaw(t, b)
		c.write(binary.BigEndian.AppendUint32(nil, size))
		c.expectClosed()
	}
	if got := b.metrics.frameErrors.Load(); got < 4 {
		t.Fatalf("invalid frames counted %d, want >= 4", got)
	}
}

func TestConnApiVersionsUnknownVersion(t *testing.T) {
	b := newTestBroker(t)
	c := dialRaw(t, b)
	// ApiVersions v99 with a body we could not know: answered at v0, UNSUPPORTED_VERSION, our ranges.
	hdr := []byte{0, 0, 0, 0, 0, 18, 0, 99, 0, 0, 0, 7, 0, 1, 'x', 0, 0xde, 0xad, 0xbe, 0xef}
	binary.BigEndian.PutUint32(hdr, uint32(len(hdr)-4))
	c.write(hdr)
	resp := kmsg.NewPtrApiVersionsResponse()
	resp.Version = 0
	corr, err := c.read(resp)
	if err != nil || corr != 7 {
		t.Fatalf("corr %d err %v", corr, err)
	}
	if resp.ErrorCode != kerr.UnsupportedVersion.Code {
		t.Fatalf("code %d", resp.ErrorCode)
	}
	served := map[int16][2]int16{}
	for _, k := range resp.ApiKeys {
		served[k.ApiKey] = [2]int16{k.MinVersion, k.MaxVersion}
	}
	if served[18] != [2]int16{0, 4} || len(served) != len(apiHandlers) {
		t.Fatalf("ranges: %v", served)
	}
	// The connection stays usable: retry at v3 (flexible request header, v0 response header).
	req := kmsg.NewPtrApiVersionsRequest()
	req.Version = 3
	req.ClientSoftwareName, req.ClientSoftwareVersion = "sediment-test", "1.0"
	c.write(frame(req, 8))
	resp = kmsg.NewPtrApiVersionsResponse()
	resp.Version = 3
	if corr, err := c.read(resp); err != nil || corr != 8 || resp.ErrorCode != 0 || len(resp.ApiKeys) != len(apiHandlers) {
		t.Fatalf("v3: corr %d err %v resp %+v", corr, err, resp)
	}
	// v3 with an invalid software name: INVALID_REQUEST, connection kept.
	req.ClientSoftwareName = "-bad name"
	c.write(frame(req, 9))
	resp = kmsg.NewPtrApiVersionsResponse()
	resp.Version = 3
	if corr, err := c.read(resp); err != nil || corr != 9 || resp.ErrorCode != kerr.InvalidRequest.Code {
		t.Fatalf("bad software name: corr %d err %v code %d", corr, err, resp.ErrorCode)
	}
}

func TestConnRefusesUnservedKeyAndVersion(t *testing.T) {
	b := newTestBroker(t)
	// An API key we do not serve (kmsg knows it): closed, as Kafka closes for a disabled API.
	c := dialRaw(t, b)
	req := kmsg.NewPtrDescribeACLsRequest()
	c.write(frame(req, 1))
	c.expectClosed()
	// A key nobody knows.
	c = dialRaw(t, b)
	hdr := []byte{0, 0, 0, 0, 0x7f, 0x00, 0, 0, 0, 0, 0, 1, 0xff, 0xff}
	binary.BigEndian.PutUint32(hdr, uint32(len(hdr)-4))
	c.write(hdr)
	c.expectClosed()
	// Metadata at a version above what we registered.
	c = dialRaw(t, b)
	md := kmsg.NewPtrMetadataRequest()
	md.Version = 13
	c.write(frame(md, 1))
	c.expectClosed()
	// A body that does not decode (truncated CreateTopics).
	c = dialRaw(t, b)
	ct := kmsg.NewPtrCreateTopicsRequest()
	ct.Version = 4
	ct.Topics = []kmsg.CreateTopicsRequestTopic{{Topic: "x", NumPartitions: 1, ReplicationFactor: 1}}
	f := frame(ct, 1)
	f = f[:len(f)-6]
	binary.BigEndian.PutUint32(f, uint32(len(f)-4))
	c.write(f)
	c.expectClosed()
	// The broker still serves new connections.
	cl := newTestClient(t, b)
	if err := cl.Ping(testCtx(t)); err != nil {
		t.Fatal(err)
	}
}

func TestConnPipelinedRequestsAnsweredInOrder(t *testing.T) {
	b := newTestBroker(t)
	c := dialRaw(t, b)
	const n = 200
	var all []byte
	for i := 0; i < n; i++ {
		var req kmsg.Request
		if i%2 == 0 {
			r := kmsg.NewPtrApiVersionsRequest()
			r.Version = 2
			req = r
		} else {
			r := kmsg.NewPtrMetadataRequest()
			r.Version = 12 // flexible: response header with tags
			req = r
		}
		all = append(all, frame(req, int32(1000+i))...)
	}
	go c.nc.Write(all) // everything at once; the broker must not wait for us to read
	for i := 0; i < n; i++ {
		var resp kmsg.Response
		if i%2 == 0 {
			r := kmsg.NewPtrApiVersionsResponse()
			r.Version = 2
			resp = r
		} else {
			r := kmsg.NewPtrMetadataResponse()
			r.Version = 12
			resp = r
		}
		corr, err := c.read(resp)
		if err != nil {
			t.Fatalf("response %d: %v", i, err)
		}
		if corr != int32(1000+i) {
			t.Fatalf("response %d has correlation id %d, want %d (out of order)", i, corr, 1000+i)
		}
		if md, ok := resp.(*kmsg.MetadataResponse); ok && (len(md.Brokers) != 1 || md.ControllerID != 1) {
			t.Fatalf("metadata %d: %+v", i, md)
		}
	}
}

func TestConnIdleTimeout(t *testing.T) {
	b := newTestBroker(t, func(c *Config) { c.ConnectionsMaxIdleMs = 200 })
	c := dialRaw(t, b)
	req := kmsg.NewPtrApiVersionsRequest()
	req.Version = 0
	c.write(frame(req, 1))
	resp := kmsg.NewPtrApiVersionsResponse()
	resp.Version = 0
	if _, err := c.read(resp); err != nil {
		t.Fatal(err)
	}
	// Then silence: the broker closes the connection (we wait up to 10 s for it).
	c.expectClosed()
}

func TestGracefulShutdownAnswersInFlight(t *testing.T) {
	b := newTestBroker(t)
	adm := newTestAdmin(t, b)
	ctx := testCtx(t)
	if r, err := adm.CreateTopic(ctx, 1, 1, nil, "g"); err != nil || r.Err != nil {
		t.Fatal(err, r.Err)
	}
	tp, _ := b.meta.State().Topic("g")
	c := dialRaw(t, b)
	idle := dialRaw(t, b) // a connection with nothing in flight

	// A long-poll fetch on an empty partition: MaxWait far longer than the test allows.
	f := kmsg.NewPtrFetchRequest()
	f.Version = 13
	f.MaxWaitMillis = 60000
	f.MinBytes = 1
	f.MaxBytes = 1 << 20
	ft := kmsg.NewFetchRequestTopic()
	ft.TopicID = tp.ID
	fp := kmsg.NewFetchRequestTopicPartition()
	fp.Partition, fp.FetchOffset, fp.PartitionMaxBytes = 0, 0, 1<<20
	ft.Partitions = append(ft.Partitions, fp)
	f.Topics = append(f.Topics, ft)
	c.write(frame(f, 42))
	time.Sleep(100 * time.Millisecond) // let the fetch start waiting

	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		if err := b.Close(); err != nil {
			t.Errorf("close: %v", err)
		}
	}()
	resp := kmsg.NewPtrFetchResponse()
	resp.Version = 13
	corr, err := c.read(resp)
	if err != nil || corr != 42 {
		t.Fatalf("in-flight fetch not answered at shutdown: corr %d err %v", corr, err)
	}
	c.expectClosed()
	idle.expectClosed()
	wg.Wait()
	if b.Ready() {
		t.Fatal("still ready after Close")
	}
	if _, err := net.DialTimeout("tcp", b.Addr(), time.Second); err == nil {
		t.Fatal("listener still accepting after Close")
	}
}

func TestHTTPEndpoints(t *testing.T) {
	b := newTestBroker(t)
	cl := newTestClient(t, b)
	if err := cl.Ping(testCtx(t)); err != nil {
		t.Fatal(err)
	}
	get := func(path string) (int, string) {
		t.Helper()
		resp, err := http.Get("http://" + b.HTTPAddr() + path)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(body)
	}
	if code, body := get("/healthz"); code != 200 || body != "ok\n" {
		t.Fatalf("/healthz %d %q", code, body)
	}
	if code, _ := get("/readyz"); code != 200 {
		t.Fatalf("/readyz %d", code)
	}
	code, body := get("/metrics")
	if code != 200 {
		t.Fatalf("/metrics %d", code)
	}
	for _, want := range []string{
		"# TYPE sediment_requests_total counter",
		`sediment_request_duration_seconds_bucket{api="ApiVersions",le="+Inf"}`,
		"sediment_connections_active 1",
		"sediment_ready 1",
		`sediment_objectstore_requests_total{op="put"} 0`, // the object store is opened and metered
	} {
		if !strings.Contains(body, want) {
			t.Errorf("/metrics lacks %q", want)
		}
	}
	if strings.Contains(body, `sediment_requests_total{api="ApiVersions"} 0`) {
		t.Error("ApiVersions requests not counted")
	}
	// Every sample line is "name{labels} value" or "name value".
	for _, ln := range strings.Split(strings.TrimSpace(body), "\n") {
		if strings.HasPrefix(ln, "#") {
			continue
		}
		if f := strings.Fields(ln); len(f) != 2 {
			t.Errorf("malformed sample line %q", ln)
		}
	}
}

func TestKgoClientAgainstBroker(t *testing.T) {
	// A plain kgo producer/consumer round trip through auto topic creation: the smoke test that
	// the connection layer, ApiVersions negotiation and Metadata work for a real client.
	b := newTestBroker(t)
	ctx := testCtx(t)
	p := newTestClient(t, b, kgo.DefaultProduceTopic("smoke"), kgo.AllowAutoTopicCreation())
	for i := 0; i < 10; i++ {
		if err := p.ProduceSync(ctx, &kgo.Record{Key: []byte{byte(i)}, Value: []byte("v")}).FirstErr(); err != nil {
			t.Fatal(err)
		}
	}
	c := newTestClient(t, b, kgo.ConsumeTopics("smoke"), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	got := 0
	for got < 10 {
		fs := c.PollFetches(ctx)
		if err := ctx.Err(); err != nil {
			t.Fatalf("consumed %d of 10: %v", got, err)
		}
		fs.EachError(func(_ string, _ int32, err error) { t.Fatal(err) })
		got += fs.NumRecords()
	}
}

// withPanickingHandler replaces key's handler with one that panics, for the duration of the test.
// (Tests using it must not be parallel: the registry is global.)
func withPanickingHandler(t *testing.T, key kmsg.Key) {
	h := apiHandlers[int16(key)]
	orig := h.fn
	h.fn = func(*Broker, context.Context, *connCtx, kmsg.Request) (kmsg.Response, error) { panic("injected") }
	t.Cleanup(func() { h.fn = orig })
}

func TestHandlerPanicAnsweredAsUnknownServerError(t *testing.T) {
	b := newTestBroker(t)
	cl := newTestClient(t, b)
	ctx := testCtx(t)
	withPanickingHandler(t, kmsg.DescribeCluster)
	withPanickingHandler(t, kmsg.CreatePartitions)

	// A response with a top-level error code.
	dc, err := kmsg.NewPtrDescribeClusterRequest().RequestWith(ctx, cl)
	if err != nil || dc.ErrorCode != kerr.UnknownServerError.Code {
		t.Fatalf("DescribeCluster: %v %+v", err, dc)
	}
	// Per-resource errors for an admin API without one.
	cp := kmsg.NewPtrCreatePartitionsRequest()
	cp.Topics = []kmsg.CreatePartitionsRequestTopic{{Topic: "a", Count: 2}, {Topic: "b", Count: 3}}
	cpr, err := cp.RequestWith(ctx, cl)
	if err != nil || len(cpr.Topics) != 2 || cpr.Topics[1].Topic != "b" || cpr.Topics[1].ErrorCode != kerr.UnknownServerError.Code {
		t.Fatalf("CreatePartitions: %v %+v", err, cpr)
	}
	if got := b.metrics.panics.Load(); got != 2 {
		t.Fatalf("panics counted %d, want 2", got)
	}
	// Neither: the connection is closed (the process survives and keeps serving).
	withPanickingHandler(t, kmsg.Metadata)
	c := dialRaw(t, b)
	md := kmsg.NewPtrMetadataRequest()
	md.Version = 1
	c.write(frame(md, 1))
	c.expectClosed()
	ap := kmsg.NewPtrApiVersionsRequest()
	if _, err := ap.RequestWith(ctx, newTestClient(t, b)); err != nil {
		t.Fatal(err)
	}
}

// Produce is advertised from v0 (librdkafka < 2.10 otherwise disables compression, KAFKA-18659)
// while v0–v2 are refused per partition with UNSUPPORTED_VERSION; acks=0 closes the connection.
func TestProduceAdvertisedFromV0RefusedBelowV3(t *testing.T) {
	b := newTestBroker(t)
	c := dialRaw(t, b)
	av := kmsg.NewPtrApiVersionsRequest()
	av.Version = 0
	c.write(frame(av, 1))
	avr := kmsg.NewPtrApiVersionsResponse()
	avr.Version = 0
	if _, err := c.read(avr); err != nil {
		t.Fatal(err)
	}
	for _, k := range avr.ApiKeys {
		if k.ApiKey == int16(kmsg.Produce) && (k.MinVersion != 0 || k.MaxVersion < 9) {
			t.Fatalf("Produce advertised %d..%d", k.MinVersion, k.MaxVersion)
		}
	}
	p := kmsg.NewPtrProduceRequest()
	p.Version, p.Acks, p.TimeoutMillis = 2, 1, 1000
	pt := kmsg.NewProduceRequestTopic()
	pt.Topic = "old"
	pt.Partitions = []kmsg.ProduceRequestTopicPartition{{Partition: 0, Records: []byte{}}, {Partition: 3, Records: []byte{}}}
	p.Topics = append(p.Topics, pt)
	c.write(frame(p, 2))
	pr := kmsg.NewPtrProduceResponse()
	pr.Version = 2
	if corr, err := c.read(pr); err != nil || corr != 2 {
		t.Fatalf("corr %d err %v", corr, err)
	}
	if len(pr.Topics) != 1 || len(pr.Topics[0].Partitions) != 2 || pr.Topics[0].Partitions[1].Partition != 3 ||
		pr.Topics[0].Partitions[0].ErrorCode != kerr.UnsupportedVersion.Code || pr.Topics[0].Partitions[1].ErrorCode != kerr.UnsupportedVersion.Code {
		t.Fatalf("old produce: %+v", pr)
	}
	// The connection is still usable.
	c.write(frame(av, 3))
	if corr, err := c.read(avr); err != nil || corr != 3 {
		t.Fatalf("after refusal: corr %d err %v", corr, err)
	}
	p.Acks = 0
	c.write(frame(p, 4))
	c.expectClosed()
}
