package build

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"

	"github.com/regctl-dev/regctl/internal/config"
	"github.com/regctl-dev/regctl/internal/exitcode"
)

func TestTagsFromBranchRules(t *testing.T) {
	g := Git{Commit: "3f2a9c1d0e9b8a7f6e5d4c3b2a1f0e9d8c7b6a5f", Short: "3f2a9c1"}
	cases := []struct {
		branch, version string
		want            string
	}{
		{"main", "1.4.0", "latest,1.4.0,3f2a9c1"},
		{"main", "dev", "latest,dev,3f2a9c1"},
		{"develop", "1.4.0", "staging,staging-3f2a9c1"},
		{"feature/login-ui", "1.4.0", "dev-3f2a9c1"},
		{"fix/ABC-123", "x", "dev-3f2a9c1"},
	}
	for _, c := range cases {
		g.Branch = c.branch
		got, err := Tags(nil, g, c.version)
		if err != nil || strings.Join(got, ",") != c.want {
			t.Errorf("%s: %v %v, want %s", c.branch, got, err, c.want)
		}
	}
	// Custom rules with a sanitised branch placeholder and a glob.
	rules := []config.TagRule{{Branch: "release/*", Tags: []string{"rc-{branch}", "{commit}"}}, {Branch: "*", Tags: []string{"{branch}-{sha}"}}}
	g.Branch = "release/2.0"
	got, _ := Tags(rules, g, "")
	if strings.Join(got, ",") != "rc-release-2.0,"+g.Commit {
		t.Errorf("release rule: %v", got)
	}
	g.Branch = "feature/Ünïcode & spaces"
	got, _ = Tags(rules, g, "")
	if len(got) != 1 || got[0] != "feature-n-code-spaces-3f2a9c1" {
		t.Errorf("sanitised branch: %v", got)
	}
	if _, err := Tags([]config.TagRule{{Branch: "main", Tags: []string{"x"}}}, Git{Branch: "other"}, ""); exitcode.Of(err) != exitcode.Usage {
		t.Errorf("no matching rule: %v", err)
	}
	if _, err := Tags([]config.TagRule{{Branch: "", Tags: []string{"x"}}}, Git{Branch: "main"}, ""); exitcode.Of(err) != exitcode.Usage {
		t.Errorf("empty branch glob: %v", err)
	}
	if !matchBranch("release/*", "release/2.0") || matchBranch("release/*", "hotfix/2.0") || !matchBranch("*", "a/b/c") || matchBranch("main", "main2") {
		t.Error("branch globs")
	}
	if s := SanitizeTag(".-" + strings.Repeat("a", 200)); len(s) != 128 || s[0] != 'a' {
		t.Errorf("sanitise: %q", s)
	}
}

func testOptions(builder string) *Options {
	repo, _ := name.NewRepository("registry.example.com/team/game-server")
	return &Options{Context: "/src", Repo: repo, Version: "1.4.0", Platforms: []string{"linux/amd64", "linux/arm64"},
		BuildArgs: map[string]string{"EXTRA": "1"}, Tags: []string{"latest"},
		Git:     Git{Branch: "main", Commit: "3f2a9c1d0e9b8a7f6e5d4c3b2a1f0e9d8c7b6a5f", Short: "3f2a9c1", Source: "https://git.example.com/team/game-server.git"},
		Created: "2026-06-30T12:00:00Z", Builder: builder, WorkDir: "/w", AuthDir: "/w/auth", ID: "abc"}
}

