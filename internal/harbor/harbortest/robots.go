package harbortest

import (
	"encoding/json"
	"fmt"
	"net/http"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"time"
)

// robotName is the name rule Harbor applies to new robots (handler/robot.go: lower case letters,
// digits, and ._- between them).
var robotName = regexp.MustCompile(`^[a-z0-9]+(?:[._-][a-z0-9]+)*$`)

// projectRobotAccess is what a project-level robot may be granted (src/common/rbac/const.go
// PoliciesMap["Project"], the parts the emulator knows).
var projectRobotAccess = map[string]bool{
	"repository:list": true, "repository:read": true, "repository:pull": true, "repository:push": true,
	"repository:update": true, "repository:delete": true,
	"artifact:read": true, "artifact:create": true, "artifact:list": true, "artifact:delete": true,
	"tag:create": true, "tag:list": true, "tag:delete": true,
	"scan:create": true, "scan:read": true, "scan:stop": true,
	"artifact-addition:read": true, "accessory:list": true, "metadata:read": true, "metadata:list": true,
	"tag-retention:read": true, "tag-retention:create": true, "tag-retention:update": true, "tag-retention:list": true,
	"tag-retention:delete": true, "tag-retention:operate": true,
	"project:read": true, "project:update": true, "quota:read": true, "log:list": true, "label:read": true,
	"immutable-tag:list": true, "scanner:read": true,
}

// expiry is Harbor's expires_at for a duration in days (-1: never).
func expiry(created time.Time, days int64) int64 {
	if days < 0 {
		return -1
	}
	return created.Add(time.Duration(days) * 24 * time.Hour).Unix()
}

type robotReq struct {
	Name        string `json:"name"`
	Description string `json:"description"`
	Secret      string `json:"secret"`
	Level       string `json:"level"`
	Disable     bool   `json:"disable"`
	Duration    *int64 `json:"duration"`
	Permissions []struct {
		Kind      string `json:"kind"`
		Namespace string `json:"namespace"`
		Access    []struct {
			Resource string `json:"resource"`
			Action   string `json:"action"`
			Effect   string `json:"effect"`
		} `json:"access"`
	} `json:"permissions"`
}

func (e *Emulator) serveRobots(w http.ResponseWriter, r *http.Request, who principal, rest []string) {
	switch {
	case len(rest) == 0 && r.Method == http.MethodPost:
		e.createRobot(w, r, who)
	case len(rest) == 0 && r.Method == http.MethodGet:
		e.listRobots(w, r, who)
	case len(rest) == 1 && (r.Method == http.MethodGet || r.Method == http.MethodDelete):
		id, err := strconv.ParseInt(rest[0], 10, 64)
		if err != nil {
			writeErr(w, http.StatusBadRequest, "BAD_REQUEST", "robot_id in path must be of type int64: "+strconv.Quote(rest[0]))
			return
		}
		rb := e.robotByID(id)
		if rb == nil || !who.canManageRobot(e, rb) {
			if rb != nil && !who.anonymous {
				denied(w, who, "manage robot "+rest[0])
				return
			}
			if who.anonymous {
				denied(w, who, "read robots")
				return
			}
			writeErr(w, http.StatusNotFound, "NOT_FOUND", fmt.Sprintf("robot %d not found", id))
			return
		}
		if r.Method == http.MethodDelete {
			delete(e.robots, rb.Login())
			writeJSON(w, http.StatusOK, map[string]any{})
			return
		}
		writeJSON(w, http.StatusOK, robotJSON(rb))
	default:
		methodNotAllowed(w)
	}
}

func (e *Emulator) robotByID(id int64) *Robot {
	for _, rb := range e.robots {
		if rb.id == id {
			return rb
		}
	}
	return nil
}

