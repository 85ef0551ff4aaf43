package scan_test

import (
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/regctl-dev/regctl/internal/exitcode"
	"github.com/regctl-dev/regctl/internal/scan"
)

// FuzzHarborPolicy: any bytes parse to a gate or a usage error, never a panic.
func FuzzHarborPolicy(f *testing.F) {
	seed, _ := os.ReadFile("../../testdata/scan/harbor-scan-policy.json")
	f.Add(seed)
	f.Add([]byte(`{"rule":{"vulnerabilities":{"severity":["critical"],"cvss_score_threshold":11}}}`))
	f.Add([]byte(`{"rule":{"vulnerabilities":{"severity":[]}}}`))
	f.Add([]byte(`{"enabled":false,"rule":{"vulnerabilities":{"severity":["low"]},"whitelist":["CVE-1"]}}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		g, err := scan.ParseHarborPolicy(data, "fuzz.json")
		if err != nil {
			if exitcode.Of(err) != exitcode.Usage {
				t.Fatalf("error without exit 2: %v", err)
			}
			return
		}
		if g.CVSSThreshold < 0 || g.CVSSThreshold > 10 {
			t.Fatalf("threshold out of range accepted: %v", g.CVSSThreshold)
		}
		g.Evaluate([]scan.Finding{{VulnerabilityID: "CVE-1", Severity: "HIGH", CVSS: 7}})
	})
}

// FuzzFailOn: the --fail-on parser never panics and never accepts a negative or unknown severity.
func FuzzFailOn(f *testing.F) {
	for _, s := range []string{"CRITICAL=0,HIGH=5", "none", "high=1", "CRITICAL", "=1", "LOW=-1,", "MEDIUM=99999999999999999999"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		m, err := scan.ParseFailOn(s)
		if err != nil {
			return
		}
		for sev, n := range m {
			if n < 0 {
				t.Fatalf("negative limit accepted for %s", sev)
			}
		}
	})
}

// FuzzIgnoreFile: .trivyignore and .trivyignore.yaml content parse or fail with exit 2, never panic.
func FuzzIgnoreFile(f *testing.F) {
	f.Add([]byte("CVE-2024-5535\n# comment\nCVE-2024-6119 exp:2025-01-01\n"), false)
	f.Add([]byte("vulnerabilities:\n  - id: CVE-1\n    expired_at: 2024-01-01\n    purls: [\"pkg:npm/lodash@4.17.20\"]\n"), true)
	f.Add([]byte("vulnerabilities: [{id: [1]}]"), true)
	f.Add([]byte("\x00\xff"), false)
	f.Fuzz(func(t *testing.T, data []byte, yaml bool) {
		name := ".trivyignore"
		if yaml {
			name += ".yaml"
		}
		p := filepath.Join(t.TempDir(), name)
		if err := os.WriteFile(p, data, 0o600); err != nil {
			t.Fatal(err)
		}
		_, err := scan.CheckIgnoreFile(context.Background(), p, time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC))
		if err != nil && exitcode.Of(err) != exitcode.Usage {
			t.Fatalf("error without exit 2: %v", err)
		}
	})
}
