package harbor

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"unicode"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"

	"github.com/regctl-dev/regctl/internal/exitcode"
	"github.com/regctl-dev/regctl/internal/registry"
)

// apiBase is where Harbor serves its REST API v2.0.
const apiBase = "/api/v2.0"

// pageSize is Harbor's maximum page_size.
const pageSize = 100

// maxPages bounds a paginated listing: a million entries at 100 a page.
const maxPages = 10000

// client calls Harbor's REST API: basic auth with the registry's credentials, retries with backoff
// (registry.RetryTransport), answers bounded at registry.MaxOtherSize and checked before use.
type client struct {
	base      *url.URL // scheme://host[/path], without /api/v2.0
	http      *http.Client
	keychain  authn.Keychain
	host      string
	userAgent string

	authOnce sync.Once
	auth     *authn.AuthConfig
	authErr  error
}

// APIError is an answer with an error status: the operation, the status, and Harbor's error code
// and message when the body was Harbor's error JSON.
type APIError struct {
	Op      string // Harbor's operationId, e.g. listProjects
	Method  string
	Path    string
	Status  int
	Code    string
	Message string
}

func (e *APIError) Error() string {
	s := fmt.Sprintf("harbor %s (%s %s): HTTP %d", e.Op, e.Method, e.Path, e.Status)
	if e.Code != "" {
		s += " " + e.Code
	}
	if e.Message != "" {
		s += ": " + e.Message
	}
	return s
}

// credentials resolves the registry's credentials once (the keychain may read docker's config).
func (c *client) credentials(ctx context.Context) (*authn.AuthConfig, error) {
	c.authOnce.Do(func() {
		reg, err := name.NewRegistry(c.host, name.Insecure)
		if err != nil {
			c.authErr = err
			return
		}
		a, err := authn.Resolve(ctx, c.keychain, reg)
		if err != nil {
			c.authErr = err
			return
		}
		c.auth, c.authErr = authn.Authorization(ctx, a)
	})
	return c.auth, c.authErr
}

// request is one API call.
type request struct {
	op     string
	method string
	path   string // under /api/v2.0, already escaped (repository names twice)
	query  url.Values
	body   any
	// byName sends X-Is-Resource-Name: true (project_name_or_id read as a name).
	byName bool
	header http.Header // extra request headers
	// ok are the statuses that mean success (default 200).
	ok []int
}

// answer is a successful call's answer, its body read whole (bounded).
type answer struct {
	status int
	header http.Header
	body   []byte
}

func (c *client) url(path string, q url.Values) (*url.URL, error) {
	u, err := url.Parse(strings.TrimSuffix(c.base.String(), "/") + apiBase + path)
	if err != nil {
		return nil, err
	}
	if len(q) > 0 {
		u.RawQuery = q.Encode()
	}
	return u, nil
}

// do sends the request and returns the answer, or an error naming the operation: an *APIError
// (exit 4 for 401/403, 5 for 404, 2 for 400/422, 1 otherwise) for an error status.
func (c *client) do(ctx context.Context, r request) (*answer, error) {
	u, err := c.url(r.path, r.query)
	if err != nil {
		return nil, fmt.Errorf("harbor %s: %w", r.op, err)
	}
	return c.doURL(ctx, r, u)
}

func (c *client) doURL(ctx context.Context, r request, u *url.URL) (*answer, error) {
	var body io.Reader
	var raw []byte
	if r.body != nil {
		var err error
		if raw, err = json.Marshal(r.body); err != nil {
			return nil, fmt.Errorf("harbor %s: %w", r.op, err)
		}
		body = bytes.NewReader(raw)
	}
	req, err := http.NewRequestWithContext(ctx, r.method, u.String(), body)
	if err != nil {
		return nil, fmt.Errorf("harbor %s: %w", r.op, err)
	}
	if raw != nil {
		req.Header.Set("Content-Type", "application/json")
		req.GetBody = func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(raw)), nil }
	}
	req.Header.Set("Accept", "application/json")
	req.Header.Set("User-Agent", c.userAgent)
	if r.byName {
		req.Header.Set("X-Is-Resource-Name", "true")
	}
	for k, vs := range r.header {
		req.Header[k] = vs
	}
	auth, err := c.credentials(ctx)
	if err != nil {
		return nil, exitcode.With(exitcode.Auth, fmt.Errorf("harbor %s: resolving credentials for %s: %w", r.op, c.host, err))
	}
	setAuth(req, auth)
	resp, err := c.http.Do(req)
	if err != nil {
		return nil, fmt.Errorf("harbor %s (%s %s): %w", r.op, r.method, u.EscapedPath(), err)
	}
	defer resp.Body.Close()
	if err := registry.LimitBody(resp, registry.MaxOtherSize, "Harbor API answer"); err != nil {
		return nil, fmt.Errorf("harbor %s: %w", r.op, err)
	}
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		var tl *registry.TooLargeError
		if errors.As(err, &tl) {
			return nil, fmt.Errorf("harbor %s: %w", r.op, tl)
		}
		return nil, fmt.Errorf("harbor %s (%s %s): reading the answer: %w", r.op, r.method, u.EscapedPath(), err)
	}
	ok := r.ok
	if len(ok) == 0 {
		ok = []int{http.StatusOK}
	}
	for _, s := range ok {
		if resp.StatusCode == s {
			if mt, _, err := mime.ParseMediaType(resp.Header.Get("Content-Type")); err == nil && (mt == "text/html" || mt == "application/xhtml+xml") {
				// A proxy's or a login page sent with a success status: Harbor did not answer.
				return nil, badAnswer(r.op, "%s %s: the answer is an HTML page, not Harbor's (a proxy's or a login page?)", r.method, u.EscapedPath())
			}
			return &answer{status: resp.StatusCode, header: resp.Header, body: b}, nil
		}
	}
	if resp.StatusCode >= 200 && resp.StatusCode < 300 {
		return nil, fmt.Errorf("harbor %s (%s %s): HTTP %d where Harbor answers %v: %w", r.op, r.method, u.EscapedPath(), resp.StatusCode, ok, registry.ErrBadAnswer)
	}
	return nil, classify(apiError(r, u, resp, b))
}

