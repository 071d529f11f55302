// Package metadata keeps the cluster metadata of Shoal on its own Raft group
// (named "metadata" on the cluster listener): the cluster id, the brokers,
// the topics with their ids, configs and partitions, and producer id
// allocation. Each partition is a stream with a cluster-unique id and belongs
// to one WAL group.
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
//     sentinel errors through the write call; a write on a follower returns
//     [ErrNotLeader] (forwarding to the leader is not implemented yet).
//   - Policy checks (topic name rules, config values) run in the proposer;
//     the FSM checks only what keeps the image consistent, so that a stricter
//     validator in a later version cannot change how old log entries replay.
//
// # Formats
//
// A log entry is one type byte followed by the command's JSON object; unknown
// fields are rejected ([DecodeCommand]). A snapshot is one JSON object with a
// "version" field (currently 1), the cluster id, the brokers sorted by id,
// the topics sorted by name, the stream and producer id counters and the log
// index of the image.
//
// # Usage
//
//	mux, _ := raftgroup.Listen("127.0.0.1:9093", logger)
//	store, err := metadata.Open(ctx, metadata.Config{Dir: dir, NodeID: "1", Mux: mux})
//	defer store.Close()
//	t, err := store.CreateTopic(ctx, metadata.TopicSpec{Name: "orders", Partitions: 3, ReplicationFactor: 1})
//	im := store.Image() // immutable; t.Partitions[i].Stream names each partition's stream
//
// Tests of other packages use metatest.Open(t).
package metadata
