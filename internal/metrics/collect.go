package metrics

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"golang.org/x/sync/errgroup"

	"github.com/regctl-dev/regctl/internal/registry"
)

// Source is what collecting a registry's metrics needs of it; every registry.Registry is one.
type Source interface {
	Name() string
	Repositories(ctx context.Context, prefix string) ([]string, error)
	Images(ctx context.Context, repo string) ([]registry.Image, error)
}

// ManifestFetcher is the side interface that gives a manifest's blobs (config and layers), so
// stored bytes can count each blob once. The OCI backend has it, and ECR and Harbor through the OCI
// data plane they embed. A Source without it gets no byte metrics.
type ManifestFetcher interface {
	FetchManifests(ctx context.Context, repo string, digests []v1.Hash) (map[v1.Hash]*registry.Manifest, error)
}

// Target is one registry to collect, with the directory it stores blobs in when it is known
// (--storage-path, or the embedded registry's --root): that filesystem's size and free space.
type Target struct {
	Source      Source
	StoragePath string
}

// RepoStats are one repository's numbers.
type RepoStats struct {
	Repository string `json:"repository"`
	// Images counts image manifests and indexes, not their platform manifests and not signatures,
	// attestations, SBOMs or other referrers.
	Images   int `json:"images"`
	Signed   int `json:"signed"`
	Unsigned int `json:"unsigned"`
	// Tags counts the tags on those images (signature-style .sig/.att/.sbom tags not included).
	Tags int `json:"tags"`
	// StoredBytes is the size of every manifest and blob the repository's manifests reference, each
	// counted once within the repository; BytesKnown is false when the backend cannot say.
	StoredBytes int64 `json:"storedBytes"`
	BytesKnown  bool  `json:"bytesKnown"`
	// LastPush is the newest push time of an image (the backend's record where it has one, else the
	// image's own created time), zero when none is known.
	LastPush time.Time `json:"lastPush,omitzero"`
}

// Filesystem is the filesystem holding a registry's storage directory, as statfs(2) reports it.
type Filesystem struct {
	Path      string `json:"path"`
	SizeBytes uint64 `json:"sizeBytes"`
	// FreeBytes is what an unprivileged writer (the registry) can still use (f_bavail).
	FreeBytes uint64 `json:"freeBytes"`
	// UsedBytes is size minus all free blocks (f_bfree), as df reports it.
	UsedBytes uint64 `json:"usedBytes"`
}

// RegistryStats is one registry's collection. When a collection fails, Repositories and StoredBytes
// are the last good collection's (LastSuccess says how old), and Up is false.
type RegistryStats struct {
	Registry     string      `json:"registry"`
	Up           bool        `json:"up"`
	Error        string      `json:"error,omitempty"`
	Repositories []RepoStats `json:"repositories"`
	StoredBytes  int64       `json:"storedBytes"`
	BytesKnown   bool        `json:"bytesKnown"`
	Storage      *Filesystem `json:"storage,omitempty"`
	Duration     float64     `json:"durationSeconds"`
	CollectedAt  time.Time   `json:"collectedAt"`
	LastSuccess  time.Time   `json:"lastSuccess,omitzero"`
	// ErrorsTotal counts the failed collections and repositories since the collector started.
	ErrorsTotal float64 `json:"errorsTotal"`
}

// Collector collects registries' metrics. It keeps each registry's last good numbers (served when a
// collection fails) and the blobs of every manifest it has seen (manifests are immutable: a digest
// is fetched once, not at every collection).
type Collector struct {
	Targets []Target
	// Timeout bounds one registry's collection; an answer that comes later is dropped.
	Timeout time.Duration
	// Jobs is how many repositories of one registry are read at once (default 4).
	Jobs   int
	Logger *slog.Logger
	Now    func() time.Time
	// Statfs reads a filesystem (tests fake it); nil is the operating system's.
	Statfs func(path string) (Filesystem, error)

	mu     sync.Mutex
	last   map[string]*RegistryStats
	blobs  map[string]map[v1.Hash][]blob // registry -> manifest digest -> what it stores
	errors map[string]float64
}

