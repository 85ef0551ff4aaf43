package ecr_test

import (
	"context"
	"errors"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/regctl-dev/regctl/internal/backup"
	"github.com/regctl-dev/regctl/internal/config"
	"github.com/regctl-dev/regctl/internal/ecr"
	"github.com/regctl-dev/regctl/internal/ecr/ecrtest"
	"github.com/regctl-dev/regctl/internal/exitcode"
	"github.com/regctl-dev/regctl/internal/lifecycle"
	"github.com/regctl-dev/regctl/internal/registry"
	"github.com/regctl-dev/regctl/internal/sample"
)

var now = time.Date(2026, 6, 30, 0, 0, 0, 0, time.UTC)

func open(t *testing.T) (*ecrtest.Server, *ecr.ECR) {
	t.Helper()
	srv := ecrtest.Start(t)
	srv.Now = func() time.Time { return now }
	reg, err := ecr.Open(context.Background(), "prod", config.Registry{Type: "ecr", CAFile: srv.CAFile, Settings: map[string]any{"region": ecrtest.Region, "account": ecrtest.Account, "endpoint": srv.URL}}, registry.Options{})
	if err != nil {
		t.Fatal(err)
	}
	return srv, reg.(*ecr.ECR)
}

func TestRepositoriesAreIdempotentAndEncryptionIsFixed(t *testing.T) {
	srv, e := open(t)
	ctx := context.Background()
	spec := registry.RepositorySpec{ScanOnPush: true, Encryption: "AES256"}
	for _, name := range []string{"game-server", "game-server/prometheus", "game-server/grafana"} {
		res, err := e.EnsureRepository(ctx, name, spec)
		if err != nil || res.Status != registry.StatusCreated {
			t.Fatalf("%s: %+v %v", name, res, err)
		}
	}
	if res, err := e.EnsureRepository(ctx, "game-server", spec); err != nil || res.Status != registry.StatusUnchanged {
		t.Errorf("second create: %+v %v", res, err)
	}
	if res, err := e.EnsureRepository(ctx, "game-server", registry.RepositorySpec{ScanOnPush: false, TagMutability: "IMMUTABLE"}); err != nil ||
		res.Status != registry.StatusUpdated || !strings.Contains(res.Message, "tag mutability IMMUTABLE") {
		t.Errorf("update: %+v %v", res, err)
	}
	_, err := e.EnsureRepository(ctx, "game-server", registry.RepositorySpec{Encryption: "KMS"})
	if exitcode.Of(err) != exitcode.Usage || !strings.Contains(err.Error(), "cannot change it after creation") {
		t.Errorf("encryption change: %v", err)
	}
	if _, err := e.EnsureRepository(ctx, "Game_Server", registry.RepositorySpec{}); exitcode.Of(err) != exitcode.Usage || !strings.Contains(err.Error(), "InvalidParameterException") {
		t.Errorf("invalid name: %v", err)
	}
	// DescribeRepositories pages by 2 in the emulator: all three come back.
	repos, err := e.Repositories(ctx, "game-server")
	if err != nil || len(repos) != 3 {
		t.Errorf("repositories: %v %v", repos, err)
	}
	if srv.Calls("DescribeRepositories") < 3 {
		t.Errorf("pagination not exercised")
	}
}

func TestImagesCarryECRPushTimesAndUntaggedImages(t *testing.T) {
	srv, e := open(t)
	ctx := context.Background()
	e.EnsureRepository(ctx, "game-server", registry.RepositorySpec{})
	repo, _ := registry.RepositoryRef(e, "game-server")
	pushed, err := sample.Seed(ctx, repo, now, e.Remote()...)
	if err != nil {
		t.Fatal(err)
	}
	images, err := e.Images(ctx, "game-server")
	if err != nil {
		t.Fatal(err)
	}
	var untagged, withECRTime int
	for _, img := range images {
		if img.PushedAtSource == registry.SourceECR && img.PushedAt.Equal(now) {
			withECRTime++
		}
		if len(img.Tags) == 0 && len(img.Parents) == 0 && img.Subject == nil {
			untagged++
		}
	}
	// 9 manifests reachable from tags + the image pushed by digest, which ECR lists.
	if len(images) != 10 || untagged != 1 || withECRTime != 10 {
		t.Fatalf("%d images, %d untagged, %d with ECR push times", len(images), untagged, withECRTime)
	}
	// Lifecycle on ECR sees the untagged image and ages it by ECR's push time.
	srv.Now = func() time.Time { return now.Add(10 * 24 * time.Hour) }
	p, _ := lifecycle.Parse([]byte(`{"rules":[{"rulePriority":1,"description":"untagged images older than 7 days, padded over 100 chars","selection":{"tagStatus":"untagged","countType":"sinceImagePushed","countUnit":"days","countNumber":7},"action":{"type":"expire"}}]}`))
	plan := lifecycle.BuildPlan(p, e.Name(), "game-server", images, lifecycle.AgeAuto, now.Add(10*24*time.Hour))
	if plan.Summary.Expire != 1 {
		t.Fatalf("plan: %+v", plan.Summary)
	}
	if err := lifecycle.Apply(ctx, e, plan, 2, nil).Err(); err != nil {
		t.Fatal(err)
	}
	var orphan string
	for _, p := range pushed {
		if p.What == "untagged image pushed by digest" {
			orphan = p.Digest.String()
		}
	}
	after, _ := e.Images(ctx, "game-server")
	for _, img := range after {
		if img.Digest.String() == orphan {
			t.Error("the untagged image was not deleted")
		}
	}
	if len(after) != 9 || srv.Calls("BatchDeleteImage") != 1 {
		t.Errorf("%d images left, %d BatchDeleteImage calls", len(after), srv.Calls("BatchDeleteImage"))
	}
}

