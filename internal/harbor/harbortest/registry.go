package harbortest

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"time"
)

// tokenService is the "service" of Harbor's token realm.
const tokenService = "harbor-registry"

// maxManifest bounds a pushed manifest (distribution's own limit is 4 MiB).
const maxManifest = 8 << 20

// serveToken is Harbor's /service/token: basic credentials (or none, for public pulls) for a
// Bearer token. Bad credentials are 401.
func (e *Emulator) serveToken(w http.ResponseWriter, r *http.Request) {
	e.mu.Lock()
	defer e.mu.Unlock()
	who, ok := e.authenticate(r)
	if !ok {
		writeErr(w, http.StatusUnauthorized, "UNAUTHORIZED", "invalid credentials")
		return
	}
	tok := randomSecret()
	e.tokens[tok] = who
	writeJSON(w, http.StatusOK, map[string]any{"token": tok, "access_token": tok, "expires_in": 1800, "issued_at": e.now().UTC().Format(time.RFC3339)})
}

// registryAuth reads a Bearer token from the token service, or basic credentials (Harbor's core
// accepts both on /v2/).
func (e *Emulator) registryAuth(r *http.Request) (principal, bool) {
	h := r.Header.Get("Authorization")
	if tok, ok := strings.CutPrefix(h, "Bearer "); ok {
		p, found := e.tokens[tok]
		return p, found
	}
	return e.authenticate(r)
}

func (e *Emulator) challenge(w http.ResponseWriter, scope string) {
	c := fmt.Sprintf(`Bearer realm="%s/service/token",service="%s"`, e.external, tokenService)
	if scope != "" {
		c += fmt.Sprintf(`,scope="%s"`, scope)
	}
	w.Header().Set("Www-Authenticate", c)
	registryErr(w, http.StatusUnauthorized, "UNAUTHORIZED", "authentication required")
}

func registryErr(w http.ResponseWriter, status int, code, msg string) {
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(map[string]any{"errors": []map[string]string{{"code": code, "message": msg}}})
}

// v2Path splits /v2/<name>/<kind>/<ref>: kind is manifests, blobs or tags (tags/list).
var v2Path = regexp.MustCompile(`^/v2/(.+?)/(manifests|blobs|tags)/(.*)$`)

func (e *Emulator) serveRegistry(w http.ResponseWriter, r *http.Request) {
	e.mu.Lock()
	who, ok := e.registryAuth(r)
	if !ok {
		e.mu.Unlock()
		e.challenge(w, "")
		return
	}
	if r.URL.Path == "/v2/" || r.URL.Path == "/v2" {
		e.mu.Unlock()
		if who.anonymous {
			e.challenge(w, "")
			return
		}
		e.registry.ServeHTTP(w, r)
		return
	}
	if r.URL.Path == "/v2/_catalog" {
		e.mu.Unlock()
		if !who.admin {
			if who.anonymous {
				e.challenge(w, "registry:catalog:*")
				return
			}
			registryErr(w, http.StatusForbidden, "DENIED", "only system administrators list the catalog")
			return
		}
		e.registry.ServeHTTP(w, r)
		return
	}
	m := v2Path.FindStringSubmatch(r.URL.Path)
	if m == nil {
		e.mu.Unlock()
		registryErr(w, http.StatusNotFound, "NAME_UNKNOWN", "not a repository path")
		return
	}
	name, kind, ref := m[1], m[2], m[3]
	if kind == "blobs" && strings.HasPrefix(ref, "uploads") {
		kind = "uploads"
	}
	action := "pull"
	switch r.Method {
	case http.MethodGet, http.MethodHead:
	case http.MethodDelete:
		action = "delete"
		if kind == "uploads" {
			action = "push"
		}
	default:
		action = "push"
	}
	projName, _, _ := strings.Cut(name, "/")
	allowed := who.can(e, projName, "repository", action)
	exists := e.projects[projName] != nil
	e.mu.Unlock()
	switch {
	case !allowed && who.anonymous:
		e.challenge(w, "repository:"+name+":"+action)
		return
	case !allowed && !exists && !who.admin:
		// Harbor does not tell those without access whether a project exists.
		registryErr(w, http.StatusForbidden, "DENIED", fmt.Sprintf("%s may not %s %s", who.name, action, name))
		return
	case !exists || !strings.Contains(name, "/"):
		registryErr(w, http.StatusNotFound, "NAME_UNKNOWN", "project "+projName+" not found")
		return
	case !allowed:
		registryErr(w, http.StatusForbidden, "DENIED", fmt.Sprintf("%s may not %s %s", who.name, action, name))
		return
	}
	switch {
	case kind == "manifests" && r.Method == http.MethodPut:
		e.pushManifest(w, r, name, ref)
	case kind == "manifests" && r.Method == http.MethodGet:
		rec := &recorder{ResponseWriter: w}
		e.registry.ServeHTTP(rec, r)
		if rec.status == http.StatusOK {
			e.recordPull(name, ref, rec.Header().Get("Docker-Content-Digest"))
		}
	case kind == "manifests" && r.Method == http.MethodDelete:
		rec := &recorder{ResponseWriter: w}
		e.registry.ServeHTTP(rec, r)
		if rec.status == http.StatusAccepted {
			e.mu.Lock()
			if _, rp := e.repository(name, false); rp != nil {
				if a := rp.artifactByRef(ref); a != nil {
					delete(rp.artifacts, a.digest)
				}
			}
			e.mu.Unlock()
		}
	default:
		e.registry.ServeHTTP(w, r)
	}
}

