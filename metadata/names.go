package metadata

import (
	"fmt"
	"strings"
)

// MaxTopicNameLen is the longest topic name Kafka accepts.
const MaxTopicNameLen = 249

// ValidateTopicName checks Kafka's topic name rules: 1 to 249 characters of
// [a-zA-Z0-9._-], and neither "." nor "..". The error wraps ErrInvalidTopicName.
func ValidateTopicName(name string) error {
	switch {
	case name == "":
		return fmt.Errorf("%w: empty", ErrInvalidTopicName)
	case name == "." || name == "..":
		return fmt.Errorf("%w: %q is not allowed", ErrInvalidTopicName, name)
	case len(name) > MaxTopicNameLen:
		return fmt.Errorf("%w: %d characters, at most %d allowed", ErrInvalidTopicName, len(name), MaxTopicNameLen)
	}
	for i := 0; i < len(name); i++ {
		if !legalTopicChar(name[i]) {
			return fmt.Errorf("%w: %q contains %q; only [a-zA-Z0-9._-] are allowed", ErrInvalidTopicName, name, name[i])
		}
	}
	return nil
}

func legalTopicChar(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '.' || c == '_' || c == '-'
}

// topicNamesCollide reports whether two different names would map to the same
// metric name in Kafka, which treats '.' and '_' alike and refuses the second
// topic.
func topicNamesCollide(a, b string) bool {
	if a == b || len(a) != len(b) || !strings.ContainsAny(a, "._") {
		return false
	}
	for i := 0; i < len(a); i++ {
		x, y := a[i], b[i]
		if x == '.' {
			x = '_'
		}
		if y == '.' {
			y = '_'
		}
		if x != y {
			return false
		}
	}
	return true
}
