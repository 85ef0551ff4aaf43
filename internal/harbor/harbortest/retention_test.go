package harbortest_test

import (
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/authn"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"

	"github.com/regctl-dev/regctl/internal/harbor/harbortest"
)

func retentionBody(projectID int, cron string, rules ...string) string {
	return fmt.Sprintf(`{"algorithm":"or","rules":[%s],"trigger":{"kind":"Schedule","settings":{"cron":%q},"references":{}},"scope":{"level":"project","ref":%d}}`,
		strings.Join(rules, ","), cron, projectID)
}

func retainRule(template string, n int, decoration, pattern string, untagged bool) string {
	params := "{}"
	if template != "always" {
		params = fmt.Sprintf(`{%q:%d}`, template, n)
	}
	return fmt.Sprintf(`{"disabled":false,"action":"retain","template":%q,"params":%s,"tag_selectors":[{"kind":"doublestar","decoration":%q,"pattern":%q,"extras":"{\"untagged\":%v}"}],"scope_selectors":{"repository":[{"kind":"doublestar","decoration":"repoMatches","pattern":"**"}]}}`,
		template, params, decoration, pattern, untagged)
}

// TestRetentionValidation: Harbor's limits on retention policies — 15 rules, one policy per
// project, identical rules 409, Harbor's 6-field cron with seconds 0, known templates and their
// parameters — and 201 + Location with the project's retention_id.
func TestRetentionValidation(t *testing.T) {
	s := harbortest.Start(t)
	if code, _, body := admin(t, s, "POST", "/api/v2.0/projects", `{"project_name":"p","metadata":{"public":"false"}}`); code != 201 {
		t.Fatalf("create project: %d %s", code, body)
	}
	_, _, proj := admin(t, s, "GET", "/api/v2.0/projects/p", "")
	pid := 0
	if _, err := fmt.Sscanf(proj[strings.Index(proj, `"project_id":`)+len(`"project_id":`):], "%d", &pid); err != nil {
		t.Fatal(err)
	}
	var sixteen []string
	for i := range 16 {
		sixteen = append(sixteen, retainRule("latestPushedK", i+1, "matches", "**", true))
	}
	bad := map[string]struct {
		body   string
		status int
		msg    string
	}{
		"16 rules":       {retentionBody(pid, "", sixteen...), 400, "only 15 rules"},
		"5-field cron":   {retentionBody(pid, "0 2 * * *", retainRule("always", 0, "matches", "**", true)), 400, "6 fields"},
		"seconds not 0":  {retentionBody(pid, "5 0 2 * * *", retainRule("always", 0, "matches", "**", true)), 400, "seconds"},
		"unknown rule":   {retentionBody(pid, "", retainRule("keepForever", 1, "matches", "**", true)), 400, "unknown template"},
		"count too big":  {retentionBody(pid, "", retainRule("latestPushedK", 40000, "matches", "**", true)), 400, "latestPushedK"},
		"bad decoration": {retentionBody(pid, "", retainRule("always", 0, "contains", "**", true)), 400, "tag_selectors[0]"},
		"duplicate":      {retentionBody(pid, "", retainRule("always", 0, "matches", "**", true), retainRule("always", 0, "matches", "**", true)), 409, "conflict"},
		"no project":     {retentionBody(9999, "", retainRule("always", 0, "matches", "**", true)), 400, "not found"},
		"algorithm":      {strings.Replace(retentionBody(pid, ""), `"or"`, `"and"`, 1), 400, "algorithm"},
	}
	for name, c := range bad {
		if code, _, body := admin(t, s, "POST", "/api/v2.0/retentions", c.body); code != c.status || !strings.Contains(body, c.msg) {
			t.Errorf("%s: %d %s, want %d naming %q", name, code, body, c.status, c.msg)
		}
	}
	good := retentionBody(pid, "0 0 3 * * *", retainRule("latestPushedK", 10, "matches", "**", true))
	code, h, body := admin(t, s, "POST", "/api/v2.0/retentions", good)
	if code != 201 || !strings.HasPrefix(h.Get("Location"), "/api/v2.0/retentions/") {
		t.Fatalf("create: %d %v %s", code, h, body)
	}
	if _, _, proj := admin(t, s, "GET", "/api/v2.0/projects/p", ""); !strings.Contains(proj, `"retention_id":"`+strings.TrimPrefix(h.Get("Location"), "/api/v2.0/retentions/")+`"`) {
		t.Errorf("the project's retention_id: %s", proj)
	}
	if code, _, body := admin(t, s, "POST", "/api/v2.0/retentions", good); code != 400 || !strings.Contains(body, "already has retention policy") {
		t.Errorf("a second policy for the project: %d %s", code, body)
	}
	robot, secret := s.AddRobot(harbortest.Robot{Name: "ci", Level: "project", Permissions: []harbortest.Permission{{Kind: "project", Namespace: "p", Access: harbortest.Allow("repository:pull")}}})
	if code, _, _ := call(t, s, robot, secret, "GET", h.Get("Location"), ""); code != http.StatusForbidden {
		t.Errorf("a robot without tag-retention:read: %d", code)
	}
	if code, _, body := admin(t, s, "POST", h.Get("Location")+"/executions", `{"dry_run":true}`); code != 201 {
		t.Errorf("a dry run: %d %s", code, body)
	}
}

