// Package signtest has what tests of signing share: the cosign CLI, for interoperability checks.
package signtest

import (
	"os"
	"os/exec"
	"testing"
)

// CosignCLI finds the cosign CLI (v2.6.5, installed by .ci/run, which sets REGCTL_TEST_COSIGN).
// Locally the tests that need it skip without it; with REGCTL_TEST_REQUIRE_TOOLS set (as in CI)
// a missing binary fails the test.
func CosignCLI(t testing.TB) string {
	t.Helper()
	if p := os.Getenv("REGCTL_TEST_COSIGN"); p != "" {
		return p
	}
	if p, err := exec.LookPath("cosign"); err == nil {
		return p
	}
	if os.Getenv("REGCTL_TEST_REQUIRE_TOOLS") != "" {
		t.Fatal("the cosign CLI is required (REGCTL_TEST_COSIGN or cosign on PATH)")
	}
	t.Skip("cosign CLI not installed; .ci/run installs it")
	return ""
}
