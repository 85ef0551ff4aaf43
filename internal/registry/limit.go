package registry

import (
	"fmt"
	"io"
	"net/http"
	"strings"
)

// Size limits on what regctl reads of a registry's answer. A registry that sends more is broken or
// hostile; the read fails with a *TooLargeError (exit 1) instead of filling memory.
const (
	// MaxManifestSize bounds a manifest, an index and a referrers answer: twice the 4 MiB the OCI
	// distribution spec asks registries to accept.
	MaxManifestSize = 8 << 20
	// MaxListSize bounds one page of a tag list or the catalog.
	MaxListSize = 16 << 20
	// MaxOtherSize bounds every other answer regctl decodes: the /v2/ ping, token answers, error
	// bodies, AWS API answers.
	MaxOtherSize = 16 << 20
)

// TooLargeError is a response body over its limit.
type TooLargeError struct {
	Request string // "GET https://host/v2/..."
	What    string // "manifest", "tag list", ...
	Limit   int64
}

func (e *TooLargeError) Error() string {
	return fmt.Sprintf("%s: the answer is larger than the %s limit for a %s", e.Request, byteSize(e.Limit), e.What)
}

func byteSize(n int64) string {
	if n >= 1<<20 && n%(1<<20) == 0 {
		return fmt.Sprintf("%d MiB", n>>20)
	}
	return fmt.Sprintf("%d bytes", n)
}

// LimitBody makes reading more than limit bytes of resp's body fail with a *TooLargeError; a
// Content-Length over the limit fails at once (the body is closed).
func LimitBody(resp *http.Response, limit int64, what string) error {
	req := "response"
	if resp.Request != nil && resp.Request.URL != nil {
		u := *resp.Request.URL
		u.RawQuery, u.User = "", nil
		req = resp.Request.Method + " " + u.String()
	}
	tooLarge := &TooLargeError{Request: req, What: what, Limit: limit}
	if resp.ContentLength > limit {
		resp.Body.Close()
		return tooLarge
	}
	resp.Body = &limitedBody{rc: resp.Body, left: limit, err: tooLarge}
	return nil
}

type limitedBody struct {
	rc   io.ReadCloser
	left int64
	err  *TooLargeError
}

// Read never returns data with the error: some decoders drop an error that comes with bytes.
func (b *limitedBody) Read(p []byte) (int, error) {
	if b.left < 0 {
		return 0, b.err
	}
	if int64(len(p)) > b.left+1 {
		p = p[:b.left+1]
	}
	n, err := b.rc.Read(p)
	b.left -= int64(n)
	if b.left < 0 {
		// One byte past the limit was read: drop it, and report on the next Read.
		if n > 1 {
			return n - 1, nil
		}
		return 0, b.err
	}
	return n, err
}

func (b *limitedBody) Close() error { return b.rc.Close() }

// LimitTransport applies the size limits to a registry's answers by what the request asked for.
// Blob downloads are not limited, layers being as large as they are: neither 2xx answers under
// /blobs/ nor the answers to redirected requests (registries send blobs from a storage host).
type LimitTransport struct {
	Base http.RoundTripper
}

// RoundTrip implements http.RoundTripper.
func (t *LimitTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	resp, err := t.Base.RoundTrip(req)
	if err != nil {
		return resp, err
	}
	limit, what := answerLimit(req.URL.Path, resp.StatusCode)
	if limit == 0 || req.Response != nil {
		return resp, nil
	}
	if err := LimitBody(resp, limit, what); err != nil {
		return nil, err
	}
	return resp, nil
}

// answerLimit is the limit for an answer to path with status (0: none).
func answerLimit(path string, status int) (int64, string) {
	ok := status >= 200 && status < 300
	switch {
	case strings.Contains(path, "/manifests/"):
		return MaxManifestSize, "manifest"
	case strings.Contains(path, "/referrers/"):
		return MaxManifestSize, "referrers index"
	case strings.HasSuffix(path, "/tags/list"):
		return MaxListSize, "tag list page"
	case strings.HasSuffix(path, "/_catalog"):
		return MaxListSize, "catalog page"
	case strings.Contains(path, "/blobs/") && ok:
		return 0, ""
	}
	return MaxOtherSize, "registry answer"
}
