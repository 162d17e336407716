package broker

// AlterConfigs: v0–v2 (the legacy, whole-set API).
//
// TOPIC: the given configs REPLACE the topic's overrides (Kafka's semantics: any override not listed
// is removed). Unknown name, bad value or an unimplemented value → INVALID_CONFIG; null value →
// INVALID_CONFIG; unknown topic → UNKNOWN_TOPIC_OR_PARTITION; a resource listed twice →
// INVALID_REQUEST. validateOnly checks against the current state and changes nothing.
// BROKER "" (cluster-wide dynamic defaults) and BROKER "<id>" of this broker (its own dynamic
// configs), cluster_config.go: the listed configs replace the set of dynamic configs at that level
// (an empty list removes them all); a name that is not dynamic at that level → INVALID_REQUEST (static
// broker configs are set at start with --conf), a bad or null value → INVALID_CONFIG; another
// broker's id → INVALID_REQUEST.
// Other resource types → INVALID_REQUEST.

import (
	"context"
	"fmt"
	"maps"
	"sort"
	"strings"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/sediment-io/sediment/meta"
)

func init() { register(kmsg.AlterConfigs, 0, 2, (*Broker).handleAlterConfigs) }

type resourceKey struct {
	typ  kmsg.ConfigResourceType
	name string
}

func (b *Broker) handleAlterConfigs(ctx context.Context, c *connCtx, kreq kmsg.Request) (kmsg.Response, error) {
	req := kreq.(*kmsg.AlterConfigsRequest)
	resp := req.ResponseKind().(*kmsg.AlterConfigsResponse)
	ctx, cancel := adminTimeout(ctx, 0)
	defer cancel()
	count := map[resourceKey]int{}
	for _, r := range req.Resources {
		count[resourceKey{r.ResourceType, r.ResourceName}]++
	}
	for _, r := range req.Resources {
		rr := kmsg.NewAlterConfigsResponseResource()
		rr.ResourceType, rr.ResourceName = r.ResourceType, r.ResourceName
		var err error
		switch {
		case count[resourceKey{r.ResourceType, r.ResourceName}] > 1:
			err = kerrf(kerr.InvalidRequest, "resource %s %q appears more than once in the request", r.ResourceType, r.ResourceName)
		case r.ResourceType == kmsg.ConfigResourceTypeTopic:
			set := map[string]string{}
			for _, cf := range r.Configs {
				if cf.Value == nil {
					err = kerrf(kerr.InvalidConfig, "config %s has a null value", cf.Name)
					break
				}
				if _, dup := set[cf.Name]; dup {
					err = kerrf(kerr.InvalidRequest, "config %s given twice", cf.Name)
					break
				}
				set[cf.Name] = *cf.Value
			}
			if err == nil {
				err = b.replaceTopicConfigs(ctx, r.ResourceName, set, req.ValidateOnly, c)
			}
		case r.ResourceType == kmsg.ConfigResourceTypeBroker:
			err = b.replaceBrokerConfigs(ctx, r.ResourceName, r.Configs, req.ValidateOnly, c)
		default:
			err = kerrf(kerr.InvalidRequest, "resource type %s is not supported by Sediment", r.ResourceType)
		}
		if err != nil {
			rr.ErrorCode, rr.ErrorMessage = errorCode(err), errorMessage(err)
		}
		resp.Resources = append(resp.Resources, rr)
	}
	return resp, nil
}

// replaceTopicConfigs makes set the topic's complete override set.
func (b *Broker) replaceTopicConfigs(ctx context.Context, topic string, set map[string]string, validateOnly bool, c *connCtx) error {
	if err := meta.ValidateTopicName(topic); err != nil {
		return err
	}
	t, ok := b.meta.State().Topic(topic)
	if !ok {
		return kerrf(kerr.UnknownTopicOrPartition, "topic %q does not exist", topic)
	}
	if err := validateTopicConfigs(set); err != nil {
		return err
	}
	var remove []string
	for k := range t.Configs {
		if _, keep := set[k]; !keep {
			remove = append(remove, k)
		}
	}
	sort.Strings(remove)
	return b.applyTopicConfigs(ctx, topic, set, remove, validateOnly, c)
}

// applyTopicConfigs commits (or with validateOnly only checks) a topic config change.
func (b *Broker) applyTopicConfigs(ctx context.Context, topic string, set map[string]string, remove []string, validateOnly bool, c *connCtx) error {
	if t, ok := b.meta.State().Topic(topic); ok { // else the commit answers UNKNOWN_TOPIC_OR_PARTITION
		after := maps.Clone(t.Configs)
		if after == nil {
			after = map[string]string{}
		}
		for _, k := range remove {
			delete(after, k)
		}
		maps.Copy(after, set)
		if err := b.checkRemoteStorageNotDisabled(topic, t.Configs, after); err != nil {
			return err
		}
		if err := b.checkTieredTopicConfigs(after); err != nil {
			return err
		}
	}
	if validateOnly {
		return b.meta.ValidateTopicConfigs(topic, set, remove)
	}
	if err := b.meta.AlterTopicConfigs(ctx, topic, set, remove); err != nil {
		return err
	}
	b.log.Info("topic configs changed", "topic", topic, "set", fmt.Sprint(set), "removed", fmt.Sprint(remove), "client_id", c.clientID)
	return nil
}

// checkRemoteStorageNotDisabled refuses a change of a topic's overrides from current to after that
// turns remote.storage.enable from true to false, as Kafka does (INVALID_CONFIG): its uploads,
// remote retention and orphan collection would stop while its history stays in the bucket, and
// local retention could move the log start past data that only the bucket holds. Stopping uploads
// while keeping the remote data readable is remote.log.copy.disable=true.
func (b *Broker) checkRemoteStorageNotDisabled(topic string, current, after map[string]string) error {
	const name = "remote.storage.enable"
	dyn := b.dynamicConfigs()
	before, _, _ := b.topicConfigValue(dyn, current, name)
	now, _, _ := b.topicConfigValue(dyn, after, name)
	if strings.EqualFold(before, "true") && !strings.EqualFold(now, "true") {
		return kerrf(kerr.InvalidConfig, "topic %q: %s cannot be turned off once on (its history may live only in the object store); "+
			"to stop uploads and keep the remote data readable set remote.log.copy.disable=true, or delete the topic", topic, name)
	}
	return nil
}
