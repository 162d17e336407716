package broker

import (
	"errors"
	"strings"
	"testing"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/sediment-io/sediment/meta"
)

func TestCreateTopicsAdmin(t *testing.T) {
	b := newTestBroker(t)
	adm := newTestAdmin(t, b)
	ctx := testCtx(t)

	// -1/-1 takes num.partitions and default.replication.factor; configs are echoed (v5+).
	resp, err := adm.CreateTopic(ctx, -1, -1, map[string]*string{"retention.ms": kadm.StringPtr("1234")}, "defaults")
	if err != nil || resp.Err != nil {
		t.Fatalf("create: %v %v %s", err, resp.Err, resp.ErrMessage)
	}
	if resp.NumPartitions != 1 || resp.ReplicationFactor != 1 || resp.ID == (kadm.TopicID{}) {
		t.Fatalf("defaults: %+v", resp)
	}
	if c := resp.Configs["retention.ms"]; c.Value == nil || *c.Value != "1234" || c.Source != kmsg.ConfigSourceDynamicTopicConfig {
		t.Fatalf("retention.ms echoed as %+v", c)
	}
	md, err := adm.Metadata(ctx, "defaults")
	if err != nil {
		t.Fatal(err)
	}
	if td := md.Topics["defaults"]; td.ID != resp.ID || len(td.Partitions) != 1 || td.Partitions[0].Leader != 1 {
		t.Fatalf("metadata after create: %+v", td)
	}

	cases := []struct {
		name       string
		topic      string
		partitions int32
		rf         int16
		configs    map[string]*string
		want       *kerr.Error
	}{
		{"exists", "defaults", 1, 1, nil, kerr.TopicAlreadyExists},
		{"empty name", "", 1, 1, nil, kerr.InvalidTopicException},
		{"dot", ".", 1, 1, nil, kerr.InvalidTopicException},
		{"dotdot", "..", 1, 1, nil, kerr.InvalidTopicException},
		{"bad char", "a/b", 1, 1, nil, kerr.InvalidTopicException},
		{"space", "a b", 1, 1, nil, kerr.InvalidTopicException},
		{"too long", strings.Repeat("x", 250), 1, 1, nil, kerr.InvalidTopicException},
		{"zero partitions", "p0", 0, 1, nil, kerr.InvalidPartitions},
		{"negative partitions", "pneg", -5, 1, nil, kerr.InvalidPartitions},
		{"zero rf", "rf0", 1, 0, nil, kerr.InvalidReplicationFactor},
		{"rf above brokers", "rf3", 1, 3, nil, kerr.InvalidReplicationFactor},
		{"unknown config", "cfgname", 1, 1, map[string]*string{"no.such.config": kadm.StringPtr("1")}, kerr.InvalidConfig},
		{"bad config value", "cfgval", 1, 1, map[string]*string{"retention.ms": kadm.StringPtr("soon")}, kerr.InvalidConfig},
		{"null config value", "cfgnull", 1, 1, map[string]*string{"retention.ms": nil}, kerr.InvalidConfig},
		{"compaction not implemented", "compact", 1, 1, map[string]*string{"cleanup.policy": kadm.StringPtr("compact")}, kerr.InvalidConfig},
		{"local retention above total", "local", 1, 1, map[string]*string{"retention.ms": kadm.StringPtr("1000"), "local.retention.ms": kadm.StringPtr("2000")}, kerr.InvalidConfig},
		{"internal offsets topic", "__consumer_offsets", 1, 1, nil, kerr.InvalidRequest},
		{"internal txn topic", "__transaction_state", 1, 1, nil, kerr.InvalidRequest},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			r, err := adm.CreateTopic(ctx, c.partitions, c.rf, c.configs, c.topic)
			if err != nil && r.Err == nil {
				t.Fatalf("request failed: %v", err)
			}
			if !errors.Is(r.Err, c.want) {
				t.Fatalf("got %v (%s), want %v", r.Err, r.ErrMessage, c.want)
			}
			if r.ErrMessage == "" {
				t.Fatalf("no error message for %v", c.want)
			}
		})
	}
	// The longest legal name (249) is accepted.
	long := strings.Repeat("y", 249)
	if r, err := adm.CreateTopic(ctx, 1, 1, nil, long); err != nil || r.Err != nil {
		t.Fatalf("249-char name: %v %v", err, r.Err)
	}
	// '.' vs '_' collision.
	if r, _ := adm.CreateTopic(ctx, 1, 1, nil, "col.lide"); r.Err != nil {
		t.Fatal(r.Err)
	}
	if r, _ := adm.CreateTopic(ctx, 1, 1, nil, "col_lide"); !errors.Is(r.Err, kerr.InvalidTopicException) {
		t.Fatalf("collision: %v", r.Err)
	}
	// None of the failed names exist.
	topics, err := adm.ListTopics(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range cases[1:] {
		if topics.Has(c.topic) {
			t.Errorf("failed create %q left a topic", c.topic)
		}
	}
}

