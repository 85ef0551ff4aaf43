package lifecycle

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"
)

// The strict decoder works in two steps. First the text is read token by
// token into a generic tree (jsonObject, []any, string, json.Number, bool,
// nil); only this step can see duplicate keys, which encoding/json would
// silently merge. Then the tree is walked against the known shape of a policy,
// so every unknown field, null and type mismatch is reported with its path.

// jsonObject is a decoded JSON object that remembers key order, so problems
// are reported in document order.
type jsonObject struct {
	keys []string
	vals map[string]any
}

// pathError is a syntax error found while reading the value at path.
type pathError struct {
	path string
	err  error
}

func (e *pathError) Error() string { return e.path + ": " + e.err.Error() }

type treeReader struct {
	dec  *json.Decoder
	errs []FieldError
}

// decodePolicy returns the decoded policy and the structural problems found.
// The policy is nil when the text is not well-formed JSON or is not an object.
func decodePolicy(data []byte) (*Policy, []FieldError) {
	r := &treeReader{dec: json.NewDecoder(bytes.NewReader(data))}
	r.dec.UseNumber()

	tok, err := r.dec.Token()
	if errors.Is(err, io.EOF) {
		return nil, []FieldError{{Path: rootPath, Msg: "empty document; expected a JSON object with a \"rules\" array"}}
	}
	var root any
	if err == nil {
		root, err = r.value(tok, rootPath)
	}
	if err != nil {
		return nil, append(r.errs, r.syntaxProblem(data, err))
	}
	// Exactly one value is allowed: anything after it is an error.
	end := r.dec.InputOffset()
	if _, err := r.dec.Token(); !errors.Is(err, io.EOF) {
		for end < int64(len(data)) && strings.IndexByte(" \t\r\n", data[end]) >= 0 {
			end++
		}
		r.errs = append(r.errs, FieldError{
			Path: rootPath,
			Msg:  fmt.Sprintf("unexpected data after the policy object at %s", position(data, end)),
		})
	}

	w := &walker{errs: r.errs}
	p := w.policy(root)
	return p, w.errs
}

// value reads the rest of the JSON value that starts with tok.
func (r *treeReader) value(tok json.Token, path string) (any, error) {
	delim, ok := tok.(json.Delim)
	if !ok {
		return tok, nil // string, json.Number, bool or nil
	}
	switch delim {
	case '{':
		obj := &jsonObject{vals: map[string]any{}}
		for r.dec.More() {
			kt, err := r.dec.Token()
			if err != nil {
				return nil, wrapPath(path, err)
			}
			key, _ := kt.(string) // the decoder guarantees object keys are strings
			child := joinKey(path, key)
			vt, err := r.dec.Token()
			if err != nil {
				return nil, wrapPath(child, err)
			}
			v, err := r.value(vt, child)
			if err != nil {
				return nil, err
			}
			if _, dup := obj.vals[key]; dup {
				r.errs = append(r.errs, FieldError{Path: child, Msg: "duplicate key; each field may appear only once"})
				continue
			}
			obj.keys = append(obj.keys, key)
			obj.vals[key] = v
		}
		if _, err := r.dec.Token(); err != nil { // '}'
			return nil, wrapPath(path, err)
		}
		return obj, nil
	case '[':
		arr := []any{}
		for r.dec.More() {
			child := joinIndex(path, len(arr))
			vt, err := r.dec.Token()
			if err != nil {
				return nil, wrapPath(child, err)
			}
			v, err := r.value(vt, child)
			if err != nil {
				return nil, err
			}
			arr = append(arr, v)
		}
		if _, err := r.dec.Token(); err != nil { // ']'
			return nil, wrapPath(path, err)
		}
		return arr, nil
	}
	return nil, wrapPath(path, fmt.Errorf("unexpected %q", rune(delim)))
}

func wrapPath(path string, err error) error {
	if _, ok := err.(*pathError); ok {
		return err
	}
	return &pathError{path: path, err: err}
}

