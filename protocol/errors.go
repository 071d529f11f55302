package protocol

import "errors"

// Sentinel errors. Every error returned by this package wraps exactly one of
// them (test with errors.Is); the wrapping text says where the problem is.
var (
	// ErrFrameTooLarge means a frame's size prefix is negative or larger than
	// the allowed maximum. The body has not been read: close the connection.
	ErrFrameTooLarge = errors.New("protocol: frame too large")
	// ErrTruncated means the stream ended in the middle of a frame.
	ErrTruncated = errors.New("protocol: truncated frame")
	// ErrMalformed means a request header or body does not decode.
	ErrMalformed = errors.New("protocol: malformed request")
	// ErrUnknownAPIKey means the request's API key is not one kmsg knows.
	ErrUnknownAPIKey = errors.New("protocol: unknown api key")
	// ErrUnsupportedVersion means the request's API version is outside the
	// range kmsg can decode.
	ErrUnsupportedVersion = errors.New("protocol: unsupported api version")
	// ErrCorruptBatch means a record batch fails its CRC, its length fields
	// disagree with the bytes present, or its magic byte is unknown
	// (Kafka's CORRUPT_MESSAGE).
	ErrCorruptBatch = errors.New("protocol: corrupt record batch")
	// ErrUnsupportedMagic means a batch uses the legacy message format
	// (magic 0 or 1; Kafka's UNSUPPORTED_FOR_MESSAGE_FORMAT).
	ErrUnsupportedMagic = errors.New("protocol: unsupported message format magic")
	// ErrInvalidBatch means a record batch is structurally invalid in a way
	// not covered by ErrCorruptBatch: bad record count, offset deltas or
	// record encoding (Kafka's INVALID_RECORD).
	ErrInvalidBatch = errors.New("protocol: invalid record batch")
	// ErrUnsupportedCodec means the batch attributes name a compression codec
	// other than none, gzip, snappy, lz4 or zstd.
	ErrUnsupportedCodec = errors.New("protocol: unsupported compression codec")
	// ErrDecompressedTooLarge means decompressing would exceed the caller's
	// bound; decompression stopped at the bound.
	ErrDecompressedTooLarge = errors.New("protocol: decompressed data too large")
)
