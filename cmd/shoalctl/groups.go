package main

import (
	"cmp"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"maps"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
)

func groupCommands() []command {
	return []command{
		{group: "groups", name: "list", summary: "list consumer groups with their state and type", setup: setupGroupsList},
		{group: "groups", name: "describe", args: "GROUP...", summary: "show members, assignments, committed offsets and lag per partition", setup: setupGroupsDescribe},
		{group: "groups", name: "reset-offsets", args: "GROUP", summary: "move an empty group's committed offsets (dry run unless --execute)", setup: setupGroupsReset},
		{group: "groups", name: "delete", args: "GROUP...", summary: "delete empty groups and their committed offsets", setup: setupGroupsDelete},
	}
}

// listedGroup is a group in groups list.
type listedGroup struct {
	Group        string `json:"group"`
	State        string `json:"state"`
	Type         string `json:"type"`
	ProtocolType string `json:"protocol_type"`
	Coordinator  int32  `json:"coordinator"`
}

// groupDescription is a group in groups describe.
type groupDescription struct {
	Group       string         `json:"group"`
	State       string         `json:"state"`
	Type        string         `json:"type"`     // classic or consumer (KIP-848)
	Protocol    string         `json:"protocol"` // the assignor
	Coordinator int32          `json:"coordinator"`
	Members     []groupMember  `json:"members"`
	Offsets     []partitionLag `json:"offsets"`
	TotalLag    int64          `json:"total_lag"`
}

// groupMember is one member of a group and its assignment.
type groupMember struct {
	MemberID   string             `json:"member_id"`
	InstanceID string             `json:"instance_id,omitempty"`
	ClientID   string             `json:"client_id"`
	Host       string             `json:"host"`
	Assignment map[string][]int32 `json:"assignment"`
}

// partitionLag is a group's position in one partition; Committed and Lag
// are null without a committed offset.
type partitionLag struct {
	Topic     string `json:"topic"`
	Partition int32  `json:"partition"`
	Committed *int64 `json:"committed"`
	End       int64  `json:"end"`
	Lag       *int64 `json:"lag"`
	Member    string `json:"member,omitempty"`
}

func setupGroupsList(fs *flag.FlagSet) runFunc {
	return func(ctx context.Context, c *cli, args []string) error {
		if len(args) > 0 {
			return c.usagef("takes no arguments")
		}
		adm, err := c.kafka()
		if err != nil {
			return err
		}
		lgs, err := adm.ListGroups(ctx)
		if err != nil {
			return err
		}
		out := []listedGroup{}
		for _, g := range lgs.Sorted() {
			out = append(out, listedGroup{Group: g.Group, State: g.State, Type: g.GroupType, ProtocolType: g.ProtocolType, Coordinator: g.Coordinator})
		}
		return c.emit(out, func(w io.Writer) {
			rows := make([][]string, len(out))
			for i, g := range out {
				rows[i] = []string{g.Group, first(g.State, "-"), first(g.Type, "-"), first(g.ProtocolType, "-"), strconv.Itoa(int(g.Coordinator))}
			}
			writeTable(w, []string{"GROUP", "STATE", "TYPE", "PROTOCOL-TYPE", "COORDINATOR"}, rows)
		})
	}
}

// errGroupNotFound reports a group that neither describe call knows.
var errGroupNotFound = errors.New("group not found")