// syntaxProblem turns a read error into a FieldError at the innermost path
// that was being read, with a line:column position.
func (r *treeReader) syntaxProblem(data []byte, err error) FieldError {
	path := rootPath
	var pe *pathError
	if errors.As(err, &pe) {
		path, err = pe.path, pe.err
	}
	if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
		return FieldError{Path: path, Msg: "malformed JSON: unexpected end of input"}
	}
	off := r.dec.InputOffset()
	var se *json.SyntaxError
	if errors.As(err, &se) {
		off = se.Offset
	}
	return FieldError{Path: path, Msg: fmt.Sprintf("malformed JSON at %s: %v", position(data, off), err)}
}

// position renders a byte offset as "line L, column C" (both 1-based, column
// in bytes).
func position(data []byte, off int64) string {
	if off < 0 {
		off = 0
	}
	if off > int64(len(data)) {
		off = int64(len(data))
	}
	before := data[:off]
	line := bytes.Count(before, []byte("\n")) + 1
	col := len(before) - bytes.LastIndexByte(before, '\n')
	return fmt.Sprintf("line %d, column %d", line, col)
}

func joinKey(path, key string) string {
	if !isIdent(key) {
		key = "[" + strconv.Quote(key) + "]"
		if path == rootPath {
			return key
		}
		return path + key
	}
	if path == rootPath {
		return key
	}
	return path + "." + key
}

func joinIndex(path string, i int) string {
	if path == rootPath {
		path = ""
	}
	return path + "[" + strconv.Itoa(i) + "]"
}

func isIdent(s string) bool {
	if s == "" {
		return false
	}
	for i, c := range s {
		letter := c == '_' || ('a' <= c && c <= 'z') || ('A' <= c && c <= 'Z')
		if !letter && (i == 0 || c < '0' || c > '9') {
			return false
		}
	}
	return true
}

// walker checks a generic tree against the policy shape.
type walker struct {
	errs []FieldError
}

func (w *walker) fail(path, format string, args ...any) {
	w.errs = append(w.errs, FieldError{Path: path, Msg: fmt.Sprintf(format, args...)})
}

// field describes one allowed member of a JSON object.
type field struct {
	name     string
	required bool
	decode   func(v any, path string)
}

// object checks that v is an object, decodes its members with fields, and
// reports unknown, null and missing members. It reports whether v was an
// object.
func (w *walker) object(v any, path string, fields []field) bool {
	obj, ok := v.(*jsonObject)
	if !ok {
		w.fail(path, "must be a JSON object, got %s", describe(v))
		return false
	}
	for _, key := range obj.keys {
		child := joinKey(path, key)
		i := slices.IndexFunc(fields, func(f field) bool { return f.name == key })
		if i < 0 {
			w.fail(child, "unknown field%s", suggest(key, fields))
			continue
		}
		val := obj.vals[key]
		if val == nil {
			w.fail(child, "null is not allowed; omit the field instead")
			continue
		}
		fields[i].decode(val, child)
	}
	for _, f := range fields {
		if _, present := obj.vals[f.name]; f.required && !present {
			w.fail(joinKey(path, f.name), "required field is missing")
		}
	}
	return true
}

// suggest names the allowed fields, pointing out a near miss in letter case.
func suggest(key string, fields []field) string {
	names := make([]string, len(fields))
	for i, f := range fields {
		if strings.EqualFold(f.name, key) {
			return fmt.Sprintf(" (did you mean %q? field names are case-sensitive)", f.name)
		}
		names[i] = strconv.Quote(f.name)
	}
	return "; allowed fields are " + strings.Join(names, ", ")
}

func (w *walker) policy(root any) *Policy {
	p := &Policy{}
	ok := w.object(root, rootPath, []field{
		{"rules", true, func(v any, path string) {
			arr, ok := v.([]any)
			if !ok {
				w.fail(path, "must be an array of rules, got %s", describe(v))
				return
			}
			p.Rules = make([]Rule, len(arr))
			for i, rv := range arr {
				w.rule(rv, joinIndex(path, i), &p.Rules[i])
			}
		}},
	})
	if !ok {
		return nil
	}
	return p
}

