package broker

import (
	"cmp"
	"context"
	"errors"
	"slices"

	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/shoal-io/shoal/metadata"
)

// Metadata: v0-13
//
// Behavior:
// * brokers are the registered brokers, each with its address on the
//   listener the request came on (a broker without that listener is left
//   out, as Kafka does); the controller is the metadata group's leader
// * a partition's leader is its WAL group's Raft leader, its leader epoch
//   the group's Raft term; replicas are the group's voters, the ISR the
//   voters the leader hears from (a broker that does not lead the group
//   lists every voter); offline replicas are empty; a group without leader
//   gives LEADER_NOT_AVAILABLE with leader -1 and the voters as replicas
// * unknown topics: UNKNOWN_TOPIC_OR_PARTITION, or, when the broker's
//   AutoCreateTopics is on (off by default) and the request allows it, the
//   topic is created with the default partitions and replication factor and
//   returned ready (an invalid name then gives INVALID_TOPIC_EXCEPTION)
// * authorisation as Kafka: a request for all topics lists only those the
//   client may DESCRIBE; a topic named without DESCRIBE on it is
//   TOPIC_AUTHORIZATION_FAILED whether or not it exists, so names do not
//   leak; by id, a known topic without DESCRIBE is TOPIC_AUTHORIZATION_FAILED
//   without its name; auto-creation needs CREATE on the cluster or the
//   topic (TOPIC_AUTHORIZATION_FAILED)
// * authorized operations (v8+, when asked) are the operations the client
//   may perform on each topic, and (v8-10) on the cluster
//
// Version notes:
// * v0: an empty topic list means all topics; v1+: null means all
// * v1: ControllerID, IsInternal, Rack; v2: ClusterID; v3: ThrottleMillis
// * v4: AllowAutoTopicCreation (before v4, creation is always allowed)
// * v7: LeaderEpoch
// * v9: flexible
// * v10: topic ids; v12+ topics may be requested by id only (UNKNOWN_TOPIC_ID)
// * v13: top-level ErrorCode (always 0)

func (b *Broker) handleMetadata(ctx context.Context, r *request) (kmsg.Response, error) {
	req := r.req.(*kmsg.MetadataRequest)
	resp := req.ResponseKind().(*kmsg.MetadataResponse)
	im := b.meta.Image()
	for _, br := range im.SortedBrokers() {
		ep, ok := r.endpointFor(br)
		if !ok {
			continue
		}
		mb := kmsg.NewMetadataResponseBroker()
		mb.NodeID, mb.Host, mb.Port = br.ID, ep.Host, ep.Port
		if br.Rack != "" {
			rack := br.Rack
			mb.Rack = &rack
		}
		resp.Brokers = append(resp.Brokers, mb)
	}
	clusterID := im.ClusterID
	resp.ClusterID = &clusterID
	resp.ControllerID = nodeID(b.meta.LeaderID())

	if req.Topics == nil || (req.Version == 0 && len(req.Topics) == 0) {
		for _, name := range im.SortedTopicNames() {
			if b.topicDenied(r, opDescribe, nil, false, name) == nil { // authz.go
				resp.Topics = append(resp.Topics, b.topicMetadata(im.Topics[name]))
			}
		}
		return b.withAuthorizedOps(r, req, resp), nil
	}
	allowCreate := b.cfg.AutoCreateTopics && (req.Version < 4 || req.AllowAutoTopicCreation)
	for _, rt := range req.Topics {
		if rt.Topic == nil {
			t := topicByID(im, rt.TopicID)
			err := b.topicDenied(r, opDescribe, t, true, "")
			if t != nil && err == nil {
				resp.Topics = append(resp.Topics, b.topicMetadata(t))
				continue
			}
			st := kmsg.NewMetadataResponseTopic()
			st.TopicID = rt.TopicID
			st.ErrorCode = errCode(cmp.Or(err, errUnknownTopicID))
			resp.Topics = append(resp.Topics, st)
			continue
		}
		name := *rt.Topic
		t := im.Topics[name]
		err := b.topicDenied(r, opDescribe, nil, false, name) // before existence: names do not leak
		if err == nil && t == nil {
			err = errUnknownTopicOrPartition
			if allowCreate {
				if err = b.createDenied(r, name); err == nil {
					t, err = b.autoCreateTopic(ctx, name)
				}
			}
		}
		if err != nil {
			st := kmsg.NewMetadataResponseTopic()
			st.Topic = &name
			st.ErrorCode = errCode(err)
			resp.Topics = append(resp.Topics, st)
			continue
		}
		resp.Topics = append(resp.Topics, b.topicMetadata(t))
	}
	return b.withAuthorizedOps(r, req, resp), nil
}

