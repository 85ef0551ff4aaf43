// Package localreg runs the CNCF distribution registry in-process: the embedded registry behind
// `regctl registry serve`, the demo and the tests. It also runs the library's garbage collector.
package localreg

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/distribution/distribution/v3/configuration"
	"github.com/distribution/distribution/v3/registry/handlers"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/sirupsen/logrus"

	"github.com/regctl-dev/regctl/internal/exitcode"

	_ "github.com/distribution/distribution/v3/registry/auth/htpasswd"             // --htpasswd
	_ "github.com/distribution/distribution/v3/registry/storage/driver/filesystem" // --root
	_ "github.com/distribution/distribution/v3/registry/storage/driver/inmemory"   // tests
)

// Options configures the embedded registry.
type Options struct {
	Addr     string // listen address; must be given explicitly (default in the CLI: 127.0.0.1:5000)
	Root     string // storage directory; "" keeps everything in memory
	Htpasswd string // bcrypt htpasswd file enabling basic auth
	TLSCert  string
	TLSKey   string
	// Log receives the registry's own log lines (it logs through logrus); nil discards them.
	Log      io.Writer
	LogLevel string // logrus level: error, warn, info, debug

	// Metrics instruments the registry with distribution's own Prometheus metrics (registry_http_*,
	// registry_storage_*). The library registers them in the process-wide default Prometheus
	// registry, so one registry per process can have them (a second is refused).
	Metrics bool
	// MetricsAddr (Serve) serves those metrics, and MetricsCollectors beside them, on /metrics at
	// this address; it implies Metrics. MetricsReady, if set, gets the metrics URL.
	MetricsAddr       string
	MetricsCollectors []prometheus.Collector
	MetricsReady      func(url string)
}

// metricsTaken: distribution's metrics are registered once per process.
var metricsTaken atomic.Bool

// MetricsInUse reports whether a registry of this process has the metrics already (a test run
// again with -count skips what needs them).
func MetricsInUse() bool { return metricsTaken.Load() }

// ErrMetricsTaken is the refusal of a second instrumented registry in one process.
var ErrMetricsTaken = errors.New("the registry's metrics are registered once per process, and another embedded registry has them")

// logMu guards the process-wide logrus logger the distribution library writes to.
var logMu sync.Mutex

func configure(o Options) (*configuration.Configuration, error) {
	cfg := &configuration.Configuration{}
	cfg.Version = "0.1"
	if o.Root != "" {
		if err := os.MkdirAll(o.Root, 0o755); err != nil {
			return nil, fmt.Errorf("--root: %w", err)
		}
		cfg.Storage = configuration.Storage{"filesystem": configuration.Parameters{"rootdirectory": o.Root}}
	} else {
		cfg.Storage = configuration.Storage{"inmemory": configuration.Parameters{}}
	}
	// Deletes are what lifecycle and restore need; without this the registry answers 405.
	cfg.Storage["delete"] = configuration.Parameters{"enabled": true}
	// The upload purger is a background goroutine that would outlive a test server.
	cfg.Storage["maintenance"] = configuration.Parameters{"uploadpurging": map[any]any{"enabled": false}}
	secret := make([]byte, 16)
	if _, err := rand.Read(secret); err != nil {
		return nil, err
	}
	cfg.HTTP.Secret = hex.EncodeToString(secret)
	cfg.Log.AccessLog.Disabled = true
	// configuration.Parse would default this; built by hand it is 0, which refuses every catalog call.
	cfg.Catalog.MaxEntries = 1000
	if o.Metrics || o.MetricsAddr != "" {
		if !metricsTaken.CompareAndSwap(false, true) {
			return nil, ErrMetricsTaken
		}
		cfg.HTTP.Debug.Prometheus.Enabled = true
	}
	if o.Htpasswd != "" {
		if _, err := os.Stat(o.Htpasswd); err != nil {
			return nil, exitcode.With(exitcode.NotFound, fmt.Errorf("--htpasswd: %w", err))
		}
		cfg.Auth = configuration.Auth{"htpasswd": configuration.Parameters{"realm": "regctl", "path": o.Htpasswd}}
	}
	return cfg, nil
}

