package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

func aclCommands() []command {
	return []command{
		{group: "acls", name: "list", summary: "list ACLs, all or those matching the resource, principal and operation flags", setup: setupACLsList},
		{group: "acls", name: "create", summary: "create ACLs: every principal x host x operation x resource given", setup: setupACLsCreate},
		{group: "acls", name: "delete", summary: "delete the ACLs matching the flags (unset flags match anything)", setup: setupACLsDelete},
	}
}

// aclBinding is one ACL, named as Kafka's tools name its parts.
type aclBinding struct {
	ResourceType string `json:"resource_type"`
	ResourceName string `json:"resource_name"`
	PatternType  string `json:"pattern_type"`
	Principal    string `json:"principal"`
	Host         string `json:"host"`
	Operation    string `json:"operation"`
	Permission   string `json:"permission"`
}

// aclFlags are kafka-acls' flags.
type aclFlags struct {
	topics, groups, txnIDs  listFlag
	cluster                 bool
	pattern                 string
	allow, deny, principals listFlag
	allowHosts, denyHosts   listFlag
	operations              listFlag
	parsedOps               []kmsg.ACLOperation
	parsedPattern           kmsg.ACLResourcePatternType
}

// register declares the resource flags, and the principal flags: for
// create and delete --allow-principal/--deny-principal with their hosts,
// for list --principal.
func (f *aclFlags) register(fs *flag.FlagSet, list bool) {
	fs.Var(&f.topics, "topic", "topic `NAME` (repeatable; \"*\" is every topic)")
	fs.Var(&f.groups, "group", "consumer group `ID` (repeatable; \"*\" is every group)")
	fs.Var(&f.txnIDs, "transactional-id", "transactional `ID` (repeatable)")
	fs.BoolVar(&f.cluster, "cluster", false, "the cluster resource")
	fs.StringVar(&f.pattern, "resource-pattern-type", "", "`TYPE` of the resource names: literal or prefixed; "+
		"list and delete also take any and match (default literal; list and delete without a resource: any)")
	fs.Var(&f.operations, "operation", "`OP` (repeatable): All, Read, Write, Create, Delete, Alter, Describe, ClusterAction, "+
		"DescribeConfigs, AlterConfigs, IdempotentWrite")
	if list {
		fs.Var(&f.principals, "principal", "only ACLs of `PRINCIPAL` (repeatable), e.g. User:alice")
		return
	}
	fs.Var(&f.allow, "allow-principal", "`PRINCIPAL` to allow (repeatable), e.g. User:alice or User:*")
	fs.Var(&f.deny, "deny-principal", "`PRINCIPAL` to deny (repeatable)")
	fs.Var(&f.allowHosts, "allow-host", "`HOST` address the allowed principals may connect from (repeatable; default *)")
	fs.Var(&f.denyHosts, "deny-host", "`HOST` address the denied principals are denied from (repeatable; default *)")
}

// aclResource is a resource named on the command line.
type aclResource struct {
	typ  kmsg.ACLResourceType
	name string
}

// resources lists the resources the flags name.
func (f *aclFlags) resources() []aclResource {
	var out []aclResource
	add := func(t kmsg.ACLResourceType, names []string) {
		for _, n := range names {
			out = append(out, aclResource{t, n})
		}
	}
	add(kmsg.ACLResourceTypeTopic, f.topics)
	add(kmsg.ACLResourceTypeGroup, f.groups)
	add(kmsg.ACLResourceTypeTransactionalId, f.txnIDs)
	if f.cluster {
		add(kmsg.ACLResourceTypeCluster, []string{"kafka-cluster"})
	}
	return out
}

// parse checks the pattern and operations; create allows only concrete
// values.
func (f *aclFlags) parse(c *cli, create bool) error {
	f.parsedPattern = kmsg.ACLResourcePatternTypeLiteral
	if !create && len(f.resources()) == 0 {
		f.parsedPattern = kmsg.ACLResourcePatternTypeAny
	}
	if f.pattern != "" {
		p, err := kmsg.ParseACLResourcePatternType(f.pattern)
		if err != nil || create && p != kmsg.ACLResourcePatternTypeLiteral && p != kmsg.ACLResourcePatternTypePrefixed ||
			p < kmsg.ACLResourcePatternTypeAny || p > kmsg.ACLResourcePatternTypePrefixed {
			return c.usagef("--resource-pattern-type %q: want literal or prefixed (list, delete: also any, match)", f.pattern)
		}
		f.parsedPattern = p
	}
	for _, s := range f.operations {
		op, err := kmsg.ParseACLOperation(s)
		if err != nil || op <= kmsg.ACLOperationAny || op > kmsg.ACLOperationDescribeTokens {
			return c.usagef("--operation %q: unknown operation", s)
		}
		f.parsedOps = append(f.parsedOps, op)
	}
	return nil
}

