package broker

// DescribeConfigs: v0–v4.
//
// TOPIC resources: every topic config Kafka defines (meta's table), with the effective value and its
// source as Kafka reports it: DYNAMIC_TOPIC_CONFIG for an override, else the level of the broker
// synonym (log.retention.ms for retention.ms …) in force: DYNAMIC_BROKER_CONFIG,
// DYNAMIC_DEFAULT_BROKER_CONFIG, STATIC_BROKER_CONFIG, DEFAULT_CONFIG. Synonyms (v1+, when asked)
// list those layers most specific first; documentation and types (v3+) as Kafka.
// BROKER resources: this broker's id → every broker config: static ones read-only; dynamic ones
// (cluster_config.go) not read-only, with the value in force and its source (DYNAMIC_BROKER_CONFIG,
// DYNAMIC_DEFAULT_BROKER_CONFIG, STATIC_BROKER_CONFIG or DEFAULT_CONFIG), their coarser spellings
// (log.retention.hours …) where set, and the cluster-wide-only remote.log.copy.disable;
// "" (cluster-wide dynamic defaults) → those that are set, as DYNAMIC_DEFAULT_BROKER_CONFIG; another
// id → INVALID_REQUEST (Kafka's "Unexpected broker id").
// BROKER_LOGGER and other types → INVALID_REQUEST. Unknown topic → UNKNOWN_TOPIC_OR_PARTITION.
// Unknown config names in ConfigNames are skipped, as Kafka does.

import (
	"context"
	"fmt"
	"strconv"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/sediment-io/sediment/meta"
)

func init() { register(kmsg.DescribeConfigs, 0, 4, (*Broker).handleDescribeConfigs) }

type configSource = kmsg.ConfigSource

const (
	srcTopic   = kmsg.ConfigSourceDynamicTopicConfig
	srcStatic  = kmsg.ConfigSourceStaticBrokerConfig
	srcDefault = kmsg.ConfigSourceDefaultConfig
)

// configEntry is one described config, independent of the response type it goes into.
type configEntry struct {
	name     string
	value    string
	source   configSource
	readOnly bool
	typ      kmsg.ConfigType
	doc      string
	synonyms []configSynonym
}

type configSynonym struct {
	name, value string
	source      configSource
}

func (b *Broker) handleDescribeConfigs(ctx context.Context, c *connCtx, kreq kmsg.Request) (kmsg.Response, error) {
	req := kreq.(*kmsg.DescribeConfigsRequest)
	resp := req.ResponseKind().(*kmsg.DescribeConfigsResponse)
	st := b.meta.State()
	for _, rr := range req.Resources {
		r := kmsg.NewDescribeConfigsResponseResource()
		r.ResourceType, r.ResourceName = rr.ResourceType, rr.ResourceName
		var entries []configEntry
		switch rr.ResourceType {
		case kmsg.ConfigResourceTypeTopic:
			if err := meta.ValidateTopicName(rr.ResourceName); err != nil {
				r.ErrorCode, r.ErrorMessage = errorCode(err), errorMessage(err)
				break
			}
			t, ok := st.Topic(rr.ResourceName)
			if !ok {
				r.ErrorCode = kerr.UnknownTopicOrPartition.Code
				r.ErrorMessage = strPtr(fmt.Sprintf("topic %q does not exist", rr.ResourceName))
				break
			}
			entries = b.topicConfigEntries(t.Configs, rr.ConfigNames)
		case kmsg.ConfigResourceTypeBroker:
			if rr.ResourceName == "" {
				entries = b.clusterDefaultEntries(rr.ConfigNames)
				break
			}
			if err := b.checkBrokerResource(rr.ResourceName); err != nil {
				r.ErrorCode, r.ErrorMessage = kerr.InvalidRequest.Code, errorMessage(err)
				break
			}
			entries = append(b.brokerConfigEntries(rr.ConfigNames), b.clusterOnlyEntries(rr.ConfigNames)...)
		default:
			r.ErrorCode = kerr.InvalidRequest.Code
			r.ErrorMessage = strPtr(fmt.Sprintf("resource type %s is not supported by Sediment", rr.ResourceType))
		}
		for _, e := range entries {
			rc := kmsg.NewDescribeConfigsResponseResourceConfig()
			rc.Name = e.name
			rc.Value = strPtr(e.value)
			rc.ReadOnly = e.readOnly
			rc.IsDefault = e.source == srcDefault
			rc.Source = e.source
			if req.IncludeSynonyms {
				for _, s := range e.synonyms {
					sy := kmsg.NewDescribeConfigsResponseResourceConfigConfigSynonym()
					sy.Name, sy.Value, sy.Source = s.name, strPtr(s.value), s.source
					rc.ConfigSynonyms = append(rc.ConfigSynonyms, sy)
				}
			}
			rc.ConfigType = e.typ
			if req.IncludeDocumentation {
				rc.Documentation = strPtr(e.doc)
			}
			r.Configs = append(r.Configs, rc)
		}
		resp.Resources = append(resp.Resources, r)
	}
	return resp, nil
}