func TestCreateTopicsRaw(t *testing.T) {
	b := newTestBroker(t)
	cl := newTestClient(t, b)
	ctx := testCtx(t)

	// validateOnly: full answer, nothing created.
	req := kmsg.NewPtrCreateTopicsRequest()
	req.ValidateOnly = true
	rt := kmsg.NewCreateTopicsRequestTopic()
	rt.Topic, rt.NumPartitions, rt.ReplicationFactor = "vo", 3, 1
	req.Topics = append(req.Topics, rt)
	resp, err := req.RequestWith(ctx, cl)
	if err != nil {
		t.Fatal(err)
	}
	if r := resp.Topics[0]; r.ErrorCode != 0 || r.NumPartitions != 3 || r.ReplicationFactor != 1 {
		t.Fatalf("validateOnly: %+v", r)
	}
	if _, ok := b.meta.State().Topic("vo"); ok {
		t.Fatal("validateOnly created the topic")
	}

	// The same name twice in one request: INVALID_REQUEST for both; assignment + counts: INVALID_REQUEST.
	req = kmsg.NewPtrCreateTopicsRequest()
	rt.Topic = "dup"
	req.Topics = append(req.Topics, rt, rt)
	both := kmsg.NewCreateTopicsRequestTopic()
	both.Topic, both.NumPartitions, both.ReplicationFactor = "both", 1, -1
	both.ReplicaAssignment = []kmsg.CreateTopicsRequestTopicReplicaAssignment{{Partition: 0, Replicas: []int32{1}}}
	req.Topics = append(req.Topics, both)
	manual := kmsg.NewCreateTopicsRequestTopic()
	manual.Topic, manual.NumPartitions, manual.ReplicationFactor = "manual", -1, -1
	manual.ReplicaAssignment = []kmsg.CreateTopicsRequestTopicReplicaAssignment{{Partition: 0, Replicas: []int32{1}}, {Partition: 1, Replicas: []int32{1}}}
	req.Topics = append(req.Topics, manual)
	badAssign := manual
	badAssign.Topic = "badassign"
	badAssign.ReplicaAssignment = []kmsg.CreateTopicsRequestTopicReplicaAssignment{{Partition: 0, Replicas: []int32{7}}}
	req.Topics = append(req.Topics, badAssign)
	resp, err = req.RequestWith(ctx, cl)
	if err != nil {
		t.Fatal(err)
	}
	want := []int16{kerr.InvalidRequest.Code, kerr.InvalidRequest.Code, kerr.InvalidRequest.Code, 0, kerr.InvalidReplicaAssignment.Code}
	for i, r := range resp.Topics {
		if r.ErrorCode != want[i] {
			t.Errorf("topic %d %s: code %d (%v), want %d", i, r.Topic, r.ErrorCode, deref(r.ErrorMessage), want[i])
		}
	}
	if tp, ok := b.meta.State().Topic("manual"); !ok || len(tp.Partitions) != 2 {
		t.Fatalf("manual assignment topic: %+v", tp)
	}
}

func deref(s *string) string {
	if s == nil {
		return "<nil>"
	}
	return *s
}

