package protocol

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"

	"github.com/twmb/franz-go/pkg/kmsg"
)

// DefaultMaxRequestSize is the default cap on a request frame's body, like
// Kafka's socket.request.max.bytes.
const DefaultMaxRequestSize = 100 << 20

// apiVersionsKey is the API key of ApiVersions, whose response header is
// always v0 (KIP-511), and controlledShutdownKey the one whose v0 request uses
// request header v0 (no client id).
const (
	apiVersionsKey        = 18
	controlledShutdownKey = 7
)

// ReadFrame reads one size-prefixed frame from r and returns its body
// (without the 4-byte size). A size below zero or above maxSize returns
// ErrFrameTooLarge without reading or allocating the body. A stream that ends
// inside a frame returns ErrTruncated; a stream that ends cleanly between
// frames returns io.EOF.
func ReadFrame(r io.Reader, maxSize int32) ([]byte, error) {
	var sizeBuf [4]byte
	if _, err := io.ReadFull(r, sizeBuf[:]); err != nil {
		if errors.Is(err, io.ErrUnexpectedEOF) {
			return nil, fmt.Errorf("reading frame size: %w", ErrTruncated)
		}
		return nil, err // io.EOF or a transport error
	}
	size, err := FrameSize(sizeBuf, maxSize)
	if err != nil {
		return nil, err
	}
	body := make([]byte, size)
	if _, err := io.ReadFull(r, body); err != nil {
		if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
			return nil, fmt.Errorf("reading frame body of %d bytes: %w", size, ErrTruncated)
		}
		return nil, err
	}
	return body, nil
}

// FrameSize decodes a frame's 4-byte size prefix and checks it against
// maxSize (ErrFrameTooLarge for a negative or larger size).
func FrameSize(prefix [4]byte, maxSize int32) (int32, error) {
	size := int32(binary.BigEndian.Uint32(prefix[:]))
	if size < 0 || size > maxSize {
		return 0, fmt.Errorf("frame of %d bytes (max %d): %w", size, maxSize, ErrFrameTooLarge)
	}
	return size, nil
}

// RequestHeader is a parsed request header: v0 (no client id, only
// ControlledShutdown v0), v1, or v2 (flexible: v1 followed by tagged fields,
// which are skipped).
type RequestHeader struct {
	APIKey        int16
	APIVersion    int16
	CorrelationID int32
	ClientID      *string
}

// ParseRequest parses the request header at the start of frame (a frame body
// as returned by ReadFrame) and decodes the request body with kmsg.
//
// For an API key kmsg does not know it returns the parsed header and
// ErrUnknownAPIKey; for a version outside 0..MaxVersion it returns the header
// and ErrUnsupportedVersion. In both cases the correlation id (and, when it
// parses, the client id) are filled in so the broker can answer; for
// ApiVersions this is what KIP-511 needs to answer a too-new request with v0.
// A header or body that does not decode returns ErrMalformed (wrapped), with
// whatever part of the header did parse. If kmsg panics on some input, the
// panic is recovered and reported as ErrMalformed.
//
// Fields of the returned request may alias frame (byte slices such as
// Produce records); strings are copied. Trailing bytes after the body are
// ignored, as Kafka does.
func ParseRequest(frame []byte) (RequestHeader, kmsg.Request, error) {
	var h RequestHeader
	if len(frame) < 8 {
		return h, nil, fmt.Errorf("request header needs 8 bytes, have %d: %w", len(frame), ErrMalformed)
	}
	h.APIKey = int16(binary.BigEndian.Uint16(frame[0:]))
	h.APIVersion = int16(binary.BigEndian.Uint16(frame[2:]))
	h.CorrelationID = int32(binary.BigEndian.Uint32(frame[4:]))
	rest := frame[8:]

	var idErr error
	if h.APIKey != controlledShutdownKey || h.APIVersion != 0 {
		h.ClientID, rest, idErr = readClientID(rest)
	}
	req := kmsg.RequestForKey(h.APIKey)
	if req == nil {
		return h, nil, fmt.Errorf("api key %d: %w", h.APIKey, ErrUnknownAPIKey)
	}
	if h.APIVersion < 0 || h.APIVersion > req.MaxVersion() {
		return h, nil, fmt.Errorf("api key %d version %d (max %d): %w",
			h.APIKey, h.APIVersion, req.MaxVersion(), ErrUnsupportedVersion)
	}
	if idErr != nil {
		return h, nil, fmt.Errorf("request header client id: %w", idErr)
	}
	req.SetVersion(h.APIVersion)
	if req.IsFlexible() {
		var err error
		if rest, err = skipTaggedFields(rest); err != nil {
			return h, nil, fmt.Errorf("request header tagged fields: %w", err)
		}
	}
	if err := readBody(req, rest); err != nil {
		return h, nil, fmt.Errorf("api key %d version %d body: %w", h.APIKey, h.APIVersion, err)
	}
	return h, req, nil
}

