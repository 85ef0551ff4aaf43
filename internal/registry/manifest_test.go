package registry

import (
	"strings"
	"testing"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

func h(c string) v1.Hash { return v1.Hash{Algorithm: "sha256", Hex: strings.Repeat(c, 64)} }

func TestGroupReferrersAndAttestations(t *testing.T) {
	cfgDigest := h("c")
	created := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	subject := h("1")
	manifests := map[v1.Hash]*Manifest{
		// a buildx-style index: one platform image plus an attestation manifest for it
		h("a"): {Digest: h("a"), MediaType: types.OCIImageIndex, Children: []v1.Descriptor{
			{Digest: subject, Platform: &v1.Platform{OS: "linux", Architecture: "amd64"}},
			{Digest: h("2"), Platform: &v1.Platform{OS: "unknown", Architecture: "unknown"},
				Annotations: map[string]string{dockerRefType: "attestation-manifest", dockerRefDigest: subject.String()}},
		}, Annotations: map[string]string{AnnotationCreated: "2026-02-01T00:00:00Z"}},
		subject: {Digest: subject, MediaType: types.OCIManifestSchema1, Size: 100,
			Config: &v1.Descriptor{MediaType: types.OCIConfigJSON, Digest: cfgDigest, Size: 10},
			Layers: []v1.Descriptor{{MediaType: types.OCILayer, Size: 1000}}},
		h("2"): {Digest: h("2"), MediaType: types.OCIManifestSchema1, Size: 50,
			Config: &v1.Descriptor{MediaType: types.OCIConfigJSON}, Layers: []v1.Descriptor{{MediaType: "application/vnd.in-toto+json"}}},
		// an OCI 1.1 referrer (SBOM) and the sha256-<hex> fallback index that lists it
		h("3"): {Digest: h("3"), MediaType: types.OCIManifestSchema1, ArtifactType: "application/spdx+json",
			Subject: &v1.Descriptor{Digest: h("a")}, Config: &v1.Descriptor{MediaType: "application/vnd.oci.empty.v1+json"}},
		h("4"): {Digest: h("4"), MediaType: types.OCIImageIndex, Children: []v1.Descriptor{{Digest: h("3")}}},
		// a plain image that happens to be tagged like a fallback index stays an image
		h("5"): {Digest: h("5"), MediaType: types.OCIManifestSchema1, Config: &v1.Descriptor{MediaType: types.OCIConfigJSON, Digest: cfgDigest}},
	}
	tags := map[string]v1.Hash{
		"latest":               h("a"),
		"sha256-" + h("a").Hex: h("4"),
		"sha256-" + h("9").Hex: h("5"),
		"v1":                   h("a"),
	}
	images := Group("app", tags, manifests, map[v1.Hash]time.Time{cfgDigest: created})
	got := map[v1.Hash]Image{}
	for _, i := range images {
		got[i.Digest] = i
	}
	if idx := got[h("a")]; idx.Kind != KindIndex || strings.Join(idx.Tags, ",") != "latest,v1" ||
		idx.PushedAtSource != SourceAnnotation || idx.Size != 0+1110+50 {
		t.Errorf("index: %+v", idx)
	}
	if img := got[subject]; img.Kind != KindImage || img.Platform == nil || img.Platform.Architecture != "amd64" ||
		!img.PushedAt.Equal(created) || img.PushedAtSource != SourceConfig || len(img.Parents) != 1 {
		t.Errorf("platform image: %+v", img)
	}
	if att := got[h("2")]; att.Kind != KindAttestation || att.Subject == nil || *att.Subject != subject || att.Platform != nil {
		t.Errorf("buildx attestation: %+v", att)
	}
	if sbom := got[h("3")]; sbom.Kind != KindSBOM || *sbom.Subject != h("a") || len(sbom.Parents) != 1 {
		t.Errorf("referrer sbom: %+v", sbom)
	}
	if fb := got[h("4")]; fb.Kind != KindReferrers || fb.Subject == nil || *fb.Subject != h("a") {
		t.Errorf("fallback index: %+v", fb)
	}
	if plain := got[h("5")]; plain.Kind != KindImage || plain.Subject != nil {
		t.Errorf("image tagged sha256-<hex>: %+v", plain)
	}
	for _, k := range []Kind{KindSignature, KindAttestation, KindSBOM, KindReferrers, KindArtifact} {
		if !k.Attached() {
			t.Errorf("%s must count as attached", k)
		}
	}
	if KindImage.Attached() || KindIndex.Attached() {
		t.Error("images and indexes are not attached")
	}
}

func TestSubjectOfTag(t *testing.T) {
	hex := strings.Repeat("ab", 32)
	for tag, want := range map[string]Kind{
		"sha256-" + hex + ".sig":  KindSignature,
		"sha256-" + hex + ".att":  KindAttestation,
		"sha256-" + hex + ".sbom": KindSBOM,
		"sha256-" + hex:           KindReferrers,
		"sha256-" + hex + ".txt":  "",
		"sha256-abc.sig":          "",
		"v1.0":                    "",
	} {
		d, k, ok := SubjectOfTag(tag)
		if k != want || ok != (want != "") || (ok && d.Hex != hex) {
			t.Errorf("%s: %v %s %v", tag, d, k, ok)
		}
	}
}

func TestParseManifest(t *testing.T) {
	m, err := ParseManifest(h("a"), types.DockerManifestList, []byte(`{"schemaVersion":2,"manifests":[{"digest":"sha256:`+h("b").Hex+`","size":1}]}`))
	if err != nil || !m.IsIndex() || len(m.Children) != 1 || m.MediaType != types.DockerManifestList {
		t.Fatalf("%+v %v", m, err)
	}
	if _, err := ParseManifest(h("a"), "", []byte("not json")); err == nil {
		t.Fatal("garbage must fail")
	}
}
