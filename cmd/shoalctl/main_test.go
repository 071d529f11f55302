package main

import (
	"bytes"
	"flag"
	"slices"
	"strings"
	"testing"
)

// runCtl runs shoalctl in-process with env (nil: empty; HOME unset, so no
// config file is read) and returns the exit status and outputs.
func runCtl(env map[string]string, args ...string) (int, string, string) {
	var out, errOut bytes.Buffer
	code := run(args, func(k string) string { return env[k] }, &out, &errOut)
	return code, out.String(), errOut.String()
}

func TestUsageErrors(t *testing.T) {
	for _, args := range [][]string{
		{},
		{"nope"},
		{"--nope", "topics", "list"},
		{"topics"},
		{"topics", "nope"},
		{"topics", "list", "--nope"},
		{"topics", "list", "extra"},
		{"topics", "create"},
		{"topics", "create", "t", "--partitions", "0"},
		{"topics", "create", "t", "--config", "novalue"},
		{"topics", "alter", "t"},
		{"topics", "alter", "t", "u", "--partitions", "3"},
		{"topics", "list", "--output", "yaml"},
		{"topics", "list", "--timeout", "-1s"},
		{"topics", "list", "--admin", "ftp://x"},
		{"groups", "describe"},
		{"groups", "reset-offsets", "g", "--topic", "t"},
		{"groups", "reset-offsets", "g", "--to-earliest"},
		{"groups", "reset-offsets", "g", "--topic", "t", "--to-earliest", "--to-latest"},
		{"groups", "reset-offsets", "g", "--topic", "t:x", "--to-earliest"},
		{"groups", "reset-offsets", "g", "--topic", "t", "--to-datetime", "yesterday"},
		{"groups", "reset-offsets", "g", "--topic", "t", "--to-earliest", "--dry-run", "--execute"},
		{"cluster", "add-broker", "--id", "4"},
		{"cluster", "add-broker", "--cluster-address", "h:1"},
		{"cluster", "add-broker", "--id", "4", "--cluster-address", "nocolon", "--admin", "h:1"},
		{"cluster", "remove-broker", "--admin", "h:1"},
		{"cluster", "remove-broker", "--id", "3"}, // no admin URL
		{"objects", "list"}, // no admin URL
		{"objects", "inspect", "--admin", "h:1"},
		{"objects", "cost", "--admin", "h:1", "--sample", "1ms"},
		{"help", "nope"},
	} {
		code, _, stderr := runCtl(nil, args...)
		if code != exitUsage || !strings.Contains(stderr, "usage: shoalctl") || strings.Count(stderr, "\n") != 2 {
			t.Errorf("shoalctl %v: exit %d, stderr %q; want exit 2, a message and a usage line", args, code, stderr)
		}
	}
}

func TestHelp(t *testing.T) {
	for _, args := range [][]string{{"help"}, {"--help"}, {"-h"}, {"help", "topics"}, {"topics", "--help"},
		{"help", "groups", "reset-offsets"}, {"groups", "reset-offsets", "--help"}, {"topics", "create", "-h"}} {
		code, stdout, stderr := runCtl(nil, args...)
		if code != exitOK || !strings.Contains(stdout, "usage: shoalctl") || stderr != "" {
			t.Errorf("shoalctl %v: exit %d, stdout %q, stderr %q", args, code, stdout, stderr)
		}
	}
	_, stdout, _ := runCtl(nil, "topics", "create", "--help")
	if !strings.Contains(stdout, "-replication-factor") || !strings.Contains(stdout, "key=value") {
		t.Errorf("topics create --help lacks its flags:\n%s", stdout)
	}
}

func TestParseInterspersed(t *testing.T) {
	fs := newFlagSet("t")
	n := fs.Int("n", 0, "")
	var l listFlag
	fs.Var(&l, "l", "")
	pos, err := parseInterspersed(fs, []string{"a", "-n", "3", "b", "--l", "x", "c", "--", "-n", "d"})
	if err != nil || *n != 3 || !slices.Equal(pos, []string{"a", "b", "c", "-n", "d"}) || !slices.Equal(l, []string{"x"}) {
		t.Fatalf("pos %q, n %d, l %q, err %v", pos, *n, l, err)
	}
	if _, err := parseInterspersed(fs, []string{"a", "-x"}); err == nil || err == flag.ErrHelp {
		t.Fatalf("unknown flag: %v", err)
	}
}

func TestUnreachableBroker(t *testing.T) {
	code, _, stderr := runCtl(nil, "--bootstrap", "127.0.0.1:1", "--timeout", "5s", "topics", "list")
	if code != exitFailed || !strings.HasPrefix(stderr, "shoalctl: topics list: ") {
		t.Fatalf("exit %d, stderr %q", code, stderr)
	}
}
