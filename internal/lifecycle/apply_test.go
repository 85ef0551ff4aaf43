package lifecycle_test

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/types"

	"github.com/regctl-dev/regctl/internal/exitcode"
	"github.com/regctl-dev/regctl/internal/lifecycle"
	"github.com/regctl-dev/regctl/internal/localreg/localregtest"
	"github.com/regctl-dev/regctl/internal/registry"
	"github.com/regctl-dev/regctl/internal/sample"
)

const expireAllOlderThan1Day = `{"rules":[{"rulePriority":1,"description":"anything older than a day, padded past the 100 characters","selection":{"tagStatus":"any","countType":"sinceImagePushed","countUnit":"days","countNumber":1},"action":{"type":"expire"}}]}`

// Two expired indexes share a platform manifest; deleting one of them fails. The shared manifest
// must survive, because the index that could not be deleted still lists it.
func TestSharedPlatformSurvivesAFailedIndexDelete(t *testing.T) {
	var failDigest string
	srv := localregtest.Start(t, localregtest.Options{Wrap: func(h http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if r.Method == http.MethodDelete && failDigest != "" && strings.HasSuffix(r.URL.Path, failDigest) {
				http.Error(w, "denied for the test", http.StatusForbidden)
				return
			}
			h.ServeHTTP(w, r)
		})
	}})
	reg, _ := registry.NewResolver(nil, registry.Options{}).Registry(srv.Host)
	repo, _ := registry.RepositoryRef(reg, "app")
	ctx := context.Background()
	shared, _ := sample.Image(sample.ImageSpec{Seed: "shared", Created: daysAgo(10)})
	a1, _ := sample.Image(sample.ImageSpec{Seed: "a-arm", Created: daysAgo(10), Arch: "arm64"})
	b1, _ := sample.Image(sample.ImageSpec{Seed: "b-arm", Created: daysAgo(9), Arch: "arm64"})
	mk := func(arm v1.Image) v1.ImageIndex {
		return mutate.AppendManifests(mutate.IndexMediaType(empty.Index, types.OCIImageIndex),
			mutate.IndexAddendum{Add: shared, Descriptor: v1.Descriptor{Platform: &v1.Platform{OS: "linux", Architecture: "amd64"}}},
			mutate.IndexAddendum{Add: arm, Descriptor: v1.Descriptor{Platform: &v1.Platform{OS: "linux", Architecture: "arm64"}}})
	}
	idxA, idxB := mk(a1), mk(b1)
	for tag, idx := range map[string]v1.ImageIndex{"a": idxA, "b": idxB} {
		if err := sample.Push(ctx, repo.Tag(tag), idx, reg.Remote()...); err != nil {
			t.Fatal(err)
		}
	}
	p, _ := lifecycle.Parse([]byte(expireAllOlderThan1Day))
	images, _ := reg.Images(ctx, "app")
	plan := lifecycle.BuildPlan(p, reg.Name(), "app", images, lifecycle.AgeAuto, now)
	sd, _ := shared.Digest()
	if len(plan.DeleteAfter) != 1 || plan.DeleteAfter[0].Digest != sd.String() || len(plan.DeleteAfter[0].After) != 2 {
		t.Fatalf("the shared platform must be deferred: %+v", plan.DeleteAfter)
	}
	da, _ := idxA.Digest()
	failDigest = da.String()
	res := lifecycle.Apply(ctx, reg, plan, 4, nil)
	if len(res.Failed) != 1 || res.Failed[0].Digest != da.String() {
		t.Fatalf("failures: %+v", res.Failed)
	}
	if _, err := remote.Head(repo.Digest(sd.String()), reg.Remote()...); err != nil {
		t.Fatalf("the shared platform of the surviving index was deleted: %v", err)
	}
	if len(res.Skipped) != 1 || !strings.Contains(res.Skipped[0].Reason, "still listed by") {
		t.Errorf("skipped: %+v", res.Skipped)
	}
	// The failure keeps its cause: a 403 exits 4 (auth), not 1.
	if code := exitcode.Of(res.Err()); code != exitcode.Auth {
		t.Errorf("exit %d for %v", code, res.Err())
	}
}

