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
	"sort"
	"strings"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/types"
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
}

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

// readBlob reads a small blob (a manifest, a record) whole, verifying it.
func readBlob(ctx context.Context, s Store, d v1.Hash) ([]byte, error) {
	rc, err := s.Get(ctx, blobKey(d))
	if err != nil {
		return nil, err
	}
	defer rc.Close()
	return io.ReadAll(io.LimitReader(newVerifier(rc, d, -1), 64<<20))
}

func putJSON(ctx context.Context, s Store, key string, v any) error {
	raw, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return err
	}
	return s.Put(ctx, key, bytes.NewReader(raw), int64(len(raw)))
}

// Snapshots reads every snapshot record, oldest first.
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
		var snap Snapshot
		err = json.NewDecoder(rc).Decode(&snap)
		rc.Close()
		if err != nil {
			return nil, fmt.Errorf("%s: %w", k, err)
		}
		out = append(out, &snap)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	return out, nil
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
