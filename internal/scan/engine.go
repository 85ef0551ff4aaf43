// Package scan scans images for vulnerabilities with trivy as a library, straight from the registry
// through regctl's own registry abstraction (auth, TLS, retries): no Docker daemon, no trivy binary.
// It also applies the gate (thresholds, ignores), writes reports and evaluates Rego image policies.
package scan

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"time"

	trivydb "github.com/aquasecurity/trivy-db/pkg/db"
	dbtypes "github.com/aquasecurity/trivy-db/pkg/types"
	"github.com/aquasecurity/trivy/pkg/cache"
	"github.com/aquasecurity/trivy/pkg/clock"
	"github.com/aquasecurity/trivy/pkg/fanal/analyzer"
	"github.com/aquasecurity/trivy/pkg/fanal/applier"
	"github.com/aquasecurity/trivy/pkg/fanal/artifact"
	artimage "github.com/aquasecurity/trivy/pkg/fanal/artifact/image"
	ftypes "github.com/aquasecurity/trivy/pkg/fanal/types"
	"github.com/aquasecurity/trivy/pkg/result"
	tscan "github.com/aquasecurity/trivy/pkg/scan"
	"github.com/aquasecurity/trivy/pkg/scan/langpkg"
	"github.com/aquasecurity/trivy/pkg/scan/local"
	"github.com/aquasecurity/trivy/pkg/scan/ospkg"
	"github.com/aquasecurity/trivy/pkg/types"
	"github.com/aquasecurity/trivy/pkg/vulnerability"
	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	bolt "go.etcd.io/bbolt"

	"github.com/regctl-dev/regctl/internal/registry"
)

// Severities in trivy's order, lowest first.
var Severities = []string{"UNKNOWN", "LOW", "MEDIUM", "HIGH", "CRITICAL"}

// ScanOptions says what to scan and what to report.
type ScanOptions struct {
	Platform      string   // e.g. linux/arm64; "" = every platform of an index
	Severities    []string // reported severities (default CRITICAL,HIGH,MEDIUM)
	IgnoreUnfixed bool
	IgnoreFile    string // .trivyignore or .trivyignore.yaml
	Now           time.Time
}

// Target is one scanned image (one platform).
type Target struct {
	Reference string
	Digest    string
	Platform  string
	Report    types.Report
	// GateResults are the findings the gate counts: the same ignore file and unfixed filter as the
	// report, but every severity, so a narrower --severity for the report can never hide a finding
	// from a threshold.
	GateResults types.Results  `json:"-"`
	Config      *v1.ConfigFile // for image policies
}

// Engine scans images against one opened vulnerability DB. trivy-db is process-global, so the engine
// serialises scans and only one engine may be open at a time.
type Engine struct {
	dbDir  string
	logger *slog.Logger
	mu     sync.Mutex
}

var engineOpen sync.Mutex

// Open opens the DB in dbDir read-only. Close releases it.
func Open(dbDir string, logger *slog.Logger) (*Engine, error) {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	if !engineOpen.TryLock() {
		return nil, errors.New("a vulnerability DB is already open in this process")
	}
	if err := trivydb.Init(dbDir, trivydb.WithBoltOptions(&bolt.Options{ReadOnly: true, Timeout: 5 * time.Second})); err != nil {
		engineOpen.Unlock()
		return nil, fmt.Errorf("opening the vulnerability DB in %s: %w", dbDir, err)
	}
	return &Engine{dbDir: dbDir, logger: logger}, nil
}

// Close closes the DB.
func (e *Engine) Close() error {
	defer engineOpen.Unlock()
	return trivydb.Close()
}

// disabledAnalyzers mirrors `trivy image --scanners vuln`: installed OS and language packages only;
// no lock files, secrets, misconfiguration, licenses, Rekor lookups, or jars (they need trivy's
// separate Java DB).
var disabledAnalyzers = func() []analyzer.Type {
	d := append([]analyzer.Type{}, analyzer.TypeLockfiles...)
	d = append(d, analyzer.TypeConfigFiles...)
	return append(d, analyzer.TypeApkCommand, analyzer.TypeSecret, analyzer.TypeLicenseFile,
		analyzer.TypeHistoryDockerfile, analyzer.TypeExecutable, analyzer.TypeRpmArchive, analyzer.TypeJar)
}()

// Scan scans ref (every platform of an index unless o.Platform) with the registry's remote options.
func (e *Engine) Scan(ctx context.Context, remoteOpts []remote.Option, ref name.Reference, o ScanOptions) ([]Target, error) {
	remoteOpts = append(remoteOpts, remote.WithContext(ctx))
	desc, err := remote.Get(ref, remoteOpts...)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", ref, err)
	}
	type one struct {
		digest   v1.Hash
		platform string
	}
	var todo []one
	if desc.MediaType.IsIndex() {
		platforms, err := registry.IndexPlatforms(desc)
		if err != nil {
			return nil, err
		}
		for _, m := range platforms {
			p := m.Platform.String()
			if o.Platform == "" || o.Platform == p {
				todo = append(todo, one{m.Digest, p})
			}
		}
		if len(todo) == 0 {
			return nil, fmt.Errorf("%s: no platform %q in the index", ref, o.Platform)
		}
	} else {
		todo = []one{{desc.Digest, ""}}
	}
	var out []Target
	for _, t := range todo {
		tg, err := e.scanOne(ctx, remoteOpts, ref, t.digest, t.platform, o)
		if err != nil {
			return nil, err
		}
		out = append(out, tg)
	}
	return out, nil
}

