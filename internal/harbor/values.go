package harbor

import (
	"fmt"
	"net/url"
	"regexp"
	"sort"
	"strings"

	"gopkg.in/yaml.v3"

	"github.com/regctl-dev/regctl/internal/exitcode"
)

// ValuesFinding is one problem in a Harbor helm chart values file.
type ValuesFinding struct {
	Path     string `json:"path"` // the YAML path, e.g. database.internal.password
	Line     int    `json:"line"`
	Severity string `json:"severity"` // error | warning
	Message  string `json:"message"`
}

// placeholder is a shell-style ${VAR}: helm renders values as they are, it never expands them.
var placeholder = regexp.MustCompile(`\$\{[A-Za-z_][A-Za-z0-9_]*(:?[-=?+][^}]*)?\}`)

// trivySeverities and trivyVulnTypes are what the chart's trivy adapter accepts.
var (
	trivySeverities = map[string]bool{"UNKNOWN": true, "LOW": true, "MEDIUM": true, "HIGH": true, "CRITICAL": true}
	trivyVulnTypes  = map[string]bool{"os": true, "library": true}
)

// LintValues checks a values file for the goharbor/harbor chart for what breaks an install the
// way the guide's harbor-values.yaml would: ${VAR} placeholders (helm installs the literal text:
// the admin password becomes "${HARBOR_ADMIN_PASSWORD}"), notary (removed in Harbor 2.9, chart
// 1.13), an externalURL whose host is not the ingress host (tokens and redirects point elsewhere),
// and trivy settings the adapter rejects. A file that is not YAML is an error (exit 2); findings
// are returned sorted by line, and the caller decides the exit code.
func LintValues(file string, data []byte) ([]ValuesFinding, error) {
	var doc yaml.Node
	if err := yaml.Unmarshal(data, &doc); err != nil {
		return nil, fmt.Errorf("%s: not YAML: %v: %w", file, err, exitcode.ErrUsage)
	}
	if len(doc.Content) == 0 {
		return nil, fmt.Errorf("%s: empty: %w", file, exitcode.ErrUsage)
	}
	root := doc.Content[0]
	if root.Kind != yaml.MappingNode {
		return nil, fmt.Errorf("%s: the top level is not a mapping of chart values: %w", file, exitcode.ErrUsage)
	}
	var out []ValuesFinding
	add := func(path string, n *yaml.Node, sev, format string, a ...any) {
		line := 0
		if n != nil {
			line = n.Line
		}
		out = append(out, ValuesFinding{Path: path, Line: line, Severity: sev, Message: fmt.Sprintf(format, a...)})
	}

	walkScalars(root, "", func(path string, n *yaml.Node) {
		if m := placeholder.FindString(n.Value); m != "" {
			add(path, n, "error", "%s is a shell placeholder: helm does not expand environment variables, so Harbor gets the literal text; pass the value with --set %s=\"$VAR\" or an existing secret", m, path)
		}
	})

	if n := lookup(root, "notary"); n != nil {
		add("notary", n, "error", "Notary was removed in Harbor 2.9 (chart 1.13): the chart ignores it and nothing signs or verifies; sign with cosign (regctl sign) and enforce with regctl verify serve")
	}
	if n := lookup(root, "expose", "ingress", "hosts", "notary"); n != nil {
		add("expose.ingress.hosts.notary", n, "error", "no notary ingress since Harbor 2.9: remove the host (and its DNS name and certificate)")
	}

	ext := lookup(root, "externalURL")
	switch {
	case ext == nil:
		add("externalURL", nil, "error", "missing: Harbor builds token realms and pull commands from it")
	case ext.Kind != yaml.ScalarNode:
		add("externalURL", ext, "error", "not a URL")
	default:
		u, err := url.Parse(ext.Value)
		if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
			if placeholder.MatchString(ext.Value) {
				break
			}
			add("externalURL", ext, "error", "%q is not an http(s) URL", ext.Value)
			break
		}
		exposeType := "ingress"
		if t := lookup(root, "expose", "type"); t != nil && t.Kind == yaml.ScalarNode {
			exposeType = t.Value
		}
		if core := lookup(root, "expose", "ingress", "hosts", "core"); exposeType == "ingress" && core != nil && core.Kind == yaml.ScalarNode &&
			!strings.EqualFold(u.Hostname(), core.Value) {
			add("externalURL", ext, "error", "host %s is not the ingress host expose.ingress.hosts.core %s: docker login gets a token realm on another host", u.Hostname(), core.Value)
		}
		if tls := lookup(root, "expose", "tls", "enabled"); u.Scheme == "http" && tls != nil && tls.Value == "true" {
			add("externalURL", ext, "warning", "http:// while expose.tls.enabled is true: clients are sent to plain HTTP")
		}
	}

	if n := lookup(root, "trivy", "severity"); n != nil && n.Kind == yaml.ScalarNode {
		for _, s := range strings.Split(n.Value, ",") {
			if s = strings.TrimSpace(s); !trivySeverities[s] {
				add("trivy.severity", n, "error", "%q is not one of UNKNOWN, LOW, MEDIUM, HIGH, CRITICAL", s)
			}
		}
	}
	if n := lookup(root, "trivy", "vulnType"); n != nil && n.Kind == yaml.ScalarNode {
		for _, s := range strings.Split(n.Value, ",") {
			if s = strings.TrimSpace(s); !trivyVulnTypes[s] {
				add("trivy.vulnType", n, "error", "%q is not one of os, library", s)
			}
		}
	}
	if n := lookup(root, "trivy", "enabled"); n != nil && n.Value == "false" {
		add("trivy.enabled", n, "warning", "no scanner: scan on push, prevent_vul and regctl scan --engine native need one")
	}
	sort.SliceStable(out, func(i, j int) bool { return out[i].Line < out[j].Line })
	return out, nil
}

// lookup follows mapping keys from n; nil when a key is missing or a node on the way is not a mapping.
func lookup(n *yaml.Node, keys ...string) *yaml.Node {
	for _, k := range keys {
		if n == nil || n.Kind != yaml.MappingNode {
			return nil
		}
		var next *yaml.Node
		for i := 0; i+1 < len(n.Content); i += 2 {
			if n.Content[i].Value == k {
				next = n.Content[i+1]
			}
		}
		n = next
	}
	return n
}

// walkScalars calls fn with every scalar value under n and its dotted path (list items as [i]).
// Depth is bounded: yaml.v3 already refuses alias bombs, and a values file is never this deep.
func walkScalars(n *yaml.Node, path string, fn func(string, *yaml.Node)) {
	var walk func(n *yaml.Node, path string, depth int)
	walk = func(n *yaml.Node, path string, depth int) {
		if n == nil || depth > 100 {
			return
		}
		switch n.Kind {
		case yaml.ScalarNode:
			fn(path, n)
		case yaml.MappingNode:
			for i := 0; i+1 < len(n.Content); i += 2 {
				p := n.Content[i].Value
				if path != "" {
					p = path + "." + p
				}
				walk(n.Content[i+1], p, depth+1)
			}
		case yaml.SequenceNode:
			for i, c := range n.Content {
				walk(c, fmt.Sprintf("%s[%d]", path, i), depth+1)
			}
		case yaml.AliasNode:
			// An alias repeats a value already walked where it is defined.
		}
	}
	walk(n, path, 0)
}