// describeGroup describes a classic group, or else a KIP-848 consumer
// group, with its members and assignments (no offsets).
func describeGroup(ctx context.Context, adm *kadm.Client, name string) (groupDescription, error) {
	d := groupDescription{Group: name, Members: []groupMember{}, Offsets: []partitionLag{}}
	dgs, err := adm.DescribeGroups(ctx, name)
	dg, ok := dgs[name]
	if !ok {
		return d, fmt.Errorf("describe group %s: %w", name, cmp.Or(err, errGroupNotFound))
	}
	if dg.Err == nil && dg.State != "Dead" {
		d.State, d.Type, d.Protocol, d.Coordinator = dg.State, "classic", dg.Protocol, dg.Coordinator.NodeID
		for _, m := range dg.Members {
			gm := groupMember{MemberID: m.MemberID, InstanceID: deref(m.InstanceID), ClientID: m.ClientID, Host: m.ClientHost, Assignment: map[string][]int32{}}
			if a, ok := m.Assigned.AsConsumer(); ok {
				for _, t := range a.Topics {
					gm.Assignment[t.Topic] = append(gm.Assignment[t.Topic], t.Partitions...)
				}
			}
			d.Members = append(d.Members, gm)
		}
		return d, nil
	}
	if dg.Err != nil && !errors.Is(dg.Err, kerr.GroupIDNotFound) {
		return d, fmt.Errorf("describe group %s: %w", name, kafkaErr(dg.Err, dg.ErrMessage))
	}
	cgs, err := adm.DescribeConsumerGroups(ctx, name)
	cg, ok := cgs[name]
	switch {
	case !ok:
		return d, fmt.Errorf("describe group %s: %w", name, cmp.Or(err, errGroupNotFound))
	case errors.Is(cg.Err, kerr.GroupIDNotFound) || (cg.Err == nil && cg.State == "Dead"):
		return d, fmt.Errorf("group %s: %w", name, errGroupNotFound)
	case cg.Err != nil:
		return d, fmt.Errorf("describe group %s: %w", name, cg.Err)
	}
	d.State, d.Type, d.Protocol, d.Coordinator = cg.State, "consumer", cg.AssignorName, cg.Coordinator.NodeID
	for _, m := range cg.Members {
		gm := groupMember{MemberID: m.MemberID, InstanceID: deref(m.InstanceID), ClientID: m.ClientID, Host: m.ClientHost, Assignment: map[string][]int32{}}
		m.Assignment.EachPartitions(func(t string, ps []int32) { gm.Assignment[t] = ps })
		d.Members = append(d.Members, gm)
	}
	return d, nil
}

func deref(s *string) string {
	if s == nil {
		return ""
	}
	return *s
}

// committedOffsets returns a group's committed offsets by topic and
// partition.
func committedOffsets(ctx context.Context, adm *kadm.Client, group string) (map[string]map[int32]int64, error) {
	resp, err := adm.FetchOffsets(ctx, group)
	if err != nil {
		return nil, fmt.Errorf("fetch committed offsets of group %s: %w", group, err)
	}
	out := map[string]map[int32]int64{}
	var errs []error
	resp.Each(func(o kadm.OffsetResponse) {
		if o.Err != nil {
			errs = append(errs, fmt.Errorf("committed offset of %s/%d: %w", o.Topic, o.Partition, o.Err))
			return
		}
		if o.At >= 0 {
			if out[o.Topic] == nil {
				out[o.Topic] = map[int32]int64{}
			}
			out[o.Topic][o.Partition] = o.At
		}
	})
	return out, errors.Join(errs...)
}

// listedOffsets checks a list-offsets answer and returns the offsets by
// topic and partition.
func listedOffsets(lo kadm.ListedOffsets, err error) (map[string]map[int32]int64, error) {
	if err != nil {
		return nil, fmt.Errorf("list offsets: %w", err)
	}
	if err := lo.Error(); err != nil {
		return nil, fmt.Errorf("list offsets: %w", err)
	}
	out := map[string]map[int32]int64{}
	lo.Each(func(o kadm.ListedOffset) {
		if out[o.Topic] == nil {
			out[o.Topic] = map[int32]int64{}
		}
		out[o.Topic][o.Partition] = o.Offset
	})
	return out, nil
}

func setupGroupsDescribe(fs *flag.FlagSet) runFunc {
	return func(ctx context.Context, c *cli, args []string) error {
		if len(args) == 0 {
			return c.usagef("needs a group name")
		}
		adm, err := c.kafka()
		if err != nil {
			return err
		}
		var out []groupDescription
		for _, name := range args {
			d, err := describeGroup(ctx, adm, name)
			if err != nil {
				return err
			}
			if err := addLag(ctx, adm, &d); err != nil {
				return err
			}
			out = append(out, d)
		}
		return c.emit(out, func(w io.Writer) {
			for i, d := range out {
				if i > 0 {
					fmt.Fprintln(w)
				}
				writeGroupDescription(w, d)
			}
		})
	}
}

