package broker

// Dynamic broker configs: Kafka's BROKER resources "" (cluster-wide defaults, kafka-configs.sh
// --entity-type brokers --entity-default, kadm's AlterBrokerConfigs with no broker id) and "<id>"
// (one broker's own values, --entity-name <id>). Sediment keeps both levels in meta (one map, see
// meta/configs.go) so that every broker sees the same values and they survive restarts.
//
// Which configs are dynamic (meta.IsClusterDefaultConfig, meta.IsPerBrokerConfig):
//
//   - The broker configs that supply a topic config's default and that Sediment acts on, at both
//     levels (Kafka's DynamicLogConfig): log.retention.ms (and .minutes, .hours), log.retention.bytes,
//     log.segment.bytes, log.roll.ms (and .hours), log.index.size.max.bytes, log.index.interval.bytes,
//     log.cleanup.policy, log.message.timestamp.type, log.message.timestamp.before.max.ms,
//     log.message.timestamp.after.max.ms, log.local.retention.ms, log.local.retention.bytes,
//     message.max.bytes, min.insync.replicas, compression.type; and log.flush.interval.ms (the fsync
//     period under log.flush.policy=interval; Kafka's synonym of flush.ms, whose topic override
//     Sediment stores without acting on), and remote.log.manager.fetch.max.bytes.per.second and
//     remote.log.manager.copy.max.bytes.per.second (KIP-956's remote fetch and upload quotas, dynamic
//     in Kafka too: applied to the running quotas, tierManager.applyRemoteQuotas, on every change).
//     A change applies live to every topic
//     without an override of the matching topic config: the replica manager re-reads every partition's
//     effective config (topic_config.go) when meta reports ClusterConfigChanged; retention uses the new
//     values at its next check, segment settings apply from the next roll.
//   - remote.log.copy.disable (bool, default false), cluster-wide only. A Sediment extension at the
//     broker level (Kafka has it per topic only, KIP-950): true pauses uploads of every tiered topic,
//     exactly as the topic config does; local retention keeps every segment not yet uploaded, so
//     nothing is lost, and setting it back to false (or deleting it) drains the backlog.
//
// Precedence, as Kafka: topic override > this broker's dynamic value > cluster-wide dynamic default >
// static (--conf, flags, config file) > Kafka's default (brokerConfigLayers).
//
// Errors, as Kafka answers: a name that is not dynamic → INVALID_REQUEST (the same answer for every
// static broker config, and for a cluster-only config sent to a broker id); a bad value, an
// unimplemented value (log.cleanup.policy=compact, compression.type other than producer), local
// retention above total retention at this broker, a null value for SET, APPEND/SUBTRACT on a non-list
// → INVALID_CONFIG; a name twice or an unknown op → INVALID_REQUEST; another broker's id →
// INVALID_REQUEST (Kafka's "Unexpected broker id": the request goes to the broker it names).

import (
	"context"
	"fmt"
	"sort"
	"strconv"
	"strings"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/sediment-io/sediment/meta"
)

const srcDynamicDefault = kmsg.ConfigSourceDynamicDefaultBrokerConfig

// clusterConfigDocs documents each cluster-wide-only dynamic broker config (for DescribeConfigs).
var clusterConfigDocs = map[string]string{
	"remote.log.copy.disable": "Sediment extension (cluster-wide, dynamic: set it on the BROKER resource \"\"): pause uploads of every tiered topic, as the topic config remote.log.copy.disable does for one topic. Local retention keeps every segment not yet uploaded, so nothing is lost; setting it back to false drains the backlog.",
}

// spellingDocs documents the coarser spellings, which exist only as dynamic configs.
var spellingDocs = map[string]string{
	"log.retention.minutes": "Dynamic only: log.retention.ms in minutes (log.retention.ms at the same level wins).",
	"log.retention.hours":   "Dynamic only: log.retention.ms in hours (log.retention.ms or .minutes at the same level win).",
	"log.roll.hours":        "Dynamic only: log.roll.ms in hours (log.roll.ms at the same level wins).",
}

