package metrics

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// The metrics `regctl metrics serve` and `regctl metrics collect` export.
const (
	RegistryUpName          = "regctl_registry_up"
	RegistryLastSuccessName = "regctl_registry_last_success_timestamp_seconds"
	RegistryDurationName    = "regctl_registry_collect_duration_seconds"
	RegistryErrorsName      = "regctl_registry_collect_errors_total"
	RegistryReposName       = "regctl_registry_repositories"
	RegistryBytesName       = "regctl_registry_stored_bytes"
	RepoImagesName          = "regctl_repository_images"
	RepoSignedName          = "regctl_repository_signed_images"
	RepoUnsignedName        = "regctl_repository_unsigned_images"
	RepoTagsName            = "regctl_repository_tags"
	RepoBytesName           = "regctl_repository_stored_bytes"
	RepoLastPushName        = "regctl_repository_last_push_timestamp_seconds"
	StorageSizeName         = "regctl_storage_size_bytes"
	StorageFreeName         = "regctl_storage_free_bytes"
	StorageUsedName         = "regctl_storage_used_bytes"
)

var (
	regLabels  = []string{"registry"}
	repoLabels = []string{"registry", "repository"}
	fsLabels   = []string{"registry", "path"}

	descUp          = prometheus.NewDesc(RegistryUpName, "1 if the last collection of the registry succeeded, 0 if it failed or timed out (the other metrics are then the last good collection's).", regLabels, nil)
	descLastSuccess = prometheus.NewDesc(RegistryLastSuccessName, "When the registry was last collected successfully (Unix seconds); time() minus this is how stale its numbers are.", regLabels, nil)
	descDuration    = prometheus.NewDesc(RegistryDurationName, "How long the last collection of the registry took.", regLabels, nil)
	descErrors      = prometheus.NewDesc(RegistryErrorsName, "Failed collections (and storage reads) of the registry since the exporter started.", regLabels, nil)
	descRepos       = prometheus.NewDesc(RegistryReposName, "Repositories in the registry.", regLabels, nil)
	descRegBytes    = prometheus.NewDesc(RegistryBytesName, "Bytes of the manifests and blobs the registry's images reference, each blob counted once in the registry.", regLabels, nil)
	descImages      = prometheus.NewDesc(RepoImagesName, "Images in the repository: image manifests and indexes, not platform manifests, signatures, attestations or SBOMs.", repoLabels, nil)
	descSigned      = prometheus.NewDesc(RepoSignedName, "Images in the repository with a cosign signature.", repoLabels, nil)
	descUnsigned    = prometheus.NewDesc(RepoUnsignedName, "Images in the repository without a cosign signature.", repoLabels, nil)
	descTags        = prometheus.NewDesc(RepoTagsName, "Tags on the repository's images (signature, attestation and SBOM tags not counted).", repoLabels, nil)
	descRepoBytes   = prometheus.NewDesc(RepoBytesName, "Bytes of the manifests and blobs the repository's images reference, each blob counted once in the repository (blobs shared with other repositories are counted in each).", repoLabels, nil)
	descLastPush    = prometheus.NewDesc(RepoLastPushName, "Newest push time of an image in the repository (Unix seconds): the registry's record (ECR, Harbor), else the image's created time.", repoLabels, nil)
	descFsSize      = prometheus.NewDesc(StorageSizeName, "Size of the filesystem holding the registry's storage directory.", fsLabels, nil)
	descFsFree      = prometheus.NewDesc(StorageFreeName, "Bytes still free for the registry on the filesystem holding its storage directory.", fsLabels, nil)
	descFsUsed      = prometheus.NewDesc(StorageUsedName, "Bytes used on the filesystem holding the registry's storage directory (size minus free blocks, as df).", fsLabels, nil)
)

// StatsCollector is a prometheus.Collector over the stats a function returns; it never reads a
// registry itself, so a scrape never waits for one.
type StatsCollector func() []RegistryStats

// Describe sends every metric's description.
func (s StatsCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{descUp, descLastSuccess, descDuration, descErrors, descRepos, descRegBytes,
		descImages, descSigned, descUnsigned, descTags, descRepoBytes, descLastPush, descFsSize, descFsFree, descFsUsed} {
		ch <- d
	}
}

// Collect sends the stats as constant metrics.
func (s StatsCollector) Collect(ch chan<- prometheus.Metric) {
	// NewConstMetric refuses label values that are not UTF-8 (from a hostile registry): that
	// sample is left out instead of panicking in the scrape.
	send := func(d *prometheus.Desc, typ prometheus.ValueType, v float64, labels ...string) {
		if m, err := prometheus.NewConstMetric(d, typ, v, labels...); err == nil {
			ch <- m
		}
	}
	gauge := func(d *prometheus.Desc, v float64, labels ...string) { send(d, prometheus.GaugeValue, v, labels...) }
	for _, st := range s() {
		r := st.Registry
		up := 0.0
		if st.Up {
			up = 1
		}
		gauge(descUp, up, r)
		if !st.LastSuccess.IsZero() {
			gauge(descLastSuccess, unixSeconds(st.LastSuccess), r)
		}
		gauge(descDuration, st.Duration, r)
		send(descErrors, prometheus.CounterValue, st.ErrorsTotal, r)
		if st.Up || !st.LastSuccess.IsZero() {
			gauge(descRepos, float64(len(st.Repositories)), r)
			if st.BytesKnown {
				gauge(descRegBytes, float64(st.StoredBytes), r)
			}
		}
		for _, rs := range st.Repositories {
			gauge(descImages, float64(rs.Images), r, rs.Repository)
			gauge(descSigned, float64(rs.Signed), r, rs.Repository)
			gauge(descUnsigned, float64(rs.Unsigned), r, rs.Repository)
			gauge(descTags, float64(rs.Tags), r, rs.Repository)
			if rs.BytesKnown {
				gauge(descRepoBytes, float64(rs.StoredBytes), r, rs.Repository)
			}
			if !rs.LastPush.IsZero() {
				gauge(descLastPush, unixSeconds(rs.LastPush), r, rs.Repository)
			}
		}
		if fs := st.Storage; fs != nil {
			gauge(descFsSize, float64(fs.SizeBytes), r, fs.Path)
			gauge(descFsFree, float64(fs.FreeBytes), r, fs.Path)
			gauge(descFsUsed, float64(fs.UsedBytes), r, fs.Path)
		}
	}
}

