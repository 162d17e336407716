package meta

import (
	"bufio"
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"sync"
	"time"

	"github.com/hashicorp/raft"
)

// Forwarding over TCP shares the Raft listener. Every connection hashicorp/raft's NetworkTransport
// opens starts with an RPC type byte (0..4); a forwarding connection starts with opPropose or opJoin
// instead, so one port serves both and the mux routes each accepted connection by its first byte.
//
// Forward request and response frames (one request per connection):
//
//	request:  op (1 byte) | length uint32 BE | payload (propose: a command entry; join: JSON joinRequest)
//	response: length uint32 BE | JSON forwardResponse
const (
	opPropose       byte = 'F'
	opJoin          byte = 'J'
	maxForwardFrame      = maxCommandSize + 1024
)

type joinRequest struct {
	ID   int32
	Addr string
}

type forwardResponse struct {
	Result *applyResult `json:",omitempty"`
	Retry  bool         `json:",omitempty"` // the receiver is not (or no longer) the leader: try again
	Err    string       `json:",omitempty"`
}

// muxListener implements raft.StreamLayer over a TCP listener, diverting forwarding connections.
type muxListener struct {
	net.Listener
	advertise net.Addr
	raftConns chan net.Conn
	serve     func(op byte, c net.Conn) // set before the first Accept
	dial      dialFunc                  // outgoing Raft connections
	closed    chan struct{}
	closeOnce sync.Once
}

func newMuxListener(bind string, advertise net.Addr) (*muxListener, error) {
	ln, err := net.Listen("tcp", bind)
	if err != nil {
		return nil, err
	}
	if advertise == nil {
		advertise = ln.Addr()
	}
	if ta, ok := advertise.(*net.TCPAddr); !ok || ta.IP.IsUnspecified() {
		ln.Close()
		return nil, fmt.Errorf("meta: raft address %v is not advertisable; set RaftAdvertise", advertise)
	}
	m := &muxListener{Listener: ln, advertise: advertise, raftConns: make(chan net.Conn), closed: make(chan struct{})}
	go m.acceptLoop()
	return m, nil
}

func (m *muxListener) acceptLoop() {
	for {
		c, err := m.Listener.Accept()
		if err != nil {
			select {
			case <-m.closed:
				return
			default:
			}
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				continue
			}
			m.Close()
			return
		}
		go m.route(c)
	}
}

func (m *muxListener) route(c net.Conn) {
	c.SetReadDeadline(time.Now().Add(10 * time.Second))
	br := bufio.NewReader(c)
	op, err := br.ReadByte()
	if err != nil {
		c.Close()
		return
	}
	c.SetReadDeadline(time.Time{})
	pc := &peekedConn{Conn: c, r: br}
	if op == opPropose || op == opJoin {
		if m.serve == nil {
			c.Close()
			return
		}
		m.serve(op, pc)
		return
	}
	br.UnreadByte()
	select {
	case m.raftConns <- pc:
	case <-m.closed:
		c.Close()
	}
}

type peekedConn struct {
	net.Conn
	r *bufio.Reader
}

func (p *peekedConn) Read(b []byte) (int, error) { return p.r.Read(b) }

func (m *muxListener) Accept() (net.Conn, error) {
	select {
	case c := <-m.raftConns:
		return c, nil
	case <-m.closed:
		return nil, net.ErrClosed
	}
}

func (m *muxListener) Close() error {
	var err error
	m.closeOnce.Do(func() {
		close(m.closed)
		err = m.Listener.Close()
	})
	return err
}

func (m *muxListener) Addr() net.Addr { return m.advertise }

func (m *muxListener) Dial(addr raft.ServerAddress, timeout time.Duration) (net.Conn, error) {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	return m.dial(ctx, string(addr))
}

// serveForward answers one forwarding connection on node n.
func (n *Node) serveForward(op byte, c net.Conn) {
	defer c.Close()
	select {
	case <-n.started:
	case <-n.closing:
		return
	case <-time.After(5 * time.Second):
		return // Open failed before raft started; the caller sees the connection close and retries
	}
	ctx, cancel := context.WithTimeout(context.Background(), n.cfg.ProposalTimeout)
	defer cancel()
	c.SetDeadline(time.Now().Add(n.cfg.ProposalTimeout + time.Second))
	payload, err := readFrame(c)
	if err != nil {
		return
	}
	var resp forwardResponse
	switch op {
	case opPropose:
		res, err := n.handleForward(ctx, payload)
		switch {
		case err == nil:
			resp.Result = res
		case retryable(err) || errors.Is(err, ErrClosed):
			resp.Retry, resp.Err = true, err.Error()
		default:
			resp.Err = err.Error()
		}
	case opJoin:
		var jr joinRequest
		if err := json.Unmarshal(payload, &jr); err != nil {
			resp.Err = err.Error()
			break
		}
		err := n.AddNonvoter(ctx, jr.ID, jr.Addr)
		switch {
		case err == nil:
			resp.Result = &applyResult{}
		case retryable(err) || errors.Is(err, ErrClosed):
			resp.Retry, resp.Err = true, err.Error()
		default:
			resp.Err = err.Error()
		}
	}
	b, _ := json.Marshal(resp)
	writeFrame(c, 0, b)
}

