package meta

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"strings"
	"time"

	"github.com/hashicorp/raft"
)

// Peer is one Raft voter: its node id and Raft address.
type Peer struct {
	ID   int32
	Addr string
}

// Config configures one metadata node. Plain struct: DefaultConfig, then override, then Validate.
type Config struct {
	NodeID        int32
	DataDir       string // raft-wal log + stable store under DataDir/raft, snapshots under DataDir/snapshots
	RaftBind      string // listen address, e.g. 127.0.0.1:9093
	RaftAdvertise string // default RaftBind
	// Voters lists the initial voters (1, 3 or 5). Empty = a single voter: this node. A node not listed
	// is a non-voter that waits to be added (Join / AddNonvoter). Used only to bootstrap a fresh data dir.
	Voters []Peer

	SessionTimeout time.Duration // broker.session.timeout.ms (default 6s)
	// HeartbeatInterval: broker.heartbeat.interval.ms. Default 250 ms (Kafka: 2 s): a heartbeat overdue
	// by half an interval lets the controller probe the broker and fence it at once if its process is gone.
	HeartbeatInterval time.Duration

	// LeaderImbalanceCheckInterval (Kafka's leader.imbalance.check.interval.seconds, default 300 s): how often
	// the controller moves leadership back to preferred replicas that are live and in sync.
	// Negative disables it (auto.leader.rebalance.enable=false).
	LeaderImbalanceCheckInterval time.Duration

	// Transport: nil = a TCP transport on RaftBind. Tests inject raft.InmemTransport.
	Transport raft.Transport
	Logger    *slog.Logger // nil = discard
	// Dial opens this node's outgoing TCP connections to other nodes' Raft addresses (Raft traffic,
	// forwarded proposals, Join). nil = a plain net.Dialer. Fault tests inject a dialer that can cut
	// a node off (a network partition) without killing it.
	Dial func(ctx context.Context, addr string) (net.Conn, error)

	// Raft timing (hashicorp/raft's names). Tests shorten them.
	// Defaults are half of hashicorp/raft's (1 s, 1 s, 500 ms): a dead controller is replaced within
	// 0.5-1 s, which bounds failover when the dead broker was also the Raft leader. A spurious election
	// under load costs a short pause in metadata writes, never a fencing (see controller.step).
	RaftHeartbeatTimeout   time.Duration // default 500ms
	RaftElectionTimeout    time.Duration // default 500ms
	RaftLeaderLeaseTimeout time.Duration // default 250ms
	RaftCommitTimeout      time.Duration // default 50ms
	// MaxAppendEntries bounds how many proposals share one log write (one fsync) and one AppendEntries.
	MaxAppendEntries  int           // default 512 (raft allows up to 1024)
	SnapshotInterval  time.Duration // how often raft checks whether to snapshot; default 2m
	SnapshotThreshold uint64        // log entries since the last snapshot that trigger one; default 8192
	TrailingLogs      uint64        // entries kept after a snapshot for slow followers; default 10240
	// ProposalTimeout bounds one proposal when the caller's context has no deadline. Default 10s.
	ProposalTimeout time.Duration

	forwarder forwarder // nil = in-process registry when Transport is injected, TCP otherwise
	// probe: tests replace the controller's liveness probe (nil = a TCP dial of the Raft address).
	probe func(raftAddr string) bool
}

// DefaultConfig returns Kafka's defaults where Kafka has one.
func DefaultConfig() Config {
	return Config{
		RaftBind:                     "127.0.0.1:9093",
		SessionTimeout:               6 * time.Second,
		HeartbeatInterval:            250 * time.Millisecond,
		LeaderImbalanceCheckInterval: 300 * time.Second,
		RaftHeartbeatTimeout:         500 * time.Millisecond,
		RaftElectionTimeout:          500 * time.Millisecond,
		RaftLeaderLeaseTimeout:       250 * time.Millisecond,
		RaftCommitTimeout:            50 * time.Millisecond,
		MaxAppendEntries:             512,
		SnapshotInterval:             2 * time.Minute,
		SnapshotThreshold:            8192,
		TrailingLogs:                 10240,
		ProposalTimeout:              10 * time.Second,
	}
}

