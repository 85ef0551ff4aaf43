package lifecycle_test

import (
	"context"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/remote"

	"github.com/regctl-dev/regctl/internal/lifecycle"
	"github.com/regctl-dev/regctl/internal/localreg/localregtest"
	"github.com/regctl-dev/regctl/internal/registry"
	"github.com/regctl-dev/regctl/internal/sample"
)

var now = time.Date(2026, 6, 30, 12, 0, 0, 0, time.UTC)

func daysAgo(n int) time.Time { return now.Add(-time.Duration(n) * 24 * time.Hour) }

// fixture is a repository on the real distribution registry with controlled ages:
//
//	v1 (40d), v2 (30d), v3 (20d), v4 (10d)     release images; v2 is signed (.sig tag)
//	multi (25d)                                 two-platform index, signed; its amd64 child is also tagged amd64-pinned
//	old-multi (50d)                             two-platform index, expired with its children and signature
//	orphan signature                            a .sig tag whose subject is not in the repository
//	untagged by digest (60d)                    unreachable: outside the plan
type fixture struct {
	reg     registry.Registry
	repo    name.Repository
	digests map[string]v1.Hash
}

func newFixture(t *testing.T) *fixture {
	t.Helper()
	srv := localregtest.Start(t)
	reg, err := registry.NewResolver(nil, registry.Options{}).Registry(srv.Host)
	if err != nil {
		t.Fatal(err)
	}
	repo, _ := registry.RepositoryRef(reg, "game-server")
	fx := &fixture{reg: reg, repo: repo, digests: map[string]v1.Hash{}}
	ctx := context.Background()
	push := func(ref name.Reference, item remote.Taggable) v1.Hash {
		t.Helper()
		if err := sample.Push(ctx, ref, item, reg.Remote()...); err != nil {
			t.Fatal(err)
		}
		d, _ := item.(interface{ Digest() (v1.Hash, error) }).Digest()
		return d
	}
	for i, age := range []int{40, 30, 20, 10} {
		tag := "v" + string(rune('1'+i))
		img, _ := sample.Image(sample.ImageSpec{Seed: tag, Created: daysAgo(age)})
		fx.digests[tag] = push(repo.Tag(tag), img)
	}
	sig, _ := sample.CosignSignature(repo, fx.digests["v2"])
	fx.digests["v2.sig"] = push(repo.Tag(sample.SignatureTag(fx.digests["v2"])), sig)

	for _, m := range []struct {
		tag string
		age int
	}{{"multi", 25}, {"old-multi", 50}} {
		idx, _ := sample.Index(m.tag, daysAgo(m.age), "linux/amd64", "linux/arm64")
		d := push(repo.Tag(m.tag), idx)
		fx.digests[m.tag] = d
		im, _ := idx.IndexManifest()
		for _, c := range im.Manifests {
			fx.digests[m.tag+"/"+c.Platform.Architecture] = c.Digest
		}
		s, _ := sample.CosignSignature(repo, d)
		fx.digests[m.tag+".sig"] = push(repo.Tag(sample.SignatureTag(d)), s)
	}
	// Tag the amd64 platform of "multi" on its own: it is an image and a child at once.
	amd, _ := remote.Get(repo.Digest(fx.digests["multi/amd64"].String()), reg.Remote()...)
	if err := remote.Tag(repo.Tag("amd64-pinned"), amd, reg.Remote()...); err != nil {
		t.Fatal(err)
	}
	missing := v1.Hash{Algorithm: "sha256", Hex: strings.Repeat("e", 64)}
	orphan, _ := sample.CosignSignature(repo, missing)
	fx.digests["orphan.sig"] = push(repo.Tag(sample.SignatureTag(missing)), orphan)
	unreach, _ := sample.Image(sample.ImageSpec{Seed: "unreachable", Created: daysAgo(60)})
	ud, _ := unreach.Digest()
	fx.digests["unreachable"] = push(repo.Digest(ud.String()), unreach)
	return fx
}

// remaining lists the tags and the reachable digests left in the repository.
func (fx *fixture) remaining(t *testing.T) (tags []string, digests map[v1.Hash]bool) {
	t.Helper()
	images, err := fx.reg.Images(context.Background(), "game-server")
	if err != nil {
		t.Fatal(err)
	}
	digests = map[v1.Hash]bool{}
	for _, img := range images {
		tags = append(tags, img.Tags...)
		digests[img.Digest] = true
	}
	sort.Strings(tags)
	return tags, digests
}

