package meta

import (
	"fmt"
	"testing"
	"time"

	"github.com/sediment-io/sediment/internal/testport"
)

// openTCPNodes opens one node per address on real TCP, the first voters of them as the initial
// voters (the rest wait to join), tune adjusting each config; nodes close at cleanup.
func openTCPNodes(t *testing.T, addrs []string, voters int, tune func(*Config)) map[int32]*Node {
	t.Helper()
	var peers []Peer
	for i := 0; i < voters; i++ {
		peers = append(peers, Peer{ID: int32(i + 1), Addr: addrs[i]})
	}
	nodes := map[int32]*Node{}
	for i := range addrs {
		cfg := fastConfig(int32(i+1), t.TempDir())
		cfg.RaftBind = addrs[i]
		cfg.Voters = peers
		if tune != nil {
			tune(&cfg)
		}
		n, err := Open(cfg)
		if err != nil {
			t.Fatal(err)
		}
		nodes[int32(i+1)] = n
		t.Cleanup(func() { n.Close() })
	}
	return nodes
}

// freeAddrs is n distinct loopback addresses below the ephemeral range (testport).
func freeAddrs(t *testing.T, n int) []string {
	var out []string
	for i := 0; i < n; i++ {
		out = append(out, testport.Free(t))
	}
	return out
}

// TestTCPClusterForwardingAndJoin runs three voters on real TCP (Raft and forwarding share one port
// per node), writes through a follower, and joins a fourth node as a non-voter through Join.
func TestTCPClusterForwardingAndJoin(t *testing.T) {
	addrs := freeAddrs(t, 4)
	nodes := openTCPNodes(t, addrs, 3, nil)
	ctx := ctxT(t)
	for i := int32(1); i <= 3; i++ {
		if err := nodes[i].WaitReady(ctx); err != nil {
			t.Fatal(err)
		}
	}
	var follower *Node
	for i := int32(1); i <= 3; i++ {
		if !nodes[i].IsController() {
			follower = nodes[i]
		}
	}
	for id, n := range nodes {
		if id == 4 {
			continue
		}
		if _, err := n.RegisterBroker(ctx, BrokerRegistration{ID: id, Host: "127.0.0.1", Port: 9000 + id}); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := follower.CreateTopic(ctx, TopicSpec{Name: "over-tcp", Partitions: 3, ReplicationFactor: 3}); err != nil {
		t.Fatal(err)
	}
	if _, ok := follower.State().Topic("over-tcp"); !ok {
		t.Fatal("follower does not see its forwarded write")
	}
	if err := nodes[4].Join(ctx, addrs[:3]); err != nil {
		t.Fatal(err)
	}
	if err := nodes[4].WaitReady(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := nodes[4].RegisterBroker(ctx, BrokerRegistration{ID: 4, Host: "127.0.0.1", Port: 9004}); err != nil {
		t.Fatal(err)
	}
	eventually(t, 30*time.Second, "same digest on all four", func() bool {
		d := nodes[1].State().Digest()
		for _, n := range nodes {
			if n.State().Digest() != d {
				return false
			}
		}
		return true
	})
	if b, ok := nodes[1].State().Broker(4); !ok || b.Fenced {
		t.Fatalf("joined broker: %+v %v", b, ok)
	}
	_ = fmt.Sprint
}
