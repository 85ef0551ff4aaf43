package registry_test

import (
	"context"
	"fmt"
	"io"
	"log"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	ggcrregistry "github.com/google/go-containerregistry/pkg/registry"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"golang.org/x/crypto/bcrypt"

	"github.com/regctl-dev/regctl/internal/config"
	"github.com/regctl-dev/regctl/internal/exitcode"
	"github.com/regctl-dev/regctl/internal/localreg/localregtest"
	"github.com/regctl-dev/regctl/internal/registry"
	"github.com/regctl-dev/regctl/internal/sample"
)

// Midnight: sample.Seed counts ages from the start of the day.
var now = time.Date(2026, 6, 30, 0, 0, 0, 0, time.UTC)

func openHost(t *testing.T, host string) registry.Registry {
	t.Helper()
	reg, err := registry.NewResolver(nil, registry.Options{}).Registry(host)
	if err != nil {
		t.Fatal(err)
	}
	return reg
}

func seed(t *testing.T, reg registry.Registry, repo string) []sample.Pushed {
	t.Helper()
	r, err := registry.RepositoryRef(reg, repo)
	if err != nil {
		t.Fatal(err)
	}
	pushed, err := sample.Seed(context.Background(), r, now, reg.Remote()...)
	if err != nil {
		t.Fatal(err)
	}
	return pushed
}

func byTag(images []registry.Image) map[string]registry.Image {
	m := map[string]registry.Image{}
	for _, img := range images {
		for _, t := range img.Tags {
			m[t] = img
		}
	}
	return m
}

// The seeded repository, listed from two real registry implementations, groups the same way.
func TestImagesGroupingOnRealRegistries(t *testing.T) {
	servers := map[string]string{
		"distribution": localregtest.Start(t).Host,
		"ggcr":         strings.TrimPrefix(httptest.NewServer(ggcrregistry.New(ggcrregistry.Logger(log.New(io.Discard, "", 0)))).URL, "http://"),
	}
	for impl, host := range servers {
		t.Run(impl, func(t *testing.T) {
			reg := openHost(t, host)
			pushed := seed(t, reg, "game-server")
			images, err := reg.Images(context.Background(), "game-server")
			if err != nil {
				t.Fatal(err)
			}
			tags := byTag(images)

			// 5 single images + index + 2 platform children + signature; the untagged orphan is unreachable.
			if len(images) != 9 {
				for _, i := range images {
					t.Logf("%s %s %v", i.Digest, i.Kind, i.Tags)
				}
				t.Fatalf("got %d images, want 9", len(images))
			}
			idx := tags["latest"]
			if idx.Kind != registry.KindIndex || len(idx.Children) != 2 {
				t.Fatalf("latest: kind %s with %d children, want index with 2", idx.Kind, len(idx.Children))
			}
			if idx.PushedAtSource != registry.SourceNewestChild || !idx.PushedAt.Equal(now.Add(-48*time.Hour)) {
				t.Errorf("index time %v from %q, want 2 days ago from its platforms", idx.PushedAt, idx.PushedAtSource)
			}
			platforms := map[string]bool{}
			for _, img := range images {
				if len(img.Parents) == 1 && img.Parents[0] == idx.Digest {
					if len(img.Tags) != 0 || img.Kind != registry.KindImage || img.Platform == nil {
						t.Errorf("child %s: tags %v kind %s platform %v", img.Digest, img.Tags, img.Kind, img.Platform)
						continue
					}
					platforms[img.Platform.String()] = true
				}
			}
			if !platforms["linux/amd64"] || !platforms["linux/arm64"] {
				t.Errorf("children platforms = %v", platforms)
			}
			sig := tags[sample.SignatureTag(idx.Digest)]
			if sig.Kind != registry.KindSignature || sig.Subject == nil || *sig.Subject != idx.Digest {
				t.Errorf("signature: kind %s subject %v, want signature of %s", sig.Kind, sig.Subject, idx.Digest)
			}
			old := tags["v1.0.0"]
			if old.PushedAtSource != registry.SourceConfig || !old.PushedAt.Equal(now.Add(-30*24*time.Hour)) {
				t.Errorf("v1.0.0 time %v from %q", old.PushedAt, old.PushedAtSource)
			}
			if old.Size <= 0 || idx.Size <= old.Size {
				t.Errorf("sizes: image %d, index %d", old.Size, idx.Size)
			}
			for _, p := range pushed {
				if p.What == "untagged image pushed by digest" {
					for _, img := range images {
						if img.Digest == p.Digest {
							t.Errorf("unreachable untagged manifest %s must not be listed", p.Digest)
						}
					}
				}
			}
			if images[0].PushedAt.Before(images[len(images)-1].PushedAt) {
				t.Error("images must be sorted newest first")
			}
		})
	}
}

