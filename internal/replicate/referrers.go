package replicate

import (
	"context"
	"fmt"
	"sort"
	"strings"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/remote"
)

// copyReferrers copies the OCI 1.1 referrers (signatures, SBOMs, attestations pushed with a
// subject) of every selected manifest, and theirs in turn, where the source answers the referrers
// API. A source without it keeps referrers under sha256-<hex> fallback tags, which are copied as
// tags; go-containerregistry keeps the destination's fallback tag up to date when the destination
// has no referrers API either.
func (r *run) copyReferrers(ctx context.Context, p pair, srcRef, dstRef name.Repository, states []tagState) error {
	if r.o.DryRun || len(states) == 0 {
		return nil
	}
	asked := map[v1.Hash]bool{}
	var todo []v1.Hash
	for _, s := range states {
		if !asked[s.src.Digest] {
			asked[s.src.Digest] = true
			todo = append(todo, s.src.Digest)
		}
	}
	sort.Slice(todo, func(i, j int) bool { return todo[i].String() < todo[j].String() })
	for len(todo) > 0 {
		var next []v1.Hash
		for _, d := range todo {
			refs, supported, err := r.referrers(ctx, srcRef, d)
			if err != nil {
				return err
			}
			if !supported {
				return nil
			}
			for _, ref := range refs {
				if err := r.ensureManifest(ctx, p, srcRef, dstRef, ref); err != nil {
					return fmt.Errorf("referrer %s of %s: %w", ref, d, err)
				}
				if !asked[ref] {
					asked[ref] = true
					next = append(next, ref)
				}
			}
		}
		todo = next
	}
	return nil
}

// referrers asks the source's referrers API for d; supported is false (asked once per run) when
// the source has no such API.
func (r *run) referrers(ctx context.Context, srcRef name.Repository, d v1.Hash) ([]v1.Hash, bool, error) {
	if r.noReferrersAPI.Load() {
		return nil, false, nil
	}
	idx, err := remote.Referrers(srcRef.Digest(d.String()), remote.Reuse(r.srcRefs), remote.WithContext(ctx))
	if err != nil {
		if strings.Contains(err.Error(), "does not support the Referrers API") {
			r.noReferrersAPI.Store(true)
			return nil, false, nil
		}
		return nil, true, fmt.Errorf("listing referrers of %s@%s: %w", srcRef, d, err)
	}
	im, err := idx.IndexManifest()
	if err != nil {
		return nil, true, fmt.Errorf("listing referrers of %s@%s: %w", srcRef, d, err)
	}
	var out []v1.Hash
	for _, m := range im.Manifests {
		if m.Digest.Hex == "" {
			return nil, true, fmt.Errorf("listing referrers of %s@%s: an entry has no digest", srcRef, d)
		}
		out = append(out, m.Digest)
	}
	return out, true, nil
}
