package s3stream

import (
	"context"
	"fmt"
	"net"
	"net/url"
	"os"
	"regexp"
	"strconv"
	"strings"
)

// Options tunes Open.
type Options struct {
	// AccessKey and SecretKey are the S3 credentials. When both are empty,
	// Open reads AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY.
	AccessKey, SecretKey string
	// CreateBucket lets Open create a missing bucket.
	CreateBucket bool
}

// DefaultOptions returns the options shoald uses: credentials from the
// environment, and a missing bucket is created.
func DefaultOptions() Options {
	return Options{CreateBucket: true}
}

// Open opens the store named by the command-line URL:
//
//	file:///abs/dir  (or file://relative/dir)
//	s3://BUCKET?endpoint=HOST:PORT&region=R&path-style=true&tls=false
//
// For s3:// the query parameters are optional: endpoint defaults to
// s3.amazonaws.com, region to us-east-1, path-style to false and tls to
// true; any other parameter is ErrBadURL. Open verifies the store is usable:
// for file:// it creates the directory and checks it is writable; for s3://
// it checks the bucket (see NewS3), failing within 5 s with ErrUnreachable
// when the endpoint is down and with ErrAccessDenied on bad credentials.
func Open(ctx context.Context, rawURL string, opts Options) (ObjectStore, error) {
	scheme, rest, ok := strings.Cut(rawURL, "://")
	if !ok {
		return nil, badURL(rawURL, "want file://DIR or s3://BUCKET?endpoint=HOST:PORT&...")
	}
	switch scheme {
	case "file":
		dir, err := parseFileURL(rawURL, rest)
		if err != nil {
			return nil, err
		}
		d, err := NewLocalDir(dir)
		if err != nil {
			return nil, fmt.Errorf("open %s: %w", rawURL, err)
		}
		return d, nil
	case "s3":
		cfg, err := ParseS3URL(rawURL)
		if err != nil {
			return nil, err
		}
		cfg.AccessKey, cfg.SecretKey = opts.AccessKey, opts.SecretKey
		if cfg.AccessKey == "" && cfg.SecretKey == "" {
			cfg.AccessKey = os.Getenv("AWS_ACCESS_KEY_ID")
			cfg.SecretKey = os.Getenv("AWS_SECRET_ACCESS_KEY")
		}
		cfg.CreateBucket = opts.CreateBucket
		s, err := NewS3(ctx, cfg)
		if err != nil {
			return nil, fmt.Errorf("open object store: %w", err)
		}
		return s, nil
	default:
		return nil, badURL(rawURL, fmt.Sprintf("unknown scheme %q (want file or s3)", scheme))
	}
}

func badURL(rawURL, why string) error {
	return fmt.Errorf("object store %q: %s: %w", rawURL, why, ErrBadURL)
}

// parseFileURL returns the directory of file://DIR. DIR is taken verbatim
// (no percent-decoding): "file:///abs" is "/abs", "file://rel/dir" is
// "rel/dir".
func parseFileURL(rawURL, rest string) (string, error) {
	switch {
	case rest == "":
		return "", badURL(rawURL, "empty directory")
	case strings.ContainsAny(rest, "?#"):
		return "", badURL(rawURL, "file URLs take no query or fragment")
	case strings.ContainsRune(rest, 0):
		return "", badURL(rawURL, "NUL in path")
	}
	return rest, nil
}

// bucketName matches S3 bucket naming rules (3-63 lowercase letters,
// digits, dots and hyphens, starting and ending with a letter or digit).
var bucketName = regexp.MustCompile(`^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$`)

// ParseS3URL parses s3://BUCKET?endpoint=HOST:PORT&region=R&path-style=B&tls=B
// into an S3Config without credentials. Errors wrap ErrBadURL.
func ParseS3URL(rawURL string) (S3Config, error) {
	u, err := url.Parse(rawURL)
	if err != nil {
		return S3Config{}, badURL(rawURL, err.Error())
	}
	cfg := S3Config{Bucket: u.Host, Endpoint: "s3.amazonaws.com", Region: "us-east-1", TLS: true}
	switch {
	case u.Scheme != "s3":
		return S3Config{}, badURL(rawURL, "not an s3:// URL")
	case u.User != nil:
		return S3Config{}, badURL(rawURL, "credentials do not belong in the URL (use AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY)")
	case u.Host == "":
		return S3Config{}, badURL(rawURL, "missing bucket")
	case !bucketName.MatchString(u.Host) || strings.Contains(u.Host, ".."):
		return S3Config{}, badURL(rawURL, fmt.Sprintf("invalid bucket name %q", u.Host))
	case u.Path != "" && u.Path != "/":
		return S3Config{}, badURL(rawURL, "a path after the bucket is not supported")
	case u.Fragment != "":
		return S3Config{}, badURL(rawURL, "unexpected fragment")
	}
	q, err := url.ParseQuery(u.RawQuery)
	if err != nil {
		return S3Config{}, badURL(rawURL, err.Error())
	}
	for name, vals := range q {
		if len(vals) != 1 {
			return S3Config{}, badURL(rawURL, fmt.Sprintf("parameter %q given %d times", name, len(vals)))
		}
		if err := setS3Param(&cfg, name, vals[0]); err != nil {
			return S3Config{}, badURL(rawURL, err.Error())
		}
	}
	return cfg, nil
}

func setS3Param(cfg *S3Config, name, val string) error {
	var err error
	switch name {
	case "endpoint":
		err = checkEndpoint(val)
		cfg.Endpoint = val
	case "region":
		if val == "" {
			err = fmt.Errorf("empty region")
		}
		cfg.Region = val
	case "path-style":
		cfg.PathStyle, err = strconv.ParseBool(val)
	case "tls":
		cfg.TLS, err = strconv.ParseBool(val)
	default:
		err = fmt.Errorf("unknown parameter %q (known: endpoint, region, path-style, tls)", name)
	}
	if err != nil {
		return fmt.Errorf("parameter %s: %w", name, err)
	}
	return nil
}

// checkEndpoint accepts HOST or HOST:PORT, without a scheme or path.
func checkEndpoint(ep string) error {
	if ep == "" {
		return fmt.Errorf("empty endpoint")
	}
	if strings.Contains(ep, "://") {
		return fmt.Errorf("endpoint %q must be HOST:PORT without a scheme (use tls=true|false)", ep)
	}
	if strings.ContainsAny(ep, "/?#@ ") {
		return fmt.Errorf("endpoint %q must be HOST:PORT", ep)
	}
	if !strings.Contains(ep, ":") {
		return nil // HOST alone: the scheme's default port
	}
	host, port, err := net.SplitHostPort(ep)
	if err != nil {
		return fmt.Errorf("endpoint %q: %w", ep, err)
	}
	if host == "" {
		return fmt.Errorf("endpoint %q: empty host", ep)
	}
	if p, err := strconv.Atoi(port); err != nil || p < 1 || p > 65535 {
		return fmt.Errorf("endpoint %q: bad port", ep)
	}
	return nil
}
