package metadata

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"maps"
	"math"
	"reflect"
	"strings"
	"testing"
	"time"
)

var (
	alice      = QuotaNamed("alice")
	appClient  = QuotaNamed("app")
	userAlice  = QuotaEntity{User: alice}
	clientApp  = QuotaEntity{ClientID: appClient}
	aliceApp   = QuotaEntity{User: alice, ClientID: appClient}
	anyClients = QuotaEntity{ClientID: QuotaDefault}
)

func setQuota(e QuotaEntity, kv map[string]float64) QuotaAlteration {
	return QuotaAlteration{Entity: e, Set: kv}
}

func TestCheckQuotaValue(t *testing.T) {
	for _, tc := range []struct {
		key string
		v   float64
		ok  bool
	}{
		{QuotaProducerByteRate, 1024, true},
		{QuotaConsumerByteRate, 1, true},
		{QuotaRequestPercentage, 12.5, true},
		{QuotaRequestPercentage, 1000, true},
		{QuotaProducerByteRate, 0, false},
		{QuotaProducerByteRate, -5, false},
		{QuotaProducerByteRate, 10.5, false}, // byte rates are integers
		{QuotaConsumerByteRate, math.MaxInt64 * 2, false},
		{QuotaRequestPercentage, math.NaN(), false},
		{QuotaRequestPercentage, math.Inf(1), false},
		{QuotaRequestPercentage, 0, false},
		{"controller_mutation_rate", 10, false}, // not supported
		{"connection_creation_rate", 10, false}, // an ip quota
		{"producer.byte.rate", 10, false},
	} {
		err := CheckQuotaValue(tc.key, tc.v)
		if tc.ok != (err == nil) || err != nil && !errors.Is(err, ErrInvalidRequest) {
			t.Errorf("CheckQuotaValue(%s, %v) = %v, want ok %v", tc.key, tc.v, err, tc.ok)
		}
	}
}

func TestAlterClientQuotasCmdRoundTripAndRejects(t *testing.T) {
	c := AlterClientQuotasCmd{Entries: []QuotaAlteration{
		setQuota(aliceApp, map[string]float64{QuotaProducerByteRate: 1 << 20, QuotaRequestPercentage: 50}),
		{Entity: QuotaEntity{User: QuotaDefault}, Remove: []string{QuotaConsumerByteRate, "unknown_key"}},
		setQuota(anyClients, map[string]float64{QuotaConsumerByteRate: 2048}),
	}}
	b, err := EncodeCommand(RequestCmd{ID: "r1", Cmd: c})
	if err != nil {
		t.Fatal(err)
	}
	got, err := DecodeCommand(b)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got.(RequestCmd).Cmd, c) {
		t.Fatalf("round trip gave %#v, want %#v", got, c)
	}
	for name, bad := range map[string]AlterClientQuotasCmd{
		"no entries":     {},
		"empty entity":   {Entries: []QuotaAlteration{setQuota(QuotaEntity{}, map[string]float64{QuotaProducerByteRate: 1})}},
		"named default":  {Entries: []QuotaAlteration{setQuota(QuotaEntity{User: QuotaName{Name: "a", Default: true}}, map[string]float64{QuotaProducerByteRate: 1})}},
		"unknown key":    {Entries: []QuotaAlteration{setQuota(clientApp, map[string]float64{"bogus": 1})}},
		"zero rate":      {Entries: []QuotaAlteration{setQuota(clientApp, map[string]float64{QuotaProducerByteRate: 0})}},
		"set and remove": {Entries: []QuotaAlteration{{Entity: clientApp, Set: map[string]float64{QuotaProducerByteRate: 1}, Remove: []string{QuotaProducerByteRate}}}},
		"entity twice": {Entries: []QuotaAlteration{setQuota(clientApp, map[string]float64{QuotaProducerByteRate: 1}),
			setQuota(clientApp, map[string]float64{QuotaConsumerByteRate: 1})}},
	} {
		body, err := json.Marshal(bad)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := DecodeCommand(append([]byte{byte(CmdAlterClientQuotas)}, body...)); !errors.Is(err, ErrInvalidRequest) {
			t.Errorf("%s: DecodeCommand = %v, want ErrInvalidRequest", name, err)
		}
	}
}

