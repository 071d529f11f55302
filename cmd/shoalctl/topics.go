package main

import (
	"context"
	"encoding/base64"
	"errors"
	"flag"
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kmsg"
)

func topicCommands() []command {
	return []command{
		{group: "topics", name: "list", summary: "list topics with their partition count and replication factor", setup: setupTopicsList},
		{group: "topics", name: "describe", args: "[TOPIC...]", summary: "show partitions (leader, epoch, replicas, ISR) and the configs set on each topic (all topics without arguments)", setup: setupTopicsDescribe},
		{group: "topics", name: "create", args: "TOPIC...", summary: "create topics", setup: setupTopicsCreate},
		{group: "topics", name: "delete", args: "TOPIC...", summary: "delete topics and their data", setup: setupTopicsDelete},
		{group: "topics", name: "alter", args: "TOPIC", summary: "set or delete topic configs, add partitions", setup: setupTopicsAlter},
	}
}

// topicSummary is a topic in topics list.
type topicSummary struct {
	Name              string `json:"name"`
	ID                string `json:"id"`
	Partitions        int    `json:"partitions"`
	ReplicationFactor int    `json:"replication_factor"`
}

// topicDescription is a topic in topics describe.
type topicDescription struct {
	Name              string            `json:"name"`
	ID                string            `json:"id"`
	ReplicationFactor int               `json:"replication_factor"`
	Partitions        []partitionInfo   `json:"partitions"`
	Configs           map[string]string `json:"configs"` // explicitly set (non-default) configs
}

// partitionInfo is one partition's leadership.
type partitionInfo struct {
	Topic       string  `json:"topic,omitempty"`
	Partition   int32   `json:"partition"`
	Leader      int32   `json:"leader"`
	LeaderEpoch int32   `json:"leader_epoch"`
	Replicas    []int32 `json:"replicas"`
	ISR         []int32 `json:"isr"`
	Error       string  `json:"error,omitempty"`
}

// topicID formats a topic id as Kafka's tools do (URL-safe base64 without
// padding).
func topicID(id kadm.TopicID) string { return base64.RawURLEncoding.EncodeToString(id[:]) }

// kafkaErr joins a Kafka error with its optional message.
func kafkaErr(err error, msg string) error {
	if err == nil || msg == "" || strings.Contains(err.Error(), msg) {
		return err
	}
	return fmt.Errorf("%w (%s)", err, msg)
}

func partitionsOf(td kadm.TopicDetail) []partitionInfo {
	var out []partitionInfo
	for _, p := range td.Partitions.Sorted() {
		pi := partitionInfo{Partition: p.Partition, Leader: p.Leader, LeaderEpoch: p.LeaderEpoch,
			Replicas: nonNil(p.Replicas), ISR: nonNil(p.ISR)}
		if p.Err != nil {
			pi.Error = p.Err.Error()
		}
		out = append(out, pi)
	}
	return out
}

// nonNil returns s, or an empty slice for nil (JSON [] rather than null).
func nonNil[T any](s []T) []T {
	if s == nil {
		return []T{}
	}
	return s
}

func setupTopicsList(fs *flag.FlagSet) runFunc {
	internal := fs.Bool("internal", false, "include internal topics")
	return func(ctx context.Context, c *cli, args []string) error {
		if len(args) > 0 {
			return c.usagef("takes no arguments")
		}
		adm, err := c.kafka()
		if err != nil {
			return err
		}
		tds, err := adm.ListTopicsWithInternal(ctx)
		if err != nil {
			return err
		}
		out := []topicSummary{}
		for _, td := range tds.Sorted() {
			if td.IsInternal && !*internal {
				continue
			}
			out = append(out, topicSummary{Name: td.Topic, ID: topicID(td.ID), Partitions: len(td.Partitions), ReplicationFactor: td.Partitions.NumReplicas()})
		}
		return c.emit(out, func(w io.Writer) {
			rows := make([][]string, len(out))
			for i, t := range out {
				rows[i] = []string{t.Name, strconv.Itoa(t.Partitions), strconv.Itoa(t.ReplicationFactor), t.ID}
			}
			writeTable(w, []string{"TOPIC", "PARTITIONS", "REPLICATION", "ID"}, rows)
		})
	}
}

