package admission_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	admissionv1 "k8s.io/api/admission/v1"

	"github.com/regctl-dev/regctl/internal/admission"
	"github.com/regctl-dev/regctl/internal/localreg/localregtest"
	"github.com/regctl-dev/regctl/internal/registry"
	"github.com/regctl-dev/regctl/internal/sample"
	"github.com/regctl-dev/regctl/internal/sign"
)

var now = time.Date(2026, 6, 30, 12, 0, 0, 0, time.UTC)

func pass(pw string) sign.PassFunc { return func(bool) ([]byte, error) { return []byte(pw), nil } }

type env struct {
	srv     *httptest.Server
	repo    name.Repository
	pub     string
	other   string // another key pair's public key
	digests map[string]string
	server  *admission.Server
}

// setup: an embedded registry with game-server:signed (signed by key, annotation team=core),
// :unsigned and :other (signed by another key), and a webhook over TLS whose rule requires key
// for the registry's game-server/* and excludes its tools/*.
func setup(t testing.TB, enforce bool) *env {
	t.Helper()
	ctx := context.Background()
	host := localregtest.Start(t).Host
	reg, err := registry.NewResolver(nil, registry.Options{}).Registry(host)
	if err != nil {
		t.Fatal(err)
	}
	e := &env{digests: map[string]string{}}
	e.repo, _ = registry.RepositoryRef(reg, "game-server/api")
	dir := t.TempDir()
	priv, pub, err := sign.GenerateKeyPair(filepath.Join(dir, "cosign"), pass("pw"), false)
	if err != nil {
		t.Fatal(err)
	}
	otherPriv, otherPub, err := sign.GenerateKeyPair(filepath.Join(dir, "other"), pass("pw"), false)
	if err != nil {
		t.Fatal(err)
	}
	e.pub, e.other = pub, otherPub
	for _, tag := range []string{"signed", "unsigned", "other", "noteam"} {
		img, _ := sample.Image(sample.ImageSpec{Seed: tag, Created: now})
		if err := sample.Push(ctx, e.repo.Tag(tag), img, reg.Remote()...); err != nil {
			t.Fatal(err)
		}
		d, _ := img.Digest()
		e.digests[tag] = d.String()
	}
	tools, _ := registry.RepositoryRef(reg, "tools/debug")
	img, _ := sample.Image(sample.ImageSpec{Seed: "tools", Created: now})
	if err := sample.Push(ctx, tools.Tag("v1"), img, reg.Remote()...); err != nil {
		t.Fatal(err)
	}
	signWith := func(key, tag string, ann map[string]string) {
		sv, err := sign.LoadSigner(ctx, key, pass("pw"))
		if err != nil {
			t.Fatal(err)
		}
		if _, err := sign.Sign(ctx, reg.Remote(), e.repo.Tag(tag), sv, sign.Options{Annotations: ann}); err != nil {
			t.Fatal(err)
		}
	}
	signWith(priv, "signed", map[string]string{"team": "core"})
	signWith(otherPriv, "other", map[string]string{"team": "core"})
	signWith(priv, "noteam", nil)

	pol := admission.Policy{Enforce: enforce, Exclude: []string{host + "/tools/**"},
		Rules: []admission.Rule{{Images: []string{host + "/game-server/*"}, Keys: []string{pub}, Annotations: map[string]string{"team": "core"}}}}
	if err := pol.Check(); err != nil {
		t.Fatal(err)
	}
	checker := &admission.RegistryChecker{Remote: func(context.Context, string) ([]remote.Option, error) { return reg.Remote(), nil }}
	if err := checker.LoadKeys(ctx, pol); err != nil {
		t.Fatal(err)
	}
	e.server = &admission.Server{Policy: pol, Checker: checker, Timeout: 3 * time.Second, CacheTTL: time.Minute}
	e.server.SetReady(true)
	e.srv = httptest.NewTLSServer(e.server.Handler())
	t.Cleanup(e.srv.Close)
	return e
}

func podJSON(images ...string) string {
	var cs []string
	for i, im := range images {
		cs = append(cs, fmt.Sprintf(`{"name":"c%d","image":%q}`, i, im))
	}
	return `{"apiVersion":"v1","kind":"Pod","metadata":{"name":"p","namespace":"default"},"spec":{"containers":[` + strings.Join(cs, ",") + `]}}`
}