func setAuth(req *http.Request, a *authn.AuthConfig) {
	switch {
	case a == nil:
	case a.Username != "" || a.Password != "":
		req.SetBasicAuth(a.Username, a.Password)
	case a.Auth != "":
		if raw, err := base64.StdEncoding.DecodeString(a.Auth); err == nil {
			if u, p, ok := strings.Cut(string(raw), ":"); ok {
				req.SetBasicAuth(u, p)
			}
		}
	}
}

// apiError reads Harbor's error JSON ({"errors":[{"code","message"}]}), or says the body is not it.
func apiError(r request, u *url.URL, resp *http.Response, body []byte) *APIError {
	e := &APIError{Op: r.op, Method: r.method, Path: u.EscapedPath(), Status: resp.StatusCode}
	var doc struct {
		Errors []struct {
			Code    string `json:"code"`
			Message string `json:"message"`
		} `json:"errors"`
	}
	if len(bytes.TrimSpace(body)) == 0 {
		return e
	}
	if err := json.Unmarshal(body, &doc); err != nil || len(doc.Errors) == 0 {
		e.Message = "the answer is not Harbor's error JSON" + contentTypeNote(resp.Header.Get("Content-Type"))
		return e
	}
	e.Code, e.Message = clean(doc.Errors[0].Code, 64), clean(doc.Errors[0].Message, 300)
	return e
}

func contentTypeNote(ct string) string {
	if mt, _, err := mime.ParseMediaType(ct); err == nil && mt != "application/json" {
		return " (" + mt + ")"
	}
	return ""
}

// clean bounds a server's text for an error message and drops control characters.
func clean(s string, n int) string {
	s = strings.Map(func(r rune) rune {
		if unicode.IsControl(r) {
			return ' '
		}
		return r
	}, s)
	if len(s) > n {
		s = s[:n] + "…"
	}
	return s
}

// classify gives an *APIError its exit code: 401 and 403 are auth (4), 404 not found (5), 400 and
// 422 input Harbor refused (2), anything else 1.
func classify(e *APIError) error {
	switch e.Status {
	case http.StatusUnauthorized, http.StatusForbidden:
		return exitcode.With(exitcode.Auth, e)
	case http.StatusNotFound:
		return exitcode.With(exitcode.NotFound, e)
	case http.StatusBadRequest, http.StatusUnprocessableEntity:
		return exitcode.With(exitcode.Usage, e)
	}
	return exitcode.With(exitcode.Error, e)
}

// statusOf is the HTTP status of an *APIError in err (0 if none).
func statusOf(err error) int {
	var e *APIError
	if errors.As(err, &e) {
		return e.Status
	}
	return 0
}

// badAnswer is a malformed answer to op (exit 1).
func badAnswer(op, format string, args ...any) error {
	return fmt.Errorf("harbor %s: "+format+": %w", append(append([]any{op}, args...), registry.ErrBadAnswer)...)
}

// decode checks that an answer is JSON of the expected shape (an object, or an array when v is a
// slice) before decoding: an empty body, null, an HTML page and the wrong kind of value are
// malformed answers naming the operation.
func decode(op string, a *answer, v any) error {
	body := bytes.TrimSpace(a.body)
	ct := a.header.Get("Content-Type")
	if mt, _, err := mime.ParseMediaType(ct); err == nil && (mt == "text/html" || mt == "application/xhtml+xml") {
		return badAnswer(op, "the answer is an HTML page, not Harbor's JSON (a proxy's or a login page?)")
	}
	if len(body) == 0 {
		return badAnswer(op, "the answer is empty")
	}
	if bytes.Equal(body, []byte("null")) {
		return badAnswer(op, "the answer is null")
	}
	wantArray := false
	switch v.(type) {
	case *[]json.RawMessage:
		wantArray = true
	}
	switch {
	case wantArray && body[0] != '[':
		return badAnswer(op, "the answer is not a JSON array (it starts with %q)", preview(body))
	case !wantArray && body[0] != '{':
		return badAnswer(op, "the answer is not a JSON object (it starts with %q)", preview(body))
	}
	if err := json.Unmarshal(body, v); err != nil {
		return badAnswer(op, "the answer is not valid JSON: %v", err)
	}
	return nil
}

