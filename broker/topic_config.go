package broker

import (
	"strconv"
	"strings"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/sediment-io/sediment/meta"
	"github.com/sediment-io/sediment/segment"
)

// Effective topic configuration. meta stores only a topic's explicit overrides (Kafka names) and
// knows Kafka's topic-level defaults; the value a topic actually runs with is, as in Kafka:
// the override, else the broker config that is its synonym (log.retention.ms for retention.ms …) at
// its most specific level (this broker's dynamic value, the cluster-wide dynamic default, the static
// value, Kafka's default), else Kafka's topic default. Dynamic broker configs live in meta
// (cluster_config.go); a change reaches every open partition through the replica manager's
// reconcile (setConfig), so it applies live to every topic without an override.

// topicBrokerSynonyms maps a topic config to the broker config supplying its default.
var topicBrokerSynonyms = map[string]string{
	"retention.ms":                    "log.retention.ms",
	"retention.bytes":                 "log.retention.bytes",
	"segment.bytes":                   "log.segment.bytes",
	"segment.ms":                      "log.roll.ms",
	"segment.index.bytes":             "log.index.size.max.bytes",
	"index.interval.bytes":            "log.index.interval.bytes",
	"cleanup.policy":                  "log.cleanup.policy",
	"min.insync.replicas":             "min.insync.replicas",
	"max.message.bytes":               "message.max.bytes",
	"message.timestamp.type":          "log.message.timestamp.type",
	"message.timestamp.before.max.ms": "log.message.timestamp.before.max.ms",
	"message.timestamp.after.max.ms":  "log.message.timestamp.after.max.ms",
	"local.retention.ms":              "log.local.retention.ms",
	"local.retention.bytes":           "log.local.retention.bytes",
	"compression.type":                "compression.type",
	// Sediment extension: the broker config of the same name supplies the default.
	"remote.log.segment.compression.type": "remote.log.segment.compression.type",
}

// unimplementedTopicValues are values meta accepts (they are valid Kafka) but Sediment does not
// implement; setting them is refused with INVALID_CONFIG rather than silently ignored.
func unimplementedTopicValue(name, value string) error {
	switch name {
	case "cleanup.policy":
		for _, p := range strings.Split(value, ",") {
			if strings.TrimSpace(p) == "compact" {
				return kerrf(kerr.InvalidConfig, "cleanup.policy=compact is not implemented by Sediment (log compaction is absent)")
			}
		}
	case "compression.type":
		if strings.TrimSpace(value) != "producer" {
			return kerrf(kerr.InvalidConfig, "compression.type=%s is not implemented by Sediment (batches are stored as produced; only \"producer\")", value)
		}
	}
	return nil
}

// TopicConfig is a topic's effective configuration, typed. Fields follow the Kafka topic config
// names in their comments.
type TopicConfig struct {
	RetentionMs          int64  // retention.ms (-1 unlimited)
	RetentionBytes       int64  // retention.bytes (-1 unlimited)
	SegmentBytes         int64  // segment.bytes
	SegmentMs            int64  // segment.ms
	SegmentIndexBytes    int32  // segment.index.bytes
	IndexIntervalBytes   int32  // index.interval.bytes
	CleanupPolicy        string // cleanup.policy
	MinInsyncReplicas    int32  // min.insync.replicas
	MaxMessageBytes      int32  // max.message.bytes
	LogAppendTime        bool   // message.timestamp.type == LogAppendTime
	TimestampBeforeMaxMs int64  // message.timestamp.before.max.ms
	TimestampAfterMaxMs  int64  // message.timestamp.after.max.ms
	LocalRetentionMs     int64  // local.retention.ms (-2 = retention.ms)
	LocalRetentionBytes  int64  // local.retention.bytes (-2 = retention.bytes)
	RemoteStorageEnable  bool   // remote.storage.enable
	RemoteLogCopyDisable bool   // remote.log.copy.disable (uploads paused; KIP-950)
	// remote.log.segment.compression.type (Sediment extension): none | lz4 for this topic's uploads
	RemoteLogSegmentCompression string
	// FlushIntervalMs is the broker's log.flush.interval.ms in force (its dynamic levels included):
	// the fsync period under log.flush.policy=interval. The topic config flush.ms has no effect.
	FlushIntervalMs int64
}

