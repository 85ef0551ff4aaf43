//go:build !regctl_lite

package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	tlog "github.com/aquasecurity/trivy/pkg/log"
	"github.com/spf13/cobra"

	"github.com/regctl-dev/regctl/internal/exitcode"
	"github.com/regctl-dev/regctl/internal/registry"
	"github.com/regctl-dev/regctl/internal/scan"
	"github.com/regctl-dev/regctl/internal/ui"
)

// The full build: trivy is linked in and the scan commands run in this process. This is what
// regctl-scan is, and what a plain `go build ./cmd/regctl` gives.

// builtInScanner is the scanner this build has.
func builtInScanner() scanner { return inProcessScanner{} }

// prepareLibraries runs before any command. Importing trivy replaces slog's default with a handler
// that buffers every record without bound until trivy's logger is initialised: switch it off. -vv
// hands trivy our logger (PersistentPreRun).
func prepareLibraries() { tlog.InitLogger(false, true) }

type inProcessScanner struct{}

func (inProcessScanner) scan(cmd *cobra.Command, f *Factory, sf *scanFlags, images []string) error {
	out, err := runScan(cmd, f, sf, images, f.IO.Out, f.IO.OutTTY)
	if sf.outcomeFile == "" {
		return err
	}
	// Through the companion for build-push --scan: the verdict, its exit code and message go to the
	// file, so the parent reports it exactly as it would in-process.
	v := scanVerdict{ExitCode: exitcode.Of(err)}
	if err != nil {
		v.Error = errorMessage(err)
	}
	if out != nil {
		summary, merr := json.Marshal(buildPushSummary(out))
		if merr != nil {
			return merr
		}
		v.Summary = summary
	}
	raw, merr := json.Marshal(v)
	if merr != nil {
		return merr
	}
	if werr := writeFileAtomic(f.inWorkDir(sf.outcomeFile), raw); werr != nil {
		return fmt.Errorf("--outcome-file: %w", werr)
	}
	return nil
}

func (inProcessScanner) buildPushScan(cmd *cobra.Command, f *Factory, sf *scanFlags, digestRef string) (any, error) {
	sf.buildPushGate = true
	out, err := runScan(cmd, f, sf, []string{digestRef}, f.IO.ErrOut, f.IO.ErrTTY)
	if out == nil {
		return nil, err
	}
	return buildPushSummary(out), err
}

// buildPushSummary is what build-push's report says of the scan.
func buildPushSummary(out *scan.Outcome) map[string]any {
	return map[string]any{"gate": out.Gate, "findings": len(out.Findings), "denials": out.Denials}
}

func (inProcessScanner) dbStatus(_ *cobra.Command, f *Factory, cacheDir string) error {
	cfg, err := f.Config()
	if err != nil {
		return err
	}
	st := scan.Status(firstNonEmpty(cacheDir, cfg.Scan.CacheDir, f.defaultCacheDir()), f.Now())
	if err := f.Render(st, func() ui.Table {
		return ui.Table{Headers: []string{"dir", "present", "updated", "next update", "stale", "source"},
			Rows: [][]string{{st.Dir, fmt.Sprint(st.Present), st.UpdatedAt.Format("2006-01-02 15:04Z"), st.NextUpdate.Format("2006-01-02 15:04Z"), fmt.Sprint(st.Stale), st.Source}}}
	}); err != nil {
		return err
	}
	if !st.Present {
		return exitcode.With(exitcode.NotFound, fmt.Errorf("no vulnerability DB in %s", st.Dir))
	}
	return nil
}

func (inProcessScanner) dbMirror(cmd *cobra.Command, f *Factory, from, to string) error {
	res, err := f.Resolver()
	if err != nil {
		return err
	}
	fromReg, fromRef, err := res.Reference(from)
	if err != nil {
		return err
	}
	toReg, toRef, err := res.Reference(to)
	if err != nil {
		return err
	}
	digest, err := scan.Mirror(cmd.Context(), fromRef, fromReg.Remote(), toRef, toReg.Remote())
	if err != nil {
		return err
	}
	f.Notef("mirrored %s to %s (%s)", fromRef, toRef, digest)
	return nil
}

// runScan scans images, writes the report to stdout (and --report files), and returns the outcome with
// the gate's verdict as the error (exit 3) when it fails.
func runScan(cmd *cobra.Command, f *Factory, sf *scanFlags, images []string, stdout io.Writer, tty bool) (*scan.Outcome, error) {
	o, err := scanOutcome(cmd, f, sf, images, stdout, tty)
	if err != nil {
		return o, err
	}
	return o, o.Err(sf.policy)
}

