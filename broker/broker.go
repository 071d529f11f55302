package broker

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/shoal-io/shoal/broker/group"
	"github.com/shoal-io/shoal/internal/raftgroup"
	"github.com/shoal-io/shoal/metadata"
	"github.com/shoal-io/shoal/s3stream"
)

// drainTimeout bounds how long Close waits for in-flight requests before it
// closes the remaining connections.
const drainTimeout = 5 * time.Second

// Broker is a running Kafka server: its listeners, its connections, and the
// WAL group, metadata store and object store it serves from.
type Broker struct {
	cfg    Config
	logger *slog.Logger

	ln        net.Listener // every Kafka listener (a multiListener, listeners.go)
	listeners []*listener  // in configuration order; the first is the primary one
	tls       *tlsStore    // nil without TLS (tls.go)
	mux       *raftgroup.Mux
	meta      *metadata.Store
	local     localGroups          // the WAL groups this broker replicates (walgroups.go)
	store     s3stream.ObjectStore // as opened; closed last
	objects   *s3stream.Metered    // the store with every request counted by reason
	reader    *s3stream.Reader
	metrics   *metricsServer
	pids      *producerIDs
	groups    *group.Coordinator // the group coordinator (groups.go)

	advHost string
	advPort int32
	ready   atomic.Bool

	connLimits *connLimits // open connections, in all and per address (limits.go)
	budget     *byteBudget // memory of the request frames in flight (limits.go)

	quotas *quotaManager // client quota sensors and throttles (quotas.go)

	mu struct {
		sync.Mutex
		conns  map[*conn]struct{}
		closed bool
	}
	closeOnce sync.Once
	closeErr  error
	wg        sync.WaitGroup // the accept loop and every connection

	bg       sync.WaitGroup // background storage tasks
	bgCancel context.CancelFunc

	reassignDone chan struct{}  // closed when the reassigner returns (reassign.go)
	follower     sync.WaitGroup // followLayout
	followCancel context.CancelFunc
	closing      atomic.Bool // Close has begun: no leadership is taken on
}

// Start opens everything the broker needs (data directory, listeners,
// object store, metadata and WAL groups), registers the broker in the
// metadata and starts serving. Errors are one line naming what failed, e.g.
// "listen 127.0.0.1:9092: address already in use".
func Start(ctx context.Context, cfg Config) (*Broker, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	cfg = cfg.withDefaults()
	b := &Broker{cfg: cfg, logger: cfg.Logger.With("node", cfg.NodeID),
		connLimits: newConnLimits(cfg.MaxConnections, cfg.MaxConnectionsPerIP),
		budget:     newByteBudget(cfg.MaxInflightRequestBytes, int64(cfg.MaxRequestSize))}
	b.mu.conns = make(map[*conn]struct{})
	b.quotas = newQuotaManager(func() *metadata.Image { return b.meta.Image() }, time.Now)
	if err := b.open(ctx); err != nil {
		b.closeParts()
		return nil, err
	}
	b.startBackground()
	b.startFollower()
	b.startReassigner()
	b.wg.Add(1)
	go b.acceptLoop()
	b.ready.Store(true)
	b.logger.Info("broker serving", "kafka", b.ln.Addr().String(),
		"advertise", net.JoinHostPort(b.advHost, strconv.Itoa(int(b.advPort))),
		"cluster", b.mux.Addr().String(), "cluster_id", b.meta.Image().ClusterID, "brokers", len(b.meta.Image().Members))
	return b, nil
}

