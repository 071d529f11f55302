package broker

import (
	"context"
	"fmt"
	"io"
	"net"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/shoal-io/shoal/internal/pkitest"
	"github.com/shoal-io/shoal/metadata"
)

// TestClusterFourBrokers: a cluster of more than 3 brokers, where no broker
// replicates every WAL group: every broker names the same leader for every
// partition (groups it does not replicate through the leaders' reports in
// the metadata), and a client writing through any of them loses nothing.
func TestClusterFourBrokers(t *testing.T) {
	c := startCluster(t, 4)
	for _, b := range c.running() {
		if n := len(b.localWALs()); n != 3 {
			t.Fatalf("broker %d replicates %d wal groups, want 3", b.cfg.NodeID, n)
		}
	}
	const topic, partitions = "four", 8
	createClusterTopic(t, c.running()[0], topic, partitions)
	eventually(t, 10*time.Second, func() error {
		var first []partitionView
		for _, b := range c.running() {
			view, err := metadataViewOf(t, b, topic, 4)
			if err != nil {
				return err
			}
			for _, p := range view {
				if p.leader < 0 || strings.Count(p.replicas, " ") != 2 {
					return fmt.Errorf("broker %d: partition %d leader %d replicas %v", b.cfg.NodeID, p.partition, p.leader, p.replicas)
				}
			}
			if first == nil {
				first = view
			} else if !slices.EqualFunc(first, view, func(a, b partitionView) bool { return a.leader == b.leader }) {
				return fmt.Errorf("brokers disagree: %v vs %v", first, view)
			}
		}
		return nil
	})
	log := newAckLog()
	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Second)
	produceLoop(ctx, clusterClient(t, c.seeds()[3:], kgo.RecordPartitioner(kgo.ManualPartitioner())), topic, partitions, log)
	cancel()
	if log.count() < 500 {
		t.Fatalf("%d records acknowledged", log.count())
	}
	verifyTopic(t, c.seeds()[:1], topic, partitions, log)
}

// TestClusterReplaceBroker: broker 2 of 3 crashes during writes; it is
// removed, and a new broker (4) started with Join is admitted. Broker 4
// becomes a voter of every group broker 2 was in and the preferred leader
// of the group broker 2 preferred; nothing acknowledged is lost.
func TestClusterReplaceBroker(t *testing.T) {
	objects := "file://" + t.TempDir()
	shared := func(cfg *Config) { cfg.ObjectStore = objects }
	c := startCluster(t, 3, shared)
	const topic, partitions = "replace", 6
	createClusterTopic(t, c.running()[0], topic, partitions)
	log := newAckLog()
	ctx, stop := context.WithCancel(t.Context())
	done := make(chan struct{})
	go func() {
		defer close(done)
		produceLoop(ctx, clusterClient(t, c.seeds(), kgo.RecordPartitioner(kgo.ManualPartitioner())), topic, partitions, log)
	}()
	eventually(t, 10*time.Second, func() error {
		if log.count() < 300 {
			return fmt.Errorf("%d acknowledged", log.count())
		}
		return nil
	})
	crash(c.brokers[1])
	c.brokers[1] = nil

	// The replacement waits inside Start until it is admitted.
	cfg := testConfig(t)
	shared(&cfg)
	cfg.NodeID, cfg.Join, cfg.LeaderBalanceDelay = 4, true, 300*time.Millisecond
	cfg.ClusterListen = freeAddrs(t, 1)[0]
	started := make(chan error, 1)
	var b4 *Broker
	go func() {
		sctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
		defer cancel()
		var err error
		b4, err = Start(sctx, cfg)
		started <- err
	}()
	admin := c.brokers[0]
	actx, cancel := context.WithTimeout(t.Context(), 20*time.Second)
	defer cancel()
	if err := admin.meta.RemoveMember(actx, 2); err != nil {
		t.Fatalf("remove broker 2: %v", err)
	}
	if err := admin.meta.AddMember(actx, metadata.Member{ID: 4, ClusterAddr: cfg.ClusterListen}, groupReplicas); err != nil {
		t.Fatalf("add broker 4: %v", err)
	}
	if err := <-started; err != nil {
		t.Fatalf("start broker 4: %v", err)
	}
	c.brokers = append(c.brokers, b4)

	// Every group's voters become {1, 3, 4}; broker 4 leads the group
	// broker 2 preferred (group 1) once the balancer hands it over.
	eventually(t, 20*time.Second, func() error {
		for _, b := range c.running() {
			for _, ws := range b.localWALs() {
				if !ws.g.IsLeader() {
					continue
				}
				if v := ws.voters(); !slices.Equal(sorted(v), []int32{1, 3, 4}) {
					return fmt.Errorf("wal group %d voters %v", ws.id, v)
				}
			}
			if servers, err := b.meta.Servers(); err == nil && b.meta.IsLeader() && len(servers) != 3 {
				return fmt.Errorf("metadata group has %d servers", len(servers))
			}
		}
		if ws := b4.localGroup(1); ws == nil || !ws.ready() {
			return fmt.Errorf("broker 4 does not lead wal group 1 yet")
		}
		return nil
	})
	mark := log.count()
	eventually(t, 10*time.Second, func() error {
		if log.count() < mark+300 {
			return fmt.Errorf("%d acknowledged since the replacement", log.count()-mark)
		}
		return nil
	})
	stop()
	<-done
	verifyTopic(t, []string{b4.Addr().String()}, topic, partitions, log)
	view, err := metadataView(t, b4, topic)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range view {
		if p.replicas != "[1 3 4]" || p.leader == 2 {
			t.Errorf("partition %d still names broker 2: %+v", p.partition, p)
		}
	}
}

