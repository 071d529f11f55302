package integration

import (
	"testing"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// noError stands for error code 0 in wantCode.
var noError = &kerr.Error{Message: "NONE", Code: 0}

// wantCode fails the test unless code is want's.
func wantCode(t *testing.T, what string, code int16, want *kerr.Error) {
	t.Helper()
	if code != want.Code {
		t.Errorf("%s: error code %d (%v), want %d (%s)", what, code, kerr.ErrorForCode(code), want.Code, want.Message)
	}
}

// TestConfigBadInput sends bad topic configs and admin requests and checks
// each gets the error code kadm and the Java admin client expect.
func TestConfigBadInput(t *testing.T) {
	b := StartBroker(t)
	createTopic(t, b, "bad-configs", 2)
	r := dialRaw(t, b.Addr)
	str := func(s string) *string { return &s }

	create := func(topic string, partitions int32, key, value string) int16 {
		req := kmsg.NewPtrCreateTopicsRequest()
		r.version(req)
		req.TimeoutMillis = 10000
		ct := kmsg.NewCreateTopicsRequestTopic()
		ct.Topic, ct.NumPartitions, ct.ReplicationFactor = topic, partitions, 1
		c := kmsg.NewCreateTopicsRequestTopicConfig()
		c.Name, c.Value = key, str(value)
		ct.Configs = append(ct.Configs, c)
		req.Topics = append(req.Topics, ct)
		return r.roundTrip(req).(*kmsg.CreateTopicsResponse).Topics[0].ErrorCode
	}
	wantCode(t, "CreateTopics with cleanup.policy=bogus", create("c1", 1, "cleanup.policy", "bogus"), kerr.InvalidConfig)
	wantCode(t, "CreateTopics with retention.ms=abc", create("c2", 1, "retention.ms", "abc"), kerr.InvalidConfig)
	wantCode(t, "CreateTopics with compression.type=brotli", create("c3", 1, "compression.type", "brotli"), kerr.InvalidConfig)
	wantCode(t, "CreateTopics with an unknown config", create("c4", 1, "no.such.config", "1"), kerr.InvalidConfig)

	alter := func(topic, key, value string) int16 {
		req := kmsg.NewPtrIncrementalAlterConfigsRequest()
		r.version(req)
		res := kmsg.NewIncrementalAlterConfigsRequestResource()
		res.ResourceType, res.ResourceName = kmsg.ConfigResourceTypeTopic, topic
		c := kmsg.NewIncrementalAlterConfigsRequestResourceConfig()
		c.Name, c.Op, c.Value = key, kmsg.IncrementalAlterConfigOpSet, str(value)
		res.Configs = append(res.Configs, c)
		req.Resources = append(req.Resources, res)
		return r.roundTrip(req).(*kmsg.IncrementalAlterConfigsResponse).Resources[0].ErrorCode
	}
	wantCode(t, "IncrementalAlterConfigs retention.ms=abc", alter("bad-configs", "retention.ms", "abc"), kerr.InvalidConfig)
	wantCode(t, "IncrementalAlterConfigs cleanup.policy=sometimes", alter("bad-configs", "cleanup.policy", "sometimes"), kerr.InvalidConfig)
	wantCode(t, "IncrementalAlterConfigs of an unknown config", alter("bad-configs", "no.such.config", "1"), kerr.InvalidConfig)
	wantCode(t, "IncrementalAlterConfigs of an unknown topic", alter("no-such-topic", "retention.ms", "1000"), kerr.UnknownTopicOrPartition)
	wantCode(t, "IncrementalAlterConfigs retention.ms=60000", alter("bad-configs", "retention.ms", "60000"), noError)

	desc := kmsg.NewPtrDescribeConfigsRequest()
	r.version(desc)
	dr := kmsg.NewDescribeConfigsRequestResource()
	dr.ResourceType, dr.ResourceName = kmsg.ConfigResourceTypeTopic, "no-such-topic"
	desc.Resources = append(desc.Resources, dr)
	wantCode(t, "DescribeConfigs of an unknown topic",
		r.roundTrip(desc).(*kmsg.DescribeConfigsResponse).Resources[0].ErrorCode, kerr.UnknownTopicOrPartition)

	parts := func(topic string, count int32) int16 {
		req := kmsg.NewPtrCreatePartitionsRequest()
		r.version(req)
		req.TimeoutMillis = 10000
		ct := kmsg.NewCreatePartitionsRequestTopic()
		ct.Topic, ct.Count = topic, count
		req.Topics = append(req.Topics, ct)
		return r.roundTrip(req).(*kmsg.CreatePartitionsResponse).Topics[0].ErrorCode
	}
	wantCode(t, "CreatePartitions to fewer partitions", parts("bad-configs", 1), kerr.InvalidPartitions)
	wantCode(t, "CreatePartitions to the same count", parts("bad-configs", 2), kerr.InvalidPartitions)
	wantCode(t, "CreatePartitions of an unknown topic", parts("no-such-topic", 4), kerr.UnknownTopicOrPartition)

	dreq := kmsg.NewPtrDeleteRecordsRequest()
	r.version(dreq)
	dreq.TimeoutMillis = 10000
	dt := kmsg.NewDeleteRecordsRequestTopic()
	dt.Topic = "bad-configs"
	dp := kmsg.NewDeleteRecordsRequestTopicPartition()
	dp.Partition, dp.Offset = 0, 1000 // beyond the high watermark (0)
	dt.Partitions = append(dt.Partitions, dp)
	dreq.Topics = append(dreq.Topics, dt)
	wantCode(t, "DeleteRecords beyond the high watermark",
		r.roundTrip(dreq).(*kmsg.DeleteRecordsResponse).Topics[0].Partitions[0].ErrorCode, kerr.OffsetOutOfRange)
}
