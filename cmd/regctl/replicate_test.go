package main

import (
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/regctl-dev/regctl/internal/exitcode"
	"github.com/regctl-dev/regctl/internal/localreg/localregtest"
	"github.com/regctl-dev/regctl/internal/replicate"
	"github.com/regctl-dev/regctl/internal/sign/signtest"
)

// The guide's DR copy through the CLI: a signed multi-arch image (legacy .sig tags for the index
// and its platforms, and an OCI 1.1 signature in the referrers fallback) replicated to another
// registry verifies there with regctl and with the cosign CLI; a re-run writes nothing.
func TestReplicateSignedImagesVerifyOnTheDestination(t *testing.T) {
	const secret = "s3cret-Passw0rd"
	srcSrv, dstSrv := localregtest.Start(t), localregtest.Start(t)
	c := newCLI(t, "COSIGN_PASSWORD="+secret)
	c.ok("registry", "seed", srcSrv.Host+"/game-server")
	c.ok("sign", "generate-key-pair")
	key, pub := filepath.Join(c.workDir, "cosign.key"), filepath.Join(c.workDir, "cosign.pub")
	c.ok("sign", srcSrv.Host+"/game-server:latest", "--key", key, "--recursive", "-a", "env=prod")
	c.ok("sign", srcSrv.Host+"/game-server:v1.0.2", "--key", key, "--registry-referrers-mode", "oci-1-1")

	var res replicate.Result
	out := c.ok("replicate", srcSrv.Host, dstSrv.Host+"", "--repos", "game-server", "--dest-prefix", "dr", "-o", "json")
	if err := json.Unmarshal([]byte(out), &res); err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	if len(res.Repos) != 1 || res.Repos[0].Status != replicate.StatusCopied || res.Repos[0].Destination != dstSrv.Host+"/dr/game-server" {
		t.Fatalf("%+v", res.Repos)
	}
	dstImg := dstSrv.Host + "/dr/game-server"
	c.ok("verify", dstImg+":latest", "--key", pub, "-a", "env=prod", "--recursive")
	c.ok("verify", dstImg+":v1.0.2", "--key", pub, "--registry-referrers-mode", "oci-1-1")
	if _, _, code := c.run("verify", dstImg+":v1.0.1", "--key", pub); code != exitcode.Violation {
		t.Errorf("an image signed nowhere must not verify on the destination: exit %d", code)
	}
	if bin := signtest.CosignCLI(t); bin != "" {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
		defer cancel()
		home := t.TempDir()
		cmd := exec.CommandContext(ctx, bin, "verify", "--key", pub, "--insecure-ignore-tlog=true", "--allow-insecure-registry", "-a", "env=prod", dstImg+":latest")
		cmd.Env = []string{"HOME=" + home, "TUF_ROOT=" + filepath.Join(home, "tuf"), "PATH=" + os.Getenv("PATH")}
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Errorf("cosign verify on the destination: %v\n%s", err, out)
		}
	}

	// Unchanged: every tag unchanged, nothing written to the destination.
	dstSrv.Requests()
	out, errOut, code := c.run("replicate", srcSrv.Host+"/game-server", dstSrv.Host+"/dr/game-server")
	if code != 0 || !strings.Contains(out, "unchanged") || !strings.Contains(errOut, "0 manifests written, 0 blobs sent") {
		t.Errorf("re-run: exit %d\n%s%s", code, out, errOut)
	}
	for _, r := range dstSrv.Requests() {
		if !strings.HasPrefix(r, "HEAD ") && !strings.HasPrefix(r, "GET ") {
			t.Errorf("an unchanged re-run sent %s", r)
		}
	}
}

func TestReplicateCLIDeleteSafetyAndMetrics(t *testing.T) {
	srcSrv, dstSrv := localregtest.Start(t), localregtest.Start(t)
	c := newCLI(t)
	c.ok("registry", "seed", srcSrv.Host+"/app")
	src, dst := srcSrv.Host+"/app", dstSrv.Host+"/app"
	prom := filepath.Join(c.workDir, "replicate.prom")
	c.ok("replicate", src, dst, "--metrics-file", "replicate.prom")
	text, err := os.ReadFile(prom)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{`regctl_job_success{job="replicate",target="` + src + ` -> ` + dst + `"} 1`,
		`regctl_replicate_tags{job="replicate",status="copied",target="` + src + ` -> ` + dst + `"} 7`} {
		if !strings.Contains(string(text), want) {
			t.Errorf("metrics file lacks %q:\n%s", want, text)
		}
	}
	// A tag the source drops is only deleted with --delete, and never without --yes off a terminal.
	if _, errOut, code := c.run("replicate", src, dst, "--delete"); code != exitcode.Usage || !strings.Contains(errOut, "--yes") {
		t.Errorf("--delete without --yes: exit %d %s", code, errOut)
	}
	bad := []struct {
		argv []string
		want string
	}{
		{[]string{"replicate", src, dst, "--platforms", "linux"}, "--platforms"},
		{[]string{"replicate", src, dst, "--max-delete", "-1"}, "--max-delete"},
		{[]string{"replicate", srcSrv.Host, dst}, "SRC must name one too"},
		{[]string{"replicate", src}, "accepts 2 arg"},
	}
	for _, b := range bad {
		if _, errOut, code := c.run(b.argv...); code != exitcode.Usage || !strings.Contains(errOut, b.want) {
			t.Errorf("%v: exit %d %s", b.argv, code, errOut)
		}
	}
	if _, _, code := c.run("replicate", srcSrv.Host, dstSrv.Host, "--repos", "nothing*"); code != exitcode.NotFound {
		t.Errorf("nothing selected: exit %d", code)
	}
	out, errOut, code := c.run("replicate", src, dst, "--delete", "--dry-run", "--exclude", "v*")
	if code != 0 || strings.Contains(errOut, "would delete") {
		t.Errorf("nothing to delete yet: exit %d %s%s", code, out, errOut)
	}
	// A failing run still writes the metrics file, with success 0 and the earlier success kept.
	if _, _, code := c.run("replicate", "127.0.0.1:1/app", dst, "--metrics-file", "replicate2.prom"); code != exitcode.Error {
		t.Errorf("an unreachable source: exit %d", code)
	}
	text, _ = os.ReadFile(filepath.Join(c.workDir, "replicate2.prom"))
	if !strings.Contains(string(text), "regctl_job_success") || !strings.Contains(string(text), "} 0") {
		t.Errorf("failed run's metrics:\n%s", text)
	}
}
