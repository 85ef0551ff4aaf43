package harbortest

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"time"
)

const apiBase = "/api/v2.0"

// serve routes a request: the API, the token service, the data plane.
func (e *Emulator) serve(w http.ResponseWriter, r *http.Request) {
	e.mu.Lock()
	e.requests = append(e.requests, r.Method+" "+r.URL.EscapedPath())
	e.mu.Unlock()
	w.Header().Set("X-Request-Id", requestID(r))
	switch {
	case r.URL.Path == "/service/token":
		e.serveToken(w, r)
	case r.URL.Path == "/v2" || strings.HasPrefix(r.URL.Path, "/v2/"):
		e.serveRegistry(w, r)
	case strings.HasPrefix(r.URL.Path, apiBase+"/"):
		e.serveAPI(w, r)
	default:
		writeErr(w, http.StatusNotFound, "NOT_FOUND", "no such path: "+r.URL.Path)
	}
}

func requestID(r *http.Request) string {
	if id := r.Header.Get("X-Request-Id"); id != "" {
		return id
	}
	return randomSecret()[:12]
}

// writeErr answers with Harbor's error JSON.
func writeErr(w http.ResponseWriter, status int, code, msg string) {
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(map[string]any{"errors": []map[string]string{{"code": code, "message": msg}}})
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		writeErr(w, http.StatusInternalServerError, "UNKNOWN", err.Error())
		return
	}
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.Header().Set("Content-Length", strconv.Itoa(len(b)))
	w.WriteHeader(status)
	_, _ = w.Write(b)
}

// ts is Harbor's time format (go-openapi strfmt.DateTime).
func ts(t time.Time) string { return t.UTC().Format("2006-01-02T15:04:05.000Z") }

func itoa(n int64) string { return strconv.FormatInt(n, 10) }

// authenticate reads basic credentials: the admin, an enabled robot, or nobody (anonymous). Wrong
// credentials are ok == false (401).
func (e *Emulator) authenticate(r *http.Request) (p principal, ok bool) {
	h := r.Header.Get("Authorization")
	if h == "" {
		return principal{anonymous: true}, true
	}
	user, pw, basic := r.BasicAuth()
	if !basic {
		return principal{}, false
	}
	if user == Admin {
		return principal{name: Admin, admin: true}, pw == e.adminPW
	}
	if rb, found := e.robots[user]; found && !rb.Disabled && rb.secret == pw && (rb.expiresAt < 0 || e.now().Unix() < rb.expiresAt) {
		return principal{name: user, robot: rb}, true
	}
	return principal{}, false
}

// denied answers 401 to the anonymous and 403 to everyone else.
func denied(w http.ResponseWriter, who principal, what string) {
	if who.anonymous {
		writeErr(w, http.StatusUnauthorized, "UNAUTHORIZED", "unauthorized")
		return
	}
	writeErr(w, http.StatusForbidden, "FORBIDDEN", who.name+" has no permission to "+what)
}

// segments splits the API path (already decoded once, as Harbor's router sees it) after /api/v2.0.
func segments(r *http.Request) []string {
	rest := strings.TrimPrefix(r.URL.Path, apiBase+"/")
	return strings.Split(rest, "/")
}

