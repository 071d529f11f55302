package metadata

import (
	"errors"
	"strings"
	"testing"
)

func TestTopicConfigTable(t *testing.T) {
	required := []string{
		"cleanup.policy", "compression.type", "retention.ms", "retention.bytes", "segment.bytes", "segment.ms",
		"max.message.bytes", "message.timestamp.type", "min.insync.replicas", "delete.retention.ms",
		"min.compaction.lag.ms", "max.compaction.lag.ms", "min.cleanable.dirty.ratio",
		"message.timestamp.difference.max.ms", "unclean.leader.election.enable", "file.delete.delay.ms",
		"flush.messages", "flush.ms", "index.interval.bytes", "segment.index.bytes", "segment.jitter.ms",
		"preallocate", "local.retention.ms", "local.retention.bytes",
	}
	for _, name := range required {
		if _, ok := TopicConfigDef(name); !ok {
			t.Errorf("TopicConfigDef(%q) missing", name)
		}
	}
	types := map[string]bool{"long": true, "int": true, "string": true, "boolean": true, "list": true, "double": true, "class": true}
	seen := map[string]bool{}
	defaults := map[string]string{}
	for _, d := range TopicConfigs {
		if seen[d.Name] {
			t.Errorf("%s defined twice", d.Name)
		}
		seen[d.Name] = true
		if !types[d.Type] {
			t.Errorf("%s has type %q", d.Name, d.Type)
		}
		if d.Doc == "" {
			t.Errorf("%s has no doc", d.Name)
		}
		// Every default is a valid value (empty lists aside, which are unset).
		if d.Default != "" || d.Type != "list" {
			defaults[d.Name] = d.Default
		}
	}
	if err := ValidateTopicConfigs(defaults); err != nil {
		t.Errorf("defaults do not validate: %v", err)
	}
	if _, ok := TopicConfigDef("no.such.config"); ok {
		t.Error("TopicConfigDef found an unknown name")
	}
}

func TestValidateTopicConfigs(t *testing.T) {
	for _, tc := range []struct {
		cfg     map[string]string
		badKey  string // "" means valid
		comment string
	}{
		{cfg: nil},
		{cfg: map[string]string{"cleanup.policy": "compact"}},
		{cfg: map[string]string{"cleanup.policy": "compact,delete"}},
		{cfg: map[string]string{"cleanup.policy": "delete, compact"}},
		{cfg: map[string]string{"cleanup.policy": "shred"}, badKey: "cleanup.policy"},
		{cfg: map[string]string{"cleanup.policy": ""}, badKey: "cleanup.policy"},
		{cfg: map[string]string{"compression.type": "zstd"}},
		{cfg: map[string]string{"compression.type": "brotli"}, badKey: "compression.type"},
		{cfg: map[string]string{"compression.gzip.level": "-1"}},
		{cfg: map[string]string{"compression.gzip.level": "0"}, badKey: "compression.gzip.level"},
		{cfg: map[string]string{"retention.ms": "-1"}},
		{cfg: map[string]string{"retention.ms": "-2"}, badKey: "retention.ms"},
		{cfg: map[string]string{"retention.ms": "1h"}, badKey: "retention.ms"},
		{cfg: map[string]string{"retention.bytes": "-1"}},
		{cfg: map[string]string{"retention.bytes": "1073741824"}},
		{cfg: map[string]string{"segment.bytes": "13"}, badKey: "segment.bytes"},
		{cfg: map[string]string{"segment.bytes": "4294967296"}, badKey: "segment.bytes", comment: "beyond int32"},
		{cfg: map[string]string{"segment.ms": "0"}, badKey: "segment.ms"},
		{cfg: map[string]string{"max.message.bytes": "10485760"}},
		{cfg: map[string]string{"message.timestamp.type": "LogAppendTime"}},
		{cfg: map[string]string{"message.timestamp.type": "logappendtime"}, badKey: "message.timestamp.type"},
		{cfg: map[string]string{"min.insync.replicas": "0"}, badKey: "min.insync.replicas"},
		{cfg: map[string]string{"min.cleanable.dirty.ratio": "0.1"}},
		{cfg: map[string]string{"min.cleanable.dirty.ratio": "1.5"}, badKey: "min.cleanable.dirty.ratio"},
		{cfg: map[string]string{"min.cleanable.dirty.ratio": "NaN"}, badKey: "min.cleanable.dirty.ratio"},
		{cfg: map[string]string{"unclean.leader.election.enable": "TRUE"}},
		{cfg: map[string]string{"preallocate": "yes"}, badKey: "preallocate"},
		{cfg: map[string]string{"flush.messages": "0"}, badKey: "flush.messages"},
		{cfg: map[string]string{"local.retention.ms": "-2"}},
		{cfg: map[string]string{"local.retention.bytes": "-3"}, badKey: "local.retention.bytes"},
		{cfg: map[string]string{"leader.replication.throttled.replicas": "0:1,1:2"}},
		{cfg: map[string]string{"leader.replication.throttled.replicas": "*"}},
		{cfg: map[string]string{"leader.replication.throttled.replicas": "0-1"}, badKey: "leader.replication.throttled.replicas"},
		{cfg: map[string]string{"no.such.config": "1"}, badKey: "no.such.config"},
		{cfg: map[string]string{"min.compaction.lag.ms": "100", "max.compaction.lag.ms": "10"}, badKey: "min.compaction.lag.ms"},
		{cfg: map[string]string{"min.compaction.lag.ms": "10", "max.compaction.lag.ms": "100"}},
	} {
		err := ValidateTopicConfigs(tc.cfg)
		if tc.badKey == "" {
			if err != nil {
				t.Errorf("ValidateTopicConfigs(%v) = %v, want nil", tc.cfg, err)
			}
			continue
		}
		if !errors.Is(err, ErrInvalidConfig) || !strings.Contains(err.Error(), tc.badKey) {
			t.Errorf("ValidateTopicConfigs(%v) = %v, want ErrInvalidConfig naming %s %s", tc.cfg, err, tc.badKey, tc.comment)
		}
	}
}

func TestEffectiveConfig(t *testing.T) {
	topic := &Topic{Configs: map[string]string{"retention.ms": "1000"}}
	if v, ok := topic.EffectiveConfig("retention.ms"); !ok || v != "1000" {
		t.Errorf("explicit retention.ms = %q, %v", v, ok)
	}
	if v, ok := topic.EffectiveConfig("cleanup.policy"); !ok || v != "delete" {
		t.Errorf("default cleanup.policy = %q, %v", v, ok)
	}
	if _, ok := topic.EffectiveConfig("no.such"); ok {
		t.Error("unknown config reported as known")
	}
}
