package metadata

import (
	"cmp"
	"context"
	"fmt"
	"iter"
	"slices"
	"strings"
)

// Access control lists, in Kafka's model: a binding allows or denies one
// principal, from one host or any ("*"), one operation on the resources
// that its pattern names (a literal name, the literal "*" for every
// resource of the type, or a name prefix). The types carry Kafka's protocol
// codes, so the broker converts them without a table. The image holds the
// bindings in an immutable ACLTable; deciding whether a request is allowed
// is the broker's (broker/authz.go).

// ACLResourceType is the type of a resource, coded as in Kafka's protocol.
type ACLResourceType int8

// The resource types. ACLResourceAny only appears in filters.
const (
	ACLResourceAny             ACLResourceType = 1
	ACLResourceTopic           ACLResourceType = 2
	ACLResourceGroup           ACLResourceType = 3
	ACLResourceCluster         ACLResourceType = 4
	ACLResourceTransactionalID ACLResourceType = 5
	ACLResourceDelegationToken ACLResourceType = 6
	ACLResourceUser            ACLResourceType = 7
)

// ACLPatternType says how a binding's resource name matches, coded as in
// Kafka's protocol. ACLPatternAny and ACLPatternMatch only appear in filters.
type ACLPatternType int8

// The pattern types.
const (
	ACLPatternAny      ACLPatternType = 1
	ACLPatternMatch    ACLPatternType = 2
	ACLPatternLiteral  ACLPatternType = 3
	ACLPatternPrefixed ACLPatternType = 4
)

// ACLOperation is an operation on a resource, coded as in Kafka's protocol.
type ACLOperation int8

// The operations. ACLOpAny only appears in filters; ACLOpAll in a binding
// stands for every operation.
const (
	ACLOpAny             ACLOperation = 1
	ACLOpAll             ACLOperation = 2
	ACLOpRead            ACLOperation = 3
	ACLOpWrite           ACLOperation = 4
	ACLOpCreate          ACLOperation = 5
	ACLOpDelete          ACLOperation = 6
	ACLOpAlter           ACLOperation = 7
	ACLOpDescribe        ACLOperation = 8
	ACLOpClusterAction   ACLOperation = 9
	ACLOpDescribeConfigs ACLOperation = 10
	ACLOpAlterConfigs    ACLOperation = 11
	ACLOpIdempotentWrite ACLOperation = 12
	ACLOpCreateTokens    ACLOperation = 13
	ACLOpDescribeTokens  ACLOperation = 14
)

// ACLPermission is a binding's effect, coded as in Kafka's protocol.
// ACLPermissionAny only appears in filters.
type ACLPermission int8

// The permissions.
const (
	ACLPermissionAny   ACLPermission = 1
	ACLPermissionDeny  ACLPermission = 2
	ACLPermissionAllow ACLPermission = 3
)

// Well-known names.
const (
	// ACLWildcard is the literal resource name that matches every resource
	// of its type, and the host that matches every host.
	ACLWildcard = "*"
	// ACLWildcardPrincipal matches every principal.
	ACLWildcardPrincipal = "User:*"
	// ACLClusterName is the only name of the cluster resource.
	ACLClusterName = "kafka-cluster"
)

// maxACLString bounds a binding's resource name, principal and host;
// maxACLsPerCommand bounds the bindings or filters of one command.
const (
	maxACLString      = 4096
	maxACLsPerCommand = 10_000
)

var resourceTypeNames = []string{1: "ANY", "TOPIC", "GROUP", "CLUSTER", "TRANSACTIONAL_ID", "DELEGATION_TOKEN", "USER"}
var patternTypeNames = []string{1: "ANY", "MATCH", "LITERAL", "PREFIXED"}
var operationNames = []string{1: "ANY", "ALL", "READ", "WRITE", "CREATE", "DELETE", "ALTER", "DESCRIBE",
	"CLUSTER_ACTION", "DESCRIBE_CONFIGS", "ALTER_CONFIGS", "IDEMPOTENT_WRITE", "CREATE_TOKENS", "DESCRIBE_TOKENS"}
var permissionNames = []string{1: "ANY", "DENY", "ALLOW"}

// enumName returns names[v], or kind(v) for a code out of range.
func enumName(names []string, v int8, kind string) string {
	if v > 0 && int(v) < len(names) {
		return names[v]
	}
	return fmt.Sprintf("%s(%d)", kind, v)
}

// String returns Kafka's name of the resource type ("TOPIC").
func (t ACLResourceType) String() string {
	return enumName(resourceTypeNames, int8(t), "ACLResourceType")
}

// String returns Kafka's name of the pattern type ("PREFIXED").
func (t ACLPatternType) String() string { return enumName(patternTypeNames, int8(t), "ACLPatternType") }