func TestBuildxArgv(t *testing.T) {
	o := testOptions(BuilderBuildx)
	cmds := o.Commands()
	want := "docker buildx build --platform linux/amd64,linux/arm64" +
		" --cache-from type=registry,ref=registry.example.com/team/game-server:buildcache" +
		" --cache-to type=registry,ref=registry.example.com/team/game-server:buildcache,mode=max" +
		" --build-arg BUILD_DATE=2026-06-30T12:00:00Z --build-arg EXTRA=1 --build-arg VCS_REF=3f2a9c1 --build-arg VERSION=1.4.0" +
		" --label org.opencontainers.image.created=2026-06-30T12:00:00Z" +
		" --label org.opencontainers.image.revision=3f2a9c1d0e9b8a7f6e5d4c3b2a1f0e9d8c7b6a5f" +
		" --label org.opencontainers.image.source=https://git.example.com/team/game-server.git" +
		" --label org.opencontainers.image.version=1.4.0" +
		" --output type=image,name=registry.example.com/team/game-server,push-by-digest=true,name-canonical=true,push=true" +
		" --metadata-file /w/buildx-metadata.json -f /src/Dockerfile /src"
	if len(cmds) != 1 || strings.Join(cmds[0].Argv, " ") != want {
		t.Errorf("buildx argv:\n%s\nwant:\n%s", strings.Join(cmds[0].Argv, " "), want)
	}
	if env := strings.Join(cmds[0].Env, " "); !strings.Contains(env, "DOCKER_CONFIG=/w/auth") {
		t.Errorf("buildx env: %s", env)
	}
	o.UserDockerConfig = "/home/dev/.docker"
	if env := strings.Join(o.Commands()[0].Env, " "); !strings.Contains(env, "BUILDX_CONFIG=/home/dev/.docker/buildx") {
		t.Errorf("the user's buildx builders must stay in use: %s", env)
	}
	// User build args may carry tokens: masked when printed.
	if s := o.Commands()[0].String(); !strings.Contains(s, "--build-arg EXTRA=***") || strings.Contains(s, "EXTRA=1") {
		t.Errorf("masked command: %s", s)
	}
	o.OCICacheManifests, o.Insecure = true, true
	argv := strings.Join(o.Commands()[0].Argv, " ")
	if !strings.Contains(argv, "buildcache,mode=max,image-manifest=true,oci-mediatypes=true") || !strings.Contains(argv, "push=true,registry.insecure=true") {
		t.Errorf("ECR cache and insecure output: %s", argv)
	}
	// A cache in its own repository: no tag of the image repository is written before the gate.
	o.CacheRef = "registry.example.com/team/game-server-cache:buildcache"
	argv = strings.Join(o.Commands()[0].Argv, " ")
	if !strings.Contains(argv, "--cache-from type=registry,ref=registry.example.com/team/game-server-cache:buildcache --cache-to type=registry,ref=registry.example.com/team/game-server-cache:buildcache,mode=max") ||
		strings.Contains(argv, "game-server:buildcache") {
		t.Errorf("--cache-ref: %s", argv)
	}
}

