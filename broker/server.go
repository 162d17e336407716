package broker

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/sediment-io/sediment/meta"
	"github.com/sediment-io/sediment/tiering"
)

// Broker is one Sediment node: the Kafka listener and its connections, the metadata node (Raft),
// the partition replicas, and the HTTP endpoint for metrics and health.
type Broker struct {
	cfg      Config
	log      *slog.Logger
	meta     *meta.Node
	replicas *ReplicaManager   // broker-data: partition logs and their state
	groups   *groupCoordinator // groups: consumer group coordinator
	tier     *tierManager      // tiering: the object store and reads from it (tiering.go)
	metrics  *metrics
	reqMem   *requestMemory // queued.max.request.bytes (request_memory.go)

	ctx    context.Context // cancelled when Close starts: long-polls return, loops stop
	cancel context.CancelFunc

	ln       net.Listener
	advHost  string // advertised Kafka host and port (Metadata, DescribeCluster)
	advPort  int32
	httpLn   net.Listener
	httpSrv  *http.Server
	ready    atomic.Bool
	closeMu  sync.Mutex
	closed   bool
	connsMu  sync.Mutex
	conns    map[net.Conn]struct{}
	connsWG  sync.WaitGroup
	acceptWG sync.WaitGroup
}

// Start opens everything and returns a broker that is serving: metadata is ready, this node is
// registered, the replica manager runs, and the Kafka and HTTP listeners accept. ctx bounds the
// start (waiting for a Raft quorum can take a while in a multi-node cluster), not the broker's life.
func Start(ctx context.Context, cfg Config) (_ *Broker, err error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	b := &Broker{cfg: cfg, log: cfg.Logger, conns: map[net.Conn]struct{}{}, metrics: newMetrics(), reqMem: newRequestMemory(cfg.QueuedMaxRequestBytes)}
	b.ctx, b.cancel = context.WithCancel(context.Background())
	defer func() {
		if err != nil {
			b.Close()
		}
	}()

	if err := os.MkdirAll(filepath.Join(cfg.DataDir, "logs"), 0o755); err != nil {
		return nil, fmt.Errorf("data dir: %w", err)
	}
	// The object store is opened first, so that a bad URL, an unwritable file:// directory or a
	// missing AWS region is found at the first start, before anything else is running.
	store, err := tiering.OpenURL(ctx, cfg.ObjectStore)
	if err != nil {
		return nil, fmt.Errorf("object store: %w", err)
	}
	b.tier = newTierManager(b, store)
	if b.ln, err = net.Listen("tcp", cfg.Listen); err != nil {
		return nil, fmt.Errorf("listen %s: %w", cfg.Listen, err)
	}
	if err := b.setAdvertised(); err != nil {
		return nil, err
	}
	if cfg.HTTPListen != "" {
		if b.httpLn, err = net.Listen("tcp", cfg.HTTPListen); err != nil {
			return nil, fmt.Errorf("http listen %s: %w", cfg.HTTPListen, err)
		}
		b.startHTTP()
	}

	mc := meta.DefaultConfig()
	mc.NodeID = cfg.NodeID
	mc.DataDir = filepath.Join(cfg.DataDir, "meta")
	mc.RaftBind = cfg.RaftListen
	mc.RaftAdvertise = cfg.RaftAdvertise
	for _, v := range cfg.Voters {
		mc.Voters = append(mc.Voters, meta.Peer{ID: v.ID, Addr: v.Addr})
	}
	mc.Logger = b.log.With("component", "meta")
	if cfg.MetaConfig != nil {
		cfg.MetaConfig(&mc)
	}
	if b.meta, err = meta.Open(mc); err != nil {
		return nil, fmt.Errorf("meta: %w", err)
	}
	if err := b.joinAsNonvoter(ctx); err != nil {
		return nil, err
	}
	if err := b.meta.WaitReady(ctx); err != nil {
		return nil, fmt.Errorf("meta: waiting for a Raft leader: %w", err)
	}
	epoch, err := b.meta.RegisterBroker(ctx, meta.BrokerRegistration{ID: cfg.NodeID, Host: b.advHost, Port: b.advPort, Rack: cfg.Rack})
	if err != nil {
		return nil, fmt.Errorf("meta: registering broker %d: %w", cfg.NodeID, err)
	}
	b.log.Info("broker registered", "node_id", cfg.NodeID, "broker_epoch", epoch,
		"cluster_id", b.meta.State().ClusterID(), "advertised", net.JoinHostPort(b.advHost, strconv.Itoa(int(b.advPort))))

	if b.replicas, err = newReplicaManager(b); err != nil {
		return nil, fmt.Errorf("replica manager: %w", err)
	}
	b.groups = newGroupCoordinator(b)
	// The controller's tiering duties (deleted topics' objects, the bucket sweep) run whether or
	// not this broker holds a replica: a controller with none would otherwise never purge a
	// deleted topic's objects.
	b.tier.start()

	b.acceptWG.Add(1)
	go b.acceptLoop()
	b.ready.Store(true)
	b.log.Info("sediment broker started", "kafka", b.ln.Addr().String(), "raft", cfg.RaftListen,
		"http", b.HTTPAddr(), "data_dir", cfg.DataDir, "object_store", cfg.ObjectStore)
	return b, nil
}

