package registry

import (
	"bytes"
	"encoding/json"
	"fmt"
	"regexp"
	"sort"
	"strings"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

// Manifest is the part of a manifest (image or index) that grouping needs.
type Manifest struct {
	Digest       v1.Hash
	MediaType    types.MediaType
	ArtifactType string
	Size         int64
	Config       *v1.Descriptor
	Layers       []v1.Descriptor
	Children     []v1.Descriptor // index entries
	Subject      *v1.Descriptor
	Annotations  map[string]string
	Missing      bool // named by a tag or an index but not returned by the registry
}

// IsIndex reports whether the manifest lists other manifests.
func (m *Manifest) IsIndex() bool { return m.MediaType.IsIndex() }

// isImageConfig reports whether the config is a runnable image's config (so its created time is the
// image's age), not a signature's or another artifact's.
func (m *Manifest) isImageConfig() bool {
	if m.Config == nil || m.Subject != nil || m.ArtifactType != "" {
		return false
	}
	if m.Config.MediaType != types.OCIConfigJSON && m.Config.MediaType != types.DockerConfigJSON {
		return false
	}
	for _, l := range m.Layers {
		if attachedKindOfMediaType(string(l.MediaType)) != "" {
			return false
		}
	}
	return true
}

// ParseManifest decodes a raw manifest. mediaType is the Content-Type the registry sent, used when the
// body does not say. A body that is not a JSON object, an image manifest without a config, and a
// descriptor without a valid digest or with a negative size are errors wrapping ErrBadAnswer.
func ParseManifest(digest v1.Hash, mediaType types.MediaType, raw []byte) (*Manifest, error) {
	var doc struct {
		MediaType    types.MediaType   `json:"mediaType"`
		ArtifactType string            `json:"artifactType"`
		Config       *v1.Descriptor    `json:"config"`
		Layers       []v1.Descriptor   `json:"layers"`
		Manifests    []v1.Descriptor   `json:"manifests"`
		Subject      *v1.Descriptor    `json:"subject"`
		Annotations  map[string]string `json:"annotations"`
	}
	trimmed := bytes.TrimSpace(raw)
	switch {
	case len(trimmed) == 0:
		return nil, fmt.Errorf("manifest is empty: %w", ErrBadAnswer)
	case trimmed[0] != '{':
		return nil, fmt.Errorf("manifest is not a JSON object (it starts with %q): %w", preview(trimmed), ErrBadAnswer)
	}
	if err := json.Unmarshal(raw, &doc); err != nil {
		return nil, fmt.Errorf("manifest is not valid JSON: %v: %w", err, ErrBadAnswer)
	}
	mt := doc.MediaType
	if mt == "" {
		mt = mediaType
	}
	if mt == "" {
		if doc.Manifests != nil {
			mt = types.OCIImageIndex
		} else {
			mt = types.OCIManifestSchema1
		}
	}
	if mt.IsImage() && doc.Config == nil {
		return nil, fmt.Errorf("image manifest (%s) has no config: %w", mt, ErrBadAnswer)
	}
	if doc.Config != nil {
		if err := checkDescriptor(*doc.Config); err != nil {
			return nil, fmt.Errorf("manifest config: %w", err)
		}
	}
	for i, l := range doc.Layers {
		if err := checkDescriptor(l); err != nil {
			return nil, fmt.Errorf("manifest layers[%d]: %w", i, err)
		}
	}
	for i, c := range doc.Manifests {
		if err := checkDescriptor(c); err != nil {
			return nil, fmt.Errorf("index manifests[%d]: %w", i, err)
		}
	}
	if doc.Subject != nil {
		if err := checkDescriptor(*doc.Subject); err != nil {
			return nil, fmt.Errorf("manifest subject: %w", err)
		}
	}
	return &Manifest{Digest: digest, MediaType: mt, ArtifactType: doc.ArtifactType, Size: int64(len(raw)),
		Config: doc.Config, Layers: doc.Layers, Children: doc.Manifests, Subject: doc.Subject,
		Annotations: doc.Annotations}, nil
}

// checkDescriptor rejects a descriptor without a digest (a JSON field that was missing or null
// leaves it zero; a malformed one fails to decode) or with a negative size.
func checkDescriptor(d v1.Descriptor) error {
	if d.Digest.Algorithm == "" || d.Digest.Hex == "" {
		return fmt.Errorf("descriptor has no digest: %w", ErrBadAnswer)
	}
	if d.Size < 0 {
		return fmt.Errorf("descriptor %s has a negative size %d: %w", d.Digest, d.Size, ErrBadAnswer)
	}
	return nil
}

// preview is the start of a body for an error message.
func preview(b []byte) string {
	const n = 16
	if len(b) > n {
		return string(b[:n]) + "…"
	}
	return string(b)
}

var (
	cosignTag    = regexp.MustCompile(`^sha256-([a-f0-9]{64})\.(sig|att|sbom)$`)
	referrersTag = regexp.MustCompile(`^sha256-([a-f0-9]{64})$`)
)

// SubjectOfTag maps cosign's "sha256-<hex>.sig|.att|.sbom" and the referrers fallback "sha256-<hex>"
// tags to the digest they belong to.
func SubjectOfTag(tag string) (subject v1.Hash, kind Kind, ok bool) {
	if m := cosignTag.FindStringSubmatch(tag); m != nil {
		kind = map[string]Kind{"sig": KindSignature, "att": KindAttestation, "sbom": KindSBOM}[m[2]]
		return v1.Hash{Algorithm: "sha256", Hex: m[1]}, kind, true
	}
	if m := referrersTag.FindStringSubmatch(tag); m != nil {
		return v1.Hash{Algorithm: "sha256", Hex: m[1]}, KindReferrers, true
	}
	return v1.Hash{}, "", false
}

// attachedKindOfMediaType classifies a referrer by its artifact type, config or layer media type.
func attachedKindOfMediaType(mt string) Kind {
	switch {
	case strings.Contains(mt, "cosign.simplesigning"), strings.Contains(mt, "cosign.artifact.sig"),
		strings.Contains(mt, "notary") && strings.Contains(mt, "signature"):
		return KindSignature
	case strings.Contains(mt, "in-toto"), strings.Contains(mt, "dsse"), strings.Contains(mt, "sigstore.bundle"):
		return KindAttestation
	case strings.Contains(mt, "spdx"), strings.Contains(mt, "cyclonedx"), strings.Contains(mt, "syft"):
		return KindSBOM
	}
	return ""
}

func referrerKind(m *Manifest) Kind {
	candidates := []string{m.ArtifactType}
	if m.Config != nil {
		candidates = append(candidates, string(m.Config.MediaType))
	}
	for _, l := range m.Layers {
		candidates = append(candidates, string(l.MediaType))
	}
	for _, c := range candidates {
		if k := attachedKindOfMediaType(c); k != "" {
			return k
		}
	}
	return KindArtifact
}

const (
	dockerRefType   = "vnd.docker.reference.type"
	dockerRefDigest = "vnd.docker.reference.digest"
)

// Group turns tags and fetched manifests into one Image per manifest digest: tags collected, kinds
// decided, index children and referrer subjects linked, sizes and push times derived. configCreated
// maps an image config digest to its created time. It is pure, so it is tested without a registry.
func Group(repo string, tagDigests map[string]v1.Hash, manifests map[v1.Hash]*Manifest, configCreated map[v1.Hash]time.Time) []Image {
	byDigest := make(map[v1.Hash]*Image, len(manifests))
	order := make([]v1.Hash, 0, len(manifests))
	for d, m := range manifests {
		byDigest[d] = &Image{Repository: repo, Digest: d, MediaType: m.MediaType, ArtifactType: m.ArtifactType,
			Kind: KindImage, Missing: m.Missing}
		order = append(order, d)
	}
	sort.Slice(order, func(i, j int) bool { return order[i].String() < order[j].String() })
	for tag, d := range tagDigests {
		if img, ok := byDigest[d]; ok {
			img.Tags = append(img.Tags, tag)
		}
	}

	// Links: index children (with their platforms) and buildx attestation manifests.
	for _, d := range order {
		m, img := manifests[d], byDigest[d]
		if !m.IsIndex() {
			continue
		}
		img.Kind = KindIndex
		for _, c := range m.Children {
			img.Children = append(img.Children, c.Digest)
			child, ok := byDigest[c.Digest]
			if !ok {
				continue
			}
			child.Parents = append(child.Parents, d)
			if c.Platform != nil && child.Platform == nil && c.Annotations[dockerRefType] != "attestation-manifest" {
				p := *c.Platform
				child.Platform = &p
			}
			if c.Annotations[dockerRefType] == "attestation-manifest" {
				if h, err := v1.NewHash(c.Annotations[dockerRefDigest]); err == nil {
					child.Kind, child.Subject = KindAttestation, &h
				}
			}
		}
	}

	// Referrers: a subject in the manifest wins; otherwise cosign's tag naming says it.
	for _, d := range order {
		m, img := manifests[d], byDigest[d]
		sort.Strings(img.Tags)
		if m.Subject != nil {
			s := m.Subject.Digest
			img.Subject = &s
			if img.Kind != KindIndex {
				img.Kind = referrerKind(m)
			}
		}
		for _, tag := range img.Tags {
			subject, kind, ok := SubjectOfTag(tag)
			if !ok {
				continue
			}
			if kind == KindReferrers && img.Kind != KindIndex {
				continue // a plain manifest tagged sha256-<hex> is not a fallback index
			}
			if img.Subject == nil {
				s := subject
				img.Subject = &s
			}
			img.Kind = kind
		}
	}

	// Sizes and times: images first, then indexes, which take them from their children.
	for _, d := range order {
		m, img := manifests[d], byDigest[d]
		if m.IsIndex() || m.Missing {
			continue
		}
		img.Size = m.Size
		if m.Config != nil {
			img.Size += m.Config.Size
			if t, ok := configCreated[m.Config.Digest]; ok && !t.IsZero() {
				img.ConfigCreated = t.UTC()
			}
		}
		for _, l := range m.Layers {
			img.Size += l.Size
		}
		setAnnotationTime(img, m)
		switch {
		case !img.ConfigCreated.IsZero():
			img.PushedAt, img.PushedAtSource = img.ConfigCreated, SourceConfig
		case !img.AnnotationCreated.IsZero():
			img.PushedAt, img.PushedAtSource = img.AnnotationCreated, SourceAnnotation
		}
	}
	for _, d := range order {
		m, img := manifests[d], byDigest[d]
		if !m.IsIndex() {
			continue
		}
		img.Size = m.Size
		var newest time.Time
		for _, c := range img.Children {
			if child, ok := byDigest[c]; ok {
				img.Size += child.Size
				if child.Kind == KindImage && child.PushedAt.After(newest) {
					newest = child.PushedAt
				}
			}
		}
		setAnnotationTime(img, m)
		switch {
		case !img.AnnotationCreated.IsZero():
			img.PushedAt, img.PushedAtSource = img.AnnotationCreated, SourceAnnotation
		case !newest.IsZero():
			img.PushedAt, img.PushedAtSource = newest, SourceNewestChild
		}
	}

	out := make([]Image, 0, len(order))
	for _, d := range order {
		out = append(out, *byDigest[d])
	}
	// Newest first, digest as the tie-breaker, so output is stable.
	sort.SliceStable(out, func(i, j int) bool {
		if !out[i].PushedAt.Equal(out[j].PushedAt) {
			return out[i].PushedAt.After(out[j].PushedAt)
		}
		return out[i].Digest.String() < out[j].Digest.String()
	})
	return out
}

func setAnnotationTime(img *Image, m *Manifest) {
	if v := m.Annotations[AnnotationCreated]; v != "" {
		if t, err := time.Parse(time.RFC3339, v); err == nil {
			img.AnnotationCreated = t.UTC()
		}
	}
}

// PlatformManifests lists an index's runnable platform images, leaving out buildx attestation
// manifests (platform unknown/unknown, vnd.docker.reference.type) and nested non-image entries.
func PlatformManifests(im *v1.IndexManifest) []v1.Descriptor {
	var out []v1.Descriptor
	for _, m := range im.Manifests {
		if m.Platform == nil || m.Platform.OS == "unknown" || m.Annotations[dockerRefType] != "" || !m.MediaType.IsImage() {
			continue
		}
		out = append(out, m)
	}
	return out
}
