// Package replicate copies repositories from one registry to another, of any backend (oci, ecr,
// harbor): tags, digests, indexes, cosign signatures and attestations, and OCI 1.1 referrers, with
// their digests unchanged. It is incremental (what the destination has costs a HEAD), it writes a
// tag only after everything the tag reaches is on the destination, and --delete removes only the
// destination tags the filters select and the source no longer has.
package replicate

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"path"
	"slices"
	"sort"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/types"
	"golang.org/x/sync/errgroup"

	"github.com/regctl-dev/regctl/internal/exitcode"
	"github.com/regctl-dev/regctl/internal/registry"
)

// Endpoint is one side of a replication: a registry, and one of its repositories or "" for every
// repository the filters select.
type Endpoint struct {
	Registry registry.Registry
	Repo     string
}

func (e Endpoint) String() string {
	if e.Repo == "" {
		return e.Registry.Name()
	}
	return e.Registry.Name() + "/" + e.Repo
}

// Options control a run.
type Options struct {
	Repos      []string      // source repository globs; empty = all (SRC naming a repository ignores them)
	Tags       []string      // tag globs; empty = every tag
	Exclude    []string      // tag globs left out
	DestPrefix string        // prepended to each source repository's path on the destination
	Platforms  []v1.Platform // empty = every platform of an index
	Jobs       int           // transfers in parallel (default 8)
	DryRun     bool          // report what would be copied and deleted; write nothing
	Delete     bool          // remove destination tags the source no longer has (selected ones only)
	MaxDelete  int           // with Delete: more deletions than this and nothing is deleted (0 = no limit)
	// Confirm is asked, with the whole plan, before anything is deleted; nil means yes (the command
	// has checked --yes).
	Confirm  func([]Deletion) (bool, error)
	Logger   *slog.Logger
	Progress func(Progress) // called as tags complete
}

