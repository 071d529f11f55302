package integration

import (
	"context"
	"errors"
	"maps"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
	"github.com/twmb/franz-go/pkg/sasl/scram"
)

// aclBroker is a shoald with --authorizer acl: a PLAINTEXT listener (the
// harness's Addr, principal User:ANONYMOUS) and a SASL_PLAINTEXT one, the
// SCRAM users admin (the super user) and alice.
type aclBroker struct {
	*Broker
	sasl string
}

// startACLBroker creates the users while no authorizer runs (the first
// way docs/acls.md gives), then restarts with --authorizer acl.
func startACLBroker(t *testing.T) *aclBroker {
	t.Helper()
	s := &aclBroker{sasl: FreeAddr(t)}
	s.Broker = StartBroker(t, func(b *Broker) {
		b.args = append(b.args, "--listeners", "PLAINTEXT://"+b.Addr+",SASL_PLAINTEXT://"+s.sasl)
	})
	var users []kadm.UpsertSCRAM
	for _, u := range []string{"admin", "alice"} {
		users = append(users, kadm.UpsertSCRAM{User: u, Mechanism: kadm.ScramSha512, Iterations: 4096, Password: u + "-pw"})
	}
	res, err := kadm.NewClient(s.Client(t)).AlterUserSCRAMs(t.Context(), nil, users)
	if err == nil {
		err = res.Error()
	}
	if err != nil {
		t.Fatalf("create users: %v", err)
	}
	s.Stop()
	s.AddArgs("--authorizer", "acl", "--super-users", "User:admin")
	s.Restart()
	return s
}

