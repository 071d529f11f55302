package broker

import (
	"context"
	"slices"
	"strings"

	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/shoal-io/shoal/metadata"
)

// OffsetFetch: v1-10
//
// Behavior:
// * answers from this broker's metadata image (committed offsets are
//   replicated by the metadata Raft group)
// * a partition without a committed offset, or of a topic that does not
//   exist, answers offset -1, leader epoch -1, metadata "" and no error
// * Topics null: every partition the group has an offset for, topics by
//   name, partitions by index
// * RequireStable: no transactions, so no offset is ever pending: ignored
// * a group without offsets (or unknown) is not an error: all -1
// * DESCRIBE on the group is needed (GROUP_AUTHORIZATION_FAILED: v1 on each
//   partition, v2-7 the top-level error without partitions, v8 the
//   group's error) and DESCRIBE on each topic: a requested topic's
//   partitions get TOPIC_AUTHORIZATION_FAILED and no offset; with Topics
//   null, unauthorised topics are left out
//
// Version notes:
// * v0 is not served (offsets in ZooKeeper; Kafka 4 dropped it)
// * v2: a top-level ErrorCode; v5: LeaderEpoch; v6: flexible
// * v7: RequireStable (KIP-447)
// * v8: several groups per request (KIP-709); each group has its ErrorCode
// * v9: MemberID and MemberEpoch of a consumer group member (KIP-848): a
//   stale epoch is the group's STALE_MEMBER_EPOCH, an unknown member
//   UNKNOWN_MEMBER_ID (checked by the coordinator like a commit)
// * v10: topics by TopicID; an unknown id is UNKNOWN_TOPIC_ID

// fetchedOffset is one partition's OffsetFetch answer.
type fetchedOffset struct {
	partition int32
	offset    int64
	epoch     int32
	metadata  string
	err       error
}

// fetchedTopic is one topic's OffsetFetch answer.
type fetchedTopic struct {
	name  string
	id    [16]byte
	parts []fetchedOffset
}

// offsetFetchTopic is one requested topic, by name or (v10) id.
type offsetFetchTopic struct {
	name  string
	id    [16]byte
	parts []int32
}

func (b *Broker) handleOffsetFetch(ctx context.Context, r *request) (kmsg.Response, error) {
	req := r.req.(*kmsg.OffsetFetchRequest)
	resp := req.ResponseKind().(*kmsg.OffsetFetchResponse)
	im := b.meta.Image()
	if req.Version < 8 {
		var topics []offsetFetchTopic
		if req.Topics != nil {
			topics = make([]offsetFetchTopic, 0, len(req.Topics))
		}
		for _, rt := range req.Topics {
			topics = append(topics, offsetFetchTopic{name: rt.Topic, parts: rt.Partitions})
		}
		if err := b.groupDenied(r, opDescribe, req.Group); err != nil { // authz.go
			return offsetFetchGroupDenied(req, resp, err), nil
		}
		for _, ft := range b.authorizeFetchedOffsets(r, fetchOffsets(im, req.Group, topics, false), topics == nil) {
			st := kmsg.NewOffsetFetchResponseTopic()
			st.Topic = ft.name
			for _, fo := range ft.parts {
				sp := kmsg.NewOffsetFetchResponseTopicPartition()
				sp.Partition, sp.Offset, sp.LeaderEpoch = fo.partition, fo.offset, fo.epoch
				sp.Metadata, sp.ErrorCode = &fo.metadata, errCode(fo.err)
				st.Partitions = append(st.Partitions, sp)
			}
			resp.Topics = append(resp.Topics, st)
		}
		return resp, nil
	}
	for _, rg := range req.Groups {
		sg := kmsg.NewOffsetFetchResponseGroup()
		sg.Group = rg.Group
		err := b.groupDenied(r, opDescribe, rg.Group) // authz.go
		if err == nil {
			err = b.validateOffsetFetch(req.Version, rg)
		}
		if err != nil {
			sg.ErrorCode = errCode(err)
			resp.Groups = append(resp.Groups, sg)
			continue
		}
		var topics []offsetFetchTopic
		if rg.Topics != nil {
			topics = make([]offsetFetchTopic, 0, len(rg.Topics))
		}
		for _, rt := range rg.Topics {
			topics = append(topics, offsetFetchTopic{name: rt.Topic, id: rt.TopicID, parts: rt.Partitions})
		}
		for _, ft := range b.authorizeFetchedOffsets(r, fetchOffsets(im, rg.Group, topics, req.Version >= 10), topics == nil) {
			st := kmsg.NewOffsetFetchResponseGroupTopic()
			st.Topic, st.TopicID = ft.name, ft.id
			for _, fo := range ft.parts {
				sp := kmsg.NewOffsetFetchResponseGroupTopicPartition()
				sp.Partition, sp.Offset, sp.LeaderEpoch = fo.partition, fo.offset, fo.epoch
				sp.Metadata, sp.ErrorCode = &fo.metadata, errCode(fo.err)
				st.Partitions = append(st.Partitions, sp)
			}
			sg.Topics = append(sg.Topics, st)
		}
		resp.Groups = append(resp.Groups, sg)
	}
	return resp, nil
}

