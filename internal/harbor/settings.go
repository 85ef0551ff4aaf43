package harbor

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"sort"
	"strings"

	"github.com/bmatcuk/doublestar/v4"

	"github.com/regctl-dev/regctl/internal/exitcode"
	"github.com/regctl-dev/regctl/internal/registry"
)

// Names of the settings Harbor's backend keeps in backups.
const (
	SettingProject = "harbor.project" // metadata and CVE allowlist: what the guide's pg_dump kept
	SettingRobots  = "harbor.robots"  // the project's robot accounts: names, lifetimes, permissions; no secrets
	// SettingRetention is the project's tag retention policy (rules and schedule), kept only when
	// the project has one.
	SettingRetention = "harbor.retention"
	// SettingReplication are the push-based replication policies that copy the repository (their
	// name filters select it), kept only when there are some. Their endpoints are named, with
	// URL but no secret: restore needs the endpoint on the target Harbor already.
	SettingReplication = "harbor.replication"
)

// keptMetadata are the project metadata keys a backup keeps: the ones users set. retention_id
// and the like are Harbor's own references, meaningless on another Harbor.
var keptMetadata = []string{"auto_sbom_generation", "auto_scan", "enable_content_trust_cosign", "prevent_vul", "public",
	"reuse_sys_cve_allowlist", "severity"}

// projectDoc is the harbor.project document.
type projectDoc struct {
	Project      string            `json:"project"`
	Metadata     map[string]string `json:"metadata"`
	CVEAllowlist []string          `json:"cveAllowlist"`
}

// robotDoc is one robot of the harbor.robots document.
type robotDoc struct {
	Name        string        `json:"name"` // without robot$<project>+
	Description string        `json:"description,omitempty"`
	Duration    int64         `json:"duration"`
	Disabled    bool          `json:"disabled,omitempty"`
	Access      []RobotAccess `json:"access"`
}

// Settings returns the settings of repo's project: its metadata and allowlist, and its robots'
// permissions. Each repository of a project carries the same documents; restoring them twice
// is "unchanged" the second time.
func (h *Harbor) Settings(ctx context.Context, repo string) (map[string]string, error) {
	projName, _, _ := strings.Cut(repo, "/")
	if err := checkProject(projName); err != nil {
		return nil, err
	}
	p, err := h.project(ctx, projName)
	if err != nil {
		return nil, err
	}
	if p == nil {
		return nil, exitcode.With(exitcode.NotFound, fmt.Errorf("harbor getProject: project %s not found", projName))
	}
	pd := projectDoc{Project: projName, Metadata: map[string]string{}, CVEAllowlist: append([]string{}, p.allowlist...)}
	for _, k := range keptMetadata {
		if v := p.meta(k); v != "" { // Harbor's default where the project has no key: the same setting
			pd.Metadata[k] = v
		}
	}
	robots, err := h.Robots(ctx, projName)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", SettingRobots, err)
	}
	rd := []robotDoc{}
	for _, r := range robots {
		_, short, ok := strings.Cut(r.Login, "+")
		if !ok {
			return nil, badAnswer("ListRobot", "robot %q of project %s has no <project>+<name> login", clean(r.Login, 100), projName)
		}
		rd = append(rd, robotDoc{Name: short, Description: r.Description, Duration: r.Duration, Disabled: r.Disabled, Access: r.Access})
	}
	pb, _ := json.Marshal(pd)
	rb, _ := json.Marshal(rd)
	out := map[string]string{SettingProject: string(pb), SettingRobots: string(rb)}
	pol, err := h.Retention(ctx, projName)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", SettingRetention, err)
	}
	if pol != nil {
		n := pol.normal()
		n.Scope.Ref = 0 // the project's id on this Harbor; restore uses the target's
		b, _ := json.Marshal(n)
		out[SettingRetention] = string(b)
	}
	repl, err := h.replicationsOf(ctx, repo)
	if err != nil {
		// The other documents are kept; the backup records this one as not read (a project
		// robot, the usual CI credential, may not list the system's replication policies).
		return out, fmt.Errorf("%s: %w", SettingReplication, err)
	}
	if len(repl) > 0 {
		b, _ := json.Marshal(repl)
		out[SettingReplication] = string(b)
	}
	return out, nil
}