// WriteTextfile writes stats for node_exporter's textfile collector, atomically.
func WriteTextfile(path string, stats []RegistryStats) error {
	reg := prometheus.NewPedanticRegistry()
	if err := reg.Register(StatsCollector(func() []RegistryStats { return stats })); err != nil {
		return err
	}
	if err := prometheus.WriteToTextfile(path, reg); err != nil {
		return fmt.Errorf("writing the metrics textfile %s: %w", path, err)
	}
	return nil
}

// Exporter collects in the background every Interval and serves the latest stats on /metrics.
type Exporter struct {
	Collector *Collector
	// Interval between collections (default 60s): scrapes in between are answered from the last one.
	Interval time.Duration

	mu     sync.RWMutex
	stats  []RegistryStats
	cycles int
}

// Stats returns the latest stats.
func (e *Exporter) Stats() []RegistryStats {
	e.mu.RLock()
	defer e.mu.RUnlock()
	return e.stats
}

// Collections says how many collections have finished.
func (e *Exporter) Collections() int {
	e.mu.RLock()
	defer e.mu.RUnlock()
	return e.cycles
}

// CollectOnce collects every registry now and keeps the result for /metrics.
func (e *Exporter) CollectOnce(ctx context.Context) []RegistryStats {
	st := e.Collector.Collect(ctx)
	e.mu.Lock()
	e.stats = st
	e.cycles++
	e.mu.Unlock()
	return st
}

// Run collects every Interval until ctx ends. The first collection runs at once.
func (e *Exporter) Run(ctx context.Context) {
	interval := e.Interval
	if interval <= 0 {
		interval = time.Minute
	}
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		e.CollectOnce(ctx)
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// Handler serves /metrics (the registries' stats and the exporter's own Go and process metrics),
// /healthz and a short index page.
func (e *Exporter) Handler() http.Handler {
	reg := prometheus.NewRegistry()
	reg.MustRegister(StatsCollector(e.Stats), collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{ErrorHandling: promhttp.ContinueOnError}))
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) { fmt.Fprintln(w, "ok") })
	mux.HandleFunc("GET /{$}", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		fmt.Fprintln(w, `<html><body><h1>regctl metrics</h1><p><a href="/metrics">/metrics</a></p></body></html>`)
	})
	return mux
}

// Serve listens on addr, collects in the background and serves until ctx ends. ready, if set, gets
// the URL once the first collection is done and the listener is open.
func (e *Exporter) Serve(ctx context.Context, addr string, ready func(url string)) error {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("listening on %s: %w", addr, err)
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	// The first collection before serving: a scrape never sees "no data yet" as every registry down.
	e.CollectOnce(ctx)
	go func() {
		t := time.NewTimer(e.interval())
		defer t.Stop()
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		e.Run(ctx)
	}()
	srv := &http.Server{Handler: e.Handler(), ReadHeaderTimeout: 10 * time.Second}
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	if ready != nil {
		ready("http://" + ln.Addr().String())
	}
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	shutdownCtx, stop := context.WithTimeout(context.Background(), 5*time.Second)
	defer stop()
	_ = srv.Shutdown(shutdownCtx)
	<-errc
	return nil
}

func (e *Exporter) interval() time.Duration {
	if e.Interval <= 0 {
		return time.Minute
	}
	return e.Interval
}

// StorageCollector exports only the regctl_storage_* metrics of one registry's storage directory,
// read at every scrape (statfs is cheap): what the embedded registry serves beside its own metrics.
type StorageCollector struct {
	Registry string
	Path     string
	Logger   func(err error)
}

// Describe sends the storage metrics' descriptions.
func (s StorageCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- descFsSize
	ch <- descFsFree
	ch <- descFsUsed
}

// Collect reads the filesystem; an error leaves the metrics out (and is logged).
func (s StorageCollector) Collect(ch chan<- prometheus.Metric) {
	fs, err := Statfs(s.Path)
	if err != nil {
		if s.Logger != nil {
			s.Logger(err)
		}
		return
	}
	for d, v := range map[*prometheus.Desc]uint64{descFsSize: fs.SizeBytes, descFsFree: fs.FreeBytes, descFsUsed: fs.UsedBytes} {
		if m, err := prometheus.NewConstMetric(d, prometheus.GaugeValue, float64(v), s.Registry, s.Path); err == nil {
			ch <- m
		}
	}
}
