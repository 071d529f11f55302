package main

import (
	"bytes"
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/shoal-io/shoal/broker"
	"github.com/shoal-io/shoal/internal/raftgroup"
)

func noEnv(string) string { return "" }

func TestParseConfigDefaults(t *testing.T) {
	s, err := parseConfig(nil, noEnv)
	if err != nil {
		t.Fatal(err)
	}
	c := s.broker
	def := broker.DefaultConfig()
	checks := []struct {
		name      string
		got, want any
	}{
		{"NodeID", c.NodeID, int32(1)},
		{"DataDir", c.DataDir, "./data"},
		{"Listen", c.Listen, "127.0.0.1:9092"},
		{"Advertise", c.Advertise, ""},
		{"ClusterListen", c.ClusterListen, "127.0.0.1:9093"},
		{"Peers", len(c.Peers), 0},
		{"ObjectStore", c.ObjectStore, ""}, // the broker resolves file://<data-dir>/objects
		{"MetricsListen", c.MetricsListen, "127.0.0.1:9094"},
		{"AutoCreateTopics", c.AutoCreateTopics, false},
		{"DefaultPartitions", c.DefaultPartitions, int32(1)},
		{"MaxRequestSize", c.MaxRequestSize, int32(100 << 20)},
		{"TailCacheBytes", c.TailCacheBytes, def.TailCacheBytes},
		{"CreateBucket", c.ObjectStoreOptions.CreateBucket, true},
		{"logFormat", s.logFormat, "text"},
		{"logLevel", s.logLevel.String(), "INFO"},
	}
	for _, ch := range checks {
		if ch.got != ch.want {
			t.Errorf("%s = %v, want %v", ch.name, ch.got, ch.want)
		}
	}
}

func TestParseConfigFlags(t *testing.T) {
	s, err := parseConfig([]string{
		"--data-dir", "/var/lib/shoal", "--listen", "0.0.0.0:19092", "--advertise", "kafka.example:19092",
		"--node-id", "7", "--cluster-listen", ":19093", "--peers", "7@10.0.0.7:19093",
		"--object-store", "s3://shoal-data?endpoint=127.0.0.1:9000&region=eu&path-style=true&tls=false",
		"--metrics-listen", "", "--auto-create-topics", "--default-partitions", "8",
		"--max-request-size", "1MiB", "--tail-cache-bytes", "64MB", "--log-level", "debug", "--log-format", "json",
	}, func(k string) string {
		return map[string]string{"AWS_ACCESS_KEY_ID": "ak", "AWS_SECRET_ACCESS_KEY": "sk"}[k]
	})
	if err != nil {
		t.Fatal(err)
	}
	c := s.broker
	if c.NodeID != 7 || c.DataDir != "/var/lib/shoal" || c.Listen != "0.0.0.0:19092" ||
		c.Advertise != "kafka.example:19092" || c.ClusterListen != ":19093" || c.MetricsListen != "" {
		t.Errorf("addresses: %+v", c)
	}
	if len(c.Peers) != 1 || c.Peers[0] != (raftgroup.Peer{ID: "7", Address: "10.0.0.7:19093"}) {
		t.Errorf("Peers = %+v", c.Peers)
	}
	if !strings.HasPrefix(c.ObjectStore, "s3://shoal-data?") || c.ObjectStoreOptions.AccessKey != "ak" ||
		c.ObjectStoreOptions.SecretKey != "sk" {
		t.Errorf("object store %q %+v", c.ObjectStore, c.ObjectStoreOptions)
	}
	if !c.AutoCreateTopics || c.DefaultPartitions != 8 || c.MaxRequestSize != 1<<20 || c.TailCacheBytes != 64e6 {
		t.Errorf("topics/sizes: %+v", c)
	}
	if s.logFormat != "json" || s.logLevel.String() != "DEBUG" {
		t.Errorf("log %s %s", s.logFormat, s.logLevel)
	}
}