func TestDeleteTopicsAdmin(t *testing.T) {
	b := newTestBroker(t)
	adm := newTestAdmin(t, b)
	cl := newTestClient(t, b)
	ctx := testCtx(t)
	for _, n := range []string{"d1", "d2", "d3"} {
		if r, err := adm.CreateTopic(ctx, 2, 1, nil, n); err != nil || r.Err != nil {
			t.Fatal(err, r.Err)
		}
	}
	rs, err := adm.DeleteTopics(ctx, "d1", "nope", "bad/name")
	if err != nil {
		t.Fatal(err)
	}
	if rs["d1"].Err != nil || !errors.Is(rs["nope"].Err, kerr.UnknownTopicOrPartition) || !errors.Is(rs["bad/name"].Err, kerr.InvalidTopicException) {
		t.Fatalf("delete: %+v", rs)
	}
	if _, ok := b.meta.State().Topic("d1"); ok {
		t.Fatal("d1 still exists")
	}

	// v6 by topic id, unknown id, and a name given twice.
	d2, _ := b.meta.State().Topic("d2")
	req := kmsg.NewPtrDeleteTopicsRequest()
	req.Version = 6
	req.Topics = []kmsg.DeleteTopicsRequestTopic{
		{TopicID: d2.ID},
		{TopicID: [16]byte{1, 2, 3}},
		{Topic: kmsg.StringPtr("d3")},
		{Topic: kmsg.StringPtr("d3")},
	}
	resp, err := req.RequestWith(ctx, cl)
	if err != nil {
		t.Fatal(err)
	}
	want := []int16{0, kerr.UnknownTopicID.Code, kerr.InvalidRequest.Code, kerr.InvalidRequest.Code}
	for i, r := range resp.Topics {
		if r.ErrorCode != want[i] {
			t.Errorf("entry %d: code %d (%s), want %d", i, r.ErrorCode, deref(r.ErrorMessage), want[i])
		}
	}
	if resp.Topics[0].Topic == nil || *resp.Topics[0].Topic != "d2" {
		t.Errorf("delete by id did not name the topic: %+v", resp.Topics[0])
	}
	if _, ok := b.meta.State().Topic("d2"); ok {
		t.Fatal("d2 still exists")
	}
	if _, ok := b.meta.State().Topic("d3"); !ok {
		t.Fatal("d3 deleted despite the duplicate")
	}
	// A deleted name can be created again, with a new id.
	r, err := adm.CreateTopic(ctx, 1, 1, nil, "d1")
	if err != nil || r.Err != nil {
		t.Fatal(err, r.Err)
	}
}

func TestDeleteTopicsDisabled(t *testing.T) {
	b := newTestBroker(t, func(c *Config) { c.DeleteTopicEnable = false })
	adm := newTestAdmin(t, b)
	ctx := testCtx(t)
	if r, err := adm.CreateTopic(ctx, 1, 1, nil, "keep"); err != nil || r.Err != nil {
		t.Fatal(err, r.Err)
	}
	rs, err := adm.DeleteTopics(ctx, "keep")
	if err != nil {
		t.Fatal(err)
	}
	if !errors.Is(rs["keep"].Err, kerr.TopicDeletionDisabled) {
		t.Fatalf("got %v", rs["keep"].Err)
	}
}