// String returns Kafka's name of the operation ("DESCRIBE_CONFIGS").
func (o ACLOperation) String() string { return enumName(operationNames, int8(o), "ACLOperation") }

// String returns Kafka's name of the permission ("ALLOW").
func (p ACLPermission) String() string { return enumName(permissionNames, int8(p), "ACLPermission") }

// ACLBinding is one access control entry on one resource pattern.
type ACLBinding struct {
	ResourceType ACLResourceType `json:"resource_type"`
	ResourceName string          `json:"resource_name"`
	PatternType  ACLPatternType  `json:"pattern_type"`
	Principal    string          `json:"principal"` // "User:alice", or "User:*"
	Host         string          `json:"host"`      // an address, or "*"
	Operation    ACLOperation    `json:"operation"`
	Permission   ACLPermission   `json:"permission"`
}

// String formats the binding like kafka-acls does.
func (b ACLBinding) String() string {
	return fmt.Sprintf("(%s:%s:%s, %s from %s %s %s)", b.ResourceType, b.PatternType, b.ResourceName,
		b.Principal, b.Host, b.Permission, b.Operation)
}

// Check verifies a binding as Kafka does before storing it: a concrete
// resource type, pattern type, operation and permission; a non-empty
// resource name ("kafka-cluster" for the cluster); a principal of the form
// "Type:name"; a host. Errors wrap ErrInvalidRequest.
func (b ACLBinding) Check() error {
	switch {
	case b.ResourceType <= ACLResourceAny || b.ResourceType > ACLResourceUser:
		return fmt.Errorf("%w: ACL resource type %s", ErrInvalidRequest, b.ResourceType)
	case b.PatternType != ACLPatternLiteral && b.PatternType != ACLPatternPrefixed:
		return fmt.Errorf("%w: ACL pattern type %s", ErrInvalidRequest, b.PatternType)
	case b.Operation <= ACLOpAny || b.Operation > ACLOpDescribeTokens:
		return fmt.Errorf("%w: ACL operation %s", ErrInvalidRequest, b.Operation)
	case b.Permission != ACLPermissionAllow && b.Permission != ACLPermissionDeny:
		return fmt.Errorf("%w: ACL permission %s", ErrInvalidRequest, b.Permission)
	case b.ResourceName == "" || len(b.ResourceName) > maxACLString:
		return fmt.Errorf("%w: ACL resource name of %d bytes", ErrInvalidRequest, len(b.ResourceName))
	case b.ResourceType == ACLResourceCluster && (b.ResourceName != ACLClusterName || b.PatternType != ACLPatternLiteral):
		return fmt.Errorf("%w: the only valid name for the CLUSTER resource is the literal %s", ErrInvalidRequest, ACLClusterName)
	case len(b.Principal) > maxACLString || !validPrincipal(b.Principal):
		return fmt.Errorf("%w: ACL principal %q is not of the form Type:name", ErrInvalidRequest, b.Principal)
	case b.Host == "" || len(b.Host) > maxACLString:
		return fmt.Errorf("%w: ACL host of %d bytes", ErrInvalidRequest, len(b.Host))
	}
	return nil
}

// validPrincipal reports whether p is "Type:name" with both parts set.
func validPrincipal(p string) bool {
	typ, name, ok := strings.Cut(p, ":")
	return ok && typ != "" && name != ""
}

// compareACLBindings orders bindings by resource, then principal, host,
// operation and permission.
func compareACLBindings(a, b ACLBinding) int {
	return cmp.Or(
		cmp.Compare(a.ResourceType, b.ResourceType),
		cmp.Compare(a.PatternType, b.PatternType),
		strings.Compare(a.ResourceName, b.ResourceName),
		strings.Compare(a.Principal, b.Principal),
		strings.Compare(a.Host, b.Host),
		cmp.Compare(a.Operation, b.Operation),
		cmp.Compare(a.Permission, b.Permission),
	)
}

// ACLFilter selects bindings, as DescribeAcls and DeleteAcls do: the Any
// codes and nil strings match everything; ACLPatternMatch with a name
// selects the bindings that apply to a resource of that name (the literal
// name, the literal "*" and every prefix of it).
type ACLFilter struct {
	ResourceType ACLResourceType `json:"resource_type"`
	ResourceName *string         `json:"resource_name,omitempty"`
	PatternType  ACLPatternType  `json:"pattern_type"`
	Principal    *string         `json:"principal,omitempty"`
	Host         *string         `json:"host,omitempty"`
	Operation    ACLOperation    `json:"operation"`
	Permission   ACLPermission   `json:"permission"`
}

