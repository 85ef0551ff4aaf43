package harbor_test

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/remote/transport"

	"github.com/regctl-dev/regctl/internal/config"
	"github.com/regctl-dev/regctl/internal/exitcode"
	"github.com/regctl-dev/regctl/internal/harbor"
	"github.com/regctl-dev/regctl/internal/harbor/harbortest"
	"github.com/regctl-dev/regctl/internal/registry"
)

// TestRobotCreate: a project robot with push and pull, created by the admin, logs in with its
// secret and can push into its project and nowhere else; a second create of the same name is
// refused, not "unchanged" (Harbor cannot show the secret again); the listing has its
// permissions and no secret.
func TestRobotCreate(t *testing.T) {
	clock := harbortest.NewClock(time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC))
	s := harbortest.Start(t, harbortest.Options{Now: clock.Now})
	admin := open(t, s, s.Username, s.Password)
	for _, p := range []string{"game-server", "other"} {
		if _, err := admin.EnsureProject(ctx, p, registry.RepositorySpec{}, registry.ProjectSpec{}); err != nil {
			t.Fatal(err)
		}
	}
	created, err := admin.CreateRobot(ctx, harbor.RobotSpec{Project: "game-server", Name: "ci", Description: "CI pushes",
		Access: harbor.RobotAccessFor(true, true, false, false), ExpiresDays: 30})
	if err != nil {
		t.Fatal(err)
	}
	if created.Login != "robot$game-server+ci" || created.Secret == "" || created.ExpiresAt == nil ||
		!created.ExpiresAt.Equal(clock.Now().Add(30*24*time.Hour)) {
		t.Fatalf("created %+v", created)
	}
	ci := open(t, s, created.Login, created.Secret)
	push(t, ci, "game-server/api:v1", labelled(t, empty.Image, "ci"))
	if err := remote.Write(ref(t, ci, "other/api:v1"), labelled(t, empty.Image, "x"), ci.Remote()...); !deniedPush(err) {
		t.Errorf("push into another project: %v, want 401 or 403", err)
	}

	_, err = admin.CreateRobot(ctx, harbor.RobotSpec{Project: "game-server", Name: "ci", Access: harbor.RobotAccessFor(true, false, false, false), ExpiresDays: -1})
	if err == nil || !strings.Contains(err.Error(), "exists") || exitcode.Of(err) != exitcode.Error {
		t.Errorf("second create: exit %d %v", exitcode.Of(err), err)
	}
	if _, err := ci.CreateRobot(ctx, harbor.RobotSpec{Project: "game-server", Name: "more", Access: harbor.RobotAccessFor(true, false, false, false), ExpiresDays: -1}); exitcode.Of(err) != exitcode.Auth {
		t.Errorf("a push robot creating robots: exit %d %v", exitcode.Of(err), err)
	}
	if _, err := admin.CreateRobot(ctx, harbor.RobotSpec{Project: "missing", Name: "ci", Access: harbor.RobotAccessFor(true, false, false, false), ExpiresDays: -1}); exitcode.Of(err) != exitcode.NotFound {
		t.Errorf("missing project: exit %d %v", exitcode.Of(err), err)
	}
	for _, bad := range []harbor.RobotSpec{
		{Project: "game-server", Name: "CI", Access: harbor.RobotAccessFor(true, false, false, false), ExpiresDays: -1},
		{Project: "game-server", Name: "ci2", ExpiresDays: -1},
		{Project: "game-server", Name: "ci2", Access: harbor.RobotAccessFor(true, false, false, false), ExpiresDays: 0},
		{Project: "Game", Name: "ci2", Access: harbor.RobotAccessFor(true, false, false, false), ExpiresDays: -1},
	} {
		if _, err := admin.CreateRobot(ctx, bad); exitcode.Of(err) != exitcode.Usage {
			t.Errorf("%+v: exit %d %v", bad, exitcode.Of(err), err)
		}
	}

	listed, err := admin.Robots(ctx, "game-server")
	if err != nil {
		t.Fatal(err)
	}
	if len(listed) != 1 || listed[0].Login != created.Login || listed[0].Duration != 30 || len(listed[0].Access) != 7 {
		t.Fatalf("listed %+v", listed)
	}
	b, _ := json.Marshal(listed)
	cb, _ := json.Marshal(created)
	if strings.Contains(string(b), created.Secret) || strings.Contains(string(cb), created.Secret) {
		t.Errorf("a secret in JSON: %s %s", b, cb)
	}
	if other, err := admin.Robots(ctx, "other"); err != nil || len(other) != 0 {
		t.Errorf("robots of other: %v %v", other, err)
	}

	// Expired: the robot's secret stops working.
	clock.Advance(31 * 24 * time.Hour)
	if _, err := ci.Repositories(ctx, "game-server/"); exitcode.Of(err) != exitcode.Auth {
		t.Errorf("expired robot: exit %d %v", exitcode.Of(err), err)
	}
	if vs := s.Emulator().Validator().Violations(); len(vs) > 0 {
		t.Fatalf("outside Harbor's spec:\n%s", strings.Join(vs, "\n"))
	}
}

