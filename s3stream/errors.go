package s3stream

import "errors"

// Sentinel errors of the object-store layer. Implementations wrap them with
// context ("get \"k\": s3stream: not found: ..."); callers test them with
// errors.Is.
var (
	// ErrNotFound reports a missing object (or a missing bucket).
	ErrNotFound = errors.New("s3stream: not found")
	// ErrInvalidRange reports a ranged read outside the object: a negative
	// offset, or a non-empty read starting at or beyond the object's end.
	ErrInvalidRange = errors.New("s3stream: invalid range")
	// ErrInvalidKey reports a key that is empty, absolute, contains a "." or
	// ".." segment, an empty segment, a control character or a reserved name,
	// or that conflicts with an existing object used as its prefix.
	ErrInvalidKey = errors.New("s3stream: invalid key")
	// ErrBadURL reports an object-store URL that Open cannot parse.
	ErrBadURL = errors.New("s3stream: bad object-store url")
	// ErrUnreachable reports an object store that cannot be reached (network
	// error, connection refused, time-out) or is temporarily unavailable.
	ErrUnreachable = errors.New("s3stream: object store unreachable")
	// ErrAccessDenied reports rejected credentials or missing permissions.
	ErrAccessDenied = errors.New("s3stream: access denied")
	// ErrShortBody reports a Put whose reader ended before the declared size.
	ErrShortBody = errors.New("s3stream: body shorter than declared size")
	// ErrHistoryGap reports a stream whose committed objects end before its
	// WAL starts: data would be missing. It is a broken invariant, logged
	// loudly; the upload stops rather than commit past the gap.
	ErrHistoryGap = errors.New("s3stream: gap between object storage and the WAL")
)
