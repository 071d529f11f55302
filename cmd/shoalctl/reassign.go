package main

import (
	"bytes"
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
)

// Partition reassignment, in the file formats of Kafka's
// kafka-reassign-partitions (docs/reassignment.md). In Shoal a partition's
// replicas are its WAL group's: a reassignment moves the partition to the
// group whose replicas match the target list (the broker picks it), and no
// data is copied. generate and balance read the WAL groups' layout from
// the admin endpoint (GET /admin/cluster) and each partition's group from
// DescribeLogDirs (a partition is listed under its group's wal-N
// directory); execute, verify and cancel speak the Kafka protocol only.

func reassignCommands() []command {
	return []command{
		{group: "reassign", name: "generate", summary: "propose a reassignment of the topics of --topics-to-move-json-file onto the WAL groups of --broker-list: the proposal on stdout, the current assignment on stderr (needs --admin)", setup: setupReassignGenerate},
		{group: "reassign", name: "execute", summary: "start the reassignments of --reassignment-json-file and print the current assignment for a rollback", setup: setupReassignExecute},
		{group: "reassign", name: "verify", summary: "show whether the reassignments of --reassignment-json-file are done; exit 1 while any is not", setup: setupReassignVerify},
		{group: "reassign", name: "cancel", summary: "cancel the reassignments of --reassignment-json-file that are in progress", setup: setupReassignCancel},
		{group: "reassign", name: "balance", summary: "even the partition counts of the WAL groups, and with them leadership across brokers (needs --admin)", setup: setupReassignBalance},
	}
}

// reassignmentFile is Kafka's reassignment JSON.
type reassignmentFile struct {
	Version    int                   `json:"version"`
	Partitions []partitionAssignment `json:"partitions"`
}

// partitionAssignment is one partition of a reassignment file.
type partitionAssignment struct {
	Topic     string   `json:"topic"`
	Partition int32    `json:"partition"`
	Replicas  []int32  `json:"replicas"`
	LogDirs   []string `json:"log_dirs,omitempty"`
}

// topicsToMoveFile is Kafka's topics-to-move JSON.
type topicsToMoveFile struct {
	Version int `json:"version"`
	Topics  []struct {
		Topic string `json:"topic"`
	} `json:"topics"`
}

// topicPartition names a partition.
type topicPartition struct {
	topic     string
	partition int32
}

func (tp topicPartition) String() string { return tp.topic + "-" + strconv.Itoa(int(tp.partition)) }

// readJSONFile decodes the JSON file path into v; errors name the file.
func readJSONFile(path string, v any) error {
	data, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	if err := dec.Decode(v); err != nil {
		return fmt.Errorf("%s: %w", path, err)
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return fmt.Errorf("%s: trailing data after the JSON object", path)
	}
	return nil
}

// readReassignment reads and checks a reassignment file. A problem with it
// is a usage error.
func (c *cli) readReassignment(path string) (reassignmentFile, error) {
	var f reassignmentFile
	if path == "" {
		return f, c.usagef("--reassignment-json-file FILE is required")
	}
	if err := readJSONFile(path, &f); err != nil {
		return f, c.usagef("reassignment file: %v", err)
	}
	if f.Version != 1 {
		return f, c.usagef("reassignment file %s: version %d, want 1", path, f.Version)
	}
	if len(f.Partitions) == 0 {
		return f, c.usagef("reassignment file %s lists no partitions", path)
	}
	seen := map[topicPartition]bool{}
	for _, p := range f.Partitions {
		tp := topicPartition{p.Topic, p.Partition}
		switch {
		case p.Topic == "" || p.Partition < 0:
			return f, c.usagef("reassignment file %s: partition %q %d is not valid", path, p.Topic, p.Partition)
		case seen[tp]:
			return f, c.usagef("reassignment file %s lists %s twice", path, tp)
		case len(p.Replicas) == 0:
			return f, c.usagef("reassignment file %s: %s has no replicas", path, tp)
		case len(p.LogDirs) > 0 && len(p.LogDirs) != len(p.Replicas):
			return f, c.usagef("reassignment file %s: %s has %d log_dirs for %d replicas", path, tp, len(p.LogDirs), len(p.Replicas))
		}
		for i, id := range p.Replicas {
			if id < 0 || slices.Contains(p.Replicas[:i], id) {
				return f, c.usagef("reassignment file %s: %s: replica %d is negative or repeated", path, tp, id)
			}
		}
		for _, d := range p.LogDirs {
			if d != "any" {
				c.progress("note: %s: log_dirs %q ignored (Shoal places a partition in its WAL group, not a log directory)", tp, d)
				break
			}
		}
		seen[tp] = true
	}
	return f, nil
}

