package broker

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/shoal-io/shoal/metadata"
)

// admClient returns a kadm client for b and a context bounded for the test.
func admClient(t *testing.T, b *Broker) (*kadm.Client, context.Context) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 20*time.Second)
	t.Cleanup(cancel)
	return kadm.NewClient(newClient(t, b)), ctx
}

// admCreateTopic creates a topic with configs (key, value, key, value...).
func admCreateTopic(t *testing.T, adm *kadm.Client, ctx context.Context, name string, partitions int32, kv ...string) {
	t.Helper()
	cfg := map[string]*string{}
	for i := 0; i+1 < len(kv); i += 2 {
		cfg[kv[i]] = kmsg.StringPtr(kv[i+1])
	}
	resp, err := adm.CreateTopic(ctx, partitions, 1, cfg, name)
	if err != nil || resp.Err != nil {
		t.Fatalf("create topic %s: %v / %v", name, err, resp.Err)
	}
}

// topicConfigMap describes a topic's configs through kadm.
func topicConfigMap(t *testing.T, adm *kadm.Client, ctx context.Context, topic string) map[string]kadm.Config {
	t.Helper()
	rcs, err := adm.DescribeTopicConfigs(ctx, topic)
	if err != nil {
		t.Fatalf("describe %s: %v", topic, err)
	}
	rc, err := rcs.On(topic, nil)
	if err != nil || rc.Err != nil {
		t.Fatalf("describe %s: %v / %v", topic, err, rc.Err)
	}
	out := map[string]kadm.Config{}
	for _, c := range rc.Configs {
		out[c.Key] = c
	}
	return out
}

// wantConfig checks one described config's value and source.
func wantConfig(t *testing.T, cfgs map[string]kadm.Config, key, value string, source kmsg.ConfigSource) {
	t.Helper()
	c, ok := cfgs[key]
	if !ok {
		t.Fatalf("config %s not described", key)
	}
	if c.MaybeValue() != value || c.Source != source {
		t.Fatalf("config %s = %q (%v), want %q (%v)", key, c.MaybeValue(), c.Source, value, source)
	}
}

func TestDescribeTopicConfigs(t *testing.T) {
	t.Parallel()
	b := sharedBroker(t)
	adm, ctx := admClient(t, b)
	name := uniqueNames()("described")
	admCreateTopic(t, adm, ctx, name, 1, "retention.ms", "1000")

	cfgs := topicConfigMap(t, adm, ctx, name)
	if len(cfgs) != len(metadata.TopicConfigs) {
		t.Fatalf("%d configs described, want %d", len(cfgs), len(metadata.TopicConfigs))
	}
	wantConfig(t, cfgs, "retention.ms", "1000", kmsg.ConfigSourceDynamicTopicConfig)
	wantConfig(t, cfgs, "cleanup.policy", "delete", kmsg.ConfigSourceDefaultConfig)
	wantConfig(t, cfgs, "max.message.bytes", "1048588", kmsg.ConfigSourceDefaultConfig)
	// kadm asks for synonyms: the explicit value, then the broker default.
	syn := cfgs["retention.ms"].Synonyms
	if len(syn) != 2 || syn[0].Key != "retention.ms" || syn[0].Source != kmsg.ConfigSourceDynamicTopicConfig ||
		syn[1].Key != "log.retention.ms" || *syn[1].Value != "604800000" || syn[1].Source != kmsg.ConfigSourceDefaultConfig {
		t.Fatalf("retention.ms synonyms %+v", syn)
	}

	rcs, err := adm.DescribeTopicConfigs(ctx, "no-such-topic-described")
	if err != nil || len(rcs) != 1 || !errors.Is(rcs[0].Err, kerr.UnknownTopicOrPartition) {
		t.Fatalf("unknown topic: %v / %+v", err, rcs)
	}
}