func setupTopicsDescribe(fs *flag.FlagSet) runFunc {
	return func(ctx context.Context, c *cli, args []string) error {
		adm, err := c.kafka()
		if err != nil {
			return err
		}
		tds, err := adm.ListTopics(ctx, args...)
		if err != nil {
			return err
		}
		for _, name := range args {
			if td := tds[name]; td.Err != nil {
				return fmt.Errorf("topic %s: %w", name, td.Err)
			}
		}
		names := tds.Names()
		configs, err := adm.DescribeTopicConfigs(ctx, names...)
		if err != nil {
			return fmt.Errorf("describe configs: %w", err)
		}
		out := []topicDescription{}
		for _, td := range tds.Sorted() {
			d := topicDescription{Name: td.Topic, ID: topicID(td.ID), ReplicationFactor: td.Partitions.NumReplicas(),
				Partitions: nonNil(partitionsOf(td)), Configs: map[string]string{}}
			rc, err := configs.On(td.Topic, nil)
			if err == nil && rc.Err != nil {
				err = kafkaErr(rc.Err, rc.ErrMessage)
			}
			if err != nil {
				return fmt.Errorf("configs of topic %s: %w", td.Topic, err)
			}
			for _, cfg := range rc.Configs {
				if cfg.Source == kmsg.ConfigSourceDynamicTopicConfig {
					d.Configs[cfg.Key] = cfg.MaybeValue()
				}
			}
			out = append(out, d)
		}
		return c.emit(out, func(w io.Writer) { writeTopicDescriptions(w, out) })
	}
}

func writeTopicDescriptions(w io.Writer, tds []topicDescription) {
	for i, d := range tds {
		if i > 0 {
			fmt.Fprintln(w)
		}
		cfgs := make([]string, 0, len(d.Configs))
		for _, k := range sortedKeys(d.Configs) {
			cfgs = append(cfgs, k+"="+d.Configs[k])
		}
		writeFields(w, "Topic", d.Name, "ID", d.ID, "Partitions", strconv.Itoa(len(d.Partitions)),
			"Replication", strconv.Itoa(d.ReplicationFactor), "Configs", first(strings.Join(cfgs, ", "), "(defaults)"))
		fmt.Fprintln(w)
		writePartitions(w, d.Partitions)
	}
}

// writePartitions writes a partition leadership table.
func writePartitions(w io.Writer, ps []partitionInfo) {
	var rows [][]string
	withTopic := len(ps) > 0 && ps[0].Topic != ""
	for _, p := range ps {
		row := []string{strconv.Itoa(int(p.Partition)), strconv.Itoa(int(p.Leader)), strconv.Itoa(int(p.LeaderEpoch)),
			ints(p.Replicas), ints(p.ISR), first(p.Error, "-")}
		if withTopic {
			row = append([]string{p.Topic}, row...)
		}
		rows = append(rows, row)
	}
	header := []string{"PARTITION", "LEADER", "EPOCH", "REPLICAS", "ISR", "ERROR"}
	if withTopic {
		header = append([]string{"TOPIC"}, header...)
	}
	writeTable(w, header, rows)
}

// configFlag collects repeated --config key=value flags.
type configFlag struct {
	keys []string
	vals map[string]string
}

func (f *configFlag) String() string { return "" }

// Set adds one key=value.
func (f *configFlag) Set(s string) error {
	k, v, ok := strings.Cut(s, "=")
	if !ok || k == "" {
		return fmt.Errorf("%q is not key=value", s)
	}
	if f.vals == nil {
		f.vals = map[string]string{}
	}
	if _, dup := f.vals[k]; !dup {
		f.keys = append(f.keys, k)
	}
	f.vals[k] = v
	return nil
}

// listFlag collects a repeated string flag.
type listFlag []string

func (f *listFlag) String() string { return strings.Join(*f, ",") }

// Set adds one value.
func (f *listFlag) Set(s string) error {
	*f = append(*f, s)
	return nil
}

func setupTopicsCreate(fs *flag.FlagSet) runFunc {
	partitions := fs.Int("partitions", -1, "partition count (-1: the broker's default)")
	rf := fs.Int("replication-factor", -1, "replication factor (-1: the broker's default)")
	var cfg configFlag
	fs.Var(&cfg, "config", "topic config `key=value` (repeatable)")
	return func(ctx context.Context, c *cli, args []string) error {
		if len(args) == 0 {
			return c.usagef("needs a topic name")
		}
		if *partitions == 0 || *partitions < -1 || *rf == 0 || *rf < -1 || *rf > 1<<15-1 {
			return c.usagef("--partitions and --replication-factor must be positive (or -1 for the default)")
		}
		adm, err := c.kafka()
		if err != nil {
			return err
		}
		configs := map[string]*string{}
		for k, v := range cfg.vals {
			configs[k] = &v
		}
		resp, err := adm.CreateTopics(ctx, int32(*partitions), int16(*rf), configs, args...)
		if err != nil {
			return err
		}
		var out []topicSummary
		var errs []error
		for _, name := range args {
			r, ok := resp[name]
			switch {
			case !ok:
				errs = append(errs, fmt.Errorf("topic %s: no answer", name))
			case r.Err != nil:
				errs = append(errs, fmt.Errorf("topic %s: %w", name, kafkaErr(r.Err, r.ErrMessage)))
			default:
				out = append(out, topicSummary{Name: name, ID: topicID(r.ID), Partitions: int(r.NumPartitions), ReplicationFactor: int(r.ReplicationFactor)})
			}
		}
		if err := c.emit(nonNil(out), func(w io.Writer) {
			for _, t := range out {
				fmt.Fprintf(w, "created topic %s: %d partitions, replication factor %d\n", t.Name, t.Partitions, t.ReplicationFactor)
			}
		}); err != nil {
			return err
		}
		return errors.Join(errs...)
	}
}

