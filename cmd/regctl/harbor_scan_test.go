//lint:file-ignore SA1019 Severity is what trivy v0.74 reports and regctl gates on (as internal/scan/native.go)

package main

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
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
	"github.com/regctl-dev/regctl/internal/registry"
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

// TestHarborBackupKeepsSettings: a backup of a Harbor keeps what the guide's pg_dump was for —
// project metadata, the CVE allowlist, robot permissions (never a secret) — and a restore onto
// another Harbor recreates them; a second restore has nothing to change.
func TestHarborBackupKeepsSettings(t *testing.T) {
	a, b, dr := harbortest.Start(t), harbortest.Start(t), harbortest.Start(t)
	c := newCLI(t, "HARBOR_A="+a.Password, "HARBOR_B="+b.Password, "HARBOR_DR="+dr.Password)
	cfg := "default_registry: a\nregistries:\n" +
		"  a:\n    type: harbor\n    url: " + a.URL + "\n    username: admin\n    password_env: HARBOR_A\n" +
		"  b:\n    type: harbor\n    url: " + b.URL + "\n    username: admin\n    password_env: HARBOR_B\n" +
		"  dr:\n    type: harbor\n    url: " + dr.URL + "\n    username: admin\n    password_env: HARBOR_DR\n"
	if err := os.WriteFile(filepath.Join(c.workDir, "regctl.yaml"), []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	c.ok("repo", "create", "a/game-server", "--public=false", "--scan-on-push", "--prevent-vulnerable", "--severity", "high",
		"--scan-policy", testdataFile("scan/harbor-scan-policy.json"))
	var created struct{ Secret string }
	json.Unmarshal([]byte(c.ok("harbor", "robot", "create", "a", "--project", "game-server", "--name", "ci", "--push", "--pull", "-o", "json")), &created)
	c.ok("registry", "seed", "a/game-server/api")
	keepTen := strings.Replace(keepTwoVReleases, `"countNumber":2`, `"countNumber":10`, 1)
	c.ok("lifecycle", "apply", "-f", writePolicy(t, keepTen), "a/game-server", "--native", "--yes")
	syncToDR := []string{"--dest-registry", "dr", "--dest-namespace", "game-server", "--repos", "game-server/**", "--trigger-type", "scheduled", "--cron", "0 2 * * *"}
	c.ok(append([]string{"replication", "put", "a", "--name", "Sync to DR"}, syncToDR...)...)
	c.ok("replication", "put", "a", "--name", "other project", "--dest-registry", "dr", "--repos", "tools/**") // selects no repository backed up

	dest := filepath.Join(t.TempDir(), "backup")
	c.ok("backup", "a", "--to", dest)
	err := filepath.WalkDir(dest, func(p string, d os.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		raw, _ := os.ReadFile(p)
		if created.Secret == "" || strings.Contains(string(raw), created.Secret) || strings.Contains(string(raw), a.Password) || strings.Contains(string(raw), dr.Password) {
			t.Errorf("%s holds a secret", p)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}

	out, errOut, code := c.run("restore", "--from", dest, "--to", "b", "-o", "json")
	if code != 0 {
		t.Fatalf("restore: exit %d %s\n%s", code, errOut, out)
	}
	settings := restoredSettings(t, out)
	if settings["harbor.project"] != "applied" && settings["harbor.project"] != "unchanged" || settings["harbor.robots"] != "applied" || settings["harbor.retention"] != "applied" {
		t.Errorf("restore settings %v\n%s", settings, out)
	}
	// b has no endpoint dr, and the backup no secret to create it with: named, not applied.
	if settings["harbor.replication"] != "not-applied" || !strings.Contains(errOut, "replication put --dest-registry") || !strings.Contains(errOut, `"Sync to DR"`) {
		t.Errorf("replication restored without its endpoint: %v\n%s", settings, errOut)
	}
	pa, pb := projectOf(t, c, "a"), projectOf(t, c, "b")
	if pa["harbor.replication"] == "" || pb["harbor.replication"] != "" {
		t.Errorf("replication policies before the endpoint is there: a %q, b %q", pa["harbor.replication"], pb["harbor.replication"])
	}
	delete(pa, "harbor.replication") // compared once b has the endpoint, below
	if !reflect.DeepEqual(pa, pb) {
		t.Errorf("project settings differ after the restore:\na %v\nb %v", pa, pb)
	}
	if login := "robot$game-server+ci"; !strings.Contains(out, "refresh") {
		t.Errorf("the restore does not say %s needs a new secret:\n%s", login, out)
	}
	// Once b has the endpoint (here through another policy), the restore stores Sync to DR.
	c.ok("replication", "put", "b", "--name", "bootstrap", "--dest-registry", "dr")
	if s := restoredSettings(t, c.ok("restore", "--from", dest, "--to", "b", "-o", "json")); s["harbor.replication"] != "applied" {
		t.Errorf("restore with the endpoint there: %v", s)
	}
	policies := func(reg string) string {
		var pols []map[string]any
		if err := json.Unmarshal([]byte(c.ok("replication", "get", reg, "-o", "json")), &pols); err != nil {
			t.Fatal(err)
		}
		for _, p := range pols {
			if p["name"] == "Sync to DR" {
				delete(p, "id")
				delete(p, "destinationURL")
				raw, _ := json.Marshal(p)
				return string(raw)
			}
		}
		return ""
	}
	if pa, pb := policies("a"), policies("b"); pa == "" || pa != pb {
		t.Errorf("Sync to DR after the restore:\na %s\nb %s", pa, pb)
	}
	if strings.Contains(c.ok("replication", "get", "b"), "other project") {
		t.Error("a policy selecting none of the repositories backed up was restored")
	}
	out = c.ok("restore", "--from", dest, "--to", "b", "-o", "json")
	retention := func(s *harbortest.Server) string { // the policy without Harbor's ids
		return regexp.MustCompile(`"(id|ref)":\d+`).ReplaceAllString(s.Emulator().RetentionPolicy("game-server"), "")
	}
	if ra, rb := retention(a), retention(b); ra == "" || ra != rb {
		t.Errorf("the retention policy after the restore:\na %s\nb %s", ra, rb)
	}
	if s := restoredSettings(t, out); s["harbor.project"] != "unchanged" || s["harbor.robots"] != "unchanged" || s["harbor.retention"] != "unchanged" ||
		s["harbor.replication"] != "unchanged" {
		t.Errorf("third restore: %v", s)
	}
}

// restoredSettings maps setting → status of the first repository in a restore's JSON.
func restoredSettings(t *testing.T, out string) map[string]string {
	t.Helper()
	var res struct {
		Settings []struct{ Setting, Status string }
	}
	if err := json.Unmarshal([]byte(out), &res); err != nil {
		t.Fatalf("%v:\n%s", err, out)
	}
	m := map[string]string{}
	for _, s := range res.Settings {
		if _, seen := m[s.Setting]; !seen {
			m[s.Setting] = s.Status
		}
	}
	return m
}

// projectOf reads game-server's settings on registry reg through the harbor backend.
func projectOf(t *testing.T, c *cli, reg string) map[string]string {
	t.Helper()
	f := &Factory{IO: nil, Environ: c.env, Now: func() time.Time { return fixedNow }, WorkDir: c.workDir}
	res, err := f.Resolver()
	if err != nil {
		t.Fatal(err)
	}
	r, err := res.Registry(reg)
	if err != nil {
		t.Fatal(err)
	}
	docs, err := r.(registry.SettingsKeeper).Settings(context.Background(), "game-server/api")
	if err != nil {
		t.Fatal(err)
	}
	return docs
}
