package broker

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"errors"
	"fmt"
	"os"
	"sync/atomic"
	"time"

	"github.com/shoal-io/shoal/internal/raftgroup"
)

// TLS for the SSL and SASL_SSL listeners and the cluster listener. The
// certificate, key and client CA are read from files at start and again on
// ReloadTLS (SIGHUP): every handshake takes the current set through
// tls.Config.GetConfigForClient, so new connections get the new
// certificate while established ones keep theirs.

// ClientAuth is the client-certificate policy of TLS listeners (Kafka's
// ssl.client.auth).
type ClientAuth string

// The client-certificate policies.
const (
	// ClientAuthNone asks for no client certificate.
	ClientAuthNone ClientAuth = "none"
	// ClientAuthRequested asks for one and verifies it against the CA
	// when given; clients without one connect as User:ANONYMOUS.
	ClientAuthRequested ClientAuth = "requested"
	// ClientAuthRequired refuses clients without a valid certificate.
	ClientAuthRequired ClientAuth = "required"
)

// TLSConfig is the broker's TLS material.
type TLSConfig struct {
	// CertFile and KeyFile are the PEM certificate (chain) and private key.
	CertFile, KeyFile string
	// CAFile is the PEM bundle of CAs that sign client certificates (and,
	// with ClusterTLS, the other brokers' certificates).
	CAFile string
	// ClientAuth is the client-certificate policy; "" means none.
	ClientAuth ClientAuth
}

// tlsHandshakeTimeout bounds a Kafka connection's TLS handshake.
const tlsHandshakeTimeout = 10 * time.Second

// ErrNoTLS is returned by ReloadTLS when no listener uses TLS.
var ErrNoTLS = errors.New("broker: no TLS configured")

// check validates the TLS settings; need says whether a listener uses TLS.
func (t TLSConfig) check(need, cluster bool) error {
	switch t.ClientAuth {
	case "", ClientAuthNone, ClientAuthRequested, ClientAuthRequired:
	default:
		return fmt.Errorf("broker config: tls client auth %q: want none, requested or required", t.ClientAuth)
	}
	if !need {
		return nil
	}
	if t.CertFile == "" || t.KeyFile == "" {
		return errors.New("broker config: tls: an SSL or SASL_SSL listener or cluster TLS needs a certificate and a key file")
	}
	if t.CAFile == "" && ((t.ClientAuth != "" && t.ClientAuth != ClientAuthNone) || cluster) {
		return errors.New("broker config: tls: client authentication and cluster TLS need a CA file")
	}
	return nil
}

// tlsState is one loaded set of TLS material with the configs built on it.
type tlsState struct {
	cert   *tls.Certificate
	server *tls.Config // Kafka listeners
	peer   *tls.Config // cluster listener, accepted side (mutual)
	dial   *tls.Config // cluster listener, dialing side
}

// tlsStore holds the current TLS material; load swaps it atomically.
type tlsStore struct {
	cfg       TLSConfig
	cur       atomic.Pointer[tlsState]
	listeners *tls.Config // of every Kafka TLS listener (serverConfig)
}

// newTLSStore loads the files of cfg.
func newTLSStore(cfg TLSConfig) (*tlsStore, error) {
	s := &tlsStore{cfg: cfg}
	if err := s.load(); err != nil {
		return nil, err
	}
	s.listeners = &tls.Config{
		MinVersion: tls.VersionTLS12,
		GetConfigForClient: func(*tls.ClientHelloInfo) (*tls.Config, error) {
			return s.cur.Load().server, nil
		},
	}
	return s, nil
}

// load reads the certificate, key and CA files and makes them current. On
// error the current material stays.
func (s *tlsStore) load() error {
	cert, err := tls.LoadX509KeyPair(s.cfg.CertFile, s.cfg.KeyFile)
	if err != nil {
		return fmt.Errorf("tls: load %s and %s: %w", s.cfg.CertFile, s.cfg.KeyFile, err)
	}
	var pool *x509.CertPool
	if s.cfg.CAFile != "" {
		pem, err := os.ReadFile(s.cfg.CAFile)
		if err != nil {
			return fmt.Errorf("tls: %w", err)
		}
		pool = x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return fmt.Errorf("tls: %s holds no PEM certificate", s.cfg.CAFile)
		}
	}
	clientAuth := tls.NoClientCert
	switch s.cfg.ClientAuth {
	case ClientAuthRequested:
		clientAuth = tls.VerifyClientCertIfGiven
	case ClientAuthRequired:
		clientAuth = tls.RequireAndVerifyClientCert
	}
	certs := []tls.Certificate{cert}
	st := &tlsState{
		cert:   &cert,
		server: &tls.Config{Certificates: certs, ClientCAs: pool, ClientAuth: clientAuth, MinVersion: tls.VersionTLS12},
		peer: &tls.Config{Certificates: certs, ClientCAs: pool, ClientAuth: tls.RequireAndVerifyClientCert,
			MinVersion: tls.VersionTLS12},
		dial: &tls.Config{Certificates: certs, RootCAs: pool, MinVersion: tls.VersionTLS12},
	}
	s.cur.Store(st)
	return nil
}

