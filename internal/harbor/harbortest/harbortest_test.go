package harbortest_test

import (
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/remote/transport"

	"github.com/regctl-dev/regctl/internal/harbor/harbortest"
)

// call sends an API request with basic auth and returns status, headers and body.
func call(t *testing.T, s *harbortest.Server, user, pw, method, path, body string) (int, http.Header, string) {
	t.Helper()
	req, err := http.NewRequest(method, s.URL+path, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if user != "" {
		req.SetBasicAuth(user, pw)
	}
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, resp.Header, string(b)
}

func admin(t *testing.T, s *harbortest.Server, method, path, body string) (int, http.Header, string) {
	t.Helper()
	return call(t, s, s.Username, s.Password, method, path, body)
}

func push(t *testing.T, s *harbortest.Server, auth authn.Authenticator, ref string, img v1.Image) error {
	t.Helper()
	r, err := name.ParseReference(s.Host+"/"+ref, name.Insecure)
	if err != nil {
		t.Fatal(err)
	}
	return remote.Write(r, img, remote.WithAuth(auth))
}

func TestProjectsLifecycle(t *testing.T) {
	clock := harbortest.NewClock(time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC))
	s := harbortest.Start(t, harbortest.Options{Now: clock.Now})

	code, h, body := admin(t, s, "POST", "/api/v2.0/projects", `{"project_name":"game-server","metadata":{"public":"false","auto_scan":"true"}}`)
	if code != http.StatusCreated || !strings.HasPrefix(h.Get("Location"), "/api/v2.0/projects/") || body != "" {
		t.Fatalf("create: %d %q %q", code, h.Get("Location"), body)
	}
	code, _, body = admin(t, s, "POST", "/api/v2.0/projects", `{"project_name":"game-server"}`)
	if code != http.StatusConflict || !strings.Contains(body, `"code":"CONFLICT"`) {
		t.Errorf("duplicate: %d %s", code, body)
	}
	code, _, body = admin(t, s, "POST", "/api/v2.0/projects", `{"project_name":"Bad Name"}`)
	if code != http.StatusBadRequest {
		t.Errorf("bad name: %d %s", code, body)
	}
	code, _, body = admin(t, s, "POST", "/api/v2.0/projects", `{"project_name":"x","metadata":{"public":"yes"}}`)
	if code != http.StatusBadRequest || !strings.Contains(body, "public") {
		t.Errorf("bad metadata: %d %s", code, body)
	}

	req, _ := http.NewRequest("GET", s.URL+"/api/v2.0/projects/game-server", nil)
	req.SetBasicAuth(s.Username, s.Password)
	req.Header.Set("X-Is-Resource-Name", "true")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	var p struct {
		Name     string            `json:"name"`
		Metadata map[string]string `json:"metadata"`
		Created  string            `json:"creation_time"`
	}
	json.NewDecoder(resp.Body).Decode(&p)
	resp.Body.Close()
	if p.Name != "game-server" || p.Metadata["auto_scan"] != "true" || p.Metadata["public"] != "false" || p.Created != "2026-01-02T03:04:05.000Z" {
		t.Errorf("project: %+v", p)
	}

	// A push creates the repository; the project then cannot be deleted (412).
	img, _ := random.Image(64, 1)
	if err := push(t, s, &authn.Basic{Username: s.Username, Password: s.Password}, "game-server/api:v1", img); err != nil {
		t.Fatal(err)
	}
	code, _, body = admin(t, s, "DELETE", "/api/v2.0/projects/game-server", "")
	if code != http.StatusPreconditionFailed || !strings.Contains(body, "PRECONDITION") {
		t.Errorf("delete non-empty: %d %s", code, body)
	}
	code, _, _ = admin(t, s, "DELETE", "/api/v2.0/projects/game-server/repositories/api", "")
	if code != http.StatusOK {
		t.Fatalf("delete repository: %d", code)
	}
	code, _, _ = admin(t, s, "DELETE", "/api/v2.0/projects/game-server", "")
	if code != http.StatusOK {
		t.Errorf("delete empty: %d", code)
	}
	code, _, body = admin(t, s, "GET", "/api/v2.0/projects/game-server", "")
	if code != http.StatusNotFound || !strings.Contains(body, `"NOT_FOUND"`) {
		t.Errorf("deleted: %d %s", code, body)
	}
}

