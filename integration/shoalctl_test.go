package integration

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
)

// shoalctlBuild is the shoalctl binary, built on first use next to shoald
// (TestMain removes that directory).
var shoalctlBuild struct {
	once sync.Once
	path string
	err  error
}

// shoalctlPath builds cmd/shoalctl once and returns the binary's path.
func shoalctlPath(t *testing.T) string {
	t.Helper()
	shoalctlBuild.once.Do(func() {
		out := filepath.Join(filepath.Dir(ShoaldPath()), "shoalctl")
		cmd := exec.Command("go", "build", "-o", out, "github.com/shoal-io/shoal/cmd/shoalctl")
		cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
		if msg, err := cmd.CombinedOutput(); err != nil {
			shoalctlBuild.err = fmt.Errorf("go build cmd/shoalctl: %v\n%s", err, msg)
			return
		}
		shoalctlBuild.path = out
	})
	if shoalctlBuild.err != nil {
		t.Fatal(shoalctlBuild.err)
	}
	return shoalctlBuild.path
}

// ctl runs shoalctl against one cluster, with an environment of its own
// (no config file, no SHOAL_* variables of the caller).
type ctl struct {
	t         *testing.T
	bootstrap string
	admin     string
	home      string
}

// run runs shoalctl with the cluster's --bootstrap and --admin and args.
func (c *ctl) run(args ...string) Result {
	c.t.Helper()
	return c.runRaw(append([]string{"--bootstrap", c.bootstrap, "--admin", c.admin}, args...)...)
}

// runRaw runs shoalctl with exactly args.
func (c *ctl) runRaw(args ...string) Result {
	c.t.Helper()
	ctx, cancel := context.WithTimeout(c.t.Context(), 60*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, shoalctlPath(c.t), args...)
	cmd.Env = []string{"HOME=" + c.home, "PATH=" + os.Getenv("PATH")}
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	var out, errOut bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errOut
	err := cmd.Run()
	var ee *exec.ExitError
	if err != nil && !errors.As(err, &ee) {
		c.t.Fatalf("run shoalctl %v: %v", args, err)
	}
	return Result{Code: cmd.ProcessState.ExitCode(), Stdout: out.String(), Stderr: errOut.String()}
}

// ok runs shoalctl, fails the test unless it exits 0, and returns stdout.
func (c *ctl) ok(args ...string) string {
	c.t.Helper()
	res := c.run(args...)
	if res.Code != 0 {
		c.t.Fatalf("shoalctl %s: exit %d\nstdout:\n%s\nstderr:\n%s", strings.Join(args, " "), res.Code, res.Stdout, res.Stderr)
	}
	return res.Stdout
}

// json runs shoalctl with --output json and decodes stdout into v (a
// pointer, zeroed first).
func (c *ctl) json(v any, args ...string) {
	c.t.Helper()
	out := c.ok(append(args, "--output", "json")...)
	reflect.ValueOf(v).Elem().SetZero()
	if err := json.Unmarshal([]byte(out), v); err != nil {
		c.t.Fatalf("shoalctl %s: %v in\n%s", strings.Join(args, " "), err, out)
	}
}

// eventually runs shoalctl with --output json until check accepts what
// it decoded into v: metadata changes reach the other brokers a little
// after the one that answered the change.
func (c *ctl) eventually(v any, check func() error, args ...string) {
	c.t.Helper()
	Eventually(c.t, 10*time.Second, func() error {
		res := c.run(append(args, "--output", "json")...)
		if res.Code != 0 {
			return fmt.Errorf("exit %d: %s", res.Code, res.Stderr)
		}
		reflect.ValueOf(v).Elem().SetZero()
		if err := json.Unmarshal([]byte(res.Stdout), v); err != nil {
			return err
		}
		return check()
	})
}

// fails runs shoalctl and fails the test unless it exits with code and
// stderr contains want.
func (c *ctl) fails(code int, want string, args ...string) {
	c.t.Helper()
	res := c.run(args...)
	if res.Code != code || !strings.Contains(res.Stderr, want) {
		c.t.Errorf("shoalctl %s: exit %d, stderr %q; want exit %d and %q", strings.Join(args, " "), res.Code, res.Stderr, code, want)
	}
}

// contains fails the test unless out holds every part of want.
func contains(t *testing.T, what, out string, want ...string) {
	t.Helper()
	for _, w := range want {
		if !strings.Contains(out, w) {
			t.Errorf("%s: output lacks %q:\n%s", what, w, out)
		}
	}
}

