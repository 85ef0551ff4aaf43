package harbor_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/remote"

	"github.com/regctl-dev/regctl/internal/config"
	"github.com/regctl-dev/regctl/internal/exitcode"
	"github.com/regctl-dev/regctl/internal/harbor"
	"github.com/regctl-dev/regctl/internal/harbor/harbortest"
	"github.com/regctl-dev/regctl/internal/registry"
)

var ctx = context.Background()

func open(t *testing.T, s *harbortest.Server, user, pw string) *harbor.Harbor {
	t.Helper()
	rc := config.Registry{Type: harbor.Type, URL: s.URL, Username: user, PasswordEnv: "HARBOR_TOKEN", CAFile: s.CAFile}
	reg, err := harbor.Open(ctx, "harbor", rc, registry.Options{Getenv: func(k string) string {
		if k == "HARBOR_TOKEN" {
			return pw
		}
		return ""
	}})
	if err != nil {
		t.Fatal(err)
	}
	return reg.(*harbor.Harbor)
}

func ref(t *testing.T, h *harbor.Harbor, s string) name.Reference {
	t.Helper()
	r, err := name.ParseReference(h.Host()+"/"+s, name.Insecure)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func push(t *testing.T, h *harbor.Harbor, s string, img v1.Image) v1.Hash {
	t.Helper()
	if err := remote.Write(ref(t, h, s), img, h.Remote()...); err != nil {
		t.Fatalf("push %s: %v", s, err)
	}
	d, _ := img.Digest()
	return d
}

func labelled(t *testing.T, base v1.Image, label string) v1.Image {
	t.Helper()
	img, err := mutate.Config(base, v1.Config{Labels: map[string]string{"n": label}})
	if err != nil {
		t.Fatal(err)
	}
	return img
}

func policyFile(t *testing.T) []byte {
	t.Helper()
	b, err := os.ReadFile("../../testdata/scan/harbor-scan-policy.json") // the guide's §3.3 JSON, unmodified
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// projectMetadata reads a project as the emulator stores it, through the API.
func projectMetadata(t *testing.T, s *harbortest.Server, p string) (map[string]string, []string) {
	t.Helper()
	req, _ := http.NewRequest("GET", s.URL+"/api/v2.0/projects/"+p, nil)
	req.SetBasicAuth(s.Username, s.Password)
	req.Header.Set("X-Is-Resource-Name", "true")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var out struct {
		Metadata  map[string]string `json:"metadata"`
		Allowlist struct {
			Items []struct {
				CVEID string `json:"cve_id"`
			} `json:"items"`
		} `json:"cve_allowlist"`
	}
	b, _ := io.ReadAll(resp.Body)
	if err := json.Unmarshal(b, &out); err != nil {
		t.Fatalf("%s: %s", err, b)
	}
	var ids []string
	for _, it := range out.Allowlist.Items {
		ids = append(ids, it.CVEID)
	}
	return out.Metadata, ids
}

func bp(b bool) *bool { return &b }

// TestRepoCreateAsTheGuide: the guide's `harbor project create --name game-server --public=false`
// twice, with the scan policy of §3.3: created, then unchanged; a changed setting is a diff.
func TestRepoCreateAsTheGuide(t *testing.T) {
	s := harbortest.Start(t)
	h := open(t, s, s.Username, s.Password)
	ps := registry.ProjectSpec{Public: bp(false), ScanOnPush: bp(true), PreventVulnerable: bp(true), Severity: "high",
		ScanPolicy: policyFile(t), ScanPolicyName: "harbor-scan-policy.json"}

	res, err := h.EnsureProject(ctx, "game-server", registry.RepositorySpec{}, ps)
	if err != nil {
		t.Fatal(err)
	}
	if res.Status != registry.StatusCreated || !strings.Contains(res.Message, "project game-server created") {
		t.Errorf("first: %+v", res)
	}
	md, allow := projectMetadata(t, s, "game-server")
	want := map[string]string{"public": "false", "auto_scan": "true", "prevent_vul": "true", "severity": "high", "reuse_sys_cve_allowlist": "false"}
	for k, v := range want {
		if md[k] != v {
			t.Errorf("metadata %s = %q, want %q (%v)", k, md[k], v, md)
		}
	}
	if !slices.Equal(allow, []string{"CVE-2021-12345"}) {
		t.Errorf("allowlist %v", allow)
	}
	notes := strings.Join(res.Notes, "\n")
	for _, w := range []string{"cvss_score_threshold 7", "fix_available", "scan_before_push", `name "production-scan-policy"`, "project_id 1"} {
		if !strings.Contains(notes, w) {
			t.Errorf("no note about %s in:\n%s", w, notes)
		}
	}

	res, err = h.EnsureProject(ctx, "game-server", registry.RepositorySpec{}, ps)
	if err != nil || res.Status != registry.StatusUnchanged || len(res.Changes) != 0 {
		t.Errorf("second: %+v %v", res, err)
	}

	// A repository inside: the project exists, the repository comes with its first push.
	res, err = h.EnsureProject(ctx, "game-server/api", registry.RepositorySpec{}, ps)
	if err != nil || res.Status != registry.StatusOnPush || !strings.Contains(res.Message, "game-server/api is created by its first push") {
		t.Errorf("inside: %+v %v", res, err)
	}
	push(t, h, "game-server/api:v1", labelled(t, empty.Image, "x"))
	res, _ = h.EnsureProject(ctx, "game-server/api", registry.RepositorySpec{}, ps)
	if res.Status != registry.StatusUnchanged || !strings.Contains(res.Message, "repository game-server/api exists") {
		t.Errorf("after push: %+v", res)
	}

	// A new project inside a name: created, and the message says the repository comes later.
	res, err = h.EnsureProject(ctx, "game-server-dev/api", registry.RepositorySpec{}, registry.ProjectSpec{Public: bp(false)})
	if err != nil || res.Status != registry.StatusCreated || !strings.Contains(res.Message, "game-server-dev/api is created by its first push") {
		t.Errorf("dev: %+v %v", res, err)
	}

	// Differences are a diff, and only they are sent.
	res, err = h.EnsureProject(ctx, "game-server", registry.RepositorySpec{}, registry.ProjectSpec{Severity: "Critical", Public: bp(true)})
	if err != nil || res.Status != registry.StatusUpdated {
		t.Fatalf("update: %+v %v", res, err)
	}
	if !slices.Contains(res.Changes, registry.SettingChange{Setting: "severity", From: "high", To: "critical"}) ||
		!slices.Contains(res.Changes, registry.SettingChange{Setting: "public", From: "false", To: "true"}) || len(res.Changes) != 2 {
		t.Errorf("changes %+v", res.Changes)
	}
	if md, _ := projectMetadata(t, s, "game-server"); md["severity"] != "critical" || md["auto_scan"] != "true" {
		t.Errorf("after update: %v", md)
	}

	// Flags that contradict the policy, bad severities and bad names are exit 2.
	for _, bad := range []registry.ProjectSpec{
		{Severity: "low", ScanPolicy: policyFile(t), ScanPolicyName: "harbor-scan-policy.json"},
		{PreventVulnerable: bp(false), ScanPolicy: policyFile(t), ScanPolicyName: "harbor-scan-policy.json"},
		{Severity: "severe"},
	} {
		if _, err := h.EnsureProject(ctx, "game-server", registry.RepositorySpec{}, bad); exitcode.Of(err) != exitcode.Usage {
			t.Errorf("%+v: exit %d (%v)", bad, exitcode.Of(err), err)
		}
	}
	if _, err := h.EnsureProject(ctx, "Game_Server", registry.RepositorySpec{}, registry.ProjectSpec{}); exitcode.Of(err) != exitcode.Usage {
		t.Errorf("bad name: %v", err)
	}
	// EnsureRepository (the backend-neutral path: seed, build-push, restore) asks for scan on push
	// only when true: false cannot say "not asked", and the project is shared by every repository
	// in it. It names what Harbor cannot do.
	r, err := h.EnsureRepository(ctx, "game-server/api", registry.RepositorySpec{ScanOnPush: false, Encryption: "KMS"})
	if err != nil || r.Status == registry.StatusUpdated || !strings.Contains(r.Message, "encryption") {
		t.Errorf("EnsureRepository: %+v %v", r, err)
	}
	if spec, err := h.RepositorySettings(ctx, "game-server/api"); err != nil || !spec.ScanOnPush {
		t.Errorf("a repository ensured without scan on push switched the project's off: %+v %v", spec, err)
	}
	if _, err := h.EnsureProject(ctx, "game-server", registry.RepositorySpec{}, registry.ProjectSpec{ScanOnPush: bp(false)}); err != nil {
		t.Fatal(err)
	}
	r, err = h.EnsureRepository(ctx, "game-server", registry.RepositorySpec{ScanOnPush: true})
	if err != nil || r.Status != registry.StatusUpdated || !strings.Contains(r.Message, "auto_scan false → true") {
		t.Errorf("EnsureRepository with scan on push: %+v %v", r, err)
	}
	if _, err := h.RepositorySettings(ctx, "nosuch/api"); exitcode.Of(err) != exitcode.NotFound {
		t.Errorf("settings of a missing project: %v", err)
	}
}

// TestImagesFromArtifacts: Images carries Harbor's push and pull times, untagged artifacts, index
// children linked with their own times, and cosign signatures attached to their subject.
func TestImagesFromArtifacts(t *testing.T) {
	clock := harbortest.NewClock(time.Date(2026, 4, 1, 8, 0, 0, 0, time.UTC))
	s := harbortest.Start(t, harbortest.Options{Now: clock.Now})
	h := open(t, s, s.Username, s.Password)
	if _, err := h.EnsureProject(ctx, "game-server", registry.RepositorySpec{}, registry.ProjectSpec{}); err != nil {
		t.Fatal(err)
	}
	base, _ := random.Image(256, 1)
	amd, arm := labelled(t, base, "amd64"), labelled(t, base, "arm64")
	idx := mutate.AppendManifests(empty.Index,
		mutate.IndexAddendum{Add: amd, Descriptor: v1.Descriptor{Platform: &v1.Platform{OS: "linux", Architecture: "amd64"}}},
		mutate.IndexAddendum{Add: arm, Descriptor: v1.Descriptor{Platform: &v1.Platform{OS: "linux", Architecture: "arm64"}}})
	if err := remote.WriteIndex(ref(t, h, "game-server/sub/api:v2"), idx, h.Remote()...); err != nil {
		t.Fatal(err)
	}
	idxDigest, _ := idx.Digest()
	clock.Advance(24 * time.Hour)
	v1d := push(t, h, "game-server/sub/api:v1", labelled(t, base, "v1"))
	clock.Advance(time.Hour)
	sigDigest := push(t, h, "game-server/sub/api:sha256-"+idxDigest.Hex+".sig", labelled(t, empty.Image, "sig"))
	clock.Advance(time.Hour)
	// An untagged artifact: pushed by tag, then the tag moved.
	untagged := push(t, h, "game-server/sub/api:moving", labelled(t, base, "old"))
	clock.Advance(time.Hour)
	push(t, h, "game-server/sub/api:moving", labelled(t, base, "new"))
	clock.Advance(time.Hour)
	if _, err := remote.Image(ref(t, h, "game-server/sub/api:v1"), h.Remote()...); err != nil {
		t.Fatal(err)
	}
	pulledAt := clock.Now()

	images, err := h.Images(ctx, "game-server/sub/api")
	if err != nil {
		t.Fatal(err)
	}
	by := map[v1.Hash]registry.Image{}
	for _, img := range images {
		by[img.Digest] = img
	}
	if len(images) != 7 { // index, 2 children, v1, signature, untagged, moving
		t.Errorf("%d images: %+v", len(images), images)
	}
	ix := by[idxDigest]
	if ix.Kind != registry.KindIndex || len(ix.Children) != 2 || ix.PushedAtSource != registry.SourceHarbor || !ix.PushedAt.Equal(time.Date(2026, 4, 1, 8, 0, 0, 0, time.UTC)) {
		t.Errorf("index: %+v", ix)
	}
	amdDigest, _ := amd.Digest()
	child := by[amdDigest]
	if len(child.Parents) != 1 || child.Parents[0] != idxDigest || child.Platform == nil || child.Platform.Architecture != "amd64" ||
		child.PushedAtSource != registry.SourceHarbor || !child.PushedAt.Equal(ix.PushedAt) {
		t.Errorf("child: %+v", child)
	}
	v := by[v1d]
	if !slices.Equal(v.Tags, []string{"v1"}) || !v.LastPulledAt.Equal(pulledAt) || !v.PushedAt.Equal(time.Date(2026, 4, 2, 8, 0, 0, 0, time.UTC)) {
		t.Errorf("v1: %+v", v)
	}
	sig := by[sigDigest]
	if sig.Kind != registry.KindSignature || sig.Subject == nil || *sig.Subject != idxDigest {
		t.Errorf("signature: %+v", sig)
	}
	u := by[untagged]
	if len(u.Tags) != 0 || u.PushedAt.IsZero() || !u.LastPulledAt.IsZero() {
		t.Errorf("untagged: %+v", u)
	}
	if !registry.TraitsOf(h).ListsUntagged || !registry.TraitsOf(h).PushTimes {
		t.Error("traits")
	}

	repos, err := h.Repositories(ctx, "")
	if err != nil || !slices.Equal(repos, []string{"game-server/sub/api"}) {
		t.Errorf("repositories: %v %v", repos, err)
	}
	if repos, err := h.Repositories(ctx, "game"); err != nil || len(repos) != 1 {
		t.Errorf("prefix game: %v %v", repos, err)
	}
	if repos, err := h.Repositories(ctx, "game-server/x"); err != nil || len(repos) != 0 {
		t.Errorf("prefix game-server/x: %v %v", repos, err)
	}
	if _, err := h.Repositories(ctx, "nosuch/"); exitcode.Of(err) != exitcode.NotFound {
		t.Errorf("missing project: %v", err)
	}
	if _, err := h.Images(ctx, "nosuch/app"); exitcode.Of(err) != exitcode.NotFound {
		t.Errorf("images of a missing project: %v", err)
	}
	if _, err := h.Images(ctx, "noproject"); exitcode.Of(err) != exitcode.Usage {
		t.Errorf("images without a project: %v", err)
	}

	// Deleting the index through the API takes its children and signature with it.
	if err := h.DeleteImage(ctx, "game-server/sub/api", amdDigest); err == nil || exitcode.Of(err) != exitcode.Error {
		t.Errorf("deleting a child: %v", err)
	}
	if err := h.DeleteImage(ctx, "game-server/sub/api", idxDigest); err != nil {
		t.Fatal(err)
	}
	images, _ = h.Images(ctx, "game-server/sub/api")
	if len(images) != 3 {
		t.Errorf("after delete: %d images %+v", len(images), images)
	}
	if err := h.DeleteImage(ctx, "game-server/sub/api", idxDigest); exitcode.Of(err) != exitcode.NotFound {
		t.Errorf("deleting again: %v", err)
	}
	ops := s.Emulator().Validator().Operations()
	for _, op := range []string{"getProject", "createProject", "listProjects", "listRepositories", "listArtifacts", "getArtifact", "deleteArtifact"} {
		if ops[op] == 0 {
			t.Errorf("no %s request was validated against the spec: %v", op, ops)
		}
	}
}

// TestPaginationFollowsLink: more than one page of projects and of artifacts.
func TestPaginationFollowsLink(t *testing.T) {
	s := harbortest.Start(t)
	h := open(t, s, s.Username, s.Password)
	for i := range 101 {
		if _, err := h.EnsureProject(ctx, fmt.Sprintf("p%03d", i), registry.RepositorySpec{}, registry.ProjectSpec{}); err != nil {
			t.Fatal(err)
		}
	}
	base := labelled(t, empty.Image, "base")
	for i := range 103 {
		push(t, h, fmt.Sprintf("p100/app:t%d", i), labelled(t, base, fmt.Sprint(i)))
	}
	repos, err := h.Repositories(ctx, "p")
	if err != nil || !slices.Equal(repos, []string{"p100/app"}) {
		t.Errorf("%v %v", repos, err)
	}
	images, err := h.Images(ctx, "p100/app")
	if err != nil || len(images) != 103 {
		t.Errorf("%d images, %v", len(images), err)
	}
	var pages int
	for _, r := range s.Requests() {
		if strings.HasPrefix(r, "GET /api/v2.0/projects/p100/repositories/app/artifacts") {
			pages++
		}
	}
	if pages < 2 {
		t.Errorf("%d artifact pages requested", pages)
	}
}

// TestCredentials: bad credentials are exit 4 (401); a robot without the permission is exit 4
// (403); a robot with them works; TLS with ca_file.
func TestCredentials(t *testing.T) {
	s := harbortest.Start(t, harbortest.Options{TLS: true})
	h := open(t, s, s.Username, s.Password)
	if _, err := h.EnsureProject(ctx, "team-a", registry.RepositorySpec{}, registry.ProjectSpec{}); err != nil {
		t.Fatal(err)
	}
	if _, err := open(t, s, s.Username, "wrong").Repositories(ctx, ""); exitcode.Of(err) != exitcode.Auth || !strings.Contains(err.Error(), "listProjects") {
		t.Errorf("wrong password: %v", err)
	}
	login, secret := s.AddRobot(harbortest.Robot{Name: "ci", Level: "project", Permissions: []harbortest.Permission{{Kind: "project", Namespace: "team-a",
		Access: harbortest.Allow("repository:pull", "repository:push", "repository:list", "artifact:list", "artifact:read", "project:read")}}})
	robot := open(t, s, login, secret)
	if _, err := robot.EnsureProject(ctx, "team-b", registry.RepositorySpec{}, registry.ProjectSpec{}); exitcode.Of(err) != exitcode.Auth {
		t.Errorf("robot creating a project: %v", err)
	}
	d := push(t, robot, "team-a/app:v1", labelled(t, empty.Image, "a"))
	if images, err := robot.Images(ctx, "team-a/app"); err != nil || len(images) != 1 {
		t.Errorf("robot images: %v %v", images, err)
	}
	if err := robot.DeleteImage(ctx, "team-a/app", d); exitcode.Of(err) != exitcode.Auth {
		t.Errorf("robot without artifact:delete: %v", err)
	}
	if strings.Contains(fmt.Sprint(robot.DeleteImage(ctx, "team-a/app", d)), secret) {
		t.Error("the secret is in an error")
	}
	rc := config.Registry{Type: harbor.Type, URL: s.URL}
	if _, err := harbor.Open(ctx, "x", config.Registry{Type: harbor.Type}, registry.Options{}); exitcode.Of(err) != exitcode.Usage {
		t.Errorf("no url: %v", err)
	}
	noCA, err := harbor.Open(ctx, "noca", rc, registry.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := noCA.Repositories(ctx, ""); err == nil || !strings.Contains(err.Error(), "certificate") {
		t.Errorf("untrusted TLS: %v", err)
	}
}

func remoteWriteIndex(t *testing.T, h *harbor.Harbor, s string, idx v1.ImageIndex) error {
	t.Helper()
	return remote.WriteIndex(ref(t, h, s), idx, h.Remote()...)
}