func (o *Options) defaults() {
	if o.Jobs <= 0 {
		o.Jobs = 8
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
}

// filtered reports whether the tag filters select less than every tag.
func (o *Options) filtered() bool { return len(o.Tags) > 0 || len(o.Exclude) > 0 }

// Progress reports a running replication.
type Progress struct {
	Repository string
	TagsDone   int
	Tags       int
	BytesSent  int64
}

// Status is what happened to a tag or a repository.
type Status string

const (
	StatusCopied      Status = "copied"
	StatusUnchanged   Status = "unchanged"
	StatusWouldCopy   Status = "would-copy"
	StatusFailed      Status = "failed"
	StatusDeleted     Status = "deleted"
	StatusWouldDelete Status = "would-delete"
)

// TagResult is one tag's outcome.
type TagResult struct {
	Tag    string `json:"tag"`
	Digest string `json:"digest"`
	Status Status `json:"status"`
	Note   string `json:"note,omitempty"`
	Error  string `json:"error,omitempty"`
}

// RepoResult is one repository's outcome.
type RepoResult struct {
	Source      string      `json:"source"`
	Destination string      `json:"destination"`
	Status      Status      `json:"status"`
	Copied      int         `json:"copied"`
	Unchanged   int         `json:"unchanged"`
	Failed      int         `json:"failed"`
	Deleted     int         `json:"deleted"`
	Tags        []TagResult `json:"tags"`
	Notes       []string    `json:"notes,omitempty"`
	Error       string      `json:"error,omitempty"`
}

// Deletion is one destination tag the plan removes.
type Deletion struct {
	Repository string `json:"repository"`
	Tag        string `json:"tag"`
	Digest     string `json:"digest"`
}

// Stats count the work done on the wire.
type Stats struct {
	ManifestsPut     int64 `json:"manifestsPut"`
	ManifestsPresent int64 `json:"manifestsPresent"`
	BlobsSent        int64 `json:"blobsSent"`
	BlobsMounted     int64 `json:"blobsMounted"`
	BlobsPresent     int64 `json:"blobsPresent"`
	BytesSent        int64 `json:"bytesSent"`
}

// Result is a whole run's outcome.
type Result struct {
	Source      string       `json:"source"`
	Destination string       `json:"destination"`
	DryRun      bool         `json:"dryRun"`
	Repos       []RepoResult `json:"repositories"`
	Deletions   []Deletion   `json:"deletions"`
	Stats       Stats        `json:"stats"`
}

// FailedRepos counts the repositories that did not replicate whole.
func (r *Result) FailedRepos() int {
	n := 0
	for _, rr := range r.Repos {
		if rr.Status == StatusFailed {
			n++
		}
	}
	return n
}

// pair is one source repository and where it goes.
type pair struct{ src, dst string }

// Run replicates src to dst. Every selected repository is tried; the error says how many failed
// (exit 1), the result says which and why. Deletions, with Delete, come after every copy.
func Run(ctx context.Context, src, dst Endpoint, o Options) (*Result, error) {
	o.defaults()
	if src.Repo == "" && dst.Repo != "" {
		return nil, fmt.Errorf("DST %s names a repository, so SRC must name one too (or give DST as a registry and use --dest-prefix): %w", dst, exitcode.ErrUsage)
	}
	if _, ok := dst.Registry.(registry.TagDeleter); o.Delete && !ok {
		return nil, fmt.Errorf("--delete: %s (%s) cannot delete a single tag: %w", dst.Registry.Name(), dst.Registry.Type(), exitcode.ErrUsage)
	}
	pairs, err := plan(ctx, src, dst, o)
	if err != nil {
		return nil, err
	}
	r, err := newRun(ctx, src.Registry, dst.Registry, o)
	if err != nil {
		return nil, err
	}
	res := &Result{Source: src.String(), Destination: dst.String(), DryRun: o.DryRun, Repos: make([]RepoResult, len(pairs)), Deletions: []Deletion{}}
	deletions := make([][]Deletion, len(pairs))
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(min(o.Jobs, len(pairs)))
	for i, p := range pairs {
		g.Go(func() error {
			res.Repos[i], deletions[i] = r.repo(gctx, p)
			return nil
		})
	}
	_ = g.Wait() // repo never returns an error: each repository's failure is in its result
	res.Stats = r.stats.snapshot()
	if ctx.Err() != nil {
		return res, context.Cause(ctx)
	}
	for _, d := range deletions {
		res.Deletions = append(res.Deletions, d...)
	}
	if o.Delete && len(res.Deletions) > 0 {
		if err := r.delete(ctx, res); err != nil {
			return res, err
		}
	}
	if n := res.FailedRepos(); n > 0 {
		var names []string
		for _, rr := range res.Repos {
			if rr.Status == StatusFailed {
				names = append(names, rr.Source)
			}
		}
		return res, fmt.Errorf("%d of %d repositories did not replicate whole: %s", n, len(res.Repos), strings.Join(names, ", "))
	}
	return res, nil
}

// plan lists the source repositories to copy and their destination paths.
func plan(ctx context.Context, src, dst Endpoint, o Options) ([]pair, error) {
	dstPath := func(repo string) string {
		if o.DestPrefix == "" {
			return repo
		}
		return path.Join(o.DestPrefix, repo)
	}
	var pairs []pair
	if src.Repo != "" {
		d := dst.Repo
		if d == "" {
			d = dstPath(src.Repo)
		}
		pairs = append(pairs, pair{src.Repo, d})
	} else {
		all, err := src.Registry.Repositories(ctx, "")
		if err != nil {
			return nil, fmt.Errorf("listing the repositories of %s: %w", src.Registry.Name(), err)
		}
		for _, repo := range all {
			if registry.MatchAny(o.Repos, repo) {
				pairs = append(pairs, pair{repo, dstPath(repo)})
			}
		}
		if len(pairs) == 0 {
			return nil, exitcode.With(exitcode.NotFound, fmt.Errorf("no repository on %s matches %v", src.Registry.Name(), o.Repos))
		}
	}
	seen := map[string]string{}
	for _, p := range pairs {
		if _, err := registry.RepositoryRef(dst.Registry, p.dst); err != nil {
			return nil, fmt.Errorf("destination for %s: %w", p.src, err)
		}
		if other, dup := seen[p.dst]; dup {
			return nil, fmt.Errorf("%s and %s would both go to %s: %w", other, p.src, p.dst, exitcode.ErrUsage)
		}
		seen[p.dst] = p.src
	}
	if src.Registry.Host() == dst.Registry.Host() {
		for _, p := range pairs {
			if p.src == p.dst {
				return nil, fmt.Errorf("%s would be copied onto itself: give another DST or --dest-prefix: %w", p.src, exitcode.ErrUsage)
			}
		}
	}
	return pairs, nil
}

// run is one replication's shared state: the pullers and pusher (one token exchange per
// repository and scope), what the destination is known to hold, and the counters.
type run struct {
	src, dst registry.Registry
	o        Options
	srcPull  *remote.Puller
	dstPull  *remote.Puller
	dstPush  *remote.Pusher
	blobSem  chan struct{}
	blobs    blobTracker
	stats    counters

	progressMu sync.Mutex
	presentMu  sync.Mutex
	present    map[string]bool // dst "repo@digest" manifests known to be complete
	newRepos   map[string]bool // dst repositories that did not exist when this run started

	dstData        registry.DataPlane // the destination's data-plane client (every backend embeds registry.OCI)
	srcRefs        *remote.Puller     // the source's referrers API, without the fallback tags (copied as tags)
	noReferrersAPI atomic.Bool        // the source answered that it has no referrers API
}

func newRun(ctx context.Context, src, dst registry.Registry, o Options) (*run, error) {
	srcPull, err := remote.NewPuller(append(src.Remote(), remote.WithContext(ctx))...)
	if err != nil {
		return nil, err
	}
	srcRefs, err := remote.NewPuller(append(src.Remote(), remote.WithContext(ctx), remote.WithReferrersTagFallback(false))...)
	if err != nil {
		return nil, err
	}
	dstPull, err := remote.NewPuller(append(dst.Remote(), remote.WithContext(ctx))...)
	if err != nil {
		return nil, err
	}
	dstPush, err := remote.NewPusher(append(dst.Remote(), remote.WithContext(ctx))...)
	if err != nil {
		return nil, err
	}
	r := &run{src: src, dst: dst, o: o, srcPull: srcPull, srcRefs: srcRefs, dstPull: dstPull, dstPush: dstPush,
		blobSem: make(chan struct{}, o.Jobs), present: map[string]bool{}, newRepos: map[string]bool{}}
	dc, ok := dst.(registry.DataPlane)
	if !ok {
		return nil, fmt.Errorf("%s (%s) has no data-plane client to write with", dst.Name(), dst.Type())
	}
	r.dstData = dc
	return r, nil
}

type counters struct {
	manifestsPut, manifestsPresent, blobsSent, blobsMounted, blobsPresent, bytesSent atomic.Int64
}

func (c *counters) snapshot() Stats {
	return Stats{ManifestsPut: c.manifestsPut.Load(), ManifestsPresent: c.manifestsPresent.Load(), BlobsSent: c.blobsSent.Load(),
		BlobsMounted: c.blobsMounted.Load(), BlobsPresent: c.blobsPresent.Load(), BytesSent: c.bytesSent.Load()}
}

// tagState is what is known of one tag on both sides.
type tagState struct {
	tag      string
	src      v1.Descriptor
	dst      *v1.Descriptor // nil: the destination does not have the tag
	attached bool           // a cosign .sig/.att/.sbom or referrers fallback tag
}

func (r *run) repo(ctx context.Context, p pair) (RepoResult, []Deletion) {
	rr := RepoResult{Source: r.src.Name() + "/" + p.src, Destination: r.dst.Name() + "/" + p.dst, Tags: []TagResult{}}
	fail := func(err error) (RepoResult, []Deletion) {
		rr.Status, rr.Error = StatusFailed, err.Error()
		r.o.Logger.Warn("repository not replicated", "repository", p.src, "error", err)
		return rr, nil
	}
	srcRef, err := registry.RepositoryRef(r.src, p.src)
	if err != nil {
		return fail(err)
	}
	dstRef, err := registry.RepositoryRef(r.dst, p.dst)
	if err != nil {
		return fail(err)
	}
	srcTags, err := r.src.Tags(ctx, p.src)
	if err != nil {
		return fail(err)
	}
	dstTags, err := r.dst.Tags(ctx, p.dst)
	dstMissing := registry.IsNotFound(err)
	if err != nil && !dstMissing {
		return fail(fmt.Errorf("listing the destination's tags: %w", err))
	}
	if dstMissing {
		r.presentMu.Lock()
		r.newRepos[p.dst] = true
		r.presentMu.Unlock()
	}
	states, err := r.selectTags(ctx, srcRef, dstRef, srcTags, dstTags)
	if err != nil {
		return fail(err)
	}
	// Plain OCI registries create repositories on first push: asking would only cost requests.
	if dstMissing && !r.o.DryRun && len(states) > 0 && r.dst.Type() != registry.OCIType {
		note, err := r.ensureRepository(ctx, p)
		if err != nil {
			return fail(fmt.Errorf("creating the destination repository: %w", err))
		}
		if note != "" {
			rr.Notes = append(rr.Notes, note)
		}
	}
	// Subjects first, then what is attached to them, so a signature never arrives before its image.
	results := make([]TagResult, len(states))
	var done atomic.Int64
	for _, attachedWave := range []bool{false, true} {
		g, gctx := errgroup.WithContext(ctx)
		g.SetLimit(4)
		for i, st := range states {
			if st.attached != attachedWave {
				continue
			}
			g.Go(func() error {
				results[i] = r.copyTag(gctx, p, srcRef, dstRef, st)
				n := done.Add(1)
				if r.o.Progress != nil {
					r.progressMu.Lock() // called from every copy in flight; the callback writes one line
					defer r.progressMu.Unlock()
					r.o.Progress(Progress{Repository: p.src, TagsDone: int(n), Tags: len(states), BytesSent: r.stats.bytesSent.Load()})
				}
				return nil
			})
		}
		_ = g.Wait()
	}
	if err := r.copyReferrers(ctx, p, srcRef, dstRef, states); err != nil {
		rr.Status, rr.Error = StatusFailed, "referrers: "+err.Error()
	}
	for _, t := range results {
		rr.Tags = append(rr.Tags, t)
		switch t.Status {
		case StatusCopied, StatusWouldCopy:
			rr.Copied++
		case StatusUnchanged:
			rr.Unchanged++
		case StatusFailed:
			rr.Failed++
		}
	}
	switch {
	case rr.Failed > 0 || rr.Status == StatusFailed:
		rr.Status = StatusFailed
		if rr.Error == "" {
			rr.Error = fmt.Sprintf("%d of %d tags failed", rr.Failed, len(results))
		}
	case rr.Copied > 0 && r.o.DryRun:
		rr.Status = StatusWouldCopy
	case rr.Copied > 0:
		rr.Status = StatusCopied
	default:
		rr.Status = StatusUnchanged
	}
	var dels []Deletion
	if r.o.Delete && rr.Status != StatusFailed {
		dels, err = r.planDeletions(ctx, p, dstRef, srcTags, dstTags)
		if err != nil {
			rr.Status, rr.Error = StatusFailed, "planning deletions: "+err.Error()
			dels = nil
		}
	}
	return rr, dels
}

// ensureRepository creates the destination repository where the backend needs it (an ECR
// repository with the source's settings where the source has them, a Harbor project).
func (r *run) ensureRepository(ctx context.Context, p pair) (string, error) {
	var spec registry.RepositorySpec
	var note string
	if ri, ok := r.src.(registry.RepositoryInspector); ok && r.src.Type() == r.dst.Type() {
		s, err := ri.RepositorySettings(ctx, p.src)
		if err != nil {
			r.o.Logger.Warn("the source repository's settings could not be read; the destination gets defaults", "repository", p.src, "error", err)
		} else {
			spec = s
			if spec.KMSKey != "" && r.src.Host() != r.dst.Host() {
				// A KMS key belongs to its account and region.
				spec.KMSKey = ""
				note = "the source's KMS key was not copied (keys are per account and region); the destination uses its AWS-managed key"
			}
		}
	}
	res, err := r.dst.EnsureRepository(ctx, p.dst, spec)
	if err != nil {
		return "", err
	}
	if res.Status == registry.StatusCreated {
		note = strings.Join(slices.DeleteFunc([]string{"created", note}, func(s string) bool { return s == "" }), "; ")
	}
	return note, nil
}

// selectTags resolves the tags the filters select: regular tags by --tags/--exclude, and the tags
// attached to a selected image (signatures of signatures included). With no filter every tag is
// selected, orphaned attachments too: the destination mirrors the source.
func (r *run) selectTags(ctx context.Context, srcRef, dstRef name.Repository, srcTags, dstTags []string) ([]tagState, error) {
	var regular, attached []string
	for _, t := range srcTags {
		if _, _, ok := registry.SubjectOfTag(t); ok {
			attached = append(attached, t)
		} else if r.tagSelected(t) {
			regular = append(regular, t)
		}
	}
	states, err := r.resolve(ctx, srcRef, regular, false)
	if err != nil {
		return nil, err
	}
	if !r.o.filtered() {
		more, err := r.resolve(ctx, srcRef, attached, true)
		if err != nil {
			return nil, err
		}
		states = append(states, more...)
	} else {
		subjects := map[v1.Hash]bool{}
		for _, s := range states {
			subjects[s.src.Digest] = true
		}
		// Signatures may belong to an index's platform images (cosign sign --recursive).
		if err := r.addChildren(ctx, srcRef, states, subjects); err != nil {
			return nil, err
		}
		left := attached
		for len(left) > 0 {
			var take, rest []string
			for _, t := range left {
				if d, _, _ := registry.SubjectOfTag(t); subjects[d] {
					take = append(take, t)
				} else {
					rest = append(rest, t)
				}
			}
			if len(take) == 0 {
				break
			}
			more, err := r.resolve(ctx, srcRef, take, true)
			if err != nil {
				return nil, err
			}
			for _, s := range more {
				subjects[s.src.Digest] = true
			}
			states = append(states, more...)
			left = rest
		}
	}
	// What the destination's tags point at (tags it does not have need no HEAD).
	has := map[string]bool{}
	for _, t := range dstTags {
		has[t] = true
	}
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(8)
	for i := range states {
		if !has[states[i].tag] {
			continue
		}
		g.Go(func() error {
			d, err := remote.Head(dstRef.Tag(states[i].tag), remote.Reuse(r.dstPull), remote.WithContext(gctx))
			if registry.IsNotFound(err) {
				return nil // deleted since the listing
			}
			if err != nil {
				return fmt.Errorf("HEAD %s:%s on the destination: %w", dstRef, states[i].tag, err)
			}
			states[i].dst = d
			return nil
		})
	}
	if err := g.Wait(); err != nil {
		return nil, err
	}
	return states, nil
}

func (r *run) tagSelected(tag string) bool {
	return registry.MatchAny(r.o.Tags, tag) && (len(r.o.Exclude) == 0 || !registry.MatchAny(r.o.Exclude, tag))
}

// resolve HEADs the source tags for their digests; a tag deleted since the listing is left out.
func (r *run) resolve(ctx context.Context, srcRef name.Repository, tags []string, attached bool) ([]tagState, error) {
	out := make([]*tagState, len(tags))
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(8)
	for i, t := range tags {
		g.Go(func() error {
			d, err := remote.Head(srcRef.Tag(t), remote.Reuse(r.srcPull), remote.WithContext(gctx))
			if registry.IsNotFound(err) {
				return nil
			}
			if err != nil {
				return fmt.Errorf("HEAD %s:%s: %w", srcRef, t, err)
			}
			if d == nil || d.Digest.Hex == "" {
				return fmt.Errorf("HEAD %s:%s: the answer has no Docker-Content-Digest: %w", srcRef, t, registry.ErrBadAnswer)
			}
			out[i] = &tagState{tag: t, src: *d, attached: attached}
			return nil
		})
	}
	if err := g.Wait(); err != nil {
		return nil, err
	}
	var states []tagState
	for _, s := range out {
		if s != nil {
			states = append(states, *s)
		}
	}
	return states, nil
}

// addChildren adds the platform images of the selected indexes to subjects.
func (r *run) addChildren(ctx context.Context, srcRef name.Repository, states []tagState, subjects map[v1.Hash]bool) error {
	for _, s := range states {
		if !s.src.MediaType.IsIndex() {
			continue
		}
		m, err := r.srcManifest(ctx, srcRef, s.src.Digest)
		if err != nil {
			return err
		}
		for _, c := range m.parsed.Children {
			subjects[c.Digest] = true
		}
	}
	return nil
}

type fetched struct {
	raw    []byte
	parsed *registry.Manifest
}

// srcManifest GETs a manifest from the source by digest (go-containerregistry checks the bytes
// against the digest) and parses it.
func (r *run) srcManifest(ctx context.Context, srcRef name.Repository, d v1.Hash) (*fetched, error) {
	desc, err := remote.Get(srcRef.Digest(d.String()), remote.Reuse(r.srcPull), remote.WithContext(ctx))
	if err != nil {
		return nil, fmt.Errorf("GET %s@%s: %w", srcRef, d, err)
	}
	m, err := registry.ParseManifest(d, desc.MediaType, desc.Manifest)
	if err != nil {
		return nil, fmt.Errorf("%s@%s: %w", srcRef, d, err)
	}
	return &fetched{raw: desc.Manifest, parsed: m}, nil
}

// copyTag makes the destination tag point at the source tag's manifest.
func (r *run) copyTag(ctx context.Context, p pair, srcRef, dstRef name.Repository, st tagState) TagResult {
	res := TagResult{Tag: st.tag, Digest: st.src.Digest.String()}
	failed := func(err error) TagResult {
		res.Status, res.Error = StatusFailed, err.Error()
		r.o.Logger.Warn("tag not replicated", "repository", p.src, "tag", st.tag, "error", err)
		return res
	}
	want := st.src.Digest
	var content *fetched
	if len(r.o.Platforms) > 0 && st.src.MediaType.IsIndex() {
		m, err := r.srcManifest(ctx, srcRef, st.src.Digest)
		if err != nil {
			return failed(err)
		}
		kept, err := filterIndex(m, r.o.Platforms)
		if err != nil {
			return failed(err)
		}
		if kept.parsed.Digest != m.parsed.Digest {
			res.Note = fmt.Sprintf("index narrowed to %d of %d manifests by --platforms: its digest is %s on the destination", len(kept.parsed.Children), len(m.parsed.Children), kept.parsed.Digest)
		}
		content, want = kept, kept.parsed.Digest
		res.Digest = want.String()
	}
	if st.dst != nil && st.dst.Digest == want {
		r.stats.manifestsPresent.Add(1)
		res.Status = StatusUnchanged
		return res
	}
	if r.o.DryRun {
		res.Status = StatusWouldCopy
		return res
	}
	if content == nil {
		m, err := r.srcManifest(ctx, srcRef, want)
		if err != nil {
			return failed(err)
		}
		content = m
	}
	if err := r.ensureContent(ctx, p, srcRef, dstRef, content); err != nil {
		return failed(err)
	}
	// The tag last: everything it reaches is on the destination now.
	if err := r.putManifest(ctx, dstRef.Tag(st.tag), content); err != nil {
		return failed(err)
	}
	r.markPresent(p.dst, content.parsed.Digest)
	res.Status = StatusCopied
	return res
}

// ensureManifest makes sure the destination holds manifest d by digest, with everything it reaches.
func (r *run) ensureManifest(ctx context.Context, p pair, srcRef, dstRef name.Repository, d v1.Hash) error {
	if r.isPresent(p.dst, d) {
		return nil
	}
	// A repository this run created holds only what this run put there: nothing to ask.
	if !r.isNewRepo(p.dst) {
		if _, err := remote.Head(dstRef.Digest(d.String()), remote.Reuse(r.dstPull), remote.WithContext(ctx)); err == nil {
			r.stats.manifestsPresent.Add(1)
			r.markPresent(p.dst, d)
			return nil
		} else if !registry.IsNotFound(err) {
			return fmt.Errorf("HEAD %s@%s on the destination: %w", dstRef, d, err)
		}
	}
	m, err := r.srcManifest(ctx, srcRef, d)
	if err != nil {
		return err
	}
	if err := r.ensureContent(ctx, p, srcRef, dstRef, m); err != nil {
		return err
	}
	if err := r.putManifest(ctx, dstRef.Digest(d.String()), m); err != nil {
		return err
	}
	r.markPresent(p.dst, d)
	return nil
}

// ensureContent puts what a manifest reaches on the destination: an index's children (each
// complete before the index), an image's config and layers.
func (r *run) ensureContent(ctx context.Context, p pair, srcRef, dstRef name.Repository, m *fetched) error {
	if r.isPresent(p.dst, m.parsed.Digest) {
		return nil
	}
	g, gctx := errgroup.WithContext(ctx)
	for _, c := range m.parsed.Children {
		g.Go(func() error { return r.ensureManifest(gctx, p, srcRef, dstRef, c.Digest) })
	}
	var blobs []v1.Descriptor
	if m.parsed.Config != nil {
		blobs = append(blobs, *m.parsed.Config)
	}
	for _, l := range m.parsed.Layers {
		if len(l.URLs) > 0 {
			continue // foreign layers are not distributed by registries
		}
		blobs = append(blobs, l)
	}
	for _, b := range blobs {
		g.Go(func() error { return r.copyBlob(gctx, srcRef, dstRef, b) })
	}
	return g.Wait()
}

func (r *run) putManifest(ctx context.Context, ref name.Reference, m *fetched) error {
	var err error
	if m.parsed.Subject == nil {
		err = r.putManifestDirect(ctx, ref, m)
	} else {
		err = r.dstPush.Push(ctx, ref, rawManifest{m.raw, m.parsed.MediaType})
	}
	if err != nil {
		return fmt.Errorf("PUT %s: %w", ref, err)
	}
	r.stats.manifestsPut.Add(1)
	return nil
}

func (r *run) isPresent(repo string, d v1.Hash) bool {
	r.presentMu.Lock()
	defer r.presentMu.Unlock()
	return r.present[repo+"@"+d.String()]
}

func (r *run) isNewRepo(repo string) bool {
	r.presentMu.Lock()
	defer r.presentMu.Unlock()
	return r.newRepos[repo]
}

func (r *run) markPresent(repo string, d v1.Hash) {
	r.presentMu.Lock()
	defer r.presentMu.Unlock()
	r.present[repo+"@"+d.String()] = true
}

// planDeletions lists the destination tags the source no longer has, among those the filters
// select. An attached tag goes only with no filter (a mirror), or with the tag of its subject.
func (r *run) planDeletions(ctx context.Context, p pair, dstRef name.Repository, srcTags, dstTags []string) ([]Deletion, error) {
	inSrc := map[string]bool{}
	for _, t := range srcTags {
		inSrc[t] = true
	}
	var dels []Deletion
	goneDigests := map[v1.Hash]bool{}
	keptDigests := map[v1.Hash]bool{}
	digestOf := func(t string) (v1.Hash, error) {
		d, err := remote.Head(dstRef.Tag(t), remote.Reuse(r.dstPull), remote.WithContext(ctx))
		if err != nil {
			return v1.Hash{}, fmt.Errorf("HEAD %s:%s on the destination: %w", dstRef, t, err)
		}
		return d.Digest, nil
	}
	// add plans the tag with the digest it points at now; a tag gone since the listing is skipped.
	add := func(t string) (v1.Hash, bool, error) {
		d, err := digestOf(t)
		if registry.IsNotFound(err) {
			return v1.Hash{}, false, nil
		}
		if err != nil {
			return v1.Hash{}, false, err
		}
		dels = append(dels, Deletion{Repository: p.dst, Tag: t, Digest: d.String()})
		return d, true, nil
	}
	var attached []string
	for _, t := range dstTags {
		if _, _, ok := registry.SubjectOfTag(t); ok {
			if !inSrc[t] {
				attached = append(attached, t)
			}
			continue
		}
		if inSrc[t] || !r.tagSelected(t) {
			continue
		}
		if d, ok, err := add(t); err != nil {
			return nil, err
		} else if ok {
			goneDigests[d] = true
		}
	}
	if r.o.filtered() && len(attached) > 0 {
		// A subject another destination tag still holds keeps its attachments.
		for _, t := range dstTags {
			_, _, isAttached := registry.SubjectOfTag(t)
			deleted := !inSrc[t] && r.tagSelected(t)
			if isAttached || deleted {
				continue
			}
			if d, err := digestOf(t); err == nil {
				keptDigests[d] = true
			}
		}
	}
	for _, t := range attached {
		subject, _, _ := registry.SubjectOfTag(t)
		if r.o.filtered() && (!goneDigests[subject] || keptDigests[subject]) {
			continue
		}
		if _, _, err := add(t); err != nil {
			return nil, err
		}
	}
	sort.Slice(dels, func(i, j int) bool { return dels[i].Tag < dels[j].Tag })
	return dels, nil
}

// delete applies the whole deletion plan, or none of it.
func (r *run) delete(ctx context.Context, res *Result) error {
	n := len(res.Deletions)
	if r.o.DryRun {
		return nil
	}
	if r.o.MaxDelete > 0 && n > r.o.MaxDelete {
		return fmt.Errorf("the plan deletes %d tags, more than --max-delete %d: nothing deleted", n, r.o.MaxDelete)
	}
	td := r.dst.(registry.TagDeleter) // Run checked
	if r.o.Confirm != nil {
		yes, err := r.o.Confirm(res.Deletions)
		if err != nil {
			return err
		}
		if !yes {
			return errors.New("not confirmed: nothing deleted")
		}
	}
	var failed []string
	for _, d := range res.Deletions {
		if err := td.DeleteTag(ctx, d.Repository, d.Tag); err != nil && !registry.IsNotFound(err) {
			failed = append(failed, d.Repository+":"+d.Tag+": "+err.Error())
			continue
		}
		for i := range res.Repos {
			if res.Repos[i].Destination == r.dst.Name()+"/"+d.Repository {
				res.Repos[i].Deleted++
			}
		}
	}
	if len(failed) > 0 {
		return fmt.Errorf("%d of %d deletions failed: %s", len(failed), n, strings.Join(failed, "; "))
	}
	return nil
}

// rawManifest pushes manifest bytes exactly as fetched, so the digest is unchanged.
type rawManifest struct {
	raw []byte
	mt  types.MediaType
}

func (m rawManifest) RawManifest() ([]byte, error)        { return m.raw, nil }
func (m rawManifest) MediaType() (types.MediaType, error) { return m.mt, nil }
