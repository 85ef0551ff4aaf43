package metrics

import (
	"bytes"
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/regctl-dev/regctl/internal/config"
	"github.com/regctl-dev/regctl/internal/localreg/localregtest"
	"github.com/regctl-dev/regctl/internal/registry"
	"github.com/regctl-dev/regctl/internal/sample"
)

var seedDay = time.Date(2026, 6, 30, 0, 0, 0, 0, time.UTC)

func openOCI(t testing.TB, host string, nameOpt ...string) *registry.OCI {
	t.Helper()
	n := "local"
	if len(nameOpt) > 0 {
		n = nameOpt[0]
	}
	o, err := registry.OpenOCI(n, config.Registry{Type: "oci", URL: "http://" + host}, registry.Options{})
	if err != nil {
		t.Fatal(err)
	}
	return o
}

func seed(t testing.TB, reg *registry.OCI, repo string) {
	t.Helper()
	r, err := registry.RepositoryRef(reg, repo)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := sample.Seed(context.Background(), r, seedDay, reg.Remote()...); err != nil {
		t.Fatal(err)
	}
}

// The seed set per repository: 5 single-platform images and a two-platform index (6 images; the
// platforms and the signature are not images), 6 tags besides the .sig tag, the index signed.
func TestCollectCountsImagesTagsSignaturesAndBytesOnce(t *testing.T) {
	srv := localregtest.Start(t)
	reg := openOCI(t, srv.Host)
	seed(t, reg, "game-server")
	seed(t, reg, "tools") // the same blobs: stored once by the registry, counted once for it

	c := &Collector{Targets: []Target{{Source: reg, StoragePath: srv.Root}}, Timeout: 30 * time.Second}
	st := c.Collect(context.Background())[0]
	if !st.Up || st.Error != "" || len(st.Repositories) != 2 {
		t.Fatalf("%+v", st)
	}
	gs := st.Repositories[0]
	if gs.Repository != "game-server" || gs.Images != 6 || gs.Signed != 1 || gs.Unsigned != 5 || gs.Tags != 6 || !gs.BytesKnown || gs.StoredBytes <= 0 {
		t.Errorf("game-server: %+v", gs)
	}
	if gs.LastPush.IsZero() || gs.LastPush.After(seedDay) {
		t.Errorf("newest push (config created, on a registry without push times): %v", gs.LastPush)
	}
	// The two repositories share every layer and config (only the signatures name their repository):
	// the registry stores them once.
	ts := st.Repositories[1]
	if st.StoredBytes < max(gs.StoredBytes, ts.StoredBytes) || st.StoredBytes >= gs.StoredBytes+ts.StoredBytes-1000 {
		t.Errorf("shared blobs counted once: registry %d, repositories %d and %d", st.StoredBytes, gs.StoredBytes, ts.StoredBytes)
	}
	// The bytes the registry has on disk under blobs/ are at least what the manifests reference.
	var onDisk int64
	filepath.Walk(filepath.Join(srv.Root, "docker/registry/v2/blobs"), func(_ string, fi os.FileInfo, err error) error {
		if err == nil && !fi.IsDir() {
			onDisk += fi.Size()
		}
		return nil
	})
	if onDisk < st.StoredBytes {
		t.Errorf("stored bytes %d exceed the %d bytes on disk", st.StoredBytes, onDisk)
	}
	if st.Storage == nil || st.Storage.SizeBytes == 0 || st.Storage.FreeBytes > st.Storage.SizeBytes || st.Storage.UsedBytes > st.Storage.SizeBytes {
		t.Errorf("storage: %+v", st.Storage)
	}

	// A second collection fetches no manifest for bytes again (only what Images itself reads).
	srv.Requests()
	c.Collect(context.Background())
	first := srv.Count("GET", "/manifests/")
	srv.Requests()
	again := c.Collect(context.Background())[0]
	if again.StoredBytes != st.StoredBytes || srv.Count("GET", "/manifests/") != first {
		t.Errorf("cached: %d bytes, %d manifest GETs (want %d)", again.StoredBytes, srv.Count("GET", "/manifests/"), first)
	}

	// Exported: the names and labels the rules and the dashboard use.
	reg2 := prometheus.NewPedanticRegistry()
	reg2.MustRegister(StatsCollector(func() []RegistryStats { return []RegistryStats{st} }))
	want := `# HELP regctl_repository_images Images in the repository: image manifests and indexes, not platform manifests, signatures, attestations or SBOMs.
# TYPE regctl_repository_images gauge
regctl_repository_images{registry="local",repository="game-server"} 6
regctl_repository_images{registry="local",repository="tools"} 6
# HELP regctl_repository_signed_images Images in the repository with a cosign signature.
# TYPE regctl_repository_signed_images gauge
regctl_repository_signed_images{registry="local",repository="game-server"} 1
regctl_repository_signed_images{registry="local",repository="tools"} 1
# HELP regctl_registry_up 1 if the last collection of the registry succeeded, 0 if it failed or timed out (the other metrics are then the last good collection's).
# TYPE regctl_registry_up gauge
regctl_registry_up{registry="local"} 1
`
	if err := testutil.GatherAndCompare(reg2, strings.NewReader(want), RepoImagesName, RepoSignedName, RegistryUpName); err != nil {
		t.Error(err)
	}
	path := filepath.Join(t.TempDir(), "registry.prom")
	if err := WriteTextfile(path, []RegistryStats{st}); err != nil {
		t.Fatal(err)
	}
	raw, _ := os.ReadFile(path)
	for _, w := range []string{`regctl_storage_size_bytes{path="` + srv.Root + `",registry="local"}`, `regctl_registry_stored_bytes{registry="local"}`, `regctl_repository_last_push_timestamp_seconds{registry="local",repository="tools"}`} {
		if !bytes.Contains(raw, []byte(w)) {
			t.Errorf("textfile lacks %s:\n%s", w, raw)
		}
	}
}

