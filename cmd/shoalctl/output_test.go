package main

import (
	"bytes"
	"slices"
	"testing"
)

func TestWriteTable(t *testing.T) {
	var b bytes.Buffer
	writeTable(&b, []string{"TOPIC", "PARTITIONS"}, [][]string{{"orders", "3"}, {"a", "12"}})
	want := "TOPIC   PARTITIONS\norders  3\na       12\n"
	if b.String() != want {
		t.Fatalf("got\n%s\nwant\n%s", b.String(), want)
	}
}

func TestEmitJSON(t *testing.T) {
	var b bytes.Buffer
	c := &cli{settings: settings{output: "json"}, stdout: &b}
	v := []topicSummary{{Name: "a<b", ID: "x", Partitions: 2, ReplicationFactor: 3}}
	if err := c.emit(v, nil); err != nil {
		t.Fatal(err)
	}
	want := "[\n  {\n    \"name\": \"a<b\",\n    \"id\": \"x\",\n    \"partitions\": 2,\n    \"replication_factor\": 3\n  }\n]\n"
	if b.String() != want {
		t.Fatalf("got\n%s\nwant\n%s", b.String(), want)
	}
}

func TestRenderJSON(t *testing.T) {
	doc := `{"node_id": 1, "voters": [1, 2], "metadata": {"leader": 3, "term": 7},
		"wal_groups": [{"id": 0, "leader": 1, "local": {"state": "Leader"}}, {"id": 1, "extra": true}]}`
	var b bytes.Buffer
	if err := renderJSON(&b, []byte(doc)); err != nil {
		t.Fatal(err)
	}
	want := `node_id: 1
voters:  1,2

metadata:
leader: 3
term:   7

wal_groups:
ID  LEADER  LOCAL.STATE  EXTRA
0   1       Leader       -
1   -       -            true
`
	if b.String() != want {
		t.Fatalf("got\n%s\nwant\n%s", b.String(), want)
	}
	if err := renderJSON(&b, []byte(`{"a":1} x`)); err == nil {
		t.Fatal("trailing data accepted")
	}
}

func TestResetTargets(t *testing.T) {
	cur := int64(50)
	for _, tc := range []struct {
		t       resetTarget
		current *int64
		atTime  int64
		want    int64
	}{
		{resetTarget{how: "earliest"}, &cur, 0, 10},
		{resetTarget{how: "latest"}, &cur, 0, 100},
		{resetTarget{how: "offset", offset: 5}, &cur, 0, 10},
		{resetTarget{how: "offset", offset: 70}, &cur, 0, 70},
		{resetTarget{how: "offset", offset: 700}, &cur, 0, 100},
		{resetTarget{how: "datetime"}, &cur, 42, 42},
		{resetTarget{how: "datetime"}, &cur, -1, 100},
		{resetTarget{how: "shift-by", offset: -20}, &cur, 0, 30},
		{resetTarget{how: "shift-by", offset: -60}, &cur, 0, 10},
		{resetTarget{how: "shift-by", offset: 5}, nil, 0, 15},
	} {
		if got := tc.t.newOffset(tc.current, 10, 100, tc.atTime); got != tc.want {
			t.Errorf("%+v at %v: %d, want %d", tc.t, tc.atTime, got, tc.want)
		}
	}
}

func TestParseTopicSpecs(t *testing.T) {
	got, err := parseTopicSpecs([]string{"a", "b:0,2"})
	if err != nil || got["a"] != nil || !slices.Equal(got["b"], []int32{0, 2}) || len(got) != 2 {
		t.Fatalf("%v %v", got, err)
	}
	for _, bad := range []string{":1", "a:", "a:-1", "a:x"} {
		if _, err := parseTopicSpecs([]string{bad}); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
}
