package localreg

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"

	"github.com/distribution/distribution/v3"
	"github.com/distribution/distribution/v3/registry/storage"
	"github.com/distribution/distribution/v3/registry/storage/driver"
	"github.com/distribution/distribution/v3/registry/storage/driver/factory"
	"github.com/distribution/reference"
	"github.com/opencontainers/go-digest"

	"github.com/regctl-dev/regctl/internal/exitcode"
)

// GCResult reports what garbage collection found (and, unless DryRun, removed).
type GCResult struct {
	Root            string   `json:"root"`
	DryRun          bool     `json:"dryRun"`
	Repositories    int      `json:"repositories"`
	Manifests       int      `json:"manifests"`
	BlobsBefore     int      `json:"blobsBefore"`
	BlobsRemovable  int      `json:"blobsRemovable"`
	BytesRemovable  int64    `json:"bytesRemovable"`
	BlobsAfter      int      `json:"blobsAfter"`
	RemovableDigest []string `json:"removableDigests,omitempty"`
}

// GC runs mark-and-sweep over a registry's storage directory. The registry must not be serving from
// that directory at the same time (the library's collector is offline, like `registry garbage-collect`).
//
// Untagged manifests are never removed here: the library's --delete-untagged mode also removes the
// untagged platform manifests of multi-arch indexes. Manifests are removed by deleting them (lifecycle
// apply); gc then reclaims their blobs.
func GC(ctx context.Context, root string, dryRun bool, logOut io.Writer, logLevel string) (*GCResult, error) {
	if _, err := os.Stat(filepath.Join(root, "docker", "registry", "v2")); err != nil {
		return nil, exitcode.With(exitcode.NotFound, fmt.Errorf("--root %s: no registry storage here (want docker/registry/v2 below it): %w", root, err))
	}
	// The storage driver logs every blob it deletes through logrus; keep that off stdout and quiet.
	setLogging(Options{Log: logOut, LogLevel: logLevel})
	drv, err := factory.Create(ctx, "filesystem", map[string]any{"rootdirectory": root})
	if err != nil {
		return nil, err
	}
	ns, err := storage.NewRegistry(ctx, drv)
	if err != nil {
		return nil, err
	}
	res := &GCResult{Root: root, DryRun: dryRun}
	marked, err := mark(ctx, ns, res)
	if err != nil {
		return nil, err
	}
	all, sizes, err := blobs(ctx, ns)
	if err != nil {
		return nil, err
	}
	res.BlobsBefore = len(all)
	for _, d := range all {
		if !marked[d] {
			res.BlobsRemovable++
			res.BytesRemovable += sizes[d]
			res.RemovableDigest = append(res.RemovableDigest, d.String())
		}
	}
	sort.Strings(res.RemovableDigest)
	if dryRun {
		res.BlobsAfter = res.BlobsBefore
		return res, nil
	}
	if err := storage.MarkAndSweep(ctx, drv, ns, storage.GCOpts{Quiet: true}); err != nil {
		return nil, fmt.Errorf("garbage collection: %w", err)
	}
	after, _, err := blobs(ctx, ns)
	if err != nil {
		return nil, err
	}
	res.BlobsAfter = len(after)
	return res, nil
}

// mark collects every blob a stored manifest references (manifests themselves included), as the
// library's collector does in its mark phase; it exists to report before sweeping.
func mark(ctx context.Context, ns distribution.Namespace, res *GCResult) (map[digest.Digest]bool, error) {
	marked := map[digest.Digest]bool{}
	enum, ok := ns.(distribution.RepositoryEnumerator)
	if !ok {
		return nil, errors.New("storage cannot enumerate repositories")
	}
	err := enum.Enumerate(ctx, func(repoName string) error {
		res.Repositories++
		named, err := reference.WithName(repoName)
		if err != nil {
			return err
		}
		repo, err := ns.Repository(ctx, named)
		if err != nil {
			return err
		}
		ms, err := repo.Manifests(ctx)
		if err != nil {
			return err
		}
		me, ok := ms.(distribution.ManifestEnumerator)
		if !ok {
			return errors.New("storage cannot enumerate manifests")
		}
		err = me.Enumerate(ctx, func(d digest.Digest) error {
			res.Manifests++
			marked[d] = true
			m, err := ms.Get(ctx, d)
			if err != nil {
				return err
			}
			for _, ref := range m.References() {
				marked[ref.Digest] = true
			}
			return nil
		})
		var pnf driver.PathNotFoundError
		if errors.As(err, &pnf) {
			return nil // a repository with no manifests left
		}
		return err
	})
	return marked, err
}

func blobs(ctx context.Context, ns distribution.Namespace) ([]digest.Digest, map[digest.Digest]int64, error) {
	var all []digest.Digest
	sizes := map[digest.Digest]int64{}
	err := ns.Blobs().Enumerate(ctx, func(d digest.Digest) error {
		all = append(all, d)
		if desc, err := ns.BlobStatter().Stat(ctx, d); err == nil {
			sizes[d] = desc.Size
		}
		return nil
	})
	var pnf driver.PathNotFoundError
	if errors.As(err, &pnf) {
		err = nil // empty registry
	}
	return all, sizes, err
}
