package broker

import (
	"context"
	"fmt"
	"slices"

	"github.com/twmb/franz-go/pkg/kmsg"
)

// DescribeConfigs: v0-4
//
// Behavior:
// * TOPIC resources: every topic config of metadata.TopicConfigs (Kafka's
//   names), explicit values as DYNAMIC_TOPIC_CONFIG, the rest with Kafka's
//   default as DEFAULT_CONFIG; read-only false, sensitive false; synonyms
//   (when asked) are the explicit value, then the broker-level default under
//   Kafka's broker name (retention.ms -> log.retention.ms) as DEFAULT_CONFIG
// * BROKER resources: named by this broker's id, every broker setting under
//   Kafka's name where one exists (broker.id, num.partitions,
//   socket.request.max.bytes, log.dirs, log.retention.ms, ...) and shoal.*
//   for Shoal's own (shoal.upload.bytes, ...); all read-only; a value other
//   than the built-in default is STATIC_BROKER_CONFIG; see configs.go.
//   An empty name asks for the cluster-wide dynamic defaults: Shoal has
//   none, so the list is empty. Another broker's id or a non-number is
//   INVALID_REQUEST, as Kafka answers.
// * ConfigNames filters (null or empty: all); unknown names are left out,
//   as Kafka does
// * unknown topic: UNKNOWN_TOPIC_OR_PARTITION; invalid topic name:
//   INVALID_TOPIC_EXCEPTION; empty topic name and other resource types
//   (broker logger, client metrics, group): INVALID_REQUEST
// * DESCRIBE_CONFIGS is needed on the topic (TOPIC_AUTHORIZATION_FAILED,
//   checked before existence), or for a broker on the cluster
//   (CLUSTER_AUTHORIZATION_FAILED)
//
// Version notes:
// * v0: IsDefault instead of Source
// * v1: Source, synonyms (IncludeSynonyms)
// * v3: ConfigType and Documentation (IncludeDocumentation)
// * v4: flexible

func (b *Broker) handleDescribeConfigs(ctx context.Context, r *request) (kmsg.Response, error) {
	req := r.req.(*kmsg.DescribeConfigsRequest)
	resp := req.ResponseKind().(*kmsg.DescribeConfigsResponse)
	im := b.meta.Image()
	for _, rr := range req.Resources {
		sr := kmsg.NewDescribeConfigsResponseResource()
		sr.ResourceType, sr.ResourceName = rr.ResourceType, rr.ResourceName
		var entries []describedConfig
		err := b.configDenied(r, opDescribeConfigs, rr.ResourceType, rr.ResourceName) // authz.go
		switch {
		case err != nil:
		case rr.ResourceType == kmsg.ConfigResourceTypeTopic:
			t, terr := configTopic(im, rr.ResourceName)
			if err = terr; err == nil {
				entries = topicConfigEntries(t)
			}
		case rr.ResourceType == kmsg.ConfigResourceTypeBroker:
			var perBroker bool
			if perBroker, err = b.checkBrokerResource(rr.ResourceName); perBroker {
				entries = b.brokerConfigEntries()
			}
		default:
			err = fmt.Errorf("%w: unsupported resource type %d", errInvalidRequest, rr.ResourceType)
		}
		if err != nil {
			sr.ErrorCode, sr.ErrorMessage = errCode(err), errMessage(err)
		} else {
			sr.Configs = describeEntries(req, rr.ConfigNames, entries)
		}
		resp.Resources = append(resp.Resources, sr)
	}
	return resp, nil
}

// describeEntries renders the entries the request asks for, for its version.
func describeEntries(req *kmsg.DescribeConfigsRequest, names []string, entries []describedConfig) []kmsg.DescribeConfigsResponseResourceConfig {
	out := make([]kmsg.DescribeConfigsResponseResourceConfig, 0, len(entries))
	for _, e := range entries {
		if len(names) > 0 && !slices.Contains(names, e.name) {
			continue
		}
		c := kmsg.NewDescribeConfigsResponseResourceConfig()
		c.Name = e.name
		v := e.value
		c.Value = &v
		c.ReadOnly = e.readOnly
		c.Source = e.source
		c.IsDefault = e.source == kmsg.ConfigSourceDefaultConfig
		if req.Version >= 1 && req.IncludeSynonyms {
			for _, s := range e.synonyms {
				syn := kmsg.NewDescribeConfigsResponseResourceConfigConfigSynonym()
				sv := s.value
				syn.Name, syn.Value, syn.Source = s.name, &sv, s.source
				c.ConfigSynonyms = append(c.ConfigSynonyms, syn)
			}
		}
		if req.Version >= 3 {
			c.ConfigType = e.typ
			if req.IncludeDocumentation {
				doc := e.doc
				c.Documentation = &doc
			}
		}
		out = append(out, c)
	}
	return out
}
