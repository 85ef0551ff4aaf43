// Package localregtest starts the embedded distribution registry for tests, on 127.0.0.1 only.
package localregtest

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"github.com/regctl-dev/regctl/internal/localreg"
)

// Server is a running test registry.
type Server struct {
	URL  string
	Host string // 127.0.0.1:PORT
	Root string // storage directory ("" for in-memory)
	// MetricsURL is the registry's /metrics (Options.Metrics).
	MetricsURL string
	srv        *httptest.Server

	mu       sync.Mutex
	requests []string // "METHOD /path"
}

// Options tweak the test registry.
type Options struct {
	Root     string // filesystem storage here; "" = a fresh temp dir
	Htpasswd string
	// Wrap lets a test put middleware (fault injection, counting) in front of the registry.
	Wrap func(http.Handler) http.Handler
	// TLS serves HTTPS with a self-signed certificate nothing trusts (for --insecure tests).
	TLS bool
	// Metrics instruments the registry with distribution's metrics, served at MetricsURL (once per
	// test binary: the library registers them process-wide).
	Metrics bool
}

// Start runs a distribution registry with filesystem storage in a temp dir; it stops with the test.
func Start(t testing.TB, opts ...Options) *Server {
	t.Helper()
	var o Options
	if len(opts) > 0 {
		o = opts[0]
	}
	if o.Root == "" {
		o.Root = t.TempDir()
	}
	if o.Metrics && localreg.MetricsInUse() {
		t.Skip("the registry's metrics are registered once per process (run again with -count=1)")
	}
	h, closeApp, err := localreg.Handler(context.Background(), localreg.Options{Root: o.Root, Htpasswd: o.Htpasswd, LogLevel: "error", Metrics: o.Metrics})
	if err != nil {
		t.Fatal(err)
	}
	s := &Server{Root: o.Root}
	var handler http.Handler = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.mu.Lock()
		s.requests = append(s.requests, r.Method+" "+r.URL.Path)
		s.mu.Unlock()
		h.ServeHTTP(w, r)
	})
	if o.Wrap != nil {
		handler = o.Wrap(handler)
	}
	if o.TLS {
		s.srv = httptest.NewTLSServer(handler)
	} else {
		s.srv = httptest.NewServer(handler) // listens on 127.0.0.1
	}
	s.URL = s.srv.URL
	if o.Metrics {
		mh, err := localreg.MetricsHandler()
		if err != nil {
			t.Fatal(err)
		}
		ms := httptest.NewServer(mh)
		t.Cleanup(ms.Close)
		s.MetricsURL = ms.URL + "/metrics"
	}
	s.Host = strings.TrimPrefix(strings.TrimPrefix(s.srv.URL, "http://"), "https://")
	t.Cleanup(func() {
		s.srv.Close()
		_ = closeApp()
	})
	return s
}

// Requests returns the requests served so far and clears the record.
func (s *Server) Requests() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := s.requests
	s.requests = nil
	return out
}

// Count counts recorded requests (without clearing) whose "METHOD /path" contains all parts.
func (s *Server) Count(parts ...string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := 0
outer:
	for _, r := range s.requests {
		for _, p := range parts {
			if !strings.Contains(r, p) {
				continue outer
			}
		}
		n++
	}
	return n
}