func TestPagination(t *testing.T) {
	s := harbortest.Start(t)
	for _, n := range []string{"a1", "a2", "a3", "a4", "a5"} {
		if code, _, body := admin(t, s, "POST", "/api/v2.0/projects", `{"project_name":"`+n+`"}`); code != 201 {
			t.Fatalf("%s: %d %s", n, code, body)
		}
	}
	// 6 projects with library.
	code, h, body := admin(t, s, "GET", "/api/v2.0/projects?page=2&page_size=2", "")
	if code != 200 || h.Get("X-Total-Count") != "6" {
		t.Fatalf("%d %v", code, h)
	}
	var page []struct{ Name string }
	json.Unmarshal([]byte(body), &page)
	if len(page) != 2 || page[0].Name != "a3" || page[1].Name != "a4" {
		t.Errorf("page 2: %s", body)
	}
	link := h.Get("Link")
	if !strings.Contains(link, `page=1`) || !strings.Contains(link, `rel="prev"`) || !strings.Contains(link, `page=3`) || !strings.Contains(link, `rel="next"`) {
		t.Errorf("Link: %q", link)
	}
	_, h, _ = admin(t, s, "GET", "/api/v2.0/projects?page=3&page_size=2", "")
	if strings.Contains(h.Get("Link"), "next") {
		t.Errorf("last page has a next link: %q", h.Get("Link"))
	}
}

func TestOversizedPageIs422(t *testing.T) {
	s := harbortest.Start(t, harbortest.Options{NoSpec: true}) // the request itself breaks the spec
	code, _, body := admin(t, s, "GET", "/api/v2.0/projects?page_size=101", "")
	if code != http.StatusUnprocessableEntity || !strings.Contains(body, "page_size") {
		t.Errorf("%d %s", code, body)
	}
}

func TestAuthAndRobots(t *testing.T) {
	s := harbortest.Start(t)
	admin(t, s, "POST", "/api/v2.0/projects", `{"project_name":"team-a"}`)
	admin(t, s, "POST", "/api/v2.0/projects", `{"project_name":"team-b"}`)
	pushLogin, pushSecret := s.AddRobot(harbortest.Robot{Name: "ci", Level: "project", Permissions: []harbortest.Permission{
		{Kind: "project", Namespace: "team-a", Access: harbortest.Allow("repository:pull", "repository:push", "artifact:list", "repository:list")}}})
	if pushLogin != "robot$team-a+ci" {
		t.Errorf("login %q", pushLogin)
	}
	pullLogin, pullSecret := s.AddRobot(harbortest.Robot{Name: "reader", Level: "project", Permissions: []harbortest.Permission{
		{Kind: "project", Namespace: "team-a", Access: harbortest.Allow("repository:pull")}}})

	if code, _, _ := call(t, s, "admin", "wrong", "GET", "/api/v2.0/projects", ""); code != http.StatusUnauthorized {
		t.Errorf("bad password: %d", code)
	}
	if code, _, _ := call(t, s, "", "", "GET", "/api/v2.0/projects/team-a/repositories", ""); code != http.StatusUnauthorized {
		t.Errorf("anonymous on a private project: %d", code)
	}
	if code, _, _ := call(t, s, pullLogin, pullSecret, "GET", "/api/v2.0/projects/team-a/repositories", ""); code != http.StatusForbidden {
		t.Errorf("robot without repository:list: %d", code)
	}
	if code, _, _ := call(t, s, pushLogin, pushSecret, "POST", "/api/v2.0/projects", `{"project_name":"mine"}`); code != http.StatusForbidden {
		t.Errorf("project robot creating a project: %d", code)
	}
	code, _, body := call(t, s, pushLogin, pushSecret, "GET", "/api/v2.0/projects", "")
	if code != 200 || !strings.Contains(body, `"team-a"`) || strings.Contains(body, `"team-b"`) || !strings.Contains(body, `"library"`) {
		t.Errorf("robot's project list: %d %s", code, body)
	}

	img, _ := random.Image(64, 1)
	if err := push(t, s, &authn.Basic{Username: pushLogin, Password: pushSecret}, "team-a/app:v1", img); err != nil {
		t.Fatalf("robot push: %v", err)
	}
	err := push(t, s, &authn.Basic{Username: pullLogin, Password: pullSecret}, "team-a/app:v2", img)
	var terr *transport.Error
	if err == nil || !asTransport(err, &terr) || terr.StatusCode != http.StatusForbidden {
		t.Errorf("pull-only robot pushing: %v", err)
	}
	err = push(t, s, &authn.Basic{Username: pushLogin, Password: pushSecret}, "team-b/app:v1", img)
	if err == nil || !asTransport(err, &terr) || terr.StatusCode != http.StatusForbidden {
		t.Errorf("robot pushing to another project: %v", err)
	}
	err = push(t, s, &authn.Basic{Username: pushLogin, Password: "wrong"}, "team-a/app:v3", img)
	if err == nil || !asTransport(err, &terr) || terr.StatusCode != http.StatusUnauthorized {
		t.Errorf("wrong secret: %v", err)
	}
	// The pull-only robot can pull.
	ref, _ := name.ParseReference(s.Host+"/team-a/app:v1", name.Insecure)
	if _, err := remote.Image(ref, remote.WithAuth(&authn.Basic{Username: pullLogin, Password: pullSecret})); err != nil {
		t.Errorf("robot pull: %v", err)
	}
	// Anonymous pulls work on public projects only.
	if _, err := remote.Image(ref); err == nil {
		t.Error("anonymous pull from a private project worked")
	}
	admin(t, s, "PUT", "/api/v2.0/projects/team-a", `{"metadata":{"public":"true"}}`)
	if _, err := remote.Image(ref); err != nil {
		t.Errorf("anonymous pull from a public project: %v", err)
	}
}

