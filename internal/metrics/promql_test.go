package metrics

import (
	"strconv"
	"strings"
	"testing"
)

// A small PromQL scanner for the tests: the metric selectors of an expression, so each can be
// queried on its own. It knows what the rules and the dashboard use: functions, aggregations with
// by/without, binary operators with on/ignoring/group_*, range and offset durations, strings.
type matcher struct{ label, op, value string }

type selector struct {
	name     string
	matchers []matcher
}

func (s selector) String() string {
	parts := make([]string, len(s.matchers))
	for i, m := range s.matchers {
		parts[i] = m.label + m.op + strconv.Quote(m.value)
	}
	return s.name + "{" + strings.Join(parts, ",") + "}"
}

var promKeywords = map[string]bool{
	"and": true, "or": true, "unless": true, "bool": true, "offset": true, "inf": true, "nan": true,
	"sum": true, "min": true, "max": true, "avg": true, "group": true, "stddev": true, "stdvar": true,
	"count": true, "count_values": true, "bottomk": true, "topk": true, "quantile": true,
}

var labelLists = map[string]bool{"by": true, "without": true, "on": true, "ignoring": true, "group_left": true, "group_right": true}

func isIdentStart(c byte) bool { return c == '_' || c == ':' || (c|0x20 >= 'a' && c|0x20 <= 'z') }
func isIdent(c byte) bool      { return isIdentStart(c) || (c >= '0' && c <= '9') }

func promSelectors(expr string) []selector {
	var out []selector
	i := 0
	skipSpace := func() {
		for i < len(expr) && strings.ContainsRune(" \t\r\n", rune(expr[i])) {
			i++
		}
	}
	skipString := func() string {
		q := expr[i]
		i++
		var b strings.Builder
		for i < len(expr) && expr[i] != q {
			if expr[i] == '\\' && q != '`' && i+1 < len(expr) {
				i++
			}
			b.WriteByte(expr[i])
			i++
		}
		i++
		return b.String()
	}
	skipGroup := func(open, close byte) {
		depth := 0
		for i < len(expr) {
			switch c := expr[i]; {
			case c == '"' || c == '\'' || c == '`':
				skipString()
				continue
			case c == open:
				depth++
			case c == close:
				depth--
				if depth == 0 {
					i++
					return
				}
			}
			i++
		}
	}
	matchers := func() []matcher {
		var ms []matcher
		i++ // {
		for {
			skipSpace()
			if i >= len(expr) || expr[i] == '}' {
				i++
				return ms
			}
			if expr[i] == ',' {
				i++
				continue
			}
			start := i
			for i < len(expr) && isIdent(expr[i]) {
				i++
			}
			label := expr[start:i]
			skipSpace()
			opStart := i
			for i < len(expr) && strings.ContainsRune("=!~", rune(expr[i])) {
				i++
			}
			op := expr[opStart:i]
			skipSpace()
			if i >= len(expr) || label == "" || op == "" {
				return ms
			}
			ms = append(ms, matcher{label, op, skipString()})
		}
	}
	for i < len(expr) {
		c := expr[i]
		switch {
		case c == '"' || c == '\'' || c == '`':
			skipString()
		case c == '[':
			skipGroup('[', ']')
		case c >= '0' && c <= '9' || c == '.':
			for i < len(expr) && (isIdent(expr[i]) || expr[i] == '.') {
				i++
			}
		case c == '{':
			out = append(out, selector{matchers: matchers()})
		case isIdentStart(c):
			start := i
			for i < len(expr) && isIdent(expr[i]) {
				i++
			}
			word := expr[start:i]
			skipSpace()
			switch {
			case labelLists[word]:
				if i < len(expr) && expr[i] == '(' {
					skipGroup('(', ')')
				}
			case promKeywords[word]:
			case i < len(expr) && expr[i] == '(': // a function
			case i < len(expr) && expr[i] == '{':
				out = append(out, selector{name: word, matchers: matchers()})
			default:
				out = append(out, selector{name: word})
			}
		default:
			i++
		}
	}
	return out
}

func TestPromSelectors(t *testing.T) {
	got := promSelectors(`histogram_quantile(0.95, sum by (job, le) (rate(registry_http_request_duration_seconds_bucket{handler=~"blob|manifest", method="get"}[5m]))) > 10
		or time() - regctl_job_last_success_timestamp_seconds{job="backup"} > 26 * 3600
		unless on (job, target) up offset 5m and sum without (x) (a:b{c!="d\"e"})`)
	want := []string{
		`registry_http_request_duration_seconds_bucket{handler=~"blob|manifest",method="get"}`,
		`regctl_job_last_success_timestamp_seconds{job="backup"}`,
		`up{}`,
		`a:b{c!="d\"e"}`,
	}
	if len(got) != len(want) {
		t.Fatalf("%v", got)
	}
	for i, w := range want {
		if got[i].String() != w {
			t.Errorf("%d: %s, want %s", i, got[i], w)
		}
	}
}
