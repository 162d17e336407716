package broker

import (
	"errors"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// Uploads paused cluster-wide (issue 7) with the standard admin call for a cluster-wide dynamic broker
// default: IncrementalAlterConfigs on the BROKER resource "" setting remote.log.copy.disable=true.
// While paused nothing new is uploaded and local retention deletes no segment that is not uploaded;
// deleting the setting resumes the uploads, the backlog drains and every record reads back from 0.
func TestTierPauseUploadsClusterWide(t *testing.T) {
	b := newTestBroker(t, tieredConfig)
	createTopic(t, b, "cz", 1, tierTopicConfigs())
	cl := newTestClient(t, b, kgo.DefaultProduceTopic("cz"), kgo.ProducerBatchCompression(kgo.NoCompression()))
	adm := newTestAdmin(t, b)
	ctx := testCtx(t)
	const size = 500
	p := tierPartition(t, b, "cz", 0)

	// Before the pause: uploads run and local retention trims.
	produceValues(t, cl, 0, 40, size)
	waitFor(t, "the first segments uploaded and trimmed", func() bool {
		return uploadedAndTrimmed(p) && p.log.LocalStartOffset() > 0
	})
	before := len(b.meta.State().RemoteSegments(p.topicID, 0))

	// validateOnly changes nothing.
	pause := []kadm.AlterConfig{{Op: kadm.SetConfig, Name: "remote.log.copy.disable", Value: ptr("true")}}
	rs, err := adm.ValidateAlterBrokerConfigs(ctx, pause)
	if err != nil || len(rs) != 1 || rs[0].Err != nil {
		t.Fatalf("validate pause: %v %+v", err, rs)
	}
	if b.clusterCopyDisabled() {
		t.Fatal("validateOnly paused uploads")
	}
	// Pause (no broker ids: kadm addresses the BROKER resource "").
	rs, err = adm.AlterBrokerConfigs(ctx, pause)
	if err != nil || len(rs) != 1 || rs[0].Err != nil || rs[0].Name != "" {
		t.Fatalf("pause: %v %+v", err, rs)
	}
	if !b.clusterCopyDisabled() {
		t.Fatal("cluster-wide pause not in meta")
	}
	checkDescribed := func(brokers []int32, want string, src kmsg.ConfigSource, present bool) {
		t.Helper()
		rcs, err := adm.DescribeBrokerConfigs(ctx, brokers...)
		if err != nil || len(rcs) != 1 || rcs[0].Err != nil {
			t.Fatalf("describe %v: %v %+v", brokers, err, rcs)
		}
		for _, c := range rcs[0].Configs {
			if c.Key == "remote.log.copy.disable" {
				if !present || c.Value == nil || *c.Value != want || c.Source != src {
					t.Fatalf("describe %v: remote.log.copy.disable = %v (%v), want %s (%v) present %v", brokers, deref(c.Value), c.Source, want, src, present)
				}
				return
			}
		}
		if present {
			t.Fatalf("describe %v: remote.log.copy.disable not listed", brokers)
		}
	}
	checkDescribed(nil, "true", kmsg.ConfigSourceDynamicDefaultBrokerConfig, true)
	checkDescribed([]int32{1}, "true", kmsg.ConfigSourceDynamicDefaultBrokerConfig, true)

	// Paused: many more small segments, a short local retention; nothing uploaded, nothing lost.
	produceValues(t, cl, 40, 80, size)
	localStart := p.log.LocalStartOffset()
	deadline := time.Now().Add(time.Second) // many retention checks (50 ms) and task passes
	for time.Now().Before(deadline) {
		if err := localInvariant(p); err != nil {
			t.Fatal(err)
		}
		if n := len(b.meta.State().RemoteSegments(p.topicID, 0)); n != before {
			t.Fatalf("paused cluster-wide, yet the manifest went from %d to %d entries", before, n)
		}
		if ls := p.log.LocalStartOffset(); ls != localStart {
			t.Fatalf("paused: local start moved from %d to %d", localStart, ls)
		}
		time.Sleep(20 * time.Millisecond)
	}
	if segs := p.log.Segments(); len(segs) < 10 {
		t.Fatalf("only %d local segments: the test did not build a backlog", len(segs))
	}

	// Bad values answer INVALID_CONFIG, static broker configs INVALID_REQUEST (as before), and
	// nothing changes.
	for _, bad := range []struct {
		ac   kadm.AlterConfig
		want *kerr.Error
	}{
		{kadm.AlterConfig{Op: kadm.SetConfig, Name: "remote.log.copy.disable", Value: ptr("maybe")}, kerr.InvalidConfig},
		{kadm.AlterConfig{Op: kadm.SetConfig, Name: "remote.log.copy.disable"}, kerr.InvalidConfig},
		{kadm.AlterConfig{Op: kadm.AppendConfig, Name: "remote.log.copy.disable", Value: ptr("false")}, kerr.InvalidConfig},
		{kadm.AlterConfig{Op: kadm.SetConfig, Name: "num.partitions", Value: ptr("1")}, kerr.InvalidRequest}, // static
		{kadm.AlterConfig{Op: kadm.SetConfig, Name: "no.such.config", Value: ptr("1")}, kerr.InvalidRequest},
	} {
		rs, err := adm.AlterBrokerConfigs(ctx, []kadm.AlterConfig{bad.ac})
		if err != nil || len(rs) != 1 || !errors.Is(rs[0].Err, bad.want) {
			t.Errorf("%+v: got %v %+v, want %v", bad.ac, err, rs, bad.want)
		}
	}
	// The same through the legacy AlterConfigs (whole-state) and through raw kmsg.
	rs, err = adm.AlterBrokerConfigsState(ctx, []kadm.AlterConfig{{Name: "remote.log.copy.disable", Value: ptr("1")}})
	if err != nil || len(rs) != 1 || !errors.Is(rs[0].Err, kerr.InvalidConfig) {
		t.Errorf("legacy AlterConfigs bad value: %v %+v", err, rs)
	}
	req := kmsg.NewPtrIncrementalAlterConfigsRequest()
	res := kmsg.NewIncrementalAlterConfigsRequestResource()
	res.ResourceType, res.ResourceName = kmsg.ConfigResourceTypeBroker, ""
	res.Configs = []kmsg.IncrementalAlterConfigsRequestResourceConfig{{Name: "remote.log.copy.disable", Op: kmsg.IncrementalAlterConfigOpSet, Value: kmsg.StringPtr("off")}}
	req.Resources = append(req.Resources, res)
	resp, err := req.RequestWith(ctx, newTestClient(t, b))
	if err != nil || len(resp.Resources) != 1 || resp.Resources[0].ErrorCode != kerr.InvalidConfig.Code {
		t.Fatalf("raw bad value: %v %+v", err, resp)
	}
	// A broker id still names the static configs: refused as before.
	rs, err = adm.AlterBrokerConfigs(ctx, pause, 1)
	if err != nil || len(rs) != 1 || !errors.Is(rs[0].Err, kerr.InvalidRequest) {
		t.Errorf("alter on broker 1: %v %+v", err, rs)
	}
	if !b.clusterCopyDisabled() {
		t.Fatal("a refused alteration changed the cluster-wide pause")
	}

	// Resume (DELETE the default): the backlog drains, local retention follows, every record reads
	// back from offset 0.
	rs, err = adm.AlterBrokerConfigs(ctx, []kadm.AlterConfig{{Op: kadm.DeleteConfig, Name: "remote.log.copy.disable"}})
	if err != nil || len(rs) != 1 || rs[0].Err != nil {
		t.Fatalf("resume: %v %+v", err, rs)
	}
	checkDescribed(nil, "", 0, false)
	checkDescribed([]int32{1}, "false", kmsg.ConfigSourceDefaultConfig, true)
	waitFor(t, "the backlog uploaded and local retention to follow", func() bool {
		if err := localInvariant(p); err != nil {
			t.Fatal(err)
		}
		return uploadedAndTrimmed(p)
	})
	segs := checkManifest(t, b.meta.State(), p.topicID, 0, storeHead(b.tier.store))
	if segs[0].BaseOffset != 0 || len(segs) <= before {
		t.Fatalf("manifest after resume: %d entries from %d (had %d)", len(segs), segs[0].BaseOffset, before)
	}
	consumeAllValues(t, []string{b.Addr()}, "cz", 120, size)
}

// The cluster-wide pause is one value in meta: set through any broker (here one that is not the Raft
// leader, so the change is forwarded), every broker sees it and describes it, and DELETE clears it
// everywhere.
func TestClusterConfigSeenByEveryBroker(t *testing.T) {
	brokers, _ := startTestCluster(t, 3, func(cfg *Config) {
		cfg.MetaConfig = fastClusterMeta(2*time.Second, 200*time.Millisecond)
	})
	var via *Broker
	for _, b := range brokers {
		if b.meta.State().ControllerID() != b.cfg.NodeID {
			via = b
			break
		}
	}
	if via == nil {
		t.Fatal("no broker other than the controller")
	}
	ctx := testCtx(t)
	send := func(op kmsg.IncrementalAlterConfigOp, value *string) {
		t.Helper()
		req := kmsg.NewPtrIncrementalAlterConfigsRequest()
		res := kmsg.NewIncrementalAlterConfigsRequestResource()
		res.ResourceType = kmsg.ConfigResourceTypeBroker
		res.Configs = []kmsg.IncrementalAlterConfigsRequestResourceConfig{{Name: "remote.log.copy.disable", Op: op, Value: value}}
		req.Resources = append(req.Resources, res)
		resp, err := req.RequestWith(ctx, newTestClient(t, via))
		if err != nil || len(resp.Resources) != 1 || resp.Resources[0].ErrorCode != 0 {
			t.Fatalf("alter through broker %d: %v %+v", via.cfg.NodeID, err, resp)
		}
	}
	send(kmsg.IncrementalAlterConfigOpSet, kmsg.StringPtr("true"))
	waitFor(t, "every broker to see the pause", func() bool {
		for _, b := range brokers {
			if !b.clusterCopyDisabled() {
				return false
			}
		}
		return true
	})
	for _, b := range brokers {
		rcs, err := newTestAdmin(t, b).DescribeBrokerConfigs(ctx, b.cfg.NodeID)
		if err != nil || len(rcs) != 1 || rcs[0].Err != nil {
			t.Fatalf("describe broker %d: %v %+v", b.cfg.NodeID, err, rcs)
		}
		found := false
		for _, c := range rcs[0].Configs {
			if c.Key == "remote.log.copy.disable" {
				found = deref(c.Value) == "true" && c.Source == kmsg.ConfigSourceDynamicDefaultBrokerConfig
			}
		}
		if !found {
			t.Fatalf("broker %d does not describe the cluster-wide pause", b.cfg.NodeID)
		}
	}
	send(kmsg.IncrementalAlterConfigOpDelete, nil)
	waitFor(t, "every broker to see the resume", func() bool {
		for _, b := range brokers {
			if b.clusterCopyDisabled() {
				return false
			}
		}
		return true
	})
}
