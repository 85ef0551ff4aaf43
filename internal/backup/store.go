// Package backup keeps registry backups as one content-addressed OCI image layout in a directory or
// an S3 bucket: every blob stored once across all snapshots, each snapshot written only after all it
// references is stored, so an interrupted run never harms earlier snapshots.
package backup

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/regctl-dev/regctl/internal/fsutil"
)

// Store is where a backup lives: a directory or an S3 prefix. Keys use "/" separators.
type Store interface {
	// Put writes the content of r under key; the object appears whole or not at all. If r returns an
	// error (a digest mismatch, a broken source), nothing is written.
	Put(ctx context.Context, key string, r io.Reader, size int64) error
	Get(ctx context.Context, key string) (io.ReadCloser, error) // fs.ErrNotExist when missing
	Exists(ctx context.Context, key string) (bool, error)
	List(ctx context.Context, prefix string) ([]string, error)
	Delete(ctx context.Context, key string) error
	// CreateExclusive writes data only if key does not exist yet (fs.ErrExist otherwise): the lock.
	CreateExclusive(ctx context.Context, key string, data []byte) error
	String() string
}

// Open opens DEST: a directory path, file://PATH, or s3://bucket/prefix.
func Open(ctx context.Context, dest, storageClass string) (Store, error) {
	switch {
	case strings.HasPrefix(dest, "s3://"):
		return openS3(ctx, dest, storageClass)
	case strings.HasPrefix(dest, "file://"):
		return newDirStore(strings.TrimPrefix(dest, "file://"))
	case strings.Contains(dest, "://"):
		return nil, fmt.Errorf("%s: destinations are a directory, file://PATH or s3://bucket/prefix", dest)
	case dest == "":
		return nil, errors.New("no destination: pass --to (or --from), or set backup.destination")
	}
	return newDirStore(dest)
}

type dirStore struct{ root string }

func newDirStore(root string) (*dirStore, error) {
	abs, err := filepath.Abs(root)
	if err != nil {
		return nil, err
	}
	return &dirStore{root: abs}, nil
}

func (d *dirStore) String() string { return d.root }

func (d *dirStore) path(key string) string { return filepath.Join(d.root, filepath.FromSlash(key)) }

func (d *dirStore) Put(ctx context.Context, key string, r io.Reader, _ int64) error {
	p := d.path(key)
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		return err
	}
	return fsutil.WriteAtomic(p, ctxReader{ctx, r}, 0o644)
}

func (d *dirStore) Get(_ context.Context, key string) (io.ReadCloser, error) {
	return os.Open(d.path(key))
}

func (d *dirStore) Exists(_ context.Context, key string) (bool, error) {
	_, err := os.Stat(d.path(key))
	if errors.Is(err, fs.ErrNotExist) {
		return false, nil
	}
	return err == nil, err
}

func (d *dirStore) List(_ context.Context, prefix string) ([]string, error) {
	var out []string
	base := d.path(prefix)
	err := filepath.WalkDir(base, func(p string, e fs.DirEntry, err error) error {
		if err != nil {
			if errors.Is(err, fs.ErrNotExist) {
				return nil
			}
			return err
		}
		if e.IsDir() || strings.HasPrefix(e.Name(), ".tmp-") {
			return nil
		}
		rel, _ := filepath.Rel(d.root, p)
		out = append(out, filepath.ToSlash(rel))
		return nil
	})
	sort.Strings(out)
	return out, err
}

func (d *dirStore) Delete(_ context.Context, key string) error {
	err := os.Remove(d.path(key))
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	return err
}

func (d *dirStore) CreateExclusive(_ context.Context, key string, data []byte) error {
	p := d.path(key)
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		return err
	}
	f, err := os.OpenFile(p, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o644)
	if err != nil {
		return err
	}
	if _, err := f.Write(data); err != nil {
		f.Close()
		os.Remove(p)
		return err
	}
	return f.Close()
}

// ctxReader stops a copy when the context ends.
type ctxReader struct {
	ctx context.Context
	r   io.Reader
}

func (c ctxReader) Read(p []byte) (int, error) {
	if err := c.ctx.Err(); err != nil {
		return 0, err
	}
	return c.r.Read(p)
}
