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
	// Backends open the registry types other than oci (ecr, harbor); main injects them, so this
	// package does not import the cloud SDKs.
	Backends map[string]Opener
}

// Opener opens one registry type.
type Opener func(ctx context.Context, name string, rc config.Registry, opts Options) (Registry, error)

func (o Options) logger() *slog.Logger {
	if o.Logger == nil {
		return slog.New(slog.DiscardHandler)
	}
	return o.Logger
}

// Open opens a configured registry.
func Open(name string, rc config.Registry, opts Options) (Registry, error) {
	switch rc.Type {
	case config.TypeOCI:
		return OpenOCI(name, rc, opts)
	case config.TypeECR, config.TypeHarbor:
		if open, ok := opts.Backends[rc.Type]; ok {
			return open(context.Background(), name, rc, opts)
		}
		return nil, fmt.Errorf("registries.%s: the %s backend is not available in this build yet: %w", name, rc.Type, exitcode.ErrUsage)
	}
	return nil, fmt.Errorf("registries.%s.type: unknown registry type %q: %w", name, rc.Type, exitcode.ErrUsage)
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
