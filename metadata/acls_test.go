package metadata

import (
	"bytes"
	"errors"
	"reflect"
	"slices"
	"testing"
)

func allowTopic(pattern ACLPatternType, name, principal string, op ACLOperation) ACLBinding {
	return ACLBinding{ResourceType: ACLResourceTopic, ResourceName: name, PatternType: pattern,
		Principal: principal, Host: "*", Operation: op, Permission: ACLPermissionAllow}
}

func ptr(s string) *string { return &s }

func TestACLBindingCheck(t *testing.T) {
	ok := allowTopic(ACLPatternLiteral, "orders", "User:alice", ACLOpRead)
	if err := ok.Check(); err != nil {
		t.Fatal(err)
	}
	for name, mutate := range map[string]func(*ACLBinding){
		"any resource":    func(b *ACLBinding) { b.ResourceType = ACLResourceAny },
		"match pattern":   func(b *ACLBinding) { b.PatternType = ACLPatternMatch },
		"any operation":   func(b *ACLBinding) { b.Operation = ACLOpAny },
		"any permission":  func(b *ACLBinding) { b.Permission = ACLPermissionAny },
		"empty name":      func(b *ACLBinding) { b.ResourceName = "" },
		"no colon":        func(b *ACLBinding) { b.Principal = "alice" },
		"empty host":      func(b *ACLBinding) { b.Host = "" },
		"cluster name":    func(b *ACLBinding) { b.ResourceType = ACLResourceCluster },
		"unknown op code": func(b *ACLBinding) { b.Operation = 15 },
	} {
		b := ok
		mutate(&b)
		if err := b.Check(); !errors.Is(err, ErrInvalidRequest) {
			t.Errorf("%s: %v", name, err)
		}
	}
}

func TestACLTableMatching(t *testing.T) {
	lit := allowTopic(ACLPatternLiteral, "orders", "User:a", ACLOpRead)
	star := allowTopic(ACLPatternLiteral, "*", "User:b", ACLOpRead)
	pre := allowTopic(ACLPatternPrefixed, "ord", "User:c", ACLOpRead)
	long := allowTopic(ACLPatternPrefixed, "orders-eu", "User:d", ACLOpRead)
	group := ACLBinding{ResourceType: ACLResourceGroup, ResourceName: "orders", PatternType: ACLPatternLiteral,
		Principal: "User:e", Host: "*", Operation: ACLOpRead, Permission: ACLPermissionAllow}
	im := applyOK(t, emptyImage(), CreateACLsCmd{ACLs: []ACLBinding{long, group, lit, star, pre}})
	for _, tc := range []struct {
		name string
		want []ACLBinding
	}{
		{"orders", []ACLBinding{lit, star, pre}},
		{"orders-eu-1", []ACLBinding{star, pre, long}},
		{"or", []ACLBinding{star}},
		{"payments", []ACLBinding{star}},
	} {
		got := slices.Collect(im.ACLs.Matching(ACLResourceTopic, tc.name))
		if !reflect.DeepEqual(got, tc.want) {
			t.Errorf("topic %s: %v, want %v", tc.name, got, tc.want)
		}
	}
	// Filters as Kafka's AclBindingFilter: MATCH finds what applies to a
	// name, LITERAL only the exact pattern, ANY every pattern of that name.
	for _, tc := range []struct {
		f    ACLFilter
		want []ACLBinding
	}{
		{ACLFilter{ResourceType: ACLResourceTopic, PatternType: ACLPatternMatch, ResourceName: ptr("orders"), Operation: ACLOpAny, Permission: ACLPermissionAny}, []ACLBinding{star, lit, pre}},
		{ACLFilter{ResourceType: ACLResourceTopic, PatternType: ACLPatternLiteral, ResourceName: ptr("orders"), Operation: ACLOpAny, Permission: ACLPermissionAny}, []ACLBinding{lit}},
		{ACLFilter{ResourceType: ACLResourceAny, PatternType: ACLPatternAny, ResourceName: ptr("orders"), Operation: ACLOpAny, Permission: ACLPermissionAny}, []ACLBinding{lit, group}},
		{ACLFilter{ResourceType: ACLResourceAny, PatternType: ACLPatternPrefixed, Principal: ptr("User:d"), Operation: ACLOpRead, Permission: ACLPermissionAllow}, []ACLBinding{long}},
		{ACLFilter{ResourceType: ACLResourceAny, PatternType: ACLPatternAny, Host: ptr("10.0.0.1"), Operation: ACLOpAny, Permission: ACLPermissionAny}, nil},
	} {
		if got := im.ACLs.Filter(tc.f); !reflect.DeepEqual(got, tc.want) {
			t.Errorf("filter %+v: %v, want %v", tc.f, got, tc.want)
		}
	}
}