// staticBrokerConfigError is the answer to any change of a broker config that is not dynamic at the
// level addressed.
func staticBrokerConfigError(name string, perBroker bool) error {
	if perBroker && meta.IsClusterDefaultConfig(name) {
		return kerrf(kerr.InvalidRequest, "broker config %s can only be set cluster-wide, on the BROKER resource \"\"", name)
	}
	return kerrf(kerr.InvalidRequest, "broker config %s cannot be updated dynamically in Sediment; set it at start with --conf name=value (dynamic broker configs, on the BROKER resource \"\" or a broker id: %s)",
		name, strings.Join(meta.ClusterConfigNames(), ", "))
}

// brokerLevel is one of the two dynamic levels a request addresses.
type brokerLevel struct {
	perBroker bool
	id        int32
}

// brokerLevelOf checks a BROKER resource name: "" (cluster-wide defaults) or this broker's id.
func (b *Broker) brokerLevelOf(name string) (brokerLevel, error) {
	if name == "" {
		return brokerLevel{}, nil
	}
	if err := b.checkBrokerResource(name); err != nil {
		return brokerLevel{}, kerrf(kerr.InvalidRequest, "%v", err)
	}
	return brokerLevel{perBroker: true, id: b.cfg.NodeID}, nil
}

func (l brokerLevel) allowed(name string) bool {
	if l.perBroker {
		return meta.IsPerBrokerConfig(name)
	}
	return meta.IsClusterDefaultConfig(name)
}

// key is the meta cluster-config key of name at this level.
func (l brokerLevel) key(name string) string {
	if l.perBroker {
		return meta.BrokerConfigKey(l.id, name)
	}
	return name
}

// current returns the configs set at this level, by name.
func (l brokerLevel) current(st *meta.State) map[string]string {
	if l.perBroker {
		return st.DynamicBrokerConfigs(l.id)
	}
	return st.DynamicDefaultConfigs()
}

// incrementalBrokerConfigs applies an IncrementalAlterConfigs on a BROKER resource ("" or an id).
func (b *Broker) incrementalBrokerConfigs(ctx context.Context, r kmsg.IncrementalAlterConfigsRequestResource, validateOnly bool, c *connCtx) error {
	lvl, err := b.brokerLevelOf(r.ResourceName)
	if err != nil {
		return err
	}
	for _, cf := range r.Configs {
		if !lvl.allowed(cf.Name) {
			return staticBrokerConfigError(cf.Name, lvl.perBroker)
		}
	}
	cur := lvl.current(b.meta.State())
	seen := map[string]bool{}
	set := map[string]string{}
	var remove []string
	for _, cf := range r.Configs {
		if seen[cf.Name] {
			return kerrf(kerr.InvalidRequest, "config %s appears more than once for BROKER %q", cf.Name, r.ResourceName)
		}
		seen[cf.Name] = true
		isList := cf.Name == "log.cleanup.policy"
		switch cf.Op {
		case kmsg.IncrementalAlterConfigOpSet:
			if cf.Value == nil {
				return kerrf(kerr.InvalidConfig, "config %s: SET with a null value", cf.Name)
			}
			set[cf.Name] = *cf.Value
		case kmsg.IncrementalAlterConfigOpDelete:
			if _, has := cur[cf.Name]; has {
				remove = append(remove, cf.Name)
			}
		case kmsg.IncrementalAlterConfigOpAppend, kmsg.IncrementalAlterConfigOpSubtract:
			if !isList {
				return kerrf(kerr.InvalidConfig, "config %s is not a list: %s is not allowed", cf.Name, cf.Op)
			}
			if cf.Value == nil {
				return kerrf(kerr.InvalidConfig, "config %s: %s with a null value", cf.Name, cf.Op)
			}
			v, _, _ := b.brokerConfigValue(b.dynamicConfigs(), cf.Name)
			set[cf.Name] = editList(v, *cf.Value, cf.Op == kmsg.IncrementalAlterConfigOpAppend)
		default:
			return kerrf(kerr.InvalidRequest, "config %s: unknown operation %d", cf.Name, cf.Op)
		}
	}
	if len(set) == 0 && len(remove) == 0 {
		return nil
	}
	next := map[string]string{}
	for k, v := range cur {
		next[k] = v
	}
	for _, k := range remove {
		delete(next, k)
	}
	for k, v := range set {
		next[k] = v
	}
	if err := b.checkBrokerLevel(lvl, next); err != nil {
		return err
	}
	return b.applyClusterConfigs(ctx, lvl, set, remove, validateOnly, c)
}

