package backup

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"reflect"
	"sort"
	"strings"
	"sync"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/partial"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/types"
	"golang.org/x/sync/errgroup"

	"github.com/regctl-dev/regctl/internal/registry"
)

// RestoreResult reports what a restore did (or, with DryRun, would do).
type RestoreResult struct {
	Snapshot         string   `json:"snapshot"`
	Repositories     []string `json:"repositories"`
	ManifestsPushed  int      `json:"manifestsPushed"`
	ManifestsPresent int      `json:"manifestsPresent"`
	BlobsPushed      int      `json:"blobsPushed"`
	BlobsPresent     int      `json:"blobsPresent"`
	BytesPushed      int64    `json:"bytesPushed"`
	TagsSet          int      `json:"tagsSet"`
	TagsPresent      int      `json:"tagsPresent"`
	// Settings says, per repository, what happened to each recorded setting.
	Settings []SettingOutcome `json:"settings"`
	DryRun   bool             `json:"dryRun"`
}

// SettingOutcome is what restore did with one recorded repository setting.
type SettingOutcome struct {
	Repository string `json:"repository"`
	Setting    string `json:"setting"` // repositorySettings, lifecyclePolicy, repositoryPolicy
	// Status is applied, unchanged, would-apply (dry run), not-applied (the target cannot hold it,
	// or the backup could not read it), skipped (--no-settings) or failed.
	Status string `json:"status"`
	Reason string `json:"reason,omitempty"`
}

// NotApplied lists the settings that did not make it (for the command's warnings).
func (r *RestoreResult) NotApplied() []SettingOutcome {
	var out []SettingOutcome
	for _, s := range r.Settings {
		if s.Status == "not-applied" || s.Status == "failed" {
			out = append(out, s)
		}
	}
	return out
}

// Restore pushes a snapshot's selected repositories into reg: blobs and manifests the registry lacks
// (children before the indexes that list them), every byte verified against its digest as it is read
// from the store, then the tags (signature tags included), then the recorded settings and policies
// (unless NoSettings). What the registry has is skipped. It holds a shared lock on the store, so no
// prune deletes what it reads.
func Restore(ctx context.Context, s Store, snap *Snapshot, reg registry.Registry, o Options) (*RestoreResult, error) {
	o.defaults()
	res := &RestoreResult{Snapshot: snap.ID, Repositories: []string{}, Settings: []SettingOutcome{}, DryRun: o.DryRun}
	ctx, release, err := Lock(ctx, s, "regctl restore "+snap.ID, LockShared, o.Now)
	if err != nil {
		return res, err
	}
	defer release()
	var failed []error
	for _, rs := range snap.Repos {
		if !registry.MatchAny(o.Repos, rs.Name) {
			continue
		}
		res.Repositories = append(res.Repositories, rs.Name)
		if err := restoreRepo(ctx, s, rs, reg, o, res); err != nil {
			return res, fmt.Errorf("restoring %s: %w", rs.Name, err)
		}
		if err := restoreSettings(ctx, rs, reg, o, res); err != nil {
			failed = append(failed, fmt.Errorf("%s: %w", rs.Name, err))
		}
	}
	if len(res.Repositories) == 0 {
		return res, fmt.Errorf("snapshot %s has no repository matching %v", snap.ID, o.Repos)
	}
	if len(failed) > 0 {
		return res, fmt.Errorf("images restored, but settings failed: %w", errors.Join(failed...))
	}
	return res, nil
}

