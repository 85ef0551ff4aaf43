//lint:file-ignore SA1019 Severity is what trivy v0.74 itself reports and gates on (VendorSeverity is per source); findings parity with the trivy CLI needs it

package scan

import (
	"bytes"
	"encoding/json"
	"fmt"
	"slices"
	"sort"
	"strconv"
	"strings"

	"github.com/aquasecurity/trivy/pkg/types"

	"github.com/regctl-dev/regctl/internal/exitcode"
)

// Gate decides whether scan results may pass. It is always applied: with no limits it only reports.
type Gate struct {
	FailOn           map[string]int `json:"failOn"`                  // severity -> most findings allowed
	CVSSThreshold    float64        `json:"cvssThreshold,omitempty"` // only findings scoring at least this count (unscored ones count)
	FixAvailableOnly bool           `json:"fixAvailableOnly,omitempty"`
	Allowlist        []string       `json:"allowlist,omitempty"` // vulnerability IDs that never count
	Source           string         `json:"source"`              // where the gate came from
}

// DefaultGate reproduces security-scan.sh: fail on any CRITICAL or more than 5 HIGH.
func DefaultGate() Gate {
	return Gate{FailOn: map[string]int{"CRITICAL": 0, "HIGH": 5}, Source: "default (security-scan.sh)"}
}

// BuildPushGate is build-and-push.sh's gate, stricter than security-scan.sh's: it blocks on any
// CRITICAL or HIGH (trivy --severity CRITICAL,HIGH --exit-code 1), so build-push keeps it.
func BuildPushGate() Gate {
	return Gate{FailOn: map[string]int{"CRITICAL": 0, "HIGH": 0}, Source: "default (build-and-push.sh)"}
}

// ParseFailOn parses "CRITICAL=0,HIGH=5" (or "none": report only).
func ParseFailOn(s string) (map[string]int, error) {
	out := map[string]int{}
	if strings.EqualFold(strings.TrimSpace(s), "none") {
		return out, nil
	}
	for _, part := range strings.Split(s, ",") {
		sev, n, ok := strings.Cut(strings.TrimSpace(part), "=")
		sev = strings.ToUpper(strings.TrimSpace(sev))
		if !ok || !slices.Contains(Severities, sev) {
			return nil, fmt.Errorf("--fail-on %q: want SEVERITY=N,... with severities %s, or none: %w", s, strings.Join(Severities, ", "), exitcode.ErrUsage)
		}
		v, err := strconv.Atoi(strings.TrimSpace(n))
		if err != nil || v < 0 {
			return nil, fmt.Errorf("--fail-on %s: %q is not a count of 0 or more: %w", sev, n, exitcode.ErrUsage)
		}
		out[sev] = v
	}
	return out, nil
}

// harborPolicy is the guide's harbor-scan-policy.json.
type harborPolicy struct {
	Name        string `json:"name"`
	Description string `json:"description"`
	ProjectID   int    `json:"project_id"`
	Enabled     *bool  `json:"enabled"`
	Rule        *struct {
		Vulnerabilities *struct {
			Severity           []string `json:"severity"`
			CVSSScoreThreshold *float64 `json:"cvss_score_threshold"`
			FixAvailable       bool     `json:"fix_available"`
		} `json:"vulnerabilities"`
		ScanBeforePush    bool     `json:"scan_before_push"`
		PreventVulnerable *bool    `json:"prevent_vulnerable"`
		Whitelist         []string `json:"whitelist"`
		Allowlist         []string `json:"allowlist"`
	} `json:"rule"`
}

// ParseHarborPolicy turns a Harbor-style scan policy into a gate: any finding of a listed severity
// (scoring at least cvss_score_threshold, with a fix when fix_available, not whitelisted) blocks,
// when prevent_vulnerable is true; otherwise the policy only reports. Unknown fields are errors.
func ParseHarborPolicy(data []byte, file string) (Gate, error) {
	var p harborPolicy
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&p); err != nil {
		return Gate{}, fmt.Errorf("%s: %v: %w", file, err, exitcode.ErrUsage)
	}
	if dec.More() {
		return Gate{}, fmt.Errorf("%s: trailing data after the policy: %w", file, exitcode.ErrUsage)
	}
	if p.Rule == nil || p.Rule.Vulnerabilities == nil {
		return Gate{}, fmt.Errorf("%s: rule.vulnerabilities is required: %w", file, exitcode.ErrUsage)
	}
	g := Gate{FailOn: map[string]int{}, Source: "harbor policy " + file}
	v := p.Rule.Vulnerabilities
	if len(v.Severity) == 0 {
		return Gate{}, fmt.Errorf("%s: rule.vulnerabilities.severity: list at least one severity: %w", file, exitcode.ErrUsage)
	}
	enabled := (p.Enabled == nil || *p.Enabled) && (p.Rule.PreventVulnerable == nil || *p.Rule.PreventVulnerable)
	for i, s := range v.Severity {
		up := strings.ToUpper(s)
		if !slices.Contains(Severities, up) {
			return Gate{}, fmt.Errorf("%s: rule.vulnerabilities.severity[%d]: %q is not one of %s: %w", file, i, s, strings.Join(Severities, ", "), exitcode.ErrUsage)
		}
		if enabled {
			g.FailOn[up] = 0
		}
	}
	if v.CVSSScoreThreshold != nil {
		if *v.CVSSScoreThreshold < 0 || *v.CVSSScoreThreshold > 10 {
			return Gate{}, fmt.Errorf("%s: rule.vulnerabilities.cvss_score_threshold: must be between 0 and 10: %w", file, exitcode.ErrUsage)
		}
		g.CVSSThreshold = *v.CVSSScoreThreshold
	}
	g.FixAvailableOnly = v.FixAvailable
	g.Allowlist = append(append(g.Allowlist, p.Rule.Whitelist...), p.Rule.Allowlist...)
	return g, nil
}