// checkBrokerResource accepts this broker's id as a BROKER resource name.
func (b *Broker) checkBrokerResource(name string) error {
	id, err := strconv.ParseInt(name, 10, 32)
	if err != nil {
		return fmt.Errorf("broker resource name %q is not a broker id", name)
	}
	if int32(id) != b.cfg.NodeID {
		return fmt.Errorf("unexpected broker id %d: this is broker %d; send broker config requests to the broker they name", id, b.cfg.NodeID)
	}
	return nil
}

// wanted reports whether name is in names (nil = all).
func wanted(names []string, name string) bool {
	if names == nil {
		return true
	}
	for _, n := range names {
		if n == name {
			return true
		}
	}
	return false
}

// brokerConfigSource: Sediment's broker configs are static (flags, --conf, config file); a value
// equal to Kafka's default is reported as DEFAULT_CONFIG.
func (b *Broker) brokerConfigSource(name string) configSource {
	d, ok := brokerConfigByName[name]
	if !ok || d.set == nil {
		return srcStatic
	}
	if d.get(&b.cfg) == d.def {
		return srcDefault
	}
	return srcStatic
}

func (b *Broker) brokerConfigEntries(names []string) []configEntry {
	dyn := b.dynamicConfigs()
	var out []configEntry
	for _, d := range brokerConfigDefs {
		if meta.IsPerBrokerConfig(d.name) {
			// The config and its coarser spellings (log.retention.hours …), each if asked for.
			for _, sp := range spellings(d.name) {
				if !wanted(names, sp.name) {
					continue
				}
				if e, ok := b.dynamicBrokerEntry(dyn, sp.name); ok {
					out = append(out, e)
				}
			}
			continue
		}
		if !wanted(names, d.name) {
			continue
		}
		v := d.get(&b.cfg)
		src := b.brokerConfigSource(d.name)
		e := configEntry{name: d.name, value: v, source: src, readOnly: true, typ: d.typ, doc: d.doc}
		if src == srcStatic {
			e.synonyms = append(e.synonyms, configSynonym{d.name, v, srcStatic})
		}
		if d.def != "" {
			e.synonyms = append(e.synonyms, configSynonym{d.name, d.def, srcDefault})
		}
		out = append(out, e)
	}
	return out
}

// topicConfigEntries describes a topic's configs given its overrides: the value in force and, as
// synonyms, the override then every layer of its broker synonym (brokerConfigLayers).
func (b *Broker) topicConfigEntries(overrides map[string]string, names []string) []configEntry {
	dyn := b.dynamicConfigs()
	var out []configEntry
	for _, tc := range meta.TopicConfigs() {
		if !wanted(names, tc.Name) {
			continue
		}
		v, src, _ := b.topicConfigValue(dyn, overrides, tc.Name)
		e := configEntry{name: tc.Name, value: v, source: src, typ: topicConfigType(tc.Name, tc.Default), doc: topicConfigDoc(tc.Name)}
		if ov, ok := overrides[tc.Name]; ok {
			e.synonyms = append(e.synonyms, configSynonym{tc.Name, ov, srcTopic})
		}
		if syn, ok := topicBrokerSynonyms[tc.Name]; ok {
			e.synonyms = append(e.synonyms, b.brokerConfigLayers(dyn, syn)...)
		} else if tc.Name == "remote.storage.enable" {
			// Sediment's default follows the broker (remote.log.storage.system.enable), not Kafka's false.
			e.synonyms = append(e.synonyms, configSynonym{tc.Name, strconv.FormatBool(b.cfg.RemoteLogStorageEnable), srcDefault})
		} else {
			e.synonyms = append(e.synonyms, configSynonym{tc.Name, tc.Default, srcDefault})
		}
		out = append(out, e)
	}
	return out
}