// TestDescribeConfigsVersions checks the version edges over raw requests:
// v0 IsDefault, v1 synonyms on request only, v3 type and documentation,
// name filters, bad resources.
func TestDescribeConfigsVersions(t *testing.T) {
	t.Parallel()
	b := sharedBroker(t)
	adm, ctx := admClient(t, b)
	name := uniqueNames()("described-raw")
	admCreateTopic(t, adm, ctx, name, 1, "cleanup.policy", "compact")
	c := dialRaw(t, b)
	for v := int16(0); v <= 4; v++ {
		req := kmsg.NewPtrDescribeConfigsRequest()
		req.Version = v
		req.IncludeSynonyms, req.IncludeDocumentation = v == 2, v >= 3
		rr := kmsg.NewDescribeConfigsRequestResource()
		rr.ResourceType, rr.ResourceName = kmsg.ConfigResourceTypeTopic, name
		rr.ConfigNames = []string{"cleanup.policy", "segment.ms", "no.such.config"}
		req.Resources = append(req.Resources, rr)
		resp := c.do(req).(*kmsg.DescribeConfigsResponse)
		res := resp.Resources[0]
		wantCode(t, "describe v"+strconv.Itoa(int(v)), res.ErrorCode, nil)
		if len(res.Configs) != 2 {
			t.Fatalf("v%d: %d configs, want the 2 known names asked for", v, len(res.Configs))
		}
		cp, sm := res.Configs[0], res.Configs[1]
		if cp.Name != "cleanup.policy" || *cp.Value != "compact" || sm.Name != "segment.ms" || *sm.Value != "604800000" {
			t.Fatalf("v%d: configs %+v", v, res.Configs)
		}
		if cp.ReadOnly || cp.IsSensitive {
			t.Fatalf("v%d: topic config read-only or sensitive", v)
		}
		switch {
		case v == 0 && (cp.IsDefault || !sm.IsDefault):
			t.Fatalf("v0: IsDefault %v / %v", cp.IsDefault, sm.IsDefault)
		case v >= 1 && (cp.Source != kmsg.ConfigSourceDynamicTopicConfig || sm.Source != kmsg.ConfigSourceDefaultConfig):
			t.Fatalf("v%d: sources %v / %v", v, cp.Source, sm.Source)
		case v == 1 && len(cp.ConfigSynonyms) != 0:
			t.Fatalf("v1: synonyms without asking")
		case v == 2 && len(cp.ConfigSynonyms) != 2:
			t.Fatalf("v2: synonyms %+v", cp.ConfigSynonyms)
		case v >= 3 && (cp.ConfigType != kmsg.ConfigTypeList || sm.ConfigType != kmsg.ConfigTypeLong ||
			cp.Documentation == nil || *cp.Documentation == ""):
			t.Fatalf("v%d: type %v / %v, doc %v", v, cp.ConfigType, sm.ConfigType, cp.Documentation)
		}
	}

	req := kmsg.NewPtrDescribeConfigsRequest()
	req.Version = 4
	for _, r := range []struct {
		typ  kmsg.ConfigResourceType
		name string
	}{{kmsg.ConfigResourceTypeTopic, ""}, {kmsg.ConfigResourceTypeTopic, "bad name!"},
		{kmsg.ConfigResourceTypeBrokerLogger, "1"}, {kmsg.ConfigResourceTypeBroker, "77"},
		{kmsg.ConfigResourceTypeBroker, "one"}} {
		rr := kmsg.NewDescribeConfigsRequestResource()
		rr.ResourceType, rr.ResourceName = r.typ, r.name
		req.Resources = append(req.Resources, rr)
	}
	resp := c.do(req).(*kmsg.DescribeConfigsResponse)
	for i, want := range []*kerr.Error{kerr.InvalidRequest, kerr.InvalidTopicException, kerr.InvalidRequest,
		kerr.InvalidRequest, kerr.InvalidRequest} {
		wantCode(t, "bad resource "+strconv.Itoa(i), resp.Resources[i].ErrorCode, want)
	}
}

