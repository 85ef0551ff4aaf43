package harbor_test

import (
	"encoding/json"
	"strconv"
	"strings"
	"testing"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/remote"

	"github.com/regctl-dev/regctl/internal/exitcode"
	"github.com/regctl-dev/regctl/internal/harbor"
	"github.com/regctl-dev/regctl/internal/harbor/harbortest"
	"github.com/regctl-dev/regctl/internal/registry"
)

func TestHarborCron(t *testing.T) {
	for in, want := range map[string]string{"0 2 * * *": "0 0 2 * * *", "30 1 * * 1-5": "0 30 1 * * 1-5", "0 15 3 * * *": "0 15 3 * * *"} {
		got, translated, err := harbor.Cron(in, true)
		if err != nil || got != want || translated != (len(strings.Fields(in)) == 5) {
			t.Errorf("Cron(%q) = %q %v %v, want %q", in, got, translated, err, want)
		}
	}
	for in, why := range map[string]string{"* 2 * * *": "minutes field", "5 0 2 * * *": "seconds field", "0 2 * *": "5 fields", "@daily": "5 fields",
		"0 2 * * * * *": "this has 7", "0 2 * * $(id)": "field 6"} {
		_, _, err := harbor.Cron(in, true)
		if err == nil || exitcode.Of(err) != exitcode.Usage || !strings.Contains(err.Error(), why) || !strings.Contains(err.Error(), "cron "+strconv.Quote(in)) {
			t.Errorf("Cron(%q): %v, want exit 2 naming the cron and %q", in, err, why)
		}
	}
	// Retention allows * minutes (only replication refuses them).
	if got, _, err := harbor.Cron("* 2 * * *", false); err != nil || got != "0 * 2 * * *" {
		t.Errorf("retention cron: %q %v", got, err)
	}
}

// syncToDR is the guide's §3.2 policy: from this Harbor to dr-registry, namespace game-server,
// daily at 02:00.
func syncToDR(dr *harbortest.Server) harbor.ReplicationSpec {
	return harbor.ReplicationSpec{Name: "Sync to DR", Dest: harbor.Endpoint{Name: "dr-registry", Type: "harbor", URL: dr.URL, AccessKey: dr.Username, AccessSecret: dr.Password},
		DestNamespace: "game-server", ReplaceCount: 1, NameFilter: "game-server/**", Trigger: "scheduled", Cron: "0 2 * * *", Override: true, Enabled: true}
}

