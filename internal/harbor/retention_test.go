package harbor_test

import (
	"encoding/json"
	"errors"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/remote"

	"github.com/regctl-dev/regctl/internal/exitcode"
	"github.com/regctl-dev/regctl/internal/harbor"
	"github.com/regctl-dev/regctl/internal/harbor/harbortest"
	"github.com/regctl-dev/regctl/internal/lifecycle"
	"github.com/regctl-dev/regctl/internal/registry"
)

func mustPolicy(t *testing.T, doc string) *lifecycle.Policy {
	t.Helper()
	p, err := lifecycle.Parse([]byte(doc))
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// nativePolicy keeps two release-* images and one untagged one; tags outside both stay.
const nativePolicy = `{"rules":[
 {"rulePriority":1,"selection":{"tagStatus":"tagged","tagPrefixList":["release-"],"countType":"imageCountMoreThan","countNumber":2},"action":{"type":"expire"}},
 {"rulePriority":2,"selection":{"tagStatus":"untagged","countType":"imageCountMoreThan","countNumber":1},"action":{"type":"expire"}}]}`

func TestTranslateRetention(t *testing.T) {
	guide, err := os.ReadFile("../../testdata/lifecycle/ecr-lifecycle-policy.json")
	if err != nil {
		t.Fatal(err)
	}
	_, err = harbor.TranslateRetention(mustPolicy(t, string(guide)), []string{"api"}, nil)
	var ne *harbor.NotExactError
	if !errors.As(err, &ne) || exitcode.Of(err) != exitcode.Usage {
		t.Fatalf("the guide's policy (two prefixes per rule, AND-ed): %v", err)
	}
	for _, rule := range []string{"rule 1:", "rule 2:", "rule 4:"} {
		if !strings.Contains(err.Error(), rule) {
			t.Errorf("the refusal does not name %s %v", rule, err)
		}
	}

	refused := map[string]string{
		"pull":     `{"rules":[{"rulePriority":1,"selection":{"tagStatus":"any","countType":"sinceImagePulled","countUnit":"days","countNumber":30},"action":{"type":"transition","targetStorageClass":"archive"}}]}`,
		"overlap":  `{"rules":[{"rulePriority":1,"selection":{"tagStatus":"tagged","tagPrefixList":["prod"],"countType":"imageCountMoreThan","countNumber":2},"action":{"type":"expire"}},{"rulePriority":2,"selection":{"tagStatus":"tagged","tagPrefixList":["prod-v"],"countType":"imageCountMoreThan","countNumber":1},"action":{"type":"expire"}}]}`,
		"any+more": `{"rules":[{"rulePriority":1,"selection":{"tagStatus":"tagged","tagPatternList":["v*"],"countType":"imageCountMoreThan","countNumber":2},"action":{"type":"expire"}},{"rulePriority":2,"selection":{"tagStatus":"any","countType":"imageCountMoreThan","countNumber":9},"action":{"type":"expire"}}]}`,
	}
	want := map[string]string{"pull": "sinceImagePulled", "overlap": `"prod-v*" may also match "prod*"`, "any+more": "tagStatus any"}
	for name, doc := range refused {
		if _, err := harbor.TranslateRetention(mustPolicy(t, doc), nil, nil); err == nil || !strings.Contains(err.Error(), want[name]) {
			t.Errorf("%s: %v, want a refusal naming %q", name, err, want[name])
		}
	}
	var many []string
	for i := 1; i <= 15; i++ {
		many = append(many, `{"rulePriority":`+itoa(i)+`,"selection":{"tagStatus":"tagged","tagPrefixList":["p`+itoa(i)+`x"],"countType":"imageCountMoreThan","countNumber":1},"action":{"type":"expire"}}`)
	}
	if _, err := harbor.TranslateRetention(mustPolicy(t, `{"rules":[`+strings.Join(many, ",")+`]}`), nil, nil); err == nil || !strings.Contains(err.Error(), "16 Harbor rules") {
		t.Errorf("15 ECR rules and the complement: %v", err)
	}

	rules, err := harbor.TranslateRetention(mustPolicy(t, nativePolicy), []string{"api", "web"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	got, _ := json.Marshal(rules)
	for _, s := range []string{`"template":"latestPushedK","params":{"latestPushedK":2}`, `"decoration":"matches","pattern":"release-*","extras":"{\"untagged\":false}"`,
		`"decoration":"excludes","pattern":"**","extras":"{\"untagged\":true}"`, `"template":"always"`, `"decoration":"excludes","pattern":"release-*","extras":"{\"untagged\":false}"`,
		`"pattern":"{api,web}"`} {
		if !strings.Contains(string(got), s) {
			t.Errorf("translation lacks %s:\n%s", s, got)
		}
	}

	// sinceImagePushed is Harbor's nDaysSinceLastPush with the same count.
	byAge := `{"rules":[{"rulePriority":1,"selection":{"tagStatus":"untagged","countType":"sinceImagePushed","countUnit":"days","countNumber":14},"action":{"type":"expire"}}]}`
	if rules, err := harbor.TranslateRetention(mustPolicy(t, byAge), nil, nil); err != nil {
		t.Errorf("sinceImagePushed: %v", err)
	} else if got, _ := json.Marshal(rules); !strings.Contains(string(got), `"template":"nDaysSinceLastPush","params":{"nDaysSinceLastPush":14}`) {
		t.Errorf("sinceImagePushed translated to %s", got)
	}

	// Content the translation cannot be exact for: an image tagged release-1 and latest.
	mixed := []*lifecycle.RepoPlan{{Repository: "p/api", Items: []lifecycle.PlanItem{{Digest: "sha256:" + strings.Repeat("c", 64), Kind: registry.KindImage, Tags: []string{"release-1", "latest"}}}}}
	if _, err := harbor.TranslateRetention(mustPolicy(t, nativePolicy), []string{"api"}, mixed); err == nil || !strings.Contains(err.Error(), "[release-1 latest]") {
		t.Errorf("a release image also tagged latest: %v", err)
	}
}

func itoa(i int) string { return strconv.Itoa(i) }

// remoteTag puts another tag on what a tag points to (a re-tag, as a promotion does).
func remoteTag(t *testing.T, h *harbor.Harbor, from, to string) error {
	t.Helper()
	desc, err := remote.Get(ref(t, h, from), h.Remote()...)
	if err != nil {
		return err
	}
	src := ref(t, h, from)
	return remote.Tag(src.Context().Tag(to), desc, h.Remote()...)
}

// retentionRepo pushes, a minute apart: release-1..4, tmp three times (two untagged are left), latest.
func retentionRepo(t *testing.T, h *harbor.Harbor, clock *harbortest.Clock) map[string]v1.Hash {
	t.Helper()
	d := map[string]v1.Hash{}
	base := labelled(t, empty.Image, "base")
	for _, tag := range []string{"release-1", "release-2", "release-3", "release-4", "tmp", "tmp", "tmp", "latest"} {
		clock.Advance(time.Minute)
		key := tag
		if tag == "tmp" {
			key = "tmp" + itoa(len(d))
		}
		d[key] = push(t, h, "game-server/api:"+tag, labelled(t, base, key))
	}
	return d
}

func plansFor(t *testing.T, h *harbor.Harbor, p *lifecycle.Policy, now time.Time, repos ...string) []*lifecycle.RepoPlan {
	t.Helper()
	var plans []*lifecycle.RepoPlan
	for _, r := range repos {
		images, err := h.Images(ctx, r)
		if err != nil {
			t.Fatal(err)
		}
		plans = append(plans, lifecycle.BuildPlan(p, "harbor", r, images, lifecycle.AgeAuto, now))
	}
	return plans
}

// TestApplyRetention: --native end to end on the emulator, whose retention job is Harbor's
// algorithm written independently of the translation: a dry run stores nothing; the apply stores
// the policy, Harbor's dry run agrees with regctl's plan, the run deletes exactly the plan's
// images and the schedule goes in; a re-run has nothing to do; a re-tag that makes Harbor's push
// time differ from the artifact's is a disagreement that stops the run with nothing deleted.
func TestApplyRetention(t *testing.T) {
	clock := harbortest.NewClock(time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC))
	s := harbortest.Start(t, harbortest.Options{Now: clock.Now})
	h := open(t, s, s.Username, s.Password)
	if _, err := h.EnsureProject(ctx, "game-server", registry.RepositorySpec{}, registry.ProjectSpec{}); err != nil {
		t.Fatal(err)
	}
	d := retentionRepo(t, h, clock)
	pol := mustPolicy(t, nativePolicy)
	plans := plansFor(t, h, pol, clock.Now(), "game-server/api")
	if plans[0].Summary.Expire != 3 { // release-1, release-2, the older of the two untagged (tmp6 is tagged tmp)
		t.Fatalf("regctl's plan expires %d, want 3", plans[0].Summary.Expire)
	}
	target := []harbor.RetentionTarget{{Project: "game-server", Repos: []string{"api"}, Plans: plans}}
	var notes []string
	note := func(f string, a ...any) { notes = append(notes, f) }

	out, err := h.ApplyRetention(ctx, target, harbor.RetentionOptions{Policy: pol, DryRun: true, Note: note})
	if err != nil || out.Projects[0].Status != "would-create" || s.Emulator().RetentionPolicy("game-server") != "" {
		t.Fatalf("dry run: %v %+v, stored %q", err, out, s.Emulator().RetentionPolicy("game-server"))
	}
	if _, err := h.ApplyRetention(ctx, target, harbor.RetentionOptions{Policy: pol, Cron: "0 0 3 * * *"}); exitcode.Of(err) != exitcode.Usage {
		t.Fatalf("without --yes off a terminal: %v", err)
	}
	if _, err := h.ApplyRetention(ctx, target, harbor.RetentionOptions{Policy: pol, Yes: true, MaxDelete: 2}); err == nil || !strings.Contains(err.Error(), "--max-delete 2") {
		t.Fatalf("--max-delete 2: %v", err)
	}
	if dry, real := s.Emulator().RetentionRuns("game-server"); dry+real != 0 || s.Emulator().RetentionPolicy("game-server") != "" {
		t.Fatalf("refused applies ran or stored something: %d %d", dry, real)
	}

	out, err = h.ApplyRetention(ctx, target, harbor.RetentionOptions{Policy: pol, Yes: true, Cron: "0 0 3 * * *"})
	if err != nil {
		t.Fatalf("apply: %v %+v", err, out)
	}
	res := out.Projects[0]
	if res.Status != "run" || len(res.Disagreements) != 0 || res.Run == nil || res.DryRun == nil {
		t.Fatalf("apply: %+v", res)
	}
	left, err := h.Images(ctx, "game-server/api")
	if err != nil {
		t.Fatal(err)
	}
	kept := map[string]bool{}
	for _, img := range left {
		kept[img.Digest.String()] = true
	}
	for key, want := range map[string]bool{"release-1": false, "release-2": false, "release-3": true, "release-4": true, "tmp4": false, "tmp5": true, "tmp6": true, "latest": true} {
		if kept[d[key].String()] != want {
			t.Errorf("%s kept = %v, want %v", key, !want, want)
		}
	}
	stored := s.Emulator().RetentionPolicy("game-server")
	if !strings.Contains(stored, `"cron":"0 0 3 * * *"`) || !strings.Contains(stored, `"pattern":"api"`) {
		t.Errorf("stored policy: %s", stored)
	}
	if dry, real := s.Emulator().RetentionRuns("game-server"); dry != 1 || real != 1 {
		t.Errorf("runs: %d dry, %d real; want 1 and 1", dry, real)
	}

	plans = plansFor(t, h, pol, clock.Now(), "game-server/api")
	target = []harbor.RetentionTarget{{Project: "game-server", Repos: []string{"api"}, Plans: plans}}
	out, err = h.ApplyRetention(ctx, target, harbor.RetentionOptions{Policy: pol, Yes: true, Cron: "0 0 3 * * *"})
	if err != nil || out.Projects[0].Status != "unchanged" || !strings.HasPrefix(out.Message, "nothing to do") {
		t.Fatalf("re-run: %v %+v", err, out)
	}
	out, err = h.ApplyRetention(ctx, target, harbor.RetentionOptions{Policy: pol, DryRun: true, Cron: "0 0 3 * * *"})
	if err != nil || out.Projects[0].DryRun == nil || len(out.Projects[0].Disagreements) != 0 {
		t.Fatalf("dry run of the stored policy: %v %+v", err, out.Projects[0])
	}

	// Push release-5, then give release-3 a new tag: ECR (and regctl, on Harbor's artifact
	// push_time) expires release-3; Harbor dates it by its newest tag and deletes release-4.
	clock.Advance(time.Minute)
	push(t, h, "game-server/api:release-5", labelled(t, labelled(t, empty.Image, "base"), "release-5"))
	clock.Advance(time.Minute)
	if err := remoteTag(t, h, "game-server/api:release-3", "release-3-hotfix"); err != nil {
		t.Fatal(err)
	}
	plans = plansFor(t, h, pol, clock.Now(), "game-server/api")
	target = []harbor.RetentionTarget{{Project: "game-server", Repos: []string{"api"}, Plans: plans}}
	before, _ := h.Images(ctx, "game-server/api")
	out, err = h.ApplyRetention(ctx, target, harbor.RetentionOptions{Policy: pol, Yes: true, Cron: "0 0 3 * * *"})
	if err == nil || out.Projects[0].Status != "not-run" || !strings.Contains(err.Error(), "release-3") || !strings.Contains(err.Error(), "release-4") {
		t.Fatalf("a disagreeing dry run: %v %+v", err, out.Projects[0])
	}
	after, _ := h.Images(ctx, "game-server/api")
	if len(after) != len(before) {
		t.Errorf("a disagreeing dry run deleted %d images", len(before)-len(after))
	}
	if stored := s.Emulator().RetentionPolicy("game-server"); !strings.Contains(stored, `"cron":"0 0 3 * * *"`) {
		t.Errorf("the previous (scheduled) policy is not back: %s", stored)
	}
}

func TestParseRetentionLog(t *testing.T) {
	log := "2026-03-01T00:00:00Z [INFO] [/pkg/retention/job.go:83]: Run retention process.\n" +
		"|       Digest        |    Tag    | Kind  | Labels |     PushedTime      | PulledTime |     CreatedTime     | Retention |\n" +
		"|---------------------|-----------|-------|--------|---------------------|------------|---------------------|-----------|\n" +
		"| sha256:" + strings.Repeat("a", 64) + " | v1,latest | image |        | 2026/03/01 00:00:00 |            | 2026/03/01 00:00:00 | RETAIN    |\n" +
		"| sha256:" + strings.Repeat("b", 64) + " |           | image |        | 2026/03/01 00:00:00 |            | 2026/03/01 00:00:00 | DEL       |\n"
	rows, err := harbor.ParseRetentionLog(log)
	if err != nil || len(rows) != 2 || rows[0].Action != "RETAIN" || len(rows[0].Tags) != 2 || rows[1].Action != "DEL" || len(rows[1].Tags) != 0 {
		t.Fatalf("%v %+v", err, rows)
	}
	for name, bad := range map[string]string{"no table": "just a log line\n", "no digest column": "| Tag | Retention |\n| v1 | DEL |\n",
		"short row": "| Digest | Tag | Retention |\n| sha256:" + strings.Repeat("a", 64) + " | DEL |\n", "not a digest": "| Digest | Retention |\n| latest | DEL |\n"} {
		if _, err := harbor.ParseRetentionLog(bad); !errors.Is(err, registry.ErrBadAnswer) {
			t.Errorf("%s: %v", name, err)
		}
	}
}

// FuzzParseRetentionLog: any log text gives rows or an error, never a panic.
func FuzzParseRetentionLog(f *testing.F) {
	f.Add("| Digest | Tag | Retention |\n|---|---|---|\n| sha256:" + strings.Repeat("a", 64) + " | v1 | DEL |\n")
	f.Add("||||\n|")
	f.Fuzz(func(t *testing.T, s string) {
		rows, err := harbor.ParseRetentionLog(s)
		if err == nil {
			for _, r := range rows {
				if !strings.HasPrefix(r.Digest, "sha256:") {
					t.Fatalf("row without a digest: %+v", r)
				}
			}
		}
	})
}