// TestHealth: a healthy emulator passes every check; an unhealthy component, a missing scanner
// and credentials that may not list scanners are each reported, and the version comes from
// systeminfo.
func TestHealth(t *testing.T) {
	s := harbortest.Start(t)
	admin := open(t, s, s.Username, s.Password)
	rep := admin.Health(ctx)
	if !rep.Healthy || rep.Version != harbortest.Version {
		t.Fatalf("healthy emulator: %+v", rep)
	}
	want := map[string]string{"ping": "ok", "component database": "ok", "component trivy": "ok", "version": "ok", "scanner": "ok"}
	checkChecks(t, rep, want)

	s.Emulator().SetHealth("database", "dial tcp: connection refused")
	s.Emulator().SetScanners()
	rep = admin.Health(ctx)
	if rep.Healthy {
		t.Errorf("unhealthy database reported healthy: %+v", rep)
	}
	checkChecks(t, rep, map[string]string{"component database": "fail", "scanner": "fail", "ping": "ok"})

	login, secret := s.AddRobot(harbortest.Robot{Name: "ci", Level: "project",
		Permissions: []harbortest.Permission{{Kind: "project", Namespace: "library", Access: harbortest.Allow("repository:pull")}}})
	s.Emulator().SetHealth("database", "")
	s.Emulator().SetScanners("Trivy")
	rep = open(t, s, login, secret).Health(ctx)
	if !rep.Healthy {
		t.Errorf("a project robot cannot list scanners, which is unknown, not a failure: %+v", rep)
	}
	checkChecks(t, rep, map[string]string{"scanner": "unknown", "version": "ok"})

	if vs := s.Emulator().Validator().Violations(); len(vs) > 0 {
		t.Fatalf("outside Harbor's spec:\n%s", strings.Join(vs, "\n"))
	}
}

// TestHealthHostile: a server that is not Harbor (a web page, an empty answer, garbage JSON)
// fails the checks with what was wrong, and never panics.
func TestHealthHostile(t *testing.T) {
	for name, h := range map[string]http.HandlerFunc{
		"html": func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", "text/html")
			_, _ = w.Write([]byte("<html>login</html>"))
		},
		"empty": func(w http.ResponseWriter, r *http.Request) {},
		"garbage": func(w http.ResponseWriter, r *http.Request) {
			_, _ = w.Write([]byte(`{"components":[{"name":1}],"status":[]}`))
		},
		"nulls": func(w http.ResponseWriter, r *http.Request) {
			_, _ = w.Write([]byte(`{"status":"healthy","components":[null]}`))
		},
		"down": func(w http.ResponseWriter, r *http.Request) {
			w.WriteHeader(http.StatusServiceUnavailable)
		},
	} {
		t.Run(name, func(t *testing.T) {
			srv := httptest.NewServer(h)
			t.Cleanup(srv.Close)
			reg, err := harbor.Open(ctx, "h", config.Registry{Type: harbor.Type, URL: srv.URL, Username: "admin", Password: "s3cret"},
				registry.Options{Transport: http.DefaultTransport})
			if err != nil {
				t.Fatal(err)
			}
			rep := reg.(*harbor.Harbor).Health(ctx)
			if rep.Healthy {
				t.Errorf("healthy: %+v", rep)
			}
			b, _ := json.Marshal(rep)
			if strings.Contains(string(b), "s3cret") {
				t.Errorf("the password in the report: %s", b)
			}
		})
	}
}