// anyLogDirs is the log_dirs of n replicas in files shoalctl writes.
func anyLogDirs(n int) []string {
	dirs := make([]string, n)
	for i := range dirs {
		dirs[i] = "any"
	}
	return dirs
}

// compactJSON formats v on one line, as kafka-reassign-partitions prints
// the files it proposes (to be saved and passed back).
func compactJSON(v any) string {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return fmt.Sprintf("(unprintable: %v)", err)
	}
	return strings.TrimSpace(b.String())
}

// walGroup is a WAL group as GET /admin/cluster shows it.
type walGroup struct {
	ID         uint32  `json:"id"`
	Replicas   []int32 `json:"replicas"`
	Partitions int     `json:"partitions"`
}

// walLayout returns the WAL groups of the cluster from the admin endpoint.
func (c *cli) walLayout(ctx context.Context) ([]walGroup, error) {
	base, err := c.needAdmin()
	if err != nil {
		return nil, err
	}
	var view struct {
		WALGroups []walGroup `json:"wal_groups"`
	}
	if err := c.adminGet(ctx, base, "/admin/cluster", &view); err != nil {
		if isStatus(err, http.StatusNotFound) {
			return nil, fmt.Errorf("%s/admin/cluster is not served by this broker: the WAL-group layout is unknown", base)
		}
		return nil, fmt.Errorf("GET %s/admin/cluster: %w", base, err)
	}
	if len(view.WALGroups) == 0 {
		return nil, fmt.Errorf("%s/admin/cluster lists no WAL groups", base)
	}
	return view.WALGroups, nil
}

// partitionGroups returns each partition's WAL group, from DescribeLogDirs:
// every replica lists the partitions of its groups under <data-dir>/wal-N.
func partitionGroups(ctx context.Context, adm *kadm.Client) (map[topicPartition]uint32, error) {
	all, err := adm.DescribeAllLogDirs(ctx, nil)
	if err != nil {
		return nil, fmt.Errorf("describe log dirs: %w", err)
	}
	out := map[topicPartition]uint32{}
	for _, dirs := range all {
		for _, d := range dirs {
			n, ok := strings.CutPrefix(filepath.Base(d.Dir), "wal-")
			gid, err := strconv.ParseUint(n, 10, 32)
			if !ok || err != nil || d.Err != nil {
				continue // object storage, or not a WAL group
			}
			for topic, ps := range d.Topics {
				for p := range ps {
					out[topicPartition{topic, p}] = uint32(gid)
				}
			}
		}
	}
	return out, nil
}

// groupByID finds a WAL group of the layout.
func groupByID(groups []walGroup, id uint32) (walGroup, bool) {
	for _, g := range groups {
		if g.ID == id {
			return g, true
		}
	}
	return walGroup{}, false
}

