//lint:file-ignore SA1019 Severity is what trivy v0.74 itself reports and gates on (VendorSeverity is per source); findings parity with the trivy CLI needs it

package scan_test

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/aquasecurity/trivy/pkg/types"
	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	ggcrtypes "github.com/google/go-containerregistry/pkg/v1/types"

	"github.com/regctl-dev/regctl/internal/exitcode"
	"github.com/regctl-dev/regctl/internal/localreg/localregtest"
	"github.com/regctl-dev/regctl/internal/scan"
	"github.com/regctl-dev/regctl/internal/scan/scantest"
)

var now = time.Date(2026, 6, 30, 12, 0, 0, 0, time.UTC)

type fixture struct {
	srv      *localregtest.Server
	host     string
	dbRef    name.Reference
	cacheDir string
}

// newFixture starts a registry holding the fixture DB artifact and the test images; the cache dir
// starts empty, so the DB is pulled from the registry like an air-gapped mirror.
func newFixture(t *testing.T) *fixture {
	t.Helper()
	srv := localregtest.Start(t)
	fx := &fixture{srv: srv, host: srv.Host, cacheDir: filepath.Join(t.TempDir(), "cache")}
	built := scantest.BuildDB(t, t.TempDir(), now.Add(-6*time.Hour), now.Add(18*time.Hour))
	fx.dbRef = scantest.Push(t, fx.host+"/aquasec/trivy-db:2", scantest.DBArtifact(t, built))
	scantest.Push(t, fx.host+"/app:vulnerable", scantest.VulnerableImage(t, scantest.ImageConfig{Created: now}))
	scantest.Push(t, fx.host+"/app:clean", scantest.CleanImage(t, scantest.ImageConfig{Created: now}))
	return fx
}

func (fx *fixture) ensureDB(t *testing.T) scan.DBStatus {
	t.Helper()
	st, err := scan.EnsureDB(context.Background(), scan.DBOptions{CacheDir: fx.cacheDir, Repository: fx.dbRef, Now: now})
	if err != nil {
		t.Fatal(err)
	}
	return st
}

