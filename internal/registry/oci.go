package registry

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/remote/transport"
	"golang.org/x/sync/errgroup"

	"github.com/regctl-dev/regctl/internal/exitcode"
)

// OCIConfig configures the generic OCI backend.
type OCIConfig struct {
	Name      string
	Host      string
	Insecure  bool
	Keychain  authn.Keychain
	Transport http.RoundTripper // wrapped in RetryTransport
	UserAgent string
	Logger    *slog.Logger
	Jobs      int
	// PageSize is the n= of tag and catalog listings; distribution refuses more than 100 by default.
	PageSize int
}

// OCI is the backend for any registry speaking the OCI distribution API.
type OCI struct {
	cfg  OCIConfig
	opts []remote.Option
	rt   http.RoundTripper // the data plane's transport (retries, answer limits), for raw list pages
	// listClients are the authenticated clients of list, by scope: like the puller's, one /v2/ ping
	// and token exchange per scope, not one per listing (go-containerregistry's bearer transport
	// renews an expired token itself).
	listMu      sync.Mutex
	listClients map[string]*http.Client
	// challenge is the registry's answer to the /v2/ ping, asked once. Without a bearer challenge
	// (anonymous, or basic auth as ECR's) a request is authorised the same way whatever its scope,
	// so anyScope, the first client made, serves every scope: a backup of 30 repositories then pings
	// once, not 30 times.
	challenge *transport.Challenge
	anyScope  *http.Client
	// puller and pusher are shared by every call so that the /v2/ ping and the token exchange happen
	// once per repository and scope, not once per request.
	puller *remote.Puller
	pusher *remote.Pusher
}

// NewOCI builds the OCI backend.
func NewOCI(c OCIConfig) *OCI {
	if c.Transport == nil {
		c.Transport = http.DefaultTransport
	}
	if c.Keychain == nil {
		c.Keychain = authn.DefaultKeychain
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	if c.Jobs <= 0 {
		c.Jobs = 8
	}
	if c.PageSize <= 0 {
		c.PageSize = 100
	}
	if c.UserAgent == "" {
		c.UserAgent = "regctl"
	}
	rt := &RetryTransport{Base: &LimitTransport{Base: c.Transport}, Logger: c.Logger}
	o := &OCI{cfg: c, rt: rt, opts: []remote.Option{
		remote.WithTransport(rt),
		remote.WithAuthFromKeychain(c.Keychain),
		remote.WithUserAgent(c.UserAgent),
		remote.WithJobs(c.Jobs),
		remote.WithPageSize(c.PageSize),
		// Status retries happen once, in RetryTransport (which honours Retry-After); go-containerregistry
		// keeps its operation-level retry for broken connections, with a short backoff.
		remote.WithRetryStatusCodes(),
		remote.WithRetryBackoff(remote.Backoff{Duration: 200 * time.Millisecond, Factor: 2, Jitter: 0.2, Steps: 3}),
	}}
	// NewPuller/NewPusher only fail on a bad option; the options above are fixed.
	o.puller, _ = remote.NewPuller(o.opts...)
	o.pusher, _ = remote.NewPusher(o.opts...)
	return o
}

func (o *OCI) Name() string             { return o.cfg.Name }
func (o *OCI) Host() string             { return o.cfg.Host }
func (o *OCI) Type() string             { return OCIType }
func (o *OCI) Insecure() bool           { return o.cfg.Insecure }
func (o *OCI) Keychain() authn.Keychain { return o.cfg.Keychain }
func (o *OCI) Remote() []remote.Option {
	return append(append([]remote.Option(nil), o.opts...), remote.Reuse(o.puller), remote.Reuse(o.pusher))
}

func (o *OCI) remote(ctx context.Context) []remote.Option {
	return append(o.Remote(), remote.WithContext(ctx))
}

// Repositories lists the catalog (all pages), keeping names that start with prefix.
func (o *OCI) Repositories(ctx context.Context, prefix string) ([]string, error) {
	reg, err := name.NewRegistry(o.cfg.Host, nameRegistryOpts(o)...)
	if err != nil {
		return nil, err
	}
	all, err := o.list(ctx, "listing repositories of "+o.cfg.Host, reg, reg.Scope(transport.PullScope), "/v2/_catalog")
	if err != nil {
		return nil, err
	}
	var out []string
	for _, r := range all {
		if strings.HasPrefix(r, prefix) {
			out = append(out, r)
		}
	}
	sort.Strings(out)
	return out, nil
}

// list GETs every page of a tag list or the catalog (path), n entries a page: it follows the Link
// header (same scheme and host only), and where a registry fills a page but sends no Link, it asks
// for the rest with the distribution spec's last= continuation; each such page must list only
// entries after the last one seen (lexical order). A registry that ignores last=
// (go-containerregistry's in-memory catalog) ends in an error, not in a silently short list that
// a backup or replicate would take for the whole registry.
//
// go-containerregistry's Lister and Catalogger are not used: they follow Link only, and they
// check a Link's scheme against the host's default (http for loopback) rather than the one the
// registry answered on, which fails every second page of a loopback registry served over TLS.
func (o *OCI) list(ctx context.Context, call string, reg name.Registry, scope, path string) ([]string, error) {
	client, err := o.listClient(ctx, reg, scope)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", call, err)
	}
	n := strconv.Itoa(o.cfg.PageSize)
	next := (&url.URL{Scheme: reg.Scheme(), Host: reg.RegistryStr(), Path: path, RawQuery: url.Values{"n": {n}}.Encode()}).String()
	var all []string
	pages := pageGuard{call: call}
	for after := ""; next != ""; {
		page, link, err := listPage(ctx, client, next)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", call, err)
		}
		for _, e := range page {
			if after != "" && e <= after {
				return nil, fmt.Errorf("%s: the registry filled a page of %s without a Link to the next one, and answered last=%q with %q, which does not come after it: it ignores last=, so the listing stops at %d entries and may be incomplete: %w",
					call, n, after, e, len(all), ErrBadAnswer)
			}
		}
		all = append(all, page...)
		after, next = "", link
		if next == "" && len(page) == o.cfg.PageSize {
			after = slices.Max(page)
			next = (&url.URL{Scheme: reg.Scheme(), Host: reg.RegistryStr(), Path: path, RawQuery: url.Values{"n": {n}, "last": {after}}.Encode()}).String()
		}
		if next != "" {
			if err := pages.next(next); err != nil {
				return nil, err
			}
		}
	}
	return all, nil
}

