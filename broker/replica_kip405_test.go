package broker

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
)

// KIP-405, follower side: a replica that must start from scratch (its partition directory lost,
// a new replica) while the leader keeps only a local tail (older segments deleted locally, as
// local retention does once they are in the bucket) is answered OFFSET_MOVED_TO_TIERED_STORAGE; it
// asks the leader for its earliest local offset and log start, restarts its local log there and
// copies only the local tail. It then rejoins the ISR with a tail byte-identical to the leader's
// and the leader's whole-log start.
func TestFollowerCopiesOnlyTheLeadersLocalTail(t *testing.T) {
	if testing.Short() {
		t.Skip("starts three brokers")
	}
	tune := func(cfg *Config) {
		cfg.ReplicaLagTimeMaxMs = 1500
		cfg.MetaConfig = fastClusterMeta(2*time.Second, 200*time.Millisecond)
	}
	brokers, cfgs := startTestCluster(t, 3, tune)
	seeds := brokerAddrs(brokers)
	const topic = "tail"
	// Uploads off: the leader's local start is moved by hand below, so the new replica always meets
	// OFFSET_MOVED_TO_TIERED_STORAGE (with uploads on, an emptied replica may instead be restored at
	// the manifest's end before it fetches: restoreFromRemoteLocked, tested in tier_upload_test.go).
	segBytes, uploads := "2048", "false"
	if resp, err := kadmFor(t, seeds).CreateTopic(testCtx(t), 1, 3, map[string]*string{"segment.bytes": &segBytes, "remote.storage.enable": &uploads}, topic); err != nil || resp.Err != nil {
		t.Fatalf("create: %v %v", err, resp.Err)
	}
	cl, err := kgo.NewClient(kgo.SeedBrokers(seeds...), kgo.DefaultProduceTopic(topic), kgo.MetadataMinAge(250*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	produce := func(n int) {
		t.Helper()
		for i := 0; i < n; i++ {
			if err := cl.ProduceSync(testCtx(t), &kgo.Record{Value: bytes.Repeat([]byte{'v'}, 100)}).FirstErr(); err != nil {
				t.Fatal(err)
			}
		}
	}
	produce(200)
	mt, _ := brokers[0].meta.State().Topic(topic)
	leaderID := mt.Partitions[0].Leader
	var fi int
	for i, b := range brokers {
		if b.cfg.NodeID != leaderID {
			fi = i
		}
	}
	// The follower stops and loses its copy of the partition.
	if err := brokers[fi].Close(); err != nil {
		t.Fatal(err)
	}
	dirs, _ := filepath.Glob(filepath.Join(cfgs[fi].DataDir, "logs", topic+"-0.*"))
	if len(dirs) != 1 {
		t.Fatalf("partition dir of the stopped follower: %v", dirs)
	}
	if err := os.RemoveAll(dirs[0]); err != nil {
		t.Fatal(err)
	}
	produce(200)
	// The leader drops its older closed segments locally (as local retention does after upload).
	lp := brokers[leaderID-1].replicas.partition(mt.ID, 0)
	n, err := lp.log.DeleteLocalBelow(lp.HighWatermark() - 50)
	if err != nil || n == 0 {
		t.Fatalf("DeleteLocalBelow: %d segments, %v", n, err)
	}
	localStart, logStart := lp.log.LocalStartOffset(), lp.log.StartOffset()
	if localStart <= logStart {
		t.Fatalf("leader local start %d, log start %d: nothing only in the bucket", localStart, logStart)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	fb, err := Start(ctx, cfgs[fi])
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { fb.Close() })
	produce(20)
	var fp *Partition
	waitFor(t, "the new replica to catch up and rejoin the ISR", func() bool {
		if fp = fb.replicas.partition(mt.ID, 0); fp == nil {
			return false
		}
		mt, _ := fb.meta.State().Topic(topic)
		return fp.log.EndOffset() == lp.log.EndOffset() && slices.Contains(mt.Partitions[0].ISR, fb.cfg.NodeID)
	})
	// The new replica starts at the leader's local start (OFFSET_MOVED_TO_TIERED_STORAGE, then -4).
	got := fp.log.LocalStartOffset()
	if got != localStart {
		t.Fatalf("follower local start %d, want the leader's %d", got, localStart)
	}
	if got := fp.log.StartOffset(); got != logStart {
		t.Fatalf("follower log start %d, want the leader's %d", got, logStart)
	}
	if !bytes.Equal(localLogBytes(t, fp), localLogBytesFrom(t, lp, got)) {
		t.Fatal("follower's local tail differs from the leader's")
	}
	t.Logf("leader local log %d..%d (log start %d); the new replica copied %d offsets from %d, not %d",
		localStart, lp.log.EndOffset(), logStart, fp.log.EndOffset()-got, got, lp.log.EndOffset()-logStart)
}
