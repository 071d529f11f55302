package main

import (
	"bytes"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/shoal-io/shoal/broker"
	"github.com/shoal-io/shoal/broker/group"
	"github.com/shoal-io/shoal/internal/raftgroup"
	"github.com/shoal-io/shoal/s3stream"
)

// settings is everything parseConfig derives from the command line, the
// config file and the environment.
type settings struct {
	broker    broker.Config // Logger is left nil; main builds it
	logLevel  slog.Level
	logFormat string // "text" or "json"
}

// fileOnlyKeys are config-file keys that are not flags: secrets do not
// belong on a command line, where every local user can read them.
var fileOnlyKeys = []string{"s3-access-key", "s3-secret-key"}

// flagValues holds the destinations of the flags.
type flagValues struct {
	config, dataDir, listen, advertise, clusterListen, peers string
	objectStore, metricsListen, logLevel, logFormat          string
	nodeID, defaultPartitions                                int
	autoCreateTopics, join                                   bool
	maxRequestSize, tailCacheBytes                           byteSize
	uploadBytes, walMaxPendingBytes, blockCacheBytes         byteSize
	uploadAge                                                time.Duration
	compactionInterval, retentionCheckInterval               time.Duration
	objectGrace, orphanSweepInterval                         time.Duration
	groupInitialDelay, groupMinSession, groupMaxSession      time.Duration
	groupConsumerSession, groupConsumerHeartbeat             time.Duration
	leaderBalanceDelay                                       time.Duration
	walFsync                                                 bool
	maxInflightRequestBytes                                  byteSize
	maxConnections, maxConnectionsPerIP                      int
	connectionsMaxIdle, requestReadTimeout                   time.Duration
	authorizer, superUsers                                   string
	security                                                 securityFlags
}