// topicConfigValue returns the effective value of one topic config and where it came from: the
// topic's override, else the layers of its broker synonym (brokerConfigLayers), else the default.
func (b *Broker) topicConfigValue(dyn dynamicConfigs, overrides map[string]string, name string) (value string, src configSource, ok bool) {
	if v, ok := overrides[name]; ok {
		return v, srcTopic, true
	}
	if syn, ok := topicBrokerSynonyms[name]; ok {
		if v, src, ok := b.brokerConfigValue(dyn, syn); ok {
			return v, src, true
		}
	}
	if name == "remote.storage.enable" {
		// Kafka's default is false; Sediment's is "on when the broker has an object store", which
		// remote.log.storage.system.enable says (serve always has one: the embedded file:// store).
		return strconv.FormatBool(b.cfg.RemoteLogStorageEnable), srcDefault, true
	}
	if v, ok := meta.TopicConfigDefault(name); ok {
		return v, srcDefault, true
	}
	return "", srcDefault, false
}

// dynamicConfigs are the dynamic broker configs one broker applies: its own (BROKER "<id>") and the
// cluster-wide defaults (BROKER ""), both from meta. The zero value means none.
type dynamicConfigs struct {
	broker, cluster map[string]string
}

// dynamicConfigs reads this broker's dynamic configs from the current metadata state.
func (b *Broker) dynamicConfigs() dynamicConfigs {
	if b.meta == nil {
		return dynamicConfigs{}
	}
	st := b.meta.State()
	return dynamicConfigs{broker: st.DynamicBrokerConfigs(b.cfg.NodeID), cluster: st.DynamicDefaultConfigs()}
}

// spelling is one name of a broker config with its unit in the config's own unit: Kafka accepts
// log.retention.ms, log.retention.minutes and log.retention.hours for one setting (and log.roll.ms,
// log.roll.hours), the more precise name winning at the same level.
type spelling struct {
	name string
	unit int64
}

var brokerConfigSpellings = map[string][]spelling{
	"log.retention.ms": {{"log.retention.ms", 1}, {"log.retention.minutes", 60_000}, {"log.retention.hours", 3_600_000}},
	"log.roll.ms":      {{"log.roll.ms", 1}, {"log.roll.hours", 3_600_000}},
}

// spellingOf maps a coarser spelling to its base config and unit (log.retention.hours →
// log.retention.ms, 3600000); any other name maps to itself.
func spellingOf(name string) (base string, unit int64) {
	for b, sps := range brokerConfigSpellings {
		for _, sp := range sps {
			if sp.name == name {
				return b, sp.unit
			}
		}
	}
	return name, 1
}

func spellings(base string) []spelling {
	if sps, ok := brokerConfigSpellings[base]; ok {
		return sps
	}
	return []spelling{{base, 1}}
}

const srcDynamicBroker = kmsg.ConfigSourceDynamicBrokerConfig

// brokerConfigLayers lists where the broker config base is set, most specific first, as Kafka lists
// synonyms in DescribeConfigs: this broker's dynamic value (DYNAMIC_BROKER_CONFIG), the cluster-wide
// dynamic default (DYNAMIC_DEFAULT_BROKER_CONFIG), the value given at start (STATIC_BROKER_CONFIG),
// Kafka's default (DEFAULT_CONFIG); within a dynamic level the precise spelling comes before the
// coarser ones. The first layer is the value in force.
//
// Kafka merges the levels name by name before it resolves spellings, so there a static
// log.retention.ms beats a dynamic log.retention.hours and the first synonym listed is not always the
// value in force; Sediment takes the most specific level, so a dynamic change always applies.
func (b *Broker) brokerConfigLayers(dyn dynamicConfigs, base string) []configSynonym {
	var out []configSynonym
	for _, level := range []struct {
		m   map[string]string
		src configSource
	}{{dyn.broker, srcDynamicBroker}, {dyn.cluster, srcDynamicDefault}} {
		for _, sp := range spellings(base) {
			if v, ok := level.m[sp.name]; ok {
				out = append(out, configSynonym{sp.name, v, level.src})
			}
		}
	}
	if v, ok := b.cfg.Get(base); ok {
		if b.brokerConfigSource(base) == srcStatic {
			out = append(out, configSynonym{base, v, srcStatic})
		}
		if d := brokerConfigByName[base]; d.def != "" {
			out = append(out, configSynonym{base, d.def, srcDefault})
		}
	}
	return out
}