// listClient is the authenticated client for scope, made once.
func (o *OCI) listClient(ctx context.Context, reg name.Registry, scope string) (*http.Client, error) {
	return o.client(ctx, reg, []string{scope})
}

// DataPlane is a registry's own authorised data-plane client; every backend has one through its
// embedded OCI. For callers that speak the distribution protocol themselves (replicate's writes,
// backup's blob reads).
type DataPlane interface {
	DataClient(ctx context.Context, scopes ...string) (*http.Client, error)
}

// BlobsURL is the base URL of repo's blobs: BlobsURL(repo) + digest names one.
func BlobsURL(repo name.Repository) string {
	return repo.Registry.Scheme() + "://" + repo.RegistryStr() + "/v2/" + repo.RepositoryStr() + "/blobs/"
}

// DataClient returns an HTTP client for the registry's data plane (/v2/...), authorised for the
// scopes (e.g. a repository's push scope and another's pull scope, for a cross-repository mount),
// over the registry's own transport: its TLS settings, retries and answer limits. One per scope set,
// so one token exchange each. For callers that speak the distribution protocol themselves.
func (o *OCI) DataClient(ctx context.Context, scopes ...string) (*http.Client, error) {
	reg, err := name.NewRegistry(o.cfg.Host, nameRegistryOpts(o)...)
	if err != nil {
		return nil, err
	}
	return o.client(ctx, reg, scopes)
}

