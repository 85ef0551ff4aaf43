package harbortest

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/getkin/kin-openapi/openapi2"
	"github.com/getkin/kin-openapi/openapi2conv"
	"github.com/getkin/kin-openapi/openapi3"
	"github.com/getkin/kin-openapi/openapi3filter"
	"github.com/getkin/kin-openapi/routers"
	"github.com/getkin/kin-openapi/routers/gorillamux"
	"gopkg.in/yaml.v3"
)

// SpecFile is where Harbor's OpenAPI document lives, relative to the module root.
const SpecFile = "testdata/harbor/harbor-v2.0-swagger.yaml"

// SpecPath finds SpecFile above the test's working directory (the module root is the first
// directory up with a go.mod).
func SpecPath(t testing.TB) string {
	t.Helper()
	dir, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	for range 20 {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return filepath.Join(dir, SpecFile)
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			break
		}
		dir = parent
	}
	t.Fatalf("no go.mod above the working directory: cannot find %s", SpecFile)
	return ""
}

// knownDeviations are answers real Harbor sends that its own spec does not list for the operation;
// the emulator sends them as Harbor does, and their bodies are still checked to be Harbor's error JSON.
var knownDeviations = map[string]string{
	// controller/artifact deleteDeeply: ViolateForeignKeyConstraintCode, mapped to 412.
	"deleteArtifact 412": "deleting an artifact an index references",
	// handler/project.go CreateProject: RequireSystemAccess answers an authenticated caller without
	// project:create with 403 (ForbiddenError).
	"createProject 403": "creating a project without the permission",
	// pkg/robot/dao Create: the unique name index maps to orm.AsConflictError ("robot account ...
	// already exists"), answered 409.
	"CreateRobot 409": "creating a robot whose name exists",
	// controller/scan Scan: no scanner registered for the project is PreconditionFailed (412); a
	// scan already running is a ConflictError (409).
	"scanArtifact 412": "scanning on a Harbor without a scanner",
	"scanArtifact 409": "scanning an artifact whose scan is running",
	// handler/retention.go checkRuleConflict: two rules alike answer a ConflictError (409).
	"createRetention 409": "a policy with two identical rules",
	"updateRetention 409": "a policy with two identical rules",
	// The spec lists no 400 for updates, but the handler validates the policy as on create.
	"updateRetention 400": "an invalid policy",
	// The spec lists no 404 for these; a policy or execution id that does not exist is NotFound.
	"getRetention 404":              "no such policy",
	"updateRetention 404":           "no such policy",
	"triggerRetentionExecution 404": "no such policy",
	"listRetentionExecutions 404":   "no such policy",
	"listRetentionTasks 404":        "no such execution",
	"getRetentionTaskLog 404":       "no such task",
	"triggerRetentionExecution 400": "a body without dry_run",
}

// knownBodyDeviations are operations whose success body real Harbor writes in another shape than
// its spec says; the status is still checked, the body is checked by the client's own decoder.
var knownBodyDeviations = map[string]string{
	// handler/artifact.go GetVulnerabilitiesAddition writes the report JSON object (keyed by MIME
	// type) as it is; the spec calls the body a string.
	"getVulnerabilitiesAddition": "the report is a JSON object, not a string",
}

// knownRequestDeviations (and knownResponseDeviations) rewrite a body that real Harbor takes (or
// sends) but its spec describes otherwise, before the rest of the body is validated; the emulator
// and the client check the part themselves.
var knownResponseDeviations = map[string]func([]byte) []byte{"getRetention": retentionParamsAsObjects}

var knownRequestDeviations = map[string]func([]byte) []byte{
	// RetentionRule.params is declared as a map of objects, but the templates' parameters are
	// numbers ({"latestPushedK": 10}: Harbor's UI sends them so and pkg/retention reads them so).
	"createRetention": retentionParamsAsObjects,
	"updateRetention": retentionParamsAsObjects,
}

func retentionParamsAsObjects(body []byte) []byte {
	var doc map[string]any
	if json.Unmarshal(body, &doc) != nil {
		return body
	}
	rules, _ := doc["rules"].([]any)
	for _, r := range rules {
		rule, _ := r.(map[string]any)
		if params, ok := rule["params"].(map[string]any); ok {
			for k := range params {
				params[k] = map[string]any{}
			}
		}
	}
	out, err := json.Marshal(doc)
	if err != nil {
		return body
	}
	return out
}

// Validator checks requests and answers against Harbor's OpenAPI document (swagger 2.0, converted
// to OpenAPI 3 with kin-openapi's openapi2conv) and records what does not match.
type Validator struct {
	router routers.Router

	mu         sync.Mutex
	violations []string
	operations map[string]int // operationId -> requests validated
}

var (
	specMu    sync.Mutex
	specCache = map[string]*openapi3.T{}
)

// LoadValidator reads the swagger document at path (converted once per process and path).
func LoadValidator(path string) (*Validator, error) {
	doc, err := loadSpec(path)
	if err != nil {
		return nil, err
	}
	router, err := gorillamux.NewRouter(doc)
	if err != nil {
		return nil, fmt.Errorf("%s: routing the spec: %w", path, err)
	}
	return &Validator{router: router, operations: map[string]int{}}, nil
}

