package broker

import (
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

func wantGroupCode(t *testing.T, what string, got int16, want *kerr.Error) {
	t.Helper()
	if got != want.Code {
		t.Errorf("%s: got %v, want %s", what, kerr.ErrorForCode(got), want.Message)
	}
}

func TestGroupBadInput(t *testing.T) {
	b := groupBroker(t)
	c := dialRaw(t, b)

	fc := kmsg.NewPtrFindCoordinatorRequest()
	fc.Version = 4
	fc.CoordinatorKeys = []string{"ok", ""}
	r := c.do(fc).(*kmsg.FindCoordinatorResponse)
	wantGroupCode(t, "find coordinator", r.Coordinators[0].ErrorCode, &kerr.Error{Code: 0})
	if r.Coordinators[0].NodeID != b.cfg.NodeID || r.Coordinators[0].Port != b.advPort {
		t.Errorf("coordinator %+v", r.Coordinators[0])
	}
	wantGroupCode(t, "find coordinator empty key", r.Coordinators[1].ErrorCode, kerr.InvalidGroupID)
	fc.Version, fc.CoordinatorKey, fc.CoordinatorType = 3, "txn", 1
	wantGroupCode(t, "find transaction coordinator", c.do(fc).(*kmsg.FindCoordinatorResponse).ErrorCode, kerr.TransactionalIDAuthorizationFailed)

	join := func(grp, protocolType string, session int32) *kmsg.JoinGroupResponse {
		req := kmsg.NewPtrJoinGroupRequest()
		req.Version = 7
		req.Group, req.ProtocolType, req.SessionTimeoutMillis, req.RebalanceTimeoutMillis = grp, protocolType, session, 1000
		p := kmsg.NewJoinGroupRequestProtocol()
		p.Name = "range"
		req.Protocols = append(req.Protocols, p)
		return c.do(req).(*kmsg.JoinGroupResponse)
	}
	wantGroupCode(t, "empty group id", join("", "consumer", 1000).ErrorCode, kerr.InvalidGroupID)
	wantGroupCode(t, "too small session timeout", join("g", "consumer", 10).ErrorCode, kerr.InvalidSessionTimeout)
	wantGroupCode(t, "too large session timeout", join("g", "consumer", 2_000_000).ErrorCode, kerr.InvalidSessionTimeout)
	wantGroupCode(t, "empty protocol type", join("g", "", 1000).ErrorCode, kerr.InconsistentGroupProtocol)

	// A member of group g at generation 1.
	j := rawJoin(t, c, "g", nil, time.Second)
	wantGroupCode(t, "join", j.ErrorCode, &kerr.Error{Code: 0})
	wantGroupCode(t, "other protocol type", join("g", "connect", 1000).ErrorCode, kerr.InconsistentGroupProtocol)

	hb := kmsg.NewPtrHeartbeatRequest()
	hb.Group, hb.MemberID, hb.Generation = "g", j.MemberID, j.Generation+5
	wantGroupCode(t, "stale generation", c.do(hb).(*kmsg.HeartbeatResponse).ErrorCode, kerr.IllegalGeneration)
	hb.MemberID, hb.Generation = "who", j.Generation
	wantGroupCode(t, "unknown member", c.do(hb).(*kmsg.HeartbeatResponse).ErrorCode, kerr.UnknownMemberID)
	hb.Group = "no-such-group"
	wantGroupCode(t, "unknown group", c.do(hb).(*kmsg.HeartbeatResponse).ErrorCode, kerr.UnknownMemberID)

	sync := kmsg.NewPtrSyncGroupRequest()
	sync.Version = 5
	sync.Group, sync.MemberID, sync.Generation = "g", j.MemberID, j.Generation
	other := "roundrobin"
	sync.Protocol = &other
	wantGroupCode(t, "sync with another protocol", c.do(sync).(*kmsg.SyncGroupResponse).ErrorCode, kerr.InconsistentGroupProtocol)

	// The classic group's id is taken for the consumer protocol.
	cg := kmsg.NewPtrConsumerGroupHeartbeatRequest()
	cg.Version = 1
	cg.Group, cg.MemberID, cg.RebalanceTimeoutMillis, cg.SubscribedTopicNames = "g", "m1", 1000, []string{"t"}
	wantGroupCode(t, "consumer heartbeat on a classic group", c.do(cg).(*kmsg.ConsumerGroupHeartbeatResponse).ErrorCode, kerr.GroupIDNotFound)
	cg.MemberID = ""
	wantGroupCode(t, "v1 heartbeat without member id", c.do(cg).(*kmsg.ConsumerGroupHeartbeatResponse).ErrorCode, kerr.InvalidRequest)
	cg.Group, cg.MemberID, cg.MemberEpoch = "cg", "m1", 3
	wantGroupCode(t, "heartbeat to an unknown consumer group", c.do(cg).(*kmsg.ConsumerGroupHeartbeatResponse).ErrorCode, kerr.GroupIDNotFound)
	cg.Group, cg.MemberEpoch = "g", 0
	cg.SubscribedTopicRegex = new(string)
	*cg.SubscribedTopicRegex = "("
	wantGroupCode(t, "join a classic group", c.do(cg).(*kmsg.ConsumerGroupHeartbeatResponse).ErrorCode, kerr.GroupIDNotFound)

	// Group administration.
	del := kmsg.NewPtrDeleteGroupsRequest()
	del.Version = 2
	del.Groups = []string{"g", "never-existed", ""}
	dr := c.do(del).(*kmsg.DeleteGroupsResponse)
	wantGroupCode(t, "delete non-empty group", dr.Groups[0].ErrorCode, kerr.NonEmptyGroup)
	wantGroupCode(t, "delete unknown group", dr.Groups[1].ErrorCode, kerr.GroupIDNotFound)
	wantGroupCode(t, "delete empty id", dr.Groups[2].ErrorCode, kerr.InvalidGroupID)

	lg := kmsg.NewPtrListGroupsRequest()
	lg.Version = 5
	lr := c.do(lg).(*kmsg.ListGroupsResponse)
	if len(lr.Groups) != 1 || lr.Groups[0].Group != "g" || lr.Groups[0].GroupType != "classic" || lr.Groups[0].ProtocolType != "consumer" {
		t.Errorf("list groups: %+v", lr.Groups)
	}
	lg.TypesFilter = []string{"Consumer"}
	if lr := c.do(lg).(*kmsg.ListGroupsResponse); len(lr.Groups) != 0 {
		t.Errorf("types filter: %+v", lr.Groups)
	}

	dg := kmsg.NewPtrDescribeGroupsRequest()
	dg.Version = 5
	dg.Groups = []string{"g", "never-existed"}
	gr := c.do(dg).(*kmsg.DescribeGroupsResponse)
	if gr.Groups[0].State != "CompletingRebalance" || len(gr.Groups[0].Members) != 1 || gr.Groups[1].State != "Dead" || gr.Groups[1].ErrorCode != 0 {
		t.Errorf("describe v5: %+v", gr.Groups)
	}
	dg.Version = 6
	gr = c.do(dg).(*kmsg.DescribeGroupsResponse)
	wantGroupCode(t, "describe v6 unknown group", gr.Groups[1].ErrorCode, kerr.GroupIDNotFound)

	// Leave, then delete works.
	lv := kmsg.NewPtrLeaveGroupRequest()
	lv.Version = 3
	m := kmsg.NewLeaveGroupRequestMember()
	m.MemberID = j.MemberID
	lv.Group, lv.Members = "g", []kmsg.LeaveGroupRequestMember{m, {MemberID: "ghost"}}
	lr2 := c.do(lv).(*kmsg.LeaveGroupResponse)
	wantGroupCode(t, "leave", lr2.Members[0].ErrorCode, &kerr.Error{Code: 0})
	wantGroupCode(t, "leave ghost", lr2.Members[1].ErrorCode, kerr.UnknownMemberID)
	del.Groups = []string{"g"}
	wantGroupCode(t, "delete emptied group", c.do(del).(*kmsg.DeleteGroupsResponse).Groups[0].ErrorCode, &kerr.Error{Code: 0})
	if st, _ := b.groups.GroupState("g"); st != "Dead" {
		t.Errorf("deleted group state %s", st)
	}
}
