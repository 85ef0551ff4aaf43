package config

import (
	"fmt"
	"regexp"
	"sort"
	"strconv"
	"strings"

	"gopkg.in/yaml.v3"
)

// kind is the YAML type a key must have.
type kind int

const (
	kString kind = iota
	kBool
	kInt
	kFloat
	kList   // list of elem
	kObject // fixed keys
	kMap    // free keys (e.g. registry names), each value of elem
)

// node is one key of the schema. The schema is what `config validate` checks the file against, before
// any value is decoded, so every unknown key and wrong type is reported with its path and line.
type node struct {
	kind   kind
	elem   *node
	fields map[string]*node
	enum   []string
	secret bool // redacted by `config view`
	// keys, for a free-form map, is the pattern its keys must match (registry names).
	keys *regexp.Regexp
	// variants, for an object, are its shapes by the value of its "type" key: a registry entry takes
	// the shared keys plus its own type's.
	variants map[string]*node
}

func str() *node                      { return &node{kind: kString} }
func enum(vals ...string) *node       { return &node{kind: kString, enum: vals} }
func boolean() *node                  { return &node{kind: kBool} }
func integer() *node                  { return &node{kind: kInt} }
func float() *node                    { return &node{kind: kFloat} }
func listOf(e *node) *node            { return &node{kind: kList, elem: e} }
func mapOf(e *node) *node             { return &node{kind: kMap, elem: e} }
func object(f map[string]*node) *node { return &node{kind: kObject, fields: f} }

var severities = []string{"UNKNOWN", "LOW", "MEDIUM", "HIGH", "CRITICAL"}

// sharedRegistryKeys are the keys every registry type takes.
func sharedRegistryKeys(types []string) map[string]*node {
	return map[string]*node{
		"type":          enum(types...),
		"url":           str(),
		"insecure":      boolean(),
		"ca_file":       str(),
		"username":      str(),
		"password":      {kind: kString, secret: true},
		"password_env":  str(),
		"password_file": str(),
	}
}

// registryEntry is the schema of one registry: the shared keys, and per type its own as well.
func registryEntry(kinds []Kind) *node {
	types := make([]string, len(kinds))
	for i, k := range kinds {
		types[i] = k.Type
	}
	entry := object(sharedRegistryKeys(types))
	entry.variants = map[string]*node{}
	for _, k := range kinds {
		fields := sharedRegistryKeys(types)
		for key, kk := range k.Keys {
			fields[key] = &node{kind: map[KeyKind]kind{KeyString: kString, KeyBool: kBool, KeyInt: kInt}[kk]}
		}
		entry.variants[k.Type] = object(fields)
	}
	return entry
}

// schemaFor mirrors Config, for the registry types this build has. A key added to Config must be
// added here too (TestSchemaCoversStructKeys checks).
func schemaFor(kinds []Kind) *node {
	return object(map[string]*node{
		"default_registry": str(),
		"registries":       {kind: kMap, keys: registryName, elem: registryEntry(kinds)},
		"scan": object(map[string]*node{
			"severities":     listOf(enum(severities...)),
			"fail_on":        mapOf(integer()),
			"ignore_file":    str(),
			"ignore_unfixed": boolean(),
			"cvss_threshold": float(),
			"cache_dir":      str(),
			"db_repository":  str(),
		}),
		"sign": object(map[string]*node{
			"key": str(),
		}),
		"backup": object(map[string]*node{
			"destination":   str(),
			"storage_class": str(),
			"keep_days":     integer(),
			"keep_last":     integer(),
			"jobs":          integer(),
		}),
		"verify": object(map[string]*node{
			"mode":      enum("enforce", "audit"),
			"unmatched": enum("deny", "allow"),
			"exclude":   listOf(str()),
			"rules": listOf(object(map[string]*node{
				"images":      listOf(str()),
				"keys":        listOf(str()),
				"annotations": mapOf(str()),
			})),
		}),
		"build": object(map[string]*node{
			"platforms": listOf(str()),
			"builder":   enum("auto", "buildx", "buildah"),
			"tag_rules": listOf(object(map[string]*node{
				"branch": str(),
				"tags":   listOf(str()),
			})),
		}),
	})
}