func TestReplicationPutAndRun(t *testing.T) {
	src, dr := harbortest.Start(t), harbortest.Start(t)
	h, d := open(t, src, src.Username, src.Password), open(t, dr, dr.Username, dr.Password)
	for _, p := range []string{"game-server", "game-server-dev"} {
		if _, err := h.EnsureProject(ctx, p, registry.RepositorySpec{}, registry.ProjectSpec{}); err != nil {
			t.Fatal(err)
		}
	}
	img, err := random.Image(512, 2)
	if err != nil {
		t.Fatal(err)
	}
	apiDigest := push(t, h, "game-server/api:v1", img)
	push(t, h, "game-server/api:v2", labelled(t, img, "v2"))
	other, _ := random.Image(256, 1)
	push(t, h, "game-server-dev/api:dev", other) // outside the name filter
	idx := mutate.AppendManifests(empty.Index, mutate.IndexAddendum{Add: img})
	idxDigest, _ := idx.Digest()
	if err := remote.WriteIndex(ref(t, h, "game-server/multi:1"), idx, h.Remote()...); err != nil {
		t.Fatal(err)
	}

	spec := syncToDR(dr)
	// A dry run writes nothing.
	res, err := h.PutReplication(ctx, spec, true)
	if err != nil || res.Endpoint.Status != "would-create" || res.Policy.Status != "would-create" {
		t.Fatalf("dry run: %+v %v", res, err)
	}
	if n := len(src.Emulator().ReplicationPolicies()); n != 0 {
		t.Fatalf("the dry run stored %d policies", n)
	}
	res, err = h.PutReplication(ctx, spec, false)
	if err != nil || res.Endpoint.Status != "created" || res.Policy.Status != "created" || res.Policy.ID <= 0 {
		t.Fatalf("put: %+v %v", res, err)
	}
	if res.Cron == nil || res.Cron.From != "0 2 * * *" || res.Cron.To != "0 0 2 * * *" {
		t.Errorf("cron translation: %+v", res.Cron)
	}
	stored := src.Emulator().ReplicationPolicies()
	if len(stored) != 1 {
		t.Fatalf("stored: %v", stored)
	}
	raw, _ := json.Marshal(stored[0])
	for _, s := range []string{`"cron":"0 0 2 * * *"`, `"type":"scheduled"`, `"dest_namespace":"game-server"`, `"dest_namespace_replace_count":1`, `"value":"game-server/**"`} {
		if !strings.Contains(string(raw), s) {
			t.Errorf("stored policy lacks %s: %s", s, raw)
		}
	}
	if strings.Contains(string(raw), dr.Password) {
		t.Error("Harbor answered the endpoint's secret")
	}

	// The same spec again: nothing changes. A changed one: the diff, then updated.
	if res, err = h.PutReplication(ctx, spec, false); err != nil || res.Endpoint.Status != "unchanged" || res.Policy.Status != "unchanged" {
		t.Fatalf("re-put: %+v %v", res, err)
	}
	changed := spec
	changed.Cron = "30 3 * * *"
	changed.TagFilter = "v*"
	if res, err = h.PutReplication(ctx, changed, true); err != nil || res.Policy.Status != "would-update" || len(res.Policy.Changes) != 2 {
		t.Fatalf("changed, dry run: %+v %v", res, err)
	}
	if res, err = h.PutReplication(ctx, changed, false); err != nil || res.Policy.Status != "updated" {
		t.Fatalf("changed: %+v %v", res, err)
	}
	got := map[string]string{}
	for _, c := range res.Policy.Changes {
		got[c.Setting] = c.From + " → " + c.To
	}
	if got["cron"] != "0 0 2 * * * → 0 30 3 * * *" || got["filters"] != "name=game-server/** → name=game-server/**, tag=v*" {
		t.Errorf("changes: %v", got)
	}
	if _, err = h.PutReplication(ctx, spec, false); err != nil {
		t.Fatal(err)
	}

	pols, err := h.ReplicationPolicies(ctx)
	if err != nil || len(pols) != 1 || pols[0].Destination != "dr-registry" || pols[0].Source != "local" || pols[0].Cron != "0 0 2 * * *" {
		t.Fatalf("policies: %+v %v", pols, err)
	}

	run, err := h.RunReplication(ctx, "Sync to DR")
	if err != nil {
		t.Fatalf("run: %v (%+v)", err, run)
	}
	if run.Status != "Success" || run.Total != 2 || len(run.Tasks) != 2 {
		t.Fatalf("run: %+v", run)
	}
	for want, tag := range map[v1.Hash]string{apiDigest: "game-server/api:v1", idxDigest: "game-server/multi:1"} {
		desc, err := remote.Head(ref(t, d, tag), d.Remote()...)
		if err != nil || desc.Digest != want {
			t.Errorf("DR %s: %v %v, want %s", tag, desc, err, want)
		}
	}
	if _, err := remote.Head(ref(t, d, "game-server/api:dev"), d.Remote()...); err == nil {
		t.Error("game-server-dev/api replicated though the name filter is game-server/**")
	}

	if _, err := h.RunReplication(ctx, "no such policy"); exitcode.Of(err) != exitcode.NotFound {
		t.Errorf("unknown policy: %v", err)
	}
}

func TestReplicationPutRefuses(t *testing.T) {
	src, dr := harbortest.Start(t), harbortest.Start(t)
	h := open(t, src, src.Username, src.Password)
	if _, err := h.EnsureProject(ctx, "game-server", registry.RepositorySpec{}, registry.ProjectSpec{}); err != nil {
		t.Fatal(err)
	}
	img, _ := random.Image(256, 1)
	push(t, h, "game-server/api:v1", img)
	base := syncToDR(dr)
	for name, c := range map[string]struct {
		mod  func(*harbor.ReplicationSpec)
		want string
	}{
		"every minute":  {func(s *harbor.ReplicationSpec) { s.Cron = "* 2 * * *" }, "--cron"},
		"no cron":       {func(s *harbor.ReplicationSpec) { s.Cron = "" }, "--cron"},
		"manual+cron":   {func(s *harbor.ReplicationSpec) { s.Trigger = "manual" }, "--cron"},
		"trigger":       {func(s *harbor.ReplicationSpec) { s.Trigger = "nightly" }, "--trigger-type"},
		"namespace":     {func(s *harbor.ReplicationSpec) { s.DestNamespace = "Game Server" }, "--dest-namespace"},
		"replace count": {func(s *harbor.ReplicationSpec) { s.ReplaceCount = -2 }, "--dest-namespace-replace-count"},
		"no name":       {func(s *harbor.ReplicationSpec) { s.Name = " " }, "--name"},
	} {
		s := base
		c.mod(&s)
		_, err := h.PutReplication(ctx, s, false)
		if exitcode.Of(err) != exitcode.Usage || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: %v, want exit 2 naming %s", name, err, c.want)
		}
	}
	if n := len(src.Emulator().ReplicationPolicies()); n != 0 {
		t.Errorf("refused specs stored %d policies", n)
	}
	// An endpoint named but not in Harbor, and no URL to create it from.
	s := base
	s.Dest = harbor.Endpoint{Name: "nowhere"}
	if _, err := h.PutReplication(ctx, s, false); exitcode.Of(err) != exitcode.NotFound || !strings.Contains(err.Error(), "nowhere") {
		t.Errorf("missing endpoint: %v", err)
	}
	// An endpoint's type cannot change.
	if _, err := h.PutReplication(ctx, base, false); err != nil {
		t.Fatal(err)
	}
	s = base
	s.Dest.Type = "docker-registry"
	if _, err := h.PutReplication(ctx, s, false); exitcode.Of(err) != exitcode.Usage || !strings.Contains(err.Error(), "type") {
		t.Errorf("type change: %v", err)
	}
	// A new URL is an update with the diff; the secret never shows.
	s = base
	s.Dest.URL = "http://127.0.0.1:1"
	res, err := h.PutReplication(ctx, s, false)
	if err != nil || res.Endpoint.Status != "updated" || len(res.Endpoint.Changes) != 1 || res.Endpoint.Changes[0].Setting != "url" {
		t.Fatalf("url change: %+v %v", res, err)
	}
	out, _ := json.Marshal(res)
	if strings.Contains(string(out), dr.Password) {
		t.Errorf("the result shows the secret: %s", out)
	}
	// Now the endpoint answers nothing: the run fails, exit 1, naming the failed task.
	run, err := h.RunReplication(ctx, base.Name)
	if err == nil || exitcode.Of(err) != exitcode.Error || run == nil || run.Status != "Error" {
		t.Fatalf("run against a dead endpoint: %+v %v", run, err)
	}
}

