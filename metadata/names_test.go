package metadata

import (
	"errors"
	"strings"
	"testing"
)

func TestValidateTopicName(t *testing.T) {
	for _, tc := range []struct {
		name string
		ok   bool
	}{
		{"orders", true},
		{"a", true},
		{"Orders.v2_final-1", true},
		{"...", true},
		{strings.Repeat("x", 249), true},
		{"", false},
		{".", false},
		{"..", false},
		{strings.Repeat("x", 250), false},
		{"has space", false},
		{"slash/name", false},
		{"ünïcode", false},
		{"tab\t", false},
	} {
		err := ValidateTopicName(tc.name)
		if tc.ok && err != nil {
			t.Errorf("ValidateTopicName(%q) = %v, want nil", tc.name, err)
		}
		if !tc.ok && !errors.Is(err, ErrInvalidTopicName) {
			t.Errorf("ValidateTopicName(%q) = %v, want ErrInvalidTopicName", tc.name, err)
		}
	}
}

func TestTopicNamesCollide(t *testing.T) {
	for _, tc := range []struct {
		a, b string
		want bool
	}{
		{"a.b", "a_b", true},
		{"a_b", "a.b", true},
		{"a.b_c", "a_b.c", true},
		{"a.b", "a.b", false}, // the same name is not a collision but a duplicate
		{"ab", "ab", false},
		{"a.b", "a-b", false},
		{"a.b", "a.bc", false},
	} {
		if got := topicNamesCollide(tc.a, tc.b); got != tc.want {
			t.Errorf("topicNamesCollide(%q, %q) = %v, want %v", tc.a, tc.b, got, tc.want)
		}
	}
}