// variant is the shape of an object node by its "type" value (s itself when it has none or the type
// is unknown: the type key's enum then reports it).
func (s *node) variant(n *yaml.Node) *node {
	if s.variants == nil {
		return s
	}
	for i := 0; i+1 < len(n.Content); i += 2 {
		if n.Content[i].Value == "type" {
			if v, ok := s.variants[n.Content[i+1].Value]; ok {
				return v
			}
		}
	}
	return s
}

// checkNode walks a YAML node against the schema and appends a Problem for every mismatch. lines
// records the line of every key path it visits, so later checks can point into the file too.
func checkNode(n *yaml.Node, s *node, path string, out *[]Problem, lines map[string]int) {
	if _, ok := lines[path]; !ok {
		lines[path] = n.Line
	}
	if n.Kind == yaml.AliasNode {
		n = n.Alias
	}
	bad := func(format string, args ...any) {
		*out = append(*out, Problem{Path: path, Line: n.Line, Msg: fmt.Sprintf(format, args...)})
	}
	if n.Kind == yaml.ScalarNode && n.Tag == "!!null" {
		bad("must not be null; remove the key to use the default")
		return
	}
	switch s.kind {
	case kObject, kMap:
		if n.Kind != yaml.MappingNode {
			bad("expected a mapping, got %s", describe(n))
			return
		}
		base := s
		s = s.variant(n)
		seen := map[string]bool{}
		for i := 0; i+1 < len(n.Content); i += 2 {
			k, v := n.Content[i], n.Content[i+1]
			key := k.Value
			child := join(path, key)
			lines[child] = k.Line // the key's line, not its value's: a nested mapping starts a line later
			if seen[key] {
				*out = append(*out, Problem{Path: child, Line: k.Line, Msg: "duplicate key"})
				continue
			}
			seen[key] = true
			var cs *node
			if s.kind == kMap {
				cs = s.elem
				if s.keys != nil && !s.keys.MatchString(key) {
					*out = append(*out, Problem{Path: child, Line: k.Line, Msg: "names use lower-case letters, digits, - and _ (starting with a letter or digit)"})
					continue
				}
			} else {
				cs = s.fields[key]
			}
			if cs == nil {
				*out = append(*out, Problem{Path: child, Line: k.Line, Msg: "unknown key" + otherVariant(base, s, key) + suggest(key, s.fields)})
				continue
			}
			checkNode(v, cs, child, out, lines)
		}
	case kList:
		if n.Kind != yaml.SequenceNode {
			bad("expected a list, got %s", describe(n))
			return
		}
		for i, c := range n.Content {
			checkNode(c, s.elem, fmt.Sprintf("%s[%d]", path, i), out, lines)
		}
	default:
		if n.Kind != yaml.ScalarNode {
			bad("expected a %s, got %s", kindName(s.kind), describe(n))
			return
		}
		switch s.kind {
		case kBool:
			if n.Tag != "!!bool" {
				bad("expected true or false, got %s", describe(n))
			}
		case kInt:
			if n.Tag != "!!int" {
				bad("expected a whole number, got %s", describe(n))
			}
		case kFloat:
			if n.Tag != "!!int" && n.Tag != "!!float" {
				bad("expected a number, got %s", describe(n))
			}
		case kString:
			if n.Tag != "!!str" && n.Tag != "!!int" {
				// Numbers are accepted as strings (an AWS account id is often written unquoted);
				// booleans are not, since `type: yes` is almost certainly a mistake.
				bad("expected a string, got %s", describe(n))
				return
			}
			if len(s.enum) > 0 && !contains(s.enum, n.Value) {
				bad("%q is not one of %s", n.Value, strings.Join(s.enum, ", "))
			}
		}
	}
}

