package harbor_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"testing"

	v1 "github.com/google/go-containerregistry/pkg/v1"

	"github.com/regctl-dev/regctl/internal/config"
	"github.com/regctl-dev/regctl/internal/exitcode"
	"github.com/regctl-dev/regctl/internal/harbor"
	"github.com/regctl-dev/regctl/internal/registry"
	"github.com/regctl-dev/regctl/internal/registry/hostiletest"
)

const (
	ctJSON  = "application/json"
	digestA = "sha256:aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
	digestB = "sha256:bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb"
	pushed  = `"push_time":"2026-01-02T03:04:05.000Z","pull_time":"0001-01-01T00:00:00.000Z"`
)

var routes = []struct {
	method string
	path   *regexp.Regexp
	op     string
}{
	{"GET", regexp.MustCompile(`^/api/v2.0/projects$`), "listProjects"},
	{"POST", regexp.MustCompile(`^/api/v2.0/projects$`), "createProject"},
	{"GET", regexp.MustCompile(`^/api/v2.0/projects/[^/]+$`), "getProject"},
	{"PUT", regexp.MustCompile(`^/api/v2.0/projects/[^/]+$`), "updateProject"},
	{"GET", regexp.MustCompile(`^/api/v2.0/projects/[^/]+/repositories$`), "listRepositories"},
	{"GET", regexp.MustCompile(`^/api/v2.0/projects/[^/]+/repositories/[^/]+$`), "getRepository"},
	{"GET", regexp.MustCompile(`^/api/v2.0/projects/[^/]+/repositories/[^/]+/artifacts$`), "listArtifacts"},
	{"GET", regexp.MustCompile(`^/api/v2.0/projects/[^/]+/repositories/[^/]+/artifacts/[^/]+$`), "getArtifact"},
	{"DELETE", regexp.MustCompile(`^/api/v2.0/projects/[^/]+/repositories/[^/]+/artifacts/[^/]+$`), "deleteArtifact"},
	{"DELETE", regexp.MustCompile(`^/api/v2.0/projects/[^/]+/repositories/[^/]+/artifacts/[^/]+/tags/[^/]+$`), "deleteTag"},
	{"POST", regexp.MustCompile(`^/api/v2.0/robots$`), "CreateRobot"},
	{"POST", regexp.MustCompile(`^/api/v2.0/projects/[^/]+/repositories/[^/]+/artifacts/[^/]+/scan$`), "scanArtifact"},
	{"GET", regexp.MustCompile(`^/api/v2.0/projects/[^/]+/repositories/[^/]+/artifacts/[^/]+/additions/vulnerabilities$`), "getVulnerabilitiesAddition"},
	{"GET", regexp.MustCompile(`^/api/v2.0/robots$`), "ListRobot"},
	{"GET", regexp.MustCompile(`^/api/v2.0/retentions/[0-9]+$`), "getRetention"},
	{"POST", regexp.MustCompile(`^/api/v2.0/retentions/[0-9]+/executions$`), "triggerRetentionExecution"},
	{"GET", regexp.MustCompile(`^/api/v2.0/retentions/[0-9]+/executions$`), "listRetentionExecutions"},
	{"GET", regexp.MustCompile(`^/api/v2.0/retentions/[0-9]+/executions/[0-9]+/tasks$`), "listRetentionTasks"},
	{"GET", regexp.MustCompile(`^/api/v2.0/retentions/[0-9]+/executions/[0-9]+/tasks/[0-9]+$`), "getRetentionTaskLog"},
	{"GET", regexp.MustCompile(`^/api/v2.0/registries$`), "listRegistries"},
	{"POST", regexp.MustCompile(`^/api/v2.0/registries$`), "createRegistry"},
	{"PUT", regexp.MustCompile(`^/api/v2.0/registries/[0-9]+$`), "updateRegistry"},
	{"GET", regexp.MustCompile(`^/api/v2.0/replication/policies$`), "listReplicationPolicies"},
	{"POST", regexp.MustCompile(`^/api/v2.0/replication/policies$`), "createReplicationPolicy"},
	{"PUT", regexp.MustCompile(`^/api/v2.0/replication/policies/[0-9]+$`), "updateReplicationPolicy"},
	{"POST", regexp.MustCompile(`^/api/v2.0/replication/executions$`), "startReplication"},
	{"GET", regexp.MustCompile(`^/api/v2.0/replication/executions/[0-9]+$`), "getReplicationExecution"},
	{"GET", regexp.MustCompile(`^/api/v2.0/replication/executions/[0-9]+/tasks$`), "listReplicationTasks"},
	{"GET", regexp.MustCompile(`^/api/v2.0/replication/executions/[0-9]+/tasks/[0-9]+/log$`), "getReplicationLog"},
}