// Check verifies that every code of the filter is known. Errors wrap
// ErrInvalidRequest.
func (f ACLFilter) Check() error {
	switch {
	case f.ResourceType < ACLResourceAny || f.ResourceType > ACLResourceUser:
		return fmt.Errorf("%w: ACL filter resource type %s", ErrInvalidRequest, f.ResourceType)
	case f.PatternType < ACLPatternAny || f.PatternType > ACLPatternPrefixed:
		return fmt.Errorf("%w: ACL filter pattern type %s", ErrInvalidRequest, f.PatternType)
	case f.Operation < ACLOpAny || f.Operation > ACLOpDescribeTokens:
		return fmt.Errorf("%w: ACL filter operation %s", ErrInvalidRequest, f.Operation)
	case f.Permission < ACLPermissionAny || f.Permission > ACLPermissionAllow:
		return fmt.Errorf("%w: ACL filter permission %s", ErrInvalidRequest, f.Permission)
	}
	return nil
}

// Matches reports whether the filter selects b (Kafka's AclBindingFilter).
func (f ACLFilter) Matches(b ACLBinding) bool {
	return f.matchesPattern(b) &&
		(f.Principal == nil || *f.Principal == b.Principal) &&
		(f.Host == nil || *f.Host == b.Host) &&
		(f.Operation == ACLOpAny || f.Operation == b.Operation) &&
		(f.Permission == ACLPermissionAny || f.Permission == b.Permission)
}

func (f ACLFilter) matchesPattern(b ACLBinding) bool {
	if f.ResourceType != ACLResourceAny && f.ResourceType != b.ResourceType {
		return false
	}
	if f.PatternType != ACLPatternAny && f.PatternType != ACLPatternMatch && f.PatternType != b.PatternType {
		return false
	}
	if f.ResourceName == nil {
		return true
	}
	name := *f.ResourceName
	if f.PatternType != ACLPatternMatch {
		return name == b.ResourceName
	}
	if b.PatternType == ACLPatternPrefixed {
		return strings.HasPrefix(name, b.ResourceName)
	}
	return name == b.ResourceName || b.ResourceName == ACLWildcard
}

// aclKey is a resource pattern: the index key of an ACLTable.
type aclKey struct {
	Type    ACLResourceType
	Pattern ACLPatternType
	Name    string
}

// ACLTable is an immutable set of bindings, indexed by resource pattern. A
// nil table is empty.
type ACLTable struct {
	all       []ACLBinding // sorted by compareACLBindings, unique
	byPattern map[aclKey][]ACLBinding
	// prefixLens are the lengths of the prefixed names, per resource type,
	// sorted: a lookup tries only those.
	prefixLens map[ACLResourceType][]int
}

// NewACLTable returns a table of bindings (in any order, repeats allowed).
func NewACLTable(bindings []ACLBinding) *ACLTable {
	sorted := slices.Clone(bindings)
	slices.SortFunc(sorted, compareACLBindings)
	return newACLTable(slices.Compact(sorted))
}

// newACLTable indexes bindings, which must be sorted and unique.
func newACLTable(bindings []ACLBinding) *ACLTable {
	if len(bindings) == 0 {
		return nil
	}
	t := &ACLTable{all: bindings, byPattern: map[aclKey][]ACLBinding{}, prefixLens: map[ACLResourceType][]int{}}
	for _, b := range bindings {
		k := aclKey{b.ResourceType, b.PatternType, b.ResourceName}
		t.byPattern[k] = append(t.byPattern[k], b)
		if b.PatternType == ACLPatternPrefixed {
			lens := t.prefixLens[b.ResourceType]
			if i, found := slices.BinarySearch(lens, len(b.ResourceName)); !found {
				t.prefixLens[b.ResourceType] = slices.Insert(lens, i, len(b.ResourceName))
			}
		}
	}
	return t
}

// Len returns the number of bindings.
func (t *ACLTable) Len() int {
	if t == nil {
		return 0
	}
	return len(t.all)
}

// All returns every binding, sorted. The slice belongs to the table.
func (t *ACLTable) All() []ACLBinding {
	if t == nil {
		return nil
	}
	return t.all
}

// Contains reports whether the table holds b.
func (t *ACLTable) Contains(b ACLBinding) bool {
	return t != nil && slices.Contains(t.byPattern[aclKey{b.ResourceType, b.PatternType, b.ResourceName}], b)
}

// Filter returns the bindings f selects, sorted.
func (t *ACLTable) Filter(f ACLFilter) []ACLBinding {
	var out []ACLBinding
	for _, b := range t.All() {
		if f.Matches(b) {
			out = append(out, b)
		}
	}
	return out
}

// Matching yields the bindings whose pattern applies to the resource of
// type rt named name: the literal name, the literal "*", and the prefixes
// of name.
func (t *ACLTable) Matching(rt ACLResourceType, name string) iter.Seq[ACLBinding] {
	return func(yield func(ACLBinding) bool) {
		if t == nil {
			return
		}
		keys := []aclKey{{rt, ACLPatternLiteral, name}}
		if name != ACLWildcard {
			keys = append(keys, aclKey{rt, ACLPatternLiteral, ACLWildcard})
		}
		for _, n := range t.prefixLens[rt] {
			if n > len(name) {
				break
			}
			keys = append(keys, aclKey{rt, ACLPatternPrefixed, name[:n]})
		}
		for _, k := range keys {
			for _, b := range t.byPattern[k] {
				if !yield(b) {
					return
				}
			}
		}
	}
}