func reviewJSON(version, op, object, old string) string {
	s := `{"apiVersion":"admission.k8s.io/` + version + `","kind":"AdmissionReview","request":{"uid":"705ab4f5-6393-11e8-b7cc-42010a800002",` +
		`"kind":{"group":"","version":"v1","kind":"Pod"},"resource":{"group":"","version":"v1","resource":"pods"},"operation":"` + op + `","namespace":"default","object":` + object
	if old != "" {
		s += `,"oldObject":` + old
	}
	return s + `}}`
}

// post sends a review over TLS and decodes the answer with Kubernetes' own types.
func (e *env) post(t *testing.T, body string) (int, *admissionv1.AdmissionReview) {
	t.Helper()
	resp, err := e.srv.Client().Post(e.srv.URL+"/verify", "application/json", strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var buf bytes.Buffer
	_, _ = buf.ReadFrom(resp.Body)
	if resp.StatusCode != http.StatusOK {
		return resp.StatusCode, nil
	}
	var out admissionv1.AdmissionReview
	if err := json.Unmarshal(buf.Bytes(), &out); err != nil || out.Response == nil {
		t.Fatalf("answer: %v %s", err, buf.String())
	}
	if out.Response.UID != "705ab4f5-6393-11e8-b7cc-42010a800002" || out.Kind != "AdmissionReview" {
		t.Errorf("answer uid/kind: %s", buf.String())
	}
	return resp.StatusCode, &out
}

func TestVerifyWebhook(t *testing.T) {
	e := setup(t, true)
	img := func(tag string) string { return e.repo.Tag(tag).String() }
	cases := []struct {
		name    string
		body    string
		allowed bool
		msg     string
	}{
		{"signed tag", reviewJSON("v1", "CREATE", podJSON(img("signed")), ""), true, ""},
		{"signed digest", reviewJSON("v1", "CREATE", podJSON(e.repo.Digest(e.digests["signed"]).String()), ""), true, ""},
		{"v1beta1", reviewJSON("v1beta1", "CREATE", podJSON(img("signed")), ""), true, ""},
		{"unsigned", reviewJSON("v1", "CREATE", podJSON(img("signed"), img("unsigned")), ""), false, "1 of 2 images failed: " + img("unsigned")},
		{"wrong key", reviewJSON("v1", "CREATE", podJSON(img("other")), ""), false, img("other")},
		{"annotation missing", reviewJSON("v1", "CREATE", podJSON(img("noteam")), ""), false, "team"},
		{"excluded", reviewJSON("v1", "CREATE", podJSON(strings.Replace(img("unsigned"), "game-server/api:unsigned", "tools/debug:v1", 1)), ""), true, ""},
		{"unmatched denied", reviewJSON("v1", "CREATE", podJSON("index.docker.io/library/nginx:1.27"), ""), false, "no rule matches"},
		{"update, images unchanged", reviewJSON("v1", "UPDATE", podJSON(img("unsigned")), podJSON(img("unsigned"))), true, ""},
		{"update, image changed", reviewJSON("v1", "UPDATE", podJSON(img("unsigned")), podJSON(img("signed"))), false, img("unsigned")},
		{"init and ephemeral containers", reviewJSON("v1", "CREATE", `{"spec":{"containers":[{"name":"a","image":"`+img("signed")+`"}],"initContainers":[{"name":"i","image":"`+img("unsigned")+`"}],"ephemeralContainers":[{"name":"d","image":"`+img("other")+`"}]}}`, ""), false, "2 of 3 images failed"},
		{"missing tag", reviewJSON("v1", "CREATE", podJSON(img("nope")), ""), false, "registry unreachable or image missing"},
		{"not a pod", strings.Replace(reviewJSON("v1", "CREATE", `{}`, ""), `"kind":"Pod"`, `"kind":"Deployment"`, 1), true, ""},
		{"delete", reviewJSON("v1", "DELETE", podJSON(img("unsigned")), ""), true, ""},
	}
	for _, c := range cases {
		code, out := e.post(t, c.body)
		if code != http.StatusOK {
			t.Errorf("%s: HTTP %d", c.name, code)
			continue
		}
		r := out.Response
		if r.Allowed != c.allowed {
			t.Errorf("%s: allowed %v, want %v (%+v)", c.name, r.Allowed, c.allowed, r.Result)
			continue
		}
		if !c.allowed && (r.Result == nil || r.Result.Code != 403 || !strings.Contains(r.Result.Message, c.msg)) {
			t.Errorf("%s: %+v, want 403 naming %q", c.name, r.Result, c.msg)
		}
	}
	for _, bad := range []string{`{`, `[]`, `{"apiVersion":"v1","kind":"Pod"}`, `{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview"}`,
		`{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview","request":{"kind":{"kind":"Pod"}}}`} {
		if code, _ := e.post(t, bad); code != http.StatusBadRequest {
			t.Errorf("malformed review %s: HTTP %d, want 400", bad, code)
		}
	}
	for _, p := range []string{"/healthz", "/readyz"} {
		resp, err := e.srv.Client().Get(e.srv.URL + p)
		if err != nil || resp.StatusCode != 200 {
			t.Errorf("%s: %v %v", p, resp, err)
		}
		if resp != nil {
			resp.Body.Close()
		}
	}
}

func TestVerifyWebhookAudit(t *testing.T) {
	e := setup(t, false)
	_, out := e.post(t, reviewJSON("v1", "CREATE", podJSON(e.repo.Tag("unsigned").String()), ""))
	if !out.Response.Allowed || len(out.Response.Warnings) != 1 || !strings.Contains(out.Response.Warnings[0], "audit") {
		t.Errorf("audit: %+v", out.Response)
	}
}

// TestVerifyWebhookUnreachable: a registry that accepts connections and never answers is denied
// within the webhook's deadline, not after the API server gave up.
func TestVerifyWebhookUnreachable(t *testing.T) {
	e := setup(t, true)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			defer c.Close() // held open, never answered
		}
	}()
	e.server.Timeout = 500 * time.Millisecond
	e.server.Policy.Rules = append(e.server.Policy.Rules, admission.Rule{Images: []string{ln.Addr().String() + "/**"}, Keys: []string{e.pub}})
	start := time.Now()
	_, out := e.post(t, reviewJSON("v1", "CREATE", podJSON(ln.Addr().String()+"/app:v1"), ""))
	if out.Response.Allowed || !strings.Contains(out.Response.Result.Message, "deadline") {
		t.Errorf("unreachable registry: %+v", out.Response.Result)
	}
	if took := time.Since(start); took > 3*time.Second {
		t.Errorf("the review took %s, past its 500 ms deadline", took)
	}
}