func TestImagesFetchEachManifestAndConfigOnce(t *testing.T) {
	srv := localregtest.Start(t)
	reg := openHost(t, srv.Host)
	seed(t, reg, "game-server")
	r, _ := registry.RepositoryRef(reg, "game-server")
	// Three more tags on one existing digest: they must not cause more manifest fetches.
	img, _ := sample.Image(sample.ImageSpec{Seed: "release-0", Created: now.Add(-30 * 24 * time.Hour).Truncate(time.Second)})
	for _, tag := range []string{"alias-1", "alias-2", "alias-3"} {
		if err := sample.Push(context.Background(), r.Tag(tag), img, reg.Remote()...); err != nil {
			t.Fatal(err)
		}
	}
	srv.Requests()
	fresh := openHost(t, srv.Host)
	images, err := fresh.Images(context.Background(), "game-server")
	if err != nil {
		t.Fatal(err)
	}
	reqs := srv.Requests()
	gets := map[string]int{}
	heads := 0
	for _, rq := range reqs {
		switch {
		case strings.HasPrefix(rq, "GET ") && (strings.Contains(rq, "/manifests/") || strings.Contains(rq, "/blobs/")):
			gets[rq]++
		case strings.HasPrefix(rq, "HEAD ") && strings.Contains(rq, "/manifests/"):
			heads++
		}
	}
	manifestGets, blobGets := 0, 0
	for rq, n := range gets {
		if n > 1 {
			t.Errorf("%s fetched %d times", rq, n)
		}
		if strings.Contains(rq, "/manifests/") {
			manifestGets++
		} else {
			blobGets++
		}
	}
	if manifestGets != len(images) {
		t.Errorf("%d manifest GETs for %d manifests", manifestGets, len(images))
	}
	// configs: 5 single images + 2 platforms (the signature's config is not needed)
	if blobGets != 7 {
		t.Errorf("%d config GETs, want 7 (one per distinct image config)", blobGets)
	}
	tags, _ := fresh.Tags(context.Background(), "game-server")
	if heads != len(tags) {
		t.Errorf("%d HEADs for %d tags", heads, len(tags))
	}
	if len(byTag(images)["alias-2"].Tags) != 4 {
		t.Errorf("multi-tag image should carry all 4 tags: %v", byTag(images)["alias-2"].Tags)
	}
}

func TestTagAndCatalogPagination(t *testing.T) {
	srv := localregtest.Start(t)
	reg := openHost(t, srv.Host)
	r, _ := registry.RepositoryRef(reg, "many/tags")
	img, _ := sample.Image(sample.ImageSpec{Seed: "x"})
	for i := 0; i < 130; i++ {
		if err := sample.Push(context.Background(), r.Tag(fmt.Sprintf("t%03d", i)), img, reg.Remote()...); err != nil {
			t.Fatal(err)
		}
	}
	for i := 0; i < 3; i++ {
		rr, _ := registry.RepositoryRef(reg, fmt.Sprintf("game-server/r%d", i))
		if err := sample.Push(context.Background(), rr.Tag("v1"), img, reg.Remote()...); err != nil {
			t.Fatal(err)
		}
	}
	// distribution pages tags at 100 per response by default: 130 tags need two pages.
	srv.Requests()
	tags, err := reg.Tags(context.Background(), "many/tags")
	if err != nil {
		t.Fatal(err)
	}
	if len(tags) != 130 || tags[0] != "t000" || tags[129] != "t129" {
		t.Fatalf("got %d tags (%v..)", len(tags), tags[:3])
	}
	if n := srv.Count("GET", "/tags/list"); n < 2 {
		t.Errorf("tags listed in %d request(s); pagination not exercised", n)
	}
	repos, err := reg.Repositories(context.Background(), "game-server/")
	if err != nil {
		t.Fatal(err)
	}
	if strings.Join(repos, ",") != "game-server/r0,game-server/r1,game-server/r2" {
		t.Errorf("repositories with prefix: %v", repos)
	}
}

