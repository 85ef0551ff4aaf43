package main

import (
	"context"
	"encoding/json"
	"io"
	"log"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	ggcrregistry "github.com/google/go-containerregistry/pkg/registry"

	"github.com/regctl-dev/regctl/internal/exitcode"
	"github.com/regctl-dev/regctl/internal/localreg/localregtest"
	"github.com/regctl-dev/regctl/internal/registry"
	"github.com/regctl-dev/regctl/internal/ui"
)

var fixedNow = time.Date(2026, 6, 30, 12, 0, 0, 0, time.UTC)

type cli struct {
	t       *testing.T
	env     []string
	workDir string
	tty     bool
	// companion runs scan commands in a regctl-scan process (this test binary, see TestMain), as the
	// light build does, instead of in-process.
	companion bool
	// transcript is every stdout and stderr of the runs, for checks that a secret shows nowhere.
	transcript strings.Builder
}

func (c *cli) allOutput() string { return c.transcript.String() }

func newCLI(t *testing.T, env ...string) *cli {
	home := t.TempDir()
	return &cli{t: t, workDir: t.TempDir(), env: append([]string{"HOME=" + home, "XDG_CONFIG_HOME=" + filepath.Join(home, ".config")}, env...)}
}

// run executes regctl in-process with buffers and returns stdout, stderr and the exit code.
func (c *cli) run(argv ...string) (string, string, int) {
	c.t.Helper()
	streams, _, out, errOut := ui.Test()
	streams.OutTTY, streams.ErrTTY = c.tty, c.tty
	f := &Factory{IO: streams, Environ: c.env, Now: func() time.Time { return fixedNow }, WorkDir: c.workDir}
	if c.companion {
		f.scan = companionScanner{}
	}
	code := execute(context.Background(), f, argv)
	c.transcript.WriteString(out.String())
	c.transcript.WriteString(errOut.String())
	return out.String(), errOut.String(), code
}

func (c *cli) ok(argv ...string) string {
	c.t.Helper()
	out, errOut, code := c.run(argv...)
	if code != 0 {
		c.t.Fatalf("regctl %s: exit %d\nstdout:\n%s\nstderr:\n%s", strings.Join(argv, " "), code, out, errOut)
	}
	return out
}

func TestVersionJSON(t *testing.T) {
	var v versionInfo
	if err := json.Unmarshal([]byte(newCLI(t).ok("version", "-o", "json")), &v); err != nil {
		t.Fatal(err)
	}
	// The test binary is the full build: it scans in-process (the light one is TestLightBuild*'s).
	if v.Version != version || v.GoVersion == "" || v.Platform == "" || v.Scanner != "built-in" {
		t.Fatalf("%+v", v)
	}
}

// The whole read path, in-process, against two real registry implementations.
func TestRepoCommandsAgainstRealRegistries(t *testing.T) {
	ggcr := httptest.NewServer(ggcrregistry.New(ggcrregistry.Logger(log.New(io.Discard, "", 0))))
	t.Cleanup(ggcr.Close)
	hosts := map[string]string{
		"distribution": localregtest.Start(t).Host,
		"ggcr":         strings.TrimPrefix(ggcr.URL, "http://"),
	}
	for impl, host := range hosts {
		t.Run(impl, func(t *testing.T) {
			c := newCLI(t)
			seedOut := c.ok("registry", "seed", host+"/game-server")
			if !strings.Contains(seedOut, "untagged image pushed by digest") {
				t.Errorf("seed output:\n%s", seedOut)
			}
			c.ok("registry", "seed", host+"/game-server/tools")

			out := c.ok("repo", "list", host)
			if out != "REPOSITORY\ngame-server\ngame-server/tools\n" {
				t.Errorf("repo list (plain, on a pipe):\n%q", out)
			}
			var listed []repoEntry
			json.Unmarshal([]byte(c.ok("repo", "list", host+"/game-server/", "-o", "json")), &listed)
			if len(listed) != 1 || listed[0].Repository != "game-server/tools" || listed[0].Registry != host {
				t.Errorf("repo list with prefix: %+v", listed)
			}

			table := c.ok("repo", "images", host+"/game-server")
			lines := strings.Split(strings.TrimSpace(table), "\n")
			if !strings.HasPrefix(lines[0], "DIGEST") || !strings.Contains(lines[0], "TIME SOURCE") {
				t.Errorf("header: %q", lines[0])
			}
			// 5 tagged images + the index; children and the signature fold into the index row.
			if len(lines) != 7 {
				t.Errorf("want 6 rows:\n%s", table)
			}
			if !strings.Contains(table, "index (2 platforms), signed") || !strings.Contains(table, "config.created") {
				t.Errorf("table lacks index/signature/time source:\n%s", table)
			}
			all := c.ok("repo", "images", host+"/game-server", "--all")
			if !strings.Contains(all, "signature of sha256:") || !strings.Contains(all, "image linux/arm64") {
				t.Errorf("--all table:\n%s", all)
			}

			var images []registry.Image
			if err := json.Unmarshal([]byte(c.ok("repo", "images", host+"/game-server", "-o", "json")), &images); err != nil {
				t.Fatal(err)
			}
			kinds := map[registry.Kind]int{}
			for _, img := range images {
				kinds[img.Kind]++
				if img.Tags == nil {
					t.Errorf("%s: tags must be [] not null in JSON", img.Digest)
				}
			}
			if kinds[registry.KindImage] != 7 || kinds[registry.KindIndex] != 1 || kinds[registry.KindSignature] != 1 {
				t.Errorf("kinds = %v", kinds)
			}
			y := c.ok("repo", "images", host+"/game-server", "-o", "yaml")
			if !strings.Contains(y, "pushedAtSource: newest-platform") {
				t.Errorf("yaml output:\n%s", y)
			}

			_, errOut, code := c.run("repo", "images", host+"/does-not-exist")
			if code != exitcode.NotFound {
				t.Errorf("missing repo: exit %d, stderr %s", code, errOut)
			}
			create := c.ok("repo", "create", host+"/game-server", host+"/brand-new", "--scan-on-push")
			if !strings.Contains(create, "exists") || !strings.Contains(create, "on-first-push") || !strings.Contains(create, "not supported") {
				t.Errorf("repo create:\n%s", create)
			}
		})
	}
}