func TestACLCommands(t *testing.T) {
	a := allowTopic(ACLPatternLiteral, "orders", "User:a", ACLOpRead)
	b := allowTopic(ACLPatternPrefixed, "ord", "User:b", ACLOpWrite)
	create := CreateACLsCmd{ACLs: []ACLBinding{a, b}}
	del := DeleteACLsCmd{Filters: []ACLFilter{
		{ResourceType: ACLResourceTopic, PatternType: ACLPatternAny, Operation: ACLOpRead, Permission: ACLPermissionAny},
		{ResourceType: ACLResourceAny, PatternType: ACLPatternMatch, ResourceName: ptr("orders"), Operation: ACLOpAny, Permission: ACLPermissionAny},
		{ResourceType: ACLResourceGroup, PatternType: ACLPatternAny, Operation: ACLOpAny, Permission: ACLPermissionAny},
	}}
	for _, c := range []Command{create, del} {
		enc, err := EncodeCommand(RequestCmd{ID: "r", Cmd: c})
		if err != nil {
			t.Fatal(err)
		}
		got, err := DecodeCommand(enc)
		if err != nil || !reflect.DeepEqual(got.(RequestCmd).Cmd, c) {
			t.Fatalf("%s round trip: %#v, %v", c.Type(), got, err)
		}
	}
	for _, bad := range []Command{CreateACLsCmd{}, CreateACLsCmd{ACLs: []ACLBinding{{}}}, DeleteACLsCmd{},
		DeleteACLsCmd{Filters: []ACLFilter{{ResourceType: 9, PatternType: 1, Operation: 1, Permission: 1}}}} {
		if enc, _ := EncodeCommand(bad); enc != nil {
			if _, err := DecodeCommand(enc); !errors.Is(err, ErrInvalidRequest) {
				t.Errorf("%#v decoded: %v", bad, err)
			}
		}
	}

	im := applyOK(t, emptyImage(), create)
	if next, _ := im.apply(create, im.Index+1); next != nil {
		t.Fatal("creating present ACLs changed the image")
	}
	next, resp := im.apply(del, im.Index+1)
	want := [][]ACLBinding{{a}, {a, b}, nil}
	if next == nil || next.ACLs.Len() != 0 || !reflect.DeepEqual(resp, want) {
		t.Fatalf("delete: %v, %d left, want %v", resp, next.ACLs.Len(), want)
	}
	// The result survives the request table and forwarding.
	if v, err := encodeResult(resp).decode(CmdDeleteACLs); err != nil || !reflect.DeepEqual(v, resp) {
		t.Fatalf("decoded result %v, %v", v, err)
	}
	if next, resp := emptyImage().apply(del, 1); next != nil || len(resp.([][]ACLBinding)) != 3 {
		t.Fatalf("delete on no ACLs: %v %v", next, resp)
	}
}

func TestACLSnapshot(t *testing.T) {
	im := applyOK(t, emptyImage(), CreateACLsCmd{ACLs: []ACLBinding{
		allowTopic(ACLPatternPrefixed, "ord", "User:b", ACLOpWrite),
		allowTopic(ACLPatternLiteral, "orders", "User:a", ACLOpRead),
	}})
	var buf bytes.Buffer
	if err := encodeSnapshot(&buf, im); err != nil {
		t.Fatal(err)
	}
	got, err := decodeSnapshot(bytes.NewReader(buf.Bytes()))
	if err != nil || !reflect.DeepEqual(got.ACLs, im.ACLs) {
		t.Fatalf("restored %+v, %v; want %+v", got.ACLs, err, im.ACLs)
	}
	// A snapshot of an older version has no ACLs, and restores.
	old, err := decodeSnapshot(bytes.NewReader([]byte(`{"version":7,"cluster_id":"c","topics":null,"next_stream_id":1,"next_producer_id":0,"index":3}`)))
	if err != nil || old.ACLs != nil {
		t.Fatalf("version 7 snapshot: %v, %v", old, err)
	}
	// Unsorted or duplicated bindings are refused.
	d := snapshotData{Version: snapshotVersion, NextStreamID: 1, ACLs: []ACLBinding{im.ACLs.All()[1], im.ACLs.All()[0]}}
	if _, err := decodeImage(&d); !errors.Is(err, ErrInvalidCommand) {
		t.Fatalf("unsorted ACLs: %v", err)
	}
}

func TestStoreACLs(t *testing.T) {
	s := openTestStore(t)
	ctx := t.Context()
	a := allowTopic(ACLPatternLiteral, "orders", "User:a", ACLOpRead)
	if err := s.CreateACLs(ctx, []ACLBinding{a}); err != nil {
		t.Fatal(err)
	}
	if !s.Image().ACLs.Contains(a) {
		t.Fatal("ACL not in the image after the write")
	}
	deleted, err := s.DeleteACLs(ctx, []ACLFilter{{ResourceType: ACLResourceAny, PatternType: ACLPatternAny, Operation: ACLOpAny, Permission: ACLPermissionAny}})
	if err != nil || !reflect.DeepEqual(deleted, [][]ACLBinding{{a}}) || s.Image().ACLs.Len() != 0 {
		t.Fatalf("delete: %v, %v, %d left", deleted, err, s.Image().ACLs.Len())
	}
}
