package broker

import (
	"context"
	"errors"
	"net"

	"github.com/twmb/franz-go/pkg/kerr"

	"github.com/shoal-io/shoal/broker/group"
	"github.com/shoal-io/shoal/metadata"
)

// The group coordinator: the broker coordinates every group (a single
// node; issue [D] routes each group to one coordinator). Its state is in
// memory; committed offsets live in the metadata store.

// startGroups starts the group coordinator; Config.Groups' zero fields
// take Kafka's defaults, a negative InitialRebalanceDelay means none.
func (b *Broker) startGroups() error {
	cfg := groupConfig(b.cfg.Groups)
	cfg.Topics = metaTopics{b.meta}
	cfg.Logger = b.logger
	c, err := group.New(cfg)
	if err != nil {
		return err
	}
	b.groups = c
	return nil
}

// groupConfig fills the zero fields of c with the defaults.
func groupConfig(c group.Config) group.Config {
	def := group.DefaultConfig()
	if c.MinSessionTimeout == 0 {
		c.MinSessionTimeout = def.MinSessionTimeout
	}
	if c.MaxSessionTimeout == 0 {
		c.MaxSessionTimeout = def.MaxSessionTimeout
	}
	switch {
	case c.InitialRebalanceDelay == 0:
		c.InitialRebalanceDelay = def.InitialRebalanceDelay
	case c.InitialRebalanceDelay < 0:
		c.InitialRebalanceDelay = 0
	}
	if c.ConsumerSessionTimeout == 0 {
		c.ConsumerSessionTimeout = def.ConsumerSessionTimeout
	}
	if c.ConsumerHeartbeatInterval == 0 {
		c.ConsumerHeartbeatInterval = def.ConsumerHeartbeatInterval
	}
	if c.DefaultAssignor == "" {
		c.DefaultAssignor = def.DefaultAssignor
	}
	return c
}

// closeGroups answers waiting joins and syncs and stops the coordinator.
func (b *Broker) closeGroups() error {
	if b.groups == nil {
		return nil
	}
	return b.groups.Close()
}

// metaTopics shows the metadata's topics to consumer groups' assignors.
type metaTopics struct{ s *metadata.Store }

// Topics lists every topic with its id and partition count.
func (m metaTopics) Topics() map[string]group.TopicInfo {
	im := m.s.Image()
	out := make(map[string]group.TopicInfo, len(im.Topics))
	for name, t := range im.Topics {
		out[name] = group.TopicInfo{ID: t.ID, Partitions: int32(len(t.Partitions))}
	}
	return out
}

// Changed is closed on the next metadata change.
func (m metaTopics) Changed() <-chan struct{} { return m.s.Changed() }

// groupErrCode maps a group or offset-store error: a metadata group
// without leader (or shutting down) is COORDINATOR_NOT_AVAILABLE, which
// clients retry.
func groupErrCode(err error) int16 {
	if errors.Is(err, metadata.ErrNotLeader) || errors.Is(err, metadata.ErrClosed) {
		return kerr.CoordinatorNotAvailable.Code
	}
	return errCode(err)
}

// clientHost is the client's address as Kafka reports it ("/127.0.0.1").
func (r *request) clientHost() string {
	host, _, err := net.SplitHostPort(r.conn.nc.RemoteAddr().String())
	if err != nil {
		return "/" + r.conn.nc.RemoteAddr().String()
	}
	return "/" + host
}

// clientID is the request header's client id ("" when null).
func (r *request) clientID() string {
	if r.hdr.ClientID == nil {
		return ""
	}
	return *r.hdr.ClientID
}

// waitCtx is ctx, also cancelled when the broker starts draining, for
// requests that wait on other members (JoinGroup, SyncGroup).
func (r *request) waitCtx(ctx context.Context) (context.Context, context.CancelFunc) {
	ctx, cancel := context.WithCancel(ctx)
	go func() {
		select {
		case <-r.draining():
			cancel()
		case <-ctx.Done():
		}
	}()
	return ctx, cancel
}