// offsetFetchGroupDenied answers a v1-7 request for a group the client may
// not describe, as Kafka does: v1 fails every requested partition, v2+
// sets the top-level error.
func offsetFetchGroupDenied(req *kmsg.OffsetFetchRequest, resp *kmsg.OffsetFetchResponse, err error) *kmsg.OffsetFetchResponse {
	resp.ErrorCode = errCode(err)
	if req.Version >= 2 {
		return resp
	}
	for _, rt := range req.Topics {
		st := kmsg.NewOffsetFetchResponseTopic()
		st.Topic = rt.Topic
		for _, p := range rt.Partitions {
			sp := kmsg.NewOffsetFetchResponseTopicPartition()
			sp.Partition, sp.Offset, sp.ErrorCode = p, -1, errCode(err)
			st.Partitions = append(st.Partitions, sp)
		}
		resp.Topics = append(resp.Topics, st)
	}
	return resp
}

// authorizeFetchedOffsets checks DESCRIBE on each answered topic: with all
// (Topics null) unauthorised topics are left out, otherwise their
// partitions get TOPIC_AUTHORIZATION_FAILED and no offset. An unknown
// topic id (no name) keeps its UNKNOWN_TOPIC_ID.
func (b *Broker) authorizeFetchedOffsets(r *request, fts []fetchedTopic, all bool) []fetchedTopic {
	out := fts[:0]
	for _, ft := range fts {
		var denied error
		if ft.name != "" {
			denied = b.topicDenied(r, opDescribe, nil, false, ft.name)
		}
		switch {
		case denied == nil:
			out = append(out, ft)
		case !all:
			for i, fo := range ft.parts {
				ft.parts[i] = fetchedOffset{partition: fo.partition, offset: -1, epoch: -1, err: denied}
			}
			out = append(out, ft)
		}
	}
	return out
}

// validateOffsetFetch checks the v9+ member of a consumer group; a fetch
// without member (MemberID null or epoch < 0) is not checked.
func (b *Broker) validateOffsetFetch(version int16, rg kmsg.OffsetFetchRequestGroup) error {
	groups := b.offsetGroups()
	if version < 9 || rg.MemberID == nil || rg.MemberEpoch < 0 || groups == nil {
		return nil
	}
	return groups.ValidateOffsetCommit(rg.Group, *rg.MemberID, nil, rg.MemberEpoch)
}

// fetchOffsets answers the requested topics of one group, in request
// order, or with topics nil every partition the group has an offset for.
func fetchOffsets(im *metadata.Image, group string, topics []offsetFetchTopic, byID bool) []fetchedTopic {
	offsets := im.GroupOffsets(group)
	if topics == nil {
		return allGroupOffsets(im, offsets)
	}
	out := make([]fetchedTopic, 0, len(topics))
	for _, rt := range topics {
		ft := fetchedTopic{name: rt.name, id: rt.id}
		var terr error
		if byID {
			if t := im.TopicsByID[metadata.TopicID(rt.id)]; t != nil {
				ft.name = t.Name
			} else {
				_, terr = offsetTopic(im, true, "", rt.id)
			}
		}
		for _, p := range rt.parts {
			fo := fetchedOffset{partition: p, offset: -1, epoch: -1, err: terr}
			if o, ok := offsets[metadata.TopicPartition{Topic: ft.name, Partition: p}]; ok && terr == nil {
				fo.offset, fo.epoch, fo.metadata = o.Offset, o.LeaderEpoch, o.Metadata
			}
			ft.parts = append(ft.parts, fo)
		}
		out = append(out, ft)
	}
	return out
}

// allGroupOffsets lists a group's offsets by topic name and partition.
func allGroupOffsets(im *metadata.Image, offsets map[metadata.TopicPartition]metadata.CommittedOffset) []fetchedTopic {
	tps := make([]metadata.TopicPartition, 0, len(offsets))
	for tp := range offsets {
		tps = append(tps, tp)
	}
	slices.SortFunc(tps, func(a, b metadata.TopicPartition) int {
		if c := strings.Compare(a.Topic, b.Topic); c != 0 {
			return c
		}
		return int(a.Partition - b.Partition)
	})
	var out []fetchedTopic
	for _, tp := range tps {
		if len(out) == 0 || out[len(out)-1].name != tp.Topic {
			ft := fetchedTopic{name: tp.Topic}
			if t := im.Topics[tp.Topic]; t != nil {
				ft.id = t.ID
			}
			out = append(out, ft)
		}
		o := offsets[tp]
		ft := &out[len(out)-1]
		ft.parts = append(ft.parts, fetchedOffset{partition: tp.Partition, offset: o.Offset, epoch: o.LeaderEpoch, metadata: o.Metadata})
	}
	return out
}
