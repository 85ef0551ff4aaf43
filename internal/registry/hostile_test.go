package registry_test

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/authn"
	v1 "github.com/google/go-containerregistry/pkg/v1"

	"github.com/regctl-dev/regctl/internal/exitcode"
	"github.com/regctl-dev/regctl/internal/registry"
	"github.com/regctl-dev/regctl/internal/registry/hostiletest"
)

const (
	ctManifest = "application/vnd.oci.image.manifest.v1+json"
	ctIndex    = "application/vnd.oci.image.index.v1+json"
	validCfg   = `{"created":"2026-06-01T00:00:00Z","architecture":"amd64","os":"linux","rootfs":{"type":"layers","diff_ids":[]},"config":{}}`
	validTags  = `{"name":"app","tags":["v1"]}`
	validCat   = `{"repositories":["app","app/sub"]}`
)

func sha(b string) string { s := sha256.Sum256([]byte(b)); return "sha256:" + hex.EncodeToString(s[:]) }

var validManifest = `{"schemaVersion":2,"mediaType":"` + ctManifest + `","config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"` +
	sha(validCfg) + `","size":` + strconv.Itoa(len(validCfg)) + `},"layers":[]}`

// hostileRegistry is a registry whose answers are valid except the one endpoint a case makes
// hostile: tags, catalog, manifest (HEAD of the tag and GET of the digest the HEAD announced),
// referrers or delete.
type hostileRegistry struct {
	tags, catalog, manifest, referrers, del http.Handler
	manifestBody                            string // what the HEAD's digest is computed over
	noDigestHeader                          bool
}

func (h *hostileRegistry) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	p := r.URL.Path
	valid := func(ct, body string) http.Handler { return hostiletest.JSON("valid", ct, body) }
	pick := func(hh http.Handler, def http.Handler) http.Handler {
		if hh != nil {
			return hh
		}
		return def
	}
	switch {
	case p == "/v2/" || p == "/v2":
		valid("application/json", `{}`).ServeHTTP(w, r)
	case p == "/v2/_catalog":
		pick(h.catalog, valid("application/json", validCat)).ServeHTTP(w, r)
	case strings.HasSuffix(p, "/tags/list"):
		pick(h.tags, valid("application/json", validTags)).ServeHTTP(w, r)
	case strings.Contains(p, "/referrers/"):
		pick(h.referrers, hostiletest.Answer{Status: http.StatusNotFound, ContentType: "application/json", Body: []byte(`{"errors":[{"code":"UNSUPPORTED"}]}`)}).ServeHTTP(w, r)
	case strings.Contains(p, "/blobs/"):
		valid("application/octet-stream", validCfg).ServeHTTP(w, r)
	case strings.Contains(p, "/manifests/") && r.Method == http.MethodDelete:
		pick(h.del, hostiletest.Answer{Status: http.StatusAccepted}).ServeHTTP(w, r)
	case strings.Contains(p, "/manifests/"):
		body := validManifest
		if h.manifest != nil {
			body = h.manifestBody
		}
		if !h.noDigestHeader {
			w.Header().Set("Docker-Content-Digest", sha(body))
		}
		pick(h.manifest, valid(ctManifest, validManifest)).ServeHTTP(w, r)
	default:
		http.NotFound(w, r)
	}
}

func hostileOCI(t *testing.T, h *hostileRegistry) *registry.OCI {
	t.Helper()
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	return registry.NewOCI(registry.OCIConfig{Name: "hostile", Host: strings.TrimPrefix(srv.URL, "http://"), Insecure: true,
		Keychain: authn.NewMultiKeychain()})
}

// outcome is what a case must end in: ok (with check) or an error with exit code code.
type outcome struct {
	code  int // exitcode.OK: no error
	check func(t *testing.T, v any)
}

func expectOutcome(t *testing.T, v any, err error, want outcome) {
	t.Helper()
	if got := exitcode.Of(err); got != want.code {
		t.Fatalf("exit %d, want %d (err: %v; value %+v)", got, want.code, err, v)
	}
	if err != nil && len(err.Error()) < 10 {
		t.Errorf("error too terse to name the call: %q", err)
	}
	if err == nil && want.check != nil {
		want.check(t, v)
	}
}

