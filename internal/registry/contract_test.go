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

	ggcrregistry "github.com/google/go-containerregistry/pkg/registry"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"golang.org/x/crypto/bcrypt"

	"github.com/regctl-dev/regctl/internal/config"
	"github.com/regctl-dev/regctl/internal/localreg/localregtest"
	"github.com/regctl-dev/regctl/internal/registry"
	"github.com/regctl-dev/regctl/internal/registry/registrytest"
	"github.com/regctl-dev/regctl/internal/sample"
)

// The backend contract on both in-process OCI registries: CNCF distribution (with htpasswd, so
// refused credentials are part of it) and go-containerregistry's in-memory registry.
func TestContractDistribution(t *testing.T) {
	registrytest.Run(t, registrytest.Harness{
		TimeSource:  registry.SourceConfig,
		OnFirstPush: true,
		Start: func(t *testing.T, _ time.Time) registrytest.Fixture {
			hash, err := bcrypt.GenerateFromPassword([]byte("contract-token"), bcrypt.MinCost)
			if err != nil {
				t.Fatal(err)
			}
			htp := filepath.Join(t.TempDir(), "htpasswd")
			if err := os.WriteFile(htp, []byte("ci:"+string(hash)+"\n"), 0o600); err != nil {
				t.Fatal(err)
			}
			srv := localregtest.Start(t, localregtest.Options{Htpasswd: htp})
			cfg := &config.Config{Registries: map[string]config.Registry{
				"good":  {Type: "oci", URL: srv.Host, Username: "ci", PasswordEnv: "REG_TOKEN"},
				"wrong": {Type: "oci", URL: srv.Host, Username: "ci", Password: "wrong-contract-token"},
			}}
			env := map[string]string{"REG_TOKEN": "contract-token"}
			r := registry.NewResolver(cfg, registry.Options{Getenv: func(k string) string { return env[k] }, Backends: []registry.Backend{registry.OCIBackend()}})
			good, err := r.Registry("good")
			if err != nil {
				t.Fatal(err)
			}
			return registrytest.Fixture{Registry: good, Secret: "wrong-contract-token",
				WrongCredentials: func() (registry.Registry, error) { return r.Registry("wrong") }}
		},
	})
}

// go-containerregistry's in-memory registry pages tags by n and last= without a Link header (the
// continuation path), does not page its catalog at all, and deletes a manifest without its tags
// (pkg/registry/manifest.go at v0.21.9).
func TestContractGGCR(t *testing.T) {
	registrytest.Run(t, registrytest.Harness{
		TimeSource:         registry.SourceConfig,
		OnFirstPush:        true,
		DeleteLeavesTags:   true,
		CatalogIgnoresLast: true,
		Start: func(t *testing.T, _ time.Time) registrytest.Fixture {
			srv := httptest.NewServer(ggcrregistry.New(ggcrregistry.Logger(log.New(io.Discard, "", 0))))
			t.Cleanup(srv.Close)
			return registrytest.Fixture{Registry: openHost(t, strings.TrimPrefix(srv.URL, "http://"))}
		},
	})
}

// A loopback registry served over TLS pages its tags and catalog by Link; go-containerregistry's
// own Lister (v0.21.9) refuses every second page there (it expects http for loopback hosts), so
// Tags and Repositories page themselves.
func TestPaginationOnLoopbackTLS(t *testing.T) {
	srv := localregtest.Start(t, localregtest.Options{TLS: true})
	cfg := &config.Config{Registries: map[string]config.Registry{"tls": {Type: "oci", URL: srv.Host, Insecure: true}}}
	reg, err := registry.NewResolver(cfg, registry.Options{Backends: []registry.Backend{registry.OCIBackend()}}).Registry("tls")
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	img, err := sample.Image(sample.ImageSpec{Seed: "tls-pages", Created: now})
	if err != nil {
		t.Fatal(err)
	}
	r, _ := registry.RepositoryRef(reg, "many")
	for i := range registrytest.Pages {
		if err := remote.Write(r.Tag(fmt.Sprintf("t%03d", i)), img, reg.Remote()...); err != nil {
			t.Fatal(err)
		}
	}
	for i := range registrytest.Pages {
		rr, _ := registry.RepositoryRef(reg, fmt.Sprintf("repo%03d", i))
		if err := remote.Write(rr.Tag("v1"), img, reg.Remote()...); err != nil {
			t.Fatal(err)
		}
	}
	tags, err := reg.Tags(ctx, "many")
	if err != nil || len(tags) != registrytest.Pages {
		t.Errorf("Tags: %d, %v; want %d", len(tags), err, registrytest.Pages)
	}
	repos, err := reg.Repositories(ctx, "repo")
	if err != nil || len(repos) != registrytest.Pages {
		t.Errorf("Repositories: %d, %v; want %d", len(repos), err, registrytest.Pages)
	}
	if _, err := remote.List(r, reg.Remote()...); err != nil {
		t.Logf("go-containerregistry's remote.List on the same registry: %v", err)
	}
}

// Listings reuse one authenticated client per scope: a second tag list and a second catalog cost no
// further /v2/ ping.
func TestListingsPingOncePerScope(t *testing.T) {
	srv := localregtest.Start(t)
	reg := openHost(t, srv.Host)
	seed(t, reg, "game-server")
	srv.Requests()
	for range 2 {
		if _, err := reg.Tags(context.Background(), "game-server"); err != nil {
			t.Fatal(err)
		}
		if _, err := reg.Repositories(context.Background(), ""); err != nil {
			t.Fatal(err)
		}
	}
	pings := 0
	for _, r := range srv.Requests() {
		if r == "GET /v2/" {
			pings++
		}
	}
	if pings > 2 {
		t.Errorf("%d pings for two tag lists and two catalogs, want at most one per scope (2)", pings)
	}
}
