package lifecycle

import "strings"

// MatchPattern reports whether tag matches a tagPatternList entry. The only
// wildcard is '*', which matches any run of characters (including none);
// every other character, '?' and '[' included, matches itself.
func MatchPattern(pattern, tag string) bool {
	return compileGlob(pattern).match(tag)
}

// glob is a pattern split at its '*'s: parts[0] must be a prefix of the tag,
// the last part a suffix, and the middle parts must occur in order between
// them.
type glob struct {
	parts []string
}

func compileGlob(pattern string) glob {
	return glob{parts: strings.Split(pattern, "*")}
}

// match runs in O(len(tag) × len(pattern)) at worst, without backtracking:
// taking the leftmost occurrence of each middle part is always optimal,
// because it leaves the longest possible remainder for the parts after it.
func (g glob) match(s string) bool {
	if len(g.parts) == 1 {
		return s == g.parts[0]
	}
	first, last := g.parts[0], g.parts[len(g.parts)-1]
	if len(s) < len(first)+len(last) || !strings.HasPrefix(s, first) || !strings.HasSuffix(s, last) {
		return false
	}
	s = s[len(first) : len(s)-len(last)]
	for _, part := range g.parts[1 : len(g.parts)-1] {
		i := strings.Index(s, part)
		if i < 0 {
			return false
		}
		s = s[i+len(part):]
	}
	return true
}