func writeFrame(w io.Writer, op byte, payload []byte) error {
	buf := make([]byte, 0, 5+len(payload))
	if op != 0 {
		buf = append(buf, op)
	}
	buf = binary.BigEndian.AppendUint32(buf, uint32(len(payload)))
	buf = append(buf, payload...)
	_, err := w.Write(buf)
	return err
}

func readFrame(r io.Reader) ([]byte, error) {
	var hdr [4]byte
	if _, err := io.ReadFull(r, hdr[:]); err != nil {
		return nil, err
	}
	n := binary.BigEndian.Uint32(hdr[:])
	if n > maxForwardFrame {
		return nil, fmt.Errorf("meta: forward frame of %d bytes exceeds %d", n, maxForwardFrame)
	}
	b := make([]byte, n)
	_, err := io.ReadFull(r, b)
	return b, err
}

// tcpForwarder sends forwarded proposals to the leader's Raft address.
type tcpForwarder struct{ dial dialFunc }

func (tcpForwarder) register(raft.ServerAddress, *Node)   {}
func (tcpForwarder) unregister(raft.ServerAddress, *Node) {}

func (f tcpForwarder) forward(ctx context.Context, _, leader raft.ServerAddress, data []byte) (*applyResult, error) {
	resp, err := tcpCall(ctx, f.dial, string(leader), opPropose, data)
	if err != nil {
		return nil, err
	}
	return resp.Result, nil
}

// dialFunc opens a TCP connection to a Raft address (Config.Dial, or net.Dialer).
type dialFunc func(ctx context.Context, addr string) (net.Conn, error)

func defaultDial(ctx context.Context, addr string) (net.Conn, error) {
	var d net.Dialer
	return d.DialContext(ctx, "tcp", addr)
}

func tcpCall(ctx context.Context, dial dialFunc, addr string, op byte, payload []byte) (*forwardResponse, error) {
	c, err := dial(ctx, addr)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", errUnreachable, err)
	}
	defer c.Close()
	if dl, ok := ctx.Deadline(); ok {
		c.SetDeadline(dl)
	}
	stop := context.AfterFunc(ctx, func() { c.SetDeadline(time.Now()) })
	defer stop()
	if err := writeFrame(c, op, payload); err != nil {
		return nil, fmt.Errorf("%w: %v", errUnreachable, err)
	}
	b, err := readFrame(bufio.NewReader(c))
	if err != nil {
		// The proposal may or may not have been committed; the request id makes the retry safe.
		return nil, fmt.Errorf("%w: %v", errUnreachable, err)
	}
	var resp forwardResponse
	if err := json.Unmarshal(b, &resp); err != nil {
		return nil, fmt.Errorf("meta: bad forward response from %s: %w", addr, err)
	}
	switch {
	case resp.Retry:
		return nil, fmt.Errorf("%w: %s", ErrNotController, resp.Err)
	case resp.Err != "":
		return nil, fmt.Errorf("meta: forwarded to %s: %s", addr, resp.Err)
	case resp.Result == nil:
		return nil, fmt.Errorf("meta: empty forward response from %s", addr)
	}
	return &resp, nil
}

// Join asks the cluster, through any of the given Raft addresses, to add this node as a non-voter,
// retrying until the leader accepts or ctx ends. Over an injected transport the in-process path is
// used: the caller then uses AddNonvoter on the leader instead.
func (n *Node) Join(ctx context.Context, seeds []string) error {
	if _, ok := n.fwd.(tcpForwarder); !ok {
		return errors.New("meta: Join needs the TCP transport; with an injected transport call AddNonvoter on the leader")
	}
	payload, _ := json.Marshal(joinRequest{ID: n.cfg.NodeID, Addr: n.cfg.RaftAdvertise})
	backoff := 20 * time.Millisecond
	var last error
	for {
		for _, s := range seeds {
			if s == n.cfg.RaftAdvertise {
				continue
			}
			cctx, cancel := context.WithTimeout(ctx, n.cfg.ProposalTimeout)
			_, err := tcpCall(cctx, n.dial(), s, opJoin, payload)
			cancel()
			if err == nil {
				return nil
			}
			last = err
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("meta: join failed (%v): %w", last, ctx.Err())
		case <-n.closing:
			return ErrClosed
		case <-time.After(backoff):
		}
		backoff = min(backoff*2, time.Second)
	}
}

// dial is how this node opens TCP connections to other nodes' Raft addresses.
func (n *Node) dial() dialFunc {
	if n.cfg.Dial != nil {
		return n.cfg.Dial
	}
	return defaultDial
}