// valid are well-formed answers to the operations an operation under test also calls.
var valid = map[string]hostiletest.Answer{
	"listProjects":               hostiletest.JSON("valid", ctJSON, `[{"project_id":1,"name":"p"}]`),
	"listRepositories":           hostiletest.JSON("valid", ctJSON, `[{"id":1,"name":"p/app"}]`),
	"getProject":                 hostiletest.JSON("valid", ctJSON, `{"project_id":1,"name":"p","metadata":{"public":"false","auto_scan":"true"}}`),
	"createProject":              {Name: "created", Status: http.StatusCreated, Header: http.Header{"Location": {"/api/v2.0/projects/2"}}},
	"updateProject":              {Name: "updated", Status: http.StatusOK},
	"getRepository":              hostiletest.JSON("valid", ctJSON, `{"id":1,"name":"p/app"}`),
	"listArtifacts":              hostiletest.JSON("valid", ctJSON, `[{"digest":"`+digestA+`",`+pushed+`,"tags":[{"name":"v1"}]}]`),
	"getArtifact":                hostiletest.JSON("valid", ctJSON, `{"digest":"`+digestB+`",`+pushed+`}`),
	"deleteArtifact":             {Name: "deleted", Status: http.StatusOK},
	"CreateRobot":                {Name: "created", Status: http.StatusCreated, ContentType: ctJSON, Body: []byte(robotCreated)},
	"ListRobot":                  hostiletest.JSON("valid", ctJSON, robotListed),
	"scanArtifact":               {Name: "accepted", Status: http.StatusAccepted},
	"getVulnerabilitiesAddition": hostiletest.JSON("valid", ctJSON, vulnReport),
	"getRetention":               hostiletest.JSON("valid", ctJSON, retentionPolicy),
	"triggerRetentionExecution":  {Name: "created", Status: http.StatusCreated, Header: http.Header{"Location": {"/api/v2.0/retentions/3/executions/5"}}},
	"listRetentionExecutions":    hostiletest.JSON("valid", ctJSON, `[{"id":5,"policy_id":3,"status":"Success","dry_run":true}]`),
	"listRetentionTasks":         hostiletest.JSON("valid", ctJSON, `[{"id":7,"execution_id":5,"repository":"p/app","status":"Success"}]`),
	"getRetentionTaskLog":        hostiletest.JSON("valid", "text/plain", retentionLog),
	"listRegistries":             hostiletest.JSON("valid", ctJSON, drEndpoint),
	"createRegistry":             {Name: "created", Status: http.StatusCreated, Header: http.Header{"Location": {"/api/v2.0/registries/3"}}},
	"updateRegistry":             {Name: "updated", Status: http.StatusOK},
	"listReplicationPolicies":    hostiletest.JSON("valid", ctJSON, "["+syncPolicy+"]"),
	"createReplicationPolicy":    {Name: "created", Status: http.StatusCreated, Header: http.Header{"Location": {"/api/v2.0/replication/policies/4"}}},
	"updateReplicationPolicy":    {Name: "updated", Status: http.StatusOK},
	"startReplication":           {Name: "created", Status: http.StatusCreated, Header: http.Header{"Location": {"/api/v2.0/replication/executions/5"}}},
	"getReplicationExecution":    hostiletest.JSON("valid", ctJSON, replExecution),
	"listReplicationTasks":       hostiletest.JSON("valid", ctJSON, replTasks),
	"getReplicationLog":          hostiletest.JSON("valid", "text/plain", "copied\n"),
}

const (
	drEndpoint    = `[{"id":2,"name":"dr","type":"harbor","url":"https://dr.example","insecure":false,"credential":{"type":"basic","access_key":"admin","access_secret":"*****"}}]`
	syncPolicy    = `{"id":4,"name":"Sync to DR","src_registry":{"id":0,"name":"Local"},"dest_registry":{"id":2,"name":"dr"},"dest_namespace":"game-server","dest_namespace_replace_count":1,"filters":[{"type":"name","value":"game-server/**"}],"trigger":{"type":"scheduled","trigger_settings":{"cron":"0 0 2 * * *"}},"enabled":true,"override":true}`
	replExecution = `{"id":5,"policy_id":4,"status":"Success","total":1,"succeed":1}`
	replTasks     = `[{"id":7,"execution_id":5,"status":"Success","src_resource":"game-server/api:[v1]","dst_resource":"game-server/api:[v1]"}]`
)

const (
	retentionPolicy = `{"id":3,"algorithm":"or","rules":[{"action":"retain","template":"always","params":{}}],"trigger":{"kind":"Schedule","settings":{"cron":""}},"scope":{"level":"project","ref":1}}`
	retentionLog    = "| Digest | Tag | Retention |\n|---|---|---|\n| " + digestA + " | v1 | DEL |\n"
)

const (
	scanned    = `{"digest":"` + digestA + `",` + pushed + `,"scan_overview":{"application/vnd.security.vulnerability.report; version=1.1":{"scan_status":"Success"}}}`
	vulnReport = `{"application/vnd.security.vulnerability.report; version=1.1":{"vulnerabilities":[{"id":"CVE-1","package":"p","version":"1","severity":"High"}]}}`
)

const (
	robotCreated = `{"id":7,"name":"robot$p+ci","secret":"robot-s3cret","expires_at":-1}`
	robotListed  = `[{"id":7,"name":"robot$p+ci","level":"project","duration":-1,"permissions":[{"kind":"project","namespace":"p","access":[{"resource":"repository","action":"pull"}]}]}]`
)