// client returns a client of user on the SASL listener.
func (s *aclBroker) client(t *testing.T, user string, opts ...kgo.Opt) *kgo.Client {
	t.Helper()
	cl, err := kgo.NewClient(append([]kgo.Opt{kgo.SeedBrokers(s.sasl), kgo.RetryTimeout(5 * time.Second),
		kgo.SASL(scram.Auth{User: user, Pass: user + "-pw"}.AsSha512Mechanism()), kgo.FetchMaxWait(200 * time.Millisecond),
		kgo.MetadataMinAge(10 * time.Millisecond)}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cl.Close)
	return cl
}

// acls runs shoalctl acls as the super user.
func (s *aclBroker) acls(t *testing.T, args ...string) string {
	t.Helper()
	return ctlOK(t, []string{"SHOAL_SASL_PASSWORD=admin-pw"}, append([]string{"--bootstrap", s.sasl,
		"--sasl-mechanism", "SCRAM-SHA-512", "--sasl-user", "admin", "acls"}, args...)...)
}

// allowAlice gives alice op on the topics starting with "orders-", or on a
// literal resource ("--group", "app").
func (s *aclBroker) allowAlice(t *testing.T, op string, resource ...string) {
	t.Helper()
	if len(resource) == 0 {
		resource = []string{"--topic", "orders-", "--resource-pattern-type", "prefixed"}
	}
	s.acls(t, append([]string{"create", "--allow-principal", "User:alice", "--operation", op}, resource...)...)
}

func wantErr(t *testing.T, what string, err, want error) {
	t.Helper()
	if !errors.Is(err, want) {
		t.Fatalf("%s: %v, want %v", what, err, want)
	}
}

// TestACLs is the authorisation matrix of issue [F]: for create topic,
// describe (Metadata), produce, consume with a group, alter configs and
// delete topic, alice without the ACL gets the *_AUTHORIZATION_FAILED
// error and changes nothing; with it she succeeds. Her ACLs are prefixed
// ("orders-"): they match orders-1 and not "secret" or "order"; Metadata
// answers a name she may not describe the same whether it exists or not.
func TestACLs(t *testing.T) {
	s := startACLBroker(t)
	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
	defer cancel()
	adminCl := s.client(t, "admin")
	admin := kadm.NewClient(adminCl)
	aliceCl := s.client(t, "alice", kgo.DisableIdempotentWrite(), kgo.RecordRetries(1))
	alice := kadm.NewClient(aliceCl)
	if _, err := admin.CreateTopic(ctx, 1, 1, nil, "secret"); err != nil {
		t.Fatalf("admin creates secret: %v", err)
	}
	exists := func(topic string) bool {
		_, ok := topicCodes(t, ctx, adminCl)[topic]
		return ok
	}

	// Create topic.
	_, err := alice.CreateTopic(ctx, 1, 1, nil, "orders-1")
	wantErr(t, "create without CREATE", err, kerr.TopicAuthorizationFailed)
	if exists("orders-1") {
		t.Fatal("a denied CreateTopics created the topic")
	}
	s.allowAlice(t, "Create")
	if _, err := alice.CreateTopic(ctx, 1, 1, nil, "orders-1"); err != nil {
		t.Fatalf("create with CREATE: %v", err)
	}
	if _, err := alice.CreateTopic(ctx, 1, 1, nil, "order"); !errors.Is(err, kerr.TopicAuthorizationFailed) || exists("order") {
		t.Fatalf("create outside the prefix: %v", err)
	}

	// Describe: Metadata lists nothing alice may not describe and answers
	// an existing and a missing name alike.
	if codes := topicCodes(t, ctx, aliceCl); len(codes) != 0 {
		t.Fatalf("alice lists %v (CREATE does not imply DESCRIBE)", codes)
	}
	denied := map[string]int16{"secret": kerr.TopicAuthorizationFailed.Code, "no-such-topic": kerr.TopicAuthorizationFailed.Code}
	if codes := topicCodes(t, ctx, aliceCl, "secret", "no-such-topic"); !maps.Equal(codes, denied) {
		t.Fatalf("metadata of secret and no-such-topic: %v, want %v", codes, denied)
	}
	s.allowAlice(t, "Describe")
	if codes := topicCodes(t, ctx, aliceCl); !maps.Equal(codes, map[string]int16{"orders-1": 0}) {
		t.Fatalf("alice lists %v; want orders-1", codes)
	}

	// Produce.
	produce := func(cl *kgo.Client) error {
		return cl.ProduceSync(ctx, &kgo.Record{Topic: "orders-1", Value: []byte("v")}).FirstErr()
	}
	wantErr(t, "produce without WRITE", produce(aliceCl), kerr.TopicAuthorizationFailed)
	if ends, err := admin.ListEndOffsets(ctx, "orders-1"); err != nil || ends["orders-1"][0].Offset != 0 {
		t.Fatalf("a denied produce appended: end offsets %v, %v", ends, err)
	}
	s.allowAlice(t, "Write")
	idempotent := s.client(t, "alice") // WRITE on a topic stands for IDEMPOTENT_WRITE (KIP-679)
	for range 3 {
		if err := produce(idempotent); err != nil {
			t.Fatalf("produce with WRITE: %v", err)
		}
	}

	// Consume with a group.
	res, err := alice.CommitOffsets(ctx, "app", kadm.Offsets{"orders-1": {0: {Topic: "orders-1", At: 1, LeaderEpoch: -1}}})
	if err == nil {
		err = res.Error()
	}
	wantErr(t, "commit without READ", err, kerr.GroupAuthorizationFailed)
	if offs, err := admin.FetchOffsets(ctx, "app"); err != nil || len(offs) != 0 {
		t.Fatalf("a denied commit stored %v, %v", offs, err)
	}
	direct := s.client(t, "alice", kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{"orders-1": {0: kgo.NewOffset().AtStart()}}))
	pollErr(t, ctx, direct, kerr.TopicAuthorizationFailed)
	s.allowAlice(t, "Read")
	s.allowAlice(t, "Read", "--group", "app")
	consumer := s.client(t, "alice", kgo.ConsumerGroup("app"), kgo.ConsumeTopics("orders-1"),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()), kgo.DisableAutoCommit())
	consumeFrom(t, consumer, "orders-1", map[int32]int64{0: 3}, 30*time.Second, t.Errorf)
	if err := consumer.CommitUncommittedOffsets(ctx); err != nil {
		t.Fatalf("commit with READ: %v", err)
	}
	if offs, err := admin.FetchOffsets(ctx, "app"); err != nil || offs["orders-1"][0].At != 3 {
		t.Fatalf("committed %v, %v; want orders-1/0 at 3", offs, err)
	}

	// Alter configs.
	retention := []kadm.AlterConfig{{Op: kadm.SetConfig, Name: "retention.ms", Value: kmsg.StringPtr("60000")}}
	altered, err := alice.AlterTopicConfigs(ctx, retention, "orders-1")
	if err == nil {
		err = altered[0].Err
	}
	wantErr(t, "alter configs without ALTER_CONFIGS", err, kerr.TopicAuthorizationFailed)
	if v, _ := topicConfig(t, admin, "orders-1", "retention.ms"); v == "60000" {
		t.Fatal("a denied AlterConfigs changed retention.ms")
	}
	s.allowAlice(t, "AlterConfigs")
	if altered, err := alice.AlterTopicConfigs(ctx, retention, "orders-1"); err != nil || altered[0].Err != nil {
		t.Fatalf("alter configs with ALTER_CONFIGS: %v %v", err, altered)
	}
	if v, _ := topicConfig(t, admin, "orders-1", "retention.ms"); v != "60000" {
		t.Fatalf("retention.ms is %s after the change", v)
	}

	// Delete topic: without DESCRIBE the answer does not tell whether the
	// topic exists; with DESCRIBE but not DELETE it is refused too.
	for _, name := range []string{"secret", "no-such-topic", "orders-1"} {
		resp, err := alice.DeleteTopic(ctx, name)
		if err == nil {
			err = resp.Err
		}
		wantErr(t, "delete "+name+" without DELETE", err, kerr.TopicAuthorizationFailed)
	}
	if !exists("secret") || !exists("orders-1") {
		t.Fatal("a denied DeleteTopics deleted a topic")
	}
	s.allowAlice(t, "Delete")
	if resp, err := alice.DeleteTopic(ctx, "orders-1"); err != nil || resp.Err != nil || exists("orders-1") {
		t.Fatalf("delete with DELETE: %v %v", err, resp.Err)
	}

	// shoalctl acls list and delete.
	out := s.acls(t, "list", "--principal", "User:alice", "--output", "json")
	if n := strings.Count(out, `"principal": "User:alice"`); n != 7 || !strings.Contains(out, `"pattern_type": "PREFIXED"`) {
		t.Fatalf("alice has %d ACLs, want 7:\n%s", n, out)
	}
	s.acls(t, "delete", "--allow-principal", "User:alice", "--topic", "orders-", "--resource-pattern-type", "prefixed")
	if out := s.acls(t, "list"); strings.Contains(out, "orders-") || !strings.Contains(out, "GROUP") {
		t.Fatalf("after deleting the prefixed ACLs:\n%s", out)
	}
}

