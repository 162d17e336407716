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

// clusterConfigs are the cluster-wide dynamic broker defaults Sediment keeps in meta (Kafka's BROKER
// resource "", "entity-default"), with their value checks. Every other broker config is static.
//
// remote.log.copy.disable is a Sediment extension at this level (Kafka has it per topic only, KIP-950):
// true pauses uploads of every tiered topic, as if each had the topic config set.
var clusterConfigs = map[string]func(string) error{
	"remote.log.copy.disable": boolean,
}

// IsClusterConfig reports whether name is a cluster-wide dynamic broker config.
func IsClusterConfig(name string) bool {
	_, ok := clusterConfigs[name]
	return ok
}

// ClusterConfigNames lists the cluster-wide dynamic broker configs, sorted.
func ClusterConfigNames() []string {
	out := make([]string, 0, len(clusterConfigs))
	for n := range clusterConfigs {
		out = append(out, n)
	}
	sort.Strings(out)
	return out
}

// ValidateClusterConfig checks one name/value pair; the error wraps ErrInvalidConfig.
func ValidateClusterConfig(name, value string) error {
	check, ok := clusterConfigs[name]
	if !ok {
		return reject(ErrInvalidConfig, "unknown cluster config %q", name)
	}
	if err := check(value); err != nil {
		return reject(ErrInvalidConfig, "invalid value for %s: %v", name, err)
	}
	return nil
}

func validateClusterConfigs(cfg map[string]string) *Error {
	return validateEach(cfg, ValidateClusterConfig)
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