func TestBuildahArgv(t *testing.T) {
	o := testOptions(BuilderBuildah)
	o.Insecure = true
	var got []string
	for _, c := range o.Commands() {
		got = append(got, strings.Join(c.Argv, " "))
	}
	b := "buildah --root /w/storage --runroot /w/run --storage-driver vfs"
	args := " --build-arg BUILD_DATE=2026-06-30T12:00:00Z --build-arg EXTRA=1 --build-arg VCS_REF=3f2a9c1 --build-arg VERSION=1.4.0" +
		" --label org.opencontainers.image.created=2026-06-30T12:00:00Z --label org.opencontainers.image.revision=3f2a9c1d0e9b8a7f6e5d4c3b2a1f0e9d8c7b6a5f" +
		" --label org.opencontainers.image.source=https://git.example.com/team/game-server.git --label org.opencontainers.image.version=1.4.0"
	want := []string{
		b + " bud --isolation chroot --platform linux/amd64 --tls-verify=false --authfile /w/auth/config.json" + args + " -f /src/Dockerfile -t localhost/regctl-build:abc-linux-amd64 /src",
		b + " bud --isolation chroot --platform linux/arm64 --tls-verify=false --authfile /w/auth/config.json" + args + " -f /src/Dockerfile -t localhost/regctl-build:abc-linux-arm64 /src",
		b + " manifest create localhost/regctl-build:abc",
		b + " manifest add localhost/regctl-build:abc containers-storage:localhost/regctl-build:abc-linux-amd64",
		b + " manifest add localhost/regctl-build:abc containers-storage:localhost/regctl-build:abc-linux-arm64",
		b + " manifest push --all --format oci localhost/regctl-build:abc oci:/w/layout:build",
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("buildah commands:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	o.Platforms = []string{"linux/amd64"}
	cmds := o.Commands()
	if last := strings.Join(cmds[len(cmds)-1].Argv, " "); last != b+" push --format oci localhost/regctl-build:abc-linux-amd64 oci:/w/layout:build" {
		t.Errorf("single platform push: %s", last)
	}
}

func TestCmdString(t *testing.T) {
	c := Cmd{Argv: []string{"docker", "buildx", "--label", "a=b c", "it's"}}
	if s := c.String(); s != `docker buildx --label 'a=b c' 'it'\''s'` {
		t.Errorf("%s", s)
	}
}

func TestReadGitFromARealRepository(t *testing.T) {
	if _, err := exec.LookPath("git"); err != nil {
		t.Skip("git not installed")
	}
	dir := t.TempDir()
	run := func(args ...string) {
		cmd := exec.Command("git", append([]string{"-C", dir}, args...)...)
		cmd.Env = append(os.Environ(), "GIT_AUTHOR_NAME=t", "GIT_AUTHOR_EMAIL=t@example.com", "GIT_COMMITTER_NAME=t", "GIT_COMMITTER_EMAIL=t@example.com")
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("git %v: %v\n%s", args, err, out)
		}
	}
	run("init", "-q", "-b", "develop")
	os.WriteFile(filepath.Join(dir, "f"), []byte("x"), 0o644)
	run("add", "f")
	run("commit", "-q", "-m", "c")
	run("remote", "add", "origin", "https://ci-bot:s3cret@git.example.com/team/game-server.git")
	g, err := ReadGit(context.Background(), ExecRunner{}, dir, "", "")
	if err != nil {
		t.Fatal(err)
	}
	if g.Branch != "develop" || len(g.Commit) != 40 || g.Short != g.Commit[:7] || g.Source != "https://git.example.com/team/game-server.git" {
		t.Errorf("%+v (credentials must be stripped from the source)", g)
	}
	over, _ := ReadGit(context.Background(), ExecRunner{}, dir, "main", "0123456789abcdef")
	if over.Branch != "main" || over.Short != "0123456" {
		t.Errorf("overrides: %+v", over)
	}
	run("checkout", "-q", "--detach")
	if _, err := ReadGit(context.Background(), ExecRunner{}, dir, "", ""); exitcode.Of(err) != exitcode.Usage || !strings.Contains(err.Error(), "--branch") {
		t.Errorf("detached: %v", err)
	}
	if _, err := ReadGit(context.Background(), ExecRunner{}, t.TempDir(), "", ""); err == nil || !strings.Contains(err.Error(), "--commit") {
		t.Errorf("not a repository: %v", err)
	}
}

func TestWriteAuthDir(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "auth")
	user := []byte(`{"auths":{"base.example.com":{"auth":"dXNlcjpwYXNz"},"registry.example.com":{"auth":"b2xkOm9sZA=="}},"credHelpers":{"gcr.io":"gcloud"},"proxies":{"x":1}}`)
	err := WriteAuthDir(dir, user, map[string]authn.Authenticator{
		"registry.example.com": &authn.Basic{Username: "ci", Password: "tok"},
		"anon.example.com":     authn.Anonymous,
	})
	if err != nil {
		t.Fatal(err)
	}
	st, _ := os.Stat(filepath.Join(dir, "config.json"))
	if st.Mode().Perm() != 0o600 {
		t.Errorf("mode %v", st.Mode().Perm())
	}
	var cfg struct {
		Auths       map[string]map[string]string `json:"auths"`
		CredHelpers map[string]string            `json:"credHelpers"`
		Proxies     any                          `json:"proxies"`
	}
	raw, _ := os.ReadFile(filepath.Join(dir, "config.json"))
	json.Unmarshal(raw, &cfg)
	// regctl's credentials replace the user's for the target; the user's other logins and helpers stay.
	if len(cfg.Auths) != 2 || cfg.Auths["registry.example.com"]["auth"] != base64.StdEncoding.EncodeToString([]byte("ci:tok")) ||
		cfg.Auths["base.example.com"]["auth"] != "dXNlcjpwYXNz" || cfg.CredHelpers["gcr.io"] != "gcloud" || cfg.Proxies != nil {
		t.Errorf("config.json: %s", raw)
	}
	empty := filepath.Join(t.TempDir(), "empty")
	if err := WriteAuthDir(empty, nil, nil); err != nil {
		t.Fatal(err)
	}
	if raw, _ := os.ReadFile(filepath.Join(empty, "config.json")); string(raw) != `{"auths":{}}` {
		t.Errorf("buildah needs config.json even without credentials: %s", raw)
	}
}
