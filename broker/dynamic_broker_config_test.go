package broker

import (
	"errors"
	"fmt"
	"math"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// Dynamic broker configs (cluster_config.go) through the wire with kadm, as kafka-configs.sh
// --entity-type brokers [--entity-default | --entity-name <id>] --alter uses them.

type wantLayer struct {
	name, value string
	src         kmsg.ConfigSource
}

func (l wantLayer) String() string { return fmt.Sprintf("%s=%s(%v)", l.name, l.value, l.src) }

func layersOf(syns []kadm.ConfigSynonym) []wantLayer {
	var out []wantLayer
	for _, s := range syns {
		out = append(out, wantLayer{s.Key, deref(s.Value), s.Source})
	}
	return out
}

func sameLayers(a, b []wantLayer) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// describedTopicConfig describes one config of a topic (kadm asks for synonyms).
func describedTopicConfig(t *testing.T, adm *kadm.Client, topic, name string) kadm.Config {
	t.Helper()
	rcs, err := adm.DescribeTopicConfigs(testCtx(t), topic)
	if err != nil {
		t.Fatal(err)
	}
	rc, err := rcs.On(topic, nil)
	if err != nil || rc.Err != nil {
		t.Fatal(err, rc.Err)
	}
	for _, c := range rc.Configs {
		if c.Key == name {
			return c
		}
	}
	t.Fatalf("topic %s: %s not described", topic, name)
	return kadm.Config{}
}

// describedBrokerConfigs describes a BROKER resource: no id = "" (cluster-wide defaults).
func describedBrokerConfigs(t *testing.T, adm *kadm.Client, ids ...int32) map[string]kadm.Config {
	t.Helper()
	rcs, err := adm.DescribeBrokerConfigs(testCtx(t), ids...)
	if err != nil || len(rcs) != 1 || rcs[0].Err != nil {
		t.Fatalf("describe broker %v: %v %+v", ids, err, rcs)
	}
	out := map[string]kadm.Config{}
	for _, c := range rcs[0].Configs {
		out[c.Key] = c
	}
	return out
}

// alterBroker runs one IncrementalAlterConfigs on BROKER "" (no id) or an id and returns its error.
func alterBroker(t *testing.T, adm *kadm.Client, acs []kadm.AlterConfig, ids ...int32) error {
	t.Helper()
	rs, err := adm.AlterBrokerConfigs(testCtx(t), acs, ids...)
	if err != nil {
		t.Fatalf("alter broker %v %+v: %v", ids, acs, err)
	}
	if len(rs) != 1 {
		t.Fatalf("alter broker %v: %d responses", ids, len(rs))
	}
	if rs[0].Err != nil {
		return fmt.Errorf("%w: %s", rs[0].Err, rs[0].ErrMessage)
	}
	return nil
}

func set(name, value string) kadm.AlterConfig {
	return kadm.AlterConfig{Op: kadm.SetConfig, Name: name, Value: ptr(value)}
}

func del(name string) kadm.AlterConfig { return kadm.AlterConfig{Op: kadm.DeleteConfig, Name: name} }

// Precedence at every level, as Kafka: topic override > DYNAMIC_BROKER_CONFIG (this broker) >
// DYNAMIC_DEFAULT_BROKER_CONFIG ("") > STATIC_BROKER_CONFIG > DEFAULT_CONFIG; within a level
// log.retention.ms > .minutes > .hours. Each step is checked three ways: the topic's DescribeConfigs
// (value, source, synonyms in order), the broker id's DescribeConfigs, and the config the open
// partition actually runs with (applied live, no restart).
func TestDynamicBrokerConfigPrecedence(t *testing.T) {
	b := newTestBroker(t, func(c *Config) { c.LogRetentionMs = 3_600_000 })
	createTopic(t, b, "plain", 1, nil)
	createTopic(t, b, "over", 1, map[string]*string{"retention.ms": ptr("5000")})
	adm := newTestAdmin(t, b)
	plain, over := tierPartition(t, b, "plain", 0), tierPartition(t, b, "over", 0)

	static := wantLayer{"log.retention.ms", "3600000", kmsg.ConfigSourceStaticBrokerConfig}
	def := wantLayer{"log.retention.ms", "604800000", kmsg.ConfigSourceDefaultConfig}
	dd := func(name, v string) wantLayer {
		return wantLayer{name, v, kmsg.ConfigSourceDynamicDefaultBrokerConfig}
	}
	db := func(name, v string) wantLayer { return wantLayer{name, v, kmsg.ConfigSourceDynamicBrokerConfig} }

	step := func(what string, wantMs int64, layers ...wantLayer) {
		t.Helper()
		want := fmt.Sprint(wantMs)
		c := describedTopicConfig(t, adm, "plain", "retention.ms")
		if deref(c.Value) != want || c.Source != layers[0].src || !sameLayers(layersOf(c.Synonyms), layers) {
			t.Fatalf("%s: topic retention.ms = %s (%v) synonyms %v, want %s (%v) synonyms %v",
				what, deref(c.Value), c.Source, layersOf(c.Synonyms), want, layers[0].src, layers)
		}
		bc := describedBrokerConfigs(t, adm, 1)["log.retention.ms"]
		if deref(bc.Value) != want || bc.Source != layers[0].src || !sameLayers(layersOf(bc.Synonyms), layers) {
			t.Fatalf("%s: broker 1 log.retention.ms = %s (%v) synonyms %v, want %s %v", what, deref(bc.Value), bc.Source, layersOf(bc.Synonyms), want, layers)
		}
		waitFor(t, what+": the open partition runs with it", func() bool { return plain.config().RetentionMs == wantMs })
		if got := over.config().RetentionMs; got != 5000 {
			t.Fatalf("%s: the topic override lost: retention.ms %d", what, got)
		}
		oc := describedTopicConfig(t, adm, "over", "retention.ms")
		if deref(oc.Value) != "5000" || oc.Source != kmsg.ConfigSourceDynamicTopicConfig || len(oc.Synonyms) != len(layers)+1 {
			t.Fatalf("%s: overridden topic: %s (%v) %v", what, deref(oc.Value), oc.Source, layersOf(oc.Synonyms))
		}
	}

	step("static", 3_600_000, static, def)
	if err := alterBroker(t, adm, []kadm.AlterConfig{set("log.retention.ms", "7200000")}); err != nil {
		t.Fatal(err)
	}
	step("cluster-wide default", 7_200_000, dd("log.retention.ms", "7200000"), static, def)
	if err := alterBroker(t, adm, []kadm.AlterConfig{set("log.retention.ms", "1800000")}, 1); err != nil {
		t.Fatal(err)
	}
	step("per-broker over the default", 1_800_000, db("log.retention.ms", "1800000"), dd("log.retention.ms", "7200000"), static, def)
	if err := alterBroker(t, adm, []kadm.AlterConfig{set("log.retention.hours", "3")}); err != nil {
		t.Fatal(err)
	}
	step("a coarser default does not beat the broker's own value", 1_800_000,
		db("log.retention.ms", "1800000"), dd("log.retention.ms", "7200000"), dd("log.retention.hours", "3"), static, def)
	// BROKER "" lists exactly the defaults that are set.
	defaults := describedBrokerConfigs(t, adm)
	if len(defaults) != 2 || deref(defaults["log.retention.ms"].Value) != "7200000" || deref(defaults["log.retention.hours"].Value) != "3" ||
		defaults["log.retention.hours"].Source != kmsg.ConfigSourceDynamicDefaultBrokerConfig {
		t.Fatalf("BROKER \"\": %+v", defaults)
	}
	if err := alterBroker(t, adm, []kadm.AlterConfig{del("log.retention.ms")}, 1); err != nil {
		t.Fatal(err)
	}
	step("ms beats hours within a level", 7_200_000, dd("log.retention.ms", "7200000"), dd("log.retention.hours", "3"), static, def)
	if err := alterBroker(t, adm, []kadm.AlterConfig{del("log.retention.ms")}); err != nil {
		t.Fatal(err)
	}
	step("hours at the default level beat the static ms", 10_800_000, dd("log.retention.hours", "3"), static, def)
	if err := alterBroker(t, adm, []kadm.AlterConfig{set("log.retention.minutes", "2")}, 1); err != nil {
		t.Fatal(err)
	}
	step("per-broker minutes", 120_000, db("log.retention.minutes", "2"), dd("log.retention.hours", "3"), static, def)
	bc := describedBrokerConfigs(t, adm, 1)
	if c := bc["log.retention.minutes"]; deref(c.Value) != "2" || c.Source != kmsg.ConfigSourceDynamicBrokerConfig {
		t.Fatalf("broker 1 log.retention.minutes: %+v", c)
	}
	if c := bc["log.retention.hours"]; deref(c.Value) != "3" || c.Source != kmsg.ConfigSourceDynamicDefaultBrokerConfig {
		t.Fatalf("broker 1 log.retention.hours: %+v", c)
	}
	// Raw: dynamic configs are not read-only, static ones are.
	req := kmsg.NewPtrDescribeConfigsRequest()
	rr := kmsg.NewDescribeConfigsRequestResource()
	rr.ResourceType, rr.ResourceName, rr.ConfigNames = kmsg.ConfigResourceTypeBroker, "1", []string{"log.retention.minutes", "num.partitions"}
	req.Resources = append(req.Resources, rr)
	resp, err := req.RequestWith(testCtx(t), newTestClient(t, b))
	if err != nil || len(resp.Resources) != 1 || len(resp.Resources[0].Configs) != 2 {
		t.Fatalf("raw describe: %v %+v", err, resp)
	}
	for _, c := range resp.Resources[0].Configs {
		if c.ReadOnly != (c.Name == "num.partitions") {
			t.Errorf("%s read-only %v", c.Name, c.ReadOnly)
		}
	}
	// The legacy AlterConfigs replaces a level's whole set: empty on the broker id removes its values,
	// empty on "" removes the defaults.
	if rs, err := adm.AlterBrokerConfigsState(testCtx(t), nil, 1); err != nil || rs[0].Err != nil {
		t.Fatalf("legacy alter on broker 1: %v %+v", err, rs)
	}
	step("legacy AlterConfigs emptied the broker's level", 10_800_000, dd("log.retention.hours", "3"), static, def)
	if rs, err := adm.AlterBrokerConfigsState(testCtx(t), []kadm.AlterConfig{{Name: "log.retention.ms", Value: ptr("900000")}}); err != nil || rs[0].Err != nil {
		t.Fatalf("legacy alter on \"\": %v %+v", err, rs)
	}
	step("legacy AlterConfigs replaced the defaults", 900_000, dd("log.retention.ms", "900000"), static, def)
	if rs, err := adm.AlterBrokerConfigsState(testCtx(t), nil); err != nil || rs[0].Err != nil {
		t.Fatalf("legacy alter on \"\": %v %+v", err, rs)
	}
	step("back to static", 3_600_000, static, def)
	if len(describedBrokerConfigs(t, adm)) != 0 {
		t.Fatal("BROKER \"\" still lists defaults")
	}
}

// Errors as Kafka answers, and nothing changes on any of them nor on validateOnly.
func TestDynamicBrokerConfigErrors(t *testing.T) {
	b := newTestBroker(t)
	adm := newTestAdmin(t, b)
	ctx := testCtx(t)
	if err := alterBroker(t, adm, []kadm.AlterConfig{set("log.retention.ms", "600000")}); err != nil {
		t.Fatal(err)
	}
	before := b.meta.State().ClusterConfigs()
	for _, c := range []struct {
		acs     []kadm.AlterConfig
		ids     []int32
		want    *kerr.Error
		message string
	}{
		{[]kadm.AlterConfig{set("num.partitions", "3")}, nil, kerr.InvalidRequest, "broker config num.partitions cannot be updated dynamically"},
		{[]kadm.AlterConfig{set("log.flush.policy", "os")}, []int32{1}, kerr.InvalidRequest, "log.flush.policy cannot be updated dynamically"},
		{[]kadm.AlterConfig{set("remote.log.copy.disable", "true")}, []int32{1}, kerr.InvalidRequest, "only be set cluster-wide"},
		{[]kadm.AlterConfig{set("log.retention.ms", "soon")}, nil, kerr.InvalidConfig, "log.retention.ms"},
		{[]kadm.AlterConfig{set("log.segment.bytes", "10")}, []int32{1}, kerr.InvalidConfig, "log.segment.bytes"},
		{[]kadm.AlterConfig{set("log.cleanup.policy", "compact")}, nil, kerr.InvalidConfig, "compact"},
		{[]kadm.AlterConfig{set("compression.type", "zstd")}, []int32{1}, kerr.InvalidConfig, "compression.type"},
		{[]kadm.AlterConfig{set("log.local.retention.ms", "700000")}, nil, kerr.InvalidConfig, "must not be more than log.retention.ms"},
		{[]kadm.AlterConfig{set("log.local.retention.bytes", "-1"), set("log.retention.bytes", "1000")}, []int32{1}, kerr.InvalidConfig, "must not be -1"},
		{[]kadm.AlterConfig{{Op: kadm.AppendConfig, Name: "log.retention.ms", Value: ptr("1")}}, nil, kerr.InvalidConfig, "not a list"},
		{[]kadm.AlterConfig{{Op: kadm.SetConfig, Name: "log.retention.ms"}}, []int32{1}, kerr.InvalidConfig, "null"},
		// One bad config refuses the whole resource.
		{[]kadm.AlterConfig{set("log.retention.bytes", "5000"), set("min.insync.replicas", "0")}, nil, kerr.InvalidConfig, "min.insync.replicas"},
	} {
		err := alterBroker(t, adm, c.acs, c.ids...)
		if !errors.Is(err, c.want) || !strings.Contains(fmt.Sprint(err), c.message) {
			t.Errorf("%+v on %v: %v, want %v naming %q", c.acs, c.ids, err, c.want, c.message)
		}
	}
	// validateOnly: a valid change is accepted and not applied; an invalid one answers its error.
	rs, err := adm.ValidateAlterBrokerConfigs(ctx, []kadm.AlterConfig{set("log.retention.ms", "1000")}, 1)
	if err != nil || rs[0].Err != nil {
		t.Fatalf("validateOnly: %v %+v", err, rs)
	}
	rs, err = adm.ValidateAlterBrokerConfigs(ctx, []kadm.AlterConfig{set("log.retention.ms", "-5")})
	if err != nil || !errors.Is(rs[0].Err, kerr.InvalidConfig) {
		t.Fatalf("validateOnly bad value: %v %+v", err, rs)
	}
	if after := b.meta.State().ClusterConfigs(); fmt.Sprint(after) != fmt.Sprint(before) {
		t.Fatalf("refused or validate-only changes were applied: %v → %v", before, after)
	}
	// A broker id that is not this broker: Kafka's "Unexpected broker id", INVALID_REQUEST (raw, since
	// kadm sends a broker's resource to that broker).
	cl := newTestClient(t, b)
	req := kmsg.NewPtrIncrementalAlterConfigsRequest()
	res := kmsg.NewIncrementalAlterConfigsRequestResource()
	res.ResourceType, res.ResourceName = kmsg.ConfigResourceTypeBroker, "9"
	res.Configs = []kmsg.IncrementalAlterConfigsRequestResourceConfig{{Name: "log.retention.ms", Op: kmsg.IncrementalAlterConfigOpSet, Value: kmsg.StringPtr("1000")}}
	req.Resources = append(req.Resources, res)
	kresp, err := cl.Broker(1).Request(ctx, req)
	if err != nil {
		t.Fatal(err)
	}
	if resp := kresp.(*kmsg.IncrementalAlterConfigsResponse); resp.Resources[0].ErrorCode != kerr.InvalidRequest.Code {
		t.Fatalf("broker 9 on broker 1: %+v", resp.Resources[0])
	}
	if _, ok := b.meta.State().DynamicBrokerConfig(9, "log.retention.ms"); ok {
		t.Fatal("a config for broker 9 was stored")
	}
	// APPEND on the one list config works.
	if err := alterBroker(t, adm, []kadm.AlterConfig{{Op: kadm.AppendConfig, Name: "log.cleanup.policy", Value: ptr("delete")}}); err != nil {
		t.Fatal(err)
	}
	if v, _ := b.meta.State().ClusterConfig("log.cleanup.policy"); v != "delete" {
		t.Fatalf("append: log.cleanup.policy %q", v)
	}
}

// End to end: lowering log.retention.ms on BROKER "" makes retention delete the old segments of a
// topic without an override (and not of one with an override); log.segment.bytes on the broker id
// applies from the next roll; message.max.bytes on BROKER "" is enforced on produce.
func TestDynamicBrokerConfigRetentionEffect(t *testing.T) {
	b := newTestBroker(t, func(c *Config) { c.LogRetentionCheckMs = 50 })
	off := ptr("false")
	createTopic(t, b, "old", 1, map[string]*string{"segment.bytes": ptr("1024"), "remote.storage.enable": off})
	createTopic(t, b, "kept", 1, map[string]*string{"segment.bytes": ptr("1024"), "remote.storage.enable": off, "retention.ms": ptr("-1")})
	createTopic(t, b, "roll", 1, map[string]*string{"remote.storage.enable": off})
	adm := newTestAdmin(t, b)
	cl := newTestClient(t, b, kgo.ProducerBatchCompression(kgo.NoCompression()))
	ctx := testCtx(t)
	old := time.Now().Add(-2 * time.Hour)
	for _, topic := range []string{"old", "kept"} {
		for i := 0; i < 20; i++ {
			r := &kgo.Record{Topic: topic, Value: make([]byte, 300), Timestamp: old}
			if err := cl.ProduceSync(ctx, r).FirstErr(); err != nil {
				t.Fatal(err)
			}
		}
	}
	pOld, pKept := tierPartition(t, b, "old", 0), tierPartition(t, b, "kept", 0)
	if len(pOld.log.Segments()) < 4 {
		t.Fatalf("setup: %d segments", len(pOld.log.Segments()))
	}
	time.Sleep(200 * time.Millisecond) // several retention checks under the default (7 days): nothing goes
	if pOld.log.StartOffset() != 0 || pKept.log.StartOffset() != 0 {
		t.Fatalf("retention deleted before the change: %d %d", pOld.log.StartOffset(), pKept.log.StartOffset())
	}
	if err := alterBroker(t, adm, []kadm.AlterConfig{set("log.retention.ms", "3600000")}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "retention to delete the old segments", func() bool { return pOld.log.StartOffset() > 0 })
	offs, err := adm.ListStartOffsets(ctx, "old")
	if err != nil {
		t.Fatal(err)
	}
	if o, _ := offs.Lookup("old", 0); o.Err != nil || o.Offset != pOld.log.StartOffset() || o.Offset == 0 {
		t.Fatalf("ListOffsets earliest of old: %+v", o)
	}
	time.Sleep(200 * time.Millisecond)
	if pKept.log.StartOffset() != 0 {
		t.Fatalf("the topic with retention.ms=-1 lost data: start %d", pKept.log.StartOffset())
	}

	// log.segment.bytes on this broker: the next appends roll at the new size.
	pRoll := tierPartition(t, b, "roll", 0)
	produce := func(n, size int) {
		for i := 0; i < n; i++ {
			if err := cl.ProduceSync(ctx, &kgo.Record{Topic: "roll", Value: make([]byte, size)}).FirstErr(); err != nil {
				t.Fatal(err)
			}
		}
	}
	produce(10, 300)
	if n := len(pRoll.log.Segments()); n != 1 {
		t.Fatalf("roll: %d segments before the change", n)
	}
	if err := alterBroker(t, adm, []kadm.AlterConfig{set("log.segment.bytes", "1024")}, 1); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "log.segment.bytes to reach the partition", func() bool { return pRoll.config().SegmentBytes == 1024 })
	produce(10, 300)
	if n := len(pRoll.log.Segments()); n < 3 {
		t.Fatalf("roll: %d segments after log.segment.bytes=1024", n)
	}

	// message.max.bytes on BROKER "": produce of a larger batch is refused.
	if err := alterBroker(t, adm, []kadm.AlterConfig{set("message.max.bytes", "2000")}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "message.max.bytes to reach the partition", func() bool { return pRoll.config().MaxMessageBytes == 2000 })
	err = cl.ProduceSync(ctx, &kgo.Record{Topic: "roll", Value: make([]byte, 4000)}).FirstErr()
	if !errors.Is(err, kerr.MessageTooLarge) {
		t.Fatalf("4000-byte record with message.max.bytes=2000: %v", err)
	}
}

