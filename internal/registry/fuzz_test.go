package registry

import (
	"bytes"
	"errors"
	"io"
	"net/http"
	"net/url"
	"testing"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

// FuzzParseManifest: no input panics ParseManifest or Group; what parses has digests on every
// descriptor and the size of the bytes given; what does not parse is ErrBadAnswer.
func FuzzParseManifest(f *testing.F) {
	for _, seed := range []string{
		`{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"sha256:` + hex64('a') + `","size":2},"layers":[]}`,
		`{"schemaVersion":2,"mediaType":"application/vnd.oci.image.index.v1+json","manifests":[{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"sha256:` + hex64('b') + `","size":3,"platform":{"os":"linux","architecture":"amd64"}}]}`,
		`{"manifests":[{"digest":"sha256:` + hex64('c') + `","annotations":{"vnd.docker.reference.type":"attestation-manifest","vnd.docker.reference.digest":"sha256:` + hex64('d') + `"}}]}`,
		`{"config":{"digest":"sha256:` + hex64('e') + `"},"subject":{"digest":"sha256:` + hex64('f') + `"},"annotations":{"org.opencontainers.image.created":"2026-01-01T00:00:00Z"}}`,
		`null`, `{}`, `[]`, ``, `{"manifests":null}`, `{"config":null}`, `{"layers":[{}]}`, `{"manifests":[{"digest":""}]}`,
		`<html>`, `{"schemaVersion":2,`, `{"config":{"digest":"sha256:` + hex64('a') + `","size":-1}}`,
	} {
		f.Add([]byte(seed), "")
		f.Add([]byte(seed), string(types.OCIImageIndex))
	}
	d := v1.Hash{Algorithm: "sha256", Hex: hex64('0')}
	f.Fuzz(func(t *testing.T, raw []byte, contentType string) {
		m, err := ParseManifest(d, types.MediaType(contentType), raw)
		if err != nil {
			if !errors.Is(err, ErrBadAnswer) {
				t.Fatalf("error is not ErrBadAnswer: %v", err)
			}
			return
		}
		if m.Size != int64(len(raw)) || m.MediaType == "" {
			t.Fatalf("size %d of %d bytes, media type %q", m.Size, len(raw), m.MediaType)
		}
		all := append(append([]v1.Descriptor{}, m.Layers...), m.Children...)
		if m.Config != nil {
			all = append(all, *m.Config)
		}
		if m.Subject != nil {
			all = append(all, *m.Subject)
		}
		for _, desc := range all {
			if desc.Digest.Hex == "" || desc.Size < 0 {
				t.Fatalf("descriptor passed the checks: %+v", desc)
			}
		}
		// Whatever parsed can be grouped, alone and as a child of itself.
		Group("r", map[string]v1.Hash{"t": d, "sha256-" + d.Hex + ".sig": d}, map[v1.Hash]*Manifest{d: m}, nil)
	})
}

func hex64(c byte) string { return string(bytes.Repeat([]byte{c}, 64)) }

// FuzzLimitBody: whatever the body and the limit, reading through LimitBody yields the body when
// it fits and a *TooLargeError when it does not, never more than limit bytes.
func FuzzLimitBody(f *testing.F) {
	f.Add([]byte("hello"), int64(5), int64(-1))
	f.Add([]byte("hello"), int64(4), int64(5))
	f.Add([]byte(""), int64(0), int64(0))
	f.Add([]byte("x"), int64(0), int64(-1))
	f.Fuzz(func(t *testing.T, body []byte, limit, contentLength int64) {
		if limit < 0 {
			limit = -limit
		}
		if limit < 0 { // MinInt64
			limit = 0
		}
		resp := &http.Response{Body: io.NopCloser(bytes.NewReader(body)), ContentLength: contentLength,
			Request: &http.Request{Method: http.MethodGet, URL: &url.URL{Scheme: "https", Host: "h", Path: "/v2/r/manifests/t", RawQuery: "token=secret"}}}
		err := LimitBody(resp, limit, "manifest")
		var tl *TooLargeError
		if err != nil {
			if !errors.As(err, &tl) || contentLength <= limit {
				t.Fatalf("LimitBody: %v (content length %d, limit %d)", err, contentLength, limit)
			}
			return
		}
		got, err := io.ReadAll(resp.Body)
		if int64(len(got)) > limit {
			t.Fatalf("read %d bytes past the limit %d", len(got), limit)
		}
		switch {
		case int64(len(body)) <= limit:
			if err != nil || !bytes.Equal(got, body) {
				t.Fatalf("body within the limit: %q, %v", got, err)
			}
		case !errors.As(err, &tl):
			t.Fatalf("body over the limit: %v", err)
		case bytes.Contains([]byte(tl.Error()), []byte("secret")):
			t.Fatalf("error shows the query: %v", tl)
		}
	})
}