// newFlagSet declares every flag of shoald. Its defaults are those of the
// command-line contract in docs/configuration.md.
func newFlagSet(v *flagValues) *flag.FlagSet {
	def := broker.DefaultConfig()
	fs := flag.NewFlagSet("shoald", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	fs.StringVar(&v.config, "config", "", "YAML config `FILE`; its keys are the flag names (flags override it)")
	fs.StringVar(&v.dataDir, "data-dir", "./data", "`DIR` of the WAL and Raft state")
	fs.StringVar(&v.listen, "listen", "127.0.0.1:9092", "Kafka listener `HOST:PORT`")
	fs.StringVar(&v.advertise, "advertise", "", "`HOST:PORT` given to clients (default: the listen address)")
	fs.IntVar(&v.nodeID, "node-id", 1, "broker id `N`, unique in the cluster")
	fs.StringVar(&v.clusterListen, "cluster-listen", "127.0.0.1:9093", "`HOST:PORT` of Raft and internal traffic")
	fs.StringVar(&v.peers, "peers", "", "a new cluster's members with their cluster addresses `ID@HOST:PORT,...`, this node included (default: empty = single node)")
	fs.DurationVar(&v.leaderBalanceDelay, "leader-balance-delay", 10*time.Second,
		"lead a WAL group this `DURATION` before handing it to its preferred leader (negative: never)")
	fs.BoolVar(&v.walFsync, "wal-fsync", true, "fsync every WAL write before it counts towards the quorum (false: page cache of a quorum, as Kafka)")
	fs.BoolVar(&v.join, "join", false, "join an existing cluster: wait until shoalctl cluster add-broker admits this broker")
	fs.StringVar(&v.objectStore, "object-store", "",
		"object store `URL`: file://DIR or s3://BUCKET?endpoint=HOST:PORT&region=R&path-style=true&tls=false (default: file://<data-dir>/objects)")
	fs.StringVar(&v.metricsListen, "metrics-listen", "127.0.0.1:9094", "`HOST:PORT` of /metrics, /healthz, /readyz (empty = disabled)")
	fs.BoolVar(&v.autoCreateTopics, "auto-create-topics", false, "create unknown topics on Metadata requests")
	fs.IntVar(&v.defaultPartitions, "default-partitions", 1, "partition `COUNT` of auto-created topics")
	v.maxRequestSize = byteSize(100 << 20)
	fs.Var(&v.maxRequestSize, "max-request-size", "largest accepted request frame, `BYTES` (suffixes KiB, MiB, GiB)")
	v.maxInflightRequestBytes = byteSize(256 << 20)
	fs.Var(&v.maxInflightRequestBytes, "max-inflight-request-bytes",
		"memory `BYTES` of the request frames being read or handled, over all connections (at least --max-request-size)")
	fs.IntVar(&v.maxConnections, "max-connections", 16384, "most open Kafka connections, `N`")
	fs.IntVar(&v.maxConnectionsPerIP, "max-connections-per-ip", 4096, "most open Kafka connections from one address, `N`")
	fs.DurationVar(&v.connectionsMaxIdle, "connections-max-idle", 10*time.Minute, "close a connection that sends nothing for this `DURATION`")
	fs.DurationVar(&v.requestReadTimeout, "request-read-timeout", 30*time.Second,
		"close a connection whose frame body takes longer than this `DURATION` to arrive after its size")
	v.tailCacheBytes = byteSize(def.TailCacheBytes)
	fs.Var(&v.tailCacheBytes, "tail-cache-bytes", "memory `BYTES` of the in-memory WAL tail cache (suffixes KiB, MiB, GiB)")
	v.uploadBytes = byteSize(def.UploadBytes)
	fs.Var(&v.uploadBytes, "upload-bytes", "upload WAL data to object storage once this many `BYTES` wait")
	fs.DurationVar(&v.uploadAge, "upload-age", def.UploadAge, "... or once the oldest waiting data is this `DURATION` old")
	v.walMaxPendingBytes = byteSize(def.WALMaxPendingBytes)
	fs.Var(&v.walMaxPendingBytes, "wal-max-pending-bytes", "`BYTES` of data waiting for upload beyond which produce gets a retriable error")
	v.blockCacheBytes = byteSize(def.BlockCacheBytes)
	fs.Var(&v.blockCacheBytes, "block-cache-bytes", "memory `BYTES` of the cache of object blocks read for fetches")
	fs.DurationVar(&v.compactionInterval, "compaction-interval", def.CompactionInterval, "how often objects are compacted, a `DURATION`")
	fs.DurationVar(&v.retentionCheckInterval, "retention-check-interval", def.RetentionCheckInterval,
		"how often retention.ms and retention.bytes are applied, a `DURATION`")
	fs.DurationVar(&v.objectGrace, "object-grace", def.ObjectGrace,
		"`DURATION` an unreferenced object stays in storage for in-flight readers before it is deleted")
	fs.DurationVar(&v.orphanSweepInterval, "orphan-sweep-interval", def.OrphanSweepInterval,
		"how often the bucket is listed for objects no metadata refers to, a `DURATION`")
	gdef := group.DefaultConfig()
	fs.DurationVar(&v.groupInitialDelay, "group-initial-rebalance-delay", gdef.InitialRebalanceDelay,
		"wait this `DURATION` for more members before a new classic group's first rebalance (0: none)")
	fs.DurationVar(&v.groupMinSession, "group-min-session-timeout", gdef.MinSessionTimeout, "smallest session timeout a classic member may ask for, a `DURATION`")
	fs.DurationVar(&v.groupMaxSession, "group-max-session-timeout", gdef.MaxSessionTimeout, "largest session timeout a classic member may ask for, a `DURATION`")
	fs.DurationVar(&v.groupConsumerSession, "group-consumer-session-timeout", gdef.ConsumerSessionTimeout, "session timeout of KIP-848 consumer group members, a `DURATION`")
	fs.DurationVar(&v.groupConsumerHeartbeat, "group-consumer-heartbeat-interval", gdef.ConsumerHeartbeatInterval, "heartbeat interval given to KIP-848 consumer group members, a `DURATION`")
	v.security.register(fs)
	fs.StringVar(&v.authorizer, "authorizer", broker.AuthorizerNone,
		"`NAME`: none (every request allowed) or acl (the ACLs in metadata; denied unless allowed)")
	fs.StringVar(&v.superUsers, "super-users", "", "`PRINCIPALS` that every authorisation check allows, e.g. User:admin;User:ops")
	fs.StringVar(&v.logLevel, "log-level", "info", "log `LEVEL`: debug, info, warn or error")
	fs.StringVar(&v.logFormat, "log-format", "text", "log `FORMAT`: text or json")
	return fs
}

// usageError is a bad command line, config file or value: exit status 2.
type usageError struct{ err error }

func (e usageError) Error() string { return e.err.Error() }
func (e usageError) Unwrap() error { return e.err }

func usagef(format string, args ...any) error {
	return usageError{fmt.Errorf(format, args...)}
}

// parseConfig turns the command line (without the program name), the
// config file it names and the environment into settings. It returns
// flag.ErrHelp for -h/--help, and a usageError for everything the user got
// wrong. It touches no file except the config file.
func parseConfig(args []string, env func(string) string) (settings, error) {
	var v flagValues
	fs := newFlagSet(&v)
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return settings{}, err
		}
		return settings{}, usageError{err}
	}
	if fs.NArg() > 0 {
		return settings{}, usagef("unexpected argument %q (every option is a --flag)", fs.Arg(0))
	}
	fileKeys := map[string]string{}
	if v.config != "" {
		var err error
		if fileKeys, err = applyConfigFile(fs, v.config); err != nil {
			return settings{}, err
		}
	}
	fs.Visit(func(f *flag.Flag) { v.security.given(f.Name) }) // the command line's and the file's
	s, err := v.settings(fileKeys, env)
	if err != nil {
		return settings{}, err
	}
	if err := s.broker.Validate(); err != nil {
		return settings{}, usageError{err}
	}
	return s, nil
}

