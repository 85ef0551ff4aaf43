package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"github.com/spf13/cobra"

	"github.com/regctl-dev/regctl/internal/exitcode"
	"github.com/regctl-dev/regctl/internal/fsutil"
	"github.com/regctl-dev/regctl/internal/harbor"
	"github.com/regctl-dev/regctl/internal/registry"
	"github.com/regctl-dev/regctl/internal/ui"
)

// harborAdmin is what the harbor commands need of a registry: Harbor's own API beyond the
// registry abstraction (robots, health).
type harborAdmin interface {
	CreateRobot(ctx context.Context, s harbor.RobotSpec) (*harbor.RobotCreated, error)
	Health(ctx context.Context) *harbor.HealthReport
}

func newHarborCmd(f *Factory) *cobra.Command {
	cmd := group(&cobra.Command{Use: "harbor", Short: "Harbor's own settings: robot accounts, the install check, helm values"})
	robot := group(&cobra.Command{Use: "robot", Short: "Harbor robot accounts (the normal CI credential)"})
	robot.AddCommand(newHarborRobotCreateCmd(f))
	values := group(&cobra.Command{Use: "values", Short: "Check a values file for the goharbor/harbor helm chart"})
	values.AddCommand(newHarborValuesLintCmd(f))
	cmd.AddCommand(robot, newHarborHealthCmd(f), values)
	return cmd
}

// harborRegistry opens the named registry (or the default) and checks it has Harbor's API.
func (f *Factory) harborRegistry(a []string) (harborAdmin, registry.Registry, error) {
	reg, err := f.registryArg(a)
	if err != nil {
		return nil, nil, err
	}
	h, ok := reg.(harborAdmin)
	if !ok {
		return nil, nil, usageError(fmt.Errorf("%s is a %s registry; the harbor commands need a registry of type harbor", reg.Name(), reg.Type()))
	}
	return h, reg, nil
}

func newHarborRobotCreateCmd(f *Factory) *cobra.Command {
	var (
		spec                  harbor.RobotSpec
		pull, push, del, scan bool
		secretFile            string
	)
	cmd := &cobra.Command{
		Use:   "create [REGISTRY] --project P --name NAME [--pull] [--push] [--delete] [--scan]",
		Short: "Create a project robot account; its secret is shown once",
		Long: `Create a project-level robot account (robot$<project>+<name>) with the permissions the flags
grant: --pull (pull and list), --push (also push and tag), --delete (artifact deletes, for lifecycle
apply), --scan (start scans, for scan --engine native).

Harbor shows a robot's secret only when it creates it. regctl prints it once on stdout (the table's
last line, or "secret" in -o json), or with --secret-file writes it to that file with mode 0600 and
prints nothing secret. It never goes to logs or stderr. A robot of that name already there is an
error: its secret cannot be read back.`,
		Example: `  regctl harbor robot create harbor --project game-server --name ci --push --pull --expires-days 90 --secret-file ci.secret
  regctl harbor robot create --project game-server --name cleanup --delete -o json | jq -r .secret`,
		Args: args(cobra.MaximumNArgs(1)),
		RunE: func(cmd *cobra.Command, a []string) error {
			spec.Access = harbor.RobotAccessFor(pull, push, del, scan)
			if spec.Project == "" || spec.Name == "" {
				return usageError(errors.New("--project and --name are required"))
			}
			if len(spec.Access) == 0 {
				return usageError(errors.New("grant at least one of --pull, --push, --delete, --scan"))
			}
			if secretFile != "" {
				secretFile = f.inWorkDir(secretFile)
				// Fail before the robot exists: a secret that cannot be saved is lost for good.
				if err := writable(filepath.Dir(secretFile)); err != nil {
					return usageError(fmt.Errorf("--secret-file: %w", err))
				}
			}
			h, reg, err := f.harborRegistry(a)
			if err != nil {
				return err
			}
			created, err := h.CreateRobot(cmd.Context(), spec)
			if err != nil {
				return err
			}
			expires := "never"
			if created.ExpiresAt != nil {
				expires = created.ExpiresAt.Format("2006-01-02 15:04 MST")
			}
			type result struct {
				*harbor.RobotCreated
				Registry   string `json:"registry"`
				Secret     string `json:"secret,omitempty"`
				SecretFile string `json:"secretFile,omitempty"`
			}
			out := result{RobotCreated: created, Registry: reg.Name()}
			if secretFile != "" {
				if err := fsutil.WriteFileAtomic(secretFile, []byte(created.Secret+"\n"), 0o600); err != nil {
					return fmt.Errorf("robot %s was created, but its secret could not be written to %s (%v); Harbor cannot show it again: delete the robot and create it anew", created.Login, secretFile, err)
				}
				out.SecretFile = secretFile
			} else {
				out.Secret = created.Secret
			}
			return f.Render(out, func() ui.Table {
				t := ui.Table{Headers: []string{"robot", "expires", "secret"}}
				where := out.Secret
				if secretFile != "" {
					where = "written to " + secretFile + " (0600)"
				}
				t.Rows = append(t.Rows, []string{created.Login, expires, where})
				return t
			})
		},
	}
	fl := cmd.Flags()
	fl.StringVar(&spec.Project, "project", "", "the robot's project (required)")
	fl.StringVar(&spec.Name, "name", "", "robot name: robot$<project>+<name> (required)")
	fl.StringVar(&spec.Description, "description", "", "description shown in Harbor")
	fl.BoolVar(&pull, "pull", false, "pull and list")
	fl.BoolVar(&push, "push", false, "push (and pull)")
	fl.BoolVar(&del, "delete", false, "delete artifacts (lifecycle apply)")
	fl.BoolVar(&scan, "scan", false, "start and read scans (scan --engine native)")
	fl.Int64Var(&spec.ExpiresDays, "expires-days", -1, "lifetime in days; -1 never expires")
	fl.StringVar(&secretFile, "secret-file", "", "write the secret to this file (mode 0600) instead of stdout")
	return cmd
}