// addLag fills in d's committed offsets, end offsets and lag, for every
// partition with a committed offset or an assigned member.
func addLag(ctx context.Context, adm *kadm.Client, d *groupDescription) error {
	committed, err := committedOffsets(ctx, adm, d.Group)
	if err != nil {
		return err
	}
	owner := map[string]map[int32]string{}
	for _, m := range d.Members {
		for t, ps := range m.Assignment {
			for _, p := range ps {
				if owner[t] == nil {
					owner[t] = map[int32]string{}
				}
				owner[t][p] = m.MemberID
			}
		}
	}
	topics := map[string]bool{}
	for t := range committed {
		topics[t] = true
	}
	for t := range owner {
		topics[t] = true
	}
	if len(topics) == 0 {
		return nil
	}
	ends, err := listedOffsets(adm.ListEndOffsets(ctx, sortedKeys(topics)...))
	if err != nil {
		return err
	}
	for t, ps := range ends {
		for p, end := range ps {
			at, hasCommit := committed[t][p]
			member, assigned := owner[t][p]
			if !hasCommit && !assigned {
				continue
			}
			pl := partitionLag{Topic: t, Partition: p, End: end, Member: member}
			if hasCommit {
				lag := max(end-at, 0)
				pl.Committed, pl.Lag = &at, &lag
				d.TotalLag += lag
			}
			d.Offsets = append(d.Offsets, pl)
		}
	}
	slices.SortFunc(d.Offsets, func(a, b partitionLag) int {
		return cmp.Or(cmp.Compare(a.Topic, b.Topic), cmp.Compare(a.Partition, b.Partition))
	})
	return nil
}

func writeGroupDescription(w io.Writer, d groupDescription) {
	writeFields(w, "Group", d.Group, "State", d.State, "Type", d.Type, "Protocol", first(d.Protocol, "-"),
		"Coordinator", strconv.Itoa(int(d.Coordinator)), "Members", strconv.Itoa(len(d.Members)), "Total lag", strconv.FormatInt(d.TotalLag, 10))
	if len(d.Members) > 0 {
		fmt.Fprintln(w)
		var rows [][]string
		for _, m := range d.Members {
			var as []string
			for _, t := range sortedKeys(m.Assignment) {
				ps := slices.Sorted(slices.Values(m.Assignment[t]))
				as = append(as, t+":"+ints(ps))
			}
			rows = append(rows, []string{m.MemberID, first(m.InstanceID, "-"), first(m.ClientID, "-"), first(m.Host, "-"), first(strings.Join(as, " "), "-")})
		}
		writeTable(w, []string{"MEMBER", "INSTANCE", "CLIENT-ID", "HOST", "ASSIGNMENT"}, rows)
	}
	if len(d.Offsets) > 0 {
		fmt.Fprintln(w)
		var rows [][]string
		for _, o := range d.Offsets {
			rows = append(rows, []string{o.Topic, strconv.Itoa(int(o.Partition)), optInt(o.Committed), strconv.FormatInt(o.End, 10), optInt(o.Lag), first(o.Member, "-")})
		}
		writeTable(w, []string{"TOPIC", "PARTITION", "COMMITTED", "END", "LAG", "MEMBER"}, rows)
	}
}

// resetPlan is groups reset-offsets' JSON.
type resetPlan struct {
	Group    string        `json:"group"`
	Executed bool          `json:"executed"`
	Offsets  []resetOffset `json:"offsets"`
}

// resetOffset is one partition's move; Current is null without a
// committed offset.
type resetOffset struct {
	Topic     string `json:"topic"`
	Partition int32  `json:"partition"`
	Current   *int64 `json:"current"`
	New       int64  `json:"new"`
	End       int64  `json:"end"`
}

// resetTarget says where reset-offsets moves each partition.
type resetTarget struct {
	how    string // earliest, latest, offset, datetime, shift
	offset int64  // for offset and shift
	ms     int64  // for datetime
}

