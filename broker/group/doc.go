// Package group is Shoal's group coordinator: classic consumer groups
// (JoinGroup, SyncGroup, Heartbeat, LeaveGroup) and KIP-848 consumer groups
// (ConsumerGroupHeartbeat with server-side assignment). The broker's
// handlers translate Kafka requests into calls of the [Coordinator].
//
// Each group is a pure state machine (classicGroup, consumerGroup) whose
// methods take the current time and never block: a JoinGroup or SyncGroup
// that must wait parks a buffered channel in its member, and the answer is
// sent there when the phase completes. Timers are deadlines the state
// machine reports (nextDeadline) and fires (tick); the Coordinator's timer
// goroutine drives them with the wall clock, tests drive them with a fake
// one.
//
// Classic groups (states Empty, PreparingRebalance, CompletingRebalance,
// Stable, Dead):
//   - member ids per KIP-394: a v4+ join without member id gets
//     ErrMemberIDRequired and the id to rejoin with;
//   - static membership per KIP-345: a join with a known group.instance.id
//     replaces the old member without rebalance when the group is stable
//     and the selected protocol stays; the replaced member is fenced;
//   - the protocol is the one every member supports with the most
//     preference votes; assignment is the client leader's, passed through;
//   - the first rebalance of an empty group waits InitialRebalanceDelay,
//     extended while members keep joining, up to the rebalance timeout;
//     members that do not rejoin within the rebalance timeout are removed,
//     as are members that do not heartbeat within their session timeout and
//     members that do not sync within the rebalance timeout.
//
// Consumer groups (KIP-848; states Empty, Assigning, Reconciling, Stable):
// every membership or subscription change, and every change of a
// subscribed topic, bumps the group epoch and computes the target
// assignment with the uniform or range assignor. Each member reconciles on
// its heartbeats: partitions leave it first (it keeps its epoch until it
// reports them released), and a partition goes to its new owner only once
// no other member owns it. Members that miss their session or do not
// revoke within their rebalance timeout are fenced.
//
// Guarantees: a partition is never in two consumer members' assignments at
// once; classic waiters always get one answer (Close answers the rest with
// ErrCoordinatorNotAvailable); no goroutine outlives Close.
//
// The state is in memory: after a broker restart members rejoin. This
// broker coordinates every group (a single node; issue [D] routes groups
// to coordinators).
//
//	c, err := group.New(group.DefaultConfig())
//	if err != nil { ... }
//	defer c.Close()
//	res := c.Join(ctx, group.JoinRequest{Group: "g", ...})
package group
