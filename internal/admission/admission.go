// Package admission is regctl verify serve: a Kubernetes validating admission webhook that lets
// a Pod in only when each of its images carries a signature regctl verify accepts. It reads
// AdmissionReview v1 and v1beta1, verifies every container, initContainer and ephemeralContainer
// image (on UPDATE only the images that changed), and answers within a deadline shorter than
// the webhook's timeout, so the webhook's failurePolicy decides rather than a hang.
package admission

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/bmatcuk/doublestar/v4"
	"github.com/google/go-containerregistry/pkg/name"
)

// Rule says which keys must have signed the images its patterns match, and which annotations
// their signed payloads must carry. One key's valid signature suffices.
type Rule struct {
	Images      []string          // doublestar globs on registry/repository (index.docker.io/library/nginx)
	Keys        []string          // cosign public key files or KMS URIs
	Annotations map[string]string // each must be in the signed payload with this value
}

// Policy is the webhook's configuration.
type Policy struct {
	// Enforce denies a Pod with a failing image; otherwise (audit) it is allowed with warnings.
	Enforce bool
	// AllowUnmatched lets in images no rule matches (default: they are denied).
	AllowUnmatched bool
	Exclude        []string // globs on registry/repository never checked
	Rules          []Rule   // the first rule whose pattern matches decides
}

// Checker is what verification needs from registries: a tag's current digest, and whether a
// digest is signed by a key of the rule with its annotations.
type Checker interface {
	// Resolve returns image's digest reference (host/repo@sha256:…).
	Resolve(ctx context.Context, image name.Reference) (name.Digest, error)
	// Verify returns nil when the digest carries a signature by key with the annotations; an
	// error wrapping ErrUnsigned when it does not, any other error when it could not tell.
	Verify(ctx context.Context, d name.Digest, key string, annotations map[string]string) error
}

// ErrUnsigned is a digest without an acceptable signature (none, another key's, an annotation missing).
var ErrUnsigned = errors.New("not signed as the rule requires")

// Server answers admission reviews.
type Server struct {
	Policy  Policy
	Checker Checker
	// Timeout bounds one review's registry calls; keep it under the webhook's timeoutSeconds.
	Timeout  time.Duration
	CacheTTL time.Duration // how long a verified digest stays verified
	Now      func() time.Time
	Logger   *slog.Logger

	mu    sync.Mutex
	cache map[string]time.Time // digest + rule index → when verified
	ready bool
}

// maxReview bounds a review's body (the API server's request limit is 3 MiB).
const maxReview = 3 << 20

// Check validates the policy: each pattern and reference must parse (the caller names the field).
func (p *Policy) Check() error {
	for i, g := range p.Exclude {
		if !doublestar.ValidatePattern(g) {
			return fmt.Errorf("exclude[%d] %q: not a valid glob", i, g)
		}
	}
	if len(p.Rules) == 0 {
		return errors.New("rules: at least one rule (images and keys) is needed")
	}
	for i, r := range p.Rules {
		if len(r.Images) == 0 {
			return fmt.Errorf("rules[%d].images: at least one image pattern is needed", i)
		}
		for j, g := range r.Images {
			if !doublestar.ValidatePattern(g) {
				return fmt.Errorf("rules[%d].images[%d] %q: not a valid glob", i, j, g)
			}
		}
		if len(r.Keys) == 0 {
			return fmt.Errorf("rules[%d].keys: at least one public key file or KMS URI is needed", i)
		}
	}
	return nil
}

// Handler serves /verify (reviews), /healthz and /readyz.
func (s *Server) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("/verify", s.serveReview)
	mux.HandleFunc("/healthz", func(w http.ResponseWriter, _ *http.Request) { _, _ = io.WriteString(w, "ok\n") })
	mux.HandleFunc("/readyz", func(w http.ResponseWriter, _ *http.Request) {
		s.mu.Lock()
		ready := s.ready
		s.mu.Unlock()
		if !ready {
			http.Error(w, "not ready", http.StatusServiceUnavailable)
			return
		}
		_, _ = io.WriteString(w, "ok\n")
	})
	return mux
}

// SetReady marks the server ready (its keys loaded, its listener up) or not (shutting down).
func (s *Server) SetReady(ready bool) {
	s.mu.Lock()
	s.ready = ready
	s.mu.Unlock()
}

// Review is an AdmissionReview (admission.k8s.io/v1 and v1beta1 have the same shape here).
type Review struct {
	APIVersion string    `json:"apiVersion"`
	Kind       string    `json:"kind"`
	Request    *request  `json:"request,omitempty"`
	Response   *response `json:"response,omitempty"`
}