func TestDescribeBrokerConfigs(t *testing.T) {
	t.Parallel()
	b := sharedBroker(t)
	adm, ctx := admClient(t, b)
	rcs, err := adm.DescribeBrokerConfigs(ctx, b.cfg.NodeID)
	if err != nil || len(rcs) != 1 || rcs[0].Err != nil {
		t.Fatalf("describe broker: %v / %+v", err, rcs)
	}
	cfgs := map[string]kadm.Config{}
	for _, c := range rcs[0].Configs {
		cfgs[c.Key] = c
	}
	wantConfig(t, cfgs, "broker.id", "1", kmsg.ConfigSourceDefaultConfig)
	wantConfig(t, cfgs, "num.partitions", "1", kmsg.ConfigSourceDefaultConfig)
	wantConfig(t, cfgs, "auto.create.topics.enable", "false", kmsg.ConfigSourceDefaultConfig)
	wantConfig(t, cfgs, "socket.request.max.bytes", strconv.Itoa(int(b.cfg.MaxRequestSize)), kmsg.ConfigSourceDefaultConfig)
	wantConfig(t, cfgs, "log.retention.ms", "604800000", kmsg.ConfigSourceDefaultConfig)
	wantConfig(t, cfgs, "message.max.bytes", "1048588", kmsg.ConfigSourceDefaultConfig)
	wantConfig(t, cfgs, "shoal.upload.bytes", strconv.Itoa(64<<20), kmsg.ConfigSourceDefaultConfig)
	// The shared broker's tail cache and data dir differ from the defaults.
	wantConfig(t, cfgs, "shoal.tail.cache.bytes", strconv.Itoa(8<<20), kmsg.ConfigSourceStaticBrokerConfig)
	if c := cfgs["log.dirs"]; c.Source != kmsg.ConfigSourceStaticBrokerConfig || c.MaybeValue() != absPath(b.cfg.DataDir)+"/wal-0" {
		t.Fatalf("log.dirs %q (%v)", c.MaybeValue(), c.Source)
	}

	// Raw: every broker config is read-only; the empty name (cluster-wide
	// dynamic defaults) has none.
	c := dialRaw(t, b)
	req := kmsg.NewPtrDescribeConfigsRequest()
	for _, name := range []string{"1", ""} {
		rr := kmsg.NewDescribeConfigsRequestResource()
		rr.ResourceType, rr.ResourceName = kmsg.ConfigResourceTypeBroker, name
		req.Resources = append(req.Resources, rr)
	}
	resp := c.do(req).(*kmsg.DescribeConfigsResponse)
	for _, cfg := range resp.Resources[0].Configs {
		if !cfg.ReadOnly {
			t.Fatalf("broker config %s is not read-only", cfg.Name)
		}
	}
	if r := resp.Resources[1]; r.ErrorCode != 0 || len(r.Configs) != 0 {
		t.Fatalf("cluster defaults: %v, %d configs", kerr.ErrorForCode(r.ErrorCode), len(r.Configs))
	}

	// Changes are refused, incremental and legacy alike.
	set := []kadm.AlterConfig{{Name: "num.partitions", Value: kmsg.StringPtr("3")}}
	for what, alter := range map[string]func(context.Context, []kadm.AlterConfig, ...int32) (kadm.AlterConfigsResponses, error){
		"incremental": adm.AlterBrokerConfigs, "legacy": adm.AlterBrokerConfigsState,
	} {
		ars, err := alter(ctx, set, b.cfg.NodeID)
		if err != nil || len(ars) != 1 || !errors.Is(ars[0].Err, kerr.InvalidRequest) {
			t.Fatalf("%s broker alter: %v / %+v", what, err, ars)
		}
	}
	if b.cfg.DefaultPartitions != 1 {
		t.Fatal("a refused alter changed the broker")
	}
}

