package backup_test

import (
	"context"
	"encoding/json"
	"errors"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/validate"

	"github.com/regctl-dev/regctl/internal/backup"
	"github.com/regctl-dev/regctl/internal/localreg/localregtest"
	"github.com/regctl-dev/regctl/internal/registry"
	"github.com/regctl-dev/regctl/internal/sample"
)

var day0 = time.Date(2026, 6, 1, 0, 0, 0, 0, time.UTC)

func open(t *testing.T, host string) registry.Registry {
	t.Helper()
	reg, err := registry.NewResolver(nil, registry.Options{}).Registry(host)
	if err != nil {
		t.Fatal(err)
	}
	return reg
}

// seeded starts a registry with two repositories holding the same sample set (so their blobs are
// shared) and a third with different content.
func seeded(t *testing.T) (*localregtest.Server, registry.Registry) {
	t.Helper()
	srv := localregtest.Start(t)
	reg := open(t, srv.Host)
	for _, r := range []string{"game-server", "game-server/copy"} {
		ref, _ := registry.RepositoryRef(reg, r)
		if _, err := sample.Seed(context.Background(), ref, day0, reg.Remote()...); err != nil {
			t.Fatal(err)
		}
	}
	ref, _ := registry.RepositoryRef(reg, "tools/other")
	if _, err := sample.Seed(context.Background(), ref, day0.Add(-48*time.Hour), reg.Remote()...); err != nil {
		t.Fatal(err)
	}
	return srv, reg
}

func at(t time.Time) func() time.Time { return func() time.Time { return t } }

// state maps "repo:tag" to digest for the selected repositories.
func state(t *testing.T, reg registry.Registry) map[string]string {
	t.Helper()
	out := map[string]string{}
	repos, err := reg.Repositories(context.Background(), "")
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range repos {
		ref, _ := registry.RepositoryRef(reg, r)
		tags, err := reg.Tags(context.Background(), r)
		if err != nil {
			continue // a repository with no tags left
		}
		for _, tag := range tags {
			d, err := remote.Get(ref.Tag(tag), reg.Remote()...)
			if err != nil {
				t.Fatal(err)
			}
			out[r+":"+tag] = d.Digest.String()
			// Everything the tag reaches must be complete and match its digests.
			if d.MediaType.IsIndex() {
				idx, _ := d.ImageIndex()
				if err := validate.Index(idx, validate.Fast); err != nil {
					t.Errorf("%s:%s: %v", r, tag, err)
				}
			} else if img, err := d.Image(); err == nil {
				if err := validate.Image(img); err != nil {
					t.Errorf("%s:%s: %v", r, tag, err)
				}
			}
		}
	}
	return out
}

func equalState(t *testing.T, want, got map[string]string) {
	t.Helper()
	var w, g []string
	for k, v := range want {
		w = append(w, k+"="+v)
	}
	for k, v := range got {
		g = append(g, k+"="+v)
	}
	sort.Strings(w)
	sort.Strings(g)
	if strings.Join(w, "\n") != strings.Join(g, "\n") {
		t.Errorf("restored state differs:\nwant:\n%s\ngot:\n%s", strings.Join(w, "\n"), strings.Join(g, "\n"))
	}
}

