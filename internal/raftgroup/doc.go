// Package raftgroup runs the hashicorp/raft groups of a Shoal broker: the
// metadata group and every WAL group.
//
// A broker has one cluster listener ([Mux]). Every Raft connection starts with
// a short preamble naming its group, so one TCP port carries the traffic of
// every group. [Open] opens a group's durable state (a raft-boltdb log and
// stable store, file snapshots) with timeouts tuned for a LAN, and bootstraps
// the group the first time it starts.
//
// Besides Raft groups, the listener carries named request/response channels
// ([ServeRPC], [NewRPCClient]): length-framed requests and replies with a
// bounded size and a deadline, used for internal calls such as forwarding
// metadata writes to the metadata leader.
//
//	mux, _ := raftgroup.Listen("127.0.0.1:9093", logger)
//	g, _ := raftgroup.Open(raftgroup.Config{Name: "wal-0", Dir: dir, NodeID: "1", Mux: mux}, fsm)
//	defer g.Close()
package raftgroup