// applyConfigFile reads the YAML file at path and sets every flag that the
// command line did not set from it. It returns the file-only keys.
func applyConfigFile(fs *flag.FlagSet, path string) (map[string]string, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, usagef("config file: %v", err)
	}
	keys, err := decodeConfigFile(data)
	if err != nil {
		return nil, usagef("config file %s: %v", path, err)
	}
	onCommandLine := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { onCommandLine[f.Name] = true })
	fileOnly := map[string]string{}
	for _, kv := range keys {
		switch {
		case isFileOnlyKey(kv.key):
			fileOnly[kv.key] = kv.value
		case kv.key == "config":
			return nil, usagef("config file %s: line %d: key \"config\" is only a flag", path, kv.line)
		case fs.Lookup(kv.key) == nil:
			return nil, usagef("config file %s: line %d: unknown key %q", path, kv.line, kv.key)
		case onCommandLine[kv.key]:
			// the flag wins
		default:
			if err := fs.Set(kv.key, kv.value); err != nil {
				return nil, usagef("config file %s: line %d: key %s: %v", path, kv.line, kv.key, err)
			}
		}
	}
	return fileOnly, nil
}

func isFileOnlyKey(k string) bool {
	for _, f := range fileOnlyKeys {
		if k == f {
			return true
		}
	}
	return false
}

// keyValue is one top-level entry of the config file.
type keyValue struct {
	key, value string
	line       int
}