func (o *OCI) client(ctx context.Context, reg name.Registry, scopes []string) (*http.Client, error) {
	key := strings.Join(scopes, " ")
	o.listMu.Lock()
	defer o.listMu.Unlock()
	if c, ok := o.listClients[key]; ok {
		return c, nil
	}
	if o.anyScope != nil {
		return o.anyScope, nil
	}
	if o.challenge == nil {
		ch, err := transport.Ping(ctx, reg, o.rt)
		if err != nil {
			return nil, err
		}
		o.challenge = ch
	}
	auth, err := authn.Resolve(ctx, o.cfg.Keychain, reg)
	if err != nil {
		return nil, err
	}
	// With its own user agent: go-containerregistry would otherwise put only its default one on a
	// transport it did not wrap.
	tr, err := transport.NewWithContext(ctx, reg, auth, transport.NewUserAgent(o.rt, o.cfg.UserAgent), scopes)
	if err != nil {
		return nil, err
	}
	c := &http.Client{Transport: tr}
	if !strings.EqualFold(o.challenge.Scheme, "bearer") {
		o.anyScope = c
		return c, nil
	}
	if o.listClients == nil {
		o.listClients = map[string]*http.Client{}
	}
	o.listClients[key] = c
	return c, nil
}

// listPage GETs one page of a tag list or catalog: its entries and the URL of the next page from a
// Link header, resolved against the request and held to its scheme and host.
func listPage(ctx context.Context, client *http.Client, u string) (entries []string, next string, err error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return nil, "", err
	}
	resp, err := client.Do(req)
	if err != nil {
		return nil, "", err
	}
	defer resp.Body.Close()
	if err := transport.CheckError(resp, http.StatusOK); err != nil {
		return nil, "", err
	}
	var page struct {
		Tags         []string `json:"tags"`
		Repositories []string `json:"repositories"`
	}
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, "", err
	}
	if err := json.Unmarshal(body, &page); err != nil {
		return nil, "", fmt.Errorf("decoding the list: %v: %w", err, ErrBadAnswer)
	}
	entries = append(page.Tags, page.Repositories...)
	link := resp.Header.Get("Link")
	if link == "" {
		return entries, "", nil
	}
	link = strings.TrimSpace(link)
	target, _, ok := strings.Cut(strings.TrimPrefix(link, "<"), ">")
	if !ok || !strings.HasPrefix(link, "<") {
		return nil, "", fmt.Errorf("a Link header that is not <url>; rel=\"next\": %q: %w", link, ErrBadAnswer)
	}
	lu, err := url.Parse(target)
	if err != nil {
		return nil, "", fmt.Errorf("a Link header whose URL does not parse: %v: %w", err, ErrBadAnswer)
	}
	lu = resp.Request.URL.ResolveReference(lu)
	if lu.Host != resp.Request.URL.Host || lu.Scheme != resp.Request.URL.Scheme {
		return nil, "", fmt.Errorf("the Link to the next page points at %s://%s, not at the registry it came from: %w", lu.Scheme, lu.Host, ErrBadAnswer)
	}
	return entries, lu.String(), nil
}

// maxPages bounds a paginated listing: a million entries at the page size of 100.
const maxPages = 10000

// pageGuard stops a listing whose server sends a next page it sent before (a loop) or pages
// without end.
type pageGuard struct {
	call  string
	pages int
	seen  map[string]bool
}

func (g *pageGuard) next(next string) error {
	g.pages++
	if next == "" {
		return nil
	}
	if g.seen == nil {
		g.seen = map[string]bool{}
	}
	if g.seen[next] {
		return fmt.Errorf("%s: the registry sent page %s again (a pagination loop in its Link header): %w", g.call, redactQuery(next), ErrBadAnswer)
	}
	if g.pages >= maxPages {
		return fmt.Errorf("%s: more than %d pages: %w", g.call, maxPages, ErrBadAnswer)
	}
	g.seen[next] = true
	return nil
}

// redactQuery drops a URL's query (it can carry tokens) for an error message.
func redactQuery(u string) string {
	if i := strings.IndexByte(u, '?'); i >= 0 {
		return u[:i] + "?…"
	}
	return u
}

// tagRE is the distribution spec's tag grammar.
var tagRE = regexp.MustCompile(`^[a-zA-Z0-9_][a-zA-Z0-9._-]{0,127}$`)

// IsTag reports whether s is a tag by the distribution spec's grammar: what a registry lists as a
// tag is checked with it before it becomes part of a reference.
func IsTag(s string) bool { return tagRE.MatchString(s) }

// ErrBadAnswer marks an answer that breaks the protocol (exit 1): wrap it with what was wrong.
var ErrBadAnswer = errors.New("malformed answer")

