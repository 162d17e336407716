package meta

import (
	"fmt"
	"math"
	"slices"
	"sort"
	"strconv"
	"strings"
)

// TopicConfig describes one topic-level config Kafka knows, with Kafka's default.
type TopicConfig struct {
	Name    string
	Default string
	check   func(v string) error
}

func longAtLeast(min int64) func(string) error {
	return func(v string) error {
		n, err := strconv.ParseInt(strings.TrimSpace(v), 10, 64)
		if err != nil {
			return fmt.Errorf("%q is not a valid long", v)
		}
		if n < min {
			return fmt.Errorf("value %d must be at least %d", n, min)
		}
		return nil
	}
}

func intAtLeast(min int64) func(string) error {
	return func(v string) error {
		n, err := strconv.ParseInt(strings.TrimSpace(v), 10, 32)
		if err != nil {
			return fmt.Errorf("%q is not a valid int", v)
		}
		if n < min {
			return fmt.Errorf("value %d must be at least %d", n, min)
		}
		return nil
	}
}

func boolean(v string) error {
	switch strings.ToLower(strings.TrimSpace(v)) {
	case "true", "false":
		return nil
	}
	return fmt.Errorf("%q is not a boolean (true or false)", v)
}

func oneOf(vals ...string) func(string) error {
	return func(v string) error {
		if slices.Contains(vals, strings.TrimSpace(v)) {
			return nil
		}
		return fmt.Errorf("%q is not one of %s", v, strings.Join(vals, ", "))
	}
}

func listOf(vals ...string) func(string) error {
	return func(v string) error {
		parts := strings.Split(v, ",")
		for _, p := range parts {
			if !slices.Contains(vals, strings.TrimSpace(p)) {
				return fmt.Errorf("%q: %q is not one of %s", v, strings.TrimSpace(p), strings.Join(vals, ", "))
			}
		}
		return nil
	}
}

func ratio(v string) error {
	f, err := strconv.ParseFloat(strings.TrimSpace(v), 64)
	if err != nil || math.IsNaN(f) || f < 0 || f > 1 {
		return fmt.Errorf("%q is not a number in [0,1]", v)
	}
	return nil
}

func anyString(string) error { return nil }

// topicConfigs is Kafka's topic-level config set (LogConfig / TopicConfig) with defaults and value checks.
var topicConfigs = map[string]TopicConfig{}

func init() {
	for _, c := range []TopicConfig{
		{"cleanup.policy", "delete", listOf("delete", "compact")},
		{"compression.type", "producer", oneOf("uncompressed", "zstd", "lz4", "snappy", "gzip", "producer")},
		{"compression.gzip.level", "-1", intAtLeast(-1)},
		{"compression.lz4.level", "9", intAtLeast(1)},
		{"compression.zstd.level", "3", intAtLeast(-131072)},
		{"delete.retention.ms", "86400000", longAtLeast(0)},
		{"file.delete.delay.ms", "60000", longAtLeast(0)},
		{"flush.messages", "9223372036854775807", longAtLeast(1)},
		{"flush.ms", "9223372036854775807", longAtLeast(0)},
		{"follower.replication.throttled.replicas", "", anyString},
		{"index.interval.bytes", "4096", intAtLeast(0)},
		{"leader.replication.throttled.replicas", "", anyString},
		{"local.retention.bytes", "-2", longAtLeast(-2)},
		{"local.retention.ms", "-2", longAtLeast(-2)},
		{"max.compaction.lag.ms", "9223372036854775807", longAtLeast(1)},
		{"max.message.bytes", "1048588", intAtLeast(0)},
		{"message.downconversion.enable", "true", boolean},
		{"message.timestamp.after.max.ms", "3600000", longAtLeast(0)},
		{"message.timestamp.before.max.ms", "9223372036854775807", longAtLeast(0)},
		{"message.timestamp.difference.max.ms", "9223372036854775807", longAtLeast(0)},
		{"message.timestamp.type", "CreateTime", oneOf("CreateTime", "LogAppendTime")},
		{"min.cleanable.dirty.ratio", "0.5", ratio},
		{"min.compaction.lag.ms", "0", longAtLeast(0)},
		{"min.insync.replicas", "1", intAtLeast(1)},
		{"preallocate", "false", boolean},
		{"remote.log.copy.disable", "false", boolean},
		{"remote.log.delete.on.disable", "false", boolean},
		// Sediment extension (not Kafka): per-topic override of the broker config of the same name.
		{"remote.log.segment.compression.type", "none", oneOf("none", "lz4")},
		{"remote.storage.enable", "false", boolean},
		{"retention.bytes", "-1", longAtLeast(-1)},
		{"retention.ms", "604800000", longAtLeast(-1)},
		{"segment.bytes", "1073741824", intAtLeast(14)},
		{"segment.index.bytes", "10485760", intAtLeast(4)},
		{"segment.jitter.ms", "0", longAtLeast(0)},
		{"segment.ms", "604800000", longAtLeast(1)},
		{"unclean.leader.election.enable", "false", boolean},
	} {
		topicConfigs[c.Name] = c
	}
}