// withDefaults fills zero fields from DefaultConfig (so a partly filled Config works).
func (c Config) withDefaults() Config {
	d := DefaultConfig()
	if c.SessionTimeout == 0 {
		c.SessionTimeout = d.SessionTimeout
	}
	if c.HeartbeatInterval == 0 {
		c.HeartbeatInterval = d.HeartbeatInterval
	}
	if c.LeaderImbalanceCheckInterval == 0 {
		c.LeaderImbalanceCheckInterval = d.LeaderImbalanceCheckInterval
	}
	if c.RaftHeartbeatTimeout == 0 {
		c.RaftHeartbeatTimeout = d.RaftHeartbeatTimeout
	}
	if c.RaftElectionTimeout == 0 {
		c.RaftElectionTimeout = d.RaftElectionTimeout
	}
	if c.RaftLeaderLeaseTimeout == 0 {
		c.RaftLeaderLeaseTimeout = d.RaftLeaderLeaseTimeout
	}
	if c.RaftCommitTimeout == 0 {
		c.RaftCommitTimeout = d.RaftCommitTimeout
	}
	if c.MaxAppendEntries == 0 {
		c.MaxAppendEntries = d.MaxAppendEntries
	}
	if c.SnapshotInterval == 0 {
		c.SnapshotInterval = d.SnapshotInterval
	}
	if c.SnapshotThreshold == 0 {
		c.SnapshotThreshold = d.SnapshotThreshold
	}
	if c.TrailingLogs == 0 {
		c.TrailingLogs = d.TrailingLogs
	}
	if c.ProposalTimeout == 0 {
		c.ProposalTimeout = d.ProposalTimeout
	}
	if c.RaftAdvertise == "" {
		c.RaftAdvertise = c.RaftBind
	}
	if c.Transport != nil {
		c.RaftAdvertise = string(c.Transport.LocalAddr())
	}
	return c
}

// Validate reports the first problem with the configuration.
func (c Config) Validate() error {
	c = c.withDefaults()
	var errs []error
	if c.NodeID < 0 {
		errs = append(errs, fmt.Errorf("node id %d must not be negative", c.NodeID))
	}
	if c.DataDir == "" {
		errs = append(errs, errors.New("data dir is required"))
	}
	if c.Transport == nil && c.RaftBind == "" {
		errs = append(errs, errors.New("raft bind address is required"))
	}
	switch len(c.Voters) {
	case 0, 1, 3, 5:
	default:
		errs = append(errs, fmt.Errorf("%d initial voters: use 1, 3 or 5 (an odd number tolerates the same failures with fewer voters)", len(c.Voters)))
	}
	ids, addrs := map[int32]bool{}, map[string]bool{}
	for _, v := range c.Voters {
		if v.ID < 0 || v.Addr == "" {
			errs = append(errs, fmt.Errorf("voter %d@%q: needs an id >= 0 and an address", v.ID, v.Addr))
		}
		if ids[v.ID] || addrs[v.Addr] {
			errs = append(errs, fmt.Errorf("voter %d@%s listed twice", v.ID, v.Addr))
		}
		ids[v.ID], addrs[v.Addr] = true, true
		if v.ID == c.NodeID && c.Transport == nil && !strings.HasSuffix(c.RaftAdvertise, ":0") && v.Addr != c.RaftAdvertise {
			errs = append(errs, fmt.Errorf("voter %d is listed at %s but this node advertises %s", v.ID, v.Addr, c.RaftAdvertise))
		}
	}
	if c.SessionTimeout <= 0 || c.HeartbeatInterval <= 0 || c.HeartbeatInterval >= c.SessionTimeout {
		errs = append(errs, fmt.Errorf("heartbeat interval %v must be positive and shorter than the session timeout %v", c.HeartbeatInterval, c.SessionTimeout))
	}
	if c.MaxAppendEntries < 1 || c.MaxAppendEntries > 1024 {
		errs = append(errs, fmt.Errorf("max append entries %d must be in 1..1024", c.MaxAppendEntries))
	}
	if c.RaftLeaderLeaseTimeout > c.RaftHeartbeatTimeout {
		errs = append(errs, fmt.Errorf("raft leader lease timeout %v must not exceed the heartbeat timeout %v", c.RaftLeaderLeaseTimeout, c.RaftHeartbeatTimeout))
	}
	if len(errs) > 0 {
		return fmt.Errorf("meta: invalid config: %w", errors.Join(errs...))
	}
	return nil
}