func tagsAre(want ...string) func(*testing.T, any) {
	return func(t *testing.T, v any) {
		t.Helper()
		got := v.([]string)
		if strings.Join(got, ",") != strings.Join(want, ",") {
			t.Errorf("got %q, want %q", got, want)
		}
	}
}

// listAnswers are the hostile answers to a tag list or catalog page, plus list-specific ones.
func listAnswers(valid string, next string) hostiletest.Set {
	return hostiletest.Of("application/json", valid, registry.MaxListSize+1).With(
		hostiletest.Answer{Name: "link-loop", ContentType: "application/json", Body: []byte(valid),
			Header: http.Header{"Link": {`<` + next + `>; rel="next"`}}},
		hostiletest.Answer{Name: "link-garbage", ContentType: "application/json", Body: []byte(valid), Header: http.Header{"Link": {`garbage`}}},
		hostiletest.Answer{Name: "link-elsewhere", ContentType: "application/json", Body: []byte(valid),
			Header: http.Header{"Link": {`<http://elsewhere.invalid` + next + `>; rel="next"`}}},
		hostiletest.JSON("null-list", "application/json", `{"name":"app","tags":null,"repositories":null}`),
		hostiletest.JSON("empty-name", "application/json", `{"name":"app","tags":[""],"repositories":[]}`),
		hostiletest.Answer{Name: "denied", Status: http.StatusForbidden, ContentType: "application/json", Body: []byte(`{"errors":[{"code":"DENIED","message":"no"}]}`)},
	)
}

// The documented outcome of each hostile answer to a tag list: an empty or null
// list is no tags, 404 is exit 5, 403 exit 4, every malformed answer exit 1.
func listOutcome(name string) int {
	if c, ok := listOutcomes[name]; ok {
		return c
	}
	return exitcode.Error
}

var listOutcomes = map[string]int{
	"empty-object": exitcode.OK, "null": exitcode.OK, "wrong-type": exitcode.OK, "no-type": exitcode.OK, "null-list": exitcode.OK,
	"html-404": exitcode.NotFound, "denied": exitcode.Auth,
}

func TestHostileTagLists(t *testing.T) {
	for _, a := range listAnswers(validTags, "/v2/app/tags/list?n=100&last=v1") {
		t.Run(a.Name, func(t *testing.T) {
			o := hostileOCI(t, &hostileRegistry{tags: a})
			tags, err := o.Tags(context.Background(), "app")
			want := outcome{code: listOutcome(a.Name)}
			switch a.Name {
			case "empty-object", "null", "null-list":
				want.check = tagsAre()
			case "wrong-type", "no-type":
				want.check = tagsAre("v1")
			case "empty-name":
				if err != nil && !strings.Contains(err.Error(), "not a tag") {
					t.Errorf("error does not say what was wrong: %v", err)
				}
			case "link-loop":
				if err != nil && !strings.Contains(err.Error(), "pagination loop") {
					t.Errorf("error does not say what was wrong: %v", err)
				}
			case "link-elsewhere":
				if err != nil && !strings.Contains(err.Error(), "not at the registry it came from") {
					t.Errorf("error does not say what was wrong: %v", err)
				}
			case "oversized":
				if err != nil && !strings.Contains(err.Error(), "larger than the 16 MiB limit") {
					t.Errorf("error does not say what was wrong: %v", err)
				}
			}
			expectOutcome(t, tags, err, want)
			if err != nil && !strings.Contains(err.Error(), "listing tags of") {
				t.Errorf("error does not name the call: %v", err)
			}
		})
	}
}

func TestHostileCatalogs(t *testing.T) {
	for _, a := range listAnswers(validCat, "/v2/_catalog?n=100&last=app") {
		t.Run(a.Name, func(t *testing.T) {
			o := hostileOCI(t, &hostileRegistry{catalog: a})
			repos, err := o.Repositories(context.Background(), "app")
			want := outcome{code: listOutcome(a.Name)}
			switch a.Name {
			case "empty-object", "null", "null-list":
				want.check = tagsAre()
			case "wrong-type", "no-type":
				want.check = tagsAre("app", "app/sub")
			case "empty-name":
				// {"repositories":[]}: a valid, empty catalog.
				want.code, want.check = exitcode.OK, tagsAre()
			}
			expectOutcome(t, repos, err, want)
			if err != nil && !strings.Contains(err.Error(), "listing repositories of") {
				t.Errorf("error does not name the call: %v", err)
			}
		})
	}
}