func writeFile(t *testing.T, content string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "shoald.yaml")
	if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestParseConfigFile(t *testing.T) {
	p := writeFile(t, `
data-dir: /srv/shoal
listen: 127.0.0.1:29092
node-id: 3
auto-create-topics: true
default-partitions: 4
max-request-size: 2MiB
peers: [3@127.0.0.1:29093]
object-store: s3://bucket1?endpoint=minio:9000
s3-access-key: fileak
s3-secret-key: filesk
log-format: json
`)
	env := func(k string) string { return "env-" + k }
	s, err := parseConfig([]string{"--config", p, "--listen", "127.0.0.1:39092", "--log-format=text"}, env)
	if err != nil {
		t.Fatal(err)
	}
	c := s.broker
	if c.Listen != "127.0.0.1:39092" || s.logFormat != "text" {
		t.Errorf("flags must override the file: listen %s, log-format %s", c.Listen, s.logFormat)
	}
	if c.DataDir != "/srv/shoal" || c.NodeID != 3 || !c.AutoCreateTopics || c.DefaultPartitions != 4 ||
		c.MaxRequestSize != 2<<20 || len(c.Peers) != 1 {
		t.Errorf("file values not applied: %+v", c)
	}
	if c.ObjectStoreOptions.AccessKey != "fileak" || c.ObjectStoreOptions.SecretKey != "filesk" {
		t.Errorf("file credentials must win over the environment: %+v", c.ObjectStoreOptions)
	}
	if c.ObjectStore != "s3://bucket1?endpoint=minio:9000" {
		t.Errorf("ObjectStore = %q", c.ObjectStore)
	}
}

func TestParseConfigFileObjectStore(t *testing.T) {
	p := writeFile(t, "data-dir: /srv/x\nobject-store: file:///srv/objects\n")
	s, err := parseConfig([]string{"--config", p}, noEnv)
	if err != nil {
		t.Fatal(err)
	}
	if s.broker.DataDir != "/srv/x" || s.broker.ObjectStore != "file:///srv/objects" {
		t.Errorf("DataDir %q, ObjectStore %q", s.broker.DataDir, s.broker.ObjectStore)
	}
	if s.broker.ObjectStoreOptions.AccessKey != "" {
		t.Errorf("credentials from nowhere: %+v", s.broker.ObjectStoreOptions)
	}
}

func TestParseConfigEmptyFile(t *testing.T) {
	for _, content := range []string{"", "# nothing\n", "---\n"} {
		if _, err := parseConfig([]string{"--config", writeFile(t, content)}, noEnv); err != nil {
			t.Errorf("%q: %v", content, err)
		}
	}
}