// replicationsOf are the push-based policies whose name filters select repo (a policy without
// one copies every repository).
func (h *Harbor) replicationsOf(ctx context.Context, repo string) ([]ReplicationPolicy, error) {
	// A backup asks for every repository: the policies are listed once per backup.
	h.replMu.Lock()
	defer h.replMu.Unlock()
	if !h.replListed { // an error too is the answer for every repository: one refused call, not one each
		h.replPolicies, h.replErr = h.ReplicationPolicies(ctx)
		h.replListed = true
	}
	if h.replErr != nil {
		return nil, h.replErr
	}
	all := h.replPolicies
	var out []ReplicationPolicy
	for _, p := range all {
		if p.srcID != 0 || p.Destination == "local" {
			continue
		}
		if selectsRepository(p.Filters, repo) {
			p.ID = 0 // this Harbor's id, meaningless on another
			out = append(out, p)
		}
	}
	return out, nil
}

func selectsRepository(fs []ReplicationFilter, repo string) bool {
	for _, f := range fs {
		if f.Type != "name" {
			continue
		}
		pattern, _ := f.Value.(string)
		if ok, err := doublestar.Match(pattern, repo); pattern != "" && (err != nil || !ok) {
			return false
		}
	}
	return true
}

// putReplications restores harbor.replication: each policy stored (or compared) through
// PutReplication against the endpoint of the same name on this Harbor. A policy whose endpoint
// is missing is not applied, with the reason: the backup holds no secret to create it with.
func (h *Harbor) putReplications(ctx context.Context, doc string, dryRun bool) (string, string, error) {
	var want []ReplicationPolicy
	if err := json.Unmarshal([]byte(doc), &want); err != nil {
		return "", "", fmt.Errorf("%s: the backup's document is not a list of replication policies: %v", SettingReplication, err)
	}
	var changed, missing []string
	for _, p := range want {
		if p.Name == "" || p.Destination == "" {
			return "", "", fmt.Errorf("%s: a policy without a name or destination in the backup", SettingReplication)
		}
		spec := ReplicationSpec{Name: p.Name, Description: p.Description, Dest: Endpoint{Name: p.Destination}, DestNamespace: p.DestNamespace,
			ReplaceCount: p.ReplaceCount, Trigger: p.Trigger, Cron: cronIfScheduled(p), Override: p.Override, Enabled: p.Enabled, Deletion: p.Deletion,
			Filters: p.Filters}
		res, err := h.PutReplication(ctx, spec, dryRun)
		if errors.Is(err, errNoEndpoint) {
			missing = append(missing, fmt.Sprintf("%q (endpoint %s, %s)", p.Name, p.Destination, p.DestURL))
			continue
		}
		if err != nil {
			return "", "", fmt.Errorf("replication policy %q: %w", p.Name, err)
		}
		if res.Policy.Status != string(registry.StatusUnchanged) {
			changed = append(changed, fmt.Sprintf("%q %s", p.Name, res.Policy.Status))
		}
	}
	var why []string
	if len(changed) > 0 {
		why = append(why, "replication policies "+strings.Join(changed, ", "))
	}
	if len(missing) > 0 {
		why = append(why, "not restored, their endpoint is not on this Harbor and the backup holds no secret to create it with (replication put --dest-registry creates it; restore again): "+strings.Join(missing, ", "))
	}
	switch {
	case len(changed) > 0 && dryRun:
		return "would-apply", strings.Join(why, "; "), nil
	case len(missing) > 0:
		return "not-applied", strings.Join(why, "; "), nil
	case len(changed) > 0:
		return "applied", strings.Join(why, "; "), nil
	}
	return "unchanged", "", nil
}

