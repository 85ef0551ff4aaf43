package harbortest

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/bmatcuk/doublestar/v4"
	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/remote"
)

// Registry endpoints and push-based replication as Harbor's handler/registry.go,
// handler/replication.go and controller/replication validate them: endpoints with a type Harbor
// has an adapter for, secrets never answered ("*****"), 409 on a duplicate name, 412 on deleting
// an endpoint a policy uses; policies with one remote side, name/tag/label/resource filters,
// a 6-field cron whose minutes are not "*", and the deprecated "deletion" field read on write.
// Executions copy the selected tags (and the accessories of what they copy) to the destination
// with go-containerregistry, in the background, one task per repository. Schedules are stored
// and validated, never fired: a test starts executions itself.

// registryTypes are the adapter types Harbor registers (src/pkg/reg/model/registry.go).
var registryTypes = map[string]bool{"harbor": true, "docker-hub": true, "docker-registry": true, "aws-ecr": true, "google-gcr": true,
	"azure-acr": true, "ali-acr": true, "jfrog-artifactory": true, "quay": true, "gitlab": true, "dtr": true, "huawei-SWR": true,
	"tencent-tcr": true, "github-ghcr": true, "volcengine-cr": true}

// secretMask is what Harbor answers in place of a stored secret.
const secretMask = "*****"

type registryEndpoint struct {
	ID          int64  `json:"id"`
	Name        string `json:"name"`
	Type        string `json:"type"`
	URL         string `json:"url"`
	Description string `json:"description"`
	Insecure    bool   `json:"insecure"`
	Credential  *struct {
		Type         string `json:"type"`
		AccessKey    string `json:"access_key"`
		AccessSecret string `json:"access_secret"`
	} `json:"credential"`
	created, updated time.Time
}

type replicationFilter struct {
	Type       string `json:"type"`
	Value      any    `json:"value"`
	Decoration string `json:"decoration,omitempty"`
}

type replicationPolicy struct {
	ID          int64  `json:"id"`
	Name        string `json:"name"`
	Description string `json:"description"`
	SrcRegistry *struct {
		ID int64 `json:"id"`
	} `json:"src_registry"`
	DestRegistry *struct {
		ID int64 `json:"id"`
	} `json:"dest_registry"`
	DestNamespace             string              `json:"dest_namespace"`
	DestNamespaceReplaceCount *int                `json:"dest_namespace_replace_count"`
	Filters                   []replicationFilter `json:"filters"`
	Trigger                   *struct {
		Type            string `json:"type"`
		TriggerSettings *struct {
			Cron string `json:"cron"`
		} `json:"trigger_settings"`
	} `json:"trigger"`
	Deletion                bool  `json:"deletion"`
	Override                bool  `json:"override"`
	Enabled                 bool  `json:"enabled"`
	Speed                   *int  `json:"speed"`
	CopyByChunk             *bool `json:"copy_by_chunk"`
	SingleActiveReplication *bool `json:"single_active_replication"`
	created, updated        time.Time
}

type replicationExecution struct {
	id, policyID int64
	status       string // Running, Success, Error (Harbor's task framework)
	statusText   string
	start, end   time.Time
	tasks        []*replicationTask
}

type replicationTask struct {
	id         int64
	status     string
	src, dst   string
	start, end time.Time
	log        strings.Builder
}

// namespacePath is a destination namespace: repository path components.
var namespacePath = regexp.MustCompile(`^[a-z0-9]+(?:[._-][a-z0-9]+)*(?:/[a-z0-9]+(?:[._-][a-z0-9]+)*)*$`)