// hostileHarbor answers op with a, every other operation validly; the data plane answers the
// /v2/ ping and 404 for manifests.
func hostileHarbor(t *testing.T, op string, a http.Handler, also map[string]hostiletest.Answer) *harbor.Harbor {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if strings.HasPrefix(r.URL.Path, "/v2") {
			if r.URL.Path == "/v2/" {
				return
			}
			http.Error(w, `{"errors":[{"code":"MANIFEST_UNKNOWN"}]}`, http.StatusNotFound)
			return
		}
		for _, rt := range routes {
			if rt.method == r.Method && rt.path.MatchString(r.URL.EscapedPath()) {
				if rt.op == op {
					a.ServeHTTP(w, r)
				} else if o, ok := also[rt.op]; ok {
					o.ServeHTTP(w, r)
				} else {
					valid[rt.op].ServeHTTP(w, r)
				}
				return
			}
		}
		http.Error(w, `{"errors":[{"code":"NOT_FOUND","message":"not served here"}]}`, http.StatusNotFound)
	}))
	t.Cleanup(srv.Close)
	reg, err := harbor.Open(context.Background(), "hostile", config.Registry{Type: harbor.Type, URL: srv.URL, Username: "robot$ci", Password: "s3cret"}, registry.Options{})
	if err != nil {
		t.Fatal(err)
	}
	return reg.(*harbor.Harbor)
}

func harborError(status int, code string) hostiletest.Answer {
	return hostiletest.Answer{Name: code, Status: status, ContentType: ctJSON, Body: []byte(`{"errors":[{"code":"` + code + `","message":"refused"}]}`)}
}

type hostileOp struct {
	name, op, valid string
	extra           hostiletest.Set
	also            map[string]hostiletest.Answer // answers to other operations, instead of the valid ones
	run             func(ctx context.Context, h *harbor.Harbor) (any, error)
	codes           map[string]int
	checks          map[string]func(*testing.T, any)
}

func n(want int) func(*testing.T, any) {
	return func(t *testing.T, v any) {
		t.Helper()
		var got int
		switch x := v.(type) {
		case []string:
			got = len(x)
		case []registry.Image:
			got = len(x)
		}
		if got != want {
			t.Errorf("%d results, want %d: %+v", got, want, v)
		}
	}
}

func ensured(want registry.EnsureStatus) func(*testing.T, any) {
	return func(t *testing.T, v any) {
		t.Helper()
		if got := v.(registry.ProjectResult).Status; got != want {
			t.Errorf("status %q, want %q", got, want)
		}
	}
}

func with(m map[string]int, kv ...any) map[string]int {
	out := map[string]int{}
	for k, v := range m {
		out[k] = v
	}
	for i := 0; i+1 < len(kv); i += 2 {
		out[kv[i].(string)] = kv[i+1].(int)
	}
	return out
}

