package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/remote"
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
	var errs []error
	if err := o.Gate.Err(); err != nil {
		errs = append(errs, err)
	}
	if len(o.Denials) > 0 {
		msgs := make([]string, len(o.Denials))
		for i, d := range o.Denials {
			msgs[i] = d.Message
		}
		errs = append(errs, fmt.Errorf("image policy %s denied: %s: %w", sf.policy, strings.Join(msgs, "; "), exitcode.ErrViolation))
	}
	if len(errs) == 0 {
		return o, nil
	}
	return o, exitcode.With(exitcode.Violation, errors.Join(errs...))
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
		files = append(files, reportFile{fm, path})
	}

	// The gate: --gate-policy, else --fail-on, else the config's, else the script's default.
	gate := scan.DefaultGate()
	if sf.defaultGate != nil {
		gate = *sf.defaultGate
	}
	switch {
	case sf.gatePolicy != "" && sf.failOn != "":
		return nil, usageError(errors.New("--gate-policy and --fail-on are exclusive"))
	case sf.gatePolicy != "":
		data, err := os.ReadFile(sf.gatePolicy)
		if err != nil {
			return nil, exitcode.With(exitcode.NotFound, fmt.Errorf("--gate-policy: %w", err))
		}
		if gate, err = scan.ParseHarborPolicy(data, sf.gatePolicy); err != nil {
			return nil, err
		}
	case sf.failOn != "":
		limits, err := scan.ParseFailOn(sf.failOn)
		if err != nil {
			return nil, err
		}
		gate = scan.Gate{FailOn: limits, Source: "--fail-on " + sf.failOn}
	case len(cfg.Scan.FailOn) > 0:
		gate = scan.Gate{FailOn: cfg.Scan.FailOn, Source: "scan.fail_on in " + orNone(cfg.File)}
	}
	if cmd.Flags().Changed("cvss-threshold") {
		gate.CVSSThreshold = sf.cvss
	} else if gate.CVSSThreshold == 0 {
		gate.CVSSThreshold = cfg.Scan.CVSSThreshold
	}
	if gate.CVSSThreshold < 0 || gate.CVSSThreshold > 10 {
		return nil, usageError(errors.New("--cvss-threshold must be between 0 and 10"))
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
	ignoreFile := firstNonEmpty(sf.ignoreFile, cfg.Scan.IgnoreFile)
	if ignoreFile != "" {
		if _, err := os.Stat(ignoreFile); err != nil {
			return nil, exitcode.With(exitcode.NotFound, fmt.Errorf("--ignorefile: %w", err))
		}
	}
	var policy *scan.Policy
	if sf.policy != "" {
		if policy, err = scan.LoadPolicy(cmd.Context(), sf.policy); err != nil {
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

	out := &scan.Outcome{Version: version, Expired: expired, Generated: now}
	var engine *scan.Engine
	if !native {
		if engine, err = openEngine(cmd, f, sf, res, now); err != nil {
			return nil, err
		}
		defer engine.Close()
	}
	for _, arg := range images {
		reg, ref, err := res.Reference(arg)
		if err != nil {
			return nil, err
		}
		opts := scan.ScanOptions{Platform: sf.platform, Severities: severities,
			IgnoreUnfixed: sf.ignoreUnfixed || cfg.Scan.IgnoreUnfixed, IgnoreFile: ignoreFile, Now: now}
		var targets []scan.Target
		if native {
			t, err := nativeScan(cmd, reg, ref, opts, policy != nil)
			if err != nil {
				return nil, err
			}
			targets = []scan.Target{t}
		} else if targets, err = engine.Scan(cmd.Context(), reg.Remote(), ref, opts); err != nil {
			return nil, err
		}
		out.Targets = append(out.Targets, targets...)
		if policy != nil {
			// The image's manifest annotations (the base image name) are read once per image.
			ann, err := annotationsOf(append(reg.Remote(), remote.WithContext(cmd.Context())), ref)
			if err != nil {
				// A rule on the base image must not pass because its name could not be read.
				return nil, exitcode.With(exitcode.Error, fmt.Errorf("image policy %s: reading the annotations of %s (the base image name): %w", sf.policy, ref, err))
			}
			for _, t := range targets {
				msgs, err := policy.Evaluate(cmd.Context(), scan.PolicyInput(t.Reference, t.Digest, t.Platform, t.Config, ann))
				if err != nil {
					return nil, err
				}
				for _, m := range msgs {
					out.Denials = append(out.Denials, scan.Denial{Reference: t.Reference, Platform: t.Platform, Message: m})
				}
			}
		}
	}
	out.Findings = scan.Findings(out.Targets)
	out.Gate = gate.EvaluateTargets(out.Targets)
	return out, writeReports(cmd, f, out, files, format, stdout, tty)
}

// openEngine makes sure the vulnerability DB is there (pulling it when needed) and opens it.
func openEngine(cmd *cobra.Command, f *Factory, sf *scanFlags, res *registry.Resolver, now time.Time) (*scan.Engine, error) {
	cfg, err := f.Config()
	if err != nil {
		return nil, err
	}
	cacheDir := firstNonEmpty(sf.cacheDir, cfg.Scan.CacheDir, f.defaultCacheDir())
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

// nativeScan asks the registry's own scanner (ECR) about the image's digest.
func nativeScan(cmd *cobra.Command, reg registry.Registry, ref name.Reference, o scan.ScanOptions, needConfig bool) (scan.Target, error) {
	ns, ok := reg.(registry.NativeScanner)
	if !ok {
		return scan.Target{}, usageError(fmt.Errorf("--engine native: %s is a %s registry, which has no scanner of its own; use --engine trivy", reg.Name(), reg.Type()))
	}
	desc, err := remote.Head(ref, append(reg.Remote(), remote.WithContext(cmd.Context()))...)
	if err != nil {
		return scan.Target{}, fmt.Errorf("%s: %w", ref, err)
	}
	findings, err := ns.NativeScan(cmd.Context(), ref.Context().RepositoryStr(), desc.Digest)
	if err != nil {
		return scan.Target{}, err
	}
	t, err := scan.NativeTarget(cmd.Context(), ref.String(), desc.Digest.String(), reg.Type(), findings, o)
	if err != nil {
		return t, err
	}
	if needConfig {
		img, err := remote.Image(ref, append(reg.Remote(), remote.WithContext(cmd.Context()))...)
		if err != nil {
			return t, err
		}
		if t.Config, err = img.ConfigFile(); err != nil {
			return t, err
		}
	}
	return t, nil
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

// annotationsOf returns the manifest annotations of ref (for the base image name); an image without
// any has an empty map.
func annotationsOf(opts []remote.Option, ref name.Reference) (map[string]string, error) {
	desc, err := remote.Get(ref, opts...)
	if err != nil {
		return nil, err
	}
	var m struct {
		Annotations map[string]string `json:"annotations"`
	}
	if err := json.Unmarshal(desc.Manifest, &m); err != nil {
		return nil, fmt.Errorf("the manifest is not JSON: %w", err)
	}
	if m.Annotations == nil {
		m.Annotations = map[string]string{}
	}
	return m.Annotations, nil
}

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