func (e *Emulator) serveRegistries(w http.ResponseWriter, r *http.Request, who principal, rest []string) {
	m := r.Method
	action := map[string]string{http.MethodGet: "read", http.MethodPost: "create", http.MethodPut: "update", http.MethodDelete: "delete"}[m]
	if len(rest) == 0 && m == http.MethodGet {
		action = "list"
	}
	if action == "" || !who.can(e, "", "registry", action) {
		denied(w, who, "manage registry endpoints")
		return
	}
	switch {
	case len(rest) == 0 && m == http.MethodPost:
		e.createEndpoint(w, r)
		return
	case len(rest) == 0 && m == http.MethodGet:
		list := e.sortedEndpoints()
		if n := r.URL.Query().Get("name"); n != "" {
			list = filterEndpoints(list, n)
		}
		from, to, ok := e.page(w, r, len(list))
		if !ok {
			return
		}
		out := []map[string]any{}
		for _, ep := range list[from:to] {
			out = append(out, endpointJSON(ep))
		}
		writeJSON(w, http.StatusOK, out)
		return
	case len(rest) != 1:
		writeErr(w, http.StatusNotFound, "NOT_FOUND", "the emulator does not serve "+m+" "+r.URL.Path)
		return
	}
	id, err := strconv.ParseInt(rest[0], 10, 64)
	if err != nil {
		writeErr(w, http.StatusBadRequest, "BAD_REQUEST", "id in path must be of type int64: "+strconv.Quote(rest[0]))
		return
	}
	ep := e.endpoints[id]
	if ep == nil {
		writeErr(w, http.StatusNotFound, "NOT_FOUND", fmt.Sprintf("registry %d not found", id))
		return
	}
	switch m {
	case http.MethodGet:
		writeJSON(w, http.StatusOK, endpointJSON(ep))
	case http.MethodPut:
		e.updateEndpoint(w, r, ep)
	case http.MethodDelete:
		for _, p := range e.replPolicies {
			if (p.DestRegistry != nil && p.DestRegistry.ID == id) || (p.SrcRegistry != nil && p.SrcRegistry.ID == id) {
				writeErr(w, http.StatusPreconditionFailed, "PRECONDITION", fmt.Sprintf("the registry %d is referenced by replication policy %q", id, p.Name))
				return
			}
		}
		delete(e.endpoints, id)
		w.WriteHeader(http.StatusOK)
	default:
		methodNotAllowed(w)
	}
}

func filterEndpoints(list []*registryEndpoint, name string) []*registryEndpoint {
	var out []*registryEndpoint
	for _, ep := range list {
		if strings.Contains(ep.Name, name) {
			out = append(out, ep)
		}
	}
	return out
}

