// Package backup keeps registry backups as one content-addressed OCI image layout in a directory or
// an S3 bucket: every blob stored once across all snapshots, each snapshot written only after all it
// references is stored, so an interrupted run never harms earlier snapshots.
package backup

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"syscall"

	"github.com/regctl-dev/regctl/internal/fsutil"
)

// Store is where a backup lives: a directory or an S3 prefix. Keys use "/" separators.
type Store interface {
	// Put writes the content of r under key; the object appears whole or not at all. If r returns an
	// error (a digest mismatch, a broken source), nothing is written.
	Put(ctx context.Context, key string, r io.Reader, size int64) error
	Get(ctx context.Context, key string) (io.ReadCloser, error) // fs.ErrNotExist when missing
	// Size returns the stored object's size (fs.ErrNotExist when missing).
	Size(ctx context.Context, key string) (int64, error)
	List(ctx context.Context, prefix string) ([]string, error)
	Delete(ctx context.Context, key string) error
	// ReadVersion reads a small object whole with an opaque version of it (fs.ErrNotExist when
	// missing); ReplaceIf writes data only if the object's version is still version ("": only if the
	// object does not exist), ErrConflict otherwise. Together they make the lock a compare-and-swap.
	ReadVersion(ctx context.Context, key string) ([]byte, string, error)
	ReplaceIf(ctx context.Context, key string, data []byte, version string) error
	// CleanTemp removes what runs that were killed left half-written (temporary files, unfinished
	// uploads) and returns how many. Only a holder of the exclusive lock calls it.
	CleanTemp(ctx context.Context) (int, error)
	String() string
}

// ErrConflict means a conditional write lost: the object changed since it was read.
var ErrConflict = errors.New("changed by another run")

// exists reports whether key is stored.
func exists(ctx context.Context, s Store, key string) (bool, error) {
	_, err := s.Size(ctx, key)
	if errors.Is(err, fs.ErrNotExist) {
		return false, nil
	}
	return err == nil, err
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

// dirStore keeps the layout in a directory. Blobs are written with their content synced but their
// directory not: before anything else is written (a snapshot record, the index), every directory a
// blob went into is synced, so a record never names a blob a power cut could take back, and a run
// syncs blobs/sha256 once instead of once per blob.
type dirStore struct {
	root string

	mu       sync.Mutex
	unsynced map[string]bool // directories holding blobs renamed into place since the last sync
}

func newDirStore(root string) (*dirStore, error) {
	abs, err := filepath.Abs(root)
	if err != nil {
		return nil, err
	}
	return &dirStore{root: abs}, nil
}

func (d *dirStore) String() string { return d.root }

// path maps a key into the root, refusing keys that would leave it: keys come from snapshot records
// and listings, which a damaged or crafted store could fill with "../" paths.
func (d *dirStore) path(key string) (string, error) {
	clean := path.Clean("/" + key)
	if key == "" || strings.Contains(key, "\\") || clean != "/"+strings.TrimSuffix(key, "/") {
		return "", fmt.Errorf("%q is not a key of a backup store: %w", key, fs.ErrInvalid)
	}
	return filepath.Join(d.root, filepath.FromSlash(clean[1:])), nil
}

func (d *dirStore) Put(ctx context.Context, key string, r io.Reader, size int64) error {
	p, err := d.path(key)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		return err
	}
	if strings.HasPrefix(key, "blobs/") {
		if err := fsutil.WriteAtomicDirUnsynced(p, ctxReader{ctx, r}, size, 0o644); err != nil {
			return err
		}
		d.mu.Lock()
		if d.unsynced == nil {
			d.unsynced = map[string]bool{}
		}
		d.unsynced[filepath.Dir(p)] = true
		d.mu.Unlock()
		return nil
	}
	if err := d.syncBlobDirs(); err != nil {
		return err
	}
	return fsutil.WriteAtomic(p, ctxReader{ctx, r}, 0o644)
}

