package metadata

import (
	"bytes"
	"encoding/json"
	"errors"
	"reflect"
	"strings"
	"testing"
)

// testCred returns a well-formed credential whose bytes are filled with b.
func testCred(m ScramMechanism, b byte, iters int32) ScramCredential {
	return ScramCredential{Mechanism: m, Iterations: iters,
		Salt: bytes.Repeat([]byte{b}, 16), StoredKey: bytes.Repeat([]byte{b + 1}, 32), ServerKey: bytes.Repeat([]byte{b + 2}, 32)}
}

func TestScramApply(t *testing.T) {
	im0 := emptyImage()
	im1 := applyOK(t, im0, AlterUserScramCmd{User: "alice", Set: []ScramCredential{testCred(ScramSHA256, 1, 4096), testCred(ScramSHA512, 2, 8192)}})
	im2 := applyOK(t, im1, AlterUserScramCmd{User: "bob", Set: []ScramCredential{testCred(ScramSHA512, 3, 4096)}})
	if len(im0.Scram) != 0 || len(im1.Scram) != 1 {
		t.Fatal("apply changed an earlier image")
	}
	if got := im2.SortedScramUsers(); !reflect.DeepEqual(got, []string{"alice", "bob"}) {
		t.Fatalf("users %v", got)
	}
	if cr, ok := im2.ScramCredential("alice", ScramSHA512); !ok || cr.Iterations != 8192 {
		t.Fatalf("alice SHA-512: %+v %v", cr, ok)
	}
	// Replace one, delete the other: all in one command.
	im3 := applyOK(t, im2, AlterUserScramCmd{User: "alice", Set: []ScramCredential{testCred(ScramSHA512, 9, 16384)}, Delete: []ScramMechanism{ScramSHA256}})
	if creds := im3.ScramCredentials("alice"); len(creds) != 1 || creds[0].Iterations != 16384 {
		t.Fatalf("alice after replace and delete: %+v", creds)
	}
	if _, ok := im2.ScramCredential("alice", ScramSHA256); !ok {
		t.Fatal("delete changed the earlier image")
	}
	// Deleting a missing credential fails the whole command.
	next, resp := im3.apply(AlterUserScramCmd{User: "alice", Set: []ScramCredential{testCred(ScramSHA256, 5, 4096)}, Delete: []ScramMechanism{ScramSHA256}}, 10)
	if next != nil || resp == nil {
		t.Fatalf("set and delete of one mechanism applied: %v", resp)
	}
	next, resp = im3.apply(AlterUserScramCmd{User: "carol", Delete: []ScramMechanism{ScramSHA256}}, 10)
	if err, _ := resp.(error); next != nil || !errors.Is(err, ErrUnknownScramCredential) {
		t.Fatalf("delete of a missing credential: %v", resp)
	}
	// The last credential gone, the user is gone.
	im4 := applyOK(t, im3, AlterUserScramCmd{User: "alice", Delete: []ScramMechanism{ScramSHA512}})
	if got := im4.SortedScramUsers(); !reflect.DeepEqual(got, []string{"bob"}) {
		t.Fatalf("users after deleting alice's last credential: %v", got)
	}
}