func hostileOps() []hostileOp {
	auth := hostiletest.Set{harborError(http.StatusUnauthorized, "UNAUTHORIZED"), harborError(http.StatusForbidden, "FORBIDDEN")}
	authCodes := map[string]int{"UNAUTHORIZED": exitcode.Auth, "FORBIDDEN": exitcode.Auth, "html-404": exitcode.NotFound}
	// A list: [] is an empty list, a valid body under a wrong or no Content-Type is read as it is.
	listCodes := with(authCodes, "json-array", 0, "wrong-type", 0, "no-type", 0)
	linkLoop := hostiletest.Answer{Name: "link-loop", ContentType: ctJSON, Body: []byte(`[{"project_id":1,"name":"p"}]`),
		Header: http.Header{"Link": {`</api/v2.0/projects?page=1&page_size=100>; rel="next"`}}}
	linkElsewhere := hostiletest.Answer{Name: "link-elsewhere", ContentType: ctJSON, Body: []byte(`[{"project_id":1,"name":"p"}]`),
		Header: http.Header{"Link": {`<https://127.0.0.1:1/api/v2.0/projects?page=2>; rel="next"`}}}
	emptyWithNext := hostiletest.Answer{Name: "empty-page-with-next", ContentType: ctJSON, Body: []byte(`[]`),
		Header: http.Header{"Link": {`</api/v2.0/projects?page=2&page_size=100>; rel="next"`}}}
	badTotal := hostiletest.Answer{Name: "bad-total", ContentType: ctJSON, Body: []byte(`[]`), Header: http.Header{"X-Total-Count": {"many"}}}

	var ops []hostileOp
	ops = append(ops, hostileOp{name: "Repositories/listProjects", op: "listProjects", valid: `[{"project_id":1,"name":"p"}]`,
		extra: auth.With(linkLoop, linkElsewhere, emptyWithNext, badTotal,
			hostiletest.JSON("missing-name", ctJSON, `[{"project_id":1}]`),
			hostiletest.JSON("objects", ctJSON, `[1,2]`)),
		run:    func(ctx context.Context, h *harbor.Harbor) (any, error) { return h.Repositories(ctx, "") },
		codes:  listCodes,
		checks: map[string]func(*testing.T, any){"json-array": n(0), "wrong-type": n(1), "no-type": n(1)}})

	ops = append(ops, hostileOp{name: "Repositories/listRepositories", op: "listRepositories", valid: `[{"id":1,"name":"p/app"}]`,
		extra: auth.With(harborError(http.StatusNotFound, "NOT_FOUND"),
			hostiletest.JSON("other-project", ctJSON, `[{"name":"q/app"}]`),
			hostiletest.JSON("project-only", ctJSON, `[{"name":"p/"}]`)),
		run:    func(ctx context.Context, h *harbor.Harbor) (any, error) { return h.Repositories(ctx, "p/") },
		codes:  with(listCodes, "NOT_FOUND", exitcode.NotFound),
		checks: map[string]func(*testing.T, any){"json-array": n(0), "wrong-type": n(1)}})

	art := `{"digest":"` + digestA + `",` + pushed + `,"tags":[{"name":"v1"}]}`
	ops = append(ops, hostileOp{name: "Images", op: "listArtifacts", valid: `[` + art + `]`,
		extra: auth.With(harborError(http.StatusNotFound, "NOT_FOUND"),
			hostiletest.JSON("missing-digest", ctJSON, `[{`+pushed+`}]`),
			hostiletest.JSON("bad-digest", ctJSON, `[{"digest":"sha256:zz",`+pushed+`}]`),
			hostiletest.JSON("no-push-time", ctJSON, `[{"digest":"`+digestA+`"}]`),
			hostiletest.JSON("bad-push-time", ctJSON, `[{"digest":"`+digestA+`","push_time":"yesterday"}]`),
			hostiletest.JSON("bad-pull-time", ctJSON, `[{"digest":"`+digestA+`","push_time":"2026-01-02T03:04:05Z","pull_time":7}]`),
			hostiletest.JSON("bad-tag", ctJSON, `[{"digest":"`+digestA+`",`+pushed+`,"tags":[{"name":"-bad tag"}]}]`),
			hostiletest.JSON("bad-child", ctJSON, `[{"digest":"`+digestA+`",`+pushed+`,"references":[{"child_digest":""}]}]`),
			hostiletest.JSON("foreign-accessory", ctJSON, `[{"digest":"`+digestA+`",`+pushed+`,"accessories":[{"digest":"`+digestB+`","subject_artifact_digest":"sha256:cc"}]}]`),
			hostiletest.JSON("negative-size", ctJSON, `[{"digest":"`+digestA+`",`+pushed+`,"size":-1}]`),
			hostiletest.JSON("nulls", ctJSON, `[{"digest":"`+digestA+`",`+pushed+`,"size":null,"tags":null,"references":null,"accessories":null}]`)),
		run:    func(ctx context.Context, h *harbor.Harbor) (any, error) { return h.Images(ctx, "p/app") },
		codes:  with(listCodes, "NOT_FOUND", exitcode.NotFound, "nulls", 0),
		checks: map[string]func(*testing.T, any){"json-array": n(0), "wrong-type": n(1), "no-type": n(1), "nulls": n(1)}})

	proj := `{"project_id":1,"name":"p","metadata":{"public":"false","auto_scan":"true"}}`
	ops = append(ops, hostileOp{name: "EnsureProject/getProject", op: "getProject", valid: proj,
		extra: auth.With(harborError(http.StatusNotFound, "NOT_FOUND"),
			hostiletest.JSON("other-project", ctJSON, `{"project_id":2,"name":"q"}`),
			hostiletest.JSON("no-id", ctJSON, `{"name":"p"}`),
			hostiletest.JSON("bad-allowlist", ctJSON, `{"project_id":1,"name":"p","cve_allowlist":{"items":[{}]}}`),
			hostiletest.JSON("nulls", ctJSON, `{"project_id":1,"name":"p","metadata":{"auto_scan":null},"cve_allowlist":null}`)),
		run: func(ctx context.Context, h *harbor.Harbor) (any, error) {
			return h.EnsureProject(ctx, "p", registry.RepositorySpec{}, registry.ProjectSpec{ScanOnPush: bp(true)})
		},
		// Not found: created. A project without auto_scan has Harbor's default, false: updated.
		codes: with(authCodes, "html-404", 0, "NOT_FOUND", 0, "wrong-type", 0, "no-type", 0, "nulls", 0),
		checks: map[string]func(*testing.T, any){"html-404": ensured(registry.StatusCreated), "NOT_FOUND": ensured(registry.StatusCreated),
			"wrong-type": ensured(registry.StatusUnchanged), "nulls": ensured(registry.StatusUpdated)}})

	ops = append(ops, hostileOp{name: "EnsureProject/createProject", op: "createProject", valid: ``,
		also: map[string]hostiletest.Answer{"getProject": harborError(http.StatusNotFound, "NOT_FOUND")},
		extra: auth.With(harborError(http.StatusConflict, "CONFLICT"), harborError(http.StatusBadRequest, "BAD_REQUEST"),
			hostiletest.Answer{Name: "created", Status: http.StatusCreated}),
		run: func(ctx context.Context, h *harbor.Harbor) (any, error) {
			return h.EnsureProject(ctx, "q", registry.RepositorySpec{}, registry.ProjectSpec{})
		},
		// Harbor answers 201; a 200 is not Harbor's answer. A 409 after getProject said "not found"
		// means the answers disagree. A refused input is exit 2.
		codes:  with(authCodes, "created", 0, "BAD_REQUEST", exitcode.Usage, "html-404", exitcode.NotFound),
		checks: map[string]func(*testing.T, any){"created": ensured(registry.StatusCreated)}})

	d, _ := v1.NewHash(digestA)
	ops = append(ops, hostileOp{name: "DeleteImage", op: "deleteArtifact", valid: ``,
		extra: auth.With(harborError(http.StatusNotFound, "NOT_FOUND"), harborError(http.StatusPreconditionFailed, "VIOLATE_FOREIGN_KEY_CONSTRAINT")),
		run:   func(ctx context.Context, h *harbor.Harbor) (any, error) { return nil, h.DeleteImage(ctx, "p/app", d) },
		// The answer has no body: whatever JSON comes with the 200 is not read; an HTML page is not Harbor's.
		codes: with(authCodes, "NOT_FOUND", exitcode.NotFound, "empty-object", 0, "null", 0, "empty-body", 0, "json-array", 0,
			"wrong-type", 0, "no-type", 0, "truncated", 0)})

	ops = append(ops, hostileOp{name: "DeleteTag", op: "deleteTag", valid: ``,
		extra: auth.With(harborError(http.StatusNotFound, "NOT_FOUND")),
		run:   func(ctx context.Context, h *harbor.Harbor) (any, error) { return nil, h.DeleteTag(ctx, "p/app", "v1") },
		codes: with(authCodes, "NOT_FOUND", exitcode.NotFound, "empty-object", 0, "null", 0, "empty-body", 0, "json-array", 0,
			"wrong-type", 0, "no-type", 0, "truncated", 0)})

	ops = append(ops, hostileOp{name: "RepositorySettings", op: "getProject", valid: proj,
		extra: auth.With(harborError(http.StatusNotFound, "NOT_FOUND")),
		run:   func(ctx context.Context, h *harbor.Harbor) (any, error) { return h.RepositorySettings(ctx, "p/app") },
		codes: with(authCodes, "NOT_FOUND", exitcode.NotFound, "wrong-type", 0, "no-type", 0)})

	robot := harbor.RobotSpec{Project: "p", Name: "ci", Access: harbor.RobotAccessFor(true, false, false, false), ExpiresDays: -1}
	ops = append(ops, hostileOp{name: "CreateRobot", op: "CreateRobot", valid: robotCreated,
		extra: auth.With(harborError(http.StatusConflict, "CONFLICT"), harborError(http.StatusBadRequest, "BAD_REQUEST"),
			hostiletest.Answer{Name: "created-no-secret", Status: http.StatusCreated, ContentType: ctJSON, Body: []byte(`{"id":7,"name":"robot$p+ci"}`)},
			hostiletest.Answer{Name: "created-other-robot", Status: http.StatusCreated, ContentType: ctJSON, Body: []byte(`{"id":7,"name":"robot$q+admin","secret":"x"}`)},
			hostiletest.Answer{Name: "created-no-id", Status: http.StatusCreated, ContentType: ctJSON, Body: []byte(`{"name":"robot$p+ci","secret":"x"}`)},
			hostiletest.Answer{Name: "created", Status: http.StatusCreated, ContentType: ctJSON, Body: []byte(robotCreated)}),
		run: func(ctx context.Context, h *harbor.Harbor) (any, error) { return h.CreateRobot(ctx, robot) },
		// Harbor answers 201 with the secret; a 200 is not its answer.
		codes: with(authCodes, "created", 0, "BAD_REQUEST", exitcode.Usage, "html-404", exitcode.NotFound),
		checks: map[string]func(*testing.T, any){"created": func(t *testing.T, v any) {
			if c := v.(*harbor.RobotCreated); c.Secret != "robot-s3cret" || c.Login != "robot$p+ci" || c.ExpiresAt != nil {
				t.Errorf("created %+v", c)
			}
		}}})

	ops = append(ops, hostileOp{name: "Robots", op: "ListRobot", valid: robotListed,
		extra: auth.With(
			hostiletest.JSON("other-project", ctJSON, `[{"id":8,"name":"robot$q+ci","level":"project","permissions":[{"kind":"project","namespace":"q","access":[]}]}]`),
			hostiletest.JSON("system-robot", ctJSON, `[{"id":8,"name":"robot$all","level":"system","permissions":[]}]`),
			hostiletest.JSON("no-id", ctJSON, `[{"name":"robot$p+ci","level":"project","permissions":[{"kind":"project","namespace":"p"}]}]`),
			hostiletest.JSON("empty-access", ctJSON, `[{"id":7,"name":"robot$p+ci","level":"project","permissions":[{"kind":"project","namespace":"p","access":[{}]}]}]`)),
		run:    func(ctx context.Context, h *harbor.Harbor) (any, error) { return h.Robots(ctx, "p") },
		codes:  with(listCodes, "html-404", exitcode.NotFound),
		checks: map[string]func(*testing.T, any){"json-array": robots(0), "wrong-type": robots(1), "no-type": robots(1)}})

	da, _ := v1.NewHash(digestA)
	scan := func(ctx context.Context, h *harbor.Harbor) (any, error) { return h.NativeScan(ctx, "p/app", da) }
	ops = append(ops, hostileOp{name: "NativeScan/report", op: "getVulnerabilitiesAddition", valid: vulnReport,
		also: map[string]hostiletest.Answer{"getArtifact": hostiletest.JSON("scanned", ctJSON, scanned)},
		extra: auth.With(harborError(http.StatusNotFound, "NOT_FOUND"),
			hostiletest.JSON("other-mime", ctJSON, `{"application/vnd.scanner.adapter.vuln.report.harbor+json; version=1.0":{"vulnerabilities":[]}}`),
			hostiletest.JSON("no-id", ctJSON, `{"application/vnd.security.vulnerability.report; version=1.1":{"vulnerabilities":[{"package":"p","severity":"High"}]}}`),
			hostiletest.JSON("bad-severity", ctJSON, `{"application/vnd.security.vulnerability.report; version=1.1":{"vulnerabilities":[{"id":"CVE-1","package":"p","severity":"Apocalyptic"}]}}`),
			hostiletest.JSON("null-list", ctJSON, `{"application/vnd.security.vulnerability.report; version=1.1":{"vulnerabilities":null}}`),
			hostiletest.JSON("bad-cvss", ctJSON, `{"application/vnd.security.vulnerability.report; version=1.1":{"vulnerabilities":[{"id":"CVE-1","package":"p","severity":"High","preferred_cvss":{"score_v3":"high"}}]}}`)),
		run:    scan,
		codes:  with(authCodes, "NOT_FOUND", exitcode.NotFound, "wrong-type", 0, "no-type", 0),
		checks: map[string]func(*testing.T, any){"wrong-type": findings(1), "no-type": findings(1)}})
	ops = append(ops, hostileOp{name: "NativeScan/status", op: "getArtifact", valid: scanned,
		extra: auth.With(harborError(http.StatusNotFound, "NOT_FOUND"),
			hostiletest.JSON("no-status", ctJSON, `{"digest":"`+digestA+`","scan_overview":{"application/vnd.security.vulnerability.report; version=1.1":{}}}`),
			hostiletest.JSON("odd-status", ctJSON, `{"digest":"`+digestA+`","scan_overview":{"application/vnd.security.vulnerability.report; version=1.1":{"scan_status":"Exploded"}}}`),
			hostiletest.JSON("failed", ctJSON, `{"digest":"`+digestA+`","scan_overview":{"application/vnd.security.vulnerability.report; version=1.1":{"scan_status":"Error"}}}`),
			hostiletest.JSON("overview-list", ctJSON, `{"digest":"`+digestA+`","scan_overview":[]}`)),
		run:    scan,
		codes:  with(authCodes, "NOT_FOUND", exitcode.NotFound, "wrong-type", 0, "no-type", 0),
		checks: map[string]func(*testing.T, any){"wrong-type": findings(1)}})
	ops = append(ops, hostileOp{name: "NativeScan/start", op: "scanArtifact", valid: ``,
		also: map[string]hostiletest.Answer{"getArtifact": hostiletest.JSON("scanned", ctJSON, scanned)},
		extra: auth.With(harborError(http.StatusNotFound, "NOT_FOUND"), harborError(http.StatusUnprocessableEntity, "UNPROCESSABLE_ENTITY"),
			harborError(http.StatusPreconditionFailed, "PRECONDITION"), harborError(http.StatusConflict, "CONFLICT"),
			hostiletest.Answer{Name: "accepted", Status: http.StatusAccepted}),
		run: scan,
		// 202 and 409 (a scan running already) go on to the report; a 200 is not Harbor's answer.
		codes:  with(authCodes, "NOT_FOUND", exitcode.NotFound, "UNPROCESSABLE_ENTITY", exitcode.Usage, "accepted", 0, "CONFLICT", 0),
		checks: map[string]func(*testing.T, any){"accepted": findings(1), "CONFLICT": findings(1)}})
	withRetention := map[string]hostiletest.Answer{"getProject": hostiletest.JSON("valid", ctJSON, `{"project_id":1,"name":"p","metadata":{"retention_id":"3"}}`)}
	ops = append(ops, hostileOp{name: "Retention", op: "getRetention", valid: retentionPolicy, also: withRetention,
		extra: auth.With(harborError(http.StatusNotFound, "NOT_FOUND"),
			hostiletest.JSON("other-project", ctJSON, strings.Replace(retentionPolicy, `"ref":1`, `"ref":9`, 1)),
			hostiletest.JSON("no-template", ctJSON, strings.Replace(retentionPolicy, `"template":"always",`, ``, 1)),
			hostiletest.JSON("params-strings", ctJSON, strings.Replace(retentionPolicy, `"params":{}`, `"params":{"latestPushedK":"ten"}`, 1))),
		run: func(ctx context.Context, h *harbor.Harbor) (any, error) { return h.Retention(ctx, "p") },
		// 404: the metadata names a policy that is gone, which is no policy.
		codes: with(authCodes, "NOT_FOUND", 0, "html-404", 0, "wrong-type", 0, "no-type", 0)})
	ops = append(ops, hostileOp{name: "Retention/metadata", op: "getProject", valid: `{"project_id":1,"name":"p","metadata":{"retention_id":"3"}}`,
		extra: auth.With(hostiletest.JSON("bad-id", ctJSON, `{"project_id":1,"name":"p","metadata":{"retention_id":"three"}}`),
			hostiletest.JSON("no-policy", ctJSON, `{"project_id":1,"name":"p","metadata":{}}`)),
		run:   func(ctx context.Context, h *harbor.Harbor) (any, error) { return h.Retention(ctx, "p") },
		codes: with(authCodes, "no-policy", 0, "wrong-type", 0, "no-type", 0, "html-404", exitcode.NotFound)})
	run := func(ctx context.Context, h *harbor.Harbor) (any, error) { return h.RunRetention(ctx, 3, true) }
	ops = append(ops, hostileOp{name: "RunRetention/trigger", op: "triggerRetentionExecution", valid: ``,
		extra: auth.With(hostiletest.Answer{Name: "no-location", Status: http.StatusCreated},
			hostiletest.Answer{Name: "location-no-id", Status: http.StatusCreated, Header: http.Header{"Location": {"/api/v2.0/retentions/3/executions/"}}},
			hostiletest.Answer{Name: "created", Status: http.StatusCreated, Header: http.Header{"Location": {"/api/v2.0/retentions/3/executions/5"}}}),
		run: run, codes: with(authCodes, "created", 0)})
	ops = append(ops, hostileOp{name: "RunRetention/status", op: "listRetentionExecutions", valid: `[{"id":5,"policy_id":3,"status":"Success","dry_run":true}]`,
		extra: auth.With(hostiletest.JSON("no-id", ctJSON, `[{"status":"Success"}]`), hostiletest.JSON("odd-status", ctJSON, `[{"id":5,"status":"Exploded"}]`),
			hostiletest.JSON("failed", ctJSON, `[{"id":5,"status":"Error"}]`), hostiletest.JSON("other-execution", ctJSON, `[{"id":6,"status":"Success"}]`)),
		run: run, codes: with(authCodes, "wrong-type", 0, "no-type", 0)})
	ops = append(ops, hostileOp{name: "RunRetention/tasks", op: "listRetentionTasks", valid: `[{"id":7,"execution_id":5,"repository":"p/app","status":"Success"}]`,
		extra: auth.With(hostiletest.JSON("no-repository", ctJSON, `[{"id":7}]`), hostiletest.JSON("none", ctJSON, `[]`)),
		run:   run, codes: with(authCodes, "wrong-type", 0, "no-type", 0, "none", 0, "json-array", 0)})
	ops = append(ops, hostileOp{name: "RunRetention/log", op: "getRetentionTaskLog", valid: retentionLog,
		extra: auth.With(hostiletest.JSON("plain", "text/plain", retentionLog), hostiletest.JSON("no-table", "text/plain", "job started\n")),
		run:   run, codes: with(authCodes, "plain", 0, "wrong-type", 0, "no-type", 0, "valid", 0)})

	spec := harbor.ReplicationSpec{Name: "Sync to DR", Dest: harbor.Endpoint{Name: "dr", Type: "harbor", URL: "https://dr.example", AccessKey: "admin", AccessSecret: "s3cret"},
		DestNamespace: "game-server", ReplaceCount: 1, NameFilter: "game-server/**", Trigger: "scheduled", Cron: "0 2 * * *", Override: true, Enabled: true}
	put := func(ctx context.Context, h *harbor.Harbor) (any, error) { return h.PutReplication(ctx, spec, false) }
	ops = append(ops, hostileOp{name: "PutReplication/listRegistries", op: "listRegistries", valid: drEndpoint,
		extra: auth.With(hostiletest.JSON("no-id", ctJSON, `[{"name":"dr","type":"harbor"}]`),
			hostiletest.JSON("twice", ctJSON, strings.TrimSuffix(drEndpoint, "]")+","+strings.TrimPrefix(strings.Replace(drEndpoint, `"id":2`, `"id":3`, 1), "[")),
			hostiletest.JSON("null-credential", ctJSON, `[{"id":2,"name":"dr","type":"harbor","url":"https://dr.example","credential":null}]`),
			hostiletest.JSON("other-type", ctJSON, strings.Replace(drEndpoint, `"type":"harbor"`, `"type":"quay"`, 1))),
		run: put,
		// None listed: created. A null credential: updated (the access key differs). Another type: exit 2.
		codes: with(listCodes, "html-404", exitcode.NotFound, "null-credential", 0, "other-type", exitcode.Usage),
		checks: map[string]func(*testing.T, any){"valid": putStatus("unchanged", "unchanged"), "json-array": putStatus("created", "updated"),
			"null-credential": putStatus("updated", "unchanged")}})
	ops = append(ops, hostileOp{name: "PutReplication/listReplicationPolicies", op: "listReplicationPolicies", valid: "[" + syncPolicy + "]",
		extra: auth.With(hostiletest.JSON("no-id", ctJSON, `[{"name":"Sync to DR"}]`),
			hostiletest.JSON("twice", ctJSON, "["+syncPolicy+","+strings.Replace(syncPolicy, `"id":4`, `"id":5`, 1)+"]"),
			hostiletest.JSON("nulls", ctJSON, `[{"id":4,"name":"Sync to DR","src_registry":null,"dest_registry":null,"filters":null,"trigger":null}]`),
			hostiletest.JSON("filter-no-type", ctJSON, `[{"id":4,"name":"Sync to DR","filters":[{"value":"x"}]}]`),
			hostiletest.JSON("pull-based", ctJSON, "["+strings.Replace(syncPolicy, `"src_registry":{"id":0,"name":"Local"}`, `"src_registry":{"id":9,"name":"upstream"}`, 1)+"]")),
		run: put,
		// None listed: created. Nulls: a policy to bring up to date. A pull-based one is not turned around: exit 2.
		codes: with(listCodes, "html-404", exitcode.NotFound, "nulls", 0, "pull-based", exitcode.Usage),
		checks: map[string]func(*testing.T, any){"valid": putStatus("unchanged", "unchanged"), "json-array": putStatus("unchanged", "created"),
			"nulls": putStatus("unchanged", "updated")}})
	ops = append(ops, hostileOp{name: "PutReplication/createRegistry", op: "createRegistry", valid: ``,
		also: map[string]hostiletest.Answer{"listRegistries": hostiletest.JSON("none", ctJSON, `[]`)},
		extra: auth.With(harborError(http.StatusConflict, "CONFLICT"), harborError(http.StatusBadRequest, "BAD_REQUEST"),
			hostiletest.Answer{Name: "no-location", Status: http.StatusCreated},
			hostiletest.Answer{Name: "created", Status: http.StatusCreated, Header: http.Header{"Location": {"/api/v2.0/registries/3"}}}),
		run: put, codes: with(authCodes, "created", 0, "BAD_REQUEST", exitcode.Usage, "html-404", exitcode.NotFound)})

	runRepl := func(ctx context.Context, h *harbor.Harbor) (any, error) { return h.RunReplication(ctx, "Sync to DR") }
	ops = append(ops, hostileOp{name: "RunReplication/policies", op: "listReplicationPolicies", valid: "[" + syncPolicy + "]",
		extra: auth.With(hostiletest.JSON("disabled", ctJSON, "["+strings.Replace(syncPolicy, `"enabled":true`, `"enabled":false`, 1)+"]")),
		run:   runRepl,
		// None listed: no such policy (5); a disabled one Harbor will not run (2).
		codes: with(listCodes, "json-array", exitcode.NotFound, "html-404", exitcode.NotFound, "disabled", exitcode.Usage)})
	ops = append(ops, hostileOp{name: "RunReplication/start", op: "startReplication", valid: ``,
		extra: auth.With(harborError(http.StatusPreconditionFailed, "PRECONDITION"),
			hostiletest.Answer{Name: "no-location", Status: http.StatusCreated},
			hostiletest.Answer{Name: "other-location", Status: http.StatusCreated, Header: http.Header{"Location": {"/api/v2.0/replication/policies/4"}}},
			hostiletest.Answer{Name: "created", Status: http.StatusCreated, Header: http.Header{"Location": {"/api/v2.0/replication/executions/5"}}}),
		run: runRepl, codes: with(authCodes, "created", 0)})
	ops = append(ops, hostileOp{name: "RunReplication/execution", op: "getReplicationExecution", valid: replExecution,
		extra: auth.With(hostiletest.JSON("other-execution", ctJSON, strings.Replace(replExecution, `"id":5`, `"id":6`, 1)),
			hostiletest.JSON("other-policy", ctJSON, strings.Replace(replExecution, `"policy_id":4`, `"policy_id":9`, 1)),
			hostiletest.JSON("odd-status", ctJSON, strings.Replace(replExecution, `"Success"`, `"Exploded"`, 1)),
			hostiletest.JSON("failed", ctJSON, strings.Replace(replExecution, `"Success"`, `"Error"`, 1)),
			hostiletest.JSON("negative", ctJSON, strings.Replace(replExecution, `"total":1`, `"total":-1`, 1))),
		run: runRepl, codes: with(authCodes, "wrong-type", 0, "no-type", 0)})
	ops = append(ops, hostileOp{name: "RunReplication/tasks", op: "listReplicationTasks", valid: replTasks,
		extra: auth.With(hostiletest.JSON("no-id", ctJSON, `[{"status":"Success"}]`), hostiletest.JSON("odd-status", ctJSON, `[{"id":7,"status":"Exploded"}]`)),
		run:   runRepl, codes: with(authCodes, "wrong-type", 0, "no-type", 0, "json-array", 0)})
	return ops
}

