package meta

import (
	"context"
	"errors"
	"log/slog"
	"os"
	"testing"
	"time"
)

// testLogger is silent unless META_TEST_LOG is set, so raft's chatter does not bury test output.
func testLogger() *slog.Logger {
	if os.Getenv("META_TEST_LOG") != "" {
		return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	return slog.New(slog.DiscardHandler)
}

func fastConfig(id int32, dir string) Config {
	cfg := DefaultConfig()
	cfg.NodeID = id
	cfg.DataDir = dir
	cfg.Logger = testLogger()
	// Short, but not so short that a loaded 2-core CI machine elects a new leader every few seconds.
	cfg.RaftHeartbeatTimeout = 200 * time.Millisecond
	cfg.RaftElectionTimeout = 200 * time.Millisecond
	cfg.RaftLeaderLeaseTimeout = 100 * time.Millisecond
	cfg.RaftCommitTimeout = 5 * time.Millisecond
	cfg.SessionTimeout = time.Second // short, yet tolerant of a loaded CI machine delaying heartbeats
	cfg.HeartbeatInterval = 100 * time.Millisecond
	return cfg
}

// openTestNode opens a single-voter node in a temp dir with Raft on a free loopback port (tune, if
// not nil, adjusts the config first), waits until it leads, registers broker 1, and closes it at
// cleanup.
func openTestNode(t testing.TB, tune func(*Config)) *Node {
	t.Helper()
	cfg := fastConfig(1, t.TempDir())
	cfg.RaftBind = "127.0.0.1:0"
	if tune != nil {
		tune(&cfg)
	}
	n, err := Open(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { n.Close() })
	ctx := ctxT(t)
	if err := n.WaitReady(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := n.RegisterBroker(ctx, BrokerRegistration{ID: 1, Host: "127.0.0.1", Port: 9092}); err != nil {
		t.Fatal(err)
	}
	return n
}

func ctxT(t testing.TB) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func TestSingleNodeTCPBootstrapCreateRestart(t *testing.T) {
	dir := t.TempDir()
	cfg := fastConfig(1, dir)
	cfg.RaftBind = "127.0.0.1:0"
	n, err := Open(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ctx := ctxT(t)
	if err := n.WaitReady(ctx); err != nil {
		t.Fatal(err)
	}
	if !n.IsController() {
		t.Fatal("single voter is not the controller")
	}
	if id, ok := n.LeaderID(); !ok || id != 1 {
		t.Fatalf("leader %d %v", id, ok)
	}
	events, cancel := n.Subscribe()
	defer cancel()
	epoch, err := n.RegisterBroker(ctx, BrokerRegistration{ID: 1, Host: "127.0.0.1", Port: 9092})
	if err != nil {
		t.Fatal(err)
	}
	if epoch <= 0 {
		t.Fatalf("epoch %d", epoch)
	}
	top, err := n.CreateTopic(ctx, TopicSpec{Name: "orders", Partitions: 3, ReplicationFactor: 1, Configs: map[string]string{"retention.ms": "1000"}})
	if err != nil {
		t.Fatal(err)
	}
	if top.ID.IsZero() || len(top.Partitions) != 3 {
		t.Fatalf("topic %+v", top)
	}
	for _, p := range top.Partitions {
		if p.Leader != 1 || p.LeaderEpoch != 0 || len(p.ISR) != 1 || p.Replicas[0] != 1 {
			t.Fatalf("partition %+v", p)
		}
	}
	if _, err := n.CreateTopic(ctx, TopicSpec{Name: "orders", Partitions: 1, ReplicationFactor: 1}); !errors.Is(err, ErrTopicExists) {
		t.Fatalf("second create: %v", err)
	}
	// The TopicCreated event arrives without polling.
	deadline := time.After(5 * time.Second)
	for got := false; !got; {
		select {
		case e := <-events:
			got = e.Kind == TopicCreated && e.Topic == "orders" && e.TopicID == top.ID
		case <-deadline:
			t.Fatal("no TopicCreated event")
		}
	}
	// Restart from a snapshot plus the log entries after it.
	if err := n.Snapshot(); err != nil {
		t.Fatal(err)
	}
	if _, err := n.CreateTopic(ctx, TopicSpec{Name: "after-snapshot", Partitions: 1, ReplicationFactor: 1}); err != nil {
		t.Fatal(err)
	}
	if err := n.ControlledShutdown(ctx); err != nil { // no heartbeats may change the state from here on
		t.Fatal(err)
	}
	digest := n.State().Digest()
	cluster := n.State().ClusterID()
	if err := n.Close(); err != nil {
		t.Fatal(err)
	}

	// Restart from disk: same state, no second bootstrap.
	n2, err := Open(cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer n2.Close()
	if err := n2.WaitReady(ctx); err != nil {
		t.Fatal(err)
	}
	if got := n2.State().ClusterID(); got != cluster {
		t.Fatalf("cluster id %q, want %q", got, cluster)
	}
	if got := n2.State().Digest(); got != digest {
		t.Fatalf("digest after restart %s, want %s", got, digest)
	}
	if _, ok := n2.State().Topic("after-snapshot"); !ok {
		t.Fatal("entry after the snapshot lost")
	}
	if err := n2.DeleteTopic(ctx, "orders"); err != nil {
		t.Fatal(err)
	}
	if _, ok := n2.State().Topic("orders"); ok {
		t.Fatal("topic still there after delete")
	}
	if err := n2.DeleteTopic(ctx, "orders"); !errors.Is(err, ErrUnknownTopic) {
		t.Fatalf("second delete: %v", err)
	}
}

func TestBootstrapTwiceRefused(t *testing.T) {
	dir := t.TempDir()
	cfg := fastConfig(1, dir)
	cfg.RaftBind = "127.0.0.1:0"
	cfg.Voters = []Peer{{ID: 1, Addr: "127.0.0.1:19093"}}
	if err := Bootstrap(cfg); err != nil {
		t.Fatal(err)
	}
	err := Bootstrap(cfg)
	if !errors.Is(err, ErrAlreadyBootstrapped) {
		t.Fatalf("second bootstrap: %v", err)
	}
	other := cfg
	other.NodeID = 2
	other.Voters = []Peer{{ID: 2, Addr: "127.0.0.1:19094"}}
	if _, err := Open(other); err == nil {
		t.Fatal("opening node 1's data dir as node 2 succeeded")
	}
}

func TestConfigValidate(t *testing.T) {
	base := fastConfig(1, "/tmp/x")
	base.RaftBind = "127.0.0.1:9093"
	for _, c := range []struct {
		name string
		mod  func(*Config)
		ok   bool
	}{
		{"defaults", func(*Config) {}, true},
		{"no data dir", func(c *Config) { c.DataDir = "" }, false},
		{"two voters", func(c *Config) { c.Voters = []Peer{{1, "a:1"}, {2, "b:1"}} }, false},
		{"three voters, self elsewhere", func(c *Config) { c.Voters = []Peer{{1, "127.0.0.1:1"}, {2, "b:1"}, {3, "c:1"}} }, false},
		{"three voters", func(c *Config) { c.Voters = []Peer{{1, "127.0.0.1:9093"}, {2, "b:1"}, {3, "c:1"}} }, true},
		{"duplicate voter", func(c *Config) { c.Voters = []Peer{{1, "127.0.0.1:9093"}, {1, "b:1"}, {3, "c:1"}} }, false},
		{"heartbeat >= session", func(c *Config) { c.HeartbeatInterval = c.SessionTimeout }, false},
		{"negative id", func(c *Config) { c.NodeID = -1 }, false},
		{"max append entries", func(c *Config) { c.MaxAppendEntries = 5000 }, false},
	} {
		cfg := base
		c.mod(&cfg)
		if err := cfg.Validate(); (err == nil) != c.ok {
			t.Errorf("%s: %v", c.name, err)
		}
	}
}

// A new controller has not heard from any broker; it must give each one session timeout before fencing.
func TestRestartedControllerGivesBrokersAGracePeriod(t *testing.T) {
	cfg := fastConfig(1, t.TempDir())
	cfg.RaftBind = "127.0.0.1:0"
	cfg.SessionTimeout = 3 * time.Second
	n, err := Open(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ctx := ctxT(t)
	if err := n.WaitReady(ctx); err != nil {
		t.Fatal(err)
	}
	// Broker 7 is registered but no process heartbeats for it.
	if _, err := n.propose(ctx, &cmdRegisterBroker{ID: 7, Host: "h", Port: 7, Incarnation: "x"}, true); err != nil {
		t.Fatal(err)
	}
	n.Close()
	n, err = Open(cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer n.Close()
	if err := n.WaitReady(ctx); err != nil {
		t.Fatal(err)
	}
	elected := time.Now()
	time.Sleep(time.Second)
	if b, _ := n.State().Broker(7); b.Fenced {
		t.Fatal("broker fenced by a controller that had just been elected")
	}
	eventually(t, 30*time.Second, "silent broker fenced", func() bool {
		b, _ := n.State().Broker(7)
		return b.Fenced
	})
	if since := time.Since(elected); since < cfg.SessionTimeout-500*time.Millisecond {
		t.Fatalf("fenced %v after election, before the session timeout", since)
	}
}
