package main

import (
	"errors"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/regctl-dev/regctl/internal/fsutil"
)

// The scan commands are defined here for every build; what runs them is a scanner (scanner.go): trivy
// in-process in the full build, the regctl-scan companion in the light one (-tags regctl_lite), so that
// no other command pays trivy's start-up.

// defaultDBRepository is trivy's own DB artifact (scan.DefaultDBRepository; this file may not import
// internal/scan, and TestDefaultDBRepositoryMatchesScan keeps the two equal).
const defaultDBRepository = "mirror.gcr.io/aquasec/trivy-db:2"

type scanFlags struct {
	platform, severity, failOn, gatePolicy, ignoreFile, format, policy string
	cacheDir, dbRepository, engine                                     string
	ignoreUnfixed, skipDBUpdate                                        bool
	cvss                                                               float64
	reports                                                            []string
	// buildPushGate makes build-push's default gate (scan.BuildPushGate) the one used when neither
	// flags nor the config set one; outcomeFile makes the scan write its verdict there as JSON and
	// exit 0 (build-push --scan through the companion). Both are hidden flags of scan.
	buildPushGate bool
	outcomeFile   string
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
(see docs/scan.md for the input). A violated gate or a denial exits 3; an error exits 1.

trivy is linked into regctl-scan, not regctl: regctl runs its scan commands in regctl-scan (found
through $REGCTL_SCANNER, beside regctl, or on PATH), which keeps every other command's start light.
See docs/scan.md.`,
		Example: `  regctl scan local/game-server:v1.2.0
  regctl scan local/game-server:latest --fail-on CRITICAL=0 --format json > scan.json
  regctl scan local/game-server:latest --report json=scan.json --report html=scan.html --policy image-policy.rego
  regctl scan local/app:1.0 --db-repository local/aquasec/trivy-db:2 --ignorefile .trivyignore.yaml`,
		Args: args(cobra.MinimumNArgs(1)),
		RunE: func(cmd *cobra.Command, a []string) error {
			return f.scanner().scan(cmd, f, &sf, a)
		},
	}
	fl := cmd.Flags()
	fl.StringVar(&sf.platform, "platform", "", "scan only this platform of an index, e.g. linux/arm64")
	fl.StringVar(&sf.format, "format", "", "report on stdout: table, json (trivy's schema), sarif or html (default table; -o json means json)")
	fl.StringArrayVar(&sf.reports, "report", nil, "also write FORMAT=FILE (repeatable), e.g. --report json=scan.json")
	fl.StringVar(&sf.engine, "engine", "trivy", "trivy (client-side) or native (the registry's own scanner, e.g. ECR)")
	sf.registerGate(fl)
	fl.BoolVar(&sf.buildPushGate, "build-push-gate", false, "default to build-push's gate")
	fl.StringVar(&sf.outcomeFile, "outcome-file", "", "write the verdict as JSON here and exit 0")
	_ = fl.MarkHidden("build-push-gate")
	_ = fl.MarkHidden("outcome-file")
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
	fl.StringVar(&sf.dbRepository, "db-repository", "", "OCI repository of the trivy DB (default scan.db_repository, else "+defaultDBRepository+")")
	fl.BoolVar(&sf.skipDBUpdate, "skip-db-update", false, "never download the DB; use the one in the cache dir")
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
			return f.scanner().dbStatus(cmd, f, cacheDir)
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
			return f.scanner().dbMirror(cmd, f, from, to)
		},
	}
	mirror.Flags().StringVar(&from, "from", defaultDBRepository, "source repository of the DB")
	mirror.Flags().StringVar(&to, "to", "", "target repository, e.g. registry.corp/aquasec/trivy-db:2")
	cmd.AddCommand(status, mirror)
	return cmd
}