// joinAsNonvoter makes a broker that is not among the initial voters (a node added to a running
// cluster) a Raft non-voter through the voters' addresses, once: a restarted member is already in
// the configuration it recovered. Non-voters replicate the metadata log, serve reads from it and
// forward writes; they host partitions like any broker (placement is over registered live brokers).
func (b *Broker) joinAsNonvoter(ctx context.Context) error {
	if len(b.cfg.Voters) == 0 {
		return nil
	}
	member, err := b.meta.IsMember()
	if err != nil || member {
		return err
	}
	var seeds []string
	for _, v := range b.cfg.Voters {
		seeds = append(seeds, v.Addr)
	}
	b.log.Info("not a Raft member yet: joining as a non-voter", "voters", seeds)
	if err := b.meta.Join(ctx, seeds); err != nil {
		return fmt.Errorf("meta: joining the cluster through %v: %w", seeds, err)
	}
	return nil
}

func (b *Broker) setAdvertised() error {
	adv := b.cfg.Advertise
	if adv == "" {
		adv = b.ln.Addr().String()
	}
	hp, err := splitHostPort(adv)
	if err != nil {
		return fmt.Errorf("advertise: %v", err)
	}
	if hp.port == 0 { // advertised host with the bound (maybe ephemeral) port
		hp.port = int32(b.ln.Addr().(*net.TCPAddr).Port)
	}
	if ip := net.ParseIP(hp.host); hp.host == "" || (ip != nil && ip.IsUnspecified()) {
		// Clients cannot connect to 0.0.0.0; advertise the host name as Kafka does.
		h, err := os.Hostname()
		if err != nil {
			return fmt.Errorf("advertise: listening on %s needs --advertise: %v", adv, err)
		}
		hp.host = h
	}
	b.advHost, b.advPort = hp.host, hp.port
	return nil
}

// Addr is the bound Kafka listener address (host:port), useful with port 0.
func (b *Broker) Addr() string { return b.ln.Addr().String() }

// HTTPAddr is the bound HTTP address, "" when HTTP is off.
func (b *Broker) HTTPAddr() string {
	if b.httpLn == nil {
		return ""
	}
	return b.httpLn.Addr().String()
}

// ClusterID is the cluster id chosen by the metadata layer.
func (b *Broker) ClusterID() string { return b.meta.State().ClusterID() }

// Ready reports whether the broker is serving (false before Start returns and once Close began).
func (b *Broker) Ready() bool { return b.ready.Load() }

func (b *Broker) acceptLoop() {
	defer b.acceptWG.Done()
	var delay time.Duration
	for {
		nc, err := b.ln.Accept()
		if err != nil {
			if b.ctx.Err() != nil || errors.Is(err, net.ErrClosed) {
				return
			}
			// Temporary failures (EMFILE…): back off instead of spinning, as net/http does.
			delay = min(max(2*delay, 5*time.Millisecond), time.Second)
			b.log.Warn("accept failed", "err", err, "retry_in", delay)
			select {
			case <-time.After(delay):
			case <-b.ctx.Done():
				return
			}
			continue
		}
		delay = 0
		if tc, ok := nc.(*net.TCPConn); ok {
			tc.SetNoDelay(true)
		}
		b.connsMu.Lock()
		if b.ctx.Err() != nil {
			b.connsMu.Unlock()
			nc.Close()
			return
		}
		b.conns[nc] = struct{}{}
		b.connsWG.Add(1)
		b.connsMu.Unlock()
		go func() {
			defer b.connsWG.Done()
			b.serveConn(b.ctx, nc)
			b.connsMu.Lock()
			delete(b.conns, nc)
			b.connsMu.Unlock()
		}()
	}
}