// Dynamic configs live in meta: a restarted broker comes back with both levels, described and in force.
func TestDynamicBrokerConfigRestart(t *testing.T) {
	dir := t.TempDir()
	cfg := testBrokerConfig(t, dir)
	start := func() *Broker {
		ctx := testCtx(t)
		b, err := Start(ctx, cfg)
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	b := start()
	createTopic(t, b, "r", 1, nil)
	adm := newTestAdmin(t, b)
	if err := alterBroker(t, adm, []kadm.AlterConfig{set("log.retention.bytes", "5000000"), set("log.roll.hours", "2")}); err != nil {
		t.Fatal(err)
	}
	if err := alterBroker(t, adm, []kadm.AlterConfig{set("log.retention.bytes", "4000000")}, 1); err != nil {
		t.Fatal(err)
	}
	if err := b.Close(); err != nil {
		t.Fatal(err)
	}
	b = start()
	t.Cleanup(func() { b.Close() })
	adm = newTestAdmin(t, b)
	p := tierPartition(t, b, "r", 0)
	if tc := p.config(); tc.RetentionBytes != 4_000_000 || tc.SegmentMs != 7_200_000 {
		t.Fatalf("after restart the partition runs with retention.bytes %d segment.ms %d", tc.RetentionBytes, tc.SegmentMs)
	}
	if c := describedTopicConfig(t, adm, "r", "segment.ms"); deref(c.Value) != "7200000" || c.Source != kmsg.ConfigSourceDynamicDefaultBrokerConfig {
		t.Fatalf("after restart: segment.ms %s (%v)", deref(c.Value), c.Source)
	}
	if c := describedBrokerConfigs(t, adm, 1)["log.retention.bytes"]; deref(c.Value) != "4000000" || c.Source != kmsg.ConfigSourceDynamicBrokerConfig {
		t.Fatalf("after restart: broker 1 log.retention.bytes %+v", c)
	}
	if d := describedBrokerConfigs(t, adm); deref(d["log.retention.bytes"].Value) != "5000000" || deref(d["log.roll.hours"].Value) != "2" {
		t.Fatalf("after restart: BROKER \"\" %+v", d)
	}
}

// Three brokers: a BROKER "" change sent to one broker is seen by all (described on each broker's id,
// in force on each broker's replicas); a per-broker value on broker 2 changes only broker 2.
func TestDynamicBrokerConfigThreeBrokers(t *testing.T) {
	if testing.Short() {
		t.Skip("starts three brokers")
	}
	brokers, _ := startTestCluster(t, 3, func(c *Config) { c.MetaConfig = fastClusterMeta(2*time.Second, 200*time.Millisecond) })
	adm := newTestAdmin(t, brokers[0])
	ctx := testCtx(t)
	if r, err := adm.CreateTopic(ctx, 3, 3, map[string]*string{"remote.storage.enable": ptr("false")}, "c3"); err != nil || r.Err != nil {
		t.Fatal(err, r.Err)
	}
	partitionsOn := func(b *Broker) []*Partition {
		var out []*Partition
		for i := int32(0); i < 3; i++ {
			var p *Partition
			waitFor(t, "replica opened", func() bool {
				p, _, _ = b.replicas.lookupPartition(b.meta.State(), "c3", i)
				return p != nil
			})
			out = append(out, p)
		}
		return out
	}
	if err := alterBroker(t, adm, []kadm.AlterConfig{set("log.retention.ms", "86400000")}); err != nil {
		t.Fatal(err)
	}
	for _, b := range brokers {
		for _, p := range partitionsOn(b) {
			waitFor(t, fmt.Sprintf("broker %d %s runs with the cluster-wide default", b.cfg.NodeID, p), func() bool {
				return p.config().RetentionMs == 86_400_000
			})
		}
		badm := newTestAdmin(t, b)
		c := describedBrokerConfigs(t, badm, b.cfg.NodeID)["log.retention.ms"]
		if deref(c.Value) != "86400000" || c.Source != kmsg.ConfigSourceDynamicDefaultBrokerConfig {
			t.Fatalf("broker %d describes log.retention.ms %s (%v)", b.cfg.NodeID, deref(c.Value), c.Source)
		}
	}
	// A per-broker value on broker 2 (kadm sends it to broker 2).
	if err := alterBroker(t, adm, []kadm.AlterConfig{set("log.retention.ms", "43200000")}, 2); err != nil {
		t.Fatal(err)
	}
	for _, b := range brokers {
		want := int64(86_400_000)
		if b.cfg.NodeID == 2 {
			want = 43_200_000
		}
		for _, p := range partitionsOn(b) {
			waitFor(t, fmt.Sprintf("broker %d %s retention.ms %d", b.cfg.NodeID, p, want), func() bool {
				return p.config().RetentionMs == want
			})
		}
	}
	// Broker 2's own value is described on broker 2 only; broker 1 answers for broker 1.
	c := describedBrokerConfigs(t, adm, 2)["log.retention.ms"]
	if deref(c.Value) != "43200000" || c.Source != kmsg.ConfigSourceDynamicBrokerConfig {
		t.Fatalf("broker 2: %+v", c)
	}
	c = describedBrokerConfigs(t, adm, 1)["log.retention.ms"]
	if deref(c.Value) != "86400000" || c.Source != kmsg.ConfigSourceDynamicDefaultBrokerConfig {
		t.Fatalf("broker 1: %+v", c)
	}
}

// remote.log.segment.compression.type (Sediment extension) per topic: the broker config of the same
// name is the default, a topic override wins, a bad value is INVALID_CONFIG.
func TestTopicRemoteLogSegmentCompressionOverride(t *testing.T) {
	b := newTestBroker(t, func(c *Config) { c.RemoteLogSegmentCompressionType = "lz4" })
	createTopic(t, b, "z", 1, nil)
	createTopic(t, b, "n", 1, map[string]*string{"remote.log.segment.compression.type": ptr("none")})
	adm := newTestAdmin(t, b)
	if got := tierPartition(t, b, "z", 0).config().RemoteLogSegmentCompression; got != "lz4" {
		t.Fatalf("topic without override: %q, want the broker's lz4", got)
	}
	if got := tierPartition(t, b, "n", 0).config().RemoteLogSegmentCompression; got != "none" {
		t.Fatalf("topic with override none: %q", got)
	}
	if c := describedTopicConfig(t, adm, "z", "remote.log.segment.compression.type"); deref(c.Value) != "lz4" || c.Source != kmsg.ConfigSourceStaticBrokerConfig {
		t.Fatalf("describe z: %s (%v)", deref(c.Value), c.Source)
	}
	if c := describedTopicConfig(t, adm, "n", "remote.log.segment.compression.type"); deref(c.Value) != "none" || c.Source != kmsg.ConfigSourceDynamicTopicConfig {
		t.Fatalf("describe n: %s (%v)", deref(c.Value), c.Source)
	}
	rs, err := adm.AlterTopicConfigs(testCtx(t), []kadm.AlterConfig{set("remote.log.segment.compression.type", "zstd")}, "z")
	if err != nil || !errors.Is(rs[0].Err, kerr.InvalidConfig) {
		t.Fatalf("bad value: %v %+v", err, rs)
	}
}

// log.flush.interval.ms is dynamic (Kafka: the broker synonym of flush.ms): a change reaches every
// open log's fsync period under log.flush.policy=interval, and a per-broker value beats the default.
func TestDynamicLogFlushIntervalMs(t *testing.T) {
	b := newTestBroker(t, func(c *Config) { c.LogFlushPolicy = "interval"; c.LogFlushIntervalMs = 1000 })
	createTopic(t, b, "f", 1, nil)
	adm := newTestAdmin(t, b)
	p := tierPartition(t, b, "f", 0)
	if got := p.log.Config().FlushInterval; got != time.Second {
		t.Fatalf("static: flush interval %v", got)
	}
	if err := alterBroker(t, adm, []kadm.AlterConfig{set("log.flush.interval.ms", "250")}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the cluster-wide log.flush.interval.ms in the open log", func() bool { return p.log.Config().FlushInterval == 250*time.Millisecond })
	if err := alterBroker(t, adm, []kadm.AlterConfig{set("log.flush.interval.ms", "40")}, 1); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "broker 1's log.flush.interval.ms in the open log", func() bool { return p.log.Config().FlushInterval == 40*time.Millisecond })
	if c := describedBrokerConfigs(t, adm, 1)["log.flush.interval.ms"]; deref(c.Value) != "40" || c.Source != kmsg.ConfigSourceDynamicBrokerConfig || len(c.Synonyms) != 3 { // broker, default level, Kafka default (1000 = default: no static layer)
		t.Fatalf("describe: %s (%v) %v", deref(c.Value), c.Source, layersOf(c.Synonyms))
	}
	if err := alterBroker(t, adm, []kadm.AlterConfig{set("log.flush.interval.ms", "0")}); !errors.Is(err, kerr.InvalidConfig) {
		t.Fatalf("0: %v", err)
	}
}

// remote.log.manager.fetch.max.bytes.per.second is dynamic, as in Kafka (KIP-956): an operator can
// slow replays from the bucket that hurt a broker, or lift the quota, without a restart. The
// cluster-wide value applies to the running fetch quota, this broker's own value beats it, and
// deleting both brings back the static value (unlimited by default). At 1 byte a second the first
// fetch from the bucket still gets its first batch (Kafka's rule: the quota is overdrawn by it)
// and the next gets none (throttled).
func TestDynamicRemoteFetchQuota(t *testing.T) {
	const name = "remote.log.manager.fetch.max.bytes.per.second"
	b := newTestBroker(t)
	cl, _, p := tieredTopic(t, b, "dynquota", 300, time.Now().Add(-time.Minute), 5)
	adm := newTestAdmin(t, b)
	rate := func() float64 { return b.tier.quota.Rate() }
	if !math.IsInf(rate(), 1) {
		t.Fatalf("static default: quota %v, want unlimited", rate())
	}
	if err := alterBroker(t, adm, []kadm.AlterConfig{set(name, "1")}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the cluster-wide quota in force", func() bool { return rate() == 1 })
	fetch := func() int {
		req := fetchRequest(b, p.topic, 0, 100, 1, 1<<20, 1<<20)
		req.Topics[0].TopicID = p.topicID // kgo sends the highest version both support: v13+ names the topic by ID
		resp, err := req.RequestWith(testCtx(t), cl.Broker(int(b.cfg.NodeID)))
		if err != nil || resp.Topics[0].Partitions[0].ErrorCode != 0 {
			t.Fatalf("fetch: %v %+v", err, resp)
		}
		return len(resp.Topics[0].Partitions[0].RecordBatches)
	}
	if first := fetch(); first == 0 {
		t.Fatalf("first fetch at 1 B/s: no records: want its first batch")
	}
	if n := fetch(); n != 0 {
		t.Fatalf("second fetch at 1 B/s: %d bytes, want none (throttled)", n)
	}
	if err := alterBroker(t, adm, []kadm.AlterConfig{set(name, "1073741824")}, b.cfg.NodeID); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "this broker's quota over the cluster-wide one", func() bool { return rate() == 1<<30 })
	if c := describedBrokerConfigs(t, adm, b.cfg.NodeID)[name]; deref(c.Value) != "1073741824" || c.Source != kmsg.ConfigSourceDynamicBrokerConfig {
		t.Fatalf("describe: %s (%v)", deref(c.Value), c.Source)
	}
	if err := alterBroker(t, adm, []kadm.AlterConfig{del(name)}, b.cfg.NodeID); err != nil {
		t.Fatal(err)
	}
	if err := alterBroker(t, adm, []kadm.AlterConfig{del(name)}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the static quota (unlimited) back", func() bool { return math.IsInf(rate(), 1) })
	if err := alterBroker(t, adm, []kadm.AlterConfig{set(name, "0")}); !errors.Is(err, kerr.InvalidConfig) {
		t.Fatalf("0: %v", err)
	}
}

// remote.log.manager.copy.max.bytes.per.second is dynamic too (KIP-956): set cluster-wide, it
// paces the broker's uploads (all partitions together, object by object) from then on; the history still reaches the
// bucket whole and reads back; deleted, uploads are unlimited again.
func TestDynamicRemoteCopyQuota(t *testing.T) {
	const name, rate = "remote.log.manager.copy.max.bytes.per.second", 16 << 10
	b := newTestBroker(t, tieredConfig)
	adm := newTestAdmin(t, b)
	if !math.IsInf(b.tier.copyQuota.Rate(), 1) {
		t.Fatalf("static default: copy quota %v, want unlimited", b.tier.copyQuota.Rate())
	}
	if err := alterBroker(t, adm, []kadm.AlterConfig{set(name, fmt.Sprint(rate))}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the cluster-wide copy quota in force", func() bool { return b.tier.copyQuota.Rate() == rate })
	var took time.Duration
	_, want, p := tieredTopicWith(t, b, "copyquota", 300, time.Now().Add(-time.Minute).Truncate(time.Millisecond), 9, func(t *testing.T, b *Broker, p *Partition) int64 {
		start := time.Now()
		end := tierByBroker(t, b, p)
		took = time.Since(start)
		return end
	})
	var sent, last int64
	for _, s := range b.meta.State().RemoteSegments(p.topicID, p.index) {
		sent, last = sent+s.Size, s.Size
	}
	// Charged per object after it is stored (as Kafka): one second's worth goes free (the quota's
	// burst), the last object's charge is never waited for, and the rest is paced at the rate.
	least := time.Duration(float64(sent-rate-last) / rate * float64(time.Second))
	if least < 2*time.Second || took < least*8/10 {
		t.Fatalf("%d bytes uploaded at %d B/s in %v: want at least %v", sent, rate, took, least*8/10)
	}
	t.Logf("%d bytes uploaded at %d B/s in %v (at least %v)", sent, rate, took, least)
	consumeAll(t, b, p.topic, want, 30*time.Second)
	if err := alterBroker(t, adm, []kadm.AlterConfig{del(name)}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "unlimited uploads again", func() bool { return math.IsInf(b.tier.copyQuota.Rate(), 1) })
}
