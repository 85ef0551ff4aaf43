//lint:file-ignore SA1019 Severity is what trivy v0.74 itself reports and gates on (VendorSeverity is per source); findings parity with the trivy CLI needs it

package scan

import (
	"context"
	"encoding/json"
	"fmt"
	"html/template"
	"io"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/aquasecurity/trivy/pkg/report"
	"github.com/aquasecurity/trivy/pkg/types"

	"github.com/regctl-dev/regctl/internal/exitcode"
	"github.com/regctl-dev/regctl/internal/ui"
)

// Report formats.
const (
	FormatTable = "table"
	FormatJSON  = "json" // trivy's JSON report schema
	FormatSARIF = "sarif"
	FormatHTML  = "html"
)

// Formats lists the report formats.
var Formats = []string{FormatTable, FormatJSON, FormatSARIF, FormatHTML}

// Outcome is everything one `regctl scan` run found, for the writers.
type Outcome struct {
	Targets   []Target
	Findings  []Finding
	Gate      GateResult
	Denials   []Denial
	Expired   []ExpiredIgnore
	Version   string // regctl's version, for SARIF
	Generated time.Time
}

// Denial is one message of an image policy's deny rules.
type Denial struct {
	Reference string `json:"reference"`
	Platform  string `json:"platform,omitempty"`
	Message   string `json:"message"`
}

// Write writes the outcome in format. JSON is trivy's report schema: one image gives one report
// object (the platforms of a multi-arch image are its Results, their targets suffixed with the
// platform), several images an array of them, so `jq '.Results[].Vulnerabilities[]'` keeps working.
func Write(ctx context.Context, w io.Writer, format string, o *Outcome, tty, color bool) error {
	switch format {
	case FormatJSON:
		var refs []string
		byRef := map[string][]Target{}
		for _, t := range o.Targets {
			if _, ok := byRef[t.Reference]; !ok {
				refs = append(refs, t.Reference)
			}
			byRef[t.Reference] = append(byRef[t.Reference], t)
		}
		if len(refs) == 1 {
			return report.JSONWriter{Output: w}.Write(ctx, merged(byRef[refs[0]]))
		}
		reports := make([]types.Report, len(refs))
		for i, ref := range refs {
			reports[i] = merged(byRef[ref])
			for j := range reports[i].Results {
				reports[i].Results[j].Packages = nil // as trivy's writer does without --list-all-pkgs
			}
		}
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		return enc.Encode(reports)
	case FormatSARIF:
		return (&report.SarifWriter{Output: w, Version: o.Version}).Write(ctx, merged(o.Targets))
	case FormatHTML:
		return writeHTML(w, o)
	case FormatTable:
		return writeTable(w, o, tty, color)
	}
	return fmt.Errorf("report format %q: must be one of %s: %w", format, strings.Join(Formats, ", "), exitcode.ErrUsage)
}

// merged folds several targets into one report (one image's platforms; SARIF's one run); each
// result's target keeps its platform.
func merged(targets []Target) types.Report {
	if len(targets) == 1 {
		return targets[0].Report
	}
	out := targets[0].Report
	out.Results = nil
	for _, t := range targets {
		for _, r := range t.Report.Results {
			if t.Platform != "" {
				r.Target += " [" + t.Platform + "]"
			}
			out.Results = append(out.Results, r)
		}
	}
	return out
}

