package broker

import (
	"context"
	"time"

	"github.com/twmb/franz-go/pkg/kmsg"
)

// DeleteTopics: v1-6
//
// Behavior:
// * each topic is deleted through the metadata Raft group; its partitions'
//   streams are never reused, and their WAL data is no longer reachable
// * unknown topics: UNKNOWN_TOPIC_OR_PARTITION (by name) or UNKNOWN_TOPIC_ID
//   (by id); NOT_CONTROLLER when the metadata group has no leader here
// * TimeoutMillis bounds the commit wait (at least 1 s, at most 60 s)
// * as Kafka: without DESCRIBE on the topic TOPIC_AUTHORIZATION_FAILED
//   (whether or not it exists; by id, an unknown id is UNKNOWN_TOPIC_ID
//   and a known one's name is not returned), then existence, then DELETE
//   on the topic (TOPIC_AUTHORIZATION_FAILED)
//
// Version notes:
// * v0 is not served (Kafka 4 dropped it)
// * v4: flexible; v5: ErrorMessage
// * v6: topics by name or id, TopicID in the response

func (b *Broker) handleDeleteTopics(ctx context.Context, r *request) (kmsg.Response, error) {
	req := r.req.(*kmsg.DeleteTopicsRequest)
	resp := req.ResponseKind().(*kmsg.DeleteTopicsResponse)
	timeout := min(max(time.Duration(req.TimeoutMillis)*time.Millisecond, time.Second), time.Minute)
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()

	targets := req.Topics
	if req.Version < 6 {
		targets = make([]kmsg.DeleteTopicsRequestTopic, len(req.TopicNames))
		for i := range req.TopicNames {
			targets[i].Topic = &req.TopicNames[i]
		}
	}
	for _, rt := range targets {
		st := kmsg.NewDeleteTopicsResponseTopic()
		st.Topic, st.TopicID = rt.Topic, rt.TopicID
		err := b.deleteTopic(ctx, r, rt, &st)
		if err != nil {
			st.ErrorCode = errCode(err)
			if req.Version >= 5 {
				st.ErrorMessage = errMessage(err)
			}
		}
		resp.Topics = append(resp.Topics, st)
	}
	return resp, nil
}

// deleteTopic deletes the topic named by name or id, if r may.
func (b *Broker) deleteTopic(ctx context.Context, r *request, rt kmsg.DeleteTopicsRequestTopic, st *kmsg.DeleteTopicsResponseTopic) error {
	im := b.meta.Image()
	var name string
	if rt.Topic != nil {
		name = *rt.Topic
		if err := b.topicDenied(r, opDescribe, nil, false, name); err != nil { // authz.go
			return err
		}
		if im.Topics[name] == nil {
			return errUnknownTopicOrPartition
		}
	} else {
		t := topicByID(im, rt.TopicID)
		if t == nil {
			return errUnknownTopicID
		}
		if err := b.topicDenied(r, opDescribe, t, true, ""); err != nil {
			return err
		}
		name = t.Name
		st.Topic = &name
	}
	if err := b.topicDenied(r, opDelete, nil, false, name); err != nil {
		return err
	}
	t, err := b.meta.DeleteTopic(ctx, name)
	if err != nil {
		return err
	}
	st.TopicID = t.ID
	b.logger.Info("topic deleted", "topic", name)
	return nil
}