func TestAlterTopicConfigsIncremental(t *testing.T) {
	t.Parallel()
	b := sharedBroker(t)
	adm, ctx := admClient(t, b)
	name := uniqueNames()("altered")
	admCreateTopic(t, adm, ctx, name, 1, "segment.ms", "5000")
	alter := func(validate bool, ops ...kadm.AlterConfig) error {
		t.Helper()
		fn := adm.AlterTopicConfigs
		if validate {
			fn = adm.ValidateAlterTopicConfigs
		}
		ars, err := fn(ctx, ops, name)
		if err != nil {
			t.Fatalf("alter: %v", err)
		}
		return ars[0].Err
	}
	set := func(k, v string) kadm.AlterConfig { return kadm.AlterConfig{Name: k, Value: &v} }
	op := func(o kadm.IncrementalOp, k, v string) kadm.AlterConfig {
		return kadm.AlterConfig{Op: o, Name: k, Value: &v}
	}

	// Validate-only changes nothing.
	if err := alter(true, set("retention.ms", "2000")); err != nil {
		t.Fatal(err)
	}
	wantConfig(t, topicConfigMap(t, adm, ctx, name), "retention.ms", "604800000", kmsg.ConfigSourceDefaultConfig)

	// SET, DELETE and APPEND in one request.
	if err := alter(false, set("retention.ms", "2000"), kadm.AlterConfig{Op: kadm.DeleteConfig, Name: "segment.ms"},
		op(kadm.AppendConfig, "cleanup.policy", "compact")); err != nil {
		t.Fatal(err)
	}
	cfgs := topicConfigMap(t, adm, ctx, name)
	wantConfig(t, cfgs, "retention.ms", "2000", kmsg.ConfigSourceDynamicTopicConfig)
	wantConfig(t, cfgs, "segment.ms", "604800000", kmsg.ConfigSourceDefaultConfig)
	wantConfig(t, cfgs, "cleanup.policy", "delete,compact", kmsg.ConfigSourceDynamicTopicConfig)
	if err := alter(false, op(kadm.SubtractConfig, "cleanup.policy", "delete")); err != nil {
		t.Fatal(err)
	}
	wantConfig(t, topicConfigMap(t, adm, ctx, name), "cleanup.policy", "compact", kmsg.ConfigSourceDynamicTopicConfig)

	// Refusals change nothing, also for the valid parts of the request.
	for _, c := range []struct {
		what string
		ops  []kadm.AlterConfig
		want *kerr.Error
	}{
		{"bad value", []kadm.AlterConfig{set("retention.ms", "soon"), set("segment.ms", "9000")}, kerr.InvalidConfig},
		{"unknown key", []kadm.AlterConfig{set("retention.forever", "1")}, kerr.InvalidConfig},
		{"below minimum", []kadm.AlterConfig{set("segment.ms", "0")}, kerr.InvalidConfig},
		{"lags inconsistent", []kadm.AlterConfig{set("min.compaction.lag.ms", "10"), set("max.compaction.lag.ms", "5")}, kerr.InvalidConfig},
		{"append to non-list", []kadm.AlterConfig{op(kadm.AppendConfig, "retention.ms", "1")}, kerr.InvalidConfig},
		{"empty list", []kadm.AlterConfig{op(kadm.SubtractConfig, "cleanup.policy", "compact")}, kerr.InvalidConfig},
		{"bad list item", []kadm.AlterConfig{op(kadm.AppendConfig, "cleanup.policy", "shred")}, kerr.InvalidConfig},
		{"delete unknown", []kadm.AlterConfig{{Op: kadm.DeleteConfig, Name: "nope"}}, kerr.InvalidConfig},
		{"duplicate key", []kadm.AlterConfig{set("retention.ms", "1"), set("retention.ms", "2")}, kerr.InvalidRequest},
		{"null value", []kadm.AlterConfig{{Name: "retention.ms"}}, kerr.InvalidRequest},
	} {
		for _, validate := range []bool{true, false} {
			if err := alter(validate, c.ops...); !errors.Is(err, c.want) {
				t.Fatalf("%s (validate %v): %v, want %v", c.what, validate, err, c.want)
			}
		}
	}
	cfgs = topicConfigMap(t, adm, ctx, name)
	wantConfig(t, cfgs, "retention.ms", "2000", kmsg.ConfigSourceDynamicTopicConfig)
	wantConfig(t, cfgs, "segment.ms", "604800000", kmsg.ConfigSourceDefaultConfig)
	wantConfig(t, cfgs, "cleanup.policy", "compact", kmsg.ConfigSourceDynamicTopicConfig)

	ars, err := adm.AlterTopicConfigs(ctx, []kadm.AlterConfig{set("retention.ms", "1")}, "no-such-topic-altered")
	if err != nil || !errors.Is(ars[0].Err, kerr.UnknownTopicOrPartition) {
		t.Fatalf("unknown topic: %v / %+v", err, ars)
	}
}