func deniedPush(err error) bool {
	var te *transport.Error
	return errors.As(err, &te) && (te.StatusCode == http.StatusUnauthorized || te.StatusCode == http.StatusForbidden)
}

func checkChecks(t *testing.T, rep *harbor.HealthReport, want map[string]string) {
	t.Helper()
	got := map[string]string{}
	for _, c := range rep.Checks {
		got[c.Check] = c.Status
	}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("check %s: %q, want %q (all: %+v)", k, got[k], v, rep.Checks)
		}
	}
}

// TestLintGuideValues: the guide's harbor-values.yaml, unmodified, has the three problems that
// break its install: two ${VAR} placeholders, and notary in two places; its externalURL matches
// the ingress host.
func TestLintGuideValues(t *testing.T) {
	data, err := os.ReadFile("../../testdata/harbor/harbor-values.yaml")
	if err != nil {
		t.Fatal(err)
	}
	fs, err := harbor.LintValues("harbor-values.yaml", data)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, f := range fs {
		got = append(got, f.Severity+" "+f.Path)
		if f.Line == 0 {
			t.Errorf("no line: %+v", f)
		}
	}
	want := []string{"error expose.ingress.hosts.notary", "error harborAdminPassword", "error database.internal.password", "error notary"}
	if strings.Join(got, ",") != strings.Join(want, ",") {
		t.Errorf("findings %v, want %v\n%+v", got, want, fs)
	}
}

func TestLintValuesCases(t *testing.T) {
	for _, c := range []struct {
		name, yaml string
		want       []string // "severity path"
	}{
		{"host mismatch", "externalURL: https://harbor.example.com\nexpose:\n  ingress:\n    hosts:\n      core: registry.example.com\n", []string{"error externalURL"}},
		{"other expose type", "externalURL: https://harbor.example.com\nexpose:\n  type: loadBalancer\n  ingress:\n    hosts:\n      core: registry.example.com\n", nil},
		{"no externalURL", "expose:\n  type: ingress\n", []string{"error externalURL"}},
		{"http with tls", "externalURL: http://r.example.com\nexpose:\n  tls:\n    enabled: true\n", []string{"warning externalURL"}},
		{"bad trivy", "externalURL: https://r.example.com\ntrivy:\n  severity: HIGH,SEVERE\n  vulnType: os,kernel\n", []string{"error trivy.severity", "error trivy.vulnType"}},
		{"placeholder in a list", "externalURL: https://r.example.com\nextraEnv:\n  - value: ${TOKEN:-x}\n", []string{"error extraEnv[0].value"}},
		{"dollar in a password", "externalURL: https://r.example.com\nharborAdminPassword: pa$$w0rd\n", nil},
		{"clean", "externalURL: https://r.example.com\nexpose:\n  ingress:\n    hosts:\n      core: r.example.com\n", nil},
	} {
		fs, err := harbor.LintValues("v.yaml", []byte(c.yaml))
		if err != nil {
			t.Errorf("%s: %v", c.name, err)
			continue
		}
		var got []string
		for _, f := range fs {
			got = append(got, f.Severity+" "+f.Path)
		}
		if strings.Join(got, ",") != strings.Join(c.want, ",") {
			t.Errorf("%s: %v, want %v (%+v)", c.name, got, c.want, fs)
		}
	}
	for _, bad := range []string{"", "- a\n- b\n", "a: [\n", "just text"} {
		if _, err := harbor.LintValues("v.yaml", []byte(bad)); exitcode.Of(err) != exitcode.Usage || !strings.Contains(err.Error(), "v.yaml") {
			t.Errorf("%q: exit %d %v", bad, exitcode.Of(err), err)
		}
	}
}