// serverConfig is the config of Kafka TLS listeners: each handshake takes
// the current material.
func (s *tlsStore) serverConfig() *tls.Config { return s.listeners }

// clusterServerConfig is the accepted side of the cluster listener:
// mutual TLS with the current material.
func (s *tlsStore) clusterServerConfig() *tls.Config {
	return &tls.Config{
		MinVersion: tls.VersionTLS12,
		GetConfigForClient: func(*tls.ClientHelloInfo) (*tls.Config, error) {
			return s.cur.Load().peer, nil
		},
	}
}

// clusterDialConfig is the dialing side of the cluster listener, current
// at each dial.
func (s *tlsStore) clusterDialConfig() *tls.Config { return s.cur.Load().dial }

// certificate is the current certificate's leaf.
func (s *tlsStore) certificate() *x509.Certificate { return s.cur.Load().cert.Leaf }

// ReloadTLS reads the TLS certificate, key and CA files again; connections
// accepted from then on use them. On error (a missing or bad file) the
// previous material stays in use.
func (b *Broker) ReloadTLS() error {
	if b.tls == nil {
		return ErrNoTLS
	}
	if err := b.tls.load(); err != nil {
		b.logger.Warn("tls reload failed; the previous certificate stays", "err", err)
		return err
	}
	leaf := b.tls.certificate()
	b.logger.Info("tls certificate reloaded", "subject", leaf.Subject.String(),
		"serial", leaf.SerialNumber.String(), "not_after", leaf.NotAfter)
	return nil
}

// certPrincipal is the principal of a client certificate, as Kafka's
// default principal builder makes it: "User:" and the subject's
// distinguished name in RFC 2253 form (CN=...,OU=...,O=...).
func certPrincipal(cert *x509.Certificate) string {
	var rdns pkix.RDNSequence
	if rest, err := asn1.Unmarshal(cert.RawSubject, &rdns); err != nil || len(rest) > 0 {
		return "User:" + cert.Subject.String()
	}
	return "User:" + rdns.String()
}

// tlsHandshake completes the TLS handshake of a connection on a TLS
// listener, within tlsHandshakeTimeout, and takes the principal of a
// client certificate. A failed handshake closes the connection.
func (c *conn) tlsHandshake() bool {
	tc, ok := c.nc.(*tls.Conn)
	if !ok {
		return true
	}
	ctx, cancel := context.WithTimeout(c.ctx, tlsHandshakeTimeout)
	defer cancel()
	if err := tc.HandshakeContext(ctx); err != nil {
		c.logger.Info("closing connection: TLS handshake failed", "listener", c.auth.name, "err", err)
		c.abort()
		return false
	}
	if certs := tc.ConnectionState().PeerCertificates; len(certs) > 0 {
		p := certPrincipal(certs[0])
		c.auth.setCertPrincipal(p)
		c.logger.Debug("TLS client certificate", "listener", c.auth.name, "principal", p)
	}
	return true
}

// openTLS loads the TLS material when a listener or the cluster listener
// uses TLS.
func (b *Broker) openTLS() error {
	need := b.cfg.ClusterTLS
	for _, l := range b.cfg.listeners() {
		need = need || l.Protocol.TLS()
	}
	if !need {
		return nil
	}
	s, err := newTLSStore(b.cfg.TLS)
	if err != nil {
		return err
	}
	b.tls = s
	return nil
}

// clusterTLS returns the cluster listener's TLS option, if configured.
func (b *Broker) clusterTLS() []raftgroup.Option {
	if !b.cfg.ClusterTLS {
		return nil
	}
	return []raftgroup.Option{raftgroup.WithTLS(b.tls.clusterServerConfig(), b.tls.clusterDialConfig)}
}