// currentAssignment describes where the partitions of topics are now, as
// a reassignment file that would bring them back: each partition's WAL
// group's replicas when the layout and groups are known, else the
// replicas Metadata lists.
func currentAssignment(td kadm.TopicDetails, groups []walGroup, where map[topicPartition]uint32, only map[topicPartition]bool) reassignmentFile {
	out := reassignmentFile{Version: 1, Partitions: []partitionAssignment{}}
	for _, t := range td.Sorted() {
		for _, p := range t.Partitions.Sorted() {
			tp := topicPartition{t.Topic, p.Partition}
			if only != nil && !only[tp] {
				continue
			}
			replicas := slices.Clone(p.Replicas)
			if gid, ok := where[tp]; ok {
				if g, ok := groupByID(groups, gid); ok {
					replicas = slices.Clone(g.Replicas)
				}
			}
			out.Partitions = append(out.Partitions, partitionAssignment{Topic: t.Topic, Partition: p.Partition,
				Replicas: nonNil(replicas), LogDirs: anyLogDirs(len(replicas))})
		}
	}
	return out
}

func setupReassignGenerate(fs *flag.FlagSet) runFunc {
	topicsFile := fs.String("topics-to-move-json-file", "", "Kafka's topics-to-move JSON `file`: {\"version\":1,\"topics\":[{\"topic\":\"t\"}]} (required)")
	brokerList := fs.String("broker-list", "", "the `ids` of the brokers to place the partitions on, e.g. 1,2,3: only WAL groups whose replicas are all among them are used (required)")
	return func(ctx context.Context, c *cli, args []string) error {
		if len(args) > 0 {
			return c.usagef("takes no arguments")
		}
		brokers, err := parseBrokerList(*brokerList)
		if err != nil {
			return c.usagef("--broker-list: %v", err)
		}
		if *topicsFile == "" {
			return c.usagef("--topics-to-move-json-file FILE is required")
		}
		var tf topicsToMoveFile
		if err := readJSONFile(*topicsFile, &tf); err != nil {
			return c.usagef("topics file: %v", err)
		}
		if tf.Version != 1 || len(tf.Topics) == 0 {
			return c.usagef("topics file %s: want version 1 and at least one topic", *topicsFile)
		}
		var topics []string
		for _, t := range tf.Topics {
			if t.Topic == "" || slices.Contains(topics, t.Topic) {
				return c.usagef("topics file %s: topic %q is empty or repeated", *topicsFile, t.Topic)
			}
			topics = append(topics, t.Topic)
		}
		groups, err := c.walLayout(ctx)
		if err != nil {
			return err
		}
		adm, err := c.kafka()
		if err != nil {
			return err
		}
		td, err := adm.ListTopics(ctx, topics...)
		if err != nil {
			return err
		}
		if err := td.Error(); err != nil {
			return err
		}
		where, err := partitionGroups(ctx, adm)
		if err != nil {
			return err
		}
		proposed, err := proposeAssignment(td, groups, brokers)
		if err != nil {
			return err
		}
		current := currentAssignment(td, groups, where, nil)
		out := struct {
			Current  reassignmentFile `json:"current"`
			Proposed reassignmentFile `json:"proposed"`
		}{current, proposed}
		// The proposal alone goes to stdout, so that "generate > plan.json"
		// makes a file for execute; the rest is for the reader.
		c.progress("Current partition replica assignment\n%s\n\nProposed partition reassignment configuration", compactJSON(current))
		return c.emit(out, func(w io.Writer) { fmt.Fprintln(w, compactJSON(proposed)) })
	}
}

// parseBrokerList parses "1,2,3".
func parseBrokerList(s string) ([]int32, error) {
	parts := splitList(s)
	if len(parts) == 0 {
		return nil, errors.New("a list of broker ids is required, e.g. 1,2,3")
	}
	var ids []int32
	for _, p := range parts {
		n, err := strconv.ParseInt(p, 10, 32)
		if err != nil || n < 0 {
			return nil, fmt.Errorf("%q is not a broker id", p)
		}
		if !slices.Contains(ids, int32(n)) {
			ids = append(ids, int32(n))
		}
	}
	return ids, nil
}

