package meta

import (
	"context"
	"crypto/rand"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/raft"
	wal "github.com/hashicorp/raft-wal"
	"github.com/hashicorp/raft-wal/metadb"
)

// Node is one member of the metadata Raft group: it applies the log locally, serves reads from its own
// copy, forwards writes to the leader, and runs the controller while it is the leader.
type Node struct {
	cfg   Config
	log   *slog.Logger
	raft  *raft.Raft
	st    *stores
	trans raft.Transport
	fsm   *fsm
	fwd   forwarder
	hub   hub
	ctrl  *controller

	controllerID atomic.Int32
	incarnation  string
	reqPrefix    [8]byte
	reqSeq       atomic.Uint64

	applyMu sync.Mutex
	applyCh chan struct{} // closed and replaced after every applied batch

	regMu      sync.Mutex
	reg        *BrokerRegistration
	brokerEp   atomic.Int64
	hbStarted  bool
	hbPaused   atomic.Bool // ControlledShutdown; tests: simulate a broker that stops heartbeating
	hbMu       sync.Mutex  // held around each heartbeat proposal
	closing    chan struct{}
	started    chan struct{} // closed once n.raft is set (forwarding connections may arrive earlier)
	propCh     chan *proposal
	inflight   chan struct{} // batcher: a slot per multi entry in flight
	closeOnce  sync.Once
	closeErr   error
	wg         sync.WaitGroup
	observerCh chan raft.Observation
	observer   *raft.Observer
}

// BrokerRegistration is what a broker process registers about itself.
type BrokerRegistration struct {
	ID   int32
	Host string
	Port int32
	Rack string
}

func serverID(id int32) raft.ServerID { return raft.ServerID(strconv.FormatInt(int64(id), 10)) }

func parseServerID(id raft.ServerID) int32 {
	n, err := strconv.ParseInt(string(id), 10, 32)
	if err != nil {
		return -1
	}
	return int32(n)
}

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// nodeFile pins a data directory to one node id, so a misconfigured restart is refused rather than
// silently joining the group under another identity.
type nodeFile struct {
	NodeID int32
}

