package broker

import (
	"context"
	"fmt"
	"maps"
	"net"
	"net/url"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/shoal-io/shoal/metadata"
)

// This file is the config logic shared by DescribeConfigs, AlterConfigs and
// IncrementalAlterConfigs: how topic and broker configs are described
// (values, sources, synonyms, types, documentation) and how a change to a
// topic's configs is validated and applied.
//
// Topic configs are the table metadata.TopicConfigs: an explicit value is
// DYNAMIC_TOPIC_CONFIG, anything else the default, DEFAULT_CONFIG. Broker
// configs are the broker's own settings under Kafka's names where Kafka has
// one (broker.id, num.partitions, socket.request.max.bytes, the log.*
// defaults of the topic configs, ...) and shoal.* names for Shoal's own;
// they are all read-only: they come from flags or the config file, a value
// that differs from the built-in default is STATIC_BROKER_CONFIG.

// describedConfig is one config entry as DescribeConfigs reports it.
type describedConfig struct {
	name, value string
	source      kmsg.ConfigSource
	readOnly    bool
	typ         kmsg.ConfigType
	doc         string
	synonyms    []configSynonym
}

// configSynonym is one entry of a config's synonym list, most preferred first.
type configSynonym struct {
	name, value string
	source      kmsg.ConfigSource
}

// topicBrokerSynonyms maps a topic config to the Kafka broker config that
// supplies its default (Kafka's LogConfig.serverConfigName). Topic configs
// missing here have no broker-level default.
var topicBrokerSynonyms = map[string]string{
	"cleanup.policy":                      "log.cleanup.policy",
	"compression.type":                    "compression.type",
	"compression.gzip.level":              "compression.gzip.level",
	"compression.lz4.level":               "compression.lz4.level",
	"compression.zstd.level":              "compression.zstd.level",
	"delete.retention.ms":                 "log.cleaner.delete.retention.ms",
	"file.delete.delay.ms":                "log.segment.delete.delay.ms",
	"flush.messages":                      "log.flush.interval.messages",
	"flush.ms":                            "log.flush.interval.ms",
	"index.interval.bytes":                "log.index.interval.bytes",
	"local.retention.bytes":               "log.local.retention.bytes",
	"local.retention.ms":                  "log.local.retention.ms",
	"max.compaction.lag.ms":               "log.cleaner.max.compaction.lag.ms",
	"max.message.bytes":                   "message.max.bytes",
	"message.downconversion.enable":       "log.message.downconversion.enable",
	"message.timestamp.after.max.ms":      "log.message.timestamp.after.max.ms",
	"message.timestamp.before.max.ms":     "log.message.timestamp.before.max.ms",
	"message.timestamp.difference.max.ms": "log.message.timestamp.difference.max.ms",
	"message.timestamp.type":              "log.message.timestamp.type",
	"min.cleanable.dirty.ratio":           "log.cleaner.min.cleanable.ratio",
	"min.compaction.lag.ms":               "log.cleaner.min.compaction.lag.ms",
	"min.insync.replicas":                 "min.insync.replicas",
	"preallocate":                         "log.preallocate",
	"retention.bytes":                     "log.retention.bytes",
	"retention.ms":                        "log.retention.ms",
	"segment.bytes":                       "log.segment.bytes",
	"segment.index.bytes":                 "log.index.size.max.bytes",
	"segment.jitter.ms":                   "log.roll.jitter.ms",
	"segment.ms":                          "log.roll.ms",
	"unclean.leader.election.enable":      "unclean.leader.election.enable",
}

// kafkaConfigType maps a metadata.ConfigDef type name to Kafka's enum.
func kafkaConfigType(t string) kmsg.ConfigType {
	switch t {
	case "boolean":
		return kmsg.ConfigTypeBoolean
	case "string":
		return kmsg.ConfigTypeString
	case "int":
		return kmsg.ConfigTypeInt
	case "short":
		return kmsg.ConfigTypeShort
	case "long":
		return kmsg.ConfigTypeLong
	case "double":
		return kmsg.ConfigTypeDouble
	case "list":
		return kmsg.ConfigTypeList
	case "class":
		return kmsg.ConfigTypeClass
	}
	return kmsg.ConfigTypeUnknown
}

// topicConfigEntries describes every config of t, by name: an explicit
// value is DYNAMIC_TOPIC_CONFIG, otherwise the default is DEFAULT_CONFIG.
// The synonyms are the explicit value (if any), then the broker-level
// default (if Kafka has one), as Kafka lists them.
func topicConfigEntries(t *metadata.Topic) []describedConfig {
	defs := sortedConfigDefs()
	out := make([]describedConfig, 0, len(defs))
	for _, def := range defs {
		c := describedConfig{name: def.Name, value: def.Default, source: kmsg.ConfigSourceDefaultConfig,
			typ: kafkaConfigType(def.Type), doc: def.Doc}
		if v, ok := t.Configs[def.Name]; ok {
			c.value, c.source = v, kmsg.ConfigSourceDynamicTopicConfig
			c.synonyms = append(c.synonyms, configSynonym{def.Name, v, kmsg.ConfigSourceDynamicTopicConfig})
		}
		if bn, ok := topicBrokerSynonyms[def.Name]; ok {
			c.synonyms = append(c.synonyms, configSynonym{bn, def.Default, kmsg.ConfigSourceDefaultConfig})
		}
		out = append(out, c)
	}
	return out
}

