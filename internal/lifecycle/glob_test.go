package lifecycle

import (
	"regexp"
	"strings"
	"testing"
	"time"
)

func TestMatchPattern(t *testing.T) {
	tests := []struct {
		pattern, tag string
		want         bool
	}{
		// Spec A.3.1 rule 9.
		{"prod*", "prod", true},
		{"prod*", "prod1", true},
		{"prod*", "production-team1", true},
		{"prod*", "preprod", false},
		{"*prod*", "repo-production", true},
		{"*prod*", "prod-team", true},
		// No wildcard: exact match.
		{"latest", "latest", true},
		{"latest", "latest2", false},
		{"latest", "", false},
		// Wildcards at both ends and in the middle.
		{"*", "", true},
		{"*", "anything", true},
		{"**", "x", true},
		{"*-rc", "v1.0-rc", true},
		{"*-rc", "v1.0-rc1", false},
		{"v*.*.*", "v1.2.3", true},
		{"v*.*.*", "v1.2", false},
		{"a*b*c", "abc", true},
		{"a*b*c", "aXbYc", true},
		{"a*b*c", "acb", false},
		// Prefix and suffix may not overlap.
		{"a*a", "a", false},
		{"a*a", "aa", true},
		{"ab*ba", "aba", false},
		// Leftmost middle match must leave room for the rest.
		{"*ab*ab", "abab", true},
		{"*ab*ab", "aabab", true},
		{"*ab*ab", "ab", false},
		// Only '*' is special.
		{"v?.0", "v1.0", false},
		{"v?.0", "v?.0", true},
		{"[a]*", "[a]b", true},
		{"[a]*", "ab", false},
		{"a.c", "abc", false},
		// Unicode is compared by bytes, which is the same for valid UTF-8.
		{"caf*", "café", true},
		{"*é", "café", true},
	}
	for _, tc := range tests {
		if got := MatchPattern(tc.pattern, tc.tag); got != tc.want {
			t.Errorf("MatchPattern(%q, %q) = %v, want %v", tc.pattern, tc.tag, got, tc.want)
		}
		if ref := referenceMatch(tc.pattern, tc.tag); ref != tc.want {
			t.Errorf("reference(%q, %q) = %v, want %v (test table is wrong)", tc.pattern, tc.tag, ref, tc.want)
		}
	}
}

func TestMatchPatternPathological(t *testing.T) {
	// Inputs that make a backtracking matcher take exponential time. The
	// matcher must agree with the reference and finish quickly; the deadline
	// is generous so it only trips on super-linear blowup.
	long := strings.Repeat("a", 50_000)
	tests := []struct {
		pattern, tag string
		want         bool
	}{
		{"*a*a*a*a*b", long, false},
		{"*a*a*a*a*a", long, true},
		{"a*a*a*a*ab", long + "b", true},
		{"*aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaab*", long, false},
		{strings.Repeat("a*", 4) + "c", long, false},
	}
	start := time.Now()
	for _, tc := range tests {
		if got := MatchPattern(tc.pattern, tc.tag); got != tc.want {
			t.Errorf("MatchPattern(%.20q..., %d bytes) = %v, want %v", tc.pattern, len(tc.tag), got, tc.want)
		}
		if ref := referenceMatch(tc.pattern, tc.tag); ref != tc.want {
			t.Errorf("reference disagrees on %.20q", tc.pattern)
		}
	}
	if elapsed := time.Since(start); elapsed > 5*time.Second {
		t.Errorf("pathological patterns took %v", elapsed)
	}
}

// referenceMatch is an obviously correct (and slower) matcher: the pattern as
// an anchored regular expression in which only '*' is special.
func referenceMatch(pattern, tag string) bool {
	parts := strings.Split(pattern, "*")
	for i, p := range parts {
		parts[i] = regexp.QuoteMeta(p)
	}
	return regexp.MustCompile(`\A(?s:` + strings.Join(parts, ".*") + `)\z`).MatchString(tag)
}