// slowSource answers after a delay, ignoring the context (the worst case).
type slowSource struct {
	Source
	delay atomic.Int64 // nanoseconds
	fail  atomic.Bool
}

func (s *slowSource) Repositories(ctx context.Context, prefix string) ([]string, error) {
	time.Sleep(time.Duration(s.delay.Load()))
	if s.fail.Load() {
		return nil, errors.New("GET https://robot:s3cret@reg.example.com/v2/_catalog: 503 Service Unavailable")
	}
	return s.Source.Repositories(ctx, prefix)
}

// A registry slower than the timeout, or failing, is down with its last good numbers and their
// age, logged, counted; the other registry is unaffected; collection returns by the deadline.
func TestCollectTimeoutAndFailureKeepLastGoodValues(t *testing.T) {
	srv := localregtest.Start(t)
	reg := openOCI(t, srv.Host)
	seed(t, reg, "game-server")
	slow := &slowSource{Source: reg}
	var logs bytes.Buffer
	clock := seedDay
	c := &Collector{Targets: []Target{{Source: slow}, {Source: openOCI(t, srv.Host, "other")}}, Timeout: 300 * time.Millisecond,
		Logger: newTextLogger(&logs), Now: func() time.Time { return clock }}
	good := c.Collect(context.Background())
	if !good[0].Up || len(good[0].Repositories) != 1 {
		t.Fatalf("%+v", good[0])
	}
	slow.delay.Store(int64(3 * time.Second))
	clock = clock.Add(time.Minute)
	start := time.Now()
	st := c.Collect(context.Background())
	if took := time.Since(start); took > 2*time.Second {
		t.Errorf("a slow registry held the collection %s past a 300ms timeout", took)
	}
	if st[0].Up || !strings.Contains(st[0].Error, "timeout") || len(st[0].Repositories) != 1 || !st[0].LastSuccess.Equal(seedDay) || st[0].ErrorsTotal != 1 {
		t.Errorf("timed out: %+v", st[0])
	}
	if !st[1].Up {
		t.Errorf("the other registry: %+v", st[1])
	}
	slow.delay.Store(0)
	slow.fail.Store(true)
	st = c.Collect(context.Background())
	if st[0].Up || st[0].ErrorsTotal != 2 || strings.Contains(st[0].Error, "s3cret") || !strings.Contains(st[0].Error, "503") {
		t.Errorf("failed: %+v", st[0])
	}
	if strings.Contains(logs.String(), "s3cret") || !strings.Contains(logs.String(), "collecting registry metrics") {
		t.Errorf("logs:\n%s", logs.String())
	}
}