func TestApplyAlterClientQuotas(t *testing.T) {
	im := emptyImage()
	im = mustChange(t, im, AlterClientQuotasCmd{Entries: []QuotaAlteration{
		setQuota(aliceApp, map[string]float64{QuotaProducerByteRate: 100, QuotaConsumerByteRate: 200}),
		setQuota(anyClients, map[string]float64{QuotaRequestPercentage: 25}),
	}})
	if got := im.ClientQuotas(aliceApp); !maps.Equal(got, map[string]float64{QuotaProducerByteRate: 100, QuotaConsumerByteRate: 200}) {
		t.Fatalf("alice/app quotas %v", got)
	}
	before := maps.Clone(im.ClientQuotas(aliceApp))
	next := mustChange(t, im, AlterClientQuotasCmd{Entries: []QuotaAlteration{
		{Entity: aliceApp, Set: map[string]float64{QuotaProducerByteRate: 300}, Remove: []string{QuotaConsumerByteRate}},
	}})
	if got := next.ClientQuotas(aliceApp); !maps.Equal(got, map[string]float64{QuotaProducerByteRate: 300}) {
		t.Fatalf("after the change: %v", got)
	}
	if !maps.Equal(im.ClientQuotas(aliceApp), before) {
		t.Fatalf("the earlier image changed: %v", im.ClientQuotas(aliceApp))
	}
	// Removing the last key removes the entity; removing an absent key is fine.
	next = mustChange(t, next, AlterClientQuotasCmd{Entries: []QuotaAlteration{
		{Entity: aliceApp, Remove: []string{QuotaProducerByteRate, QuotaRequestPercentage}},
	}})
	if got := next.SortedQuotaEntities(); !reflect.DeepEqual(got, []QuotaEntity{anyClients}) {
		t.Fatalf("entities %v, want only /clients/<default>", got)
	}
}

func TestSortedQuotaEntities(t *testing.T) {
	im := emptyImage()
	want := []QuotaEntity{
		{User: QuotaDefault}, {User: QuotaDefault, ClientID: QuotaDefault}, {User: QuotaDefault, ClientID: appClient},
		userAlice, aliceApp, {User: QuotaNamed("bob")},
		anyClients, clientApp, {ClientID: QuotaNamed("zed")},
	}
	var entries []QuotaAlteration
	for i := len(want) - 1; i >= 0; i-- {
		entries = append(entries, setQuota(want[i], map[string]float64{QuotaProducerByteRate: 1}))
	}
	im = mustChange(t, im, AlterClientQuotasCmd{Entries: entries})
	if got := im.SortedQuotaEntities(); !reflect.DeepEqual(got, want) {
		t.Fatalf("sorted:\n got %v\nwant %v", got, want)
	}
	if s := (QuotaEntity{User: QuotaDefault, ClientID: appClient}).String(); s != "/users/<default>/clients/app" {
		t.Errorf("String() = %q", s)
	}
}

// TestResolveQuotaPrecedence sets every entity that can match user alice
// with client app, each with a distinct value, then removes them from the
// most specific on: each removal uncovers the next entity in Kafka's order.
func TestResolveQuotaPrecedence(t *testing.T) {
	order := []QuotaEntity{
		{User: alice, ClientID: appClient},
		{User: alice, ClientID: QuotaDefault},
		{User: alice},
		{User: QuotaDefault, ClientID: appClient},
		{User: QuotaDefault, ClientID: QuotaDefault},
		{User: QuotaDefault},
		{ClientID: appClient},
		{ClientID: QuotaDefault},
	}
	im := emptyImage()
	if _, ok := im.ResolveQuota(QuotaProducerByteRate, "alice", "app"); ok {
		t.Fatal("a quota resolved on an empty image")
	}
	var entries []QuotaAlteration
	for i, e := range order {
		entries = append(entries, setQuota(e, map[string]float64{QuotaProducerByteRate: float64(i + 1)}))
	}
	// Entities that must never match alice/app.
	for _, e := range []QuotaEntity{
		{User: QuotaNamed("bob")}, {User: QuotaNamed("bob"), ClientID: appClient},
		{User: alice, ClientID: QuotaNamed("other")}, {ClientID: QuotaNamed("other")},
	} {
		entries = append(entries, setQuota(e, map[string]float64{QuotaProducerByteRate: 1000}))
	}
	im = mustChange(t, im, AlterClientQuotasCmd{Entries: entries})
	for i, e := range order {
		m, ok := im.ResolveQuota(QuotaProducerByteRate, "alice", "app")
		if !ok || m.Entity != e || m.Value != float64(i+1) {
			t.Fatalf("step %d: resolved %v %v, want %s = %d", i, m, ok, e, i+1)
		}
		// Another key set on a less specific entity does not shadow it.
		if _, ok := im.ResolveQuota(QuotaConsumerByteRate, "alice", "app"); ok {
			t.Fatalf("step %d: consumer quota resolved without any set", i)
		}
		im = mustChange(t, im, AlterClientQuotasCmd{Entries: []QuotaAlteration{{Entity: e, Remove: []string{QuotaProducerByteRate}}}})
	}
	if m, ok := im.ResolveQuota(QuotaProducerByteRate, "alice", "app"); ok {
		t.Fatalf("resolved %v after every matching entity was removed", m)
	}
}