func (fx *fixture) plan(t *testing.T, policy string, age lifecycle.AgeSource) *lifecycle.RepoPlan {
	t.Helper()
	p, err := lifecycle.Parse([]byte(policy))
	if err != nil {
		t.Fatal(err)
	}
	images, err := fx.reg.Images(context.Background(), "game-server")
	if err != nil {
		t.Fatal(err)
	}
	return lifecycle.BuildPlan(p, fx.reg.Name(), "game-server", images, age, now)
}

const pad = `, "description": "padding so the policy text is over ECR's 100-character minimum"`

func TestApplyOnRealRegistryKeepsTheGraphConsistent(t *testing.T) {
	fx := newFixture(t)
	// Keep the 2 newest v* releases; expire anything else older than 24 days.
	policy := `{"rules":[
	  {"rulePriority":1` + pad + `,"selection":{"tagStatus":"tagged","tagPrefixList":["v"],"countType":"imageCountMoreThan","countNumber":2},"action":{"type":"expire"}},
	  {"rulePriority":2,"selection":{"tagStatus":"any","countType":"sinceImagePushed","countUnit":"days","countNumber":24},"action":{"type":"expire"}}]}`
	plan := fx.plan(t, policy, lifecycle.AgeAuto)

	// Images: v1..v4, multi, old-multi, amd64-pinned (a tagged child) = 7. Signatures, untagged
	// platforms and the orphan signature are not images.
	if plan.Summary.Images != 7 {
		t.Fatalf("images = %d, want 7: %+v", plan.Summary.Images, plan.Items)
	}
	// Expired: v1, v2 (rule 1); old-multi (50d), multi (25d) and amd64-pinned (25d) by rule 2. The
	// index that references amd64-pinned goes too, so nothing protects it.
	want := map[string]string{
		"v1": "expire", "v2": "expire", "v3": "keep", "v4": "keep",
		"multi": "expire", "old-multi": "expire", "amd64-pinned": "expire",
	}
	for _, it := range plan.Items {
		for _, tag := range it.Tags {
			if w, ok := want[tag]; ok && it.Action != w {
				t.Errorf("%s: action %s (%s), want %s", tag, it.Action, it.Reason, w)
			}
		}
	}
	if plan.Summary.Expire != 5 || plan.Summary.Manifests != 5+1+3+2 {
		// 5 images + v2.sig + old-multi's 2 platforms and sig + multi's arm64 platform and sig (amd64 is an image itself)
		t.Errorf("summary %+v", plan.Summary)
	}
	res := lifecycle.Apply(context.Background(), fx.reg, plan, 4, nil)
	if err := res.Err(); err != nil {
		t.Fatal(err)
	}
	tags, digests := fx.remaining(t)
	wantTags := []string{"sha256-" + strings.Repeat("e", 64) + ".sig", "v3", "v4"}
	if strings.Join(tags, ",") != strings.Join(wantTags, ",") {
		t.Errorf("remaining tags %v, want %v", tags, wantTags)
	}
	for _, gone := range []string{"v1", "v2", "v2.sig", "multi", "multi/amd64", "multi/arm64", "multi.sig", "old-multi", "old-multi/amd64", "old-multi/arm64", "old-multi.sig"} {
		if _, err := remote.Head(fx.repo.Digest(fx.digests[gone].String()), fx.reg.Remote()...); err == nil {
			t.Errorf("%s (%s) still in the registry", gone, fx.digests[gone])
		}
	}
	for _, kept := range []string{"v3", "v4", "orphan.sig", "unreachable"} {
		if _, err := remote.Head(fx.repo.Digest(fx.digests[kept].String()), fx.reg.Remote()...); err != nil {
			t.Errorf("%s was deleted: %v", kept, err)
		}
	}
	if len(digests) != 3 {
		t.Errorf("reachable digests left: %d, want 3", len(digests))
	}

	// Idempotent: the same policy again has nothing to do.
	again := fx.plan(t, policy, lifecycle.AgeAuto)
	if again.Summary.Expire != 0 || len(again.Deletes) != 0 {
		t.Errorf("second plan: %+v", again.Summary)
	}
}

