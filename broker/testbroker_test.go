package broker

import (
	"context"
	"log/slog"
	"os"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/sediment-io/sediment/meta"
)

// newTestBroker starts a complete single-node broker (meta with one Raft voter, replica manager,
// Kafka listener, HTTP) on 127.0.0.1 with free ports and a temp data dir, and closes it when the
// test ends. opts adjust the Config before Start (e.g. cfg.AutoCreateTopicsEnable = false).
// Logs go to the test log when SEDIMENT_TEST_LOG=1.
//
//	b := newTestBroker(t)
//	cl := newTestClient(t, b, kgo.DefaultProduceTopic("t"))
//	adm := newTestAdmin(t, b)
func newTestBroker(t testing.TB, opts ...func(*Config)) *Broker {
	t.Helper()
	cfg := testBrokerConfig(t, t.TempDir())
	for _, o := range opts {
		o(&cfg)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	b, err := Start(ctx, cfg)
	if err != nil {
		t.Fatalf("start test broker: %v", err)
	}
	t.Cleanup(func() {
		if err := b.Close(); err != nil {
			t.Errorf("close test broker: %v", err)
		}
	})
	return b
}

// testBrokerConfig is the Config newTestBroker uses, for tests that restart a broker on the same dir.
func testBrokerConfig(t testing.TB, dir string) Config {
	cfg := DefaultConfig()
	cfg.DataDir = dir
	cfg.ObjectStore = "file://" + dir + "/objects"
	cfg.Listen = "127.0.0.1:0"
	cfg.RaftListen = "127.0.0.1:0"
	cfg.HTTPListen = "127.0.0.1:0"
	cfg.Logger = slog.New(slog.DiscardHandler)
	if os.Getenv("SEDIMENT_TEST_LOG") == "1" {
		cfg.Logger = slog.New(slog.NewTextHandler(testLogWriter{t}, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	cfg.MetaConfig = func(mc *meta.Config) {
		// A single voter elects itself; short timeouts keep each test's start well under a second.
		mc.RaftHeartbeatTimeout = 100 * time.Millisecond
		mc.RaftElectionTimeout = 100 * time.Millisecond
		mc.RaftLeaderLeaseTimeout = 50 * time.Millisecond
		mc.RaftCommitTimeout = 5 * time.Millisecond
	}
	return cfg
}

type testLogWriter struct{ t testing.TB }

func (w testLogWriter) Write(p []byte) (int, error) {
	w.t.Helper()
	w.t.Log(string(p))
	return len(p), nil
}

// newTestClient is a kgo client seeded with b, closed at the end of the test.
func newTestClient(t testing.TB, b *Broker, opts ...kgo.Opt) *kgo.Client {
	t.Helper()
	cl, err := kgo.NewClient(append([]kgo.Opt{kgo.SeedBrokers(b.Addr())}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cl.Close)
	return cl
}

// newTestAdmin is a kadm client on a fresh kgo client seeded with b.
func newTestAdmin(t testing.TB, b *Broker) *kadm.Client {
	t.Helper()
	return kadm.NewClient(newTestClient(t, b))
}

// testCtx is a context bounded so that a hung broker fails the test instead of the whole run.
func testCtx(t testing.TB) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	t.Cleanup(cancel)
	return ctx
}