func TestParseConfigErrors(t *testing.T) {
	tests := []struct {
		name string
		args []string
		file string // config file content, passed with --config when non-empty
		want string // substring of the error
	}{
		{"unknown flag", []string{"--bogus"}, "", "flag provided but not defined: -bogus"},
		{"positional", []string{"extra"}, "", `unexpected argument "extra"`},
		{"bad node id", []string{"--node-id", "x"}, "", "node-id"},
		{"negative node id", []string{"--node-id", "-1"}, "", "--node-id -1"},
		{"bad listen", []string{"--listen", "localhost"}, "", "--listen"},
		{"bad port", []string{"--listen", "127.0.0.1:99999"}, "", "bad port"},
		{"bad cluster listen", []string{"--cluster-listen", "x:y"}, "", "--cluster-listen"},
		{"bad metrics", []string{"--metrics-listen", "nope"}, "", "--metrics-listen"},
		{"empty data dir", []string{"--data-dir", ""}, "", "--data-dir"},
		{"65 nodes", []string{"--peers", manyPeers(65)}, "", "a cluster starts with at most 64"},
		{"self not listed", []string{"--peers", "2@127.0.0.1:9193,3@127.0.0.1:9293"}, "", "is not listed"},
		{"self elsewhere", []string{"--peers", "1@127.0.0.1:9999,2@127.0.0.1:9193"}, "", "does not match cluster-listen"},
		{"peer twice", []string{"--peers", "1@127.0.0.1:9093,1@127.0.0.1:9193"}, "", "listed twice"},
		{"peer not self", []string{"--peers", "2@127.0.0.1:9093"}, "", "must be this node"},
		{"peer syntax", []string{"--peers", "127.0.0.1:9093"}, "", "want ID@HOST:PORT"},
		{"peer id", []string{"--peers", "a@127.0.0.1:9093"}, "", "bad node id"},
		{"object store scheme", []string{"--object-store", "http://x"}, "", "--object-store"},
		{"object store empty file", []string{"--object-store", "file://"}, "", "--object-store"},
		{"object store s3 param", []string{"--object-store", "s3://bucket?nope=1"}, "", "unknown parameter"},
		{"bad size", []string{"--max-request-size", "lots"}, "", "max-request-size"},
		{"tiny size", []string{"--max-request-size", "10"}, "", "--max-request-size 10"},
		{"huge size", []string{"--max-request-size", "4GiB"}, "", "--max-request-size 4GiB"},
		{"zero tail cache", []string{"--tail-cache-bytes", "0"}, "", "--tail-cache-bytes"},
		{"partitions", []string{"--default-partitions", "0"}, "", "--default-partitions 0"},
		{"log level", []string{"--log-level", "loud"}, "", "--log-level"},
		{"log format", []string{"--log-format", "xml"}, "", "--log-format"},
		{"bool value", []string{"--auto-create-topics=maybe"}, "", "auto-create-topics"},
		{"missing file", []string{"--config", "/nonexistent/shoald.yaml"}, "", "config file"},
		{"unknown key", nil, "listen: 127.0.0.1:1\nbogus: 1\n", `line 2: unknown key "bogus"`},
		{"bad file value", nil, "node-id: seven\n", "line 1: key node-id"},
		{"file not mapping", nil, "- a\n- b\n", "want a mapping"},
		{"nested value", nil, "listen:\n  host: x\n", "want a single value"},
		{"duplicate key", nil, "listen: a:1\nlisten: b:2\n", "duplicate key"},
		{"yaml syntax", nil, "listen: [\n", "config file"},
		{"config in file", nil, "config: other.yaml\n", "only a flag"},
		{"half credentials", nil, "s3-access-key: x\n", "s3 credentials"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			args := tc.args
			if tc.file != "" {
				args = append([]string{"--config", writeFile(t, tc.file)}, args...)
			}
			_, err := parseConfig(args, noEnv)
			var ue usageError
			if !errors.As(err, &ue) {
				t.Fatalf("err = %v, want a usageError", err)
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Errorf("err = %q, want it to contain %q", err, tc.want)
			}
			if strings.Contains(err.Error(), "\n") {
				t.Errorf("err = %q: more than one line", err)
			}
		})
	}
}

func TestByteSize(t *testing.T) {
	tests := []struct {
		in   string
		want int64
		str  string
	}{
		{"1048576", 1 << 20, "1MiB"}, {"100MiB", 100 << 20, "100MiB"}, {"64KiB", 64 << 10, "64KiB"},
		{"2GiB", 2 << 30, "2GiB"}, {"5MB", 5e6, "5000000"}, {"1KB", 1000, "1000"}, {"12B", 12, "12"},
		{"0", 0, "0"}, {"1536", 1536, "1536"},
	}
	for _, tc := range tests {
		var b byteSize
		if err := b.Set(tc.in); err != nil {
			t.Errorf("Set(%q): %v", tc.in, err)
			continue
		}
		if int64(b) != tc.want || b.String() != tc.str {
			t.Errorf("Set(%q) = %d %q, want %d %q", tc.in, b, b.String(), tc.want, tc.str)
		}
	}
	for _, bad := range []string{"", "x", "-1", "1.5MiB", "MiB", "99999999999GiB"} {
		var b byteSize
		if err := b.Set(bad); err == nil {
			t.Errorf("Set(%q) accepted", bad)
		}
	}
}

func TestHelpListsEveryFlag(t *testing.T) {
	var out, errOut bytes.Buffer
	if code := run([]string{"--help"}, noEnv, &out, &errOut); code != 0 {
		t.Fatalf("exit %d, stderr %q", code, errOut.String())
	}
	newFlagSet(&flagValues{}).VisitAll(func(f *flag.Flag) {
		if !strings.Contains(out.String(), "--"+f.Name+" ") && !strings.Contains(out.String(), "--"+f.Name+"\n") {
			t.Errorf("--help does not list --%s", f.Name)
		}
	})
	for _, def := range []string{"(default: ./data)", "(default: 127.0.0.1:9092)", "(default: 100MiB)", "(default: false)", "(default: none)"} {
		if !strings.Contains(out.String(), def) {
			t.Errorf("--help lacks %q:\n%s", def, out.String())
		}
	}
}

