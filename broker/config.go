package broker

import (
	"fmt"
	"log/slog"
	"net"
	"strconv"
	"time"

	"github.com/shoal-io/shoal/broker/group"
	"github.com/shoal-io/shoal/internal/raftgroup"
	"github.com/shoal-io/shoal/protocol"
	"github.com/shoal-io/shoal/s3stream"
)

// Config configures a Broker. DefaultConfig returns the embedded default;
// Validate checks a config before Start uses it.
type Config struct {
	// NodeID is the broker id, unique in the cluster.
	NodeID int32
	// DataDir holds the WAL groups' (DataDir/wal-<i>) and the metadata
	// group's (DataDir/metadata) Raft state.
	DataDir string

	// Listen is the Kafka listener, host:port (port 0 picks a free port).
	Listen string
	// Advertise is the host:port given to clients; "" means Listen's actual
	// address once the listener is bound.
	Advertise string
	// Listeners are the Kafka listeners, the first being the primary one
	// (Addr). Empty means one PLAINTEXT listener named PLAINTEXT on Listen,
	// advertised as Advertise; when set, Listen and Advertise are ignored.
	Listeners []Listener
	// TLS holds the certificate, key and client CA of the SSL and SASL_SSL
	// listeners and of the cluster listener with ClusterTLS (tls.go).
	TLS TLSConfig
	// ClusterTLS makes the cluster listener mutual TLS with TLS's
	// certificate and CA.
	ClusterTLS bool
	// SASLMechanisms are the mechanisms SASL listeners accept (PLAIN,
	// SCRAM-SHA-256, SCRAM-SHA-512); nil means all three.
	SASLMechanisms []string
	// ConnectionsMaxReauth is KIP-368's connections.max.reauth.ms: a SASL
	// session lasts this long, then the connection must re-authenticate
	// before any other request; 0 means sessions never expire.
	ConnectionsMaxReauth time.Duration

	// ClusterListen is the Raft and internal-traffic listener, host:port.
	ClusterListen string
	// Peers are the cluster members, this node included, with their
	// cluster-listener addresses; every broker of a cluster gets the same
	// list. Empty means this node alone. At most MaxClusterSize brokers;
	// NonVoter is ignored (the first layout decides, see cluster.go). Only
	// a new cluster's first start reads it: the layout then lives in the
	// metadata.
	Peers []raftgroup.Peer
	// Join starts a broker that is new to an existing cluster: it
	// bootstraps nothing and waits until an operator admits it (shoalctl
	// cluster add-broker, with this broker's id and cluster address); then
	// it receives the metadata and the WAL groups it is assigned.
	Join bool
	// LeaderBalanceDelay is how long a broker leads a WAL group before it
	// hands the group back to the group's preferred leader (when that
	// broker answers); 0 means 10 s, negative never.
	LeaderBalanceDelay time.Duration

	// ObjectStore is the object-store URL (file://DIR or s3://BUCKET?...);
	// "" means file://<DataDir>/objects.
	ObjectStore string
	// ObjectStoreOptions carries the S3 credentials and bucket creation flag.
	ObjectStoreOptions s3stream.Options

	// MetricsListen serves /healthz (process up) and /readyz (serving);
	// "" disables it.
	MetricsListen string

	// AutoCreateTopics lets Metadata requests create unknown topics (off by
	// default, unlike Kafka).
	AutoCreateTopics bool
	// DefaultPartitions is the partition count of auto-created topics and of
	// CreateTopics requests that ask for the default (-1).
	DefaultPartitions int32
	// DefaultReplicationFactor is the replication factor used for -1.
	DefaultReplicationFactor int16

	// MaxRequestSize caps a request frame (Kafka's socket.request.max.bytes).
	MaxRequestSize int32
	// MaxInflightRequestBytes bounds the memory of the request frames being
	// read or handled, over all connections (Kafka's
	// queued.max.request.bytes); at least MaxRequestSize. 0: 256 MiB.
	MaxInflightRequestBytes int64
	// MaxConnections and MaxConnectionsPerIP bound the open Kafka
	// connections, in all and from one address (0: 16384 and 4096).
	MaxConnections, MaxConnectionsPerIP int
	// ConnectionsMaxIdle closes a connection that sends nothing for this
	// long (0: 10 minutes; negative: never).
	ConnectionsMaxIdle time.Duration
	// RequestReadTimeout bounds the arrival of a frame's body once its size
	// has arrived (0: 30 s; negative: no bound).
	RequestReadTimeout time.Duration
	// TailCacheBytes bounds the WAL's in-memory tail cache (0: the WAL default).
	TailCacheBytes int64

	// UploadBytes: a WAL group uploads an object once this much data waits.
	UploadBytes int64
	// UploadAge: ... or once the oldest waiting data is this old.
	UploadAge time.Duration
	// WALMaxPendingBytes bounds the data waiting for upload per WAL group;
	// beyond it produce gets a retriable KAFKA_STORAGE_ERROR until object
	// storage catches up.
	WALMaxPendingBytes int64
	// WALFsync makes every WAL write fsync before it counts towards the
	// quorum (DefaultConfig: true). Off, an acknowledged write is in the
	// page cache of a quorum of brokers, Kafka's own default: it survives
	// any process crash, not a simultaneous power loss of a quorum.
	WALFsync bool
	// BlockCacheBytes bounds the cache of object blocks read for fetches.
	BlockCacheBytes int64

	// CompactionInterval is how often the metadata leader compacts objects.
	CompactionInterval time.Duration
	// RetentionCheckInterval is how often the metadata leader applies the
	// topics' retention.ms and retention.bytes.
	RetentionCheckInterval time.Duration
	// ObjectGrace is how long an object that metadata no longer refers to
	// stays in storage for in-flight readers, and how old an unreferenced
	// object must be before the orphan sweep deletes it.
	ObjectGrace time.Duration
	// OrphanSweepInterval is how often the metadata leader LISTs the bucket
	// for objects no metadata refers to (a crash between PUT and commit).
	OrphanSweepInterval time.Duration

	// Groups configures the group coordinator; zero fields take Kafka's
	// defaults (group.DefaultConfig).
	Groups group.Config

	// Authorizer is "none" (or ""): every request is allowed, or "acl":
	// requests are checked against the ACLs in metadata, denied unless
	// allowed (authz.go).
	Authorizer string
	// SuperUsers are principals ("User:admin") that every check allows.
	SuperUsers []string

	// Logger receives the broker's logs; nil means slog.Default().
	Logger *slog.Logger
}