func writeTable(w io.Writer, o *Outcome, tty, color bool) error {
	for _, t := range o.Targets {
		counts := map[string]int{}
		for _, r := range t.Report.Results {
			for _, v := range r.Vulnerabilities {
				counts[v.Severity]++
			}
		}
		os := ""
		if t.Report.Metadata.OS != nil {
			os = " (" + string(t.Report.Metadata.OS.Family) + " " + t.Report.Metadata.OS.Name + ")"
			if t.Report.Metadata.OS.Eosl {
				os += " end of support"
			}
		}
		plat := ""
		if t.Platform != "" {
			plat = " " + t.Platform
		}
		parts := []string{}
		total := 0
		for _, s := range slices.Backward(Severities) {
			parts = append(parts, fmt.Sprintf("%s: %d", s, counts[s]))
			total += counts[s]
		}
		fmt.Fprintf(w, "%s%s %s%s\nTotal: %d (%s)\n", t.Reference, plat, shortHash(t.Digest), os, total, strings.Join(parts, ", "))
	}
	if len(o.Findings) > 0 {
		tbl := ui.Table{Headers: []string{"target", "vulnerability", "package", "installed", "fixed", "severity", "cvss", "title"}}
		for _, f := range o.Findings {
			target := f.Target
			if f.Platform != "" && len(o.Targets) > 1 {
				target += " [" + f.Platform + "]"
			}
			cvss := "-"
			if f.CVSS > 0 {
				cvss = strconv.FormatFloat(f.CVSS, 'f', 1, 64)
			}
			tbl.Rows = append(tbl.Rows, []string{target, f.VulnerabilityID, f.PkgName, f.InstalledVersion, f.FixedVersion, f.Severity, cvss, truncate(f.Title, 60)})
		}
		if err := tbl.Render(w, tty, color); err != nil {
			return err
		}
	}
	for _, e := range o.Expired {
		fmt.Fprintf(w, "ignore entry %s expired %s: it no longer hides findings\n", e.ID, e.ExpiredAt.Format("2006-01-02"))
	}
	for _, d := range o.Denials {
		fmt.Fprintf(w, "policy: %s: %s\n", d.Reference, d.Message)
	}
	verdict := "PASSED"
	if !o.Gate.Passed {
		verdict = "FAILED: " + strings.Join(o.Gate.Violations, "; ")
	}
	_, err := fmt.Fprintf(w, "gate (%s): %s\n", o.Gate.Gate.Source, verdict)
	return err
}

func shortHash(d string) string {
	if len(d) > 19 {
		return d[:19]
	}
	return d
}

func truncate(s string, n int) string {
	if len([]rune(s)) <= n {
		return s
	}
	return string([]rune(s)[:n-1]) + "…"
}

var htmlTemplate = template.Must(template.New("report").Funcs(template.FuncMap{
	"lower": strings.ToLower,
	"date":  func(t time.Time) string { return t.UTC().Format("2006-01-02 15:04 UTC") },
}).Parse(`<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>regctl scan report</title>
<style>
body{font-family:system-ui,sans-serif;margin:2rem;color:#222}
table{border-collapse:collapse;width:100%;margin:1rem 0}th,td{border:1px solid #ccc;padding:.3rem .5rem;text-align:left;font-size:.9rem}
th{background:#f3f3f3}.critical{background:#c62828;color:#fff}.high{background:#ef6c00;color:#fff}
.medium{background:#f9a825}.low{background:#9ccc65}.unknown{background:#bdbdbd}
.passed{color:#2e7d32}.failed{color:#c62828}
</style></head><body>
<h1>Vulnerability scan</h1>
<p>Generated {{date .Generated}} by regctl {{.Version}}.</p>
{{range .Targets}}<h2>{{.Reference}} {{.Platform}}</h2><p>Digest <code>{{.Digest}}</code>{{with .Report.Metadata.OS}} — {{.Family}} {{.Name}}{{end}}</p>{{end}}
<h2>Gate: <span class="{{if .Gate.Passed}}passed{{else}}failed{{end}}">{{if .Gate.Passed}}passed{{else}}failed{{end}}</span></h2>
<p>{{.Gate.Gate.Source}}</p>{{range .Gate.Violations}}<p class="failed">{{.}}</p>{{end}}
{{if .Denials}}<h2>Image policy</h2><ul>{{range .Denials}}<li>{{.Reference}}: {{.Message}}</li>{{end}}</ul>{{end}}
{{if .Expired}}<h2>Expired ignore entries</h2><ul>{{range .Expired}}<li>{{.ID}} expired {{date .ExpiredAt}}</li>{{end}}</ul>{{end}}
<h2>Findings ({{len .Findings}})</h2>
<table><tr><th>Target</th><th>Vulnerability</th><th>Package</th><th>Installed</th><th>Fixed</th><th>Severity</th><th>CVSS</th><th>Title</th></tr>
{{range .Findings}}<tr><td>{{.Target}} {{.Platform}}</td><td>{{.VulnerabilityID}}</td><td>{{.PkgName}}</td><td>{{.InstalledVersion}}</td><td>{{.FixedVersion}}</td><td class="{{lower .Severity}}">{{.Severity}}</td><td>{{if .CVSS}}{{printf "%.1f" .CVSS}}{{end}}</td><td>{{.Title}}</td></tr>
{{end}}</table></body></html>
`))

func writeHTML(w io.Writer, o *Outcome) error {
	return htmlTemplate.Execute(w, o)
}