// replaceBrokerConfigs applies a legacy AlterConfigs on a BROKER resource: the listed configs become
// the complete set of dynamic configs at that level (Kafka's semantics), so an empty list removes
// them all.
func (b *Broker) replaceBrokerConfigs(ctx context.Context, name string, configs []kmsg.AlterConfigsRequestResourceConfig, validateOnly bool, c *connCtx) error {
	lvl, err := b.brokerLevelOf(name)
	if err != nil {
		return err
	}
	for _, cf := range configs {
		if !lvl.allowed(cf.Name) {
			return staticBrokerConfigError(cf.Name, lvl.perBroker)
		}
	}
	set := map[string]string{}
	for _, cf := range configs {
		if cf.Value == nil {
			return kerrf(kerr.InvalidConfig, "config %s has a null value", cf.Name)
		}
		if _, dup := set[cf.Name]; dup {
			return kerrf(kerr.InvalidRequest, "config %s given twice", cf.Name)
		}
		set[cf.Name] = *cf.Value
	}
	var remove []string
	for k := range lvl.current(b.meta.State()) {
		if _, keep := set[k]; !keep {
			remove = append(remove, k)
		}
	}
	sort.Strings(remove)
	if len(set) == 0 && len(remove) == 0 {
		return nil
	}
	if err := b.checkBrokerLevel(lvl, set); err != nil {
		return err
	}
	return b.applyClusterConfigs(ctx, lvl, set, remove, validateOnly, c)
}

// checkBrokerLevel validates next, the complete set of dynamic configs a level would hold: every
// value (meta's checks), values Sediment does not implement, and Kafka's DynamicLogConfig rule that
// local retention may not exceed total retention, as this broker would then resolve them.
func (b *Broker) checkBrokerLevel(lvl brokerLevel, next map[string]string) error {
	names := make([]string, 0, len(next))
	for n := range next {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		if err := meta.ValidateClusterConfig(lvl.key(n), next[n]); err != nil {
			return err
		}
		if tn, ok := brokerTopicSynonyms[n]; ok {
			if err := unimplementedTopicValue(tn, next[n]); err != nil {
				return err
			}
		}
	}
	dyn := b.dynamicConfigs()
	if lvl.perBroker {
		dyn.broker = next
	} else {
		dyn.cluster = next
	}
	num := func(name string) int64 {
		v, _, _ := b.brokerConfigValue(dyn, name)
		n, _ := strconv.ParseInt(strings.TrimSpace(v), 10, 64)
		return n
	}
	for _, p := range [][2]string{{"log.local.retention.ms", "log.retention.ms"}, {"log.local.retention.bytes", "log.retention.bytes"}} {
		local, total := num(p[0]), num(p[1])
		if total == -1 || local == -2 {
			continue
		}
		if local == -1 {
			return kerrf(kerr.InvalidConfig, "invalid value -1 for %s: must not be -1 as %s is %d", p[0], p[1], total)
		}
		if local > total {
			return kerrf(kerr.InvalidConfig, "invalid value %d for %s: must not be more than %s (%d)", local, p[0], p[1], total)
		}
	}
	return nil
}

// brokerTopicSynonyms maps a dynamic broker config (any spelling) to the topic config it supplies.
var brokerTopicSynonyms = func() map[string]string {
	m := map[string]string{}
	for topic, broker := range topicBrokerSynonyms {
		for _, sp := range spellings(broker) {
			m[sp.name] = topic
		}
	}
	return m
}()

func (b *Broker) applyClusterConfigs(ctx context.Context, lvl brokerLevel, set map[string]string, remove []string, validateOnly bool, c *connCtx) error {
	keys := make(map[string]string, len(set))
	for n, v := range set {
		keys[lvl.key(n)] = v
	}
	removeKeys := make([]string, len(remove))
	for i, n := range remove {
		removeKeys[i] = lvl.key(n)
	}
	if validateOnly {
		return b.meta.ValidateClusterConfigs(keys, removeKeys)
	}
	if err := b.meta.AlterClusterConfigs(ctx, keys, removeKeys); err != nil {
		return err
	}
	what := "cluster-wide broker configs changed"
	if lvl.perBroker {
		what = "broker configs of this broker changed"
	}
	b.log.Info(what, "set", fmt.Sprint(set), "removed", fmt.Sprint(remove), "client_id", c.clientID)
	return nil
}