// readBody decodes body into req, turning a kmsg error or panic into
// ErrMalformed.
func readBody(req kmsg.Request, body []byte) (err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("kmsg panicked: %v: %w", r, ErrMalformed)
		}
	}()
	if err := req.ReadFrom(body); err != nil {
		return fmt.Errorf("%v: %w", err, ErrMalformed)
	}
	return nil
}

// readClientID reads the header's nullable string client id (int16 length,
// -1 for null; never compact, even in flexible headers).
func readClientID(b []byte) (*string, []byte, error) {
	if len(b) < 2 {
		return nil, b, fmt.Errorf("client id length: %w", ErrMalformed)
	}
	n := int16(binary.BigEndian.Uint16(b))
	b = b[2:]
	if n < 0 {
		if n != -1 {
			return nil, b, fmt.Errorf("client id length %d: %w", n, ErrMalformed)
		}
		return nil, b, nil
	}
	if int(n) > len(b) {
		return nil, b, fmt.Errorf("client id of %d bytes, %d left: %w", n, len(b), ErrMalformed)
	}
	s := string(b[:n])
	return &s, b[n:], nil
}

// skipTaggedFields skips a KIP-482 tagged-field section: a uvarint count,
// then per field a uvarint tag, a uvarint size and that many bytes.
func skipTaggedFields(b []byte) ([]byte, error) {
	count, n := binary.Uvarint(b)
	if n <= 0 || count > uint64(len(b)) {
		return nil, fmt.Errorf("tagged field count: %w", ErrMalformed)
	}
	b = b[n:]
	for i := uint64(0); i < count; i++ {
		if _, n = binary.Uvarint(b); n <= 0 {
			return nil, fmt.Errorf("tag %d: %w", i, ErrMalformed)
		}
		b = b[n:]
		size, n := binary.Uvarint(b)
		if n <= 0 || size > uint64(len(b)-n) {
			return nil, fmt.Errorf("tag %d size: %w", i, ErrMalformed)
		}
		b = b[uint64(n)+size:]
	}
	return b, nil
}

// AppendResponse appends a complete size-prefixed response frame to dst and
// returns the extended slice: the size, the response header (v0: the
// correlation id; v1 when resp is flexible: the correlation id and an empty
// tagged-field section; ApiVersions always uses v0) and the body encoded at
// resp.GetVersion().
func AppendResponse(dst []byte, correlationID int32, resp kmsg.Response) []byte {
	start := len(dst)
	dst = append(dst, 0, 0, 0, 0) // size, patched below
	dst = binary.BigEndian.AppendUint32(dst, uint32(correlationID))
	if resp.IsFlexible() && resp.Key() != apiVersionsKey {
		dst = append(dst, 0) // no header tags
	}
	dst = resp.AppendTo(dst)
	binary.BigEndian.PutUint32(dst[start:], uint32(len(dst)-start-4))
	return dst
}