// filters builds the DescribeAcls/DeleteAcls filters the flags give: per
// resource (or any), principal (or any), host and operation (or any).
func (f *aclFlags) filters() []kmsg.DeleteACLsRequestFilter {
	type who struct {
		principal *string
		hosts     []string
		perm      kmsg.ACLPermissionType
	}
	var whos []who
	for _, p := range f.allow {
		whos = append(whos, who{&p, f.allowHosts, kmsg.ACLPermissionTypeAllow})
	}
	for _, p := range f.deny {
		whos = append(whos, who{&p, f.denyHosts, kmsg.ACLPermissionTypeDeny})
	}
	for _, p := range f.principals {
		whos = append(whos, who{&p, nil, kmsg.ACLPermissionTypeAny})
	}
	if len(whos) == 0 {
		whos = []who{{perm: kmsg.ACLPermissionTypeAny}}
	}
	res := f.resources()
	anyRes := len(res) == 0
	if anyRes {
		res = append(res, aclResource{typ: kmsg.ACLResourceTypeAny})
	}
	ops := f.parsedOps
	if len(ops) == 0 {
		ops = []kmsg.ACLOperation{kmsg.ACLOperationAny}
	}
	var out []kmsg.DeleteACLsRequestFilter
	for _, r := range res {
		for _, w := range whos {
			hosts := []*string{nil} // any host
			if len(w.hosts) > 0 {
				hosts = nil
				for _, h := range w.hosts {
					hosts = append(hosts, &h)
				}
			}
			for _, h := range hosts {
				for _, op := range ops {
					fl := kmsg.NewDeleteACLsRequestFilter()
					fl.ResourceType, fl.ResourcePatternType = r.typ, f.parsedPattern
					if !anyRes {
						name := r.name
						fl.ResourceName = &name
					}
					fl.Principal, fl.Host, fl.Operation, fl.PermissionType = w.principal, h, op, w.perm
					out = append(out, fl)
				}
			}
		}
	}
	return out
}

func setupACLsList(fs *flag.FlagSet) runFunc {
	var f aclFlags
	f.register(fs, true)
	return func(ctx context.Context, c *cli, args []string) error {
		if len(args) > 0 {
			return c.usagef("takes no arguments (name resources with --topic, --group, --cluster)")
		}
		if err := f.parse(c, false); err != nil {
			return err
		}
		if _, err := c.kafka(); err != nil {
			return err
		}
		seen := map[aclBinding]bool{}
		out := []aclBinding{}
		for _, fl := range f.filters() {
			req := kmsg.NewPtrDescribeACLsRequest()
			req.ResourceType, req.ResourceName, req.ResourcePatternType = fl.ResourceType, fl.ResourceName, fl.ResourcePatternType
			req.Principal, req.Host, req.Operation, req.PermissionType = fl.Principal, fl.Host, fl.Operation, fl.PermissionType
			resp, err := req.RequestWith(ctx, c.kcl)
			if err != nil {
				return err
			}
			if err := kerr.ErrorForCode(resp.ErrorCode); err != nil {
				return kafkaErr(err, deref(resp.ErrorMessage))
			}
			for _, r := range resp.Resources {
				for _, a := range r.ACLs {
					b := aclBinding{r.ResourceType.String(), r.ResourceName, r.ResourcePatternType.String(),
						a.Principal, a.Host, a.Operation.String(), a.PermissionType.String()}
					if !seen[b] {
						seen[b] = true
						out = append(out, b)
					}
				}
			}
		}
		return c.emit(out, func(w io.Writer) { writeACLs(w, out) })
	}
}

