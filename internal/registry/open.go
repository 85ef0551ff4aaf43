package registry

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"strings"

	"github.com/google/go-containerregistry/pkg/authn"

	"github.com/regctl-dev/regctl/internal/config"
	"github.com/regctl-dev/regctl/internal/exitcode"
)

// Options are the process-wide settings every opened registry shares. Everything is injected.
type Options struct {
	Insecure  bool   // global --insecure: plain HTTP and unverified TLS for every registry
	UserAgent string // e.g. regctl/1.2.3
	Getenv    func(string) string
	Transport http.RoundTripper // base transport (tests inject a counting one); default a clone of http.DefaultTransport
	Logger    *slog.Logger
	Jobs      int // parallel requests per operation; default 8
	// Backends are the registry types this build opens, OCIBackend among them; main lists them in
	// one place, so this package neither imports the cloud SDKs nor keeps a list of types.
	Backends []Backend
}

// Opener opens one registry type.
type Opener func(ctx context.Context, name string, rc config.Registry, opts Options) (Registry, error)

// Backend is one registry type: its config (the Kind: its own keys and rules, which the config
// loader checks) and how it opens. Each backend package exports one (ecr.Backend()); adding a
// backend is that package plus one line in main's list.
type Backend struct {
	config.Kind
	Open Opener
}

// Kinds are the backends' config kinds, for config.Sources.
func Kinds(backends []Backend) []config.Kind {
	out := make([]config.Kind, len(backends))
	for i, b := range backends {
		out[i] = b.Kind
	}
	return out
}

// OCIType is the type of a plain OCI distribution registry, the backend this package holds itself.
const OCIType = "oci"

// OCIBackend is any OCI distribution registry (Docker Hub, GHCR, GAR, distribution, zot).
func OCIBackend() Backend {
	return Backend{
		Kind: config.Kind{Type: OCIType, NeedsURL: true, URLExample: "registry.example.com or 127.0.0.1:5000"},
		Open: func(_ context.Context, name string, rc config.Registry, opts Options) (Registry, error) {
			return OpenOCI(name, rc, opts)
		},
	}
}

func (o Options) logger() *slog.Logger {
	if o.Logger == nil {
		return slog.New(slog.DiscardHandler)
	}
	return o.Logger
}

// Open opens a configured registry through its type's backend. ctx bounds what opening does on the
// network (an ECR token), so Ctrl-C stops it.
func Open(ctx context.Context, name string, rc config.Registry, opts Options) (Registry, error) {
	types := make([]string, 0, len(opts.Backends))
	for _, b := range opts.Backends {
		if b.Type == rc.Type && b.Open != nil {
			return b.Open(ctx, name, rc, opts)
		}
		types = append(types, b.Type)
	}
	return nil, fmt.Errorf("registries.%s.type: unknown registry type %q (this build has %s): %w", name, rc.Type, strings.Join(types, ", "), exitcode.ErrUsage)
}

// OpenOCI opens rc as a plain OCI registry: the data plane other backends (Harbor) reuse with the
// same URL, TLS settings and credentials.
func OpenOCI(name string, rc config.Registry, opts Options) (*OCI, error) {
	host, scheme := splitURL(rc.URL)
	insecure := rc.Insecure || opts.Insecure || scheme == "http"
	tr, err := BaseTransport(opts.Transport, insecure, rc.CAFile)
	if err != nil {
		return nil, fmt.Errorf("registries.%s.ca_file: %w", name, err)
	}
	kc, err := Keychain(name, rc, opts.Getenv)
	if err != nil {
		return nil, err
	}
	return NewOCI(OCIConfig{Name: name, Host: host, Insecure: insecure, Keychain: kc, Transport: tr,
		UserAgent: opts.UserAgent, Logger: opts.logger(), Jobs: opts.Jobs}), nil
}

// splitURL accepts "host[:port]", "https://host" or "http://host" (which implies insecure).
func splitURL(u string) (host, scheme string) {
	if s, rest, ok := strings.Cut(u, "://"); ok {
		scheme, u = s, rest
	}
	return strings.TrimSuffix(u, "/"), scheme
}

// maxIdleConnsPerHost bounds the connections kept open to one registry between requests.
const maxIdleConnsPerHost = 32

// BaseTransport is the transport a backend starts from: base (or the default), with TLS verification
// off when insecure and caFile's certificates trusted.
func BaseTransport(base http.RoundTripper, insecure bool, caFile string) (http.RoundTripper, error) {
	if base != nil && !insecure && caFile == "" {
		return base, nil
	}
	var t *http.Transport
	if bt, ok := base.(*http.Transport); ok {
		t = bt.Clone()
	} else if base == nil {
		t = http.DefaultTransport.(*http.Transport).Clone()
	} else {
		// A custom (test) round tripper: it owns TLS itself.
		return base, nil
	}
	if t.TLSClientConfig == nil {
		t.TLSClientConfig = &tls.Config{MinVersion: tls.VersionTLS12}
	}
	if t.MaxIdleConnsPerHost == 0 {
		// net/http keeps 2 idle connections per host by default; regctl runs up to --jobs transfers
		// and several listings at once against one registry, and each connection beyond 2 would be
		// closed after its request and dialled again (measured: 176 connections for one backup).
		t.MaxIdleConnsPerHost = maxIdleConnsPerHost
	}
	if insecure {
		t.TLSClientConfig.InsecureSkipVerify = true //nolint:gosec // asked for with insecure: true / --insecure
	}
	if caFile != "" {
		pem, err := os.ReadFile(caFile)
		if err != nil {
			return nil, err
		}
		pool, err := x509.SystemCertPool()
		if err != nil || pool == nil {
			pool = x509.NewCertPool()
		}
		if !pool.AppendCertsFromPEM(pem) {
			return nil, errors.New(caFile + ": no PEM certificates found")
		}
		t.TLSClientConfig.RootCAs = pool
	}
	return t, nil
}

// Keychain resolves a registry's credentials: username with password/password_env/password_file,
// else docker's config and credential helpers. The password is read here and held only in memory.
func Keychain(name string, rc config.Registry, getenv func(string) string) (authn.Keychain, error) {
	if rc.Username == "" {
		return authn.DefaultKeychain, nil
	}
	var pw string
	switch {
	case rc.Password != "":
		pw = rc.Password
	case rc.PasswordEnv != "":
		if getenv != nil {
			pw = getenv(rc.PasswordEnv)
		}
		if pw == "" {
			return nil, fmt.Errorf("registries.%s.password_env: environment variable %s is not set: %w", name, rc.PasswordEnv, exitcode.ErrUsage)
		}
	case rc.PasswordFile != "":
		b, err := os.ReadFile(rc.PasswordFile)
		if err != nil {
			return nil, exitcode.With(exitcode.Usage, fmt.Errorf("registries.%s.password_file: %w", name, err))
		}
		pw = strings.TrimRight(string(b), "\r\n")
	}
	return staticKeychain{authn.FromConfig(authn.AuthConfig{Username: rc.Username, Password: pw})}, nil
}

// staticKeychain answers every resource with one authenticator: the registry's own credentials.
type staticKeychain struct{ auth authn.Authenticator }

func (k staticKeychain) Resolve(authn.Resource) (authn.Authenticator, error) { return k.auth, nil }

func (k staticKeychain) ResolveContext(context.Context, authn.Resource) (authn.Authenticator, error) {
	return k.auth, nil
}
