package broker

import (
	"context"
	"regexp"

	"github.com/twmb/franz-go/pkg/kmsg"
)

// ApiVersions: v0-5
//
// Behavior:
// * The ApiKeys list is generated from the dispatch table (dispatch.go).
// * An ApiVersions request of a version newer than we know (KIP-511) gets a
//   v0 response with UNSUPPORTED_VERSION and our ApiKeys, so the client
//   retries with a version we serve (conn.badRequest, apiVersionsFallback).
// * No features are advertised (SupportedFeatures, FinalizedFeatures empty).
//
// Version notes:
// * v1: ThrottleMillis
// * v3: flexible; ClientSoftwareName/Version must match Kafka's pattern,
//   else INVALID_REQUEST (with the ApiKeys, as Kafka does)
// * v5: ClusterID and NodeID (KIP-1242): when both are set and either
//   differs from ours, REBOOTSTRAP_REQUIRED

// softwareNamePattern is Kafka's rule for client software names and versions.
var softwareNamePattern = regexp.MustCompile(`^[a-zA-Z0-9](?:[a-zA-Z0-9\-.]*[a-zA-Z0-9])?$`)

func (b *Broker) handleApiVersions(_ context.Context, r *request) (kmsg.Response, error) {
	req := r.req.(*kmsg.ApiVersionsRequest)
	resp := req.ResponseKind().(*kmsg.ApiVersionsResponse)
	resp.ApiKeys = apiKeys()
	if req.Version >= 3 && (!softwareNamePattern.MatchString(req.ClientSoftwareName) ||
		!softwareNamePattern.MatchString(req.ClientSoftwareVersion)) {
		resp.ErrorCode = errCode(errInvalidRequest)
		return resp, nil
	}
	if req.Version >= 5 && req.ClusterID != nil && req.NodeID >= 0 {
		if *req.ClusterID != b.meta.Image().ClusterID || req.NodeID != b.cfg.NodeID {
			resp.ErrorCode = errCode(errRebootstrap)
		}
	}
	return resp, nil
}

// apiVersionsFallback is the KIP-511 answer to an ApiVersions request of an
// unknown version: v0, UNSUPPORTED_VERSION, and the versions we serve.
func apiVersionsFallback() kmsg.Response {
	resp := kmsg.NewPtrApiVersionsResponse()
	resp.Version = 0
	resp.ErrorCode = errCode(errUnsupportedVersion)
	resp.ApiKeys = apiKeys()
	return resp
}
