package main

import (
	"encoding/json"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/regctl-dev/regctl/internal/exitcode"
	"github.com/regctl-dev/regctl/internal/harbor/harbortest"
	"github.com/regctl-dev/regctl/internal/registry"
)

const keepTwoVReleases = `{"rules":[{"rulePriority":1,"description":"keep the 2 newest releases","selection":{"tagStatus":"tagged","tagPrefixList":["v"],"countType":"imageCountMoreThan","countNumber":2},"action":{"type":"expire"}}]}`

// TestHarborNativeRetention: lifecycle apply --native through the CLI on the emulator. The
// guide's policy is refused with its reasons (exit 2); a dry run stores nothing; the apply stores
// the retention policy, Harbor's dry run agrees with regctl's plan and Harbor deletes the one
// release the plan expires (the index, its platforms and its signature stay); a re-run has
// nothing to do; an OCI registry has no --native.
func TestHarborNativeRetention(t *testing.T) {
	clock := harbortest.NewClock(fixedNow.Add(-5 * 24 * time.Hour))
	s := harbortest.Start(t, harbortest.Options{Now: func() time.Time { clock.Advance(time.Second); return clock.Now() }}) // each push later
	c := harborCLI(t, s, "admin", s.Password)
	c.ok("repo", "create", "harbor/game-server")
	c.ok("registry", "seed", "harbor/game-server/app")
	guide, err := os.ReadFile("../../testdata/lifecycle/ecr-lifecycle-policy.json")
	if err != nil {
		t.Fatal(err)
	}
	if _, errOut, code := c.run("lifecycle", "apply", "-f", writePolicy(t, string(guide)), "harbor/game-server", "--native", "--dry-run"); code != exitcode.Usage ||
		!strings.Contains(errOut, "rule 1: 2 tag patterns or prefixes must all match") {
		t.Errorf("the guide's policy: exit %d %s", code, errOut)
	}
	policy := writePolicy(t, keepTwoVReleases)
	out := c.ok("lifecycle", "apply", "-f", policy, "harbor/game-server", "--native", "--dry-run")
	if !strings.Contains(out, "retention policy would-create") || s.Emulator().RetentionPolicy("game-server") != "" {
		t.Errorf("dry run:\n%s\nstored %s", out, s.Emulator().RetentionPolicy("game-server"))
	}
	if _, errOut, code := c.run("lifecycle", "apply", "-f", policy, "harbor/game-server", "--native"); code != exitcode.Usage || !strings.Contains(errOut, "--yes") {
		t.Errorf("without --yes: exit %d %s", code, errOut)
	}
	images := func() []registry.Image {
		var imgs []registry.Image
		if err := json.Unmarshal([]byte(c.ok("repo", "images", "harbor/game-server/app", "-o", "json")), &imgs); err != nil {
			t.Fatal(err)
		}
		return imgs
	}
	before := images()
	var res struct {
		Retention struct {
			Projects []struct {
				Status        string
				Disagreements []string
			}
		}
	}
	if err := json.Unmarshal([]byte(c.ok("lifecycle", "apply", "-f", policy, "harbor/game-server", "--native", "--yes", "-o", "json")), &res); err != nil {
		t.Fatal(err)
	}
	if len(res.Retention.Projects) != 1 || res.Retention.Projects[0].Status != "run" || len(res.Retention.Projects[0].Disagreements) != 0 {
		t.Fatalf("apply: %+v", res)
	}
	after := images()
	gone := map[string]bool{}
	for _, img := range before {
		gone[img.Digest.String()] = true
	}
	for _, img := range after {
		delete(gone, img.Digest.String())
	}
	if len(gone) != 1 {
		t.Fatalf("Harbor deleted %d manifests, want the one release (v1.0.0)", len(gone))
	}
	for _, img := range before {
		if gone[img.Digest.String()] && (len(img.Tags) != 1 || img.Tags[0] != "v1.0.0") {
			t.Errorf("deleted %v, want only v1.0.0", img.Tags)
		}
	}
	if out := c.ok("lifecycle", "apply", "-f", policy, "harbor/game-server", "--native", "--yes"); !strings.Contains(out, "nothing to do") {
		t.Errorf("re-run:\n%s", out)
	}
	// --schedule: the checked policy is stored with Harbor's 6-field cron, the translation printed.
	_, errOut, code := c.run("lifecycle", "apply", "-f", policy, "harbor/game-server", "--native", "--yes", "--schedule", "0 3 * * *")
	if code != 0 || !strings.Contains(errOut, "schedule 0 3 * * * → Harbor 0 0 3 * * *") || !strings.Contains(s.Emulator().RetentionPolicy("game-server"), `"cron":"0 0 3 * * *"`) {
		t.Errorf("--schedule: exit %d %s\nstored %s", code, errOut, s.Emulator().RetentionPolicy("game-server"))
	}
	for _, bad := range [][]string{{"--native", "--schedule", "0 3 * *"}, {"--schedule", "0 3 * * *"}, {"--native", "--schedule", "7 0 3 * * *"}} {
		if _, errOut, code := c.run(append([]string{"lifecycle", "apply", "-f", policy, "harbor/game-server", "--dry-run"}, bad...)...); code != exitcode.Usage || !strings.Contains(errOut, "--schedule") {
			t.Errorf("%v: exit %d %s", bad, code, errOut)
		}
	}
	if _, errOut, code := c.run("lifecycle", "apply", "-f", policy, "127.0.0.1:1/app", "--native", "--dry-run"); code != exitcode.Usage || !strings.Contains(errOut, "only Harbor") {
		t.Errorf("--native on an OCI registry: exit %d %s", code, errOut)
	}
}
