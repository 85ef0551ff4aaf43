package harbor

import (
	"bytes"
	"encoding/json"
	"fmt"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"

	"github.com/regctl-dev/regctl/internal/exitcode"
)

// severities are Harbor's project severities, lowest first ("none" blocks nothing).
var severities = []string{"none", "low", "medium", "high", "critical"}

// ScanPolicy is a scan policy document (the guide's harbor-scan-policy.json) as Harbor can hold
// it: project metadata (auto_scan, prevent_vul, severity), the project's CVE allowlist, and notes
// naming every part Harbor cannot express, and what became of it.
type ScanPolicy struct {
	Metadata  map[string]string
	Allowlist []string // nil: the document has no whitelist/allowlist
	Notes     []string
}

// cveID is what an allowlist entry looks like: CVE-2021-12345, GHSA-xxxx-xxxx-xxxx.
var cveID = regexp.MustCompile(`^[A-Za-z][A-Za-z0-9]*(-[A-Za-z0-9]+)+$`)

// object decodes raw as a JSON object whose keys must be among allowed; errors name path.
func object(file, path string, raw json.RawMessage, allowed ...string) (map[string]json.RawMessage, error) {
	t := bytes.TrimSpace(raw)
	if len(t) == 0 || t[0] != '{' {
		return nil, usage(file, path, "must be a JSON object")
	}
	var m map[string]json.RawMessage
	if err := json.Unmarshal(t, &m); err != nil {
		return nil, usage(file, path, "not valid JSON: "+err.Error())
	}
	for _, k := range sortedRawKeys(m) {
		if !slices.Contains(allowed, k) {
			return nil, usage(file, join(path, k), "unknown field (known: "+strings.Join(allowed, ", ")+")")
		}
	}
	return m, nil
}

func sortedRawKeys(m map[string]json.RawMessage) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

func join(path, k string) string {
	if path == "" {
		return k
	}
	return path + "." + k
}

func usage(file, path, msg string) error {
	if path == "" {
		path = "(document)"
	}
	return fmt.Errorf("%s: %s: %s: %w", file, path, msg, exitcode.ErrUsage)
}

func isNull(raw json.RawMessage) bool { return bytes.Equal(bytes.TrimSpace(raw), []byte("null")) }

func getBool(file, path string, raw json.RawMessage) (bool, error) {
	var b bool
	if isNull(raw) || json.Unmarshal(raw, &b) != nil {
		return false, usage(file, path, "must be true or false")
	}
	return b, nil
}

func getString(file, path string, raw json.RawMessage) (string, error) {
	var s string
	if isNull(raw) || json.Unmarshal(raw, &s) != nil {
		return "", usage(file, path, "must be a string")
	}
	return s, nil
}

func getNumber(file, path string, raw json.RawMessage) (float64, error) {
	var f float64
	if isNull(raw) || json.Unmarshal(raw, &f) != nil {
		return 0, usage(file, path, "must be a number")
	}
	return f, nil
}

func getStrings(file, path string, raw json.RawMessage) ([]string, error) {
	t := bytes.TrimSpace(raw)
	var items []json.RawMessage
	if len(t) == 0 || t[0] != '[' || json.Unmarshal(t, &items) != nil {
		return nil, usage(file, path, "must be a list of strings")
	}
	out := make([]string, 0, len(items))
	for i, it := range items {
		s, err := getString(file, fmt.Sprintf("%s[%d]", path, i), it)
		if err != nil {
			return nil, err
		}
		out = append(out, s)
	}
	return out, nil
}

