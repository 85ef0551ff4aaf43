//lint:file-ignore SA1019 Severity is what trivy v0.74 itself reports and gates on (VendorSeverity is per source); findings parity with the trivy CLI needs it

package scan_test

import (
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/aquasecurity/trivy/pkg/types"
	"github.com/google/go-containerregistry/pkg/name"

	"github.com/regctl-dev/regctl/internal/localreg/localregtest"
	"github.com/regctl-dev/regctl/internal/scan"
	"github.com/regctl-dev/regctl/internal/scan/scantest"
)

// trivyCLI finds the trivy CLI built from the same version as the library (v0.74.0, installed by
// .ci/run). Without it the comparison skips locally and fails where REGCTL_TEST_REQUIRE_TOOLS is set.
func trivyCLI(tb testing.TB) string {
	tb.Helper()
	if p := os.Getenv("REGCTL_TEST_TRIVY"); p != "" {
		return p
	}
	if p, err := exec.LookPath("trivy"); err == nil {
		return p
	}
	if os.Getenv("REGCTL_TEST_REQUIRE_TOOLS") != "" {
		tb.Fatal("the trivy CLI is required (REGCTL_TEST_TRIVY or trivy on PATH)")
	}
	tb.Skip("trivy CLI not installed; .ci/run installs it")
	return ""
}

type cliFixture struct {
	host, cacheDir, image string
}

// newCLIFixture puts the fixture DB where both trivy and regctl read it and pushes the image.
func newCLIFixture(tb testing.TB) cliFixture {
	tb.Helper()
	srv := localregtest.Start(tb)
	cache := tb.TempDir()
	// The CLI uses the real clock: keep the DB fresh for it.
	scantest.BuildDB(tb, cache, time.Now().Add(-time.Hour), time.Now().Add(24*time.Hour))
	scantest.Push(tb, srv.Host+"/app:vulnerable", scantest.VulnerableImage(tb, scantest.ImageConfig{Created: now}))
	return cliFixture{host: srv.Host, cacheDir: cache, image: srv.Host + "/app:vulnerable"}
}

func (fx cliFixture) runCLI(tb testing.TB, bin string) []byte {
	tb.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, "image", "--cache-dir", fx.cacheDir, "--skip-db-update", "--skip-java-db-update",
		"--skip-version-check", "--disable-telemetry", "--scanners", "vuln", "--severity", "CRITICAL,HIGH,MEDIUM",
		"--format", "json", "--quiet", fx.image)
	cmd.Env = []string{"HOME=" + tb.TempDir(), "PATH=" + os.Getenv("PATH")}
	out, err := cmd.Output()
	if err != nil {
		var stderr []byte
		if ee, ok := err.(*exec.ExitError); ok {
			stderr = ee.Stderr
		}
		tb.Fatalf("trivy CLI: %v\n%s", err, stderr)
	}
	return out
}

func (fx cliFixture) runLibrary(tb testing.TB) []scan.Target {
	tb.Helper()
	e, err := scan.Open(filepath.Join(fx.cacheDir, "db"), nil)
	if err != nil {
		tb.Fatal(err)
	}
	defer e.Close()
	ref, _ := name.ParseReference(fx.image)
	targets, err := e.Scan(context.Background(), nil, ref, scan.ScanOptions{Now: time.Now()})
	if err != nil {
		tb.Fatal(err)
	}
	return targets
}

func findingKeys(r types.Report) []string {
	var out []string
	for _, res := range r.Results {
		for _, v := range res.Vulnerabilities {
			out = append(out, strings.Join([]string{res.Target, v.VulnerabilityID, v.PkgName, v.InstalledVersion, v.FixedVersion, v.Severity, string(v.SeveritySource)}, " | "))
		}
	}
	sort.Strings(out)
	return out
}

// TestFindingsMatchTrivyCLI: the library path and `trivy image` of the same version, on the same image
// and DB, report the same findings.
func TestFindingsMatchTrivyCLI(t *testing.T) {
	bin := trivyCLI(t)
	fx := newCLIFixture(t)
	var cli types.Report
	if err := json.Unmarshal(fx.runCLI(t, bin), &cli); err != nil {
		t.Fatal(err)
	}
	lib := fx.runLibrary(t)
	want, got := findingKeys(cli), findingKeys(lib[0].Report)
	if len(want) != 7 || strings.Join(want, "\n") != strings.Join(got, "\n") {
		t.Errorf("trivy CLI:\n%s\nregctl:\n%s", strings.Join(want, "\n"), strings.Join(got, "\n"))
	}
}

// BenchmarkScanVsTrivyCLI scans the same image with the same DB through the library (in-process,
// DB already open) and through the trivy CLI (a process per scan, as security-scan.sh runs it).
func BenchmarkScanVsTrivyCLI(b *testing.B) {
	bin := trivyCLI(b)
	fx := newCLIFixture(b)
	b.Run("regctl-library", func(b *testing.B) {
		e, err := scan.Open(filepath.Join(fx.cacheDir, "db"), nil)
		if err != nil {
			b.Fatal(err)
		}
		defer e.Close()
		ref, _ := name.ParseReference(fx.image)
		for b.Loop() {
			if _, err := e.Scan(context.Background(), nil, ref, scan.ScanOptions{Now: time.Now()}); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("trivy-cli", func(b *testing.B) {
		for b.Loop() {
			fx.runCLI(b, bin)
		}
	})
}
