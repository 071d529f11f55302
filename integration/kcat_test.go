package integration

import (
	"bytes"
	"context"
	"fmt"
	"os/exec"
	"sort"
	"strings"
	"testing"
	"time"
)

// kcat runs kcat (librdkafka) with args and stdin, failing the test on a
// non-zero exit or after 60 s.
func kcat(t *testing.T, stdin string, args ...string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 60*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, "kcat", args...)
	cmd.Stdin = strings.NewReader(stdin)
	var out, errOut bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errOut
	if err := cmd.Run(); err != nil {
		t.Fatalf("kcat %s: %v\nstdout:\n%s\nstderr:\n%s", strings.Join(args, " "), err, out.String(), errOut.String())
	}
	return out.String()
}

// TestKcat lists metadata, produces keyed lines and consumes them back with
// kcat against a shoald on the embedded default (only the data directory
// and ports differ).
func TestKcat(t *testing.T) {
	if _, err := exec.LookPath("kcat"); err != nil {
		t.Fatal("kcat is not on PATH: run `make test` (it installs the Debian package kcat), or `apt-get install -y kcat`")
	}
	b := StartBroker(t)
	createTopic(t, b, "kcat", 3)

	meta := kcat(t, "", "-L", "-b", b.Addr, "-m", "10")
	for _, want := range []string{"1 brokers:", "broker 1 at " + b.Addr, `topic "kcat" with 3 partitions`} {
		if !strings.Contains(meta, want) {
			t.Errorf("kcat -L output lacks %q:\n%s", want, meta)
		}
	}

	var in strings.Builder
	var want []string
	for i := range 300 {
		line := fmt.Sprintf("key-%03d:value %d with spaces", i, i)
		in.WriteString(line + "\n")
		want = append(want, line)
	}
	kcat(t, in.String(), "-P", "-b", b.Addr, "-t", "kcat", "-K", ":", "-X", "acks=all")

	out := kcat(t, "", "-C", "-b", b.Addr, "-t", "kcat", "-o", "beginning", "-e", "-q",
		"-f", "%k:%s:%p:%o\n")
	var got []string
	perPartition := map[string][]string{}
	for _, line := range strings.Split(strings.TrimSpace(out), "\n") {
		parts := strings.Split(line, ":")
		if len(parts) != 4 {
			t.Fatalf("kcat -C: unexpected line %q", line)
		}
		got = append(got, parts[0]+":"+parts[1])
		perPartition[parts[2]] = append(perPartition[parts[2]], parts[3])
	}
	for p, offs := range perPartition {
		for i, o := range offs {
			if o != fmt.Sprint(i) {
				t.Fatalf("partition %s: offset %s at position %d (not dense)", p, o, i)
			}
		}
	}
	sort.Strings(got)
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Fatalf("kcat -C returned %d records, want %d; first: %q", len(got), len(want), got[:min(3, len(got))])
	}
}
