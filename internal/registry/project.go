package registry

import "context"

// ProjectSpec is what `repo create` asks for beyond RepositorySpec on registries that keep
// repositories in projects (namespaces) with their own visibility and vulnerability gate (Harbor).
// A nil or empty field is not asked for: the registry keeps what it has (its default for a new
// project).
type ProjectSpec struct {
	Public *bool `json:"public,omitempty"`
	// ScanOnPush, when set, is asked for instead of RepositorySpec.ScanOnPush (which cannot say
	// "not asked").
	ScanOnPush *bool `json:"scanOnPush,omitempty"`
	// PreventVulnerable blocks pulls of images with vulnerabilities at or above Severity.
	PreventVulnerable *bool  `json:"preventVulnerable,omitempty"`
	Severity          string `json:"severity,omitempty"` // none, low, medium, high, critical
	// ScanPolicy is a scan policy document in the registry's own format (Harbor: the JSON of
	// harbor-scan-policy.json), ScanPolicyName its file name for messages. Explicit fields above
	// that disagree with it are an error (exit 2).
	ScanPolicy     []byte `json:"-"`
	ScanPolicyName string `json:"-"`
}

// Asked reports whether the spec asks for anything.
func (s ProjectSpec) Asked() bool {
	return s.Public != nil || s.ScanOnPush != nil || s.PreventVulnerable != nil || s.Severity != "" || len(s.ScanPolicy) > 0
}

// SettingChange is one setting EnsureProject changed: the diff `repo create` shows.
type SettingChange struct {
	Setting string `json:"setting"`
	From    string `json:"from"`
	To      string `json:"to"`
}

// ProjectResult is what EnsureProject did: the EnsureResult, the settings it changed, and notes
// naming what was asked for that the registry cannot express (nothing is dropped silently).
type ProjectResult struct {
	EnsureResult
	Changes []SettingChange `json:"changes,omitempty"`
	Notes   []string        `json:"notes,omitempty"`
}

// ProjectEnsurer is implemented by registries with projects (Harbor): EnsureProject creates the
// project a repository name starts with (a repository inside it is created by its first push), or
// compares an existing one's settings and updates those that differ.
type ProjectEnsurer interface {
	EnsureProject(ctx context.Context, repo string, spec RepositorySpec, project ProjectSpec) (ProjectResult, error)
}