// TestRetentionEvaluation runs the spec's Harbor cases on the emulator's retention job: H05 (a
// partially matched artifact is retained whole) and H06 (excludes master* with latestPushedK 1
// deletes master, the surprise of goharbor/harbor#11450), plus untagged artifacts kept only when
// the selector's extras say so.
func TestRetentionEvaluation(t *testing.T) {
	clock := harbortest.NewClock(time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC))
	s := harbortest.Start(t, harbortest.Options{Now: clock.Now})
	admin(t, s, "POST", "/api/v2.0/projects", `{"project_name":"p"}`)
	_, _, proj := admin(t, s, "GET", "/api/v2.0/projects/p", "")
	pid := 0
	fmt.Sscanf(proj[strings.Index(proj, `"project_id":`)+len(`"project_id":`):], "%d", &pid)
	auth := &authn.Basic{Username: s.Username, Password: s.Password}
	img := func(label string) v1.Image {
		i, err := mutate.Config(empty.Image, v1.Config{Labels: map[string]string{"n": label}})
		if err != nil {
			t.Fatal(err)
		}
		return i
	}
	step := func(ref string, i v1.Image) {
		clock.Advance(time.Minute)
		if err := push(t, s, auth, ref, i); err != nil {
			t.Fatal(err)
		}
	}
	step("p/h05:harbor-old", img("old"))
	multi := img("multi")
	for _, tag := range []string{"harbor-1.8", "harbor-release", "harbor-nightly", "harbor-latest"} {
		step("p/h05:"+tag, multi)
	}
	step("p/h06:dev-1", img("u")) // left untagged by the next dev-1
	step("p/h06:master", img("x"))
	step("p/h06:dev-1", img("y"))

	rules := []string{
		strings.Replace(retainRule("latestPushedK", 1, "matches", "harbor-*", false), `"pattern":"**"`, `"pattern":"h05"`, 1),
		strings.Replace(retainRule("latestPushedK", 1, "excludes", "master*", false), `"pattern":"**"`, `"pattern":"h06"`, 1),
	}
	code, h, body := admin(t, s, "POST", "/api/v2.0/retentions", retentionBody(pid, "", rules...))
	if code != 201 {
		t.Fatalf("create: %d %s", code, body)
	}
	code, xh, body := admin(t, s, "POST", h.Get("Location")+"/executions", `{"dry_run":false}`)
	if code != 201 {
		t.Fatalf("run: %d %s", code, body)
	}
	var status string
	for range 100 {
		_, _, list := admin(t, s, "GET", h.Get("Location")+"/executions", "")
		if strings.Contains(list, `"status":"Success"`) {
			status = "Success"
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	if status == "" {
		t.Fatal("the execution did not finish")
	}
	_, _, tasks := admin(t, s, "GET", xh.Get("Location")+"/tasks", "")
	if strings.Count(tasks, `"repository":`) != 2 {
		t.Fatalf("tasks: %s", tasks)
	}
	tags := func(repo string) string {
		_, _, arts := admin(t, s, "GET", "/api/v2.0/projects/p/repositories/"+repo+"/artifacts", "")
		return arts
	}
	h05, h06 := tags("h05"), tags("h06")
	if !strings.Contains(h05, "harbor-1.8") || strings.Contains(h05, "harbor-old") {
		t.Errorf("H05: the four-tag artifact (newest) stays whole, harbor-old goes:\n%s", h05)
	}
	if strings.Contains(h06, `"name":"master"`) || !strings.Contains(h06, "dev-1") || strings.Count(h06, `"digest":`) != 1 {
		t.Errorf("H06: excludes master* with untagged false selects only dev-1 and retains it; master and the untagged one go:\n%s", h06)
	}
}