// shutdownGrace bounds how long Close waits for in-flight requests to be answered.
const shutdownGrace = 10 * time.Second

// Close shuts down gracefully: a controlled shutdown when other brokers are live (leaderships move
// first, see controlledShutdown), then stop accepting, let each connection finish the request it is
// serving and write its response (long-polls return early when b.ctx is cancelled), then close the
// replica manager (clean-shutdown markers), the metadata node and the HTTP server. Safe to call twice.
func (b *Broker) Close() error {
	b.closeMu.Lock()
	defer b.closeMu.Unlock()
	if b.closed {
		return nil
	}
	b.closed = true
	b.ready.Store(false)
	b.log.Info("broker shutting down")
	b.controlledShutdown()
	b.cancel()

	var errs []error
	if b.ln != nil {
		b.ln.Close()
		b.acceptWG.Wait()
	}
	// Wake readers blocked waiting for a next request; a reader in the middle of a handler finishes
	// it and its response is flushed by the writer before the socket closes.
	b.connsMu.Lock()
	for nc := range b.conns {
		nc.SetReadDeadline(time.Now())
	}
	b.connsMu.Unlock()
	done := make(chan struct{})
	go func() { b.connsWG.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(shutdownGrace):
		b.log.Warn("connections did not drain in time; closing them")
		b.connsMu.Lock()
		for nc := range b.conns {
			nc.Close()
		}
		b.connsMu.Unlock()
		<-done
	}
	if b.groups != nil {
		b.groups.close() // flushes the offset-commit batcher, which needs meta still open
	}
	if b.replicas != nil {
		if err := b.replicas.Close(); err != nil {
			errs = append(errs, fmt.Errorf("replica manager: %w", err))
		}
	}
	if b.meta != nil {
		if err := b.meta.Close(); err != nil {
			errs = append(errs, fmt.Errorf("meta: %w", err))
		}
	}
	if b.tier != nil {
		if err := b.tier.close(); err != nil {
			errs = append(errs, fmt.Errorf("object store: %w", err))
		}
	}
	if b.httpSrv != nil {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		b.httpSrv.Shutdown(ctx)
		cancel()
	}
	err := errors.Join(errs...)
	b.log.Info("broker stopped", "err", err)
	return err
}

// controlledShutdownTimeout bounds the controlled-shutdown proposal (a Raft round); without a
// quorum the broker shuts down anyway and its session expires.
const controlledShutdownTimeout = 5 * time.Second

// controlledShutdown is Kafka's controlled shutdown, run first in Close while the listener still
// answers: the broker fences itself through meta, so every partition it leads moves to an in-sync
// replica now, instead of after broker.session.timeout.ms, and clients that ask get the new leader.
// Only when another live broker exists (with none, fencing would just leave the partitions
// leaderless until this broker registers again, as a restart does) and a controller is known.
func (b *Broker) controlledShutdown() {
	if b.meta == nil || b.replicas == nil {
		return // Start failed before registering
	}
	if _, ok := b.meta.LeaderID(); !ok || !b.otherLiveBrokers() {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), controlledShutdownTimeout)
	defer cancel()
	start := time.Now()
	if err := b.meta.ControlledShutdown(ctx); err != nil {
		b.log.Warn("controlled shutdown failed; leaderships move when the session expires", "err", err)
		return
	}
	b.log.Info("controlled shutdown: fenced, leaderships moved", "took", time.Since(start).Round(time.Millisecond))
}

// otherLiveBrokers reports whether a broker other than this one is registered and not fenced.
func (b *Broker) otherLiveBrokers() bool {
	for _, br := range b.meta.State().Brokers() {
		if br.ID != b.cfg.NodeID && !br.Fenced {
			return true
		}
	}
	return false
}

var _ io.Closer = (*Broker)(nil)