func TestIndexProtectsItsPlatformsAndSignaturesGoOnlyWithTheirSubject(t *testing.T) {
	fx := newFixture(t)
	// Keep "multi" (matched by prefix "multi", count 1) but expire every other image older than 5 days:
	// amd64-pinned is 25 days old and its own tag matches rule 2, yet "multi" references it.
	policy := `{"rules":[
	  {"rulePriority":1` + pad + `,"selection":{"tagStatus":"tagged","tagPrefixList":["multi"],"countType":"imageCountMoreThan","countNumber":1},"action":{"type":"expire"}},
	  {"rulePriority":2,"selection":{"tagStatus":"any","countType":"sinceImagePushed","countUnit":"days","countNumber":5},"action":{"type":"expire"}}]}`
	plan := fx.plan(t, policy, lifecycle.AgeAuto)
	var pinned *lifecycle.PlanItem
	for i, it := range plan.Items {
		if len(it.Tags) == 1 && it.Tags[0] == "amd64-pinned" {
			pinned = &plan.Items[i]
		}
	}
	if pinned == nil || pinned.Action != "keep" || !strings.Contains(pinned.Protected, "referenced by index") {
		t.Fatalf("amd64-pinned must be protected by the kept index: %+v", pinned)
	}
	if plan.Summary.Protected != 1 {
		t.Errorf("protected = %d", plan.Summary.Protected)
	}
	res := lifecycle.Apply(context.Background(), fx.reg, plan, 2, nil)
	if err := res.Err(); err != nil {
		t.Fatal(err)
	}
	tags, _ := fx.remaining(t)
	want := []string{"amd64-pinned", "multi", sample.SignatureTag(fx.digests["multi"]), "sha256-" + strings.Repeat("e", 64) + ".sig"}
	sort.Strings(want)
	if strings.Join(tags, ",") != strings.Join(want, ",") {
		t.Errorf("remaining %v, want %v", tags, want)
	}
	// The kept index is complete: both platforms still pull.
	for _, p := range []string{"multi/amd64", "multi/arm64"} {
		if _, err := remote.Head(fx.repo.Digest(fx.digests[p].String()), fx.reg.Remote()...); err != nil {
			t.Errorf("%s of the kept index was deleted: %v", p, err)
		}
	}
}

func TestUnknownAgeIsKeptAndAgeSourceChoosesTheTime(t *testing.T) {
	srv := localregtest.Start(t)
	reg, _ := registry.NewResolver(nil, registry.Options{}).Registry(srv.Host)
	repo, _ := registry.RepositoryRef(reg, "app")
	ctx := context.Background()
	// created says 100 days, the annotation says 1 day; a third image records no time at all.
	both, _ := sample.Image(sample.ImageSpec{Seed: "both", Created: daysAgo(100),
		Annotations: map[string]string{registry.AnnotationCreated: daysAgo(1).Format(time.RFC3339)}})
	none, _ := sample.Image(sample.ImageSpec{Seed: "none"})
	for tag, img := range map[string]v1.Image{"both": both, "none": none} {
		if err := sample.Push(ctx, repo.Tag(tag), img, reg.Remote()...); err != nil {
			t.Fatal(err)
		}
	}
	images, _ := reg.Images(ctx, "app")
	p, _ := lifecycle.Parse([]byte(`{"rules":[{"rulePriority":1` + pad + `,"selection":{"tagStatus":"any","countType":"sinceImagePushed","countUnit":"days","countNumber":30},"action":{"type":"expire"}}]}`))
	actions := func(age lifecycle.AgeSource) map[string]lifecycle.PlanItem {
		out := map[string]lifecycle.PlanItem{}
		for _, it := range lifecycle.BuildPlan(p, reg.Name(), "app", images, age, now).Items {
			out[it.Tags[0]] = it
		}
		return out
	}
	created := actions(lifecycle.AgeCreated)
	if created["both"].Action != "expire" || created["both"].PushedAtSource != registry.SourceConfig {
		t.Errorf("age-source created: %+v", created["both"])
	}
	ann := actions(lifecycle.AgeAnnotation)
	if ann["both"].Action != "keep" || ann["both"].PushedAtSource != registry.SourceAnnotation {
		t.Errorf("age-source annotation: %+v", ann["both"])
	}
	for _, a := range []lifecycle.AgeSource{lifecycle.AgeAuto, lifecycle.AgeCreated, lifecycle.AgeAnnotation} {
		it := actions(a)["none"]
		if it.Action != "keep" || it.PushedAt != nil || !strings.Contains(it.Reason, "age unknown") {
			t.Errorf("%s: an image with no time must be kept and reported: %+v", a, it)
		}
	}
}

func TestSeedPolicyOnRegistry(t *testing.T) {
	fx := newFixture(t)
	raw := mustRead(t, "../../testdata/lifecycle/ecr-lifecycle-policy.json")
	if _, err := lifecycle.Parse(raw); err != nil {
		t.Fatalf("the guide's policy must validate unmodified: %v", err)
	}
	plan := fx.plan(t, string(raw), lifecycle.AgeAuto)
	// None of the fixture's images carries both a prod* and a v* tag (the lists are ANDed), and the
	// untagged rule sees no untagged image of its own: nothing expires.
	if plan.Summary.Expire != 0 || plan.Summary.Images != 7 {
		t.Errorf("summary %+v", plan.Summary)
	}
}