// restoreSettings applies a repository's recorded policies once its images are back (a lifecycle
// policy applied first could expire images mid-restore). What the target cannot hold is reported.
func restoreSettings(ctx context.Context, rs RepoSnapshot, reg registry.Registry, o Options, res *RestoreResult) error {
	report := func(setting, status, reason string) {
		res.Settings = append(res.Settings, SettingOutcome{Repository: rs.Name, Setting: setting, Status: status, Reason: reason})
	}
	for _, e := range rs.SettingsErrors {
		what, why, _ := strings.Cut(e, ": ")
		report(what, "not-applied", "the backup could not read it: "+why)
	}
	keys := make([]string, 0, len(rs.Settings))
	for k := range rs.Settings {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var errs []error
	for _, k := range keys {
		text := rs.Settings[k]
		if o.NoSettings {
			report(k, "skipped", "--no-settings")
			continue
		}
		var get func(context.Context, string) (string, error)
		var put func(context.Context, string, string) error
		switch k {
		case SettingLifecyclePolicy:
			if lp, ok := reg.(registry.LifecyclePolicies); ok {
				get, put = lp.GetLifecyclePolicy, lp.PutLifecyclePolicy
			}
		case SettingRepositoryPolicy:
			if rp, ok := reg.(registry.RepositoryPolicies); ok {
				get, put = rp.GetRepositoryPolicy, rp.SetRepositoryPolicy
			}
		default:
			sk, ok := reg.(registry.SettingsKeeper)
			if !ok {
				report(k, "not-applied", reg.Name()+" ("+reg.Type()+") does not know the setting")
				continue
			}
			status, reason, err := sk.PutSetting(ctx, rs.Name, k, text, o.DryRun)
			if err != nil {
				report(k, "failed", err.Error())
				errs = append(errs, fmt.Errorf("%s: %w", k, err))
				continue
			}
			report(k, status, reason)
			continue
		}
		if put == nil {
			reason := reg.Name() + " (" + reg.Type() + ") cannot store it"
			if k == SettingLifecyclePolicy {
				reason += "; apply it client-side with regctl lifecycle apply"
			}
			report(k, "not-applied", reason)
			continue
		}
		if cur, err := get(ctx, rs.Name); err == nil && sameJSON(cur, text) {
			report(k, "unchanged", "")
			continue
		}
		if o.DryRun {
			report(k, "would-apply", "")
			continue
		}
		if err := put(ctx, rs.Name, text); err != nil {
			report(k, "failed", err.Error())
			errs = append(errs, fmt.Errorf("%s: %w", k, err))
			continue
		}
		report(k, "applied", "")
	}
	return errors.Join(errs...)
}

// sameJSON compares two JSON documents by value (whitespace and key order aside).
func sameJSON(a, b string) bool {
	var x, y any
	if json.Unmarshal([]byte(a), &x) != nil || json.Unmarshal([]byte(b), &y) != nil {
		return a == b
	}
	return reflect.DeepEqual(x, y)
}

func restoreRepo(ctx context.Context, s Store, rs RepoSnapshot, reg registry.Registry, o Options, res *RestoreResult) error {
	ref, err := registry.RepositoryRef(reg, rs.Name)
	if err != nil {
		return err
	}
	spec := registry.RepositorySpec{}
	if rs.Spec != nil && !o.NoSettings {
		spec = *rs.Spec
	}
	if !o.DryRun {
		er, err := reg.EnsureRepository(ctx, rs.Name, spec)
		if err != nil {
			return err
		}
		if rs.Spec != nil && !o.NoSettings {
			status := "applied"
			if er.Status == registry.StatusUnchanged {
				status = "unchanged"
			}
			if strings.Contains(er.Message, "not supported") || strings.Contains(er.Message, "not applied") {
				status = "not-applied"
			}
			res.Settings = append(res.Settings, SettingOutcome{Repository: rs.Name, Setting: "repositorySettings", Status: status, Reason: er.Message})
		}
	} else if rs.Spec != nil && !o.NoSettings {
		res.Settings = append(res.Settings, SettingOutcome{Repository: rs.Name, Setting: "repositorySettings", Status: "would-apply"})
	}
	if rs.Spec != nil && o.NoSettings {
		res.Settings = append(res.Settings, SettingOutcome{Repository: rs.Name, Setting: "repositorySettings", Status: "skipped", Reason: "--no-settings"})
	}
	opts := append(reg.Remote(), remote.WithContext(ctx))
	raws := map[string][]byte{}
	for _, m := range rs.Manifests {
		d, err := v1.NewHash(m.Digest)
		if err != nil {
			return err
		}
		raw, err := readBlob(ctx, s, d)
		if err != nil {
			return fmt.Errorf("manifest %s from the backup: %w", m.Digest, err)
		}
		raws[m.Digest] = raw
		if present(ref.Digest(m.Digest), opts) {
			res.ManifestsPresent++
			continue
		}
		blobs, _, err := manifestBlobs(raw)
		if err != nil {
			return err
		}
		// A manifest's blobs go up --jobs at a time; the manifest only after all of them.
		var mu sync.Mutex
		g, gctx := errgroup.WithContext(ctx)
		g.SetLimit(o.Jobs)
		for _, b := range blobs {
			g.Go(func() error {
				pushed, err := pushBlob(gctx, s, ref, b, append(reg.Remote(), remote.WithContext(gctx)), o.DryRun)
				if err != nil {
					return err
				}
				mu.Lock()
				defer mu.Unlock()
				if pushed {
					res.BlobsPushed++
					res.BytesPushed += b.Size
				} else {
					res.BlobsPresent++
				}
				return nil
			})
		}
		if err := g.Wait(); err != nil {
			return err
		}
		res.ManifestsPushed++
		if o.DryRun {
			continue
		}
		if err := remote.Put(ref.Digest(m.Digest), rawManifest{raw, m.MediaType}, opts...); err != nil {
			return fmt.Errorf("pushing manifest %s: %w", m.Digest, err)
		}
	}
	tags := make([]string, 0, len(rs.Tags))
	for t := range rs.Tags {
		tags = append(tags, t)
	}
	sort.Strings(tags)
	byDigest := map[string]Descriptor{}
	for _, m := range rs.Manifests {
		byDigest[m.Digest] = m
	}
	for _, t := range tags {
		d := rs.Tags[t]
		if _, ok := raws[d]; !ok {
			return fmt.Errorf("tag %s points at %s, which the snapshot does not hold: the record is damaged", t, d)
		}
		if cur, err := remote.Head(ref.Tag(t), opts...); err == nil && cur.Digest.String() == d {
			res.TagsPresent++
			continue
		}
		res.TagsSet++
		if o.DryRun {
			continue
		}
		if err := remote.Put(ref.Tag(t), rawManifest{raws[d], byDigest[d].MediaType}, opts...); err != nil {
			return fmt.Errorf("tagging %s: %w", ref.Tag(t), err)
		}
	}
	return nil
}

func present(ref name.Reference, opts []remote.Option) bool {
	_, err := remote.Head(ref, opts...)
	return err == nil
}

// pushBlob uploads a blob from the store unless the registry has it.
func pushBlob(ctx context.Context, s Store, repo name.Repository, b v1.Descriptor, opts []remote.Option, dryRun bool) (bool, error) {
	if l, err := remote.Layer(repo.Digest(b.Digest.String()), opts...); err == nil {
		if _, err := l.Size(); err == nil {
			return false, nil
		} else if !registry.IsNotFound(err) {
			return false, err
		}
	}
	if dryRun {
		return true, nil
	}
	layer, err := partial.CompressedToLayer(&storedBlob{ctx: ctx, s: s, d: b})
	if err != nil {
		return false, err
	}
	if err := remote.WriteLayer(repo, layer, opts...); err != nil {
		return false, fmt.Errorf("pushing blob %s: %w", b.Digest, err)
	}
	return true, nil
}

// storedBlob is a blob in the store as a go-containerregistry layer, read (and verified) on demand.
type storedBlob struct {
	ctx context.Context
	s   Store
	d   v1.Descriptor
}

func (b *storedBlob) Digest() (v1.Hash, error)            { return b.d.Digest, nil }
func (b *storedBlob) Size() (int64, error)                { return b.d.Size, nil }
func (b *storedBlob) MediaType() (types.MediaType, error) { return b.d.MediaType, nil }
func (b *storedBlob) Compressed() (io.ReadCloser, error) {
	rc, err := b.s.Get(b.ctx, blobKey(b.d.Digest))
	if err != nil {
		return nil, fmt.Errorf("blob %s from the backup: %w", b.d.Digest, err)
	}
	return struct {
		io.Reader
		io.Closer
	}{newVerifier(rc, b.d.Digest, b.d.Size), rc}, nil
}

// rawManifest pushes manifest bytes exactly as stored, so the digest is unchanged.
type rawManifest struct {
	raw []byte
	mt  types.MediaType
}

func (m rawManifest) RawManifest() ([]byte, error)        { return m.raw, nil }
func (m rawManifest) MediaType() (types.MediaType, error) { return m.mt, nil }
