package broker

import (
	"context"
	"fmt"

	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/shoal-io/shoal/metadata"
)

// AlterConfigs: v0-2
//
// Behavior:
// * TOPIC resources: the request's configs replace the topic's explicit
//   configs as a whole (Kafka's legacy semantics): keys not in the request
//   return to their defaults. The result is validated as a whole (known
//   keys, valid values, consistent combination: INVALID_CONFIG with a
//   message naming the key) and committed through the metadata Raft group
//   in one command, so a refused request changes nothing
// * ValidateOnly checks everything and changes nothing
// * a null value or a key named twice: INVALID_REQUEST; a resource named
//   twice: INVALID_REQUEST for each occurrence; unknown topic:
//   UNKNOWN_TOPIC_OR_PARTITION; empty topic name: INVALID_REQUEST
// * BROKER resources: broker configs are read-only (flags or config file),
//   so any change is INVALID_REQUEST, as Kafka answers for configs that
//   cannot be updated dynamically; an empty config list succeeds
// * other resource types: INVALID_REQUEST
// * ALTER_CONFIGS is needed on the topic (TOPIC_AUTHORIZATION_FAILED,
//   checked before existence), or for a broker on the cluster
//   (CLUSTER_AUTHORIZATION_FAILED); a denied resource changes nothing
//
// Version notes:
// * v1: ThrottleMillis after the response; v2: flexible

func (b *Broker) handleAlterConfigs(ctx context.Context, r *request) (kmsg.Response, error) {
	req := r.req.(*kmsg.AlterConfigsRequest)
	resp := req.ResponseKind().(*kmsg.AlterConfigsResponse)
	ctx, cancel := adminTimeout(ctx, 30_000)
	defer cancel()
	repeated := repeatedResources(req.Resources, func(rr kmsg.AlterConfigsRequestResource) resourceKey {
		return resourceKey{rr.ResourceType, rr.ResourceName}
	})
	for _, rr := range req.Resources {
		sr := kmsg.NewAlterConfigsResponseResource()
		sr.ResourceType, sr.ResourceName = rr.ResourceType, rr.ResourceName
		err := repeated(rr)
		if err == nil {
			err = b.configDenied(r, opAlterConfigs, rr.ResourceType, rr.ResourceName) // authz.go
		}
		if err == nil {
			err = b.alterConfigs(ctx, rr, req.ValidateOnly)
		}
		if err != nil {
			sr.ErrorCode, sr.ErrorMessage = errCode(err), errMessage(err)
		}
		resp.Resources = append(resp.Resources, sr)
	}
	return resp, nil
}

// alterConfigs applies one resource of a legacy AlterConfigs request.
func (b *Broker) alterConfigs(ctx context.Context, rr kmsg.AlterConfigsRequestResource, validateOnly bool) error {
	names := make([]string, len(rr.Configs))
	for i, c := range rr.Configs {
		names[i] = c.Name
	}
	t, err := b.resourceTarget(rr.ResourceType, rr.ResourceName, names)
	if t == nil || err != nil {
		return err
	}
	ch := topicConfigChange{set: make(map[string]string, len(rr.Configs))}
	for _, c := range rr.Configs {
		if c.Value == nil {
			return fmt.Errorf("%w: null value for config %s", errInvalidRequest, c.Name)
		}
		ch.set[c.Name] = *c.Value
	}
	for _, def := range metadata.TopicConfigs {
		if _, explicit := t.Configs[def.Name]; explicit {
			if _, kept := ch.set[def.Name]; !kept {
				ch.delete = append(ch.delete, def.Name)
			}
		}
	}
	return b.applyTopicConfigs(ctx, t, ch, validateOnly)
}