func FuzzLintValues(f *testing.F) {
	if data, err := os.ReadFile("../../testdata/harbor/harbor-values.yaml"); err == nil {
		f.Add(data)
	}
	f.Add([]byte("externalURL: ${X}\nnotary: {enabled: true}\n"))
	f.Add([]byte("a: &x [*x]\n"))
	f.Add([]byte("expose: {ingress: {hosts: {core: [1]}}}\nexternalURL: [x]\ntrivy: {severity: [a]}\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		fs, err := harbor.LintValues("v.yaml", data)
		if err != nil && exitcode.Of(err) != exitcode.Usage {
			t.Fatalf("exit %d: %v", exitcode.Of(err), err)
		}
		for _, f := range fs {
			if f.Path == "" || f.Message == "" || (f.Severity != "error" && f.Severity != "warning") {
				t.Fatalf("finding %+v", f)
			}
		}
	})
}

// TestNativeScan: Harbor's scan job runs in the background; NativeScan polls it and reads the
// report; an index is refused (422, exit 2), a Harbor without a scanner is named, a failed scan
// is an error naming its status.
func TestNativeScan(t *testing.T) {
	release := make(chan struct{})
	var scanned []string
	s := harbortest.Start(t, harbortest.Options{Scanner: func(ctx context.Context, repo, digest string) ([]harbortest.Vulnerability, error) {
		<-release // the job is still Running while the client polls
		scanned = append(scanned, repo+"@"+digest)
		if strings.Contains(repo, "broken") {
			return nil, errors.New("the adapter crashed")
		}
		return []harbortest.Vulnerability{
			{ID: "CVE-2024-5535", Package: "openssl", Version: "3.3.0-r2", FixVersion: "3.3.1-r0", Severity: "Critical", CVSS3: 9.1, Links: []string{"https://avd.aquasec.com/nvd/cve-2024-5535"}},
			{ID: "CVE-2024-0001", Package: "zlib", Version: "1.3", Severity: "Negligible"},
		}, nil
	}})
	h := open(t, s, s.Username, s.Password)
	if _, err := h.EnsureProject(ctx, "game-server", registry.RepositorySpec{}, registry.ProjectSpec{}); err != nil {
		t.Fatal(err)
	}
	d := push(t, h, "game-server/api:v1", labelled(t, empty.Image, "v1"))
	go func() { time.Sleep(300 * time.Millisecond); close(release) }()
	fs, err := h.NativeScan(ctx, "game-server/api", d)
	if err != nil {
		t.Fatal(err)
	}
	if len(fs) != 2 || fs[0].Severity != "CRITICAL" || fs[0].CVSS != 9.1 || fs[0].FixedVersion != "3.3.1-r0" || fs[0].URL == "" || fs[1].Severity != "LOW" {
		t.Errorf("findings %+v", fs)
	}
	if len(scanned) != 1 {
		t.Errorf("scanned %v", scanned)
	}

	bd := push(t, h, "game-server/broken:v1", labelled(t, empty.Image, "b"))
	if _, err := h.NativeScan(ctx, "game-server/broken", bd); err == nil || !strings.Contains(err.Error(), "ended Error") {
		t.Errorf("a failed scan: %v", err)
	}
	idx := mutate.AppendManifests(empty.Index, mutate.IndexAddendum{Add: labelled(t, empty.Image, "p")})
	if err := remoteWriteIndex(t, h, "game-server/api:multi", idx); err != nil {
		t.Fatal(err)
	}
	id, _ := idx.Digest()
	if _, err := h.NativeScan(ctx, "game-server/api", id); exitcode.Of(err) != exitcode.Usage {
		t.Errorf("an index: exit %d %v", exitcode.Of(err), err)
	}
	s.Emulator().SetScanners()
	if _, err := h.NativeScan(ctx, "game-server/api", d); err == nil || !strings.Contains(err.Error(), "no scanner") {
		t.Errorf("no scanner: %v", err)
	}
	if vs := s.Emulator().Validator().Violations(); len(vs) > 0 {
		t.Fatalf("outside Harbor's spec:\n%s", strings.Join(vs, "\n"))
	}
}
