package broker

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"slices"
	"strings"

	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/shoal-io/shoal/metadata"
)

// Authorisation, as Kafka's StandardAuthorizer decides it. With
// --authorizer none every request is allowed. With --authorizer acl a
// principal connected from a host may perform an operation on a resource
// when it is a super user, or when an ALLOW binding matches and no DENY
// binding does. A binding matches when its principal is the principal or
// "User:*", its host the client's address or "*", its pattern the resource
// (literal name, literal "*", or a prefix of the name), and its operation
// the operation or ALL; an ALLOW of READ, WRITE, DELETE or ALTER also
// allows DESCRIBE, and an ALLOW of ALTER_CONFIGS allows DESCRIBE_CONFIGS
// (a DENY never extends so). No binding means denied.

// The --authorizer values.
const (
	// AuthorizerNone allows every request.
	AuthorizerNone = "none"
	// AuthorizerACL decides by the ACLs stored in metadata.
	AuthorizerACL = "acl"
)

// Short names of the operations and resource types the handlers check.
const (
	opRead            = metadata.ACLOpRead
	opWrite           = metadata.ACLOpWrite
	opCreate          = metadata.ACLOpCreate
	opDelete          = metadata.ACLOpDelete
	opAlter           = metadata.ACLOpAlter
	opDescribe        = metadata.ACLOpDescribe
	opDescribeConfigs = metadata.ACLOpDescribeConfigs
	opAlterConfigs    = metadata.ACLOpAlterConfigs
	opIdempotentWrite = metadata.ACLOpIdempotentWrite

	resTopic           = metadata.ACLResourceTopic
	resGroup           = metadata.ACLResourceGroup
	resCluster         = metadata.ACLResourceCluster
	resTransactionalID = metadata.ACLResourceTransactionalID
)

// clusterName is the name of the one cluster resource.
const clusterName = metadata.ACLClusterName

// Authorisation failures; errcode.go maps them to Kafka codes.
var (
	errTopicAuthorization           = errors.New("broker: not authorized to access the topic")
	errGroupAuthorization           = errors.New("broker: not authorized to access the group")
	errClusterAuthorization         = errors.New("broker: not authorized to access the cluster")
	errTransactionalIDAuthorization = errors.New("broker: not authorized to use the transactional id")
	errSecurityDisabled             = errors.New("broker: no authorizer is configured (--authorizer none)")
)

// authorizer decides whether principal ("User:alice"), connected from host
// (an address), may perform an operation on resources.
type authorizer interface {
	// authorize reports whether op on the resource of type rt named name
	// is allowed.
	authorize(principal, host string, op metadata.ACLOperation, rt metadata.ACLResourceType, name string) bool
	// authorizeAny reports whether op is allowed on at least one resource
	// of type rt (Kafka's authorizeByResourceType).
	authorizeAny(principal, host string, op metadata.ACLOperation, rt metadata.ACLResourceType) bool
}

// allowAll is the authorizer of --authorizer none.
type allowAll struct{}

func (allowAll) authorize(string, string, metadata.ACLOperation, metadata.ACLResourceType, string) bool {
	return true
}

func (allowAll) authorizeAny(string, string, metadata.ACLOperation, metadata.ACLResourceType) bool {
	return true
}

// aclAuthorizer decides by one image's ACLs. It is cheap to build: one per
// check, so every check sees the ACLs of the current image.
type aclAuthorizer struct {
	acls       *metadata.ACLTable
	superUsers []string
}

// authorizerFor returns the authorizer of the configuration over acls.
func authorizerFor(cfg *Config, acls *metadata.ACLTable) authorizer {
	if cfg.Authorizer != AuthorizerACL {
		return allowAll{}
	}
	return aclAuthorizer{acls: acls, superUsers: cfg.SuperUsers}
}

func (a aclAuthorizer) authorize(principal, host string, op metadata.ACLOperation, rt metadata.ACLResourceType, name string) bool {
	if slices.Contains(a.superUsers, principal) {
		return true
	}
	allowed := false
	for b := range a.acls.Matching(rt, name) {
		if !principalMatches(b.Principal, principal) || !hostMatches(b.Host, host) {
			continue
		}
		switch {
		case b.Permission == metadata.ACLPermissionDeny && (b.Operation == op || b.Operation == metadata.ACLOpAll):
			return false // DENY wins
		case b.Permission == metadata.ACLPermissionAllow && implies(b.Operation, op):
			allowed = true
		}
	}
	return allowed
}