// layerValue is a layer's value in its base config's unit (a coarser spelling converted to ms; a
// negative time means unlimited, -1, as Kafka reads it).
func layerValue(l configSynonym) string {
	_, unit := spellingOf(l.name)
	if unit == 1 {
		return l.value
	}
	n, err := strconv.ParseInt(strings.TrimSpace(l.value), 10, 64)
	if err != nil {
		return l.value
	}
	if n < 0 {
		return "-1"
	}
	return strconv.FormatInt(n*unit, 10)
}

// brokerConfigValue returns the value in force of the broker config base and its source.
func (b *Broker) brokerConfigValue(dyn dynamicConfigs, base string) (string, configSource, bool) {
	layers := b.brokerConfigLayers(dyn, base)
	if len(layers) == 0 {
		return "", srcDefault, false
	}
	return layerValue(layers[0]), layers[0].source, true
}

// brokerConfigInt64 is brokerConfigValue parsed as an integer; false when unset at every level or
// not a number (values were validated on the way in, so that means a default applies).
func (b *Broker) brokerConfigInt64(dyn dynamicConfigs, name string) (int64, bool) {
	v, _, ok := b.brokerConfigValue(dyn, name)
	if !ok {
		return 0, false
	}
	n, err := strconv.ParseInt(strings.TrimSpace(v), 10, 64)
	return n, err == nil
}

// TopicConfig returns the effective configuration of t (overrides, broker synonyms, defaults).
// Values were validated on the way in (meta), so a parse failure here falls back to the default.
func (b *Broker) TopicConfig(t *meta.Topic) TopicConfig {
	var ov map[string]string
	if t != nil {
		ov = t.Configs
	}
	return b.topicConfigFrom(ov)
}

func (b *Broker) topicConfigFrom(ov map[string]string) TopicConfig {
	dyn := b.dynamicConfigs()
	flushMs := b.cfg.LogFlushIntervalMs
	if n, ok := b.brokerConfigInt64(dyn, "log.flush.interval.ms"); ok && n > 0 {
		flushMs = n
	}
	str := func(name string) string {
		v, _, _ := b.topicConfigValue(dyn, ov, name)
		return strings.TrimSpace(v)
	}
	i64 := func(name string) int64 {
		n, err := strconv.ParseInt(str(name), 10, 64)
		if err != nil {
			d, _ := meta.TopicConfigDefault(name)
			n, _ = strconv.ParseInt(d, 10, 64)
		}
		return n
	}
	return TopicConfig{
		RetentionMs:                 i64("retention.ms"),
		RetentionBytes:              i64("retention.bytes"),
		SegmentBytes:                i64("segment.bytes"),
		SegmentMs:                   i64("segment.ms"),
		SegmentIndexBytes:           int32(i64("segment.index.bytes")),
		IndexIntervalBytes:          int32(i64("index.interval.bytes")),
		CleanupPolicy:               str("cleanup.policy"),
		MinInsyncReplicas:           int32(i64("min.insync.replicas")),
		MaxMessageBytes:             int32(i64("max.message.bytes")),
		LogAppendTime:               str("message.timestamp.type") == "LogAppendTime",
		TimestampBeforeMaxMs:        i64("message.timestamp.before.max.ms"),
		TimestampAfterMaxMs:         i64("message.timestamp.after.max.ms"),
		LocalRetentionMs:            i64("local.retention.ms"),
		LocalRetentionBytes:         i64("local.retention.bytes"),
		RemoteStorageEnable:         strings.EqualFold(str("remote.storage.enable"), "true"),
		RemoteLogCopyDisable:        strings.EqualFold(str("remote.log.copy.disable"), "true"),
		RemoteLogSegmentCompression: str("remote.log.segment.compression.type"),
		FlushIntervalMs:             flushMs,
	}
}

