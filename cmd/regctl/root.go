package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/regctl-dev/regctl/internal/config"
	"github.com/regctl-dev/regctl/internal/ecr"
	"github.com/regctl-dev/regctl/internal/exitcode"
	"github.com/regctl-dev/regctl/internal/harbor"
	"github.com/regctl-dev/regctl/internal/registry"
	"github.com/regctl-dev/regctl/internal/ui"
)

// Set by the linker: -X main.version=... -X main.commit=... -X main.date=...
var (
	version = "dev"
	commit  = "none"
	date    = "unknown"
)

// Factory carries what commands depend on; tests build one with buffers, a fixed clock and their own
// environment. Nothing in it is global.
type Factory struct {
	IO        *ui.IOStreams
	Environ   []string
	Now       func() time.Time
	WorkDir   string
	Transport http.RoundTripper // nil: the default transport
	// Executable is this program's path; the light build looks for regctl-scan beside it.
	Executable string

	scan scanner // nil: this build's (scanner.go)

	flags    globalFlags
	cfg      *config.Config
	logger   *slog.Logger
	resolver *registry.Resolver
	ctx      context.Context // the running command's; bounds opening registries
}

// backends are the registry types this build has: the one list of them.
func backends() []registry.Backend {
	return []registry.Backend{registry.OCIBackend(), ecr.Backend(), harbor.Backend()}
}

// inWorkDir resolves a relative user path against the injected working directory, so in-process
// tests never depend on the process's own cwd. Empty and absolute paths pass through.
func (f *Factory) inWorkDir(p string) string {
	if p == "" || filepath.IsAbs(p) {
		return p
	}
	return filepath.Join(f.WorkDir, p)
}

type globalFlags struct {
	configFile string
	output     string
	logFormat  string
	noColor    bool
	verbose    int
	insecure   bool
	registry   string
}

// Getenv looks a variable up in the injected environment.
func (f *Factory) Getenv(key string) string {
	v, _ := f.LookupEnv(key)
	return v
}

// LookupEnv is os.LookupEnv over the injected environment (the last definition wins).
func (f *Factory) LookupEnv(key string) (string, bool) {
	for i := len(f.Environ) - 1; i >= 0; i-- {
		if k, v, ok := strings.Cut(f.Environ[i], "="); ok && k == key {
			return v, true
		}
	}
	return "", false
}

// Config loads the configuration once.
func (f *Factory) Config() (*config.Config, error) {
	if f.cfg != nil {
		return f.cfg, nil
	}
	overrides := map[string]any{}
	if f.flags.registry != "" {
		overrides["default_registry"] = f.flags.registry
	}
	cfg, err := config.Load(config.Sources{
		File:       f.flags.configFile,
		WorkDir:    f.WorkDir,
		ConfigHome: config.UserConfigHome(f.Getenv),
		Environ:    f.Environ,
		Overrides:  overrides,
		Kinds:      registry.Kinds(backends()),
	})
	if err != nil {
		return nil, err
	}
	f.cfg = cfg
	return cfg, nil
}

// Resolver opens registries named on the command line. It is made once per command, so a
// registry opened twice (build-push --scan) is opened, and authenticated (an ECR token), once.
func (f *Factory) Resolver() (*registry.Resolver, error) {
	if f.resolver != nil {
		return f.resolver, nil
	}
	cfg, err := f.Config()
	if err != nil {
		return nil, err
	}
	f.resolver = registry.NewResolver(cfg, registry.Options{
		Insecure:  f.flags.insecure,
		UserAgent: "regctl/" + version,
		Getenv:    f.Getenv,
		Transport: f.Transport,
		Logger:    f.Logger(),
		Backends:  backends(),
	})
	f.resolver.Context = f.ctx
	return f.resolver, nil
}

// Logger is the slog logger for --log-format and -v.
func (f *Factory) Logger() *slog.Logger {
	if f.logger == nil {
		f.logger = slog.New(slog.DiscardHandler)
	}
	return f.logger
}

// Format is the -o format.
func (f *Factory) Format() ui.Format {
	fm, err := ui.ParseFormat(f.flags.output)
	if err != nil {
		return ui.FormatTable
	}
	return fm
}

