package broker

import (
	"errors"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/shoal-io/shoal/metadata"
)

// acl builds a binding: allow says ALLOW or DENY, prefixed the pattern.
func acl(rt metadata.ACLResourceType, name string, prefixed bool, principal, host string, op metadata.ACLOperation, allow bool) metadata.ACLBinding {
	b := metadata.ACLBinding{ResourceType: rt, ResourceName: name, PatternType: metadata.ACLPatternLiteral,
		Principal: principal, Host: host, Operation: op, Permission: metadata.ACLPermissionDeny}
	if prefixed {
		b.PatternType = metadata.ACLPatternPrefixed
	}
	if allow {
		b.Permission = metadata.ACLPermissionAllow
	}
	return b
}

func TestAuthorize(t *testing.T) {
	const alice, bob = "User:alice", "User:bob"
	table := metadata.NewACLTable([]metadata.ACLBinding{
		acl(resTopic, "orders", false, alice, "*", opWrite, true),
		acl(resTopic, "logs-", true, alice, "*", opRead, true),
		acl(resTopic, "logs-secret", false, alice, "*", opRead, false),
		acl(resTopic, "*", false, "User:*", "*", opDescribeConfigs, true),
		acl(resTopic, "metrics", false, bob, "10.0.0.1", metadata.ACLOpAll, true),
		acl(resGroup, "app", false, alice, "*", opRead, true),
		acl(resTopic, "billing", false, alice, "*", opAlterConfigs, true),
		acl(resTopic, "billing", false, alice, "*", opDescribe, false),
		acl(resCluster, clusterName, false, bob, "*", metadata.ACLOpAll, false),
	})
	cfg := &Config{Authorizer: AuthorizerACL, SuperUsers: []string{"User:admin"}}
	a := authorizerFor(cfg, table)
	for _, tc := range []struct {
		name      string
		principal string
		host      string
		op        metadata.ACLOperation
		rt        metadata.ACLResourceType
		resource  string
		want      bool
	}{
		{"literal", alice, "1.2.3.4", opWrite, resTopic, "orders", true},
		{"other operation", alice, "1.2.3.4", opRead, resTopic, "orders", false},
		{"other principal", bob, "1.2.3.4", opWrite, resTopic, "orders", false},
		{"other name", alice, "1.2.3.4", opWrite, resTopic, "orders2", false},
		{"other type", alice, "1.2.3.4", opWrite, resGroup, "orders", false},
		{"prefixed", alice, "1.2.3.4", opRead, resTopic, "logs-app", true},
		{"prefix itself", alice, "1.2.3.4", opRead, resTopic, "logs-", true},
		{"not the prefix", alice, "1.2.3.4", opRead, resTopic, "logs", false},
		{"deny wins", alice, "1.2.3.4", opRead, resTopic, "logs-secret", false},
		{"wildcard resource and principal", bob, "1.2.3.4", opDescribeConfigs, resTopic, "anything", true},
		{"write implies describe", alice, "1.2.3.4", opDescribe, resTopic, "orders", true},
		{"read implies describe", alice, "1.2.3.4", opDescribe, resTopic, "logs-x", true},
		{"write does not imply read", alice, "1.2.3.4", opRead, resTopic, "orders", false},
		{"alter configs implies describe configs", alice, "1.2.3.4", opDescribeConfigs, resTopic, "billing", true},
		{"a deny does not imply", alice, "1.2.3.4", opDescribe, resTopic, "logs-secret", true},
		{"denied describe despite implication", alice, "1.2.3.4", opDescribe, resTopic, "billing", false},
		{"host matches", bob, "10.0.0.1", opDelete, resTopic, "metrics", true},
		{"host as IPv4-mapped IPv6", bob, "::ffff:10.0.0.1", opDelete, resTopic, "metrics", true},
		{"other host", bob, "10.0.0.2", opDelete, resTopic, "metrics", false},
		{"deny all", bob, "1.2.3.4", opDescribe, resCluster, clusterName, false},
		{"super user", "User:admin", "1.2.3.4", opAlter, resCluster, clusterName, true},
		{"no ACL denies", "User:carol", "1.2.3.4", opDescribe, resGroup, "app", false},
		{"group", alice, "1.2.3.4", opRead, resGroup, "app", true},
	} {
		if got := a.authorize(tc.principal, tc.host, tc.op, tc.rt, tc.resource); got != tc.want {
			t.Errorf("%s: %s %s %s %s:%s = %v, want %v", tc.name, tc.principal, tc.host, tc.op, tc.rt, tc.resource, got, tc.want)
		}
	}
	if !authorizerFor(&Config{}, table).authorize("User:carol", "1.2.3.4", opAlter, resCluster, clusterName) {
		t.Error("authorizer none denied")
	}
}

