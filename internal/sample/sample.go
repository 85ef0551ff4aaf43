// Package sample builds small, deterministic images, indexes and cosign-style signatures, and pushes
// them. It seeds the demo registry (`regctl registry seed`) and is the fixture builder of the tests.
package sample

import (
	"archive/tar"
	"bytes"
	"context"
	"encoding/base64"
	"fmt"
	"io"
	"sort"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/static"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

// ImageSpec describes a sample image. The same spec always yields the same digest.
type ImageSpec struct {
	Seed        string    // content of the image's single file; makes the digest unique
	Created     time.Time // config "created"; zero leaves it unset
	OS, Arch    string    // default linux/amd64
	Labels      map[string]string
	Annotations map[string]string // manifest annotations (e.g. org.opencontainers.image.created)
	User        string
}

// Image builds a one-layer OCI image.
func Image(s ImageSpec) (v1.Image, error) {
	layer, err := Layer(map[string][]byte{"sample.txt": []byte(s.Seed + "\n")})
	if err != nil {
		return nil, err
	}
	img := mutate.MediaType(empty.Image, types.OCIManifestSchema1)
	img = mutate.ConfigMediaType(img, types.OCIConfigJSON)
	img, err = mutate.AppendLayers(img, layer)
	if err != nil {
		return nil, err
	}
	cf, err := img.ConfigFile()
	if err != nil {
		return nil, err
	}
	cf = cf.DeepCopy()
	cf.OS, cf.Architecture = "linux", "amd64"
	if s.OS != "" {
		cf.OS = s.OS
	}
	if s.Arch != "" {
		cf.Architecture = s.Arch
	}
	cf.Created = v1.Time{Time: s.Created}
	cf.Config.Labels = s.Labels
	cf.Config.User = s.User
	img, err = mutate.ConfigFile(img, cf)
	if err != nil {
		return nil, err
	}
	if len(s.Annotations) > 0 {
		img = mutate.Annotations(img, s.Annotations).(v1.Image)
	}
	return img, nil
}

// Index builds a multi-platform OCI index of one image per platform ("linux/amd64", "linux/arm64").
func Index(seed string, created time.Time, platforms ...string) (v1.ImageIndex, error) {
	idx := mutate.IndexMediaType(empty.Index, types.OCIImageIndex)
	for _, p := range platforms {
		plat, err := v1.ParsePlatform(p)
		if err != nil {
			return nil, err
		}
		img, err := Image(ImageSpec{Seed: seed + "/" + p, Created: created, OS: plat.OS, Arch: plat.Architecture})
		if err != nil {
			return nil, err
		}
		idx = mutate.AppendManifests(idx, mutate.IndexAddendum{Add: img, Descriptor: v1.Descriptor{Platform: plat}})
	}
	return idx, nil
}

// CosignSignature builds a manifest shaped like cosign's legacy signature (simple-signing payload
// layer, signature annotation) for subject. The signature bytes are a placeholder: it is for listing
// and lifecycle fixtures, not for verification.
func CosignSignature(repo name.Repository, subject v1.Hash) (v1.Image, error) {
	payload := fmt.Sprintf(`{"critical":{"identity":{"docker-reference":%q},"image":{"docker-manifest-digest":%q},"type":"cosign container image signature"},"optional":null}`,
		repo.String(), subject.String())
	layer := static.NewLayer([]byte(payload), "application/vnd.dev.cosign.simplesigning.v1+json")
	img, err := mutate.Append(mutate.MediaType(mutate.ConfigMediaType(empty.Image, types.OCIConfigJSON), types.OCIManifestSchema1),
		mutate.Addendum{Layer: layer, Annotations: map[string]string{
			"dev.cosignproject.cosign/signature": base64.StdEncoding.EncodeToString([]byte("sample-not-a-real-signature")),
		}})
	if err != nil {
		return nil, err
	}
	return img, nil
}

// SignatureTag is cosign's tag for subject's signature: sha256-<hex>.sig.
func SignatureTag(subject v1.Hash) string { return subject.Algorithm + "-" + subject.Hex + ".sig" }

// Push writes img or an index to ref.
func Push(ctx context.Context, ref name.Reference, item remote.Taggable, opts ...remote.Option) error {
	opts = append(opts, remote.WithContext(ctx))
	switch v := item.(type) {
	case v1.ImageIndex:
		return remote.WriteIndex(ref, v, opts...)
	case v1.Image:
		return remote.Write(ref, v, opts...)
	}
	return fmt.Errorf("cannot push %T", item)
}

// Layer builds a deterministic gzipped tar layer of files with the OCI layer media type (the
// manifests here are OCI; mixing in Docker layer types makes some tools, buildah among them, refuse
// the image). File modes are 0755 so that binaries can run.
func Layer(files map[string][]byte) (v1.Layer, error) {
	names := make([]string, 0, len(files))
	for n := range files {
		names = append(names, n)
	}
	sort.Strings(names)
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, n := range names {
		if err := tw.WriteHeader(&tar.Header{Name: n, Mode: 0o755, Size: int64(len(files[n])), Typeflag: tar.TypeReg}); err != nil {
			return nil, err
		}
		if _, err := tw.Write(files[n]); err != nil {
			return nil, err
		}
	}
	if err := tw.Close(); err != nil {
		return nil, err
	}
	raw := buf.Bytes()
	return tarball.LayerFromOpener(func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(raw)), nil },
		tarball.WithMediaType(types.OCILayer))
}
