package broker

import (
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/shoal-io/shoal/internal/raftgroup"
	"github.com/shoal-io/shoal/s3stream"
)

func TestConfigValidate(t *testing.T) {
	t.Parallel()
	d := DefaultConfig()
	if err := d.Validate(); err != nil {
		t.Fatalf("default config: %v", err)
	}
	for _, tc := range []struct {
		name  string
		edit  func(*Config)
		field string // the error must name it
	}{
		{"negative node id", func(c *Config) { c.NodeID = -1 }, "node-id"},
		{"no data dir", func(c *Config) { c.DataDir = "" }, "data-dir"},
		{"listen without port", func(c *Config) { c.Listen = "localhost" }, "listen"},
		{"listen bad port", func(c *Config) { c.Listen = "127.0.0.1:99999" }, "listen"},
		{"advertise port 0", func(c *Config) { c.Advertise = "host:0" }, "advertise"},
		{"cluster listen", func(c *Config) { c.ClusterListen = "nope" }, "cluster-listen"},
		{"metrics listen", func(c *Config) { c.MetricsListen = ":x" }, "metrics-listen"},
		{"two peers", func(c *Config) {
			c.Peers = []raftgroup.Peer{{ID: "1", Address: "a:1"}, {ID: "2", Address: "b:1"}}
		}, "peers"},
		{"peer is another node", func(c *Config) { c.Peers = []raftgroup.Peer{{ID: "2", Address: "a:1"}} }, "peers"},
		{"negative max request", func(c *Config) { c.MaxRequestSize = -1 }, "max request size"},
	} {
		c := DefaultConfig()
		tc.edit(&c)
		err := c.Validate()
		if err == nil || !strings.Contains(err.Error(), tc.field) || strings.Contains(err.Error(), "\n") {
			t.Errorf("%s: error %q, want one line naming %s", tc.name, err, tc.field)
		}
	}
}

func TestStartErrors(t *testing.T) {
	t.Parallel()
	busy, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer busy.Close()
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()

	cfg := testConfig(t)
	cfg.Listen = busy.Addr().String()
	_, err = Start(ctx, cfg)
	if !errors.Is(err, syscall.EADDRINUSE) || err.Error() != "listen "+cfg.Listen+": address already in use" {
		t.Fatalf("busy port: %v", err)
	}

	cfg = testConfig(t)
	cfg.ClusterListen = busy.Addr().String()
	if _, err = Start(ctx, cfg); !errors.Is(err, syscall.EADDRINUSE) || !strings.HasPrefix(err.Error(), "cluster-listen ") {
		t.Fatalf("busy cluster port: %v", err)
	}

	cfg = testConfig(t)
	file := filepath.Join(cfg.DataDir, "file")
	if err := os.WriteFile(file, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	cfg.DataDir = filepath.Join(file, "data")
	if _, err = Start(ctx, cfg); !errors.Is(err, syscall.ENOTDIR) || !strings.HasPrefix(err.Error(), "data-dir ") {
		t.Fatalf("data dir under a file: %v", err)
	}

	cfg = testConfig(t)
	cfg.ObjectStore = "ftp://nowhere"
	if _, err = Start(ctx, cfg); !errors.Is(err, s3stream.ErrBadURL) {
		t.Fatalf("bad object store: %v", err)
	}
}

func TestHealthEndpoints(t *testing.T) {
	t.Parallel()
	b := startBroker(t, func(c *Config) { c.MetricsListen = "127.0.0.1:0" })
	for _, path := range []string{"/healthz", "/readyz"} {
		resp, err := http.Get("http://" + b.MetricsAddr().String() + path)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("%s: %d %s", path, resp.StatusCode, body)
		}
	}
	if b.ClusterAddr() == nil || b.Addr() == nil {
		t.Fatal("no listener addresses")
	}
}