func putStatus(endpoint, policy string) func(*testing.T, any) {
	return func(t *testing.T, v any) {
		t.Helper()
		if r := v.(*harbor.ReplicationPut); r.Endpoint.Status != endpoint || r.Policy.Status != policy {
			t.Errorf("endpoint %s, policy %s; want %s, %s", r.Endpoint.Status, r.Policy.Status, endpoint, policy)
		}
	}
}

func findings(want int) func(*testing.T, any) {
	return func(t *testing.T, v any) {
		t.Helper()
		if got := v.([]registry.Finding); len(got) != want {
			t.Errorf("%d findings, want %d: %+v", len(got), want, got)
		}
	}
}

func robots(want int) func(*testing.T, any) {
	return func(t *testing.T, v any) {
		t.Helper()
		if got := v.([]harbor.Robot); len(got) != want {
			t.Errorf("%d robots, want %d: %+v", len(got), want, got)
		}
	}
}

// TestHostileHarborAnswers runs every Harbor backend operation against every hostile answer to
// the Harbor operation it reads (registry/hostiletest): no panic (there is no recover), the
// documented exit code, and errors of exit 1 name the operation.
func TestHostileHarborAnswers(t *testing.T) {
	for _, op := range hostileOps() {
		answers := hostiletest.Of(ctJSON, op.valid, registry.MaxOtherSize+1).With(op.extra...)
		if op.valid == "" { // operations without a body: the reset and truncated answers need one
			answers = hostiletest.Of(ctJSON, `{"ignored":true}`, registry.MaxOtherSize+1).With(op.extra...)
		}
		for _, a := range answers {
			t.Run(op.name+"/"+a.Name, func(t *testing.T) {
				h := hostileHarbor(t, op.op, a, op.also)
				v, err := op.run(context.Background(), h)
				want := exitcode.Error
				if c, ok := op.codes[a.Name]; ok {
					want = c
				}
				if got := exitcode.Of(err); got != want {
					t.Fatalf("exit %d, want %d (err: %v; value %+v)", got, want, err, v)
				}
				if err != nil {
					if want == exitcode.Error && !strings.Contains(err.Error(), op.op) {
						t.Errorf("the error does not name %s: %v", op.op, err)
					}
					if strings.Contains(err.Error(), "s3cret") { // the password, and a robot's secret
						t.Errorf("the password is in the error: %v", err)
					}
					return
				}
				if check := op.checks[a.Name]; check != nil {
					check(t, v)
				}
			})
		}
	}
}