// decodeConfigFile parses a YAML mapping of scalar values (a sequence of
// scalars is accepted for peers and joined with commas). An empty file is an
// empty config. Duplicate keys are rejected.
func decodeConfigFile(data []byte) ([]keyValue, error) {
	var doc yaml.Node
	dec := yaml.NewDecoder(bytes.NewReader(data))
	if err := dec.Decode(&doc); err != nil {
		if errors.Is(err, io.EOF) {
			return nil, nil
		}
		return nil, err
	}
	var extra yaml.Node
	if err := dec.Decode(&extra); !errors.Is(err, io.EOF) {
		return nil, errors.New("more than one YAML document")
	}
	if len(doc.Content) == 0 {
		return nil, nil
	}
	m := doc.Content[0]
	if m.Kind == yaml.ScalarNode && m.Tag == "!!null" {
		return nil, nil
	}
	if m.Kind != yaml.MappingNode {
		return nil, fmt.Errorf("line %d: want a mapping of keys to values", m.Line)
	}
	seen := map[string]bool{}
	var out []keyValue
	for i := 0; i+1 < len(m.Content); i += 2 {
		k, val := m.Content[i], m.Content[i+1]
		if k.Kind != yaml.ScalarNode {
			return nil, fmt.Errorf("line %d: keys must be plain names", k.Line)
		}
		if seen[k.Value] {
			return nil, fmt.Errorf("line %d: duplicate key %q", k.Line, k.Value)
		}
		seen[k.Value] = true
		s, err := scalarValue(k.Value, val)
		if err != nil {
			return nil, fmt.Errorf("line %d: key %s: %v", val.Line, k.Value, err)
		}
		out = append(out, keyValue{key: k.Value, value: s, line: k.Line})
	}
	return out, nil
}

func scalarValue(key string, n *yaml.Node) (string, error) {
	switch {
	case n.Kind == yaml.ScalarNode && n.Tag == "!!null":
		return "", nil
	case n.Kind == yaml.ScalarNode:
		return n.Value, nil
	case n.Kind == yaml.SequenceNode && listKeys[key]:
		parts := make([]string, 0, len(n.Content))
		for _, c := range n.Content {
			if c.Kind != yaml.ScalarNode {
				return "", errors.New("want a list of ID@HOST:PORT")
			}
			parts = append(parts, c.Value)
		}
		return strings.Join(parts, ","), nil
	default:
		return "", errors.New("want a single value")
	}
}

