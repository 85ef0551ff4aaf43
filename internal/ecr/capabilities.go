package ecr

import (
	"context"

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

var (
	_ registry.TraitReporter      = (*ECR)(nil)
	_ registry.LifecyclePreviewer = (*ECR)(nil)
)