func asTransport(err error, target **transport.Error) bool {
	for e := err; e != nil; {
		if t, ok := e.(*transport.Error); ok {
			*target = t
			return true
		}
		u, ok := e.(interface{ Unwrap() error })
		if !ok {
			return false
		}
		e = u.Unwrap()
	}
	return false
}

type artifactJSON struct {
	Digest   string `json:"digest"`
	PushTime string `json:"push_time"`
	PullTime string `json:"pull_time"`
	Tags     []struct {
		Name     string `json:"name"`
		PushTime string `json:"push_time"`
		PullTime string `json:"pull_time"`
	} `json:"tags"`
	References []struct {
		ChildDigest string `json:"child_digest"`
		Platform    struct {
			Architecture string `json:"architecture"`
		} `json:"platform"`
	} `json:"references"`
	Accessories []struct {
		Digest  string `json:"digest"`
		Type    string `json:"type"`
		Subject string `json:"subject_artifact_digest"`
	} `json:"accessories"`
}

func TestArtifactsFromWhatWasPushed(t *testing.T) {
	clock := harbortest.NewClock(time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC))
	s := harbortest.Start(t, harbortest.Options{Now: clock.Now})
	admin(t, s, "POST", "/api/v2.0/projects", `{"project_name":"game-server"}`)
	auth := &authn.Basic{Username: s.Username, Password: s.Password}

	// A nested repository name: double-encoded in the API path.
	amd, _ := random.Image(128, 1)
	arm, _ := random.Image(128, 1)
	idx := mutate.AppendManifests(empty.Index,
		mutate.IndexAddendum{Add: amd, Descriptor: v1.Descriptor{Platform: &v1.Platform{OS: "linux", Architecture: "amd64"}}},
		mutate.IndexAddendum{Add: arm, Descriptor: v1.Descriptor{Platform: &v1.Platform{OS: "linux", Architecture: "arm64"}}})
	r, _ := name.ParseReference(s.Host+"/game-server/sub/api:v1", name.Insecure)
	if err := remote.WriteIndex(r, idx, remote.WithAuth(auth)); err != nil {
		t.Fatal(err)
	}
	clock.Advance(time.Hour)
	old, _ := random.Image(64, 1)
	if err := push(t, s, auth, "game-server/sub/api:old", old); err != nil {
		t.Fatal(err)
	}
	// A cosign-style signature of the index, by tag.
	idxDigest, _ := idx.Digest()
	sig, _ := random.Image(32, 1)
	sig, _ = mutate.Config(sig, v1.Config{})
	if err := push(t, s, auth, "game-server/sub/api:sha256-"+idxDigest.Hex+".sig", sig); err != nil {
		t.Fatal(err)
	}
	clock.Advance(time.Hour)
	if _, err := remote.Image(mustRef(t, s.Host+"/game-server/sub/api:old"), remote.WithAuth(auth)); err != nil {
		t.Fatal(err)
	}

	enc := url.PathEscape(url.PathEscape("sub/api"))
	if enc != "sub%252Fapi" {
		t.Fatalf("encoding %q", enc)
	}
	code, h, body := admin(t, s, "GET", "/api/v2.0/projects/game-server/repositories/"+enc+"/artifacts?with_tag=true&with_accessory=true&page_size=100", "")
	if code != 200 {
		t.Fatalf("%d %s", code, body)
	}
	var arts []artifactJSON
	if err := json.Unmarshal([]byte(body), &arts); err != nil {
		t.Fatal(err)
	}
	// Listed: the index and "old"; not the platform children, not the signature.
	if len(arts) != 2 || h.Get("X-Total-Count") != "2" {
		t.Fatalf("artifacts: %s", body)
	}
	byTag := map[string]artifactJSON{}
	for _, a := range arts {
		for _, tg := range a.Tags {
			byTag[tg.Name] = a
		}
	}
	ix, o := byTag["v1"], byTag["old"]
	if ix.Digest != idxDigest.String() || len(ix.References) != 2 || ix.References[1].Platform.Architecture != "arm64" {
		t.Errorf("index: %+v", ix)
	}
	if ix.PushTime != "2026-03-01T12:00:00.000Z" || ix.PullTime != "0001-01-01T00:00:00.000Z" {
		t.Errorf("index times: %s %s", ix.PushTime, ix.PullTime)
	}
	if len(ix.Accessories) != 1 || ix.Accessories[0].Type != "signature.cosign" || ix.Accessories[0].Subject != idxDigest.String() {
		t.Errorf("accessories: %+v", ix.Accessories)
	}
	if o.PushTime != "2026-03-01T13:00:00.000Z" || o.PullTime != "2026-03-01T14:00:00.000Z" || o.Tags[0].PullTime != "2026-03-01T14:00:00.000Z" {
		t.Errorf("old: %+v", o)
	}
	// Single encoding reaches another path, as on Harbor.
	if code, _, _ := admin(t, s, "GET", "/api/v2.0/projects/game-server/repositories/sub%2Fapi/artifacts", ""); code != http.StatusNotFound {
		t.Errorf("single-encoded name: %d", code)
	}

	// A child of the index cannot be deleted alone; the index goes with its children and signature.
	amdDigest, _ := amd.Digest()
	code, _, body = admin(t, s, "DELETE", "/api/v2.0/projects/game-server/repositories/"+enc+"/artifacts/"+amdDigest.String(), "")
	if code != http.StatusPreconditionFailed {
		t.Errorf("deleting a child: %d %s", code, body)
	}
	code, _, _ = admin(t, s, "DELETE", "/api/v2.0/projects/game-server/repositories/"+enc+"/artifacts/v1", "")
	if code != http.StatusOK {
		t.Fatalf("delete index: %d", code)
	}
	if _, err := remote.Head(mustRef(t, s.Host+"/game-server/sub/api@"+amdDigest.String()), remote.WithAuth(auth)); err == nil {
		t.Error("the child manifest is still in the registry")
	}
	if _, err := remote.Head(mustRef(t, s.Host+"/game-server/sub/api:v1"), remote.WithAuth(auth)); err == nil {
		t.Error("the tag v1 is still in the registry")
	}
	code, _, body = admin(t, s, "GET", "/api/v2.0/projects/game-server/repositories/"+enc+"/artifacts", "")
	if code != 200 || strings.Count(body, `"digest"`) != 1 {
		t.Errorf("after delete: %s", body)
	}
	if v := s.Emulator().Validator().Operations(); v["listArtifacts"] == 0 || v["deleteArtifact"] == 0 {
		t.Errorf("operations validated: %v", v)
	}
}

func mustRef(t *testing.T, s string) name.Reference {
	t.Helper()
	r, err := name.ParseReference(s, name.Insecure)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func TestHealthPingSysteminfo(t *testing.T) {
	s := harbortest.Start(t, harbortest.Options{TLS: true})
	s.Emulator().SetHealth("trivy", "scanner down")
	pem, err := os.ReadFile(s.CAFile)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(pem)
	client := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}}
	get := func(path string) (int, string) {
		req, _ := http.NewRequest("GET", s.URL+path, nil)
		resp, err := client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	if code, body := get("/api/v2.0/ping"); code != 200 || body != "Pong" {
		t.Errorf("ping: %d %q", code, body)
	}
	if code, body := get("/api/v2.0/health"); code != 200 || !strings.Contains(body, `"status":"unhealthy"`) || !strings.Contains(body, "scanner down") {
		t.Errorf("health: %d %s", code, body)
	}
	if code, body := get("/api/v2.0/systeminfo"); code != 200 || strings.Contains(body, "harbor_version") {
		t.Errorf("anonymous systeminfo shows the version: %d %s", code, body)
	}
}