type blob struct {
	digest v1.Hash
	size   int64
}

func (c *Collector) logger() *slog.Logger {
	if c.Logger == nil {
		return slog.New(slog.DiscardHandler)
	}
	return c.Logger
}

func (c *Collector) now() time.Time {
	if c.Now == nil {
		return time.Now()
	}
	return c.Now()
}

// Collect collects every target at once, each within Timeout, and returns their stats in target
// order. It never fails: a registry that cannot be read is reported Up=false with its error.
func (c *Collector) Collect(ctx context.Context) []RegistryStats {
	out := make([]RegistryStats, len(c.Targets))
	var wg sync.WaitGroup
	for i, t := range c.Targets {
		wg.Add(1)
		go func() {
			defer wg.Done()
			out[i] = c.collectOne(ctx, t)
		}()
	}
	wg.Wait()
	return out
}

type result struct {
	repos      []RepoStats
	bytes      int64
	bytesKnown bool
	blobs      map[v1.Hash][]blob
	err        error
}

func (c *Collector) collectOne(ctx context.Context, t Target) RegistryStats {
	name := LabelSafe(t.Source.Name())
	start := c.now()
	timeout := c.Timeout
	if timeout <= 0 {
		timeout = 30 * time.Second
	}
	cctx, cancel := context.WithTimeoutCause(ctx, timeout, fmt.Errorf("collecting %s took longer than the %s timeout", name, timeout))
	defer cancel()
	c.mu.Lock()
	cache := c.blobs[name]
	c.mu.Unlock()

	// The registry is read in its own goroutine, so a backend that ignores the context still cannot
	// hold the answer past the deadline; its late result is dropped.
	done := make(chan result, 1)
	go func() { done <- c.read(cctx, t.Source, cache) }()
	var res result
	select {
	case res = <-done:
	case <-cctx.Done():
		res = result{err: context.Cause(cctx)}
	}
	if res.err == nil && cctx.Err() != nil {
		res.err = context.Cause(cctx)
	}

	if ctx.Err() != nil { // the exporter is stopping: nothing to report
		return RegistryStats{Registry: name, Error: "collection stopped", CollectedAt: c.now()}
	}
	st := RegistryStats{Registry: name, CollectedAt: c.now()}
	st.Duration = st.CollectedAt.Sub(start).Seconds()
	if t.StoragePath != "" {
		statfs := c.Statfs
		if statfs == nil {
			statfs = Statfs
		}
		fs, err := statfs(t.StoragePath)
		if err != nil {
			c.logger().Warn("reading the storage filesystem", "registry", name, "path", t.StoragePath, "error", err)
			c.countError(name)
		} else {
			st.Storage = &fs
		}
	}

	c.mu.Lock()
	defer c.mu.Unlock()
	if c.last == nil {
		c.last, c.blobs, c.errors = map[string]*RegistryStats{}, map[string]map[v1.Hash][]blob{}, map[string]float64{}
	}
	prev := c.last[name]
	if res.err != nil {
		st.Error = redact(res.err.Error())
		c.errors[name]++
		c.logger().Error("collecting registry metrics", "registry", name, "error", st.Error)
		if prev != nil { // the last good numbers, with their age
			st.Repositories, st.StoredBytes, st.BytesKnown, st.LastSuccess = prev.Repositories, prev.StoredBytes, prev.BytesKnown, prev.LastSuccess
		}
		if res.repos != nil { // a partial answer: the repositories that were read are fresh
			st.Repositories = mergeRepos(st.Repositories, res.repos)
		}
	} else {
		st.Up, st.LastSuccess = true, st.CollectedAt
		st.Repositories, st.StoredBytes, st.BytesKnown = res.repos, res.bytes, res.bytesKnown
		c.blobs[name] = res.blobs // only the manifests still there: the cache does not grow forever
		good := st
		c.last[name] = &good
	}
	st.ErrorsTotal = c.errors[name]
	return st
}