// TestShoalctl runs every shoalctl command as a process against a
// 3-broker cluster, in table and JSON output.
func TestShoalctl(t *testing.T) {
	cl := StartCluster(t, 3, WithArgs("--upload-age", "1s", "--upload-bytes", "1MiB"))
	c := &ctl{t: t, bootstrap: strings.Join(cl.Seeds(), ","), admin: "http://" + cl.Brokers[0].MetricsAddr, home: t.TempDir()}

	t.Run("usage", func(t *testing.T) { shoalctlUsage(t, c) })
	t.Run("topics", func(t *testing.T) { shoalctlTopics(t, c) })
	t.Run("groups", func(t *testing.T) { shoalctlGroups(t, c, cl) })
	t.Run("cluster", func(t *testing.T) { shoalctlCluster(t, c) })
	t.Run("objects", func(t *testing.T) { shoalctlObjects(t, c) })

	c.t = t
	c.ok("topics", "delete", "ctl")
	Eventually(t, 10*time.Second, func() error {
		if res := c.run("topics", "describe", "ctl"); res.Code != 1 || !strings.Contains(res.Stderr, "UNKNOWN_TOPIC_OR_PARTITION") {
			return fmt.Errorf("describe after delete: exit %d, stderr %q", res.Code, res.Stderr)
		}
		return nil
	})
}

func shoalctlUsage(t *testing.T, c *ctl) {
	c.t = t
	if res := c.runRaw("help"); res.Code != 0 || !strings.Contains(res.Stdout, "reset-offsets") {
		t.Errorf("help: exit %d, stdout:\n%s", res.Code, res.Stdout)
	}
	if res := c.runRaw("groups", "reset-offsets", "--help"); res.Code != 0 || !strings.Contains(res.Stdout, "-to-datetime") {
		t.Errorf("groups reset-offsets --help: exit %d, stdout:\n%s", res.Code, res.Stdout)
	}
	for _, args := range [][]string{
		{},
		{"nope"},
		{"topics"},
		{"topics", "nope"},
		{"topics", "list", "--nope"},
		{"topics", "create"},
		{"topics", "alter", "ctl"},
		{"--output", "yaml", "topics", "list"},
		{"groups", "reset-offsets", "g", "--topic", "ctl"},
		{"groups", "reset-offsets", "g", "--to-earliest"},
		{"cluster", "add-broker", "--cluster-address", "127.0.0.1:1"},
		{"cluster", "remove-broker"},
		{"objects", "inspect"},
	} {
		res := c.run(args...)
		if res.Code != 2 || !strings.Contains(res.Stderr, "usage: shoalctl") {
			t.Errorf("shoalctl %v: exit %d, stderr %q; want exit 2 with a usage line", args, res.Code, res.Stderr)
		}
	}
	// Without an admin URL the admin commands are usage errors too.
	if res := c.runRaw("--bootstrap", c.bootstrap, "objects", "list"); res.Code != 2 || !strings.Contains(res.Stderr, "--admin") {
		t.Errorf("objects list without --admin: exit %d, stderr %q", res.Code, res.Stderr)
	}
}

// topicJSON is the part of topics describe's JSON the test reads.
type topicJSON struct {
	Name       string
	Partitions []struct {
		Partition, Leader int32
		Replicas, ISR     []int32
	}
	Configs map[string]string
}

func shoalctlTopics(t *testing.T, c *ctl) {
	c.t = t
	out := c.ok("topics", "create", "ctl", "--partitions", "3", "--replication-factor", "3", "--config", "retention.ms=3600000")
	contains(t, "topics create", out, "created topic ctl: 3 partitions")
	c.fails(1, "TOPIC_ALREADY_EXISTS", "topics", "create", "ctl")

	var desc []topicJSON
	c.eventually(&desc, func() error {
		if len(desc) != 1 || len(desc[0].Partitions) != 3 || desc[0].Configs["retention.ms"] != "3600000" {
			return fmt.Errorf("describe after create: %+v", desc)
		}
		return nil
	}, "topics", "describe", "ctl")
	for _, p := range desc[0].Partitions {
		if p.Leader < 1 || p.Leader > 3 || len(p.Replicas) != 3 {
			t.Errorf("partition %+v: want a leader among 3 replicas", p)
		}
	}

	out = c.ok("topics", "alter", "ctl", "--config", "max.message.bytes=2000000", "--delete-config", "retention.ms", "--partitions", "4")
	contains(t, "topics alter", out, "now 4 partitions")
	c.eventually(&desc, func() error {
		if len(desc[0].Partitions) != 4 || len(desc[0].Configs) != 1 || desc[0].Configs["max.message.bytes"] != "2000000" {
			return fmt.Errorf("describe after alter: %+v", desc)
		}
		return nil
	}, "topics", "describe", "ctl")
	contains(t, "topics describe", c.ok("topics", "describe", "ctl"), "Configs:     max.message.bytes=2000000", "PARTITION  LEADER  EPOCH")

	var list []struct {
		Name       string
		Partitions int
	}
	c.eventually(&list, func() error {
		for _, tp := range list {
			if tp.Name == "ctl" && tp.Partitions == 4 {
				return nil
			}
		}
		return fmt.Errorf("topics list: no ctl with 4 partitions in %+v", list)
	}, "topics", "list")
	contains(t, "topics list", c.ok("topics", "list"), "TOPIC", "ctl")

	// A throwaway topic for delete in both outputs.
	c.ok("topics", "create", "ctl-gone", "--partitions", "1")
	contains(t, "topics delete", c.ok("topics", "delete", "ctl-gone"), "deleted topic ctl-gone")
	c.fails(1, "UNKNOWN_TOPIC_OR_PARTITION", "topics", "delete", "ctl-gone") // the delete goes to the metadata leader
}

