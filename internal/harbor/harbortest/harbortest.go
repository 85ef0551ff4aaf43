// Package harbortest is a Harbor emulator for tests: the REST API v2.0 under /api/v2.0 (projects with
// their metadata and CVE allowlist, repositories, artifacts with tags, index references and cosign
// accessories, health, ping, systeminfo) as Harbor answers it — double-encoded repository names,
// 201 + Location, page/page_size with Link and X-Total-Count, Harbor's error JSON, 409 on duplicates,
// 412 on deleting a non-empty project — with basic auth for an admin and robot accounts whose
// permissions are enforced (401 for bad credentials, 403 without the permission).
//
// Its data plane is a real registry: the embedded CNCF distribution registry (internal/localreg)
// behind Harbor-style auth (a Bearer token service at /service/token, and basic auth). Artifacts and
// tags are derived from what was really pushed; push and pull times come from an injected clock.
//
// Every answer under /api/v2.0 can be checked against Harbor's own OpenAPI document (Options.Spec,
// see validate.go): a request the spec does not have, or an answer its schema does not allow, is
// recorded as a violation and fails the test.
package harbortest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/regctl-dev/regctl/internal/localreg"
)

// Version is what systeminfo reports as harbor_version.
const Version = "v2.15.2-regctl-emulator"

// Admin is the system administrator's user name.
const Admin = "admin"

// Options configure the emulator.
type Options struct {
	// Now is the clock push, pull, creation and update times come from; default time.Now.
	Now func() time.Time
	// AdminPassword is the admin's password; default a random one (Server.Password).
	AdminPassword string
	// Root is the data plane's storage directory; "" keeps blobs in memory.
	Root string
	// Spec is the path of harbor-v2.0-swagger.yaml: every /api/v2.0 request and answer is validated
	// against it (violations: Server.Violations). Start defaults it to the module's
	// testdata/harbor/harbor-v2.0-swagger.yaml and fails the test on any violation; NoSpec turns
	// that off.
	Spec   string
	NoSpec bool
	// Wrap puts middleware in front of the emulator (fault injection, counting).
	Wrap func(http.Handler) http.Handler
	// TLS serves HTTPS with a self-signed certificate (Start only; Server.CAFile trusts it).
	TLS bool
	// Scanner runs the scans scanArtifact starts (default: SetVulnerabilities' findings).
	Scanner Scanner
}

// Server is a running emulator.
type Server struct {
	URL      string // http(s)://127.0.0.1:PORT
	Host     string // 127.0.0.1:PORT
	Username string // the admin
	Password string
	CAFile   string // with TLS: the PEM of the server's certificate

	emu *Emulator
	srv *httptest.Server
}

// Emulator is the emulator as an http.Handler, for servers other than httptest (the standalone
// command).
type Emulator struct {
	now      func() time.Time
	adminPW  string
	registry http.Handler
	closeReg func() error
	handler  http.Handler
	spec     *Validator
	external string // the URL clients use, for Location, Link and the token realm

	mu         sync.Mutex
	nextID     int64
	projects   map[string]*project // by name
	robots     map[string]*Robot   // by login name
	tokens     map[string]principal
	health     map[string]string // component -> error ("" healthy)
	scanners   []scanner
	scanner    Scanner
	scans      map[string]*scanJob // by repository@digest
	fixedVulns map[string][]Vulnerability
	// scanWG tracks background jobs (scans, retention executions) that still use the data plane.
	scanWG         sync.WaitGroup
	retentions     map[int64]*retentionDoc         // by policy id
	retentionExecs map[int64]*retentionExecution   // by execution id
	endpoints      map[int64]*registryEndpoint     // registry endpoints by id
	replPolicies   map[int64]*replicationPolicy    // by id
	replExecs      map[int64]*replicationExecution // by id
	requests       []string
}

// New builds an emulator. external is the URL clients reach it at (it appears in Location and Link
// headers and in the token realm); SetExternalURL can set it once the listener is open.
func New(ctx context.Context, o Options) (*Emulator, error) {
	reg, closeReg, err := localreg.Handler(ctx, localreg.Options{Root: o.Root, LogLevel: "error"})
	if err != nil {
		return nil, err
	}
	e := &Emulator{now: o.Now, adminPW: o.AdminPassword, registry: reg, closeReg: closeReg,
		projects: map[string]*project{}, robots: map[string]*Robot{}, tokens: map[string]principal{},
		health: map[string]string{}, scanner: o.Scanner, scans: map[string]*scanJob{}, fixedVulns: map[string][]Vulnerability{},
		retentions: map[int64]*retentionDoc{}, retentionExecs: map[int64]*retentionExecution{},
		endpoints: map[int64]*registryEndpoint{}, replPolicies: map[int64]*replicationPolicy{}, replExecs: map[int64]*replicationExecution{}}
	if e.now == nil {
		e.now = time.Now
	}
	if e.adminPW == "" {
		e.adminPW = randomSecret()
	}
	for _, c := range components {
		e.health[c] = ""
	}
	if o.Spec != "" {
		v, err := LoadValidator(o.Spec)
		if err != nil {
			closeReg()
			return nil, err
		}
		e.spec = v
	}
	var h http.Handler = http.HandlerFunc(e.serve)
	if e.spec != nil {
		h = e.spec.Middleware(h)
	}
	if o.Wrap != nil {
		h = o.Wrap(h)
	}
	e.handler = h
	// Harbor's own project, present on every installation.
	e.createProject("library", map[string]string{"public": "true"}, nil)
	// A default install registers Trivy as the default scanner.
	e.SetScanners("Trivy")
	return e, nil
}

