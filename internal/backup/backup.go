package backup

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"net/http"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/remote/transport"
	"github.com/google/go-containerregistry/pkg/v1/types"
	"golang.org/x/sync/errgroup"

	"github.com/regctl-dev/regctl/internal/exitcode"
	"github.com/regctl-dev/regctl/internal/registry"
)

// Options control backup and restore.
type Options struct {
	Repos    []string // globs ("*" matches anything, "/" included); empty = all
	Jobs     int      // blobs transferred in parallel (default 4)
	Now      func() time.Time
	Logger   *slog.Logger
	Progress func(p Progress) // called as blobs complete (a TTY progress line)
	DryRun   bool             // restore: report, push nothing
	// VerifyExisting re-hashes blobs the store already has (backup) instead of trusting their size;
	// a damaged one is fetched again.
	VerifyExisting bool
	// NoSettings restores images only: repositories are created with default settings and no
	// recorded policy is applied.
	NoSettings bool
}

// Progress reports a running transfer.
type Progress struct {
	Repository string
	Done       int
	Total      int
	Bytes      int64
}

func (o *Options) defaults() {
	if o.Jobs <= 0 {
		o.Jobs = 4
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
}

// Backup copies every selected repository of reg into the store and records a snapshot. Blobs the
// store already has are not transferred again. The snapshot record, then index.json, are written
// last, after everything they reference: an interrupted run leaves earlier snapshots untouched and
// the next run reuses what it had already stored.
func Backup(ctx context.Context, reg registry.Registry, s Store, o Options) (*Snapshot, error) {
	o.defaults()
	start := o.Now().UTC()
	ctx, release, err := Lock(ctx, s, "regctl backup "+reg.Name(), LockExclusive, o.Now)
	if err != nil {
		return nil, err
	}
	defer release()
	// Holding the exclusive lock, whatever is half-written was left by a killed run.
	if n, err := s.CleanTemp(ctx); err != nil {
		o.Logger.Warn("could not remove what killed runs left", "error", err)
	} else if n > 0 {
		o.Logger.Info("removed what killed runs left", "files", n)
	}

	all, err := reg.Repositories(ctx, "")
	if err != nil {
		return nil, err
	}
	var repos []string
	for _, r := range all {
		if registry.MatchAny(o.Repos, r) {
			repos = append(repos, r)
		}
	}
	if len(repos) == 0 {
		return nil, exitcode.With(exitcode.NotFound, fmt.Errorf("no repository on %s matches %v", reg.Host(), o.Repos))
	}
	snap := &Snapshot{ID: start.Format("20060102T150405Z"), CreatedAt: start, Registry: reg.Name(), Host: reg.Host()}
	x, err := newTransfers(reg, o.Jobs)
	if err != nil {
		return nil, err
	}
	// The records as they are (the exclusive lock keeps them so): the last one says which tags are
	// known (see backupRepo), and with the new record they make the index. A store whose records
	// cannot be read is reported once the new snapshot is safe, as before.
	prior, priorErr := Snapshots(ctx, s)
	if priorErr == nil && len(prior) > 0 {
		x.previous = map[string]map[string]string{}
		for _, r := range prior[len(prior)-1].Repos {
			x.previous[r.Name] = r.Tags
		}
	}
	type repoResult struct {
		rs  *RepoSnapshot
		st  *Stats
		err error
	}
	results := make([]repoResult, len(repos))
	var g errgroup.Group // a repository's failure is recorded, not fatal: no group context
	g.SetLimit(repoJobs)
	for i, repo := range repos {
		g.Go(func() error {
			rs, st, err := backupRepo(ctx, reg, s, repo, o, x)
			results[i] = repoResult{rs, st, err}
			return nil
		})
	}
	_ = g.Wait()
	if ctx.Err() != nil {
		return nil, context.Cause(ctx)
	}
	for i, r := range results {
		if r.err != nil {
			o.Logger.Warn("repository not backed up", "repository", repos[i], "error", r.err)
			snap.Incomplete = append(snap.Incomplete, repos[i]+": "+r.err.Error())
			continue
		}
		rs, st := r.rs, r.st
		snap.Repos = append(snap.Repos, *rs)
		snap.Stats.Manifests += st.Manifests
		snap.Stats.Blobs += st.Blobs
		snap.Stats.Bytes += st.Bytes
		snap.Stats.NewBlobs += st.NewBlobs
		snap.Stats.NewBytes += st.NewBytes
		snap.Stats.StoredAlready += st.StoredAlready
		snap.Stats.Repaired += st.Repaired
	}
	if len(snap.Repos) == 0 {
		return snap, fmt.Errorf("no repository could be backed up: %s", strings.Join(snap.Incomplete, "; "))
	}
	// Two runs in the same second must not share a record.
	for i := 1; ; i++ {
		if ok, err := exists(ctx, s, recordKey(snap.ID)); err != nil {
			return nil, err
		} else if !ok {
			break
		}
		snap.ID = start.Format("20060102T150405Z") + fmt.Sprintf("-%d", i)
	}
	if err := putJSON(ctx, s, recordKey(snap.ID), snap); err != nil {
		return nil, fmt.Errorf("writing the snapshot record: %w", err)
	}
	if priorErr != nil {
		return nil, priorErr
	}
	if err := writeIndex(ctx, s, sortSnapshots(append(prior, snap))); err != nil {
		return nil, fmt.Errorf("writing index.json: %w", err)
	}
	if len(snap.Incomplete) > 0 {
		return snap, fmt.Errorf("partial backup: %d of %d repositories failed: %s", len(snap.Incomplete), len(repos), strings.Join(snap.Incomplete, "; "))
	}
	return snap, nil
}

// repoJobs is how many repositories are read at once; their blob transfers share the Jobs slots.
// Reading a repository is a chain of small requests (tags, a HEAD per tag, manifests), so several
// at once keep the transfers busy.
const repoJobs = 4

// transfers is what the repositories of one run share: the last snapshot's tags, the registry's
// data-plane client, the slots that bound blob downloads, and which blobs this run has already
// stored, so a layer shared by many repositories is fetched once.
type transfers struct {
	// previous is the last snapshot's tags by repository: which tags are known.
	previous map[string]map[string]string
	// data reads manifests and blobs: blobs so that only backup's own verifier hashes them, and
	// manifests so that a repository costs one /v2/ ping and token exchange (its scope's client),
	// not a second one for go-containerregistry's puller.
	data       registry.DataPlane
	slots      chan struct{}
	digests    sync.Map // digest -> *sync.Mutex: one transfer of a blob at a time
	stored     sync.Map // digest -> struct{}: stored or checked whole by this run
	progressMu sync.Mutex
}

func newTransfers(reg registry.Registry, jobs int) (*transfers, error) {
	data, ok := reg.(registry.DataPlane)
	if !ok {
		return nil, fmt.Errorf("%s: this registry type has no data-plane client to read blobs with", reg.Name())
	}
	return &transfers{data: data, slots: make(chan struct{}, jobs)}, nil
}

// remote is how go-containerregistry reads repo's manifests: through the repository's data-plane
// client, whose transport is already authenticated (a transport.Wrapper, which go-containerregistry
// uses as it is, without pinging again) and keeps the registry's retries and answer limits.
func (x *transfers) remote(ctx context.Context, repo name.Repository) ([]remote.Option, error) {
	client, err := x.data.DataClient(ctx, repo.Scope(transport.PullScope))
	if err != nil {
		return nil, err
	}
	return []remote.Option{remote.WithTransport(client.Transport), remote.WithContext(ctx)}, nil
}

// lock holds digest against concurrent transfers of the same blob.
func (x *transfers) lock(digest string) (unlock func()) {
	m, _ := x.digests.LoadOrStore(digest, &sync.Mutex{})
	mu := m.(*sync.Mutex)
	mu.Lock()
	return mu.Unlock
}

func backupRepo(ctx context.Context, reg registry.Registry, s Store, repo string, o Options, x *transfers) (*RepoSnapshot, *Stats, error) {
	ref, err := registry.RepositoryRef(reg, repo)
	if err != nil {
		return nil, nil, err
	}
	// Tags, then every manifest they reach (index children included), without the registry's image
	// listing: a manifest already in the store is read from there, so an unchanged re-run costs a tag
	// list and one HEAD per tag.
	tags, err := reg.Tags(ctx, repo)
	if err != nil {
		return nil, nil, err
	}
	opts, err := x.remote(ctx, ref)
	if err != nil {
		return nil, nil, err
	}
	rs := &RepoSnapshot{Name: repo, Tags: map[string]string{}}
	st := &Stats{}
	raws := map[string][]byte{}
	var descs []Descriptor             // children first: registries that check an index's completeness refuse it before them
	need := map[string]v1.Descriptor{} // every blob (config and layers) the manifests name
	// Manifests read from the registry that the store lacks: they are stored with the blobs, in
	// parallel, rather than one by one in the walk, which would hold up the repository's transfers.
	var toStore []v1.Hash
	var walk func(d v1.Hash, mt types.MediaType, raw []byte) error
	// walk records manifest d and what it reaches, d after its children; raw is its content when
	// already fetched.
	walk = func(d v1.Hash, mt types.MediaType, raw []byte) error {
		if _, seen := raws[d.String()]; seen {
			return nil
		}
		if raw != nil {
			if ok, err := exists(ctx, s, blobKey(d)); err != nil {
				return fmt.Errorf("%s@%s: %w", repo, d, err)
			} else if !ok {
				toStore = append(toStore, d)
			}
		} else {
			got, gotMT, fetched, err := manifestRaw(ctx, s, ref, d, opts)
			if err != nil {
				return err
			}
			raw = got
			if mt == "" {
				mt = gotMT
			}
			if fetched {
				toStore = append(toStore, d)
			}
		}
		raws[d.String()] = raw
		blobs, children, err := manifestBlobs(raw)
		if err != nil {
			return fmt.Errorf("%s@%s: %w", repo, d, err)
		}
		for _, b := range blobs {
			need[b.Digest.String()] = b
		}
		for _, c := range children {
			if err := walk(c.Digest, c.MediaType, nil); err != nil {
				return err
			}
		}
		descs = append(descs, Descriptor{Digest: d.String(), MediaType: mt, Size: int64(len(raw))})
		return nil
	}
	for _, t := range tags {
		// A tag the last snapshot had gets a HEAD, which is all an unchanged one costs (and does not
		// count as a pull where registries meter them). A new tag's manifest is needed anyway, so it
		// is fetched by tag in one GET instead of a HEAD and a GET by digest.
		var desc *v1.Descriptor
		var raw []byte
		if _, known := x.previous[repo][t]; known {
			desc, err = remote.Head(ref.Tag(t), opts...)
		} else if got, gerr := remote.Get(ref.Tag(t), opts...); gerr == nil {
			desc, raw = &got.Descriptor, got.Manifest
		} else {
			err = gerr
		}
		if err != nil {
			if registry.IsNotFound(err) {
				continue // deleted since the listing
			}
			return nil, nil, fmt.Errorf("%s:%s: %w", repo, t, err)
		}
		rs.Tags[t] = desc.Digest.String()
		if err := walk(desc.Digest, desc.MediaType, raw); err != nil {
			return nil, nil, err
		}
	}
	rs.Manifests = descs
	recordSettings(ctx, reg, repo, rs, o.Logger)
	st.Manifests = len(descs)

	// Every blob once, in parallel.
	keys := make([]string, 0, len(need))
	for k := range need {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var done, newBlobs, already, repaired atomic.Int64
	var newBytes atomic.Int64
	g, gctx := errgroup.WithContext(ctx)
	// Jobs downloading (the slots) and as many finishing: a blob whose body is read gives its slot
	// back while the store syncs it, and another blob of this repository can take it.
	g.SetLimit(2 * o.Jobs)
	for _, d := range toStore {
		g.Go(func() error {
			if err := storeManifest(gctx, s, d, raws[d.String()]); err != nil {
				return fmt.Errorf("%s@%s: %w", repo, d, err)
			}
			return nil
		})
	}
	for _, k := range keys {
		b := need[k]
		g.Go(func() error {
			copied, fixed, err := x.copy(gctx, s, ref, b, o.VerifyExisting)
			if err != nil {
				return err
			}
			if fixed {
				repaired.Add(1)
				o.Logger.Warn("a stored blob was damaged and was fetched again", "repository", repo, "digest", b.Digest.String())
			}
			if copied {
				newBlobs.Add(1)
				newBytes.Add(b.Size)
			} else {
				already.Add(1)
			}
			n := done.Add(1)
			if o.Progress != nil {
				x.progressMu.Lock()
				o.Progress(Progress{Repository: repo, Done: int(n), Total: len(keys), Bytes: newBytes.Load()})
				x.progressMu.Unlock()
			}
			return nil
		})
	}
	if err := g.Wait(); err != nil {
		return nil, nil, err
	}
	st.Blobs = len(keys)
	for _, b := range need {
		st.Bytes += b.Size
	}
	st.NewBlobs, st.NewBytes, st.StoredAlready = int(newBlobs.Load()), newBytes.Load(), int(already.Load())
	st.Repaired = int(repaired.Load())
	return rs, st, nil
}

// manifestRaw returns a manifest's bytes and media type: from the store when it has them whole,
// else from the registry (verified against the digest; fetched says so, and the caller stores it).
func manifestRaw(ctx context.Context, s Store, repo name.Repository, d v1.Hash, opts []remote.Option) (raw []byte, mt types.MediaType, fetched bool, err error) {
	if ok, err := exists(ctx, s, blobKey(d)); err != nil {
		return nil, "", false, err
	} else if ok {
		if raw, err := readBlob(ctx, s, d); err == nil {
			return raw, mediaTypeOf(raw), false, nil
		}
		// a corrupt copy: fetch it again below
	}
	desc, err := remote.Get(repo.Digest(d.String()), opts...)
	if err != nil {
		return nil, "", false, fmt.Errorf("%s@%s: %w", repo, d, err)
	}
	return desc.Manifest, desc.MediaType, true, nil
}

// storeManifest stores raw under d, verified against it.
func storeManifest(ctx context.Context, s Store, d v1.Hash, raw []byte) error {
	return s.Put(ctx, blobKey(d), newVerifier(bytes.NewReader(raw), d, int64(len(raw))), int64(len(raw)))
}

func mediaTypeOf(raw []byte) types.MediaType {
	var m struct {
		MediaType types.MediaType `json:"mediaType"`
		Manifests json.RawMessage `json:"manifests"`
	}
	_ = json.Unmarshal(raw, &m)
	switch {
	case m.MediaType != "":
		return m.MediaType
	case m.Manifests != nil:
		return types.OCIImageIndex
	}
	return types.OCIManifestSchema1
}

// copy is copyBlob once per blob per run: a blob another repository of the run is copying is waited
// for, and one it stored is not looked at again.
func (x *transfers) copy(ctx context.Context, s Store, repo name.Repository, b v1.Descriptor, verifyExisting bool) (copied, repaired bool, err error) {
	key := b.Digest.String()
	unlock := x.lock(key)
	defer unlock()
	if _, ok := x.stored.Load(key); ok {
		return false, false, nil
	}
	sl := &slot{ch: x.slots}
	defer sl.release()
	copied, repaired, err = copyBlob(ctx, s, repo, b, x.data, verifyExisting, sl)
	if err == nil {
		x.stored.Store(key, struct{}{})
	}
	return copied, repaired, err
}

// copyBlob streams one blob from the registry into the store unless the store has it whole: the
// stored size must match (and, with verifyExisting, the content its digest), else the blob is
// fetched again and repaired reports it. The stream is verified as it is written; a transfer that
// breaks, or that the registry refuses for a passing reason, is started again (registry.RetryStream).
func copyBlob(ctx context.Context, s Store, repo name.Repository, b v1.Descriptor, data registry.DataPlane, verifyExisting bool, sl *slot) (copied, repaired bool, err error) {
	size, err := s.Size(ctx, blobKey(b.Digest))
	switch {
	case errors.Is(err, fs.ErrNotExist):
	case err != nil:
		return false, false, err
	case size != b.Size:
		repaired = true
	case !verifyExisting:
		return false, false, nil
	default:
		ok, err := storedIntact(ctx, s, b)
		if err != nil {
			return false, false, err
		}
		if ok {
			return false, false, nil
		}
		repaired = true
	}
	err = registry.RetryStream(ctx, func() error {
		if err := sl.acquire(ctx); err != nil {
			return err
		}
		rc, err := fetchBlob(ctx, data, repo, b.Digest)
		if err != nil {
			sl.release()
			return err
		}
		defer rc.Close()
		// The slot goes back once the body is read: the store's sync of this blob then overlaps
		// the next download instead of holding it up.
		err = s.Put(ctx, blobKey(b.Digest), newVerifier(releaseAtEnd{rc, sl}, b.Digest, b.Size), b.Size)
		if errors.Is(err, ErrDigestMismatch) {
			return registry.Final(err) // the registry would send the same bytes again
		}
		return err
	})
	switch {
	case err == nil:
		return true, repaired, nil
	case ctx.Err() != nil:
		return false, false, context.Cause(ctx)
	}
	return false, false, fmt.Errorf("copying %s@%s: %w", repo, b.Digest, err)
}

// slot is one of the transfer slots (a semaphore of Jobs), held while a blob downloads. It is used by
// one goroutine, the one copying the blob.
type slot struct {
	ch   chan struct{}
	held bool
}

func (s *slot) acquire(ctx context.Context) error {
	if s == nil || s.held {
		return nil
	}
	select {
	case s.ch <- struct{}{}:
		s.held = true
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (s *slot) release() {
	if s != nil && s.held {
		s.held = false
		<-s.ch
	}
}

// releaseAtEnd gives the slot back when the body ends (or breaks).
type releaseAtEnd struct {
	r  io.Reader
	sl *slot
}

func (r releaseAtEnd) Read(p []byte) (int, error) {
	n, err := r.r.Read(p)
	if err != nil {
		r.sl.release()
	}
	return n, err
}

// fetchBlob GETs a blob through the registry's data-plane client (its auth, TLS, retries and
// answer limits). The body is not verified here: the caller streams it through a verifier.
func fetchBlob(ctx context.Context, data registry.DataPlane, repo name.Repository, d v1.Hash) (io.ReadCloser, error) {
	client, err := data.DataClient(ctx, repo.Scope(transport.PullScope))
	if err != nil {
		return nil, err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, registry.BlobsURL(repo)+d.String(), nil)
	if err != nil {
		return nil, err
	}
	resp, err := client.Do(req)
	if err != nil {
		return nil, err
	}
	if resp.StatusCode != http.StatusOK {
		defer resp.Body.Close()
		return nil, transport.CheckError(resp, http.StatusOK)
	}
	return resp.Body, nil
}

// storedIntact re-hashes a stored blob.
func storedIntact(ctx context.Context, s Store, b v1.Descriptor) (bool, error) {
	rc, err := s.Get(ctx, blobKey(b.Digest))
	if err != nil {
		return false, err
	}
	defer rc.Close()
	_, err = io.Copy(io.Discard, newVerifier(rc, b.Digest, b.Size))
	if errors.Is(err, ErrDigestMismatch) {
		return false, nil
	}
	return err == nil, err
}

// recordSettings keeps what the backend can tell about the repository (its settings, ECR lifecycle
// and repository policies) in the snapshot, for restore. A setting the repository does not have is
// no error; one that cannot be read is logged and recorded as not backed up.
func recordSettings(ctx context.Context, reg registry.Registry, repo string, rs *RepoSnapshot, logger *slog.Logger) {
	failed := func(what string, err error) {
		logger.Warn("repository setting not backed up", "repository", repo, "setting", what, "error", err)
		rs.SettingsErrors = append(rs.SettingsErrors, what+": "+err.Error())
	}
	if ri, ok := reg.(registry.RepositoryInspector); ok {
		spec, err := ri.RepositorySettings(ctx, repo)
		if err != nil {
			failed("repository settings", err)
		} else {
			rs.Spec = &spec
		}
	}
	if lp, ok := reg.(registry.LifecyclePolicies); ok {
		if text, err := lp.GetLifecyclePolicy(ctx, repo); err == nil {
			rs.setting(SettingLifecyclePolicy, text)
		} else if !registry.IsNotFound(err) {
			failed(SettingLifecyclePolicy, err)
		}
	}
	if rp, ok := reg.(registry.RepositoryPolicies); ok {
		if text, err := rp.GetRepositoryPolicy(ctx, repo); err == nil {
			rs.setting(SettingRepositoryPolicy, text)
		} else if !registry.IsNotFound(err) {
			failed(SettingRepositoryPolicy, err)
		}
	}
	if sk, ok := reg.(registry.SettingsKeeper); ok {
		docs, err := sk.Settings(ctx, repo)
		if err != nil {
			failed("backend settings", err)
		}
		for k, v := range docs {
			rs.setting(k, v)
		}
	}
}
