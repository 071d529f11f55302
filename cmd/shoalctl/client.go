package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
)

// maxAdminResponse bounds an admin endpoint's answer.
const maxAdminResponse = 256 << 20

// cli is one run of a command: the settings, the output streams and the
// clients, made on first use.
type cli struct {
	settings
	cmd            *command
	stdout, stderr io.Writer
	security       *securityFlags // TLS and SASL of the Kafka client (security.go)

	kcl  *kgo.Client
	adm  *kadm.Client
	http http.Client
}

// kafka returns the Kafka admin client of --bootstrap.
func (c *cli) kafka() (*kadm.Client, error) {
	if c.adm != nil {
		return c.adm, nil
	}
	opts, err := c.security.kgoOpts()
	if err != nil {
		return nil, err
	}
	cl, err := kgo.NewClient(append(opts, kgo.SeedBrokers(c.bootstrap...), kgo.ClientID("shoalctl"))...)
	if err != nil {
		return nil, fmt.Errorf("kafka client: %w", err)
	}
	c.kcl, c.adm = cl, kadm.NewClient(cl)
	c.adm.SetTimeoutMillis(int32(min(c.timeout.Milliseconds(), 1<<31-1)))
	return c.adm, nil
}

// usagef returns a usage error of the running command.
func (c *cli) usagef(format string, args ...any) error { return usagef(c.cmd, format, args...) }

// close closes the clients.
func (c *cli) close() {
	if c.kcl != nil {
		c.kcl.Close()
	}
}

// progress writes a progress line on stderr (table output only, so that
// scripts reading JSON get a quiet stderr on success).
func (c *cli) progress(format string, args ...any) {
	if c.output == "table" {
		fmt.Fprintf(c.stderr, format+"\n", args...)
	}
}

// needAdmin returns the first admin URL, or a usage error when none is
// configured.
func (c *cli) needAdmin() (string, error) {
	if len(c.admin) == 0 {
		return "", c.usagef("needs a broker's admin URL: --admin http://host:port (a broker's --metrics-listen address), SHOAL_ADMIN or admin in the config file")
	}
	return c.admin[0], nil
}

// httpError is an admin endpoint's answer with a status other than 200.
type httpError struct {
	Status int
	Msg    string // the JSON error message, or the body's start
}

func (e *httpError) Error() string {
	return fmt.Sprintf("%s (HTTP %d)", e.Msg, e.Status)
}

// adminCall sends an admin request to base+path with body (JSON, nil for
// none) and returns the answer's body. A status other than 2xx is an
// *httpError carrying the answer's {"error": ...} message.
func (c *cli) adminCall(ctx context.Context, method, base, path string, body any) ([]byte, error) {
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return nil, err
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, base+path, rd)
	if err != nil {
		return nil, err
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return nil, fmt.Errorf("admin endpoint: %w", err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, maxAdminResponse))
	if err != nil {
		return nil, fmt.Errorf("%s %s: read answer: %w", method, base+path, err)
	}
	if resp.StatusCode/100 == 2 {
		return data, nil
	}
	var e struct {
		Error string `json:"error"`
	}
	msg := strings.TrimSpace(string(data))
	if json.Unmarshal(data, &e) == nil && e.Error != "" {
		msg = e.Error
	}
	if len(msg) > 300 {
		msg = msg[:300] + "..."
	}
	if msg == "" {
		msg = http.StatusText(resp.StatusCode)
	}
	return nil, &httpError{Status: resp.StatusCode, Msg: msg}
}

// adminGet GETs base+path and decodes the JSON answer into v.
func (c *cli) adminGet(ctx context.Context, base, path string, v any) error {
	data, err := c.adminCall(ctx, http.MethodGet, base, path, nil)
	if err != nil {
		return err
	}
	if err := json.Unmarshal(data, v); err != nil {
		return fmt.Errorf("GET %s%s: %w", base, path, err)
	}
	return nil
}

// isStatus reports whether err is an *httpError with the given status.
func isStatus(err error, status int) bool {
	var he *httpError
	return errors.As(err, &he) && he.Status == status
}