func TestScramCommandChecks(t *testing.T) {
	ok := testCred(ScramSHA256, 1, 4096)
	for _, tc := range []struct {
		name string
		cmd  AlterUserScramCmd
		want error
	}{
		{"empty user", AlterUserScramCmd{Set: []ScramCredential{ok}}, ErrUnacceptableCredential},
		{"nothing", AlterUserScramCmd{User: "u"}, ErrInvalidRequest},
		{"few iterations", AlterUserScramCmd{User: "u", Set: []ScramCredential{testCred(ScramSHA256, 1, 4095)}}, ErrUnacceptableCredential},
		{"many iterations", AlterUserScramCmd{User: "u", Set: []ScramCredential{testCred(ScramSHA256, 1, 16385)}}, ErrUnacceptableCredential},
		{"mechanism", AlterUserScramCmd{User: "u", Set: []ScramCredential{testCred(3, 1, 4096)}}, ErrUnsupportedScramMechanism},
		{"delete mechanism", AlterUserScramCmd{User: "u", Delete: []ScramMechanism{0}}, ErrUnsupportedScramMechanism},
		{"no salt", AlterUserScramCmd{User: "u", Set: []ScramCredential{{Mechanism: ScramSHA256, Iterations: 4096, StoredKey: []byte{1}, ServerKey: []byte{1}}}}, ErrUnacceptableCredential},
		{"twice", AlterUserScramCmd{User: "u", Set: []ScramCredential{ok}, Delete: []ScramMechanism{ScramSHA256}}, ErrInvalidRequest},
	} {
		if err := tc.cmd.check(); !errors.Is(err, tc.want) {
			t.Errorf("%s: %v, want %v", tc.name, err, tc.want)
		}
	}
	c := AlterUserScramCmd{User: "u", Set: []ScramCredential{ok}, Delete: []ScramMechanism{ScramSHA512}}
	for _, cmd := range []Command{c, RequestCmd{ID: "x", Cmd: c}} {
		b, err := EncodeCommand(cmd)
		if err != nil {
			t.Fatal(err)
		}
		got, err := DecodeCommand(b)
		if err != nil || !reflect.DeepEqual(got, cmd) {
			t.Fatalf("round trip: %#v, %v", got, err)
		}
	}
	if CmdAlterUserScram.String() != "AlterUserScram" {
		t.Errorf("name %s", CmdAlterUserScram)
	}
	for _, e := range []error{ErrUnknownScramCredential, ErrUnacceptableCredential, ErrUnsupportedScramMechanism} {
		if got := encodeResult(e).err(); !errors.Is(got, e) {
			t.Errorf("%v did not survive encoding: %v", e, got)
		}
	}
	for _, name := range []string{"SCRAM-SHA-256", "SCRAM-SHA-512"} {
		if m, ok := ParseScramMechanism(name); !ok || m.String() != name {
			t.Errorf("ParseScramMechanism(%s) = %v, %v", name, m, ok)
		}
	}
	if _, ok := ParseScramMechanism("PLAIN"); ok {
		t.Error("PLAIN parsed as SCRAM")
	}
}

func TestScramSnapshot(t *testing.T) {
	im := applyOK(t, emptyImage(), AlterUserScramCmd{User: "alice", Set: []ScramCredential{testCred(ScramSHA256, 1, 4096), testCred(ScramSHA512, 2, 8192)}})
	im = applyOK(t, im, RegisterBrokerCmd{Broker: Broker{ID: 1, Host: "h", Port: 9092, ClusterAddr: "h:9093",
		Listeners: []Endpoint{{"PLAINTEXT", "h", 9092, "PLAINTEXT"}, {"SASL_SSL", "h", 9095, "SASL_SSL"}}}})
	var buf bytes.Buffer
	if err := encodeSnapshot(&buf, im); err != nil {
		t.Fatal(err)
	}
	if strings.Contains(buf.String(), "password") {
		t.Fatal("snapshot mentions a password")
	}
	got, err := decodeSnapshot(bytes.NewReader(buf.Bytes()))
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got.Scram, im.Scram) || !reflect.DeepEqual(got.Brokers, im.Brokers) {
		t.Fatalf("restored %+v %+v, want %+v %+v", got.Scram, got.Brokers, im.Scram, im.Brokers)
	}
	// A broken credential in a snapshot is refused.
	var d map[string]any
	if err := json.Unmarshal(buf.Bytes(), &d); err != nil {
		t.Fatal(err)
	}
	d["scram"].([]any)[0].(map[string]any)["credentials"].([]any)[0].(map[string]any)["iterations"] = 1
	bad, _ := json.Marshal(d)
	if _, err := decodeSnapshot(bytes.NewReader(bad)); !errors.Is(err, ErrInvalidCommand) {
		t.Fatalf("snapshot with 1 iteration: %v", err)
	}
}

