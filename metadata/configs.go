package metadata

import (
	"errors"
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"
)

// ConfigDef describes one topic config: its Kafka name, default, type and
// validation.
type ConfigDef struct {
	Name    string
	Default string // Kafka's default, as the string DescribeConfigs reports
	// Type is Kafka's config type: "long", "int", "string", "boolean",
	// "list", "double" or "class".
	Type     string
	Validate func(string) error // nil accepts any value of the type
	Doc      string
}

const maxLong = "9223372036854775807"

// TopicConfigs is the table of topic configs Shoal accepts, with Kafka 3.x
// defaults and validation (Kafka 4.0 raised a few minimums, e.g. segment.bytes
// to 1 MiB; Shoal keeps the older, looser bounds so that tools written for 3.x
// keep working). Shoal stores explicit values; which ones it acts on is
// documented by the packages that read them.
var TopicConfigs = []ConfigDef{
	{Name: "cleanup.policy", Default: "delete", Type: "list", Validate: validList("compact", "delete"),
		Doc: "Retention policy for old log data: delete, compact, or both."},
	{Name: "compression.type", Default: "producer", Type: "string",
		Validate: validString("uncompressed", "zstd", "lz4", "snappy", "gzip", "producer"),
		Doc:      "Final compression of the topic's data; producer keeps the producer's codec."},
	{Name: "compression.gzip.level", Default: "-1", Type: "int", Validate: validIntLevel(1, 9, -1),
		Doc: "Gzip level when compression.type is gzip (-1: codec default)."},
	{Name: "compression.lz4.level", Default: "9", Type: "int", Validate: validIntRange(1, 17),
		Doc: "LZ4 level when compression.type is lz4."},
	{Name: "compression.zstd.level", Default: "3", Type: "int", Validate: validIntRange(-131072, 22),
		Doc: "Zstd level when compression.type is zstd."},
	{Name: "delete.retention.ms", Default: "86400000", Type: "long", Validate: validLongAtLeast(0),
		Doc: "How long delete tombstones are retained for compacted topics."},
	{Name: "file.delete.delay.ms", Default: "60000", Type: "long", Validate: validLongAtLeast(0),
		Doc: "Time to wait before deleting a file from storage."},
	{Name: "flush.messages", Default: maxLong, Type: "long", Validate: validLongAtLeast(1),
		Doc: "Messages between forced flushes (Shoal's durability is the Raft commit)."},
	{Name: "flush.ms", Default: maxLong, Type: "long", Validate: validLongAtLeast(0),
		Doc: "Time between forced flushes (Shoal's durability is the Raft commit)."},
	{Name: "follower.replication.throttled.replicas", Default: "", Type: "list", Validate: validThrottledReplicas,
		Doc: "Replicas whose follower replication is throttled: partition:broker pairs or *."},
	{Name: "index.interval.bytes", Default: "4096", Type: "int", Validate: validIntRange(0, math.MaxInt32),
		Doc: "Bytes between offset index entries."},
	{Name: "leader.replication.throttled.replicas", Default: "", Type: "list", Validate: validThrottledReplicas,
		Doc: "Replicas whose leader replication is throttled: partition:broker pairs or *."},
	{Name: "local.retention.bytes", Default: "-2", Type: "long", Validate: validLongAtLeast(-2),
		Doc: "Bytes kept locally before deletion when tiered storage is on (-2: retention.bytes)."},
	{Name: "local.retention.ms", Default: "-2", Type: "long", Validate: validLongAtLeast(-2),
		Doc: "Time kept locally before deletion when tiered storage is on (-2: retention.ms)."},
	{Name: "max.compaction.lag.ms", Default: maxLong, Type: "long", Validate: validLongAtLeast(1),
		Doc: "Maximum time a message stays ineligible for compaction."},
	{Name: "max.message.bytes", Default: "1048588", Type: "int", Validate: validIntRange(0, math.MaxInt32),
		Doc: "Largest record batch size allowed."},
	{Name: "message.downconversion.enable", Default: "true", Type: "boolean", Validate: validBool,
		Doc: "Whether fetches of old message formats are down-converted."},
	{Name: "message.timestamp.after.max.ms", Default: maxLong, Type: "long", Validate: validLongAtLeast(0),
		Doc: "How far a CreateTime timestamp may be ahead of the broker's time."},
	{Name: "message.timestamp.before.max.ms", Default: maxLong, Type: "long", Validate: validLongAtLeast(0),
		Doc: "How far a CreateTime timestamp may be behind the broker's time."},
	{Name: "message.timestamp.difference.max.ms", Default: maxLong, Type: "long", Validate: validLongAtLeast(0),
		Doc: "Deprecated: largest allowed difference between a CreateTime timestamp and the broker's time."},
	{Name: "message.timestamp.type", Default: "CreateTime", Type: "string", Validate: validString("CreateTime", "LogAppendTime"),
		Doc: "Whether record timestamps are the producer's (CreateTime) or the broker's (LogAppendTime)."},
	{Name: "min.cleanable.dirty.ratio", Default: "0.5", Type: "double", Validate: validDoubleRange(0, 1),
		Doc: "Dirty fraction of the log that triggers compaction."},
	{Name: "min.compaction.lag.ms", Default: "0", Type: "long", Validate: validLongAtLeast(0),
		Doc: "Minimum time a message stays uncompacted."},
	{Name: "min.insync.replicas", Default: "1", Type: "int", Validate: validIntRange(1, math.MaxInt32),
		Doc: "Minimum replicas that must acknowledge an acks=all write."},
	{Name: "preallocate", Default: "false", Type: "boolean", Validate: validBool,
		Doc: "Whether segment files are preallocated."},
	{Name: "remote.storage.enable", Default: "false", Type: "boolean", Validate: validBool,
		Doc: "Whether tiered storage is enabled for the topic."},
	{Name: "retention.bytes", Default: "-1", Type: "long", Validate: validLongAtLeast(math.MinInt64),
		Doc: "Largest size a partition may reach before old data is deleted (-1: unlimited)."},
	{Name: "retention.ms", Default: "604800000", Type: "long", Validate: validLongAtLeast(-1),
		Doc: "Longest time data is retained before deletion (-1: unlimited)."},
	{Name: "segment.bytes", Default: "1073741824", Type: "int", Validate: validIntRange(14, math.MaxInt32),
		Doc: "Segment file size."},
	{Name: "segment.index.bytes", Default: "10485760", Type: "int", Validate: validIntRange(4, math.MaxInt32),
		Doc: "Size of the index that maps offsets to file positions."},
	{Name: "segment.jitter.ms", Default: "0", Type: "long", Validate: validLongAtLeast(0),
		Doc: "Maximum random jitter subtracted from segment.ms."},
	{Name: "segment.ms", Default: "604800000", Type: "long", Validate: validLongAtLeast(1),
		Doc: "Time after which a segment is rolled even if not full."},
	{Name: "unclean.leader.election.enable", Default: "false", Type: "boolean", Validate: validBool,
		Doc: "Whether out-of-sync replicas may become leader."},
}

