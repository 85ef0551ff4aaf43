package main

import (
	"runtime"

	"github.com/spf13/cobra"

	"github.com/regctl-dev/regctl/internal/ui"
)

type versionInfo struct {
	Version   string `json:"version"`
	Commit    string `json:"commit"`
	Date      string `json:"date"`
	GoVersion string `json:"goVersion"`
	Platform  string `json:"platform"`
	// Scanner says where scan runs: "built-in" (this binary links trivy) or "regctl-scan" (the companion).
	Scanner string `json:"scanner"`
}

func newVersionCmd(f *Factory) *cobra.Command {
	return &cobra.Command{
		Use:     "version",
		Short:   "Print regctl's version, commit and build date",
		Example: "  regctl version\n  regctl version -o json",
		Args:    args(cobra.NoArgs),
		RunE: func(cmd *cobra.Command, _ []string) error {
			v := versionInfo{version, commit, date, runtime.Version(), runtime.GOOS + "/" + runtime.GOARCH, companionName}
			if builtInScanner() != nil {
				v.Scanner = "built-in"
			}
			return f.Render(v, func() ui.Table {
				return ui.Table{Headers: []string{"version", "commit", "date", "go", "platform", "scanner"},
					Rows: [][]string{{v.Version, v.Commit, v.Date, v.GoVersion, v.Platform, v.Scanner}}}
			})
		},
	}
}
