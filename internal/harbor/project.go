package harbor

import (
	"context"
	"fmt"
	"net/http"
	"slices"
	"sort"
	"strconv"
	"strings"

	"github.com/regctl-dev/regctl/internal/exitcode"
	"github.com/regctl-dev/regctl/internal/registry"
)

// project is a checked getProject answer.
type project struct {
	id        int64
	name      string
	metadata  map[string]string
	allowlist []string // sorted
}

// metadataDefaults are what Harbor means when a project's metadata has no key.
var metadataDefaults = map[string]string{"public": "false", "auto_scan": "false", "prevent_vul": "false", "severity": "",
	"reuse_sys_cve_allowlist": "false"}

func (p *project) meta(k string) string {
	if v, ok := p.metadata[k]; ok {
		return v
	}
	return metadataDefaults[k]
}

// project gets a project by name (nil, nil when there is none).
func (h *Harbor) project(ctx context.Context, name string) (*project, error) {
	const op = "getProject"
	a, err := h.api.do(ctx, request{op: op, method: http.MethodGet, path: projectPath(name), byName: true})
	if statusOf(err) == http.StatusNotFound {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var dto projectDTO
	if err := decode(op, a, &dto); err != nil {
		return nil, err
	}
	if dto.ProjectID == nil {
		return nil, badAnswer(op, "project %s: the answer has no project_id", name)
	}
	if dto.Name != name {
		return nil, badAnswer(op, "asked for project %s, the answer is about %q", name, clean(dto.Name, 80))
	}
	p := &project{id: *dto.ProjectID, name: dto.Name, metadata: map[string]string{}}
	for k, v := range dto.Metadata {
		if v != nil {
			p.metadata[k] = *v
		}
	}
	if dto.Allowlist != nil {
		for i, it := range dto.Allowlist.Items {
			if it.CVEID == "" {
				return nil, badAnswer(op, "project %s: cve_allowlist.items[%d] has no cve_id", name, i)
			}
			p.allowlist = append(p.allowlist, it.CVEID)
		}
	}
	sort.Strings(p.allowlist)
	return p, nil
}

// wanted is the project state asked for: metadata keys with Harbor's string values, and the CVE
// allowlist (nil: not asked).
type wanted struct {
	metadata  map[string]string
	allowlist []string
	notes     []string
}

// want merges the RepositorySpec, the ProjectSpec's flags and its scan policy into the metadata to
// ask for. Flags that disagree with the policy are an error naming both.
func want(spec registry.RepositorySpec, ps registry.ProjectSpec) (*wanted, error) {
	w := &wanted{metadata: map[string]string{}}
	if spec.Encryption != "" || spec.KMSKey != "" {
		w.notes = append(w.notes, "encryption: Harbor has no per-project encryption (it is the storage backend's); not applied")
	}
	if spec.TagMutability == "IMMUTABLE" {
		w.notes = append(w.notes, "tag mutability IMMUTABLE: Harbor's immutable-tag rules are not managed by regctl yet; not applied")
	}
	if len(spec.Tags) > 0 {
		w.notes = append(w.notes, "resource tags: Harbor projects have no tags; not applied")
	}
	var pol *ScanPolicy
	if len(ps.ScanPolicy) > 0 {
		var err error
		if pol, err = ParseScanPolicy(ps.ScanPolicyName, ps.ScanPolicy); err != nil {
			return nil, err
		}
		for k, v := range pol.Metadata {
			w.metadata[k] = v
		}
		if pol.Allowlist != nil {
			w.allowlist = append([]string{}, pol.Allowlist...)
			sort.Strings(w.allowlist)
			w.metadata["reuse_sys_cve_allowlist"] = "false" // the project's own list counts only then
		}
		w.notes = append(w.notes, pol.Notes...)
	}
	set := func(key, flag, v string) error {
		if pv, ok := w.metadata[key]; ok && pol != nil && pv != v {
			return fmt.Errorf("%s %s disagrees with %s (%s: %s): %w", flag, v, ps.ScanPolicyName, key, pv, exitcode.ErrUsage)
		}
		w.metadata[key] = v
		return nil
	}
	if ps.ScanOnPush != nil {
		if err := set("auto_scan", "--scan-on-push", strconv.FormatBool(*ps.ScanOnPush)); err != nil {
			return nil, err
		}
	}
	if ps.PreventVulnerable != nil {
		if err := set("prevent_vul", "--prevent-vulnerable", strconv.FormatBool(*ps.PreventVulnerable)); err != nil {
			return nil, err
		}
	}
	if ps.Severity != "" {
		sev := strings.ToLower(ps.Severity)
		if !slices.Contains(severities, sev) {
			return nil, fmt.Errorf("--severity %q: must be one of %s: %w", ps.Severity, strings.Join(severities, ", "), exitcode.ErrUsage)
		}
		if err := set("severity", "--severity", sev); err != nil {
			return nil, err
		}
	}
	if ps.Public != nil {
		w.metadata["public"] = strconv.FormatBool(*ps.Public)
	}
	return w, nil
}

// EnsureRepository makes sure the project repo starts with exists with the spec's settings (scan
// on push is asked for as given); see EnsureProject.
func (h *Harbor) EnsureRepository(ctx context.Context, repo string, spec registry.RepositorySpec) (registry.EnsureResult, error) {
	// RepositorySpec.ScanOnPush false cannot say "not asked": only true is asked for, or a seed,
	// a push or a restore into a project would switch its scan on push off.
	var ps registry.ProjectSpec
	if spec.ScanOnPush {
		ps.ScanOnPush = &spec.ScanOnPush
	}
	res, err := h.EnsureProject(ctx, repo, spec, ps)
	if len(res.Notes) > 0 {
		res.Message += "; " + strings.Join(res.Notes, "; ")
	}
	return res.EnsureResult, err
}

// EnsureProject creates the project repo names (its first path segment) with the settings asked
// for, or compares an existing project's and updates those that differ (the changes are the
// diff). A repository inside a project is created by its first push; the message says so.
func (h *Harbor) EnsureProject(ctx context.Context, repo string, spec registry.RepositorySpec, ps registry.ProjectSpec) (registry.ProjectResult, error) {
	res := registry.ProjectResult{EnsureResult: registry.EnsureResult{Repository: repo}}
	projName, _, _ := strings.Cut(repo, "/")
	if err := checkProject(projName); err != nil {
		return res, err
	}
	w, err := want(spec, ps)
	if err != nil {
		return res, err
	}
	return h.ensureProject(ctx, repo, w)
}

// ensureProject creates or updates the project repo starts with to the wanted state.
func (h *Harbor) ensureProject(ctx context.Context, repo string, w *wanted) (registry.ProjectResult, error) {
	res := registry.ProjectResult{EnsureResult: registry.EnsureResult{Repository: repo}}
	projName, inside, _ := strings.Cut(repo, "/")
	res.Notes = w.notes
	onPush := ""
	if inside != "" {
		onPush = fmt.Sprintf("; repository %s is created by its first push", repo)
	}
	cur, err := h.project(ctx, projName)
	if err != nil {
		return res, err
	}
	if cur == nil {
		body := map[string]any{"project_name": projName, "metadata": w.metadata}
		if w.allowlist != nil {
			body["cve_allowlist"] = allowlistBody(w.allowlist)
		}
		_, err := h.api.do(ctx, request{op: "createProject", method: http.MethodPost, path: "/projects", body: body, ok: []int{http.StatusCreated}})
		if statusOf(err) == http.StatusConflict {
			return res, fmt.Errorf("harbor createProject: project %s exists, but getProject did not find it (created meanwhile, or the answers disagree): %w", projName, registry.ErrBadAnswer)
		}
		if err != nil {
			return res, err
		}
		res.Status, res.Message = registry.StatusCreated, "project "+projName+" created"+onPush
		for _, k := range sortedKeys(w.metadata) {
			res.Changes = append(res.Changes, registry.SettingChange{Setting: k, From: "", To: w.metadata[k]})
		}
		if w.allowlist != nil {
			res.Changes = append(res.Changes, registry.SettingChange{Setting: "cve_allowlist", To: strings.Join(w.allowlist, ",")})
		}
		return res, nil
	}

	changed := map[string]string{}
	for _, k := range sortedKeys(w.metadata) {
		if from := cur.meta(k); from != w.metadata[k] {
			changed[k] = w.metadata[k]
			res.Changes = append(res.Changes, registry.SettingChange{Setting: k, From: from, To: w.metadata[k]})
		}
	}
	allowlistChanged := w.allowlist != nil && !slices.Equal(cur.allowlist, w.allowlist)
	if allowlistChanged {
		res.Changes = append(res.Changes, registry.SettingChange{Setting: "cve_allowlist", From: strings.Join(cur.allowlist, ","), To: strings.Join(w.allowlist, ",")})
	}
	if len(res.Changes) > 0 {
		body := map[string]any{"metadata": changed}
		if allowlistChanged {
			body["cve_allowlist"] = allowlistBody(w.allowlist)
		}
		if _, err := h.api.do(ctx, request{op: "updateProject", method: http.MethodPut, path: projectPath(projName), body: body, byName: true}); err != nil {
			return res, err
		}
		var parts []string
		for _, c := range res.Changes {
			parts = append(parts, fmt.Sprintf("%s %s → %s", c.Setting, orNone(c.From), orNone(c.To)))
		}
		res.Status, res.Message = registry.StatusUpdated, "project "+projName+" updated: "+strings.Join(parts, ", ")+onPush
		return res, nil
	}
	if inside == "" {
		res.Status, res.Message = registry.StatusUnchanged, "project "+projName+" exists with the same settings"
		return res, nil
	}
	_, name, _ := strings.Cut(repo, "/")
	_, err = h.api.do(ctx, request{op: "getRepository", method: http.MethodGet, path: repoPath(projName, name)})
	switch {
	case err == nil:
		res.Status, res.Message = registry.StatusUnchanged, "project "+projName+" exists with the same settings; repository "+repo+" exists"
	case registry.IsNotFound(err):
		res.Status, res.Message = registry.StatusOnPush, "project "+projName+" exists with the same settings"+onPush
	default:
		return res, err
	}
	return res, nil
}

func allowlistBody(ids []string) map[string]any {
	items := make([]map[string]string, 0, len(ids))
	for _, id := range ids {
		items = append(items, map[string]string{"cve_id": id})
	}
	return map[string]any{"items": items}
}

func orNone(s string) string {
	if s == "" {
		return "(none)"
	}
	return s
}

func sortedKeys(m map[string]string) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}