// validateTopicConfigs checks a set of topic overrides (CreateTopics, AlterConfigs): known name and
// valid value (meta's table), and implemented by Sediment. The error names the config.
func validateTopicConfigs(cfg map[string]string) error {
	for name, v := range cfg {
		if err := meta.ValidateTopicConfig(name, v); err != nil {
			return err
		}
		if err := unimplementedTopicValue(name, v); err != nil {
			return err
		}
	}
	return nil
}

// checkTieredTopicConfigs applies Kafka's rules for a topic with remote storage on
// (LogConfig.validateTopicLogConfigValues) to overrides, a topic's complete override set after a
// CreateTopics or AlterConfigs, on the effective values (the overrides over the broker's
// defaults): remote storage needs remote.log.storage.system.enable; local.retention.ms and
// local.retention.bytes, unless -2, are neither -1 nor above retention.ms / retention.bytes when
// those are limited; with the topic's remote.log.copy.disable=true they equal them. Answers
// INVALID_CONFIG naming the config, as Kafka's ConfigException does.
func (b *Broker) checkTieredTopicConfigs(overrides map[string]string) error {
	tc := b.topicConfigFrom(overrides)
	if !tc.RemoteStorageEnable {
		return nil
	}
	if !b.cfg.RemoteLogStorageEnable {
		return kerrf(kerr.InvalidConfig, "Tiered Storage functionality is disabled in the broker. Topic cannot be configured with remote log storage.")
	}
	for _, r := range []struct {
		local, total   string
		localV, totalV int64
	}{
		{"local.retention.ms", "retention.ms", tc.LocalRetentionMs, tc.RetentionMs},
		{"local.retention.bytes", "retention.bytes", tc.LocalRetentionBytes, tc.RetentionBytes},
	} {
		if r.totalV < 0 || r.localV == -2 { // the whole log unlimited, or local follows it
			continue
		}
		if r.localV == -1 {
			return kerrf(kerr.InvalidConfig, "Invalid value -1 for configuration %s: Value must not be -1 as %s value is set as %d.", r.local, r.total, r.totalV)
		}
		if r.localV > r.totalV {
			return kerrf(kerr.InvalidConfig, "Invalid value %d for configuration %s: Value must not be more than %s property value: %d", r.localV, r.local, r.total, r.totalV)
		}
	}
	if strings.EqualFold(strings.TrimSpace(overrides["remote.log.copy.disable"]), "true") {
		if tc.LocalRetentionBytes != -2 && tc.LocalRetentionBytes != tc.RetentionBytes {
			return kerrf(kerr.InvalidConfig, "When `remote.log.copy.disable` is set to true, the `local.retention.bytes` and `retention.bytes` must be set to the identical value because there will be no more logs copied to the remote storage.")
		}
		if tc.LocalRetentionMs != -2 && tc.LocalRetentionMs != tc.RetentionMs {
			return kerrf(kerr.InvalidConfig, "When `remote.log.copy.disable` is set to true, the `local.retention.ms` and `retention.ms` must be set to the identical value because there will be no more logs copied to the remote storage.")
		}
	}
	return nil
}

// segmentConfig is the segment.Config for a partition log of a topic with effective config tc:
// the topic's segment.* settings and the broker's flush policy (log.flush.policy, and
// log.flush.interval.ms as tc carries it, dynamic levels included), logging under the broker's logger.
func (b *Broker) segmentConfig(tc TopicConfig) segment.Config {
	sc := segment.DefaultConfig()
	sc.SegmentBytes = tc.SegmentBytes
	sc.SegmentMs = time.Duration(tc.SegmentMs) * time.Millisecond
	sc.SegmentIndexBytes = int(tc.SegmentIndexBytes)
	sc.IndexIntervalBytes = int(tc.IndexIntervalBytes)
	if fp, err := segment.ParseFlushPolicy(b.cfg.LogFlushPolicy); err == nil { // validated in Config.Validate
		sc.FlushPolicy = fp
	}
	sc.FlushInterval = time.Duration(b.cfg.LogFlushIntervalMs) * time.Millisecond
	sc.RecycleSegments = int(b.cfg.LogSegmentRecycleFiles)
	if tc.FlushIntervalMs > 0 { // log.flush.interval.ms may be set dynamically (cluster_config.go)
		sc.FlushInterval = time.Duration(tc.FlushIntervalMs) * time.Millisecond
	}
	sc.Logger = b.log.With("component", "segment")
	return sc
}