func TestPoliciesAndErrors(t *testing.T) {
	_, e := open(t)
	ctx := context.Background()
	e.EnsureRepository(ctx, "game-server", registry.RepositorySpec{})
	if _, err := e.GetLifecyclePolicy(ctx, "game-server"); exitcode.Of(err) != exitcode.NotFound {
		t.Errorf("no policy yet: %v", err)
	}
	raw, _ := os.ReadFile("../../testdata/lifecycle/ecr-lifecycle-policy.json")
	if err := e.PutLifecyclePolicy(ctx, "game-server", string(raw)); err != nil {
		t.Fatal(err)
	}
	got, err := e.GetLifecyclePolicy(ctx, "game-server")
	if err != nil || !strings.Contains(got, `"countNumber":10`) {
		t.Errorf("stored policy: %s %v", got, err)
	}
	if err := e.PutLifecyclePolicy(ctx, "game-server", `{"rules":[{"rulePriority":1,"selection":{"tagStatus":"any","countType":"imageCountMoreThan","countNumber":0},"action":{"type":"expire"}}]}`); exitcode.Of(err) != exitcode.Usage {
		t.Errorf("invalid policy: %v", err)
	}
	pol, _ := os.ReadFile("../../testdata/ecr/ecr-repository-policy.json")
	if err := e.SetRepositoryPolicy(ctx, "game-server", string(pol)); err != nil {
		t.Fatal(err)
	}
	if got, err := e.GetRepositoryPolicy(ctx, "game-server"); err != nil || got != string(pol) {
		t.Errorf("repository policy: %v", err)
	}
	if err := e.PutLifecyclePolicy(ctx, "nope", string(raw)); exitcode.Of(err) != exitcode.NotFound {
		t.Errorf("missing repository: %v", err)
	}
	t.Setenv("AWS_SECRET_ACCESS_KEY", "wrong")
	other, err := ecr.Open(ctx, "prod", config.Registry{Type: "ecr", Settings: map[string]any{"region": ecrtest.Region, "endpoint": e.Endpoint()}}, registry.Options{})
	if exitcode.Of(err) != exitcode.Auth {
		t.Errorf("wrong credentials: exit %d %v (%v)", exitcode.Of(err), err, other)
	}
}

// A backup of an ECR registry carries each repository's lifecycle and repository policies.
func TestBackupKeepsECRSettings(t *testing.T) {
	_, e := open(t)
	ctx := context.Background()
	e.EnsureRepository(ctx, "game-server", registry.RepositorySpec{})
	repo, _ := registry.RepositoryRef(e, "game-server")
	if _, err := sample.Seed(ctx, repo, now, e.Remote()...); err != nil {
		t.Fatal(err)
	}
	raw, _ := os.ReadFile("../../testdata/lifecycle/ecr-lifecycle-policy.json")
	e.PutLifecyclePolicy(ctx, "game-server", string(raw))
	pol, _ := os.ReadFile("../../testdata/ecr/ecr-repository-policy.json")
	e.SetRepositoryPolicy(ctx, "game-server", string(pol))
	s, _ := backup.Open(ctx, t.TempDir(), "")
	snap, err := backup.Backup(ctx, e, s, backup.Options{Now: func() time.Time { return now }})
	if err != nil {
		t.Fatal(err)
	}
	set := snap.Repos[0].Settings
	if !strings.Contains(set["lifecyclePolicy"], `"rulePriority":1`) || set["repositoryPolicy"] != string(pol) {
		t.Errorf("settings: %v", set)
	}
}