func setupACLsCreate(fs *flag.FlagSet) runFunc {
	var f aclFlags
	f.register(fs, false)
	return func(ctx context.Context, c *cli, args []string) error {
		if len(args) > 0 {
			return c.usagef("takes no arguments (name resources with --topic, --group, --cluster)")
		}
		if err := f.parse(c, true); err != nil {
			return err
		}
		if len(f.resources()) == 0 || len(f.allow)+len(f.deny) == 0 || len(f.parsedOps) == 0 {
			return c.usagef("needs a resource (--topic, --group, --transactional-id, --cluster), a principal (--allow-principal, --deny-principal) and an --operation")
		}
		req := kmsg.NewPtrCreateACLsRequest()
		for _, r := range f.resources() {
			for _, perm := range []struct {
				principals, hosts []string
				typ               kmsg.ACLPermissionType
			}{{f.allow, f.allowHosts, kmsg.ACLPermissionTypeAllow}, {f.deny, f.denyHosts, kmsg.ACLPermissionTypeDeny}} {
				hosts := perm.hosts
				if len(hosts) == 0 {
					hosts = []string{"*"}
				}
				for _, p := range perm.principals {
					for _, h := range hosts {
						for _, op := range f.parsedOps {
							cr := kmsg.NewCreateACLsRequestCreation()
							cr.ResourceType, cr.ResourceName, cr.ResourcePatternType = r.typ, r.name, f.parsedPattern
							cr.Principal, cr.Host, cr.Operation, cr.PermissionType = p, h, op, perm.typ
							req.Creations = append(req.Creations, cr)
						}
					}
				}
			}
		}
		if _, err := c.kafka(); err != nil {
			return err
		}
		resp, err := req.RequestWith(ctx, c.kcl)
		if err != nil {
			return err
		}
		if len(resp.Results) != len(req.Creations) {
			return fmt.Errorf("%d results for %d ACLs", len(resp.Results), len(req.Creations))
		}
		out := []aclBinding{}
		var errs []error
		for i, r := range resp.Results {
			cr := req.Creations[i]
			b := aclBinding{cr.ResourceType.String(), cr.ResourceName, cr.ResourcePatternType.String(),
				cr.Principal, cr.Host, cr.Operation.String(), cr.PermissionType.String()}
			if err := kerr.ErrorForCode(r.ErrorCode); err != nil {
				errs = append(errs, fmt.Errorf("ACL %s %s %s on %s %s: %w", b.Permission, b.Principal, b.Operation,
					b.ResourceType, b.ResourceName, kafkaErr(err, deref(r.ErrorMessage))))
				continue
			}
			out = append(out, b)
		}
		if err := c.emit(out, func(w io.Writer) { writeACLs(w, out) }); err != nil {
			return err
		}
		return errors.Join(errs...)
	}
}

func setupACLsDelete(fs *flag.FlagSet) runFunc {
	var f aclFlags
	f.register(fs, false)
	return func(ctx context.Context, c *cli, args []string) error {
		if len(args) > 0 {
			return c.usagef("takes no arguments (name resources with --topic, --group, --cluster)")
		}
		if err := f.parse(c, false); err != nil {
			return err
		}
		if _, err := c.kafka(); err != nil {
			return err
		}
		req := kmsg.NewPtrDeleteACLsRequest()
		req.Filters = f.filters()
		resp, err := req.RequestWith(ctx, c.kcl)
		if err != nil {
			return err
		}
		out := []aclBinding{}
		var errs []error
		for _, r := range resp.Results {
			if err := kerr.ErrorForCode(r.ErrorCode); err != nil {
				errs = append(errs, kafkaErr(err, deref(r.ErrorMessage)))
				continue
			}
			for _, m := range r.MatchingACLs {
				out = append(out, aclBinding{m.ResourceType.String(), m.ResourceName, m.ResourcePatternType.String(),
					m.Principal, m.Host, m.Operation.String(), m.PermissionType.String()})
			}
		}
		if err := c.emit(out, func(w io.Writer) { writeACLs(w, out) }); err != nil {
			return err
		}
		return errors.Join(errs...)
	}
}

// writeACLs writes ACLs as a table.
func writeACLs(w io.Writer, acls []aclBinding) {
	rows := make([][]string, len(acls))
	for i, a := range acls {
		rows[i] = []string{a.ResourceType, a.ResourceName, a.PatternType, a.Principal, a.Host, a.Operation, a.Permission}
	}
	writeTable(w, []string{"RESOURCE", "NAME", "PATTERN", "PRINCIPAL", "HOST", "OPERATION", "PERMISSION"}, rows)
}