func preview(b []byte) string {
	if len(b) > 16 {
		return string(b[:16]) + "…"
	}
	return string(b)
}

// list GETs every page of a listing (page_size 100), following Harbor's Link header (rel="next"),
// and calls each with every element. It stops with an error on a page that repeats, a next page
// on another host, an empty page that promises more, or more than maxPages pages. When the Link
// header is missing (a proxy dropped it) but X-Total-Count says more, it asks for the next page.
func (c *client) list(ctx context.Context, r request, each func(i int, raw json.RawMessage) error) error {
	q := url.Values{}
	for k, vs := range r.query {
		q[k] = vs
	}
	q.Set("page", "1")
	q.Set("page_size", strconv.Itoa(pageSize))
	u, err := c.url(r.path, q)
	if err != nil {
		return fmt.Errorf("harbor %s: %w", r.op, err)
	}
	seen := map[string]bool{}
	n := 0
	for page := 1; ; page++ {
		if page > maxPages {
			return badAnswer(r.op, "more than %d pages", maxPages)
		}
		key := u.String()
		if seen[key] {
			return badAnswer(r.op, "the Link header sends page %s again (a pagination loop)", redact(u))
		}
		seen[key] = true
		a, err := c.doURL(ctx, r, u)
		if err != nil {
			return err
		}
		var items []json.RawMessage
		if err := decode(r.op, a, &items); err != nil {
			return err
		}
		for _, it := range items {
			if err := each(n, it); err != nil {
				return err
			}
			n++
		}
		next, err := c.nextPage(r.op, u, a.header, len(items), n)
		if err != nil || next == nil {
			return err
		}
		if len(items) == 0 {
			return badAnswer(r.op, "page %d is empty but the answer names a next page", page)
		}
		u = next
	}
}

// nextPage is the URL of the page after cur: Link rel="next" (resolved against the API, and only
// on the same scheme and host, under /api/v2.0: credentials go nowhere else), else by
// X-Total-Count.
func (c *client) nextPage(op string, cur *url.URL, h http.Header, got, total int) (*url.URL, error) {
	if link := h.Get("Link"); link != "" {
		for _, part := range strings.Split(link, ",") {
			target, params, ok := strings.Cut(strings.TrimSpace(part), ";")
			target = strings.TrimSpace(target)
			if !ok || !strings.HasPrefix(target, "<") || !strings.HasSuffix(target, ">") {
				continue
			}
			if !strings.Contains(strings.ReplaceAll(params, " ", ""), `rel="next"`) && !strings.Contains(strings.ReplaceAll(params, " ", ""), "rel=next") {
				continue
			}
			ref, err := url.Parse(strings.Trim(target, "<>"))
			if err != nil {
				return nil, badAnswer(op, "the Link header's next page is not a URL: %v", err)
			}
			next := cur.ResolveReference(ref)
			if next.Scheme != c.base.Scheme || next.Host != c.base.Host || !strings.HasPrefix(next.Path, strings.TrimSuffix(c.base.Path, "/")+apiBase+"/") {
				return nil, badAnswer(op, "the Link header's next page %s is not on this Harbor's API (%s://%s%s)", redact(next), c.base.Scheme, c.base.Host, apiBase)
			}
			return next, nil
		}
		return nil, nil
	}
	if tc := h.Get("X-Total-Count"); tc != "" {
		t, err := strconv.Atoi(tc)
		if err != nil || t < 0 {
			return nil, badAnswer(op, "X-Total-Count %q is not a count", clean(tc, 20))
		}
		if total < t && got == pageSize {
			q := cur.Query()
			p, _ := strconv.Atoi(q.Get("page"))
			q.Set("page", strconv.Itoa(p+1))
			next := *cur
			next.RawQuery = q.Encode()
			return &next, nil
		}
	}
	return nil, nil
}

func redact(u *url.URL) string {
	c := *u
	c.User = nil
	return c.String()
}

// projectPath is /projects/{name} (project names are [a-z0-9._-], nothing to escape; escaped anyway).
func projectPath(project string) string { return "/projects/" + url.PathEscape(project) }

// repoPath is /projects/{p}/repositories/{r}: Harbor wants the repository name (without the
// project) URL-encoded twice, so a/b is a%252Fb.
func repoPath(project, repo string) string {
	return projectPath(project) + "/repositories/" + url.PathEscape(url.PathEscape(repo))
}
