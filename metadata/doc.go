// Package metadata keeps the cluster metadata of Shoal on its own Raft group
// (named "metadata" on the cluster listener): the cluster id, the brokers,
// the topics with their ids, configs and partitions, and producer id
// allocation. Each partition is a stream with a cluster-unique id and belongs
// to one WAL group.
//
// It also keeps the object index: which objects in object storage hold which
// offsets of which stream ([Image.Objects], [Image.Streams], [Image.Locate]),
// and which objects nothing refers to any more and wait for deletion
// ([Image.PendingDeletes]). Uploads commit objects ([Store.CommitObject]),
// compaction swaps objects ([Store.CompactObjects]), retention advances a
// stream's start ([Store.TrimStream]), and the garbage collector reports
// deleted objects ([Store.ObjectsDeleted]).
//
// And it keeps the committed offsets of consumer groups ([Image.GroupOffsets],
// [Image.GroupNames]): [Store.CommitOffsets] stores a group's offsets in one
// entry, all or nothing; [Store.DeleteGroupOffsets] and
// [Store.ExpireGroupOffsets] remove them.
//
// # Model
//
// Every change is a typed command ([Command]: one struct per change, tagged by
// a [CommandType]) proposed through Raft on the leader. The FSM applies a
// committed command to the current [Image] and builds a new one copy-on-write:
// only the changed maps are copied (shallowly) and only the changed topic is
// cloned. The new image is published through an atomic pointer, and the
// channel returned by [Store.Changed] is closed and replaced. Readers never
// lock and never see a partly applied change.
//
// # Writes from any member
//
// Every write method works on every member of the group, voter or non-voter
// ([VoterPeers] marks the members beyond the first 3 as non-voters). The
// command travels in a [RequestCmd] with a random request id. On the leader
// it is applied through Raft; on a follower it is sent to the leader's
// cluster listener (the raft ServerAddress of raft.LeaderWithID) on the RPC
// channel [RPCChannel], which applies it and answers with the outcome (the
// result value as JSON, or the error's text and sentinel codes, so that
// errors.Is works on the follower) and the log index it applied at. The
// follower then waits until its own image has applied that index, so a
// caller sees its write in [Store.Image] when the call returns
// (read-your-writes). When the outcome is unknown (no leader, the leader
// moved or closed, the answer was lost) the write is retried with the same
// request id, with a short backoff, up to 30 times within the apply timeout.
// The FSM remembers the outcome of the last 4096 request ids (in snapshots
// too), so a retry of a write that was applied returns its first outcome
// (CreateTopic returns the topic, not ErrTopicExists) and nothing applies
// twice.
//
// # Guarantees
//
//   - Apply is deterministic: identifiers that need randomness (the cluster id,
//     topic ids) are drawn by the proposer and carried in the command; stream
//     ids and producer ids come from counters in the image.
//   - Stream ids start at 1 and are never reused, also after a topic is
//     deleted. A recreated topic gets a new topic id and new stream ids.
//   - Producer id blocks never overlap and survive restarts.
//   - The cluster id is set once, by the first leader of a fresh group.
//   - FSM rejections (topic exists, unknown topic, ...) return the package's
//     sentinel errors through the write call, on the leader and forwarded
//     alike. A write returns [ErrNotLeader] only when no leader took it
//     within the apply timeout (it may still apply later, once), and an
//     error wrapping context.DeadlineExceeded when it applied but this
//     replica did not apply it in time.
//   - The fast checks of a write method (does the topic exist, is there an
//     offset to delete) read the local image, which on a follower may lag
//     the leader by the replication delay: a follower can refuse a write on
//     a topic another broker created a moment ago. Everything that passes
//     them is decided by the leader's FSM.
//   - Every stream's committed ranges are contiguous: a commit that would
//     leave a gap or overlap is refused with [ErrRangeConflict] and changes
//     nothing, so a new WAL leader that uploads again cannot duplicate or lose
//     a range. A retried commit of the same object is a no-op success.
//   - A compaction replaces its inputs by its outputs atomically, only when
//     the outputs cover exactly the live offsets the inputs covered.
//   - An object is in Objects exactly while a stream refers to one of its
//     ranges; when the last reference goes (trim, compaction, topic
//     deletion) it moves to PendingDeletes with a due time of the command's
//     clock plus a grace period for in-flight readers. Clocks travel in the
//     commands, so Apply stays deterministic.
//   - A commit of offsets is one entry: every partition must exist when it
//     applies, else nothing of it is stored. Deleting a topic drops its
//     offsets from every group. A commit copies only its group's offsets.
//   - Policy checks (topic name rules, config values) run in the proposer;
//     the FSM checks only what keeps the image consistent, so that a stricter
//     validator in a later version cannot change how old log entries replay.
//
// # Formats
//
// A log entry is one type byte followed by the command's JSON object; unknown
// fields are rejected ([DecodeCommand]). A [RequestCmd] (type 15) is
// {"id": ..., "type": <inner type>, "cmd": <inner JSON object>}. A snapshot
// is one JSON object with a "version" field (currently 4; versions 1 to 3
// still restore), the cluster id,
// the brokers sorted by id, the topics sorted by name, the stream and producer
// id counters, the log index of the image and (since version 2) the object
// index: the start and end offsets of streams where they are not 0, the live
// objects sorted by key and the pending deletes, and (since version 3) the
// committed offsets by group, topic and partition, and (since version 4) the
// last applied log index and the remembered request outcomes, oldest first.
// The streams' range refs are rebuilt from the objects on restore, and the
// result is checked.
//
// A forwarded write is one RPC frame (see raftgroup.RPCClient) holding the
// encoded RequestCmd; the answer is the JSON object {"index": N, "retry":
// bool, "result": {"failed": bool, "codes": [...], "error": text, "value":
// JSON}}.
//
// # Usage
//
//	mux, _ := raftgroup.Listen("127.0.0.1:9093", logger)
//	store, err := metadata.Open(ctx, metadata.Config{Dir: dir, NodeID: "1", Mux: mux})
//	defer store.Close()
//	t, err := store.CreateTopic(ctx, metadata.TopicSpec{Name: "orders", Partitions: 3, ReplicationFactor: 1})
//	im := store.Image() // immutable; t.Partitions[i].Stream names each partition's stream
//	err = store.CommitObject(ctx, metadata.Object{Key: key, Size: n, Kind: metadata.KindStreamSet,
//		Ranges: []metadata.ObjectRange{{Stream: t.Partitions[0].Stream, StartOffset: 0, EndOffset: 100, Size: n}}})
//	ref, ok := store.Image().Locate(t.Partitions[0].Stream, 42) // ref.Key holds offset 42
//
// Tests of other packages use metatest.Open(t).
package metadata
