package build_test

import (
	"context"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"

	"github.com/regctl-dev/regctl/internal/build"
)

func TestDefaults(t *testing.T) {
	for _, c := range []struct {
		flag string
		cfg  []string
		want []string
	}{
		{"", nil, []string{"linux/amd64", "linux/arm64"}},
		{"", []string{"linux/s390x"}, []string{"linux/s390x"}},
		{"linux/arm64,linux/amd64", []string{"linux/s390x"}, []string{"linux/arm64", "linux/amd64"}},
	} {
		if got := build.Platforms(c.flag, c.cfg); !reflect.DeepEqual(got, c.want) {
			t.Errorf("Platforms(%q, %v) = %v, want %v", c.flag, c.cfg, got, c.want)
		}
	}
	env := map[string]string{"HOME": "/home/ci"}
	if got := build.UserDockerConfig(func(k string) string { return env[k] }); got != "/home/ci/.docker" {
		t.Errorf("docker config from HOME: %q", got)
	}
	env["DOCKER_CONFIG"] = "/etc/docker-ci"
	if got := build.UserDockerConfig(func(k string) string { return env[k] }); got != "/etc/docker-ci" {
		t.Errorf("DOCKER_CONFIG wins: %q", got)
	}
	for host, want := range map[string]bool{"127.0.0.1:5000": true, "localhost": true, "localhost:5000": true, "[::1]:5000": true,
		"registry.example.com": false, "127.example.com": false, "127.0.0.2": true, "10.0.0.1:5000": false} {
		if build.IsLoopback(host) != want {
			t.Errorf("IsLoopback(%q) != %v", host, want)
		}
	}
}

type ctxKeychain struct{ seen context.Context }

func (k *ctxKeychain) Resolve(authn.Resource) (authn.Authenticator, error) {
	return nil, errors.New("Resolve without a context must not be called")
}

func (k *ctxKeychain) ResolveContext(ctx context.Context, _ authn.Resource) (authn.Authenticator, error) {
	k.seen = ctx
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	return &authn.Basic{Username: "ci", Password: "s3cret"}, nil
}

// PrepareAuth writes the registry's credentials next to the user's own entries, resolving them with
// the caller's context.
func TestPrepareAuth(t *testing.T) {
	dir := t.TempDir()
	user := filepath.Join(dir, "user")
	os.MkdirAll(user, 0o700)
	os.WriteFile(filepath.Join(user, "config.json"), []byte(`{"auths":{"base.example.com":{"auth":"eDp5"}},"credHelpers":{"gcr.io":"gcloud"}}`), 0o600)
	o := &build.Options{AuthDir: filepath.Join(dir, "auth"), UserDockerConfig: user}
	repo, _ := name.NewRepository("127.0.0.1:5000/game-server")
	kc := &ctxKeychain{}
	ctx := context.WithValue(context.Background(), ctxKeychain{}, "marker")
	if err := build.PrepareAuth(ctx, o, kc, repo, "127.0.0.1:5000"); err != nil {
		t.Fatal(err)
	}
	if kc.seen == nil || kc.seen.Value(ctxKeychain{}) != "marker" {
		t.Error("the keychain was not given the caller's context")
	}
	raw, err := os.ReadFile(filepath.Join(o.AuthDir, "config.json"))
	if err != nil {
		t.Fatal(err)
	}
	var cfg struct {
		Auths       map[string]map[string]string `json:"auths"`
		CredHelpers map[string]string            `json:"credHelpers"`
	}
	if err := json.Unmarshal(raw, &cfg); err != nil {
		t.Fatal(err)
	}
	if cfg.Auths["base.example.com"]["auth"] != "eDp5" || cfg.CredHelpers["gcr.io"] != "gcloud" || cfg.Auths["127.0.0.1:5000"] == nil {
		t.Errorf("auth dir: %s", raw)
	}
	cancelled, cancel := context.WithCancel(context.Background())
	cancel()
	err = build.PrepareAuth(cancelled, o, kc, repo, "127.0.0.1:5000")
	if !errors.Is(err, context.Canceled) || strings.Contains(err.Error(), "s3cret") {
		t.Errorf("cancelled: %v", err)
	}
}
