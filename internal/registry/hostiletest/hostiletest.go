// Package hostiletest serves hostile answers for tests of the code that reads a server's answers:
// empty and null bodies, JSON with missing fields, wrong content types, HTML error pages sent with
// 200, bodies over a size limit, truncated JSON and connections reset in the middle of a body. The
// backends' tests (internal/registry, internal/ecr) run each operation against each answer and
// check that it fails with the documented exit code, or falls back as documented, without panicking.
package hostiletest

import (
	"fmt"
	"io"
	"net/http"
	"strconv"
)

// Answer is one way of answering a request.
type Answer struct {
	Name        string
	Status      int // 0: 200
	ContentType string
	Header      http.Header
	Body        []byte
	// Pad streams this many bytes of filler after Body, then Suffix (for answers over a size
	// limit); Content-Length is not sent, so only reading finds out.
	Pad    int64
	Suffix []byte
	// ResetAfter > 0 sends the headers (Content-Length claiming all of Body) and this many bytes of
	// Body, then closes the connection.
	ResetAfter int
}

// ServeHTTP answers r as a says.
func (a Answer) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	status := a.Status
	if status == 0 {
		status = http.StatusOK
	}
	h := w.Header()
	for k, vs := range a.Header {
		h[k] = append([]string(nil), vs...)
	}
	if a.ContentType != "" {
		h.Set("Content-Type", a.ContentType)
	} else if h.Get("Content-Type") == "" {
		h["Content-Type"] = nil // no sniffing: the answer has no Content-Type at all
	}
	if a.ResetAfter > 0 {
		n := a.ResetAfter
		if r.Method == http.MethodHead {
			n = 0
		}
		reset(w, status, h, a.Body, n)
		return
	}
	if a.Pad > 0 {
		w.WriteHeader(status)
		if r.Method == http.MethodHead {
			return
		}
		w.Write(a.Body)
		io.Copy(w, io.LimitReader(filler{}, a.Pad))
		w.Write(a.Suffix)
		return
	}
	h.Set("Content-Length", strconv.Itoa(len(a.Body)))
	w.WriteHeader(status)
	if r.Method != http.MethodHead {
		w.Write(a.Body)
	}
}

// reset writes the status line, headers and n bytes of body on the raw connection and closes it.
func reset(w http.ResponseWriter, status int, h http.Header, body []byte, n int) {
	hj, ok := w.(http.Hijacker)
	if !ok {
		http.Error(w, "hostiletest: this server cannot hijack connections (HTTP/2?)", http.StatusInternalServerError)
		return
	}
	conn, buf, err := hj.Hijack()
	if err != nil {
		return
	}
	defer conn.Close()
	h.Set("Content-Length", strconv.Itoa(len(body)))
	fmt.Fprintf(buf, "HTTP/1.1 %d %s\r\n", status, http.StatusText(status))
	h.Write(buf)
	buf.WriteString("\r\n")
	buf.Write(body[:min(n, len(body))])
	buf.Flush()
}

type filler struct{}

func (filler) Read(p []byte) (int, error) {
	for i := range p {
		p[i] = 'a'
	}
	return len(p), nil
}

// Set is a named list of answers.
type Set []Answer

// Of builds the hostile answers to an endpoint whose well-formed answer is valid (a JSON document)
// with content type ct. oversize is a size over the reader's limit.
//
//	empty-object   200 {}
//	null           200 null
//	empty-body     200 with no body
//	json-array     200 []
//	html-200       200 text/html error page (what a proxy or a captive portal sends)
//	html-404       404 text/html page
//	wrong-type     the valid body as text/plain
//	no-type        the valid body without Content-Type
//	truncated      the first half of the valid body (Content-Length matches what is sent)
//	oversized      one JSON object with a string member longer than oversize
//	reset          headers and half the valid body, then the connection closes
func Of(ct, valid string, oversize int64) Set {
	half := len(valid) / 2
	return Set{
		{Name: "empty-object", ContentType: ct, Body: []byte(`{}`)},
		{Name: "null", ContentType: ct, Body: []byte(`null`)},
		{Name: "empty-body", ContentType: ct},
		{Name: "json-array", ContentType: ct, Body: []byte(`[]`)},
		{Name: "html-200", ContentType: "text/html; charset=utf-8", Body: []byte(HTMLPage)},
		{Name: "html-404", Status: http.StatusNotFound, ContentType: "text/html; charset=utf-8", Body: []byte(HTMLPage)},
		{Name: "wrong-type", ContentType: "text/plain; charset=utf-8", Body: []byte(valid)},
		{Name: "no-type", Body: []byte(valid)},
		{Name: "truncated", ContentType: ct, Body: []byte(valid[:half])},
		{Name: "oversized", ContentType: ct, Body: []byte(`{"padding":"`), Pad: oversize, Suffix: []byte(`"}`)},
		{Name: "reset", ContentType: ct, Body: []byte(valid), ResetAfter: max(half, 1)},
	}
}

// HTMLPage is an error page as proxies send them.
const HTMLPage = "<!DOCTYPE html>\n<html><head><title>502 Bad Gateway</title></head><body><h1>Bad Gateway</h1></body></html>\n"

// With adds answers to the set.
func (s Set) With(more ...Answer) Set { return append(append(Set(nil), s...), more...) }

// JSON is a 200 answer with body.
func JSON(name, ct, body string) Answer {
	return Answer{Name: name, ContentType: ct, Body: []byte(body)}
}
