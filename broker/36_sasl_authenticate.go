package broker

import (
	"context"
	"errors"
	"time"

	"github.com/twmb/franz-go/pkg/kmsg"
)

// SaslAuthenticate: v0-2
//
// Behavior:
// * carries the tokens of the mechanism chosen by SaslHandshake v1: PLAIN
//   (one round) or SCRAM-SHA-256/512 (two rounds)
// * a wrong password, an unknown user or a malformed token:
//   SASL_AUTHENTICATION_FAILED with an error message, then the connection
//   closes; the message is the same for an unknown user and a wrong
//   password
// * without a preceding handshake: ILLEGAL_SASL_STATE, then the connection
//   closes; on a PLAINTEXT or SSL listener ILLEGAL_SASL_STATE only
// * re-authentication (KIP-368) must authenticate the session's user
//
// Version notes:
// * v1: SessionLifetimeMillis: --connections-max-reauth-ms when set (0:
//   the session does not expire); an expired session must re-authenticate
//   before any other request, whatever version it authenticated with
// * v2: flexible

func (b *Broker) handleSaslAuthenticate(_ context.Context, r *request) (kmsg.Response, error) {
	req := r.req.(*kmsg.SASLAuthenticateRequest)
	resp := req.ResponseKind().(*kmsg.SASLAuthenticateResponse)
	a := r.conn.auth
	lifetime := b.cfg.ConnectionsMaxReauth
	reply, done, err := a.step(req.SASLAuthBytes, lifetime, time.Now())
	mech, user := a.attempt()
	if err != nil {
		resp.ErrorCode, resp.ErrorMessage = errCode(err), errMessage(err)
		r.closeAfter = a.protocol.SASL()
		r.conn.logger.Info("SASL authentication failed", "listener", a.listenerName(), "mechanism", mech,
			"user", user, "err", err, "closing", r.closeAfter)
		if !errors.Is(err, errSASLAuthenticationFailed) && !errors.Is(err, errIllegalSASLState) {
			resp.ErrorCode = errCode(errSASLAuthenticationFailed)
		}
		return resp, nil
	}
	resp.SASLAuthBytes = reply
	if done {
		resp.SessionLifetimeMillis = lifetime.Milliseconds()
		r.conn.logger.Debug("SASL authenticated", "listener", a.listenerName(), "mechanism", mech, "principal", a.principal())
	}
	return resp, nil
}