// brokerSetting is one broker config: its current and built-in values.
type brokerSetting struct {
	name       string
	value, def string
	typ        kmsg.ConfigType
	doc        string
}

// brokerSettings lists the broker's effective settings under Kafka's names
// (where Kafka has one) and shoal.* names, unsorted.
func (b *Broker) brokerSettings() []brokerSetting {
	c, d := b.cfg, DefaultConfig()
	i64 := func(v int64) string { return strconv.FormatInt(v, 10) }
	ms := func(v time.Duration) string { return i64(v.Milliseconds()) }
	walDir := func(dir string) string { return absPath(filepath.Join(dir, "wal-0")) }
	var listeners, advertised []string
	for _, l := range b.listeners {
		listeners = append(listeners, l.Name+"://"+l.ln.Addr().String())
		e := l.endpoint()
		advertised = append(advertised, e.Name+"://"+net.JoinHostPort(e.Host, strconv.Itoa(int(e.Port))))
	}
	out := []brokerSetting{
		{"broker.id", i64(int64(c.NodeID)), i64(int64(d.NodeID)), kmsg.ConfigTypeInt, "The broker id (--node-id)."},
		{"node.id", i64(int64(c.NodeID)), i64(int64(d.NodeID)), kmsg.ConfigTypeInt, "The node id (--node-id)."},
		{"listeners", strings.Join(listeners, ","), "PLAINTEXT://" + d.Listen, kmsg.ConfigTypeList, "The Kafka listeners (--listeners, or --listen)."},
		{"advertised.listeners", strings.Join(advertised, ","), "PLAINTEXT://" + d.Listen, kmsg.ConfigTypeList,
			"The addresses given to clients, per listener (--advertised-listeners, or --advertise)."},
		{"log.dirs", walDir(c.DataDir), walDir(d.DataDir), kmsg.ConfigTypeList,
			"The WAL directory (<--data-dir>/wal-0); history lives in object storage."},
		{"num.partitions", i64(int64(c.DefaultPartitions)), i64(int64(d.DefaultPartitions)), kmsg.ConfigTypeInt,
			"Partitions of auto-created topics and of CreateTopics asking for the default (--default-partitions)."},
		{"default.replication.factor", i64(int64(c.DefaultReplicationFactor)), i64(int64(d.DefaultReplicationFactor)),
			kmsg.ConfigTypeShort, "Replication factor of topics asking for the default."},
		{"auto.create.topics.enable", strconv.FormatBool(c.AutoCreateTopics), strconv.FormatBool(d.AutoCreateTopics),
			kmsg.ConfigTypeBoolean, "Whether Metadata requests create unknown topics (--auto-create-topics)."},
		{"delete.topic.enable", "true", "true", kmsg.ConfigTypeBoolean, "Topics can always be deleted."},
		{"socket.request.max.bytes", i64(int64(c.MaxRequestSize)), i64(int64(d.MaxRequestSize)), kmsg.ConfigTypeInt,
			"The largest request frame accepted (--max-request-size)."},
		{"log.retention.check.interval.ms", ms(c.RetentionCheckInterval), ms(d.RetentionCheckInterval), kmsg.ConfigTypeLong,
			"How often retention.ms and retention.bytes are applied (--retention-check-interval)."},
		{"shoal.cluster.listen", c.ClusterListen, d.ClusterListen, kmsg.ConfigTypeString, "The Raft and internal-traffic listener (--cluster-listen)."},
		{"shoal.object.store", redactURL(b.objectStoreURL()), "file://" + absPath(filepath.Join(d.DataDir, "objects")),
			kmsg.ConfigTypeString, "The object store (--object-store), without credentials or parameters."},
		{"shoal.metrics.listen", c.MetricsListen, d.MetricsListen, kmsg.ConfigTypeString, "The /metrics, /healthz, /readyz listener (--metrics-listen)."},
		{"shoal.tail.cache.bytes", i64(c.TailCacheBytes), i64(d.TailCacheBytes), kmsg.ConfigTypeLong, "Memory of the WAL tail cache (--tail-cache-bytes)."},
		{"shoal.upload.bytes", i64(c.UploadBytes), i64(d.UploadBytes), kmsg.ConfigTypeLong, "WAL bytes that trigger an upload (--upload-bytes)."},
		{"shoal.upload.age.ms", ms(c.UploadAge), ms(d.UploadAge), kmsg.ConfigTypeLong, "Age of WAL data that triggers an upload (--upload-age)."},
		{"shoal.wal.max.pending.bytes", i64(c.WALMaxPendingBytes), i64(d.WALMaxPendingBytes), kmsg.ConfigTypeLong,
			"WAL bytes waiting for upload beyond which produce is refused, retriably (--wal-max-pending-bytes)."},
		{"shoal.block.cache.bytes", i64(c.BlockCacheBytes), i64(d.BlockCacheBytes), kmsg.ConfigTypeLong, "Memory of the object block cache (--block-cache-bytes)."},
		{"shoal.compaction.interval.ms", ms(c.CompactionInterval), ms(d.CompactionInterval), kmsg.ConfigTypeLong, "How often objects are compacted (--compaction-interval)."},
		{"shoal.object.grace.ms", ms(c.ObjectGrace), ms(d.ObjectGrace), kmsg.ConfigTypeLong,
			"How long unreferenced objects stay for in-flight readers (--object-grace)."},
		{"shoal.orphan.sweep.interval.ms", ms(c.OrphanSweepInterval), ms(d.OrphanSweepInterval), kmsg.ConfigTypeLong,
			"How often the bucket is swept for orphaned objects (--orphan-sweep-interval)."},
	}
	// The broker-level defaults of the topic configs, under Kafka's names.
	for _, def := range metadata.TopicConfigs {
		if bn, ok := topicBrokerSynonyms[def.Name]; ok && !slices.ContainsFunc(out, func(s brokerSetting) bool { return s.name == bn }) {
			out = append(out, brokerSetting{bn, def.Default, def.Default, kafkaConfigType(def.Type),
				"Default of the topic config " + def.Name + ": " + def.Doc})
		}
	}
	return out
}