func (c *Collector) countError(name string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.errors == nil {
		c.last, c.blobs, c.errors = map[string]*RegistryStats{}, map[string]map[v1.Hash][]blob{}, map[string]float64{}
	}
	c.errors[name]++
}

// mergeRepos replaces old repositories' stats by fresh ones of the same name.
func mergeRepos(old, fresh []RepoStats) []RepoStats {
	byName := map[string]RepoStats{}
	for _, r := range old {
		byName[r.Repository] = r
	}
	for _, r := range fresh {
		byName[r.Repository] = r
	}
	out := make([]RepoStats, 0, len(byName))
	for _, r := range byName {
		out = append(out, r)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Repository < out[j].Repository })
	return out
}

// read lists the registry's repositories and reads each one's images, Jobs at a time. Repositories
// that fail are named in the error; the others are returned with it.
func (c *Collector) read(ctx context.Context, src Source, cache map[v1.Hash][]blob) result {
	repos, err := src.Repositories(ctx, "")
	if err != nil {
		return result{err: fmt.Errorf("listing repositories: %w", err)}
	}
	fetcher, hasBlobs := src.(ManifestFetcher)
	jobs := c.Jobs
	if jobs <= 0 {
		jobs = 4
	}
	var mu sync.Mutex
	res := result{bytesKnown: hasBlobs, blobs: map[v1.Hash][]blob{}, repos: []RepoStats{}}
	registryBlobs := map[v1.Hash]int64{}
	var errs []error
	// A repository that cannot be read does not stop the others: they are fresh, it keeps its last
	// good numbers, and the registry is reported down.
	var g errgroup.Group
	g.SetLimit(jobs)
	seen := map[string]bool{}
	for _, repo := range repos {
		// Trust no catalog: a name that is no repository name (it would be a label value) or comes twice.
		if repo == "" || seen[repo] || !utf8.ValidString(repo) || strings.ContainsAny(repo, "\x00\n\r") {
			c.logger().Warn("skipping a repository name the registry listed", "registry", LabelSafe(src.Name()), "repository", strconv.Quote(repo))
			continue
		}
		seen[repo] = true
		g.Go(func() error {
			images, err := src.Images(ctx, repo)
			if err != nil {
				mu.Lock()
				errs = append(errs, fmt.Errorf("%s: %w", repo, err))
				mu.Unlock()
				return nil
			}
			rs := Summarize(repo, images)
			var blobs map[v1.Hash][]blob
			if hasBlobs {
				if blobs, err = manifestBlobs(ctx, fetcher, repo, images, cache, &mu); err != nil {
					mu.Lock()
					errs = append(errs, fmt.Errorf("%s: reading manifests for stored bytes: %w", repo, err))
					mu.Unlock()
					return nil
				}
				seen := map[v1.Hash]int64{}
				for _, list := range blobs {
					for _, b := range list {
						seen[b.digest] = b.size
					}
				}
				for _, s := range seen {
					rs.StoredBytes = addSat(rs.StoredBytes, s)
				}
				rs.BytesKnown = true
			}
			mu.Lock()
			defer mu.Unlock()
			res.repos = append(res.repos, rs)
			for d, list := range blobs {
				res.blobs[d] = list
				for _, b := range list {
					registryBlobs[b.digest] = b.size
				}
			}
			return nil
		})
	}
	_ = g.Wait()
	sort.Slice(errs, func(i, j int) bool { return errs[i].Error() < errs[j].Error() })
	err = errors.Join(errs...)
	sort.Slice(res.repos, func(i, j int) bool { return res.repos[i].Repository < res.repos[j].Repository })
	for _, s := range registryBlobs {
		res.bytes = addSat(res.bytes, s)
	}
	res.err = err
	return res
}