func scanOutcome(cmd *cobra.Command, f *Factory, sf *scanFlags, images []string, stdout io.Writer, tty bool) (*scan.Outcome, error) {
	cfg, err := f.Config()
	if err != nil {
		return nil, err
	}
	res, err := f.Resolver()
	if err != nil {
		return nil, err
	}
	if sf.engine == "" {
		sf.engine = "trivy"
	}
	native := sf.engine == "native"
	if !native && sf.engine != "trivy" {
		return nil, usageError(fmt.Errorf("--engine %q: must be trivy or native", sf.engine))
	}
	format := sf.format
	if format == "" {
		format = scan.FormatTable
		if f.Format() == ui.FormatJSON {
			format = scan.FormatJSON
		}
	}
	if !slices.Contains(scan.Formats, format) {
		return nil, usageError(fmt.Errorf("--format %q: must be one of %s", format, strings.Join(scan.Formats, ", ")))
	}
	var files []reportFile
	for _, r := range sf.reports {
		fm, path, ok := strings.Cut(r, "=")
		if !ok || path == "" || !slices.Contains(scan.Formats, fm) {
			return nil, usageError(fmt.Errorf("--report %q: want FORMAT=FILE with FORMAT one of %s", r, strings.Join(scan.Formats, ", ")))
		}
		files = append(files, reportFile{fm, f.inWorkDir(path)})
	}
	var defaultGate *scan.Gate // nil: scan.DefaultGate
	if sf.buildPushGate {
		defaultGate = ptr(scan.BuildPushGate())
	}
	gate, err := scan.ResolveGate(scan.GateSources{
		PolicyFile: f.inWorkDir(sf.gatePolicy), FailOn: sf.failOn,
		ConfigFailOn: cfg.Scan.FailOn, ConfigFile: cfg.File, Default: defaultGate,
		CVSS: sf.cvss, CVSSSet: cmd.Flags().Changed("cvss-threshold"), ConfigCVSS: cfg.Scan.CVSSThreshold,
	})
	if err != nil {
		return nil, err
	}
	severities := cfg.Scan.Severities
	if sf.severity != "" {
		severities = strings.Split(strings.ToUpper(sf.severity), ",")
	}
	for _, s := range severities {
		if !slices.Contains(scan.Severities, s) {
			return nil, usageError(fmt.Errorf("--severity %q: use %s", s, strings.Join(scan.Severities, ", ")))
		}
	}
	ignoreFile := f.inWorkDir(firstNonEmpty(sf.ignoreFile, cfg.Scan.IgnoreFile))
	if ignoreFile != "" {
		if _, err := os.Stat(ignoreFile); err != nil {
			return nil, exitcode.With(exitcode.NotFound, fmt.Errorf("--ignorefile: %w", err))
		}
	}
	var policy *scan.Policy
	if sf.policy != "" {
		if policy, err = scan.LoadPolicy(cmd.Context(), f.inWorkDir(sf.policy)); err != nil {
			return nil, err
		}
	}
	now := f.Now()
	expired, err := scan.CheckIgnoreFile(cmd.Context(), ignoreFile, now)
	if err != nil {
		return nil, err
	}
	for _, e := range expired {
		f.Notef("warning: ignore entry %s in %s expired on %s and no longer hides findings", e.ID, ignoreFile, e.ExpiredAt.Format("2006-01-02"))
	}

	var engine *scan.Engine
	if !native {
		if engine, err = openEngine(cmd, f, sf, res, now); err != nil {
			return nil, err
		}
		defer engine.Close()
	}
	out, err := scan.Run(cmd.Context(), scan.RunOptions{
		Images: images, Resolve: res.Reference, Engine: engine, Gate: gate, Policy: policy,
		Scan: scan.ScanOptions{Platform: sf.platform, Severities: severities,
			IgnoreUnfixed: sf.ignoreUnfixed || cfg.Scan.IgnoreUnfixed, IgnoreFile: ignoreFile, Now: now},
		Expired: expired, Version: version, Now: now,
	})
	if err != nil {
		return nil, err
	}
	return out, writeReports(cmd, f, out, files, format, stdout, tty)
}

// openEngine makes sure the vulnerability DB is there (pulling it when needed) and opens it.
func openEngine(cmd *cobra.Command, f *Factory, sf *scanFlags, res *registry.Resolver, now time.Time) (*scan.Engine, error) {
	cfg, err := f.Config()
	if err != nil {
		return nil, err
	}
	cacheDir := f.inWorkDir(firstNonEmpty(sf.cacheDir, cfg.Scan.CacheDir, f.defaultCacheDir()))
	dbo := scan.DBOptions{CacheDir: cacheDir, Skip: sf.skipDBUpdate, Now: now}
	if !sf.skipDBUpdate {
		repo := firstNonEmpty(sf.dbRepository, cfg.Scan.DBRepository, scan.DefaultDBRepository)
		reg, ref, err := res.Reference(repo)
		if err != nil {
			return nil, err
		}
		dbo.Repository, dbo.Remote = ref, reg.Remote()
	}
	st, err := scan.EnsureDB(cmd.Context(), dbo)
	if err != nil {
		return nil, err
	}
	f.Logger().Info("vulnerability DB", "dir", st.Dir, "updated", st.UpdatedAt, "stale", st.Stale)
	if st.Stale {
		f.Notef("warning: the vulnerability DB in %s is stale (next update was due %s)", st.Dir, st.NextUpdate.Format("2006-01-02"))
	}
	return scan.Open(st.Dir, f.Logger())
}

// writeReports writes the --report files and the report on stdout.
func writeReports(cmd *cobra.Command, f *Factory, out *scan.Outcome, files []reportFile, format string, stdout io.Writer, tty bool) error {
	for _, rf := range files {
		var buf bytes.Buffer
		if err := scan.Write(cmd.Context(), &buf, rf.format, out, false, false); err != nil {
			return err
		}
		if err := writeFileAtomic(rf.path, buf.Bytes()); err != nil {
			return fmt.Errorf("--report %s: %w", rf.path, err)
		}
		f.Notef("wrote %s report to %s", rf.format, rf.path)
	}
	return scan.Write(cmd.Context(), stdout, format, out, tty, tty && !f.IO.NoColor)
}

type reportFile struct{ format, path string }

func ptr[T any](v T) *T { return &v }

func (f *Factory) defaultCacheDir() string {
	if d := f.Getenv("XDG_CACHE_HOME"); d != "" {
		return filepath.Join(d, "regctl", "trivy")
	}
	if h := f.Getenv("HOME"); h != "" {
		return filepath.Join(h, ".cache", "regctl", "trivy")
	}
	return filepath.Join(os.TempDir(), "regctl-trivy")
}