func TestAuthorizeAny(t *testing.T) {
	const p = "User:p"
	for _, tc := range []struct {
		name string
		acls []metadata.ACLBinding
		want bool
	}{
		{"none", nil, false},
		{"literal", []metadata.ACLBinding{acl(resTopic, "a", false, p, "*", opWrite, true)}, true},
		{"literal denied", []metadata.ACLBinding{acl(resTopic, "a", false, p, "*", opWrite, true), acl(resTopic, "a", false, p, "*", opWrite, false)}, false},
		{"denied by prefix", []metadata.ACLBinding{acl(resTopic, "ab", true, p, "*", opWrite, true), acl(resTopic, "a", true, p, "*", opWrite, false)}, false},
		{"longer deny prefix", []metadata.ACLBinding{acl(resTopic, "a", true, p, "*", opWrite, true), acl(resTopic, "ab", true, p, "*", opWrite, false)}, true},
		{"wildcard deny", []metadata.ACLBinding{acl(resTopic, "a", false, p, "*", opWrite, true), acl(resTopic, "*", false, "User:*", "*", metadata.ACLOpAll, false)}, false},
		{"other operation", []metadata.ACLBinding{acl(resTopic, "a", false, p, "*", opRead, true)}, false},
		{"other type", []metadata.ACLBinding{acl(resGroup, "a", false, p, "*", opWrite, true)}, false},
	} {
		a := authorizerFor(&Config{Authorizer: AuthorizerACL}, metadata.NewACLTable(tc.acls))
		if got := a.authorizeAny(p, "1.2.3.4", opWrite, resTopic); got != tc.want {
			t.Errorf("%s: %v, want %v", tc.name, got, tc.want)
		}
	}
}

func TestAuthorizerConfig(t *testing.T) {
	if got := ParseSuperUsers(" User:admin; ;User:ops;"); len(got) != 2 || got[0] != "User:admin" || got[1] != "User:ops" {
		t.Fatalf("ParseSuperUsers: %q", got)
	}
	for _, c := range []Config{{Authorizer: "simple"}, {Authorizer: AuthorizerACL, SuperUsers: []string{"admin"}}} {
		if err := c.checkAuthorizer(); err == nil {
			t.Errorf("%+v accepted", c)
		}
	}
}

