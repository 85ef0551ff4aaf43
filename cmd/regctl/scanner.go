package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/regctl-dev/regctl/internal/exitcode"
)

// scanner runs the scan commands. The full build has trivy linked in and runs them in-process
// (scan_inprocess.go); the light build (-tags regctl_lite, what `make build` and the release ship as
// regctl) hands them to the regctl-scan companion, which is the full build. Go runs every linked
// package's initialiser before main, and trivy's cost every command ~0.1 s and ~70 MB before it
// started (docs/architecture.md, decision l).
type scanner interface {
	scan(cmd *cobra.Command, f *Factory, sf *scanFlags, images []string) error
	dbStatus(cmd *cobra.Command, f *Factory, cacheDir string) error
	dbMirror(cmd *cobra.Command, f *Factory, from, to string) error
	// buildPushScan scans build-push's pushed digest with its gate, the report on stderr, and
	// returns the summary for the build report.
	buildPushScan(cmd *cobra.Command, f *Factory, sf *scanFlags, digestRef string) (any, error)
}

// scanner is the injected scanner, else this build's own, else the companion.
func (f *Factory) scanner() scanner {
	if f.scan != nil {
		return f.scan
	}
	if s := builtInScanner(); s != nil {
		return s
	}
	return companionScanner{}
}

const (
	// companionName is the full build's binary, shipped beside regctl.
	companionName = "regctl-scan"
	// envScanner names the companion explicitly.
	envScanner = "REGCTL_SCANNER"
	// envScannerParent is set for the companion to the version of the regctl that ran it: the
	// companion warns when they differ, and a light build refuses to hand on again (a loop).
	envScannerParent = "REGCTL_SCANNER_PARENT"
	// companionStopGrace is how long the companion has to stop after an interrupt before it is killed.
	companionStopGrace = 10 * time.Second
)

// scanVerdict is what the companion writes to --outcome-file for build-push --scan.
type scanVerdict struct {
	ExitCode int             `json:"exitCode"`
	Error    string          `json:"error,omitempty"`
	Summary  json.RawMessage `json:"summary,omitempty"`
}

// companionScanner runs each scan command as the same command of regctl-scan: same flags,
// arguments, environment, working directory and streams (a terminal stays a terminal), and its
// exit code becomes this process's.
type companionScanner struct{}

func (c companionScanner) scan(cmd *cobra.Command, f *Factory, _ *scanFlags, images []string) error {
	return c.forward(cmd, f, forwardArgs(cmd, images, allFlags), nil)
}

func (c companionScanner) dbStatus(cmd *cobra.Command, f *Factory, _ string) error {
	return c.forward(cmd, f, forwardArgs(cmd, nil, allFlags), nil)
}

func (c companionScanner) dbMirror(cmd *cobra.Command, f *Factory, _, _ string) error {
	return c.forward(cmd, f, forwardArgs(cmd, nil, allFlags), nil)
}