func TestDeleteImageAndEnsureRepository(t *testing.T) {
	srv := localregtest.Start(t)
	reg := openHost(t, srv.Host)
	seed(t, reg, "game-server")
	ctx := context.Background()
	images, _ := reg.Images(ctx, "game-server")
	victim := byTag(images)["v1.0.0"]
	if err := reg.DeleteImage(ctx, "game-server", victim.Digest); err != nil {
		t.Fatal(err)
	}
	after, _ := reg.Images(ctx, "game-server")
	if _, still := byTag(after)["v1.0.0"]; still || len(after) != len(images)-1 {
		t.Fatalf("v1.0.0 still listed after delete (%d -> %d images)", len(images), len(after))
	}
	err := reg.DeleteImage(ctx, "game-server", victim.Digest)
	if exitcode.Of(err) != exitcode.NotFound {
		t.Errorf("deleting twice: exit %d (%v), want not found", exitcode.Of(err), err)
	}

	res, err := reg.EnsureRepository(ctx, "game-server", registry.RepositorySpec{})
	if err != nil || res.Status != registry.StatusExists {
		t.Errorf("existing repo: %+v %v", res, err)
	}
	res, err = reg.EnsureRepository(ctx, "game-server/new", registry.RepositorySpec{ScanOnPush: true})
	if err != nil || res.Status != registry.StatusOnPush || !strings.Contains(res.Message, "not supported") {
		t.Errorf("new repo: %+v %v", res, err)
	}
	_, err = reg.EnsureRepository(ctx, "Game_Server", registry.RepositorySpec{})
	if exitcode.Of(err) != exitcode.Usage {
		t.Errorf("invalid name: exit %d (%v)", exitcode.Of(err), err)
	}
}

func TestResolver(t *testing.T) {
	cfg := &config.Config{DefaultRegistry: "local", Registries: map[string]config.Registry{
		"local":  {Type: "oci", URL: "127.0.0.1:5999", Insecure: true},
		"secure": {Type: "oci", URL: "https://registry.example.com"},
		"prod":   {Type: "ecr", Settings: map[string]any{"region": "us-east-1"}},
	}}
	r := registry.NewResolver(cfg, registry.Options{Backends: []registry.Backend{registry.OCIBackend()}})
	cases := []struct {
		arg, name, host, repo string
	}{
		{"local/game-server", "local", "127.0.0.1:5999", "game-server"},
		{"game-server/api", "local", "127.0.0.1:5999", "game-server/api"},
		{"127.0.0.1:5999/xy", "local", "127.0.0.1:5999", "xy"}, // a configured host keeps its settings
		{"registry.example.com/team/app", "secure", "registry.example.com", "team/app"},
		{"other.example.com:8443/app", "other.example.com:8443", "other.example.com:8443", "app"},
		{"local", "local", "127.0.0.1:5999", ""},
	}
	for _, c := range cases {
		reg, repo, err := r.Repository(c.arg)
		if err != nil {
			t.Errorf("%s: %v", c.arg, err)
			continue
		}
		if reg.Name() != c.name || reg.Host() != c.host || repo != c.repo {
			t.Errorf("%s: got %s %s %q, want %s %s %q", c.arg, reg.Name(), reg.Host(), repo, c.name, c.host, c.repo)
		}
	}
	reg, ref, err := r.Reference("local/game-server:v1")
	if err != nil || ref.String() != "127.0.0.1:5999/game-server:v1" || !reg.Insecure() {
		t.Errorf("reference: %v %v", ref, err)
	}
	if _, ref, _ := r.Reference("local/app@sha256:" + strings.Repeat("a", 64)); ref == nil || ref.(name.Digest).DigestStr() != "sha256:"+strings.Repeat("a", 64) {
		t.Errorf("digest reference: %v", ref)
	}
	for arg, code := range map[string]int{
		"local/Bad_Name": exitcode.Usage,
		"prod/app":       exitcode.Usage, // a type without its backend in Options.Backends
		"local":          -1,
	} {
		_, _, err := r.Reference(arg)
		if code == -1 {
			if err == nil {
				t.Errorf("%s: a registry alone is not an image reference", arg)
			}
			continue
		}
		if exitcode.Of(err) != code {
			t.Errorf("%s: exit %d (%v), want %d", arg, exitcode.Of(err), err, code)
		}
	}
	if _, _, err := r.Reference("prod/app"); err == nil || !strings.Contains(err.Error(), `registries.prod.type: unknown registry type "ecr" (this build has oci)`) {
		t.Errorf("a type without its backend is named with the types there are: %v", err)
	}
	noDefault := registry.NewResolver(&config.Config{}, registry.Options{})
	if _, _, err := noDefault.Repository("game-server"); err == nil || !strings.Contains(err.Error(), "default_registry") {
		t.Errorf("bare repo without default: %v", err)
	}
}

