package main

import (
	"context"
	"encoding/json"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/aquasecurity/trivy/pkg/types"
	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/remote"

	"github.com/regctl-dev/regctl/internal/exitcode"
	"github.com/regctl-dev/regctl/internal/harbor/harbortest"
	"github.com/regctl-dev/regctl/internal/localreg/localregtest"
	"github.com/regctl-dev/regctl/internal/scan"
	"github.com/regctl-dev/regctl/internal/scan/scantest"
)

// TestHarborNativeScan: `scan --engine native` on Harbor triggers Harbor's scan, polls it, and
// reports through the same filter, gate and report as the trivy engine. Harbor's scanner here is
// the real trivy library (regctl's engine on the fixture DB) reading the emulator's data plane, as
// Harbor's trivy adapter does, so both engines must find the same vulnerabilities.
func TestHarborNativeScan(t *testing.T) {
	cache := t.TempDir()
	built := scantest.BuildDB(t, cache, fixedNow.Add(-time.Hour), fixedNow.Add(23*time.Hour))
	var s *harbortest.Server
	s = harbortest.Start(t, harbortest.Options{Scanner: func(ctx context.Context, repo, digest string) ([]harbortest.Vulnerability, error) {
		eng, err := scan.Open(built, nil)
		if err != nil {
			return nil, err
		}
		defer eng.Close()
		ref, err := name.ParseReference(s.Host + "/" + repo + "@" + digest)
		if err != nil {
			return nil, err
		}
		targets, err := eng.Scan(ctx, []remote.Option{remote.WithAuth(&authn.Basic{Username: s.Username, Password: s.Password})}, ref,
			scan.ScanOptions{Severities: []string{"CRITICAL", "HIGH", "MEDIUM", "LOW", "UNKNOWN"}, Now: fixedNow})
		if err != nil {
			return nil, err
		}
		var out []harbortest.Vulnerability
		for _, tg := range targets {
			for _, r := range tg.Report.Results {
				for _, v := range r.Vulnerabilities {
					hv := harbortest.Vulnerability{ID: v.VulnerabilityID, Package: v.PkgName, Version: v.InstalledVersion,
						FixVersion: v.FixedVersion, Severity: strings.ToUpper(v.Severity[:1]) + strings.ToLower(v.Severity[1:]), Description: v.Title}
					for _, c := range v.CVSS {
						hv.CVSS3 = max(hv.CVSS3, c.V3Score)
					}
					out = append(out, hv)
				}
			}
		}
		return out, nil
	}})
	dbHost := localregtest.Start(t).Host
	scantest.Push(t, dbHost+"/aquasec/trivy-db:2", scantest.DBArtifact(t, built))
	c := harborCLI(t, s, "admin", s.Password)
	c.ok("repo", "create", "harbor/game-server")
	scantest.Push(t, s.Host+"/game-server/app:vulnerable", scantest.VulnerableImage(t, scantest.ImageConfig{User: "root"}),
		remote.WithAuth(&authn.Basic{Username: s.Username, Password: s.Password}))

	// The trivy engine, client-side, for comparison.
	trivyArgs := []string{"scan", "harbor/game-server/app:vulnerable", "--cache-dir", filepath.Join(t.TempDir(), "c"), "--db-repository", dbHost + "/aquasec/trivy-db:2"}
	trivyOut := c.ok(append(trivyArgs, "--fail-on", "none", "--format", "json")...)

	out, errOut, code := c.run("scan", "harbor/game-server/app:vulnerable", "--engine", "native")
	if code != exitcode.Violation || !strings.Contains(errOut, "CRITICAL: 2 findings, at most 0 allowed") || !strings.Contains(out, "Total: 7 (CRITICAL: 2, HIGH: 4, MEDIUM: 1") {
		t.Fatalf("native scan: exit %d\n%s\n%s", code, out, errOut)
	}
	nativeOut := c.ok("scan", "harbor/game-server/app:vulnerable", "--engine", "native", "--fail-on", "none", "--format", "json")
	if ids(t, nativeOut) == nil || !slices.Equal(ids(t, nativeOut), ids(t, trivyOut)) {
		t.Errorf("native and trivy engines disagree:\nnative %v\ntrivy  %v", ids(t, nativeOut), ids(t, trivyOut))
	}
	// The guide's policy as the gate, as with trivy.
	_, errOut, code = c.run("scan", "harbor/game-server/app:vulnerable", "--engine", "native", "--gate-policy", testdataFile("scan/harbor-scan-policy.json"))
	if code != exitcode.Violation || !strings.Contains(errOut, "HIGH: 4 findings, at most 0 allowed") {
		t.Errorf("harbor gate: exit %d %s", code, errOut)
	}
	// A Harbor without a scanner is named, not a hang.
	s.Emulator().SetScanners()
	if _, errOut, code := c.run("scan", "harbor/game-server/app:vulnerable", "--engine", "native"); code != exitcode.Error || !strings.Contains(errOut, "no scanner") {
		t.Errorf("no scanner: exit %d %s", code, errOut)
	}
}

// ids are the sorted vulnerability IDs (with packages) of a trivy JSON report.
func ids(t *testing.T, out string) []string {
	t.Helper()
	var rep types.Report
	if err := json.Unmarshal([]byte(out), &rep); err != nil {
		t.Fatalf("%v:\n%s", err, out)
	}
	var got []string
	for _, r := range rep.Results {
		for _, v := range r.Vulnerabilities {
			got = append(got, v.VulnerabilityID+" "+v.PkgName+" "+v.InstalledVersion+" "+v.Severity)
		}
	}
	slices.Sort(got)
	return got
}