// proposeAssignment spreads the partitions of td round robin over the WAL
// groups whose replicas are all in brokers (each topic starting one group
// further), each partition getting its group's replicas.
func proposeAssignment(td kadm.TopicDetails, groups []walGroup, brokers []int32) (reassignmentFile, error) {
	var eligible []walGroup
	for _, g := range groups {
		ok := len(g.Replicas) > 0
		for _, id := range g.Replicas {
			ok = ok && slices.Contains(brokers, id)
		}
		if ok {
			eligible = append(eligible, g)
		}
	}
	if len(eligible) == 0 {
		return reassignmentFile{}, fmt.Errorf("no WAL group has all its replicas among brokers %v (groups: %s)", brokers, describeLayout(groups))
	}
	slices.SortFunc(eligible, func(a, b walGroup) int { return cmp.Compare(a.ID, b.ID) })
	out := reassignmentFile{Version: 1, Partitions: []partitionAssignment{}}
	for ti, t := range td.Sorted() {
		for _, p := range t.Partitions.Sorted() {
			g := eligible[(ti+int(p.Partition))%len(eligible)]
			out.Partitions = append(out.Partitions, partitionAssignment{Topic: t.Topic, Partition: p.Partition,
				Replicas: slices.Clone(g.Replicas), LogDirs: anyLogDirs(len(g.Replicas))})
		}
	}
	return out, nil
}

// describeLayout lists the groups' replicas: "0=[1 2 3] 1=[2 3 1]".
func describeLayout(groups []walGroup) string {
	parts := make([]string, len(groups))
	for i, g := range groups {
		parts[i] = fmt.Sprintf("%d=%v", g.ID, g.Replicas)
	}
	return strings.Join(parts, " ")
}

// reassignResult is one partition's outcome in execute, cancel and balance.
type reassignResult struct {
	Topic     string  `json:"topic"`
	Partition int32   `json:"partition"`
	Replicas  []int32 `json:"replicas,omitempty"`
	Result    string  `json:"result"` // started, cancelled, none in progress, or failed
	Error     string  `json:"error,omitempty"`
}

// alterResults runs req and returns the outcome of every partition of
// parts (in their order) and how many failed; ignore lists errors that
// count as done.
func alterResults(ctx context.Context, adm *kadm.Client, req kadm.AlterPartitionAssignmentsReq, parts []partitionAssignment,
	ok string, ignore map[error]string) ([]reassignResult, int, error) {
	resp, err := adm.AlterPartitionAssignments(ctx, req)
	if err != nil {
		return nil, 0, err
	}
	var out []reassignResult
	failed := 0
	for _, p := range parts {
		r := reassignResult{Topic: p.Topic, Partition: p.Partition, Replicas: p.Replicas, Result: ok}
		pr, found := resp[p.Topic][p.Partition]
		switch {
		case !found:
			r.Result, r.Error = "failed", "no answer for this partition"
		case pr.Err != nil:
			r.Result, r.Error = "failed", kafkaErr(pr.Err, pr.ErrMessage).Error()
			for e, label := range ignore {
				if errors.Is(pr.Err, e) {
					r.Result, r.Error = label, ""
				}
			}
		}
		if r.Result == "failed" {
			failed++
		}
		out = append(out, r)
	}
	return out, failed, nil
}

func writeReassignResults(w io.Writer, results []reassignResult) {
	rows := make([][]string, len(results))
	for i, r := range results {
		rows[i] = []string{r.Topic, strconv.Itoa(int(r.Partition)), first(ints(r.Replicas), "-"), r.Result, first(r.Error, "-")}
	}
	writeTable(w, []string{"TOPIC", "PARTITION", "REPLICAS", "RESULT", "ERROR"}, rows)
}