// Handler returns the registry as an http.Handler and a function that releases it.
func Handler(ctx context.Context, o Options) (h http.Handler, closeFn func() error, err error) {
	cfg, err := configure(o)
	if err != nil {
		return nil, nil, err
	}
	setLogging(o)
	// NewApp panics on storage and auth set-up errors; turn that into an error.
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("starting registry: %v", r)
		}
	}()
	app := handlers.NewApp(ctx, cfg)
	return app, app.Shutdown, nil
}

func setLogging(o Options) {
	logMu.Lock()
	defer logMu.Unlock()
	w := o.Log
	if w == nil {
		w = io.Discard
	}
	lvl, err := logrus.ParseLevel(o.LogLevel)
	if err != nil {
		lvl = logrus.WarnLevel
	}
	if lvl < logrus.InfoLevel {
		// The library logs every 4xx answer at error level, and clients cause them on purpose (a push
		// HEADs each blob to see whether to upload it); only show them when asked with -v.
		w = &dropClientErrors{w: w}
	}
	logrus.SetOutput(w)
	logrus.SetLevel(lvl)
}

// dropClientErrors filters the library's "response completed with error" lines for 4xx answers.
type dropClientErrors struct{ w io.Writer }

func (d *dropClientErrors) Write(p []byte) (int, error) {
	if bytes.Contains(p, []byte("response completed with error")) && bytes.Contains(p, []byte("http.response.status=4")) {
		return len(p), nil
	}
	return d.w.Write(p)
}

// Serve listens on o.Addr and serves until ctx ends, then shuts down gracefully (in-flight requests
// get up to 10 seconds). ready, if set, is called with the URL once the listener is open.
func Serve(ctx context.Context, o Options, ready func(url string)) error {
	if o.Addr == "" {
		return fmt.Errorf("--addr is required: %w", exitcode.ErrUsage)
	}
	if (o.TLSCert == "") != (o.TLSKey == "") {
		return fmt.Errorf("--tls-cert and --tls-key go together: %w", exitcode.ErrUsage)
	}
	h, closeApp, err := Handler(ctx, o)
	if err != nil {
		return err
	}
	defer closeApp()
	if o.MetricsAddr != "" {
		stop, err := serveMetrics(o)
		if err != nil {
			return err
		}
		defer stop()
	}
	ln, err := net.Listen("tcp", o.Addr)
	if err != nil {
		return fmt.Errorf("listening on %s: %w", o.Addr, err)
	}
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 30 * time.Second}
	errc := make(chan error, 1)
	scheme := "http"
	go func() {
		if o.TLSCert != "" {
			errc <- srv.ServeTLS(ln, o.TLSCert, o.TLSKey)
			return
		}
		errc <- srv.Serve(ln)
	}()
	if o.TLSCert != "" {
		scheme = "https"
	}
	if ready != nil {
		ready(scheme + "://" + ln.Addr().String())
	}
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	shutdownCtx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := srv.Shutdown(shutdownCtx); err != nil {
		return err
	}
	if err := <-errc; err != nil && !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}

// MetricsHandler serves /metrics: the process's default Prometheus registry (where distribution
// registers its metrics, with Go and process metrics) and the extra collectors.
func MetricsHandler(extra ...prometheus.Collector) (http.Handler, error) {
	reg := prometheus.NewRegistry()
	for _, c := range extra {
		if err := reg.Register(c); err != nil {
			return nil, err
		}
	}
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", promhttp.HandlerFor(prometheus.Gatherers{prometheus.DefaultGatherer, reg}, promhttp.HandlerOpts{ErrorHandling: promhttp.ContinueOnError}))
	return mux, nil
}

// serveMetrics listens on o.MetricsAddr and serves MetricsHandler until ctx ends.
func serveMetrics(o Options) (stop func(), err error) {
	h, err := MetricsHandler(o.MetricsCollectors...)
	if err != nil {
		return nil, err
	}
	ln, err := net.Listen("tcp", o.MetricsAddr)
	if err != nil {
		return nil, fmt.Errorf("--metrics-addr: listening on %s: %w", o.MetricsAddr, err)
	}
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = srv.Serve(ln) }()
	if o.MetricsReady != nil {
		o.MetricsReady("http://" + ln.Addr().String() + "/metrics")
	}
	return func() {
		c, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = srv.Shutdown(c)
	}, nil
}

// HostOf strips the scheme from a URL Serve reported.
func HostOf(url string) string {
	_, host, _ := strings.Cut(url, "://")
	return host
}
