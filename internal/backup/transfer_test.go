package backup_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/remote"

	"github.com/regctl-dev/regctl/internal/backup"
	"github.com/regctl-dev/regctl/internal/localreg/localregtest"
	"github.com/regctl-dev/regctl/internal/registry"
	"github.com/regctl-dev/regctl/internal/sample"
)

// Repositories are read in parallel, yet a layer they share is fetched once in the run, every
// other blob once, and the registry is pinged at most twice in the run.
func TestParallelRepositoriesFetchEachBlobOnce(t *testing.T) {
	var mu sync.Mutex
	blobGets := map[string]int{}
	pings, manifestHeads, manifestGets := 0, 0, 0
	srv := localregtest.Start(t, localregtest.Options{Wrap: func(h http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			mu.Lock()
			if r.Method == http.MethodGet && strings.Contains(r.URL.Path, "/blobs/") {
				blobGets[r.URL.Path[strings.LastIndex(r.URL.Path, "/")+1:]]++
			}
			if r.URL.Path == "/v2/" {
				pings++
			}
			if strings.Contains(r.URL.Path, "/manifests/") {
				switch r.Method {
				case http.MethodHead:
					manifestHeads++
				case http.MethodGet:
					manifestGets++
				}
			}
			mu.Unlock()
			h.ServeHTTP(w, r)
		})
	}})
	reg := open(t, srv.Host)
	ctx := context.Background()
	const repos, tags = 8, 3
	names, err := sample.SharedBase(ctx, srv.Host, true, repos, tags, 1, 0, reg.Remote()...)
	if err != nil {
		t.Fatal(err)
	}
	// The base layer is in every repository and must come over once.
	base := layerDigests(t, srv.Host+"/"+names[0]+":v0")[0]
	mu.Lock()
	clear(blobGets)
	pings, manifestHeads, manifestGets = 0, 0, 0
	mu.Unlock()
	s, _ := backup.Open(ctx, t.TempDir(), "")
	snap, err := backup.Backup(ctx, reg, s, backup.Options{Now: at(day0)})
	if err != nil {
		t.Fatal(err)
	}
	if len(snap.Repos) != repos || snap.Images() != repos*tags {
		t.Fatalf("snapshot: %d repositories, %d images", len(snap.Repos), snap.Images())
	}
	mu.Lock()
	defer mu.Unlock()
	if blobGets[base] != 1 {
		t.Errorf("the shared base layer was fetched %d times", blobGets[base])
	}
	for d, n := range blobGets {
		if n != 1 {
			t.Errorf("blob %s fetched %d times", d, n)
		}
	}
	if stored, _ := s.List(ctx, "blobs/"); len(stored) < len(blobGets) {
		t.Errorf("%d blobs fetched, %d stored", len(blobGets), len(stored))
	}
	// An anonymous registry authorises every repository alike: the run asks /v2/ once for its
	// challenge and once in go-containerregistry's handshake, not once per repository or request.
	if pings > 2 {
		t.Errorf("%d pings of /v2/ for %d repositories, want at most 2", pings, repos)
	}
	// New tags: one GET each by tag, no HEAD.
	if manifestHeads != 0 || manifestGets != repos*tags {
		t.Errorf("first run: %d manifest HEADs, %d GETs; want 0 and %d", manifestHeads, manifestGets, repos*tags)
	}
	// Known tags: one HEAD each, nothing fetched.
	clear(blobGets)
	manifestHeads, manifestGets = 0, 0
	mu.Unlock()
	if _, err := backup.Backup(ctx, reg, s, backup.Options{Now: at(day0.Add(time.Hour))}); err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	if manifestHeads != repos*tags || manifestGets != 0 || len(blobGets) != 0 {
		t.Errorf("unchanged run: %d manifest HEADs, %d GETs, %d blobs fetched; want %d, 0, 0", manifestHeads, manifestGets, len(blobGets), repos*tags)
	}
}

// layerDigests lists the layers of the image ref names.
func layerDigests(t *testing.T, ref string) []string {
	t.Helper()
	r, err := name.ParseReference(ref, name.Insecure)
	if err != nil {
		t.Fatal(err)
	}
	img, err := remote.Image(r)
	if err != nil {
		t.Fatal(err)
	}
	m, err := img.Manifest()
	if err != nil || len(m.Layers) == 0 {
		t.Fatalf("manifest of %s: %v", ref, err)
	}
	var out []string
	for _, l := range m.Layers {
		out = append(out, l.Digest.String())
	}
	return out
}