// recorder passes an answer through and remembers its status.
type recorder struct {
	http.ResponseWriter
	status int
}

func (r *recorder) WriteHeader(code int) {
	if r.status == 0 {
		r.status = code
	}
	r.ResponseWriter.WriteHeader(code)
}

func (r *recorder) Write(b []byte) (int, error) {
	if r.status == 0 {
		r.status = http.StatusOK
	}
	return r.ResponseWriter.Write(b)
}

type manifestDoc struct {
	MediaType    string            `json:"mediaType"`
	ArtifactType string            `json:"artifactType"`
	Config       *descriptor       `json:"config"`
	Layers       []descriptor      `json:"layers"`
	Manifests    []descriptor      `json:"manifests"`
	Subject      *descriptor       `json:"subject"`
	Annotations  map[string]string `json:"annotations"`
}

type descriptor struct {
	MediaType    string         `json:"mediaType"`
	Digest       string         `json:"digest"`
	Size         int64          `json:"size"`
	ArtifactType string         `json:"artifactType"`
	Platform     map[string]any `json:"platform"`
}

var cosignSigTag = regexp.MustCompile(`^sha256-([a-f0-9]{64})\.sig$`)

// pushManifest forwards a manifest push and, once the registry stored it, records the artifact
// (and its tag) with the clock's time.
func (e *Emulator) pushManifest(w http.ResponseWriter, r *http.Request, name, ref string) {
	body, err := io.ReadAll(io.LimitReader(r.Body, maxManifest+1))
	if err != nil || len(body) > maxManifest {
		registryErr(w, http.StatusBadRequest, "MANIFEST_INVALID", "manifest too large or unreadable")
		return
	}
	r.Body = io.NopCloser(bytes.NewReader(body))
	r.ContentLength = int64(len(body))
	rec := &recorder{ResponseWriter: w}
	e.registry.ServeHTTP(rec, r)
	if rec.status != http.StatusCreated {
		return
	}
	var doc manifestDoc
	_ = json.Unmarshal(body, &doc) // the registry accepted it, so it parses
	sum := sha256.Sum256(body)
	digest := "sha256:" + hex.EncodeToString(sum[:])
	mt := doc.MediaType
	if mt == "" {
		mt = r.Header.Get("Content-Type")
	}

	e.mu.Lock()
	defer e.mu.Unlock()
	now := e.now().UTC()
	_, rp := e.repository(name, true)
	rp.updated = now
	a := rp.artifacts[digest]
	if a == nil {
		a = &artifact{id: e.id(), digest: digest, manifestType: mt, mediaType: mt, artifactType: doc.ArtifactType,
			pushTime: now, annotations: doc.Annotations, tags: map[string]*tag{}}
		a.size = int64(len(body))
		if doc.Config != nil {
			a.mediaType = doc.Config.MediaType
			a.size += doc.Config.Size
		}
		for _, l := range doc.Layers {
			a.size += l.Size
		}
		for _, c := range doc.Manifests {
			a.children = append(a.children, child{digest: c.Digest, platform: c.Platform})
			if ca := rp.artifacts[c.Digest]; ca != nil {
				a.size += ca.size
			}
		}
		switch {
		case doc.Subject != nil && doc.Subject.Digest != "":
			a.subject, a.accessory = doc.Subject.Digest, accessoryType(doc)
		case cosignSigTag.MatchString(ref):
			a.subject, a.accessory = "sha256:"+cosignSigTag.FindStringSubmatch(ref)[1], "signature.cosign"
		}
		rp.artifacts[digest] = a
	}
	if !strings.HasPrefix(ref, "sha256:") {
		rp.untag(ref)
		a.tags[ref] = &tag{id: e.id(), name: ref, pushTime: now}
	}
}

// accessoryType is Harbor's accessory type for a referrer.
func accessoryType(doc manifestDoc) string {
	t := doc.ArtifactType
	if t == "" && doc.Config != nil {
		t = doc.Config.MediaType
	}
	switch {
	case strings.Contains(t, "cosign"):
		return "signature.cosign"
	case strings.Contains(t, "notary") || strings.Contains(t, "notation"):
		return "signature.notation"
	case strings.Contains(t, "harbor") && strings.Contains(t, "sbom"):
		return "harbor.sbom"
	}
	return "subject.accessory"
}

// recordPull sets the pull time of the artifact (and of the tag, when pulled by tag).
func (e *Emulator) recordPull(name, ref, digest string) {
	e.mu.Lock()
	defer e.mu.Unlock()
	_, rp := e.repository(name, false)
	if rp == nil {
		return
	}
	a := rp.artifacts[digest]
	if a == nil {
		return
	}
	now := e.now().UTC()
	a.pullTime = now
	if t := a.tags[ref]; t != nil {
		t.pullTime = now
	}
	rp.pullCount++
}

// registryDelete removes a manifest from the data plane (the caller holds e.mu).
func (e *Emulator) registryDelete(r *http.Request, name, digest string) {
	req := httptest.NewRequest(http.MethodDelete, "/v2/"+name+"/manifests/"+digest, nil).WithContext(r.Context())
	e.registry.ServeHTTP(httptest.NewRecorder(), req)
}