func TestCreatePartitionsAdmin(t *testing.T) {
	b := newTestBroker(t)
	adm := newTestAdmin(t, b)
	ctx := testCtx(t)
	if r, err := adm.CreateTopic(ctx, 2, 1, nil, "cp"); err != nil || r.Err != nil {
		t.Fatal(err, r.Err)
	}
	// validateOnly changes nothing.
	rs, err := adm.ValidateCreatePartitions(ctx, 3, "cp")
	if err != nil || rs["cp"].Err != nil {
		t.Fatal(err, rs["cp"].Err)
	}
	if tp, _ := b.meta.State().Topic("cp"); len(tp.Partitions) != 2 {
		t.Fatalf("validateOnly changed the count to %d", len(tp.Partitions))
	}
	rs, err = adm.CreatePartitions(ctx, 3, "cp", "missing")
	if err != nil {
		t.Fatal(err)
	}
	if rs["cp"].Err != nil || !errors.Is(rs["missing"].Err, kerr.UnknownTopicOrPartition) {
		t.Fatalf("create partitions: %+v", rs)
	}
	if tp, _ := b.meta.State().Topic("cp"); len(tp.Partitions) != 5 {
		t.Fatalf("partitions now %d, want 5", len(tp.Partitions))
	}
	// Same count or fewer: INVALID_PARTITIONS.
	for _, n := range []int{5, 1} {
		rs, err = adm.UpdatePartitions(ctx, n, "cp")
		if err != nil {
			t.Fatal(err)
		}
		if !errors.Is(rs["cp"].Err, kerr.InvalidPartitions) {
			t.Fatalf("set %d: %v", n, rs["cp"].Err)
		}
	}
	// Wrong number of assignments: INVALID_REPLICA_ASSIGNMENT.
	cl := newTestClient(t, b)
	req := kmsg.NewPtrCreatePartitionsRequest()
	req.TimeoutMillis = 5000
	req.Topics = []kmsg.CreatePartitionsRequestTopic{{Topic: "cp", Count: 7, Assignment: []kmsg.CreatePartitionsRequestTopicAssignment{{Replicas: []int32{1}}}}}
	resp, err := req.RequestWith(ctx, cl)
	if err != nil {
		t.Fatal(err)
	}
	if resp.Topics[0].ErrorCode != kerr.InvalidReplicaAssignment.Code {
		t.Fatalf("got %d", resp.Topics[0].ErrorCode)
	}
}

func TestDescribeConfigs(t *testing.T) {
	b := newTestBroker(t, func(c *Config) { c.LogRetentionMs = 3600000 })
	adm := newTestAdmin(t, b)
	ctx := testCtx(t)
	if r, err := adm.CreateTopic(ctx, 1, 1, map[string]*string{"segment.bytes": kadm.StringPtr("1048576")}, "dc"); err != nil || r.Err != nil {
		t.Fatal(err, r.Err)
	}
	rcs, err := adm.DescribeTopicConfigs(ctx, "dc")
	if err != nil {
		t.Fatal(err)
	}
	rc, err := rcs.On("dc", nil)
	if err != nil || rc.Err != nil {
		t.Fatal(err, rc.Err)
	}
	got := map[string]kadm.Config{}
	for _, c := range rc.Configs {
		got[c.Key] = c
	}
	check := func(name, value string, src kmsg.ConfigSource) {
		t.Helper()
		c, ok := got[name]
		if !ok {
			t.Fatalf("%s not described", name)
		}
		if c.Value == nil || *c.Value != value || c.Source != src {
			t.Errorf("%s = %v (%v), want %s (%v)", name, deref(c.Value), c.Source, value, src)
		}
	}
	check("segment.bytes", "1048576", kmsg.ConfigSourceDynamicTopicConfig)
	check("retention.ms", "3600000", kmsg.ConfigSourceStaticBrokerConfig)
	check("max.message.bytes", "1048588", kmsg.ConfigSourceDefaultConfig)
	check("message.timestamp.type", "CreateTime", kmsg.ConfigSourceDefaultConfig)
	// Synonyms, most specific first: the override, then log.segment.bytes' default.
	syn := got["segment.bytes"].Synonyms
	if len(syn) < 2 || syn[0].Key != "segment.bytes" || syn[0].Source != kmsg.ConfigSourceDynamicTopicConfig || syn[1].Key != "log.segment.bytes" {
		t.Errorf("segment.bytes synonyms: %+v", syn)
	}

	// Raw: documentation, types, specific names, unknown topic, bad resource type, broker resources.
	cl := newTestClient(t, b)
	req := kmsg.NewPtrDescribeConfigsRequest()
	req.IncludeDocumentation = true
	r0 := kmsg.NewDescribeConfigsRequestResource()
	r0.ResourceType, r0.ResourceName, r0.ConfigNames = kmsg.ConfigResourceTypeTopic, "dc", []string{"retention.ms", "no.such"}
	r1 := r0
	r1.ResourceName = "absent"
	r2 := kmsg.NewDescribeConfigsRequestResource()
	r2.ResourceType, r2.ResourceName = kmsg.ConfigResourceTypeBroker, "1"
	r3 := r2
	r3.ResourceName = "9"
	r4 := r2
	r4.ResourceType = kmsg.ConfigResourceTypeBrokerLogger
	req.Resources = []kmsg.DescribeConfigsRequestResource{r0, r1, r2, r3, r4}
	kresp, err := cl.Broker(1).Request(ctx, req) // sent to broker 1 whatever the resources name
	if err != nil {
		t.Fatal(err)
	}
	resp := kresp.(*kmsg.DescribeConfigsResponse)
	if rr := resp.Resources[0]; rr.ErrorCode != 0 || len(rr.Configs) != 1 || rr.Configs[0].ConfigType != kmsg.ConfigTypeLong || rr.Configs[0].Documentation == nil || *rr.Configs[0].Documentation == "" {
		t.Errorf("topic retention.ms: %+v", rr)
	}
	if resp.Resources[1].ErrorCode != kerr.UnknownTopicOrPartition.Code {
		t.Errorf("unknown topic: %d", resp.Resources[1].ErrorCode)
	}
	bc := map[string]kmsg.DescribeConfigsResponseResourceConfig{}
	for _, c := range resp.Resources[2].Configs {
		bc[c.Name] = c
	}
	if c := bc["log.retention.ms"]; resp.Resources[2].ErrorCode != 0 || deref(c.Value) != "3600000" || c.Source != kmsg.ConfigSourceStaticBrokerConfig || c.ReadOnly {
		t.Errorf("broker log.retention.ms (dynamic, so not read-only): %+v", c)
	}
	if c := bc["num.partitions"]; deref(c.Value) != "1" || c.Source != kmsg.ConfigSourceDefaultConfig || c.ConfigType != kmsg.ConfigTypeInt || !c.ReadOnly {
		t.Errorf("broker num.partitions: %+v", c)
	}
	if resp.Resources[3].ErrorCode != kerr.InvalidRequest.Code || resp.Resources[4].ErrorCode != kerr.InvalidRequest.Code {
		t.Errorf("other broker / logger: %d %d", resp.Resources[3].ErrorCode, resp.Resources[4].ErrorCode)
	}
}

