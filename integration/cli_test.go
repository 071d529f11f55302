package integration

import (
	"context"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
)

// contractFlags are the flags of the command-line contract
// (docs/configuration.md).
var contractFlags = []string{
	"config", "data-dir", "listen", "advertise", "node-id", "cluster-listen", "peers", "object-store",
	"metrics-listen", "auto-create-topics", "default-partitions", "max-request-size", "tail-cache-bytes",
	"log-level", "log-format",
}

// oneLine fails the test unless stderr is exactly one line starting with
// "shoald: " and containing every part of want.
func oneLine(t *testing.T, what string, res Result, code int, want ...string) {
	t.Helper()
	if res.Code != code {
		t.Errorf("%s: exit status %d, want %d; stderr:\n%s", what, res.Code, code, res.Stderr)
	}
	lines := strings.Split(strings.TrimRight(res.Stderr, "\n"), "\n")
	if len(lines) != 1 || !strings.HasPrefix(lines[0], "shoald: ") {
		t.Errorf("%s: want one line on stderr starting with \"shoald: \", got:\n%s", what, res.Stderr)
		return
	}
	for _, w := range want {
		if !strings.Contains(lines[0], w) {
			t.Errorf("%s: stderr %q lacks %q", what, lines[0], w)
		}
	}
}

func TestCLIHelp(t *testing.T) {
	res := RunShoald(t, 10*time.Second, "--help")
	if res.Code != 0 {
		t.Fatalf("--help: exit %d, stderr %s", res.Code, res.Stderr)
	}
	for _, f := range contractFlags {
		i := strings.Index(res.Stdout, "\n  --"+f+" ")
		if i < 0 {
			i = strings.Index(res.Stdout, "\n  --"+f+"\n")
		}
		if i < 0 {
			t.Errorf("--help does not list --%s", f)
			continue
		}
		if entry, _, _ := strings.Cut(res.Stdout[i+1:], "\n  --"); !strings.Contains(entry, "default") {
			t.Errorf("--help: --%s has no default:\n%s", f, entry)
		}
	}
}

func TestCLIUsageErrors(t *testing.T) {
	dir := t.TempDir()
	tests := []struct {
		name string
		args []string
		want []string
	}{
		{"unknown flag", []string{"--no-such-flag"}, []string{"no-such-flag"}},
		{"bad number", []string{"--node-id", "abc"}, []string{"node-id"}},
		{"bad address", []string{"--listen", "nowhere"}, []string{"--listen"}},
		{"bad size", []string{"--max-request-size", "huge"}, []string{"max-request-size"}},
		{"bad object store", []string{"--object-store", "ftp://x"}, []string{"--object-store"}},
		{"65 peers", []string{"--peers", manyPeers(65)}, []string{"a cluster starts with at most 64"}},
		{"missing config", []string{"--config", filepath.Join(dir, "none.yaml")}, []string{"config file"}},
	}
	for _, tc := range tests {
		res := RunShoald(t, 10*time.Second, append(tc.args, "--data-dir", filepath.Join(dir, "data"))...)
		oneLine(t, tc.name, res, 2, tc.want...)
	}
	cfg := filepath.Join(dir, "bad.yaml")
	if err := os.WriteFile(cfg, []byte("listen: 127.0.0.1:1\nlisten-address: x\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	oneLine(t, "unknown config key", RunShoald(t, 10*time.Second, "--config", cfg), 2, "listen-address")
	if _, err := os.Stat(filepath.Join(dir, "data")); err == nil {
		t.Errorf("a refused command line created the data directory")
	}
}

func TestCLIStartFailures(t *testing.T) {
	dir := t.TempDir()
	busy, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer busy.Close()
	ports := func() []string {
		a := FreeAddrs(t, 3)
		return []string{"--listen", a[0], "--cluster-listen", a[1], "--metrics-listen", a[2]}
	}

	args := append(ports(), "--data-dir", filepath.Join(dir, "d1"), "--listen", busy.Addr().String())
	oneLine(t, "busy port", RunShoald(t, 20*time.Second, args...), 1, busy.Addr().String(), "address already in use")

	file := filepath.Join(dir, "file")
	if err := os.WriteFile(file, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	args = append(ports(), "--data-dir", filepath.Join(file, "data"))
	oneLine(t, "unwritable data dir", RunShoald(t, 20*time.Second, args...), 1, "data-dir")

	// A port that refuses connections stands for an unreachable S3 endpoint.
	dead := FreeAddr(t)
	args = append(ports(), "--data-dir", filepath.Join(dir, "d2"),
		"--object-store", fmt.Sprintf("s3://bucket?endpoint=%s&tls=false&path-style=true", dead))
	oneLine(t, "unreachable object store", RunShoald(t, 30*time.Second, args...), 1, "object")
}

// TestCLISignalsAndRestart stops shoald with SIGTERM (exit 0) and checks
// that a restart on the same data directory keeps the data; then that SIGINT
// also exits 0.
func TestCLISignalsAndRestart(t *testing.T) {
	b := StartBroker(t)
	if !strings.Contains(b.Log(), "shoald: serving kafka on "+b.Addr) {
		t.Errorf("no \"shoald: serving kafka on %s\" line in the output:\n%s", b.Addr, b.LogTail(20))
	}
	createTopic(t, b, "keep", 2)
	cl := b.Client(t, kgo.DefaultProduceTopic("keep"))
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	var recs []*kgo.Record
	for i := range 100 {
		recs = append(recs, &kgo.Record{Key: fmt.Appendf(nil, "%d", i), Value: fmt.Appendf(nil, "kept-%d", i)})
	}
	if err := cl.ProduceSync(ctx, recs...).FirstErr(); err != nil {
		t.Fatal(err)
	}
	cl.Close()
	before := endOffsets(t, b, "keep")

	b.Stop() // SIGTERM, exit 0
	b.Restart()
	if after := endOffsets(t, b, "keep"); fmt.Sprint(after) != fmt.Sprint(before) {
		t.Fatalf("end offsets %v after the restart, %v before", after, before)
	}
	got := consumeUntil(t, b, "keep", before, 30*time.Second)
	seen := map[string]bool{}
	for _, rs := range got {
		for _, r := range rs {
			seen[string(r.Value)] = true
		}
	}
	if len(seen) != 100 {
		t.Fatalf("%d distinct records after the restart, want 100", len(seen))
	}

	if code := b.Signal(os.Interrupt); code != 0 {
		t.Fatalf("exit status %d after SIGINT, want 0", code)
	}
}

// manyPeers lists n peers, node 1 at the default cluster address.
func manyPeers(n int) string {
	var out []string
	for i := 1; i <= n; i++ {
		out = append(out, fmt.Sprintf("%d@127.0.0.1:%d", i, 9093+100*(i-1)))
	}
	return strings.Join(out, ",")
}
