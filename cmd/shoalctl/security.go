package main

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"flag"
	"fmt"
	"os"

	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/sasl"
	"github.com/twmb/franz-go/pkg/sasl/plain"
	"github.com/twmb/franz-go/pkg/sasl/scram"
)

// securityFlags are the global flags that secure the Kafka connection:
// TLS (the SSL and SASL_SSL listeners) and SASL (SASL_PLAINTEXT and
// SASL_SSL). The SASL password comes from --sasl-password or, better (a
// command line is visible to every local user), SHOAL_SASL_PASSWORD.
type securityFlags struct {
	tls                       bool
	caFile                    string
	mechanism, user, password string
}

// register adds the security flags to fs, keeping values parsed by an
// earlier flag set.
func (s *securityFlags) register(fs *flag.FlagSet) {
	str := func(p *string, name, usage string) {
		if fs.Lookup(name) == nil {
			fs.StringVar(p, name, *p, usage)
		}
	}
	if fs.Lookup("tls") == nil {
		fs.BoolVar(&s.tls, "tls", s.tls, "connect to the brokers over TLS (an SSL or SASL_SSL listener)")
	}
	str(&s.caFile, "tls-ca-file", "PEM `file` of the CAs that sign the brokers' certificates (implies --tls; default: the system's)")
	str(&s.mechanism, "sasl-mechanism", "SASL `mechanism`: PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512 (a SASL_PLAINTEXT or SASL_SSL listener)")
	str(&s.user, "sasl-user", "SASL `user`")
	str(&s.password, "sasl-password", "SASL `password` (prefer env SHOAL_SASL_PASSWORD)")
}

// resolve takes the password from the environment when no flag gave one
// and checks that the flags fit together.
func (s *securityFlags) resolve(env func(string) string) error {
	if s.password == "" {
		s.password = env("SHOAL_SASL_PASSWORD")
	}
	switch s.mechanism {
	case "":
		if s.user != "" {
			return errors.New("--sasl-user needs --sasl-mechanism")
		}
		return nil
	case "PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512":
	default:
		return fmt.Errorf("--sasl-mechanism %q: want PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512", s.mechanism)
	}
	if s.user == "" || s.password == "" {
		return errors.New("--sasl-mechanism needs --sasl-user and a password (--sasl-password or SHOAL_SASL_PASSWORD)")
	}
	return nil
}

// kgoOpts returns the client options of the flags (none for nil).
func (s *securityFlags) kgoOpts() ([]kgo.Opt, error) {
	if s == nil {
		return nil, nil
	}
	var opts []kgo.Opt
	if s.tls || s.caFile != "" {
		cfg := &tls.Config{MinVersion: tls.VersionTLS12}
		if s.caFile != "" {
			pem, err := os.ReadFile(s.caFile)
			if err != nil {
				return nil, fmt.Errorf("--tls-ca-file: %w", err)
			}
			cfg.RootCAs = x509.NewCertPool()
			if !cfg.RootCAs.AppendCertsFromPEM(pem) {
				return nil, fmt.Errorf("--tls-ca-file %s: no PEM certificate in it", s.caFile)
			}
		}
		opts = append(opts, kgo.DialTLSConfig(cfg))
	}
	var m sasl.Mechanism
	switch s.mechanism {
	case "PLAIN":
		m = plain.Auth{User: s.user, Pass: s.password}.AsMechanism()
	case "SCRAM-SHA-256":
		m = scram.Auth{User: s.user, Pass: s.password}.AsSha256Mechanism()
	case "SCRAM-SHA-512":
		m = scram.Auth{User: s.user, Pass: s.password}.AsSha512Mechanism()
	}
	if m != nil {
		opts = append(opts, kgo.SASL(m))
	}
	return opts, nil
}
