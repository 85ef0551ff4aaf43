package harbor

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"regexp"
	"sort"
	"strings"
	"time"

	"github.com/regctl-dev/regctl/internal/exitcode"
)

// RobotAccess is one permission of a robot: a Harbor rbac resource and action.
type RobotAccess struct {
	Resource string `json:"resource"`
	Action   string `json:"action"`
}

// RobotSpec is a project-level robot account to create.
type RobotSpec struct {
	Project     string
	Name        string // robot$<project>+<name>
	Description string
	Access      []RobotAccess
	// ExpiresDays is the lifetime in days; -1 never expires.
	ExpiresDays int64
}

// RobotCreated is a new robot: its login and the secret Harbor shows this once.
type RobotCreated struct {
	ID        int64      `json:"id"`
	Login     string     `json:"name"`
	Secret    string     `json:"-"` // callers decide where it goes; never encoded by accident
	ExpiresAt *time.Time `json:"expiresAt"`
}

// Robot is a robot account as listed: its permissions, never its secret.
type Robot struct {
	ID          int64         `json:"id"`
	Login       string        `json:"name"`
	Description string        `json:"description,omitempty"`
	Level       string        `json:"level"`
	Project     string        `json:"project,omitempty"` // for project robots: their one permission's namespace
	Duration    int64         `json:"duration"`
	Disabled    bool          `json:"disabled"`
	ExpiresAt   *time.Time    `json:"expiresAt"`
	Access      []RobotAccess `json:"access"`
}

// robotName is Harbor's rule for robot names.
var robotName = regexp.MustCompile(`^[a-z0-9]+(?:[._-][a-z0-9]+)*$`)

// RobotAccessFor is the access of the usual CI robots: --pull reads, --push writes (and reads, as
// docker push needs), --delete removes artifacts (lifecycle apply), --scan starts scans.
func RobotAccessFor(pull, push, del, scan bool) []RobotAccess {
	var out []RobotAccess
	add := func(pairs ...string) {
		for _, p := range pairs {
			res, act, _ := strings.Cut(p, ":")
			a := RobotAccess{Resource: res, Action: act}
			dup := false
			for _, have := range out {
				dup = dup || have == a
			}
			if !dup {
				out = append(out, a)
			}
		}
	}
	if pull || push {
		add("repository:pull", "repository:list", "artifact:read", "artifact:list", "tag:list")
	}
	if push {
		add("repository:push", "tag:create")
	}
	if del {
		add("artifact:list", "artifact:delete", "repository:list")
	}
	if scan {
		add("scan:create", "scan:read", "artifact:read")
	}
	return out
}

// CreateRobot creates a project-level robot (createRobot). Harbor returns its secret only in this
// answer. A robot of that name already there is an error (exit 1): Harbor cannot show its secret
// again, so regctl never pretends it is "unchanged".
func (h *Harbor) CreateRobot(ctx context.Context, s RobotSpec) (*RobotCreated, error) {
	const op = "CreateRobot"
	switch {
	case checkProject(s.Project) != nil:
		return nil, fmt.Errorf("--project: %w", checkProject(s.Project))
	case !robotName.MatchString(s.Name) || len(s.Name) > 255:
		return nil, fmt.Errorf("--name %q: a robot name is lower case letters and digits, with . _ - between them: %w", s.Name, exitcode.ErrUsage)
	case len(s.Access) == 0:
		return nil, fmt.Errorf("a robot needs at least one permission (--pull, --push, --delete, --scan): %w", exitcode.ErrUsage)
	case s.ExpiresDays == 0 || s.ExpiresDays < -1:
		return nil, fmt.Errorf("--expires-days %d: a number of days, or -1 for never: %w", s.ExpiresDays, exitcode.ErrUsage)
	}
	p, err := h.project(ctx, s.Project)
	if err != nil {
		return nil, err
	}
	if p == nil {
		return nil, exitcode.With(exitcode.NotFound, fmt.Errorf("harbor getProject: project %s not found", s.Project))
	}
	access := make([]map[string]string, 0, len(s.Access))
	for _, a := range s.Access {
		access = append(access, map[string]string{"resource": a.Resource, "action": a.Action})
	}
	body := map[string]any{"name": s.Name, "description": s.Description, "level": "project", "disable": false,
		"duration":    s.ExpiresDays,
		"permissions": []map[string]any{{"kind": "project", "namespace": s.Project, "access": access}}}
	a, err := h.api.do(ctx, request{op: op, method: http.MethodPost, path: "/robots", body: body, ok: []int{http.StatusCreated}})
	if statusOf(err) == http.StatusConflict {
		return nil, fmt.Errorf("robot %s of project %s exists, and Harbor shows a secret only when it creates one: delete it or pick another --name: %w", s.Name, s.Project, err)
	}
	if err != nil {
		return nil, err
	}
	var dto struct {
		ID        *int64 `json:"id"`
		Name      string `json:"name"`
		Secret    string `json:"secret"`
		ExpiresAt *int64 `json:"expires_at"`
	}
	if err := decode(op, a, &dto); err != nil {
		return nil, err
	}
	switch {
	case dto.ID == nil:
		return nil, badAnswer(op, "the answer has no id")
	case dto.Secret == "":
		return nil, badAnswer(op, "the answer has no secret (the robot %s exists now; delete it and create it again)", clean(dto.Name, 100))
	case !strings.HasPrefix(dto.Name, "robot") || !strings.HasSuffix(dto.Name, s.Project+"+"+s.Name):
		return nil, badAnswer(op, "asked for robot %s of %s, the answer names %q", s.Name, s.Project, clean(dto.Name, 100))
	}
	return &RobotCreated{ID: *dto.ID, Login: dto.Name, Secret: dto.Secret, ExpiresAt: epochOrNever(dto.ExpiresAt)}, nil
}

