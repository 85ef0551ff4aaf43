package build

import (
	"context"
	"fmt"
	"net/url"
	"strings"

	"github.com/regctl-dev/regctl/internal/exitcode"
)

// ReadGit reads branch, commit and origin from the git repository at dir. branch and commit, when
// given (CI checkouts are often detached), win over what git says.
func ReadGit(ctx context.Context, r Runner, dir, branch, commit string) (Git, error) {
	git := func(args ...string) (string, error) {
		out, err := r.Run(ctx, Cmd{Dir: dir, Argv: append([]string{"git", "-C", dir}, args...)})
		return strings.TrimSpace(string(out)), err
	}
	g := Git{Branch: branch, Commit: commit}
	if g.Commit == "" {
		c, err := git("rev-parse", "HEAD")
		if err != nil {
			return g, fmt.Errorf("reading the commit of %s (pass --commit outside a git checkout): %w", dir, err)
		}
		g.Commit = c
	}
	if g.Branch == "" {
		b, err := git("rev-parse", "--abbrev-ref", "HEAD")
		if err != nil {
			return g, fmt.Errorf("reading the branch of %s: %w", dir, err)
		}
		if b == "HEAD" {
			return g, fmt.Errorf("%s is a detached checkout; pass --branch (e.g. --branch \"$CI_COMMIT_BRANCH\"): %w", dir, exitcode.ErrUsage)
		}
		g.Branch = b
	}
	g.Short = g.Commit
	if len(g.Short) > 7 {
		g.Short = g.Short[:7]
	}
	if src, err := git("config", "--get", "remote.origin.url"); err == nil && src != "" {
		g.Source = stripCredentials(src)
	}
	return g, nil
}

// stripCredentials removes user:password@ from a remote URL: it goes into an image label.
func stripCredentials(s string) string {
	u, err := url.Parse(s)
	if err != nil || u.User == nil {
		return s
	}
	u.User = nil
	return u.String()
}
