package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/regctl-dev/regctl/internal/exitcode"
	"github.com/regctl-dev/regctl/internal/harbor"
	"github.com/regctl-dev/regctl/internal/harbor/harbortest"
	"github.com/regctl-dev/regctl/internal/localreg/localregtest"
	"github.com/regctl-dev/regctl/internal/registry"
)

// TestHarborProjectFlagsNeedProjects: the Harbor project settings are refused (exit 2) on a
// registry without projects, and bad values before anything is opened.
func TestHarborProjectFlagsNeedProjects(t *testing.T) {
	host := localregtest.Start(t).Host
	c := newCLI(t)
	for _, flags := range [][]string{{"--public=false"}, {"--severity", "high"}, {"--prevent-vulnerable"},
		{"--scan-policy", testdataFile("scan/harbor-scan-policy.json")}} {
		_, errOut, code := c.run(append([]string{"repo", "create", host + "/app"}, flags...)...)
		if code != exitcode.Usage || !strings.Contains(errOut, "project settings (Harbor)") {
			t.Errorf("%v: exit %d %s", flags, code, errOut)
		}
	}
	if _, errOut, code := c.run("repo", "create", host+"/app", "--severity", "severe"); code != exitcode.Usage || !strings.Contains(errOut, "--severity") {
		t.Errorf("bad severity: exit %d %s", code, errOut)
	}
	if _, _, code := c.run("repo", "create", host+"/app", "--scan-policy", "missing.json"); code != exitcode.NotFound {
		t.Errorf("missing policy file: exit %d", code)
	}
	// --scan-on-push alone is an ECR setting too: not refused.
	if out := c.ok("repo", "create", host+"/app", "--scan-on-push"); !strings.Contains(out, "on-first-push") {
		t.Errorf("scan on push on OCI:\n%s", out)
	}
}

func harborRegistered() bool {
	for _, b := range backends() {
		if b.Type == harbor.Type {
			return true
		}
	}
	return false
}

// TestHarborRepoCreateAsTheGuide: the guide's §3.2 `harbor project create` (twice) and §3.3 scan
// policy as one regctl command against the Harbor emulator: created, then unchanged, then a diff.
func TestHarborRepoCreateAsTheGuide(t *testing.T) {
	if !harborRegistered() {
		t.Skip("type harbor is not in backends() yet: add harbor.Backend() in root.go")
	}
	s := harbortest.Start(t)
	c := newCLI(t, "HARBOR_TOKEN="+s.Password)
	cfg := "default_registry: harbor\nregistries:\n  harbor:\n    type: harbor\n    url: " + s.URL + "\n    username: admin\n    password_env: HARBOR_TOKEN\n"
	if err := os.WriteFile(filepath.Join(c.workDir, "regctl.yaml"), []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	policy, err := os.ReadFile(testdataFile("scan/harbor-scan-policy.json"))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(c.workDir, "harbor-scan-policy.json"), policy, 0o600); err != nil {
		t.Fatal(err)
	}
	guide := []string{"repo", "create", "harbor/game-server", "harbor/game-server-dev", "--public=false", "--scan-on-push",
		"--prevent-vulnerable", "--severity", "high", "--scan-policy", "harbor-scan-policy.json"}
	out, errOut, code := c.run(append(guide, "-o", "json")...)
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	var res []struct {
		Registry, Repository, Status, Message string
		Changes                               []registry.SettingChange
		Notes                                 []string
	}
	if err := json.Unmarshal([]byte(out), &res); err != nil {
		t.Fatalf("%v:\n%s", err, out)
	}
	if len(res) != 2 || res[0].Status != "created" || res[1].Status != "created" || len(res[0].Notes) != 6 {
		t.Errorf("first run: %+v", res)
	}
	if !strings.Contains(errOut, "cvss_score_threshold") || strings.Contains(errOut+out, s.Password) {
		t.Errorf("notes on stderr (and no password anywhere):\n%s", errOut)
	}
	out = c.ok(guide...)
	if strings.Count(out, "unchanged") != 2 {
		t.Errorf("second run:\n%s", out)
	}
	out = c.ok("repo", "create", "harbor/game-server", "--severity", "critical")
	if !strings.Contains(out, "updated") || !strings.Contains(out, "severity high → critical") {
		t.Errorf("changed severity:\n%s", out)
	}
	out = c.ok("repo", "create", "harbor/game-server/api")
	if !strings.Contains(out, "on-first-push") || !strings.Contains(out, "created by its first push") {
		t.Errorf("repository inside a project:\n%s", out)
	}
	bad := newCLI(t, "HARBOR_TOKEN=wrong")
	os.WriteFile(filepath.Join(bad.workDir, "regctl.yaml"), []byte(cfg), 0o600)
	if _, errOut, code := bad.run("repo", "list", "harbor"); code != exitcode.Auth || !strings.Contains(errOut, "listProjects") {
		t.Errorf("wrong password: exit %d %s", code, errOut)
	}
	if _, _, code := c.run("repo", "images", "harbor/nosuch/app"); code != exitcode.NotFound {
		t.Errorf("missing project: exit %d", code)
	}
}
