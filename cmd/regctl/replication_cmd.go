package main

import (
	"errors"
	"fmt"

	"github.com/spf13/cobra"

	"github.com/regctl-dev/regctl/internal/registry"
	"github.com/regctl-dev/regctl/internal/ui"
)

func newReplicationCmd(f *Factory) *cobra.Command {
	cmd := group(&cobra.Command{Use: "replication", Short: "Get or put a registry's cross-region replication configuration (ECR)"})
	open := func(a []string) (registry.ReplicationConfigurer, registry.Registry, error) {
		res, err := f.Resolver()
		if err != nil {
			return nil, nil, err
		}
		var reg registry.Registry
		if len(a) == 1 {
			reg, err = res.Registry(a[0])
		} else {
			reg, err = res.Default()
		}
		if err != nil {
			return nil, nil, err
		}
		rp, ok := reg.(registry.ReplicationConfigurer)
		if !ok {
			return nil, nil, usageError(fmt.Errorf("%s is a %s registry, which has no replication configuration", reg.Name(), reg.Type()))
		}
		return rp, reg, nil
	}
	var file string
	put := &cobra.Command{
		Use:     "put -f FILE [REGISTRY]",
		Short:   "Replace the replication configuration (the JSON of aws ecr put-replication-configuration)",
		Example: "  regctl replication put -f ecr-replication-configuration.json prod",
		Args:    args(cobra.MaximumNArgs(1)),
		RunE: func(cmd *cobra.Command, a []string) error {
			if file == "" {
				return usageError(errors.New("-f FILE is required"))
			}
			data, err := readPolicyFile(f, file)
			if err != nil {
				return err
			}
			rp, reg, err := open(a)
			if err != nil {
				return err
			}
			st, err := rp.PutReplicationConfig(cmd.Context(), data)
			if err != nil {
				return fmt.Errorf("%s: %w", file, err)
			}
			if st.Unchanged {
				f.Notef("%s: replication unchanged", reg.Name())
				return nil
			}
			f.Notef("%s: replication configuration put (%d rules)", reg.Name(), st.Rules)
			return nil
		},
	}
	put.Flags().StringVarP(&file, "file", "f", "", "replication configuration JSON (- for stdin)")
	get := &cobra.Command{
		Use:     "get [REGISTRY]",
		Short:   "Print the replication configuration",
		Example: "  regctl replication get prod -o json",
		Args:    args(cobra.MaximumNArgs(1)),
		RunE: func(cmd *cobra.Command, a []string) error {
			rp, _, err := open(a)
			if err != nil {
				return err
			}
			r, err := rp.ReplicationConfig(cmd.Context())
			if err != nil {
				return err
			}
			return f.Render(r.Document, func() ui.Table {
				t := ui.Table{Headers: []string{"rule", "destinations", "repository filters"}}
				for _, rule := range r.Rules {
					t.Rows = append(t.Rows, []string{rule.Name, fmt.Sprint(rule.Destinations), fmt.Sprint(rule.Filters)})
				}
				return t
			})
		},
	}
	cmd.AddCommand(put, get)
	return cmd
}
