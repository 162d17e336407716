package broker

import (
	"bytes"
	"os"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
)

// TestTierWipedBrokerRecoversFromPeersAndBucket is issue 7's "a broker that restarts with an empty
// data directory (its Raft metadata ... recovered from peers) still serves all history from the
// bucket": in a 3-broker cluster sharing one bucket, the broker leading a partition whose history
// it has uploaded itself (tierByBroker: remote storage on, local retention) loses its whole data directory — partition logs and Raft state alike. It restarts,
// learns the metadata (and with it the segment manifest) from its peers, leads its partition again
// and serves every record from the bucket, byte for byte.
func TestTierWipedBrokerRecoversFromPeersAndBucket(t *testing.T) {
	bucket := "file://" + t.TempDir()
	brokers, cfgs := startTestCluster(t, 3, func(c *Config) {
		tieredConfig(c)
		c.MetaConfig = fastClusterMeta(3*time.Second, 200*time.Millisecond)
		c.ObjectStore = bucket // one bucket for the cluster, as S3 would be
	})
	seeds := brokerAddrs(brokers)
	cl, err := kgo.NewClient(kgo.SeedBrokers(seeds...), kgo.ProducerLinger(0), kgo.RecordPartitioner(kgo.ManualPartitioner()))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	const topic = "wiped"
	newTierTopic(t, kadm.NewClient(cl), topic, 16<<10)
	want := produceTierRecords(t, cl, topic, 1500, time.Now().Add(-time.Hour/2).Truncate(time.Millisecond), 9)

	leader := -1
	for i, b := range brokers {
		if l, ok := b.meta.State().Topic(topic); ok && l.Partitions[0].Leader == int32(i+1) {
			leader = i
		}
	}
	if leader < 0 {
		t.Fatal("no leader for the partition")
	}
	b := brokers[leader]
	p := tierTestPartition(t, b, topic, 0)
	p0 := readRaw(t, p, 0, p.HighWatermark(), 1<<20)
	end := tierByBroker(t, b, p)
	if end != int64(len(want)) {
		t.Fatalf("uploaded up to %d, want all %d records in the bucket", end, len(want))
	}

	if err := b.Close(); err != nil {
		t.Fatal(err)
	}
	if err := os.RemoveAll(cfgs[leader].DataDir); err != nil {
		t.Fatal(err)
	}
	b2, err := Start(testCtx(t), cfgs[leader])
	if err != nil {
		t.Fatalf("restarting broker %d on an empty data dir: %v", leader+1, err)
	}
	t.Cleanup(func() { b2.Close() })

	// Its Raft state came from the peers: the topic, its manifest and its leadership.
	var p2 *Partition
	waitFor(t, "the wiped broker to lead its partition again with the history restored", func() bool {
		p2 = nil
		for _, q := range b2.replicas.Partitions() {
			if q.topic == topic && q.index == 0 {
				p2 = q
			}
		}
		return p2 != nil && p2.checkLeader(-1) == 0 && p2.HighWatermark() == end
	})
	if n := len(b2.meta.State().RemoteSegments(p2.topicID, 0)); n == 0 {
		t.Fatal("the wiped broker's metadata has no manifest entries")
	}
	if s, l := p2.log.StartOffset(), p2.log.LocalStartOffset(); s != 0 || l != end {
		t.Fatalf("restored log start %d, local start %d; want 0 and %d", s, l, end)
	}
	if got := readRaw(t, p2, 0, end, 1<<20); !bytes.Equal(got, p0) {
		t.Fatalf("restored broker serves %d bytes, the original log held %d (or they differ)", len(got), len(p0))
	}
	consumeAll(t, b2, topic, want, 60*time.Second)
}