// groupJSON is the part of groups describe's JSON the test reads.
type groupJSON struct {
	Group   string
	State   string
	Members []struct {
		MemberID string `json:"member_id"`
	}
	Offsets []struct {
		Topic     string
		Partition int32
		Committed *int64
		End       int64
		Lag       *int64
	}
}

func shoalctlGroups(t *testing.T, c *ctl, cl *Cluster) {
	c.t = t
	// 2,000 records of 1 KiB over 4 partitions: enough for a 1 MiB upload.
	prod := cl.Client(t, kgo.DefaultProduceTopic("ctl"))
	recs := make([]*kgo.Record, 2000)
	for i := range recs {
		recs[i] = &kgo.Record{Value: bytes.Repeat([]byte{byte('a' + i%26)}, 1024)}
	}
	if err := prod.ProduceSync(t.Context(), recs...).FirstErr(); err != nil {
		t.Fatal(err)
	}
	cons := cl.Client(t, kgo.ConsumerGroup("ctl-g"), kgo.ConsumeTopics("ctl"), kgo.FetchMaxWait(200*time.Millisecond))
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	for n := 0; n < len(recs); {
		fs := cons.PollFetches(ctx)
		if ctx.Err() != nil {
			t.Fatalf("consumed %d of %d records", n, len(recs))
		}
		n += fs.NumRecords()
	}
	if err := cons.CommitUncommittedOffsets(ctx); err != nil {
		t.Fatal(err)
	}

	var g []groupJSON
	c.json(&g, "groups", "describe", "ctl-g")
	if len(g) != 1 || len(g[0].Members) != 1 || len(g[0].Offsets) != 4 {
		t.Fatalf("describe with a member: %+v", g)
	}
	for _, o := range g[0].Offsets {
		if o.Committed == nil || *o.Committed != o.End || *o.Lag != 0 {
			t.Errorf("offset %+v: want committed at the end, lag 0", o)
		}
	}
	contains(t, "groups describe", c.ok("groups", "describe", "ctl-g"), "MEMBER", "COMMITTED", "ctl:0,1,2,3")
	c.fails(1, "not empty", "groups", "reset-offsets", "ctl-g", "--topic", "ctl", "--to-earliest", "--execute")
	c.fails(1, "NON_EMPTY_GROUP", "groups", "delete", "ctl-g")
	cons.Close() // leaves the group

	contains(t, "groups list", c.ok("groups", "list"), "GROUP", "ctl-g")
	var lg []struct{ Group string }
	c.json(&lg, "groups", "list")
	if !strings.Contains(fmt.Sprint(lg), "ctl-g") {
		t.Errorf("groups list: %+v", lg)
	}

	// Dry runs change nothing.
	var plan struct {
		Executed bool
		Offsets  []struct {
			Partition int32
			Current   *int64
			New       int64
		}
	}
	Eventually(t, 10*time.Second, func() error { // the group empties once the leave is applied
		res := c.run("groups", "reset-offsets", "ctl-g", "--topic", "ctl", "--to-earliest", "--output", "json")
		if res.Code != 0 {
			return fmt.Errorf("exit %d: %s", res.Code, res.Stderr)
		}
		return json.Unmarshal([]byte(res.Stdout), &plan)
	})
	if plan.Executed || len(plan.Offsets) != 4 || plan.Offsets[0].New != 0 || plan.Offsets[0].Current == nil {
		t.Errorf("dry run to earliest: %+v", plan)
	}
	hourAgo := time.Now().Add(-time.Hour).UTC().Format(time.RFC3339)
	contains(t, "reset dry run", c.ok("groups", "reset-offsets", "ctl-g", "--all-topics", "--to-datetime", hourAgo), "CURRENT", "NEW")

	c.ok("groups", "reset-offsets", "ctl-g", "--topic", "ctl:0", "--to-offset", "5", "--execute")
	c.json(&plan, "groups", "reset-offsets", "ctl-g", "--topic", "ctl:1", "--shift-by", "-3", "--execute")
	if !plan.Executed || len(plan.Offsets) != 1 || plan.Offsets[0].New != *plan.Offsets[0].Current-3 {
		t.Errorf("shift by -3: %+v", plan)
	}
	c.json(&g, "groups", "describe", "ctl-g")
	for _, o := range g[0].Offsets {
		want := o.End
		switch o.Partition {
		case 0:
			want = 5
		case 1:
			want = o.End - 3
		}
		if o.Committed == nil || *o.Committed != want || *o.Lag != o.End-want {
			t.Errorf("after reset: partition %d committed %v lag %v, want %d (end %d)", o.Partition, o.Committed, o.Lag, want, o.End)
		}
	}

	var del []struct{ Group, Error string }
	c.json(&del, "groups", "delete", "ctl-g")
	if len(del) != 1 || del[0].Error != "" {
		t.Errorf("groups delete: %+v", del)
	}
	c.fails(1, "not found", "groups", "describe", "ctl-g")
}