func (fx *fixture) scan(t *testing.T, image string, o scan.ScanOptions) []scan.Target {
	t.Helper()
	st := fx.ensureDB(t)
	e, err := scan.Open(st.Dir, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer e.Close()
	if o.Now.IsZero() {
		o.Now = now
	}
	ref, _ := name.ParseReference(fx.host + "/" + image)
	targets, err := e.Scan(context.Background(), nil, ref, o)
	if err != nil {
		t.Fatal(err)
	}
	return targets
}

func ids(findings []scan.Finding) []string {
	var out []string
	for _, f := range findings {
		out = append(out, f.VulnerabilityID+" "+f.PkgName+" "+f.InstalledVersion+"->"+f.FixedVersion+" "+f.Severity)
	}
	sort.Strings(out)
	return out
}

func TestScanFindsExactlyTheKnownVulnerabilities(t *testing.T) {
	fx := newFixture(t)
	targets := fx.scan(t, "app:vulnerable", scan.ScanOptions{})
	if len(targets) != 1 || targets[0].Platform != "linux/amd64" {
		t.Fatalf("targets: %+v", targets)
	}
	want := []string{
		"CVE-2021-23337 lodash 4.17.20->4.17.21 HIGH",
		"CVE-2024-5535 libcrypto3 3.3.0-r2->3.3.1-r1 CRITICAL",
		"CVE-2024-5535 libssl3 3.3.0-r2->3.3.1-r1 CRITICAL",
		"CVE-2024-6119 libcrypto3 3.3.0-r2->3.3.2-r0 HIGH",
		"CVE-2024-6119 libssl3 3.3.0-r2->3.3.2-r0 HIGH",
		"CVE-2025-26519 musl 1.2.5-r0->1.2.5-r1 HIGH",
		"CVE-2099-0001 minimist 1.2.5-> MEDIUM",
	}
	got := ids(scan.Findings(targets))
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("findings:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	if os := targets[0].Report.Metadata.OS; os == nil || os.Family != "alpine" || os.Name != "3.20.0" {
		t.Errorf("OS: %+v", os)
	}

	low := ids(scan.Findings(fx.scan(t, "app:vulnerable", scan.ScanOptions{Severities: []string{"LOW"}})))
	if strings.Join(low, ",") != "CVE-2099-0002 zlib 1.3.1-r0->1.3.1-r1 LOW" {
		t.Errorf("--severity LOW: %v", low)
	}
	fixed := ids(scan.Findings(fx.scan(t, "app:vulnerable", scan.ScanOptions{IgnoreUnfixed: true})))
	if len(fixed) != 6 || strings.Contains(strings.Join(fixed, ","), "minimist") {
		t.Errorf("--ignore-unfixed: %v", fixed)
	}
	if clean := scan.Findings(fx.scan(t, "app:clean", scan.ScanOptions{})); len(clean) != 0 {
		t.Errorf("clean image: %v", ids(clean))
	}
}

func TestGate(t *testing.T) {
	fx := newFixture(t)
	findings := scan.Findings(fx.scan(t, "app:vulnerable", scan.ScanOptions{}))

	def := scan.DefaultGate().Evaluate(findings)
	if def.Passed || def.Counts["CRITICAL"] != 2 || def.Counts["HIGH"] != 4 || len(def.Violations) != 1 ||
		def.Violations[0] != "CRITICAL: 2 findings, at most 0 allowed" || len(def.Blocking) != 2 {
		t.Errorf("default gate: %+v", def)
	}
	if err := def.Err(); exitcode.Of(err) != exitcode.Violation || !strings.Contains(err.Error(), "CVE-2024-5535 (libcrypto3 3.3.0-r2)") {
		t.Errorf("gate error names the findings: %v", err)
	}
	none, _ := scan.ParseFailOn("none")
	if r := (scan.Gate{FailOn: none}).Evaluate(findings); !r.Passed || r.Err() != nil {
		t.Errorf("--fail-on none must only report: %+v", r)
	}
	highOnly, _ := scan.ParseFailOn("HIGH=3")
	if r := (scan.Gate{FailOn: highOnly}).Evaluate(findings); r.Passed || r.Violations[0] != "HIGH: 4 findings, at most 3 allowed" {
		t.Errorf("HIGH=3: %+v", r)
	}
	// CVSS 8.0: CRITICAL 9.1 counts, HIGH 7.5 and 7.2 do not, musl 8.1 does.
	r := (scan.Gate{FailOn: map[string]int{"HIGH": 0}, CVSSThreshold: 8.0}).Evaluate(findings)
	if r.Counts["HIGH"] != 1 || r.Counts["CRITICAL"] != 2 || r.Passed {
		t.Errorf("cvss threshold: %+v", r.Counts)
	}
	for _, bad := range []string{"CRITICAL", "SEVERE=1", "HIGH=-1", "HIGH=x"} {
		if _, err := scan.ParseFailOn(bad); exitcode.Of(err) != exitcode.Usage {
			t.Errorf("--fail-on %q: %v", bad, err)
		}
	}

	// The guide's Harbor policy: critical+high with CVSS >= 7.0 and a fix block.
	data, _ := os.ReadFile("../../testdata/scan/harbor-scan-policy.json")
	hg, err := scan.ParseHarborPolicy(data, "harbor-scan-policy.json")
	if err != nil {
		t.Fatal(err)
	}
	hr := hg.Evaluate(findings)
	if hr.Passed || hr.Counts["CRITICAL"] != 2 || hr.Counts["HIGH"] != 4 || hr.Counts["MEDIUM"] != 0 {
		t.Errorf("harbor gate: %+v", hr)
	}
	if len(hg.Allowlist) != 1 || hg.Allowlist[0] != "CVE-2021-12345" || !hg.FixAvailableOnly || hg.CVSSThreshold != 7.0 {
		t.Errorf("harbor gate fields: %+v", hg)
	}
	allow := hg
	allow.Allowlist = []string{"CVE-2024-5535", "CVE-2024-6119", "CVE-2025-26519", "CVE-2021-23337"}
	if r := allow.Evaluate(findings); !r.Passed {
		t.Errorf("everything allow-listed must pass: %+v", r)
	}
	for _, bad := range []string{`{"rule":{"vulnerabilities":{"severity":["critcal"]}}}`, `{"rule":{}}`, `{"rule":{"vulnerabilities":{"severity":["high"]}},"extra":1}`, `[`} {
		if _, err := scan.ParseHarborPolicy([]byte(bad), "p.json"); exitcode.Of(err) != exitcode.Usage {
			t.Errorf("%s: %v", bad, err)
		}
	}
}

func TestIgnoreFiles(t *testing.T) {
	fx := newFixture(t)
	dir := t.TempDir()
	plain := filepath.Join(dir, ".trivyignore")
	os.WriteFile(plain, []byte("# accepted risk\nCVE-2024-5535\n"), 0o644)
	got := ids(scan.Findings(fx.scan(t, "app:vulnerable", scan.ScanOptions{IgnoreFile: plain})))
	if len(got) != 5 || strings.Contains(strings.Join(got, ","), "CVE-2024-5535") {
		t.Errorf(".trivyignore: %v", got)
	}
	yml := filepath.Join(dir, ".trivyignore.yaml")
	os.WriteFile(yml, []byte(`vulnerabilities:
  - id: CVE-2024-6119
    statement: fixed upstream next sprint
    expired_at: 2026-01-01
  - id: CVE-2025-26519
    expired_at: 2027-01-01
`), 0o644)
	got = ids(scan.Findings(fx.scan(t, "app:vulnerable", scan.ScanOptions{IgnoreFile: yml})))
	joined := strings.Join(got, ",")
	if !strings.Contains(joined, "CVE-2024-6119") || strings.Contains(joined, "CVE-2025-26519") {
		t.Errorf("yaml ignore with expiry: %v", got)
	}
	expired, err := scan.CheckIgnoreFile(context.Background(), yml, now)
	if err != nil || len(expired) != 1 || expired[0].ID != "CVE-2024-6119" {
		t.Errorf("expired entries: %+v %v", expired, err)
	}
	bad := filepath.Join(dir, "bad.yaml")
	os.WriteFile(bad, []byte("vulnerabilities: [{id: [1,2]}]"), 0o644)
	if _, err := scan.CheckIgnoreFile(context.Background(), bad, now); exitcode.Of(err) != exitcode.Usage {
		t.Errorf("malformed ignore file: %v", err)
	}
}

func TestReportsParseBack(t *testing.T) {
	fx := newFixture(t)
	targets := fx.scan(t, "app:vulnerable", scan.ScanOptions{})
	o := &scan.Outcome{Targets: targets, Findings: scan.Findings(targets), Version: "test", Generated: now}
	o.Gate = scan.DefaultGate().Evaluate(o.Findings)
	ctx := context.Background()

	var buf bytes.Buffer
	if err := scan.Write(ctx, &buf, scan.FormatJSON, o, false, false); err != nil {
		t.Fatal(err)
	}
	var rep types.Report
	if err := json.Unmarshal(buf.Bytes(), &rep); err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, r := range rep.Results {
		for _, v := range r.Vulnerabilities {
			n++
			if v.VulnerabilityID == "" || v.PkgName == "" || v.InstalledVersion == "" || v.Severity == "" {
				t.Errorf("incomplete vulnerability: %+v", v)
			}
		}
	}
	if n != 7 || rep.SchemaVersion != 2 || !strings.HasSuffix(rep.ArtifactName, "/app:vulnerable") {
		t.Errorf("json report: %d vulns, schema %d, artifact %s", n, rep.SchemaVersion, rep.ArtifactName)
	}
	// Two images: an array of reports.
	other := targets[0]
	other.Reference = "other/app:1"
	two := &scan.Outcome{Targets: append(append([]scan.Target{}, targets...), other), Findings: o.Findings, Gate: o.Gate}
	buf.Reset()
	scan.Write(ctx, &buf, scan.FormatJSON, two, false, false)
	var reps []types.Report
	if err := json.Unmarshal(buf.Bytes(), &reps); err != nil || len(reps) != 2 {
		t.Errorf("several targets must give an array: %v", err)
	}

	buf.Reset()
	if err := scan.Write(ctx, &buf, scan.FormatSARIF, o, false, false); err != nil {
		t.Fatal(err)
	}
	var sarif struct {
		Version string `json:"version"`
		Runs    []struct {
			Results []struct {
				RuleID string `json:"ruleId"`
			} `json:"results"`
		} `json:"runs"`
	}
	if err := json.Unmarshal(buf.Bytes(), &sarif); err != nil || sarif.Version != "2.1.0" || len(sarif.Runs) != 1 || len(sarif.Runs[0].Results) != 7 {
		t.Errorf("sarif: %v %+v", err, sarif)
	}

	buf.Reset()
	if err := scan.Write(ctx, &buf, scan.FormatHTML, o, false, false); err != nil {
		t.Fatal(err)
	}
	html := buf.String()
	if !strings.HasPrefix(html, "<!DOCTYPE html>") || strings.Count(html, "<tr><td>") != 7 || !strings.Contains(html, "CVE-2021-23337") || !strings.Contains(html, `class="failed"`) {
		t.Errorf("html report:\n%s", html)
	}

	buf.Reset()
	scan.Write(ctx, &buf, scan.FormatTable, o, false, false)
	table := buf.String()
	if !strings.Contains(table, "Total: 7 (CRITICAL: 2, HIGH: 4, MEDIUM: 1, LOW: 0, UNKNOWN: 0)") || !strings.Contains(table, "gate (default (security-scan.sh)): FAILED: CRITICAL: 2 findings") {
		t.Errorf("table:\n%s", table)
	}
}

func TestMultiPlatformIndex(t *testing.T) {
	fx := newFixture(t)
	vuln := scantest.VulnerableImage(t, scantest.ImageConfig{Created: now})
	clean := scantest.CleanImage(t, scantest.ImageConfig{Created: now})
	cf, _ := clean.ConfigFile()
	cf = cf.DeepCopy()
	cf.Architecture = "arm64"
	clean, _ = mutate.ConfigFile(clean, cf)
	idx := mutate.AppendManifests(mutate.IndexMediaType(empty.Index, ggcrtypes.OCIImageIndex),
		mutate.IndexAddendum{Add: vuln, Descriptor: v1.Descriptor{Platform: &v1.Platform{OS: "linux", Architecture: "amd64"}}},
		mutate.IndexAddendum{Add: clean, Descriptor: v1.Descriptor{Platform: &v1.Platform{OS: "linux", Architecture: "arm64"}}})
	ref, _ := name.ParseReference(fx.host + "/app:multi")
	if err := remote.WriteIndex(ref, idx); err != nil {
		t.Fatal(err)
	}
	targets := fx.scan(t, "app:multi", scan.ScanOptions{})
	if len(targets) != 2 || targets[0].Platform != "linux/amd64" || targets[1].Platform != "linux/arm64" {
		t.Fatalf("targets: %+v", targets)
	}
	if n := len(scan.Findings(targets[:1])); n != 7 {
		t.Errorf("amd64 findings: %d", n)
	}
	if n := len(scan.Findings(targets[1:])); n != 0 {
		t.Errorf("arm64 findings: %d", n)
	}
	// One multi-arch image is one JSON report whose results name their platform.
	var buf bytes.Buffer
	if err := scan.Write(context.Background(), &buf, scan.FormatJSON, &scan.Outcome{Targets: targets}, false, false); err != nil {
		t.Fatal(err)
	}
	var rep types.Report
	if err := json.Unmarshal(buf.Bytes(), &rep); err != nil {
		t.Fatalf("a multi-arch image must give one report object: %v", err)
	}
	if len(rep.Results) < 2 || !strings.Contains(rep.Results[0].Target, "[linux/amd64]") {
		t.Errorf("results: %d, first target %q", len(rep.Results), rep.Results[0].Target)
	}
	only := fx.scan(t, "app:multi", scan.ScanOptions{Platform: "linux/arm64"})
	if len(only) != 1 || only[0].Platform != "linux/arm64" {
		t.Errorf("--platform: %+v", only)
	}
}

// Each image passes or fails on its own: two images with 4 HIGH each pass HIGH=5 although together
// they have 8.
func TestGatePerTarget(t *testing.T) {
	fx := newFixture(t)
	one := fx.scan(t, "app:vulnerable", scan.ScanOptions{})
	two := append(append([]scan.Target{}, one...), one...)
	two[1].Reference = "other/app:1"
	g := scan.Gate{FailOn: map[string]int{"HIGH": 5}}
	if r := g.EvaluateTargets(two); !r.Passed || r.Counts["HIGH"] != 8 {
		t.Errorf("per-target gate: %+v", r)
	}
	g.FailOn["HIGH"] = 3
	r := g.EvaluateTargets(two)
	if r.Passed || len(r.Violations) != 2 || !strings.HasPrefix(r.Violations[1], "other/app:1 [linux/amd64]: HIGH: 4 findings") {
		t.Errorf("violations must name the image: %+v", r.Violations)
	}
}

// A report narrowed with --severity must not narrow the gate: with --severity CRITICAL the report
// shows the 2 CRITICALs only, yet a gate on HIGH still counts the 4 HIGHs.
func TestReportSeverityNeverHidesFindingsFromTheGate(t *testing.T) {
	fx := newFixture(t)
	targets := fx.scan(t, "app:vulnerable", scan.ScanOptions{Severities: []string{"CRITICAL"}})
	shown := scan.Findings(targets)
	for _, f := range shown {
		if f.Severity != "CRITICAL" {
			t.Fatalf("the report shows %s with --severity CRITICAL", f.Severity)
		}
	}
	if len(shown) != 2 {
		t.Fatalf("report: %v", ids(shown))
	}
	highOnly, _ := scan.ParseFailOn("HIGH=0")
	r := (scan.Gate{FailOn: highOnly}).EvaluateTargets(targets)
	if r.Passed || r.Counts["HIGH"] != 4 || len(r.Blocking) != 4 {
		t.Fatalf("the gate must see the HIGHs the report hides: %+v", r)
	}
	// The default gate (CRITICAL=0, HIGH=5) with a LOW-only report still fails on the CRITICALs.
	low := fx.scan(t, "app:vulnerable", scan.ScanOptions{Severities: []string{"LOW"}})
	if d := scan.DefaultGate().EvaluateTargets(low); d.Passed || d.Counts["CRITICAL"] != 2 {
		t.Fatalf("default gate behind --severity LOW: %+v", d)
	}
	// The ignore file and --ignore-unfixed still apply to the gate: they are decisions, not views.
	fixedOnly := fx.scan(t, "app:vulnerable", scan.ScanOptions{Severities: []string{"CRITICAL"}, IgnoreUnfixed: true})
	if m := (scan.Gate{FailOn: map[string]int{"MEDIUM": 0}}).EvaluateTargets(fixedOnly); !m.Passed || m.Counts["MEDIUM"] != 0 {
		t.Fatalf("--ignore-unfixed hides the unfixed MEDIUM from the gate too: %+v", m)
	}
}
