package harbortest_test

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/regctl-dev/regctl/internal/harbor/harbortest"
)

// TestValidatorCatchesViolations: the spec validator is not a rubber stamp. Requests the spec does
// not have, parameters it does not allow, and answers its schemas refuse are all recorded.
func TestValidatorCatchesViolations(t *testing.T) {
	v, err := harbortest.LoadValidator(harbortest.SpecPath(t))
	if err != nil {
		t.Fatal(err)
	}
	answer := map[string]string{
		"/api/v2.0/projects/p":                          `{"project_id":"not-a-number","name":"p"}`,
		"/api/v2.0/projects":                            `[{"name":"p","metadata":{"public":true}}]`,
		"/api/v2.0/projects/p/repositories":             `[{"name":"p/a","artifact_count":1}]`,
		"/api/v2.0/projects/p/repositories/a/artifacts": `[{"digest":"sha256:x","tags":[{"name":"v1","immutable":"no"}]}]`,
	}
	srv := httptest.NewServer(v.Middleware(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		if b, ok := answer[r.URL.Path]; ok {
			w.Write([]byte(b))
			return
		}
		w.WriteHeader(http.StatusTeapot)
	})))
	defer srv.Close()
	for _, path := range []string{
		"/api/v2.0/projects/p",                          // bad project_id type
		"/api/v2.0/projects",                            // metadata.public must be a string
		"/api/v2.0/projects/p/repositories",             // valid
		"/api/v2.0/projects/p/repositories/a/artifacts", // immutable must be a boolean
		"/api/v2.0/no/such/operation",                   // not in the spec
		"/api/v2.0/projects?page_size=500",              // over the maximum
		"/api/v2.0/projects?with_detail=maybe",          // not a boolean
		"/api/v2.0/projects/p/_deletable",               // 418: not a listed answer
	} {
		resp, err := http.Get(srv.URL + path)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
	}
	got := strings.Join(v.Violations(), "\n")
	for _, want := range []string{
		"GET /api/v2.0/projects/p (getProject): the 200 answer does not match",
		"GET /api/v2.0/projects (listProjects): the 200 answer does not match",
		"/artifacts (listArtifacts): the 200 answer does not match",
		"GET /api/v2.0/no/such/operation: not an operation",
		"page_size=500 (listProjects): request does not match",
		"with_detail=maybe (listProjects): request does not match",
		"(getProjectDeletable): answered 418",
	} {
		if !strings.Contains(got, want) {
			t.Errorf("no violation %q in:\n%s", want, got)
		}
	}
	if strings.Contains(got, "(listRepositories)") {
		t.Errorf("a valid answer was flagged:\n%s", got)
	}
	// The two requests with bad parameters also get the bad project list: 9 in all.
	if n := len(v.Violations()); n != 9 {
		t.Errorf("%d violations, want 9:\n%s", n, got)
	}
}