// canManageRobot: the admin manages every robot; a robot with robot:create... in a project
// manages that project's robots.
func (p principal) canManageRobot(e *Emulator, rb *Robot) bool {
	if p.admin {
		return true
	}
	if rb.Level == "project" && len(rb.Permissions) == 1 {
		return p.can(e, rb.Permissions[0].Namespace, "robot", "read")
	}
	return false
}

func (e *Emulator) createRobot(w http.ResponseWriter, r *http.Request, who principal) {
	var req robotReq
	dec := json.NewDecoder(r.Body)
	if err := dec.Decode(&req); err != nil {
		writeErr(w, http.StatusBadRequest, "BAD_REQUEST", "parsing robot: "+err.Error())
		return
	}
	bad := func(msg string) { writeErr(w, http.StatusBadRequest, "BAD_REQUEST", msg) }
	if req.Duration == nil || (*req.Duration != -1 && *req.Duration <= 0) {
		bad("bad request error duration input, duration must be -1 or a positive integer")
		return
	}
	if req.Level != "system" && req.Level != "project" {
		bad("bad request error level input: " + strconv.Quote(req.Level))
		return
	}
	if len(req.Permissions) == 0 {
		bad("bad request empty permission")
		return
	}
	if !robotName.MatchString(req.Name) || len(req.Name) > 255 {
		bad(fmt.Sprintf("robot name is not in lower case or contains illegal characters: %q", req.Name))
		return
	}
	rb := &Robot{Name: req.Name, Level: req.Level, Description: req.Description, Disabled: req.Disable, Duration: *req.Duration}
	for _, perm := range req.Permissions {
		if len(perm.Access) == 0 {
			bad("bad request empty access")
			return
		}
		p := Permission{Kind: perm.Kind, Namespace: perm.Namespace}
		for _, a := range perm.Access {
			p.Access = append(p.Access, Access{Resource: a.Resource, Action: a.Action})
		}
		rb.Permissions = append(rb.Permissions, p)
	}
	if req.Level == "project" {
		if len(rb.Permissions) != 1 || rb.Permissions[0].Kind != "project" {
			bad("bad request permission: a project level robot has exactly one permission, of kind project")
			return
		}
		ns := rb.Permissions[0].Namespace
		if e.projects[ns] == nil {
			writeErr(w, http.StatusNotFound, "NOT_FOUND", "project "+ns+" not found")
			return
		}
		for _, a := range rb.Permissions[0].Access {
			if !projectRobotAccess[a.Resource+":"+a.Action] {
				bad("bad request permission: " + a.Resource + ":" + a.Action)
				return
			}
		}
		if !who.can(e, ns, "robot", "create") {
			denied(w, who, "create robots in project "+ns)
			return
		}
	} else if !who.admin {
		denied(w, who, "create system robots")
		return
	}
	if _, exists := e.robots[rb.Login()]; exists {
		writeErr(w, http.StatusConflict, "CONFLICT", "robot account "+rb.Login()+" already exists")
		return
	}
	rb.secret = req.Secret
	if rb.secret == "" {
		rb.secret = randomSecret()
	}
	rb.id, rb.created = e.id(), e.now()
	rb.expiresAt = expiry(rb.created, rb.Duration)
	e.robots[rb.Login()] = rb
	w.Header().Set("Location", apiBase+"/robots/"+itoa(rb.id))
	writeJSON(w, http.StatusCreated, map[string]any{"id": rb.id, "name": rb.Login(), "secret": rb.secret,
		"creation_time": ts(rb.created), "expires_at": rb.expiresAt})
}