func TestHostileEnsureRepository(t *testing.T) {
	for _, a := range listAnswers(validTags, "/v2/app/tags/list?n=100&last=v1") {
		t.Run(a.Name, func(t *testing.T) {
			o := hostileOCI(t, &hostileRegistry{tags: a})
			res, err := o.EnsureRepository(context.Background(), "app", registry.RepositorySpec{})
			want := outcome{code: exitcode.Error}
			switch a.Name {
			case "empty-object", "null", "null-list", "wrong-type", "no-type", "link-loop", "link-garbage", "link-elsewhere", "empty-name":
				// Only the first page is read: it answers that the repository exists.
				want = outcome{check: func(t *testing.T, v any) {
					if st := v.(registry.EnsureResult).Status; st != registry.StatusExists {
						t.Errorf("status %q, want %q", st, registry.StatusExists)
					}
				}}
				if a.Name == "link-garbage" || a.Name == "link-elsewhere" { // go-containerregistry checks the first page's Link
					want = outcome{code: exitcode.Error}
				}
			case "html-404":
				want = outcome{check: func(t *testing.T, v any) {
					if st := v.(registry.EnsureResult).Status; st != registry.StatusOnPush {
						t.Errorf("status %q, want %q", st, registry.StatusOnPush)
					}
				}}
			case "denied":
				want.code = exitcode.Auth
			}
			expectOutcome(t, res, err, want)
		})
	}
}

// manifestAnswer makes the manifest endpoint answer a: HEAD announces the digest of a's body, so
// the body reaches the parser (a digest mismatch would hide what the parser does with it).
func manifestAnswer(a hostiletest.Answer) *hostileRegistry {
	return &hostileRegistry{manifest: a, manifestBody: string(a.Body)}
}

func TestHostileManifests(t *testing.T) {
	answers := hostiletest.Of(ctManifest, validManifest, registry.MaxManifestSize+1).With(
		hostiletest.JSON("index-child-without-digest", ctIndex, `{"schemaVersion":2,"mediaType":"`+ctIndex+`","manifests":[{"mediaType":"`+ctManifest+`","size":10}]}`),
		hostiletest.JSON("index-child-bad-digest", ctIndex, `{"schemaVersion":2,"mediaType":"`+ctIndex+`","manifests":[{"mediaType":"`+ctManifest+`","size":10,"digest":"sha256:zz"}]}`),
		hostiletest.JSON("config-null", ctManifest, `{"schemaVersion":2,"mediaType":"`+ctManifest+`","config":null,"layers":[]}`),
		hostiletest.JSON("layer-negative-size", ctManifest, strings.Replace(validManifest, `"layers":[]`, `"layers":[{"mediaType":"application/vnd.oci.image.layer.v1.tar+gzip","digest":"`+sha("x")+`","size":-5}]`, 1)),
		hostiletest.JSON("subject-without-digest", ctManifest, strings.Replace(validManifest, `"layers":[]`, `"layers":[],"subject":{"mediaType":"`+ctManifest+`","size":1}`, 1)),
		hostiletest.JSON("empty-index", ctIndex, `{"schemaVersion":2,"mediaType":"`+ctIndex+`","manifests":[]}`),
	)
	// The documented outcomes: a manifest the registry says is gone (404) is skipped with a warning,
	// a body that is not a manifest is exit 1; a wrong or missing Content-Type is fine when the body
	// names its media type; an empty index is a valid index.
	// (go-containerregistry refuses a HEAD answer without Content-Type: exit 1.)
	ok := map[string]int{"html-404": 0, "wrong-type": 1, "empty-index": 1}
	for _, a := range answers {
		t.Run(a.Name, func(t *testing.T) {
			o := hostileOCI(t, manifestAnswer(a))
			images, err := o.Images(context.Background(), "app")
			want := outcome{code: exitcode.Error}
			if n, isOK := ok[a.Name]; isOK {
				want = outcome{check: func(t *testing.T, v any) {
					if got := len(v.([]registry.Image)); got != n {
						t.Errorf("%d images, want %d", got, n)
					}
				}}
			}
			expectOutcome(t, images, err, want)
		})
	}
	t.Run("no-digest-header", func(t *testing.T) {
		h := manifestAnswer(hostiletest.JSON("valid", ctManifest, validManifest))
		h.noDigestHeader = true
		images, err := hostileOCI(t, h).Images(context.Background(), "app")
		expectOutcome(t, images, err, outcome{code: exitcode.Error})
		if !strings.Contains(err.Error(), "resolving") {
			t.Errorf("error does not name the call: %v", err)
		}
	})
}