func TestAlterConfigs(t *testing.T) {
	b := newTestBroker(t)
	adm := newTestAdmin(t, b)
	ctx := testCtx(t)
	if r, err := adm.CreateTopic(ctx, 1, 1, map[string]*string{"retention.ms": kadm.StringPtr("100000"), "segment.ms": kadm.StringPtr("5000")}, "ac"); err != nil || r.Err != nil {
		t.Fatal(err, r.Err)
	}
	overrides := func() map[string]string { tp, _ := b.meta.State().Topic("ac"); return tp.Configs }

	// Legacy AlterConfigs replaces the whole override set.
	rs, err := adm.AlterTopicConfigsState(ctx, []kadm.AlterConfig{{Name: "retention.bytes", Value: kadm.StringPtr("1000000")}}, "ac")
	if err != nil || rs[0].Err != nil {
		t.Fatal(err, rs[0].Err)
	}
	if ov := overrides(); len(ov) != 1 || ov["retention.bytes"] != "1000000" {
		t.Fatalf("after AlterConfigs: %v", ov)
	}
	if tc := b.TopicConfig(func() *meta.Topic { tp, _ := b.meta.State().Topic("ac"); return tp }()); tc.RetentionBytes != 1000000 || tc.RetentionMs != 604800000 {
		t.Fatalf("effective config: %+v", tc)
	}
	// Errors: bad value, unknown topic, broker configs are static.
	rs, _ = adm.AlterTopicConfigsState(ctx, []kadm.AlterConfig{{Name: "retention.bytes", Value: kadm.StringPtr("x")}}, "ac")
	if !errors.Is(rs[0].Err, kerr.InvalidConfig) {
		t.Fatalf("bad value: %v", rs[0].Err)
	}
	rs, _ = adm.AlterTopicConfigsState(ctx, []kadm.AlterConfig{{Name: "retention.bytes", Value: kadm.StringPtr("1")}}, "absent")
	if !errors.Is(rs[0].Err, kerr.UnknownTopicOrPartition) {
		t.Fatalf("unknown topic: %v", rs[0].Err)
	}

	// Incremental: SET, DELETE, APPEND/SUBTRACT on a list, APPEND on a non-list.
	rs, err = adm.AlterTopicConfigs(ctx, []kadm.AlterConfig{
		{Op: kadm.SetConfig, Name: "max.message.bytes", Value: kadm.StringPtr("2000000")},
		{Op: kadm.DeleteConfig, Name: "retention.bytes"},
		{Op: kadm.AppendConfig, Name: "leader.replication.throttled.replicas", Value: kadm.StringPtr("0:1,1:1")},
	}, "ac")
	if err != nil || rs[0].Err != nil {
		t.Fatal(err, rs[0].Err, rs[0].ErrMessage)
	}
	ov := overrides()
	if ov["max.message.bytes"] != "2000000" || ov["leader.replication.throttled.replicas"] != "0:1,1:1" {
		t.Fatalf("after incremental: %v", ov)
	}
	if _, has := ov["retention.bytes"]; has {
		t.Fatalf("DELETE left retention.bytes: %v", ov)
	}
	rs, _ = adm.AlterTopicConfigs(ctx, []kadm.AlterConfig{{Op: kadm.SubtractConfig, Name: "leader.replication.throttled.replicas", Value: kadm.StringPtr("0:1")}}, "ac")
	if rs[0].Err != nil || overrides()["leader.replication.throttled.replicas"] != "1:1" {
		t.Fatalf("subtract: %v %v", rs[0].Err, overrides())
	}
	for _, bad := range []struct {
		ac   kadm.AlterConfig
		want *kerr.Error
	}{
		{kadm.AlterConfig{Op: kadm.AppendConfig, Name: "retention.ms", Value: kadm.StringPtr("1")}, kerr.InvalidConfig},
		{kadm.AlterConfig{Op: kadm.SetConfig, Name: "no.such.config", Value: kadm.StringPtr("1")}, kerr.InvalidConfig},
		{kadm.AlterConfig{Op: kadm.SetConfig, Name: "cleanup.policy", Value: kadm.StringPtr("compact")}, kerr.InvalidConfig},
		{kadm.AlterConfig{Op: kadm.SetConfig, Name: "min.insync.replicas", Value: kadm.StringPtr("0")}, kerr.InvalidConfig},
	} {
		rs, _ = adm.AlterTopicConfigs(ctx, []kadm.AlterConfig{bad.ac}, "ac")
		if !errors.Is(rs[0].Err, bad.want) {
			t.Errorf("%+v: got %v, want %v", bad.ac, rs[0].Err, bad.want)
		}
	}
	// validateOnly changes nothing.
	rs, _ = adm.ValidateAlterTopicConfigs(ctx, []kadm.AlterConfig{{Op: kadm.SetConfig, Name: "retention.ms", Value: kadm.StringPtr("42")}}, "ac")
	if rs[0].Err != nil || overrides()["retention.ms"] != "" {
		t.Fatalf("validateOnly: %v %v", rs[0].Err, overrides())
	}
	// A static broker config cannot be changed dynamically.
	rs, err = adm.AlterBrokerConfigs(ctx, []kadm.AlterConfig{{Op: kadm.SetConfig, Name: "num.partitions", Value: kadm.StringPtr("3")}}, 1)
	if err != nil {
		t.Fatal(err)
	}
	if !errors.Is(rs[0].Err, kerr.InvalidRequest) {
		t.Fatalf("broker alter: %v", rs[0].Err)
	}
	// A key twice in one resource: INVALID_REQUEST.
	cl := newTestClient(t, b)
	req := kmsg.NewPtrIncrementalAlterConfigsRequest()
	res := kmsg.NewIncrementalAlterConfigsRequestResource()
	res.ResourceType, res.ResourceName = kmsg.ConfigResourceTypeTopic, "ac"
	res.Configs = []kmsg.IncrementalAlterConfigsRequestResourceConfig{
		{Name: "retention.ms", Op: kmsg.IncrementalAlterConfigOpSet, Value: kmsg.StringPtr("1")},
		{Name: "retention.ms", Op: kmsg.IncrementalAlterConfigOpDelete},
	}
	req.Resources = append(req.Resources, res)
	resp, err := req.RequestWith(ctx, cl)
	if err != nil {
		t.Fatal(err)
	}
	if resp.Resources[0].ErrorCode != kerr.InvalidRequest.Code {
		t.Fatalf("duplicate key: %d", resp.Resources[0].ErrorCode)
	}
}