// otherVariant names the types that do take a key this object's type does not ("region" on an oci
// registry).
func otherVariant(base, chosen *node, key string) string {
	var types []string
	for t, v := range base.variants {
		if v != chosen && v.fields[key] != nil {
			types = append(types, t)
		}
	}
	if len(types) == 0 || chosen == base {
		return ""
	}
	sort.Strings(types)
	return fmt.Sprintf(" for this type (a key of type %s)", strings.Join(types, ", "))
}

func join(path, key string) string {
	if path == "" {
		return key
	}
	return path + "." + key
}

func describe(n *yaml.Node) string {
	switch n.Kind {
	case yaml.MappingNode:
		return "a mapping"
	case yaml.SequenceNode:
		return "a list"
	}
	switch n.Tag {
	case "!!bool":
		return "boolean " + n.Value
	case "!!int", "!!float":
		return "number " + n.Value
	}
	return strconv.Quote(n.Value)
}

func kindName(k kind) string {
	return map[kind]string{kString: "string", kBool: "boolean", kInt: "whole number", kFloat: "number"}[k]
}

func contains(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}

// suggest names the known key closest to a misspelt one.
func suggest(key string, fields map[string]*node) string {
	best, bestDist := "", 3
	names := make([]string, 0, len(fields))
	for k := range fields {
		names = append(names, k)
	}
	sort.Strings(names)
	for _, k := range names {
		if d := levenshtein(key, k); d < bestDist {
			best, bestDist = k, d
		}
	}
	if best == "" {
		return ""
	}
	return fmt.Sprintf(" (did you mean %q?)", best)
}

func levenshtein(a, b string) int {
	prev := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur := make([]int, len(b)+1)
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev = cur
	}
	return prev[len(b)]
}

// scalarKeys lists every dotted path of a fixed scalar or list key (not below free-form maps); these
// are the keys REGCTL_* environment variables may set even when the file does not mention them.
func scalarKeys(s *node, path string, out *[]string) {
	switch s.kind {
	case kObject:
		for k, c := range s.fields {
			scalarKeys(c, join(path, k), out)
		}
	case kMap:
		// free-form keys are only known from the file
	default:
		*out = append(*out, path)
	}
}

// lookup returns the schema node of a dotted key path (free-form map keys match anything; a key of
// an object with variants is looked up in them too).
func lookup(n *node, path string) *node {
	for _, part := range strings.Split(path, ".") {
		switch n.kind {
		case kObject:
			next := n.fields[part]
			for _, v := range n.variants {
				if next == nil {
					next = v.fields[part]
				}
			}
			n = next
		case kMap:
			n = n.elem
		default:
			return nil
		}
		if n == nil {
			return nil
		}
	}
	return n
}

// checkEnvValue checks an environment variable's text against the key's schema, as the file's values
// are checked, and returns what is wrong ("" when nothing).
func checkEnvValue(s *node, val string) string {
	switch s.kind {
	case kBool:
		if _, err := strconv.ParseBool(val); err != nil {
			return fmt.Sprintf("expected true or false, got %q", val)
		}
	case kInt:
		if _, err := strconv.Atoi(val); err != nil {
			return fmt.Sprintf("expected a whole number, got %q", val)
		}
	case kFloat:
		if _, err := strconv.ParseFloat(val, 64); err != nil {
			return fmt.Sprintf("expected a number, got %q", val)
		}
	case kList:
		for _, item := range strings.Split(val, ",") {
			if msg := checkEnvValue(s.elem, item); msg != "" {
				return msg
			}
		}
	case kString:
		if len(s.enum) > 0 && !contains(s.enum, val) {
			return fmt.Sprintf("%q is not one of %s", val, strings.Join(s.enum, ", "))
		}
	default:
		return "cannot be set from the environment (it is a mapping)"
	}
	return ""
}