// writable checks that a file can be created in dir.
func writable(dir string) error {
	tmp, err := os.CreateTemp(dir, ".regctl-check-")
	if err != nil {
		return err
	}
	tmp.Close()
	return os.Remove(tmp.Name())
}

func newHarborHealthCmd(f *Factory) *cobra.Command {
	return &cobra.Command{
		Use:   "health [REGISTRY]",
		Short: "Check a Harbor install: ping, component health, version, scanner",
		Long: `The install check after the guide's §3.1 helm install: the API answers ping, every component
(core, database, jobservice, portal, redis, registry, registryctl, trivy) is healthy, the version
(systeminfo; shown to signed-in users), and an enabled default scanner is registered (listing
scanners needs an admin or a system robot with scanner:list; otherwise the line is "unknown").
Every check runs; exit 1 when any failed.`,
		Example: `  regctl harbor health harbor
  regctl harbor health -o json | jq '.checks[] | select(.status != "ok")'`,
		Args: args(cobra.MaximumNArgs(1)),
		RunE: func(cmd *cobra.Command, a []string) error {
			h, _, err := f.harborRegistry(a)
			if err != nil {
				return err
			}
			rep := h.Health(cmd.Context())
			if err := f.Render(rep, func() ui.Table {
				t := ui.Table{Headers: []string{"check", "status", "detail"}}
				for _, c := range rep.Checks {
					t.Rows = append(t.Rows, []string{c.Check, c.Status, c.Detail})
				}
				return t
			}); err != nil {
				return err
			}
			if !rep.Healthy {
				return exitcode.With(exitcode.Error, fmt.Errorf("%s (%s) is not healthy: see the failed checks", rep.Registry, rep.URL))
			}
			return nil
		},
	}
}

func newHarborValuesLintCmd(f *Factory) *cobra.Command {
	return &cobra.Command{
		Use:   "lint FILE",
		Short: "Find what breaks a goharbor/harbor helm install in a values file",
		Long: `Check a values file for the goharbor/harbor chart before helm install: ${VAR} placeholders
(helm does not expand environment variables; Harbor gets the literal text, e.g. as its admin
password), notary (removed in Harbor 2.9), an externalURL whose host is not the ingress host, and
trivy settings its adapter rejects. Errors exit 2, warnings alone exit 0.`,
		Example: `  regctl harbor values lint harbor-values.yaml
  regctl harbor values lint harbor-values.yaml -o json`,
		Args: args(cobra.ExactArgs(1)),
		RunE: func(cmd *cobra.Command, a []string) error {
			data, err := readPolicyFile(f, a[0])
			if err != nil {
				return err
			}
			findings, err := harbor.LintValues(a[0], data)
			if err != nil {
				return err
			}
			if findings == nil {
				findings = []harbor.ValuesFinding{}
			}
			if err := f.Render(findings, func() ui.Table {
				t := ui.Table{Headers: []string{"line", "severity", "path", "problem"}}
				for _, v := range findings {
					t.Rows = append(t.Rows, []string{fmt.Sprint(v.Line), v.Severity, v.Path, v.Message})
				}
				return t
			}); err != nil {
				return err
			}
			errs := 0
			for _, v := range findings {
				if v.Severity == "error" {
					errs++
				}
			}
			if errs > 0 {
				return usageError(fmt.Errorf("%s: %d problems that break the install", a[0], errs))
			}
			f.Notef("%s: no problems found (%d warnings)", a[0], len(findings))
			return nil
		},
	}
}
