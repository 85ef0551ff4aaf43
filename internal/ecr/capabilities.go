package ecr

import (
	"context"
	"fmt"
	"reflect"

	"github.com/regctl-dev/regctl/internal/registry"
)

// Traits: ECR lists untagged images with their push times, and stores buildx caches only as OCI
// image manifests.
func (e *ECR) Traits() registry.Traits {
	return registry.Traits{ListsUntagged: true, PushTimes: true, OCICacheManifests: true}
}

// PreviewLifecyclePolicy is ECR's lifecycle policy preview in the backend-neutral form.
func (e *ECR) PreviewLifecyclePolicy(ctx context.Context, repo, policy string) ([]registry.PreviewItem, error) {
	res, err := e.Preview(ctx, repo, policy)
	if err != nil {
		return nil, err
	}
	out := make([]registry.PreviewItem, 0, len(res))
	for _, r := range res {
		out = append(out, registry.PreviewItem{Digest: r.Digest, Tags: r.Tags, Action: r.Action, Rule: r.Rule})
	}
	return out, nil
}

// PutReplicationConfig validates the JSON of put-replication-configuration and puts it unless
// DescribeRegistry shows the same configuration.
func (e *ECR) PutReplicationConfig(ctx context.Context, doc []byte) (registry.ReplicationStatus, error) {
	want, err := ParseReplication(doc)
	if err != nil {
		return registry.ReplicationStatus{}, err
	}
	st := registry.ReplicationStatus{Rules: len(want.Rules)}
	if cur, err := e.GetReplication(ctx); err == nil && reflect.DeepEqual(cur, want) {
		st.Unchanged = true
		return st, nil
	}
	return st, e.PutReplication(ctx, want)
}

// ReplicationConfig is DescribeRegistry's replication configuration.
func (e *ECR) ReplicationConfig(ctx context.Context) (*registry.ReplicationConfig, error) {
	r, err := e.GetReplication(ctx)
	if err != nil {
		return nil, err
	}
	out := &registry.ReplicationConfig{Document: r}
	for i, rule := range r.Rules {
		row := registry.ReplicationRuleSummary{Name: fmt.Sprint(i), Destinations: []string{}, Filters: []string{}}
		for _, d := range rule.Destinations {
			row.Destinations = append(row.Destinations, d.Region+"/"+d.RegistryID)
		}
		for _, f := range rule.RepositoryFilters {
			row.Filters = append(row.Filters, f.FilterType+":"+f.Filter)
		}
		out.Rules = append(out.Rules, row)
	}
	return out, nil
}

var (
	_ registry.ReplicationConfigurer = (*ECR)(nil)
	_ registry.TraitReporter         = (*ECR)(nil)
	_ registry.LifecyclePreviewer    = (*ECR)(nil)
)