func nameRegistryOpts(o *OCI) []name.Option {
	if o.cfg.Insecure {
		return []name.Option{name.Insecure}
	}
	return nil
}

// Tags lists every tag of repo (all pages).
func (o *OCI) Tags(ctx context.Context, repo string) ([]string, error) {
	r, err := RepositoryRef(o, repo)
	if err != nil {
		return nil, err
	}
	tags, err := o.list(ctx, "listing tags of "+r.String(), r.Registry, r.Scope(transport.PullScope), "/v2/"+r.RepositoryStr()+"/tags/list")
	if err != nil {
		return nil, err
	}
	for _, t := range tags {
		if !IsTag(t) {
			return nil, fmt.Errorf("listing tags of %s: the registry listed %q, which is not a tag: %w", r, t, ErrBadAnswer)
		}
	}
	if tags == nil {
		tags = []string{}
	}
	sort.Strings(tags)
	return tags, nil
}

// EnsureRepository validates the name; plain registries create repositories on first push.
func (o *OCI) EnsureRepository(ctx context.Context, repo string, spec RepositorySpec) (EnsureResult, error) {
	r, err := RepositoryRef(o, repo)
	if err != nil {
		return EnsureResult{}, err
	}
	res := EnsureResult{Repository: repo}
	if spec.ScanOnPush || spec.Encryption != "" || spec.KMSKey != "" || spec.TagMutability != "" || len(spec.Tags) > 0 {
		res.Message = "repository settings are not supported by plain OCI registries and were not applied; "
	}
	_, err = o.puller.Lister(ctx, r) // the first page answers whether the repository exists
	var terr *transport.Error
	switch {
	case err == nil:
		res.Status = StatusExists
		res.Message += "repository exists"
	case errors.As(err, &terr) && (terr.StatusCode == http.StatusNotFound):
		res.Status = StatusOnPush
		res.Message += "the registry creates the repository on first push"
	default:
		return res, fmt.Errorf("checking %s: %w", r, err)
	}
	return res, nil
}

// DeleteImage deletes a manifest by digest (the registry drops the tags pointing at it).
func (o *OCI) DeleteImage(ctx context.Context, repo string, digest v1.Hash) error {
	r, err := RepositoryRef(o, repo)
	if err != nil {
		return err
	}
	if err := remote.Delete(r.Digest(digest.String()), o.remote(ctx)...); err != nil {
		return fmt.Errorf("deleting %s@%s: %w", r, digest, err)
	}
	return nil
}

// DeleteTag removes one tag (DELETE /v2/<name>/manifests/<tag>, which CNCF distribution v3 and zot
// support); the manifest and its other tags stay. A registry that only deletes by digest answers
// 405 or UNSUPPORTED, and that error is returned as is: regctl never falls back to deleting the
// manifest, which would take its other tags with it.
func (o *OCI) DeleteTag(ctx context.Context, repo, tag string) error {
	r, err := RepositoryRef(o, repo)
	if err != nil {
		return err
	}
	if !IsTag(tag) {
		return fmt.Errorf("%q is not a tag: %w", tag, exitcode.ErrUsage)
	}
	if err := remote.Delete(r.Tag(tag), o.remote(ctx)...); err != nil {
		return fmt.Errorf("deleting the tag %s:%s: %w", r, tag, err)
	}
	return nil
}