func TestResolveQuotaPerKey(t *testing.T) {
	im := mustChange(t, emptyImage(), AlterClientQuotasCmd{Entries: []QuotaAlteration{
		setQuota(aliceApp, map[string]float64{QuotaProducerByteRate: 10}),
		setQuota(anyClients, map[string]float64{QuotaConsumerByteRate: 20, QuotaProducerByteRate: 30}),
	}})
	for _, tc := range []struct {
		key, user, client string
		want              QuotaEntity
		value             float64
	}{
		{QuotaProducerByteRate, "alice", "app", aliceApp, 10},
		{QuotaConsumerByteRate, "alice", "app", anyClients, 20},
		{QuotaProducerByteRate, "ANONYMOUS", "app", anyClients, 30},
		{QuotaProducerByteRate, "alice", "", anyClients, 30}, // no client id: the default
	} {
		m, ok := im.ResolveQuota(tc.key, tc.user, tc.client)
		if !ok || m.Entity != tc.want || m.Value != tc.value {
			t.Errorf("%s %s/%s: %v %v, want %s %v", tc.key, tc.user, tc.client, m, ok, tc.want, tc.value)
		}
	}
}

func TestQuotaSnapshot(t *testing.T) {
	im := mustChange(t, emptyImage(), AlterClientQuotasCmd{Entries: []QuotaAlteration{
		setQuota(aliceApp, map[string]float64{QuotaProducerByteRate: 10, QuotaRequestPercentage: 12.5}),
		setQuota(anyClients, map[string]float64{QuotaConsumerByteRate: 20}),
	}})
	var buf bytes.Buffer
	if err := encodeSnapshot(&buf, im); err != nil {
		t.Fatal(err)
	}
	got, err := decodeSnapshot(bytes.NewReader(buf.Bytes()))
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, im) {
		t.Fatalf("restored image differs:\n got %+v\nwant %+v", got, im)
	}
	// A version 6 snapshot (before quotas) restores without quotas.
	var d snapshotData
	if err := json.Unmarshal(buf.Bytes(), &d); err != nil {
		t.Fatal(err)
	}
	d.Version, d.Quotas = 6, nil
	b, err := json.Marshal(&d)
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(b), "quotas") {
		t.Fatalf("a snapshot without quotas names them: %s", b)
	}
	old, err := decodeSnapshot(bytes.NewReader(b))
	if err != nil || len(old.Quotas) != 0 || old.Quotas == nil {
		t.Fatalf("v6 restore: %v, quotas %v", err, old.Quotas)
	}
	refuseSnapshots(t, buf.Bytes(), map[string]func(d *snapshotData){
		"entity twice":  func(d *snapshotData) { d.Quotas = append(d.Quotas, d.Quotas[0]) },
		"no values":     func(d *snapshotData) { d.Quotas[0].Values = nil },
		"bad value":     func(d *snapshotData) { d.Quotas[0].Values = map[string]float64{QuotaProducerByteRate: -1} },
		"unknown key":   func(d *snapshotData) { d.Quotas[0].Values = map[string]float64{"x": 1} },
		"empty entity":  func(d *snapshotData) { d.Quotas[0].Entity = QuotaEntity{} },
		"newer version": func(d *snapshotData) { d.Version = snapshotVersion + 1 },
	})
}

func TestStoreAlterClientQuotas(t *testing.T) {
	s := openTestStore(t)
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	if err := s.AlterClientQuotas(ctx, []QuotaAlteration{setQuota(clientApp, map[string]float64{"nope": 1})}); !errors.Is(err, ErrInvalidRequest) {
		t.Fatalf("unknown key: %v", err)
	}
	if err := s.AlterClientQuotas(ctx, []QuotaAlteration{setQuota(clientApp, map[string]float64{QuotaProducerByteRate: 1 << 20})}); err != nil {
		t.Fatal(err)
	}
	m, ok := s.Image().ResolveQuota(QuotaProducerByteRate, "ANONYMOUS", "app")
	if !ok || m.Value != 1<<20 || m.Entity != clientApp {
		t.Fatalf("resolved %v %v", m, ok)
	}
}