// Throttling is retried by the SDK's standard retryer; the caller never sees it.
func TestThrottlingIsRetried(t *testing.T) {
	srv, e := open(t)
	srv.Throttle("DescribeRepositories", 2)
	if _, err := e.Repositories(context.Background(), ""); err != nil {
		t.Fatalf("throttled call not retried: %v", err)
	}
	if n := srv.Calls("DescribeRepositories"); n < 3 {
		t.Errorf("%d calls, want the 2 throttled ones retried", n)
	}
}

// Without any AWS credentials the error says what to set, and exits 4.
func TestMissingCredentials(t *testing.T) {
	srv := ecrtest.Start(t)
	t.Setenv("AWS_ACCESS_KEY_ID", "")
	t.Setenv("AWS_SECRET_ACCESS_KEY", "")
	_, err := ecr.Open(context.Background(), "prod", config.Registry{Type: "ecr", Settings: map[string]any{"region": ecrtest.Region, "endpoint": srv.URL}}, registry.Options{})
	if exitcode.Of(err) != exitcode.Auth || !strings.Contains(err.Error(), "no AWS credentials") {
		t.Errorf("missing credentials: exit %d %v", exitcode.Of(err), err)
	}
}

// A wrong region (the endpoint belongs to another) is named as such and exits 4.
func TestWrongRegion(t *testing.T) {
	srv := ecrtest.Start(t)
	_, err := ecr.Open(context.Background(), "prod", config.Registry{Type: "ecr", Settings: map[string]any{"region": "eu-west-1", "endpoint": srv.URL}}, registry.Options{})
	if exitcode.Of(err) != exitcode.Auth || !strings.Contains(err.Error(), "check region") {
		t.Errorf("wrong region: exit %d %v", exitcode.Of(err), err)
	}
}

// The backend owns its config section: the loader checks its keys and rules through ecr.Backend.
func TestBackendConfig(t *testing.T) {
	kinds := registry.Kinds([]registry.Backend{registry.OCIBackend(), ecr.Backend()})
	load := func(body string) (*config.Config, error) {
		file := t.TempDir() + "/regctl.yaml"
		if err := os.WriteFile(file, []byte(body), 0o600); err != nil {
			t.Fatal(err)
		}
		return config.Load(config.Sources{File: file, Kinds: kinds})
	}
	for body, want := range map[string]string{
		"registries: {prod: {type: ecr}}\n":                                   "registries.prod.region: required for type ecr",
		"registries: {prod: {type: ecr, region: r, account: \"12\"}}\n":       `registries.prod.account: must be a 12-digit AWS account id, got "12"`,
		"registries: {prod: {type: ecr, region: r, acount: \"12\"}}\n":        `registries.prod.acount: unknown key (did you mean "account"?)`,
		"registries: {prod: {type: oci, url: x, region: eu-west-1}}\n":        "registries.prod.region: unknown key for this type (a key of type ecr)",
		"registries: {prod: {type: ecr, region: r, endpoint: [1]}}\n":         "registries.prod.endpoint: expected a string, got a list",
		"registries: {prod: {type: ecr, region: r, account: 123456789012}}\n": "",
	} {
		_, err := load(body)
		if want == "" {
			if err != nil {
				t.Errorf("%s: %v", body, err)
			}
			continue
		}
		if err == nil || !strings.Contains(err.Error(), want) || exitcode.Of(err) != exitcode.Usage {
			t.Errorf("%s: want %q (exit 2), got %v", body, want, err)
		}
	}
	// An unquoted account id decodes as the string the backend needs.
	cfg, err := load("registries: {prod: {type: ecr, region: us-east-1, account: 123456789012, endpoint: http://127.0.0.1:1}}\n")
	if err != nil {
		t.Fatal(err)
	}
	if got := cfg.Registries["prod"].Settings["account"]; got == nil {
		t.Fatalf("account not kept: %v", cfg.Registries["prod"].Settings)
	}
}

// Opening is bounded by the caller's context: a cancelled command does not wait on the token fetch.
func TestOpenHonoursContext(t *testing.T) {
	srv := ecrtest.Start(t)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_, err := ecr.Open(ctx, "prod", config.Registry{Type: "ecr", CAFile: srv.CAFile, Settings: map[string]any{"region": ecrtest.Region, "endpoint": srv.URL}}, registry.Options{})
	if !errors.Is(err, context.Canceled) {
		t.Errorf("cancelled open: %v", err)
	}
}
