package lifecycle_test

import (
	"context"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/regctl-dev/regctl/internal/lifecycle"
	"github.com/regctl-dev/regctl/internal/localreg/localregtest"
	"github.com/regctl-dev/regctl/internal/registry"
	"github.com/regctl-dev/regctl/internal/sample"
)

// BenchmarkPreview2000Tags lists and plans a repository with 2,000 tags on the real distribution
// registry: 1,500 images, 500 of them with a second tag. It reports the requests one preview makes and
// fails if any manifest or config is fetched twice.
func BenchmarkPreview2000Tags(b *testing.B) {
	srv := localregtest.Start(b)
	reg, _ := registry.NewResolver(nil, registry.Options{}).Registry(srv.Host)
	repo, _ := registry.RepositoryRef(reg, "big")
	ctx := context.Background()
	for i := 0; i < 1500; i++ {
		img, _ := sample.Image(sample.ImageSpec{Seed: fmt.Sprint(i), Created: now.Add(-time.Duration(i) * time.Hour)})
		if err := sample.Push(ctx, repo.Tag(fmt.Sprintf("v%04d", i)), img, reg.Remote()...); err != nil {
			b.Fatal(err)
		}
		if i%3 == 0 {
			if err := sample.Push(ctx, repo.Tag(fmt.Sprintf("build-%04d", i)), img, reg.Remote()...); err != nil {
				b.Fatal(err)
			}
		}
	}
	raw, err := os.ReadFile("../../testdata/lifecycle/ecr-lifecycle-policy.json")
	if err != nil {
		b.Fatal(err)
	}
	policy, err := lifecycle.Parse(raw)
	if err != nil {
		b.Fatal(err)
	}
	srv.Requests()
	b.ResetTimer()
	var manifestGets, configGets, heads, listCalls int
	for n := 0; n < b.N; n++ {
		// A fresh registry handle per run: nothing cached between previews.
		fresh, _ := registry.NewResolver(nil, registry.Options{}).Registry(srv.Host)
		images, err := fresh.Images(ctx, "big")
		if err != nil {
			b.Fatal(err)
		}
		plan := lifecycle.BuildPlan(policy, fresh.Name(), "big", images, lifecycle.AgeAuto, now)
		if plan.Summary.Images != 1500 {
			b.Fatalf("images = %d", plan.Summary.Images)
		}
		seen := map[string]bool{}
		for _, r := range srv.Requests() {
			switch {
			case strings.HasPrefix(r, "GET ") && strings.Contains(r, "/manifests/"):
				manifestGets++
			case strings.HasPrefix(r, "GET ") && strings.Contains(r, "/blobs/"):
				configGets++
			case strings.HasPrefix(r, "HEAD "):
				heads++
				continue
			case strings.Contains(r, "/tags/list"):
				listCalls++
				continue
			default:
				continue
			}
			if seen[r] {
				b.Fatalf("fetched twice in one preview: %s", r)
			}
			seen[r] = true
		}
	}
	b.ReportMetric(float64(manifestGets)/float64(b.N), "manifest-GETs/op")
	b.ReportMetric(float64(configGets)/float64(b.N), "config-GETs/op")
	b.ReportMetric(float64(heads)/float64(b.N), "tag-HEADs/op")
	b.ReportMetric(float64(listCalls)/float64(b.N), "tag-list-pages/op")
}
