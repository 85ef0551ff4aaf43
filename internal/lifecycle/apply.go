package lifecycle

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"sync"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/remote/transport"
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
}

// DeleteFailure is one manifest that could not be deleted; the rest of its group was left alone.
type DeleteFailure struct {
	Digest  string   `json:"digest"`
	Error   string   `json:"error"`
	Skipped []string `json:"skipped,omitempty"` // the group's later entries, kept because this one failed
}

// Apply deletes a plan's groups with up to jobs groups at a time. Within a group the order is kept
// and a failure stops the group, so nothing that belongs to a surviving image is deleted.
func Apply(ctx context.Context, reg registry.Registry, plan *RepoPlan, jobs int, log *slog.Logger) *ApplyResult {
	if jobs <= 0 {
		jobs = 4
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	res := &ApplyResult{Registry: plan.Registry, Repository: plan.Repository, Deleted: []string{}, AlreadyGone: []string{}, Failed: []DeleteFailure{}}
	var mu sync.Mutex
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(jobs)
	for _, group := range plan.Deletes {
		g.Go(func() error {
			for i, d := range group {
				h, err := v1.NewHash(d)
				if err == nil {
					err = reg.DeleteImage(gctx, plan.Repository, h)
				}
				mu.Lock()
				switch {
				case err == nil:
					res.Deleted = append(res.Deleted, d)
					log.Info("deleted", "repository", plan.Repository, "digest", d)
				case isNotFound(err):
					res.AlreadyGone = append(res.AlreadyGone, d)
				default:
					res.Failed = append(res.Failed, DeleteFailure{Digest: d, Error: err.Error(), Skipped: group[i+1:]})
					log.Warn("delete failed; the rest of its group is kept", "repository", plan.Repository, "digest", d, "error", err)
					mu.Unlock()
					return nil
				}
				mu.Unlock()
			}
			return nil
		})
	}
	_ = g.Wait() // groups report their own failures
	return res
}

func isNotFound(err error) bool {
	var terr *transport.Error
	if errors.As(err, &terr) {
		if terr.StatusCode == http.StatusNotFound {
			return true
		}
		for _, d := range terr.Errors {
			if d.Code == transport.ManifestUnknownErrorCode {
				return true
			}
		}
	}
	return false
}

// Err summarises failures as one error (nil when everything was deleted).
func (r *ApplyResult) Err() error {
	if len(r.Failed) == 0 {
		return nil
	}
	return fmt.Errorf("%s: %d of %d deletes failed (first: %s: %s)", r.Repository, len(r.Failed),
		len(r.Failed)+len(r.Deleted)+len(r.AlreadyGone), r.Failed[0].Digest, r.Failed[0].Error)
}
