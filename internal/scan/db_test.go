package scan_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/name"

	"github.com/regctl-dev/regctl/internal/exitcode"
	"github.com/regctl-dev/regctl/internal/scan"
	"github.com/regctl-dev/regctl/internal/scan/scantest"
)

func TestDBPullStatusAndStaleness(t *testing.T) {
	fx := newFixture(t)
	ctx := context.Background()

	// Nothing cached and downloads forbidden: a clear error with the fix, exit 5.
	_, err := scan.EnsureDB(ctx, scan.DBOptions{CacheDir: fx.cacheDir, Skip: true, Now: now})
	if !errors.Is(err, scan.ErrNoDB) || exitcode.Of(err) != exitcode.NotFound || !strings.Contains(err.Error(), "regctl scan db mirror") {
		t.Fatalf("missing DB with --skip-db-update: %v", err)
	}

	st := fx.ensureDB(t)
	if !st.Present || st.Stale || st.Version != 2 || st.Source != fx.dbRef.String() || !st.DownloadedAt.Equal(now) {
		t.Fatalf("status after pull: %+v", st)
	}
	// Fresh: a second call pulls nothing.
	fx.srv.Requests()
	fx.ensureDB(t)
	if n := fx.srv.Count("GET", "/blobs/"); n != 0 {
		t.Errorf("a fresh DB was downloaded again (%d blob GETs)", n)
	}
	// Stale (past NextUpdate): pulled again; with --skip-db-update used as it is.
	later := now.Add(48 * time.Hour)
	if st := scan.Status(fx.cacheDir, later); !st.Stale {
		t.Errorf("want stale at %v: %+v", later, st)
	}
	st, err = scan.EnsureDB(ctx, scan.DBOptions{CacheDir: fx.cacheDir, Skip: true, Now: later})
	if err != nil || !st.Stale {
		t.Errorf("stale DB with --skip-db-update: %+v %v", st, err)
	}
	fx.srv.Requests()
	if _, err := scan.EnsureDB(ctx, scan.DBOptions{CacheDir: fx.cacheDir, Repository: fx.dbRef, Now: later}); err != nil {
		t.Fatal(err)
	}
	if n := fx.srv.Count("GET", "/blobs/"); n == 0 {
		t.Error("a stale DB was not pulled again")
	}

	// A failed pull keeps the DB that was there.
	before, _ := os.ReadFile(filepath.Join(scan.DBDir(fx.cacheDir), "trivy.db"))
	missing, _ := name.ParseReference(fx.host + "/aquasec/trivy-db:missing")
	_, err = scan.EnsureDB(ctx, scan.DBOptions{CacheDir: fx.cacheDir, Repository: missing, Now: later.Add(48 * time.Hour)})
	if err == nil || !strings.Contains(err.Error(), "--skip-db-update") {
		t.Errorf("failed pull: %v", err)
	}
	after, _ := os.ReadFile(filepath.Join(scan.DBDir(fx.cacheDir), "trivy.db"))
	if len(before) == 0 || string(before) != string(after) {
		t.Error("a failed pull damaged the cached DB")
	}
	// Not a DB artifact.
	notDB, _ := name.ParseReference(fx.host + "/app:clean")
	if _, err := scan.EnsureDB(ctx, scan.DBOptions{CacheDir: t.TempDir(), Repository: notDB, Now: now}); err == nil || !strings.Contains(err.Error(), "not a trivy DB artifact") {
		t.Errorf("image as DB: %v", err)
	}
}

func TestMirror(t *testing.T) {
	fx := newFixture(t)
	to, _ := name.ParseReference(fx.host + "/mirror/trivy-db:2")
	digest, err := scan.Mirror(context.Background(), fx.dbRef, nil, to, nil)
	if err != nil || !strings.HasPrefix(digest, "sha256:") {
		t.Fatalf("mirror: %s %v", digest, err)
	}
	st, err := scan.EnsureDB(context.Background(), scan.DBOptions{CacheDir: t.TempDir(), Repository: to, Now: now})
	if err != nil || !st.Present {
		t.Fatalf("pull from the mirror: %+v %v", st, err)
	}
	notDB, _ := name.ParseReference(fx.host + "/app:clean")
	if _, err := scan.Mirror(context.Background(), notDB, nil, to, nil); exitcode.Of(err) != exitcode.Usage {
		t.Errorf("mirroring a non-DB: %v", err)
	}
	_ = scantest.Advisories
}
