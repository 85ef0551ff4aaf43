package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/regctl-dev/regctl/internal/exitcode"
	"github.com/regctl-dev/regctl/internal/lifecycle"
	"github.com/regctl-dev/regctl/internal/localreg/localregtest"
)

const keepTwoReleases = `{"rules":[
 {"rulePriority":1,"description":"keep the 2 newest releases","selection":{"tagStatus":"tagged","tagPrefixList":["v"],"countType":"imageCountMoreThan","countNumber":2},"action":{"type":"expire"}},
 {"rulePriority":2,"description":"anything else older than a day","selection":{"tagStatus":"any","countType":"sinceImagePushed","countUnit":"days","countNumber":1},"action":{"type":"expire"}}]}`

func writePolicy(t *testing.T, body string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "policy.json")
	if err := os.WriteFile(p, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestLifecycleValidate(t *testing.T) {
	c := newCLI(t)
	out := c.ok("lifecycle", "validate", "-f", testdataFile("lifecycle/ecr-lifecycle-policy.json"))
	if !strings.Contains(out, "valid (4 rules)") || !strings.Contains(out, "warning: rules[0].selection.tagPrefixList: entries are ANDed") {
		t.Errorf("seed policy:\n%s", out)
	}
	bad := writePolicy(t, `{"rules":[{"rulePriority":1,"selection":{"tagStatus":"tagged","tagPrefixList":["v"],"countType":"imageCountMoreThan","countUnit":"days","countNumber":0},"action":{"type":"expire","extra":1}}]}`)
	out, _, code := c.run("lifecycle", "validate", "-f", bad, "-o", "json")
	if code != exitcode.Usage {
		t.Fatalf("exit %d", code)
	}
	var res policyValidation
	if err := json.Unmarshal([]byte(out), &res); err != nil {
		t.Fatal(err)
	}
	paths := []string{}
	for _, e := range res.Errors {
		paths = append(paths, e.Path)
	}
	joined := strings.Join(paths, " ")
	for _, want := range []string{"rules[0].selection.countUnit", "rules[0].selection.countNumber", "rules[0].action.extra"} {
		if !strings.Contains(joined, want) {
			t.Errorf("errors lack %s: %v", want, paths)
		}
	}
	if _, _, code := c.run("lifecycle", "validate", "-f", "/does/not/exist.json"); code != exitcode.NotFound {
		t.Errorf("missing policy file: exit %d", code)
	}
}

func TestLifecycleApplyFlow(t *testing.T) {
	host := localregtest.Start(t).Host
	c := newCLI(t)
	c.ok("registry", "seed", host+"/game-server")
	policy := writePolicy(t, keepTwoReleases)
	repo := host + "/game-server"

	var plans []*lifecycle.RepoPlan
	if err := json.Unmarshal([]byte(c.ok("lifecycle", "preview", "-f", policy, repo, "-o", "json")), &plans); err != nil {
		t.Fatal(err)
	}
	// seeded at fixedNow: v1.0.0 (3rd release), staging (3d), dev (2d), latest (2d) expire
	if len(plans) != 1 || plans[0].Summary.Expire != 4 || plans[0].Summary.Manifests != 7 || len(plans[0].Notes) != 2 {
		t.Fatalf("plan: %+v", plans[0].Summary)
	}

	before := c.ok("repo", "images", repo, "-o", "json")
	_, errOut, code := c.run("lifecycle", "apply", "-f", policy, repo)
	if code != exitcode.Usage || !strings.Contains(errOut, "pass --yes") {
		t.Errorf("no --yes off a terminal: exit %d %s", code, errOut)
	}
	_, errOut, code = c.run("lifecycle", "apply", "-f", policy, repo, "--yes", "--max-delete", "3")
	if code != exitcode.Error || !strings.Contains(errOut, "more than --max-delete 3; nothing deleted") {
		t.Errorf("--max-delete: exit %d %s", code, errOut)
	}
	if out := c.ok("lifecycle", "apply", "-f", policy, repo, "--dry-run"); !strings.Contains(out, "dry run: would delete 4 images (7 manifests)") {
		t.Errorf("dry run:\n%s", out)
	}
	if after := c.ok("repo", "images", repo, "-o", "json"); after != before {
		t.Fatal("something was deleted by a refused or dry run")
	}

	var res lifecycle.Outcome
	if err := json.Unmarshal([]byte(c.ok("lifecycle", "apply", "-f", policy, repo, "--yes", "-o", "json")), &res); err != nil {
		t.Fatal(err)
	}
	if len(res.Results) != 1 || len(res.Results[0].Deleted) != 7 || len(res.Results[0].Failed) != 0 {
		t.Fatalf("apply result: %+v", res.Results)
	}
	if out := c.ok("repo", "list", host); !strings.Contains(out, "game-server") {
		t.Fatal(out)
	}
	left := c.ok("repo", "images", repo)
	if !strings.Contains(left, "v1.0.1") || !strings.Contains(left, "v1.0.2") || strings.Count(strings.TrimSpace(left), "\n") != 2 {
		t.Errorf("left:\n%s", left)
	}
	out := c.ok("lifecycle", "apply", "-f", policy, repo, "--yes")
	if !strings.Contains(out, "nothing to do: no image expires") {
		t.Errorf("re-run:\n%s", out)
	}
}

func TestLifecyclePrefixCoversManyRepositories(t *testing.T) {
	host := localregtest.Start(t).Host
	c := newCLI(t)
	for _, r := range []string{"game-server/api", "game-server/web", "other"} {
		c.ok("registry", "seed", host+"/"+r)
	}
	var plans []*lifecycle.RepoPlan
	json.Unmarshal([]byte(c.ok("lifecycle", "preview", "-f", writePolicy(t, keepTwoReleases), host, "--prefix", "game-server/", "-o", "json")), &plans)
	if len(plans) != 2 || plans[0].Repository != "game-server/api" || plans[1].Repository != "game-server/web" {
		t.Errorf("plans: %d", len(plans))
	}
	if _, _, code := c.run("lifecycle", "preview", "-f", writePolicy(t, keepTwoReleases), host); code != exitcode.Usage {
		t.Errorf("a bare registry without --prefix: exit %d", code)
	}
}