// settings checks the flag values and builds the broker configuration.
func (v *flagValues) settings(fileOnly map[string]string, env func(string) string) (settings, error) {
	cfg := broker.DefaultConfig()
	s := settings{logFormat: v.logFormat}
	if err := s.logLevel.UnmarshalText([]byte(v.logLevel)); err != nil || !knownLevel(v.logLevel) {
		return s, usagef("--log-level %q: want debug, info, warn or error", v.logLevel)
	}
	if v.logFormat != "text" && v.logFormat != "json" {
		return s, usagef("--log-format %q: want text or json", v.logFormat)
	}
	if v.dataDir == "" {
		return s, usagef("--data-dir: empty directory")
	}
	if v.nodeID < 0 || v.nodeID > 1<<31-1 {
		return s, usagef("--node-id %d: want 0..2147483647", v.nodeID)
	}
	cfg.NodeID, cfg.DataDir = int32(v.nodeID), v.dataDir
	for _, a := range []struct {
		flag, val string
		empty     bool
		dst       *string
	}{
		{"listen", v.listen, false, &cfg.Listen},
		{"advertise", v.advertise, true, &cfg.Advertise},
		{"cluster-listen", v.clusterListen, false, &cfg.ClusterListen},
		{"metrics-listen", v.metricsListen, true, &cfg.MetricsListen},
	} {
		if a.val == "" && a.empty {
			*a.dst = ""
			continue
		}
		if err := checkHostPort(a.val); err != nil {
			return s, usagef("--%s %q: %v", a.flag, a.val, err)
		}
		*a.dst = a.val
	}
	peers, err := parsePeers(v.peers)
	if err != nil {
		return s, usagef("--peers %q: %v", v.peers, err)
	}
	cfg.Peers = peers
	if err := v.objectStoreConfig(&cfg, fileOnly, env); err != nil {
		return s, err
	}
	if v.defaultPartitions < 1 || v.defaultPartitions > 1<<31-1 {
		return s, usagef("--default-partitions %d: want at least 1", v.defaultPartitions)
	}
	cfg.AutoCreateTopics, cfg.DefaultPartitions = v.autoCreateTopics, int32(v.defaultPartitions)
	cfg.Join, cfg.LeaderBalanceDelay, cfg.WALFsync = v.join, v.leaderBalanceDelay, v.walFsync
	if v.maxRequestSize < 1024 || v.maxRequestSize > 1<<31-1 {
		return s, usagef("--max-request-size %s: want 1KiB..2GiB-1", v.maxRequestSize.String())
	}
	cfg.MaxRequestSize = int32(v.maxRequestSize)
	if int64(v.maxInflightRequestBytes) < int64(v.maxRequestSize) {
		return s, usagef("--max-inflight-request-bytes %s: want at least --max-request-size %s",
			v.maxInflightRequestBytes.String(), v.maxRequestSize.String())
	}
	cfg.MaxInflightRequestBytes = int64(v.maxInflightRequestBytes)
	if v.maxConnections < 1 || v.maxConnectionsPerIP < 1 {
		return s, usagef("--max-connections %d, --max-connections-per-ip %d: want at least 1", v.maxConnections, v.maxConnectionsPerIP)
	}
	cfg.MaxConnections, cfg.MaxConnectionsPerIP = v.maxConnections, v.maxConnectionsPerIP
	if v.connectionsMaxIdle <= 0 || v.requestReadTimeout <= 0 {
		return s, usagef("--connections-max-idle %v, --request-read-timeout %v: want more than 0", v.connectionsMaxIdle, v.requestReadTimeout)
	}
	cfg.ConnectionsMaxIdle, cfg.RequestReadTimeout = v.connectionsMaxIdle, v.requestReadTimeout
	if v.tailCacheBytes < 1 {
		return s, usagef("--tail-cache-bytes %s: want more than 0", v.tailCacheBytes.String())
	}
	cfg.TailCacheBytes = int64(v.tailCacheBytes)
	for _, c := range []struct {
		name string
		val  byteSize
		dst  *int64
	}{
		{"upload-bytes", v.uploadBytes, &cfg.UploadBytes},
		{"wal-max-pending-bytes", v.walMaxPendingBytes, &cfg.WALMaxPendingBytes},
		{"block-cache-bytes", v.blockCacheBytes, &cfg.BlockCacheBytes},
	} {
		if c.val < 1 {
			return s, usagef("--%s %s: want more than 0", c.name, c.val.String())
		}
		*c.dst = int64(c.val)
	}
	if v.uploadAge <= 0 {
		return s, usagef("--upload-age %s: want a positive duration", v.uploadAge)
	}
	cfg.UploadAge = v.uploadAge
	for _, d := range []struct {
		name string
		val  time.Duration
		dst  *time.Duration
	}{
		{"compaction-interval", v.compactionInterval, &cfg.CompactionInterval},
		{"retention-check-interval", v.retentionCheckInterval, &cfg.RetentionCheckInterval},
		{"object-grace", v.objectGrace, &cfg.ObjectGrace},
		{"orphan-sweep-interval", v.orphanSweepInterval, &cfg.OrphanSweepInterval},
	} {
		if d.val <= 0 {
			return s, usagef("--%s %s: want a positive duration", d.name, d.val)
		}
		*d.dst = d.val
	}
	if err := v.groupConfig(&cfg); err != nil {
		return s, err
	}
	cfg.Authorizer, cfg.SuperUsers = v.authorizer, broker.ParseSuperUsers(v.superUsers)
	if err := v.security.apply(&cfg); err != nil {
		return s, err
	}
	s.broker = cfg
	return s, nil
}

// groupConfig checks the group coordinator flags and sets cfg.Groups.
func (v *flagValues) groupConfig(cfg *broker.Config) error {
	g := group.DefaultConfig()
	g.MinSessionTimeout, g.MaxSessionTimeout = v.groupMinSession, v.groupMaxSession
	g.ConsumerSessionTimeout, g.ConsumerHeartbeatInterval = v.groupConsumerSession, v.groupConsumerHeartbeat
	g.InitialRebalanceDelay = v.groupInitialDelay
	if err := g.Validate(); err != nil {
		return usagef("group flags: %v", err)
	}
	if g.InitialRebalanceDelay == 0 {
		g.InitialRebalanceDelay = -1 // broker.Config: negative means no delay, zero the default
	}
	cfg.Groups = g
	return nil
}

func knownLevel(s string) bool {
	switch strings.ToLower(s) {
	case "debug", "info", "warn", "error":
		return true
	}
	return false
}

