package broker

import (
	"context"

	"github.com/twmb/franz-go/pkg/kmsg"
)

// SaslHandshake: v0-1
//
// Behavior:
// * SupportedMechanisms lists the mechanisms SASL listeners accept (PLAIN,
//   SCRAM-SHA-256, SCRAM-SHA-512 unless configured otherwise)
// * on a PLAINTEXT or SSL listener: ILLEGAL_SASL_STATE, the connection
//   stays open (as Kafka answers)
// * a mechanism not enabled: UNSUPPORTED_SASL_MECHANISM, then the
//   connection closes
// * a handshake out of turn (a second one before SaslAuthenticate, or a v0
//   re-authentication): ILLEGAL_SASL_STATE, then the connection closes
// * on an authenticated connection a v1 handshake starts re-authentication
//   (KIP-368), which must use the session's mechanism
//
// Version notes:
// * v0: the SASL tokens that follow are raw size-prefixed frames, not
//   SaslAuthenticate requests (conn.rawSASLToken)
// * v1: SaslAuthenticate requests carry the tokens

func (b *Broker) handleSaslHandshake(_ context.Context, r *request) (kmsg.Response, error) {
	req := r.req.(*kmsg.SASLHandshakeRequest)
	resp := req.ResponseKind().(*kmsg.SASLHandshakeResponse)
	resp.SupportedMechanisms = b.saslMechanisms()
	err, fatal := r.conn.auth.begin(b, req.Version, req.Mechanism)
	if err != nil {
		resp.ErrorCode = errCode(err)
		r.closeAfter = fatal
		r.conn.logger.Info("SASL handshake refused", "listener", r.conn.auth.listenerName(),
			"mechanism", req.Mechanism, "err", err, "closing", fatal)
	}
	return resp, nil
}