func (e *Emulator) serveAPI(w http.ResponseWriter, r *http.Request) {
	seg := segments(r)
	switch {
	case len(seg) == 1 && seg[0] == "ping" && r.Method == http.MethodGet:
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		_, _ = io.WriteString(w, "Pong")
		return
	case len(seg) == 1 && seg[0] == "health" && r.Method == http.MethodGet:
		e.getHealth(w)
		return
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	who, ok := e.authenticate(r)
	if !ok {
		writeErr(w, http.StatusUnauthorized, "UNAUTHORIZED", "invalid credentials")
		return
	}
	m := r.Method
	switch {
	case len(seg) == 1 && seg[0] == "systeminfo" && m == http.MethodGet:
		e.getSystemInfo(w, who)
	case len(seg) == 2 && seg[0] == "system" && seg[1] == "CVEAllowlist" && m == http.MethodGet:
		if who.anonymous {
			denied(w, who, "read the system CVE allowlist")
			return
		}
		writeJSON(w, http.StatusOK, map[string]any{"id": 1, "project_id": 0, "items": []any{}})
	case len(seg) == 1 && seg[0] == "projects":
		switch m {
		case http.MethodGet:
			e.listProjects(w, r, who)
		case http.MethodHead:
			e.headProject(w, r)
		case http.MethodPost:
			e.createProjectAPI(w, r, who)
		default:
			methodNotAllowed(w)
		}
	case len(seg) >= 2 && seg[0] == "projects":
		e.serveProject(w, r, who, seg[1:])
	case seg[0] == "robots":
		e.serveRobots(w, r, who, seg[1:])
	case seg[0] == "retentions":
		e.serveRetentions(w, r, who, seg[1:])
	case seg[0] == "registries":
		e.serveRegistries(w, r, who, seg[1:])
	case seg[0] == "replication":
		e.serveReplication(w, r, who, seg[1:])
	case len(seg) == 1 && seg[0] == "scanners" && m == http.MethodGet:
		e.listScanners(w, who)
	default:
		writeErr(w, http.StatusNotFound, "NOT_FOUND", "the emulator does not serve "+m+" "+r.URL.Path)
	}
}

func methodNotAllowed(w http.ResponseWriter) {
	writeErr(w, http.StatusMethodNotAllowed, "METHOD_NOT_ALLOWED", "method not allowed")
}

func (e *Emulator) getHealth(w http.ResponseWriter) {
	e.mu.Lock()
	defer e.mu.Unlock()
	status := "healthy"
	var comps []map[string]string
	for _, c := range components {
		entry := map[string]string{"name": c, "status": "healthy"}
		if msg := e.health[c]; msg != "" {
			entry["status"], entry["error"] = "unhealthy", msg
			status = "unhealthy"
		}
		comps = append(comps, entry)
	}
	writeJSON(w, http.StatusOK, map[string]any{"status": status, "components": comps})
}

func (e *Emulator) getSystemInfo(w http.ResponseWriter, who principal) {
	info := map[string]any{"auth_mode": "db_auth", "primary_auth_mode": false, "self_registration": false,
		"project_creation_restriction": "everyone", "has_ca_root": false, "read_only": false, "notification_enable": true,
		"banner_message": "", "current_time": ts(e.now())}
	if !who.anonymous {
		u, _ := url.Parse(e.external)
		info["harbor_version"] = Version
		info["external_url"] = e.external
		if u != nil {
			info["registry_url"] = u.Host
		}
		info["registry_storage_provider_name"] = "filesystem"
	}
	writeJSON(w, http.StatusOK, info)
}

// page applies page and page_size (default 10, at most 100, as Harbor's spec says) and writes
// X-Total-Count and Link. ok is false when it answered an error.
func (e *Emulator) page(w http.ResponseWriter, r *http.Request, total int) (from, to int, ok bool) {
	q := r.URL.Query()
	pageNum, size := int64(1), int64(10)
	if v := q.Get("page"); v != "" {
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil {
			writeErr(w, http.StatusBadRequest, "BAD_REQUEST", "page in query must be of type int64: "+strconv.Quote(v))
			return 0, 0, false
		}
		pageNum = max(n, 1)
	}
	if v := q.Get("page_size"); v != "" {
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil {
			writeErr(w, http.StatusBadRequest, "BAD_REQUEST", "page_size in query must be of type int64: "+strconv.Quote(v))
			return 0, 0, false
		}
		if n > 100 {
			writeErr(w, http.StatusUnprocessableEntity, "UNPROCESSABLE_ENTITY", "page_size in query should be less than or equal to 100")
			return 0, 0, false
		}
		if n > 0 {
			size = n
		}
	}
	w.Header().Set("X-Total-Count", strconv.Itoa(total))
	var links []string
	link := func(p int64, rel string) string {
		q2 := r.URL.Query()
		q2.Set("page", itoa(p))
		q2.Set("page_size", itoa(size))
		return fmt.Sprintf(`<%s?%s>; rel="%s"`, r.URL.EscapedPath(), q2.Encode(), rel)
	}
	if pageNum > 1 && (pageNum-1)*size < int64(total) {
		links = append(links, link(pageNum-1, "prev"))
	}
	if pageNum*size < int64(total) {
		links = append(links, link(pageNum+1, "next"))
	}
	if len(links) > 0 {
		w.Header().Set("Link", strings.Join(links, " , "))
	}
	from = int(min((pageNum-1)*size, int64(total)))
	to = int(min(pageNum*size, int64(total)))
	return from, to, true
}

// projectName is Harbor's project name rule.
var projectName = regexp.MustCompile(`^[a-z0-9]+(?:[._-][a-z0-9]+)*$`)

var boolMetadata = map[string]bool{"public": true, "auto_scan": true, "prevent_vul": true, "reuse_sys_cve_allowlist": true,
	"enable_content_trust": true, "enable_content_trust_cosign": true, "auto_sbom_generation": true}

var severities = map[string]bool{"none": true, "low": true, "medium": true, "high": true, "critical": true}

type projectReq struct {
	ProjectName  *string            `json:"project_name"`
	Public       *bool              `json:"public"`
	Metadata     map[string]*string `json:"metadata"`
	CVEAllowlist *struct {
		Items []struct {
			CVEID string `json:"cve_id"`
		} `json:"items"`
		ExpiresAt *int64 `json:"expires_at"`
	} `json:"cve_allowlist"`
	StorageLimit *int64 `json:"storage_limit"`
	RegistryID   *int64 `json:"registry_id"`
}

// decodeProjectReq reads and checks a ProjectReq as Harbor's handler does.
func decodeProjectReq(w http.ResponseWriter, r *http.Request) (*projectReq, map[string]string, *allowlist, bool) {
	var req projectReq
	body, err := io.ReadAll(io.LimitReader(r.Body, 1<<20))
	if err == nil {
		err = json.Unmarshal(body, &req)
	}
	if err != nil {
		writeErr(w, http.StatusBadRequest, "BAD_REQUEST", "parsing project: "+err.Error())
		return nil, nil, nil, false
	}
	md := map[string]string{}
	for k, v := range req.Metadata {
		if v == nil {
			continue
		}
		switch {
		case boolMetadata[k] && *v != "true" && *v != "false":
			writeErr(w, http.StatusBadRequest, "BAD_REQUEST", fmt.Sprintf("invalid value of metadata %s: %q, must be true or false", k, *v))
			return nil, nil, nil, false
		case k == "severity" && !severities[*v]:
			writeErr(w, http.StatusBadRequest, "BAD_REQUEST", fmt.Sprintf("invalid severity %q", *v))
			return nil, nil, nil, false
		case boolMetadata[k] || k == "severity":
			md[k] = *v
		}
		// Other keys are not part of ProjectMetadata: the server drops them.
	}
	if _, ok := md["public"]; !ok && req.Public != nil {
		md["public"] = strconv.FormatBool(*req.Public) // the deprecated top-level public, only when metadata has none
	}
	var al *allowlist
	if req.CVEAllowlist != nil {
		al = &allowlist{items: []string{}, expiresAt: req.CVEAllowlist.ExpiresAt}
		for _, it := range req.CVEAllowlist.Items {
			if strings.TrimSpace(it.CVEID) == "" {
				writeErr(w, http.StatusBadRequest, "BAD_REQUEST", "cve_allowlist: empty cve_id")
				return nil, nil, nil, false
			}
			al.items = append(al.items, it.CVEID)
		}
	}
	return &req, md, al, true
}

func (e *Emulator) createProjectAPI(w http.ResponseWriter, r *http.Request, who principal) {
	if !who.can(e, "", "project", "create") {
		denied(w, who, "create projects")
		return
	}
	req, md, al, ok := decodeProjectReq(w, r)
	if !ok {
		return
	}
	if req.ProjectName == nil || !projectName.MatchString(*req.ProjectName) || len(*req.ProjectName) > 255 {
		name := ""
		if req.ProjectName != nil {
			name = *req.ProjectName
		}
		writeErr(w, http.StatusBadRequest, "BAD_REQUEST", fmt.Sprintf("project name %q is not valid: lower case letters, digits and ._- between them, at most 255", name))
		return
	}
	if _, exists := e.projects[*req.ProjectName]; exists {
		writeErr(w, http.StatusConflict, "CONFLICT", fmt.Sprintf("The project named %s already exists", *req.ProjectName))
		return
	}
	p := e.createProject(*req.ProjectName, md, al)
	loc := apiBase + "/projects/" + itoa(p.id)
	if r.Header.Get("X-Resource-Name-In-Location") == "true" {
		loc = apiBase + "/projects/" + p.name
	}
	w.Header().Set("Location", loc)
	w.WriteHeader(http.StatusCreated)
}

func (e *Emulator) headProject(w http.ResponseWriter, r *http.Request) {
	name := r.URL.Query().Get("project_name")
	if name == "" {
		writeErr(w, http.StatusBadRequest, "BAD_REQUEST", "project_name is required")
		return
	}
	if e.projects[name] == nil {
		w.WriteHeader(http.StatusNotFound)
		return
	}
	w.WriteHeader(http.StatusOK)
}

func (e *Emulator) listProjects(w http.ResponseWriter, r *http.Request, who principal) {
	q := r.URL.Query()
	if q.Get("q") != "" {
		writeErr(w, http.StatusBadRequest, "BAD_REQUEST", "the emulator does not support q on projects")
		return
	}
	var list []map[string]any
	for _, p := range e.sortedProjects() {
		if !who.member(e, p) {
			continue
		}
		if n := q.Get("name"); n != "" && !strings.Contains(p.name, n) {
			continue
		}
		if pub := q.Get("public"); pub != "" && p.metadata["public"] != pub {
			continue
		}
		list = append(list, e.projectJSON(p, who))
	}
	from, to, ok := e.page(w, r, len(list))
	if !ok {
		return
	}
	writeJSON(w, http.StatusOK, append([]map[string]any{}, list[from:to]...))
}

func (e *Emulator) projectJSON(p *project, who principal) map[string]any {
	items := []map[string]string{}
	for _, c := range p.allowlist.items {
		items = append(items, map[string]string{"cve_id": c})
	}
	al := map[string]any{"id": p.allowlist.id, "project_id": p.id, "items": items,
		"creation_time": ts(p.allowlist.created), "update_time": ts(p.allowlist.updated)}
	if p.allowlist.expiresAt != nil {
		al["expires_at"] = *p.allowlist.expiresAt
	}
	md := map[string]string{}
	for k, v := range p.metadata {
		md[k] = v
	}
	out := map[string]any{"project_id": p.id, "owner_id": 1, "owner_name": Admin, "name": p.name,
		"creation_time": ts(p.created), "update_time": ts(p.updated), "deleted": false, "togglable": true,
		"repo_count": len(p.repos), "metadata": md, "cve_allowlist": al}
	if !who.anonymous {
		out["current_user_role_ids"] = []int{1}
	}
	return out
}

// serveProject serves /projects/{project_name_or_id}/...
func (e *Emulator) serveProject(w http.ResponseWriter, r *http.Request, who principal, seg []string) {
	isName := r.Header.Get("X-Is-Resource-Name") == "true"
	if len(seg) >= 2 && seg[1] == "repositories" {
		isName = true // these paths take project_name
	}
	p := e.projectByNameOrID(seg[0], isName)
	if p == nil {
		writeErr(w, http.StatusNotFound, "NOT_FOUND", "project "+seg[0]+" not found")
		return
	}
	m := r.Method
	switch {
	case len(seg) == 1:
		switch m {
		case http.MethodGet:
			if !who.can(e, p.name, "project", "read") && !who.member(e, p) {
				denied(w, who, "read project "+p.name)
				return
			}
			writeJSON(w, http.StatusOK, e.projectJSON(p, who))
		case http.MethodPut:
			e.updateProject(w, r, who, p)
		case http.MethodDelete:
			if !who.can(e, p.name, "project", "delete") {
				denied(w, who, "delete project "+p.name)
				return
			}
			if len(p.repos) > 0 {
				writeErr(w, http.StatusPreconditionFailed, "PRECONDITION", fmt.Sprintf("the project %s contains %d repositories, cannot be deleted", p.name, len(p.repos)))
				return
			}
			delete(e.projects, p.name)
			w.WriteHeader(http.StatusOK)
		default:
			methodNotAllowed(w)
		}
	case len(seg) == 2 && seg[1] == "repositories" && m == http.MethodGet:
		e.listRepositories(w, r, who, p)
	case len(seg) >= 3 && seg[1] == "repositories":
		repoName, err := url.PathUnescape(seg[2]) // the second decoding: a%252Fb -> a%2Fb -> a/b
		if err != nil {
			writeErr(w, http.StatusBadRequest, "BAD_REQUEST", "repository name: "+err.Error())
			return
		}
		e.serveRepository(w, r, who, p, p.name+"/"+repoName, seg[3:])
	default:
		writeErr(w, http.StatusNotFound, "NOT_FOUND", "the emulator does not serve "+m+" "+r.URL.Path)
	}
}

func (e *Emulator) updateProject(w http.ResponseWriter, r *http.Request, who principal, p *project) {
	if !who.can(e, p.name, "project", "update") {
		denied(w, who, "update project "+p.name)
		return
	}
	_, md, al, ok := decodeProjectReq(w, r)
	if !ok {
		return
	}
	now := e.now().UTC()
	for k, v := range md {
		p.metadata[k] = v
	}
	if al != nil {
		p.allowlist.items, p.allowlist.expiresAt, p.allowlist.updated = al.items, al.expiresAt, now
	}
	p.updated = now
	w.WriteHeader(http.StatusOK)
}

func (e *Emulator) repositoryJSON(rp *repository) map[string]any {
	return map[string]any{"id": rp.id, "project_id": rp.projectID, "name": rp.name, "description": "",
		"artifact_count": len(rp.listed()), "pull_count": rp.pullCount, "creation_time": ts(rp.created), "update_time": ts(rp.updated)}
}

func (e *Emulator) listRepositories(w http.ResponseWriter, r *http.Request, who principal, p *project) {
	if !who.can(e, p.name, "repository", "list") {
		denied(w, who, "list repositories of "+p.name)
		return
	}
	if r.URL.Query().Get("q") != "" {
		writeErr(w, http.StatusBadRequest, "BAD_REQUEST", "the emulator does not support q on repositories")
		return
	}
	repos := p.sortedRepos()
	from, to, ok := e.page(w, r, len(repos))
	if !ok {
		return
	}
	out := []map[string]any{}
	for _, rp := range repos[from:to] {
		out = append(out, e.repositoryJSON(rp))
	}
	writeJSON(w, http.StatusOK, out)
}

// serveRepository serves /projects/{p}/repositories/{r}/...
func (e *Emulator) serveRepository(w http.ResponseWriter, r *http.Request, who principal, p *project, full string, seg []string) {
	rp := p.repos[full]
	if rp == nil {
		writeErr(w, http.StatusNotFound, "NOT_FOUND", "repository "+full+" not found")
		return
	}
	m := r.Method
	switch {
	case len(seg) == 0 && m == http.MethodGet:
		if !who.can(e, p.name, "repository", "read") {
			denied(w, who, "read repository "+full)
			return
		}
		writeJSON(w, http.StatusOK, e.repositoryJSON(rp))
	case len(seg) == 0 && m == http.MethodDelete:
		if !who.can(e, p.name, "repository", "delete") {
			denied(w, who, "delete repository "+full)
			return
		}
		for d := range rp.artifacts {
			e.registryDelete(r, full, d)
		}
		delete(p.repos, full)
		w.WriteHeader(http.StatusOK)
	case len(seg) == 1 && seg[0] == "artifacts" && m == http.MethodGet:
		e.listArtifacts(w, r, who, p, rp)
	case len(seg) == 2 && seg[0] == "artifacts":
		e.serveArtifact(w, r, who, p, rp, seg[1])
	case len(seg) == 4 && seg[0] == "artifacts" && seg[2] == "tags" && m == http.MethodDelete:
		e.deleteTag(w, r, who, p, rp, seg[1], seg[3])
	case len(seg) == 3 && seg[0] == "artifacts" && seg[2] == "scan" && m == http.MethodPost,
		len(seg) == 4 && seg[0] == "artifacts" && seg[2] == "additions" && seg[3] == "vulnerabilities" && m == http.MethodGet:
		a := rp.artifactByRef(seg[1])
		if a == nil {
			writeErr(w, http.StatusNotFound, "NOT_FOUND", fmt.Sprintf("artifact %s@%s not found", rp.name, seg[1]))
			return
		}
		if seg[2] == "scan" {
			e.startScan(w, r, who, p, rp, a)
		} else {
			e.vulnerabilities(w, who, p, rp, a)
		}
	default:
		writeErr(w, http.StatusNotFound, "NOT_FOUND", "the emulator does not serve "+m+" "+r.URL.Path)
	}
}

// boolParam reads a boolean query parameter with its default; ok false answered 400.
func boolParam(w http.ResponseWriter, r *http.Request, name string, def bool) (v, ok bool) {
	s := r.URL.Query().Get(name)
	if s == "" {
		return def, true
	}
	b, err := strconv.ParseBool(s)
	if err != nil {
		writeErr(w, http.StatusBadRequest, "BAD_REQUEST", name+" in query must be of type boolean: "+strconv.Quote(s))
		return false, false
	}
	return b, true
}

func (e *Emulator) listArtifacts(w http.ResponseWriter, r *http.Request, who principal, p *project, rp *repository) {
	if !who.can(e, p.name, "artifact", "list") {
		denied(w, who, "list artifacts of "+rp.name)
		return
	}
	if r.URL.Query().Get("q") != "" {
		writeErr(w, http.StatusBadRequest, "BAD_REQUEST", "the emulator does not support q on artifacts")
		return
	}
	withTag, ok1 := boolParam(w, r, "with_tag", true)
	if !ok1 {
		return
	}
	withAcc, ok2 := boolParam(w, r, "with_accessory", false)
	if !ok2 {
		return
	}
	list := rp.listed()
	from, to, ok := e.page(w, r, len(list))
	if !ok {
		return
	}
	out := []map[string]any{}
	for _, a := range list[from:to] {
		out = append(out, e.artifactJSON(p, rp, a, withTag, withAcc))
	}
	writeJSON(w, http.StatusOK, out)
}

func (e *Emulator) artifactJSON(p *project, rp *repository, a *artifact, withTag, withAcc bool) map[string]any {
	typ := "IMAGE"
	if a.accessory != "" {
		typ = "SIGNATURE"
	}
	out := map[string]any{"id": a.id, "type": typ, "media_type": a.mediaType, "manifest_media_type": a.manifestType,
		"project_id": p.id, "repository_id": rp.id, "repository_name": rp.name, "digest": a.digest, "size": a.size,
		"push_time": ts(a.pushTime), "pull_time": ts(a.pullTime), "icon": "sha256:0048162a053eef4d4ce3fe7518615bef084403614f8bca43b40ae2e762e11e06",
		"addition_links": map[string]any{"build_history": map[string]any{"href": apiBase + "/projects/" + p.name + "/repositories/" +
			url.PathEscape(url.PathEscape(strings.TrimPrefix(rp.name, p.name+"/"))) + "/artifacts/" + a.digest + "/additions/build_history", "absolute": false}}}
	if a.artifactType != "" {
		out["artifact_type"] = a.artifactType
	}
	if len(a.annotations) > 0 {
		out["annotations"] = a.annotations
	}
	if len(a.children) > 0 {
		var refs []map[string]any
		for _, c := range a.children {
			ref := map[string]any{"parent_id": a.id, "child_digest": c.digest}
			if ca := rp.artifacts[c.digest]; ca != nil {
				ref["child_id"] = ca.id
			}
			if c.platform != nil {
				ref["platform"] = c.platform
			}
			refs = append(refs, ref)
		}
		out["references"] = refs
	}
	if withTag && len(a.tags) > 0 {
		var tags []map[string]any
		for _, t := range a.sortedTags() {
			tags = append(tags, map[string]any{"id": t.id, "repository_id": rp.id, "artifact_id": a.id, "name": t.name,
				"push_time": ts(t.pushTime), "pull_time": ts(t.pullTime), "immutable": false})
		}
		out["tags"] = tags
	}
	if withAcc {
		accs := []map[string]any{}
		for _, acc := range rp.accessories(a.digest) {
			accs = append(accs, map[string]any{"id": acc.id, "artifact_id": acc.id, "subject_artifact_id": a.id,
				"subject_artifact_digest": a.digest, "subject_artifact_repo": rp.name, "size": acc.size, "digest": acc.digest,
				"type": acc.accessory, "icon": "", "creation_time": ts(acc.pushTime)})
		}
		out["accessories"] = accs
	}
	return out
}

func (e *Emulator) serveArtifact(w http.ResponseWriter, r *http.Request, who principal, p *project, rp *repository, ref string) {
	a := rp.artifactByRef(ref)
	switch r.Method {
	case http.MethodGet:
		if !who.can(e, p.name, "artifact", "read") {
			denied(w, who, "read artifacts of "+rp.name)
			return
		}
		if a == nil {
			writeErr(w, http.StatusNotFound, "NOT_FOUND", fmt.Sprintf("artifact %s@%s not found", rp.name, ref))
			return
		}
		withTag, ok1 := boolParam(w, r, "with_tag", true)
		withAcc, ok2 := boolParam(w, r, "with_accessory", false)
		withScan, ok3 := boolParam(w, r, "with_scan_overview", false)
		if !ok1 || !ok2 || !ok3 {
			return
		}
		out := e.artifactJSON(p, rp, a, withTag, withAcc)
		if so := e.scanOverview(rp, a); withScan && so != nil {
			out["scan_overview"] = so
		}
		writeJSON(w, http.StatusOK, out)
	case http.MethodDelete:
		if !who.can(e, p.name, "artifact", "delete") {
			denied(w, who, "delete artifacts of "+rp.name)
			return
		}
		if a == nil {
			writeErr(w, http.StatusNotFound, "NOT_FOUND", fmt.Sprintf("artifact %s@%s not found", rp.name, ref))
			return
		}
		if rp.referenced(a.digest) {
			// Harbor's controller refuses (ViolateForeignKeyConstraint, 412), though its spec lists no 412 here.
			writeErr(w, http.StatusPreconditionFailed, "VIOLATE_FOREIGN_KEY_CONSTRAINT", "the deleting artifact is referenced by others")
			return
		}
		e.deleteDeeply(r, rp, a)
		w.WriteHeader(http.StatusOK)
	default:
		methodNotAllowed(w)
	}
}

// deleteTag removes one tag of an artifact (Harbor's deleteTag): the artifact stays, untagged
// if it was its last tag; the data plane forgets the tag.
func (e *Emulator) deleteTag(w http.ResponseWriter, r *http.Request, who principal, p *project, rp *repository, ref, name string) {
	if !who.can(e, p.name, "tag", "delete") {
		denied(w, who, "delete tags of "+rp.name)
		return
	}
	a := rp.artifactByRef(ref)
	if a == nil {
		writeErr(w, http.StatusNotFound, "NOT_FOUND", fmt.Sprintf("artifact %s@%s not found", rp.name, ref))
		return
	}
	if _, ok := a.tags[name]; !ok {
		writeErr(w, http.StatusNotFound, "NOT_FOUND", fmt.Sprintf("tag %s of %s@%s not found", name, rp.name, a.digest))
		return
	}
	delete(a.tags, name)
	e.registryDelete(r, rp.name, name) // distribution untags a tag reference
	rp.updated = e.now().UTC()
	w.WriteHeader(http.StatusOK)
}

// deleteDeeply deletes an artifact with its accessories and the untagged children no other index
// references (Harbor's controller/artifact deleteDeeply); the data plane forgets the manifests.
func (e *Emulator) deleteDeeply(r *http.Request, rp *repository, a *artifact) {
	for _, acc := range rp.accessories(a.digest) {
		e.deleteDeeply(r, rp, acc)
	}
	delete(rp.artifacts, a.digest)
	e.registryDelete(r, rp.name, a.digest)
	for _, c := range a.children {
		ca := rp.artifacts[c.digest]
		if ca != nil && len(ca.tags) == 0 && !rp.referenced(c.digest) {
			e.deleteDeeply(r, rp, ca)
		}
	}
	rp.updated = e.now().UTC()
}