func TestDescribeCluster(t *testing.T) {
	b := newTestBroker(t)
	cl := newTestClient(t, b)
	ctx := testCtx(t)
	req := kmsg.NewPtrDescribeClusterRequest()
	req.IncludeClusterAuthorizedOperations = true
	resp, err := req.RequestWith(ctx, cl)
	if err != nil {
		t.Fatal(err)
	}
	if resp.ErrorCode != 0 || resp.ClusterID != b.ClusterID() || resp.ControllerID != 1 || len(resp.Brokers) != 1 || resp.Brokers[0].Port == 0 || resp.ClusterAuthorizedOperations <= 0 {
		t.Fatalf("describe cluster: %+v", resp)
	}
	req.EndpointType = 2
	resp, err = req.RequestWith(ctx, cl)
	if err != nil {
		t.Fatal(err)
	}
	if resp.ErrorCode != kerr.UnsupportedEndpointType.Code {
		t.Fatalf("controller endpoints: %d", resp.ErrorCode)
	}
	adm := kadm.NewClient(cl)
	bm, err := adm.BrokerMetadata(ctx)
	if err != nil || bm.Cluster != b.ClusterID() {
		t.Fatalf("kadm broker metadata: %v %+v", err, bm)
	}
}

func TestMetadataAutoCreate(t *testing.T) {
	b := newTestBroker(t, func(c *Config) { c.NumPartitions = 3 })
	cl := newTestClient(t, b)
	ctx := testCtx(t)

	req := kmsg.NewPtrMetadataRequest()
	req.AllowAutoTopicCreation = true
	req.Topics = []kmsg.MetadataRequestTopic{{Topic: kmsg.StringPtr("auto")}, {Topic: kmsg.StringPtr("bad/name")}}
	resp, err := req.RequestWith(ctx, cl)
	if err != nil {
		t.Fatal(err)
	}
	if r := resp.Topics[0]; r.ErrorCode != 0 || len(r.Partitions) != 3 || r.TopicID == [16]byte{} {
		t.Fatalf("auto-created: %+v", r)
	}
	if resp.Topics[1].ErrorCode != kerr.InvalidTopicException.Code {
		t.Fatalf("invalid name: %d", resp.Topics[1].ErrorCode)
	}
	// Kafka's internal topics are never auto-created.
	req.Topics = []kmsg.MetadataRequestTopic{{Topic: kmsg.StringPtr("__consumer_offsets")}}
	resp, err = req.RequestWith(ctx, cl)
	if err != nil || resp.Topics[0].ErrorCode != kerr.UnknownTopicOrPartition.Code {
		t.Fatalf("__consumer_offsets: %v %+v", err, resp.Topics)
	}
	// Not allowed by the request: UNKNOWN_TOPIC_OR_PARTITION, nothing created.
	req.AllowAutoTopicCreation = false
	req.Topics = []kmsg.MetadataRequestTopic{{Topic: kmsg.StringPtr("noauto")}}
	resp, err = req.RequestWith(ctx, cl)
	if err != nil {
		t.Fatal(err)
	}
	if resp.Topics[0].ErrorCode != kerr.UnknownTopicOrPartition.Code {
		t.Fatalf("no auto: %d", resp.Topics[0].ErrorCode)
	}
	// By topic id (v12): known and unknown.
	auto, _ := b.meta.State().Topic("auto")
	req.Topics = []kmsg.MetadataRequestTopic{{TopicID: auto.ID}, {TopicID: [16]byte{9}}}
	resp, err = req.RequestWith(ctx, cl)
	if err != nil {
		t.Fatal(err)
	}
	if deref(resp.Topics[0].Topic) != "auto" || resp.Topics[1].ErrorCode != kerr.UnknownTopicID.Code {
		t.Fatalf("by id: %+v", resp.Topics)
	}
	// All topics (null list).
	req.Topics = nil
	resp, err = req.RequestWith(ctx, cl)
	if err != nil || len(resp.Topics) != 1 {
		t.Fatalf("all topics: %v %+v", err, resp.Topics)
	}

	// Broker with auto-creation off: a producer to an unknown topic fails with UNKNOWN_TOPIC_OR_PARTITION.
	b2 := newTestBroker(t, func(c *Config) { c.AutoCreateTopicsEnable = false })
	cl2 := newTestClient(t, b2, kgo.AllowAutoTopicCreation())
	req.AllowAutoTopicCreation = true
	req.Topics = []kmsg.MetadataRequestTopic{{Topic: kmsg.StringPtr("x")}}
	resp, err = req.RequestWith(ctx, cl2)
	if err != nil || resp.Topics[0].ErrorCode != kerr.UnknownTopicOrPartition.Code {
		t.Fatalf("auto.create.topics.enable=false: %v %+v", err, resp.Topics)
	}
}

