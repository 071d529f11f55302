package metadata

import (
	"cmp"
	"context"
	"fmt"
	"maps"
	"math"
	"slices"
	"strings"
)

// Client quotas (KIP-13, KIP-55, KIP-546): rates that a user, a client id
// or a user's client id may use, keyed like Kafka's quota configs. An
// entity's components are each absent, the default ("<default>", a null
// name in the protocol) or a name. A change of any number of entities is
// one command, all or nothing; an entity left without values is removed.

// The quota keys.
const (
	// QuotaProducerByteRate is the produce request bytes per second.
	QuotaProducerByteRate = "producer_byte_rate"
	// QuotaConsumerByteRate is the fetch response bytes per second.
	QuotaConsumerByteRate = "consumer_byte_rate"
	// QuotaRequestPercentage is the request handling time, as a percentage
	// of one thread (100 is one thread's whole time).
	QuotaRequestPercentage = "request_percentage"
)

// QuotaKeys returns the quota keys, sorted.
func QuotaKeys() []string {
	return []string{QuotaConsumerByteRate, QuotaProducerByteRate, QuotaRequestPercentage}
}

// QuotaName is one component of a quota entity: absent (the zero value),
// the default, or a name. Kafka refuses empty names, so an empty Name with
// Default unset means absent.
type QuotaName struct {
	Name    string `json:"name,omitempty"`
	Default bool   `json:"default,omitempty"`
}

// QuotaNamed returns the component that matches name.
func QuotaNamed(name string) QuotaName { return QuotaName{Name: name} }

// QuotaDefault is the default component ("<default>").
var QuotaDefault = QuotaName{Default: true}

// IsSet reports whether the component is present (a name or the default).
func (n QuotaName) IsSet() bool { return n.Default || n.Name != "" }

// String returns the name, "<default>" or "" when absent.
func (n QuotaName) String() string {
	if n.Default {
		return "<default>"
	}
	return n.Name
}

// QuotaEntity is what a quota applies to: a user, a client id, or a user's
// client id.
type QuotaEntity struct {
	User     QuotaName `json:"user"`
	ClientID QuotaName `json:"client_id"`
}

// String formats the entity like Kafka's config paths:
// "/users/alice/clients/<default>", "/clients/app".
func (e QuotaEntity) String() string {
	var b strings.Builder
	if e.User.IsSet() {
		b.WriteString("/users/" + e.User.String())
	}
	if e.ClientID.IsSet() {
		b.WriteString("/clients/" + e.ClientID.String())
	}
	return b.String()
}

// check verifies the entity: at least one component, neither both a name
// and the default.
func (e QuotaEntity) check() error {
	switch {
	case !e.User.IsSet() && !e.ClientID.IsSet():
		return fmt.Errorf("%w: empty quota entity", ErrInvalidRequest)
	case e.User.Default && e.User.Name != "", e.ClientID.Default && e.ClientID.Name != "":
		return fmt.Errorf("%w: quota entity %s is both named and the default", ErrInvalidRequest, e)
	}
	return nil
}

// CheckQuotaValue checks a value to set under key as Kafka does: a known
// key, a finite value above 0, and for the byte rates an integer that fits
// in 64 bits. Errors wrap ErrInvalidRequest.
func CheckQuotaValue(key string, v float64) error {
	switch key {
	case QuotaProducerByteRate, QuotaConsumerByteRate, QuotaRequestPercentage:
	default:
		return fmt.Errorf("%w: unknown quota key %q", ErrInvalidRequest, key)
	}
	if math.IsNaN(v) || math.IsInf(v, 0) || v <= 0 {
		return fmt.Errorf("%w: quota %s must be greater than 0, got %v", ErrInvalidRequest, key, v)
	}
	if key != QuotaRequestPercentage && (v != math.Trunc(v) || v >= math.MaxInt64) {
		return fmt.Errorf("%w: quota %s must be an integer below 2^63, got %v", ErrInvalidRequest, key, v)
	}
	return nil
}

// QuotaAlteration is one entity's change: values to set and keys to remove.
// Removing a key that is not set changes nothing (any key may be removed,
// as in Kafka).
type QuotaAlteration struct {
	Entity QuotaEntity        `json:"entity"`
	Set    map[string]float64 `json:"set,omitempty"`
	Remove []string           `json:"remove,omitempty"`
}

// Check verifies one alteration: a valid entity, valid values, no key both
// set and removed or removed twice. Errors wrap ErrInvalidRequest.
func (a QuotaAlteration) Check() error {
	if err := a.Entity.check(); err != nil {
		return err
	}
	for _, k := range slices.Sorted(maps.Keys(a.Set)) {
		if err := CheckQuotaValue(k, a.Set[k]); err != nil {
			return fmt.Errorf("quota entity %s: %w", a.Entity, err)
		}
	}
	seen := map[string]bool{}
	for _, k := range a.Remove {
		if _, set := a.Set[k]; set || seen[k] || k == "" {
			return fmt.Errorf("%w: quota entity %s: key %q removed twice, set and removed, or empty", ErrInvalidRequest, a.Entity, k)
		}
		seen[k] = true
	}
	return nil
}

// AlterClientQuotasCmd applies quota changes to one or more distinct
// entities, in one step.
type AlterClientQuotasCmd struct {
	Entries []QuotaAlteration `json:"entries"`
}

// Type implements Command.
func (AlterClientQuotasCmd) Type() CommandType { return CmdAlterClientQuotas }

