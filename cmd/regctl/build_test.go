package main

import (
	"archive/tar"
	"encoding/json"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/types"

	"github.com/regctl-dev/regctl/internal/build"
	"github.com/regctl-dev/regctl/internal/exitcode"
	"github.com/regctl-dev/regctl/internal/localreg/localregtest"
	"github.com/regctl-dev/regctl/internal/sample"
	"github.com/regctl-dev/regctl/internal/scan/scantest"
)

// needBuildah skips without buildah locally; CI (REGCTL_TEST_REQUIRE_TOOLS) installs it and fails instead.
func needBuildah(t *testing.T) {
	t.Helper()
	if _, err := exec.LookPath("buildah"); err == nil {
		return
	}
	if os.Getenv("REGCTL_TEST_REQUIRE_TOOLS") != "" {
		t.Fatal("buildah is required (apt-get install buildah)")
	}
	t.Skip("buildah not installed")
}

// pushBusybox pushes a base image whose /bin/sh is Debian's static busybox, so RUN steps work.
func pushBusybox(t *testing.T, ref string) {
	t.Helper()
	bb, err := os.ReadFile("/bin/busybox")
	if err != nil {
		t.Skip("no /bin/busybox (apt-get install busybox-static)")
	}
	layer, _ := sample.Layer(map[string][]byte{"bin/sh": bb})
	img, _ := mutate.AppendLayers(mutate.ConfigMediaType(mutate.MediaType(empty.Image, types.OCIManifestSchema1), types.OCIConfigJSON), layer)
	cf, _ := img.ConfigFile()
	cf = cf.DeepCopy()
	cf.OS, cf.Architecture = "linux", "amd64"
	cf.Config.Env = []string{"PATH=/bin"}
	img, _ = mutate.ConfigFile(img, cf)
	scantest.Push(t, ref, img)
}

