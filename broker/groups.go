package broker

import (
	"context"
	"errors"
	"fmt"
	"net"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/shoal-io/shoal/broker/group"
	"github.com/shoal-io/shoal/metadata"
)

// The group coordinator: every broker runs one, but only the metadata
// group's leader serves: FindCoordinator names it, and the group and offset
// APIs on any other broker answer NOT_COORDINATOR (coordinated wraps their
// handlers), so clients find the leader again after it changes. Group
// state is in memory (members rejoin a new coordinator, as after a
// restart); committed offsets live in the metadata store.

// startGroups starts the group coordinator; Config.Groups' zero fields
// take Kafka's defaults, a negative InitialRebalanceDelay means none.
func (b *Broker) startGroups() error {
	cfg := groupConfig(b.cfg.Groups)
	cfg.Topics = metaTopics{b.meta}
	cfg.Logger = b.logger
	c, err := group.New(cfg)
	if err != nil {
		return err
	}
	b.groups = c
	return nil
}

// groupConfig fills the zero fields of c with the defaults.
func groupConfig(c group.Config) group.Config {
	def := group.DefaultConfig()
	if c.MinSessionTimeout == 0 {
		c.MinSessionTimeout = def.MinSessionTimeout
	}
	if c.MaxSessionTimeout == 0 {
		c.MaxSessionTimeout = def.MaxSessionTimeout
	}
	switch {
	case c.InitialRebalanceDelay == 0:
		c.InitialRebalanceDelay = def.InitialRebalanceDelay
	case c.InitialRebalanceDelay < 0:
		c.InitialRebalanceDelay = 0
	}
	if c.ConsumerSessionTimeout == 0 {
		c.ConsumerSessionTimeout = def.ConsumerSessionTimeout
	}
	if c.ConsumerHeartbeatInterval == 0 {
		c.ConsumerHeartbeatInterval = def.ConsumerHeartbeatInterval
	}
	if c.DefaultAssignor == "" {
		c.DefaultAssignor = def.DefaultAssignor
	}
	return c
}

// closeGroups answers waiting joins and syncs and stops the coordinator.
func (b *Broker) closeGroups() error {
	if b.groups == nil {
		return nil
	}
	return b.groups.Close()
}

// metaTopics shows the metadata's topics to consumer groups' assignors.
type metaTopics struct{ s *metadata.Store }

// Topics lists every topic with its id and partition count.
func (m metaTopics) Topics() map[string]group.TopicInfo {
	im := m.s.Image()
	out := make(map[string]group.TopicInfo, len(im.Topics))
	for name, t := range im.Topics {
		out[name] = group.TopicInfo{ID: t.ID, Partitions: int32(len(t.Partitions))}
	}
	return out
}

// Changed is closed on the next metadata change.
func (m metaTopics) Changed() <-chan struct{} { return m.s.Changed() }

// groupErrCode maps a group or offset-store error: a metadata group
// without leader (or shutting down) is COORDINATOR_NOT_AVAILABLE, which
// clients retry.
func groupErrCode(err error) int16 {
	if errors.Is(err, metadata.ErrNotLeader) || errors.Is(err, metadata.ErrClosed) {
		return kerr.CoordinatorNotAvailable.Code
	}
	return errCode(err)
}

// clientHost is the client's address as Kafka reports it ("/127.0.0.1").
func (r *request) clientHost() string {
	host, _, err := net.SplitHostPort(r.conn.nc.RemoteAddr().String())
	if err != nil {
		return "/" + r.conn.nc.RemoteAddr().String()
	}
	return "/" + host
}

// clientID is the request header's client id ("" when null).
func (r *request) clientID() string {
	if r.hdr.ClientID == nil {
		return ""
	}
	return *r.hdr.ClientID
}

// waitCtx is ctx, also cancelled when the broker starts draining, for
// requests that wait on other members (JoinGroup, SyncGroup).
func (r *request) waitCtx(ctx context.Context) (context.Context, context.CancelFunc) {
	ctx, cancel := context.WithCancel(ctx)
	go func() {
		select {
		case <-r.draining():
			cancel()
		case <-ctx.Done():
		}
	}()
	return ctx, cancel
}

// isCoordinator reports whether this broker coordinates groups now: it
// leads the metadata group.
func (b *Broker) isCoordinator() bool { return b.meta.IsLeader() }

// coordinatorBroker is the broker coordinating every group: the metadata
// leader, as registered.
func (b *Broker) coordinatorBroker() (metadata.Broker, error) {
	if b.isCoordinator() {
		return metadata.Broker{ID: b.cfg.NodeID, Host: b.advHost, Port: b.advPort, Listeners: b.endpoints()}, nil
	}
	id := nodeID(b.meta.LeaderID())
	if id < 0 {
		return metadata.Broker{}, fmt.Errorf("%w: the metadata group has no leader", group.ErrCoordinatorNotAvailable)
	}
	br, ok := b.meta.Image().Brokers[id]
	if !ok {
		return metadata.Broker{}, fmt.Errorf("%w: metadata leader %d is not registered yet", group.ErrCoordinatorNotAvailable, id)
	}
	return br, nil
}

