// Package wal is Shoal's Raft-replicated write-ahead log.
//
// A [Group] is one Raft group (hashicorp/raft with a raft-boltdb log store)
// that holds the recent data of many streams (a stream is one Kafka
// partition). Appends go through [Group.Submit]: concurrent submissions are
// packed into one Raft entry of up to Config.TargetEntryBytes (group commit),
// with up to Config.MaxInFlight entries in flight.
//
// The FSM runs on every replica and is the only place offsets are assigned:
// for each batch it checks the idempotent-producer sequence (a retried batch
// gets its original offsets back, a gap is ErrOutOfOrderSequence, an old epoch
// is ErrInvalidProducerEpoch), assigns the next offset of the stream, records
// the batch in the stream's index and copies it into the bounded tail cache.
// The high watermark of a stream is its next offset: the FSM only sees
// committed entries.
//
// Guarantees:
//   - An append returns only after its entry is committed by a quorum of the
//     group (on the embedded default, fsynced by the single voter).
//   - Offsets of a stream are dense and monotonic, and identical on every
//     replica, because they are assigned while applying the replicated log.
//   - Every committed batch stays readable: from the tail cache while it is
//     there, from the Raft log store (through the per-stream index, which maps
//     offsets to log indexes) after the cache evicted it.
//   - A restart rebuilds all state by replaying the Raft log (from the last
//     snapshot, which holds the index, the producer state and the bytes of
//     the batches not yet uploaded, so a replica that catches up from a
//     snapshot can serve and upload them too).
//
// Upload: [Group.Pending] and [Group.ReadPending] hand the committed data that
// is not yet in object storage to the uploader; once its object is committed
// to metadata, [Group.Trim] replicates a trim entry (every replica drops
// those batches from its index and cache) and deletes the Raft log below what
// is still needed, after a snapshot. Reads below a stream's WAL start return
// ErrBelowWAL: that data is read from object storage. Config.MaxPendingBytes
// bounds the data waiting for upload (ErrWALFull beyond it).
//
// The entry formats are in docs/format/wal-entry.md. Batches are stored
// unpatched; their base offset and leader epoch are patched on read.
package wal
