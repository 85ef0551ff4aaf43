package main

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/regctl-dev/regctl/internal/exitcode"
	"github.com/regctl-dev/regctl/internal/fsutil"
	"github.com/regctl-dev/regctl/internal/registry"
	"github.com/regctl-dev/regctl/internal/scan"
	"github.com/regctl-dev/regctl/internal/ui"
)

type scanFlags struct {
	platform, severity, failOn, gatePolicy, ignoreFile, format, policy string
	cacheDir, dbRepository, engine                                     string
	ignoreUnfixed, skipDBUpdate                                        bool
	cvss                                                               float64
	reports                                                            []string
	// defaultGate replaces scan.DefaultGate when neither flags nor the config set one.
	defaultGate *scan.Gate
}

func (f *Factory) defaultCacheDir() string {
	if d := f.Getenv("XDG_CACHE_HOME"); d != "" {
		return filepath.Join(d, "regctl", "trivy")
	}
	if h := f.Getenv("HOME"); h != "" {
		return filepath.Join(h, ".cache", "regctl", "trivy")
	}
	return filepath.Join(os.TempDir(), "regctl-trivy")
}

func newScanCmd(f *Factory) *cobra.Command {
	var sf scanFlags
	cmd := &cobra.Command{
		Use:   "scan IMAGE...",
		Short: "Scan images for vulnerabilities (trivy as a library) and apply the gate; exit 3 when it fails",
		Long: `Scan the OS and language packages of each image straight from the registry, with regctl's auth
and TLS settings: every platform of a multi-arch index, or --platform. The vulnerability DB is read
from --cache-dir; when missing or stale it is pulled from --db-repository (an OCI artifact, as trivy's
own flag); --skip-db-update never downloads.

The gate always runs: by default it fails on any CRITICAL or more than 5 HIGH findings, as the guide's
security-scan.sh does. --fail-on replaces it ("CRITICAL=0,HIGH=5", or "none" to only report);
--gate-policy reads a Harbor-style scan policy (harbor-scan-policy.json) instead. --cvss-threshold
counts only findings scoring at least that much, --ignore-unfixed drops findings without a fix, and
--ignorefile takes .trivyignore or .trivyignore.yaml (expired entries are reported and ignored).

--policy FILE.rego evaluates every deny rule of the policy's package against each image's config
(see docs/scan.md for the input). A violated gate or a denial exits 3; an error exits 1.`,
		Example: `  regctl scan local/game-server:v1.2.0
  regctl scan local/game-server:latest --fail-on CRITICAL=0 --format json > scan.json
  regctl scan local/game-server:latest --report json=scan.json --report html=scan.html --policy image-policy.rego
  regctl scan local/app:1.0 --db-repository local/aquasec/trivy-db:2 --ignorefile .trivyignore.yaml`,
		Args: args(cobra.MinimumNArgs(1)),
		RunE: func(cmd *cobra.Command, a []string) error {
			_, err := runScan(cmd, f, &sf, a, f.IO.Out, f.IO.OutTTY)
			return err
		},
	}
	fl := cmd.Flags()
	fl.StringVar(&sf.platform, "platform", "", "scan only this platform of an index, e.g. linux/arm64")
	fl.StringVar(&sf.format, "format", "", "report on stdout: table, json (trivy's schema), sarif or html (default table; -o json means json)")
	fl.StringArrayVar(&sf.reports, "report", nil, "also write FORMAT=FILE (repeatable), e.g. --report json=scan.json")
	fl.StringVar(&sf.engine, "engine", "trivy", "trivy (client-side) or native (the registry's own scanner, e.g. ECR)")
	sf.registerGate(fl)
	cmd.AddCommand(newScanDBCmd(f))
	return cmd
}

// registerGate adds the flags that decide what is found and what passes; build-push --scan has them too.
func (sf *scanFlags) registerGate(fl *pflag.FlagSet) {
	fl.StringVar(&sf.severity, "severity", "", "severities to report (default scan.severities, else CRITICAL,HIGH,MEDIUM)")
	fl.StringVar(&sf.failOn, "fail-on", "", `gate: most findings allowed per severity, "CRITICAL=0,HIGH=5", or "none" (default scan.fail_on, else CRITICAL=0,HIGH=5)`)
	fl.StringVar(&sf.gatePolicy, "gate-policy", "", "gate from a Harbor-style scan policy JSON file")
	fl.BoolVar(&sf.ignoreUnfixed, "ignore-unfixed", false, "drop findings that have no fixed version")
	fl.Float64Var(&sf.cvss, "cvss-threshold", 0, "gate counts only findings with a CVSS score at least this (unscored findings count)")
	fl.StringVar(&sf.ignoreFile, "ignorefile", "", ".trivyignore or .trivyignore.yaml (default scan.ignore_file)")
	fl.StringVar(&sf.policy, "policy", "", "Rego image policy evaluated against each image's config")
	fl.StringVar(&sf.cacheDir, "cache-dir", "", "vulnerability DB cache (default scan.cache_dir, else $XDG_CACHE_HOME/regctl/trivy)")
	fl.StringVar(&sf.dbRepository, "db-repository", "", "OCI repository of the trivy DB (default scan.db_repository, else "+scan.DefaultDBRepository+")")
	fl.BoolVar(&sf.skipDBUpdate, "skip-db-update", false, "never download the DB; use the one in the cache dir")
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
	gate, err := scan.ResolveGate(scan.GateSources{
		PolicyFile: f.inWorkDir(sf.gatePolicy), FailOn: sf.failOn,
		ConfigFailOn: cfg.Scan.FailOn, ConfigFile: cfg.File, Default: sf.defaultGate,
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

func firstNonEmpty(vals ...string) string {
	for _, v := range vals {
		if v != "" {
			return v
		}
	}
	return ""
}

func writeFileAtomic(path string, data []byte) error {
	return fsutil.WriteFileAtomic(path, data, 0o644)
}

func newScanDBCmd(f *Factory) *cobra.Command {
	cmd := group(&cobra.Command{Use: "db", Short: "Manage the vulnerability DB: status, and mirroring it for air-gapped sites"})
	var cacheDir string
	status := &cobra.Command{
		Use:   "status",
		Short: "Show the DB in the cache dir: present, schema, updated, next update, stale",
		Args:  args(cobra.NoArgs),
		RunE: func(cmd *cobra.Command, _ []string) error {
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
		},
	}
	status.Flags().StringVar(&cacheDir, "cache-dir", "", "vulnerability DB cache dir")
	var from, to string
	mirror := &cobra.Command{
		Use:   "mirror --to REF [--from REF]",
		Short: "Copy the trivy DB artifact into a private registry (for air-gapped scans)",
		Example: `  regctl scan db mirror --to registry.corp/aquasec/trivy-db:2
  regctl scan local/app:1.0 --db-repository registry.corp/aquasec/trivy-db:2`,
		Args: args(cobra.NoArgs),
		RunE: func(cmd *cobra.Command, _ []string) error {
			if to == "" {
				return usageError(errors.New("--to REF is required"))
			}
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
		},
	}
	mirror.Flags().StringVar(&from, "from", scan.DefaultDBRepository, "source repository of the DB")
	mirror.Flags().StringVar(&to, "to", "", "target repository, e.g. registry.corp/aquasec/trivy-db:2")
	cmd.AddCommand(status, mirror)
	return cmd
}
