package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/regctl-dev/regctl/internal/exitcode"
	"github.com/regctl-dev/regctl/internal/harbor/harbortest"
)

// TestHarborReplicationCLI is the guide's §3.2 "Sync to DR" through the CLI: put prints the cron
// translation and creates the endpoint (from regctl's config) and the policy; a re-run is
// unchanged; get lists it; run copies game-server to the DR Harbor; bad input exits 2 naming the
// flag; the DR password shows nowhere.
func TestHarborReplicationCLI(t *testing.T) {
	src, dr := harbortest.Start(t), harbortest.Start(t)
	c := newCLI(t, "HARBOR_TOKEN="+src.Password, "DR_TOKEN="+dr.Password)
	cfg := "default_registry: harbor\nregistries:\n" +
		"  harbor:\n    type: harbor\n    url: " + src.URL + "\n    username: admin\n    password_env: HARBOR_TOKEN\n" +
		"  dr-registry:\n    type: harbor\n    url: " + dr.URL + "\n    username: admin\n    password_env: DR_TOKEN\n" +
		"  cache:\n    type: ecr\n    region: us-east-1\n    account: \"123456789012\"\n"
	if err := os.WriteFile(filepath.Join(c.workDir, "regctl.yaml"), []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	c.ok("repo", "create", "harbor/game-server")
	c.ok("registry", "seed", "harbor/game-server/api")

	guide := []string{"replication", "put", "harbor", "--name", "Sync to DR", "--src-registry", "local", "--dest-registry", "dr-registry",
		"--dest-namespace", "game-server", "--trigger-type", "scheduled", "--cron", "0 2 * * *"}
	withCron := func(cron string) []string { return append(slices.Clone(guide[:len(guide)-1]), cron) }
	out, errOut, code := c.run(append(slices.Clone(guide), "--dry-run")...)
	if code != 0 || !strings.Contains(out, "would-create") || len(src.Emulator().ReplicationPolicies()) != 0 {
		t.Fatalf("dry run: exit %d\n%s\n%s", code, out, errOut)
	}
	out, errOut, code = c.run(guide...)
	if code != 0 || !strings.Contains(errOut, "cron 0 2 * * * → Harbor 0 0 2 * * *") || strings.Count(out, "created") != 2 {
		t.Fatalf("put: exit %d\n%s\n%s", code, out, errOut)
	}
	out = c.ok(guide...)
	if strings.Count(out, "unchanged") != 2 {
		t.Errorf("re-put:\n%s", out)
	}
	out = c.ok(withCron("30 3 * * *")...)
	if !strings.Contains(out, "updated") || !strings.Contains(out, "0 0 2 * * *") || !strings.Contains(out, "0 30 3 * * *") {
		t.Errorf("changed cron:\n%s", out)
	}
	c.ok(guide...)

	var pols []struct{ Name, Destination, Cron, DestNamespace string }
	if err := json.Unmarshal([]byte(c.ok("replication", "get", "-o", "json")), &pols); err != nil || len(pols) != 1 ||
		pols[0].Destination != "dr-registry" || pols[0].Cron != "0 0 2 * * *" || pols[0].DestNamespace != "game-server" {
		t.Fatalf("get: %v %+v", err, pols)
	}

	var run struct {
		Status string
		Tasks  []struct{ Source, Destination, Status string }
	}
	if err := json.Unmarshal([]byte(c.ok("replication", "run", "Sync to DR", "-o", "json")), &run); err != nil || run.Status != "Success" || len(run.Tasks) != 1 {
		t.Fatalf("run: %v %+v", err, run)
	}
	dc := newCLI(t, "DR_TOKEN="+dr.Password)
	if err := os.WriteFile(filepath.Join(dc.workDir, "regctl.yaml"), []byte("default_registry: dr\nregistries:\n  dr:\n    type: harbor\n    url: "+dr.URL+"\n    username: admin\n    password_env: DR_TOKEN\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if got := dc.ok("repo", "list", "dr/game-server/"); !strings.Contains(got, "game-server/api") {
		t.Errorf("the DR Harbor after the run:\n%s", got)
	}

	for _, bad := range []struct {
		args []string
		want string
	}{
		{withCron("* 2 * * *"), "--cron"},
		{withCron("0 2 * *"), "--cron"},
		{[]string{"replication", "put", "--name", "x", "--dest-registry", "cache"}, "IAM access key"},
		{[]string{"replication", "put", "--name", "x", "--dest-registry", "dr-registry", "--trigger-type", "hourly"}, "--trigger-type"},
		{[]string{"replication", "put", "--name", "x", "--dest-registry", "dr-registry", "--src-registry", "dr-registry"}, "--src-registry"},
		{[]string{"replication", "put", "--name", "x"}, "--dest-registry"},
		{[]string{"replication", "put"}, "-f FILE"},
	} {
		if _, errOut, code := c.run(bad.args...); code != exitcode.Usage || !strings.Contains(errOut, bad.want) {
			t.Errorf("%v: exit %d %s, want 2 naming %s", bad.args, code, errOut, bad.want)
		}
	}
	if _, errOut, code := c.run("replication", "put", "--name", "x", "--dest-registry", "nowhere"); code != exitcode.NotFound || !strings.Contains(errOut, "nowhere") {
		t.Errorf("unknown endpoint: exit %d %s", code, errOut)
	}
	if _, errOut, code := c.run("replication", "run", "no such policy"); code != exitcode.NotFound {
		t.Errorf("unknown policy: exit %d %s", code, errOut)
	}
	for _, r := range src.Requests() {
		if strings.Contains(r, dr.Password) {
			t.Errorf("the DR password in a request line: %s", r)
		}
	}
	if strings.Contains(c.allOutput(), dr.Password) {
		t.Error("the DR password in regctl's output")
	}
}
