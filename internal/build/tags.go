// Package build builds and publishes images the way the guide's build-and-push.sh does — tags from the
// git branch, OCI labels, multi-platform builds with a registry cache — but pushes by digest first, so
// the scan gate and signing happen before any tag points at the image. It drives `docker buildx` or,
// daemonless, `buildah`, through an injected Runner.
package build

import (
	"fmt"
	"regexp"
	"strings"

	"github.com/regctl-dev/regctl/internal/config"
	"github.com/regctl-dev/regctl/internal/exitcode"
)

// DefaultRules reproduce the script: main -> latest, $VERSION, <sha>; develop -> staging,
// staging-<sha>; any other branch -> dev-<sha>.
var DefaultRules = []config.TagRule{
	{Branch: "main", Tags: []string{"latest", "{version}", "{sha}"}},
	{Branch: "develop", Tags: []string{"staging", "staging-{sha}"}},
	{Branch: "*", Tags: []string{"dev-{sha}"}},
}

// Git is what the tags and labels are made of.
type Git struct {
	Branch string `json:"branch"`
	Commit string `json:"commit"` // full revision (the revision label)
	Short  string `json:"short"`  // 7 characters, as `git rev-parse --short` gives by default
	Source string `json:"source,omitempty"`
}

var (
	invalidTagChars = regexp.MustCompile(`[^A-Za-z0-9_.-]+`)
	validTag        = regexp.MustCompile(`^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$`)
)

// SanitizeTag turns text (a branch name, a version) into a valid tag: invalid characters become
// "-", leading "." and "-" are dropped, and it is cut at 128 characters.
func SanitizeTag(s string) string {
	s = invalidTagChars.ReplaceAllString(s, "-")
	s = strings.TrimLeft(s, ".-")
	if len(s) > 128 {
		s = s[:128]
	}
	return s
}

// Tags expands the first rule whose branch glob matches: "*" matches any text, "/" included
// ("release/*", "feature/*", "*").
// Placeholders: {version}, {sha} (short commit), {commit} (full), {branch} (sanitised).
func Tags(rules []config.TagRule, g Git, version string) ([]string, error) {
	if len(rules) == 0 {
		rules = DefaultRules
	}
	for i, r := range rules {
		if r.Branch == "" {
			return nil, fmt.Errorf("build.tag_rules[%d].branch: empty; use \"*\" for any branch: %w", i, exitcode.ErrUsage)
		}
		if !matchBranch(r.Branch, g.Branch) {
			continue
		}
		var out []string
		seen := map[string]bool{}
		for _, tmpl := range r.Tags {
			t := strings.NewReplacer("{version}", version, "{sha}", g.Short, "{commit}", g.Commit, "{branch}", g.Branch).Replace(tmpl)
			t = SanitizeTag(t)
			if !validTag.MatchString(t) {
				return nil, fmt.Errorf("build.tag_rules[%d]: %q expands to %q, not a valid tag: %w", i, tmpl, t, exitcode.ErrUsage)
			}
			if !seen[t] {
				seen[t] = true
				out = append(out, t)
			}
		}
		return out, nil
	}
	return nil, fmt.Errorf("no build.tag_rules entry matches branch %q (add one with branch: \"*\"): %w", g.Branch, exitcode.ErrUsage)
}

// matchBranch reports whether branch matches glob, where "*" is the only wildcard.
func matchBranch(glob, branch string) bool {
	re := "^" + strings.ReplaceAll(regexp.QuoteMeta(glob), `\*`, ".*") + "$"
	ok, _ := regexp.MatchString(re, branch)
	return ok
}

// Labels are the OCI labels the script sets, plus the source.
func Labels(g Git, version, created string) map[string]string {
	l := map[string]string{
		"org.opencontainers.image.created":  created,
		"org.opencontainers.image.revision": g.Commit,
		"org.opencontainers.image.version":  version,
	}
	if g.Source != "" {
		l["org.opencontainers.image.source"] = g.Source
	}
	return l
}

// BuildArgs are the script's build arguments; user arguments win.
func BuildArgs(g Git, version, created string, user map[string]string) map[string]string {
	a := map[string]string{"BUILD_DATE": created, "VCS_REF": g.Short, "VERSION": version}
	for k, v := range user {
		a[k] = v
	}
	return a
}