func sorted(ids []int32) []int32 {
	out := slices.Clone(ids)
	slices.Sort(out)
	return out
}

// createClusterTopic creates a topic through b's Kafka listener.
func createClusterTopic(t *testing.T, b *Broker, topic string, partitions int32) {
	t.Helper()
	cl := clusterClient(t, []string{b.Addr().String()})
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	if resp, err := kadm.NewClient(cl).CreateTopic(ctx, partitions, -1, nil, topic); err != nil || resp.Err != nil {
		t.Fatalf("create topic %s: %v", topic, err)
	}
}

// TestClusterTLS: with --cluster-tls every Raft group and the metadata
// forwarding between brokers run over mutual TLS: a topic created through
// a follower of the metadata group (its write is forwarded to the leader)
// takes writes on every partition, and a peer without a certificate of the
// cluster's CA gets nothing from the cluster listener.
func TestClusterTLS(t *testing.T) {
	p := pkitest.New(t)
	certFile, keyFile := p.WriteServer(t, 200)
	c := startCluster(t, 3, func(cfg *Config) {
		cfg.ClusterTLS = true
		cfg.TLS = TLSConfig{CertFile: certFile, KeyFile: keyFile, CAFile: p.CAFile}
	})
	var follower *Broker
	for _, b := range c.running() {
		if !b.meta.IsLeader() {
			follower = b
		}
	}
	const topic, partitions = "tls", 3
	createClusterTopic(t, follower, topic, partitions)
	log := newAckLog()
	ctx, cancel := context.WithTimeout(t.Context(), time.Second)
	produceLoop(ctx, clusterClient(t, c.seeds(), kgo.RecordPartitioner(kgo.ManualPartitioner())), topic, partitions, log)
	cancel()
	if log.count() < 100 {
		t.Fatalf("%d records acknowledged", log.count())
	}
	verifyTopic(t, c.seeds(), topic, partitions, log)

	// A plain connection naming the metadata group gets no Raft traffic.
	nc, err := net.DialTimeout("tcp", follower.mux.Addr().String(), 2*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	nc.Write([]byte("not a tls client hello"))
	nc.SetReadDeadline(time.Now().Add(5 * time.Second))
	if n, err := io.ReadAll(nc); err != nil || len(n) > 64 {
		t.Fatalf("the cluster listener answered a plain connection with %d bytes (%v)", len(n), err)
	}
}
