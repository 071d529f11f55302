package s3stream

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"net"
	"net/http"
	"sort"
	"time"

	"github.com/minio/minio-go/v7"
	"github.com/minio/minio-go/v7/pkg/credentials"
)

// S3Config configures an S3 store. The zero values of Region ("us-east-1")
// are filled in by NewS3.
type S3Config struct {
	// Endpoint is HOST:PORT (or HOST) of the S3 service, without a scheme.
	Endpoint string
	// Region is the bucket's region; empty means "us-east-1".
	Region string
	// Bucket is the bucket holding every object of this store.
	Bucket string
	// AccessKey and SecretKey are the credentials; both empty means
	// anonymous requests.
	AccessKey, SecretKey string
	// PathStyle addresses the bucket as ENDPOINT/BUCKET (MinIO) instead of
	// BUCKET.ENDPOINT (virtual-hosted style).
	PathStyle bool
	// TLS selects https.
	TLS bool
	// CreateBucket makes NewS3 create the bucket when it does not exist.
	CreateBucket bool
	// PartSize is the multipart part size; objects up to it go in one PUT
	// (0: DefaultPartSize; S3's minimum part is 5 MiB).
	PartSize int64
}

// S3 is an ObjectStore on one bucket of an S3-compatible service, through
// minio-go. Objects larger than the part size are uploaded in parts; a PUT
// becomes visible atomically when it completes (an aborted multipart upload
// is never visible; a bucket lifecycle rule should expire leftover parts).
type S3 struct {
	cfg    S3Config
	client *minio.Client
	core   minio.Core
}

var _ ObjectStore = (*S3)(nil)

func (s *S3) partSize() int64 {
	if s.cfg.PartSize > 0 {
		return s.cfg.PartSize
	}
	return DefaultPartSize
}

// DefaultPartSize is the multipart part size of S3 uploads: large enough that
// an upload at the default size (64 MiB) is one PUT request, which is what
// the bill counts.
const DefaultPartSize = 128 << 20

// startupTimeout bounds NewS3's check of the bucket.
const startupTimeout = 5 * time.Second

// maxAttempts is how often minio-go tries a request (with 200 ms..1 s
// backoff between tries). It is lower than minio-go's default of 10 so that
// an outage surfaces as ErrUnreachable in about a second instead of being
// hidden behind the caller's deadline; callers such as the uploader retry
// with their own policy.
const maxAttempts = 3

// NewS3 connects to the bucket described by cfg and checks it at start-up:
// it fails with ErrUnreachable when the endpoint does not answer within 5 s
// (or ctx's deadline, if sooner), ErrAccessDenied when the credentials are
// rejected, and ErrNotFound when the bucket is missing and
// cfg.CreateBucket is false.
func NewS3(ctx context.Context, cfg S3Config) (*S3, error) {
	if cfg.Endpoint == "" || cfg.Bucket == "" {
		return nil, fmt.Errorf("s3: endpoint and bucket are required: %w", ErrBadURL)
	}
	if cfg.Region == "" {
		cfg.Region = "us-east-1"
	}
	lookup := minio.BucketLookupDNS
	if cfg.PathStyle {
		lookup = minio.BucketLookupPath
	}
	// Empty static credentials sign nothing: anonymous requests.
	creds := credentials.NewStaticV4(cfg.AccessKey, cfg.SecretKey, "")
	client, err := minio.New(cfg.Endpoint, &minio.Options{
		Creds:        creds,
		Secure:       cfg.TLS,
		Region:       cfg.Region,
		BucketLookup: lookup,
		Transport:    newTransport(cfg.TLS),
		MaxRetries:   maxAttempts,
	})
	if err != nil {
		return nil, fmt.Errorf("s3 endpoint %q: %v: %w", cfg.Endpoint, err, ErrBadURL)
	}
	if err := checkBucket(ctx, client, cfg); err != nil {
		return nil, err
	}
	return &S3{cfg: cfg, client: client, core: minio.Core{Client: client}}, nil
}

// newTransport is minio-go's default transport with bounded dial and
// response-header times, so a dead endpoint fails instead of hanging.
func newTransport(secure bool) http.RoundTripper {
	tr, err := minio.DefaultTransport(secure)
	if err != nil {
		return http.DefaultTransport
	}
	tr.DialContext = (&net.Dialer{Timeout: 5 * time.Second, KeepAlive: 30 * time.Second}).DialContext
	tr.ResponseHeaderTimeout = 2 * time.Minute
	return tr
}