func (w *walker) rule(v any, path string, r *Rule) {
	if v == nil {
		w.fail(path, "null is not allowed; expected a rule object")
		return
	}
	w.object(v, path, []field{
		{"rulePriority", true, w.intInto(&r.RulePriority)},
		{"description", false, w.stringInto(&r.Description)},
		{"selection", true, func(v any, path string) {
			s := &r.Selection
			w.object(v, path, []field{
				{"tagStatus", true, w.stringInto(&s.TagStatus)},
				{"tagPatternList", false, w.stringListInto(&s.TagPatternList)},
				{"tagPrefixList", false, w.stringListInto(&s.TagPrefixList)},
				{"storageClass", false, w.stringInto(&s.StorageClass)},
				{"countType", true, w.stringInto(&s.CountType)},
				{"countUnit", false, w.stringInto(&s.CountUnit)},
				{"countNumber", true, w.intInto(&s.CountNumber)},
			})
		}},
		{"action", true, func(v any, path string) {
			a := &r.Action
			w.object(v, path, []field{
				{"type", true, w.stringInto(&a.Type)},
				{"targetStorageClass", false, w.stringInto(&a.TargetStorageClass)},
			})
		}},
	})
}

func (w *walker) stringInto(dst *string) func(any, string) {
	return func(v any, path string) {
		s, ok := v.(string)
		if !ok {
			w.fail(path, "must be a string, got %s", describe(v))
			return
		}
		*dst = s
	}
}

// intInto accepts only a JSON integer literal (no fraction, no exponent) that
// fits in 32 bits. Whether ECR accepts 10.0 is unconfirmed; rejecting it is
// the safe side.
func (w *walker) intInto(dst *int) func(any, string) {
	return func(v any, path string) {
		num, ok := v.(json.Number)
		if !ok {
			w.fail(path, "must be an integer, got %s", describe(v))
			return
		}
		s := num.String()
		if strings.ContainsAny(s, ".eE") {
			w.fail(path, "must be an integer, got %s", s)
			return
		}
		n, err := strconv.ParseInt(s, 10, 32)
		if err != nil {
			w.fail(path, "integer %s is out of range; must fit in 32 bits (at most %d)", s, maxInt32)
			return
		}
		*dst = int(n)
	}
}

// stringListInto keeps element positions: a bad element becomes "", which
// Validate would flag at the same path (and that duplicate is suppressed).
func (w *walker) stringListInto(dst *[]string) func(any, string) {
	return func(v any, path string) {
		arr, ok := v.([]any)
		if !ok {
			w.fail(path, "must be an array of strings, got %s", describe(v))
			// Present but unusable: an empty non-nil list keeps Validate from
			// also claiming the list is missing (its own complaint about the
			// empty list lands on this path and is suppressed).
			*dst = []string{}
			return
		}
		list := make([]string, len(arr))
		for i, ev := range arr {
			s, ok := ev.(string)
			if !ok {
				if ev == nil {
					w.fail(joinIndex(path, i), "null is not allowed; expected a string")
				} else {
					w.fail(joinIndex(path, i), "must be a string, got %s", describe(ev))
				}
				continue
			}
			list[i] = s
		}
		*dst = list
	}
}

// describe names the JSON type of v, with a short rendering of scalars.
func describe(v any) string {
	switch t := v.(type) {
	case nil:
		return "null"
	case string:
		if len(t) > 40 {
			t = t[:37] + "..."
		}
		return "string " + strconv.Quote(t)
	case json.Number:
		return "number " + t.String()
	case bool:
		return "boolean " + strconv.FormatBool(t)
	case *jsonObject:
		return "object"
	case []any:
		return "array"
	}
	return fmt.Sprintf("%T", v)
}