func TestCredentialsFromPasswordEnvAgainstHtpasswd(t *testing.T) {
	dir := t.TempDir()
	hash, _ := bcrypt.GenerateFromPassword([]byte("s3cret-token"), bcrypt.MinCost)
	htp := filepath.Join(dir, "htpasswd")
	os.WriteFile(htp, []byte("ci:"+string(hash)+"\n"), 0o600)
	srv := localregtest.Start(t, localregtest.Options{Htpasswd: htp})
	ctx := context.Background()

	cfg := &config.Config{Registries: map[string]config.Registry{
		"auth":  {Type: "oci", URL: srv.Host, Username: "ci", PasswordEnv: "REG_TOKEN"},
		"wrong": {Type: "oci", URL: srv.Host, Username: "ci", Password: "nope"},
	}}
	env := map[string]string{"REG_TOKEN": "s3cret-token"}
	r := registry.NewResolver(cfg, registry.Options{Getenv: func(k string) string { return env[k] }, Backends: []registry.Backend{registry.OCIBackend()}})
	reg, _ := r.Registry("auth")
	seed(t, reg, "private")
	if images, err := reg.Images(ctx, "private"); err != nil || len(images) == 0 {
		t.Fatalf("authenticated listing: %d images, %v", len(images), err)
	}

	bad, _ := r.Registry("wrong")
	_, err := bad.Images(ctx, "private")
	if exitcode.Of(err) != exitcode.Auth {
		t.Errorf("wrong password: exit %d (%v), want %d", exitcode.Of(err), err, exitcode.Auth)
	}
	if err != nil && strings.Contains(err.Error(), "nope") {
		t.Errorf("error leaks the password: %v", err)
	}

	unset := registry.NewResolver(cfg, registry.Options{Getenv: func(string) string { return "" }, Backends: []registry.Backend{registry.OCIBackend()}})
	_, err = unset.Registry("auth")
	if exitcode.Of(err) != exitcode.Usage || !strings.Contains(err.Error(), "REG_TOKEN is not set") {
		t.Errorf("unset password env: %v", err)
	}
}

// On a registry with the OCI 1.1 referrers API, a referrer that no tag reaches is listed with its
// subject, so lifecycle deletes it together with the image.
func TestReferrersAPIArtifactsAreListed(t *testing.T) {
	srv := httptest.NewServer(ggcrregistry.New(ggcrregistry.Logger(log.New(io.Discard, "", 0)), ggcrregistry.WithReferrersSupport(true)))
	t.Cleanup(srv.Close)
	reg := openHost(t, strings.TrimPrefix(srv.URL, "http://"))
	r, _ := registry.RepositoryRef(reg, "app")
	img, _ := sample.Image(sample.ImageSpec{Seed: "subject", Created: now})
	if err := sample.Push(context.Background(), r.Tag("v1"), img, reg.Remote()...); err != nil {
		t.Fatal(err)
	}
	d, _ := img.Digest()
	sig, _ := sample.CosignSignature(r, d)
	m, _ := img.Manifest()
	size, _ := img.Size()
	sbom := mutate.Subject(sig, v1.Descriptor{MediaType: m.MediaType, Digest: d, Size: size}).(v1.Image)
	sd, _ := sbom.Digest()
	if err := remote.Write(r.Digest(sd.String()), sbom, reg.Remote()...); err != nil {
		t.Fatal(err)
	}
	images, err := reg.Images(context.Background(), "app")
	if err != nil {
		t.Fatal(err)
	}
	var got *registry.Image
	for i := range images {
		if images[i].Digest == sd {
			got = &images[i]
		}
	}
	if got == nil || got.Subject == nil || *got.Subject != d || got.Kind != registry.KindSignature || len(got.Tags) != 0 {
		t.Fatalf("referrer without a tag: %+v (listed %d manifests)", got, len(images))
	}
}