type request struct {
	UID       string `json:"uid"`
	Kind      gvk    `json:"kind"`
	Operation string `json:"operation"`
	Namespace string `json:"namespace"`
	Name      string `json:"name"`
	Object    *pod   `json:"object"`
	OldObject *pod   `json:"oldObject"`
}

type gvk struct{ Group, Version, Kind string }

type pod struct {
	Metadata struct {
		Name         string `json:"name"`
		GenerateName string `json:"generateName"`
	} `json:"metadata"`
	Spec struct {
		Containers          []container `json:"containers"`
		InitContainers      []container `json:"initContainers"`
		EphemeralContainers []container `json:"ephemeralContainers"`
	} `json:"spec"`
}

type container struct {
	Name  string `json:"name"`
	Image string `json:"image"`
}

type response struct {
	UID      string   `json:"uid"`
	Allowed  bool     `json:"allowed"`
	Status   *status  `json:"status,omitempty"`
	Warnings []string `json:"warnings,omitempty"`
}

type status struct {
	Code    int    `json:"code"`
	Message string `json:"message"`
}

// DecodeReview reads an AdmissionReview: its version, a request with a uid, and for a Pod its
// object. It is the parser FuzzDecodeReview runs.
func DecodeReview(body []byte) (*Review, error) {
	var rv Review
	if err := json.Unmarshal(body, &rv); err != nil {
		return nil, fmt.Errorf("not an AdmissionReview: %v", err)
	}
	switch {
	case rv.APIVersion != "admission.k8s.io/v1" && rv.APIVersion != "admission.k8s.io/v1beta1":
		return nil, fmt.Errorf("apiVersion %q: want admission.k8s.io/v1 or v1beta1", clip(rv.APIVersion))
	case rv.Kind != "AdmissionReview":
		return nil, fmt.Errorf("kind %q: want AdmissionReview", clip(rv.Kind))
	case rv.Request == nil:
		return nil, errors.New("request: missing")
	case rv.Request.UID == "":
		return nil, errors.New("request.uid: missing")
	}
	return &rv, nil
}

