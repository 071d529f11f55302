package group

import (
	"fmt"
	"log/slog"
	"time"
)

// Config configures a Coordinator. DefaultConfig returns Kafka's defaults.
type Config struct {
	// MinSessionTimeout and MaxSessionTimeout bound a classic member's
	// session timeout (group.min.session.timeout.ms,
	// group.max.session.timeout.ms).
	MinSessionTimeout, MaxSessionTimeout time.Duration
	// InitialRebalanceDelay is how long the first rebalance of an empty
	// group waits for more members (group.initial.rebalance.delay.ms); each
	// member joining in that window extends it, up to the rebalance timeout.
	InitialRebalanceDelay time.Duration

	// ConsumerSessionTimeout is a consumer (KIP-848) member's session
	// timeout (group.consumer.session.timeout.ms).
	ConsumerSessionTimeout time.Duration
	// ConsumerHeartbeatInterval is the heartbeat interval given to consumer
	// members (group.consumer.heartbeat.interval.ms).
	ConsumerHeartbeatInterval time.Duration
	// DefaultAssignor is the server assignor of consumer groups whose
	// members name none: "uniform" or "range".
	DefaultAssignor string

	// Topics is the topic view consumer groups assign from; nil means no
	// topics (classic groups need none).
	Topics TopicSource
	// Now is the clock; nil means time.Now. Tests of the state machine pass
	// a fake one.
	Now func() time.Time
	// Logger receives the coordinator's logs; nil means slog.Default().
	Logger *slog.Logger
}

// TopicSource is what consumer (KIP-848) groups need of the cluster
// metadata: the topics with their ids and partition counts, and a channel
// closed on the next change (like metadata.Store.Changed).
type TopicSource interface {
	Topics() map[string]TopicInfo
	Changed() <-chan struct{}
}

// TopicInfo is one topic as the assignors see it.
type TopicInfo struct {
	ID         [16]byte
	Partitions int32
}

// DefaultConfig returns Kafka's defaults: session timeouts between 6 s and
// 30 min, a 3 s initial rebalance delay, 45 s consumer sessions with a 5 s
// heartbeat interval and the uniform assignor.
func DefaultConfig() Config {
	return Config{
		MinSessionTimeout:         6 * time.Second,
		MaxSessionTimeout:         30 * time.Minute,
		InitialRebalanceDelay:     3 * time.Second,
		ConsumerSessionTimeout:    45 * time.Second,
		ConsumerHeartbeatInterval: 5 * time.Second,
		DefaultAssignor:           AssignorUniform,
	}
}

// Validate checks the config; zero durations other than the initial delay
// are refused.
func (c *Config) Validate() error {
	switch {
	case c.MinSessionTimeout <= 0 || c.MaxSessionTimeout < c.MinSessionTimeout:
		return fmt.Errorf("group config: session timeout bounds [%v, %v] are invalid", c.MinSessionTimeout, c.MaxSessionTimeout)
	case c.InitialRebalanceDelay < 0:
		return fmt.Errorf("group config: initial rebalance delay %v is negative", c.InitialRebalanceDelay)
	case c.ConsumerSessionTimeout <= 0 || c.ConsumerHeartbeatInterval <= 0:
		return fmt.Errorf("group config: consumer session timeout and heartbeat interval must be positive")
	case c.ConsumerHeartbeatInterval >= c.ConsumerSessionTimeout:
		return fmt.Errorf("group config: consumer heartbeat interval %v must be below the session timeout %v",
			c.ConsumerHeartbeatInterval, c.ConsumerSessionTimeout)
	case c.DefaultAssignor != AssignorUniform && c.DefaultAssignor != AssignorRange:
		return fmt.Errorf("group config: default assignor %q: must be uniform or range", c.DefaultAssignor)
	}
	return nil
}

func (c *Config) now() time.Time {
	if c.Now != nil {
		return c.Now()
	}
	return time.Now()
}

func (c *Config) logger() *slog.Logger {
	if c.Logger != nil {
		return c.Logger
	}
	return slog.Default()
}
