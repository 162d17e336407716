package broker

import (
	"bufio"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"sync/atomic"
	"time"

	"github.com/twmb/franz-go/pkg/kmsg"
)

// replicaClient is the follower's connection to a partition leader: one TCP connection, one
// request at a time (the fetcher loop is its only user). Requests and responses are encoded by
// kmsg; only the Kafka request/response headers are written here. Any error closes the
// connection; the next request dials again.
type replicaClient struct {
	from     int32 // this broker's node id
	addr     string
	clientID string
	nc       net.Conn
	br       *bufio.Reader
	corr     int32
}

// replicaDialHook, when set (tests), opens replica fetch connections (from = the fetching
// broker): a fault test can cut one broker's links to the others, a network partition, without
// stopping it.
var replicaDialHook atomic.Pointer[func(ctx context.Context, from int32, addr string) (net.Conn, error)]

func (c *replicaClient) close() {
	if c.nc != nil {
		c.nc.Close()
		c.nc, c.br = nil, nil
	}
}

// request sends req (whose version is set) and decodes the answer into resp.
func (c *replicaClient) request(ctx context.Context, req kmsg.Request, resp kmsg.Response) (err error) {
	defer func() {
		if err != nil {
			c.close()
		}
	}()
	if c.nc == nil {
		var nc net.Conn
		var err error
		if h := replicaDialHook.Load(); h != nil {
			nc, err = (*h)(ctx, c.from, c.addr)
		} else {
			d := net.Dialer{Timeout: 5 * time.Second}
			nc, err = d.DialContext(ctx, "tcp", c.addr)
		}
		if err != nil {
			return err
		}
		c.nc, c.br = nc, bufio.NewReaderSize(nc, 64<<10)
	}
	deadline, ok := ctx.Deadline()
	if !ok {
		deadline = time.Now().Add(30 * time.Second)
	}
	c.nc.SetDeadline(deadline)
	// A cancelled ctx (the fetcher's partition set changed, replica_fetcher.go) ends a blocked
	// read or write at once; the connection is then closed, as after any error.
	nc := c.nc
	stop := context.AfterFunc(ctx, func() { nc.SetDeadline(time.Unix(1, 0)) })
	defer func() {
		if !stop() {
			// The deadline may have landed on the connection: do not reuse it, and say why.
			err = errors.Join(ctx.Err(), err)
		}
	}()
	c.corr++
	// Request header v1 (v2 adds an empty tag section for flexible requests).
	buf := make([]byte, 4, 64)
	buf = binary.BigEndian.AppendUint16(buf, uint16(req.Key()))
	buf = binary.BigEndian.AppendUint16(buf, uint16(req.GetVersion()))
	buf = binary.BigEndian.AppendUint32(buf, uint32(c.corr))
	buf = binary.BigEndian.AppendUint16(buf, uint16(len(c.clientID)))
	buf = append(buf, c.clientID...)
	if req.IsFlexible() {
		buf = append(buf, 0)
	}
	buf = req.AppendTo(buf)
	binary.BigEndian.PutUint32(buf, uint32(len(buf)-4))
	if _, err := c.nc.Write(buf); err != nil {
		return err
	}
	var size [4]byte
	if _, err := io.ReadFull(c.br, size[:]); err != nil {
		return err
	}
	n := binary.BigEndian.Uint32(size[:])
	if n < 4 || n > 256<<20 {
		return fmt.Errorf("replica client: response size %d", n)
	}
	body := make([]byte, n)
	if _, err := io.ReadFull(c.br, body); err != nil {
		return err
	}
	if corr := int32(binary.BigEndian.Uint32(body)); corr != c.corr {
		return fmt.Errorf("replica client: correlation id %d, want %d", corr, c.corr)
	}
	body = body[4:]
	resp.SetVersion(req.GetVersion())
	if resp.IsFlexible() {
		// Response header v1: a tagged-field section (skipped).
		tags, k := binary.Uvarint(body)
		if k <= 0 {
			return errors.New("replica client: bad response header")
		}
		body = body[k:]
		for i := uint64(0); i < tags; i++ {
			if _, k = binary.Uvarint(body); k <= 0 {
				return errors.New("replica client: bad response tag")
			}
			body = body[k:]
			l, k := binary.Uvarint(body)
			if k <= 0 || uint64(len(body)-k) < l {
				return errors.New("replica client: bad response tag")
			}
			body = body[k+int(l):]
		}
	}
	return resp.ReadFrom(body)
}
