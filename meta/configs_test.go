package meta

import (
	"bytes"
	"errors"
	"maps"
	"testing"
)

// Dynamic broker configs share the cluster-config map: "name" is a cluster-wide default, "<id>/name"
// broker <id>'s own value. Which keys are accepted, and how each level reads back.
func TestClusterConfigKeys(t *testing.T) {
	for _, c := range []struct {
		key  string
		want bool
	}{
		{"log.retention.ms", true},
		{"log.retention.hours", true},
		{"remote.log.copy.disable", true},
		{"2/log.retention.ms", true},
		{BrokerConfigKey(7, "message.max.bytes"), true},
		{"2/remote.log.copy.disable", false}, // cluster-wide only
		{"num.partitions", false},            // static
		{"2/num.partitions", false},
		{"x/log.retention.ms", false},
		{"-1/log.retention.ms", false},
		{"02/log.retention.ms", false}, // one spelling per broker id
		{"/log.retention.ms", false},
		{"2/", false},
	} {
		if got := IsClusterConfig(c.key); got != c.want {
			t.Errorf("IsClusterConfig(%q) = %v, want %v", c.key, got, c.want)
		}
	}
	if IsClusterDefaultConfig("2/log.retention.ms") || !IsClusterDefaultConfig("log.retention.ms") || !IsClusterDefaultConfig("remote.log.copy.disable") {
		t.Error("IsClusterDefaultConfig accepts a per-broker key or refuses a default")
	}
	if IsPerBrokerConfig("remote.log.copy.disable") || !IsPerBrokerConfig("log.segment.bytes") {
		t.Error("IsPerBrokerConfig")
	}
	for _, bad := range []struct{ key, value string }{
		{"log.retention.ms", "-2"},
		{"2/log.segment.bytes", "13"},
		{"log.message.timestamp.type", "Now"},
		{"log.cleanup.policy", "delete,shred"},
		{"min.insync.replicas", "0"},
		{"log.retention.hours", "1.5"},
	} {
		if err := ValidateClusterConfig(bad.key, bad.value); !errors.Is(err, ErrInvalidConfig) {
			t.Errorf("%s=%s: %v, want ErrInvalidConfig", bad.key, bad.value, err)
		}
	}
	if err := ValidateClusterConfig("3/log.retention.ms", "-1"); err != nil {
		t.Error(err)
	}
}

// Per-broker and cluster-wide values are applied in one command kind, read back per level, survive a
// snapshot, and a removal of one level leaves the other.
func TestFSMDynamicBrokerConfigLevels(t *testing.T) {
	h := fixture(t)
	h.evs = nil
	h.must(&cmdAlterClusterConfigs{Set: map[string]string{
		"log.retention.ms":                      "60000",
		BrokerConfigKey(2, "log.retention.ms"):  "1000",
		BrokerConfigKey(3, "message.max.bytes"): "2000",
	}})
	if len(h.evs) != 1 || h.evs[0].Kind != ClusterConfigChanged {
		t.Fatalf("events %v", h.evs)
	}
	if got := h.st().DynamicDefaultConfigs(); !maps.Equal(got, map[string]string{"log.retention.ms": "60000"}) {
		t.Fatalf("defaults %v", got)
	}
	if got := h.st().DynamicBrokerConfigs(2); !maps.Equal(got, map[string]string{"log.retention.ms": "1000"}) {
		t.Fatalf("broker 2 %v", got)
	}
	if v, ok := h.st().DynamicBrokerConfig(3, "message.max.bytes"); !ok || v != "2000" {
		t.Fatalf("broker 3 message.max.bytes %q %v", v, ok)
	}
	if got := h.st().DynamicBrokerConfigs(1); len(got) != 0 {
		t.Fatalf("broker 1 %v", got)
	}
	// A bad per-broker value rejects the whole change.
	r := h.apply(&cmdAlterClusterConfigs{Set: map[string]string{"log.retention.ms": "5", BrokerConfigKey(2, "log.segment.bytes"): "1"}})
	if !errors.Is(r.err(), ErrInvalidConfig) {
		t.Fatalf("bad per-broker value: %+v", r)
	}
	if v, _ := h.st().ClusterConfig("log.retention.ms"); v != "60000" {
		t.Fatalf("rejected change applied: %q", v)
	}
	// Snapshot and restore keep both levels.
	snap, err := h.f.Snapshot()
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	if err := writeSnapshot(&buf, snap.(*fsmSnapshot).st, snap.(*fsmSnapshot).dedup); err != nil {
		t.Fatal(err)
	}
	h2 := newHarness(t)
	if err := h2.f.Restore(nopCloser{bytes.NewReader(buf.Bytes())}); err != nil {
		t.Fatal(err)
	}
	if v, ok := h2.st().DynamicBrokerConfig(2, "log.retention.ms"); !ok || v != "1000" {
		t.Fatalf("restored broker 2 value %q %v", v, ok)
	}
	// Removing the per-broker key leaves the default.
	h.must(&cmdAlterClusterConfigs{Remove: []string{BrokerConfigKey(2, "log.retention.ms")}})
	if _, ok := h.st().DynamicBrokerConfig(2, "log.retention.ms"); ok {
		t.Fatal("per-broker value not removed")
	}
	if v, _ := h.st().ClusterConfig("log.retention.ms"); v != "60000" {
		t.Fatalf("default lost with the per-broker value: %q", v)
	}
}