// objectStoreConfig checks the object-store URL and fills in credentials:
// the config file's keys first, else AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY.
func (v *flagValues) objectStoreConfig(cfg *broker.Config, fileOnly map[string]string, env func(string) string) error {
	url := v.objectStore // "" is the broker's default, file://<data-dir>/objects
	switch {
	case url == "":
	case strings.HasPrefix(url, "file://"):
		if dir := strings.TrimPrefix(url, "file://"); dir == "" || strings.ContainsAny(dir, "?#\x00") {
			return usagef("--object-store %q: want file://DIR", url)
		}
	case strings.HasPrefix(url, "s3://"):
		if _, err := s3stream.ParseS3URL(url); err != nil {
			return usagef("--object-store: %v", err)
		}
	default:
		return usagef("--object-store %q: want file://DIR or s3://BUCKET?endpoint=HOST:PORT&...", url)
	}
	opts := s3stream.DefaultOptions()
	opts.AccessKey, opts.SecretKey = fileOnly["s3-access-key"], fileOnly["s3-secret-key"]
	if opts.AccessKey == "" && opts.SecretKey == "" {
		opts.AccessKey, opts.SecretKey = env("AWS_ACCESS_KEY_ID"), env("AWS_SECRET_ACCESS_KEY")
	}
	if (opts.AccessKey == "") != (opts.SecretKey == "") {
		return usagef("s3 credentials: set both the access key and the secret key, or neither")
	}
	cfg.ObjectStore, cfg.ObjectStoreOptions = url, opts
	return nil
}

// checkHostPort accepts HOST:PORT with a numeric port 0..65535 (port 0
// picks a free port); HOST may be empty (all interfaces).
func checkHostPort(a string) error {
	host, port, err := net.SplitHostPort(a)
	if err != nil {
		return errors.New("want HOST:PORT")
	}
	if strings.ContainsAny(host, " /") {
		return fmt.Errorf("bad host %q", host)
	}
	p, err := strconv.Atoi(port)
	if err != nil || p < 0 || p > 65535 {
		return fmt.Errorf("bad port %q", port)
	}
	return nil
}

// parsePeers parses ID@HOST:PORT,...: every member of the cluster with its
// cluster address, this node included (at the address its --cluster-listen
// binds); every broker of a cluster gets the same list. At most
// broker.MaxClusterSize members; more join later (--join).
func parsePeers(s string) ([]raftgroup.Peer, error) {
	if strings.TrimSpace(s) == "" {
		return nil, nil
	}
	var peers []raftgroup.Peer
	for p := range strings.SplitSeq(s, ",") {
		p = strings.TrimSpace(p)
		id, addr, ok := strings.Cut(p, "@")
		if !ok {
			return nil, fmt.Errorf("peer %q: want ID@HOST:PORT", p)
		}
		n, err := strconv.ParseInt(id, 10, 32)
		if err != nil || n < 0 {
			return nil, fmt.Errorf("peer %q: bad node id %q", p, id)
		}
		peers = append(peers, raftgroup.Peer{ID: strconv.FormatInt(n, 10), Address: addr})
	}
	// broker.Config.Validate checks the list as a whole: this node listed
	// and matching --cluster-listen, unique ids, addresses, cluster size.
	return peers, nil
}

// listKeys are the config-file keys whose value may be a YAML list (joined
// with commas).
var listKeys = map[string]bool{"peers": true, "listeners": true, "advertised-listeners": true,
	"listener-security-protocol-map": true, "sasl-enabled-mechanisms": true}

// securityFlags are the listener, TLS and SASL flags.
type securityFlags struct {
	listeners, protocolMap, advertised    string
	tlsCert, tlsKey, tlsCA, tlsClientAuth string
	clusterTLS                            bool
	saslMechanisms                        string
	reauthMs                              int64
	set                                   map[string]bool // flags given on the command line or in the file
}