// manifestBlobs returns what each of the images' manifests stores: the manifest itself, its config
// and its layers (an index stores only itself; its children are manifests of their own). Manifests
// seen before come from cache; the rest are fetched.
func manifestBlobs(ctx context.Context, f ManifestFetcher, repo string, images []registry.Image, cache map[v1.Hash][]blob, mu *sync.Mutex) (map[v1.Hash][]blob, error) {
	out := map[v1.Hash][]blob{}
	var missing []v1.Hash
	mu.Lock()
	for _, img := range images {
		if img.Missing {
			continue
		}
		if list, ok := cache[img.Digest]; ok {
			out[img.Digest] = list
		} else {
			missing = append(missing, img.Digest)
		}
	}
	mu.Unlock()
	if len(missing) == 0 {
		return out, nil
	}
	manifests, err := f.FetchManifests(ctx, repo, missing)
	if err != nil {
		return nil, err
	}
	for _, d := range missing {
		m := manifests[d]
		if m == nil || m.Missing { // gone since it was listed
			continue
		}
		list := []blob{{digest: d, size: m.Size}}
		if m.Config != nil {
			list = append(list, blob{digest: m.Config.Digest, size: max(m.Config.Size, 0)})
		}
		for _, l := range m.Layers {
			// Foreign layers (Windows base images) are not stored by the registry.
			if l.MediaType.IsDistributable() {
				list = append(list, blob{digest: l.Digest, size: max(l.Size, 0)})
			}
		}
		out[d] = list
	}
	return out, nil
}

// Summarize counts a repository's images, signatures, tags and newest push from its manifests.
func Summarize(repo string, images []registry.Image) RepoStats {
	rs := RepoStats{Repository: repo}
	signed := map[v1.Hash]bool{}
	for _, img := range images {
		if img.Kind == registry.KindSignature && img.Subject != nil {
			signed[*img.Subject] = true
		}
	}
	for _, img := range images {
		if !isImage(img) {
			continue
		}
		rs.Images++
		if signed[img.Digest] {
			rs.Signed++
		} else {
			rs.Unsigned++
		}
		rs.Tags += len(img.Tags)
		if img.PushedAt.After(rs.LastPush) {
			rs.LastPush = img.PushedAt
		}
	}
	return rs
}

// isImage: an image or index of its own, not a platform of an index (unless tagged itself), not a
// signature, attestation, SBOM or other referrer, and not a manifest the registry could not return.
func isImage(img registry.Image) bool {
	if img.Missing || img.Kind.Attached() {
		return false
	}
	if img.Kind == registry.KindIndex {
		return true
	}
	return img.Kind == registry.KindImage && (len(img.Parents) == 0 || len(img.Tags) > 0)
}

func addSat(a, b int64) int64 {
	if b > 0 && a > math.MaxInt64-b {
		return math.MaxInt64
	}
	return a + b
}

// LabelSafe makes a registry name fit to be a label value: a host given with credentials
// (user:secret@host) keeps only the host.
func LabelSafe(name string) string {
	if i := strings.LastIndex(name, "@"); i >= 0 {
		name = name[i+1:]
	}
	return name
}

// redact removes credentials a URL in an error may carry (scheme://user:secret@host).
func redact(msg string) string {
	i := strings.Index(msg, "://")
	if i < 0 {
		return msg
	}
	rest := msg[i+3:]
	end := strings.IndexAny(rest, "/ \"'")
	if end < 0 {
		end = len(rest)
	}
	if at := strings.LastIndex(rest[:end], "@"); at >= 0 {
		rest = rest[at+1:]
	}
	return msg[:i+3] + redact(rest)
}

// ErrUnsupported is what Statfs says on systems where it cannot read a filesystem.
var ErrUnsupported = errors.New("reading filesystem usage is not supported on this system")