func TestACLAPIs(t *testing.T) {
	ctx := t.Context()
	// Without an authorizer the ACL APIs answer SECURITY_DISABLED.
	none := kadm.NewClient(newClient(t, sharedBroker(t)))
	res, err := none.CreateACLs(ctx, kadm.NewACLs().Topics("t").Allow("User:a").Operations(kadm.OpRead))
	if err != nil || len(res) != 1 || !errors.Is(res[0].Err, kerr.SecurityDisabled) {
		t.Fatalf("create without authorizer: %+v, %v", res, err)
	}

	b := startBroker(t, func(c *Config) { c.Authorizer, c.SuperUsers = AuthorizerACL, []string{"User:ANONYMOUS"} })
	adm := kadm.NewClient(newClient(t, b))
	created, err := adm.CreateACLs(ctx, kadm.NewACLs().Topics("orders").Groups("app").
		ResourcePatternType(kadm.ACLPatternPrefixed).Allow("User:alice").Deny("User:bob").Operations(kadm.OpRead, kadm.OpDescribe))
	if err != nil || len(created) != 8 {
		t.Fatalf("create: %d results, %v", len(created), err)
	}
	for _, c := range created {
		if c.Err != nil {
			t.Fatalf("create %+v: %v", c, c.Err)
		}
	}
	bad := kmsg.NewPtrCreateACLsRequest()
	for _, name := range []string{"not-the-cluster", "kafka-cluster"} {
		c := kmsg.NewCreateACLsRequestCreation()
		c.ResourceType, c.ResourceName, c.Principal, c.Host = kmsg.ACLResourceTypeCluster, name, "User:ops", "*"
		c.Operation, c.PermissionType = kmsg.ACLOperationAlter, kmsg.ACLPermissionTypeAllow
		bad.Creations = append(bad.Creations, c)
	}
	if resp, err := bad.RequestWith(ctx, newClient(t, b)); err != nil || resp.Results[0].ErrorCode != kerr.InvalidRequest.Code || resp.Results[1].ErrorCode != 0 {
		t.Fatalf("cluster ACLs: %+v, %v", resp, err)
	}
	// MATCH finds the prefixed ACLs of a topic the prefix covers.
	described, err := adm.DescribeACLs(ctx, kadm.NewACLs().Topics("orders-eu").ResourcePatternType(kadm.ACLPatternMatch).
		Allow().AllowHosts().Deny().DenyHosts().Operations(kadm.OpAny))
	if err != nil || len(described) == 0 || described[0].Err != nil {
		t.Fatalf("describe: %+v, %v", described, err)
	}
	n := 0
	for _, d := range described {
		n += len(d.Described)
	}
	if n != 4 {
		t.Fatalf("described %d topic ACLs, want 4: %+v", n, described)
	}
	deleted, err := adm.DeleteACLs(ctx, kadm.NewACLs().AnyResource().ResourcePatternType(kadm.ACLPatternAny).
		Allow().AllowHosts().Deny().DenyHosts().Operations(kadm.OpAny))
	if err != nil {
		t.Fatal(err)
	}
	n = 0
	for _, d := range deleted {
		n += len(d.Deleted)
	}
	if n != 9 || b.meta.Image().ACLs.Len() != 0 {
		t.Fatalf("deleted %d ACLs, %d left", n, b.meta.Image().ACLs.Len())
	}
}

func TestAuthorizationInProcess(t *testing.T) {
	ctx := t.Context()
	b := startBroker(t, func(c *Config) { c.Authorizer = AuthorizerACL })
	cl := newClient(t, b, kgo.RecordRetries(0), kgo.RetryTimeout(time.Second))
	adm := kadm.NewClient(cl)
	if res, err := adm.DescribeACLs(ctx, kadm.NewACLs().AnyResource().ResourcePatternType(kadm.ACLPatternAny).
		Allow().AllowHosts().Deny().DenyHosts().Operations(kadm.OpAny)); err != nil || !errors.Is(res[0].Err, kerr.ClusterAuthorizationFailed) {
		t.Fatalf("describe ACLs without permission: %+v, %v", res, err)
	}
	grant := func(b2 metadata.ACLBinding) {
		if err := b.meta.CreateACLs(ctx, []metadata.ACLBinding{b2}); err != nil {
			t.Fatal(err)
		}
	}
	const anon = "User:ANONYMOUS"
	grant(acl(resCluster, clusterName, false, anon, "*", opCreate, true))
	if resp, err := adm.CreateTopic(ctx, 1, 1, nil, "logs-1"); err != nil || resp.Err != nil {
		t.Fatalf("create with CREATE on the cluster: %v %v", err, resp.Err)
	}
	produce := func(topic string) error {
		return cl.ProduceSync(ctx, &kgo.Record{Topic: topic, Value: []byte("v")}).FirstErr()
	}
	if err := produce("logs-1"); !errors.Is(err, kerr.TopicAuthorizationFailed) {
		t.Fatalf("produce without WRITE: %v", err)
	}
	grant(acl(resTopic, "logs-", true, anon, "127.0.0.1", opWrite, true))
	if err := produce("logs-1"); err != nil {
		t.Fatalf("produce with a prefixed WRITE: %v", err)
	}
	// Metadata lists only describable topics (WRITE implies DESCRIBE).
	if resp, err := adm.CreateTopic(ctx, 1, 1, nil, "secret"); err != nil || resp.Err != nil {
		t.Fatalf("create secret: %v %v", err, resp.Err)
	}
	topics, err := adm.ListTopics(ctx)
	if err != nil || len(topics) != 1 || !topics.Has("logs-1") {
		t.Fatalf("listed %v, %v", topics.Names(), err)
	}
}