// brokerConfigEntries describes the broker's settings, by name. All are
// read-only; a value other than the built-in default is
// STATIC_BROKER_CONFIG (it came from a flag or the config file).
func (b *Broker) brokerConfigEntries() []describedConfig {
	settings := b.brokerSettings()
	slices.SortFunc(settings, func(x, y brokerSetting) int { return strings.Compare(x.name, y.name) })
	out := make([]describedConfig, 0, len(settings))
	for _, s := range settings {
		c := describedConfig{name: s.name, value: s.value, source: kmsg.ConfigSourceDefaultConfig,
			readOnly: true, typ: s.typ, doc: s.doc}
		if s.value != s.def {
			c.source = kmsg.ConfigSourceStaticBrokerConfig
			c.synonyms = append(c.synonyms, configSynonym{s.name, s.value, kmsg.ConfigSourceStaticBrokerConfig})
		}
		c.synonyms = append(c.synonyms, configSynonym{s.name, s.def, kmsg.ConfigSourceDefaultConfig})
		out = append(out, c)
	}
	return out
}

// advertisedAddr is the host:port given to clients.
func (b *Broker) advertisedAddr() string {
	return b.advHost + ":" + strconv.Itoa(int(b.advPort))
}

// objectStoreURL is the object store's URL as opened.
func (b *Broker) objectStoreURL() string {
	if b.cfg.ObjectStore != "" {
		return b.cfg.ObjectStore
	}
	return "file://" + absPath(filepath.Join(b.cfg.DataDir, "objects"))
}

// redactURL drops user info and query parameters from an object-store URL,
// so that no credential is ever described.
func redactURL(s string) string {
	u, err := url.Parse(s)
	if err != nil {
		return "(unparsable)"
	}
	u.User, u.RawQuery, u.Fragment = nil, "", ""
	return u.String()
}

// absPath is p made absolute where possible.
func absPath(p string) string {
	if a, err := filepath.Abs(p); err == nil {
		return a
	}
	return p
}

// checkBrokerResource checks a BROKER resource name: empty (the
// cluster-wide dynamic defaults) or this broker's id. perBroker reports the
// latter.
func (b *Broker) checkBrokerResource(name string) (perBroker bool, err error) {
	if name == "" {
		return false, nil
	}
	id, err := strconv.ParseInt(name, 10, 32)
	if err != nil {
		return false, fmt.Errorf("%w: broker id must be an integer, not %q", errInvalidRequest, name)
	}
	if int32(id) != b.cfg.NodeID {
		return false, fmt.Errorf("%w: unexpected broker id %d, this is broker %d", errInvalidRequest, id, b.cfg.NodeID)
	}
	return true, nil
}

// replicationThrottles are the broker configs Kafka's reassignment tool
// sets (--throttle) and clears (--verify). A Shoal reassignment copies no
// replica, so there is nothing to throttle: changes to them are accepted
// and change nothing.
var replicationThrottles = map[string]bool{
	"leader.replication.throttled.rate":              true,
	"follower.replication.throttled.rate":            true,
	"replica.alter.log.dirs.io.max.bytes.per.second": true,
}