func TestBrokerListeners(t *testing.T) {
	old := Broker{ID: 1, Host: "h", Port: 9092}
	if e, ok := old.Endpoint("SASL_SSL"); !ok || e.Host != "h" || e.Port != 9092 {
		t.Fatalf("registration without listeners: %+v %v", e, ok)
	}
	b := Broker{ID: 1, Host: "h", Port: 9092, Listeners: []Endpoint{{"PLAINTEXT", "h", 9092, "PLAINTEXT"}, {"SSL", "s", 9093, "SSL"}}}
	if e, ok := b.Endpoint("SSL"); !ok || e.Host != "s" || e.Port != 9093 {
		t.Fatalf("SSL endpoint %+v %v", e, ok)
	}
	if _, ok := b.Endpoint("SASL_SSL"); ok {
		t.Fatal("unknown listener found")
	}
	// Registering the same listeners again changes nothing; others replace.
	im := applyOK(t, emptyImage(), RegisterBrokerCmd{Broker: b})
	if next, _ := im.apply(RegisterBrokerCmd{Broker: b}, im.Index+1); next != nil {
		t.Fatal("same registration changed the image")
	}
	b2 := b
	b2.Listeners = []Endpoint{{"PLAINTEXT", "h", 9092, "PLAINTEXT"}}
	if next, _ := im.apply(RegisterBrokerCmd{Broker: b2}, im.Index+1); next == nil {
		t.Fatal("new listeners did not change the image")
	}
	for _, bad := range [][]Endpoint{
		{{"", "h", 1, "PLAINTEXT"}},
		{{"A", "h", 1, "PLAINTEXT"}, {"A", "h", 2, "PLAINTEXT"}},
		{{"A", "", 1, "PLAINTEXT"}},
		{{"A", "h", 0, "PLAINTEXT"}},
	} {
		if err := (RegisterBrokerCmd{Broker: Broker{ID: 1, Host: "h", Port: 1, Listeners: bad}}).check(); !errors.Is(err, ErrInvalidRequest) {
			t.Errorf("listeners %+v: %v", bad, err)
		}
	}
	// A snapshot written before listeners existed restores without them.
	var d snapshotData
	if err := json.Unmarshal([]byte(`{"version":5,"cluster_id":"c","brokers":[{"ID":1,"Host":"h","Port":9092,"Rack":"","ClusterAddr":"h:1"}],"topics":null,"next_stream_id":1,"next_producer_id":0,"index":3}`), &d); err != nil {
		t.Fatal(err)
	}
	restored, err := decodeImage(&d)
	if err != nil || restored.Brokers[1].Listeners != nil || restored.Brokers[1].Port != 9092 {
		t.Fatalf("old snapshot: %+v, %v", restored.Brokers, err)
	}
}

func TestStoreScram(t *testing.T) {
	s := openTestStore(t)
	ctx := t.Context()
	if err := s.AlterUserScram(ctx, "alice", []ScramCredential{testCred(ScramSHA512, 1, 4096)}, nil); err != nil {
		t.Fatal(err)
	}
	if _, ok := s.Image().ScramCredential("alice", ScramSHA512); !ok {
		t.Fatal("credential not in the image after the write")
	}
	if err := s.AlterUserScram(ctx, "alice", nil, []ScramMechanism{ScramSHA256}); !errors.Is(err, ErrUnknownScramCredential) {
		t.Fatalf("delete of a missing credential: %v", err)
	}
	if err := s.AlterUserScram(ctx, "alice", []ScramCredential{testCred(ScramSHA512, 1, 100)}, nil); !errors.Is(err, ErrUnacceptableCredential) {
		t.Fatalf("100 iterations: %v", err)
	}
	if err := s.AlterUserScram(ctx, "alice", nil, []ScramMechanism{ScramSHA512}); err != nil {
		t.Fatal(err)
	}
	if len(s.Image().Scram) != 0 {
		t.Fatalf("users left: %v", s.Image().SortedScramUsers())
	}
}
