package broker

import (
	"context"
	"encoding/binary"
	"net"
	"slices"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

func TestApiVersions(t *testing.T) {
	t.Parallel()
	b := sharedBroker(t)
	c := dialRaw(t, b)
	for _, v := range []int16{0, 3, 4, 5} {
		req := kmsg.NewPtrApiVersionsRequest()
		req.Version = v
		req.ClientSoftwareName, req.ClientSoftwareVersion = "shoal-test", "1.0"
		resp := c.do(req).(*kmsg.ApiVersionsResponse)
		wantCode(t, "api versions", resp.ErrorCode, nil)
		assertApiKeys(t, resp.ApiKeys)
	}

	// v3+ checks the client software name.
	req := kmsg.NewPtrApiVersionsRequest()
	req.Version = 3
	req.ClientSoftwareName, req.ClientSoftwareVersion = "bad name!", "1"
	wantCode(t, "bad software name", c.do(req).(*kmsg.ApiVersionsResponse).ErrorCode, kerr.InvalidRequest)

	// v5 (KIP-1242): a request meant for another node must rebootstrap.
	req = kmsg.NewPtrApiVersionsRequest()
	req.Version = 5
	req.ClientSoftwareName, req.ClientSoftwareVersion = "t", "1"
	req.ClusterID, req.NodeID = kmsg.StringPtr("other-cluster"), 1
	wantCode(t, "wrong cluster", c.do(req).(*kmsg.ApiVersionsResponse).ErrorCode, kerr.RebootstrapRequired)
}

// assertApiKeys checks an ApiVersions key list against the dispatch table.
func assertApiKeys(t *testing.T, keys []kmsg.ApiVersionsResponseApiKey) {
	t.Helper()
	// The served APIs and versions, as docs/compatibility.md lists them.
	want := map[int16][2]int16{0: {0, 13}, 1: {4, 18}, 2: {1, 11}, 3: {0, 13}, 8: {2, 10}, 9: {1, 10},
		10: {0, 5}, 11: {0, 9}, 12: {0, 4}, 13: {0, 5}, 14: {0, 5}, 15: {0, 6}, 16: {0, 5}, 18: {0, 5},
		19: {2, 7}, 20: {1, 6}, 21: {0, 2}, 22: {0, 5}, 23: {0, 4}, 32: {0, 4}, 33: {0, 2}, 35: {0, 5},
		37: {0, 3}, 42: {0, 3}, 43: {0, 2}, 44: {0, 1}, 47: {0, 0}, 60: {0, 2}, 61: {0, 0}, 68: {0, 1}, 69: {0, 1},
		17: {0, 1}, 36: {0, 2}, 45: {0, 1}, 46: {0, 0}, 48: {0, 1}, 49: {0, 1}, 50: {0, 0}, 51: {0, 0},
		29: {0, 3}, 30: {0, 3}, 31: {0, 3}}
	if len(keys) != len(want) {
		t.Fatalf("%d api keys, want %d", len(keys), len(want))
	}
	for _, k := range keys {
		if w, ok := want[k.ApiKey]; !ok || w != [2]int16{k.MinVersion, k.MaxVersion} {
			t.Errorf("api key %d: versions %d-%d, want %v", k.ApiKey, k.MinVersion, k.MaxVersion, w)
		}
	}
}

// TestApiVersionsUnknownVersion checks KIP-511: an ApiVersions request of a
// version the broker does not know gets a v0 response with
// UNSUPPORTED_VERSION and the supported versions, and the connection stays
// usable so the client can retry lower.
func TestApiVersionsUnknownVersion(t *testing.T) {
	t.Parallel()
	b := sharedBroker(t)
	c := dialRaw(t, b)
	// Header v2 of ApiVersions v99: key, version, correlation id, client id,
	// empty tags; then a body the broker must not try to parse.
	frame := binary.BigEndian.AppendUint16(nil, 18)
	frame = binary.BigEndian.AppendUint16(frame, 99)
	frame = binary.BigEndian.AppendUint32(frame, 7)
	frame = binary.BigEndian.AppendUint16(frame, 4)
	frame = append(frame, "test"...)
	frame = append(frame, 0, 0xde, 0xad, 0xbe, 0xef)
	if _, err := c.nc.Write(binary.BigEndian.AppendUint32(nil, uint32(len(frame)))); err != nil {
		t.Fatal(err)
	}
	if _, err := c.nc.Write(frame); err != nil {
		t.Fatal(err)
	}
	v0 := kmsg.NewPtrApiVersionsRequest() // decodes the response as v0
	resp := c.recv(v0, 7).(*kmsg.ApiVersionsResponse)
	wantCode(t, "api versions v99", resp.ErrorCode, kerr.UnsupportedVersion)
	assertApiKeys(t, resp.ApiKeys)

	req := kmsg.NewPtrApiVersionsRequest()
	req.Version = 3
	req.ClientSoftwareName, req.ClientSoftwareVersion = "t", "1"
	wantCode(t, "retry at v3", c.do(req).(*kmsg.ApiVersionsResponse).ErrorCode, nil)
}

func metadataRequest(version int16, topics ...string) *kmsg.MetadataRequest {
	req := kmsg.NewPtrMetadataRequest()
	req.Version = version
	for _, name := range topics {
		rt := kmsg.NewMetadataRequestTopic()
		rt.Topic = kmsg.StringPtr(name)
		req.Topics = append(req.Topics, rt)
	}
	return req
}

func TestMetadata(t *testing.T) {
	t.Parallel()
	n := uniqueNames()
	b := sharedBroker(t)
	createTopic(t, b, n("m1"), 3)
	createTopic(t, b, n("m2"), 1)
	c := dialRaw(t, b)

	all := c.do(metadataRequest(12)).(*kmsg.MetadataResponse) // Topics nil: all topics
	if len(all.Brokers) != 1 || all.Brokers[0].NodeID != 1 || all.Brokers[0].Port != int32(b.Addr().(*net.TCPAddr).Port) {
		t.Fatalf("brokers %+v", all.Brokers)
	}
	if all.ControllerID != 1 || all.ClusterID == nil || *all.ClusterID == "" {
		t.Fatalf("controller %d cluster %v", all.ControllerID, all.ClusterID)
	}
	var names []string
	for _, tp := range all.Topics {
		if *tp.Topic != n("m1") && *tp.Topic != n("m2") {
			continue // other tests' topics on the shared broker
		}
		names = append(names, *tp.Topic)
		for _, p := range tp.Partitions {
			if p.Leader != 1 || !slices.Equal(p.Replicas, []int32{1}) || p.LeaderEpoch < 1 {
				t.Errorf("%s/%d: leader %d epoch %d replicas %v", *tp.Topic, p.Partition, p.Leader, p.LeaderEpoch, p.Replicas)
			}
		}
	}
	if !slices.Equal(names, []string{n("m1"), n("m2")}) {
		t.Fatalf("topics %v", names)
	}

	// v0: an empty list is all topics.
	v0 := c.do(metadataRequest(0)).(*kmsg.MetadataResponse)
	var v0names []string
	for _, tp := range v0.Topics {
		v0names = append(v0names, *tp.Topic)
	}
	if !slices.Contains(v0names, n("m1")) || !slices.Contains(v0names, n("m2")) {
		t.Fatalf("v0 metadata with no topics lists %v", v0names)
	}

	// By id (v12).
	byID := kmsg.NewPtrMetadataRequest()
	byID.Version = 12
	id := kmsg.NewMetadataRequestTopic()
	id.TopicID = b.meta.Image().Topics[n("m2")].ID
	unknownID := kmsg.NewMetadataRequestTopic()
	unknownID.TopicID = [16]byte{1, 2, 3}
	byID.Topics = append(byID.Topics, id, unknownID)
	resp := c.do(byID).(*kmsg.MetadataResponse)
	if *resp.Topics[0].Topic != n("m2") {
		t.Fatalf("topic by id: %v", resp.Topics[0].Topic)
	}
	wantCode(t, "unknown topic id", resp.Topics[1].ErrorCode, kerr.UnknownTopicID)

	// Auto-creation is off by default.
	req := metadataRequest(12, n("not-there"))
	req.AllowAutoTopicCreation = true
	resp = c.do(req).(*kmsg.MetadataResponse)
	wantCode(t, "unknown topic", resp.Topics[0].ErrorCode, kerr.UnknownTopicOrPartition)
	if _, ok := b.meta.Image().Topics[n("not-there")]; ok {
		t.Fatal("topic was auto-created with auto-creation off")
	}
}

func TestMetadataAutoCreate(t *testing.T) {
	t.Parallel()
	n := uniqueNames()
	b := startBroker(t, func(c *Config) { c.AutoCreateTopics, c.DefaultPartitions = true, 4 })
	c := dialRaw(t, b)

	// v4+ clients may ask not to create.
	req := metadataRequest(12, n("auto"))
	req.AllowAutoTopicCreation = false
	wantCode(t, "no creation asked", c.do(req).(*kmsg.MetadataResponse).Topics[0].ErrorCode, kerr.UnknownTopicOrPartition)

	req.AllowAutoTopicCreation = true
	tp := c.do(req).(*kmsg.MetadataResponse).Topics[0]
	wantCode(t, "auto-created", tp.ErrorCode, nil)
	if len(tp.Partitions) != 4 || tp.Partitions[0].Leader != 1 {
		t.Fatalf("auto-created topic: %d partitions, leader %d", len(tp.Partitions), tp.Partitions[0].Leader)
	}

	// v3 always allows creation; an invalid name is INVALID_TOPIC_EXCEPTION.
	wantCode(t, "v3 bad name", c.do(metadataRequest(3, n("bad/name"))).(*kmsg.MetadataResponse).Topics[0].ErrorCode,
		kerr.InvalidTopicException)

	// A produce right after creation succeeds.
	wantCode(t, "produce", produceRaw(t, c, n("auto"), 3, values("x")).ErrorCode, nil)
}

func createTopicsRequest(validateOnly bool, topics ...kmsg.CreateTopicsRequestTopic) *kmsg.CreateTopicsRequest {
	req := kmsg.NewPtrCreateTopicsRequest()
	req.Version = 7
	req.TimeoutMillis = 5000
	req.ValidateOnly = validateOnly
	req.Topics = topics
	return req
}

func topicSpecReq(name string, partitions int32, rf int16, configs ...string) kmsg.CreateTopicsRequestTopic {
	rt := kmsg.NewCreateTopicsRequestTopic()
	rt.Topic, rt.NumPartitions, rt.ReplicationFactor = name, partitions, rf
	for i := 0; i+1 < len(configs); i += 2 {
		c := kmsg.NewCreateTopicsRequestTopicConfig()
		c.Name, c.Value = configs[i], kmsg.StringPtr(configs[i+1])
		rt.Configs = append(rt.Configs, c)
	}
	return rt
}

func TestCreateTopics(t *testing.T) {
	t.Parallel()
	n := uniqueNames()
	b := sharedBroker(t)
	c := dialRaw(t, b)
	resp := c.do(createTopicsRequest(false, topicSpecReq(n("ct"), 2, 1, "retention.ms", "1000"))).(*kmsg.CreateTopicsResponse)
	ct := resp.Topics[0]
	wantCode(t, "create", ct.ErrorCode, nil)
	if ct.NumPartitions != 2 || ct.ReplicationFactor != 1 || ct.TopicID == [16]byte{} {
		t.Fatalf("created: %d partitions rf %d id %v", ct.NumPartitions, ct.ReplicationFactor, ct.TopicID)
	}
	for _, cfg := range ct.Configs {
		if cfg.Name == "retention.ms" && (*cfg.Value != "1000" || cfg.Source != configSourceDynamicTopic) {
			t.Errorf("retention.ms reported as %s (source %d)", *cfg.Value, cfg.Source)
		}
	}

	for _, tc := range []struct {
		name  string
		topic kmsg.CreateTopicsRequestTopic
		want  *kerr.Error
	}{
		{"exists", topicSpecReq(n("ct"), 1, 1), kerr.TopicAlreadyExists},
		{"invalid name", topicSpecReq(n("a/b"), 1, 1), kerr.InvalidTopicException},
		{"zero partitions", topicSpecReq(n("p0"), 0, 1), kerr.InvalidPartitions},
		{"rf above brokers", topicSpecReq(n("rf3"), 1, 3), kerr.InvalidReplicationFactor},
		{"rf zero", topicSpecReq(n("rf0"), 1, 0), kerr.InvalidReplicationFactor},
		{"unknown config", topicSpecReq(n("cfg1"), 1, 1, "no.such.config", "1"), kerr.InvalidConfig},
		{"bad config value", topicSpecReq(n("cfg2"), 1, 1, "cleanup.policy", "sometimes"), kerr.InvalidConfig},
	} {
		resp := c.do(createTopicsRequest(false, tc.topic)).(*kmsg.CreateTopicsResponse)
		wantCode(t, tc.name, resp.Topics[0].ErrorCode, tc.want)
		if resp.Topics[0].ErrorMessage == nil {
			t.Errorf("%s: no error message", tc.name)
		}
	}

	// Validate-only: checked, not created.
	resp = c.do(createTopicsRequest(true, topicSpecReq(n("vo"), 3, -1), topicSpecReq(n("ct"), 1, 1))).(*kmsg.CreateTopicsResponse)
	wantCode(t, "validate only", resp.Topics[0].ErrorCode, nil)
	wantCode(t, "validate only, exists", resp.Topics[1].ErrorCode, kerr.TopicAlreadyExists)
	if resp.Topics[0].NumPartitions != 3 {
		t.Errorf("validate only reports %d partitions", resp.Topics[0].NumPartitions)
	}
	if _, ok := b.meta.Image().Topics[n("vo")]; ok {
		t.Fatal("validate-only created the topic")
	}

	// The same name twice in one request: both fail.
	resp = c.do(createTopicsRequest(false, topicSpecReq(n("twice"), 1, 1), topicSpecReq(n("twice"), 1, 1))).(*kmsg.CreateTopicsResponse)
	wantCode(t, "duplicate 1", resp.Topics[0].ErrorCode, kerr.InvalidRequest)
	wantCode(t, "duplicate 2", resp.Topics[1].ErrorCode, kerr.InvalidRequest)

	// Defaults through kadm (-1/-1).
	adm := kadm.NewClient(newClient(t, b))
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	cr, err := adm.CreateTopic(ctx, -1, -1, nil, n("defaults"))
	if err != nil || cr.Err != nil || cr.NumPartitions != 1 || cr.ReplicationFactor != 1 {
		t.Fatalf("kadm create with defaults: %v %v %+v", err, cr.Err, cr)
	}
}

func TestDeleteTopics(t *testing.T) {
	t.Parallel()
	n := uniqueNames()
	b := sharedBroker(t)
	createTopic(t, b, n("d1"), 1)
	createTopic(t, b, n("d2"), 1)
	c := dialRaw(t, b)
	wantCode(t, "produce", produceRaw(t, c, n("d1"), 0, values("a")).ErrorCode, nil)

	req := kmsg.NewPtrDeleteTopicsRequest()
	req.Version = 5
	req.TimeoutMillis = 5000
	req.TopicNames = []string{n("d1"), n("missing")}
	resp := c.do(req).(*kmsg.DeleteTopicsResponse)
	wantCode(t, "delete d1", resp.Topics[0].ErrorCode, nil)
	wantCode(t, "delete missing", resp.Topics[1].ErrorCode, kerr.UnknownTopicOrPartition)
	wantCode(t, "produce to deleted", produceRaw(t, c, n("d1"), 0, values("a")).ErrorCode, kerr.UnknownTopicOrPartition)

	// v6: by id.
	id := b.meta.Image().Topics[n("d2")].ID
	req = kmsg.NewPtrDeleteTopicsRequest()
	req.Version = 6
	req.TimeoutMillis = 5000
	byID, unknown := kmsg.NewDeleteTopicsRequestTopic(), kmsg.NewDeleteTopicsRequestTopic()
	byID.TopicID, unknown.TopicID = id, [16]byte{9}
	req.Topics = append(req.Topics, byID, unknown)
	resp = c.do(req).(*kmsg.DeleteTopicsResponse)
	wantCode(t, "delete by id", resp.Topics[0].ErrorCode, nil)
	if resp.Topics[0].Topic == nil || *resp.Topics[0].Topic != n("d2") {
		t.Errorf("delete by id names %v", resp.Topics[0].Topic)
	}
	wantCode(t, "delete unknown id", resp.Topics[1].ErrorCode, kerr.UnknownTopicID)
	for _, name := range []string{n("d1"), n("d2")} {
		if _, ok := b.meta.Image().Topics[name]; ok {
			t.Fatalf("topic %s still exists", name)
		}
	}
}

func TestDescribeClusterAndProducerIDs(t *testing.T) {
	t.Parallel()
	b := sharedBroker(t)
	adm := kadm.NewClient(newClient(t, b))
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	meta, err := adm.BrokerMetadata(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if meta.Controller != 1 || len(meta.Brokers) != 1 || meta.Cluster != b.meta.Image().ClusterID {
		t.Fatalf("cluster %+v", meta)
	}

	c := dialRaw(t, b)
	req := kmsg.NewPtrDescribeClusterRequest()
	req.Version = 1
	req.EndpointType = 2 // controllers
	wantCode(t, "controllers endpoint", c.do(req).(*kmsg.DescribeClusterResponse).ErrorCode, kerr.MismatchedEndpointType)
	req.EndpointType = 1
	dc := c.do(req).(*kmsg.DescribeClusterResponse)
	wantCode(t, "describe cluster", dc.ErrorCode, nil)
	if dc.ClusterID == "" || len(dc.Brokers) != 1 || dc.ControllerID != 1 {
		t.Fatalf("describe cluster: %+v", dc)
	}

	ids := map[int64]bool{}
	for range 1005 { // crosses a block boundary
		id := initProducerID(t, c)
		if ids[id] {
			t.Fatalf("producer id %d handed out twice", id)
		}
		ids[id] = true
	}
	txn := kmsg.NewPtrInitProducerIDRequest()
	txn.Version = 4
	txn.TransactionalID = kmsg.StringPtr("tx")
	wantCode(t, "transactional id", c.do(txn).(*kmsg.InitProducerIDResponse).ErrorCode, kerr.TransactionalIDAuthorizationFailed)
}
