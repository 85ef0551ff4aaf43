package main

import (
	"context"
	"errors"
	"fmt"
	"reflect"

	"github.com/spf13/cobra"

	"github.com/regctl-dev/regctl/internal/ecr"
	"github.com/regctl-dev/regctl/internal/registry"
	"github.com/regctl-dev/regctl/internal/ui"
)

// replicator is a registry with a replication configuration (ECR).
type replicator interface {
	GetReplication(ctx context.Context) (*ecr.Replication, error)
	PutReplication(ctx context.Context, r *ecr.Replication) error
}

func newReplicationCmd(f *Factory) *cobra.Command {
	cmd := group(&cobra.Command{Use: "replication", Short: "Get or put a registry's cross-region replication configuration (ECR)"})
	open := func(a []string) (replicator, registry.Registry, error) {
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
		rp, ok := reg.(replicator)
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
			want, err := ecr.ParseReplication(data)
			if err != nil {
				return fmt.Errorf("%s: %w", file, err)
			}
			rp, reg, err := open(a)
			if err != nil {
				return err
			}
			if cur, err := rp.GetReplication(cmd.Context()); err == nil && reflect.DeepEqual(cur, want) {
				f.Notef("%s: replication unchanged", reg.Name())
				return nil
			}
			if err := rp.PutReplication(cmd.Context(), want); err != nil {
				return err
			}
			f.Notef("%s: replication configuration put (%d rules)", reg.Name(), len(want.Rules))
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
			r, err := rp.GetReplication(cmd.Context())
			if err != nil {
				return err
			}
			return f.Render(r, func() ui.Table {
				t := ui.Table{Headers: []string{"rule", "destinations", "repository filters"}}
				for i, rule := range r.Rules {
					var d, fl []string
					for _, x := range rule.Destinations {
						d = append(d, x.Region+"/"+x.RegistryID)
					}
					for _, x := range rule.RepositoryFilters {
						fl = append(fl, x.FilterType+":"+x.Filter)
					}
					t.Rows = append(t.Rows, []string{fmt.Sprint(i), fmt.Sprint(d), fmt.Sprint(fl)})
				}
				return t
			})
		},
	}
	cmd.AddCommand(put, get)
	return cmd
}