// DefaultConfig returns the embedded default: one broker with node id 1,
// data under ./data, Kafka on 127.0.0.1:9092, cluster traffic on
// 127.0.0.1:9093, health endpoints on 127.0.0.1:9094, objects under
// ./data/objects.
func DefaultConfig() Config {
	return Config{
		NodeID:                   1,
		DataDir:                  "./data",
		Listen:                   "127.0.0.1:9092",
		ClusterListen:            "127.0.0.1:9093",
		MetricsListen:            "127.0.0.1:9094",
		ObjectStoreOptions:       s3stream.DefaultOptions(),
		DefaultPartitions:        1,
		DefaultReplicationFactor: 1,
		MaxRequestSize:           protocol.DefaultMaxRequestSize,
		TailCacheBytes:           256 << 20,
		UploadBytes:              64 << 20,
		UploadAge:                10 * time.Second,
		WALMaxPendingBytes:       2 << 30,
		WALFsync:                 true,
		BlockCacheBytes:          256 << 20,
		CompactionInterval:       time.Minute,
		RetentionCheckInterval:   5 * time.Minute,
		ObjectGrace:              5 * time.Minute,
		OrphanSweepInterval:      10 * time.Minute,
	}
}

// Validate checks the config and returns a one-line error naming the first
// bad field. Zero values of optional fields are accepted.
func (c *Config) Validate() error {
	switch {
	case c.NodeID < 0:
		return fmt.Errorf("broker config: node-id %d: must be 0 or more", c.NodeID)
	case c.DataDir == "":
		return fmt.Errorf("broker config: data-dir: must not be empty")
	case c.DefaultPartitions < 0:
		return fmt.Errorf("broker config: default partitions %d: must be 1 or more", c.DefaultPartitions)
	case c.DefaultReplicationFactor < 0:
		return fmt.Errorf("broker config: default replication factor %d: must be 1 or more", c.DefaultReplicationFactor)
	case c.MaxRequestSize < 0:
		return fmt.Errorf("broker config: max request size %d: must be positive", c.MaxRequestSize)
	case c.MaxInflightRequestBytes < 0 || (c.MaxInflightRequestBytes > 0 && c.MaxInflightRequestBytes < int64(c.MaxRequestSize)):
		return fmt.Errorf("broker config: max in-flight request bytes %d: must be at least the max request size %d",
			c.MaxInflightRequestBytes, c.MaxRequestSize)
	case c.MaxConnections < 0 || c.MaxConnectionsPerIP < 0:
		return fmt.Errorf("broker config: max connections %d, per ip %d: must not be negative", c.MaxConnections, c.MaxConnectionsPerIP)
	case c.TailCacheBytes < 0:
		return fmt.Errorf("broker config: tail cache bytes %d: must not be negative", c.TailCacheBytes)
	case c.CompactionInterval < 0 || c.RetentionCheckInterval < 0 || c.ObjectGrace < 0 || c.OrphanSweepInterval < 0:
		return fmt.Errorf("broker config: compaction, retention, grace and sweep durations must not be negative")
	}
	if len(c.Listeners) == 0 {
		if err := checkHostPort("listen", c.Listen, true); err != nil {
			return err
		}
	}
	if err := checkHostPort("cluster-listen", c.ClusterListen, true); err != nil {
		return err
	}
	if c.Advertise != "" && len(c.Listeners) == 0 {
		if err := checkHostPort("advertise", c.Advertise, false); err != nil {
			return err
		}
	}
	if err := c.checkListeners(); err != nil {
		return err
	}
	if err := c.checkAuthorizer(); err != nil {
		return err
	}
	if c.MetricsListen != "" {
		if err := checkHostPort("metrics-listen", c.MetricsListen, true); err != nil {
			return err
		}
	}
	return c.checkPeers()
}