// deletedTopic is a topic in topics delete's JSON.
type deletedTopic struct {
	Name  string `json:"name"`
	Error string `json:"error,omitempty"`
}

func setupTopicsDelete(fs *flag.FlagSet) runFunc {
	return func(ctx context.Context, c *cli, args []string) error {
		if len(args) == 0 {
			return c.usagef("needs a topic name")
		}
		adm, err := c.kafka()
		if err != nil {
			return err
		}
		resp, err := adm.DeleteTopics(ctx, args...)
		if err != nil {
			return err
		}
		var out []deletedTopic
		var errs []error
		for _, name := range args {
			d := deletedTopic{Name: name}
			if r, ok := resp[name]; !ok {
				d.Error = "no answer"
			} else if r.Err != nil {
				d.Error = kafkaErr(r.Err, r.ErrMessage).Error()
			}
			if d.Error != "" {
				errs = append(errs, fmt.Errorf("topic %s: %s", name, d.Error))
			}
			out = append(out, d)
		}
		if err := c.emit(out, func(w io.Writer) {
			for _, d := range out {
				if d.Error == "" {
					fmt.Fprintf(w, "deleted topic %s\n", d.Name)
				}
			}
		}); err != nil {
			return err
		}
		return errors.Join(errs...)
	}
}

// alteredTopic is topics alter's JSON.
type alteredTopic struct {
	Name       string            `json:"name"`
	Set        map[string]string `json:"set"`
	Deleted    []string          `json:"deleted"`
	Partitions int               `json:"partitions,omitempty"` // the new total, when changed
}

func setupTopicsAlter(fs *flag.FlagSet) runFunc {
	var set configFlag
	var del listFlag
	fs.Var(&set, "config", "set topic config `key=value` (repeatable)")
	fs.Var(&del, "delete-config", "delete topic config `key`, back to its default (repeatable)")
	partitions := fs.Int("partitions", 0, "grow the topic to this many partitions in total")
	return func(ctx context.Context, c *cli, args []string) error {
		switch {
		case len(args) != 1:
			return c.usagef("needs exactly one topic")
		case len(set.keys) == 0 && len(del) == 0 && *partitions == 0:
			return c.usagef("nothing to alter: give --config, --delete-config or --partitions")
		case *partitions < 0:
			return c.usagef("--partitions must be positive")
		}
		topic := args[0]
		adm, err := c.kafka()
		if err != nil {
			return err
		}
		out := alteredTopic{Name: topic, Set: map[string]string{}, Deleted: nonNil([]string(del))}
		var alters []kadm.AlterConfig
		for _, k := range set.keys {
			v := set.vals[k]
			alters = append(alters, kadm.AlterConfig{Op: kadm.SetConfig, Name: k, Value: &v})
			out.Set[k] = v
		}
		for _, k := range del {
			alters = append(alters, kadm.AlterConfig{Op: kadm.DeleteConfig, Name: k})
		}
		if len(alters) > 0 {
			resp, err := adm.AlterTopicConfigs(ctx, alters, topic)
			if err != nil {
				return err
			}
			r, err := resp.On(topic, nil)
			if err == nil {
				err = kafkaErr(r.Err, r.ErrMessage)
			}
			if err != nil {
				return fmt.Errorf("configs of topic %s: %w", topic, err)
			}
		}
		if *partitions > 0 {
			resp, err := adm.UpdatePartitions(ctx, *partitions, topic)
			if err != nil {
				return err
			}
			r, err := resp.On(topic, nil)
			if err == nil {
				err = kafkaErr(r.Err, r.ErrMessage)
			}
			if err != nil {
				return fmt.Errorf("partitions of topic %s: %w", topic, err)
			}
			out.Partitions = *partitions
		}
		return c.emit(out, func(w io.Writer) {
			for _, k := range set.keys {
				fmt.Fprintf(w, "topic %s: set %s=%s\n", topic, k, set.vals[k])
			}
			for _, k := range del {
				fmt.Fprintf(w, "topic %s: deleted %s (back to its default)\n", topic, k)
			}
			if out.Partitions > 0 {
				fmt.Fprintf(w, "topic %s: now %d partitions\n", topic, out.Partitions)
			}
		})
	}
}

// sortedKeys returns m's keys in order.
func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}