// CreateACLsCmd adds bindings; those present already change nothing.
type CreateACLsCmd struct {
	ACLs []ACLBinding `json:"acls"`
}

// DeleteACLsCmd removes the bindings any filter selects. Its result lists,
// per filter, the bindings that filter selected ([][]ACLBinding).
type DeleteACLsCmd struct {
	Filters []ACLFilter `json:"filters"`
}

// Type implements Command.
func (CreateACLsCmd) Type() CommandType { return CmdCreateACLs }

// Type implements Command.
func (DeleteACLsCmd) Type() CommandType { return CmdDeleteACLs }

func (c CreateACLsCmd) check() error {
	if len(c.ACLs) == 0 || len(c.ACLs) > maxACLsPerCommand {
		return fmt.Errorf("%w: %d ACLs in one command, want 1 to %d", ErrInvalidRequest, len(c.ACLs), maxACLsPerCommand)
	}
	for _, b := range c.ACLs {
		if err := b.Check(); err != nil {
			return err
		}
	}
	return nil
}

func (c DeleteACLsCmd) check() error {
	if len(c.Filters) == 0 || len(c.Filters) > maxACLsPerCommand {
		return fmt.Errorf("%w: %d ACL filters in one command, want 1 to %d", ErrInvalidRequest, len(c.Filters), maxACLsPerCommand)
	}
	for _, f := range c.Filters {
		if err := f.Check(); err != nil {
			return err
		}
	}
	return nil
}

func (im *Image) applyCreateACLs(c CreateACLsCmd, index uint64) (*Image, any) {
	all := slices.Clone(im.ACLs.All())
	for _, b := range c.ACLs {
		if i, found := slices.BinarySearchFunc(all, b, compareACLBindings); !found {
			all = slices.Insert(all, i, b)
		}
	}
	if len(all) == im.ACLs.Len() {
		return nil, nil
	}
	n := im.next(index)
	n.ACLs = newACLTable(all)
	return n, nil
}

func (im *Image) applyDeleteACLs(c DeleteACLsCmd, index uint64) (*Image, any) {
	deleted := make([][]ACLBinding, len(c.Filters))
	gone := map[ACLBinding]bool{}
	for i, f := range c.Filters {
		deleted[i] = im.ACLs.Filter(f)
		for _, b := range deleted[i] {
			gone[b] = true
		}
	}
	if len(gone) == 0 {
		return nil, deleted
	}
	n := im.next(index)
	n.ACLs = newACLTable(slices.DeleteFunc(slices.Clone(im.ACLs.All()), func(b ACLBinding) bool { return gone[b] }))
	return n, deleted
}

// CreateACLs stores bindings (see CreateACLsCmd); each must pass Check.
func (s *Store) CreateACLs(ctx context.Context, bindings []ACLBinding) error {
	c := CreateACLsCmd{ACLs: bindings}
	if err := c.check(); err != nil {
		return err
	}
	if _, err := s.propose(ctx, c); err != nil {
		return fmt.Errorf("create ACLs: %w", err)
	}
	return nil
}

// DeleteACLs removes the bindings the filters select and returns them per
// filter (see DeleteACLsCmd).
func (s *Store) DeleteACLs(ctx context.Context, filters []ACLFilter) ([][]ACLBinding, error) {
	c := DeleteACLsCmd{Filters: filters}
	if err := c.check(); err != nil {
		return nil, err
	}
	resp, err := s.propose(ctx, c)
	if err != nil {
		return nil, fmt.Errorf("delete ACLs: %w", err)
	}
	deleted, ok := resp.([][]ACLBinding)
	if !ok || len(deleted) != len(filters) {
		return nil, fmt.Errorf("%w: delete ACLs answered %T for %d filters", ErrInvalidCommand, resp, len(filters))
	}
	return deleted, nil
}

// restoreACLs fills a fresh image's table from a snapshot's bindings.
func (im *Image) restoreACLs(bindings []ACLBinding) error {
	for i, b := range bindings {
		if err := b.Check(); err != nil {
			return fmt.Errorf("%w: snapshot ACL: %w", ErrInvalidCommand, err)
		}
		if i > 0 && compareACLBindings(bindings[i-1], b) >= 0 {
			return fmt.Errorf("%w: snapshot ACLs are not sorted and unique at %s", ErrInvalidCommand, b)
		}
	}
	im.ACLs = newACLTable(bindings)
	return nil
}
