package main

import (
	"bytes"
	"debug/buildinfo"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"runtime/debug"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/regctl-dev/regctl/internal/exitcode"
	"github.com/regctl-dev/regctl/internal/localreg/localregtest"
	"github.com/regctl-dev/regctl/internal/scan"
	"github.com/regctl-dev/regctl/internal/scan/scantest"
)

func TestDefaultDBRepositoryMatchesScan(t *testing.T) {
	if defaultDBRepository != scan.DefaultDBRepository {
		t.Fatalf("cmd says %s, internal/scan says %s", defaultDBRepository, scan.DefaultDBRepository)
	}
}

// buildLight builds the light regctl (-tags regctl_lite) as make build does, into dir.
func buildLight(t *testing.T, dir string) string {
	t.Helper()
	bin := filepath.Join(dir, "regctl")
	build := exec.Command("go", "build", "-tags", "regctl_lite", "-o", bin, ".")
	// Static like the release, also from the race run (cgo on there, which would be a cold build).
	build.Env = append(os.Environ(), "CGO_ENABLED=0", "GOEXPERIMENT=jsonv2")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build -tags regctl_lite: %v\n%s", err, out)
	}
	return bin
}

type procResult struct {
	stdout, stderr string
	code           int
}

func runProc(t *testing.T, dir string, env []string, argv ...string) procResult {
	t.Helper()
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Dir, cmd.Env = dir, env
	var out, errOut bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errOut
	err := cmd.Run()
	code := 0
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatal(err)
	}
	return procResult{out.String(), errOut.String(), code}
}

// The light build links no trivy and no OPA, and runs scans in regctl-scan: found beside it, with
// flags, arguments, streams and exit codes passed through; without it, a clear error.
func TestLightBuildRunsScansInTheCompanion(t *testing.T) {
	dir := t.TempDir()
	light := buildLight(t, dir)
	info, err := buildinfo.ReadFile(light)
	if err != nil {
		t.Fatal(err)
	}
	for _, d := range info.Deps {
		if strings.HasPrefix(d.Path, "github.com/aquasecurity/") || strings.HasPrefix(d.Path, "github.com/open-policy-agent/") {
			t.Errorf("the light build links %s", d.Path)
		}
	}
	if !slices.ContainsFunc(info.Settings, func(s debug.BuildSetting) bool { return s.Key == "-tags" && s.Value == "regctl_lite" }) {
		t.Errorf("build settings: %v", info.Settings)
	}

	host := localregtest.Start(t).Host
	cache := t.TempDir()
	scantest.BuildDB(t, cache, fixedNow.Add(-time.Hour), fixedNow.Add(23*time.Hour))
	scantest.Push(t, host+"/app:clean", scantest.CleanImage(t, scantest.ImageConfig{User: "app"}))
	scantest.Push(t, host+"/app:vulnerable", scantest.VulnerableImage(t, scantest.ImageConfig{User: "root"}))
	home := t.TempDir()
	env := []string{"HOME=" + home, "PATH=", envRunAsCLI + "=1"}
	work := t.TempDir()
	db := []string{"--cache-dir", cache, "--skip-db-update"}

	var v versionInfo
	r := runProc(t, work, env, light, "version", "-o", "json")
	if err := json.Unmarshal([]byte(r.stdout), &v); err != nil || v.Scanner != companionName {
		t.Errorf("version: %v %+v %s", err, v, r.stderr)
	}

	// No companion anywhere: exit 5, saying what to install.
	r = runProc(t, work, env, append([]string{light, "scan", host + "/app:clean"}, db...)...)
	if r.code != exitcode.NotFound || !strings.Contains(r.stderr, "regctl-scan") || !strings.Contains(r.stderr, "make build") {
		t.Errorf("no companion: exit %d\n%s", r.code, r.stderr)
	}
	// The light build named as its own companion: refused, not a loop.
	r = runProc(t, work, append(env, envScanner+"="+light), append([]string{light, "scan", host + "/app:clean"}, db...)...)
	if r.code != exitcode.Error || !strings.Contains(r.stderr, "has no scanner") {
		t.Errorf("loop: exit %d\n%s", r.code, r.stderr)
	}

	// The companion beside regctl (this test binary, which is the full build).
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(exe, filepath.Join(dir, companionName)); err != nil {
		t.Fatal(err)
	}
	r = runProc(t, work, env, append([]string{light, "-o", "json", "scan", host + "/app:clean"}, db...)...)
	if r.code != 0 || !strings.Contains(r.stdout, `"SchemaVersion": 2`) {
		t.Errorf("clean image: exit %d\n%s\n%s", r.code, r.stdout, r.stderr)
	}
	r = runProc(t, work, env, append([]string{light, "scan", host + "/app:vulnerable"}, db...)...)
	if r.code != exitcode.Violation || strings.Count(r.stderr, "regctl: ") != 1 || !strings.Contains(r.stderr, "CRITICAL: 2 findings, at most 0 allowed") ||
		!strings.Contains(r.stdout, "Total: 7 (CRITICAL: 2") {
		t.Errorf("vulnerable image: exit %d (one error line wanted)\n%s\n%s", r.code, r.stdout, r.stderr)
	}
	r = runProc(t, work, env, light, "scan", "db", "status", "--cache-dir", cache, "-o", "json")
	if r.code != 0 || !strings.Contains(r.stdout, `"present": true`) {
		t.Errorf("db status: exit %d\n%s\n%s", r.code, r.stdout, r.stderr)
	}
	// A usage error found by the companion keeps its code.
	r = runProc(t, work, env, append([]string{light, "scan", host + "/app:clean", "--format", "pdf"}, db...)...)
	if r.code != exitcode.Usage || !strings.Contains(r.stderr, "--format") {
		t.Errorf("bad format: exit %d\n%s", r.code, r.stderr)
	}
}