// syncBlobDirs makes the names of the blobs written so far durable.
func (d *dirStore) syncBlobDirs() error {
	d.mu.Lock()
	defer d.mu.Unlock()
	for dir := range d.unsynced {
		if err := fsutil.SyncDir(dir); err != nil {
			return err
		}
		delete(d.unsynced, dir)
	}
	return nil
}

func (d *dirStore) Get(_ context.Context, key string) (io.ReadCloser, error) {
	p, err := d.path(key)
	if err != nil {
		return nil, err
	}
	return os.Open(p)
}

func (d *dirStore) Size(_ context.Context, key string) (int64, error) {
	p, err := d.path(key)
	if err != nil {
		return 0, err
	}
	st, err := os.Stat(p)
	if err != nil {
		return 0, err
	}
	if !st.Mode().IsRegular() {
		return 0, fmt.Errorf("%s: not a regular file", p)
	}
	return st.Size(), nil
}

func (d *dirStore) List(_ context.Context, prefix string) ([]string, error) {
	var out []string
	base := d.root
	if prefix != "" {
		p, err := d.path(prefix)
		if err != nil {
			return nil, err
		}
		base = p
	}
	err := filepath.WalkDir(base, func(p string, e fs.DirEntry, err error) error {
		if err != nil {
			if errors.Is(err, fs.ErrNotExist) {
				return nil
			}
			return err
		}
		// Temporary files and the lock guard are not part of the layout.
		if e.IsDir() || strings.HasPrefix(e.Name(), ".") {
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
	p, err := d.path(key)
	if err != nil {
		return err
	}
	err = os.Remove(p)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	return err
}

// guard serialises compare-and-swap on the directory across processes with flock(2), which the
// kernel releases when a holder dies: nothing to clean up after a crash.
func (d *dirStore) guard() (unlock func(), err error) {
	if err := os.MkdirAll(d.root, 0o755); err != nil {
		return nil, err
	}
	f, err := os.OpenFile(filepath.Join(d.root, ".lock-guard"), os.O_CREATE|os.O_RDWR, 0o644)
	if err != nil {
		return nil, err
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX); err != nil {
		f.Close()
		return nil, err
	}
	return func() { _ = syscall.Flock(int(f.Fd()), syscall.LOCK_UN); f.Close() }, nil
}

func (d *dirStore) ReadVersion(_ context.Context, key string) ([]byte, string, error) {
	p, err := d.path(key)
	if err != nil {
		return nil, "", err
	}
	raw, err := readSmallFile(p)
	if err != nil {
		return nil, "", err
	}
	return raw, contentVersion(raw), nil
}

func (d *dirStore) ReplaceIf(_ context.Context, key string, data []byte, version string) error {
	p, err := d.path(key)
	if err != nil {
		return err
	}
	unlock, err := d.guard()
	if err != nil {
		return err
	}
	defer unlock()
	cur, err := readSmallFile(p)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		if version != "" {
			return fmt.Errorf("%s: %w", key, ErrConflict)
		}
	case err != nil:
		return err
	case version == "" || contentVersion(cur) != version:
		return fmt.Errorf("%s: %w", key, ErrConflict)
	}
	return fsutil.WriteFileAtomic(p, data, 0o644)
}

// CleanTemp removes the .tmp-* files that killed runs left (fsutil.WriteAtomic's temporaries).
func (d *dirStore) CleanTemp(_ context.Context) (int, error) {
	n := 0
	err := filepath.WalkDir(d.root, func(p string, e fs.DirEntry, err error) error {
		if err != nil {
			if errors.Is(err, fs.ErrNotExist) {
				return nil
			}
			return err
		}
		if !e.IsDir() && strings.HasPrefix(e.Name(), ".tmp-") {
			if err := os.Remove(p); err != nil && !errors.Is(err, fs.ErrNotExist) {
				return err
			}
			n++
		}
		return nil
	})
	return n, err
}

func readSmallFile(p string) ([]byte, error) {
	f, err := os.Open(p)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return readLimited(f, maxRecordSize)
}

func contentVersion(raw []byte) string {
	sum := sha256.Sum256(raw)
	return hex.EncodeToString(sum[:])
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
