package backup

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"sort"
	"strings"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
)

// VerifyResult lists what a snapshot needs that is missing or corrupt.
type VerifyResult struct {
	Snapshot string   `json:"snapshot"`
	Blobs    int      `json:"blobsChecked"`
	Bytes    int64    `json:"bytesChecked"`
	Missing  []string `json:"missing"`
	Corrupt  []string `json:"corrupt"`
}

// OK reports whether everything checked out.
func (v *VerifyResult) OK() bool { return len(v.Missing) == 0 && len(v.Corrupt) == 0 }

// Verify re-hashes every manifest and blob the snapshot needs, under a shared lock (a prune cannot
// run meanwhile).
func Verify(ctx context.Context, s Store, snap *Snapshot, now func() time.Time) (*VerifyResult, error) {
	if now == nil {
		now = time.Now
	}
	ctx, release, err := Lock(ctx, s, "regctl backup verify", LockShared, now)
	if err != nil {
		return nil, err
	}
	defer release()
	res := &VerifyResult{Snapshot: snap.ID, Missing: []string{}, Corrupt: []string{}}
	need, err := neededBlobs(ctx, s, []*Snapshot{snap}, func(d v1.Hash, err error) error {
		switch {
		case errors.Is(err, fs.ErrNotExist):
			res.Missing = append(res.Missing, d.String())
		case errors.Is(err, ErrDigestMismatch) || errors.Is(err, errNotAManifest):
			res.Corrupt = append(res.Corrupt, d.String())
		default:
			return err // the store failed to answer: that says nothing about the snapshot
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	keys := make([]string, 0, len(need))
	for k := range need {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		d := need[k]
		res.Blobs++
		rc, err := s.Get(ctx, blobKey(d.Digest))
		if err != nil {
			if errors.Is(err, fs.ErrNotExist) {
				res.Missing = append(res.Missing, k)
				continue
			}
			return nil, err
		}
		n, err := io.Copy(io.Discard, newVerifier(rc, d.Digest, d.Size))
		rc.Close()
		res.Bytes += n
		switch {
		case errors.Is(err, ErrDigestMismatch):
			res.Corrupt = append(res.Corrupt, k)
		case err != nil:
			return nil, fmt.Errorf("reading %s: %w", k, err)
		}
	}
	sort.Strings(res.Missing)
	sort.Strings(res.Corrupt)
	return res, nil
}

// errNotAManifest marks a stored manifest that is not a manifest (it matched its digest, so it was
// stored that way).
var errNotAManifest = errors.New("not a manifest")

// neededBlobs walks the snapshots' manifests in the store and returns every blob (config, layer)
// they reference, by digest, plus the manifests themselves. A manifest that cannot be read goes to
// bad: a nil answer goes on without its blobs (verify reports it), an error stops the walk (prune
// must not delete anything when it cannot know everything a kept snapshot needs).
func neededBlobs(ctx context.Context, s Store, snaps []*Snapshot, bad func(v1.Hash, error) error) (map[string]v1.Descriptor, error) {
	need := map[string]v1.Descriptor{}
	for _, snap := range snaps {
		for _, r := range snap.Repos {
			for _, m := range r.Manifests {
				d, err := v1.NewHash(m.Digest)
				if err != nil {
					return nil, fmt.Errorf("snapshot %s, %s: %w", snap.ID, r.Name, err)
				}
				if _, seen := need[m.Digest]; seen {
					continue
				}
				need[m.Digest] = v1.Descriptor{Digest: d, Size: m.Size}
				raw, err := readBlob(ctx, s, d)
				if err == nil {
					var blobs []v1.Descriptor
					if blobs, _, err = manifestBlobs(raw); err == nil {
						for _, b := range blobs {
							need[b.Digest.String()] = b
						}
						continue
					}
					err = fmt.Errorf("%w: %v", errNotAManifest, err)
				}
				if berr := bad(d, err); berr != nil {
					return nil, fmt.Errorf("snapshot %s, %s@%s: %w", snap.ID, r.Name, d, berr)
				}
				delete(need, m.Digest) // reported already

			}
		}
	}
	return need, nil
}

// PruneResult reports what prune removed (or, with DryRun, would remove).
type PruneResult struct {
	Removed      []string `json:"removedSnapshots"`
	Kept         []string `json:"keptSnapshots"`
	BlobsRemoved int      `json:"blobsRemoved"`
	DryRun       bool     `json:"dryRun"`
}

// Prune removes snapshots older than keepDays (always keeping the newest keepLast), then every blob
// no remaining snapshot needs. Records go first and blobs last, so an interrupted prune only leaves
// unused blobs behind, which the next prune removes.
func Prune(ctx context.Context, s Store, keepDays, keepLast int, now time.Time, dryRun bool) (*PruneResult, error) {
	mode := LockExclusive
	if dryRun {
		mode = LockShared
	}
	ctx, release, err := Lock(ctx, s, "regctl backup prune", mode, func() time.Time { return now })
	if err != nil {
		return nil, err
	}
	defer release()
	snaps, err := Snapshots(ctx, s)
	if err != nil {
		return nil, err
	}
	res := &PruneResult{Removed: []string{}, Kept: []string{}, DryRun: dryRun}
	var keep []*Snapshot
	cutoff := now.Add(-time.Duration(keepDays) * 24 * time.Hour)
	for i, snap := range snaps {
		newest := len(snaps) - i // 1 for the newest
		if (keepLast > 0 && newest <= keepLast) || keepDays <= 0 || !snap.CreatedAt.Before(cutoff) {
			keep = append(keep, snap)
			res.Kept = append(res.Kept, snap.ID)
		} else {
			res.Removed = append(res.Removed, snap.ID)
		}
	}
	// Any doubt about what a kept snapshot needs stops the prune before anything is deleted.
	need, err := neededBlobs(ctx, s, keep, func(d v1.Hash, err error) error {
		return fmt.Errorf("cannot read what a kept snapshot needs (%w); nothing deleted", err)
	})
	if err != nil {
		return nil, err
	}
	stored, err := s.List(ctx, "blobs/")
	if err != nil {
		return nil, err
	}
	var garbage []string
	for _, k := range stored {
		parts := strings.Split(k, "/")
		if len(parts) != 3 || parts[0] != "blobs" {
			continue
		}
		h, err := v1.NewHash(parts[1] + ":" + parts[2])
		if err != nil || blobKey(h) != k {
			continue // not a blob of the layout: not ours to delete
		}
		if _, ok := need[h.String()]; !ok {
			garbage = append(garbage, k)
		}
	}
	res.BlobsRemoved = len(garbage)
	if dryRun {
		return res, nil
	}
	if _, err := s.CleanTemp(ctx); err != nil {
		return nil, fmt.Errorf("removing what killed runs left: %w", err)
	}
	for _, id := range res.Removed {
		if err := s.Delete(ctx, recordKey(id)); err != nil {
			return nil, err
		}
	}
	if err := writeIndex(ctx, s, keep); err != nil {
		return nil, fmt.Errorf("writing index.json: %w", err)
	}
	for _, k := range garbage {
		if err := ctx.Err(); err != nil {
			return nil, context.Cause(ctx)
		}
		if err := s.Delete(ctx, k); err != nil {
			return nil, err
		}
	}
	return res, nil
}
