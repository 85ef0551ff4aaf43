package ecrtest

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awsconfig "github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/service/ecr"
	"github.com/aws/aws-sdk-go-v2/service/ecr/types"
	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/remote"

	"github.com/regctl-dev/regctl/internal/sample"
)

func sdkClient(t *testing.T, s *Server) *ecr.Client {
	t.Helper()
	cfg, err := awsconfig.LoadDefaultConfig(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return ecr.NewFromConfig(cfg, func(o *ecr.Options) { o.BaseEndpoint = aws.String(s.URL) })
}

// The lifecycle operations through the real SDK: what is stored, what is refused, and the preview.
func TestLifecycleOperations(t *testing.T) {
	s := Start(t)
	// Every push a second later than the one before, so no two images share a push time.
	var mu sync.Mutex
	clock := vNow.Add(-48 * time.Hour)
	s.Now = func() time.Time { mu.Lock(); defer mu.Unlock(); clock = clock.Add(time.Second); return clock }
	c := sdkClient(t, s)
	ctx := context.Background()
	repo := aws.String("multi")
	if _, err := c.CreateRepository(ctx, &ecr.CreateRepositoryInput{RepositoryName: repo}); err != nil {
		t.Fatal(err)
	}

	// A preview needs a policy: given, or the stored one.
	var notFound *types.LifecyclePolicyNotFoundException
	if _, err := c.StartLifecyclePolicyPreview(ctx, &ecr.StartLifecyclePolicyPreviewInput{RepositoryName: repo}); !errors.As(err, &notFound) {
		t.Errorf("preview without any policy: %v", err)
	}

	// Stored compact, rules by priority, each as written.
	pretty := `{
    "rules": [
        {
            "rulePriority": 2,
            "description": "keep the newest untagged image",
            "selection": {"tagStatus": "untagged", "countType": "imageCountMoreThan", "countNumber": 1},
            "action": {"type": "expire"}
        },
        {
            "rulePriority": 1,
            "description": "keep five releases",
            "selection": {"tagStatus": "tagged", "tagPatternList": ["v1.*"], "storageClass": "standard", "countType": "imageCountMoreThan", "countNumber": 5},
            "action": {"type": "expire"}
        }
    ]
}`
	stored := `{"rules":[{"rulePriority":1,"description":"keep five releases","selection":{"tagStatus":"tagged","tagPatternList":["v1.*"],"storageClass":"standard","countType":"imageCountMoreThan","countNumber":5},"action":{"type":"expire"}},` +
		`{"rulePriority":2,"description":"keep the newest untagged image","selection":{"tagStatus":"untagged","countType":"imageCountMoreThan","countNumber":1},"action":{"type":"expire"}}]}`
	put, err := c.PutLifecyclePolicy(ctx, &ecr.PutLifecyclePolicyInput{RepositoryName: repo, LifecyclePolicyText: aws.String(pretty)})
	if err != nil || aws.ToString(put.LifecyclePolicyText) != stored {
		t.Fatalf("put: %v %s", err, aws.ToString(put.LifecyclePolicyText))
	}
	got, err := c.GetLifecyclePolicy(ctx, &ecr.GetLifecyclePolicyInput{RepositoryName: repo})
	if err != nil || aws.ToString(got.LifecyclePolicyText) != stored {
		t.Errorf("get: %v %s", err, aws.ToString(got.LifecyclePolicyText))
	}

	// Refused, and the stored policy stays.
	var invalid *types.InvalidParameterException
	bad := strings.Replace(pretty, `"type": "expire"}
        },`, `"type": "expire", "targetStorageClass": null}
        },`, 1)
	_, err = c.PutLifecyclePolicy(ctx, &ecr.PutLifecyclePolicyInput{RepositoryName: repo, LifecyclePolicyText: aws.String(bad)})
	if !errors.As(err, &invalid) || !strings.Contains(err.Error(), "Lifecycle policy validation failure: instance failed to match exactly one schema (matched 0 out of 2)") {
		t.Errorf("null targetStorageClass: %v", err)
	}
	_, err = c.StartLifecyclePolicyPreview(ctx, &ecr.StartLifecyclePolicyPreviewInput{RepositoryName: repo, LifecyclePolicyText: aws.String(bad)})
	if !errors.As(err, &invalid) {
		t.Errorf("preview of an invalid policy: %v", err)
	}
	if got, _ := c.GetLifecyclePolicy(ctx, &ecr.GetLifecyclePolicyInput{RepositoryName: repo}); aws.ToString(got.LifecyclePolicyText) != stored {
		t.Errorf("after a refused put: %s", aws.ToString(got.LifecyclePolicyText))
	}

	// The preview of the stored policy over the sample repository: three releases (kept by rule
	// 1, within its count), and three untagged manifests (the index's two platform images and one
	// pushed by digest), of which rule 2 keeps the newest. The platform images are not protected
	// in the preview (aws/containers-roadmap#2613).
	ref, err := name.NewRepository(s.Host + "/multi")
	if err != nil {
		t.Fatal(err)
	}
	pushed, err := sample.Seed(ctx, ref, vNow, remote.WithAuth(&authn.Basic{Username: "AWS", Password: s.token}), remote.WithTransport(insecureTransport()))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.StartLifecyclePolicyPreview(ctx, &ecr.StartLifecyclePolicyPreviewInput{RepositoryName: repo}); err != nil {
		t.Fatal(err)
	}
	in := &ecr.GetLifecyclePolicyPreviewInput{RepositoryName: repo}
	var results []types.LifecyclePolicyPreviewResult
	var summary *types.LifecyclePolicyPreviewSummary
	for p := ecr.NewGetLifecyclePolicyPreviewPaginator(c, in); p.HasMorePages(); {
		page, err := p.NextPage(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if page.Status != types.LifecyclePolicyPreviewStatusComplete {
			t.Errorf("status %s", page.Status)
		}
		results, summary = append(results, page.PreviewResults...), page.Summary
	}
	platforms := map[string]bool{}
	imgs, err := s.images("multi")
	if err != nil {
		t.Fatal(err)
	}
	for _, im := range imgs {
		if len(im.tags) == 0 && !strings.Contains(im.mediaType, "index") && !strings.Contains(im.mediaType, "list") {
			platforms[im.digest] = true
		}
	}
	var byDigest string
	for _, p := range pushed {
		if p.What == "untagged image pushed by digest" {
			byDigest = p.Digest.String()
			delete(platforms, byDigest)
		}
	}
	if len(results) != 2 || summary == nil || aws.ToInt32(summary.ExpiringImageTotalCount) != 2 || len(platforms) != 2 {
		t.Fatalf("%d results, summary %+v, %d platform images", len(results), summary, len(platforms))
	}
	children := 0
	for _, r := range results {
		d := aws.ToString(r.ImageDigest)
		if len(r.ImageTags) != 0 || aws.ToInt32(r.AppliedRulePriority) != 2 || r.Action == nil || r.Action.Type != types.ImageActionTypeExpire ||
			r.StorageClass != types.LifecyclePolicyStorageClassStandard || r.ImagePushedAt == nil {
			t.Errorf("result %+v", r)
		}
		if platforms[d] {
			children++
		} else if d != byDigest {
			t.Errorf("%s is neither a platform image nor the untagged image", d)
		}
	}
	if children == 0 {
		t.Error("no platform image of the index in the preview")
	}

	// A transition is reported with its target and counted apart.
	archive := `{"rules":[{"rulePriority":1,"description":"archive what was pushed before the last day","selection":{"tagStatus":"any","countType":"sinceImagePushed","countUnit":"days","countNumber":1},"action":{"type":"transition","targetStorageClass":"archive"}}]}`
	s.Now = func() time.Time { return vNow.Add(3 * 24 * time.Hour) }
	if _, err := c.StartLifecyclePolicyPreview(ctx, &ecr.StartLifecyclePolicyPreviewInput{RepositoryName: repo, LifecyclePolicyText: aws.String(archive)}); err != nil {
		t.Fatal(err)
	}
	n := 0
	for p := ecr.NewGetLifecyclePolicyPreviewPaginator(c, in); p.HasMorePages(); {
		page, err := p.NextPage(ctx)
		if err != nil {
			t.Fatal(err)
		}
		for _, r := range page.PreviewResults {
			if r.Action == nil || r.Action.Type != types.ImageActionTypeTransition || r.Action.TargetStorageClass != types.LifecyclePolicyTargetStorageClassArchive {
				t.Errorf("result %+v", r)
			}
			n++
		}
		if s := page.Summary; s == nil || aws.ToInt32(s.ExpiringImageTotalCount) != 0 || len(s.TransitioningImageTotalCounts) != 1 ||
			int(aws.ToInt32(s.TransitioningImageTotalCounts[0].ImageTotalCount)) != len(imgs) {
			t.Errorf("summary %+v", s)
		}
	}
	if n != len(imgs) {
		t.Errorf("%d of %d images transition", n, len(imgs))
	}
}
