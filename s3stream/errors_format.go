package s3stream

import "errors"

// Sentinel errors of the object format, the reader and the object writer.
var (
	// ErrCorruptObject marks an object whose footer, index or block fails
	// its checks (bad magic, unsupported version, checksum mismatch, values
	// out of bounds, broken batch framing). It is wrapped with the location.
	ErrCorruptObject = errors.New("s3stream: corrupt object")
	// ErrOutOfOrder reports an ObjectWriter.Append that breaks the object
	// order: streams ascending, and within a stream each batch starting
	// right after the previous batch's last offset.
	ErrOutOfOrder = errors.New("s3stream: batch out of order")
	// ErrInvalidBatch reports a batch given to ObjectWriter.Append that is
	// not one well-framed magic-2 record batch with a valid CRC.
	ErrInvalidBatch = errors.New("s3stream: invalid record batch")
	// ErrWriterFinished reports a use of an ObjectWriter after Finish.
	ErrWriterFinished = errors.New("s3stream: object writer finished")
	// ErrOffsetNotInObject reports a Reader.Read of an offset that the
	// object location (or the object's index) does not hold.
	ErrOffsetNotInObject = errors.New("s3stream: offset not in object")
	// ErrReaderClosed reports a Reader.Read after Close.
	ErrReaderClosed = errors.New("s3stream: reader closed")
)