func (e *Engine) scanOne(ctx context.Context, remoteOpts []remote.Option, ref name.Reference, digest v1.Hash, platform string, o ScanOptions) (Target, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	img, err := remote.Image(ref.Context().Digest(digest.String()), remoteOpts...)
	if err != nil {
		return Target{}, fmt.Errorf("%s@%s: %w", ref.Context(), digest, err)
	}
	cfg, err := img.ConfigFile()
	if err != nil {
		return Target{}, fmt.Errorf("%s@%s: reading the image config: %w", ref.Context(), digest, err)
	}
	if platform == "" {
		platform = cfg.OS + "/" + cfg.Architecture
	}
	timg := &trivyImage{Image: img, ref: ref, digest: digest}
	c := cache.NewMemoryCache()
	art, err := artimage.NewArtifact(timg, c, artifact.Option{DisabledAnalyzers: disabledAnalyzers, NoProgress: true})
	if err != nil {
		return Target{}, err
	}
	svc := tscan.NewService(local.NewService(applier.NewApplier(c), ospkg.NewScanner(), langpkg.NewScanner(),
		vulnerability.NewClient(trivydb.Config{})), art)
	if o.Now.IsZero() {
		o.Now = time.Now()
	}
	ctx = clock.With(ctx, o.Now)
	report, err := svc.ScanArtifact(ctx, types.ScanOptions{
		PkgTypes:            []string{types.PkgTypeOS, types.PkgTypeLibrary},
		PkgRelationships:    ftypes.Relationships, // nil would filter out every package
		Scanners:            types.Scanners{types.VulnerabilityScanner},
		VulnSeveritySources: []dbtypes.SourceID{"auto"},
	})
	if err != nil {
		return Target{}, fmt.Errorf("scanning %s: %w", ref, err)
	}
	gateResults, err := filterReport(ctx, &report, o)
	if err != nil {
		return Target{}, err
	}
	return Target{Reference: ref.String(), Digest: digest.String(), Platform: platform, Report: report, GateResults: gateResults, Config: cfg}, nil
}

// filterReport applies the ignore file and --ignore-unfixed to a copy of the results for the gate
// (every severity), then the same plus the reported severities to the report itself.
func filterReport(ctx context.Context, report *types.Report, o ScanOptions) (types.Results, error) {
	base := result.FilterOptions{IgnoreFile: o.IgnoreFile}
	if o.IgnoreUnfixed {
		// As trivy's --ignore-unfixed: keep only findings whose status is "fixed".
		for _, st := range dbtypes.Statuses {
			if s := dbtypes.NewStatus(st); s != dbtypes.StatusFixed {
				base.IgnoreStatuses = append(base.IgnoreStatuses, s)
			}
		}
	}
	gate := *report
	gate.Results = make(types.Results, len(report.Results))
	for i, r := range report.Results {
		r.Vulnerabilities = slices.Clone(r.Vulnerabilities)
		gate.Results[i] = r
	}
	all := base
	for _, s := range Severities {
		v, _ := dbtypes.NewSeverity(s)
		all.Severities = append(all.Severities, v)
	}
	if err := result.Filter(ctx, gate, all); err != nil {
		return nil, fmt.Errorf("applying %s: %w", o.IgnoreFile, err)
	}
	sev := o.Severities
	if len(sev) == 0 {
		sev = []string{"CRITICAL", "HIGH", "MEDIUM"}
	}
	shown := base
	for _, s := range sev {
		v, err := dbtypes.NewSeverity(strings.ToUpper(s))
		if err != nil {
			return nil, fmt.Errorf("--severity %q: %w", s, err)
		}
		shown.Severities = append(shown.Severities, v)
	}
	if err := result.Filter(ctx, *report, shown); err != nil {
		return nil, fmt.Errorf("applying %s: %w", o.IgnoreFile, err)
	}
	return gate.Results, nil
}

// trivyImage gives a go-containerregistry image (fetched with regctl's auth and transport) the names
// trivy reports, the same way trivy's own remote image does.
type trivyImage struct {
	v1.Image
	ref    name.Reference
	digest v1.Hash
}

func (i *trivyImage) Name() string { return i.ref.String() }

func (i *trivyImage) ID() (string, error) {
	d, err := i.ConfigName()
	return d.String(), err
}

func (i *trivyImage) RepoTags() []string {
	if t, ok := i.ref.(name.Tag); ok {
		return []string{repoName(i.ref) + ":" + t.TagStr()}
	}
	return []string{}
}

func (i *trivyImage) RepoDigests() []string {
	return []string{repoName(i.ref) + "@" + i.digest.String()}
}

func repoName(ref name.Reference) string {
	c := ref.Context()
	if c.RegistryStr() != name.DefaultRegistry {
		return c.RegistryStr() + "/" + c.RepositoryStr()
	}
	return strings.TrimPrefix(c.RepositoryStr(), "library/")
}

var _ ftypes.Image = (*trivyImage)(nil)