func TestDescribeLogDirs(t *testing.T) {
	b := newTestBroker(t)
	cl := newTestClient(t, b, kgo.DefaultProduceTopic("ld"), kgo.RecordPartitioner(kgo.ManualPartitioner()), kgo.ProducerBatchCompression(kgo.NoCompression()))
	adm := kadm.NewClient(cl)
	ctx := testCtx(t)
	if r, err := adm.CreateTopic(ctx, 2, 1, nil, "ld"); err != nil || r.Err != nil {
		t.Fatal(err, r.Err)
	}
	if r, err := adm.CreateTopic(ctx, 1, 1, nil, "other"); err != nil || r.Err != nil {
		t.Fatal(err, r.Err)
	}
	// The replica manager opens partitions from meta's change events, after CreateTopics has
	// answered; describe only once "other" has a replica on disk.
	otherID := lookupTopicID(t, b, "other")
	waitFor(t, `"other" partition opened`, func() bool { return b.replicas.partition(otherID, 0) != nil })
	payload := make([]byte, 10000)
	if err := cl.ProduceSync(ctx, &kgo.Record{Partition: 1, Value: payload}).FirstErr(); err != nil {
		t.Fatal(err)
	}
	dirs, err := adm.DescribeAllLogDirs(ctx, kadm.TopicsSet{"ld": {0: {}, 1: {}}})
	if err != nil {
		t.Fatal(err)
	}
	var sizes [2]int64
	n := 0
	dirs.Each(func(d kadm.DescribedLogDir) {
		if d.Err != nil {
			t.Errorf("dir %s: %v", d.Dir, d.Err)
		}
		d.Topics.Each(func(p kadm.DescribedLogDirPartition) {
			n++
			if p.Topic != "ld" {
				t.Errorf("unrequested topic %s", p.Topic)
				return
			}
			sizes[p.Partition] = p.Size
		})
	})
	if n != 2 || sizes[0] != 0 || sizes[1] < int64(len(payload)) {
		t.Fatalf("partitions %d, sizes %v", n, sizes)
	}
	// v4 totals (sent to the broker directly: kgo's sharded merge drops the totals).
	req := kmsg.NewPtrDescribeLogDirsRequest()
	kresp, err := cl.Broker(1).Request(ctx, req)
	if err != nil {
		t.Fatal(err)
	}
	resp := kresp.(*kmsg.DescribeLogDirsResponse)
	if resp.Version < 4 {
		t.Fatalf("DescribeLogDirs negotiated v%d, want 4", resp.Version)
	}
	if len(resp.Dirs) != 1 || resp.Dirs[0].TotalBytes <= 0 || resp.Dirs[0].UsableBytes <= 0 || len(resp.Dirs[0].Topics) != 2 {
		t.Fatalf("all dirs: %+v", resp.Dirs)
	}
}
