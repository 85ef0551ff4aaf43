package main

import (
	"errors"
	"fmt"
	"path/filepath"

	"github.com/spf13/cobra"

	"github.com/regctl-dev/regctl/internal/config"
	"github.com/regctl-dev/regctl/internal/exitcode"
	"github.com/regctl-dev/regctl/internal/ui"
)

func newConfigCmd(f *Factory) *cobra.Command {
	cmd := group(&cobra.Command{
		Use:   "config",
		Short: "Create, show and check regctl's configuration",
	})
	cmd.AddCommand(newConfigInitCmd(f), newConfigViewCmd(f), newConfigValidateCmd(f))
	return cmd
}

func newConfigInitCmd(f *Factory) *cobra.Command {
	var path string
	var user, force bool
	cmd := &cobra.Command{
		Use:   "init",
		Short: "Write a commented starter config file",
		Long: `Write a commented starter config file: ./regctl.yaml by default, the user config
($XDG_CONFIG_HOME/regctl/config.yaml) with --user, or --path. An existing file is kept unless --force.`,
		Example: "  regctl config init\n  regctl config init --user\n  regctl config init --path ci/regctl.yaml --force",
		Args:    args(cobra.NoArgs),
		RunE: func(cmd *cobra.Command, _ []string) error {
			target := path
			switch {
			case target != "" && user:
				return usageError(errors.New("--path and --user are exclusive"))
			case user:
				home := config.UserConfigHome(f.Getenv)
				if home == "" {
					return usageError(errors.New("neither XDG_CONFIG_HOME nor HOME is set"))
				}
				target = filepath.Join(home, "regctl", "config.yaml")
			case target == "":
				target = filepath.Join(f.WorkDir, "regctl.yaml")
			}
			if err := config.WriteStarter(target, force); err != nil {
				return usageError(err)
			}
			f.Notef("wrote %s; check it with: regctl config validate --config %s", target, target)
			return nil
		},
	}
	cmd.Flags().StringVar(&path, "path", "", "file to write")
	cmd.Flags().BoolVar(&user, "user", false, "write the user config ($XDG_CONFIG_HOME/regctl/config.yaml)")
	cmd.Flags().BoolVar(&force, "force", false, "overwrite an existing file")
	return cmd
}

func newConfigViewCmd(f *Factory) *cobra.Command {
	return &cobra.Command{
		Use:     "view",
		Short:   "Print the merged configuration (file < env < flags), secrets redacted",
		Example: "  regctl config view\n  REGCTL_DEFAULT_REGISTRY=prod regctl config view -o json",
		Args:    args(cobra.NoArgs),
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, err := f.Config()
			if err != nil {
				return err
			}
			if cfg.File == "" {
				f.Notef("no config file found; showing environment and flag settings only")
			}
			red := cfg.Redacted()
			if f.Format() == ui.FormatJSON {
				return ui.WriteJSON(f.IO.Out, red)
			}
			return ui.WriteYAML(f.IO.Out, red)
		},
	}
}

type validateResult struct {
	File     string           `json:"file"`
	Valid    bool             `json:"valid"`
	Problems []config.Problem `json:"problems"`
}

func newConfigValidateCmd(f *Factory) *cobra.Command {
	return &cobra.Command{
		Use:     "validate [FILE]",
		Short:   "Check a config file; list every problem with its key path (exit 2 when invalid)",
		Example: "  regctl config validate\n  regctl config validate ci/regctl.yaml -o json",
		Args:    args(cobra.MaximumNArgs(1)),
		RunE: func(cmd *cobra.Command, a []string) error {
			if len(a) == 1 {
				f.flags.configFile = a[0]
			}
			cfg, err := f.Config()
			res := validateResult{Valid: err == nil, Problems: []config.Problem{}}
			if cfg != nil {
				res.File = cfg.File
			}
			var verr *config.ValidationError
			switch {
			case err == nil:
			case errors.As(err, &verr):
				res.Problems = verr.Problems
				if len(verr.Problems) > 0 {
					res.File = verr.Problems[0].Source
				}
			default:
				return err
			}
			if f.Format() == ui.FormatTable {
				if res.Valid {
					fmt.Fprintf(f.IO.Out, "%s: valid\n", orNone(res.File))
				}
				for _, p := range res.Problems {
					fmt.Fprintln(f.IO.Out, p.String())
				}
			} else if err := f.Render(res, nil); err != nil {
				return err
			}
			if !res.Valid {
				return fmt.Errorf("%d problem(s) in the configuration: %w", len(res.Problems), exitcode.ErrUsage)
			}
			return nil
		},
	}
}

func orNone(file string) string {
	if file == "" {
		return "(no config file)"
	}
	return file
}