// PutSetting applies a harbor.project or harbor.robots document to repo's project. Robots that
// exist are left as they are (their permissions are compared and a difference reported); missing
// ones are created with the recorded permissions and a new secret that regctl does not show:
// refresh it in Harbor before use (the backup holds no secret).
func (h *Harbor) PutSetting(ctx context.Context, repo, name, doc string, dryRun bool) (string, string, error) {
	projName, _, _ := strings.Cut(repo, "/")
	if err := checkProject(projName); err != nil {
		return "", "", err
	}
	switch name {
	case SettingProject:
		var pd projectDoc
		if err := json.Unmarshal([]byte(doc), &pd); err != nil {
			return "", "", fmt.Errorf("%s: the backup's document is not one: %v", name, err)
		}
		w := &wanted{metadata: map[string]string{}, allowlist: slices.Clone(pd.CVEAllowlist)}
		for k, v := range pd.Metadata {
			if slices.Contains(keptMetadata, k) {
				w.metadata[k] = v
			}
		}
		if w.allowlist == nil {
			w.allowlist = []string{}
		}
		sort.Strings(w.allowlist)
		if dryRun {
			p, err := h.project(ctx, projName)
			if err != nil {
				return "", "", err
			}
			if p != nil && projectHas(p, w) {
				return "unchanged", "", nil
			}
			return "would-apply", "", nil
		}
		res, err := h.ensureProject(ctx, projName, w)
		if err != nil {
			return "", "", err
		}
		if res.Status == registry.StatusUnchanged {
			return "unchanged", "", nil
		}
		return "applied", res.Message, nil
	case SettingRobots:
		var want []robotDoc
		if err := json.Unmarshal([]byte(doc), &want); err != nil {
			return "", "", fmt.Errorf("%s: the backup's document is not one: %v", name, err)
		}
		have, err := h.Robots(ctx, projName)
		if err != nil {
			return "", "", err
		}
		byName := map[string]Robot{}
		for _, r := range have {
			if _, short, ok := strings.Cut(r.Login, "+"); ok {
				byName[short] = r
			}
		}
		var created, differ []string
		for _, r := range want {
			if cur, ok := byName[r.Name]; ok {
				if !slices.Equal(sortedAccess(cur.Access), sortedAccess(r.Access)) {
					differ = append(differ, r.Name)
				}
				continue
			}
			created = append(created, r.Name)
			if dryRun {
				continue
			}
			days := r.Duration
			if days == 0 {
				days = -1
			}
			if _, err := h.CreateRobot(ctx, RobotSpec{Project: projName, Name: r.Name, Description: r.Description, Access: r.Access, ExpiresDays: days}); err != nil {
				return "", "", fmt.Errorf("robot %s: %w", r.Name, err)
			}
		}
		var why []string
		if len(created) > 0 {
			why = append(why, fmt.Sprintf("robots %s created with new secrets regctl does not show (refresh each secret in Harbor before use)", strings.Join(created, ", ")))
		}
		if len(differ) > 0 {
			why = append(why, fmt.Sprintf("robots %s exist with other permissions; left as they are", strings.Join(differ, ", ")))
		}
		switch {
		case len(created) > 0 && dryRun:
			return "would-apply", strings.Join(why, "; "), nil
		case len(created) > 0:
			return "applied", strings.Join(why, "; "), nil
		case len(differ) > 0:
			return "not-applied", strings.Join(why, "; "), nil
		}
		return "unchanged", "", nil
	case SettingRetention:
		var want RetentionPolicy
		if err := json.Unmarshal([]byte(doc), &want); err != nil || want.Algorithm == "" {
			return "", "", fmt.Errorf("%s: the backup's document is not a retention policy: %v", name, err)
		}
		pid, err := h.ProjectID(ctx, projName)
		if err != nil {
			return "", "", err
		}
		want.Scope = RetentionScope{Level: "project", Ref: pid}
		stored, err := h.Retention(ctx, projName)
		if err != nil {
			return "", "", err
		}
		if want.Same(stored) {
			return "unchanged", "", nil
		}
		why := fmt.Sprintf("tag retention policy with %d rules, schedule %q (\"\" runs only when asked): Harbor deletes what it does not retain when it runs", len(want.Rules), want.Trigger.Settings["cron"])
		if stored != nil {
			why = fmt.Sprintf("replaces the stored policy of %d rules with the ", len(stored.Rules)) + why
		}
		if dryRun {
			return "would-apply", why, nil
		}
		var storedID int64
		if stored != nil {
			storedID = stored.ID
		}
		if _, err := h.PutRetention(ctx, &want, storedID); err != nil {
			return "", "", err
		}
		return "applied", why, nil
	case SettingReplication:
		return h.putReplications(ctx, doc, dryRun)
	}
	return "not-applied", "this version of regctl does not know the setting", nil
}

// projectHas reports whether the project has every wanted setting.
func projectHas(p *project, w *wanted) bool {
	for k, v := range w.metadata {
		if p.meta(k) != v {
			return false
		}
	}
	return w.allowlist == nil || slices.Equal(p.allowlist, w.allowlist)
}

func sortedAccess(a []RobotAccess) []string {
	out := make([]string, 0, len(a))
	for _, x := range a {
		out = append(out, x.Resource+":"+x.Action)
	}
	sort.Strings(out)
	return out
}

var _ registry.SettingsKeeper = (*Harbor)(nil)

// cronIfScheduled is a recorded policy's cron where its trigger has one.
func cronIfScheduled(p ReplicationPolicy) string {
	if p.Trigger != "scheduled" {
		return ""
	}
	return p.Cron
}