// checkBucket verifies the bucket, creating it if allowed.
func checkBucket(ctx context.Context, client *minio.Client, cfg S3Config) error {
	ctx, cancel := context.WithTimeout(ctx, startupTimeout)
	defer cancel()
	where := fmt.Sprintf("s3 bucket %q at %s", cfg.Bucket, cfg.Endpoint)
	ok, err := client.BucketExists(ctx, cfg.Bucket)
	if err != nil {
		return startupError(where, err)
	}
	if ok {
		return nil
	}
	if !cfg.CreateBucket {
		return fmt.Errorf("%s: bucket does not exist: %w", where, ErrNotFound)
	}
	err = client.MakeBucket(ctx, cfg.Bucket, minio.MakeBucketOptions{Region: cfg.Region})
	if err != nil {
		switch minio.ToErrorResponse(err).Code {
		case "BucketAlreadyOwnedByYou", "BucketAlreadyExists":
			return nil // created concurrently by another broker
		}
		return startupError("create "+where, err)
	}
	return nil
}

// startupError maps a start-up failure; a deadline there means the endpoint
// did not answer in time.
func startupError(where string, err error) error {
	if errors.Is(err, context.DeadlineExceeded) {
		return fmt.Errorf("%s: no answer within %v: %w: %w", where, startupTimeout, ErrUnreachable, err)
	}
	return mapS3Error(where, "", err)
}

// Bucket returns the store's bucket.
func (s *S3) Bucket() string { return s.cfg.Bucket }

// String describes the store for logs (without credentials).
func (s *S3) String() string {
	return fmt.Sprintf("s3://%s?endpoint=%s&region=%s&path-style=%t&tls=%t",
		s.cfg.Bucket, s.cfg.Endpoint, s.cfg.Region, s.cfg.PathStyle, s.cfg.TLS)
}

// mapS3Error wraps err with op and key and, when it recognises it, with the
// matching sentinel. Context errors stay visible to errors.Is.
func mapS3Error(op, key string, err error) error {
	where := op
	if key != "" {
		where = fmt.Sprintf("%s %q", op, key)
	}
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return fmt.Errorf("%s: %w", where, err)
	}
	resp := minio.ToErrorResponse(err)
	var sentinel error
	switch {
	case resp.Code == "NoSuchKey" || resp.Code == "NoSuchBucket" || resp.StatusCode == http.StatusNotFound:
		sentinel = ErrNotFound
	case resp.Code == "InvalidRange" || resp.StatusCode == http.StatusRequestedRangeNotSatisfiable:
		sentinel = ErrInvalidRange
	case resp.Code == "AccessDenied" || resp.Code == "InvalidAccessKeyId" ||
		resp.Code == "SignatureDoesNotMatch" || resp.StatusCode == http.StatusForbidden:
		sentinel = ErrAccessDenied
	case resp.Code == "XMinioObjectExistsAsDirectory" || resp.Code == "XMinioParentIsObject" ||
		resp.Code == "XMinioInvalidObjectName" || resp.Code == "KeyTooLongError":
		sentinel = ErrInvalidKey
	case resp.StatusCode == http.StatusServiceUnavailable || resp.Code == "SlowDown" ||
		resp.Code == "XMinioServerNotInitialized" || minio.IsNetworkOrHostDown(err, false):
		sentinel = ErrUnreachable
	default:
		return fmt.Errorf("%s: %w", where, err)
	}
	return fmt.Errorf("%s: %w: %w", where, sentinel, err)
}

// Put implements ObjectStore.
func (s *S3) Put(ctx context.Context, key string, r io.Reader, size int64) error {
	if err := ValidateKey(key); err != nil {
		return fmt.Errorf("put: %w", err)
	}
	if size < -1 {
		return fmt.Errorf("put %q: negative size %d", key, size)
	}
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("put %q: %w", key, err)
	}
	body, exact, err := putBody(ctx, r, size)
	if err != nil {
		return fmt.Errorf("put %q: %w", key, err)
	}
	_, err = s.client.PutObject(ctx, s.cfg.Bucket, key, body, size, minio.PutObjectOptions{
		PartSize:    uint64(s.partSize()),
		ContentType: "application/octet-stream",
	})
	if err == nil {
		return nil
	}
	// minio-go does not always keep the reader's error in its chain.
	if cerr := ctx.Err(); cerr != nil {
		return fmt.Errorf("put %q: %w", key, cerr)
	}
	if (exact != nil && exact.short.Load()) || errors.Is(err, ErrShortBody) {
		return fmt.Errorf("put %q: %w: %w", key, ErrShortBody, err)
	}
	return mapS3Error("put", key, err)
}

// putBody prepares a Put body for minio-go. A seekable body of known size
// is passed as a section reader, which minio-go can rewind to retry a
// request and read in parallel for multipart uploads; a shortfall is
// detected before sending anything. Any other body is streamed through
// the context and exact-size checks (exact is nil for the first kind and
// for unknown sizes).
func putBody(ctx context.Context, r io.Reader, size int64) (io.Reader, *exactReader, error) {
	if ra, ok := r.(interface {
		io.ReaderAt
		io.Seeker
	}); ok && size >= 0 {
		cur, err := ra.Seek(0, io.SeekCurrent)
		if err != nil {
			return nil, nil, err
		}
		end, err := ra.Seek(0, io.SeekEnd)
		if err != nil {
			return nil, nil, err
		}
		if _, err := ra.Seek(cur, io.SeekStart); err != nil {
			return nil, nil, err
		}
		if end-cur < size {
			return nil, nil, fmt.Errorf("got %d of %d bytes: %w", max(end-cur, 0), size, ErrShortBody)
		}
		return io.NewSectionReader(ra, cur, size), nil, nil
	}
	var body io.Reader = ctxReader{ctx: ctx, r: r}
	if size < 0 {
		return body, nil, nil
	}
	exact := newExactReader(body, size)
	return exact, exact, nil
}