func loadSpec(path string) (*openapi3.T, error) {
	specMu.Lock()
	defer specMu.Unlock()
	if doc, ok := specCache[path]; ok {
		return doc, nil
	}
	raw, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var tree any
	if err := yaml.Unmarshal(raw, &tree); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	js, err := json.Marshal(tree)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	var doc2 openapi2.T
	if err := json.Unmarshal(js, &doc2); err != nil {
		return nil, fmt.Errorf("%s: not a swagger 2.0 document: %w", path, err)
	}
	doc, err := openapi2conv.ToV3(&doc2)
	if err != nil {
		return nil, fmt.Errorf("%s: converting to OpenAPI 3: %w", path, err)
	}
	if err := openapi3.NewLoader().ResolveRefsIn(doc, nil); err != nil {
		return nil, fmt.Errorf("%s: resolving references: %w", path, err)
	}
	// The spec's host is "localhost"; the emulator runs on 127.0.0.1:PORT. Match the base path on
	// any host.
	doc.Servers = openapi3.Servers{{URL: "/api/v2.0"}}
	specCache[path] = doc
	return doc, nil
}

// Violations are the requests and answers that did not match the spec.
func (v *Validator) Violations() []string {
	v.mu.Lock()
	defer v.mu.Unlock()
	return append([]string(nil), v.violations...)
}

// Operations are the operationIds of the requests validated so far, with counts.
func (v *Validator) Operations() map[string]int {
	v.mu.Lock()
	defer v.mu.Unlock()
	out := map[string]int{}
	for k, n := range v.operations {
		out[k] = n
	}
	return out
}

func (v *Validator) violation(format string, args ...any) {
	v.mu.Lock()
	defer v.mu.Unlock()
	v.violations = append(v.violations, fmt.Sprintf(format, args...))
}

// Middleware validates every request under /api/v2.0 before next serves it, and next's answer
// after. It only records; the answer goes out as next wrote it.
func (v *Validator) Middleware(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !strings.HasPrefix(r.URL.Path, apiBase+"/") {
			next.ServeHTTP(w, r)
			return
		}
		what := r.Method + " " + r.URL.RequestURI()
		route, params, err := v.router.FindRoute(r)
		if err != nil {
			v.violation("%s: not an operation of Harbor's spec: %v", what, err)
			next.ServeHTTP(w, r)
			return
		}
		body, _ := io.ReadAll(io.LimitReader(r.Body, 16<<20))
		r.Body = io.NopCloser(bytes.NewReader(body))
		in := &openapi3filter.RequestValidationInput{Request: r.Clone(r.Context()), PathParams: params, Route: route,
			Options: &openapi3filter.Options{AuthenticationFunc: openapi3filter.NoopAuthenticationFunc, MultiError: true}}
		op := route.Operation.OperationID
		checked := body
		if rewrite, ok := knownRequestDeviations[op]; ok {
			checked = rewrite(body)
		}
		in.Request.Body = io.NopCloser(bytes.NewReader(checked))
		in.Request.ContentLength = int64(len(checked))
		v.mu.Lock()
		v.operations[op]++
		v.mu.Unlock()
		if err := openapi3filter.ValidateRequest(context.Background(), in); err != nil {
			v.violation("%s (%s): request does not match the spec: %v", what, op, err)
		}
		r.Body = io.NopCloser(bytes.NewReader(body))
		cw := &capture{header: http.Header{}}
		next.ServeHTTP(cw, r)
		if cw.status == 0 {
			cw.status = http.StatusOK
		}
		v.checkResponse(what, op, in, cw)
		for k, vs := range cw.header {
			w.Header()[k] = vs
		}
		w.WriteHeader(cw.status)
		_, _ = w.Write(cw.body.Bytes())
	})
}

func (v *Validator) checkResponse(what, op string, in *openapi3filter.RequestValidationInput, cw *capture) {
	if resp := in.Route.Operation.Responses.Status(cw.status); resp == nil {
		if _, known := knownDeviations[fmt.Sprintf("%s %d", op, cw.status)]; !known {
			v.violation("%s (%s): answered %d, which the spec does not list for this operation", what, op, cw.status)
			return
		}
		var e struct {
			Errors []struct {
				Code    string `json:"code"`
				Message string `json:"message"`
			} `json:"errors"`
		}
		if err := json.Unmarshal(cw.body.Bytes(), &e); err != nil || len(e.Errors) == 0 || e.Errors[0].Code == "" {
			v.violation("%s (%s): the %d answer is not Harbor's error JSON: %q", what, op, cw.status, cw.body.String())
		}
		return
	}
	if _, known := knownBodyDeviations[op]; known {
		if err := json.Unmarshal(cw.body.Bytes(), new(map[string]any)); err != nil {
			v.violation("%s (%s): the %d answer is not a JSON object: %v", what, op, cw.status, err)
		}
		return
	}
	out := &openapi3filter.ResponseValidationInput{RequestValidationInput: in, Status: cw.status, Header: cw.header,
		Options: &openapi3filter.Options{IncludeResponseStatus: true, MultiError: true}}
	body := cw.body.Bytes()
	if rewrite, ok := knownResponseDeviations[op]; ok {
		body = rewrite(body)
	}
	out.SetBodyBytes(body)
	if err := openapi3filter.ValidateResponse(context.Background(), out); err != nil {
		v.violation("%s (%s): the %d answer does not match the spec: %v", what, op, cw.status, err)
	}
}

// capture buffers an answer for validation.
type capture struct {
	header http.Header
	status int
	body   bytes.Buffer
}

func (c *capture) Header() http.Header { return c.header }
func (c *capture) WriteHeader(code int) {
	if c.status == 0 {
		c.status = code
	}
}
func (c *capture) Write(b []byte) (int, error) {
	if c.status == 0 {
		c.status = http.StatusOK
	}
	return c.body.Write(b)
}

// Validator is the emulator's spec validator (nil without Options.Spec).
func (e *Emulator) Validator() *Validator { return e.spec }
