package wal

import "errors"

// Sentinel errors of the WAL. The broker maps them to Kafka error codes.
var (
	// ErrNotLeader: this replica does not lead the group; retry on the leader.
	ErrNotLeader = errors.New("wal: not the group leader")
	// ErrClosed: the group is shutting down.
	ErrClosed = errors.New("wal: group closed")
	// ErrOutOfOrderSequence: an idempotent producer's batch does not follow its last sequence.
	ErrOutOfOrderSequence = errors.New("wal: out of order sequence number")
	// ErrInvalidProducerEpoch: an idempotent producer wrote with an epoch older than the current one.
	ErrInvalidProducerEpoch = errors.New("wal: invalid producer epoch")
	// ErrOffsetOutOfRange: the requested offset is below the log start or above the high watermark.
	ErrOffsetOutOfRange = errors.New("wal: offset out of range")
	// ErrBelowWAL: the offset was uploaded and trimmed from the WAL; read it
	// from object storage.
	ErrBelowWAL = errors.New("wal: offset is below the WAL (in object storage)")
	// ErrWALFull: the data not yet uploaded reached Config.MaxPendingBytes
	// (object storage is down or slow); retry later.
	ErrWALFull = errors.New("wal: too much data waiting for upload")
	// ErrInvalidBatch: a batch could not be parsed (the broker validates batches before submitting them).
	ErrInvalidBatch = errors.New("wal: invalid record batch")
	// ErrCorrupt marks an entry or snapshot that cannot be decoded; it is wrapped with its location.
	ErrCorrupt = errors.New("wal: corrupt data")
	// ErrTimeout: the entry was not committed within Config.ApplyTimeout.
	ErrTimeout = errors.New("wal: commit timed out")
)