// Get implements ObjectStore.
func (s *S3) Get(ctx context.Context, key string, off, length int64) ([]byte, error) {
	if err := ValidateKey(key); err != nil {
		return nil, fmt.Errorf("get: %w", err)
	}
	if off < 0 {
		return nil, fmt.Errorf("get %q: offset %d: %w", key, off, ErrInvalidRange)
	}
	if length == 0 {
		// S3 cannot express an empty range; check existence and bounds.
		info, err := s.Head(ctx, key)
		if err != nil {
			return nil, fmt.Errorf("get: %w", err)
		}
		if _, _, err := CheckRange(info.Size, off, 0); err != nil {
			return nil, fmt.Errorf("get %q: %w", key, err)
		}
		return []byte{}, nil
	}
	var (
		opts minio.GetObjectOptions
		err  error
	)
	ranged := off > 0 || length > 0
	openEnd := length < 0 || length > math.MaxInt64-off
	switch {
	case !ranged, off == 0 && openEnd:
		// The whole object; a range is applied below.
	case openEnd:
		err = opts.SetRange(off, 0) // "bytes=off-"
	default:
		err = opts.SetRange(off, off+length-1)
	}
	if err != nil {
		return nil, fmt.Errorf("get %q: %w: %w", key, ErrInvalidRange, err)
	}
	body, info, hdr, err := s.core.GetObject(ctx, s.cfg.Bucket, key, opts)
	if err != nil {
		return nil, mapS3Error("get", key, err)
	}
	defer body.Close()
	buf := make([]byte, 0, max(info.Size, 0))
	buf, err = readAllInto(buf, body)
	if err != nil {
		return nil, mapS3Error("get", key, err)
	}
	if ranged && hdr.Get("Content-Range") == "" {
		// The whole object came back: no range was asked for (see
		// above), or the server ignored it. Apply the range here.
		start, end, err := CheckRange(int64(len(buf)), off, length)
		if err != nil {
			return nil, fmt.Errorf("get %q: %w", key, err)
		}
		buf = buf[start:end]
	}
	return buf, nil
}

// readAllInto is io.ReadAll appending to buf, which is pre-sized from the
// response's Content-Length.
func readAllInto(buf []byte, r io.Reader) ([]byte, error) {
	for {
		if len(buf) == cap(buf) {
			buf = append(buf, 0)[:len(buf)]
		}
		n, err := r.Read(buf[len(buf):cap(buf)])
		buf = buf[:len(buf)+n]
		if err == io.EOF {
			return buf, nil
		}
		if err != nil {
			return buf, err
		}
	}
}

// Head implements ObjectStore.
func (s *S3) Head(ctx context.Context, key string) (ObjectInfo, error) {
	if err := ValidateKey(key); err != nil {
		return ObjectInfo{}, fmt.Errorf("head: %w", err)
	}
	info, err := s.client.StatObject(ctx, s.cfg.Bucket, key, minio.StatObjectOptions{})
	if err != nil {
		return ObjectInfo{}, mapS3Error("head", key, err)
	}
	return ObjectInfo{Key: key, Size: info.Size, LastModified: info.LastModified}, nil
}

// Delete implements ObjectStore.
func (s *S3) Delete(ctx context.Context, key string) error {
	if err := ValidateKey(key); err != nil {
		return fmt.Errorf("delete: %w", err)
	}
	err := s.client.RemoveObject(ctx, s.cfg.Bucket, key, minio.RemoveObjectOptions{})
	if err != nil {
		if minio.ToErrorResponse(err).Code == "NoSuchKey" {
			return nil
		}
		return mapS3Error("delete", key, err)
	}
	return nil
}

// List implements ObjectStore.
func (s *S3) List(ctx context.Context, prefix string) ([]ObjectInfo, error) {
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("list %q: %w", prefix, err)
	}
	if !prefixCanMatch(prefix) {
		return []ObjectInfo{}, nil
	}
	ctx, cancel := context.WithCancel(ctx) // stops the listing goroutine on early return
	defer cancel()
	var out []ObjectInfo
	for obj := range s.client.ListObjects(ctx, s.cfg.Bucket, minio.ListObjectsOptions{
		Prefix:    prefix,
		Recursive: true,
	}) {
		if obj.Err != nil {
			return nil, mapS3Error("list", prefix, obj.Err)
		}
		out = append(out, ObjectInfo{Key: obj.Key, Size: obj.Size, LastModified: obj.LastModified})
	}
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("list %q: %w", prefix, err)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Key < out[j].Key })
	return out, nil
}