// countingChecker counts verifications, to show the cache.
type countingChecker struct {
	admission.Checker
	verifies int
}

func (c *countingChecker) Verify(ctx context.Context, d name.Digest, key string, ann map[string]string) error {
	c.verifies++
	return c.Checker.Verify(ctx, d, key, ann)
}

func TestVerifyWebhookCache(t *testing.T) {
	e := setup(t, true)
	cc := &countingChecker{Checker: e.server.Checker}
	clock := now
	srv := &admission.Server{Policy: e.server.Policy, Checker: cc, CacheTTL: time.Minute, Now: func() time.Time { return clock }}
	images := []string{e.repo.Digest(e.digests["signed"]).String()}
	for range 3 {
		if f := srv.CheckImages(context.Background(), images); len(f) != 0 {
			t.Fatal(f)
		}
	}
	if cc.verifies != 1 {
		t.Errorf("%d verifications within the TTL, want 1", cc.verifies)
	}
	clock = clock.Add(2 * time.Minute)
	srv.CheckImages(context.Background(), images)
	if cc.verifies != 2 {
		t.Errorf("%d verifications after the TTL, want 2", cc.verifies)
	}
	// A failure is never cached.
	for range 2 {
		srv.CheckImages(context.Background(), []string{e.repo.Tag("unsigned").String()})
	}
	if cc.verifies != 4 {
		t.Errorf("%d verifications, want 4 (failures are not cached)", cc.verifies)
	}
}

func FuzzDecodeReview(f *testing.F) {
	f.Add([]byte(reviewJSON("v1", "CREATE", podJSON("a/b:c"), "")))
	f.Add([]byte(reviewJSON("v1beta1", "UPDATE", podJSON("a/b:c"), podJSON("x"))))
	f.Add([]byte(`{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview","request":{"uid":"u","object":null}}`))
	f.Add([]byte(`{}`))
	srv := &admission.Server{Policy: admission.Policy{Enforce: true, AllowUnmatched: false}, Checker: nil}
	f.Fuzz(func(t *testing.T, body []byte) {
		// A review is decided without a panic (images no rule matches never reach a checker), and
		// the answer is an AdmissionReview with a response; anything else is a 400.
		out, code := srv.Decide(context.Background(), body)
		if code == http.StatusBadRequest {
			return
		}
		var rv admissionv1.AdmissionReview
		if code != http.StatusOK || json.Unmarshal(out, &rv) != nil || rv.Response == nil || rv.Response.UID == "" {
			t.Fatalf("%q → %d %s", body, code, out)
		}
	})
}