func TestTableOnTTYUsesBorders(t *testing.T) {
	host := localregtest.Start(t).Host
	c := newCLI(t)
	c.ok("registry", "seed", host+"/game-server")
	c.tty = true
	out := c.ok("repo", "list", host, "--no-color")
	if !strings.Contains(out, "╭") || !strings.Contains(out, "game-server") || strings.Contains(out, "\x1b[") {
		t.Errorf("tty table without colour:\n%s", out)
	}
}

func writeConfig(t *testing.T, dir, body string) string {
	t.Helper()
	p := filepath.Join(dir, "regctl.yaml")
	if err := os.WriteFile(p, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestConfigPrecedenceThroughTheCLI(t *testing.T) {
	c := newCLI(t, "REGCTL_DEFAULT_REGISTRY=b")
	writeConfig(t, c.workDir, "default_registry: a\nregistries:\n  a: {type: oci, url: a.example}\n  b: {type: oci, url: b.example}\n  c: {type: oci, url: c.example}\n")
	view := func(extra ...string) string {
		var cfg struct {
			Default string `json:"default_registry"`
		}
		json.Unmarshal([]byte(c.ok(append([]string{"config", "view", "-o", "json"}, extra...)...)), &cfg)
		return cfg.Default
	}
	if got := view(); got != "b" {
		t.Errorf("env should beat the file: %q", got)
	}
	if got := view("-r", "c"); got != "c" {
		t.Errorf("flag should beat env: %q", got)
	}
	c.env = c.env[:2]
	if got := view(); got != "a" {
		t.Errorf("file value: %q", got)
	}
}

func TestConfigInitValidateViewRedacts(t *testing.T) {
	c := newCLI(t, "GHCR_TOKEN=tok-should-not-print")
	c.ok("config", "init")
	if _, _, code := c.run("config", "init"); code != exitcode.Usage {
		t.Errorf("second init without --force: exit %d", code)
	}
	if out := c.ok("config", "validate"); !strings.HasSuffix(strings.TrimSpace(out), "regctl.yaml: valid") {
		t.Errorf("starter validate: %q", out)
	}

	writeConfig(t, c.workDir, `registries:
  ghcr: {type: oci, url: ghcr.io, username: bot, password: hunter2-inline}
  env: {type: oci, url: ghcr.io, username: bot, password_env: GHCR_TOKEN}
`)
	out, errOut, code := c.run("config", "view")
	if code != 0 || !strings.Contains(out, "password: REDACTED") || !strings.Contains(out, "password_env: GHCR_TOKEN") {
		t.Errorf("view (exit %d):\n%s%s", code, out, errOut)
	}
	if strings.Contains(out+errOut, "hunter2") || strings.Contains(out+errOut, "tok-should-not-print") {
		t.Error("a secret was printed")
	}

	bad := writeConfig(t, t.TempDir(), "registries:\n  x: {type: quay, url: q}\n  y: {type: oci}\nunknown_key: 1\n")
	out, _, code = c.run("config", "validate", bad)
	if code != exitcode.Usage {
		t.Errorf("invalid config: exit %d", code)
	}
	for _, want := range []string{`registries.x.type: "quay" is not one of oci, ecr`, "unknown_key: unknown key"} {
		if !strings.Contains(out, want) {
			t.Errorf("validate output lacks %q:\n%s", want, out)
		}
	}
	var res validateResult
	out, _, _ = c.run("config", "validate", bad, "-o", "json")
	if err := json.Unmarshal([]byte(out), &res); err != nil || res.Valid || len(res.Problems) != 2 {
		t.Errorf("validate -o json: %+v %v\n%s", res, err, out)
	}
	// every command refuses to run on an invalid config, with exit 2
	_, errOut, code = c.run("repo", "list", "--config", bad)
	if code != exitcode.Usage || !strings.Contains(errOut, "registries.x.type") {
		t.Errorf("repo list with a bad config: exit %d, %s", code, errOut)
	}
}

func TestUsageErrorsExit2(t *testing.T) {
	c := newCLI(t)
	for _, argv := range [][]string{
		{"bogus"},
		{"repo", "bogus"},
		{"--bogus"},
		{"repo", "images"},
		{"repo", "list", "-o", "xml"},
		{"repo", "list", "--log-format", "logfmt"},
		{"repo", "images", "game-server"}, // no default registry configured
		{"repo", "create", "127.0.0.1:1/Bad_Name"},
		{"repo", "create", "127.0.0.1:1/app", "--encryption", "DES"},
		{"registry", "gc"},
		{"registry", "serve", "--root", c.workDir, "--tls-cert", "cert.pem"},
		{"repo", "create", "127.0.0.1:1/app", "--tag", "team"},
		{"sign", "127.0.0.1:1/app:v1", "--key", "cosign.key", "-a", "=prod"},
		{"build-push", c.workDir, "--repo", "127.0.0.1:1/app", "--build-arg", "VERSION"},
	} {
		_, errOut, code := c.run(argv...)
		if code != exitcode.Usage {
			t.Errorf("regctl %s: exit %d, want 2 (stderr %q)", strings.Join(argv, " "), code, errOut)
		}
		if !strings.HasPrefix(errOut, "regctl: ") {
			t.Errorf("regctl %s: error not on stderr as one line: %q", strings.Join(argv, " "), errOut)
		}
	}
	if out := c.ok("help", "exit-codes"); !strings.Contains(out, "3  policy violation") {
		t.Errorf("help exit-codes:\n%s", out)
	}
	if out := c.ok("help", "environment"); !strings.Contains(out, "REGCTL_DEFAULT_REGISTRY") {
		t.Errorf("help environment:\n%s", out)
	}
}

func TestRegistryGCOnAMissingRootExits5(t *testing.T) {
	c := newCLI(t)
	_, errOut, code := c.run("registry", "gc", "--root", filepath.Join(c.workDir, "nothing-here"))
	if code != exitcode.NotFound || !strings.Contains(errOut, "no registry storage here") {
		t.Errorf("exit %d: %s", code, errOut)
	}
}

func TestUnreachableRegistryExits1(t *testing.T) {
	c := newCLI(t)
	_, errOut, code := c.run("repo", "list", "127.0.0.1:1")
	if code != exitcode.Error || !strings.Contains(errOut, "127.0.0.1:1") {
		t.Errorf("exit %d: %s", code, errOut)
	}
}

// testdataFile is a file of the repository's testdata as an absolute path: the in-process CLI
// resolves relative paths against its injected working directory, not the test's.
func testdataFile(rel string) string {
	abs, err := filepath.Abs(filepath.Join("..", "..", "testdata", rel))
	if err != nil {
		panic(err)
	}
	return abs
}

// Relative user paths (lifecycle -f, backup destinations, reports) are relative to the command's
// working directory, not to wherever the process happens to run.
func TestRelativePathsUseTheWorkDir(t *testing.T) {
	c := newCLI(t)
	policy, err := os.ReadFile(testdataFile("lifecycle/ecr-lifecycle-policy.json"))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(c.workDir, "policy.json"), policy, 0o600); err != nil {
		t.Fatal(err)
	}
	c.ok("lifecycle", "validate", "-f", "policy.json")
	host := localregtest.Start(t).Host
	c.ok("registry", "seed", host+"/game-server")
	c.ok("backup", host, "--to", "snapshots")
	if entries, err := os.ReadDir(filepath.Join(c.workDir, "snapshots")); err != nil || len(entries) == 0 {
		t.Fatalf("backup --to snapshots did not land in the work dir: %v %v", entries, err)
	}
}