func TestBackupRestoreRoundTripAndIncrementalRerun(t *testing.T) {
	srv, reg := seeded(t)
	dest := t.TempDir()
	ctx := context.Background()
	s, _ := backup.Open(ctx, dest, "")

	snap, err := backup.Backup(ctx, reg, s, backup.Options{Now: at(day0)})
	if err != nil {
		t.Fatal(err)
	}
	// Every referenced blob was either transferred now or found already stored (by an earlier
	// repository of the same run): the two counts add up.
	if len(snap.Repos) != 3 || snap.Stats.NewBlobs == 0 || snap.Stats.NewBlobs+snap.Stats.StoredAlready != snap.Stats.Blobs {
		t.Fatalf("first snapshot: %+v", snap.Stats)
	}
	// The two identical repositories share every blob: stored once.
	blobs, _ := s.List(ctx, "blobs/sha256/")
	if snap.Stats.StoredAlready == 0 || len(blobs) >= snap.Stats.Blobs+snap.Stats.Manifests {
		t.Errorf("blobs are not shared: %d stored for %d referenced + %d manifests (%+v)", len(blobs), snap.Stats.Blobs, snap.Stats.Manifests, snap.Stats)
	}
	// An index is recorded after the manifests it lists: restore pushes in this order, and a
	// registry that checks an index's completeness refuses it before its children.
	indexes := 0
	for _, rs := range snap.Repos {
		pos := map[string]int{}
		for i, m := range rs.Manifests {
			pos[m.Digest] = i
		}
		for i, m := range rs.Manifests {
			raw, err := os.ReadFile(filepath.Join(dest, "blobs", strings.Replace(m.Digest, ":", "/", 1)))
			if err != nil {
				t.Fatal(err)
			}
			var idx struct {
				Manifests []struct{ Digest string } `json:"manifests"`
			}
			if json.Unmarshal(raw, &idx) != nil || len(idx.Manifests) == 0 {
				continue
			}
			indexes++
			for _, c := range idx.Manifests {
				if j, ok := pos[c.Digest]; !ok || j > i {
					t.Errorf("%s: index %s at %d, its child %s at %d (recorded: %v)", rs.Name, m.Digest, i, c.Digest, j, ok)
				}
			}
		}
	}
	if indexes == 0 {
		t.Error("the seeded repositories recorded no index: the order check checked nothing")
	}
	for _, f := range []string{"oci-layout", "index.json", "snapshots/" + snap.ID + ".json"} {
		if _, err := os.Stat(filepath.Join(dest, f)); err != nil {
			t.Errorf("layout lacks %s", f)
		}
	}

	// Unchanged re-run: no blob transferred, no manifest fetched from the registry.
	srv.Requests()
	again, err := backup.Backup(ctx, reg, s, backup.Options{Now: at(day0.Add(time.Hour))})
	if err != nil {
		t.Fatal(err)
	}
	if again.Stats.NewBlobs != 0 || again.Stats.NewBytes != 0 || again.ID == snap.ID {
		t.Errorf("unchanged re-run: %+v (%s)", again.Stats, again.ID)
	}
	if n := srv.Count("GET", "/blobs/"); n != 0 {
		t.Errorf("re-run fetched %d blobs", n)
	}
	if n := srv.Count("GET", "/manifests/"); n != 0 {
		t.Errorf("re-run fetched %d manifests", n)
	}

	// Restore into an empty registry: every tag, digest and platform identical.
	target := open(t, localregtest.Start(t).Host)
	snaps, _ := backup.Snapshots(ctx, s)
	res, err := backup.Restore(ctx, s, snaps[0], target, backup.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if res.ManifestsPushed == 0 || res.BlobsPushed == 0 {
		t.Errorf("restore: %+v", res)
	}
	equalState(t, state(t, reg), state(t, target))
	// A second restore pushes nothing.
	res, err = backup.Restore(ctx, s, snaps[0], target, backup.Options{})
	if err != nil || res.ManifestsPushed != 0 || res.BlobsPushed != 0 || res.TagsSet != 0 {
		t.Errorf("second restore: %+v %v", res, err)
	}
	// --repos selects, --dry-run reports without pushing.
	other := open(t, localregtest.Start(t).Host)
	dry, err := backup.Restore(ctx, s, snaps[0], other, backup.Options{Repos: []string{"tools/*"}, DryRun: true})
	if err != nil || len(dry.Repositories) != 1 || dry.ManifestsPushed == 0 {
		t.Errorf("dry run: %+v %v", dry, err)
	}
	if repos, _ := other.Repositories(ctx, ""); len(repos) != 0 {
		t.Errorf("a dry run pushed %v", repos)
	}
	v, err := backup.Verify(ctx, s, snaps[0], nil)
	if err != nil || !v.OK() || v.Blobs == 0 {
		t.Errorf("verify: %+v %v", v, err)
	}
}

func TestCorruptBlobIsFoundAndNeverRestored(t *testing.T) {
	_, reg := seeded(t)
	dest := t.TempDir()
	ctx := context.Background()
	s, _ := backup.Open(ctx, dest, "")
	snap, err := backup.Backup(ctx, reg, s, backup.Options{Now: at(day0), Repos: []string{"tools/other"}})
	if err != nil {
		t.Fatal(err)
	}
	// Corrupt the largest blob (a layer) and remove another.
	keys, _ := s.List(ctx, "blobs/")
	var biggest string
	var size int64
	for _, k := range keys {
		st, _ := os.Stat(filepath.Join(dest, k))
		if st.Size() > size {
			biggest, size = k, st.Size()
		}
	}
	raw, _ := os.ReadFile(filepath.Join(dest, biggest))
	raw[len(raw)/2] ^= 0xff
	os.WriteFile(filepath.Join(dest, biggest), raw, 0o644)
	v, err := backup.Verify(ctx, s, snap, nil)
	if err != nil {
		t.Fatal(err)
	}
	if v.OK() || len(v.Corrupt) != 1 || "blobs/sha256/"+strings.TrimPrefix(v.Corrupt[0], "sha256:") != biggest {
		t.Errorf("verify: %+v (corrupted %s)", v, biggest)
	}
	target := open(t, localregtest.Start(t).Host)
	_, err = backup.Restore(ctx, s, snap, target, backup.Options{})
	if !errors.Is(err, backup.ErrDigestMismatch) {
		t.Errorf("restore of a corrupt blob: %v", err)
	}
}

func TestPruneKeepsWhatNewerSnapshotsShare(t *testing.T) {
	_, reg := seeded(t)
	dest := t.TempDir()
	ctx := context.Background()
	s, _ := backup.Open(ctx, dest, "")
	old, err := backup.Backup(ctx, reg, s, backup.Options{Now: at(day0)})
	if err != nil {
		t.Fatal(err)
	}
	// Delete a repository's images, so the newer snapshot no longer needs its unique blobs.
	images, _ := reg.Images(ctx, "tools/other")
	for _, img := range images {
		if len(img.Tags) > 0 {
			reg.DeleteImage(ctx, "tools/other", img.Digest)
		}
	}
	newer, err := backup.Backup(ctx, reg, s, backup.Options{Now: at(day0.Add(40 * 24 * time.Hour))})
	if err != nil {
		t.Fatal(err)
	}
	before, _ := s.List(ctx, "blobs/")
	dry, err := backup.Prune(ctx, s, 30, 0, day0.Add(41*24*time.Hour), true)
	if err != nil || len(dry.Removed) != 1 || dry.BlobsRemoved == 0 {
		t.Fatalf("dry prune: %+v %v", dry, err)
	}
	if after, _ := s.List(ctx, "blobs/"); len(after) != len(before) {
		t.Fatal("a dry prune removed blobs")
	}
	// keep-last 2 keeps both regardless of age.
	if res, _ := backup.Prune(ctx, s, 30, 2, day0.Add(41*24*time.Hour), true); len(res.Removed) != 0 {
		t.Errorf("keep-last: %+v", res)
	}
	res, err := backup.Prune(ctx, s, 30, 0, day0.Add(41*24*time.Hour), false)
	if err != nil || res.Removed[0] != old.ID || res.Kept[0] != newer.ID {
		t.Fatalf("prune: %+v %v", res, err)
	}
	after, _ := s.List(ctx, "blobs/")
	if len(after) != len(before)-res.BlobsRemoved || res.BlobsRemoved == 0 {
		t.Errorf("blobs %d -> %d, removed %d", len(before), len(after), res.BlobsRemoved)
	}
	v, err := backup.Verify(ctx, s, newer, nil)
	if err != nil || !v.OK() {
		t.Errorf("the kept snapshot is damaged: %+v %v", v, err)
	}
	target := open(t, localregtest.Start(t).Host)
	if _, err := backup.Restore(ctx, s, newer, target, backup.Options{}); err != nil {
		t.Errorf("restore after prune: %v", err)
	}
}

func TestLockStopsASecondRunAndRecoversAStaleOne(t *testing.T) {
	ctx := context.Background()
	s, _ := backup.Open(ctx, t.TempDir(), "")
	_, release, err := backup.Lock(ctx, s, "first", backup.LockExclusive, at(day0))
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := backup.Lock(ctx, s, "second", backup.LockExclusive, at(day0.Add(time.Minute))); !errors.Is(err, backup.ErrLocked) {
		t.Fatalf("second lock: %v", err)
	}
	// The holder stopped heartbeating long ago: recovered.
	_, rel2, err := backup.Lock(ctx, s, "after a crash", backup.LockExclusive, at(day0.Add(backup.StaleAfter+time.Minute)))
	if err != nil {
		t.Fatalf("stale lock not recovered: %v", err)
	}
	rel2()
	release()
}

// flaky fails every 10th request: 429, 503, or a dropped connection, in turn.
func flaky(t *testing.T, upstream string) string {
	t.Helper()
	u, _ := url.Parse(upstream)
	proxy := httputil.NewSingleHostReverseProxy(u)
	var n atomic.Int64
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		i := n.Add(1)
		if i%10 == 0 {
			switch (i / 10) % 3 {
			case 0:
				w.Header().Set("Retry-After", "0")
				http.Error(w, "slow down", http.StatusTooManyRequests)
			case 1:
				http.Error(w, "unavailable", http.StatusServiceUnavailable)
			default:
				if hj, ok := w.(http.Hijacker); ok {
					c, _, _ := hj.Hijack()
					c.Close()
					return
				}
			}
			return
		}
		proxy.ServeHTTP(w, r)
	})}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	return ln.Addr().String()
}

func TestBackupAndRestoreThroughAFlakyProxy(t *testing.T) {
	srv, direct := seeded(t)
	ctx := context.Background()
	s, _ := backup.Open(ctx, t.TempDir(), "")
	viaProxy := open(t, flaky(t, srv.URL))
	snap, err := backup.Backup(ctx, viaProxy, s, backup.Options{Now: at(day0)})
	if err != nil {
		t.Fatalf("backup through the flaky proxy: %v", err)
	}
	if len(snap.Incomplete) != 0 {
		t.Fatalf("incomplete: %v", snap.Incomplete)
	}
	target := localregtest.Start(t)
	if _, err := backup.Restore(ctx, s, snap, open(t, flaky(t, target.URL)), backup.Options{}); err != nil {
		t.Fatalf("restore through the flaky proxy: %v", err)
	}
	equalState(t, state(t, direct), state(t, open(t, target.Host)))
	if v, err := backup.Verify(ctx, s, snap, nil); err != nil || !v.OK() {
		t.Errorf("verify: %+v %v", v, err)
	}
}

var _ = name.ParseReference