func checkNodeFile(dir string, id int32) error {
	p := filepath.Join(dir, "meta-node.json")
	b, err := os.ReadFile(p)
	if err == nil {
		var nf nodeFile
		if err := json.Unmarshal(b, &nf); err != nil {
			return fmt.Errorf("meta: %s: %w", p, err)
		}
		if nf.NodeID != id {
			return fmt.Errorf("meta: data dir %s belongs to node %d, configured node id is %d", dir, nf.NodeID, id)
		}
		return nil
	}
	if !errors.Is(err, os.ErrNotExist) {
		return err
	}
	b, _ = json.Marshal(nodeFile{NodeID: id})
	tmp := p + ".tmp"
	f, err := os.Create(tmp)
	if err != nil {
		return err
	}
	if _, err := f.Write(b); err != nil {
		f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	if err := os.Rename(tmp, p); err != nil {
		return err
	}
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}

// walStore is raft-wal with one correction: raft-wal truncates the head of the log logically and keeps
// serving entries below the new first index until their segment file is deleted. Raft must see those
// entries as gone (ErrLogNotFound), so that a follower that needs them gets the snapshot instead of a
// mix of log entries the snapshot already covers; and so that behaviour does not depend on segment size.
type walStore struct {
	*wal.WAL
}

func (w walStore) GetLog(index uint64, l *raft.Log) error {
	first, err := w.WAL.FirstIndex()
	if err != nil {
		return err
	}
	if index < first {
		return raft.ErrLogNotFound
	}
	return w.WAL.GetLog(index, l)
}

type stores struct {
	wal   walStore
	meta  *metadb.BoltMetaDB
	snaps *raft.FileSnapshotStore
}

// close closes the WAL and its metadata database: raft-wal v0.4.0's Close leaves the bolt file (and
// its flock) open, so a node reopened in the same process would block forever on the lock.
func (s *stores) close() error {
	err := s.wal.Close()
	if merr := s.meta.Close(); err == nil {
		err = merr
	}
	return err
}

func openStores(cfg Config, logger *slog.Logger) (*stores, error) {
	if err := os.MkdirAll(filepath.Join(cfg.DataDir, "raft"), 0o755); err != nil {
		return nil, err
	}
	if err := checkNodeFile(cfg.DataDir, cfg.NodeID); err != nil {
		return nil, err
	}
	mdb := &metadb.BoltMetaDB{}
	w, err := wal.Open(filepath.Join(cfg.DataDir, "raft"), wal.WithLogger(newHclog(logger, "raft-wal")), wal.WithMetaStore(mdb))
	if err != nil {
		mdb.Close()
		return nil, fmt.Errorf("meta: open raft-wal: %w", err)
	}
	snaps, err := raft.NewFileSnapshotStoreWithLogger(cfg.DataDir, 3, newHclog(logger, "snapshots"))
	if err != nil {
		w.Close()
		mdb.Close()
		return nil, fmt.Errorf("meta: open snapshot store: %w", err)
	}
	return &stores{walStore{w}, mdb, snaps}, nil
}

func (c Config) raftConfig(logger *slog.Logger) *raft.Config {
	rc := raft.DefaultConfig()
	rc.LocalID = serverID(c.NodeID)
	rc.HeartbeatTimeout = c.RaftHeartbeatTimeout
	rc.ElectionTimeout = c.RaftElectionTimeout
	rc.LeaderLeaseTimeout = c.RaftLeaderLeaseTimeout
	rc.CommitTimeout = c.RaftCommitTimeout
	rc.MaxAppendEntries = c.MaxAppendEntries
	rc.BatchApplyCh = true // proposals queue in a channel as deep as MaxAppendEntries: one fsync for the lot
	rc.SnapshotInterval = c.SnapshotInterval
	rc.SnapshotThreshold = c.SnapshotThreshold
	rc.TrailingLogs = c.TrailingLogs
	rc.Logger = newHclog(logger, "raft")
	return rc
}

// initialVoters is the bootstrap configuration: Config.Voters, or this node alone.
func (c Config) initialVoters() raft.Configuration {
	var conf raft.Configuration
	if len(c.Voters) == 0 {
		conf.Servers = []raft.Server{{Suffrage: raft.Voter, ID: serverID(c.NodeID), Address: raft.ServerAddress(c.RaftAdvertise)}}
		return conf
	}
	for _, v := range c.Voters {
		conf.Servers = append(conf.Servers, raft.Server{Suffrage: raft.Voter, ID: serverID(v.ID), Address: raft.ServerAddress(v.Addr)})
	}
	return conf
}

func (c Config) isInitialVoter() bool {
	if len(c.Voters) == 0 {
		return true
	}
	for _, v := range c.Voters {
		if v.ID == c.NodeID {
			return true
		}
	}
	return false
}

// Bootstrap formats a fresh data directory with the initial voter configuration (like
// kafka-storage format). It refuses with ErrAlreadyBootstrapped if the directory already holds Raft
// state. Open bootstraps by itself when the directory is empty, so calling this is optional.
func Bootstrap(cfg Config) error {
	cfg = cfg.withDefaults()
	if err := cfg.Validate(); err != nil {
		return err
	}
	logger := cfg.Logger
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	if !cfg.isInitialVoter() {
		return fmt.Errorf("meta: node %d is not among the initial voters; it joins as a non-voter instead", cfg.NodeID)
	}
	st, err := openStores(cfg, logger)
	if err != nil {
		return err
	}
	defer st.close()
	return bootstrap(cfg, logger, st)
}

func bootstrap(cfg Config, logger *slog.Logger, st *stores) error {
	has, err := raft.HasExistingState(st.wal, st.wal, st.snaps)
	if err != nil {
		return err
	}
	if has {
		return fmt.Errorf("%w (%s)", ErrAlreadyBootstrapped, cfg.DataDir)
	}
	// BootstrapCluster only writes the log and stable store; the transport is not used.
	trans := cfg.Transport
	if trans == nil {
		_, trans = raft.NewInmemTransport(raft.ServerAddress(cfg.RaftAdvertise))
	}
	if err := raft.BootstrapCluster(cfg.raftConfig(logger), st.wal, st.wal, st.snaps, trans, cfg.initialVoters()); err != nil {
		return fmt.Errorf("meta: bootstrap: %w", err)
	}
	return nil
}

// Open starts the node: opens (or creates) its Raft state under DataDir, bootstraps the initial voter
// configuration if the directory is fresh and this node is an initial voter, and joins the group.
func Open(cfg Config) (*Node, error) {
	cfg = cfg.withDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	logger := cfg.Logger
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	logger = logger.With("node", cfg.NodeID)
	st, err := openStores(cfg, logger)
	if err != nil {
		return nil, err
	}
	n := &Node{cfg: cfg, log: logger, st: st, closing: make(chan struct{}),
		started: make(chan struct{}), propCh: make(chan *proposal, 4*maxBatchCount),
		inflight: make(chan struct{}, maxInflightBatches), applyCh: make(chan struct{}), incarnation: randomHex(16)}
	n.controllerID.Store(-1)
	_, _ = rand.Read(n.reqPrefix[:])
	n.cfg = cfg
	fail := func(err error) (*Node, error) {
		st.close()
		return nil, err
	}
	n.trans = cfg.Transport
	if n.trans == nil {
		var adv net.Addr
		if cfg.RaftAdvertise != cfg.RaftBind {
			a, err := net.ResolveTCPAddr("tcp", cfg.RaftAdvertise)
			if err != nil {
				return fail(fmt.Errorf("meta: raft advertise address: %w", err))
			}
			adv = a
		}
		mux, err := newMuxListener(cfg.RaftBind, adv)
		if err != nil {
			return fail(fmt.Errorf("meta: raft transport: %w", err))
		}
		mux.serve = n.serveForward
		mux.dial = n.dial()
		nt := raft.NewNetworkTransportWithConfig(&raft.NetworkTransportConfig{
			Stream: mux, MaxPool: 3, Timeout: 10 * time.Second, Logger: newHclog(logger, "transport"),
		})
		n.trans = nt
		// With port 0 the real address is known only now.
		cfg.RaftAdvertise = string(nt.LocalAddr())
		n.cfg.RaftAdvertise = cfg.RaftAdvertise
	}
	has, err := raft.HasExistingState(st.wal, st.wal, st.snaps)
	if err != nil {
		n.closeTransport()
		return fail(err)
	}
	if !has && cfg.isInitialVoter() {
		if err := bootstrap(cfg, logger, st); err != nil {
			n.closeTransport()
			return fail(err)
		}
		logger.Info("bootstrapped a new metadata cluster", "voters", len(cfg.initialVoters().Servers))
	}
	n.fwd = cfg.forwarder
	if n.fwd == nil {
		if cfg.Transport == nil {
			n.fwd = tcpForwarder{dial: n.dial()}
		} else {
			n.fwd = defaultNet
		}
	}
	n.fsm = newFSM(&n.controllerID)
	n.ctrl = newController(n)
	n.fsm.after = n.afterApply
	r, err := raft.NewRaft(cfg.raftConfig(logger), n.fsm, st.wal, st.wal, st.snaps, n.trans)
	if err != nil {
		n.closeTransport()
		return fail(fmt.Errorf("meta: start raft: %w", err))
	}
	n.raft = r
	close(n.started)
	n.observerCh = make(chan raft.Observation, 16)
	n.observer = raft.NewObserver(n.observerCh, false, func(o *raft.Observation) bool {
		_, ok := o.Data.(raft.LeaderObservation)
		return ok
	})
	r.RegisterObserver(n.observer)
	n.fwd.register(raft.ServerAddress(cfg.RaftAdvertise), n)
	n.wg.Add(3)
	go n.batcher()
	go n.watchLeader()
	go n.ctrl.run()
	return n, nil
}

func (n *Node) closeTransport() {
	if c, ok := n.trans.(io.Closer); ok && n.cfg.Transport == nil {
		c.Close()
	}
}

// Close stops the node. It does not deregister the broker: to the controller, a closed node is a
// broker that stopped heartbeating.
func (n *Node) Close() error {
	n.closeOnce.Do(func() {
		close(n.closing)
		n.fwd.unregister(raft.ServerAddress(n.cfg.RaftAdvertise), n)
		n.raft.DeregisterObserver(n.observer)
		err := n.raft.Shutdown().Error()
		n.wg.Wait()
		n.closeTransport()
		if werr := n.st.close(); err == nil {
			err = werr
		}
		n.hub.closeAll()
		n.closeErr = err
	})
	return n.closeErr
}

func (n *Node) watchLeader() {
	defer n.wg.Done()
	update := func() {
		_, id := n.raft.LeaderWithID()
		nid := int32(-1)
		if id != "" {
			nid = parseServerID(id)
		}
		if n.controllerID.Swap(nid) != nid {
			n.hub.publish([]Event{{Kind: ControllerChanged, BrokerID: nid, Partition: -1}})
		}
	}
	update()
	t := time.NewTicker(250 * time.Millisecond) // observations can be dropped under load; re-check
	defer t.Stop()
	for {
		select {
		case <-n.closing:
			return
		case <-n.observerCh:
			update()
		case <-t.C:
			update()
		}
	}
}

// afterApply runs on raft's FSM goroutine after each applied batch.
func (n *Node) afterApply(st *State, evs []Event, heard []int32) {
	if len(heard) > 0 {
		n.ctrl.heard(heard)
	}
	n.applyMu.Lock()
	close(n.applyCh)
	n.applyCh = make(chan struct{})
	n.applyMu.Unlock()
	n.hub.publish(evs)
}

// State returns the latest applied state. Cheap; never blocks.
func (n *Node) State() *State { return n.fsm.state.Load() }

// Subscribe returns a channel of change events; cancel stops delivery and closes the channel.
// Delivery never blocks the state machine: undelivered duplicates are coalesced.
func (n *Node) Subscribe() (events <-chan Event, cancel func()) { return n.hub.subscribe() }

// LeaderID returns the current Raft leader (the controller), if known.
func (n *Node) LeaderID() (int32, bool) {
	_, id := n.raft.LeaderWithID()
	if id == "" {
		return -1, false
	}
	return parseServerID(id), true
}

// IsController reports whether this node is the Raft leader.
func (n *Node) IsController() bool { return n.raft.State() == raft.Leader }

// NodeID is this node's id.
func (n *Node) NodeID() int32 { return n.cfg.NodeID }

func (n *Node) waitApplied(ctx context.Context, idx uint64) error {
	for {
		n.applyMu.Lock()
		ch := n.applyCh
		n.applyMu.Unlock()
		if n.fsm.applied.Load() >= idx {
			return nil
		}
		select {
		case <-ch:
		case <-ctx.Done():
			return fmt.Errorf("meta: waiting to apply index %d: %w", idx, ctx.Err())
		case <-n.closing:
			return ErrClosed
		}
	}
}

// CatchUp returns once this node has applied everything the leader had committed when CatchUp was
// called (a no-op entry's round trip): State() read after it is at least that new. A node's own state
// can trail the committed log by a heartbeat; dry runs (validateOnly) call this so that they answer
// from the state the real request would meet, as Kafka's controller answers them.
func (n *Node) CatchUp(ctx context.Context) error {
	_, err := n.propose(ctx, &cmdNoop{}, false)
	return err
}

// WaitReady returns once a leader exists, a cluster id is set, and this node has applied everything the
// leader had committed when WaitReady was called (a no-op entry round trip).
func (n *Node) WaitReady(ctx context.Context) error {
	if err := n.CatchUp(ctx); err != nil {
		return err
	}
	for {
		n.applyMu.Lock()
		ch := n.applyCh
		n.applyMu.Unlock()
		if n.State().ClusterID() != "" {
			return nil
		}
		select {
		case <-ch:
		case <-ctx.Done():
			return ctx.Err()
		case <-n.closing:
			return ErrClosed
		}
	}
}

// nextReqID: a random 8-byte prefix drawn when the node opened plus a counter, so ids are unique
// across nodes and restarts (with overwhelming probability) without a getrandom call per proposal.
func (n *Node) nextReqID() reqID {
	var id reqID
	copy(id[:8], n.reqPrefix[:])
	binary.BigEndian.PutUint64(id[8:], n.reqSeq.Add(1))
	return id
}

func retryable(err error) bool {
	return errors.Is(err, raft.ErrNotLeader) || errors.Is(err, raft.ErrLeadershipLost) ||
		errors.Is(err, raft.ErrLeadershipTransferInProgress) || errors.Is(err, raft.ErrAbortedByRestore) ||
		errors.Is(err, raft.ErrEnqueueTimeout) || errors.Is(err, ErrNotController) || errors.Is(err, errUnreachable)
}

// propose commits a command and returns once it is applied locally. dedup gives it a request id so a
// retry after an indeterminate failure (ErrLeadershipLost) is recognised and not applied twice.
// The returned error is the command's rejection (an *Error) or why it could not be committed.
func (n *Node) propose(ctx context.Context, body any, dedup bool) (*applyResult, error) {
	var id reqID
	if dedup {
		id = n.nextReqID()
	}
	data := encodeCommand(id, body)
	if len(data) > maxCommandSize {
		// Refuse here rather than commit an entry every node would reject as corrupt.
		return nil, reject(ErrInvalidRequest, "%s command of %d bytes exceeds the %d-byte entry limit; split it", kindOf(body), len(data), maxCommandSize)
	}
	res, err := n.proposeBytes(ctx, data)
	if err != nil {
		return nil, err
	}
	return res, res.err()
}

func (n *Node) proposeBytes(ctx context.Context, data []byte) (*applyResult, error) {
	// A caller without a deadline gets ProposalTimeout — but the timer is made only when needed (a
	// forward or a retry): on the leader's first attempt raft.Apply's own timeout bounds the enqueue, and
	// raft answers every dequeued proposal. This saves a timer and a context per local proposal.
	var cancel context.CancelFunc
	bound := func() {
		if cancel != nil {
			return
		}
		cancel = func() {}
		if _, ok := ctx.Deadline(); !ok {
			ctx, cancel = context.WithTimeout(ctx, n.cfg.ProposalTimeout)
		}
	}
	defer func() {
		if cancel != nil {
			cancel()
		}
	}()
	backoff := 5 * time.Millisecond
	var last error
	for {
		select {
		case <-n.closing:
			return nil, ErrClosed
		default:
		}
		var res *applyResult
		var err error
		if n.raft.State() == raft.Leader {
			res, err = n.applyLocal(ctx, data)
		} else if addr, _ := n.raft.LeaderWithID(); addr != "" {
			bound()
			res, err = n.fwd.forward(ctx, raft.ServerAddress(n.cfg.RaftAdvertise), addr, data)
			if err == nil {
				err = n.waitApplied(ctx, res.Index)
			}
		} else {
			err = fmt.Errorf("%w: no leader known", ErrNotController)
		}
		if err == nil {
			return res, nil
		}
		if !retryable(err) {
			return nil, err
		}
		last = err
		bound()
		t := time.NewTimer(backoff)
		select {
		case <-ctx.Done():
			t.Stop()
			return nil, fmt.Errorf("meta: proposal not committed (%v): %w", last, ctx.Err())
		case <-n.closing:
			t.Stop()
			return nil, ErrClosed
		case <-t.C:
		}
		backoff = min(backoff*2, 100*time.Millisecond)
	}
}

// applyLocal hands data to the batcher (this node is the leader) and waits for its result.
func (n *Node) applyLocal(ctx context.Context, data []byte) (*applyResult, error) {
	p := &proposal{data: data, done: make(chan proposalResult, 1)}
	select {
	case n.propCh <- p:
	case <-ctx.Done():
		return nil, ctx.Err()
	case <-n.closing:
		return nil, ErrClosed
	}
	select {
	case r := <-p.done:
		return r.res, r.err
	case <-ctx.Done():
		return nil, fmt.Errorf("meta: proposal outcome unknown: %w", ctx.Err())
	case <-n.closing:
		return nil, ErrClosed
	}
}

// handleForward serves a proposal forwarded by another node. Only the leader accepts it.
func (n *Node) handleForward(ctx context.Context, data []byte) (*applyResult, error) {
	if n.raft.State() != raft.Leader {
		return nil, fmt.Errorf("%w: node %d is not the leader", ErrNotController, n.cfg.NodeID)
	}
	return n.applyLocal(ctx, data)
}

// AddNonvoter adds a node that receives the metadata log without voting (a broker that joined after
// the initial voters). Must reach the leader; forwarded there if this node is not it.
func (n *Node) AddNonvoter(ctx context.Context, id int32, addr string) error {
	if n.raft.State() != raft.Leader {
		return fmt.Errorf("%w: AddNonvoter must run on the leader (node %d is not)", ErrNotController, n.cfg.NodeID)
	}
	timeout := n.cfg.ProposalTimeout
	if dl, ok := ctx.Deadline(); ok {
		timeout = time.Until(dl)
	}
	return membershipErr(n.raft.AddNonvoter(serverID(id), raft.ServerAddress(addr), 0, timeout).Error())
}

// AddVoter adds a voter (or promotes a non-voter) on the leader. Grow the voter set to an odd size.
func (n *Node) AddVoter(ctx context.Context, id int32, addr string) error {
	if n.raft.State() != raft.Leader {
		return fmt.Errorf("%w: AddVoter must run on the leader (node %d is not)", ErrNotController, n.cfg.NodeID)
	}
	return membershipErr(n.raft.AddVoter(serverID(id), raft.ServerAddress(addr), 0, n.timeout(ctx)).Error())
}

// membershipErr marks a lost leadership as ErrNotController, so callers retry on the new leader.
func membershipErr(err error) error {
	if err != nil && retryable(err) && !errors.Is(err, ErrNotController) {
		return fmt.Errorf("%w: %v", ErrNotController, err)
	}
	return err
}

// RemoveServer removes a voter or non-voter from the Raft configuration, on the leader.
func (n *Node) RemoveServer(ctx context.Context, id int32) error {
	if n.raft.State() != raft.Leader {
		return fmt.Errorf("%w: RemoveServer must run on the leader (node %d is not)", ErrNotController, n.cfg.NodeID)
	}
	return membershipErr(n.raft.RemoveServer(serverID(id), 0, n.timeout(ctx)).Error())
}

// Member is one server in the Raft configuration.
type Member struct {
	ID    int32
	Addr  string
	Voter bool
}

// Members lists the current Raft configuration (voters and non-voters).
func (n *Node) Members() ([]Member, error) {
	f := n.raft.GetConfiguration()
	if err := f.Error(); err != nil {
		return nil, err
	}
	var out []Member
	for _, s := range f.Configuration().Servers {
		out = append(out, Member{ID: parseServerID(s.ID), Addr: string(s.Address), Voter: s.Suffrage == raft.Voter})
	}
	return out, nil
}

func (n *Node) timeout(ctx context.Context) time.Duration {
	if dl, ok := ctx.Deadline(); ok {
		return time.Until(dl)
	}
	return n.cfg.ProposalTimeout
}

// Snapshot forces a Raft snapshot now (tests, operators).
func (n *Node) Snapshot() error { return n.raft.Snapshot().Error() }

// IsMember reports whether this node is in its latest Raft configuration (a voter or non-voter). A
// node that is not — a fresh data dir whose id is not among the initial voters — must Join first.
func (n *Node) IsMember() (bool, error) {
	f := n.raft.GetConfiguration()
	if err := f.Error(); err != nil {
		return false, err
	}
	for _, s := range f.Configuration().Servers {
		if s.ID == serverID(n.cfg.NodeID) {
			return true, nil
		}
	}
	return false, nil
}