func (s *Server) serveReview(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost {
		http.Error(w, "POST an AdmissionReview", http.StatusMethodNotAllowed)
		return
	}
	body, err := io.ReadAll(io.LimitReader(r.Body, maxReview+1))
	if err != nil {
		http.Error(w, "reading the review: "+err.Error(), http.StatusBadRequest)
		return
	}
	if len(body) > maxReview {
		http.Error(w, "the review is over 3 MiB", http.StatusRequestEntityTooLarge)
		return
	}
	out, code := s.Decide(r.Context(), body)
	if code != http.StatusOK {
		http.Error(w, string(out), code)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	_, _ = w.Write(out)
}

// Decide answers one AdmissionReview body: the AdmissionReview answer and 200, or the reason and
// 400 for a body that is not a review.
func (s *Server) Decide(ctx context.Context, body []byte) ([]byte, int) {
	rv, err := DecodeReview(body)
	if err != nil {
		return []byte(err.Error()), http.StatusBadRequest
	}
	resp := s.review(ctx, rv.Request)
	out, err := json.Marshal(Review{APIVersion: rv.APIVersion, Kind: "AdmissionReview", Response: resp})
	if err != nil {
		return []byte(err.Error()), http.StatusInternalServerError
	}
	return out, http.StatusOK
}

// Failure is one image that did not pass.
type Failure struct {
	Image  string
	Reason string
}

// review decides one admission request.
func (s *Server) review(ctx context.Context, req *request) *response {
	resp := &response{UID: req.UID, Allowed: true}
	if req.Kind.Kind != "Pod" || req.Kind.Group != "" || (req.Operation != "CREATE" && req.Operation != "UPDATE") {
		return resp // only Pods are checked; the webhook's rules should send nothing else
	}
	if req.Object == nil {
		return deny(resp, "the review's object is missing")
	}
	images := podImages(req.Object)
	if req.Operation == "UPDATE" && req.OldObject != nil {
		// Only what changed: an old ReplicaSet's Pods stay updatable (and deletable) under a new policy.
		old := map[string]bool{}
		for _, im := range podImages(req.OldObject) {
			old[im] = true
		}
		changed := images[:0]
		for _, im := range images {
			if !old[im] {
				changed = append(changed, im)
			}
		}
		images = changed
	}
	failures := s.CheckImages(ctx, images)
	podName := req.Object.Metadata.Name
	if podName == "" {
		podName = req.Object.Metadata.GenerateName + "*"
	}
	s.logger().Info("admission review", "uid", req.UID, "namespace", req.Namespace, "pod", podName, "operation", req.Operation,
		"images", len(images), "failed", len(failures), "enforce", s.Policy.Enforce)
	if len(failures) == 0 {
		return resp
	}
	var parts []string
	for _, f := range failures {
		parts = append(parts, f.Image+": "+f.Reason)
	}
	if !s.Policy.Enforce {
		for _, p := range parts {
			resp.Warnings = append(resp.Warnings, clipN("regctl verify (audit): "+p, 250))
		}
		return resp
	}
	return deny(resp, fmt.Sprintf("regctl verify: %d of %d images failed: %s", len(failures), len(images), strings.Join(parts, "; ")))
}

func deny(resp *response, msg string) *response {
	resp.Allowed = false
	resp.Status = &status{Code: http.StatusForbidden, Message: msg}
	return resp
}

// podImages are the distinct images of every container, initContainer and ephemeralContainer.
func podImages(p *pod) []string {
	seen := map[string]bool{}
	var out []string
	for _, list := range [][]container{p.Spec.InitContainers, p.Spec.Containers, p.Spec.EphemeralContainers} {
		for _, c := range list {
			if !seen[c.Image] {
				seen[c.Image] = true
				out = append(out, c.Image)
			}
		}
	}
	return out
}

// CheckImages verifies each image under the policy, in parallel, within the server's Timeout.
func (s *Server) CheckImages(ctx context.Context, images []string) []Failure {
	timeout := s.Timeout
	if timeout <= 0 {
		timeout = 8 * time.Second
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	reasons := make([]string, len(images))
	var wg sync.WaitGroup
	for i, im := range images {
		wg.Add(1)
		go func() {
			defer wg.Done()
			reasons[i] = s.checkImage(ctx, im)
		}()
	}
	wg.Wait()
	var out []Failure
	for i, why := range reasons {
		if why != "" {
			out = append(out, Failure{Image: images[i], Reason: why})
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Image < out[j].Image })
	return out
}

// checkImage is "" when the image passes, else why not.
func (s *Server) checkImage(ctx context.Context, image string) string {
	if strings.TrimSpace(image) == "" {
		return "no image"
	}
	ref, err := name.ParseReference(image)
	if err != nil {
		return "not an image reference: " + clip(err.Error())
	}
	repo := ref.Context().Name()
	for _, g := range s.Policy.Exclude {
		if ok, _ := doublestar.Match(g, repo); ok {
			return ""
		}
	}
	ruleIdx := -1
	for i, r := range s.Policy.Rules {
		for _, g := range r.Images {
			if ok, _ := doublestar.Match(g, repo); ok {
				ruleIdx = i
				break
			}
		}
		if ruleIdx >= 0 {
			break
		}
	}
	if ruleIdx < 0 {
		if s.Policy.AllowUnmatched {
			return ""
		}
		return "no rule matches " + repo + " and unmatched images are denied"
	}
	rule := s.Policy.Rules[ruleIdx]
	d, err := s.Checker.Resolve(ctx, ref)
	if err != nil {
		return "registry unreachable or image missing: " + reason(ctx, err)
	}
	key := fmt.Sprintf("%s\x00%d", d.String(), ruleIdx)
	if s.cached(key) {
		return ""
	}
	var why []string
	for _, k := range rule.Keys {
		err := s.Checker.Verify(ctx, d, k, rule.Annotations)
		if err == nil {
			s.remember(key)
			return ""
		}
		if errors.Is(err, ErrUnsigned) {
			why = append(why, "key "+k+": "+clip(err.Error()))
		} else {
			why = append(why, "key "+k+": could not verify: "+reason(ctx, err))
		}
	}
	return d.DigestStr() + " " + strings.Join(why, "; ")
}

func reason(ctx context.Context, err error) string {
	if ctx.Err() != nil {
		return "no answer within the deadline (" + clip(err.Error()) + ")"
	}
	return clip(err.Error())
}

func (s *Server) now() time.Time {
	if s.Now != nil {
		return s.Now()
	}
	return time.Now()
}

func (s *Server) cached(key string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	at, ok := s.cache[key]
	ttl := s.CacheTTL
	if ttl <= 0 {
		ttl = 5 * time.Minute
	}
	return ok && s.now().Sub(at) < ttl
}

func (s *Server) remember(key string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cache == nil {
		s.cache = map[string]time.Time{}
	}
	if len(s.cache) > 100000 { // bounded: start again rather than grow without end
		s.cache = map[string]time.Time{}
	}
	s.cache[key] = s.now()
}

func (s *Server) logger() *slog.Logger {
	if s.Logger != nil {
		return s.Logger
	}
	return slog.New(slog.DiscardHandler)
}

func clip(s string) string { return clipN(s, 300) }

func clipN(s string, n int) string {
	if len(s) > n {
		return s[:n] + "…"
	}
	return s
}