// An interrupted regctl hands the interrupt on to the companion and waits for it to stop; the
// command line the companion gets is the parsed one, flag for flag.
func TestLightBuildForwardsArgvAndInterrupts(t *testing.T) {
	dir := t.TempDir()
	light := buildLight(t, dir)
	mark := filepath.Join(dir, "mark")
	fake := filepath.Join(dir, "fake-scan")
	script := `#!/bin/sh
printf '%s\n' "$@" > "` + mark + `.argv"
trap 'echo term > "` + mark + `.term"; exit 130' TERM
: > "` + mark + `.started"
i=0
while [ $i -lt 300 ]; do sleep 0.1; i=$((i+1)); done
exit 0
`
	if err := os.WriteFile(fake, []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(light, "-v", "scan", "reg.example/app:1", "--fail-on", "none", "--report", "json=a.json", "--report", "html=b.html")
	cmd.Dir, cmd.Env = dir, []string{"HOME=" + dir, "PATH=/usr/bin:/bin", envScanner + "=" + fake}
	var errOut bytes.Buffer
	cmd.Stderr = &errOut
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(20 * time.Second)
	for {
		if _, err := os.Stat(mark + ".started"); err == nil {
			break
		}
		if time.Now().After(deadline) {
			_ = cmd.Process.Kill()
			t.Fatalf("the companion never started: %s", errOut.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	err := cmd.Wait()
	ee, ok := err.(*exec.ExitError)
	if !ok || ee.ExitCode() == 0 {
		t.Errorf("interrupted regctl: %v", err)
	}
	if _, err := os.Stat(mark + ".term"); err != nil {
		t.Errorf("the companion was not sent SIGTERM: %v (%s)", err, errOut.String())
	}
	argv, _ := os.ReadFile(mark + ".argv")
	want := "scan\n--fail-on=none\n--report=json=a.json\n--report=html=b.html\n--verbose=1\n--\nreg.example/app:1\n"
	if string(argv) != want {
		t.Errorf("companion argv:\n%s\nwant:\n%s", argv, want)
	}
}

// A companion run by a regctl of another version says so (both should come from one release).
func TestCompanionWarnsOnAnotherVersion(t *testing.T) {
	_, errOut, code := newCLI(t, envScannerParent+"=0.0.1-other").run("version")
	if code != 0 || !strings.Contains(errOut, "warning: regctl 0.0.1-other ran regctl-scan "+version) {
		t.Errorf("exit %d, stderr %q", code, errOut)
	}
	if _, errOut, _ := newCLI(t, envScannerParent+"="+version).run("version"); strings.Contains(errOut, "warning") {
		t.Errorf("same version warned: %q", errOut)
	}
}