// Images lists a repository's manifests. Each tag is resolved with HEAD, each distinct manifest is
// fetched once, and each distinct image config once (for its created time), with bounded parallelism.
// Plain registries cannot list manifests no tag reaches; those are not in the result.
func (o *OCI) Images(ctx context.Context, repo string) ([]Image, error) {
	r, err := RepositoryRef(o, repo)
	if err != nil {
		return nil, err
	}
	tags, err := o.Tags(ctx, repo)
	if err != nil {
		return nil, err
	}
	f := &fetcher{o: o, repo: r, ctx: ctx, manifests: map[v1.Hash]*Manifest{}, configs: map[v1.Hash]*configInfo{}}

	// 1. tag -> digest
	tagDigests := make(map[string]v1.Hash, len(tags))
	var mu sync.Mutex
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(o.cfg.Jobs)
	for _, tag := range tags {
		g.Go(func() error {
			d, err := o.puller.Head(gctx, r.Tag(tag))
			if err != nil {
				var terr *transport.Error
				if errors.As(err, &terr) && terr.StatusCode == http.StatusNotFound {
					o.cfg.Logger.Warn("tag listed but not found; skipped", "repository", r.String(), "tag", tag)
					return nil // deleted between list and head
				}
				return fmt.Errorf("resolving %s:%s: %w", r, tag, err)
			}
			mu.Lock()
			tagDigests[tag] = d.Digest
			mu.Unlock()
			return nil
		})
	}
	if err := g.Wait(); err != nil {
		return nil, err
	}

	// 2. manifests, breadth first through index children
	if err := f.fetchTree(uniqueDigests(tagDigests)); err != nil {
		return nil, err
	}

	// 2b. OCI 1.1 referrers that no tag reaches (signatures, SBOMs pushed with the referrers API).
	// One probe tells whether the registry has the API; without it referrers use fallback tags,
	// which step 1 already followed.
	if err := f.fetchReferrers(); err != nil {
		return nil, err
	}

	// 3. configs of image manifests (not of signatures and other artifacts: they are not aged)
	var cfgs []v1.Hash
	for _, m := range f.manifests {
		if m.Config != nil && m.isImageConfig() && !containsHash(cfgs, m.Config.Digest) {
			cfgs = append(cfgs, m.Config.Digest)
		}
	}
	if err := f.fetchConfigs(cfgs); err != nil {
		return nil, err
	}
	created := make(map[v1.Hash]time.Time, len(f.configs))
	for d, c := range f.configs {
		created[d] = c.Created
	}
	return Group(repo, tagDigests, f.manifests, created), nil
}

// FetchManifests fetches the manifests with the given digests and, recursively, the manifests their
// indexes list, each once. Backends with their own image listing (ECR) use it to link indexes,
// platforms and referrers the same way Images does.
func (o *OCI) FetchManifests(ctx context.Context, repo string, digests []v1.Hash) (map[v1.Hash]*Manifest, error) {
	r, err := RepositoryRef(o, repo)
	if err != nil {
		return nil, err
	}
	f := &fetcher{o: o, repo: r, ctx: ctx, manifests: map[v1.Hash]*Manifest{}, configs: map[v1.Hash]*configInfo{}}
	if err := f.fetchTree(digests); err != nil {
		return nil, err
	}
	return f.manifests, nil
}

// fetchTree fetches the manifests of wave and, breadth first, every manifest their indexes list,
// each once.
func (f *fetcher) fetchTree(wave []v1.Hash) error {
	for len(wave) > 0 {
		if err := f.fetchManifests(wave); err != nil {
			return err
		}
		var next []v1.Hash
		for _, d := range wave {
			m := f.manifests[d]
			if m == nil { // skipped by fetchManifests (gone since it was listed)
				continue
			}
			for _, c := range m.Children {
				if _, seen := f.manifests[c.Digest]; !seen && !containsHash(next, c.Digest) {
					next = append(next, c.Digest)
				}
			}
		}
		wave = next
	}
	return nil
}

func uniqueDigests(m map[string]v1.Hash) []v1.Hash {
	seen := map[v1.Hash]bool{}
	var out []v1.Hash
	for _, d := range m {
		if !seen[d] {
			seen[d] = true
			out = append(out, d)
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].String() < out[j].String() })
	return out
}

func containsHash(list []v1.Hash, h v1.Hash) bool {
	for _, x := range list {
		if x == h {
			return true
		}
	}
	return false
}

type fetcher struct {
	o         *OCI
	repo      name.Repository
	ctx       context.Context
	mu        sync.Mutex
	manifests map[v1.Hash]*Manifest
	configs   map[v1.Hash]*configInfo
}