func TestHostileReferrers(t *testing.T) {
	answers := hostiletest.Of(ctIndex, `{"schemaVersion":2,"mediaType":"`+ctIndex+`","manifests":[]}`, registry.MaxManifestSize+1).With(
		hostiletest.JSON("referrer-without-digest", ctIndex, `{"schemaVersion":2,"mediaType":"`+ctIndex+`","manifests":[{"mediaType":"`+ctManifest+`","size":3}]}`),
		hostiletest.JSON("referrers-null", ctIndex, `{"schemaVersion":2,"manifests":null}`),
	)
	// Documented: an answer that is not an OCI index by its Content-Type means the registry has no
	// referrers API (fallback tags were already followed); an OCI index that is empty or null lists
	// no referrers; a malformed index is exit 1.
	ok := map[string]bool{"empty-object": true, "null": true, "html-200": true, "html-404": true, "wrong-type": true, "no-type": true, "referrers-null": true}
	for _, a := range answers {
		t.Run(a.Name, func(t *testing.T) {
			images, err := hostileOCI(t, &hostileRegistry{referrers: a}).Images(context.Background(), "app")
			want := outcome{code: exitcode.Error}
			if ok[a.Name] {
				want = outcome{check: func(t *testing.T, v any) {
					if got := len(v.([]registry.Image)); got != 1 {
						t.Errorf("%d images, want 1", got)
					}
				}}
			}
			expectOutcome(t, images, err, want)
			if err != nil && !strings.Contains(err.Error(), "referrers of") {
				t.Errorf("error does not name the call: %v", err)
			}
		})
	}
}

func TestHostileDeletes(t *testing.T) {
	d, _ := v1.NewHash(sha(validManifest))
	answers := hostiletest.Of("application/json", `{}`, registry.MaxManifestSize+1).With(
		hostiletest.Answer{Name: "method-not-allowed", Status: http.StatusMethodNotAllowed, ContentType: "application/json", Body: []byte(`{"errors":[{"code":"UNSUPPORTED"}]}`)},
		hostiletest.Answer{Name: "denied", Status: http.StatusForbidden, ContentType: "application/json", Body: []byte(`{"errors":[{"code":"DENIED"}]}`)},
		hostiletest.Answer{Name: "unknown", Status: http.StatusNotFound, ContentType: "application/json", Body: []byte(`{"errors":[{"code":"MANIFEST_UNKNOWN"}]}`)},
	)
	// Documented: any 2xx is a delete, whatever its body (the body is not read); 404 is exit 5, 403
	// exit 4, other refusals exit 1.
	codes := map[string]int{"html-404": exitcode.NotFound, "unknown": exitcode.NotFound, "denied": exitcode.Auth, "method-not-allowed": exitcode.Error}
	// (a zero code below is a delete that succeeded)
	for _, a := range answers {
		t.Run(a.Name, func(t *testing.T) {
			err := hostileOCI(t, &hostileRegistry{del: a}).DeleteImage(context.Background(), "app", d)
			expectOutcome(t, nil, err, outcome{code: codes[a.Name]})
			if err != nil && !strings.Contains(err.Error(), "deleting") {
				t.Errorf("error does not name the call: %v", err)
			}
		})
	}
}
