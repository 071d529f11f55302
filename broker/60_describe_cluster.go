package broker

import (
	"context"

	"github.com/twmb/franz-go/pkg/kmsg"
)

// DescribeCluster: v0-2
//
// Behavior:
// * the registered brokers (their addresses on the listener the request
//   came on), the cluster id, and the metadata group's leader as controller
// * authorized operations, when asked, are those the client may perform
//   on the cluster; 0 without DESCRIBE on the cluster. As Kafka, the
//   request itself needs no permission: that DESCRIBE only gates the
//   authorized operations
//
// Version notes:
// * v1: EndpointType; this listener serves brokers (1), asking it for
//   controllers (2) gives MISMATCHED_ENDPOINT_TYPE, as a Kafka broker does
// * v2: IncludeFencedBrokers, IsFenced (no broker is ever fenced)

// endpointTypeBroker is DescribeCluster's EndpointType for brokers.
const endpointTypeBroker int8 = 1

func (b *Broker) handleDescribeCluster(_ context.Context, r *request) (kmsg.Response, error) {
	req := r.req.(*kmsg.DescribeClusterRequest)
	resp := req.ResponseKind().(*kmsg.DescribeClusterResponse)
	resp.EndpointType = endpointTypeBroker
	if req.Version >= 1 && req.EndpointType != endpointTypeBroker {
		resp.ErrorCode = errCode(errMismatchedEndpoint)
		resp.ErrorMessage = errMessage(errMismatchedEndpoint)
		return resp, nil
	}
	if req.IncludeClusterAuthorizedOperations {
		resp.ClusterAuthorizedOperations = b.authorizedOps(r, resCluster, clusterName) // authz.go
	}
	im := b.meta.Image()
	resp.ClusterID = im.ClusterID
	resp.ControllerID = nodeID(b.meta.LeaderID())
	for _, br := range im.SortedBrokers() {
		ep, ok := r.endpointFor(br)
		if !ok {
			continue
		}
		db := kmsg.NewDescribeClusterResponseBroker()
		db.NodeID, db.Host, db.Port = br.ID, ep.Host, ep.Port
		if br.Rack != "" {
			rack := br.Rack
			db.Rack = &rack
		}
		resp.Brokers = append(resp.Brokers, db)
	}
	return resp, nil
}
