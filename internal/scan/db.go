package scan

import (
	"archive/tar"
	"compress/gzip"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/aquasecurity/trivy-db/pkg/metadata"
	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/remote"

	"github.com/regctl-dev/regctl/internal/exitcode"
)

// The trivy DB as an OCI artifact (what trivy's --db-repository pulls).
const (
	DBLayerMediaType  = "application/vnd.aquasec.trivy.db.layer.v1.tar+gzip"
	DBConfigMediaType = "application/vnd.aquasec.trivy.config.v1+json"
	// DefaultDBRepository is trivy's upstream default; air-gapped sites mirror it (`scan db mirror`).
	DefaultDBRepository = "mirror.gcr.io/aquasec/trivy-db:2"
	dbSchemaVersion     = 2
)

// DBDir is where the DB lives under a cache dir (trivy's layout: <cache>/db/trivy.db, metadata.json).
func DBDir(cacheDir string) string { return filepath.Join(cacheDir, "db") }

// DBStatus describes the DB in a cache dir.
type DBStatus struct {
	Dir          string    `json:"dir"`
	Present      bool      `json:"present"`
	Version      int       `json:"version,omitempty"`
	UpdatedAt    time.Time `json:"updatedAt,omitzero"`
	NextUpdate   time.Time `json:"nextUpdate,omitzero"`
	DownloadedAt time.Time `json:"downloadedAt,omitzero"`
	Stale        bool      `json:"stale"`
	Source       string    `json:"source,omitempty"` // the repository it was pulled from, when regctl pulled it
}

// Status reads the DB metadata in cacheDir.
func Status(cacheDir string, now time.Time) DBStatus {
	st := DBStatus{Dir: DBDir(cacheDir)}
	meta, err := metadata.NewClient(st.Dir).Get()
	if err != nil {
		return st
	}
	if _, err := os.Stat(filepath.Join(st.Dir, "trivy.db")); err != nil {
		return st
	}
	st.Present, st.Version = true, meta.Version
	st.UpdatedAt, st.NextUpdate, st.DownloadedAt = meta.UpdatedAt, meta.NextUpdate, meta.DownloadedAt
	st.Stale = !meta.NextUpdate.IsZero() && now.After(meta.NextUpdate)
	if b, err := os.ReadFile(filepath.Join(st.Dir, "regctl-source")); err == nil {
		st.Source = strings.TrimSpace(string(b))
	}
	return st
}

// DBOptions controls EnsureDB.
type DBOptions struct {
	CacheDir   string
	Repository name.Reference  // where to pull from
	Remote     []remote.Option // auth and transport for Repository (regctl's registry options)
	Skip       bool            // --skip-db-update: use what is there, never download
	Now        time.Time
}

// ErrNoDB explains how to get a DB; it exits 5.
var ErrNoDB = errors.New("no vulnerability database")

// EnsureDB makes sure a usable DB is in the cache dir, pulling it when it is missing or stale (unless
// Skip). A failed pull never damages the DB already there.
func EnsureDB(ctx context.Context, o DBOptions) (DBStatus, error) {
	st := Status(o.CacheDir, o.Now)
	fix := "pull it with --db-repository REF (mirror it into a registry you can reach with `regctl scan db mirror --to REF`)"
	switch {
	case st.Present && st.Version != dbSchemaVersion:
		if o.Skip {
			return st, fmt.Errorf("the vulnerability DB in %s has schema %d, this regctl needs %d; %s: %w", st.Dir, st.Version, dbSchemaVersion, fix, exitcode.ErrUsage)
		}
	case st.Present && (o.Skip || !st.Stale):
		return st, nil
	case st.Present && o.Now.Sub(st.DownloadedAt) < time.Hour:
		// The mirror itself is stale: pulling it again within the hour would fetch the same DB.
		return st, nil
	case !st.Present && o.Skip:
		return st, exitcode.With(exitcode.NotFound, fmt.Errorf("%w in %s and --skip-db-update forbids downloading one; %s", ErrNoDB, st.Dir, fix))
	}
	if o.Repository == nil {
		return st, exitcode.With(exitcode.NotFound, fmt.Errorf("%w to use: %s", ErrNoDB, fix))
	}
	if err := pullDB(ctx, o); err != nil {
		what := "missing"
		if st.Present {
			what = fmt.Sprintf("stale (next update was due %s)", st.NextUpdate.Format(time.RFC3339))
		}
		return st, fmt.Errorf("the vulnerability DB in %s is %s and pulling %s failed: %w; use --skip-db-update to scan with what is there, or %s", st.Dir, what, o.Repository, err, fix)
	}
	return Status(o.CacheDir, o.Now), nil
}