// checkHostPort checks a host:port value; port 0 is allowed only for
// listeners.
func checkHostPort(field, v string, listener bool) error {
	host, port, err := net.SplitHostPort(v)
	if err != nil {
		return fmt.Errorf("broker config: %s %q: want HOST:PORT", field, v)
	}
	n, err := strconv.Atoi(port)
	min := 1
	if listener {
		min = 0
	}
	if err != nil || n < min || n > 65535 {
		return fmt.Errorf("broker config: %s %q: bad port %q", field, v, port)
	}
	if !listener && host == "" {
		return fmt.Errorf("broker config: %s %q: empty host", field, v)
	}
	return nil
}

// withDefaults fills the zero values that have defaults.
func (c Config) withDefaults() Config {
	d := DefaultConfig()
	if c.DefaultPartitions == 0 {
		c.DefaultPartitions = d.DefaultPartitions
	}
	if c.DefaultReplicationFactor == 0 {
		c.DefaultReplicationFactor = d.DefaultReplicationFactor
	}
	if c.MaxInflightRequestBytes == 0 {
		c.MaxInflightRequestBytes = max(defaultMaxInflightRequestBytes, int64(c.MaxRequestSize))
	}
	if c.MaxConnections == 0 {
		c.MaxConnections = defaultMaxConnections
	}
	if c.MaxConnectionsPerIP == 0 {
		c.MaxConnectionsPerIP = defaultMaxConnectionsPerIP
	}
	if c.ConnectionsMaxIdle == 0 {
		c.ConnectionsMaxIdle = defaultConnectionsMaxIdle
	}
	if c.RequestReadTimeout == 0 {
		c.RequestReadTimeout = defaultRequestReadTimeout
	}
	if c.MaxRequestSize == 0 {
		c.MaxRequestSize = d.MaxRequestSize
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	return c
}
