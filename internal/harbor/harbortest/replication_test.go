package harbortest_test

import (
	"net/http"
	"strings"
	"testing"

	"github.com/regctl-dev/regctl/internal/harbor/harbortest"
)

// TestReplicationValidation: registry endpoints and replication policies as Harbor's handlers
// check them — 201 + Location, 409 on duplicate names, the secret never answered, 412 deleting an
// endpoint a policy uses, exactly one remote side, filters, namespaces, and the replication cron
// (6 fields, seconds 0, minutes not *) — and a robot without system permissions gets 403.
func TestReplicationValidation(t *testing.T) {
	s := harbortest.Start(t)
	const endpoint = `{"name":"dr","type":"harbor","url":"http://127.0.0.1:1","credential":{"type":"basic","access_key":"admin","access_secret":"hunter2"}}`
	code, h, body := admin(t, s, "POST", "/api/v2.0/registries", endpoint)
	if code != http.StatusCreated || !strings.HasPrefix(h.Get("Location"), "/api/v2.0/registries/") {
		t.Fatalf("create endpoint: %d %q %s", code, h.Get("Location"), body)
	}
	epID := strings.TrimPrefix(h.Get("Location"), "/api/v2.0/registries/")
	if code, _, body = admin(t, s, "POST", "/api/v2.0/registries", endpoint); code != http.StatusConflict {
		t.Errorf("duplicate endpoint: %d %s", code, body)
	}
	if code, _, body = admin(t, s, "POST", "/api/v2.0/registries", strings.Replace(strings.Replace(endpoint, `"harbor"`, `"ftp"`, 1), `"dr"`, `"x"`, 1)); code != http.StatusBadRequest {
		t.Errorf("unknown endpoint type: %d %s", code, body)
	}
	if _, _, body = admin(t, s, "GET", "/api/v2.0/registries/"+epID, ""); strings.Contains(body, "hunter2") || !strings.Contains(body, `"access_key":"admin"`) {
		t.Errorf("the endpoint as answered: %s", body)
	}

	policy := func(name, cron string) string {
		return `{"name":"` + name + `","dest_registry":{"id":` + epID + `},"dest_namespace":"game-server","dest_namespace_replace_count":1,` +
			`"filters":[{"type":"name","value":"game-server/**"}],"trigger":{"type":"scheduled","trigger_settings":{"cron":"` + cron + `"}},"deletion":false,"override":true,"enabled":true}`
	}
	code, h, body = admin(t, s, "POST", "/api/v2.0/replication/policies", policy("Sync to DR", "0 0 2 * * *"))
	if code != http.StatusCreated || !strings.HasPrefix(h.Get("Location"), "/api/v2.0/replication/policies/") {
		t.Fatalf("create policy: %d %s", code, body)
	}
	bad := map[string]struct {
		body   string
		status int
		msg    string
	}{
		"duplicate":      {policy("Sync to DR", "0 0 2 * * *"), 409, "already exists"},
		"5-field cron":   {policy("a", "0 2 * * *"), 400, "6 fields"},
		"every minute":   {policy("b", "0 * 2 * * *"), 400, "Minutes"},
		"seconds":        {policy("c", "5 0 2 * * *"), 400, "seconds"},
		"no name":        {policy("", "0 0 2 * * *"), 400, "name"},
		"both local":     {strings.Replace(policy("d", "0 0 2 * * *"), `"dest_registry":{"id":`+epID+`}`, `"dest_registry":{"id":0}`, 1), 400, "src_registry"},
		"unknown dest":   {strings.Replace(policy("e", "0 0 2 * * *"), `{"id":`+epID+`}`, `{"id":999}`, 1), 400, "not found"},
		"bad namespace":  {strings.Replace(policy("f", "0 0 2 * * *"), `"game-server"`, `"Game Server"`, 1), 400, "namespace"},
		"name decorated": {strings.Replace(policy("g", "0 0 2 * * *"), `"value":"game-server/**"}`, `"value":"x","decoration":"matches"}`, 1), 400, "decoration"},
		"bad trigger":    {strings.Replace(policy("h", "0 0 2 * * *"), `"scheduled"`, `"nightly"`, 1), 400, "trigger"},
	}
	for name, c := range bad {
		code, _, body := admin(t, s, "POST", "/api/v2.0/replication/policies", c.body)
		if code != c.status || !strings.Contains(body, c.msg) || !strings.Contains(body, `"errors"`) {
			t.Errorf("%s: %d %s, want %d naming %q", name, code, body, c.status, c.msg)
		}
	}
	if n := len(s.Emulator().ReplicationPolicies()); n != 1 {
		t.Errorf("%d policies stored, want 1", n)
	}
	if code, _, body = admin(t, s, "DELETE", "/api/v2.0/registries/"+epID, ""); code != http.StatusPreconditionFailed {
		t.Errorf("deleting an endpoint in use: %d %s", code, body)
	}

	login, secret := s.AddRobot(harbortest.Robot{Name: "ci", Level: "project", Permissions: []harbortest.Permission{
		{Kind: "project", Namespace: "game-server", Access: harbortest.Allow("repository:pull")}}})
	for _, path := range []string{"/api/v2.0/registries", "/api/v2.0/replication/policies"} {
		if code, _, body := call(t, s, login, secret, "GET", path, ""); code != http.StatusForbidden {
			t.Errorf("a project robot lists %s: %d %s", path, code, body)
		}
	}
}