// implies reports whether an ALLOW of granted allows op.
func implies(granted, op metadata.ACLOperation) bool {
	switch {
	case granted == op || granted == metadata.ACLOpAll:
		return true
	case op == metadata.ACLOpDescribe:
		return granted == metadata.ACLOpRead || granted == metadata.ACLOpWrite ||
			granted == metadata.ACLOpDelete || granted == metadata.ACLOpAlter
	case op == metadata.ACLOpDescribeConfigs:
		return granted == metadata.ACLOpAlterConfigs
	}
	return false
}

// authorizeAny follows Kafka's Authorizer.authorizeByResourceType: a super
// user, or an ALLOW of op (or ALL) on some pattern that no DENY covers: a
// literal "*" DENY covers everything, a literal DENY its name, a prefixed
// DENY every name and prefix it starts.
func (a aclAuthorizer) authorizeAny(principal, host string, op metadata.ACLOperation, rt metadata.ACLResourceType) bool {
	if slices.Contains(a.superUsers, principal) {
		return true
	}
	var allows []metadata.ACLBinding
	denyLiteral, denyPrefixed := map[string]bool{}, map[string]bool{}
	for _, b := range a.acls.All() {
		if b.ResourceType != rt || !principalMatches(b.Principal, principal) || !hostMatches(b.Host, host) ||
			(b.Operation != op && b.Operation != metadata.ACLOpAll) {
			continue
		}
		switch {
		case b.Permission == metadata.ACLPermissionAllow:
			allows = append(allows, b)
		case b.PatternType == metadata.ACLPatternPrefixed:
			denyPrefixed[b.ResourceName] = true
		case b.ResourceName == metadata.ACLWildcard:
			return false
		default:
			denyLiteral[b.ResourceName] = true
		}
	}
	for _, b := range allows {
		if b.PatternType == metadata.ACLPatternLiteral && b.ResourceName == metadata.ACLWildcard {
			return true
		}
	}
	for _, b := range allows {
		if b.PatternType == metadata.ACLPatternLiteral && denyLiteral[b.ResourceName] {
			continue
		}
		covered := false
		for i := 1; i <= len(b.ResourceName) && !covered; i++ {
			covered = denyPrefixed[b.ResourceName[:i]]
		}
		if !covered {
			return true
		}
	}
	return false
}

// principalMatches reports whether a binding's principal matches p.
func principalMatches(binding, p string) bool {
	return binding == p || binding == metadata.ACLWildcardPrincipal
}

// hostMatches reports whether a binding's host matches the client's
// address: "*", the same text, or the same address written another way.
func hostMatches(binding, host string) bool {
	if binding == metadata.ACLWildcard || binding == host {
		return true
	}
	a, err1 := netip.ParseAddr(binding)
	b, err2 := netip.ParseAddr(host)
	return err1 == nil && err2 == nil && a.Unmap() == b.Unmap()
}

// ParseSuperUsers splits Kafka's super.users list ("User:a;User:b"),
// dropping blanks.
func ParseSuperUsers(s string) []string {
	var out []string
	for _, p := range strings.Split(s, ";") {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, p)
		}
	}
	return out
}

// checkAuthorizer validates Authorizer ("" means none) and SuperUsers
// (for Validate).
func (c *Config) checkAuthorizer() error {
	if c.Authorizer != "" && c.Authorizer != AuthorizerNone && c.Authorizer != AuthorizerACL {
		return fmt.Errorf("broker config: authorizer %q: want %s or %s", c.Authorizer, AuthorizerNone, AuthorizerACL)
	}
	for _, p := range c.SuperUsers {
		if typ, name, ok := strings.Cut(p, ":"); !ok || typ == "" || name == "" {
			return fmt.Errorf("broker config: super user %q is not a principal Type:name", p)
		}
	}
	return nil
}

// authorized reports whether r's principal, from r's client address, may
// perform op on the resource of type rt named name. Denials are logged at
// debug level, as Kafka's authorizer logger does.
func (b *Broker) authorized(r *request, op metadata.ACLOperation, rt metadata.ACLResourceType, name string) bool {
	if b.cfg.Authorizer != AuthorizerACL {
		return true
	}
	principal, host := r.conn.auth.principal(), clientHost(r.conn.nc.RemoteAddr())
	if authorizerFor(&b.cfg, b.meta.Image().ACLs).authorize(principal, host, op, rt, name) {
		return true
	}
	r.conn.logger.Debug("authorization denied", "principal", principal, "host", host,
		"operation", op.String(), "resource", rt.String(), "name", name, "api", kmsg.NameForKey(r.hdr.APIKey))
	return false
}

// topicDenied returns errTopicAuthorization unless r may perform op on a
// topic. A topic named by name is checked by that name whether or not it
// exists, so the answer does not reveal which names exist; one named by id
// (byID) is checked by its name, and an unknown id (t nil) is left to the
// lookup's UNKNOWN_TOPIC_ID.
func (b *Broker) topicDenied(r *request, op metadata.ACLOperation, t *metadata.Topic, byID bool, name string) error {
	if byID {
		if t == nil {
			return nil
		}
		name = t.Name
	}
	if b.authorized(r, op, resTopic, name) {
		return nil
	}
	return fmt.Errorf("%w: %s on topic %s", errTopicAuthorization, op, name)
}

