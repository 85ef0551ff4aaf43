package backup

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"hash"
	"io"
	"regexp"
	"sort"
	"strings"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/types"

	"github.com/regctl-dev/regctl/internal/registry"
)

// Keys of the layout. blobs/ and index.json are the OCI image layout; snapshots/ is regctl's record
// of each run; lock is the run lock.
const (
	keyLayout    = "oci-layout"
	keyIndex     = "index.json"
	keyLock      = "lock"
	snapshotsDir = "snapshots/"
	// AnnotationSnapshot marks each index.json entry with the snapshot it belongs to.
	AnnotationSnapshot = "dev.regctl.snapshot"
	annotationRefName  = "org.opencontainers.image.ref.name"
)

func blobKey(d v1.Hash) string { return "blobs/" + d.Algorithm + "/" + d.Hex }

// Snapshot records one backup run: what was where. It is written after everything it references.
type Snapshot struct {
	ID         string         `json:"id"` // UTC time, e.g. 20261202T103000Z
	CreatedAt  time.Time      `json:"createdAt"`
	Registry   string         `json:"registry"`
	Host       string         `json:"host"`
	Repos      []RepoSnapshot `json:"repositories"`
	Incomplete []string       `json:"incomplete,omitempty"` // repositories that failed: "repo: error"
	Stats      Stats          `json:"stats"`
}

// RepoSnapshot is one repository's state at backup time.
type RepoSnapshot struct {
	Name string `json:"name"`
	// Tags maps every tag (signature tags included) to its digest.
	Tags map[string]string `json:"tags"`
	// Manifests are every manifest the tags reach (platforms, attestations, referrers included),
	// children before their parents: the order restore pushes them in.
	Manifests []Descriptor `json:"manifests"`
	// Settings holds backend configuration (e.g. ECR lifecycle and repository policies) where the
	// backend can read it.
	Settings map[string]string `json:"settings,omitempty"`
	// Spec is the repository's settings (scan on push, encryption, tag mutability) where the backend
	// can read them; restore creates the repository with them.
	Spec *registry.RepositorySpec `json:"spec,omitempty"`
	// SettingsErrors names settings that could not be read, so they are not in the snapshot.
	SettingsErrors []string `json:"settingsErrors,omitempty"`
}

// Keys of RepoSnapshot.Settings.
const (
	SettingLifecyclePolicy  = "lifecyclePolicy"
	SettingRepositoryPolicy = "repositoryPolicy"
)

func (r *RepoSnapshot) setting(key, value string) {
	if r.Settings == nil {
		r.Settings = map[string]string{}
	}
	r.Settings[key] = value
}

// Descriptor is a manifest's digest, media type and size.
type Descriptor struct {
	Digest    string          `json:"digest"`
	MediaType types.MediaType `json:"mediaType"`
	Size      int64           `json:"size"`
}

// Stats count what a run saw and what it had to transfer.
type Stats struct {
	Manifests     int   `json:"manifests"`
	Blobs         int   `json:"blobs"` // blobs the snapshot references (configs and layers)
	Bytes         int64 `json:"bytes"` // their total size
	NewBlobs      int   `json:"newBlobs"`
	NewBytes      int64 `json:"newBytes"`
	StoredAlready int   `json:"storedAlready"`
	Repaired      int   `json:"repaired,omitempty"` // stored blobs found damaged and fetched again
}

// Images counts the tagged manifests.
func (s *Snapshot) Images() int {
	n := 0
	for _, r := range s.Repos {
		n += len(r.Tags)
	}
	return n
}

// verifier hashes what passes through and, at the end, fails the read if the digest or size is not
// what was expected, so a Store never commits a corrupt blob and a restore never uses one.
type verifier struct {
	r    io.Reader
	h    hash.Hash
	want v1.Hash
	size int64 // -1: unknown
	n    int64
}

// ErrDigestMismatch means content does not match its digest.
var ErrDigestMismatch = errors.New("content does not match its digest")

func newVerifier(r io.Reader, want v1.Hash, size int64) *verifier {
	return &verifier{r: r, h: sha256.New(), want: want, size: size}
}

func (v *verifier) Read(p []byte) (int, error) {
	n, err := v.r.Read(p)
	v.h.Write(p[:n])
	v.n += int64(n)
	if errors.Is(err, io.EOF) {
		if got := hex.EncodeToString(v.h.Sum(nil)); got != v.want.Hex {
			return n, fmt.Errorf("%s: got sha256:%s: %w", v.want, got, ErrDigestMismatch)
		}
		if v.size >= 0 && v.n != v.size {
			return n, fmt.Errorf("%s: %d bytes, want %d: %w", v.want, v.n, v.size, ErrDigestMismatch)
		}
	}
	return n, err
}

// maxManifestSize bounds what is read whole: a manifest or a record. Larger is not a manifest.
const (
	maxManifestSize = 64 << 20
	maxRecordSize   = 64 << 20
)

// readLimited reads r whole, failing (rather than cutting) when it holds more than limit bytes.
func readLimited(r io.Reader, limit int64) ([]byte, error) {
	raw, err := io.ReadAll(io.LimitReader(r, limit+1))
	if err != nil {
		return nil, err
	}
	if int64(len(raw)) > limit {
		return nil, fmt.Errorf("larger than %d MiB", limit>>20)
	}
	return raw, nil
}

