package main

import (
	"encoding/json"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aquasecurity/trivy/pkg/types"

	"github.com/regctl-dev/regctl/internal/exitcode"
	"github.com/regctl-dev/regctl/internal/localreg/localregtest"
	"github.com/regctl-dev/regctl/internal/scan/scantest"
)

func TestScanThroughTheCLI(t *testing.T) { forEachScanner(t, testScanThroughTheCLI) }

func testScanThroughTheCLI(t *testing.T, newCLI func(*testing.T, ...string) *cli) {
	host := localregtest.Start(t).Host
	built := scantest.BuildDB(t, t.TempDir(), fixedNow.Add(-time.Hour), fixedNow.Add(23*time.Hour))
	scantest.Push(t, host+"/aquasec/trivy-db:2", scantest.DBArtifact(t, built))
	scantest.Push(t, host+"/app:vulnerable", scantest.VulnerableImage(t, scantest.ImageConfig{User: "root"}))
	scantest.Push(t, host+"/app:clean", scantest.CleanImage(t, scantest.ImageConfig{User: "app", ExposedPorts: []string{"8080/tcp"},
		Labels: map[string]string{"maintainer": "m", "version": "1", "description": "d"}}))
	c := newCLI(t)
	cache := filepath.Join(t.TempDir(), "cache")
	db := []string{"--cache-dir", cache, "--db-repository", host + "/aquasec/trivy-db:2"}
	scanArgs := func(extra ...string) []string { return append(append([]string{"scan"}, extra...), db...) }

	// Default gate (security-scan.sh): 2 CRITICAL > 0 -> exit 3, naming the findings.
	out, errOut, code := c.run(scanArgs(host + "/app:vulnerable")...)
	if code != exitcode.Violation || !strings.Contains(errOut, "app:vulnerable: CRITICAL: 2 findings, at most 0 allowed") ||
		!strings.Contains(errOut, "CVE-2024-5535 (libcrypto3 3.3.0-r2)") {
		t.Fatalf("default gate: exit %d\n%s\n%s", code, out, errOut)
	}
	if !strings.Contains(out, "Total: 7 (CRITICAL: 2, HIGH: 4, MEDIUM: 1") {
		t.Errorf("table:\n%s", out)
	}
	// Report only, JSON in trivy's schema on stdout, plus files.
	reports := t.TempDir()
	out = c.ok(scanArgs(host+"/app:vulnerable", "--fail-on", "none", "--format", "json",
		"--report", "html="+filepath.Join(reports, "scan.html"), "--report", "sarif="+filepath.Join(reports, "scan.sarif"))...)
	var rep types.Report
	if err := json.Unmarshal([]byte(out), &rep); err != nil || len(rep.Results) != 2 {
		t.Fatalf("json on stdout: %v\n%s", err, out)
	}
	for _, f := range []string{"scan.html", "scan.sarif"} {
		if b, err := os.ReadFile(filepath.Join(reports, f)); err != nil || !strings.Contains(string(b), "CVE-2021-23337") {
			t.Errorf("%s: %v", f, err)
		}
	}
	// -o json means --format json; a clean image passes.
	out = c.ok(scanArgs(host+"/app:clean", "-o", "json", "--skip-db-update")...)
	if !strings.Contains(out, `"SchemaVersion": 2`) {
		t.Errorf("-o json:\n%s", out)
	}
	// The guide's Harbor policy as the gate, and its Rego image policy.
	_, errOut, code = c.run(scanArgs(host+"/app:vulnerable", "--gate-policy", testdataFile("scan/harbor-scan-policy.json"))...)
	if code != exitcode.Violation || !strings.Contains(errOut, "HIGH: 4 findings, at most 0 allowed") {
		t.Errorf("harbor gate: exit %d %s", code, errOut)
	}
	c.ok(scanArgs(host+"/app:clean", "--policy", testdataFile("scan/image-policy.rego"))...)
	_, errOut, code = c.run(scanArgs(host+"/app:vulnerable", "--fail-on", "none", "--policy", testdataFile("scan/image-policy.rego"))...)
	if code != exitcode.Violation || !strings.Contains(errOut, "Container must not run as root user") {
		t.Errorf("policy denial: exit %d %s", code, errOut)
	}
	// An expired ignore entry is reported on stderr and no longer hides its finding.
	ign := filepath.Join(t.TempDir(), ".trivyignore.yaml")
	os.WriteFile(ign, []byte("vulnerabilities:\n  - id: CVE-2024-5535\n    expired_at: 2026-01-01\n"), 0o644)
	_, errOut, code = c.run(scanArgs(host+"/app:vulnerable", "--ignorefile", ign)...)
	if code != exitcode.Violation || !strings.Contains(errOut, "ignore entry CVE-2024-5535") {
		t.Errorf("expired ignore: exit %d %s", code, errOut)
	}

	cases := []struct {
		name string
		argv []string
		code int
		want string
	}{
		{"no DB and no downloads", []string{"scan", host + "/app:clean", "--cache-dir", t.TempDir(), "--skip-db-update"}, exitcode.NotFound, "regctl scan db mirror"},
		{"native engine", scanArgs(host+"/app:clean", "--engine", "native"), exitcode.Usage, "native"},
		{"bad fail-on", scanArgs(host+"/app:clean", "--fail-on", "SEVERE=1"), exitcode.Usage, "--fail-on"},
		{"bad report", scanArgs(host+"/app:clean", "--report", "pdf=x.pdf"), exitcode.Usage, "--report"},
		{"missing image", scanArgs(host + "/app:nope"), exitcode.NotFound, "app:nope"},
	}
	for _, tc := range cases {
		_, errOut, code := c.run(tc.argv...)
		if code != tc.code || !strings.Contains(errOut, tc.want) {
			t.Errorf("%s: exit %d, want %d; %s", tc.name, code, tc.code, errOut)
		}
	}

	// Mirror the DB for an air-gapped site, then scan from the mirror.
	c.ok("scan", "db", "mirror", "--from", host+"/aquasec/trivy-db:2", "--to", host+"/airgap/trivy-db:2")
	c.ok("scan", host+"/app:clean", "--cache-dir", t.TempDir(), "--db-repository", host+"/airgap/trivy-db:2")
	if out := c.ok("scan", "db", "status", "--cache-dir", cache, "-o", "json"); !strings.Contains(out, `"present": true`) {
		t.Errorf("db status:\n%s", out)
	}
}