// TopicConfigs lists the known topic-level configs sorted by name (for DescribeConfigs).
func TopicConfigs() []TopicConfig {
	out := make([]TopicConfig, 0, len(topicConfigs))
	for _, c := range topicConfigs {
		out = append(out, c)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}

// TopicConfigDefault returns Kafka's default for a known topic config.
func TopicConfigDefault(name string) (string, bool) {
	c, ok := topicConfigs[name]
	return c.Default, ok
}

// ValidateTopicConfig checks one name/value pair; the error wraps ErrInvalidConfig.
func ValidateTopicConfig(name, value string) error {
	c, ok := topicConfigs[name]
	if !ok {
		return reject(ErrInvalidConfig, "unknown topic config %q", name)
	}
	if err := c.check(value); err != nil {
		return reject(ErrInvalidConfig, "invalid value for %s: %v", name, err)
	}
	return nil
}

// validateTopicConfigs checks every pair and the cross-field rules of the resulting set.
func validateTopicConfigs(cfg map[string]string) *Error {
	if e := validateEach(cfg, ValidateTopicConfig); e != nil {
		return e
	}
	get := func(name string) int64 {
		v, ok := cfg[name]
		if !ok {
			v = topicConfigs[name].Default
		}
		n, _ := strconv.ParseInt(strings.TrimSpace(v), 10, 64)
		return n
	}
	// Kafka: local retention may not exceed total retention (-2 = same as total, -1 = unlimited).
	if lr, r := get("local.retention.ms"), get("retention.ms"); lr >= 0 && r >= 0 && lr > r {
		return reject(ErrInvalidConfig, "local.retention.ms (%d) must not exceed retention.ms (%d)", lr, r)
	} else if lr == -1 && r >= 0 {
		return reject(ErrInvalidConfig, "local.retention.ms -1 (unlimited) needs retention.ms -1")
	}
	if lr, r := get("local.retention.bytes"), get("retention.bytes"); lr >= 0 && r >= 0 && lr > r {
		return reject(ErrInvalidConfig, "local.retention.bytes (%d) must not exceed retention.bytes (%d)", lr, r)
	} else if lr == -1 && r >= 0 {
		return reject(ErrInvalidConfig, "local.retention.bytes -1 (unlimited) needs retention.bytes -1")
	}
	return nil
}

// Dynamic broker configs (Kafka's BROKER resources): cluster-wide defaults (the resource "",
// kafka-configs.sh --entity-default) and per-broker values (the resource "<id>"). They live in one
// map of the state (the cluster-config map, command kind alter-cluster-configs), keyed by
//
//	name          a cluster-wide default, e.g. "log.retention.ms"
//	<id>/name     broker <id>'s own value, e.g. "2/log.retention.ms" (BrokerConfigKey)
//
// so that every broker sees the same values, they survive restarts (snapshots carry the map), and
// one command kind serves both levels. Every other broker config is static (flags, --conf).
//
// dynamicBrokerConfigs are the broker configs that supply a topic config's default (Kafka's
// ServerTopicConfigSynonyms, which DynamicLogConfig makes reconfigurable) and that Sediment acts
// on, with their value checks; they may be set at both levels. log.retention.minutes/.hours and
// log.roll.hours are Kafka's coarser spellings of log.retention.ms and log.roll.ms.
var dynamicBrokerConfigs = map[string]func(string) error{
	"log.retention.ms":                    longAtLeast(-1),
	"log.retention.minutes":               intAtLeast(-1),
	"log.retention.hours":                 intAtLeast(-1),
	"log.retention.bytes":                 longAtLeast(-1),
	"log.segment.bytes":                   intAtLeast(14),
	"log.roll.ms":                         longAtLeast(1),
	"log.roll.hours":                      intAtLeast(1),
	"log.index.size.max.bytes":            intAtLeast(4),
	"log.index.interval.bytes":            intAtLeast(0),
	"log.cleanup.policy":                  listOf("delete", "compact"),
	"log.message.timestamp.type":          oneOf("CreateTime", "LogAppendTime"),
	"log.message.timestamp.before.max.ms": longAtLeast(0),
	"log.message.timestamp.after.max.ms":  longAtLeast(0),
	"log.local.retention.ms":              longAtLeast(-2),
	"log.local.retention.bytes":           longAtLeast(-2),
	"message.max.bytes":                   intAtLeast(0),
	"min.insync.replicas":                 intAtLeast(1),
	"compression.type":                    oneOf("uncompressed", "zstd", "lz4", "snappy", "gzip", "producer"),
	// log.flush.interval.ms: Sediment's fsync period under log.flush.policy=interval (Kafka's synonym
	// of flush.ms, dynamic there too).
	"log.flush.interval.ms": longAtLeast(1),
	// remote.log.manager.fetch/copy.max.bytes.per.second: the remote fetch and upload quotas
	// (KIP-956, dynamic in Kafka too); not topic configs' defaults, like log.flush.interval.ms.
	"remote.log.manager.fetch.max.bytes.per.second": longAtLeast(1),
	"remote.log.manager.copy.max.bytes.per.second":  longAtLeast(1),
}

// clusterOnlyConfigs may be set only as cluster-wide defaults.
//
// remote.log.copy.disable is a Sediment extension at this level (Kafka has it per topic only, KIP-950):
// true pauses uploads of every tiered topic, as if each had the topic config set.
var clusterOnlyConfigs = map[string]func(string) error{
	"remote.log.copy.disable": boolean,
}

// BrokerConfigKey is the cluster-config map key of broker id's own value of a dynamic broker config.
func BrokerConfigKey(id int32, name string) string {
	return strconv.FormatInt(int64(id), 10) + "/" + name
}

// splitConfigKey parses a cluster-config map key: (-1, name) for a cluster-wide default.
func splitConfigKey(key string) (id int32, name string, ok bool) {
	i := strings.IndexByte(key, '/')
	if i < 0 {
		return -1, key, true
	}
	n, err := strconv.ParseInt(key[:i], 10, 32)
	if err != nil || n < 0 || key[:i] != strconv.FormatInt(n, 10) {
		return 0, "", false
	}
	return int32(n), key[i+1:], true
}

// checkFor returns the value check of a cluster-config map key, or nil if the key is not one.
func checkFor(key string) func(string) error {
	id, name, ok := splitConfigKey(key)
	if !ok {
		return nil
	}
	if c, ok := dynamicBrokerConfigs[name]; ok {
		return c
	}
	if id < 0 {
		return clusterOnlyConfigs[name]
	}
	return nil
}

// IsClusterConfig reports whether key is a valid key of the cluster-config map: a cluster-wide
// dynamic default's name, or BrokerConfigKey of a config that may be set per broker.
func IsClusterConfig(key string) bool { return checkFor(key) != nil }

// IsClusterDefaultConfig reports whether name may be set on the BROKER resource "".
func IsClusterDefaultConfig(name string) bool {
	return !strings.Contains(name, "/") && IsClusterConfig(name)
}

// IsPerBrokerConfig reports whether name may be set on a BROKER resource "<id>".
func IsPerBrokerConfig(name string) bool {
	_, ok := dynamicBrokerConfigs[name]
	return ok
}

// ClusterConfigNames lists the configs that may be set on the BROKER resource "", sorted.
func ClusterConfigNames() []string {
	out := make([]string, 0, len(dynamicBrokerConfigs)+len(clusterOnlyConfigs))
	for n := range dynamicBrokerConfigs {
		out = append(out, n)
	}
	for n := range clusterOnlyConfigs {
		out = append(out, n)
	}
	sort.Strings(out)
	return out
}

// PerBrokerConfigNames lists the configs that may be set on a BROKER resource "<id>", sorted.
func PerBrokerConfigNames() []string {
	out := make([]string, 0, len(dynamicBrokerConfigs))
	for n := range dynamicBrokerConfigs {
		out = append(out, n)
	}
	sort.Strings(out)
	return out
}

// ValidateClusterConfig checks one cluster-config map entry (key as in IsClusterConfig); the error
// wraps ErrInvalidConfig.
func ValidateClusterConfig(key, value string) error {
	check := checkFor(key)
	if check == nil {
		return reject(ErrInvalidConfig, "unknown cluster config %q", key)
	}
	if err := check(value); err != nil {
		_, name, _ := splitConfigKey(key)
		return reject(ErrInvalidConfig, "invalid value for %s: %v", name, err)
	}
	return nil
}

func validateClusterConfigs(cfg map[string]string) *Error {
	return validateEach(cfg, ValidateClusterConfig)
}

// DynamicDefaultConfigs returns the cluster-wide dynamic broker defaults that are set (BROKER "").
func (s *State) DynamicDefaultConfigs() map[string]string {
	out := map[string]string{}
	for k, v := range s.clusterConfigs {
		if !strings.Contains(k, "/") {
			out[k] = v
		}
	}
	return out
}

// DynamicBrokerConfigs returns broker id's own dynamic configs that are set (BROKER "<id>"), by name.
func (s *State) DynamicBrokerConfigs(id int32) map[string]string {
	prefix := strconv.FormatInt(int64(id), 10) + "/"
	out := map[string]string{}
	for k, v := range s.clusterConfigs {
		if name, ok := strings.CutPrefix(k, prefix); ok {
			out[name] = v
		}
	}
	return out
}

// DynamicBrokerConfig returns broker id's own value of a dynamic config, if set.
func (s *State) DynamicBrokerConfig(id int32, name string) (string, bool) {
	v, ok := s.clusterConfigs[BrokerConfigKey(id, name)]
	return v, ok
}

// validateEach checks every name/value pair of cfg with validate (whose errors are *Error), in name
// order, so that the first bad name in order is the one reported on every node.
func validateEach(cfg map[string]string, validate func(name, value string) error) *Error {
	names := make([]string, 0, len(cfg))
	for k := range cfg {
		names = append(names, k)
	}
	sort.Strings(names)
	for _, k := range names {
		if err := validate(k, cfg[k]); err != nil {
			return err.(*Error)
		}
	}
	return nil
}