// createDenied returns errTopicAuthorization unless r may create the
// topic: CREATE on the cluster or on the topic.
func (b *Broker) createDenied(r *request, name string) error {
	if b.authorized(r, opCreate, resCluster, clusterName) {
		return nil
	}
	return b.topicDenied(r, opCreate, nil, false, name)
}

// configDenied checks op (DESCRIBE_CONFIGS or ALTER_CONFIGS) on a config
// resource as Kafka does: a topic on the topic, a broker, broker logger or
// client metrics resource on the cluster, a group on the group. Unknown
// types are left to the handler.
func (b *Broker) configDenied(r *request, op metadata.ACLOperation, typ kmsg.ConfigResourceType, name string) error {
	switch typ {
	case kmsg.ConfigResourceTypeTopic:
		return b.topicDenied(r, op, nil, false, name)
	case kmsg.ConfigResourceTypeBroker, kmsg.ConfigResourceTypeBrokerLogger, kmsg.ConfigResourceTypeClientMetrics:
		return b.clusterDenied(r, op)
	case kmsg.ConfigResourceTypeGroupConfig:
		return b.groupDenied(r, op, name)
	}
	return nil
}

// consumerHeartbeatDenied checks a ConsumerGroupHeartbeat as Kafka does:
// READ on the group, then DESCRIBE on every subscribed topic name.
func (b *Broker) consumerHeartbeatDenied(r *request, req *kmsg.ConsumerGroupHeartbeatRequest) error {
	if err := b.groupDenied(r, opRead, req.Group); err != nil {
		return err
	}
	for _, name := range req.SubscribedTopicNames {
		if err := b.topicDenied(r, opDescribe, nil, false, name); err != nil {
			return err
		}
	}
	return nil
}

// groupDenied returns errGroupAuthorization unless r may perform op on the
// group.
func (b *Broker) groupDenied(r *request, op metadata.ACLOperation, group string) error {
	if b.authorized(r, op, resGroup, group) {
		return nil
	}
	return fmt.Errorf("%w: %s on group %s", errGroupAuthorization, op, group)
}

// clusterDenied returns errClusterAuthorization unless r may perform op on
// the cluster.
func (b *Broker) clusterDenied(r *request, op metadata.ACLOperation) error {
	if b.authorized(r, op, resCluster, clusterName) {
		return nil
	}
	return fmt.Errorf("%w: %s on the cluster", errClusterAuthorization, op)
}

// authorizedAny reports whether r's principal may perform op on at least
// one resource of type rt (see authorizer.authorizeAny).
func (b *Broker) authorizedAny(r *request, op metadata.ACLOperation, rt metadata.ACLResourceType) bool {
	if b.cfg.Authorizer != AuthorizerACL {
		return true
	}
	principal, host := r.conn.auth.principal(), clientHost(r.conn.nc.RemoteAddr())
	return authorizerFor(&b.cfg, b.meta.Image().ACLs).authorizeAny(principal, host, op, rt)
}

// supportedOps are the operations Kafka defines on each resource type, for
// the authorized-operations fields of Metadata, DescribeGroups,
// DescribeCluster and ConsumerGroupDescribe.
var supportedOps = map[metadata.ACLResourceType][]metadata.ACLOperation{
	resTopic: {opRead, opWrite, opCreate, opDescribe, opDelete, opAlter, opDescribeConfigs, opAlterConfigs},
	resGroup: {opRead, opDescribe, opDelete},
	resCluster: {opCreate, metadata.ACLOpClusterAction, opDescribeConfigs, opAlterConfigs, opIdempotentWrite,
		opAlter, opDescribe},
}

// authorizedOps returns the bit field (1<<operation) of the operations r's
// principal may perform on the resource, as Kafka reports them: 0 without
// DESCRIBE on it.
func (b *Broker) authorizedOps(r *request, rt metadata.ACLResourceType, name string) int32 {
	var bits int32
	if !b.authorized(r, opDescribe, rt, name) {
		return 0
	}
	for _, op := range supportedOps[rt] {
		if b.authorized(r, op, rt, name) {
			bits |= 1 << op
		}
	}
	return bits
}

// clientHost returns the address of a client, without the port.
func clientHost(addr net.Addr) string {
	if a, ok := addr.(*net.TCPAddr); ok {
		return a.IP.String()
	}
	host, _, err := net.SplitHostPort(addr.String())
	if err != nil {
		return addr.String()
	}
	return host
}
