package lifecycle

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sort"
	"sync"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"golang.org/x/sync/errgroup"

	"github.com/regctl-dev/regctl/internal/registry"
)

// ApplyResult reports what Apply did to one repository.
type ApplyResult struct {
	Registry    string          `json:"registry"`
	Repository  string          `json:"repository"`
	Deleted     []string        `json:"deleted"`
	AlreadyGone []string        `json:"alreadyGone"` // deleted by someone else since the plan was made
	Failed      []DeleteFailure `json:"failed"`
	// Skipped are deletes not done because the repository changed since the plan (a tag now points at
	// the image) or because what they waited for was not deleted.
	Skipped []Skip `json:"skipped"`
	errs    []error
}

// DeleteFailure is one manifest that could not be deleted; the rest of its group was left alone.
type DeleteFailure struct {
	Digest  string   `json:"digest"`
	Error   string   `json:"error"`
	Skipped []string `json:"skipped,omitempty"` // the group's later entries, kept because this one failed
}

// Skip is a delete Apply chose not to do, and why.
type Skip struct {
	Digests []string `json:"digests"`
	Reason  string   `json:"reason"`
}

// Apply deletes a plan's groups with up to jobs groups at a time. It first re-reads the repository's
// tags: a group whose manifests now carry a tag the plan did not show (a release promoted since the
// preview) is skipped, because deleting a digest deletes every tag on it. Within a group the order is
// kept and a failure stops the group; deferred deletes run last, only when all they wait for went.
func Apply(ctx context.Context, reg registry.Registry, plan *RepoPlan, jobs int, log *slog.Logger) *ApplyResult {
	if jobs <= 0 {
		jobs = 4
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	res := &ApplyResult{Registry: plan.Registry, Repository: plan.Repository, Deleted: []string{}, AlreadyGone: []string{},
		Failed: []DeleteFailure{}, Skipped: []Skip{}}
	if len(plan.Deletes) == 0 && len(plan.DeleteAfter) == 0 {
		return res
	}
	planned := map[string][]string{}
	for _, it := range plan.Items {
		planned[it.Digest] = it.Tags
	}
	current, err := currentTags(ctx, reg, plan.Repository, jobs)
	if err != nil {
		res.errs = append(res.errs, err)
		res.Failed = append(res.Failed, DeleteFailure{Digest: "(tags)", Error: "re-reading tags before deleting: " + err.Error()})
		return res
	}
	changed := func(digests []string) string {
		for _, d := range digests {
			for _, t := range current[d] {
				if !slices.Contains(planned[d], t) {
					return fmt.Sprintf("tag %q now points at %s (it did not when the plan was made)", t, d)
				}
			}
		}
		return ""
	}

	var mu sync.Mutex
	gone := map[string]bool{}
	del := func(ctx context.Context, d string) error {
		h, err := v1.NewHash(d)
		if err == nil {
			err = reg.DeleteImage(ctx, plan.Repository, h)
		}
		mu.Lock()
		defer mu.Unlock()
		switch {
		case err == nil:
			res.Deleted = append(res.Deleted, d)
			gone[d] = true
			log.Info("deleted", "repository", plan.Repository, "digest", d)
			return nil
		case registry.IsNotFound(err):
			res.AlreadyGone = append(res.AlreadyGone, d)
			gone[d] = true
			return nil
		}
		res.errs = append(res.errs, err)
		return err
	}
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(jobs)
	for _, group := range plan.Deletes {
		if why := changed(group); why != "" {
			res.Skipped = append(res.Skipped, Skip{Digests: group, Reason: why})
			continue
		}
		g.Go(func() error {
			for i, d := range group {
				if err := del(gctx, d); err != nil {
					mu.Lock()
					res.Failed = append(res.Failed, DeleteFailure{Digest: d, Error: err.Error(), Skipped: group[i+1:]})
					mu.Unlock()
					log.Warn("delete failed; the rest of its group is kept", "repository", plan.Repository, "digest", d, "error", err)
					return nil
				}
			}
			return nil
		})
	}
	_ = g.Wait() // groups report their own failures
	for _, dd := range plan.DeleteAfter {
		waiting := []string{}
		for _, a := range dd.After {
			if !gone[a] {
				waiting = append(waiting, a)
			}
		}
		switch {
		case len(waiting) > 0:
			res.Skipped = append(res.Skipped, Skip{Digests: []string{dd.Digest}, Reason: "still listed by " + fmt.Sprint(waiting) + ", which was not deleted"})
		case changed([]string{dd.Digest}) != "":
			res.Skipped = append(res.Skipped, Skip{Digests: []string{dd.Digest}, Reason: changed([]string{dd.Digest})})
		default:
			if err := del(ctx, dd.Digest); err != nil {
				res.Failed = append(res.Failed, DeleteFailure{Digest: dd.Digest, Error: err.Error()})
			}
		}
	}
	sort.Strings(res.Deleted)
	return res
}

// currentTags maps each digest to the tags pointing at it now.
func currentTags(ctx context.Context, reg registry.Registry, repo string, jobs int) (map[string][]string, error) {
	tags, err := reg.Tags(ctx, repo)
	if err != nil {
		if registry.IsNotFound(err) {
			return map[string][]string{}, nil
		}
		return nil, err
	}
	ref, err := registry.RepositoryRef(reg, repo)
	if err != nil {
		return nil, err
	}
	out := map[string][]string{}
	var mu sync.Mutex
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(jobs)
	for _, t := range tags {
		g.Go(func() error {
			d, err := remote.Head(ref.Tag(t), append(reg.Remote(), remote.WithContext(gctx))...)
			if err != nil {
				if registry.IsNotFound(err) {
					return nil
				}
				return err
			}
			mu.Lock()
			out[d.Digest.String()] = append(out[d.Digest.String()], t)
			mu.Unlock()
			return nil
		})
	}
	return out, g.Wait()
}

// Err summarises failures as one error (nil when nothing failed); it wraps the first underlying
// error, so an authorisation failure still exits 4.
func (r *ApplyResult) Err() error {
	if len(r.Failed) == 0 {
		return nil
	}
	msg := fmt.Sprintf("%s: %d deletes failed (first: %s)", r.Repository, len(r.Failed), r.Failed[0].Digest)
	if len(r.errs) > 0 {
		return fmt.Errorf("%s: %w", msg, r.errs[0])
	}
	return errors.New(msg + ": " + r.Failed[0].Error)
}
