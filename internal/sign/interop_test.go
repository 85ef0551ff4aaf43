package sign_test

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/v1/remote"

	"github.com/regctl-dev/regctl/internal/exitcode"
	"github.com/regctl-dev/regctl/internal/sign"
	"github.com/regctl-dev/regctl/internal/sign/signtest"
)

func runCosign(t *testing.T, bin string, password string, args ...string) (string, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, args...)
	home := t.TempDir()
	// Offline: no TUF or Rekor; cosign's caches go to a temp home.
	cmd.Env = []string{"HOME=" + home, "TUF_ROOT=" + filepath.Join(home, "tuf"), "COSIGN_PASSWORD=" + password,
		"PATH=" + os.Getenv("PATH"), "COSIGN_EXPERIMENTAL=0"}
	cmd.Dir = home
	out, err := cmd.CombinedOutput()
	return string(out), err
}

func TestInteropRegctlSignsCosignVerifies(t *testing.T) {
	bin := signtest.CosignCLI(t)
	e := setup(t)
	e.sign(t, "v1", sign.Options{Annotations: map[string]string{"env": "prod"}})
	ref := e.repo.Tag("v1").String()
	out, err := runCosign(t, bin, "", "verify", "--key", e.pub, "--insecure-ignore-tlog=true", "--allow-insecure-registry", "-a", "env=prod", ref)
	if err != nil {
		t.Fatalf("cosign verify of a regctl signature failed: %v\n%s", err, out)
	}
	if !strings.Contains(out, `"env":"prod"`) {
		t.Errorf("cosign output lacks the annotation:\n%s", out)
	}
	// And cosign agrees that a different required annotation fails.
	if out, err := runCosign(t, bin, "", "verify", "--key", e.pub, "--insecure-ignore-tlog=true", "--allow-insecure-registry", "-a", "env=dev", ref); err == nil {
		t.Errorf("cosign accepted a wrong annotation:\n%s", out)
	}
}

func TestInteropCosignSignsRegctlVerifies(t *testing.T) {
	bin := signtest.CosignCLI(t)
	e := setup(t)
	// A key pair made by the cosign CLI, used by regctl too.
	dir := t.TempDir()
	if out, err := runCosign(t, bin, "pw", "generate-key-pair", "--output-key-prefix", filepath.Join(dir, "cosign")); err != nil {
		t.Fatalf("cosign generate-key-pair: %v\n%s", err, out)
	}
	d, _ := remote.Head(e.repo.Tag("multi"), e.reg.Remote()...)
	digestRef := e.repo.Digest(d.Digest.String()).String()
	out, err := runCosign(t, bin, "pw", "sign", "--key", filepath.Join(dir, "cosign.key"), "--tlog-upload=false", "--yes",
		"--allow-insecure-registry", "-a", "team=core", digestRef)
	if err != nil {
		t.Fatalf("cosign sign: %v\n%s", err, out)
	}
	v, err := e.verify(t, e.repo.Tag("multi").String(), filepath.Join(dir, "cosign.pub"), sign.VerifyOptions{Annotations: map[string]string{"team": "core"}})
	if err != nil {
		t.Fatalf("regctl verify of a cosign signature: %v", err)
	}
	if v.Digest != d.Digest.String() || v.Signatures != 1 {
		t.Errorf("%+v", v)
	}
	// regctl can sign with the cosign CLI's key (same file format), and re-signing adds nothing new.
	sv, err := sign.LoadSigner(context.Background(), filepath.Join(dir, "cosign.key"), pass("pw"))
	if err != nil {
		t.Fatalf("loading a cosign CLI key: %v", err)
	}
	if _, err := sign.Sign(context.Background(), e.reg.Remote(), e.repo.Tag("v1"), sv, sign.Options{}); err != nil {
		t.Fatal(err)
	}
	if _, err := e.verify(t, e.repo.Tag("v1").String(), e.pub, sign.VerifyOptions{}); exitcode.Of(err) != exitcode.Violation {
		t.Errorf("regctl's own key must not verify a signature by the cosign CLI key: %v", err)
	}
}