func (c AlterClientQuotasCmd) check() error {
	if len(c.Entries) == 0 {
		return fmt.Errorf("%w: no quota change", ErrInvalidRequest)
	}
	seen := make(map[QuotaEntity]bool, len(c.Entries))
	for _, a := range c.Entries {
		if err := a.Check(); err != nil {
			return err
		}
		if seen[a.Entity] {
			return fmt.Errorf("%w: quota entity %s altered twice", ErrInvalidRequest, a.Entity)
		}
		seen[a.Entity] = true
	}
	return nil
}

func (im *Image) applyAlterClientQuotas(c AlterClientQuotasCmd, index uint64) (*Image, any) {
	n := im.next(index)
	n.Quotas = maps.Clone(im.Quotas)
	if n.Quotas == nil {
		n.Quotas = map[QuotaEntity]map[string]float64{}
	}
	for _, a := range c.Entries {
		values := maps.Clone(n.Quotas[a.Entity])
		if values == nil {
			values = map[string]float64{}
		}
		for _, k := range a.Remove {
			delete(values, k)
		}
		maps.Copy(values, a.Set)
		if len(values) == 0 {
			delete(n.Quotas, a.Entity)
		} else {
			n.Quotas[a.Entity] = values
		}
	}
	return n, nil
}

// ClientQuotas returns the values set for exactly e, by key, or nil. The
// map belongs to the image: read it, never change it.
func (im *Image) ClientQuotas(e QuotaEntity) map[string]float64 { return im.Quotas[e] }

// SortedQuotaEntities returns the entities that have quotas: users before
// client-only entities, then by user (default first) and client id
// (absent, then default, then by name).
func (im *Image) SortedQuotaEntities() []QuotaEntity {
	out := slices.Collect(maps.Keys(im.Quotas))
	slices.SortFunc(out, compareQuotaEntities)
	return out
}

func compareQuotaEntities(a, b QuotaEntity) int {
	return cmp.Or(cmp.Compare(quotaNameRank(a.User, 3), quotaNameRank(b.User, 3)), strings.Compare(a.User.Name, b.User.Name),
		cmp.Compare(quotaNameRank(a.ClientID, 0), quotaNameRank(b.ClientID, 0)), strings.Compare(a.ClientID.Name, b.ClientID.Name))
}

// quotaNameRank orders components: the default before names, and an absent
// one at rank absent.
func quotaNameRank(n QuotaName, absent int) int {
	switch {
	case n.Default:
		return 1
	case n.Name != "":
		return 2
	}
	return absent
}

// QuotaMatch is the quota that applies to a client for one key: the entity
// it is set on, and its value.
type QuotaMatch struct {
	Entity QuotaEntity
	Value  float64
}

// ResolveQuota returns the quota for key that applies to user's client
// clientID, by Kafka's precedence (first match wins):
//
//	/users/<user>/clients/<client-id>
//	/users/<user>/clients/<default>
//	/users/<user>
//	/users/<default>/clients/<client-id>
//	/users/<default>/clients/<default>
//	/users/<default>
//	/clients/<client-id>
//	/clients/<default>
//
// An empty user or client id matches only the default components (a
// client without a client id is still limited by a <default> quota).
func (im *Image) ResolveQuota(key, user, clientID string) (QuotaMatch, bool) {
	if len(im.Quotas) == 0 {
		return QuotaMatch{}, false
	}
	u, c := QuotaName{Name: user, Default: user == ""}, QuotaName{Name: clientID, Default: clientID == ""}
	for _, e := range [...]QuotaEntity{
		{User: u, ClientID: c}, {User: u, ClientID: QuotaDefault}, {User: u},
		{User: QuotaDefault, ClientID: c}, {User: QuotaDefault, ClientID: QuotaDefault}, {User: QuotaDefault},
		{ClientID: c}, {ClientID: QuotaDefault},
	} {
		if v, ok := im.Quotas[e][key]; ok {
			return QuotaMatch{Entity: e, Value: v}, true
		}
	}
	return QuotaMatch{}, false
}

// AlterClientQuotas applies the alterations in one command (see
// AlterClientQuotasCmd); each must be valid (QuotaAlteration.Check) and
// name a distinct entity.
func (s *Store) AlterClientQuotas(ctx context.Context, entries []QuotaAlteration) error {
	c := AlterClientQuotasCmd{Entries: entries}
	if err := c.check(); err != nil {
		return err
	}
	if _, err := s.propose(ctx, c); err != nil {
		return fmt.Errorf("alter client quotas: %w", err)
	}
	return nil
}

// quotaSnapshot is one entity's quotas in a snapshot.
type quotaSnapshot struct {
	Entity QuotaEntity        `json:"entity"`
	Values map[string]float64 `json:"values"`
}

// snapshotQuotas lists every entity's quotas, sorted.
func (im *Image) snapshotQuotas() []quotaSnapshot {
	var out []quotaSnapshot
	for _, e := range im.SortedQuotaEntities() {
		out = append(out, quotaSnapshot{Entity: e, Values: im.Quotas[e]})
	}
	return out
}

// restoreQuotas fills a fresh image's quotas from a snapshot, checked like
// an alteration.
func (im *Image) restoreQuotas(entries []quotaSnapshot) error {
	for _, q := range entries {
		a := QuotaAlteration{Entity: q.Entity, Set: q.Values}
		if err := a.Check(); err != nil || len(q.Values) == 0 {
			return fmt.Errorf("%w: snapshot quota entity %s: empty or invalid: %v", ErrInvalidCommand, q.Entity, err)
		}
		if _, dup := im.Quotas[q.Entity]; dup {
			return fmt.Errorf("%w: snapshot holds quota entity %s twice", ErrInvalidCommand, q.Entity)
		}
		im.Quotas[q.Entity] = maps.Clone(q.Values)
	}
	return nil
}
