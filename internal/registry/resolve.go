package registry

import (
	"context"
	"fmt"
	"strings"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"

	"github.com/regctl-dev/regctl/internal/config"
	"github.com/regctl-dev/regctl/internal/exitcode"
)

// Resolver turns what a user typed into a Registry and a repository path:
//
//	local/game-server            a registry named "local" in the config, repository game-server
//	127.0.0.1:5000/game-server   a host: the configured registry with that host, else an ad hoc OCI registry
//	game-server                  the default_registry
type Resolver struct {
	Config *config.Config
	Opts   Options
	// Context bounds opening (an ECR token fetch): the command's, so Ctrl-C stops it. nil: Background.
	Context context.Context
	opened  map[string]Registry
}

// NewResolver returns a Resolver over cfg.
func NewResolver(cfg *config.Config, opts Options) *Resolver {
	if cfg == nil {
		cfg = &config.Config{}
	}
	return &Resolver{Config: cfg, Opts: opts, opened: map[string]Registry{}}
}

// Registry opens a registry by config name or host.
func (r *Resolver) Registry(nameOrHost string) (Registry, error) {
	if reg, ok := r.opened[nameOrHost]; ok {
		return reg, nil
	}
	reg, err := r.open(nameOrHost)
	if err != nil {
		return nil, err
	}
	r.opened[nameOrHost] = reg
	return reg, nil
}

func (r *Resolver) open(nameOrHost string) (Registry, error) {
	ctx := r.Context
	if ctx == nil {
		ctx = context.Background()
	}
	if rc, ok := r.Config.Registries[nameOrHost]; ok {
		return Open(ctx, nameOrHost, rc, r.Opts)
	}
	if !looksLikeHost(nameOrHost) {
		return nil, fmt.Errorf("%q is neither a registry in the config nor a host (host names contain a dot or a port): %w", nameOrHost, exitcode.ErrUsage)
	}
	// A host that a configured registry serves gets that registry's credentials and TLS settings.
	for n, rc := range r.Config.Registries {
		if h, _ := splitURL(rc.URL); h == nameOrHost && rc.URL != "" {
			return Open(ctx, n, rc, r.Opts)
		}
	}
	if _, err := name.NewRegistry(nameOrHost); err != nil {
		return nil, fmt.Errorf("%q: %w", nameOrHost, exitcode.ErrUsage)
	}
	// An unconfigured host is a plain OCI registry.
	return OpenOCI(nameOrHost, config.Registry{Type: OCIType, URL: nameOrHost}, r.Opts)
}

// Default opens the default registry, or explains how to name one.
func (r *Resolver) Default() (Registry, error) {
	if r.Config.DefaultRegistry == "" {
		return nil, fmt.Errorf("no registry given and no default_registry in the config: name one as REGISTRY/REPO or set default_registry: %w", exitcode.ErrUsage)
	}
	return r.Registry(r.Config.DefaultRegistry)
}

// Repository splits "REGISTRY/REPO" (or a bare REPO on the default registry).
func (r *Resolver) Repository(arg string) (Registry, string, error) {
	if arg == "" {
		return nil, "", fmt.Errorf("empty repository: %w", exitcode.ErrUsage)
	}
	first, rest, hasSlash := strings.Cut(arg, "/")
	if _, ok := r.Config.Registries[first]; ok || looksLikeHost(first) {
		reg, err := r.Registry(first)
		if err != nil {
			return nil, "", err
		}
		if !hasSlash {
			return reg, "", nil
		}
		return reg, rest, validateRepo(reg, rest)
	}
	reg, err := r.Default()
	if err != nil {
		return nil, "", fmt.Errorf("%q: %w", arg, err)
	}
	return reg, arg, validateRepo(reg, arg)
}

// Reference parses "REGISTRY/REPO[:TAG|@DIGEST]" into a registry and a go-containerregistry reference.
// A reference without tag or digest means :latest, as docker does.
func (r *Resolver) Reference(arg string) (Registry, name.Reference, error) {
	repoPart, suffix := arg, ""
	if i := strings.Index(arg, "@"); i >= 0 {
		repoPart, suffix = arg[:i], arg[i:]
	} else if i := strings.LastIndex(arg, ":"); i > strings.LastIndex(arg, "/") {
		repoPart, suffix = arg[:i], arg[i:]
	}
	reg, repo, err := r.Repository(repoPart)
	if err != nil {
		return nil, nil, err
	}
	if repo == "" {
		return nil, nil, fmt.Errorf("%q names a registry, not an image (want REGISTRY/REPO[:TAG|@DIGEST]): %w", arg, exitcode.ErrUsage)
	}
	ref, err := name.ParseReference(reg.Host()+"/"+repo+suffix, NameOptions(reg)...)
	if err != nil {
		return nil, nil, fmt.Errorf("%q: %v: %w", arg, err, exitcode.ErrUsage)
	}
	return reg, ref, nil
}

// NameOptions are the go-containerregistry name options for references on reg: strict validation,
// and plain HTTP when the registry is insecure.
func NameOptions(reg Registry) []name.Option {
	opts := []name.Option{name.StrictValidation}
	if reg.Insecure() {
		opts = append(opts, name.Insecure)
	}
	return opts
}

// RepositoryRef returns the go-containerregistry repository for repo on reg.
func RepositoryRef(reg Registry, repo string) (name.Repository, error) {
	r, err := name.NewRepository(reg.Host()+"/"+repo, NameOptions(reg)...)
	if err != nil {
		return name.Repository{}, fmt.Errorf("repository %q: %v: %w", repo, err, exitcode.ErrUsage)
	}
	return r, nil
}

func validateRepo(reg Registry, repo string) error {
	_, err := RepositoryRef(reg, repo)
	return err
}

func looksLikeHost(s string) bool {
	return s == "localhost" || strings.ContainsAny(s, ".:")
}

// staticKeychain must stay a Keychain: compile-time check.
var _ authn.ContextKeychain = staticKeychain{}

// MatchAny reports whether s matches any of the globs, or true when there are none. "*" matches any
// run of characters, "/" included, so "game-server/*" selects every repository under game-server/;
// every other character matches itself.
func MatchAny(globs []string, s string) bool {
	if len(globs) == 0 {
		return true
	}
	for _, g := range globs {
		if matchGlob(g, s) {
			return true
		}
	}
	return false
}

// matchGlob matches s against g's literal parts in order: the first at the start, the last at the
// end, each one between at its leftmost place after the one before (enough when "*" is the only
// wildcard).
func matchGlob(g, s string) bool {
	parts := strings.Split(g, "*")
	if len(parts) == 1 {
		return g == s
	}
	first, last := parts[0], parts[len(parts)-1]
	if len(s) < len(first)+len(last) || !strings.HasPrefix(s, first) || !strings.HasSuffix(s, last) {
		return false
	}
	s = s[len(first) : len(s)-len(last)]
	for _, p := range parts[1 : len(parts)-1] {
		i := strings.Index(s, p)
		if i < 0 {
			return false
		}
		s = s[i+len(p):]
	}
	return true
}