var topicConfigIndex = func() map[string]int {
	m := make(map[string]int, len(TopicConfigs))
	for i, d := range TopicConfigs {
		m[d.Name] = i
	}
	return m
}()

// TopicConfigDef returns the definition of the named topic config.
func TopicConfigDef(name string) (ConfigDef, bool) {
	i, ok := topicConfigIndex[name]
	if !ok {
		return ConfigDef{}, false
	}
	return TopicConfigs[i], true
}

// ValidateTopicConfigs checks every key and value of cfg, and the rules that
// tie configs together. The first failure (in key order) is returned wrapping
// ErrInvalidConfig and naming the key.
func ValidateTopicConfigs(cfg map[string]string) error {
	keys := make([]string, 0, len(cfg))
	for k := range cfg {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for _, k := range keys {
		if err := validateTopicConfig(k, cfg[k]); err != nil {
			return err
		}
	}
	return validateConfigCombination(cfg)
}

func validateTopicConfig(key, value string) error {
	def, ok := TopicConfigDef(key)
	if !ok {
		return fmt.Errorf("%w: %s: unknown topic config", ErrInvalidConfig, key)
	}
	if def.Validate == nil {
		return nil
	}
	if err := def.Validate(value); err != nil {
		return fmt.Errorf("%w: %s=%q: %w", ErrInvalidConfig, key, value, err)
	}
	return nil
}

// validateConfigCombination checks the rules between configs, taking the
// default where cfg has no explicit value.
func validateConfigCombination(cfg map[string]string) error {
	minLag, maxLag := effectiveLong(cfg, "min.compaction.lag.ms"), effectiveLong(cfg, "max.compaction.lag.ms")
	if minLag > maxLag {
		return fmt.Errorf("%w: min.compaction.lag.ms: %d exceeds max.compaction.lag.ms %d", ErrInvalidConfig, minLag, maxLag)
	}
	return nil
}

// effectiveLong is the parsed value of a long config (explicit or default);
// it is called only after the value validated.
func effectiveLong(cfg map[string]string, key string) int64 {
	v, ok := cfg[key]
	if !ok {
		def, _ := TopicConfigDef(key)
		v = def.Default
	}
	n, _ := strconv.ParseInt(strings.TrimSpace(v), 10, 64)
	return n
}

// EffectiveConfig returns the topic's value for the named config: its
// explicit value, or the config's default. ok is false for an unknown name.
func (t *Topic) EffectiveConfig(name string) (value string, ok bool) {
	if v, ok := t.Configs[name]; ok {
		return v, true
	}
	def, ok := TopicConfigDef(name)
	return def.Default, ok
}

var errNotInSet = errors.New("value not allowed")

func validString(allowed ...string) func(string) error {
	return func(v string) error {
		if slices.Contains(allowed, strings.TrimSpace(v)) {
			return nil
		}
		return fmt.Errorf("%w; one of %s", errNotInSet, strings.Join(allowed, ", "))
	}
}

func validList(allowed ...string) func(string) error {
	return func(v string) error {
		if strings.TrimSpace(v) == "" {
			return fmt.Errorf("empty list; items are %s", strings.Join(allowed, ", "))
		}
		for item := range strings.SplitSeq(v, ",") {
			if !slices.Contains(allowed, strings.TrimSpace(item)) {
				return fmt.Errorf("%w: %q; items are %s", errNotInSet, strings.TrimSpace(item), strings.Join(allowed, ", "))
			}
		}
		return nil
	}
}

func parseLong(v string) (int64, error) {
	n, err := strconv.ParseInt(strings.TrimSpace(v), 10, 64)
	if err != nil {
		return 0, errors.New("not a long integer")
	}
	return n, nil
}

func validLongAtLeast(min int64) func(string) error {
	return func(v string) error {
		n, err := parseLong(v)
		if err != nil {
			return err
		}
		if n < min {
			return fmt.Errorf("below the minimum %d", min)
		}
		return nil
	}
}

func validIntRange(min, max int64) func(string) error {
	return func(v string) error {
		n, err := strconv.ParseInt(strings.TrimSpace(v), 10, 32)
		if err != nil {
			return errors.New("not a 32-bit integer")
		}
		if n < min || n > max {
			return fmt.Errorf("outside [%d, %d]", min, max)
		}
		return nil
	}
}

// validIntLevel accepts [min, max] or the extra value def (a codec's "default").
func validIntLevel(min, max, def int64) func(string) error {
	inRange := validIntRange(min, max)
	return func(v string) error {
		if n, err := strconv.ParseInt(strings.TrimSpace(v), 10, 32); err == nil && n == def {
			return nil
		}
		return inRange(v)
	}
}

func validDoubleRange(min, max float64) func(string) error {
	return func(v string) error {
		f, err := strconv.ParseFloat(strings.TrimSpace(v), 64)
		if err != nil || math.IsNaN(f) {
			return errors.New("not a number")
		}
		if f < min || f > max {
			return fmt.Errorf("outside [%g, %g]", min, max)
		}
		return nil
	}
}

func validBool(v string) error {
	switch strings.ToLower(strings.TrimSpace(v)) {
	case "true", "false":
		return nil
	}
	return errors.New("not true or false")
}

// validThrottledReplicas accepts "", "*", or a comma list of partition:broker
// pairs of non-negative integers.
func validThrottledReplicas(v string) error {
	v = strings.TrimSpace(v)
	if v == "" || v == "*" {
		return nil
	}
	for item := range strings.SplitSeq(v, ",") {
		p, b, ok := strings.Cut(strings.TrimSpace(item), ":")
		if !ok || !isNonNegInt(p) || !isNonNegInt(b) {
			return fmt.Errorf("%q is not partition:broker", strings.TrimSpace(item))
		}
	}
	return nil
}

func isNonNegInt(s string) bool {
	n, err := strconv.ParseInt(strings.TrimSpace(s), 10, 32)
	return err == nil && n >= 0
}
