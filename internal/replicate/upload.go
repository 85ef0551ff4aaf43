package replicate

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"net/url"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/remote/transport"

	"github.com/regctl-dev/regctl/internal/registry"
)

// The distribution protocol spoken directly rather than through go-containerregistry's writer,
// because on a registry-to-registry copy the request count is the cost: a blob goes up in two
// requests (POST, then one PUT with the whole stream) instead of four (HEAD, POST, PATCH, PUT), a
// mount in one, a manifest in one PUT instead of a HEAD and a PUT; a repository this run created
// is not asked whether it has a blob. Manifests with a subject still go through
// go-containerregistry, which keeps the referrers fallback tag of a destination without the
// referrers API up to date.

// uploadBlob puts b into dst: mounted from mountFrom (a destination repository holding it) when
// given, else streamed from the source. sent reports that bytes went over the wire, mounted that
// the registry mounted it.
func (r *run) uploadBlob(ctx context.Context, srcRef, dst name.Repository, b v1.Descriptor, mountFrom string, checkExisting bool) (sent, mounted bool, err error) {
	scopes := []string{dst.Scope(transport.PushScope)}
	if mountFrom != "" {
		scopes = append(scopes, dst.Registry.Repo(mountFrom).Scope(transport.PullScope))
	}
	client, err := r.dstData.DataClient(ctx, scopes...)
	if err != nil {
		return false, false, err
	}
	base := registry.BlobsURL(dst)
	if checkExisting && mountFrom == "" {
		resp, err := do(ctx, client, http.MethodHead, base+b.Digest.String(), nil, 0, "")
		if err != nil {
			return false, false, err
		}
		resp.Body.Close()
		if resp.StatusCode == http.StatusOK {
			return false, false, nil
		}
		if resp.StatusCode != http.StatusNotFound {
			return false, false, transport.CheckError(resp, http.StatusOK, http.StatusNotFound)
		}
	}
	start := base + "uploads/"
	if mountFrom != "" {
		start += "?" + url.Values{"mount": {b.Digest.String()}, "from": {mountFrom}}.Encode()
	}
	resp, err := do(ctx, client, http.MethodPost, start, nil, 0, "")
	if err != nil {
		return false, false, err
	}
	resp.Body.Close()
	switch {
	case resp.StatusCode == http.StatusCreated && mountFrom != "":
		return false, true, nil
	case resp.StatusCode != http.StatusAccepted:
		return false, false, transport.CheckError(resp, http.StatusAccepted)
	}
	loc, err := resp.Request.URL.Parse(resp.Header.Get("Location"))
	if err != nil || resp.Header.Get("Location") == "" {
		return false, false, fmt.Errorf("POST %s: the registry answered 202 without a usable Location", start)
	}
	q := loc.Query()
	q.Set("digest", b.Digest.String())
	loc.RawQuery = q.Encode()

	layer, err := remote.Layer(srcRef.Digest(b.Digest.String()), remote.Reuse(r.srcPull), remote.WithContext(ctx))
	if err != nil {
		return false, false, err
	}
	rc, err := layer.Compressed() // digest-checked as it is read
	if err != nil {
		return false, false, fmt.Errorf("GET blob %s@%s: %w", srcRef, b.Digest, err)
	}
	defer rc.Close()
	body := &countingReader{rc: rc, n: &r.stats.bytesSent}
	resp, err = do(ctx, client, http.MethodPut, loc.String(), body, b.Size, "application/octet-stream")
	if err != nil {
		return true, false, err
	}
	resp.Body.Close()
	return true, false, transport.CheckError(resp, http.StatusCreated)
}

// putManifestDirect PUTs a manifest without a subject in one request.
func (r *run) putManifestDirect(ctx context.Context, ref name.Reference, m *fetched) error {
	client, err := r.dstData.DataClient(ctx, ref.Context().Scope(transport.PushScope))
	if err != nil {
		return err
	}
	u := ref.Context().Registry.Scheme() + "://" + ref.Context().RegistryStr() + "/v2/" + ref.Context().RepositoryStr() + "/manifests/" + ref.Identifier()
	resp, err := do(ctx, client, http.MethodPut, u, bytes.NewReader(m.raw), int64(len(m.raw)), string(m.parsed.MediaType))
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	return transport.CheckError(resp, http.StatusOK, http.StatusCreated, http.StatusAccepted)
}

func do(ctx context.Context, c *http.Client, method, u string, body io.Reader, size int64, contentType string) (*http.Response, error) {
	req, err := http.NewRequestWithContext(ctx, method, u, body)
	if err != nil {
		return nil, err
	}
	if body != nil {
		req.ContentLength = size
		req.Header.Set("Content-Type", contentType)
	}
	return c.Do(req)
}
