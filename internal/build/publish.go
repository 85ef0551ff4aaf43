package build

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"strings"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/remote"
)

// Report is what `build-push --report` writes for CI.
type Report struct {
	Repository string            `json:"repository"`
	Digest     string            `json:"digest"`
	Tags       []string          `json:"tags"`
	Published  []string          `json:"published"` // full references actually tagged
	Platforms  []string          `json:"platforms"`
	Builder    string            `json:"builder"`
	BuilderWhy string            `json:"builderReason"`
	Git        Git               `json:"git"`
	Version    string            `json:"version"`
	Labels     map[string]string `json:"labels"`
	Commands   []string          `json:"commands"`
	Scan       any               `json:"scan,omitempty"`
	Signature  any               `json:"signature,omitempty"`
	DryRun     bool              `json:"dryRun"`
}

// Hooks run between the push by digest and the tags: a failing hook publishes nothing.
type Hooks struct {
	Scan func(ctx context.Context, digestRef string) (summary any, err error)
	Sign func(ctx context.Context, digestRef string) (summary any, err error)
}

// Run builds, pushes by digest, runs the hooks, and only then tags. remoteOpts carry regctl's auth
// and transport for the push and the tags.
func Run(ctx context.Context, r Runner, o *Options, remoteOpts []remote.Option, hooks Hooks, rep *Report) error {
	for _, c := range o.Commands() {
		rep.Commands = append(rep.Commands, c.String())
	}
	defer func() {
		for _, c := range o.Cleanup() {
			_, _ = r.Run(context.WithoutCancel(ctx), c)
		}
	}()
	for _, c := range o.Commands() {
		if _, err := r.Run(ctx, c); err != nil {
			return fmt.Errorf("build failed (nothing was published): %w", err)
		}
	}
	remoteOpts = append(remoteOpts, remote.WithContext(ctx))
	var digest v1.Hash
	switch o.Builder {
	case BuilderBuildx:
		d, err := buildxDigest(o.MetadataFile())
		if err != nil {
			return err
		}
		digest = d
	default:
		d, err := pushLayout(o, remoteOpts)
		if err != nil {
			return err
		}
		digest = d
	}
	rep.Digest = digest.String()
	digestRef := o.Repo.Digest(digest.String()).String()
	if hooks.Scan != nil {
		s, err := hooks.Scan(ctx, digestRef)
		rep.Scan = s
		if err != nil {
			return fmt.Errorf("%s was pushed by digest but not tagged: %w", digestRef, err)
		}
	}
	if hooks.Sign != nil {
		s, err := hooks.Sign(ctx, digestRef)
		rep.Signature = s
		if err != nil {
			return fmt.Errorf("%s was pushed by digest but not tagged: signing failed: %w", digestRef, err)
		}
	}
	desc, err := remote.Get(o.Repo.Digest(digest.String()), remoteOpts...)
	if err != nil {
		return err
	}
	for _, t := range o.Tags {
		if err := remote.Tag(o.Repo.Tag(t), desc, remoteOpts...); err != nil {
			return fmt.Errorf("tagging %s: %w", o.Repo.Tag(t), err)
		}
		rep.Published = append(rep.Published, o.Repo.Tag(t).String())
	}
	return nil
}

// pushLayout pushes the image or index buildah exported, by digest, with regctl's credentials.
func pushLayout(o *Options, remoteOpts []remote.Option) (v1.Hash, error) {
	p, err := layout.FromPath(o.LayoutDir())
	if err != nil {
		return v1.Hash{}, fmt.Errorf("reading the build's OCI layout: %w", err)
	}
	idx, err := p.ImageIndex()
	if err != nil {
		return v1.Hash{}, err
	}
	im, err := idx.IndexManifest()
	if err != nil {
		return v1.Hash{}, err
	}
	if len(im.Manifests) != 1 {
		return v1.Hash{}, fmt.Errorf("the build's OCI layout holds %d manifests, want 1", len(im.Manifests))
	}
	d := im.Manifests[0]
	ref := o.Repo.Digest(d.Digest.String())
	if d.MediaType.IsIndex() {
		child, err := idx.ImageIndex(d.Digest)
		if err != nil {
			return v1.Hash{}, err
		}
		return d.Digest, remote.WriteIndex(ref, child, remoteOpts...)
	}
	img, err := idx.Image(d.Digest)
	if err != nil {
		return v1.Hash{}, err
	}
	return d.Digest, remote.Write(ref, img, remoteOpts...)
}

func buildxDigest(file string) (v1.Hash, error) {
	raw, err := os.ReadFile(file)
	if err != nil {
		return v1.Hash{}, fmt.Errorf("reading buildx's metadata file: %w", err)
	}
	var meta map[string]any
	if err := json.Unmarshal(raw, &meta); err != nil {
		return v1.Hash{}, fmt.Errorf("buildx metadata %s: %w", file, err)
	}
	d, _ := meta["containerimage.digest"].(string)
	if !strings.HasPrefix(d, "sha256:") {
		return v1.Hash{}, errors.New("buildx metadata has no containerimage.digest")
	}
	return v1.NewHash(d)
}
