package integration

import (
	"testing"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// rawJoin sends a classic JoinGroup of protocol type ptype.
func rawJoin(r *rawConn, group, member, ptype string, sessionMs int32) *kmsg.JoinGroupResponse {
	req := kmsg.NewPtrJoinGroupRequest()
	r.version(req)
	req.Group, req.MemberID, req.ProtocolType = group, member, ptype
	req.SessionTimeoutMillis, req.RebalanceTimeoutMillis = sessionMs, 10000
	meta := kmsg.NewConsumerMemberMetadata()
	meta.Topics = []string{"bad-groups"}
	p := kmsg.NewJoinGroupRequestProtocol()
	p.Name, p.Metadata = "range", meta.AppendTo(nil)
	req.Protocols = append(req.Protocols, p)
	return r.roundTrip(req).(*kmsg.JoinGroupResponse)
}

func rawSync(r *rawConn, group, member string, gen int32) *kmsg.SyncGroupResponse {
	req := kmsg.NewPtrSyncGroupRequest()
	r.version(req)
	req.Group, req.MemberID, req.Generation = group, member, gen
	pt, pn := "consumer", "range"
	req.ProtocolType, req.Protocol = &pt, &pn
	a := kmsg.NewSyncGroupRequestGroupAssignment()
	a.MemberID = member
	ca := kmsg.NewConsumerMemberAssignment()
	ta := kmsg.NewConsumerMemberAssignmentTopic()
	ta.Topic, ta.Partitions = "bad-groups", []int32{0}
	ca.Topics = append(ca.Topics, ta)
	a.MemberAssignment = ca.AppendTo(nil)
	req.GroupAssignment = append(req.GroupAssignment, a)
	return r.roundTrip(req).(*kmsg.SyncGroupResponse)
}

func rawHeartbeat(r *rawConn, group, member string, gen int32) int16 {
	req := kmsg.NewPtrHeartbeatRequest()
	r.version(req)
	req.Group, req.MemberID, req.Generation = group, member, gen
	return r.roundTrip(req).(*kmsg.HeartbeatResponse).ErrorCode
}

func rawCommit(r *rawConn, group, member string, gen int32) int16 {
	req := kmsg.NewPtrOffsetCommitRequest()
	r.version(req)
	if req.Version > 9 {
		req.SetVersion(9) // v10 names topics by id
	}
	req.Group, req.MemberID, req.Generation = group, member, gen
	tp := kmsg.NewOffsetCommitRequestTopic()
	tp.Topic = "bad-groups"
	pp := kmsg.NewOffsetCommitRequestTopicPartition()
	pp.Partition, pp.Offset, pp.LeaderEpoch = 0, 0, -1
	tp.Partitions = append(tp.Partitions, pp)
	req.Topics = append(req.Topics, tp)
	resp := r.roundTrip(req).(*kmsg.OffsetCommitResponse)
	if len(resp.Topics) != 1 || len(resp.Topics[0].Partitions) != 1 {
		r.t.Fatalf("OffsetCommit: %d topics in the response", len(resp.Topics))
	}
	return resp.Topics[0].Partitions[0].ErrorCode
}

// TestGroupBadInput sends the group requests a buggy or stale client
// sends and checks each gets the error code the standard clients act on:
// invalid group ids, bad session timeouts, KIP-394's member id round
// trip, stale generations, unknown members, a mismatched protocol type,
// deletes of live and unknown groups, and KIP-848 heartbeats with a
// wrong epoch or member.
func TestGroupBadInput(t *testing.T) {
	b := StartBroker(t)
	createTopic(t, b, "bad-groups", 1)
	r := dialRaw(t, b.Addr)

	wantCode(t, "JoinGroup with an empty group id", rawJoin(r, "", "", "consumer", 10000).ErrorCode, kerr.InvalidGroupID)
	wantCode(t, "SyncGroup with an empty group id", rawSync(r, "", "m", 1).ErrorCode, kerr.InvalidGroupID)
	wantCode(t, "Heartbeat with an empty group id", rawHeartbeat(r, "", "m", 1), kerr.InvalidGroupID)
	wantCode(t, "JoinGroup with a 1 ms session timeout", rawJoin(r, "g1", "", "consumer", 1).ErrorCode, kerr.InvalidSessionTimeout)
	wantCode(t, "JoinGroup with a 1 h session timeout", rawJoin(r, "g1", "", "consumer", 3_600_000).ErrorCode, kerr.InvalidSessionTimeout)

	// KIP-394: the first join gets MEMBER_ID_REQUIRED and an id; the
	// second, with the id, joins as leader of generation 1.
	first := rawJoin(r, "g1", "", "consumer", 10000)
	wantCode(t, "first JoinGroup without a member id", first.ErrorCode, kerr.MemberIDRequired)
	if first.MemberID == "" {
		t.Fatal("MEMBER_ID_REQUIRED without a member id")
	}
	member := first.MemberID
	join := rawJoin(r, "g1", member, "consumer", 10000)
	if join.ErrorCode != 0 || join.LeaderID != member || join.Generation < 1 {
		t.Fatalf("JoinGroup with the given member id: error %d, leader %q, generation %d", join.ErrorCode, join.LeaderID, join.Generation)
	}
	gen := join.Generation
	if s := rawSync(r, "g1", member, gen); s.ErrorCode != 0 {
		t.Fatalf("SyncGroup: error code %d", s.ErrorCode)
	}
	wantCode(t, "Heartbeat of the member", rawHeartbeat(r, "g1", member, gen), noError)
	wantCode(t, "Heartbeat with a stale generation", rawHeartbeat(r, "g1", member, gen-1), kerr.IllegalGeneration)
	wantCode(t, "Heartbeat with a future generation", rawHeartbeat(r, "g1", member, gen+5), kerr.IllegalGeneration)
	wantCode(t, "Heartbeat of an unknown member", rawHeartbeat(r, "g1", "nobody", gen), kerr.UnknownMemberID)
	wantCode(t, "SyncGroup with a stale generation", rawSync(r, "g1", member, gen-1).ErrorCode, kerr.IllegalGeneration)
	wantCode(t, "SyncGroup of an unknown member", rawSync(r, "g1", "nobody", gen).ErrorCode, kerr.UnknownMemberID)
	wantCode(t, "OffsetCommit of the member", rawCommit(r, "g1", member, gen), noError)
	wantCode(t, "OffsetCommit with a stale generation", rawCommit(r, "g1", member, gen-1), kerr.IllegalGeneration)
	wantCode(t, "OffsetCommit of an unknown member", rawCommit(r, "g1", "nobody", gen), kerr.UnknownMemberID)
	wantCode(t, "JoinGroup of protocol type connect into a consumer group",
		rawJoin(r, "g1", "", "connect", 10000).ErrorCode, kerr.InconsistentGroupProtocol)

	// DeleteGroups: a group with members, and a group that never was.
	del := kmsg.NewPtrDeleteGroupsRequest()
	r.version(del)
	del.Groups = []string{"g1", "never-was"}
	codes := map[string]int16{}
	for _, g := range r.roundTrip(del).(*kmsg.DeleteGroupsResponse).Groups {
		codes[g.Group] = g.ErrorCode
	}
	wantCode(t, "DeleteGroups of a group with a member", codes["g1"], kerr.NonEmptyGroup)
	wantCode(t, "DeleteGroups of an unknown group", codes["never-was"], kerr.GroupIDNotFound)

	// LeaveGroup (batched, v3+): the member leaves; an unknown one gets
	// its own error.
	leave := kmsg.NewPtrLeaveGroupRequest()
	r.version(leave)
	leave.Group = "g1"
	for _, id := range []string{member, "nobody"} {
		m := kmsg.NewLeaveGroupRequestMember()
		m.MemberID = id
		leave.Members = append(leave.Members, m)
	}
	lr := r.roundTrip(leave).(*kmsg.LeaveGroupResponse)
	wantCode(t, "LeaveGroup", lr.ErrorCode, noError)
	for _, m := range lr.Members {
		want := noError
		if m.MemberID == "nobody" {
			want = kerr.UnknownMemberID
		}
		wantCode(t, "LeaveGroup of member "+m.MemberID, m.ErrorCode, want)
	}
	if len(lr.Members) != 2 {
		t.Errorf("LeaveGroup: %d member results, want 2", len(lr.Members))
	}
	// Now empty: the delete succeeds, and the group is gone.
	del.Groups = []string{"g1"}
	wantCode(t, "DeleteGroups of the emptied group", r.roundTrip(del).(*kmsg.DeleteGroupsResponse).Groups[0].ErrorCode, noError)

	// KIP-848: join, then a heartbeat with a wrong epoch and one of an
	// unknown member.
	cgh := func(group, member string, epoch int32) *kmsg.ConsumerGroupHeartbeatResponse {
		req := kmsg.NewPtrConsumerGroupHeartbeatRequest()
		r.version(req)
		req.Group, req.MemberID, req.MemberEpoch = group, member, epoch
		req.RebalanceTimeoutMillis = 10000
		if epoch == 0 {
			req.SubscribedTopicNames = []string{"bad-groups"}
			req.Topics = []kmsg.ConsumerGroupHeartbeatRequestTopic{}
		}
		return r.roundTrip(req).(*kmsg.ConsumerGroupHeartbeatResponse)
	}
	const nextGenMember = "AAAAAAAAAAAAAAAAAAAAAA" // a client-chosen member id (v1)
	joined := cgh("g848", nextGenMember, 0)
	if joined.ErrorCode != 0 || joined.MemberEpoch < 1 {
		t.Fatalf("ConsumerGroupHeartbeat join: error %d, epoch %d", joined.ErrorCode, joined.MemberEpoch)
	}
	id := nextGenMember
	if joined.MemberID != nil {
		id = *joined.MemberID
	}
	wantCode(t, "ConsumerGroupHeartbeat with a future epoch", cgh("g848", id, joined.MemberEpoch+5).ErrorCode, kerr.FencedMemberEpoch)
	wantCode(t, "ConsumerGroupHeartbeat of an unknown member", cgh("g848", "BBBBBBBBBBBBBBBBBBBBBB", 3).ErrorCode, kerr.UnknownMemberID)
	wantCode(t, "ConsumerGroupHeartbeat with an empty group id", cgh("", id, 0).ErrorCode, kerr.InvalidRequest)
	wantCode(t, "classic JoinGroup into a consumer (KIP-848) group",
		rawJoin(r, "g848", "", "connect", 10000).ErrorCode, kerr.InconsistentGroupProtocol)
}