// refuseBrokerConfigs is the answer to any change of broker configs: they
// are static (flags or config file), as Kafka answers for read-only
// configs (INVALID_REQUEST). A request that changes nothing, or only the
// replication throttles, succeeds.
func (b *Broker) refuseBrokerConfigs(resourceName string, names []string) error {
	if _, err := b.checkBrokerResource(resourceName); err != nil {
		return err
	}
	names = slices.DeleteFunc(slices.Clone(names), func(n string) bool { return replicationThrottles[n] })
	if len(names) == 0 {
		return nil
	}
	return fmt.Errorf("%w: cannot update these configs dynamically: %s (broker configs are read-only: set them with flags or the config file)",
		errInvalidRequest, strings.Join(names, ", "))
}

// configTopic returns the topic a TOPIC config resource names.
func configTopic(im *metadata.Image, name string) (*metadata.Topic, error) {
	if name == "" {
		return nil, fmt.Errorf("%w: default topic resources are not allowed", errInvalidRequest)
	}
	if err := metadata.ValidateTopicName(name); err != nil {
		return nil, err
	}
	t := im.Topics[name]
	if t == nil {
		return nil, fmt.Errorf("%w: %s", errUnknownTopicOrPartition, name)
	}
	return t, nil
}

// topicConfigChange is a validated change of a topic's explicit configs.
type topicConfigChange struct {
	set    map[string]string
	delete []string
}

// applyTopicConfigs validates the topic's configs as they would be after
// the change (every key known, every value valid, the combination
// consistent) and, unless validateOnly, applies the change through the
// metadata Raft group. Nothing changes on error.
func (b *Broker) applyTopicConfigs(ctx context.Context, t *metadata.Topic, ch topicConfigChange, validateOnly bool) error {
	after := maps.Clone(t.Configs)
	if after == nil {
		after = map[string]string{}
	}
	for _, k := range ch.delete {
		if _, ok := metadata.TopicConfigDef(k); !ok {
			return fmt.Errorf("%w: %s: unknown topic config", metadata.ErrInvalidConfig, k)
		}
		delete(after, k)
	}
	maps.Copy(after, ch.set)
	if err := metadata.ValidateTopicConfigs(after); err != nil {
		return err
	}
	if validateOnly {
		return nil
	}
	if err := b.meta.AlterTopicConfigs(ctx, t.Name, ch.set, ch.delete); err != nil {
		return err
	}
	b.logger.Info("topic configs altered", "topic", t.Name, "set", ch.set, "deleted", ch.delete)
	return nil
}

// duplicateNames returns an INVALID_REQUEST error when names repeats a name.
func duplicateNames(names []string) error {
	seen := make(map[string]bool, len(names))
	for _, n := range names {
		if seen[n] {
			return fmt.Errorf("%w: config %s appears more than once", errInvalidRequest, n)
		}
		seen[n] = true
	}
	return nil
}

// resourceKey names a config resource for duplicate detection.
type resourceKey struct {
	typ  kmsg.ConfigResourceType
	name string
}

// repeatedResources returns a check, for AlterConfigs and
// IncrementalAlterConfigs, that refuses every occurrence of a resource
// named more than once in the request (INVALID_REQUEST, as Kafka).
func repeatedResources[R any](rs []R, key func(R) resourceKey) func(R) error {
	seen := make(map[resourceKey]int, len(rs))
	for _, r := range rs {
		seen[key(r)]++
	}
	return func(r R) error {
		if k := key(r); seen[k] > 1 {
			return fmt.Errorf("%w: resource %s appears more than once", errInvalidRequest, k.name)
		}
		return nil
	}
}

// resourceTarget checks a config change's resource type and names: broker
// configs are read-only, only topics change. It returns the topic.
func (b *Broker) resourceTarget(typ kmsg.ConfigResourceType, name string, names []string) (*metadata.Topic, error) {
	if err := duplicateNames(names); err != nil {
		return nil, err
	}
	switch typ {
	case kmsg.ConfigResourceTypeBroker:
		return nil, b.refuseBrokerConfigs(name, names)
	case kmsg.ConfigResourceTypeTopic:
		return configTopic(b.meta.Image(), name)
	default:
		return nil, fmt.Errorf("%w: unsupported resource type %d", errInvalidRequest, typ)
	}
}

// adminTimeout bounds an admin request's commit wait: its TimeoutMillis,
// at least 1 s and at most 60 s.
func adminTimeout(ctx context.Context, millis int32) (context.Context, context.CancelFunc) {
	return context.WithTimeout(ctx, min(max(time.Duration(millis)*time.Millisecond, time.Second), time.Minute))
}