func TestAlterConfigsLegacy(t *testing.T) {
	t.Parallel()
	b := sharedBroker(t)
	adm, ctx := admClient(t, b)
	name := uniqueNames()("replaced")
	admCreateTopic(t, adm, ctx, name, 1, "retention.ms", "2000", "segment.ms", "5000")
	state := func(validate bool, kv ...string) error {
		t.Helper()
		var cfgs []kadm.AlterConfig
		for i := 0; i+1 < len(kv); i += 2 {
			cfgs = append(cfgs, kadm.AlterConfig{Name: kv[i], Value: kmsg.StringPtr(kv[i+1])})
		}
		fn := adm.AlterTopicConfigsState
		if validate {
			fn = adm.ValidateAlterTopicConfigsState
		}
		ars, err := fn(ctx, cfgs, name)
		if err != nil {
			t.Fatalf("alter state: %v", err)
		}
		return ars[0].Err
	}
	if err := state(true, "max.message.bytes", "5000"); err != nil {
		t.Fatal(err)
	}
	wantConfig(t, topicConfigMap(t, adm, ctx, name), "retention.ms", "2000", kmsg.ConfigSourceDynamicTopicConfig)

	// The new set replaces the old one: unnamed configs return to defaults.
	if err := state(false, "max.message.bytes", "5000", "segment.ms", "6000"); err != nil {
		t.Fatal(err)
	}
	cfgs := topicConfigMap(t, adm, ctx, name)
	wantConfig(t, cfgs, "retention.ms", "604800000", kmsg.ConfigSourceDefaultConfig)
	wantConfig(t, cfgs, "segment.ms", "6000", kmsg.ConfigSourceDynamicTopicConfig)
	wantConfig(t, cfgs, "max.message.bytes", "5000", kmsg.ConfigSourceDynamicTopicConfig)

	if err := state(false, "segment.ms", "7000", "retention.bytes", "lots"); !errors.Is(err, kerr.InvalidConfig) {
		t.Fatalf("bad value: %v", err)
	}
	cfgs = topicConfigMap(t, adm, ctx, name)
	wantConfig(t, cfgs, "segment.ms", "6000", kmsg.ConfigSourceDynamicTopicConfig)
	wantConfig(t, cfgs, "max.message.bytes", "5000", kmsg.ConfigSourceDynamicTopicConfig)

	// Raw edges: v0, a null value, a resource named twice, a bad type.
	c := dialRaw(t, b)
	req := kmsg.NewPtrAlterConfigsRequest()
	req.Version = 0
	res := func(typ kmsg.ConfigResourceType, name string, kv ...*string) kmsg.AlterConfigsRequestResource {
		rr := kmsg.NewAlterConfigsRequestResource()
		rr.ResourceType, rr.ResourceName = typ, name
		for i := 0; i+1 < len(kv); i += 2 {
			rc := kmsg.NewAlterConfigsRequestResourceConfig()
			rc.Name, rc.Value = *kv[i], kv[i+1]
			rr.Configs = append(rr.Configs, rc)
		}
		return rr
	}
	s := kmsg.StringPtr
	req.Resources = []kmsg.AlterConfigsRequestResource{res(kmsg.ConfigResourceTypeTopic, name, s("segment.ms"), nil)}
	resp := c.do(req).(*kmsg.AlterConfigsResponse)
	wantCode(t, "null value", resp.Resources[0].ErrorCode, kerr.InvalidRequest)
	req.Version = 2
	req.Resources = []kmsg.AlterConfigsRequestResource{
		res(kmsg.ConfigResourceTypeTopic, name, s("segment.ms"), s("8000")),
		res(kmsg.ConfigResourceTypeTopic, name, s("segment.ms"), s("9000")),
		res(kmsg.ConfigResourceTypeBrokerLogger, "1"),
		res(kmsg.ConfigResourceTypeBroker, "1"), // changes nothing: fine
	}
	resp = c.do(req).(*kmsg.AlterConfigsResponse)
	for i, want := range []*kerr.Error{kerr.InvalidRequest, kerr.InvalidRequest, kerr.InvalidRequest, nil} {
		wantCode(t, "raw alter "+strconv.Itoa(i), resp.Resources[i].ErrorCode, want)
	}
	wantConfig(t, topicConfigMap(t, adm, ctx, name), "segment.ms", "6000", kmsg.ConfigSourceDynamicTopicConfig)
}