// A tag added to an expired image after the preview stops that image's deletion.
func TestApplySkipsImagesTaggedSinceThePlan(t *testing.T) {
	fx := newFixture(t)
	plan := fx.plan(t, expireAllOlderThan1Day, lifecycle.AgeAuto)
	v1d := fx.digests["v1"]
	desc, _ := remote.Get(fx.repo.Digest(v1d.String()), fx.reg.Remote()...)
	if err := remote.Tag(fx.repo.Tag("prod"), desc, fx.reg.Remote()...); err != nil {
		t.Fatal(err)
	}
	res := lifecycle.Apply(context.Background(), fx.reg, plan, 4, nil)
	if err := res.Err(); err != nil {
		t.Fatal(err)
	}
	found := false
	for _, s := range res.Skipped {
		if s.Digests[0] == v1d.String() && strings.Contains(s.Reason, `tag "prod"`) {
			found = true
		}
	}
	if !found {
		t.Errorf("v1 (now tagged prod) was not skipped: %+v", res.Skipped)
	}
	if _, err := remote.Head(fx.repo.Tag("prod"), fx.reg.Remote()...); err != nil {
		t.Errorf("the promoted image was deleted: %v", err)
	}
	if _, err := remote.Head(fx.repo.Tag("v2"), fx.reg.Remote()...); err == nil {
		t.Error("the rest of the plan must still apply")
	}
}

// The guide's policy, unmodified, applied to images tagged the way it expects (each rule's prefixes
// are ANDed, so the images carry a tag for every prefix of their rule).
func TestGuidePolicyAppliesUnmodified(t *testing.T) {
	srv := localregtest.Start(t)
	reg, _ := registry.NewResolver(nil, registry.Options{}).Registry(srv.Host)
	repo, _ := registry.RepositoryRef(reg, "game-server")
	ctx := context.Background()
	push := func(seed string, age time.Duration, tags ...string) {
		img, _ := sample.Image(sample.ImageSpec{Seed: seed, Created: now.Add(-age)})
		for _, tag := range tags {
			if err := sample.Push(ctx, repo.Tag(tag), img, reg.Remote()...); err != nil {
				t.Fatal(err)
			}
		}
	}
	for i := 0; i < 12; i++ { // rule 1 keeps the 10 newest prod+v releases
		push(fmt.Sprint("release", i), time.Duration(i+1)*24*time.Hour, fmt.Sprintf("prod-%d", i), fmt.Sprintf("v1.%d", i))
	}
	for i := 0; i < 7; i++ { // rule 2 keeps 5 staging+stage images
		push(fmt.Sprint("staging", i), time.Duration(i+1)*time.Hour, fmt.Sprintf("staging-%d", i), fmt.Sprintf("stage-%d", i))
	}
	for i := 0; i < 4; i++ { // rule 4 keeps 3 dev+feature images
		push(fmt.Sprint("dev", i), time.Duration(i+1)*time.Minute, fmt.Sprintf("dev-%d", i), fmt.Sprintf("feature-%d", i))
	}
	raw := mustRead(t, "../../testdata/lifecycle/ecr-lifecycle-policy.json")
	p, err := lifecycle.Parse(raw)
	if err != nil {
		t.Fatal(err)
	}
	images, _ := reg.Images(ctx, "game-server")
	plan := lifecycle.BuildPlan(p, reg.Name(), "game-server", images, lifecycle.AgeAuto, now)
	if plan.Summary.Expire != 2+2+1 {
		t.Fatalf("expire %d, want 5: %+v", plan.Summary.Expire, plan.Summary)
	}
	if err := lifecycle.Apply(ctx, reg, plan, 4, nil).Err(); err != nil {
		t.Fatal(err)
	}
	tags, _ := reg.Tags(ctx, "game-server")
	gone := map[string]bool{}
	for _, tg := range []string{"prod-10", "prod-11", "staging-5", "staging-6", "dev-3"} {
		gone[tg] = true
	}
	for _, tg := range tags {
		if gone[tg] {
			t.Errorf("%s should have expired", tg)
		}
	}
	if len(tags) != 2*(12+7+4)-2*5 {
		t.Errorf("%d tags left: %v", len(tags), tags)
	}
}
