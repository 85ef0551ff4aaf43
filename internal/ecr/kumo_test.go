package ecr_test

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/name"

	"github.com/regctl-dev/regctl/internal/config"
	"github.com/regctl-dev/regctl/internal/ecr"
	"github.com/regctl-dev/regctl/internal/exitcode"
	"github.com/regctl-dev/regctl/internal/lifecycle"
	"github.com/regctl-dev/regctl/internal/registry"
)

// startKumo runs the kumo binary REGCTL_TEST_KUMO names (github.com/sivchari/kumo, a third-party
// AWS emulator) on 127.0.0.1 and a free port until the test ends. Without the variable the test is
// skipped, unless REGCTL_TEST_REQUIRE_TOOLS=1 (CI), where that is a failure.
func startKumo(t *testing.T) string {
	t.Helper()
	bin := os.Getenv("REGCTL_TEST_KUMO")
	if bin == "" {
		if os.Getenv("REGCTL_TEST_REQUIRE_TOOLS") == "1" {
			t.Fatal("REGCTL_TEST_KUMO is not set and REGCTL_TEST_REQUIRE_TOOLS=1: install kumo (go install github.com/sivchari/kumo/cmd/kumo@v0.33.1)")
		}
		t.Skip("REGCTL_TEST_KUMO is not set (path to a kumo v0.33.1 binary)")
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := l.Addr().(*net.TCPAddr).Port
	l.Close()
	cmd := exec.Command(bin, "--host", "127.0.0.1", "--port", fmt.Sprint(port))
	cmd.Env = append(os.Environ(), "KUMO_DATA_DIR=", "KUMO_LOG_LEVEL=error", "AWS_DEFAULT_REGION=us-east-1")
	logFile := filepath.Join(t.TempDir(), "kumo.log")
	out, err := os.Create(logFile)
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stdout, cmd.Stderr = out, out
	if err := cmd.Start(); err != nil {
		t.Fatalf("starting kumo: %v", err)
	}
	t.Cleanup(func() {
		cmd.Process.Kill()
		cmd.Wait()
		out.Close()
		if t.Failed() {
			b, _ := os.ReadFile(logFile)
			t.Logf("kumo's log:\n%s", b)
		}
	})
	addr := fmt.Sprintf("127.0.0.1:%d", port)
	for deadline := time.Now().Add(30 * time.Second); ; {
		c, err := net.DialTimeout("tcp", addr, time.Second)
		if err == nil {
			c.Close()
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("kumo did not listen on %s within 30s: %v", addr, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
	for k, v := range map[string]string{"AWS_ACCESS_KEY_ID": "test", "AWS_SECRET_ACCESS_KEY": "test", "AWS_REGION": "us-east-1",
		"AWS_SESSION_TOKEN": "", "AWS_PROFILE": "", "AWS_CA_BUNDLE": "", "AWS_EC2_METADATA_DISABLED": "true",
		"AWS_CONFIG_FILE": filepath.Join(t.TempDir(), "none"), "AWS_SHARED_CREDENTIALS_FILE": filepath.Join(t.TempDir(), "none")} {
		t.Setenv(k, v)
	}
	return "http://" + addr
}

// TestAgainstKumo drives the ECR backend against kumo for everything kumo implements (issue 15):
// repository creation (three with scan on push and AES256, unchanged on the second run, the KMS
// change refused with exit 2), listing, the token, and the guide's lifecycle policy put and read
// back; each action regctl needs that kumo lacks fails with an error naming it.
func TestAgainstKumo(t *testing.T) {
	endpoint := startKumo(t)
	ctx := context.Background()
	reg, err := ecr.Open(ctx, "kumo", config.Registry{Type: "ecr", Settings: map[string]any{"region": "us-east-1", "endpoint": endpoint}}, registry.Options{})
	if err != nil {
		t.Fatalf("open (GetAuthorizationToken): %v", err)
	}
	e := reg.(*ecr.ECR)
	// GetAuthorizationToken: kumo's proxyEndpoint names its fake account's registry host.
	if e.Host() != "000000000000.dkr.ecr.us-east-1.amazonaws.com" {
		t.Errorf("host from proxyEndpoint: %q", e.Host())
	}
	r, _ := name.NewRegistry(e.Host())
	auth, err := e.Keychain().Resolve(r)
	if err != nil {
		t.Fatal(err)
	}
	if cfg, err := auth.Authorization(); err != nil || cfg.Username != "AWS" || cfg.Password == "" {
		t.Errorf("token credentials: %+v %v", cfg, err)
	}

	// repo create game-server game-server/prometheus game-server/grafana --scan-on-push --encryption AES256
	spec := registry.RepositorySpec{ScanOnPush: true, Encryption: "AES256"}
	repos := []string{"game-server", "game-server/prometheus", "game-server/grafana"}
	for _, run := range []registry.EnsureStatus{registry.StatusCreated, registry.StatusUnchanged} {
		for _, n := range repos {
			res, err := e.EnsureRepository(ctx, n, spec)
			if err != nil || res.Status != run {
				t.Fatalf("%s: %+v %v, want %s", n, res, err, run)
			}
		}
	}
	// The KMS change: refused, exit 2 (ECR cannot change encryption after creation).
	_, err = e.EnsureRepository(ctx, "game-server", registry.RepositorySpec{ScanOnPush: true, Encryption: "KMS"})
	if exitcode.Of(err) != exitcode.Usage || !strings.Contains(err.Error(), "cannot change it after creation") {
		t.Errorf("KMS change: exit %d %v", exitcode.Of(err), err)
	}
	// repo list
	got, err := e.Repositories(ctx, "game-server")
	if err != nil || strings.Join(got, ",") != "game-server,game-server/grafana,game-server/prometheus" {
		t.Errorf("repo list: %q %v", got, err)
	}
	if settings, err := e.RepositorySettings(ctx, "game-server"); err != nil || !settings.ScanOnPush || settings.Encryption != "AES256" {
		t.Errorf("settings read back: %+v %v", settings, err)
	}

	// lifecycle get before any put: exit 5.
	if _, err := e.GetLifecyclePolicy(ctx, "game-server"); exitcode.Of(err) != exitcode.NotFound {
		t.Errorf("get without a policy: exit %d %v", exitcode.Of(err), err)
	}
	raw, err := os.ReadFile("../../testdata/lifecycle/ecr-lifecycle-policy.json")
	if err != nil {
		t.Fatal(err)
	}
	policy, err := lifecycle.Parse(raw)
	if err != nil {
		t.Fatal(err)
	}
	// lifecycle apply builds its plan from DescribeImages, which kumo lacks: the error names it.
	_, err = e.Images(ctx, "game-server")
	wantMissing(t, err, "DescribeImages")
	// With a plan of no images, apply would count what the policy expires with ECR's preview:
	// kumo lacks StartLifecyclePolicyPreview too.
	plan := lifecycle.BuildPlan(policy, e.Name(), "game-server", nil, lifecycle.AgeAuto, time.Now())
	_, err = lifecycle.Reconcile(ctx, []lifecycle.Target{{Registry: e, Plan: plan}}, lifecycle.ReconcileOptions{Policy: raw, Yes: true})
	wantMissing(t, err, "StartLifecyclePolicyPreview")
	// What apply then stores, and lifecycle get reads back.
	if err := e.PutLifecyclePolicy(ctx, "game-server", string(raw)); err != nil {
		t.Fatalf("put: %v", err)
	}
	stored, err := e.GetLifecyclePolicy(ctx, "game-server")
	if err != nil {
		t.Fatalf("get: %v", err)
	}
	back, err := lifecycle.Parse([]byte(stored))
	if err != nil {
		t.Fatalf("stored policy does not parse: %v", err)
	}
	a, _ := lifecycle.Canonical(policy)
	b, _ := lifecycle.Canonical(back)
	if string(a) != string(b) {
		t.Errorf("stored policy differs:\n%s\n%s", a, b)
	}
	// A second apply finds the policy stored: unchanged, no preview needed, nothing put.
	out, err := lifecycle.Reconcile(ctx, []lifecycle.Target{{Registry: e, Plan: plan}}, lifecycle.ReconcileOptions{Policy: raw, Yes: true})
	if err != nil || len(out.Native) != 1 || out.Native[0].Status != "unchanged" {
		t.Errorf("second apply: %+v %v", out, err)
	}

	// The rest of what regctl asks ECR, which kumo v0.33.1 does not implement.
	_, err = e.EnsureRepository(ctx, "game-server", registry.RepositorySpec{ScanOnPush: false, Encryption: "AES256"})
	wantMissing(t, err, "PutImageScanningConfiguration")
	_, err = e.GetRepositoryPolicy(ctx, "game-server")
	wantMissing(t, err, "GetRepositoryPolicy")
	_, err = e.GetReplication(ctx)
	wantMissing(t, err, "DescribeRegistry")
}

func wantMissing(t *testing.T, err error, action string) {
	t.Helper()
	if exitcode.Of(err) != exitcode.Error || err == nil || !strings.Contains(err.Error(), "does not implement the "+action+" action") {
		t.Errorf("want exit 1 naming the missing %s action: exit %d %v", action, exitcode.Of(err), err)
	}
}
