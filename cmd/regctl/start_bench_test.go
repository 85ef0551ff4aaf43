package main

import (
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/regctl-dev/regctl/internal/benchproc"
	"github.com/regctl-dev/regctl/internal/localreg/localregtest"
	"github.com/regctl-dev/regctl/internal/scan/scantest"
)

// BenchmarkProcessStart runs commands as processes, as a user or a CI step does, and reports wall
// time per run and peak RSS (GNU time, internal/benchproc): regctl version, regctl repo list on the in-process
// registry, regctl scan of a small image with a local DB (the light regctl handing it to
// regctl-scan beside it) and regctl-scan version (the full build's own start), beside crane version
// and trivy --version in the same run where those are installed (REGCTL_TEST_CRANE,
// REGCTL_TEST_TRIVY or PATH). make bench builds bin/regctl and bin/regctl-scan first
// (REGCTL_BENCH_BIN overrides the first; the companion is looked up beside it).
func BenchmarkProcessStart(b *testing.B) {
	regctl := os.Getenv("REGCTL_BENCH_BIN")
	if regctl == "" {
		regctl = "../../bin/regctl"
	}
	regctl, _ = filepath.Abs(regctl)
	if _, err := os.Stat(regctl); err != nil {
		b.Skip("bin/regctl not built (make bench builds it)")
	}
	host := localregtest.Start(b).Host
	now := time.Now()
	cache := b.TempDir()
	scantest.BuildDB(b, cache, now.Add(-time.Hour), now.Add(23*time.Hour))
	scantest.Push(b, host+"/app:clean", scantest.CleanImage(b, scantest.ImageConfig{User: "app"}))
	home := b.TempDir()
	cfg := filepath.Join(home, "regctl.yaml")
	if err := os.WriteFile(cfg, []byte("default_registry: local\nregistries:\n  local:\n    type: oci\n    url: http://"+host+"\n"), 0o600); err != nil {
		b.Fatal(err)
	}
	type run struct {
		name string
		argv []string
	}
	cases := []run{
		{"regctl-version", []string{regctl, "version"}},
		{"regctl-repo-list", []string{regctl, "--config", cfg, "repo", "list"}},
		{"regctl-scan", []string{regctl, "scan", host + "/app:clean", "--cache-dir", cache, "--skip-db-update"}},
	}
	companion := filepath.Join(filepath.Dir(regctl), companionName)
	if _, err := os.Stat(companion); err == nil {
		cases = append(cases, run{"regctl-scan-version", []string{companion, "version"}})
	}
	if crane := benchproc.Tool("REGCTL_TEST_CRANE", "crane"); crane != "" {
		cases = append(cases, run{"crane-version", []string{crane, "version"}})
	}
	if trivy := benchproc.Tool("REGCTL_TEST_TRIVY", "trivy"); trivy != "" {
		cases = append(cases, run{"trivy-version", []string{trivy, "--version"}})
	}
	for _, c := range cases {
		b.Run(c.name, func(b *testing.B) {
			var maxRSS float64
			for b.Loop() {
				res, err := benchproc.Run(home, []string{"HOME=" + home}, c.argv...)
				if err != nil {
					b.Fatal(err)
				}
				maxRSS = max(maxRSS, res.MaxRSSMB)
			}
			b.ReportMetric(maxRSS, "maxRSS-MB")
		})
	}
	for _, bin := range []string{regctl, companion} {
		if fi, err := os.Stat(bin); err == nil {
			b.Logf("%s: %s", filepath.Base(bin), fmt.Sprintf("%.1f MB", float64(fi.Size())/1e6))
		}
	}
}