var topicIntConfigs = map[string]bool{
	"index.interval.bytes": true, "max.message.bytes": true, "min.insync.replicas": true,
	"segment.bytes": true, "segment.index.bytes": true, "compression.gzip.level": true,
	"compression.lz4.level": true, "compression.zstd.level": true,
}

func topicConfigType(name, def string) kmsg.ConfigType {
	switch {
	case topicIntConfigs[name]:
		return kmsg.ConfigTypeInt
	case name == "cleanup.policy" || name == "leader.replication.throttled.replicas" || name == "follower.replication.throttled.replicas":
		return kmsg.ConfigTypeList
	case name == "min.cleanable.dirty.ratio":
		return kmsg.ConfigTypeDouble
	case def == "true" || def == "false":
		return kmsg.ConfigTypeBoolean
	}
	if _, err := strconv.ParseInt(def, 10, 64); err == nil {
		return kmsg.ConfigTypeLong
	}
	return kmsg.ConfigTypeString
}

// topicConfigDocs documents the topic configs Sediment acts on; the others are accepted and stored
// (so that tools setting them keep working) but have no effect, and say so.
var topicConfigDocs = map[string]string{
	"retention.ms":                        "Delete whole segments whose newest record is older than this (ms), over the whole log (local and object storage); -1 keeps data forever.",
	"retention.bytes":                     "Delete the oldest whole segments while a partition (local and object storage together) is larger than this; -1 means no size limit.",
	"segment.bytes":                       "Roll to a new segment file when the active one reaches this size.",
	"segment.ms":                          "Roll to a new segment after this long even if it is not full.",
	"segment.index.bytes":                 "Maximum size of a segment's offset index.",
	"index.interval.bytes":                "Bytes of log between two offset index entries.",
	"cleanup.policy":                      "Only \"delete\" is implemented; compaction is not.",
	"min.insync.replicas":                 "Minimum in-sync replicas for a produce with acks=all to succeed.",
	"max.message.bytes":                   "Largest record batch (after compression) accepted for this topic.",
	"message.timestamp.type":              "CreateTime keeps producer timestamps; LogAppendTime stamps batches with the broker's time.",
	"message.timestamp.before.max.ms":     "Reject batches whose timestamp is older than this before the broker's clock (CreateTime).",
	"message.timestamp.after.max.ms":      "Reject batches whose timestamp is further than this ahead of the broker's clock (CreateTime).",
	"local.retention.ms":                  "Retention of the local (hot) copy of a tiered topic; only segments already uploaded are deleted locally; -2 = retention.ms.",
	"local.retention.bytes":               "Size retention of the local (hot) copy of a tiered topic; only segments already uploaded are deleted locally; -2 = retention.bytes.",
	"remote.storage.enable":               "Tier closed segments to object storage: the leader uploads each closed segment below the high watermark, reads below the local log start are served from the bucket. Defaults to the broker's remote.log.storage.system.enable (on when an object store is configured).",
	"remote.log.copy.disable":             "Pause uploads of this tiered topic (KIP-950). Unlike Kafka, local retention still deletes only uploaded segments while paused, so nothing is lost; uploads resume where they stopped when set back to false.",
	"compression.type":                    "Only \"producer\" is implemented: batches are stored as the producer compressed them.",
	"remote.log.segment.compression.type": "Sediment extension: lz4 stores this topic's uploaded segments of uncompressed batches as lz4 chunks, none as they are; defaults to the broker config of the same name.",
}

func topicConfigDoc(name string) string {
	if d, ok := topicConfigDocs[name]; ok {
		return d
	}
	return "Kafka topic config, accepted and stored for compatibility; Sediment does not act on it."
}

func strPtr(s string) *string { return &s }