// withAuthorizedOps fills the authorized operations the request asks for:
// each answered topic's, and the cluster's (v8-10).
func (b *Broker) withAuthorizedOps(r *request, req *kmsg.MetadataRequest, resp *kmsg.MetadataResponse) *kmsg.MetadataResponse {
	if req.Version >= 8 && req.IncludeTopicAuthorizedOperations {
		for i := range resp.Topics {
			if st := &resp.Topics[i]; st.ErrorCode == 0 && st.Topic != nil {
				st.AuthorizedOperations = b.authorizedOps(r, resTopic, *st.Topic)
			}
		}
	}
	if req.Version >= 8 && req.Version <= 10 && req.IncludeClusterAuthorizedOperations {
		resp.AuthorizedOperations = b.authorizedOps(r, resCluster, clusterName)
	}
	return resp
}

// autoCreateTopic creates a topic with the defaults; a concurrent creation
// of the same topic is success.
func (b *Broker) autoCreateTopic(ctx context.Context, name string) (*metadata.Topic, error) {
	t, err := b.meta.CreateTopic(ctx, metadata.TopicSpec{Name: name, Partitions: -1, ReplicationFactor: -1,
		WALGroups: b.newTopicGroups()})
	if errors.Is(err, metadata.ErrTopicExists) {
		if t := b.meta.Image().Topics[name]; t != nil {
			return t, nil
		}
	}
	if err != nil {
		return nil, err
	}
	b.logger.Info("topic auto-created", "topic", name, "partitions", len(t.Partitions))
	return t, nil
}

// topicMetadata describes one topic and its partitions.
func (b *Broker) topicMetadata(t *metadata.Topic) kmsg.MetadataResponseTopic {
	st := kmsg.NewMetadataResponseTopic()
	im := b.meta.Image()
	name := t.Name
	st.Topic = &name
	st.TopicID = t.ID
	st.Partitions = make([]kmsg.MetadataResponseTopicPartition, len(t.Partitions))
	for i, p := range t.Partitions {
		sp := &st.Partitions[i]
		sp.Default()
		sp.Partition = p.Index
		sp.Leader, sp.LeaderEpoch = -1, -1
		sp.Replicas, sp.ISR, sp.OfflineReplicas = []int32{}, []int32{}, []int32{}
		if ws := b.localGroup(p.WALGroup); ws != nil {
			sp.Leader, sp.LeaderEpoch = nodeID(ws.g.Leader()), ws.g.LeaderEpoch()
			if sp.Replicas = ws.voters(); len(sp.Replicas) == 0 {
				sp.Replicas = []int32{b.cfg.NodeID}
			}
			sp.ISR = ws.inSync(sp.Replicas)
		} else if mg, ok := im.WALGroup(p.WALGroup); ok {
			// A group this broker does not replicate: its leader as it
			// last reported itself.
			sp.Leader, sp.LeaderEpoch = mg.Leader, mg.LeaderEpoch
			sp.Replicas, sp.ISR = slices.Clone(mg.Replicas), slices.Clone(mg.Replicas)
		}
		if sp.Leader < 0 {
			sp.ErrorCode = errCode(errLeaderNotAvailable)
			sp.LeaderEpoch = -1
			sp.ISR = []int32{}
		}
	}
	return st
}
