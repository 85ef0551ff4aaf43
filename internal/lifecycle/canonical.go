package lifecycle

import (
	"bytes"
	"cmp"
	"errors"
	"slices"
	"strconv"
	"unicode/utf8"
)

// Canonical renders p as compact JSON in a stable form, so that a local
// policy can be compared byte for byte with the one stored in ECR (which
// returns the rules re-ordered by rulePriority):
//
//   - rules are sorted by rulePriority (ties, only possible in an invalid
//     policy, by their rendering);
//   - fields appear in the order of the ECR template (spec A.1) and empty
//     fields are omitted;
//   - storageClass "standard" is omitted, since it is the default;
//   - tag list order is kept as written (it has no effect on evaluation, but
//     it is the author's text);
//   - strings are escaped minimally (no HTML or U+2028 escaping), so the
//     canonical text is never longer than a valid input it came from.
//
// Canonical does not validate p; call Validate for that.
func Canonical(p *Policy) ([]byte, error) {
	if p == nil {
		return nil, errors.New("lifecycle: canonical form of a nil policy")
	}
	rendered := make([][]byte, len(p.Rules))
	order := make([]int, len(p.Rules))
	for i := range p.Rules {
		rendered[i] = appendRule(nil, &p.Rules[i])
		order[i] = i
	}
	slices.SortFunc(order, func(a, b int) int {
		return cmp.Or(
			cmp.Compare(p.Rules[a].RulePriority, p.Rules[b].RulePriority),
			bytes.Compare(rendered[a], rendered[b]),
		)
	})
	b := []byte(`{"rules":[`)
	for n, i := range order {
		if n > 0 {
			b = append(b, ',')
		}
		b = append(b, rendered[i]...)
	}
	return append(b, "]}"...), nil
}

// jsonWriter appends `"name":value` members to an object, handling commas.
type jsonWriter struct {
	b     []byte
	first bool
}

func (w *jsonWriter) key(name string) {
	if !w.first {
		w.b = append(w.b, ',')
	}
	w.first = false
	w.b = appendString(w.b, name)
	w.b = append(w.b, ':')
}

func (w *jsonWriter) str(name, v string) {
	if v != "" {
		w.key(name)
		w.b = appendString(w.b, v)
	}
}

func (w *jsonWriter) num(name string, v int) {
	if v != 0 {
		w.key(name)
		w.b = strconv.AppendInt(w.b, int64(v), 10)
	}
}

func (w *jsonWriter) list(name string, v []string) {
	if len(v) == 0 {
		return
	}
	w.key(name)
	w.b = append(w.b, '[')
	for i, s := range v {
		if i > 0 {
			w.b = append(w.b, ',')
		}
		w.b = appendString(w.b, s)
	}
	w.b = append(w.b, ']')
}

func (w *jsonWriter) object(name string, fill func(*jsonWriter)) {
	w.key(name)
	inner := &jsonWriter{b: append(w.b, '{'), first: true}
	fill(inner)
	w.b = append(inner.b, '}')
}

func appendRule(b []byte, r *Rule) []byte {
	w := &jsonWriter{b: append(b, '{'), first: true}
	w.num("rulePriority", r.RulePriority)
	w.str("description", r.Description)
	w.object("selection", func(w *jsonWriter) {
		s := &r.Selection
		w.str("tagStatus", s.TagStatus)
		w.list("tagPatternList", s.TagPatternList)
		w.list("tagPrefixList", s.TagPrefixList)
		if s.StorageClass != StorageClassStandard {
			w.str("storageClass", s.StorageClass)
		}
		w.str("countType", s.CountType)
		w.str("countUnit", s.CountUnit)
		w.num("countNumber", s.CountNumber)
	})
	w.object("action", func(w *jsonWriter) {
		w.str("type", r.Action.Type)
		w.str("targetStorageClass", r.Action.TargetStorageClass)
	})
	return append(w.b, '}')
}

// appendString writes s as a JSON string, escaping only what JSON requires.
// Invalid UTF-8 becomes U+FFFD, as encoding/json does when decoding.
func appendString(b []byte, s string) []byte {
	const hex = "0123456789abcdef"
	b = append(b, '"')
	for _, c := range s {
		switch {
		case c == '"' || c == '\\':
			b = append(b, '\\', byte(c))
		case c == '\n':
			b = append(b, '\\', 'n')
		case c == '\r':
			b = append(b, '\\', 'r')
		case c == '\t':
			b = append(b, '\\', 't')
		case c == '\b':
			b = append(b, '\\', 'b')
		case c == '\f':
			b = append(b, '\\', 'f')
		case c < 0x20:
			b = append(b, '\\', 'u', '0', '0', hex[c>>4], hex[c&0xf])
		default:
			b = utf8.AppendRune(b, c) // RuneError for invalid bytes
		}
	}
	return append(b, '"')
}
