package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/regctl-dev/regctl/internal/ui"
)

// envRunAsCLI makes the test binary regctl itself: the full build, trivy linked, on the in-process
// tests' fixed clock. The companion tests name it as regctl-scan.
const envRunAsCLI = "REGCTL_TEST_RUN_AS_CLI"

// envRunLog names a file the test binary appends its argv to when it runs as the CLI, so a companion
// test can tell that the scans really ran there.
const envRunLog = "REGCTL_TEST_RUN_LOG"

func TestMain(m *testing.M) {
	if os.Getenv(envRunAsCLI) == "1" {
		os.Exit(runAsCLI())
	}
	os.Exit(m.Run())
}

func runAsCLI() int {
	if log := os.Getenv(envRunLog); log != "" {
		if fh, err := os.OpenFile(log, os.O_APPEND|os.O_CREATE|os.O_WRONLY, 0o600); err == nil {
			fmt.Fprintln(fh, strings.Join(os.Args[1:], " "))
			fh.Close()
		}
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	wd, _ := os.Getwd()
	exe, _ := os.Executable()
	f := &Factory{IO: ui.System(), Environ: os.Environ(), Now: func() time.Time { return fixedNow }, WorkDir: wd, Executable: exe}
	return execute(ctx, f, os.Args[1:])
}

// newCompanionCLI is newCLI whose scan commands run in a regctl-scan process, as in the light build.
func newCompanionCLI(t *testing.T, env ...string) *cli {
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	runLog := filepath.Join(t.TempDir(), "runs")
	c := newCLI(t, append([]string{envScanner + "=" + exe, envRunAsCLI + "=1", envRunLog + "=" + runLog}, env...)...)
	c.companion = true
	t.Cleanup(func() {
		if b, _ := os.ReadFile(runLog); !strings.Contains(string(b), "scan ") {
			t.Errorf("no scan ran in the companion process (its runs: %q)", b)
		}
	})
	return c
}

// forEachScanner runs a scan test in-process and through the companion: the two must agree.
func forEachScanner(t *testing.T, test func(*testing.T, func(*testing.T, ...string) *cli)) {
	t.Run("in-process", func(t *testing.T) { test(t, newCLI) })
	t.Run("companion", func(t *testing.T) { test(t, newCompanionCLI) })
}