// pullDB downloads the DB artifact's layer, unpacks it into a new directory and swaps it in.
func pullDB(ctx context.Context, o DBOptions) error {
	img, err := remote.Image(o.Repository, append(o.Remote, remote.WithContext(ctx))...)
	if err != nil {
		return err
	}
	layers, err := img.Layers()
	if err != nil {
		return err
	}
	var layer interface {
		Compressed() (io.ReadCloser, error)
	}
	for _, l := range layers {
		if mt, err := l.MediaType(); err == nil && string(mt) == DBLayerMediaType {
			layer = l
		}
	}
	if layer == nil {
		return fmt.Errorf("%s is not a trivy DB artifact (no %s layer)", o.Repository, DBLayerMediaType)
	}
	if err := os.MkdirAll(o.CacheDir, 0o755); err != nil {
		return err
	}
	tmp, err := os.MkdirTemp(o.CacheDir, ".db-download-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(tmp)
	rc, err := layer.Compressed() // verified against its digest by go-containerregistry as it is read
	if err != nil {
		return err
	}
	defer rc.Close()
	if err := untarDB(rc, tmp); err != nil {
		return err
	}
	// Read to the end: go-containerregistry checks the layer's digest at EOF.
	if _, err := io.Copy(io.Discard, rc); err != nil {
		return fmt.Errorf("the DB layer does not match its digest: %w", err)
	}
	mc := metadata.NewClient(tmp)
	meta, err := mc.Get()
	if err != nil {
		return fmt.Errorf("the artifact has no readable metadata.json: %w", err)
	}
	if meta.Version != dbSchemaVersion {
		return fmt.Errorf("the artifact holds DB schema %d, this regctl needs %d", meta.Version, dbSchemaVersion)
	}
	meta.DownloadedAt = o.Now.UTC()
	if err := mc.Update(meta); err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(tmp, "regctl-source"), []byte(o.Repository.String()+"\n"), 0o644); err != nil {
		return err
	}
	// Swap: the old DB stays whole until the new one is in place.
	dst := DBDir(o.CacheDir)
	old := dst + ".old"
	_ = os.RemoveAll(old)
	if err := os.Rename(dst, old); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	if err := os.Rename(tmp, dst); err != nil {
		_ = os.Rename(old, dst)
		return err
	}
	return os.RemoveAll(old)
}

// untarDB extracts trivy.db and metadata.json (nothing else, and no paths) from the gzipped tar.
func untarDB(r io.Reader, dir string) error {
	gz, err := gzip.NewReader(r)
	if err != nil {
		return fmt.Errorf("DB layer is not gzip: %w", err)
	}
	tr := tar.NewReader(gz)
	found := 0
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return fmt.Errorf("reading the DB layer: %w", err)
		}
		base := filepath.Base(h.Name)
		if h.Typeflag != tar.TypeReg || (base != "trivy.db" && base != "metadata.json") {
			continue
		}
		f, err := os.OpenFile(filepath.Join(dir, base), os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o644)
		if err != nil {
			return err
		}
		_, err = io.Copy(f, tr)
		if cerr := f.Close(); err == nil {
			err = cerr
		}
		if err != nil {
			return err
		}
		found++
	}
	if found != 2 {
		return errors.New("the DB layer lacks trivy.db or metadata.json")
	}
	return nil
}

// Mirror copies the DB artifact from one repository to another (for air-gapped sites), as
// `crane cp` would, and checks that it is a trivy DB.
func Mirror(ctx context.Context, from name.Reference, fromOpts []remote.Option, to name.Reference, toOpts []remote.Option) (string, error) {
	desc, err := remote.Get(from, append(fromOpts, remote.WithContext(ctx))...)
	if err != nil {
		return "", fmt.Errorf("%s: %w", from, err)
	}
	img, err := desc.Image()
	if err != nil {
		return "", fmt.Errorf("%s: %w", from, err)
	}
	m, err := img.Manifest()
	if err != nil {
		return "", err
	}
	ok := false
	for _, l := range m.Layers {
		ok = ok || string(l.MediaType) == DBLayerMediaType
	}
	if !ok {
		raw, _ := json.Marshal(m.Layers)
		return "", fmt.Errorf("%s is not a trivy DB artifact (layers %s): %w", from, raw, exitcode.ErrUsage)
	}
	if err := remote.Write(to, img, append(toOpts, remote.WithContext(ctx))...); err != nil {
		return "", fmt.Errorf("%s: %w", to, err)
	}
	return desc.Digest.String(), nil
}
