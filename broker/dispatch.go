package broker

import (
	"context"
	"slices"

	"github.com/twmb/franz-go/pkg/kmsg"
)

// handlerFunc is the uniform handler signature, as a method expression.
type handlerFunc func(b *Broker, ctx context.Context, r *request) (kmsg.Response, error)

// apiEntry is one API the broker serves and the versions it serves.
type apiEntry struct {
	key      int16
	min, max int16
	fn       handlerFunc
}

// apis is the dispatch table, indexed by API key; it also produces the
// ApiVersions response. It is filled in init because handleApiVersions
// reads it (a package-level initializer would be an initialization cycle).
var apis [maxAPIKey + 1]*apiEntry

// maxAPIKey is the largest API key in the table.
const maxAPIKey = 75

// apiVersionsKey is the API key of ApiVersions.
const apiVersionsKey = 18

func init() {
	for _, e := range []apiEntry{
		// Produce v0-2 are listed but refused in the handler, as Kafka 4.0
		// does (KAFKA-18659): librdkafka compresses only when v0 is listed.
		{key: 0, min: 0, max: 13, fn: (*Broker).handleProduce},
		{key: 1, min: 4, max: 18, fn: (*Broker).handleFetch},
		{key: 2, min: 1, max: 11, fn: (*Broker).handleListOffsets},
		{key: 3, min: 0, max: 13, fn: (*Broker).handleMetadata},
		{key: 8, min: 2, max: 10, fn: (*Broker).handleOffsetCommit},
		{key: 9, min: 1, max: 10, fn: (*Broker).handleOffsetFetch},
		{key: 10, min: 0, max: 5, fn: (*Broker).handleFindCoordinator},
		{key: 11, min: 0, max: 9, fn: (*Broker).handleJoinGroup},
		{key: 12, min: 0, max: 4, fn: (*Broker).handleHeartbeat},
		{key: 13, min: 0, max: 5, fn: (*Broker).handleLeaveGroup},
		{key: 14, min: 0, max: 5, fn: (*Broker).handleSyncGroup},
		{key: 15, min: 0, max: 6, fn: (*Broker).handleDescribeGroups},
		{key: 16, min: 0, max: 5, fn: (*Broker).handleListGroups},
		{key: 17, min: 0, max: 1, fn: (*Broker).handleSaslHandshake},
		{key: 18, min: 0, max: 5, fn: (*Broker).handleApiVersions},
		{key: 19, min: 2, max: 7, fn: (*Broker).handleCreateTopics},
		{key: 20, min: 1, max: 6, fn: (*Broker).handleDeleteTopics},
		{key: 21, min: 0, max: 2, fn: (*Broker).handleDeleteRecords},
		{key: 22, min: 0, max: 5, fn: (*Broker).handleInitProducerID},
		{key: 23, min: 0, max: 4, fn: (*Broker).handleOffsetForLeaderEpoch},
		{key: 29, min: 0, max: 3, fn: (*Broker).handleDescribeAcls},
		{key: 30, min: 0, max: 3, fn: (*Broker).handleCreateAcls},
		{key: 31, min: 0, max: 3, fn: (*Broker).handleDeleteAcls},
		{key: 32, min: 0, max: 4, fn: (*Broker).handleDescribeConfigs},
		{key: 33, min: 0, max: 2, fn: (*Broker).handleAlterConfigs},
		{key: 35, min: 0, max: 5, fn: (*Broker).handleDescribeLogDirs},
		{key: 36, min: 0, max: 2, fn: (*Broker).handleSaslAuthenticate},
		{key: 37, min: 0, max: 3, fn: (*Broker).handleCreatePartitions},
		{key: 42, min: 0, max: 3, fn: (*Broker).handleDeleteGroups},
		{key: 43, min: 0, max: 2, fn: (*Broker).handleElectLeaders},
		{key: 44, min: 0, max: 1, fn: (*Broker).handleIncrementalAlterConfigs},
		{key: 45, min: 0, max: 1, fn: (*Broker).handleAlterPartitionReassignments},
		{key: 46, min: 0, max: 0, fn: (*Broker).handleListPartitionReassignments},
		{key: 47, min: 0, max: 0, fn: (*Broker).handleOffsetDelete},
		{key: 48, min: 0, max: 1, fn: (*Broker).handleDescribeClientQuotas},
		{key: 49, min: 0, max: 1, fn: (*Broker).handleAlterClientQuotas},
		{key: 50, min: 0, max: 0, fn: (*Broker).handleDescribeUserScramCredentials},
		{key: 51, min: 0, max: 0, fn: (*Broker).handleAlterUserScramCredentials},
		{key: 60, min: 0, max: 2, fn: (*Broker).handleDescribeCluster},
		{key: 61, min: 0, max: 0, fn: (*Broker).handleDescribeProducers},
		{key: 68, min: 0, max: 1, fn: (*Broker).handleConsumerGroupHeartbeat},
		{key: 69, min: 0, max: 1, fn: (*Broker).handleConsumerGroupDescribe},
	} {
		if req := kmsg.RequestForKey(e.key); req == nil || req.MaxVersion() < e.max {
			panic("broker: dispatch table serves a version kmsg cannot decode (broken invariant)")
		}
		if coordinatedAPIs[e.key] { // only the group coordinator serves them (groups.go)
			e.fn = coordinated(e.fn)
		}
		apis[e.key] = &e
	}
}

// apiFor returns the entry serving key at version, if any.
func apiFor(key, version int16) (apiEntry, bool) {
	if key < 0 || int(key) >= len(apis) || apis[key] == nil {
		return apiEntry{}, false
	}
	e := apis[key]
	if version < e.min || version > e.max {
		return apiEntry{}, false
	}
	return *e, true
}

// apiKeys lists every served API with its version range, by key.
func apiKeys() []kmsg.ApiVersionsResponseApiKey {
	var keys []kmsg.ApiVersionsResponseApiKey
	for _, e := range apis {
		if e == nil {
			continue
		}
		k := kmsg.NewApiVersionsResponseApiKey()
		k.ApiKey, k.MinVersion, k.MaxVersion = e.key, e.min, e.max
		keys = append(keys, k)
	}
	slices.SortFunc(keys, func(a, b kmsg.ApiVersionsResponseApiKey) int { return int(a.ApiKey) - int(b.ApiKey) })
	return keys
}