// A registry that serves a layer with the wrong bytes (same length), cuts it short or says it has
// none gets that repository reported incomplete: nothing is stored under the layer's digest, the
// other repositories are backed up, and the record holds only them. Only the broken transfer is
// tried again: wrong bytes or a 404 would come back the same.
func TestTamperedOrTruncatedBlobIsNeverStored(t *testing.T) {
	for mode, wantGets := range map[string]int{"tampered": 1, "truncated": registry.StreamAttempts, "missing": 1} {
		t.Run(mode, func(t *testing.T) {
			var victim string
			victimGets := 0
			var mu sync.Mutex
			srv := localregtest.Start(t, localregtest.Options{Wrap: func(h http.Handler) http.Handler {
				return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
					mu.Lock()
					bad := victim != "" && r.Method == http.MethodGet && strings.HasSuffix(r.URL.Path, "/blobs/"+victim)
					if bad {
						victimGets++
					}
					mu.Unlock()
					if !bad {
						h.ServeHTTP(w, r)
						return
					}
					if mode == "missing" {
						w.Header().Set("Content-Type", "application/json")
						w.WriteHeader(http.StatusNotFound)
						w.Write([]byte(`{"errors":[{"code":"BLOB_UNKNOWN","message":"blob unknown to registry"}]}`))
						return
					}
					rec := httptest.NewRecorder()
					h.ServeHTTP(rec, r)
					body := rec.Body.Bytes()
					for k, v := range rec.Header() {
						w.Header()[k] = v
					}
					w.WriteHeader(rec.Code)
					if mode == "tampered" {
						body = bytes.Clone(body)
						body[len(body)/2] ^= 0xff
						w.Write(body)
						return
					}
					// Half the body, then the connection goes: the client sees an unexpected EOF.
					w.Write(body[:len(body)/2])
					if hj, ok := w.(http.Hijacker); ok {
						if c, _, err := hj.Hijack(); err == nil {
							c.Close()
						}
					}
				})
			}})
			reg := open(t, srv.Host)
			ctx := context.Background()
			names, err := sample.SharedBase(ctx, srv.Host, true, 2, 1, 0, 1, reg.Remote()...)
			if err != nil {
				t.Fatal(err)
			}
			// The own layer of the second repository (the base is empty-sized: 0 MiB).
			layers := layerDigests(t, srv.Host+"/"+names[1]+":v0")
			layer := layers[len(layers)-1]
			mu.Lock()
			victim = layer
			mu.Unlock()
			s, _ := backup.Open(ctx, t.TempDir(), "")
			snap, err := backup.Backup(ctx, reg, s, backup.Options{Now: at(day0)})
			if err == nil || snap == nil || len(snap.Incomplete) != 1 || !strings.Contains(snap.Incomplete[0], names[1]) {
				t.Fatalf("want a partial backup naming %s: %v %+v", names[1], err, snap)
			}
			if mode == "tampered" && !errors.Is(err, backup.ErrDigestMismatch) && !strings.Contains(err.Error(), "does not match its digest") {
				t.Errorf("error does not say the digest is wrong: %v", err)
			}
			mu.Lock()
			if victimGets != wantGets {
				t.Errorf("the %s layer was asked for %d times, want %d", mode, victimGets, wantGets)
			}
			mu.Unlock()
			if len(snap.Repos) != 1 || snap.Repos[0].Name != names[0] {
				t.Errorf("the good repository: %+v", snap.Repos)
			}
			if _, err := s.Size(ctx, "blobs/"+strings.Replace(layer, ":", "/", 1)); err == nil {
				t.Errorf("the %s blob %s was stored", mode, layer)
			}
			rc, err := s.Get(ctx, "snapshots/"+snap.ID+".json")
			if err != nil {
				t.Fatal(err)
			}
			var record backup.Snapshot
			err = json.NewDecoder(rc).Decode(&record)
			rc.Close()
			if err != nil || len(record.Repos) != 1 || record.Repos[0].Name != names[0] {
				t.Errorf("the stored record: %v %+v", err, record.Repos)
			}
		})
	}
}

// slowSyncStore holds the first layer's Put after its body has been read, as a slow sync would,
// until the registry has been asked for another blob (or 5 s have passed).
type slowSyncStore struct {
	backup.Store
	held       atomic.Bool // one Put is held; the others go through
	blobGets   *atomic.Int64
	overlapped atomic.Bool
}

func (s *slowSyncStore) Put(ctx context.Context, key string, r io.Reader, size int64) error {
	if !strings.HasPrefix(key, "blobs/") || size < 1<<20 {
		return s.Store.Put(ctx, key, r, size)
	}
	body, err := io.ReadAll(r)
	if err != nil {
		return err
	}
	if s.held.CompareAndSwap(false, true) {
		before := s.blobGets.Load()
		for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); time.Sleep(5 * time.Millisecond) {
			if s.blobGets.Load() > before {
				s.overlapped.Store(true)
				break
			}
		}
	}
	return s.Store.Put(ctx, key, bytes.NewReader(body), size)
}

// A transfer slot goes back once a blob's body is read: what the store still does with it (its
// sync) overlaps the next download, even with a single slot.
func TestTransferSlotIsFreeWhileTheStoreFinishes(t *testing.T) {
	var blobGets atomic.Int64
	srv := localregtest.Start(t, localregtest.Options{Wrap: func(h http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if r.Method == http.MethodGet && strings.Contains(r.URL.Path, "/blobs/") {
				blobGets.Add(1)
			}
			h.ServeHTTP(w, r)
		})
	}})
	reg := open(t, srv.Host)
	ctx := context.Background()
	// Four images: a 1 MiB base and a 1 MiB layer of their own each, so layers follow the first.
	if _, err := sample.SharedBase(ctx, srv.Host, true, 1, 4, 1, 1, reg.Remote()...); err != nil {
		t.Fatal(err)
	}
	dir, _ := backup.Open(ctx, t.TempDir(), "")
	s := &slowSyncStore{Store: dir, blobGets: &blobGets}
	if _, err := backup.Backup(ctx, reg, s, backup.Options{Now: at(day0), Jobs: 1}); err != nil {
		t.Fatal(err)
	}
	if !s.overlapped.Load() {
		t.Error("no blob was downloaded while the store was still finishing one: the slot was held")
	}
}