func shoalctlCluster(t *testing.T, c *ctl) {
	c.t = t
	res := c.run("cluster", "status")
	if res.Code != 0 {
		t.Fatalf("cluster status: exit %d: %s", res.Code, res.Stderr)
	}
	contains(t, "cluster status", res.Stdout, "Controller:", "BROKER", "ADDRESS", "ctl")
	var st struct {
		Controller int32
		Brokers    []struct{ ID int32 }
		Partitions []struct {
			Topic  string
			Leader int32
		}
		AdminCluster json.RawMessage `json:"admin_cluster"`
	}
	res = c.run("cluster", "status", "--output", "json")
	if res.Code != 0 || json.Unmarshal([]byte(res.Stdout), &st) != nil {
		t.Fatalf("cluster status --output json: exit %d: %s\n%s", res.Code, res.Stderr, res.Stdout)
	}
	if len(st.Brokers) != 3 || st.Controller < 1 || st.Controller > 3 {
		t.Errorf("cluster status: %+v", st)
	}
	leaders := 0
	for _, p := range st.Partitions {
		if p.Topic == "ctl" && p.Leader >= 1 {
			leaders++
		}
	}
	if leaders != 4 {
		t.Errorf("cluster status: %d partitions of ctl with a leader, want 4", leaders)
	}
	// GET /admin/cluster: shown when the broker serves it, else a note.
	if st.AdminCluster == nil && !strings.Contains(res.Stderr, "not served") {
		t.Errorf("cluster status: no admin view and no note on stderr: %q", res.Stderr)
	}
}

// objectsJSON is the part of objects list's JSON the test reads.
type objectsJSON struct {
	Objects []struct {
		Key    string
		Kind   string
		Size   int64
		Ranges []struct {
			Topic     string
			EndOffset int64 `json:"end_offset"`
			Size      int64
		}
	}
}

func shoalctlObjects(t *testing.T, c *ctl) {
	c.t = t
	var l objectsJSON
	Eventually(t, 30*time.Second, func() error {
		c.json(&l, "objects", "list", "--topic", "ctl")
		if len(l.Objects) == 0 {
			return errors.New("no object of ctl yet")
		}
		return nil
	})
	for _, o := range l.Objects {
		if o.Kind != "SSO" && o.Kind != "SO" || len(o.Ranges) == 0 || o.Ranges[0].Topic != "ctl" {
			t.Errorf("object %+v", o)
		}
	}
	contains(t, "objects list", c.ok("objects", "list"), "KEY", "KIND", "ctl/")

	var ins struct {
		Key    string
		Footer struct{ Version int }
		Blocks []struct {
			Topic      string
			StoredSize int64 `json:"stored_size"`
		}
	}
	key := l.Objects[0].Key
	c.json(&ins, "objects", "inspect", key)
	if ins.Key != key || ins.Footer.Version != 1 || len(ins.Blocks) == 0 {
		t.Errorf("objects inspect: %+v", ins)
	}
	contains(t, "objects inspect", c.ok("objects", "inspect", key), "Footer:", "BLOCK", "CODEC")
	c.fails(1, "no object", "objects", "inspect", "no/such/key")

	var cost struct {
		Prices struct {
			Put float64 `json:"put_per_1000"`
		}
		Storage []struct {
			Topic string
			Bytes int64
		}
		Total float64 `json:"total_cost_per_month"`
	}
	c.json(&cost, "objects", "cost", "--sample", "500ms")
	stored := map[string]int64{}
	for _, s := range cost.Storage {
		stored[s.Topic] = s.Bytes
	}
	if cost.Prices.Put != 0.005 || stored["ctl"] <= 0 || cost.Total <= 0 {
		t.Errorf("objects cost: %+v", cost)
	}
	contains(t, "objects cost", c.ok("objects", "cost", "--sample", "500ms", "--storage-price", "0.05"), "Estimate:", "ctl", "$0.05 per GB-month")
}
