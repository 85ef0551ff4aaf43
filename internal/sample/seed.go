package sample

import (
	"context"
	"fmt"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/remote"
)

// Pushed is one manifest Seed pushed.
type Pushed struct {
	Reference string  `json:"reference"`
	Digest    v1.Hash `json:"digest"`
	What      string  `json:"what"`
}

// Seed pushes the demo set into repo: three release tags with distinct ages, a staging tag, a dev tag,
// a two-platform index tagged latest with a cosign-style signature, and one manifest pushed by digest
// only (untagged). Digests depend only on now's date, so a re-run on the same day pushes nothing new.
func Seed(ctx context.Context, repo name.Repository, now time.Time, opts ...remote.Option) ([]Pushed, error) {
	// Ages count from the start of now's UTC day, so a re-run on the same day yields the same digests.
	now = now.UTC().Truncate(24 * time.Hour)
	var out []Pushed
	push := func(tagOrDigest string, item remote.Taggable, what string) (v1.Hash, error) {
		d, err := item.(interface{ Digest() (v1.Hash, error) }).Digest()
		if err != nil {
			return v1.Hash{}, err
		}
		var ref name.Reference = repo.Digest(d.String())
		if tagOrDigest != "" {
			ref = repo.Tag(tagOrDigest)
		}
		if err := Push(ctx, ref, item, opts...); err != nil {
			return v1.Hash{}, fmt.Errorf("pushing %s: %w", ref, err)
		}
		out = append(out, Pushed{Reference: ref.String(), Digest: d, What: what})
		return d, nil
	}
	day := 24 * time.Hour
	for i, age := range []int{30, 20, 10} {
		img, err := Image(ImageSpec{Seed: fmt.Sprintf("release-%d", i), Created: now.Add(-time.Duration(age) * day)})
		if err != nil {
			return nil, err
		}
		if _, err := push(fmt.Sprintf("v1.0.%d", i), img, fmt.Sprintf("image built %d days ago", age)); err != nil {
			return nil, err
		}
	}
	for _, t := range []struct {
		tag string
		age int
	}{{"staging", 3}, {"dev-3f2a9c1", 2}} {
		img, err := Image(ImageSpec{Seed: t.tag, Created: now.Add(-time.Duration(t.age) * day)})
		if err != nil {
			return nil, err
		}
		if _, err := push(t.tag, img, fmt.Sprintf("image built %d days ago", t.age)); err != nil {
			return nil, err
		}
	}
	idx, err := Index("multiarch", now.Add(-2*day), "linux/amd64", "linux/arm64")
	if err != nil {
		return nil, err
	}
	idxDigest, err := push("latest", idx, "two-platform index (linux/amd64, linux/arm64)")
	if err != nil {
		return nil, err
	}
	sig, err := CosignSignature(repo, idxDigest)
	if err != nil {
		return nil, err
	}
	if _, err := push(SignatureTag(idxDigest), sig, "cosign-style signature of latest"); err != nil {
		return nil, err
	}
	orphan, err := Image(ImageSpec{Seed: "untagged", Created: now.Add(-40 * day)})
	if err != nil {
		return nil, err
	}
	if _, err := push("", orphan, "untagged image pushed by digest"); err != nil {
		return nil, err
	}
	return out, nil
}