// /metrics answers from the last collection at once, however slow the registry is.
func TestExporterServesWithoutWaitingForRegistries(t *testing.T) {
	srv := localregtest.Start(t)
	reg := openOCI(t, srv.Host)
	seed(t, reg, "game-server")
	slow := &slowSource{Source: reg}
	e := &Exporter{Collector: &Collector{Targets: []Target{{Source: slow}}, Timeout: 5 * time.Second}, Interval: time.Hour}
	e.CollectOnce(context.Background())
	slow.delay.Store(int64(2 * time.Second))
	go e.CollectOnce(context.Background()) // in flight while scraped
	h := httptest.NewServer(e.Handler())
	defer h.Close()
	start := time.Now()
	resp, err := http.Get(h.URL + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var body bytes.Buffer
	body.ReadFrom(resp.Body)
	if time.Since(start) > time.Second || !strings.Contains(body.String(), `regctl_repository_images{registry="local",repository="game-server"} 6`) ||
		!strings.Contains(body.String(), "go_goroutines") {
		t.Errorf("%s:\n%s", time.Since(start), body.String())
	}
}

func TestRedactAndLabelSafe(t *testing.T) {
	if got := redact(`Get "https://u:p@h/v2/": x; http://a@b c`); got != `Get "https://h/v2/": x; http://b c` {
		t.Error(got)
	}
	if LabelSafe("robot:tok@reg.example.com") != "reg.example.com" || LabelSafe("local") != "local" {
		t.Error("LabelSafe")
	}
}

// hostileSource lists names no repository has: invalid UTF-8, a duplicate, one that fails.
type hostileSource struct{ Source }

func (h hostileSource) Repositories(ctx context.Context, prefix string) ([]string, error) {
	repos, err := h.Source.Repositories(ctx, prefix)
	return append(repos, "bad\xff", "game-server", "", "line\nbreak", "gone"), err
}

func (h hostileSource) Images(ctx context.Context, repo string) ([]registry.Image, error) {
	if repo == "gone" {
		return nil, errors.New("GET https://u:pw@x/v2/gone/tags/list: 404 NAME_UNKNOWN")
	}
	return h.Source.Images(ctx, repo)
}

// One repository failing leaves the others fresh (the registry is down, the failure named); names
// a catalog should not hold are skipped; what is exported stays a valid exposition.
func TestCollectHostileCatalogAndAFailingRepository(t *testing.T) {
	srv := localregtest.Start(t)
	reg := openOCI(t, srv.Host)
	seed(t, reg, "game-server")
	seed(t, reg, "tools")
	var logs bytes.Buffer
	c := &Collector{Targets: []Target{{Source: hostileSource{reg}}}, Timeout: 30 * time.Second, Logger: newTextLogger(&logs)}
	st := c.Collect(context.Background())[0]
	if st.Up || !strings.Contains(st.Error, "gone: ") || strings.Contains(st.Error, "pw@") || len(st.Repositories) != 2 || st.Repositories[1].Images != 6 {
		t.Fatalf("%+v", st)
	}
	if !strings.Contains(logs.String(), "skipping a repository name") {
		t.Errorf("logs:\n%s", logs.String())
	}
	if err := WriteTextfile(filepath.Join(t.TempDir(), "x.prom"), []RegistryStats{st}); err != nil {
		t.Fatal(err)
	}
	// Even stats holding a bad label value (a name that got this far) export without a panic.
	st.Repositories = append(st.Repositories, RepoStats{Repository: "bad\xff", Images: 1})
	if _, err := testutil.GatherAndCount(prometheus.NewPedanticRegistry(), RepoImagesName); err != nil {
		t.Fatal(err)
	}
	r := prometheus.NewPedanticRegistry()
	r.MustRegister(StatsCollector(func() []RegistryStats { return []RegistryStats{st} }))
	if n, err := testutil.GatherAndCount(r, RepoImagesName); err != nil || n != 2 {
		t.Errorf("%d series, %v", n, err)
	}
}