// fetchReferrers asks the referrers API about every fetched manifest and fetches the referrers (and
// theirs) it did not have yet. It stops at the first answer that says the API is not there.
func (f *fetcher) fetchReferrers() error {
	// A puller of its own: the shared one follows fallback tags, which step 1 did already.
	rp, err := remote.NewPuller(append(append([]remote.Option{}, f.o.opts...), remote.WithReferrersTagFallback(false))...)
	if err != nil {
		return err
	}
	asked := map[v1.Hash]bool{}
	for {
		var todo []v1.Hash
		for d, m := range f.manifests {
			if !asked[d] && !m.Missing {
				todo = append(todo, d)
			}
		}
		if len(todo) == 0 {
			return nil
		}
		sort.Slice(todo, func(i, j int) bool { return todo[i].String() < todo[j].String() })
		var found []v1.Hash
		for _, d := range todo {
			asked[d] = true
			idx, err := remote.Referrers(f.repo.Digest(d.String()), remote.Reuse(rp), remote.WithContext(f.ctx))
			if err != nil {
				if strings.Contains(err.Error(), "does not support the Referrers API") {
					return nil
				}
				return fmt.Errorf("listing referrers of %s@%s: %w", f.repo, d, err)
			}
			im, err := idx.IndexManifest()
			if err != nil {
				return fmt.Errorf("listing referrers of %s@%s: the answer is not an image index: %v: %w", f.repo, d, err, ErrBadAnswer)
			}
			for i, r := range im.Manifests {
				if err := checkDescriptor(r); err != nil {
					return fmt.Errorf("listing referrers of %s@%s: manifests[%d]: %w", f.repo, d, i, err)
				}
				if _, have := f.manifests[r.Digest]; !have && !containsHash(found, r.Digest) {
					found = append(found, r.Digest)
				}
			}
		}
		if len(found) == 0 {
			return nil
		}
		if err := f.fetchManifests(found); err != nil {
			return err
		}
	}
}

type configInfo struct {
	Created time.Time
}

func (f *fetcher) fetchManifests(digests []v1.Hash) error {
	g, ctx := errgroup.WithContext(f.ctx)
	g.SetLimit(f.o.cfg.Jobs)
	for _, d := range digests {
		g.Go(func() error {
			desc, err := f.o.puller.Get(ctx, f.repo.Digest(d.String()))
			var m *Manifest
			if err != nil {
				var terr *transport.Error
				if !errors.As(err, &terr) || terr.StatusCode != http.StatusNotFound {
					return fmt.Errorf("fetching manifest %s@%s: %w", f.repo, d, err)
				}
				f.o.cfg.Logger.Warn("manifest referenced but missing", "repository", f.repo.String(), "digest", d.String())
				m = &Manifest{Digest: d, Missing: true}
			} else {
				m, err = ParseManifest(d, desc.MediaType, desc.Manifest)
				if err != nil {
					return fmt.Errorf("%s@%s: %w", f.repo, d, err)
				}
			}
			f.mu.Lock()
			f.manifests[d] = m
			f.mu.Unlock()
			return nil
		})
	}
	return g.Wait()
}

// maxConfigSize bounds what is read of an image config; configs are small JSON documents.
const maxConfigSize = 4 << 20

func (f *fetcher) fetchConfigs(digests []v1.Hash) error {
	g, ctx := errgroup.WithContext(f.ctx)
	g.SetLimit(f.o.cfg.Jobs)
	for _, d := range digests {
		g.Go(func() error {
			layer, err := f.o.puller.Layer(ctx, f.repo.Digest(d.String()))
			if err != nil {
				return err
			}
			rc, err := layer.Compressed()
			if err != nil {
				return fmt.Errorf("fetching config %s@%s: %w", f.repo, d, err)
			}
			defer rc.Close()
			var cf struct {
				Created time.Time `json:"created"`
			}
			info := &configInfo{}
			if err := json.NewDecoder(io.LimitReader(rc, maxConfigSize)).Decode(&cf); err == nil {
				info.Created = cf.Created
			} else {
				f.o.cfg.Logger.Debug("config is not an image config; no created time", "digest", d.String(), "error", err)
			}
			f.mu.Lock()
			f.configs[d] = info
			f.mu.Unlock()
			return nil
		})
	}
	return g.Wait()
}

// IndexPlatforms lists the PlatformManifests of an index fetched with remote.Get, from the bytes
// already fetched: no further request.
func IndexPlatforms(desc *remote.Descriptor) ([]v1.Descriptor, error) {
	im, err := v1.ParseIndexManifest(bytes.NewReader(desc.Manifest))
	if err != nil {
		return nil, fmt.Errorf("parsing index %s: %w", desc.Digest, err)
	}
	return PlatformManifests(im), nil
}