// Finding is one vulnerability in one scanned target, flattened for gates and tables.
type Finding struct {
	Target           string  `json:"target"`
	Platform         string  `json:"platform,omitempty"`
	VulnerabilityID  string  `json:"vulnerabilityID"`
	PkgName          string  `json:"pkgName"`
	InstalledVersion string  `json:"installedVersion"`
	FixedVersion     string  `json:"fixedVersion,omitempty"`
	Severity         string  `json:"severity"`
	CVSS             float64 `json:"cvss,omitempty"`
	Title            string  `json:"title,omitempty"`
}

// Findings flattens the reported vulnerabilities of targets, most severe first.
func Findings(targets []Target) []Finding {
	return flatten(targets, func(t Target) types.Results { return t.Report.Results })
}

// gateFindings are the findings the gate counts: every severity (Target.GateResults).
func gateFindings(t Target) []Finding {
	return flatten([]Target{t}, func(t Target) types.Results {
		if t.GateResults != nil {
			return t.GateResults
		}
		return t.Report.Results
	})
}

func flatten(targets []Target, results func(Target) types.Results) []Finding {
	var out []Finding
	for _, t := range targets {
		for _, r := range results(t) {
			for _, v := range r.Vulnerabilities {
				out = append(out, Finding{Target: r.Target, Platform: t.Platform, VulnerabilityID: v.VulnerabilityID,
					PkgName: v.PkgName, InstalledVersion: v.InstalledVersion, FixedVersion: v.FixedVersion,
					Severity: v.Severity, CVSS: cvssScore(v), Title: v.Title})
			}
		}
	}
	rank := func(s string) int { return slices.Index(Severities, s) }
	sort.SliceStable(out, func(i, j int) bool {
		if rank(out[i].Severity) != rank(out[j].Severity) {
			return rank(out[i].Severity) > rank(out[j].Severity)
		}
		if out[i].VulnerabilityID != out[j].VulnerabilityID {
			return out[i].VulnerabilityID < out[j].VulnerabilityID
		}
		return out[i].PkgName < out[j].PkgName
	})
	return out
}

// cvssScore is the highest v3 (or v4) base score any source gives.
func cvssScore(v types.DetectedVulnerability) float64 {
	best := 0.0
	for _, c := range v.CVSS {
		best = max(best, c.V3Score, c.V40Score)
	}
	return best
}

// GateResult is the gate's verdict.
type GateResult struct {
	Gate       Gate           `json:"gate"`
	Passed     bool           `json:"passed"`
	Counts     map[string]int `json:"counts"` // counted findings per severity (after threshold, fix and allowlist)
	Violations []string       `json:"violations"`
	Blocking   []Finding      `json:"blocking"`
}

// Evaluate applies the gate to findings.
func (g Gate) Evaluate(findings []Finding) GateResult {
	res := GateResult{Gate: g, Passed: true, Counts: map[string]int{}, Violations: []string{}, Blocking: []Finding{}}
	counted := map[string][]Finding{}
	for _, f := range findings {
		if slices.Contains(g.Allowlist, f.VulnerabilityID) {
			continue
		}
		if g.CVSSThreshold > 0 && f.CVSS > 0 && f.CVSS < g.CVSSThreshold {
			continue
		}
		if g.FixAvailableOnly && f.FixedVersion == "" {
			continue
		}
		res.Counts[f.Severity]++
		counted[f.Severity] = append(counted[f.Severity], f)
	}
	for _, sev := range slices.Backward(Severities) {
		limit, ok := g.FailOn[sev]
		if !ok || res.Counts[sev] <= limit {
			continue
		}
		res.Passed = false
		res.Violations = append(res.Violations, fmt.Sprintf("%s: %d findings, at most %d allowed", sev, res.Counts[sev], limit))
		res.Blocking = append(res.Blocking, counted[sev]...)
	}
	return res
}

// EvaluateTargets applies the gate to each scanned image (each platform) on its own: a scan of
// several images, or of a multi-arch index, fails when any one of them fails, and the verdict names
// it. Counts and blocking findings are the union, for reports.
func (g Gate) EvaluateTargets(targets []Target) GateResult {
	res := GateResult{Gate: g, Passed: true, Counts: map[string]int{}, Violations: []string{}, Blocking: []Finding{}}
	for _, t := range targets {
		r := g.Evaluate(gateFindings(t))
		for sev, n := range r.Counts {
			res.Counts[sev] += n
		}
		if r.Passed {
			continue
		}
		res.Passed = false
		name := t.Reference
		if t.Platform != "" && len(targets) > 1 {
			name += " [" + t.Platform + "]"
		}
		for _, v := range r.Violations {
			res.Violations = append(res.Violations, name+": "+v)
		}
		res.Blocking = append(res.Blocking, r.Blocking...)
	}
	return res
}

// Err is the gate's verdict as an error: nil, or exitcode.ErrViolation naming what blocked.
func (r GateResult) Err() error {
	if r.Passed {
		return nil
	}
	ids := []string{}
	seen := map[string]bool{}
	for _, f := range r.Blocking {
		id := f.VulnerabilityID + " (" + f.PkgName + " " + f.InstalledVersion + ")"
		if !seen[id] && len(ids) < 10 {
			seen[id] = true
			ids = append(ids, id)
		}
	}
	return fmt.Errorf("scan gate failed: %s; blocking: %s: %w", strings.Join(r.Violations, "; "), strings.Join(ids, ", "), exitcode.ErrViolation)
}
