package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestSecurityFlags(t *testing.T) {
	noEnv := func(string) string { return "" }
	for _, tc := range []struct {
		flags securityFlags
		env   func(string) string
		want  string // "" for valid
	}{
		{securityFlags{}, noEnv, ""},
		{securityFlags{tls: true, caFile: "ca.pem"}, noEnv, ""},
		{securityFlags{mechanism: "SCRAM-SHA-512", user: "alice", password: "pw"}, noEnv, ""},
		{securityFlags{mechanism: "PLAIN", user: "alice"}, func(k string) string {
			if k == "SHOAL_SASL_PASSWORD" {
				return "pw"
			}
			return ""
		}, ""},
		{securityFlags{mechanism: "GSSAPI", user: "alice", password: "pw"}, noEnv, "--sasl-mechanism"},
		{securityFlags{mechanism: "PLAIN", user: "alice"}, noEnv, "password"},
		{securityFlags{mechanism: "PLAIN", password: "pw"}, noEnv, "--sasl-user"},
		{securityFlags{user: "alice"}, noEnv, "--sasl-mechanism"},
	} {
		s := tc.flags
		err := s.resolve(tc.env)
		switch {
		case tc.want == "" && err != nil:
			t.Errorf("%+v: %v", tc.flags, err)
		case tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)):
			t.Errorf("%+v: %v, want an error with %q", tc.flags, err, tc.want)
		}
	}
	dir := t.TempDir()
	bad := filepath.Join(dir, "bad.pem")
	if err := os.WriteFile(bad, []byte("not pem"), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, file := range []string{bad, filepath.Join(dir, "missing.pem")} {
		s := securityFlags{caFile: file}
		if _, err := s.kgoOpts(); err == nil {
			t.Errorf("CA file %s accepted", file)
		}
	}
	s := securityFlags{tls: true, mechanism: "SCRAM-SHA-256", user: "u", password: "p"}
	if opts, err := s.kgoOpts(); err != nil || len(opts) != 2 {
		t.Errorf("TLS and SCRAM: %d options, %v", len(opts), err)
	}
	// A bad combination is a usage error (exit 2).
	code, _, stderr := runCtl(nil, "--sasl-mechanism", "PLAIN", "--sasl-user", "u", "topics", "list")
	if code != exitUsage || !strings.Contains(stderr, "password") {
		t.Errorf("PLAIN without a password: exit %d, %s", code, stderr)
	}
}
