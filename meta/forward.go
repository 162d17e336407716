package meta

import (
	"context"
	"errors"
	"fmt"
	"sync"

	"github.com/hashicorp/raft"
)

// errUnreachable: the leader could not be reached; the proposal is retried.
var errUnreachable = errors.New("meta: leader unreachable")

// forwarder carries a proposal from a follower to the leader and brings back the result.
type forwarder interface {
	forward(ctx context.Context, from, leader raft.ServerAddress, data []byte) (*applyResult, error)
	register(addr raft.ServerAddress, n *Node)
	unregister(addr raft.ServerAddress, n *Node)
}

// inprocNet forwards between nodes in one process, found by Raft address. It is what in-process
// clusters (tests, a single-process deployment) use; cut lets tests drop a node's forwarding too.
type inprocNet struct {
	mu    sync.Mutex
	nodes map[raft.ServerAddress]*Node
	cut   map[raft.ServerAddress]bool
}

var defaultNet = newInprocNet()

func newInprocNet() *inprocNet {
	return &inprocNet{nodes: map[raft.ServerAddress]*Node{}, cut: map[raft.ServerAddress]bool{}}
}

func (f *inprocNet) register(addr raft.ServerAddress, n *Node) {
	f.mu.Lock()
	f.nodes[addr] = n
	f.mu.Unlock()
}

func (f *inprocNet) unregister(addr raft.ServerAddress, n *Node) {
	f.mu.Lock()
	if f.nodes[addr] == n {
		delete(f.nodes, addr)
	}
	f.mu.Unlock()
}

func (f *inprocNet) setCut(addr raft.ServerAddress, cut bool) {
	f.mu.Lock()
	f.cut[addr] = cut
	f.mu.Unlock()
}

func (f *inprocNet) forward(ctx context.Context, from, leader raft.ServerAddress, data []byte) (*applyResult, error) {
	f.mu.Lock()
	n := f.nodes[leader]
	cut := f.cut[leader] || f.cut[from]
	f.mu.Unlock()
	if n == nil || cut {
		return nil, fmt.Errorf("%w: %s", errUnreachable, leader)
	}
	res, err := n.handleForward(ctx, data)
	if errors.Is(err, ErrClosed) {
		return nil, fmt.Errorf("%w: %s is shutting down", errUnreachable, leader)
	}
	if err != nil {
		return nil, err
	}
	cp := *res // the caller owns its copy
	return &cp, nil
}
