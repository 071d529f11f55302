package broker

import (
	"context"
	"sync"

	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/shoal-io/shoal/metadata"
)

// InitProducerID: v0-5
//
// Behavior:
// * idempotent producers (no TransactionalID) get a fresh producer id with
//   epoch 0, also when they pass their current id and epoch (v3+, KIP-360):
//   as in Kafka, a non-transactional producer is never bumped, it gets a new id
// * producer ids come from the metadata group in blocks of 1000
//   (AllocateProducerIDs), so ids are unique across brokers and restarts;
//   a metadata group without leader gives COORDINATOR_NOT_AVAILABLE
// * a TransactionalID gets TRANSACTIONAL_ID_AUTHORIZATION_FAILED:
//   transactions are not supported
// * an idempotent producer needs IDEMPOTENT_WRITE on the cluster or WRITE
//   on some topic (KIP-679), else CLUSTER_AUTHORIZATION_FAILED
//
// Version notes:
// * v2: flexible
// * v3: ProducerID/ProducerEpoch in the request (ignored, see above)

// producerIDBlock is how many producer ids a broker reserves at a time.
const producerIDBlock = 1000

func (b *Broker) handleInitProducerID(ctx context.Context, r *request) (kmsg.Response, error) {
	req := r.req.(*kmsg.InitProducerIDRequest)
	resp := req.ResponseKind().(*kmsg.InitProducerIDResponse)
	resp.ProducerID, resp.ProducerEpoch = -1, -1
	if req.TransactionalID != nil {
		resp.ErrorCode = errCode(errTransactions)
		return resp, nil
	}
	if b.clusterDenied(r, opIdempotentWrite) != nil && !b.authorizedAny(r, opWrite, resTopic) { // authz.go
		resp.ErrorCode = errCode(errClusterAuthorization)
		return resp, nil
	}
	id, err := b.pids.next(ctx)
	if err != nil {
		resp.ErrorCode = producerIDErrCode(err)
		return resp, nil
	}
	resp.ProducerID, resp.ProducerEpoch = id, 0
	return resp, nil
}

// producerIDs hands out producer ids from blocks reserved in the metadata.
type producerIDs struct {
	meta *metadata.Store
	mu   struct {
		sync.Mutex
		next, end int64 // the current block is [next, end)
	}
}

func newProducerIDs(meta *metadata.Store) *producerIDs {
	return &producerIDs{meta: meta}
}

// next returns an unused producer id, reserving a new block when the
// current one is used up.
func (p *producerIDs) next(ctx context.Context) (int64, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.mu.next >= p.mu.end {
		first, err := p.meta.AllocateProducerIDs(ctx, producerIDBlock)
		if err != nil {
			return 0, err
		}
		p.mu.next, p.mu.end = first, first+producerIDBlock
	}
	id := p.mu.next
	p.mu.next++
	return id, nil
}
