package admission_test

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/v1/remote"

	"github.com/regctl-dev/regctl/internal/admission"
	"github.com/regctl-dev/regctl/internal/sign/signtest"
)

// TestVerifyWebhookCosignSigned: an image signed by the cosign CLI with its own key pair is
// admitted by a rule naming that key; the same image under a rule with regctl's key is denied.
func TestVerifyWebhookCosignSigned(t *testing.T) {
	bin := signtest.CosignCLI(t)
	e := setup(t, true)
	home := t.TempDir()
	run := func(args ...string) {
		t.Helper()
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
		defer cancel()
		cmd := exec.CommandContext(ctx, bin, args...)
		cmd.Env = []string{"HOME=" + home, "TUF_ROOT=" + filepath.Join(home, "tuf"), "COSIGN_PASSWORD=pw", "PATH=" + os.Getenv("PATH")}
		cmd.Dir = home
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("cosign %s: %v\n%s", strings.Join(args, " "), err, out)
		}
	}
	run("generate-key-pair", "--output-key-prefix", filepath.Join(home, "cosign"))
	digestRef := e.repo.Digest(e.digests["unsigned"]).String()
	run("sign", "--key", filepath.Join(home, "cosign.key"), "--tlog-upload=false", "--yes", "--allow-insecure-registry", digestRef)

	host := e.repo.RegistryStr()
	pol := admission.Policy{Enforce: true, Rules: []admission.Rule{{Images: []string{host + "/game-server/*"}, Keys: []string{filepath.Join(home, "cosign.pub")}}}}
	checker := &admission.RegistryChecker{Remote: func(context.Context, string) ([]remote.Option, error) { return nil, nil }}
	if err := checker.LoadKeys(context.Background(), pol); err != nil {
		t.Fatal(err)
	}
	srv := &admission.Server{Policy: pol, Checker: checker}
	if f := srv.CheckImages(context.Background(), []string{e.repo.Tag("unsigned").String()}); len(f) != 0 {
		t.Errorf("a cosign CLI signature: %v", f)
	}
	// regctl's key did not sign it: the webhook's own rule denies it.
	_, out := e.post(t, reviewJSON("v1", "CREATE", podJSON(e.repo.Tag("unsigned").String()), ""))
	if out.Response.Allowed {
		t.Error("regctl's key accepted a signature made by the cosign CLI's key")
	}
}