// registryArg opens the registry an optional [REGISTRY] argument names, else the default one.
func (f *Factory) registryArg(a []string) (registry.Registry, error) {
	res, err := f.Resolver()
	if err != nil {
		return nil, err
	}
	if len(a) == 1 {
		return res.Registry(a[0])
	}
	return res.Default()
}

// Render prints a result in the -o format.
func (f *Factory) Render(v any, table func() ui.Table) error {
	return ui.Render(f.IO, f.Format(), v, table)
}

// Ask asks a yes/no question on the terminal (stderr, answered on stdin); only "y" or "yes" is yes.
func (f *Factory) Ask(question string) bool {
	fmt.Fprintf(f.IO.ErrOut, "%s [y/N] ", question)
	answer, _ := bufio.NewReader(f.IO.In).ReadString('\n')
	a := strings.ToLower(strings.TrimSpace(answer))
	return a == "y" || a == "yes"
}

// Notef prints a note for humans on stderr (never stdout, which carries results).
func (f *Factory) Notef(format string, args ...any) {
	fmt.Fprintf(f.IO.ErrOut, format+"\n", args...)
}

func newRootCmd(f *Factory) *cobra.Command {
	root := &cobra.Command{
		Use:   "regctl",
		Short: "Manage private container registries: repositories, lifecycle, scans, signatures, backups",
		Long: `regctl manages private container registries from one config file: AWS ECR, Harbor and any
OCI registry (distribution, zot, Docker Hub, GHCR, GAR).

Results go to stdout (-o table|json|yaml); logs and progress to stderr.
Configuration: --config, else ./regctl.yaml, else $XDG_CONFIG_HOME/regctl/config.yaml;
REGCTL_* environment variables override the file, flags override both.`,
		Example: `  regctl registry serve --root /tmp/reg &        # an embedded registry on 127.0.0.1:5000
  regctl registry seed 127.0.0.1:5000/game-server
  regctl repo list 127.0.0.1:5000
  regctl repo images 127.0.0.1:5000/game-server -o json | jq '.[].tags'`,
		SilenceUsage:  true,
		SilenceErrors: true,
		PersistentPreRunE: func(cmd *cobra.Command, args []string) error {
			f.ctx = cmd.Context()
			if _, err := ui.ParseFormat(f.flags.output); err != nil {
				return usageError(err)
			}
			logger, err := ui.NewLogger(f.IO.ErrOut, f.flags.logFormat, f.flags.verbose)
			if err != nil {
				return usageError(err)
			}
			f.logger = logger
			if f.flags.verbose >= 2 {
				slog.SetDefault(logger) // trivy's library logs through the default logger
			}
			if f.flags.noColor || f.Getenv("NO_COLOR") != "" {
				f.IO.NoColor = true
			}
			if parent, ok := f.LookupEnv(envScannerParent); ok && parent != version {
				f.Notef("warning: regctl %s ran %s %s; install both from the same release", parent, companionName, version)
			}
			return nil
		},
	}
	pf := root.PersistentFlags()
	pf.StringVar(&f.flags.configFile, "config", "", "config file (default ./regctl.yaml, then $XDG_CONFIG_HOME/regctl/config.yaml)")
	pf.StringVarP(&f.flags.output, "output", "o", "table", "output format: table, json or yaml")
	pf.StringVar(&f.flags.logFormat, "log-format", "text", "log format on stderr: text or json")
	pf.BoolVar(&f.flags.noColor, "no-color", false, "disable colour (also NO_COLOR)")
	pf.CountVarP(&f.flags.verbose, "verbose", "v", "more logs on stderr (-v info, -vv debug)")
	pf.BoolVar(&f.flags.insecure, "insecure", false, "allow plain HTTP and unverified TLS for every registry")
	pf.StringVarP(&f.flags.registry, "registry", "r", "", "registry for bare repository names (overrides default_registry)")

	root.SetFlagErrorFunc(func(_ *cobra.Command, err error) error { return usageError(err) })
	root.AddCommand(newVersionCmd(f), newConfigCmd(f), newRepoCmd(f), newLifecycleCmd(f), newScanCmd(f), newSignCmd(f), newVerifyCmd(f), newBuildPushCmd(f), newBackupCmd(f), newRestoreCmd(f), newReplicationCmd(f), newReplicateCmd(f), newAuthCmd(f), newCredentialHelperCmd(f), newRegistryCmd(f), newHarborCmd(f))
	root.AddCommand(helpTopics()...)
	root.AddCommand(newMetricsCmd(f))
	return root
}

