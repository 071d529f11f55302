package main

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/twmb/franz-go/pkg/kadm"
)

func writeTemp(t *testing.T, name, content string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestReassignUsageErrors(t *testing.T) {
	good := writeTemp(t, "r.json", `{"version":1,"partitions":[{"topic":"t","partition":0,"replicas":[1,2,3],"log_dirs":["any","any","any"]}]}`)
	topics := writeTemp(t, "topics.json", `{"version":1,"topics":[{"topic":"t"}]}`)
	for _, args := range [][]string{
		{"reassign"},
		{"reassign", "nope"},
		{"reassign", "execute"},
		{"reassign", "execute", good, "--reassignment-json-file", good},
		{"reassign", "execute", "--reassignment-json-file", filepath.Join(t.TempDir(), "missing.json")},
		{"reassign", "execute", "--reassignment-json-file", writeTemp(t, "bad.json", `{"version":1,`)},
		{"reassign", "execute", "--reassignment-json-file", writeTemp(t, "v2.json", `{"version":2,"partitions":[{"topic":"t","partition":0,"replicas":[1]}]}`)},
		{"reassign", "execute", "--reassignment-json-file", writeTemp(t, "none.json", `{"version":1,"partitions":[]}`)},
		{"reassign", "execute", "--reassignment-json-file", writeTemp(t, "twice.json", `{"version":1,"partitions":[{"topic":"t","partition":0,"replicas":[1]},{"topic":"t","partition":0,"replicas":[2]}]}`)},
		{"reassign", "execute", "--reassignment-json-file", writeTemp(t, "norep.json", `{"version":1,"partitions":[{"topic":"t","partition":0,"replicas":[]}]}`)},
		{"reassign", "execute", "--reassignment-json-file", writeTemp(t, "dup.json", `{"version":1,"partitions":[{"topic":"t","partition":0,"replicas":[1,1]}]}`)},
		{"reassign", "execute", "--reassignment-json-file", writeTemp(t, "dirs.json", `{"version":1,"partitions":[{"topic":"t","partition":0,"replicas":[1,2],"log_dirs":["any"]}]}`)},
		{"reassign", "verify"},
		{"reassign", "verify", "--reassignment-json-file", good, "--wait=maybe"},
		{"reassign", "cancel", "--reassignment-json-file", writeTemp(t, "neg.json", `{"version":1,"partitions":[{"topic":"t","partition":-1,"replicas":[1]}]}`)},
		{"reassign", "generate", "--topics-to-move-json-file", topics},
		{"reassign", "generate", "--broker-list", "1,x", "--topics-to-move-json-file", topics},
		{"reassign", "generate", "--broker-list", "1,2,3"},
		{"reassign", "generate", "--broker-list", "1,2,3", "--topics-to-move-json-file", writeTemp(t, "t2.json", `{"version":1,"topics":[]}`)},
		{"reassign", "generate", "--broker-list", "1,2,3", "--topics-to-move-json-file", topics}, // no admin URL
		{"reassign", "balance"}, // no admin URL
		{"reassign", "balance", "--admin", "http://h:1", "--max-moves", "-1"},
	} {
		code, _, stderr := runCtl(nil, args...)
		if code != exitUsage || !strings.Contains(stderr, "usage: shoalctl") {
			t.Errorf("shoalctl %v: exit %d, stderr %q; want exit 2 and a usage line", args, code, stderr)
		}
	}
	code, stdout, _ := runCtl(nil, "help", "reassign")
	if code != exitOK || !strings.Contains(stdout, "balance") || !strings.Contains(stdout, "generate") {
		t.Errorf("help reassign: exit %d\n%s", code, stdout)
	}
}

func TestPlanBalance(t *testing.T) {
	groups := []walGroup{{ID: 0, Replicas: []int32{1, 2, 3}}, {ID: 1, Replicas: []int32{2, 3, 1}}, {ID: 2, Replicas: []int32{3, 1, 2}}}
	where := map[topicPartition]uint32{}
	for p := range int32(6) {
		where[topicPartition{"a", p}] = 0
	}
	for p := range int32(3) {
		where[topicPartition{"b", p}] = 0
	}
	where[topicPartition{"c", 0}] = 1
	plan := planBalance(groups, where, 0)
	counts := map[uint32]int{}
	for _, g := range where {
		counts[g]++
	}
	topicSpread := map[string]map[uint32]int{}
	for tp, g := range where {
		if topicSpread[tp.topic] == nil {
			topicSpread[tp.topic] = map[uint32]int{}
		}
		topicSpread[tp.topic][g]++
	}
	for _, m := range plan {
		if m.From != 0 || where[topicPartition{m.Topic, m.Partition}] != 0 {
			t.Fatalf("move %+v does not come from the full group", m)
		}
		g, _ := groupByID(groups, m.To)
		if !slices.Equal(m.Replicas, g.Replicas) {
			t.Fatalf("move %+v: replicas are not group %d's", m, m.To)
		}
		counts[m.From]--
		counts[m.To]++
		topicSpread[m.Topic][m.From]--
		topicSpread[m.Topic][m.To]++
	}
	if counts[0] != 4 || counts[1] != 3 || counts[2] != 3 || len(plan) != 5 {
		t.Fatalf("after %d moves: %v, want 4 3 3 after 5", len(plan), counts)
	}
	for _, topic := range []string{"a", "b"} { // topics spread too
		for _, g := range groups {
			if topicSpread[topic][g.ID] == 0 {
				t.Errorf("topic %s has no partition in group %d after balancing: %v", topic, g.ID, topicSpread[topic])
			}
		}
	}
	if again := planBalance(groups, map[topicPartition]uint32{{"x", 0}: 0, {"x", 1}: 1}, 0); len(again) != 0 {
		t.Errorf("balanced groups got moves %+v", again)
	}
	if limited := planBalance(groups, where, 2); len(limited) != 2 {
		t.Errorf("--max-moves 2 planned %d moves", len(limited))
	}
}

func TestProposeAssignment(t *testing.T) {
	groups := []walGroup{{ID: 0, Replicas: []int32{1, 2, 3}}, {ID: 1, Replicas: []int32{2, 3, 4}}, {ID: 2, Replicas: []int32{3, 4, 1}}}
	td := kadm.TopicDetails{"t": {Topic: "t", Partitions: kadm.PartitionDetails{
		0: {Partition: 0}, 1: {Partition: 1}, 2: {Partition: 2},
	}}}
	got, err := proposeAssignment(td, groups, []int32{1, 2, 3, 4})
	if err != nil {
		t.Fatal(err)
	}
	want := [][]int32{{1, 2, 3}, {2, 3, 4}, {3, 4, 1}}
	for i, p := range got.Partitions {
		if !slices.Equal(p.Replicas, want[i]) || len(p.LogDirs) != 3 || p.LogDirs[0] != "any" {
			t.Errorf("partition %d: %+v, want replicas %v", i, p, want[i])
		}
	}
	got, err = proposeAssignment(td, groups, []int32{1, 2, 3})
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range got.Partitions {
		if !slices.Equal(p.Replicas, []int32{1, 2, 3}) {
			t.Errorf("only group 0 fits brokers 1-3: %+v", p)
		}
	}
	if _, err := proposeAssignment(td, groups, []int32{1, 2}); err == nil || !strings.Contains(err.Error(), "0=[1 2 3]") {
		t.Errorf("no fitting group: %v", err)
	}
}