// SetExternalURL sets the URL clients reach the emulator at.
func (e *Emulator) SetExternalURL(u string) {
	e.mu.Lock()
	e.external = strings.TrimSuffix(u, "/")
	e.mu.Unlock()
}

// AdminPassword is the admin's password.
func (e *Emulator) AdminPassword() string { return e.adminPW }

// Close releases the data plane.
func (e *Emulator) Close() error {
	e.scanWG.Wait() // a scan still reading the data plane
	return e.closeReg()
}

// ServeHTTP serves the API, the token service and the data plane.
func (e *Emulator) ServeHTTP(w http.ResponseWriter, r *http.Request) { e.handler.ServeHTTP(w, r) }

// Violations are the spec violations seen so far (nil without a spec).
func (e *Emulator) Violations() []string {
	if e.spec == nil {
		return nil
	}
	return e.spec.Violations()
}

// Start runs an emulator on 127.0.0.1 for the test; it stops with the test, and fails it if any
// request or answer violated Harbor's spec.
func Start(t testing.TB, opts ...Options) *Server {
	t.Helper()
	var o Options
	if len(opts) > 0 {
		o = opts[0]
	}
	if o.Spec == "" && !o.NoSpec {
		o.Spec = SpecPath(t)
	}
	e, err := New(context.Background(), o)
	if err != nil {
		t.Fatal(err)
	}
	s := &Server{Username: Admin, Password: e.adminPW, emu: e}
	if o.TLS {
		s.srv = httptest.NewTLSServer(e)
		s.CAFile = writeCA(t, s.srv)
	} else {
		s.srv = httptest.NewServer(e) // 127.0.0.1
	}
	s.URL = s.srv.URL
	s.Host = strings.TrimPrefix(strings.TrimPrefix(s.URL, "http://"), "https://")
	e.SetExternalURL(s.URL)
	t.Cleanup(func() {
		s.srv.Close()
		_ = e.Close()
		for _, v := range e.Violations() {
			t.Errorf("harbor spec violation: %s", v)
		}
	})
	return s
}

// Emulator is the server's emulator (state helpers: AddRobot, SetHealth, Requests).
func (s *Server) Emulator() *Emulator { return s.emu }

// AddRobot adds a robot account (see Emulator.AddRobot).
func (s *Server) AddRobot(r Robot) (login, secret string) { return s.emu.AddRobot(r) }

// Requests returns "METHOD path" of the requests served so far and clears the record.
func (s *Server) Requests() []string { return s.emu.Requests() }

// Requests returns "METHOD escaped-path" of the requests served so far and clears the record.
func (e *Emulator) Requests() []string {
	e.mu.Lock()
	defer e.mu.Unlock()
	out := e.requests
	e.requests = nil
	return out
}

// Access is one permission: a resource and an action (Harbor's rbac names: repository pull, push,
// delete, list; artifact read, list, delete; project read, update, delete, create, list; ...).
type Access struct{ Resource, Action string }

// Permission grants access in one namespace: kind "project" with a project name (or "*" for all
// projects), or kind "system" with namespace "/".
type Permission struct {
	Kind      string
	Namespace string
	Access    []Access
}

// Robot is a robot account.
type Robot struct {
	Name        string // "ci" -> robot$ci (system) or robot$<project>+ci (project level)
	Level       string // "system" or "project"
	Permissions []Permission
	Disabled    bool
	Description string
	Duration    int64 // days; -1 never expires (AddRobot's default)
	secret      string
	id          int64
	created     time.Time
	expiresAt   int64 // epoch seconds; -1 never
}

// Login is the robot's user name: robot$<name> for system robots, robot$<project>+<name> for
// project robots (their one permission's namespace).
func (r Robot) Login() string {
	if r.Level == "project" && len(r.Permissions) > 0 {
		return "robot$" + r.Permissions[0].Namespace + "+" + r.Name
	}
	return "robot$" + r.Name
}

// AddRobot adds a robot account and returns its login name and secret.
func (e *Emulator) AddRobot(r Robot) (login, secret string) {
	e.mu.Lock()
	defer e.mu.Unlock()
	r.secret = randomSecret()
	r.id, r.created = e.id(), e.now()
	if r.Duration == 0 {
		r.Duration = -1
	}
	r.expiresAt = expiry(r.created, r.Duration)
	e.robots[r.Login()] = &r
	return r.Login(), r.secret
}

// components are what /health reports.
var components = []string{"core", "database", "jobservice", "portal", "redis", "registry", "registryctl", "trivy"}

// SetHealth marks a component unhealthy with an error message ("" makes it healthy again).
func (e *Emulator) SetHealth(component, errMsg string) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.health[component] = errMsg
}

func randomSecret() string {
	b := make([]byte, 16)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// Clock is a settable clock for Options.Now.
type Clock struct {
	mu sync.Mutex
	t  time.Time
}

// NewClock starts a clock at t.
func NewClock(t time.Time) *Clock { return &Clock{t: t} }

// Now is the clock's time.
func (c *Clock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }

// Advance moves the clock forward.
func (c *Clock) Advance(d time.Duration) { c.mu.Lock(); c.t = c.t.Add(d); c.mu.Unlock() }

// Set sets the clock.
func (c *Clock) Set(t time.Time) { c.mu.Lock(); c.t = t; c.mu.Unlock() }

// Allow builds accesses from "resource:action" pairs: Allow("repository:pull", "repository:push").
func Allow(pairs ...string) []Access {
	out := make([]Access, 0, len(pairs))
	for _, p := range pairs {
		res, act, _ := strings.Cut(p, ":")
		out = append(out, Access{Resource: res, Action: act})
	}
	return out
}