// parseKeyValues reads repeated key=value flags (-a, --tag, --build-arg); a later key wins.
func parseKeyValues(flag string, list []string) (map[string]string, error) {
	out := map[string]string{}
	for _, kv := range list {
		k, v, ok := strings.Cut(kv, "=")
		if !ok || k == "" {
			return nil, usageError(fmt.Errorf("%s %q: want key=value", flag, kv))
		}
		out[k] = v
	}
	return out, nil
}

func usageError(err error) error {
	if err == nil {
		return nil
	}
	return fmt.Errorf("%w: %w", err, exitcode.ErrUsage)
}

// args wraps a cobra argument validator so that a wrong number of arguments exits 2.
func args(v cobra.PositionalArgs) cobra.PositionalArgs {
	return func(cmd *cobra.Command, a []string) error { return usageError(v(cmd, a)) }
}

// run executes the CLI and returns the exit code; main is its only caller. Called through a
// docker-credential-regctl symlink, it is the docker credential helper.
func run(ctx context.Context, prog string, argv []string, io *ui.IOStreams, environ []string) int {
	if filepath.Base(prog) == "docker-credential-regctl" {
		argv = append([]string{"credential-helper"}, argv...)
	}
	wd, _ := os.Getwd()
	exe, _ := os.Executable()
	f := &Factory{IO: io, Environ: environ, Now: time.Now, WorkDir: wd, Executable: exe}
	return execute(ctx, f, argv)
}

func execute(ctx context.Context, f *Factory, argv []string) int {
	prepareLibraries()
	root := newRootCmd(f)
	root.SetArgs(argv)
	root.SetIn(f.IO.In)
	root.SetOut(f.IO.Out)
	root.SetErr(f.IO.ErrOut)
	err := root.ExecuteContext(ctx)
	if err == nil {
		return exitcode.OK
	}
	var quiet exitOnly
	if errors.As(err, &quiet) {
		return quiet.code
	}
	msg := errorMessage(err)
	fmt.Fprintf(f.IO.ErrOut, "regctl: %s\n", msg)
	if strings.HasPrefix(msg, "unknown command") || strings.HasPrefix(msg, "unknown flag") || strings.HasPrefix(msg, "unknown shorthand flag") {
		fmt.Fprintln(f.IO.ErrOut, "Run 'regctl --help' for usage.")
		return exitcode.Usage
	}
	return exitcode.Of(err)
}

// errorMessage is err as regctl prints it.
func errorMessage(err error) string {
	if errors.Is(err, context.Canceled) {
		return "interrupted"
	}
	msg := err.Error()
	// The sentinels only choose the exit code; their text adds nothing for a reader.
	for _, s := range []error{exitcode.ErrUsage, exitcode.ErrViolation, exitcode.ErrNotFound, exitcode.ErrAuth} {
		msg = strings.ReplaceAll(msg, ": "+s.Error(), "")
	}
	return msg
}

// group makes a command that only holds subcommands reject an unknown subcommand (exit 2) instead
// of printing help and exiting 0.
func group(cmd *cobra.Command) *cobra.Command {
	cmd.Args = func(c *cobra.Command, a []string) error {
		if len(a) > 0 {
			return usageError(fmt.Errorf("unknown command %q for %q", a[0], c.CommandPath()))
		}
		return nil
	}
	cmd.RunE = func(c *cobra.Command, _ []string) error { return c.Help() }
	return cmd
}

// repository resolves a REGISTRY/REPO argument that must name a repository, not a registry alone.
func (f *Factory) repository(arg string) (registry.Registry, string, error) {
	res, err := f.Resolver()
	if err != nil {
		return nil, "", err
	}
	reg, repo, err := res.Repository(arg)
	if err != nil {
		return nil, "", err
	}
	if repo == "" {
		return nil, "", usageError(fmt.Errorf("%q names a registry; give REGISTRY/REPO", arg))
	}
	return reg, repo, nil
}