func writeContext(t *testing.T, files map[string]string) string {
	t.Helper()
	dir := t.TempDir()
	for p, body := range files {
		os.MkdirAll(filepath.Dir(filepath.Join(dir, p)), 0o755)
		if err := os.WriteFile(filepath.Join(dir, p), []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

const testCommit = "3f2a9c1d0e9b8a7f6e5d4c3b2a1f0e9d8c7b6a5f"

func configOf(t *testing.T, ref string) *v1.ConfigFile {
	t.Helper()
	r, _ := name.ParseReference(ref)
	img, err := remote.Image(r)
	if err != nil {
		t.Fatalf("%s: %v", ref, err)
	}
	cf, err := img.ConfigFile()
	if err != nil {
		t.Fatal(err)
	}
	return cf
}

func TestBuildPushWithBuildahFromABaseImage(t *testing.T) {
	needBuildah(t)
	host := localregtest.Start(t).Host
	pushBusybox(t, host+"/base/busybox:1")
	ctxDir := writeContext(t, map[string]string{
		"Dockerfile": "FROM " + host + "/base/busybox:1\nARG VERSION\nARG VCS_REF\nRUN echo \"version=$VERSION ref=$VCS_REF\" > /version.txt\nCOPY app.txt /app.txt\nUSER 1000\n",
		"app.txt":    "game server\n",
	})
	c := newCLI(t)
	report := filepath.Join(t.TempDir(), "build.json")
	_, errOut, code := c.run("build-push", ctxDir, "--repo", host+"/game-server", "--version", "1.4.0", "--platform", "linux/amd64",
		"--builder", "buildah", "--branch", "main", "--commit", testCommit, "--report", report)
	if code != 0 {
		t.Fatalf("exit %d\n%s", code, errOut)
	}
	var rep build.Report
	raw, _ := os.ReadFile(report)
	if err := json.Unmarshal(raw, &rep); err != nil {
		t.Fatal(err)
	}
	if strings.Join(rep.Tags, ",") != "latest,1.4.0,3f2a9c1" || len(rep.Published) != 3 || rep.Builder != "buildah" || !strings.HasPrefix(rep.Digest, "sha256:") {
		t.Fatalf("report: %+v", rep)
	}
	for _, tag := range rep.Tags {
		d, err := remote.Head(mustRef(t, host+"/game-server:"+tag))
		if err != nil || d.Digest.String() != rep.Digest {
			t.Errorf("tag %s: %v %v", tag, d, err)
		}
	}
	cf := configOf(t, host+"/game-server:latest")
	l := cf.Config.Labels
	if l["org.opencontainers.image.revision"] != testCommit || l["org.opencontainers.image.version"] != "1.4.0" ||
		l["org.opencontainers.image.created"] != "2026-06-30T12:00:00Z" || cf.Config.User != "1000" {
		t.Errorf("labels/config read back: %+v user %q", l, cf.Config.User)
	}
	// The RUN step ran with the build args.
	img, _ := remote.Image(mustRef(t, host+"/game-server:latest"))
	if got := fileInImage(t, img, "version.txt"); got != "version=1.4.0 ref=3f2a9c1\n" {
		t.Errorf("RUN output %q", got)
	}
}

func TestBuildPushTwoPlatformsFromScratch(t *testing.T) {
	needBuildah(t)
	host := localregtest.Start(t).Host
	ctxDir := writeContext(t, map[string]string{"Dockerfile": "FROM scratch\nCOPY hello.txt /hello.txt\n", "hello.txt": "hi\n"})
	c := newCLI(t)
	out := c.ok("build-push", ctxDir, "--repo", host+"/tools", "--platform", "linux/amd64,linux/arm64",
		"--builder", "buildah", "--branch", "develop", "--commit", testCommit, "-o", "json")
	var rep build.Report
	if err := json.Unmarshal([]byte(out), &rep); err != nil {
		t.Fatal(err)
	}
	if strings.Join(rep.Tags, ",") != "staging,staging-3f2a9c1" {
		t.Errorf("develop tags: %v", rep.Tags)
	}
	desc, err := remote.Get(mustRef(t, host+"/tools:staging"))
	if err != nil || !desc.MediaType.IsIndex() {
		t.Fatalf("want an index: %v %v", desc, err)
	}
	idx, _ := desc.ImageIndex()
	im, _ := idx.IndexManifest()
	plats := []string{}
	for _, m := range im.Manifests {
		plats = append(plats, m.Platform.String())
	}
	if strings.Join(plats, ",") != "linux/amd64,linux/arm64" {
		t.Errorf("platforms %v", plats)
	}
	// Other branches: dev-<sha>; the dry run prints buildah's commands and runs nothing.
	out = c.ok("build-push", ctxDir, "--repo", host+"/tools", "--builder", "buildah", "--branch", "feature/x", "--commit", testCommit, "--dry-run")
	if !strings.Contains(out, "dev-3f2a9c1") || !strings.Contains(out, "buildah --root") {
		t.Errorf("dry run:\n%s", out)
	}
	if _, err := remote.Head(mustRef(t, host+"/tools:dev-3f2a9c1")); err == nil {
		t.Error("a dry run published a tag")
	}
	out = c.ok("build-push", ctxDir, "--repo", host+"/tools", "--builder", "buildx", "--branch", "main", "--commit", testCommit, "--dry-run", "-o", "json")
	json.Unmarshal([]byte(out), &rep)
	if len(rep.Commands) != 1 || !strings.HasPrefix(rep.Commands[0], "docker buildx build --platform linux/amd64,linux/arm64 --cache-from type=registry,ref="+host+"/tools:buildcache") {
		t.Errorf("buildx dry run: %v", rep.Commands)
	}
}

func TestBuildPushGateBlocksThenPasses(t *testing.T) {
	forEachScanner(t, testBuildPushGateBlocksThenPasses)
}

func testBuildPushGateBlocksThenPasses(t *testing.T, newCLI func(*testing.T, ...string) *cli) {
	needBuildah(t)
	host := localregtest.Start(t).Host
	built := scantest.BuildDB(t, t.TempDir(), fixedNow.Add(-time.Hour), fixedNow.Add(23*time.Hour))
	scantest.Push(t, host+"/aquasec/trivy-db:2", scantest.DBArtifact(t, built))
	// A FROM-scratch image carrying a vulnerable Alpine package database.
	ctxDir := writeContext(t, map[string]string{
		"Dockerfile":           "FROM scratch\nCOPY etc/ /etc/\nCOPY lib/ /lib/\n",
		"etc/alpine-release":   "3.20.0\n",
		"lib/apk/db/installed": "P:libssl3\nV:3.3.0-r2\nA:x86_64\no:openssl\n\n",
	})
	c := newCLI(t, "COSIGN_PASSWORD=pw")
	scanFlags := []string{"--scan", "--cache-dir", filepath.Join(t.TempDir(), "cache"), "--db-repository", host + "/aquasec/trivy-db:2"}
	argv := append([]string{"build-push", ctxDir, "--repo", host + "/game-server", "--platform", "linux/amd64", "--builder", "buildah",
		"--branch", "main", "--commit", testCommit, "--version", "2.0.0"}, scanFlags...)
	out, errOut, code := c.run(append(argv, "-o", "json")...)
	if code != exitcode.Violation || !strings.Contains(errOut, "pushed by digest but not tagged") || !strings.Contains(errOut, "CVE-2024-5535") {
		t.Fatalf("gate must block: exit %d\n%s", code, errOut)
	}
	var rep build.Report
	json.Unmarshal([]byte(out), &rep)
	if len(rep.Published) != 0 || rep.Digest == "" || rep.Scan == nil {
		t.Errorf("blocked report: %+v", rep)
	}
	tags, _ := remote.List(mustRepo(t, host+"/game-server"))
	if len(tags) != 0 {
		t.Errorf("tags published despite the gate: %v", tags)
	}

	c.ok("sign", "generate-key-pair")
	c.ok(append(argv, "--fail-on", "none", "--sign", "--key", filepath.Join(c.workDir, "cosign.key"))...)
	if _, err := remote.Head(mustRef(t, host+"/game-server:2.0.0")); err != nil {
		t.Fatalf("tag after a passing gate: %v", err)
	}
	c.ok("verify", host+"/game-server:latest", "--key", filepath.Join(c.workDir, "cosign.pub"), "-a", "git_commit="+testCommit)
}

func mustRef(t *testing.T, s string) name.Reference {
	t.Helper()
	r, err := name.ParseReference(s)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func mustRepo(t *testing.T, s string) name.Repository {
	t.Helper()
	r, err := name.NewRepository(s)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func fileInImage(t *testing.T, img v1.Image, path string) string {
	t.Helper()
	rc := mutate.Extract(img)
	defer rc.Close()
	tr := tar.NewReader(rc)
	for {
		h, err := tr.Next()
		if err != nil {
			t.Fatalf("%s not in the image: %v", path, err)
		}
		if strings.TrimPrefix(h.Name, "/") == path {
			b, _ := io.ReadAll(tr)
			return string(b)
		}
	}
}