// clusterDefaultEntries describes the BROKER resource "": the cluster-wide dynamic defaults that are
// set, as Kafka describes entity-default (synonyms: that default, then the static and default values
// of its base config).
func (b *Broker) clusterDefaultEntries(names []string) []configEntry {
	set := b.dynamicConfigs().cluster
	keys := make([]string, 0, len(set))
	for k := range set {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var out []configEntry
	for _, n := range keys {
		if !wanted(names, n) {
			continue
		}
		e := b.dynamicEntryBase(n)
		e.value, e.source = set[n], srcDynamicDefault
		e.synonyms = append(e.synonyms, configSynonym{n, set[n], srcDynamicDefault})
		base, _ := spellingOf(n)
		for _, l := range b.brokerConfigLayers(dynamicConfigs{}, base) {
			e.synonyms = append(e.synonyms, l)
		}
		if _, ok := clusterConfigDocs[n]; ok {
			e.synonyms = append(e.synonyms, configSynonym{n, "false", srcDefault})
		}
		out = append(out, e)
	}
	return out
}

// dynamicEntryBase is the type and documentation of a dynamic config's entry.
func (b *Broker) dynamicEntryBase(name string) configEntry {
	e := configEntry{name: name, typ: kmsg.ConfigTypeString}
	if d, ok := brokerConfigByName[name]; ok {
		e.typ, e.doc = d.typ, d.doc
	} else if doc, ok := spellingDocs[name]; ok {
		e.typ, e.doc = kmsg.ConfigTypeInt, doc
	} else if doc, ok := clusterConfigDocs[name]; ok {
		e.typ, e.doc = kmsg.ConfigTypeBoolean, doc
	}
	return e
}

// dynamicBrokerEntry describes a dynamic broker config on this broker's id: the value in force and
// every layer (brokerConfigLayers) as synonyms. A coarser spelling (log.retention.hours …) is listed
// only where it is set, with its own value.
func (b *Broker) dynamicBrokerEntry(dyn dynamicConfigs, name string) (configEntry, bool) {
	e := b.dynamicEntryBase(name)
	base, unit := spellingOf(name)
	layers := b.brokerConfigLayers(dyn, base)
	if unit != 1 {
		var own []configSynonym
		for _, l := range layers {
			if l.name == name {
				own = append(own, l)
			}
		}
		if len(own) == 0 {
			return e, false
		}
		e.value, e.source, e.synonyms = own[0].value, own[0].source, own
		return e, true
	}
	if len(layers) == 0 {
		return e, false
	}
	e.value, e.source, e.synonyms = layerValue(layers[0]), layers[0].source, layers
	return e, true
}

// clusterOnlyEntries describes the cluster-wide-only dynamic configs on a broker id: every one,
// at its default when not set.
func (b *Broker) clusterOnlyEntries(names []string) []configEntry {
	dyn := b.dynamicConfigs()
	var out []configEntry
	for _, n := range meta.ClusterConfigNames() {
		if meta.IsPerBrokerConfig(n) || !wanted(names, n) {
			continue
		}
		const def = "false" // every cluster-only config so far is a boolean defaulting to false
		e := b.dynamicEntryBase(n)
		e.value, e.source = def, srcDefault
		if v, ok := dyn.cluster[n]; ok {
			e.value, e.source = v, srcDynamicDefault
			e.synonyms = append(e.synonyms, configSynonym{n, v, srcDynamicDefault})
		}
		e.synonyms = append(e.synonyms, configSynonym{n, def, srcDefault})
		out = append(out, e)
	}
	return out
}

// clusterCopyDisabled reports whether uploads are paused cluster-wide (remote.log.copy.disable on
// the BROKER resource "").
func (b *Broker) clusterCopyDisabled() bool {
	if b.meta == nil {
		return false
	}
	v, ok := b.meta.State().ClusterConfig("remote.log.copy.disable")
	return ok && strings.EqualFold(strings.TrimSpace(v), "true")
}
