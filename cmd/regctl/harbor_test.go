package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/regctl-dev/regctl/internal/exitcode"
	"github.com/regctl-dev/regctl/internal/harbor"
	"github.com/regctl-dev/regctl/internal/harbor/harbortest"
	"github.com/regctl-dev/regctl/internal/lifecycle"
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

// TestHarborLifecycleApply: the client-side ECR-semantics engine on Harbor, ages from Harbor's
// push_time, deleting through the artifact API, with the same --dry-run / --yes / --max-delete
// rules as on any registry.
func TestHarborLifecycleApply(t *testing.T) {
	var mu sync.Mutex
	clock := fixedNow.Add(-5 * 24 * time.Hour)
	s := harbortest.Start(t, harbortest.Options{Now: func() time.Time {
		mu.Lock()
		defer mu.Unlock()
		clock = clock.Add(time.Minute) // each push is later than the one before
		return clock
	}})
	c := newCLI(t, "HARBOR_TOKEN="+s.Password)
	cfg := "default_registry: harbor\nregistries:\n  harbor:\n    type: harbor\n    url: " + s.URL + "\n    username: admin\n    password_env: HARBOR_TOKEN\n"
	if err := os.WriteFile(filepath.Join(c.workDir, "regctl.yaml"), []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	c.ok("repo", "create", "harbor/game-server")
	repo := "harbor/game-server/app"
	c.ok("registry", "seed", repo)
	policy := writePolicy(t, keepTwoReleases)

	var plans []*lifecycle.RepoPlan
	if err := json.Unmarshal([]byte(c.ok("lifecycle", "preview", "-f", policy, repo, "-o", "json")), &plans); err != nil {
		t.Fatal(err)
	}
	// Pushed 5 days ago in seed order: v1.0.0 is the oldest release; staging, dev, latest (with its
	// platforms and signature) and the untagged manifest Harbor lists are older than a day.
	if len(plans) != 1 || plans[0].Summary.Expire != 5 {
		t.Fatalf("plan: %+v", plans)
	}
	// Digests, not the whole listing: reading manifests moves Harbor's pull_time.
	digests := func() []string {
		var imgs []registry.Image
		if err := json.Unmarshal([]byte(c.ok("repo", "images", repo, "-o", "json")), &imgs); err != nil {
			t.Fatal(err)
		}
		var out []string
		for _, img := range imgs {
			out = append(out, img.Digest.String())
		}
		slices.Sort(out)
		return out
	}
	before := digests()
	if len(before) != 10 {
		t.Fatalf("seeded %d images, want 10 (Harbor lists the untagged one)", len(before))
	}
	if _, errOut, code := c.run("lifecycle", "apply", "-f", policy, repo, "--yes", "--max-delete", "3"); code != exitcode.Error || !strings.Contains(errOut, "nothing deleted") {
		t.Errorf("--max-delete: exit %d %s", code, errOut)
	}
	c.ok("lifecycle", "apply", "-f", policy, repo, "--dry-run")
	if after := digests(); !slices.Equal(after, before) {
		t.Fatal("something was deleted by a refused or dry run")
	}
	var res lifecycle.Outcome
	if err := json.Unmarshal([]byte(c.ok("lifecycle", "apply", "-f", policy, repo, "--yes", "-o", "json")), &res); err != nil {
		t.Fatal(err)
	}
	if len(res.Results) != 1 || len(res.Results[0].Failed) != 0 || len(res.Results[0].Deleted) == 0 {
		t.Fatalf("apply: %+v", res.Results)
	}
	var left []registry.Image
	if err := json.Unmarshal([]byte(c.ok("repo", "images", repo, "-o", "json")), &left); err != nil {
		t.Fatal(err)
	}
	var tags []string
	for _, img := range left {
		if img.PushedAtSource != registry.SourceHarbor {
			t.Errorf("%s: time from %q, want Harbor's push_time", img.Digest, img.PushedAtSource)
		}
		tags = append(tags, img.Tags...)
	}
	slices.Sort(tags)
	if len(left) != 2 || !slices.Equal(tags, []string{"v1.0.1", "v1.0.2"}) {
		t.Errorf("left %d images with tags %v, want v1.0.1 and v1.0.2", len(left), tags)
	}
	for _, r := range s.Requests() {
		if strings.HasPrefix(r, "DELETE /v2/") {
			t.Errorf("deleted through the data plane, not Harbor's artifact API: %s", r)
		}
	}
	if out := c.ok("lifecycle", "apply", "-f", policy, repo, "--yes"); !strings.Contains(out, "nothing to do") {
		t.Errorf("re-run:\n%s", out)
	}
}

// harborCLI is a CLI whose config has the emulator as the default registry "harbor", signed in
// as login with secret.
func harborCLI(t *testing.T, s *harbortest.Server, login, secret string) *cli {
	t.Helper()
	c := newCLI(t, "HARBOR_TOKEN="+secret)
	cfg := "default_registry: harbor\nregistries:\n  harbor:\n    type: harbor\n    url: " + s.URL + "\n    username: '" + login + "'\n    password_env: HARBOR_TOKEN\n"
	if err := os.WriteFile(filepath.Join(c.workDir, "regctl.yaml"), []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	return c
}

// TestHarborAdminCommands: robot create (the secret on stdout once, or only in a 0600 file, and
// the robot really pushes), harbor health (healthy, then a failed component exits 1), and values
// lint on the guide's file (exit 2 naming its problems).
func TestHarborAdminCommands(t *testing.T) {
	s := harbortest.Start(t)
	c := harborCLI(t, s, "admin", s.Password)
	c.ok("repo", "create", "harbor/game-server")

	out, errOut, code := c.run("harbor", "robot", "create", "--project", "game-server", "--name", "ci", "--push", "--pull", "--expires-days", "90", "-o", "json")
	if code != 0 {
		t.Fatalf("robot create: exit %d %s", code, errOut)
	}
	var created struct{ Name, Secret string }
	if err := json.Unmarshal([]byte(out), &created); err != nil || created.Name != "robot$game-server+ci" || created.Secret == "" {
		t.Fatalf("robot create: %v %s", err, out)
	}
	if strings.Contains(errOut, created.Secret) {
		t.Errorf("the secret on stderr: %s", errOut)
	}
	robot := harborCLI(t, s, created.Name, created.Secret)
	robot.ok("registry", "seed", "harbor/game-server/api")
	if out := robot.ok("repo", "list", "harbor/game-server/"); !strings.Contains(out, "game-server/api") {
		t.Errorf("the robot's push:\n%s", out)
	}

	out, errOut, code = c.run("harbor", "robot", "create", "--project", "game-server", "--name", "cleanup", "--delete", "--secret-file", "cleanup.secret", "-v")
	if code != 0 {
		t.Fatalf("robot create --secret-file: exit %d %s", code, errOut)
	}
	secret, err := os.ReadFile(filepath.Join(c.workDir, "cleanup.secret"))
	if err != nil {
		t.Fatal(err)
	}
	if fi, _ := os.Stat(filepath.Join(c.workDir, "cleanup.secret")); fi.Mode().Perm() != 0o600 {
		t.Errorf("secret file mode %v", fi.Mode().Perm())
	}
	if sec := strings.TrimSpace(string(secret)); sec == "" || strings.Contains(out+errOut, sec) {
		t.Errorf("the secret %q is in the output:\n%s\n%s", sec, out, errOut)
	}
	if _, errOut, code := c.run("harbor", "robot", "create", "--project", "game-server", "--name", "ci", "--pull"); code != exitcode.Error || !strings.Contains(errOut, "exists") {
		t.Errorf("second create: exit %d %s", code, errOut)
	}
	if _, _, code := c.run("harbor", "robot", "create", "--project", "game-server", "--name", "x"); code != exitcode.Usage {
		t.Errorf("no permission flags: exit %d", code)
	}
	if _, _, code := c.run("harbor", "robot", "create", "--project", "nosuch", "--name", "x", "--pull"); code != exitcode.NotFound {
		t.Errorf("missing project: exit %d", code)
	}
	if _, _, code := c.run("harbor", "robot", "create", "--project", "game-server", "--name", "x", "--pull", "--secret-file", "no/such/dir/f"); code != exitcode.Usage {
		t.Errorf("unwritable secret file: exit %d", code)
	}
	if _, _, code := robot.run("harbor", "robot", "create", "--project", "game-server", "--name", "x", "--pull"); code != exitcode.Auth {
		t.Errorf("a push robot creating robots: exit %d", code)
	}

	out = c.ok("harbor", "health")
	for _, want := range []string{"ping", "component database", harbortest.Version, "Trivy"} {
		if !strings.Contains(out, want) {
			t.Errorf("health has no %q:\n%s", want, out)
		}
	}
	s.Emulator().SetHealth("redis", "dial tcp 10.0.0.3:6379: connection refused")
	out, _, code = c.run("harbor", "health", "harbor", "-o", "json")
	var rep harbor.HealthReport
	if err := json.Unmarshal([]byte(out), &rep); err != nil || code != exitcode.Error || rep.Healthy {
		t.Errorf("unhealthy redis: exit %d %v %s", code, err, out)
	}
	localHost := localregtest.Start(t).Host
	if _, errOut, code := c.run("harbor", "health", localHost); code != exitcode.Usage || !strings.Contains(errOut, "type harbor") {
		t.Errorf("health of an OCI registry: exit %d %s", code, errOut)
	}

	values, err := os.ReadFile(testdataFile("harbor/harbor-values.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	os.WriteFile(filepath.Join(c.workDir, "harbor-values.yaml"), values, 0o600)
	out, errOut, code = c.run("harbor", "values", "lint", "harbor-values.yaml")
	if code != exitcode.Usage || !strings.Contains(errOut, "4 problems") {
		t.Errorf("values lint of the guide's file: exit %d %s", code, errOut)
	}
	for _, want := range []string{"harborAdminPassword", "database.internal.password", "notary", "Harbor 2.9"} {
		if !strings.Contains(out, want) {
			t.Errorf("lint output has no %q:\n%s", want, out)
		}
	}
}