// coordinatedAPIs are the API keys only the group coordinator serves.
var coordinatedAPIs = map[int16]bool{
	8: true, 9: true, 11: true, 12: true, 13: true, 14: true, 15: true, 16: true,
	42: true, 47: true, 68: true, 69: true,
}

// coordinated wraps the handler of a group or offset API: on a broker that
// does not coordinate groups the request gets NOT_COORDINATOR everywhere
// its response has an error code (ListGroups: an empty list, as a Kafka
// broker coordinating none of the groups answers).
func coordinated(fn handlerFunc) handlerFunc {
	return func(b *Broker, ctx context.Context, r *request) (kmsg.Response, error) {
		if b.isCoordinator() {
			return fn(b, ctx, r)
		}
		return notCoordinator(r.req), nil
	}
}

// notCoordinator builds req's response with NOT_COORDINATOR.
func notCoordinator(req kmsg.Request) kmsg.Response {
	code := errCode(errNotCoordinator)
	switch req := req.(type) {
	case *kmsg.OffsetCommitRequest:
		resp := req.ResponseKind().(*kmsg.OffsetCommitResponse)
		for _, rt := range req.Topics {
			st := kmsg.NewOffsetCommitResponseTopic()
			st.Topic, st.TopicID = rt.Topic, rt.TopicID
			for _, rp := range rt.Partitions {
				sp := kmsg.NewOffsetCommitResponseTopicPartition()
				sp.Partition, sp.ErrorCode = rp.Partition, code
				st.Partitions = append(st.Partitions, sp)
			}
			resp.Topics = append(resp.Topics, st)
		}
		return resp
	case *kmsg.OffsetFetchRequest:
		return notCoordinatorOffsetFetch(req, code)
	case *kmsg.JoinGroupRequest:
		resp := req.ResponseKind().(*kmsg.JoinGroupResponse)
		resp.ErrorCode = code
		return resp
	case *kmsg.HeartbeatRequest:
		resp := req.ResponseKind().(*kmsg.HeartbeatResponse)
		resp.ErrorCode = code
		return resp
	case *kmsg.LeaveGroupRequest:
		resp := req.ResponseKind().(*kmsg.LeaveGroupResponse)
		resp.ErrorCode = code
		return resp
	case *kmsg.SyncGroupRequest:
		resp := req.ResponseKind().(*kmsg.SyncGroupResponse)
		resp.ErrorCode = code
		return resp
	case *kmsg.DescribeGroupsRequest:
		resp := req.ResponseKind().(*kmsg.DescribeGroupsResponse)
		for _, id := range req.Groups {
			g := kmsg.NewDescribeGroupsResponseGroup()
			g.Group, g.ErrorCode = id, code
			resp.Groups = append(resp.Groups, g)
		}
		return resp
	case *kmsg.ListGroupsRequest:
		return req.ResponseKind()
	case *kmsg.DeleteGroupsRequest:
		resp := req.ResponseKind().(*kmsg.DeleteGroupsResponse)
		for _, id := range req.Groups {
			g := kmsg.NewDeleteGroupsResponseGroup()
			g.Group, g.ErrorCode = id, code
			resp.Groups = append(resp.Groups, g)
		}
		return resp
	case *kmsg.OffsetDeleteRequest:
		resp := req.ResponseKind().(*kmsg.OffsetDeleteResponse)
		resp.ErrorCode = code
		return resp
	case *kmsg.ConsumerGroupHeartbeatRequest:
		resp := req.ResponseKind().(*kmsg.ConsumerGroupHeartbeatResponse)
		resp.ErrorCode, resp.ErrorMessage = code, errMessage(errNotCoordinator)
		return resp
	case *kmsg.ConsumerGroupDescribeRequest:
		resp := req.ResponseKind().(*kmsg.ConsumerGroupDescribeResponse)
		for _, id := range req.Groups {
			g := kmsg.NewConsumerGroupDescribeResponseGroup()
			g.Group, g.ErrorCode, g.ErrorMessage = id, code, errMessage(errNotCoordinator)
			resp.Groups = append(resp.Groups, g)
		}
		return resp
	}
	panic(fmt.Sprintf("broker: %T is not a coordinated request (broken invariant)", req))
}

// notCoordinatorOffsetFetch answers an OffsetFetch with NOT_COORDINATOR:
// per group from v8, else top level (v2+) and per requested partition.
func notCoordinatorOffsetFetch(req *kmsg.OffsetFetchRequest, code int16) kmsg.Response {
	resp := req.ResponseKind().(*kmsg.OffsetFetchResponse)
	if req.Version >= 8 {
		for _, rg := range req.Groups {
			sg := kmsg.NewOffsetFetchResponseGroup()
			sg.Group, sg.ErrorCode = rg.Group, code
			resp.Groups = append(resp.Groups, sg)
		}
		return resp
	}
	resp.ErrorCode = code
	for _, rt := range req.Topics {
		st := kmsg.NewOffsetFetchResponseTopic()
		st.Topic = rt.Topic
		for _, p := range rt.Partitions {
			sp := kmsg.NewOffsetFetchResponseTopicPartition()
			sp.Partition, sp.Offset, sp.ErrorCode = p, -1, code
			st.Partitions = append(st.Partitions, sp)
		}
		resp.Topics = append(resp.Topics, st)
	}
	return resp
}
