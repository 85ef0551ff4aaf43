package registry

import (
	"regexp"
	"strings"
	"testing"
)

func TestMatchAny(t *testing.T) {
	cases := []struct {
		globs []string
		s     string
		want  bool
	}{
		{nil, "anything", true},
		{[]string{"game-server/*"}, "game-server/api", true},
		{[]string{"game-server/*"}, "game-server/a/b", true},
		{[]string{"game-server/*"}, "game-server", false},
		{[]string{"*"}, "", true},
		{[]string{"v1.*"}, "v1.2.3", true},
		{[]string{"v1.*"}, "v10", false}, // "." is literal
		{[]string{"*-rc*"}, "1.0-rc2", true},
		{[]string{"a*a"}, "a", false}, // the first and last parts may not overlap
		{[]string{"a*a"}, "aa", true},
		{[]string{"a*b*c"}, "acb", false},
		{[]string{"a*b*c"}, "axbyc", true},
		{[]string{"latest"}, "latest", true},
		{[]string{"latest"}, "latest2", false},
		{[]string{"x", "sha256-*"}, "sha256-abc.sig", true},
	}
	for _, c := range cases {
		if got := MatchAny(c.globs, c.s); got != c.want {
			t.Errorf("MatchAny(%q, %q) = %v, want %v", c.globs, c.s, got, c.want)
		}
	}
}

// FuzzMatchGlob: the glob matcher (user input: --repos, --tags, --exclude) agrees with the regular
// expression the glob means, on any glob and any name, and never panics — not even on a glob that
// is not UTF-8, where the regexp-based matcher it replaced did (testdata/fuzz/FuzzMatchGlob).
func FuzzMatchGlob(f *testing.F) {
	for _, seed := range [][2]string{{"game-server/*", "game-server/api"}, {"a*a", "a"}, {"*-rc*", "1.0-rc2"},
		{"**", ""}, {"v1.*", "v10"}, {"a*b*c", "acb"}, {"", ""}, {"*x*", "xx"}} {
		f.Add(seed[0], seed[1])
	}
	f.Fuzz(func(t *testing.T, g, s string) {
		got := matchGlob(g, s)
		re, err := regexp.Compile("^" + strings.ReplaceAll(regexp.QuoteMeta(g), `\*`, ".*") + "$")
		if err != nil {
			return // not UTF-8: no regexp to compare with; matchGlob compares bytes
		}
		if want := re.MatchString(s); got != want {
			t.Fatalf("matchGlob(%q, %q) = %v, the regexp says %v", g, s, got, want)
		}
	})
}
