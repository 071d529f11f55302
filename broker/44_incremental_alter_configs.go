package broker

import (
	"context"
	"fmt"
	"slices"
	"strings"

	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/shoal-io/shoal/metadata"
)

// IncrementalAlterConfigs: v0-1
//
// Behavior:
// * TOPIC resources, per config: SET (value required), DELETE (back to the
//   default; deleting a key that is not set is a no-op), APPEND and
//   SUBTRACT for list configs (cleanup.policy, the throttled-replica
//   lists): the comma-separated items are added (if missing) to or removed
//   from the current value, explicit or default, as Kafka does. APPEND or
//   SUBTRACT on a non-list config: INVALID_CONFIG
// * the topic's configs after the change are validated as a whole (known
//   keys, valid values, consistent combination: INVALID_CONFIG with a
//   message naming the key) and committed through the metadata Raft group
//   in one command, so a refused resource changes nothing
// * ValidateOnly checks everything and changes nothing
// * a null value for SET, APPEND or SUBTRACT, a key named twice, an unknown
//   operation: INVALID_REQUEST; a resource named twice: INVALID_REQUEST for
//   each occurrence; unknown topic: UNKNOWN_TOPIC_OR_PARTITION
// * BROKER resources: broker configs are read-only (flags or config file):
//   any change is INVALID_REQUEST, as Kafka answers for configs that cannot
//   be updated dynamically; other resource types: INVALID_REQUEST
// * ALTER_CONFIGS is needed on the topic (TOPIC_AUTHORIZATION_FAILED,
//   checked before existence), or for a broker on the cluster
//   (CLUSTER_AUTHORIZATION_FAILED); a denied resource changes nothing
//
// Version notes:
// * v1: flexible

func (b *Broker) handleIncrementalAlterConfigs(ctx context.Context, r *request) (kmsg.Response, error) {
	req := r.req.(*kmsg.IncrementalAlterConfigsRequest)
	resp := req.ResponseKind().(*kmsg.IncrementalAlterConfigsResponse)
	ctx, cancel := adminTimeout(ctx, 30_000)
	defer cancel()
	repeated := repeatedResources(req.Resources, func(rr kmsg.IncrementalAlterConfigsRequestResource) resourceKey {
		return resourceKey{rr.ResourceType, rr.ResourceName}
	})
	for _, rr := range req.Resources {
		sr := kmsg.NewIncrementalAlterConfigsResponseResource()
		sr.ResourceType, sr.ResourceName = rr.ResourceType, rr.ResourceName
		err := repeated(rr)
		if err == nil {
			err = b.configDenied(r, opAlterConfigs, rr.ResourceType, rr.ResourceName) // authz.go
		}
		if err == nil {
			err = b.incrementalAlterConfigs(ctx, rr, req.ValidateOnly)
		}
		if err != nil {
			sr.ErrorCode, sr.ErrorMessage = errCode(err), errMessage(err)
		}
		resp.Resources = append(resp.Resources, sr)
	}
	return resp, nil
}

// incrementalAlterConfigs applies one resource of the request.
func (b *Broker) incrementalAlterConfigs(ctx context.Context, rr kmsg.IncrementalAlterConfigsRequestResource, validateOnly bool) error {
	names := make([]string, len(rr.Configs))
	for i, c := range rr.Configs {
		names[i] = c.Name
	}
	for _, c := range rr.Configs {
		if c.Op < kmsg.IncrementalAlterConfigOpSet || c.Op > kmsg.IncrementalAlterConfigOpSubtract {
			return fmt.Errorf("%w: config %s: unknown operation %d", errInvalidRequest, c.Name, c.Op)
		}
		if c.Op != kmsg.IncrementalAlterConfigOpDelete && c.Value == nil {
			return fmt.Errorf("%w: config %s: null value for %s", errInvalidRequest, c.Name, c.Op)
		}
	}
	t, err := b.resourceTarget(rr.ResourceType, rr.ResourceName, names)
	if t == nil || err != nil {
		return err
	}
	ch := topicConfigChange{set: map[string]string{}}
	for _, c := range rr.Configs {
		switch c.Op {
		case kmsg.IncrementalAlterConfigOpSet:
			ch.set[c.Name] = *c.Value
		case kmsg.IncrementalAlterConfigOpDelete:
			ch.delete = append(ch.delete, c.Name)
		default:
			v, err := listOp(t, c.Name, c.Op, *c.Value)
			if err != nil {
				return err
			}
			ch.set[c.Name] = v
		}
	}
	return b.applyTopicConfigs(ctx, t, ch, validateOnly)
}

// listOp applies APPEND or SUBTRACT to a list config's current value
// (explicit, or the default).
func listOp(t *metadata.Topic, name string, op kmsg.IncrementalAlterConfigOp, value string) (string, error) {
	def, ok := metadata.TopicConfigDef(name)
	if !ok {
		return "", fmt.Errorf("%w: %s: unknown topic config", metadata.ErrInvalidConfig, name)
	}
	if def.Type != "list" {
		return "", fmt.Errorf("%w: cannot %s to %s because its type is not LIST", metadata.ErrInvalidConfig, op, name)
	}
	current, _ := t.EffectiveConfig(name)
	items := splitList(current)
	for _, item := range splitList(value) {
		has := slices.Contains(items, item)
		switch {
		case op == kmsg.IncrementalAlterConfigOpAppend && !has:
			items = append(items, item)
		case op == kmsg.IncrementalAlterConfigOpSubtract && has:
			items = slices.DeleteFunc(items, func(s string) bool { return s == item })
		}
	}
	return strings.Join(items, ","), nil
}

// splitList splits a list config's value into its trimmed, non-empty items.
func splitList(v string) []string {
	var out []string
	for item := range strings.SplitSeq(v, ",") {
		if item = strings.TrimSpace(item); item != "" {
			out = append(out, item)
		}
	}
	return out
}