// The gate never fails open: a narrower --severity for the report leaves the gate's thresholds
// whole, and a Rego policy whose base-image lookup fails is an error, not a pass.
func TestScanGateNeverFailsOpen(t *testing.T) { forEachScanner(t, testScanGateNeverFailsOpen) }

func testScanGateNeverFailsOpen(t *testing.T, newCLI func(*testing.T, ...string) *cli) {
	var tagGets atomic.Int64
	srv := localregtest.Start(t, localregtest.Options{Wrap: func(h http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			// The second read of app:clean by tag is the policy's annotation lookup: refuse it.
			if r.Method == http.MethodGet && r.URL.Path == "/v2/app/manifests/clean" && tagGets.Add(1) == 2 {
				http.Error(w, `{"errors":[{"code":"UNSUPPORTED","message":"injected"}]}`, http.StatusBadRequest)
				return
			}
			h.ServeHTTP(w, r)
		})
	}})
	host := srv.Host
	built := scantest.BuildDB(t, t.TempDir(), fixedNow.Add(-time.Hour), fixedNow.Add(23*time.Hour))
	scantest.Push(t, host+"/aquasec/trivy-db:2", scantest.DBArtifact(t, built))
	scantest.Push(t, host+"/app:vulnerable", scantest.VulnerableImage(t, scantest.ImageConfig{User: "root"}))
	scantest.Push(t, host+"/app:clean", scantest.CleanImage(t, scantest.ImageConfig{User: "app", ExposedPorts: []string{"8080/tcp"},
		Labels: map[string]string{"maintainer": "m", "version": "1", "description": "d"}}))
	c := newCLI(t)
	db := []string{"--cache-dir", filepath.Join(t.TempDir(), "cache"), "--db-repository", host + "/aquasec/trivy-db:2"}

	// --severity CRITICAL shows 2 findings; the gate HIGH=0 still sees the 4 HIGHs.
	out, errOut, code := c.run(append([]string{"scan", host + "/app:vulnerable", "--severity", "CRITICAL", "--fail-on", "HIGH=0"}, db...)...)
	if code != exitcode.Violation || !strings.Contains(errOut, "HIGH: 4 findings, at most 0 allowed") {
		t.Fatalf("--severity CRITICAL with a HIGH gate: exit %d\n%s\n%s", code, out, errOut)
	}
	if strings.Contains(out, "CVE-2024-6119") || !strings.Contains(out, "Total: 2 (CRITICAL: 2") {
		t.Errorf("the report shows only what --severity asks for:\n%s", out)
	}
	// The default gate with --severity LOW: the CRITICALs still block.
	if _, errOut, code := c.run(append([]string{"scan", host + "/app:vulnerable", "--severity", "LOW"}, db...)...); code != exitcode.Violation || !strings.Contains(errOut, "CRITICAL: 2 findings") {
		t.Errorf("default gate behind --severity LOW: exit %d %s", code, errOut)
	}
	// The annotation lookup fails: exit 1 naming it, not a pass of the base-image rule.
	_, errOut, code = c.run(append([]string{"scan", host + "/app:clean", "--policy", testdataFile("scan/image-policy.rego"), "--skip-db-update"}, db[:2]...)...)
	if code != exitcode.Error || !strings.Contains(errOut, "reading the annotations") || tagGets.Load() < 2 {
		t.Errorf("failed annotation lookup: exit %d (tag reads %d) %s", code, tagGets.Load(), errOut)
	}
}
