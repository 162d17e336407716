package broker

// InitProducerId, versions 0–5, for idempotent producers.
//
// A request without a transactional id always gets a fresh producer id at epoch 0, as Kafka does
// (also when a v3+ client passes its current id/epoch to bump after an error, KIP-360: for
// non-transactional producers Kafka hands out a new id). Ids come from blocks reserved through
// meta (Raft), so they are unique across brokers and restarts.
//
// Transactions are absent: a request with a transactional id is answered UNSUPPORTED_VERSION,
// which Java and franz-go producers report as a fatal "not supported by the broker" error instead
// of retrying forever.

import (
	"context"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

func init() { register(kmsg.InitProducerID, 0, 5, (*Broker).handleInitProducerID) }

func (b *Broker) handleInitProducerID(ctx context.Context, c *connCtx, kreq kmsg.Request) (kmsg.Response, error) {
	req := kreq.(*kmsg.InitProducerIDRequest)
	resp := req.ResponseKind().(*kmsg.InitProducerIDResponse)
	resp.ProducerID, resp.ProducerEpoch = -1, -1
	if req.TransactionalID != nil {
		resp.ErrorCode = kerr.UnsupportedVersion.Code
		return resp, nil
	}
	id, err := b.replicas.allocateProducerID(ctx)
	if err != nil {
		b.log.Warn("allocating a producer id", "err", err)
		// A metadata write that did not commit (no quorum, not the controller): the client
		// retries COORDINATOR_NOT_AVAILABLE.
		code := errorCode(err)
		if code == kerr.UnknownServerError.Code || code == kerr.NotController.Code || code == kerr.RequestTimedOut.Code {
			code = kerr.CoordinatorNotAvailable.Code
		}
		resp.ErrorCode = code
		return resp, nil
	}
	resp.ProducerID, resp.ProducerEpoch = id, 0
	return resp, nil
}
