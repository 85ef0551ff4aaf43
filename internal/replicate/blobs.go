package replicate

import (
	"context"
	"fmt"
	"io"
	"sync"
	"sync/atomic"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/partial"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

// blobTracker remembers, for each blob digest, the first destination repository this run put it
// in, so every other repository that needs it mounts it from there (one request, no bytes) instead
// of uploading it again. A copy in progress is waited for, not repeated: thirty repositories built
// on one base image send the base once.
type blobTracker struct {
	mu sync.Mutex
	m  map[string]*blobEntry // digest → its first copy
	in map[string]bool       // "repo@digest" the destination holds
}

type blobEntry struct {
	done chan struct{}
	repo string
	err  error
}

// copyBlob puts one blob into the destination repository: mounted from another destination
// repository this run already put it in, else uploaded from the source, streamed (never held in
// memory). go-containerregistry HEADs the destination first, so a blob already there costs one HEAD.
func (r *run) copyBlob(ctx context.Context, srcRef, dstRef name.Repository, b v1.Descriptor) error {
	key := b.Digest.String()
	repoKey := dstRef.RepositoryStr() + "@" + key
	r.blobs.mu.Lock()
	if r.blobs.in == nil {
		r.blobs.in = map[string]bool{}
	}
	if r.blobs.in[repoKey] {
		r.blobs.mu.Unlock()
		return nil
	}
	e, waiting := r.blobs.m[key]
	if !waiting {
		e = &blobEntry{done: make(chan struct{}), repo: dstRef.RepositoryStr()}
		r.blobs.m[key] = e
	}
	r.blobs.mu.Unlock()

	mountFrom := ""
	if waiting {
		select {
		case <-e.done:
		case <-ctx.Done():
			return context.Cause(ctx)
		}
		r.blobs.mu.Lock()
		have := r.blobs.in[repoKey]
		r.blobs.mu.Unlock()
		if have {
			return nil
		}
		if e.err == nil && e.repo != dstRef.RepositoryStr() {
			mountFrom = e.repo
		}
	}
	err := r.transferBlob(ctx, srcRef, dstRef, b, mountFrom)
	r.blobs.mu.Lock()
	if err == nil {
		r.blobs.in[repoKey] = true
	}
	if !waiting {
		e.err = err
		if err != nil {
			delete(r.blobs.m, key) // the next one to need it tries afresh
		}
		close(e.done)
	}
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
	sb := &sourceBlob{ctx: ctx, ref: srcRef.Digest(b.Digest.String()), desc: b, puller: r.srcPull, sent: &r.stats.bytesSent}
	layer, err := partial.CompressedToLayer(sb)
	if err != nil {
		return err
	}
	if mountFrom != "" {
		layer = &remote.MountableLayer{Layer: layer, Reference: dstRef.Registry.Repo(mountFrom).Digest(b.Digest.String())}
	}
	if err := r.dstPush.Upload(ctx, dstRef, layer); err != nil {
		return fmt.Errorf("copying blob %s to %s: %w", b.Digest, dstRef, err)
	}
	switch {
	case sb.opened.Load() > 0:
		r.stats.blobsSent.Add(1)
	case mountFrom != "":
		r.stats.blobsMounted.Add(1)
	default:
		r.stats.blobsPresent.Add(1)
	}
	return nil
}

// sourceBlob is a source blob as a layer, opened (a GET, digest-checked as it is read) only if the
// destination needs the bytes.
type sourceBlob struct {
	ctx    context.Context
	ref    name.Digest
	desc   v1.Descriptor
	puller *remote.Puller
	sent   *atomic.Int64
	opened atomic.Int32
}

func (b *sourceBlob) Digest() (v1.Hash, error) { return b.desc.Digest, nil }
func (b *sourceBlob) Size() (int64, error)     { return b.desc.Size, nil }
func (b *sourceBlob) MediaType() (types.MediaType, error) {
	if b.desc.MediaType == "" {
		return types.OCILayer, nil
	}
	return b.desc.MediaType, nil
}

func (b *sourceBlob) Compressed() (io.ReadCloser, error) {
	b.opened.Add(1)
	l, err := remote.Layer(b.ref, remote.Reuse(b.puller), remote.WithContext(b.ctx))
	if err != nil {
		return nil, err
	}
	rc, err := l.Compressed()
	if err != nil {
		return nil, fmt.Errorf("GET blob %s: %w", b.ref, err)
	}
	return &countingReader{rc: rc, n: b.sent}, nil
}

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