// FuzzHarborCron: any --cron is either refused with exit 2 or becomes a 6-field cron with
// seconds 0 (and named minutes for replication) that translates to itself.
func FuzzHarborCron(f *testing.F) {
	for _, s := range []string{"0 2 * * *", "0 0 2 * * *", "* 2 * * *", "@daily", "", "0 2 * * 1-5", "*/15 * * * *", "0 0 2 * * * *", "0 2 ? * MON#1"} {
		f.Add(s, true)
	}
	f.Fuzz(func(t *testing.T, cron string, replication bool) {
		got, _, err := harbor.Cron(cron, replication)
		if err != nil {
			if exitcode.Of(err) != exitcode.Usage || !strings.HasPrefix(err.Error(), "cron ") {
				t.Fatalf("%q: %v", cron, err)
			}
			return
		}
		fields := strings.Fields(got)
		if len(fields) != 6 || fields[0] != "0" || (replication && fields[1] == "*") {
			t.Fatalf("%q → %q", cron, got)
		}
		again, translated, err := harbor.Cron(got, replication)
		if err != nil || again != got || translated {
			t.Fatalf("%q → %q → %q %v %v", cron, got, again, translated, err)
		}
	})
}

// TestBackupSettingsWithoutReplicationAccess: a project robot (the usual CI credential) cannot
// list the system's replication policies. Each repository's settings still carry the project's
// documents, harbor.replication is named as not read, and Harbor is asked once, not once a repository.
func TestBackupSettingsWithoutReplicationAccess(t *testing.T) {
	s := harbortest.Start(t)
	admin := open(t, s, s.Username, s.Password)
	if _, err := admin.EnsureProject(ctx, "game-server", registry.RepositorySpec{}, registry.ProjectSpec{}); err != nil {
		t.Fatal(err)
	}
	login, secret := s.AddRobot(harbortest.Robot{Name: "backup", Level: "project", Permissions: []harbortest.Permission{{Kind: "project", Namespace: "game-server",
		Access: harbortest.Allow("project:read", "repository:list", "repository:pull", "artifact:list", "robot:list", "robot:read", "tag-retention:read")}}})
	h := open(t, s, login, secret)
	for _, repo := range []string{"game-server/api", "game-server/web"} {
		docs, err := h.Settings(ctx, repo)
		if err == nil || !strings.Contains(err.Error(), harbor.SettingReplication) || exitcode.Of(err) != exitcode.Auth {
			t.Errorf("%s: %v, want an auth error naming %s", repo, err, harbor.SettingReplication)
		}
		if docs[harbor.SettingProject] == "" {
			t.Errorf("%s: the project's document was dropped with the replication policies: %v", repo, docs)
		}
	}
	n := 0
	for _, r := range s.Requests() {
		if strings.HasPrefix(r, "GET /api/v2.0/replication/policies") {
			n++
		}
	}
	if n != 1 {
		t.Errorf("replication policies listed %d times for two repositories, want 1", n)
	}
}