// listRobots answers ListRobot: q=Level=project,ProjectID=N (Harbor's portal query) or everything
// the caller may see. Secrets are never listed.
func (e *Emulator) listRobots(w http.ResponseWriter, r *http.Request, who principal) {
	if who.anonymous {
		denied(w, who, "list robots")
		return
	}
	level, projectID := "", int64(0)
	if q := r.URL.Query().Get("q"); q != "" {
		for _, kv := range strings.Split(q, ",") {
			k, v, ok := strings.Cut(kv, "=")
			if !ok {
				writeErr(w, http.StatusBadRequest, "BAD_REQUEST", "invalid query: "+strconv.Quote(kv))
				return
			}
			switch k {
			case "Level":
				level = v
			case "ProjectID":
				n, err := strconv.ParseInt(v, 10, 64)
				if err != nil {
					writeErr(w, http.StatusBadRequest, "BAD_REQUEST", "invalid ProjectID: "+strconv.Quote(v))
					return
				}
				projectID = n
			default:
				writeErr(w, http.StatusBadRequest, "BAD_REQUEST", "unsupported query key "+strconv.Quote(k))
				return
			}
		}
	}
	var all []*Robot
	for _, rb := range e.robots {
		if level != "" && rb.Level != level {
			continue
		}
		if projectID != 0 {
			if rb.Level != "project" || len(rb.Permissions) != 1 {
				continue
			}
			p := e.projects[rb.Permissions[0].Namespace]
			if p == nil || p.id != projectID {
				continue
			}
		}
		if who.canManageRobot(e, rb) {
			all = append(all, rb)
		}
	}
	sort.Slice(all, func(i, j int) bool { return all[i].id < all[j].id })
	from, to, ok := e.page(w, r, len(all))
	if !ok {
		return
	}
	out := []map[string]any{}
	for _, rb := range all[from:to] {
		out = append(out, robotJSON(rb))
	}
	writeJSON(w, http.StatusOK, out)
}

func robotJSON(rb *Robot) map[string]any {
	perms := []map[string]any{}
	for _, p := range rb.Permissions {
		acc := []map[string]string{}
		for _, a := range p.Access {
			acc = append(acc, map[string]string{"resource": a.Resource, "action": a.Action, "effect": "allow"})
		}
		perms = append(perms, map[string]any{"kind": p.Kind, "namespace": p.Namespace, "access": acc})
	}
	return map[string]any{"id": rb.id, "name": rb.Login(), "description": rb.Description, "level": rb.Level,
		"duration": rb.Duration, "editable": true, "disable": rb.Disabled, "expires_at": rb.expiresAt,
		"permissions": perms, "creator_type": "local", "creator_ref": 1,
		"creation_time": ts(rb.created), "update_time": ts(rb.created)}
}

// listScanners answers listScanners: the one Trivy adapter a default Harbor install registers.
// Listing scanners is a system permission (scanner:list).
func (e *Emulator) listScanners(w http.ResponseWriter, who principal) {
	if !who.can(e, "", "scanner", "list") {
		denied(w, who, "list scanners")
		return
	}
	w.Header().Set("X-Total-Count", strconv.Itoa(len(e.scanners)))
	out := []map[string]any{}
	for _, s := range e.scanners {
		out = append(out, map[string]any{"uuid": s.uuid, "name": s.name, "description": "", "url": s.url,
			"disabled": s.disabled, "is_default": s.isDefault, "auth": "", "access_credential": "",
			"skip_certVerify": false, "use_internal_addr": true, "create_time": ts(s.created), "update_time": ts(s.created),
			"adapter": "Trivy", "vendor": "Aqua Security", "version": "v0.50.1"})
	}
	writeJSON(w, http.StatusOK, out)
}

// scanner is a registered scanner adapter.
type scanner struct {
	uuid, name, url     string
	disabled, isDefault bool
	created             time.Time
}

// SetScanners replaces the registered scanners: names, the first the default; none is a Harbor
// without a scanner.
func (e *Emulator) SetScanners(names ...string) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.scanners = nil
	for i, n := range names {
		e.scanners = append(e.scanners, scanner{uuid: fmt.Sprintf("scanner-%d", i+1), name: n,
			url: "http://harbor-scanner-" + strings.ToLower(n) + ":8080", isDefault: i == 0, created: e.now()})
	}
}