func setupReassignExecute(fs *flag.FlagSet) runFunc {
	file := fs.String("reassignment-json-file", "", "Kafka's reassignment JSON `file` (required)")
	wait := fs.Bool("wait", false, "wait until every reassignment is done, showing progress (bounded by --timeout)")
	return func(ctx context.Context, c *cli, args []string) error {
		if len(args) > 0 {
			return c.usagef("takes no arguments")
		}
		f, err := c.readReassignment(*file)
		if err != nil {
			return err
		}
		adm, err := c.kafka()
		if err != nil {
			return err
		}
		current, err := c.rollbackAssignment(ctx, adm, f)
		if err != nil {
			return err
		}
		var req kadm.AlterPartitionAssignmentsReq
		for _, p := range f.Partitions {
			req.Assign(p.Topic, p.Partition, p.Replicas)
		}
		results, failed, err := alterResults(ctx, adm, req, f.Partitions, "started", nil)
		if err != nil {
			return fmt.Errorf("alter partition reassignments: %w", err)
		}
		out := struct {
			Current reassignmentFile `json:"current"`
			Results []reassignResult `json:"results"`
		}{current, results}
		if err := c.emit(out, func(w io.Writer) {
			fmt.Fprintf(w, "Current partition replica assignment\n\n%s\n\nSave this to use as the --reassignment-json-file option during rollback\n\n", compactJSON(current))
			writeReassignResults(w, results)
		}); err != nil {
			return err
		}
		if failed > 0 {
			return fmt.Errorf("%d of %d reassignments were not started", failed, len(results))
		}
		if *wait {
			return c.waitReassigned(ctx, adm, f.Partitions)
		}
		return nil
	}
}

// rollbackAssignment is the current assignment of f's partitions; with an
// admin URL, each partition's WAL group's replicas (so that executing it
// brings every partition back to its group exactly).
func (c *cli) rollbackAssignment(ctx context.Context, adm *kadm.Client, f reassignmentFile) (reassignmentFile, error) {
	only := map[topicPartition]bool{}
	var topics []string
	for _, p := range f.Partitions {
		only[topicPartition{p.Topic, p.Partition}] = true
		if !slices.Contains(topics, p.Topic) {
			topics = append(topics, p.Topic)
		}
	}
	td, err := adm.ListTopics(ctx, topics...)
	if err != nil {
		return reassignmentFile{}, err
	}
	var groups []walGroup
	var where map[topicPartition]uint32
	if len(c.admin) > 0 {
		if groups, err = c.walLayout(ctx); err == nil {
			where, err = partitionGroups(ctx, adm)
		}
		if err != nil {
			c.progress("note: the current assignment lists the replicas Metadata shows (%v)", err)
		}
	}
	return currentAssignment(td, groups, where, only), nil
}

