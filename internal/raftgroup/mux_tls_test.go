package raftgroup

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"fmt"
	"math/big"
	"net"
	"testing"
	"time"
)

// testPKI is a CA and a certificate it signed for 127.0.0.1, usable by a
// node as server and as client.
type testPKI struct {
	pool *x509.CertPool
	cert tls.Certificate
}

func newTestPKI(t *testing.T) testPKI {
	t.Helper()
	caKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	caTmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "raftgroup test CA"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign,
	}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	ca, _ := x509.ParseCertificate(caDER)
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(2), Subject: pkix.Name{CommonName: "node"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		KeyUsage:    x509.KeyUsageDigitalSignature,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth},
		IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca, &key.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AddCert(ca)
	return testPKI{pool: pool, cert: tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}}
}

// option returns the mutual-TLS option of a node holding p's certificate.
func (p testPKI) option() Option {
	server := &tls.Config{Certificates: []tls.Certificate{p.cert}, ClientCAs: p.pool,
		ClientAuth: tls.RequireAndVerifyClientCert, MinVersion: tls.VersionTLS12}
	client := &tls.Config{Certificates: []tls.Certificate{p.cert}, RootCAs: p.pool, MinVersion: tls.VersionTLS12}
	return WithTLS(server, func() *tls.Config { return client })
}

// TestTwoGroupsOverTLS runs two 3-voter groups over three mutual-TLS
// listeners, and checks that a peer without a certificate of the CA is
// refused.
func TestTwoGroupsOverTLS(t *testing.T) {
	pki := newTestPKI(t)
	var muxes []*Mux
	var peers []Peer
	for i := 1; i <= 3; i++ {
		m, err := Listen("127.0.0.1:0", quiet, pki.option())
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { m.Close() })
		muxes = append(muxes, m)
		peers = append(peers, Peer{ID: fmt.Sprint(i), Address: m.Addr().String()})
	}
	for _, name := range []string{"alpha", "beta"} {
		var groups []*Group
		var fsms []*countFSM
		for i, m := range muxes {
			f := &countFSM{}
			g, err := Open(Config{Name: name, Dir: t.TempDir(), NodeID: peers[i].ID, Mux: m, Peers: peers, Logger: quiet}, f)
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { g.Close() })
			groups, fsms = append(groups, g), append(fsms, f)
		}
		ctx, cancel := context.WithTimeout(t.Context(), 20*time.Second)
		err := groups[0].WaitLeader(ctx)
		cancel()
		if err != nil {
			t.Fatal(err)
		}
		for _, g := range groups {
			if !g.IsLeader() {
				continue
			}
			if err := g.Raft.Apply([]byte("x"), 5*time.Second).Error(); err != nil {
				t.Fatalf("%s: apply: %v", name, err)
			}
		}
		deadline := time.Now().Add(10 * time.Second)
		for _, f := range fsms {
			for f.count() != 1 {
				if time.Now().After(deadline) {
					t.Fatalf("%s: an FSM applied %d entries, want 1", name, f.count())
				}
				time.Sleep(10 * time.Millisecond) // polling interval
			}
		}
	}

	// A plain TCP peer and a TLS peer with a certificate of another CA are
	// refused: neither reaches a group.
	plain, err := Listen("127.0.0.1:0", quiet)
	if err != nil {
		t.Fatal(err)
	}
	defer plain.Close()
	stranger, err := Listen("127.0.0.1:0", quiet, newTestPKI(t).option())
	if err != nil {
		t.Fatal(err)
	}
	defer stranger.Close()
	for name, m := range map[string]*Mux{"plain": plain, "other CA": stranger} {
		ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
		c, err := m.Dial(ctx, muxes[0].Addr().String(), "alpha")
		cancel()
		if err == nil {
			// The preamble went out; the listener must close without a byte.
			c.SetReadDeadline(time.Now().Add(5 * time.Second))
			var b [1]byte
			_, err = c.Read(b[:])
			c.Close()
		}
		if err == nil {
			t.Errorf("%s peer: connection accepted", name)
		}
	}
	if _, err := Listen("127.0.0.1:0", quiet, WithTLS(&tls.Config{}, nil)); err == nil {
		t.Error("TLS without a client config accepted")
	}
}