func (f *securityFlags) register(fs *flag.FlagSet) {
	fs.StringVar(&f.listeners, "listeners", "",
		"Kafka listeners `NAME://HOST:PORT,...` (default: --listen as the one PLAINTEXT listener)")
	fs.StringVar(&f.protocolMap, "listener-security-protocol-map", broker.DefaultProtocolMap,
		"security protocol of each listener name, `NAME:PROTOCOL,...` (PLAINTEXT, SSL, SASL_PLAINTEXT, SASL_SSL)")
	fs.StringVar(&f.advertised, "advertised-listeners", "",
		"address given to the clients of each listener, `NAME://HOST:PORT,...` (default: the bound address)")
	fs.StringVar(&f.tlsCert, "tls-cert-file", "", "PEM certificate (chain) `FILE` of the SSL and SASL_SSL listeners")
	fs.StringVar(&f.tlsKey, "tls-key-file", "", "PEM private key `FILE` of the certificate")
	fs.StringVar(&f.tlsCA, "tls-ca-file", "", "PEM `FILE` of the CAs of client certificates (and of peers with --cluster-tls)")
	fs.StringVar(&f.tlsClientAuth, "tls-client-auth", "none", "client certificates: `MODE` none, requested or required")
	fs.BoolVar(&f.clusterTLS, "cluster-tls", false, "mutual TLS on the cluster listener with the --tls-* certificate and CA")
	fs.StringVar(&f.saslMechanisms, "sasl-enabled-mechanisms", "PLAIN,SCRAM-SHA-256,SCRAM-SHA-512",
		"SASL `MECHANISMS` of the SASL listeners")
	fs.Int64Var(&f.reauthMs, "connections-max-reauth-ms", 0,
		"SASL session lifetime in `MS` after which a connection must re-authenticate (0: never)")
}

// given records a flag set on the command line or in the config file.
func (f *securityFlags) given(name string) {
	if f.set == nil {
		f.set = map[string]bool{}
	}
	f.set[name] = true
}

// apply checks the flags and sets the broker's listeners, TLS and SASL
// settings. With --listeners, an explicit --listen must name one of them
// and --advertise is refused (--advertised-listeners replaces it).
func (f *securityFlags) apply(cfg *broker.Config) error {
	if f.listeners == "" {
		if f.advertised != "" {
			return usagef("--advertised-listeners needs --listeners")
		}
	} else {
		ls, err := broker.ParseListeners(f.listeners, f.protocolMap, f.advertised)
		if err != nil {
			return usagef("--%v", err)
		}
		if f.set["advertise"] {
			return usagef("--advertise: with --listeners, use --advertised-listeners")
		}
		if f.set["listen"] && !slices.ContainsFunc(ls, func(l broker.Listener) bool { return l.Listen == cfg.Listen }) {
			return usagef("--listen %s: not one of --listeners (give --listeners alone)", cfg.Listen)
		}
		cfg.Listeners = ls
	}
	switch broker.ClientAuth(f.tlsClientAuth) {
	case broker.ClientAuthNone, broker.ClientAuthRequested, broker.ClientAuthRequired:
	default:
		return usagef("--tls-client-auth %q: want none, requested or required", f.tlsClientAuth)
	}
	cfg.TLS = broker.TLSConfig{CertFile: f.tlsCert, KeyFile: f.tlsKey, CAFile: f.tlsCA, ClientAuth: broker.ClientAuth(f.tlsClientAuth)}
	cfg.ClusterTLS = f.clusterTLS
	cfg.SASLMechanisms = splitComma(f.saslMechanisms)
	if len(cfg.SASLMechanisms) == 0 {
		return usagef("--sasl-enabled-mechanisms: empty")
	}
	if f.reauthMs < 0 {
		return usagef("--connections-max-reauth-ms %d: want 0 or more", f.reauthMs)
	}
	cfg.ConnectionsMaxReauth = time.Duration(f.reauthMs) * time.Millisecond
	return nil
}

// splitComma splits a comma-separated list, dropping spaces and empty items.
func splitComma(s string) []string {
	var out []string
	for p := range strings.SplitSeq(s, ",") {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, p)
		}
	}
	return out
}