// open opens the parts in order; on error the caller closes what opened.
func (b *Broker) open(ctx context.Context) error {
	cfg := b.cfg
	if err := checkDataDir(cfg.DataDir); err != nil {
		return err
	}
	if err := b.openTLS(); err != nil {
		return err
	}
	ls, err := openListeners(cfg.listeners())
	if err != nil {
		return err
	}
	b.listeners, b.ln = ls, newMultiListener(ls, b.logger)
	b.advHost, b.advPort = ls[0].advHost, ls[0].advPort
	if cfg.MetricsListen != "" {
		if b.metrics, err = startMetrics(cfg.MetricsListen, b); err != nil {
			return err
		}
	}
	if b.mux, err = raftgroup.Listen(cfg.ClusterListen, b.logger, b.clusterTLS()...); err != nil {
		return fmt.Errorf("cluster-listen %s: %w", cfg.ClusterListen, listenErr(err))
	}
	if err := b.openObjectStore(ctx); err != nil {
		return err
	}
	if cfg.Join {
		b.logger.Info("joining a cluster: waiting to be admitted (shoalctl cluster add-broker)",
			"node_id", cfg.NodeID, "cluster_address", b.mux.Addr().String())
	}
	b.meta, err = metadata.Open(ctx, metadata.Config{
		Dir: filepath.Join(cfg.DataDir, "metadata"), NodeID: b.selfID(), Mux: b.mux,
		Peers: newBootstrapLayout(cfg.NodeID, b.mux.Addr().String(), cfg.Peers).meta, Join: cfg.Join,
		Logger: cfg.Logger, DefaultPartitions: cfg.DefaultPartitions,
		DefaultReplicationFactor: cfg.DefaultReplicationFactor,
	})
	if err != nil {
		return fmt.Errorf("open metadata: %w", err)
	}
	if err := b.initLayout(ctx); err != nil {
		return err
	}
	// Every broker opens its groups in group order (a group's Open waits
	// for its leader, so the brokers of a new cluster progress together).
	if err := b.applyLayout(ctx); err != nil {
		return err
	}
	b.pids = newProducerIDs(b.meta)
	if err := b.startGroups(); err != nil {
		return err
	}
	err = b.meta.RegisterBroker(ctx, metadata.Broker{
		ID: cfg.NodeID, Host: b.advHost, Port: b.advPort, ClusterAddr: b.mux.Addr().String(),
		Listeners: b.endpoints(),
	})
	if err != nil {
		return fmt.Errorf("register broker %d: %w", cfg.NodeID, err)
	}
	return nil
}

func (b *Broker) openObjectStore(ctx context.Context) error {
	url := b.cfg.ObjectStore
	if url == "" {
		abs, err := filepath.Abs(filepath.Join(b.cfg.DataDir, "objects"))
		if err != nil {
			return fmt.Errorf("object-store: %w", err)
		}
		url = "file://" + abs
	}
	store, err := s3stream.Open(ctx, url, b.cfg.ObjectStoreOptions)
	if err != nil {
		return fmt.Errorf("object-store: %w", err)
	}
	b.store = store
	b.objects = s3stream.NewMetered(store)
	b.reader = s3stream.NewReader(b.objects, s3stream.ReaderConfig{CacheBytes: b.cfg.BlockCacheBytes})
	return nil
}

// checkDataDir creates the data directory and checks that it is writable.
func checkDataDir(dir string) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("data-dir %s: %w", dir, pathErr(err))
	}
	f, err := os.CreateTemp(dir, ".write-check-*")
	if err != nil {
		return fmt.Errorf("data-dir %s: not writable: %w", dir, pathErr(err))
	}
	name := f.Name()
	f.Close()
	os.Remove(name)
	return nil
}

// pathErr strips the path from an *os.PathError (the caller names it).
func pathErr(err error) error {
	var pe *os.PathError
	if errors.As(err, &pe) {
		return pe.Err
	}
	return err
}

// listen opens a TCP listener with a short error: "listen ADDR: REASON".
func listen(field, addr string) (net.Listener, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("%s %s: %w", field, addr, listenErr(err))
	}
	return ln, nil
}

// listenErr reduces a listen error to its cause ("address already in use").
func listenErr(err error) error {
	var errno syscall.Errno
	if errors.As(err, &errno) {
		return errno
	}
	var dns *net.DNSError
	if errors.As(err, &dns) {
		return dns
	}
	var addrErr *net.AddrError
	if errors.As(err, &addrErr) {
		return addrErr
	}
	return err
}

