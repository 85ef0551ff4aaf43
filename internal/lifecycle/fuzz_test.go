package lifecycle

import (
	"bytes"
	"os"
	"testing"
	"unicode/utf8"
)

// FuzzParse checks that Parse never panics, and that every policy it accepts
// survives Canonical → Parse → Canonical unchanged.
func FuzzParse(f *testing.F) {
	if seed, err := os.ReadFile(seedPolicyPath); err == nil {
		f.Add(seed)
	} else {
		f.Fatal(err)
	}
	for _, text := range validPolicies {
		f.Add([]byte(text))
	}
	for _, tc := range invalidPolicies {
		if len(tc.text) < 4096 { // keep the corpus small
			f.Add([]byte(tc.text))
		}
	}
	images := []Image{
		img("a", 1*day, "prod-1", "v1"), img("b", 40*day), img("c", 400*day, "beta-1"),
		{ID: "d", PushedAt: now.Add(-500 * day), StorageClass: StorageClassArchive, LastArchivedAt: now.Add(-400 * day)},
		{ID: "e", Tags: []string{"x"}},
	}

	f.Fuzz(func(t *testing.T, data []byte) {
		p, err := Parse(data)
		if err != nil {
			if p != nil {
				t.Fatal("Parse returned both a policy and an error")
			}
			return
		}
		if errs := Validate(p, -1); len(errs) != 0 {
			t.Fatalf("accepted policy fails Validate: %v", errs)
		}
		if ds := Evaluate(p, images, now); len(ds) != len(images) {
			t.Fatalf("Evaluate returned %d decisions", len(ds))
		}
		c, err := Canonical(p)
		if err != nil {
			t.Fatalf("Canonical of an accepted policy: %v", err)
		}
		if n := utf8.RuneCount(c); n > utf8.RuneCount(data) {
			t.Fatalf("canonical form (%d chars) is longer than the input (%d)", n, utf8.RuneCount(data))
		}
		if utf8.RuneCount(c) < MinTextLen {
			return // too short for ECR on its own; nothing more to check
		}
		p2, err := Parse(c)
		if err != nil {
			t.Fatalf("canonical form does not parse: %v\n%s", err, c)
		}
		c2, err := Canonical(p2)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(c, c2) {
			t.Fatalf("canonical form is not stable:\n%s\n%s", c, c2)
		}
	})
}

// FuzzMatchPattern compares the glob matcher with the regexp reference.
func FuzzMatchPattern(f *testing.F) {
	for _, s := range [][2]string{
		{"prod*", "production"}, {"*prod*", "repo-production"}, {"a*b*c", "aXbYc"},
		{"*ab*ab", "aabab"}, {"a*a", "a"}, {"v?.0", "v1.0"}, {"", ""}, {"**", ""},
		{"*a*a*a*a*b", "aaaaaaaaaaaaaaaaaaaa"}, {"caf*", "café"},
	} {
		f.Add(s[0], s[1])
	}
	f.Fuzz(func(t *testing.T, pattern, tag string) {
		if !utf8.ValidString(pattern) || !utf8.ValidString(tag) {
			t.Skip("the reference regexp works on runes; tags are ASCII in practice")
		}
		if got, want := MatchPattern(pattern, tag), referenceMatch(pattern, tag); got != want {
			t.Fatalf("MatchPattern(%q, %q) = %v, reference says %v", pattern, tag, got, want)
		}
	})
}