func setupGroupsReset(fs *flag.FlagSet) runFunc {
	var topics listFlag
	fs.Var(&topics, "topic", "`topic[:partition,...]` to reset (repeatable)")
	allTopics := fs.Bool("all-topics", false, "reset every topic the group has committed offsets for")
	fs.Bool("to-earliest", false, "to the log start offset")
	fs.Bool("to-latest", false, "to the log end offset")
	toOffset := fs.Int64("to-offset", 0, "to this `offset` (clamped to the log's start and end)")
	toTime := fs.String("to-datetime", "", "to the first record at or after this `time` (RFC 3339, e.g. 2026-01-02T15:04:05Z)")
	shift := fs.Int64("shift-by", 0, "move the committed offset by `n` (negative: back), clamped")
	fs.Bool("dry-run", true, "only show the new offsets (the default)")
	execute := fs.Bool("execute", false, "commit the new offsets")
	return func(ctx context.Context, c *cli, args []string) error {
		set := map[string]bool{}
		fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
		var t resetTarget
		var n int
		for _, how := range []string{"to-earliest", "to-latest", "to-offset", "to-datetime", "shift-by"} {
			if set[how] {
				n++
				t.how = strings.TrimPrefix(how, "to-")
			}
		}
		t.offset = cmp.Or(*toOffset, *shift)
		switch {
		case len(args) != 1:
			return c.usagef("needs exactly one group")
		case n != 1:
			return c.usagef("give exactly one of --to-earliest, --to-latest, --to-offset, --to-datetime, --shift-by")
		case (len(topics) > 0) == *allTopics:
			return c.usagef("give --topic (repeatable) or --all-topics")
		case set["dry-run"] && *execute:
			return c.usagef("--dry-run and --execute exclude each other")
		}
		if t.how == "datetime" {
			ts, err := time.Parse(time.RFC3339, *toTime)
			if err != nil {
				return c.usagef("--to-datetime: %v", err)
			}
			t.ms = ts.UnixMilli()
		}
		want, err := parseTopicSpecs(topics)
		if err != nil {
			return c.usagef("%v", err)
		}
		adm, err := c.kafka()
		if err != nil {
			return err
		}
		plan, err := planReset(ctx, adm, args[0], want, t)
		if err != nil {
			return err
		}
		if *execute {
			c.progress("committing %d offsets of group %s...", len(plan.Offsets), plan.Group)
			if err := commitPlan(ctx, adm, plan); err != nil {
				return err
			}
			plan.Executed = true
		}
		if err := c.emit(plan, func(w io.Writer) { writeResetPlan(w, plan) }); err != nil {
			return err
		}
		if !*execute {
			c.progress("dry run: nothing changed; run again with --execute to commit these offsets")
		}
		return nil
	}
}

// parseTopicSpecs parses --topic values "topic" (every partition, nil) and
// "topic:0,1".
func parseTopicSpecs(specs []string) (map[string][]int32, error) {
	out := map[string][]int32{}
	for _, s := range specs {
		topic, parts, hasParts := strings.Cut(s, ":")
		if topic == "" {
			return nil, fmt.Errorf("--topic %q: empty topic name", s)
		}
		if !hasParts {
			out[topic] = nil
			continue
		}
		for _, p := range strings.Split(parts, ",") {
			n, err := strconv.ParseInt(p, 10, 32)
			if err != nil || n < 0 {
				return nil, fmt.Errorf("--topic %q: bad partition %q", s, p)
			}
			out[topic] = append(out[topic], int32(n))
		}
	}
	return out, nil
}

// planReset computes the new offsets of group's partitions: want's (nil
// partitions: all), or every partition with a committed offset when want
// is empty. It refuses a group that has members.
func planReset(ctx context.Context, adm *kadm.Client, group string, want map[string][]int32, t resetTarget) (*resetPlan, error) {
	d, err := describeGroup(ctx, adm, group)
	if err != nil && !errors.Is(err, errGroupNotFound) {
		return nil, err
	}
	if len(d.Members) > 0 {
		return nil, fmt.Errorf("group %s is not empty (state %s, %d active members): stop its consumers first, offsets can only be reset in an empty group", group, d.State, len(d.Members))
	}
	committed, err := committedOffsets(ctx, adm, group)
	if err != nil {
		return nil, err
	}
	if len(want) == 0 {
		for topic := range committed {
			want[topic] = slices.Sorted(maps.Keys(committed[topic]))
		}
		if len(want) == 0 {
			return nil, fmt.Errorf("group %s has no committed offsets; name the topics with --topic", group)
		}
	}
	names := sortedKeys(want)
	starts, err := listedOffsets(adm.ListStartOffsets(ctx, names...))
	if err != nil {
		return nil, err
	}
	ends, err := listedOffsets(adm.ListEndOffsets(ctx, names...))
	if err != nil {
		return nil, err
	}
	var byTime map[string]map[int32]int64
	if t.how == "datetime" {
		if byTime, err = listedOffsets(adm.ListOffsetsAfterMilli(ctx, t.ms, names...)); err != nil {
			return nil, err
		}
	}
	plan := &resetPlan{Group: group, Offsets: []resetOffset{}}
	for _, topic := range names {
		parts := want[topic]
		if parts == nil {
			parts = slices.Sorted(maps.Keys(ends[topic]))
		}
		if len(ends[topic]) == 0 {
			return nil, fmt.Errorf("topic %s: %w", topic, kerr.UnknownTopicOrPartition)
		}
		for _, p := range parts {
			end, ok := ends[topic][p]
			if !ok {
				return nil, fmt.Errorf("topic %s has no partition %d", topic, p)
			}
			start := starts[topic][p]
			o := resetOffset{Topic: topic, Partition: p, End: end}
			if at, ok := committed[topic][p]; ok {
				o.Current = &at
			}
			o.New = t.newOffset(o.Current, start, end, byTime[topic][p])
			plan.Offsets = append(plan.Offsets, o)
		}
	}
	return plan, nil
}

