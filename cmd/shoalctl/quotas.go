package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kmsg"
)

func quotaCommands() []command {
	return []command{
		{group: "quotas", name: "describe", summary: "list client quotas by user and client id (filters: a name, <default> or *)", setup: setupQuotasDescribe},
		{group: "quotas", name: "alter", summary: "set and delete the client quotas of a user, a client id or both", setup: setupQuotasAlter},
	}
}

// The entity names with a meaning of their own on the command line.
const (
	quotaDefaultName = "<default>" // the default entity (a null name)
	quotaAnyName     = "*"         // describe: any name or the default
)

// quotaComponent is one component of a quota entity in JSON output; a
// null name is the default.
type quotaComponent struct {
	Type string  `json:"type"`
	Name *string `json:"name"`
}

// quotaEntry is one entity and its quotas in quotas describe.
type quotaEntry struct {
	Entity []quotaComponent   `json:"entity"`
	Values map[string]float64 `json:"values"`
}

// alteredQuotas is the result of quotas alter.
type alteredQuotas struct {
	Entity       []quotaComponent   `json:"entity"`
	Set          map[string]float64 `json:"set"`
	Deleted      []string           `json:"deleted"`
	ValidateOnly bool               `json:"validate_only"`
}

// componentName formats a component's name: the name or <default>.
func componentName(name *string) string {
	if name == nil {
		return quotaDefaultName
	}
	return *name
}

// entityName formats an entity like Kafka's config paths:
// /users/alice/clients/<default>.
func entityName(e []quotaComponent) string {
	var b strings.Builder
	for _, c := range e {
		switch c.Type {
		case "user":
			b.WriteString("/users/")
		case "client-id":
			b.WriteString("/clients/")
		default:
			b.WriteString("/" + c.Type + "/")
		}
		b.WriteString(componentName(c.Name))
	}
	return b.String()
}

func setupQuotasDescribe(fs *flag.FlagSet) runFunc {
	user := fs.String("user", "", "only entities of this user (a name, <default>, or * for any)")
	client := fs.String("client-id", "", "only entities of this client id (a name, <default>, or * for any)")
	strict := fs.Bool("strict", false, "only entities without other components than those filtered")
	return func(ctx context.Context, c *cli, args []string) error {
		if len(args) > 0 {
			return c.usagef("takes no arguments")
		}
		var comps []kadm.DescribeClientQuotaComponent
		for _, f := range []struct{ typ, v string }{{"user", *user}, {"client-id", *client}} {
			if f.v != "" {
				comps = append(comps, describeComponent(f.typ, f.v))
			}
		}
		adm, err := c.kafka()
		if err != nil {
			return err
		}
		described, err := adm.DescribeClientQuotas(ctx, *strict, comps)
		if err != nil {
			return fmt.Errorf("describe client quotas: %w", err)
		}
		out := []quotaEntry{}
		for _, d := range described {
			e := quotaEntry{Entity: []quotaComponent{}, Values: map[string]float64{}}
			for _, ec := range d.Entity {
				e.Entity = append(e.Entity, quotaComponent{Type: ec.Type, Name: ec.Name})
			}
			for _, v := range d.Values {
				e.Values[v.Key] = v.Value
			}
			out = append(out, e)
		}
		return c.emit(out, func(w io.Writer) { writeQuotaTable(w, out) })
	}
}

// describeComponent turns a filter value into a describe component.
func describeComponent(typ, v string) kadm.DescribeClientQuotaComponent {
	switch v {
	case quotaDefaultName:
		return kadm.DescribeClientQuotaComponent{Type: typ, MatchType: kmsg.QuotasMatchTypeDefault}
	case quotaAnyName:
		return kadm.DescribeClientQuotaComponent{Type: typ, MatchType: kmsg.QuotasMatchTypeAny}
	}
	return kadm.DescribeClientQuotaComponent{Type: typ, MatchName: &v, MatchType: kmsg.QuotasMatchTypeExact}
}