// waitReassigned waits until none of parts is being reassigned, writing
// progress on stderr.
func (c *cli) waitReassigned(ctx context.Context, adm *kadm.Client, parts []partitionAssignment) error {
	set := kadm.TopicsSet{}
	for _, p := range parts {
		set.Add(p.Topic, p.Partition)
	}
	start, last := time.Now(), -1
	for {
		ls, err := adm.ListPartitionReassignments(ctx, set)
		if err != nil {
			return fmt.Errorf("list partition reassignments: %w", err)
		}
		moving := 0
		ls.Each(func(kadm.ListPartitionReassignmentsResponse) { moving++ })
		if moving == 0 {
			c.progress("all %d reassignments done in %v", len(parts), time.Since(start).Round(time.Millisecond))
			return nil
		}
		if moving != last {
			c.progress("%d of %d reassignments in progress...", moving, len(parts))
			last = moving
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("%d of %d reassignments still in progress: %w", moving, len(parts), ctx.Err())
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// verifyState is one partition's state in reassign verify.
type verifyState struct {
	Topic     string  `json:"topic"`
	Partition int32   `json:"partition"`
	Target    []int32 `json:"target_replicas"`
	Current   []int32 `json:"current_replicas"`
	// State is complete, in progress, not matching (done, elsewhere) or
	// unknown (no such partition).
	State string `json:"state"`
}

// Verification states.
const (
	stateComplete   = "complete"
	stateInProgress = "in progress"
	stateMismatch   = "not matching"
	stateUnknown    = "unknown partition"
)

// verifyReassignment finds the state of every partition of f: in progress
// while ListPartitionReassignments lists it, else complete when Metadata
// lists the target's replicas (in any order: the replica order is the
// group's preferred-leader order, which a target may not match exactly).
func verifyReassignment(ctx context.Context, adm *kadm.Client, f reassignmentFile) ([]verifyState, error) {
	set := kadm.TopicsSet{}
	var topics []string
	for _, p := range f.Partitions {
		set.Add(p.Topic, p.Partition)
		if !slices.Contains(topics, p.Topic) {
			topics = append(topics, p.Topic)
		}
	}
	ls, err := adm.ListPartitionReassignments(ctx, set)
	if err != nil {
		return nil, fmt.Errorf("list partition reassignments: %w", err)
	}
	td, err := adm.ListTopics(ctx, topics...)
	if err != nil {
		return nil, err
	}
	var out []verifyState
	for _, p := range f.Partitions {
		st := verifyState{Topic: p.Topic, Partition: p.Partition, Target: p.Replicas, Current: []int32{}}
		detail, ok := td[p.Topic].Partitions[p.Partition]
		if ok {
			st.Current = nonNil(detail.Replicas)
		}
		_, moving := ls[p.Topic][p.Partition]
		switch {
		case moving:
			st.State = stateInProgress
		case !ok || td[p.Topic].Err != nil:
			st.State = stateUnknown
		case sameSet(detail.Replicas, p.Replicas):
			st.State = stateComplete
		default:
			st.State = stateMismatch
		}
		out = append(out, st)
	}
	return out, nil
}

// sameSet reports whether a and b hold the same ids.
func sameSet(a, b []int32) bool {
	return slices.Equal(slices.Sorted(slices.Values(a)), slices.Sorted(slices.Values(b)))
}

func setupReassignVerify(fs *flag.FlagSet) runFunc {
	file := fs.String("reassignment-json-file", "", "Kafka's reassignment JSON `file` (required)")
	wait := fs.Bool("wait", false, "wait until no reassignment of the file is in progress, showing progress (bounded by --timeout)")
	return func(ctx context.Context, c *cli, args []string) error {
		if len(args) > 0 {
			return c.usagef("takes no arguments")
		}
		f, err := c.readReassignment(*file)
		if err != nil {
			return err
		}
		adm, err := c.kafka()
		if err != nil {
			return err
		}
		if *wait {
			if err := c.waitReassigned(ctx, adm, f.Partitions); err != nil {
				return err
			}
		}
		states, err := verifyReassignment(ctx, adm, f)
		if err != nil {
			return err
		}
		if err := c.emit(states, func(w io.Writer) {
			rows := make([][]string, len(states))
			for i, s := range states {
				rows[i] = []string{s.Topic, strconv.Itoa(int(s.Partition)), ints(s.Target), first(ints(s.Current), "-"), s.State}
			}
			writeTable(w, []string{"TOPIC", "PARTITION", "TARGET", "CURRENT", "STATE"}, rows)
		}); err != nil {
			return err
		}
		notDone := 0
		for _, s := range states {
			if s.State != stateComplete {
				notDone++
			}
		}
		if notDone > 0 {
			return fmt.Errorf("%d of %d reassignments are not complete", notDone, len(states))
		}
		return nil
	}
}

func setupReassignCancel(fs *flag.FlagSet) runFunc {
	file := fs.String("reassignment-json-file", "", "Kafka's reassignment JSON `file` (required): its partitions' reassignments are cancelled")
	return func(ctx context.Context, c *cli, args []string) error {
		if len(args) > 0 {
			return c.usagef("takes no arguments")
		}
		f, err := c.readReassignment(*file)
		if err != nil {
			return err
		}
		adm, err := c.kafka()
		if err != nil {
			return err
		}
		var req kadm.AlterPartitionAssignmentsReq
		parts := make([]partitionAssignment, len(f.Partitions))
		for i, p := range f.Partitions {
			req.CancelAssign(p.Topic, p.Partition)
			parts[i] = partitionAssignment{Topic: p.Topic, Partition: p.Partition}
		}
		results, failed, err := alterResults(ctx, adm, req, parts, "cancelled",
			map[error]string{kerr.NoReassignmentInProgress: "none in progress"})
		if err != nil {
			return fmt.Errorf("cancel partition reassignments: %w", err)
		}
		if err := c.emit(results, func(w io.Writer) { writeReassignResults(w, results) }); err != nil {
			return err
		}
		if failed > 0 {
			return fmt.Errorf("%d of %d reassignments were not cancelled", failed, len(results))
		}
		return nil
	}
}

// balanceMove is one move of a balance plan.
type balanceMove struct {
	Topic     string  `json:"topic"`
	Partition int32   `json:"partition"`
	From      uint32  `json:"from_group"`
	To        uint32  `json:"to_group"`
	Replicas  []int32 `json:"replicas"`
}

// planBalance moves partitions from the WAL groups with the most
// partitions to those with the fewest until the counts differ by at most
// one (or maxMoves moves are planned; 0: no limit). It takes the partition
// of the topic the fullest group holds most more of than the emptiest, so
// that topics stay spread too. where is every partition's group; groups
// the layout does not list are left alone.
func planBalance(groups []walGroup, where map[topicPartition]uint32, maxMoves int) []balanceMove {
	if len(groups) < 2 {
		return nil
	}
	count := map[uint32]int{}
	perTopic := map[string]map[uint32]int{}
	members := map[uint32][]topicPartition{}
	for _, g := range groups {
		count[g.ID] = 0
	}
	for tp, gid := range where {
		if _, ok := count[gid]; !ok {
			continue
		}
		count[gid]++
		if perTopic[tp.topic] == nil {
			perTopic[tp.topic] = map[uint32]int{}
		}
		perTopic[tp.topic][gid]++
		members[gid] = append(members[gid], tp)
	}
	for _, ms := range members {
		slices.SortFunc(ms, func(a, b topicPartition) int {
			return cmp.Or(cmp.Compare(a.topic, b.topic), cmp.Compare(a.partition, b.partition))
		})
	}
	byCount := func(less bool) uint32 {
		best := groups[0].ID
		for _, g := range groups[1:] {
			if c, b := count[g.ID], count[best]; (less && c < b) || (!less && c > b) || (c == b && g.ID < best) {
				best = g.ID
			}
		}
		return best
	}
	var plan []balanceMove
	for maxMoves <= 0 || len(plan) < maxMoves {
		hi, lo := byCount(false), byCount(true)
		if count[hi]-count[lo] <= 1 {
			break
		}
		pick := 0
		for i, tp := range members[hi] {
			best := members[hi][pick]
			if perTopic[tp.topic][hi]-perTopic[tp.topic][lo] > perTopic[best.topic][hi]-perTopic[best.topic][lo] {
				pick = i
			}
		}
		tp := members[hi][pick]
		members[hi] = slices.Delete(members[hi], pick, pick+1)
		members[lo] = append(members[lo], tp)
		count[hi]--
		count[lo]++
		perTopic[tp.topic][hi]--
		perTopic[tp.topic][lo]++
		g, _ := groupByID(groups, lo)
		plan = append(plan, balanceMove{Topic: tp.topic, Partition: tp.partition, From: hi, To: lo, Replicas: slices.Clone(g.Replicas)})
	}
	return plan
}

// groupCounts counts the partitions per WAL group, keyed by group id as
// text (JSON object keys).
func groupCounts(groups []walGroup, where map[topicPartition]uint32) map[string]int {
	out := map[string]int{}
	for _, g := range groups {
		out[strconv.Itoa(int(g.ID))] = 0
	}
	for _, gid := range where {
		out[strconv.Itoa(int(gid))]++
	}
	return out
}

func setupReassignBalance(fs *flag.FlagSet) runFunc {
	dryRun := fs.Bool("dry-run", false, "show the plan and change nothing")
	maxMoves := fs.Int("max-moves", 0, "move at most `N` partitions (0: as many as needed)")
	return func(ctx context.Context, c *cli, args []string) error {
		switch {
		case len(args) > 0:
			return c.usagef("takes no arguments")
		case *maxMoves < 0:
			return c.usagef("--max-moves must be 0 or more")
		}
		groups, err := c.walLayout(ctx)
		if err != nil {
			return err
		}
		adm, err := c.kafka()
		if err != nil {
			return err
		}
		where, err := partitionGroups(ctx, adm)
		if err != nil {
			return err
		}
		plan := planBalance(groups, where, *maxMoves)
		after := map[topicPartition]uint32{}
		for tp, g := range where {
			after[tp] = g
		}
		for _, m := range plan {
			after[topicPartition{m.Topic, m.Partition}] = m.To
		}
		out := struct {
			Before map[string]int   `json:"partitions_per_group_before"`
			After  map[string]int   `json:"partitions_per_group_after"`
			Moves  []balanceMove    `json:"moves"`
			Result []reassignResult `json:"results,omitempty"`
		}{Before: groupCounts(groups, where), After: groupCounts(groups, after), Moves: nonNil(plan)}
		var moveErr error
		if len(plan) > 0 && !*dryRun {
			out.Result, moveErr = c.runBalance(ctx, adm, plan)
		}
		if err := c.emit(out, func(w io.Writer) { writeBalance(w, groups, out.Before, out.After, plan, *dryRun) }); err != nil {
			return err
		}
		return moveErr
	}
}

// runBalance starts the moves of plan and waits until they are done.
func (c *cli) runBalance(ctx context.Context, adm *kadm.Client, plan []balanceMove) ([]reassignResult, error) {
	c.progress("moving %d partitions...", len(plan))
	var req kadm.AlterPartitionAssignmentsReq
	parts := make([]partitionAssignment, len(plan))
	for i, m := range plan {
		req.Assign(m.Topic, m.Partition, m.Replicas)
		parts[i] = partitionAssignment{Topic: m.Topic, Partition: m.Partition, Replicas: m.Replicas}
	}
	results, failed, err := alterResults(ctx, adm, req, parts, "moved", nil)
	switch {
	case err != nil:
		return nil, fmt.Errorf("alter partition reassignments: %w", err)
	case failed > 0:
		return results, fmt.Errorf("%d of %d moves were not started", failed, len(plan))
	}
	return results, c.waitReassigned(ctx, adm, parts)
}

func writeBalance(w io.Writer, groups []walGroup, before, after map[string]int, plan []balanceMove, dryRun bool) {
	rows := make([][]string, len(groups))
	for i, g := range groups {
		id := strconv.Itoa(int(g.ID))
		rows[i] = []string{id, ints(g.Replicas), strconv.Itoa(before[id]), strconv.Itoa(after[id])}
	}
	writeTable(w, []string{"GROUP", "REPLICAS", "PARTITIONS", "AFTER"}, rows)
	fmt.Fprintln(w)
	switch {
	case len(plan) == 0:
		fmt.Fprintln(w, "The WAL groups are balanced: nothing to move.")
		return
	case dryRun:
		fmt.Fprintf(w, "Plan (dry run, nothing moved): %d moves\n", len(plan))
	default:
		fmt.Fprintf(w, "Moved %d partitions:\n", len(plan))
	}
	mrows := make([][]string, len(plan))
	for i, m := range plan {
		mrows[i] = []string{m.Topic, strconv.Itoa(int(m.Partition)), strconv.Itoa(int(m.From)), strconv.Itoa(int(m.To)), ints(m.Replicas)}
	}
	writeTable(w, []string{"TOPIC", "PARTITION", "FROM", "TO", "REPLICAS"}, mrows)
}