// readBlob reads a small blob (a manifest) whole and verifies it against its digest: the verifier
// sees the whole stream to its end, so a size limit can never pass a cut-off manifest as good.
func readBlob(ctx context.Context, s Store, d v1.Hash) ([]byte, error) {
	rc, err := s.Get(ctx, blobKey(d))
	if err != nil {
		return nil, err
	}
	defer rc.Close()
	raw, err := readLimited(newVerifier(rc, d, -1), maxManifestSize)
	if err != nil {
		return nil, fmt.Errorf("manifest %s in the store: %w", d, err)
	}
	return raw, nil
}

func putJSON(ctx context.Context, s Store, key string, v any) error {
	raw, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return err
	}
	return s.Put(ctx, key, bytes.NewReader(raw), int64(len(raw)))
}

// snapshotID is the only form of id regctl writes. Ids name files, so anything else is refused: a
// crafted record must not make prune delete outside the store.
var snapshotID = regexp.MustCompile(`^[0-9]{8}T[0-9]{6}Z(-[0-9]{1,6})?$`)

func recordKey(id string) string { return snapshotsDir + id + ".json" }

// Snapshots reads every snapshot record, oldest first. A record whose id is not a plain snapshot id,
// or differs from its file name, is an error.
func Snapshots(ctx context.Context, s Store) ([]*Snapshot, error) {
	keys, err := s.List(ctx, snapshotsDir)
	if err != nil {
		return nil, err
	}
	var out []*Snapshot
	for _, k := range keys {
		if !strings.HasSuffix(k, ".json") {
			continue
		}
		rc, err := s.Get(ctx, k)
		if err != nil {
			return nil, err
		}
		raw, err := readLimited(rc, maxRecordSize)
		rc.Close()
		if err != nil {
			return nil, fmt.Errorf("%s: %w", k, err)
		}
		var snap Snapshot
		if err := json.Unmarshal(raw, &snap); err != nil {
			return nil, fmt.Errorf("%s: %w", k, err)
		}
		if !snapshotID.MatchString(snap.ID) || recordKey(snap.ID) != k {
			return nil, fmt.Errorf("%s: id %q is not the snapshot id its name says (YYYYMMDDTHHMMSSZ[-N]); the record is damaged or not regctl's: move it away", k, snap.ID)
		}
		out = append(out, &snap)
	}
	return sortSnapshots(out), nil
}

// sortSnapshots orders snapshots oldest first (ids are their UTC start times).
func sortSnapshots(snaps []*Snapshot) []*Snapshot {
	sort.Slice(snaps, func(i, j int) bool { return snaps[i].ID < snaps[j].ID })
	return snaps
}

// FindSnapshot returns the snapshot with id ("latest" or "" for the newest).
func FindSnapshot(snaps []*Snapshot, id string) (*Snapshot, error) {
	if len(snaps) == 0 {
		return nil, errors.New("the destination holds no snapshot")
	}
	if id == "" || id == "latest" {
		return snaps[len(snaps)-1], nil
	}
	for _, s := range snaps {
		if s.ID == id {
			return s, nil
		}
	}
	return nil, fmt.Errorf("no snapshot %q (regctl backup list shows them)", id)
}

// writeIndex rewrites index.json from the snapshot records: one entry per snapshot, repository and
// tag, named "<snapshot>/<repository>:<tag>", so standard tools can address any backed-up image.
func writeIndex(ctx context.Context, s Store, snaps []*Snapshot) error {
	idx := v1.IndexManifest{SchemaVersion: 2, MediaType: types.OCIImageIndex, Manifests: []v1.Descriptor{}}
	for _, snap := range snaps {
		for _, r := range snap.Repos {
			byDigest := map[string]Descriptor{}
			for _, m := range r.Manifests {
				byDigest[m.Digest] = m
			}
			tags := make([]string, 0, len(r.Tags))
			for t := range r.Tags {
				tags = append(tags, t)
			}
			sort.Strings(tags)
			for _, t := range tags {
				m := byDigest[r.Tags[t]]
				h, err := v1.NewHash(m.Digest)
				if err != nil {
					return err
				}
				idx.Manifests = append(idx.Manifests, v1.Descriptor{MediaType: m.MediaType, Digest: h, Size: m.Size,
					Annotations: map[string]string{annotationRefName: snap.ID + "/" + r.Name + ":" + t, AnnotationSnapshot: snap.ID}})
			}
		}
	}
	if err := s.Put(ctx, keyLayout, strings.NewReader(`{"imageLayoutVersion":"1.0.0"}`), -1); err != nil {
		return err
	}
	return putJSON(ctx, s, keyIndex, idx)
}

// manifestBlobs lists the blobs (config, layers) and child manifests a raw manifest references.
func manifestBlobs(raw []byte) (blobs []v1.Descriptor, children []v1.Descriptor, err error) {
	var m struct {
		Config    *v1.Descriptor  `json:"config"`
		Layers    []v1.Descriptor `json:"layers"`
		Manifests []v1.Descriptor `json:"manifests"`
	}
	if err := json.Unmarshal(raw, &m); err != nil {
		return nil, nil, err
	}
	if m.Config != nil {
		blobs = append(blobs, *m.Config)
	}
	for _, l := range m.Layers {
		if len(l.URLs) > 0 {
			continue // foreign layers are not distributed by registries
		}
		blobs = append(blobs, l)
	}
	return blobs, m.Manifests, nil
}
