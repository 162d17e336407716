package broker

// Cluster-wide dynamic broker configs: Kafka's BROKER resource "" ("entity-default"), which
// kafka-configs.sh --entity-type brokers --entity-default and kadm's AlterBrokerConfigs with no broker
// id address. Sediment's broker configs are static (flags, --conf, config file) except the few names
// meta.IsClusterConfig accepts, which live in meta so that every broker sees one value:
//
//   - remote.log.copy.disable (bool, default false). A Sediment extension at the broker level (Kafka has
//     it per topic only, KIP-950): true pauses uploads of every tiered topic, exactly as the topic
//     config does; local retention keeps every segment not yet uploaded, so nothing is lost, and
//     setting it back to false (or deleting it) drains the backlog.
//
// Errors, as Kafka answers an entity-default alteration: a name that is not a dynamic config →
// INVALID_REQUEST (the same answer as for any static broker config); a bad value, a null value for SET,
// APPEND/SUBTRACT on a non-list → INVALID_CONFIG; a name twice or an unknown op → INVALID_REQUEST.

import (
	"context"
	"fmt"
	"sort"
	"strings"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/sediment-io/sediment/meta"
)

const srcDynamicDefault = kmsg.ConfigSourceDynamicDefaultBrokerConfig

// clusterConfigDocs documents each cluster-wide dynamic broker config (for DescribeConfigs).
var clusterConfigDocs = map[string]string{
	"remote.log.copy.disable": "Sediment extension (cluster-wide, dynamic: set it on the BROKER resource \"\"): pause uploads of every tiered topic, as the topic config remote.log.copy.disable does for one topic. Local retention keeps every segment not yet uploaded, so nothing is lost; setting it back to false drains the backlog.",
}

// staticBrokerConfigError is the answer to any change of a broker config that is not dynamic.
func staticBrokerConfigError(name string) error {
	return kerrf(kerr.InvalidRequest, "broker config %s cannot be updated dynamically in Sediment; set it at start with --conf name=value (cluster-wide dynamic configs, on the BROKER resource \"\": %s)",
		name, strings.Join(meta.ClusterConfigNames(), ", "))
}

// incrementalClusterConfigs applies an IncrementalAlterConfigs on the BROKER resource "".
func (b *Broker) incrementalClusterConfigs(ctx context.Context, r kmsg.IncrementalAlterConfigsRequestResource, validateOnly bool, c *connCtx) error {
	for _, cf := range r.Configs {
		if !meta.IsClusterConfig(cf.Name) {
			return staticBrokerConfigError(cf.Name)
		}
	}
	cur := b.meta.State().ClusterConfigs()
	seen := map[string]bool{}
	set := map[string]string{}
	var remove []string
	for _, cf := range r.Configs {
		if seen[cf.Name] {
			return kerrf(kerr.InvalidRequest, "config %s appears more than once for the cluster-wide broker defaults", cf.Name)
		}
		seen[cf.Name] = true
		switch cf.Op {
		case kmsg.IncrementalAlterConfigOpSet:
			if cf.Value == nil {
				return kerrf(kerr.InvalidConfig, "config %s: SET with a null value", cf.Name)
			}
			if err := meta.ValidateClusterConfig(cf.Name, *cf.Value); err != nil {
				return err
			}
			set[cf.Name] = *cf.Value
		case kmsg.IncrementalAlterConfigOpDelete:
			if _, has := cur[cf.Name]; has {
				remove = append(remove, cf.Name)
			}
		case kmsg.IncrementalAlterConfigOpAppend, kmsg.IncrementalAlterConfigOpSubtract:
			return kerrf(kerr.InvalidConfig, "config %s is not a list: %s is not allowed", cf.Name, cf.Op)
		default:
			return kerrf(kerr.InvalidRequest, "config %s: unknown operation %d", cf.Name, cf.Op)
		}
	}
	if len(set) == 0 && len(remove) == 0 {
		return nil
	}
	return b.applyClusterConfigs(ctx, set, remove, validateOnly, c)
}

// replaceClusterConfigs applies a legacy AlterConfigs on the BROKER resource "": the listed configs
// become the complete set of cluster-wide dynamic defaults (Kafka's semantics), so an empty list
// removes them all.
func (b *Broker) replaceClusterConfigs(ctx context.Context, configs []kmsg.AlterConfigsRequestResourceConfig, validateOnly bool, c *connCtx) error {
	for _, cf := range configs {
		if !meta.IsClusterConfig(cf.Name) {
			return staticBrokerConfigError(cf.Name)
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
		if err := meta.ValidateClusterConfig(cf.Name, *cf.Value); err != nil {
			return err
		}
		set[cf.Name] = *cf.Value
	}
	var remove []string
	for k := range b.meta.State().ClusterConfigs() {
		if _, keep := set[k]; !keep {
			remove = append(remove, k)
		}
	}
	sort.Strings(remove)
	if len(set) == 0 && len(remove) == 0 {
		return nil
	}
	return b.applyClusterConfigs(ctx, set, remove, validateOnly, c)
}

func (b *Broker) applyClusterConfigs(ctx context.Context, set map[string]string, remove []string, validateOnly bool, c *connCtx) error {
	if validateOnly {
		return b.meta.ValidateClusterConfigs(set, remove)
	}
	if err := b.meta.AlterClusterConfigs(ctx, set, remove); err != nil {
		return err
	}
	b.log.Info("cluster-wide broker configs changed", "set", fmt.Sprint(set), "removed", fmt.Sprint(remove), "client_id", c.clientID)
	return nil
}

// clusterConfigEntries describes the cluster-wide dynamic configs. onlySet (the BROKER resource "")
// lists only those set, as Kafka describes entity-default; otherwise (a broker id) every one is
// listed, at its default when not set.
func (b *Broker) clusterConfigEntries(names []string, onlySet bool) []configEntry {
	st := b.meta.State()
	var out []configEntry
	for _, n := range meta.ClusterConfigNames() {
		if !wanted(names, n) {
			continue
		}
		const def = "false" // every cluster config so far is a boolean defaulting to false
		e := configEntry{name: n, value: def, source: srcDefault, typ: kmsg.ConfigTypeBoolean, doc: clusterConfigDocs[n]}
		if v, ok := st.ClusterConfig(n); ok {
			e.value, e.source = v, srcDynamicDefault
			e.synonyms = append(e.synonyms, configSynonym{n, v, srcDynamicDefault})
		} else if onlySet {
			continue
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
