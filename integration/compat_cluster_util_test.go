package integration

// The 3-broker cell of the compatibility matrix: the same round trip (uncompressed) and the same
// consumer-group scenario, against three `sediment serve` processes forming one cluster (--voters),
// with every topic at replication factor 3 (created so by the client; auto-created ones through
// default.replication.factor=3). It checks what a client needs from a replicated cluster: metadata
// naming all brokers, partitions led by different brokers with 3 in-sync replicas (acks=all waits
// for all of them), a group coordinator that may live on another broker than the partitions.

import (
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"
)

// clusterNodeArgs: every compat topic gets 3 partitions and 3 replicas even when auto-created (kcat).
var clusterNodeArgs = append([]string{"--conf", "num.partitions=3", "--conf", "default.replication.factor=3"}, groupNodeArgs...)

// startCluster runs three sediment processes as one cluster on free loopback ports and waits until
// all answer /readyz. Processes are killed at cleanup.
func startCluster(t *testing.T, extra ...string) []*node {
	t.Helper()
	return startClusterEnv(t, nil, extra...)
}

// startClusterEnv is startCluster with env added to every process's inherited environment.
func startClusterEnv(t *testing.T, env []string, extra ...string) []*node {
	t.Helper()
	nodes := make([]*node, 3)
	var voters []string
	for i := range nodes {
		n := &node{t: t, dataDir: t.TempDir(), extraArg: extra, out: &syncBuffer{}, exited: make(chan struct{})}
		n.kafka = fmt.Sprintf("127.0.0.1:%d", freePort(t))
		n.raft = fmt.Sprintf("127.0.0.1:%d", freePort(t))
		n.http = fmt.Sprintf("127.0.0.1:%d", freePort(t))
		voters = append(voters, fmt.Sprintf("%d=%s", i+1, n.raft))
		nodes[i] = n
	}
	for i, n := range nodes {
		args := append([]string{"serve", "--node-id", fmt.Sprint(i + 1), "--data-dir", n.dataDir,
			"--listen", n.kafka, "--raft-listen", n.raft, "--http-listen", n.http,
			"--voters", strings.Join(voters, ","), "--log-level", "info"}, extra...)
		n.cmd = exec.Command(sedimentBin, args...)
		if env != nil {
			n.cmd.Env = append(os.Environ(), env...)
		}
		n.cmd.Stdout, n.cmd.Stderr = n.out, n.out
		dieWithTest(n.cmd)
		if err := n.cmd.Start(); err != nil {
			t.Fatal(err)
		}
		go func() { n.exitErr = n.cmd.Wait(); close(n.exited) }()
		t.Cleanup(func() {
			select {
			case <-n.exited:
			default:
				n.cmd.Process.Kill()
				<-n.exited
			}
			if t.Failed() {
				t.Logf("--- sediment node %d output (%s) ---\n%s", i+1, n.kafka, tail(n.out.String(), 20000))
			}
		})
	}
	deadline := time.Now().Add(60 * time.Second)
	for i, n := range nodes {
		for {
			select {
			case <-n.exited:
				t.Fatalf("node %d exited: %v\n%s", i+1, n.exitErr, n.out.String())
			default:
			}
			resp, err := http.Get("http://" + n.http + "/readyz")
			if err == nil {
				resp.Body.Close()
				if resp.StatusCode == 200 {
					break
				}
			}
			if time.Now().After(deadline) {
				t.Fatalf("node %d not ready within 60s", i+1)
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
	return nodes
}

// checkSpread asserts the broker-side shape the cell depends on: 3 brokers in metadata and the
// topic's partitions led by 3 different brokers, each with 3 replicas all in sync.
func checkSpread(t *testing.T, n *node, topic string) {
	t.Helper()
	adm := n.admin(t)
	bm, err := adm.BrokerMetadata(testCtx(t))
	if err != nil || len(bm.Brokers) != 3 {
		t.Errorf("cluster metadata: %v, brokers %v", err, bm.Brokers)
	}
	td, err := adm.ListTopics(testCtx(t), topic)
	if err != nil {
		t.Fatal(err)
	}
	leaders := map[int32]bool{}
	for _, p := range td[topic].Partitions {
		leaders[p.Leader] = true
		if len(p.Replicas) != 3 || len(p.ISR) != 3 {
			t.Errorf("%s partition %d: replicas %v, ISR %v: want 3 and 3", topic, p.Partition, p.Replicas, p.ISR)
		}
	}
	if len(leaders) != 3 {
		t.Errorf("%s partition leaders %v: want 3 distinct brokers", topic, leaders)
	}
}

// clusterCell runs fn (the client's round trip + group scenario against nodes[0]) as subtest
// "cluster", the matrix cell.
func clusterCell(t *testing.T, fn func(t *testing.T, n *node)) {
	t.Helper()
	t.Run("cluster", func(t *testing.T) {
		compatRF = 3
		defer func() { compatRF = 1 }()
		nodes := startCluster(t, clusterNodeArgs...)
		fn(t, nodes[0])
	})
}