func (c companionScanner) buildPushScan(cmd *cobra.Command, f *Factory, _ *scanFlags, digestRef string) (any, error) {
	dir, err := os.MkdirTemp("", "regctl-scan-verdict-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(dir)
	verdictFile := filepath.Join(dir, "verdict.json")
	// build-push's own flags (--repo, --sign, ...) are not scan's: only the gate's and the global ones go.
	var gate scanFlags
	gateFlags := pflag.NewFlagSet("gate", pflag.ContinueOnError)
	gate.registerGate(gateFlags)
	keep := func(fl *pflag.Flag) bool {
		return gateFlags.Lookup(fl.Name) != nil || cmd.Root().PersistentFlags().Lookup(fl.Name) != nil
	}
	argv := append([]string{"scan"}, flagArgs(cmd, keep)...)
	argv = append(argv, "--build-push-gate", "--outcome-file", verdictFile, "--", digestRef)
	if err := c.forward(cmd, f, argv, f.IO.ErrOut); err != nil {
		return nil, err
	}
	raw, err := os.ReadFile(verdictFile)
	if err != nil {
		return nil, fmt.Errorf("%s wrote no verdict: %w", companionName, err)
	}
	var v scanVerdict
	if err := json.Unmarshal(raw, &v); err != nil {
		return nil, fmt.Errorf("%s wrote a verdict regctl cannot read (are both from the same release?): %w", companionName, err)
	}
	var summary any
	if len(v.Summary) > 0 {
		summary = v.Summary
	}
	if v.ExitCode != exitcode.OK {
		return summary, exitcode.With(v.ExitCode, errors.New(firstNonEmpty(v.Error, "scan failed")))
	}
	return summary, nil
}

// forward runs regctl-scan with argv; stdout nil means ours.
func (companionScanner) forward(cmd *cobra.Command, f *Factory, argv []string, stdout io.Writer) error {
	if _, looped := f.LookupEnv(envScannerParent); looped {
		return fmt.Errorf("this regctl was run as %s by another regctl but has no scanner: %s must be the full build (make build makes both)", companionName, companionName)
	}
	path, err := f.companionPath()
	if err != nil {
		return err
	}
	c := exec.CommandContext(cmd.Context(), path, argv...)
	c.Env = append(append([]string(nil), f.Environ...), envScannerParent+"="+version)
	c.Dir = f.WorkDir
	c.Stdin, c.Stdout, c.Stderr = f.IO.In, f.IO.Out, f.IO.ErrOut
	if stdout != nil {
		c.Stdout = stdout
	}
	// On an interrupt the companion gets SIGTERM, as regctl did, and time to stop cleanly.
	c.Cancel = func() error { return c.Process.Signal(syscall.SIGTERM) }
	c.WaitDelay = companionStopGrace
	f.Logger().Debug("running the scanner", "path", path, "args", argv)
	err = c.Run()
	if err == nil {
		return nil
	}
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		if code := ee.ExitCode(); code > 0 {
			return exitOnly{code} // its message is already on stderr
		}
		return fmt.Errorf("%s %s: %s", companionName, strings.Join(commandPath(cmd), " "), ee.ProcessState)
	}
	return fmt.Errorf("running %s: %w", path, err)
}

// companionPath finds regctl-scan: $REGCTL_SCANNER, else beside this executable, else on PATH.
func (f *Factory) companionPath() (string, error) {
	if p := f.Getenv(envScanner); p != "" {
		if !isExecutableFile(p) {
			return "", exitcode.With(exitcode.NotFound, fmt.Errorf("%s=%s: no executable there", envScanner, p))
		}
		return p, nil
	}
	var dirs []string
	if f.Executable != "" {
		dirs = append(dirs, filepath.Dir(f.Executable))
	}
	dirs = append(dirs, filepath.SplitList(f.Getenv("PATH"))...)
	for _, d := range dirs {
		if d == "" {
			continue
		}
		if p := filepath.Join(d, companionName); isExecutableFile(p) {
			return p, nil
		}
	}
	return "", exitcode.With(exitcode.NotFound, fmt.Errorf(
		"regctl's scan commands run in %s, the build with trivy linked in, and it is neither beside regctl nor on PATH: "+
			"install it from the same release archive or package, run `make build` (bin/%s), or set %s", companionName, companionName, envScanner))
}

func isExecutableFile(p string) bool {
	fi, err := os.Stat(p)
	return err == nil && fi.Mode().IsRegular() && fi.Mode().Perm()&0o111 != 0
}

// commandPath is cmd's path below the root: ["scan", "db", "status"].
func commandPath(cmd *cobra.Command) []string {
	p := strings.Fields(cmd.CommandPath())
	if len(p) == 0 {
		return nil
	}
	return p[1:]
}

func allFlags(*pflag.Flag) bool { return true }

// forwardArgs rebuilds a parsed command line: the command's path, every flag that was set (its own
// and the inherited global ones) and the positional arguments after "--".
func forwardArgs(cmd *cobra.Command, positional []string, keep func(*pflag.Flag) bool) []string {
	argv := append(commandPath(cmd), flagArgs(cmd, keep)...)
	if len(positional) > 0 {
		argv = append(append(argv, "--"), positional...)
	}
	return argv
}

// flagArgs lists the set flags that keep selects as --name=value, one per value of a repeated flag.
func flagArgs(cmd *cobra.Command, keep func(*pflag.Flag) bool) []string {
	var out []string
	cmd.Flags().Visit(func(fl *pflag.Flag) {
		if !keep(fl) {
			return
		}
		if sv, ok := fl.Value.(pflag.SliceValue); ok {
			for _, v := range sv.GetSlice() {
				out = append(out, "--"+fl.Name+"="+v)
			}
			return
		}
		out = append(out, "--"+fl.Name+"="+fl.Value.String())
	})
	return out
}

// exitOnly ends regctl with a code and no message of its own (the companion printed it).
type exitOnly struct{ code int }

func (e exitOnly) Error() string { return fmt.Sprintf("exit status %d", e.code) }