func (e *Emulator) sortedEndpoints() []*registryEndpoint {
	out := make([]*registryEndpoint, 0, len(e.endpoints))
	for _, ep := range e.endpoints {
		out = append(out, ep)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	return out
}

func endpointJSON(ep *registryEndpoint) map[string]any {
	out := map[string]any{"id": ep.ID, "name": ep.Name, "type": ep.Type, "url": ep.URL, "description": ep.Description,
		"insecure": ep.Insecure, "status": "healthy", "creation_time": ts(ep.created), "update_time": ts(ep.updated)}
	if c := ep.Credential; c != nil {
		cred := map[string]any{"type": c.Type, "access_key": c.AccessKey}
		if c.AccessSecret != "" {
			cred["access_secret"] = secretMask
		}
		out["credential"] = cred
	}
	return out
}

// checkEndpoint is the registry controller's validation of a new or changed endpoint.
func (e *Emulator) checkEndpoint(ep *registryEndpoint) string {
	switch {
	case ep.Name == "":
		return "name is required"
	case !registryTypes[ep.Type]:
		return "invalid registry type " + strconv.Quote(ep.Type)
	}
	u, err := url.Parse(ep.URL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return "invalid url " + strconv.Quote(ep.URL)
	}
	if c := ep.Credential; c != nil && c.Type != "basic" && c.Type != "oauth" && c.Type != "secret" {
		return "invalid credential type " + strconv.Quote(c.Type)
	}
	for _, other := range e.endpoints {
		if other.Name == ep.Name && other.ID != ep.ID {
			return "conflict"
		}
	}
	return ""
}

func (e *Emulator) createEndpoint(w http.ResponseWriter, r *http.Request) {
	var ep registryEndpoint
	if err := json.NewDecoder(io.LimitReader(r.Body, 1<<20)).Decode(&ep); err != nil {
		writeErr(w, http.StatusBadRequest, "BAD_REQUEST", "parsing the registry: "+err.Error())
		return
	}
	ep.URL = strings.TrimSuffix(ep.URL, "/")
	switch msg := e.checkEndpoint(&ep); msg {
	case "":
	case "conflict":
		writeErr(w, http.StatusConflict, "CONFLICT", fmt.Sprintf("the registry whose name is %s already exists", ep.Name))
		return
	default:
		writeErr(w, http.StatusBadRequest, "BAD_REQUEST", msg)
		return
	}
	ep.ID = e.id()
	ep.created = e.now().UTC()
	ep.updated = ep.created
	e.endpoints[ep.ID] = &ep
	w.Header().Set("Location", apiBase+"/registries/"+itoa(ep.ID))
	w.WriteHeader(http.StatusCreated)
}

// updateEndpoint applies a RegistryUpdate: only the fields present change.
func (e *Emulator) updateEndpoint(w http.ResponseWriter, r *http.Request, ep *registryEndpoint) {
	var u struct {
		Name, Description, URL *string
		CredentialType         *string `json:"credential_type"`
		AccessKey              *string `json:"access_key"`
		AccessSecret           *string `json:"access_secret"`
		Insecure               *bool
	}
	if err := json.NewDecoder(io.LimitReader(r.Body, 1<<20)).Decode(&u); err != nil {
		writeErr(w, http.StatusBadRequest, "BAD_REQUEST", "parsing the registry update: "+err.Error())
		return
	}
	next := *ep
	if ep.Credential != nil {
		c := *ep.Credential
		next.Credential = &c
	}
	set := func(dst *string, v *string) {
		if v != nil {
			*dst = *v
		}
	}
	set(&next.Name, u.Name)
	set(&next.Description, u.Description)
	set(&next.URL, u.URL)
	next.URL = strings.TrimSuffix(next.URL, "/")
	if u.Insecure != nil {
		next.Insecure = *u.Insecure
	}
	if u.CredentialType != nil || u.AccessKey != nil || u.AccessSecret != nil {
		if next.Credential == nil {
			next.Credential = &struct {
				Type         string `json:"type"`
				AccessKey    string `json:"access_key"`
				AccessSecret string `json:"access_secret"`
			}{Type: "basic"}
		}
		set(&next.Credential.Type, u.CredentialType)
		set(&next.Credential.AccessKey, u.AccessKey)
		set(&next.Credential.AccessSecret, u.AccessSecret)
	}
	switch msg := e.checkEndpoint(&next); msg {
	case "":
	case "conflict":
		writeErr(w, http.StatusConflict, "CONFLICT", fmt.Sprintf("the registry whose name is %s already exists", next.Name))
		return
	default:
		writeErr(w, http.StatusBadRequest, "BAD_REQUEST", msg)
		return
	}
	next.updated = e.now().UTC()
	*ep = next
	w.WriteHeader(http.StatusOK)
}

func (e *Emulator) serveReplication(w http.ResponseWriter, r *http.Request, who principal, rest []string) {
	if len(rest) == 0 {
		writeErr(w, http.StatusNotFound, "NOT_FOUND", "the emulator does not serve "+r.Method+" "+r.URL.Path)
		return
	}
	m := r.Method
	resource := map[string]string{"policies": "replication-policy", "executions": "replication"}[rest[0]]
	action := map[string]string{http.MethodGet: "read", http.MethodPost: "create", http.MethodPut: "update", http.MethodDelete: "delete"}[m]
	if len(rest) == 1 && m == http.MethodGet {
		action = "list"
	}
	if resource == "" {
		writeErr(w, http.StatusNotFound, "NOT_FOUND", "the emulator does not serve "+m+" "+r.URL.Path)
		return
	}
	if action == "" || !who.can(e, "", resource, action) {
		denied(w, who, "manage replication")
		return
	}
	if rest[0] == "executions" {
		e.serveReplicationExecutions(w, r, rest[1:])
		return
	}
	switch {
	case len(rest) == 1 && m == http.MethodPost:
		p, ok := e.decodeReplicationPolicy(w, r, 0)
		if !ok {
			return
		}
		p.ID = e.id()
		p.created = e.now().UTC()
		p.updated = p.created
		e.replPolicies[p.ID] = p
		w.Header().Set("Location", apiBase+"/replication/policies/"+itoa(p.ID))
		w.WriteHeader(http.StatusCreated)
		return
	case len(rest) == 1 && m == http.MethodGet:
		list := e.sortedReplPolicies()
		if n := r.URL.Query().Get("name"); n != "" {
			var kept []*replicationPolicy
			for _, p := range list {
				if strings.Contains(p.Name, n) {
					kept = append(kept, p)
				}
			}
			list = kept
		}
		from, to, ok := e.page(w, r, len(list))
		if !ok {
			return
		}
		out := []map[string]any{}
		for _, p := range list[from:to] {
			out = append(out, e.replPolicyJSON(p))
		}
		writeJSON(w, http.StatusOK, out)
		return
	case len(rest) != 2:
		writeErr(w, http.StatusNotFound, "NOT_FOUND", "the emulator does not serve "+m+" "+r.URL.Path)
		return
	}
	id, err := strconv.ParseInt(rest[1], 10, 64)
	if err != nil {
		writeErr(w, http.StatusBadRequest, "BAD_REQUEST", "id in path must be of type int64: "+strconv.Quote(rest[1]))
		return
	}
	p := e.replPolicies[id]
	if p == nil {
		writeErr(w, http.StatusNotFound, "NOT_FOUND", fmt.Sprintf("the replication policy %d not found", id))
		return
	}
	switch m {
	case http.MethodGet:
		writeJSON(w, http.StatusOK, e.replPolicyJSON(p))
	case http.MethodPut:
		next, ok := e.decodeReplicationPolicy(w, r, id)
		if !ok {
			return
		}
		next.ID, next.created, next.updated = id, p.created, e.now().UTC()
		e.replPolicies[id] = next
		w.WriteHeader(http.StatusOK)
	case http.MethodDelete:
		for _, x := range e.replExecs {
			if x.policyID == id && x.status == "Running" {
				writeErr(w, http.StatusPreconditionFailed, "PRECONDITION", fmt.Sprintf("the replication policy %d has running executions", id))
				return
			}
		}
		delete(e.replPolicies, id)
		w.WriteHeader(http.StatusOK)
	default:
		methodNotAllowed(w)
	}
}

func (e *Emulator) sortedReplPolicies() []*replicationPolicy {
	out := make([]*replicationPolicy, 0, len(e.replPolicies))
	for _, p := range e.replPolicies {
		out = append(out, p)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	return out
}

// localRegistry is how Harbor answers the local side of a policy.
func (e *Emulator) localRegistry() map[string]any {
	return map[string]any{"id": 0, "name": "Local", "type": "harbor", "url": e.external, "insecure": true, "status": "healthy",
		"creation_time": ts(time.Time{}), "update_time": ts(time.Time{})}
}

func (e *Emulator) replPolicyJSON(p *replicationPolicy) map[string]any {
	side := func(ref *struct {
		ID int64 `json:"id"`
	}) map[string]any {
		if ref == nil || ref.ID == 0 {
			return e.localRegistry()
		}
		if ep := e.endpoints[ref.ID]; ep != nil {
			return endpointJSON(ep)
		}
		return map[string]any{"id": ref.ID}
	}
	count := -1
	if p.DestNamespaceReplaceCount != nil {
		count = *p.DestNamespaceReplaceCount
	}
	trigger := map[string]any{"type": "manual", "trigger_settings": map[string]any{"cron": ""}}
	if p.Trigger != nil {
		cron := ""
		if p.Trigger.TriggerSettings != nil {
			cron = p.Trigger.TriggerSettings.Cron
		}
		trigger = map[string]any{"type": p.Trigger.Type, "trigger_settings": map[string]any{"cron": cron}}
	}
	filters := []map[string]any{}
	for _, f := range p.Filters {
		item := map[string]any{"type": f.Type, "value": f.Value}
		if f.Decoration != "" {
			item["decoration"] = f.Decoration
		}
		filters = append(filters, item)
	}
	speed := 0
	if p.Speed != nil && *p.Speed > 0 {
		speed = *p.Speed
	}
	return map[string]any{"id": p.ID, "name": p.Name, "description": p.Description, "src_registry": side(p.SrcRegistry),
		"dest_registry": side(p.DestRegistry), "dest_namespace": p.DestNamespace, "dest_namespace_replace_count": count,
		"trigger": trigger, "filters": filters, "replicate_deletion": p.Deletion, "deletion": p.Deletion, "override": p.Override,
		"enabled": p.Enabled, "speed": speed, "copy_by_chunk": p.CopyByChunk != nil && *p.CopyByChunk,
		"single_active_replication": p.SingleActiveReplication != nil && *p.SingleActiveReplication,
		"creation_time":             ts(p.created), "update_time": ts(p.updated)}
}

// decodeReplicationPolicy reads a ReplicationPolicy and validates it as Harbor's controller and
// policy model do; self is the policy's own id on update (its name may stay).
func (e *Emulator) decodeReplicationPolicy(w http.ResponseWriter, r *http.Request, self int64) (*replicationPolicy, bool) {
	bad := func(format string, a ...any) (*replicationPolicy, bool) {
		writeErr(w, http.StatusBadRequest, "BAD_REQUEST", fmt.Sprintf(format, a...))
		return nil, false
	}
	body, err := io.ReadAll(io.LimitReader(r.Body, 1<<20))
	if err != nil {
		return bad("reading the policy: %v", err)
	}
	var p replicationPolicy
	if err := json.Unmarshal(body, &p); err != nil {
		return bad("parsing the policy: %v", err)
	}
	if p.Name == "" {
		return bad("name is required")
	}
	for _, other := range e.replPolicies {
		if other.Name == p.Name && other.ID != self {
			writeErr(w, http.StatusConflict, "CONFLICT", fmt.Sprintf("policy %s already exists", p.Name))
			return nil, false
		}
	}
	remoteSide := func(ref *struct {
		ID int64 `json:"id"`
	}) bool {
		return ref != nil && ref.ID != 0
	}
	src, dst := remoteSide(p.SrcRegistry), remoteSide(p.DestRegistry)
	if src == dst {
		return bad("either src_registry or dest_registry should be empty and the other one shouldn't be empty")
	}
	for _, ref := range []*struct {
		ID int64 `json:"id"`
	}{p.SrcRegistry, p.DestRegistry} {
		if remoteSide(ref) && e.endpoints[ref.ID] == nil {
			return bad("registry %d not found", ref.ID)
		}
	}
	if p.DestNamespace != "" && !namespacePath.MatchString(p.DestNamespace) {
		return bad("invalid destination namespace %q", p.DestNamespace)
	}
	if p.DestNamespaceReplaceCount != nil && *p.DestNamespaceReplaceCount < -1 {
		return bad("invalid dest_namespace_replace_count %d", *p.DestNamespaceReplaceCount)
	}
	for i, f := range p.Filters {
		switch f.Type {
		case "name", "resource":
			if f.Decoration != "" {
				return bad("filter %d: decoration is not allowed for the %s filter", i, f.Type)
			}
			v, ok := f.Value.(string)
			if !ok {
				return bad("filter %d: the value of the %s filter must be a string", i, f.Type)
			}
			if f.Type == "resource" && v != "image" && v != "artifact" {
				return bad("filter %d: invalid resource type %q", i, v)
			}
		case "tag":
			if _, ok := f.Value.(string); !ok {
				return bad("filter %d: the value of the tag filter must be a string", i)
			}
		case "label":
			if _, ok := f.Value.([]any); !ok {
				return bad("filter %d: the value of the label filter must be an array of strings", i)
			}
		default:
			return bad("filter %d: invalid filter type %q", i, f.Type)
		}
		if f.Decoration != "" && f.Decoration != "matches" && f.Decoration != "excludes" {
			return bad("filter %d: invalid decoration %q", i, f.Decoration)
		}
	}
	if t := p.Trigger; t != nil {
		switch t.Type {
		case "", "manual", "event_based":
		case "scheduled":
			cron := ""
			if t.TriggerSettings != nil {
				cron = t.TriggerSettings.Cron
			}
			if err := validateCron(cron, true); err != nil {
				return bad("invalid cron string for scheduled trigger: %q: %v", cron, err)
			}
		default:
			return bad("invalid trigger type %q", t.Type)
		}
		if t.Type == "event_based" && p.SingleActiveReplication != nil && *p.SingleActiveReplication {
			return bad("single active replication is not allowed for event_based triggers")
		}
	}
	return &p, true
}

func (e *Emulator) serveReplicationExecutions(w http.ResponseWriter, r *http.Request, rest []string) {
	m := r.Method
	switch {
	case len(rest) == 0 && m == http.MethodPost:
		var body struct {
			PolicyID int64 `json:"policy_id"`
		}
		if err := json.NewDecoder(io.LimitReader(r.Body, 1<<16)).Decode(&body); err != nil {
			writeErr(w, http.StatusBadRequest, "BAD_REQUEST", "parsing the execution: "+err.Error())
			return
		}
		p := e.replPolicies[body.PolicyID]
		switch {
		case p == nil:
			writeErr(w, http.StatusNotFound, "NOT_FOUND", fmt.Sprintf("the replication policy %d not found", body.PolicyID))
			return
		case !p.Enabled:
			writeErr(w, http.StatusPreconditionFailed, "PRECONDITION", fmt.Sprintf("the policy %d is disabled", p.ID))
			return
		}
		x := e.startReplication(p)
		w.Header().Set("Location", apiBase+"/replication/executions/"+itoa(x.id))
		w.WriteHeader(http.StatusCreated)
		return
	case len(rest) == 0 && m == http.MethodGet:
		var list []*replicationExecution
		pid := r.URL.Query().Get("policy_id")
		for _, x := range e.replExecs {
			if pid == "" || itoa(x.policyID) == pid {
				list = append(list, x)
			}
		}
		sort.Slice(list, func(i, j int) bool { return list[i].id > list[j].id })
		from, to, ok := e.page(w, r, len(list))
		if !ok {
			return
		}
		out := []map[string]any{}
		for _, x := range list[from:to] {
			out = append(out, replExecutionJSON(x))
		}
		writeJSON(w, http.StatusOK, out)
		return
	}
	id, err := strconv.ParseInt(rest[0], 10, 64)
	if err != nil {
		writeErr(w, http.StatusBadRequest, "BAD_REQUEST", "id in path must be of type int64: "+strconv.Quote(rest[0]))
		return
	}
	x := e.replExecs[id]
	if x == nil {
		writeErr(w, http.StatusNotFound, "NOT_FOUND", fmt.Sprintf("the replication execution %d not found", id))
		return
	}
	switch {
	case len(rest) == 1 && m == http.MethodGet:
		writeJSON(w, http.StatusOK, replExecutionJSON(x))
	case len(rest) == 2 && rest[1] == "tasks" && m == http.MethodGet:
		from, to, ok := e.page(w, r, len(x.tasks))
		if !ok {
			return
		}
		out := []map[string]any{}
		for _, t := range x.tasks[from:to] {
			item := map[string]any{"id": t.id, "execution_id": x.id, "status": t.status, "job_id": "job-" + itoa(t.id), "operation": "copy",
				"resource_type": "image", "src_resource": t.src, "dst_resource": t.dst, "start_time": ts(t.start)}
			if !t.end.IsZero() {
				item["end_time"] = ts(t.end)
			}
			out = append(out, item)
		}
		writeJSON(w, http.StatusOK, out)
	case len(rest) == 4 && rest[1] == "tasks" && rest[3] == "log" && m == http.MethodGet:
		for _, t := range x.tasks {
			if itoa(t.id) == rest[2] {
				w.Header().Set("Content-Type", "text/plain; charset=utf-8")
				_, _ = io.WriteString(w, t.log.String())
				return
			}
		}
		writeErr(w, http.StatusNotFound, "NOT_FOUND", "the replication task "+rest[2]+" not found")
	default:
		writeErr(w, http.StatusNotFound, "NOT_FOUND", "the emulator does not serve "+m+" "+r.URL.Path)
	}
}

func replExecutionJSON(x *replicationExecution) map[string]any {
	var failed, succeed, running int
	for _, t := range x.tasks {
		switch t.status {
		case "Success":
			succeed++
		case "Error":
			failed++
		default:
			running++
		}
	}
	out := map[string]any{"id": x.id, "policy_id": x.policyID, "status": x.status, "trigger": "manual", "start_time": ts(x.start),
		"status_text": x.statusText, "total": len(x.tasks), "failed": failed, "succeed": succeed, "in_progress": running, "stopped": 0}
	if !x.end.IsZero() {
		out["end_time"] = ts(x.end)
	}
	return out
}

// copyJob is one tag (or accessory digest) to copy: the caller snapshots them under e.mu.
type copyJob struct {
	srcRepo, dstRepo, ref string
}

// startReplication creates the execution and its tasks under e.mu and copies in the background,
// without the lock (the destination may be this emulator).
func (e *Emulator) startReplication(p *replicationPolicy) *replicationExecution {
	now := e.now().UTC()
	x := &replicationExecution{id: e.id(), policyID: p.ID, status: "Running", start: now}
	e.replExecs[x.id] = x
	var ep registryEndpoint
	if p.DestRegistry != nil && e.endpoints[p.DestRegistry.ID] != nil {
		ep = *e.endpoints[p.DestRegistry.ID]
	}
	if p.DestRegistry == nil || p.DestRegistry.ID == 0 {
		x.status, x.statusText, x.end = "Error", "the emulator runs push-based policies only (src_registry local)", now
		return x
	}
	jobs := map[*replicationTask][]copyJob{}
	for _, proj := range e.sortedProjects() {
		for _, rp := range proj.sortedRepos() {
			refs := selectForReplication(p.Filters, rp)
			if len(refs) == 0 {
				continue
			}
			dst := destRepository(rp.name, p.DestNamespace, p.DestNamespaceReplaceCount)
			t := &replicationTask{id: e.id(), status: "Running", src: rp.name, dst: strings.TrimSuffix(ep.URL, "/") + "/" + dst, start: now}
			x.tasks = append(x.tasks, t)
			for _, ref := range refs {
				jobs[t] = append(jobs[t], copyJob{srcRepo: rp.name, dstRepo: dst, ref: ref})
			}
		}
	}
	override := p.Override
	e.scanWG.Add(1)
	go func() {
		defer e.scanWG.Done()
		results := map[*replicationTask]error{}
		for _, t := range x.tasks {
			results[t] = e.copyTask(t, jobs[t], ep, override)
		}
		e.mu.Lock()
		defer e.mu.Unlock()
		end := e.now().UTC()
		x.status = "Success"
		for _, t := range x.tasks {
			t.end = end
			t.status = "Success"
			if err := results[t]; err != nil {
				t.status = "Error"
				fmt.Fprintf(&t.log, "ERROR %v\n", err)
				x.status, x.statusText = "Error", "some tasks failed"
			}
		}
		x.end = end
	}()
	return x
}

// selectForReplication is what the filters select in one repository: tags (as "tag") and the
// digests of the accessories of the artifacts those tags name (Harbor copies accessories along).
func selectForReplication(filters []replicationFilter, rp *repository) []string {
	for _, f := range filters {
		if f.Type != "name" {
			continue
		}
		pattern, _ := f.Value.(string)
		if ok, _ := doublestar.Match(pattern, rp.name); pattern != "" && !ok {
			return nil
		}
	}
	var refs []string
	selected := map[string]bool{}
	digests := make([]string, 0, len(rp.artifacts))
	for d := range rp.artifacts {
		digests = append(digests, d)
	}
	sort.Strings(digests)
	for _, d := range digests {
		a := rp.artifacts[d]
		if a.subject != "" || !labelsPass(filters) {
			continue
		}
		names := make([]string, 0, len(a.tags))
		for n := range a.tags {
			names = append(names, n)
		}
		sort.Strings(names)
		for _, n := range names {
			if tagPasses(filters, n) {
				refs = append(refs, n)
				selected[d] = true
			}
		}
	}
	for _, d := range digests {
		if a := rp.artifacts[d]; a.subject != "" && selected[a.subject] {
			refs = append(refs, d)
		}
	}
	return refs
}

func tagPasses(filters []replicationFilter, tag string) bool {
	for _, f := range filters {
		if f.Type != "tag" {
			continue
		}
		pattern, _ := f.Value.(string)
		if pattern == "" {
			continue
		}
		ok, _ := doublestar.Match(pattern, tag)
		if ok == (f.Decoration == "excludes") {
			return false
		}
	}
	return true
}

// labelsPass: the emulator's artifacts have no labels, so a "matches" label filter selects nothing.
func labelsPass(filters []replicationFilter) bool {
	for _, f := range filters {
		if l, _ := f.Value.([]any); f.Type == "label" && len(l) > 0 && f.Decoration != "excludes" {
			return false
		}
	}
	return true
}

// destRepository is Harbor's destination name: replace count path components of the source's
// name by the namespace (-1, the legacy mode: all but the last).
func destRepository(src, namespace string, count *int) string {
	if namespace == "" {
		return src
	}
	parts := strings.Split(src, "/")
	n := -1
	if count != nil {
		n = *count
	}
	if n < 0 || n >= len(parts) {
		n = len(parts) - 1
	}
	return namespace + "/" + strings.Join(parts[n:], "/")
}

// copyTask copies one repository's selection, logging each reference.
func (e *Emulator) copyTask(t *replicationTask, jobs []copyJob, ep registryEndpoint, override bool) error {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	var logs bytes.Buffer
	defer func() {
		e.mu.Lock()
		t.log.Write(logs.Bytes())
		e.mu.Unlock()
	}()
	dstHost := strings.TrimPrefix(strings.TrimPrefix(ep.URL, "https://"), "http://")
	var dstOpts []name.Option
	if strings.HasPrefix(ep.URL, "http://") {
		dstOpts = append(dstOpts, name.Insecure)
	}
	var auth authn.Authenticator = authn.Anonymous
	if c := ep.Credential; c != nil && c.AccessKey != "" {
		auth = &authn.Basic{Username: c.AccessKey, Password: c.AccessSecret}
	}
	tr := http.DefaultTransport.(*http.Transport).Clone()
	if ep.Insecure {
		tr.TLSClientConfig = &tls.Config{InsecureSkipVerify: true} //nolint:gosec // the endpoint's own "insecure" setting
	}
	dstRemote := []remote.Option{remote.WithContext(ctx), remote.WithAuth(auth), remote.WithTransport(tr)}
	srcRemote := []remote.Option{remote.WithContext(ctx), remote.WithTransport(handlerTransport{e.registry})}
	if ep.Type == "harbor" && len(jobs) > 0 {
		if err := ensureHarborProject(ctx, tr, ep, strings.SplitN(jobs[0].dstRepo, "/", 2)[0]); err != nil {
			return err
		}
	}
	for _, j := range jobs {
		src, err := name.ParseReference(srcRef("harbor.local/"+j.srcRepo, j.ref), name.Insecure)
		if err != nil {
			return err
		}
		dst, err := name.ParseReference(srcRef(dstHost+"/"+j.dstRepo, j.ref), dstOpts...)
		if err != nil {
			return err
		}
		desc, err := remote.Get(src, srcRemote...)
		if err != nil {
			return fmt.Errorf("reading %s: %w", src, err)
		}
		if !override {
			if _, err := remote.Head(dst, dstRemote...); err == nil {
				fmt.Fprintf(&logs, "SKIP %s exists and the policy does not override\n", dst)
				continue
			}
		}
		if desc.MediaType.IsIndex() {
			idx, err := desc.ImageIndex()
			if err == nil {
				err = remote.WriteIndex(dst, idx, dstRemote...)
			}
			if err != nil {
				return fmt.Errorf("copying %s: %w", dst, err)
			}
		} else {
			img, err := desc.Image()
			if err == nil {
				err = remote.Write(dst, img, dstRemote...)
			}
			if err != nil {
				return fmt.Errorf("copying %s: %w", dst, err)
			}
		}
		fmt.Fprintf(&logs, "COPY %s %s -> %s\n", desc.Digest, j.srcRepo, dst)
	}
	return nil
}

func srcRef(repo, ref string) string {
	if strings.HasPrefix(ref, "sha256:") {
		return repo + "@" + ref
	}
	return repo + ":" + ref
}

// ensureHarborProject creates the destination project as Harbor's harbor adapter does before a
// push (PrepareForPush); one that exists is fine.
func ensureHarborProject(ctx context.Context, tr http.RoundTripper, ep registryEndpoint, projectName string) error {
	body, _ := json.Marshal(map[string]any{"project_name": projectName, "metadata": map[string]string{"public": "false"}})
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, strings.TrimSuffix(ep.URL, "/")+apiBase+"/projects", bytes.NewReader(body))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	if c := ep.Credential; c != nil {
		req.SetBasicAuth(c.AccessKey, c.AccessSecret)
	}
	resp, err := (&http.Client{Transport: tr}).Do(req)
	if err != nil {
		return fmt.Errorf("creating project %s on %s: %w", projectName, ep.Name, err)
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 1<<16))
	if resp.StatusCode != http.StatusCreated && resp.StatusCode != http.StatusConflict {
		return fmt.Errorf("creating project %s on %s: HTTP %d", projectName, ep.Name, resp.StatusCode)
	}
	return nil
}

// handlerTransport reads the emulator's own data plane without its auth (as Harbor's job service
// reads the local registry), so replication records no pulls.
type handlerTransport struct{ h http.Handler }

func (t handlerTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	rec := httptest.NewRecorder()
	r2 := r.Clone(r.Context())
	r2.RequestURI = r.URL.RequestURI()
	t.h.ServeHTTP(rec, r2)
	resp := rec.Result()
	resp.Request = r
	return resp, nil
}

// ReplicationPolicies are the stored replication policies as Harbor answers them, for tests.
func (e *Emulator) ReplicationPolicies() []map[string]any {
	e.mu.Lock()
	defer e.mu.Unlock()
	var out []map[string]any
	for _, p := range e.sortedReplPolicies() {
		out = append(out, e.replPolicyJSON(p))
	}
	return out
}