func TestRunUsageErrorsExit2(t *testing.T) {
	for _, args := range [][]string{{"--bogus"}, {"--node-id", "x"}, {"--listen", "nohost"}} {
		var out, errOut bytes.Buffer
		if code := run(args, noEnv, &out, &errOut); code != 2 {
			t.Errorf("%v: exit %d, want 2", args, code)
		}
		if lines := strings.Count(errOut.String(), "\n"); lines != 1 || !strings.HasPrefix(errOut.String(), "shoald: ") {
			t.Errorf("%v: stderr %q, want one line", args, errOut.String())
		}
	}
}

func TestRunUnwritableDataDirExit1(t *testing.T) {
	// A path under a regular file fails for every user, root included
	// (root writes through permission bits).
	f := filepath.Join(t.TempDir(), "file")
	if err := os.WriteFile(f, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	var out, errOut bytes.Buffer
	code := run([]string{"--data-dir", filepath.Join(f, "data")}, noEnv, &out, &errOut)
	if code != 1 || strings.Count(errOut.String(), "\n") != 1 || !strings.Contains(errOut.String(), "data-dir") {
		t.Errorf("exit %d, stderr %q", code, errOut.String())
	}
}

// TestDocListsEveryKey keeps docs/configuration.md complete.
func TestDocListsEveryKey(t *testing.T) {
	doc, err := os.ReadFile("../../docs/configuration.md")
	if err != nil {
		t.Fatal(err)
	}
	newFlagSet(&flagValues{}).VisitAll(func(f *flag.Flag) {
		if !bytes.Contains(doc, []byte("`--"+f.Name)) {
			t.Errorf("docs/configuration.md does not document --%s", f.Name)
		}
	})
	for _, k := range fileOnlyKeys {
		if !bytes.Contains(doc, []byte("`"+k+"`")) {
			t.Errorf("docs/configuration.md does not document the key %s", k)
		}
	}
}

func TestGroupFlags(t *testing.T) {
	s, err := parseConfig([]string{"--group-initial-rebalance-delay", "0", "--group-consumer-session-timeout", "6s",
		"--group-consumer-heartbeat-interval", "500ms", "--group-min-session-timeout", "100ms"}, func(string) string { return "" })
	if err != nil {
		t.Fatal(err)
	}
	g := s.broker.Groups
	if g.InitialRebalanceDelay >= 0 || g.ConsumerSessionTimeout != 6*time.Second ||
		g.ConsumerHeartbeatInterval != 500*time.Millisecond || g.MinSessionTimeout != 100*time.Millisecond {
		t.Fatalf("group config %+v", g)
	}
	for _, bad := range [][]string{
		{"--group-consumer-heartbeat-interval", "1m"}, // not below the 45 s session
		{"--group-min-session-timeout", "1h"},         // above the maximum
		{"--group-initial-rebalance-delay", "-1s"},
	} {
		if _, err := parseConfig(bad, func(string) string { return "" }); err == nil {
			t.Errorf("%v accepted", bad)
		}
	}
}

func TestParseConfigThreePeers(t *testing.T) {
	s, err := parseConfig([]string{"--node-id", "2", "--cluster-listen", "0.0.0.0:9193",
		"--peers", "3@10.0.0.3:9293, 1@10.0.0.1:9093,2@10.0.0.2:9193"}, noEnv)
	if err != nil {
		t.Fatal(err)
	}
	want := []raftgroup.Peer{{ID: "3", Address: "10.0.0.3:9293"}, {ID: "1", Address: "10.0.0.1:9093"}, {ID: "2", Address: "10.0.0.2:9193"}}
	if !slices.Equal(s.broker.Peers, want) {
		t.Errorf("Peers = %+v, want %+v", s.broker.Peers, want)
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