// topicCodes asks Metadata for the topics named (none: all) and returns
// each answered topic's error code. It bypasses kadm, which answers from
// kgo's metadata cache.
func topicCodes(t *testing.T, ctx context.Context, cl *kgo.Client, names ...string) map[string]int16 {
	t.Helper()
	req := kmsg.NewPtrMetadataRequest()
	for _, n := range names {
		rt := kmsg.NewMetadataRequestTopic()
		rt.Topic = kmsg.StringPtr(n)
		req.Topics = append(req.Topics, rt)
	}
	resp, err := req.RequestWith(ctx, cl)
	if err != nil {
		t.Fatalf("metadata: %v", err)
	}
	codes := map[string]int16{}
	for _, rt := range resp.Topics {
		codes[*rt.Topic] = rt.ErrorCode
	}
	return codes
}

// pollErr polls cl until a fetch fails with want.
func pollErr(t *testing.T, ctx context.Context, cl *kgo.Client, want error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(ctx, 15*time.Second)
	defer cancel()
	for {
		fs := cl.PollFetches(ctx)
		if ctx.Err() != nil {
			t.Fatalf("no fetch failed with %v", want)
		}
		for _, e := range fs.Errors() {
			if errors.Is(e.Err, want) {
				return
			}
		}
		if fs.NumRecords() > 0 {
			t.Fatal("a denied fetch returned records")
		}
	}
}
