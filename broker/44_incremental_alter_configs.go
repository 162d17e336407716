package broker

// IncrementalAlterConfigs: v0–v1.
//
// TOPIC: SET, DELETE, APPEND and SUBTRACT per config as Kafka (KIP-339). APPEND/SUBTRACT apply only to
// LIST configs (cleanup.policy, *.replication.throttled.replicas), otherwise INVALID_CONFIG; a key given
// twice in one resource → INVALID_REQUEST; an unknown op → INVALID_REQUEST; unknown name, bad value or
// unimplemented value → INVALID_CONFIG; SET with a null value → INVALID_CONFIG. DELETE of a config
// that has no override is a no-op, as in Kafka. The change is validated as a whole (cross-config rules
// such as local.retention.ms <= retention.ms) and committed in one metadata entry. validateOnly changes
// nothing. BROKER "" (cluster-wide dynamic defaults) and BROKER "<id>" of this broker (its own
// dynamic configs), cluster_config.go: SET and DELETE of the dynamic broker configs (APPEND/SUBTRACT
// on log.cleanup.policy); a name that is not dynamic at that level → INVALID_REQUEST as for static
// configs, a bad or null value or APPEND/SUBTRACT on a non-list → INVALID_CONFIG; another broker's id
// → INVALID_REQUEST.

import (
	"context"
	"strings"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/sediment-io/sediment/meta"
)

func init() { register(kmsg.IncrementalAlterConfigs, 0, 1, (*Broker).handleIncrementalAlterConfigs) }

func (b *Broker) handleIncrementalAlterConfigs(ctx context.Context, c *connCtx, kreq kmsg.Request) (kmsg.Response, error) {
	req := kreq.(*kmsg.IncrementalAlterConfigsRequest)
	resp := req.ResponseKind().(*kmsg.IncrementalAlterConfigsResponse)
	ctx, cancel := adminTimeout(ctx, 0)
	defer cancel()
	count := map[resourceKey]int{}
	for _, r := range req.Resources {
		count[resourceKey{r.ResourceType, r.ResourceName}]++
	}
	for _, r := range req.Resources {
		rr := kmsg.NewIncrementalAlterConfigsResponseResource()
		rr.ResourceType, rr.ResourceName = r.ResourceType, r.ResourceName
		var err error
		switch {
		case count[resourceKey{r.ResourceType, r.ResourceName}] > 1:
			err = kerrf(kerr.InvalidRequest, "resource %s %q appears more than once in the request", r.ResourceType, r.ResourceName)
		case r.ResourceType == kmsg.ConfigResourceTypeTopic:
			err = b.incrementalTopicConfigs(ctx, r, req.ValidateOnly, c)
		case r.ResourceType == kmsg.ConfigResourceTypeBroker:
			err = b.incrementalBrokerConfigs(ctx, r, req.ValidateOnly, c)
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

func (b *Broker) incrementalTopicConfigs(ctx context.Context, r kmsg.IncrementalAlterConfigsRequestResource, validateOnly bool, c *connCtx) error {
	if err := meta.ValidateTopicName(r.ResourceName); err != nil {
		return err
	}
	t, ok := b.meta.State().Topic(r.ResourceName)
	if !ok {
		return kerrf(kerr.UnknownTopicOrPartition, "topic %q does not exist", r.ResourceName)
	}
	seen := map[string]bool{}
	set := map[string]string{}
	var remove []string
	for _, cf := range r.Configs {
		if seen[cf.Name] {
			return kerrf(kerr.InvalidRequest, "config %s appears more than once for topic %q", cf.Name, r.ResourceName)
		}
		seen[cf.Name] = true
		def, known := meta.TopicConfigDefault(cf.Name)
		if !known {
			return kerrf(kerr.InvalidConfig, "unknown topic config %q", cf.Name)
		}
		isList := topicConfigType(cf.Name, def) == kmsg.ConfigTypeList
		switch cf.Op {
		case kmsg.IncrementalAlterConfigOpSet:
			if cf.Value == nil {
				return kerrf(kerr.InvalidConfig, "config %s: SET with a null value", cf.Name)
			}
			set[cf.Name] = *cf.Value
		case kmsg.IncrementalAlterConfigOpDelete:
			if _, has := t.Configs[cf.Name]; has {
				remove = append(remove, cf.Name)
			}
		case kmsg.IncrementalAlterConfigOpAppend, kmsg.IncrementalAlterConfigOpSubtract:
			if !isList {
				return kerrf(kerr.InvalidConfig, "config %s is not a list: %s is not allowed", cf.Name, cf.Op)
			}
			if cf.Value == nil {
				return kerrf(kerr.InvalidConfig, "config %s: %s with a null value", cf.Name, cf.Op)
			}
			cur, _, _ := b.topicConfigValue(b.dynamicConfigs(), t.Configs, cf.Name)
			set[cf.Name] = editList(cur, *cf.Value, cf.Op == kmsg.IncrementalAlterConfigOpAppend)
		default:
			return kerrf(kerr.InvalidRequest, "config %s: unknown operation %d", cf.Name, cf.Op)
		}
	}
	if err := validateTopicConfigs(set); err != nil {
		return err
	}
	if len(set) == 0 && len(remove) == 0 {
		return nil
	}
	return b.applyTopicConfigs(ctx, r.ResourceName, set, remove, validateOnly, c)
}

// editList appends (without duplicates) or subtracts the comma-separated items of v to/from cur.
func editList(cur, v string, add bool) string {
	var out []string
	has := map[string]bool{}
	for _, x := range strings.Split(cur, ",") {
		if x = strings.TrimSpace(x); x != "" && !has[x] {
			has[x] = true
			out = append(out, x)
		}
	}
	for _, x := range strings.Split(v, ",") {
		x = strings.TrimSpace(x)
		if x == "" {
			continue
		}
		if add && !has[x] {
			has[x] = true
			out = append(out, x)
		}
		if !add && has[x] {
			delete(has, x)
			for i, y := range out {
				if y == x {
					out = append(out[:i], out[i+1:]...)
					break
				}
			}
		}
	}
	return strings.Join(out, ",")
}
