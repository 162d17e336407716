package broker

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sediment-io/sediment/meta"

	"github.com/sediment-io/sediment/internal/testport"
)

// freePort is a loopback address for Raft voter addresses that must be known before the brokers
// start (testport: below the ephemeral range, never handed out twice).
func freePort(t testing.TB) string {
	t.Helper()
	return testport.Free(t)
}

// fastClusterMeta shortens Raft timings for in-process clusters and sets the broker session timeout
// and heartbeat interval the test needs (how fast a stopped broker is fenced).
func fastClusterMeta(session, heartbeat time.Duration) func(*meta.Config) {
	return func(mc *meta.Config) {
		mc.RaftHeartbeatTimeout = 200 * time.Millisecond
		mc.RaftElectionTimeout = 200 * time.Millisecond
		mc.RaftLeaderLeaseTimeout = 100 * time.Millisecond
		mc.RaftCommitTimeout = 5 * time.Millisecond
		mc.SessionTimeout = session
		mc.HeartbeatInterval = heartbeat
	}
}

// startTestCluster starts n brokers forming one Raft group (all voters), each on its own temp dir,
// with tune applied to every broker's Config (it sets MetaConfig, e.g. with fastClusterMeta). It
// returns the brokers and their configs (for restarts on the same dirs); they are closed at cleanup.
// The Raft addresses must be known before start, so ports are reserved and released first; if another
// listener grabs one meanwhile ("address already in use") the whole cluster starts again on fresh ports.
func startTestCluster(t testing.TB, n int, tune func(*Config)) ([]*Broker, []Config) {
	t.Helper()
	for attempt := 1; ; attempt++ {
		brokers, cfgs, err := tryStartTestCluster(t, n, tune)
		if err == nil {
			for _, b := range brokers {
				t.Cleanup(func() { b.Close() })
			}
			return brokers, cfgs
		}
		if attempt == 3 || !strings.Contains(err.Error(), "address already in use") {
			t.Fatal(err)
		}
		t.Logf("restarting the cluster on fresh ports: %v", err)
	}
}

func tryStartTestCluster(t testing.TB, n int, tune func(*Config)) ([]*Broker, []Config, error) {
	// testport never hands out a port twice (meta refuses a voter listed twice).
	var voters []Voter
	for i := 1; i <= n; i++ {
		voters = append(voters, Voter{ID: int32(i), Addr: testport.Free(t)})
	}
	brokers := make([]*Broker, n)
	cfgs := make([]Config, n)
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := 0; i < n; i++ {
		cfg := testBrokerConfig(t, t.TempDir())
		cfg.NodeID = int32(i + 1)
		cfg.RaftListen = voters[i].Addr
		cfg.Voters = voters
		tune(&cfg)
		cfgs[i] = cfg
		wg.Add(1)
		go func() {
			defer wg.Done()
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			brokers[i], errs[i] = Start(ctx, cfg)
		}()
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			for _, b := range brokers {
				if b != nil {
					b.Close()
				}
			}
			return nil, nil, fmt.Errorf("broker %d: %w", i+1, err)
		}
	}
	// Every broker registered itself before Start returned, but on a loaded machine a late
	// heartbeat can leave one fenced for a moment; tests that create RF-n topics right away would
	// then get INVALID_REPLICATION_FACTOR. Start from a cluster that every broker sees whole.
	deadline := time.Now().Add(20 * time.Second)
	for _, b := range brokers {
		for unfencedBrokers(b) < n {
			if time.Now().After(deadline) {
				for _, b := range brokers {
					b.Close()
				}
				return nil, nil, fmt.Errorf("broker %d sees %d of %d brokers unfenced after 20 s", b.cfg.NodeID, unfencedBrokers(b), n)
			}
			time.Sleep(10 * time.Millisecond)
		}
	}
	return brokers, cfgs, nil
}

func unfencedBrokers(b *Broker) int {
	n := 0
	for _, br := range b.meta.State().Brokers() {
		if !br.Fenced {
			n++
		}
	}
	return n
}

// splitOff returns the broker with node id id and the others, in order.
func splitOff(brokers []*Broker, id int32) (*Broker, []*Broker) {
	var one *Broker
	var rest []*Broker
	for _, b := range brokers {
		if b.cfg.NodeID == id {
			one = b
		} else {
			rest = append(rest, b)
		}
	}
	return one, rest
}
