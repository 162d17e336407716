package broker

import (
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/sediment-io/sediment/meta"
	"github.com/sediment-io/sediment/tiering"
)

// TestTierLeaderPartitionedDuringUploads: the leader of a tiered partition is cut off from the
// other brokers while it uploads (not stopped: its process, its upload task and its access to the
// shared bucket carry on). The majority fences it and elects a new leader, which continues the
// uploads; after healing, the old leader learns the new epoch. Throughout, the manifest stays
// contiguous and every entry names an existing object; commits the isolated leader attempted are
// refused (it cannot reach the metadata quorum, and after healing its epoch is fenced), their
// objects are collected as orphans, and every acknowledged record is read back once, in order.
func TestTierLeaderPartitionedDuringUploads(t *testing.T) {
	if testing.Short() {
		t.Skip("starts three brokers")
	}
	bucket := "file://" + t.TempDir() // one bucket for the cluster, as S3 would be
	lc, brokers, seeds := startCuttableCluster(t, 3, func(cfg *Config) {
		cfg.ObjectStore = bucket
		tieredConfig(cfg)
	})
	const topic = "tsplit"
	if resp, err := kadmFor(t, seeds).CreateTopic(testCtx(t), 1, 3, tierTopicConfigs("min.insync.replicas", "2"), topic); err != nil || resp.Err != nil {
		t.Fatalf("create: %v %v", err, resp.Err)
	}
	cl, err := kgo.NewClient(kgo.SeedBrokers(seeds...), kgo.DefaultProduceTopic(topic),
		kgo.ProducerLinger(time.Millisecond), kgo.RecordDeliveryTimeout(60*time.Second), kgo.ProducerBatchCompression(kgo.NoCompression()),
		kgo.RecordPartitioner(kgo.ManualPartitioner()), kgo.MetadataMinAge(250*time.Millisecond),
		kgo.ProduceRequestTimeout(2*time.Second)) // the isolated leader holds acks=all produces until this
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	prod := startSyncProducer(cl, 0)
	defer func() {
		select {
		case <-prod.done:
		default:
			prod.stop()
		}
	}()

	var mt *meta.Topic
	waitFor(t, "the topic in broker 1's metadata", func() bool {
		var ok bool
		mt, ok = brokers[0].meta.State().Topic(topic)
		return ok
	})
	manifestEnd := func(b *Broker) int64 { return uploadedEnd(b.meta.State().RemoteSegments(mt.ID, 0)) }
	waitFor(t, "uploads by the first leader", func() bool { return manifestEnd(brokers[0]) > 100 })
	mt, _ = brokers[0].meta.State().Topic(topic)
	oldLeader, oldEpoch := mt.Partitions[0].Leader, mt.Partitions[0].LeaderEpoch
	victim, majority := splitOff(brokers, oldLeader)

	lc.isolate(oldLeader)
	waitFor(t, "a new leader on the majority side", func() bool {
		mt, _ := majority[0].meta.State().Topic(topic)
		return mt.Partitions[0].Leader >= 0 && mt.Partitions[0].Leader != oldLeader
	})
	endAtMove, ackedAtMove := manifestEnd(majority[0]), prod.count()
	waitFor(t, "produce and uploads continuing on the majority side", func() bool {
		return prod.count() > ackedAtMove+200 && manifestEnd(majority[0]) > endAtMove+100
	})

	lc.heal(oldLeader)
	waitFor(t, "the old leader to learn the new leadership", func() bool {
		mt, _ := victim.meta.State().Topic(topic)
		return mt.Partitions[0].Leader != oldLeader && mt.Partitions[0].LeaderEpoch > oldEpoch
	})
	acked := prod.stop()

	store, err := tiering.OpenURL(testCtx(t), bucket)
	if err != nil {
		t.Fatal(err)
	}
	segs, epochs := checkManifestAcrossLeaders(t, majority[0], mt.ID, store)
	checkReadBackOnce(t, seeds, topic, 0, acked)
	waitOrphansCollected(t, majority[0], mt.ID, store)
	t.Logf("isolated leader %d (epoch %d); %d manifest entries under epochs %v; %d records acknowledged, all read back once; isolated leader's upload failures %s",
		oldLeader, oldEpoch, len(segs), epochs, len(acked), metricOr(scrape(t, victim), "sediment_tier_upload_failures_total"))
}

// metricOr is a sample's value, or "absent".
func metricOr(body, sample string) string {
	if v, ok := metricValue(body, sample); ok {
		return v
	}
	return "absent"
}