// newOffset is the target of one partition: current is the committed
// offset (nil: none, shifts then start from the log start), atTime the
// offset ListOffsets found for --to-datetime (-1: none, the end).
func (t resetTarget) newOffset(current *int64, start, end, atTime int64) int64 {
	switch t.how {
	case "earliest":
		return start
	case "latest":
		return end
	case "datetime":
		if atTime < 0 {
			return end
		}
		return min(max(atTime, start), end)
	case "shift-by":
		base := start
		if current != nil {
			base = *current
		}
		return min(max(base+t.offset, start), end)
	}
	return min(max(t.offset, start), end)
}

// commitPlan commits the plan's offsets for the group.
func commitPlan(ctx context.Context, adm *kadm.Client, plan *resetPlan) error {
	os := make(kadm.Offsets)
	for _, o := range plan.Offsets {
		os.Add(kadm.Offset{Topic: o.Topic, Partition: o.Partition, At: o.New, LeaderEpoch: -1})
	}
	resp, err := adm.CommitOffsets(ctx, plan.Group, os)
	if err != nil {
		return fmt.Errorf("commit offsets of group %s: %w", plan.Group, err)
	}
	if err := resp.Error(); err != nil {
		return fmt.Errorf("commit offsets of group %s: %w", plan.Group, err)
	}
	return nil
}

func writeResetPlan(w io.Writer, plan *resetPlan) {
	rows := make([][]string, len(plan.Offsets))
	for i, o := range plan.Offsets {
		rows[i] = []string{plan.Group, o.Topic, strconv.Itoa(int(o.Partition)), optInt(o.Current), strconv.FormatInt(o.New, 10), strconv.FormatInt(o.End, 10)}
	}
	writeTable(w, []string{"GROUP", "TOPIC", "PARTITION", "CURRENT", "NEW", "END"}, rows)
}

// deletedGroup is a group in groups delete's JSON.
type deletedGroup struct {
	Group string `json:"group"`
	Error string `json:"error,omitempty"`
}

func setupGroupsDelete(fs *flag.FlagSet) runFunc {
	return func(ctx context.Context, c *cli, args []string) error {
		if len(args) == 0 {
			return c.usagef("needs a group name")
		}
		adm, err := c.kafka()
		if err != nil {
			return err
		}
		resp, err := adm.DeleteGroups(ctx, args...)
		if err != nil && len(resp) == 0 {
			return err
		}
		var out []deletedGroup
		var errs []error
		for _, g := range args {
			d := deletedGroup{Group: g}
			r, ok := resp[g]
			switch {
			case !ok:
				d.Error = "no answer"
			case errors.Is(r.Err, kerr.NonEmptyGroup):
				d.Error = kafkaErr(r.Err, r.ErrMessage).Error() + "; stop its consumers first"
			case r.Err != nil:
				d.Error = kafkaErr(r.Err, r.ErrMessage).Error()
			}
			if d.Error != "" {
				errs = append(errs, fmt.Errorf("group %s: %s", g, d.Error))
			}
			out = append(out, d)
		}
		if err := c.emit(out, func(w io.Writer) {
			for _, d := range out {
				if d.Error == "" {
					fmt.Fprintf(w, "deleted group %s\n", d.Group)
				}
			}
		}); err != nil {
			return err
		}
		return errors.Join(errs...)
	}
}