// ParseScanPolicy reads a scan policy document in the guide's format (harbor-scan-policy.json:
// name, description, project_id, enabled, rule.vulnerabilities.{severity, cvss_score_threshold,
// fix_available}, rule.scan_before_push, rule.prevent_vulnerable, rule.whitelist or rule.allowlist)
// and maps it onto what a Harbor project holds. Errors name the file and the JSON path (exit 2);
// what Harbor cannot express is named in Notes, never dropped silently.
func ParseScanPolicy(file string, data []byte) (*ScanPolicy, error) {
	if file == "" {
		file = "scan policy"
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	var top json.RawMessage
	if err := dec.Decode(&top); err != nil {
		return nil, usage(file, "", "not valid JSON: "+err.Error())
	}
	if dec.More() {
		return nil, usage(file, "", "trailing data after the policy")
	}
	doc, err := object(file, "", top, "name", "description", "project_id", "enabled", "rule")
	if err != nil {
		return nil, err
	}
	p := &ScanPolicy{Metadata: map[string]string{}}
	note := func(format string, args ...any) { p.Notes = append(p.Notes, fmt.Sprintf(format, args...)) }

	for _, k := range []string{"name", "description"} {
		if raw, ok := doc[k]; ok {
			s, err := getString(file, k, raw)
			if err != nil {
				return nil, err
			}
			if s != "" {
				note("%s %q: Harbor keeps no named scan policies; the settings go onto each project's metadata", k, s)
			}
		}
	}
	if raw, ok := doc["project_id"]; ok {
		n, err := getNumber(file, "project_id", raw)
		if err != nil {
			return nil, err
		}
		note("project_id %s: not used; the policy applies to the projects named on the command line", strconv.FormatFloat(n, 'f', -1, 64))
	}
	enabled := true
	if raw, ok := doc["enabled"]; ok {
		if enabled, err = getBool(file, "enabled", raw); err != nil {
			return nil, err
		}
	}
	rawRule, ok := doc["rule"]
	if !ok {
		return nil, usage(file, "rule", "required")
	}
	rule, err := object(file, "rule", rawRule, "vulnerabilities", "scan_before_push", "prevent_vulnerable", "whitelist", "allowlist")
	if err != nil {
		return nil, err
	}
	if raw, ok := rule["scan_before_push"]; ok {
		b, err := getBool(file, "rule.scan_before_push", raw)
		if err != nil {
			return nil, err
		}
		p.Metadata["auto_scan"] = strconv.FormatBool(b)
		if b {
			note("rule.scan_before_push true: Harbor scans on push, once the push is accepted, not before it; auto_scan true (prevent_vul keeps vulnerable images from being pulled)")
		}
	}
	if raw, ok := rule["prevent_vulnerable"]; ok {
		b, err := getBool(file, "rule.prevent_vulnerable", raw)
		if err != nil {
			return nil, err
		}
		p.Metadata["prevent_vul"] = strconv.FormatBool(b && enabled)
		if b && !enabled {
			note("enabled false: the policy is off, so prevent_vul is false although rule.prevent_vulnerable is true")
		}
	}
	if raw, ok := rule["vulnerabilities"]; ok {
		v, err := object(file, "rule.vulnerabilities", raw, "severity", "cvss_score_threshold", "fix_available")
		if err != nil {
			return nil, err
		}
		if raw, ok := v["severity"]; ok {
			list, err := getStrings(file, "rule.vulnerabilities.severity", raw)
			if err != nil {
				return nil, err
			}
			if len(list) == 0 {
				return nil, usage(file, "rule.vulnerabilities.severity", "list at least one severity")
			}
			lowest := len(severities)
			seen := map[int]bool{}
			for i, s := range list {
				idx := slices.Index(severities, strings.ToLower(s))
				if idx <= 0 {
					return nil, usage(file, fmt.Sprintf("rule.vulnerabilities.severity[%d]", i), fmt.Sprintf("%q is not one of critical, high, medium, low", s))
				}
				seen[idx] = true
				lowest = min(lowest, idx)
			}
			p.Metadata["severity"] = severities[lowest]
			for idx := lowest; idx < len(severities); idx++ {
				if !seen[idx] {
					note("rule.vulnerabilities.severity %v: Harbor blocks every severity at or above one threshold; %s also blocks %s", list, severities[lowest], severities[idx])
					break
				}
			}
		}
		if raw, ok := v["cvss_score_threshold"]; ok {
			f, err := getNumber(file, "rule.vulnerabilities.cvss_score_threshold", raw)
			if err != nil {
				return nil, err
			}
			if f < 0 || f > 10 {
				return nil, usage(file, "rule.vulnerabilities.cvss_score_threshold", "must be between 0 and 10")
			}
			note("rule.vulnerabilities.cvss_score_threshold %s: Harbor's pull gate has no CVSS threshold; not applied (regctl scan --gate-policy applies it)", strconv.FormatFloat(f, 'f', -1, 64))
		}
		if raw, ok := v["fix_available"]; ok {
			b, err := getBool(file, "rule.vulnerabilities.fix_available", raw)
			if err != nil {
				return nil, err
			}
			if b {
				note("rule.vulnerabilities.fix_available true: Harbor's pull gate counts vulnerabilities with or without a fix; not applied (regctl scan --gate-policy applies it)")
			}
		}
	}
	for _, k := range []string{"whitelist", "allowlist"} {
		raw, ok := rule[k]
		if !ok {
			continue
		}
		list, err := getStrings(file, "rule."+k, raw)
		if err != nil {
			return nil, err
		}
		if p.Allowlist == nil {
			p.Allowlist = []string{}
		}
		for i, id := range list {
			if len(id) > 64 || !cveID.MatchString(id) {
				return nil, usage(file, fmt.Sprintf("rule.%s[%d]", k, i), fmt.Sprintf("%q is not a vulnerability id like CVE-2021-12345", id))
			}
			if !slices.Contains(p.Allowlist, id) {
				p.Allowlist = append(p.Allowlist, id)
			}
		}
	}
	if p.Allowlist != nil {
		sort.Strings(p.Allowlist)
	}
	return p, nil
}