// epochOrNever reads Harbor's expires_at: epoch seconds, -1 (or none) for never.
func epochOrNever(n *int64) *time.Time {
	if n == nil || *n < 0 {
		return nil
	}
	t := time.Unix(*n, 0).UTC()
	return &t
}

// Robots lists the robots of a project (ListRobot with q=Level=project,ProjectID=N): their
// permissions, for backups; Harbor never lists secrets, and regctl would not keep them.
func (h *Harbor) Robots(ctx context.Context, projectName string) ([]Robot, error) {
	const op = "ListRobot"
	p, err := h.project(ctx, projectName)
	if err != nil {
		return nil, err
	}
	if p == nil {
		return nil, exitcode.With(exitcode.NotFound, fmt.Errorf("harbor getProject: project %s not found", projectName))
	}
	q := url.Values{"q": {fmt.Sprintf("Level=project,ProjectID=%d", p.id)}}
	var out []Robot
	err = h.api.list(ctx, request{op: op, method: http.MethodGet, path: "/robots", query: q}, func(i int, raw json.RawMessage) error {
		var dto struct {
			ID          *int64 `json:"id"`
			Name        string `json:"name"`
			Description string `json:"description"`
			Level       string `json:"level"`
			Duration    *int64 `json:"duration"`
			Disable     bool   `json:"disable"`
			ExpiresAt   *int64 `json:"expires_at"`
			Permissions []struct {
				Kind      string        `json:"kind"`
				Namespace string        `json:"namespace"`
				Access    []RobotAccess `json:"access"`
			} `json:"permissions"`
		}
		if err := json.Unmarshal(raw, &dto); err != nil {
			return badAnswer(op, "robots[%d] is not a robot: %v", i, err)
		}
		if dto.ID == nil || dto.Name == "" {
			return badAnswer(op, "robots[%d] has no id or name", i)
		}
		if dto.Level != "project" || len(dto.Permissions) != 1 || dto.Permissions[0].Namespace != projectName {
			return badAnswer(op, "robots[%d] (%s) is not a robot of project %s, which was asked for", i, clean(dto.Name, 100), projectName)
		}
		r := Robot{ID: *dto.ID, Login: dto.Name, Description: dto.Description, Level: dto.Level, Project: projectName,
			Duration: -1, Disabled: dto.Disable, ExpiresAt: epochOrNever(dto.ExpiresAt)}
		if dto.Duration != nil {
			r.Duration = *dto.Duration
		}
		for j, a := range dto.Permissions[0].Access {
			if a.Resource == "" || a.Action == "" {
				return badAnswer(op, "robots[%d].permissions[0].access[%d] has no resource or action", i, j)
			}
			r.Access = append(r.Access, RobotAccess{Resource: a.Resource, Action: a.Action})
		}
		sort.Slice(r.Access, func(a, b int) bool {
			return r.Access[a].Resource+":"+r.Access[a].Action < r.Access[b].Resource+":"+r.Access[b].Action
		})
		out = append(out, r)
		return nil
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}