// TestReassignmentThrottleConfigs: kafka-reassign-partitions sets and
// clears replication throttles on brokers and topics around a move; Shoal
// accepts them (nothing is copied, nothing to throttle), while other
// broker configs stay read-only.
func TestReassignmentThrottleConfigs(t *testing.T) {
	b := startBroker(t)
	createTopic(t, b, "throttled", 1)
	c := dialRaw(t, b)
	req := kmsg.NewPtrIncrementalAlterConfigsRequest()
	res := func(typ kmsg.ConfigResourceType, name string, op kmsg.IncrementalAlterConfigOp, keys ...string) kmsg.IncrementalAlterConfigsRequestResource {
		rr := kmsg.NewIncrementalAlterConfigsRequestResource()
		rr.ResourceType, rr.ResourceName = typ, name
		for _, k := range keys {
			rc := kmsg.NewIncrementalAlterConfigsRequestResourceConfig()
			rc.Name, rc.Op = k, op
			if op == kmsg.IncrementalAlterConfigOpSet {
				rc.Value = kmsg.StringPtr("1000")
				if strings.HasSuffix(k, ".replicas") {
					rc.Value = kmsg.StringPtr("0:1")
				}
			}
			rr.Configs = append(rr.Configs, rc)
		}
		return rr
	}
	for _, op := range []kmsg.IncrementalAlterConfigOp{kmsg.IncrementalAlterConfigOpSet, kmsg.IncrementalAlterConfigOpDelete} {
		req.Resources = []kmsg.IncrementalAlterConfigsRequestResource{
			res(kmsg.ConfigResourceTypeBroker, "1", op, "leader.replication.throttled.rate", "follower.replication.throttled.rate",
				"replica.alter.log.dirs.io.max.bytes.per.second"),
			res(kmsg.ConfigResourceTypeTopic, "throttled", op, "leader.replication.throttled.replicas", "follower.replication.throttled.replicas"),
		}
		resp := c.do(req).(*kmsg.IncrementalAlterConfigsResponse)
		for i := range req.Resources {
			wantCode(t, fmt.Sprintf("op %v resource %d", op, i), resp.Resources[i].ErrorCode, nil)
		}
		// Other broker configs stay read-only.
		req.Resources = []kmsg.IncrementalAlterConfigsRequestResource{
			res(kmsg.ConfigResourceTypeBroker, "1", op, "leader.replication.throttled.rate", "log.retention.ms"),
		}
		resp = c.do(req).(*kmsg.IncrementalAlterConfigsResponse)
		wantCode(t, fmt.Sprintf("op %v log.retention.ms", op), resp.Resources[0].ErrorCode, kerr.InvalidRequest)
	}
}