// Addr is the (first) Kafka listener's address.
func (b *Broker) Addr() net.Addr { return b.ln.Addr() }

// ClusterAddr is the cluster (Raft) listener's address.
func (b *Broker) ClusterAddr() net.Addr { return b.mux.Addr() }

// MetricsAddr is the health/metrics listener's address, nil when disabled.
func (b *Broker) MetricsAddr() net.Addr {
	if b.metrics == nil {
		return nil
	}
	return b.metrics.addr()
}

// acceptLoop accepts Kafka connections until the listener closes.
func (b *Broker) acceptLoop() {
	defer b.wg.Done()
	for {
		nc, err := b.ln.Accept()
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return
			}
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				continue
			}
			b.logger.Warn("kafka listener accept failed", "err", err)
			time.Sleep(50 * time.Millisecond)
			continue
		}
		releaseSlot, err := b.connLimits.admit(nc.RemoteAddr())
		if err != nil {
			b.logger.Debug("connection refused", "remote", nc.RemoteAddr().String(), "err", err)
			nc.Close()
			continue
		}
		c := newConn(b, nc)
		b.mu.Lock()
		if b.mu.closed {
			b.mu.Unlock()
			releaseSlot()
			nc.Close()
			return
		}
		b.mu.conns[c] = struct{}{}
		b.wg.Add(1)
		b.mu.Unlock()
		go func() {
			defer b.wg.Done()
			defer releaseSlot()
			c.serve()
			b.mu.Lock()
			delete(b.mu.conns, c)
			b.mu.Unlock()
		}()
	}
}

// Close shuts the broker down gracefully. In a cluster it first hands
// every Raft group it leads (WAL groups and the metadata group) to another
// voter, waiting up to a few seconds, and leaves its WAL groups, so that
// clients move on with retriable errors only (see leaveGroups). Then it
// stops accepting connections, lets in-flight requests finish (long polls
// answer at once) for up to a few seconds, closes the connections and then
// the WAL, the metadata store and the cluster listener. A single node has
// nothing to hand over.
func (b *Broker) Close() error {
	b.closeOnce.Do(func() {
		b.closing.Store(true)
		b.ready.Store(false)
		if len(b.meta.Image().Members) > 1 {
			b.leaveGroups()
		}
		b.mu.Lock()
		b.mu.closed = true
		conns := make([]*conn, 0, len(b.mu.conns))
		for c := range b.mu.conns {
			conns = append(conns, c)
		}
		b.mu.Unlock()
		err := b.ln.Close()
		for _, c := range conns {
			c.drain()
		}
		done := make(chan struct{})
		go func() { b.wg.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(drainTimeout):
			b.logger.Warn("connections did not drain in time; closing them")
			for _, c := range conns {
				c.abort()
			}
			<-done
		}
		b.closeErr = errors.Join(err, b.closeParts())
	})
	return b.closeErr
}

// closeParts closes everything open opened, in reverse order.
func (b *Broker) closeParts() error {
	var errs []error
	if b.metrics != nil {
		errs = append(errs, b.metrics.close())
	}
	if b.ln != nil && !b.isClosed() {
		b.ln.Close()
	}
	b.stopFollower()
	b.stopReassigner()
	b.stopBackground()
	if b.reader != nil {
		errs = append(errs, b.reader.Close())
	}
	errs = append(errs, b.closeGroups())
	errs = append(errs, b.closeLocalGroups())
	if b.meta != nil {
		errs = append(errs, b.meta.Close())
	}
	if b.mux != nil {
		errs = append(errs, b.mux.Close())
	}
	if c, ok := b.store.(io.Closer); ok {
		errs = append(errs, c.Close())
	}
	return errors.Join(errs...)
}

func (b *Broker) isClosed() bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.mu.closed
}

// nodeID parses a Raft node id back into a Kafka broker id (-1 if none).
func nodeID(id string) int32 {
	n, err := strconv.ParseInt(id, 10, 32)
	if err != nil {
		return -1
	}
	return int32(n)
}
