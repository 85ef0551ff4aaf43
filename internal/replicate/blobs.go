package replicate

import (
	"context"
	"fmt"
	"io"
	"sync"
	"sync/atomic"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"

	"github.com/regctl-dev/regctl/internal/registry"
)

// blobTracker remembers, for each blob digest, the first destination repository this run put it
// in, so every other repository that needs it mounts it from there (one request, no bytes) instead
// of uploading it again. A copy in progress is waited for, not repeated: thirty repositories built
// on one base image send the base once.
type blobTracker struct {
	mu     sync.Mutex
	first  map[string]*blobEntry // digest → its first copy to the destination
	inRepo map[string]*blobEntry // "repo@digest" → its copy into that repository
}

type blobEntry struct {
	done chan struct{}
	repo string
	err  error
}

func (e *blobEntry) wait(ctx context.Context) error {
	select {
	case <-e.done:
		return e.err
	case <-ctx.Done():
		return context.Cause(ctx)
	}
}

// copyBlob puts one blob into the destination repository: mounted from another destination
// repository this run already put it in, else uploaded from the source, streamed (never held in
// memory). A blob already in a repository this run did not create costs one HEAD.
// Each blob goes into each repository once, however many of its manifests need it.
func (r *run) copyBlob(ctx context.Context, srcRef, dstRef name.Repository, b v1.Descriptor) error {
	key := b.Digest.String()
	repoKey := dstRef.RepositoryStr() + "@" + key
	r.blobs.mu.Lock()
	if r.blobs.first == nil {
		r.blobs.first, r.blobs.inRepo = map[string]*blobEntry{}, map[string]*blobEntry{}
	}
	if e, ok := r.blobs.inRepo[repoKey]; ok {
		r.blobs.mu.Unlock()
		return e.wait(ctx)
	}
	mine := &blobEntry{done: make(chan struct{}), repo: dstRef.RepositoryStr()}
	r.blobs.inRepo[repoKey] = mine
	first, waiting := r.blobs.first[key]
	if !waiting {
		r.blobs.first[key] = mine
	}
	r.blobs.mu.Unlock()

	mountFrom := ""
	if waiting && first.wait(ctx) == nil {
		mountFrom = first.repo
	}
	err := r.transferBlob(ctx, srcRef, dstRef, b, mountFrom)
	r.blobs.mu.Lock()
	mine.err = err
	if err != nil { // the next one to need it tries afresh
		delete(r.blobs.inRepo, repoKey)
		if !waiting {
			delete(r.blobs.first, key)
		}
	}
	close(mine.done)
	r.blobs.mu.Unlock()
	return err
}

func (r *run) transferBlob(ctx context.Context, srcRef, dstRef name.Repository, b v1.Descriptor, mountFrom string) error {
	select {
	case r.blobSem <- struct{}{}:
	case <-ctx.Done():
		return context.Cause(ctx)
	}
	defer func() { <-r.blobSem }()
	checkExisting := !r.isNewRepo(dstRef.RepositoryStr())
	return registry.RetryStream(ctx, func() error {
		sent, mounted, err := r.uploadBlob(ctx, srcRef, dstRef, b, mountFrom, checkExisting)
		if err != nil {
			if mountFrom != "" && !sent { // a mount refused in a way the protocol did not expect: upload instead
				mountFrom = ""
			}
			return fmt.Errorf("copying blob %s to %s: %w", b.Digest, dstRef, err)
		}
		switch {
		case sent:
			r.stats.blobsSent.Add(1)
		case mounted:
			r.stats.blobsMounted.Add(1)
		default:
			r.stats.blobsPresent.Add(1)
		}
		return nil
	})
}

// countingReader counts the bytes read through it: what went over the wire to the destination.
type countingReader struct {
	rc io.ReadCloser
	n  *atomic.Int64
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.rc.Read(p)
	c.n.Add(int64(n))
	return n, err
}

func (c *countingReader) Close() error { return c.rc.Close() }