// writeQuotaTable writes one row per entity and key.
func writeQuotaTable(w io.Writer, entries []quotaEntry) {
	var rows [][]string
	for _, e := range entries {
		user, client := "-", "-"
		for _, c := range e.Entity {
			switch c.Type {
			case "user":
				user = componentName(c.Name)
			case "client-id":
				client = componentName(c.Name)
			}
		}
		keys := make([]string, 0, len(e.Values))
		for k := range e.Values {
			keys = append(keys, k)
		}
		slices.Sort(keys)
		for _, k := range keys {
			rows = append(rows, []string{user, client, k, formatQuotaValue(e.Values[k])})
		}
	}
	writeTable(w, []string{"USER", "CLIENT-ID", "QUOTA", "VALUE"}, rows)
}

// formatQuotaValue formats a value without a needless fraction.
func formatQuotaValue(v float64) string { return strconv.FormatFloat(v, 'f', -1, 64) }

func setupQuotasAlter(fs *flag.FlagSet) runFunc {
	user := fs.String("user", "", "the entity's user (a name or <default>)")
	client := fs.String("client-id", "", "the entity's client id (a name or <default>)")
	var set configFlag
	var del listFlag
	fs.Var(&set, "set", "set quota `key=value`: producer_byte_rate, consumer_byte_rate, request_percentage (repeatable)")
	fs.Var(&del, "delete", "delete quota `key` (repeatable)")
	validate := fs.Bool("validate-only", false, "check the change on the broker without making it")
	return func(ctx context.Context, c *cli, args []string) error {
		switch {
		case len(args) > 0:
			return c.usagef("takes no arguments")
		case *user == "" && *client == "":
			return c.usagef("needs --user, --client-id or both")
		case len(set.keys) == 0 && len(del) == 0:
			return c.usagef("nothing to alter: give --set or --delete")
		}
		out := alteredQuotas{Entity: []quotaComponent{}, Set: map[string]float64{}, Deleted: nonNil([]string(del)), ValidateOnly: *validate}
		var entity kadm.ClientQuotaEntity
		for _, f := range []struct{ typ, v string }{{"user", *user}, {"client-id", *client}} {
			if f.v == "" {
				continue
			}
			var name *string
			if f.v != quotaDefaultName {
				name = &f.v
			}
			entity = append(entity, kadm.ClientQuotaEntityComponent{Type: f.typ, Name: name})
			out.Entity = append(out.Entity, quotaComponent{Type: f.typ, Name: name})
		}
		var ops []kadm.AlterClientQuotaOp
		for _, k := range set.keys {
			v, err := strconv.ParseFloat(set.vals[k], 64)
			if err != nil {
				return c.usagef("--set %s=%s: not a number", k, set.vals[k])
			}
			ops = append(ops, kadm.AlterClientQuotaOp{Key: k, Value: v})
			out.Set[k] = v
		}
		for _, k := range del {
			ops = append(ops, kadm.AlterClientQuotaOp{Key: k, Remove: true})
		}
		adm, err := c.kafka()
		if err != nil {
			return err
		}
		alter := adm.AlterClientQuotas
		if *validate {
			alter = adm.ValidateAlterClientQuotas
		}
		res, err := alter(ctx, []kadm.AlterClientQuotaEntry{{Entity: entity, Ops: ops}})
		if err == nil && len(res) != 1 {
			err = fmt.Errorf("the broker answered %d entries for 1", len(res))
		}
		if err == nil {
			err = kafkaErr(res[0].Err, res[0].ErrMessage)
		}
		if err != nil {
			return fmt.Errorf("quotas of %s: %w", entityName(out.Entity), err)
		}
		return c.emit(out, func(w io.Writer) {
			verb := "set"
			if *validate {
				verb = "would set"
			}
			for _, k := range set.keys {
				fmt.Fprintf(w, "quotas of %s: %s %s=%s\n", entityName(out.Entity), verb, k, formatQuotaValue(out.Set[k]))
			}
			for _, k := range del {
				fmt.Fprintf(w, "quotas of %s: %s %s\n", entityName(out.Entity), strings.Replace(verb, "set", "delete", 1), k)
			}
		})
	}
}
