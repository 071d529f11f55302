package broker

import (
	"reflect"
	"strings"
	"testing"
	"time"
)

func TestParseListeners(t *testing.T) {
	got, err := ParseListeners("PLAINTEXT://127.0.0.1:9092, SASL_SSL://:9095,INTERNAL://10.0.0.1:9096",
		"PLAINTEXT:PLAINTEXT,SASL_SSL:SASL_SSL,INTERNAL:sasl_plaintext",
		"SASL_SSL://kafka.example.com:19095")
	if err != nil {
		t.Fatal(err)
	}
	want := []Listener{
		{Name: "PLAINTEXT", Protocol: ProtocolPlaintext, Listen: "127.0.0.1:9092"},
		{Name: "SASL_SSL", Protocol: ProtocolSASLSSL, Listen: ":9095", Advertise: "kafka.example.com:19095"},
		{Name: "INTERNAL", Protocol: ProtocolSASLPlaintext, Listen: "10.0.0.1:9096"},
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("got %+v\nwant %+v", got, want)
	}
	// The default map names each protocol after itself.
	got, err = ParseListeners("SSL://127.0.0.1:9093", "", "")
	if err != nil || len(got) != 1 || got[0].Protocol != ProtocolSSL {
		t.Fatalf("default map: %+v, %v", got, err)
	}
	for _, tc := range []struct{ listeners, protocols, advertised, want string }{
		{"", "", "", "none given"},
		{"PLAINTEXT:9092", "", "", "NAME://HOST:PORT"},
		{"PLAINTEXT://nohost", "", "", "NAME://HOST:PORT"},
		{"bad name://h:1", "", "", "NAME://HOST:PORT"},
		{"PLAINTEXT://h:1,PLAINTEXT://h:2", "", "", "twice"},
		{"INTERNAL://h:1", "", "", "no security protocol"},
		{"A://h:1", "A:KERBEROS", "", "protocol must be"},
		{"A://h:1", "A", "", "NAME:PROTOCOL"},
		{"A://h:1", "A:SSL,A:SSL", "", "twice"},
		{"PLAINTEXT://h:1", "", "SSL://h:2", "not a listener"},
		{"PLAINTEXT://h:1", "", "PLAINTEXT://a:1,PLAINTEXT://b:1", "twice"},
		{"PLAINTEXT://h:1", "", "PLAINTEXT:a:1", "NAME://HOST:PORT"},
	} {
		_, err := ParseListeners(tc.listeners, tc.protocols, tc.advertised)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("ParseListeners(%q, %q, %q) = %v, want an error with %q", tc.listeners, tc.protocols, tc.advertised, err, tc.want)
		}
	}
}

func TestListenerConfigValidate(t *testing.T) {
	tlsFiles := TLSConfig{CertFile: "c.pem", KeyFile: "k.pem", CAFile: "ca.pem"}
	ok := []func(*Config){
		func(c *Config) {
			c.Listeners = []Listener{{Name: "PLAINTEXT", Protocol: ProtocolPlaintext, Listen: "127.0.0.1:0"}}
		},
		func(c *Config) {
			c.Listeners = []Listener{{Name: "A", Protocol: ProtocolSSL, Listen: "127.0.0.1:0"}, {Name: "B", Protocol: ProtocolSASLSSL, Listen: "127.0.0.1:0"}}
			c.TLS = TLSConfig{CertFile: "c.pem", KeyFile: "k.pem", ClientAuth: ClientAuthNone}
		},
		func(c *Config) { c.ClusterTLS, c.TLS = true, tlsFiles },
		func(c *Config) { c.SASLMechanisms, c.ConnectionsMaxReauth = []string{"SCRAM-SHA-512"}, time.Hour },
	}
	for i, edit := range ok {
		c := DefaultConfig()
		edit(&c)
		if err := c.Validate(); err != nil {
			t.Errorf("valid config %d: %v", i, err)
		}
	}
	for _, tc := range []struct {
		name string
		edit func(*Config)
		want string
	}{
		{"bad name", func(c *Config) { c.Listeners = []Listener{{Name: "a b", Protocol: ProtocolPlaintext, Listen: "h:1"}} }, "listener name"},
		{"bad protocol", func(c *Config) { c.Listeners = []Listener{{Name: "A", Protocol: "TLS", Listen: "h:1"}} }, "security protocol"},
		{"bad address", func(c *Config) { c.Listeners = []Listener{{Name: "A", Protocol: ProtocolPlaintext, Listen: "h"}} }, "listener A"},
		{"same port", func(c *Config) {
			c.Listeners = []Listener{{Name: "A", Protocol: ProtocolPlaintext, Listen: "h:1"}, {Name: "B", Protocol: ProtocolPlaintext, Listen: "i:1"}}
		}, "port 1 used twice"},
		{"advertised port 0", func(c *Config) {
			c.Listeners = []Listener{{Name: "A", Protocol: ProtocolPlaintext, Listen: "h:1", Advertise: "h:0"}}
		}, "advertised listener A"},
		{"ssl without cert", func(c *Config) { c.Listeners = []Listener{{Name: "A", Protocol: ProtocolSSL, Listen: "h:1"}} }, "certificate"},
		{"client auth without CA", func(c *Config) {
			c.Listeners = []Listener{{Name: "A", Protocol: ProtocolSSL, Listen: "h:1"}}
			c.TLS = TLSConfig{CertFile: "c", KeyFile: "k", ClientAuth: ClientAuthRequired}
		}, "CA file"},
		{"bad client auth", func(c *Config) { c.TLS.ClientAuth = "maybe" }, "client auth"},
		{"cluster tls without CA", func(c *Config) { c.ClusterTLS, c.TLS = true, TLSConfig{CertFile: "c", KeyFile: "k"} }, "CA file"},
		{"mechanism", func(c *Config) { c.SASLMechanisms = []string{"GSSAPI"} }, "SASL mechanism"},
		{"reauth", func(c *Config) { c.ConnectionsMaxReauth = -time.Second }, "reauth"},
	} {
		c := DefaultConfig()
		tc.edit(&c)
		err := c.Validate()
		if err == nil || !strings.Contains(err.Error(), tc.want) || strings.Contains(err.Error(), "\n") {
			t.Errorf("%s: %v, want one line with %q", tc.name, err, tc.want)
		}
	}
}
