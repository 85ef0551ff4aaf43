package lifecycle_test

import (
	"context"
	"strings"
	"testing"

	"github.com/regctl-dev/regctl/internal/config"
	"github.com/regctl-dev/regctl/internal/ecr"
	"github.com/regctl-dev/regctl/internal/ecr/ecrtest"
	"github.com/regctl-dev/regctl/internal/exitcode"
	"github.com/regctl-dev/regctl/internal/lifecycle"
	"github.com/regctl-dev/regctl/internal/localreg/localregtest"
	"github.com/regctl-dev/regctl/internal/registry"
	"github.com/regctl-dev/regctl/internal/sample"
)

// reconcileTarget seeds repo on reg and plans policy against it.
func reconcileTarget(t *testing.T, reg registry.Registry, repo, policy string) lifecycle.Target {
	t.Helper()
	ctx := context.Background()
	ref, _ := registry.RepositoryRef(reg, repo)
	if _, err := sample.Seed(ctx, ref, daysAgo(0), reg.Remote()...); err != nil {
		t.Fatal(err)
	}
	p, err := lifecycle.Parse([]byte(policy))
	if err != nil {
		t.Fatal(err)
	}
	images, err := reg.Images(ctx, repo)
	if err != nil {
		t.Fatal(err)
	}
	return lifecycle.Target{Registry: reg, Plan: lifecycle.BuildPlan(p, reg.Name(), repo, images, lifecycle.AgeAuto, now)}
}

func tagCount(t *testing.T, reg registry.Registry, repo string) int {
	t.Helper()
	tags, err := reg.Tags(context.Background(), repo)
	if err != nil {
		t.Fatal(err)
	}
	return len(tags)
}

// Reconcile's rules, without the CLI: dry run, --max-delete, no --yes off a terminal, a refused and
// an accepted confirmation.
func TestReconcileChangesNothingUnlessTheWholePlanIsAllowed(t *testing.T) {
	ctx := context.Background()
	reg, _ := registry.NewResolver(nil, registry.Options{}).Registry(localregtest.Start(t).Host)
	target := reconcileTarget(t, reg, "app", expireAllOlderThan1Day)
	expire := target.Plan.Summary.Expire
	if expire < 2 {
		t.Fatalf("the fixture should expire several images: %+v", target.Plan.Summary)
	}
	before := tagCount(t, reg, "app")
	policy := []byte(expireAllOlderThan1Day)
	targets := []lifecycle.Target{target}

	out, err := lifecycle.Reconcile(ctx, targets, lifecycle.ReconcileOptions{Policy: policy, DryRun: true})
	if err != nil || !strings.HasPrefix(out.Message, "dry run") || len(out.Results) != 0 {
		t.Fatalf("dry run: %+v %v", out, err)
	}
	_, err = lifecycle.Reconcile(ctx, targets, lifecycle.ReconcileOptions{Policy: policy, Yes: true, MaxDelete: expire - 1})
	if exitcode.Of(err) != exitcode.Error || !strings.Contains(err.Error(), "more than --max-delete") {
		t.Fatalf("over --max-delete: %v", err)
	}
	if _, err := lifecycle.Reconcile(ctx, targets, lifecycle.ReconcileOptions{Policy: policy}); exitcode.Of(err) != exitcode.Usage {
		t.Fatalf("no --yes and nobody to ask: %v", err)
	}
	asked := 0
	refuse := func(c lifecycle.Changes) (bool, error) {
		asked++
		if c.Images != expire {
			t.Errorf("asked about %d images, the plan expires %d", c.Images, expire)
		}
		return false, nil
	}
	if _, err := lifecycle.Reconcile(ctx, targets, lifecycle.ReconcileOptions{Policy: policy, Confirm: refuse}); exitcode.Of(err) != exitcode.Usage || asked != 1 {
		t.Fatalf("refused confirmation: %v (asked %d)", err, asked)
	}
	if got := tagCount(t, reg, "app"); got != before {
		t.Fatalf("tags %d -> %d before anything was allowed", before, got)
	}
	out, err = lifecycle.Reconcile(ctx, targets, lifecycle.ReconcileOptions{Policy: policy, MaxDelete: expire,
		Confirm: func(lifecycle.Changes) (bool, error) { return true, nil }})
	if err != nil || len(out.Results) != 1 || len(out.Results[0].Deleted) < expire {
		t.Fatalf("confirmed: %+v %v", out, err)
	}
	if got := tagCount(t, reg, "app"); got >= before {
		t.Errorf("nothing was deleted: %d tags before, %d after", before, got)
	}
}

// On ECR the policy is stored, not applied by regctl, and ECR's own preview says how many images
// that will expire: those count against --max-delete.
func TestReconcileCountsWhatANativePolicyWillExpire(t *testing.T) {
	ctx := context.Background()
	srv := ecrtest.Start(t)
	reg, err := ecr.Open(ctx, "prod", config.Registry{Type: "ecr", CAFile: srv.CAFile, Settings: map[string]any{"region": ecrtest.Region, "account": ecrtest.Account, "endpoint": srv.URL}}, registry.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := reg.EnsureRepository(ctx, "app", registry.RepositorySpec{}); err != nil {
		t.Fatal(err)
	}
	// Count-based, because ECR ages images by real push times.
	const keepNewest = `{"rules":[{"rulePriority":1,"description":"keep the newest image","selection":{"tagStatus":"any","countType":"imageCountMoreThan","countNumber":1},"action":{"type":"expire"}}]}`
	target := reconcileTarget(t, reg, "app", keepNewest)
	targets := []lifecycle.Target{target}
	policy := []byte(keepNewest)
	out, err := lifecycle.Reconcile(ctx, targets, lifecycle.ReconcileOptions{Policy: policy, DryRun: true})
	if err != nil || len(out.Native) != 1 || out.Native[0].ExpiresSource != "registry-preview" || out.Native[0].Expires == 0 {
		t.Fatalf("native dry run: %+v %v", out.Native, err)
	}
	n := out.Native[0].Expires
	if _, err := lifecycle.Reconcile(ctx, targets, lifecycle.ReconcileOptions{Policy: policy, Yes: true, MaxDelete: n - 1}); exitcode.Of(err) != exitcode.Error {
		t.Fatalf("a native policy over --max-delete: %v", err)
	}
	if srv.Calls("PutLifecyclePolicy") != 0 {
		t.Fatal("a policy over --max-delete was put")
	}
	out, err = lifecycle.Reconcile(ctx, targets, lifecycle.ReconcileOptions{Policy: policy, Yes: true, MaxDelete: n})
	if err != nil || out.Native[0].Status != "put" || srv.Calls("PutLifecyclePolicy") != 1 {
		t.Fatalf("within --max-delete: %+v %v", out.Native, err)
	}
	out, err = lifecycle.Reconcile(ctx, targets, lifecycle.ReconcileOptions{Policy: policy, Yes: true})
	if err != nil || out.Native[0].Status != "unchanged" || srv.Calls("PutLifecyclePolicy") != 1 {
		t.Fatalf("re-run: %+v %v", out.Native, err)
	}
}
