package release

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"gopkg.in/yaml.v3"
)

// goreleaser is the part of .goreleaser.yaml these checks read. goreleaser itself is not a test
// dependency, so the file is decoded loosely and the fields that matter are asserted one by one.
type goreleaser struct {
	Version int `yaml:"version"`
	Before  struct {
		Hooks []string `yaml:"hooks"`
	} `yaml:"before"`
	Builds []struct {
		ID      string   `yaml:"id"`
		Main    string   `yaml:"main"`
		Tags    []string `yaml:"tags"`
		Binary  string   `yaml:"binary"`
		Env     []string `yaml:"env"`
		Goos    []string `yaml:"goos"`
		Goarch  []string `yaml:"goarch"`
		Flags   []string `yaml:"flags"`
		Ldflags []string `yaml:"ldflags"`
	} `yaml:"builds"`
	Archives []struct {
		IDs     []string `yaml:"ids"`
		Formats []string `yaml:"formats"`
		Files   []string `yaml:"files"`
	} `yaml:"archives"`
	Checksum *struct {
		NameTemplate string `yaml:"name_template"`
		Algorithm    string `yaml:"algorithm"`
	} `yaml:"checksum"`
	Nfpms []struct {
		IDs      []string `yaml:"ids"`
		Formats  []string `yaml:"formats"`
		Bindir   string   `yaml:"bindir"`
		Contents []struct {
			Src string `yaml:"src"`
			Dst string `yaml:"dst"`
		} `yaml:"contents"`
	} `yaml:"nfpms"`
	Changelog struct {
		Sort string `yaml:"sort"`
	} `yaml:"changelog"`
}

const root = "../.."

func load(t *testing.T) goreleaser {
	t.Helper()
	raw, err := os.ReadFile(filepath.Join(root, ".goreleaser.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	var g goreleaser
	if err := yaml.Unmarshal(raw, &g); err != nil {
		t.Fatalf(".goreleaser.yaml: %v", err)
	}
	return g
}

func TestGoreleaserBuild(t *testing.T) {
	g := load(t)
	if g.Version != 2 {
		t.Errorf("version = %d, want 2 (goreleaser v2 schema)", g.Version)
	}
	// regctl is the light build (-tags regctl_lite) and regctl-scan the full one that runs its scans;
	// both are built the same way from the same command tree.
	if len(g.Builds) != 2 {
		t.Fatalf("want the regctl and regctl-scan builds, got %d", len(g.Builds))
	}
	for i, want := range []struct{ id, binary, tags string }{{"regctl", "regctl", "regctl_lite"}, {"regctl-scan", "regctl-scan", ""}} {
		b := g.Builds[i]
		if b.ID != want.id || b.Binary != want.binary || strings.Join(b.Tags, ",") != want.tags {
			t.Errorf("builds[%d] = id %q binary %q tags %v, want %q %q [%s]", i, b.ID, b.Binary, b.Tags, want.id, want.binary, want.tags)
		}
		if b.Main != "./cmd/regctl" {
			t.Errorf("builds[%d].main = %q, want ./cmd/regctl", i, b.Main)
		}
		for _, want := range []string{"CGO_ENABLED=0", "GOEXPERIMENT=jsonv2"} {
			if !slices.Contains(b.Env, want) {
				t.Errorf("builds[%d].env %v lacks %s", i, b.Env, want)
			}
		}
		for _, want := range []string{"linux", "darwin"} {
			if !slices.Contains(b.Goos, want) {
				t.Errorf("builds[%d].goos %v lacks %s", i, b.Goos, want)
			}
		}
		for _, want := range []string{"amd64", "arm64"} {
			if !slices.Contains(b.Goarch, want) {
				t.Errorf("builds[%d].goarch %v lacks %s", i, b.Goarch, want)
			}
		}
		if !slices.Contains(b.Flags, "-trimpath") {
			t.Errorf("builds[%d].flags %v lacks -trimpath", i, b.Flags)
		}
		// The variables the linker sets must exist in cmd/regctl (root.go declares them).
		ld := strings.Join(b.Ldflags, " ")
		for _, want := range []string{"-X main.version=", "-X main.commit=", "-X main.date="} {
			if !strings.Contains(ld, want) {
				t.Errorf("builds[%d].ldflags %q lacks %s", i, ld, want)
			}
		}
	}
}

func TestGoreleaserChecksumAndArchives(t *testing.T) {
	g := load(t)
	if g.Checksum == nil || g.Checksum.NameTemplate == "" {
		t.Error("checksum is not configured")
	} else if g.Checksum.Algorithm != "" && g.Checksum.Algorithm != "sha256" {
		t.Errorf("checksum.algorithm = %q, want sha256", g.Checksum.Algorithm)
	}
	if len(g.Archives) == 0 {
		t.Fatal("no archives")
	}
	if !slices.Equal(g.Archives[0].IDs, []string{"regctl", "regctl-scan"}) {
		t.Errorf("archives[0].ids = %v: both binaries ship together", g.Archives[0].IDs)
	}
	for _, want := range []string{"README.md", "docs/*", "completions/*"} {
		if !slices.Contains(g.Archives[0].Files, want) {
			t.Errorf("archives[0].files %v lacks %s", g.Archives[0].Files, want)
		}
	}
	if g.Changelog.Sort == "" {
		t.Error("changelog.sort is not set")
	}
}

func TestGoreleaserPackages(t *testing.T) {
	g := load(t)
	if len(g.Nfpms) == 0 {
		t.Fatal("no nfpms")
	}
	formats := map[string]bool{}
	dsts := map[string]bool{}
	for _, n := range g.Nfpms {
		if !slices.Equal(n.IDs, []string{"regctl", "regctl-scan"}) {
			t.Errorf("nfpms ids = %v: both binaries ship together", n.IDs)
		}
		for _, f := range n.Formats {
			formats[f] = true
		}
		for _, c := range n.Contents {
			dsts[c.Dst] = true
		}
		if n.Bindir != "" && n.Bindir != "/usr/bin" {
			t.Errorf("nfpm bindir = %q, want /usr/bin", n.Bindir)
		}
	}
	for _, want := range []string{"deb", "rpm"} {
		if !formats[want] {
			t.Errorf("nfpms formats lack %s", want)
		}
	}
	for shell, dst := range map[string]string{
		"bash": "/usr/share/bash-completion/completions/regctl",
		"zsh":  "/usr/share/zsh/vendor-completions/_regctl",
		"fish": "/usr/share/fish/vendor_completions.d/regctl.fish",
	} {
		if !dsts[dst] {
			t.Errorf("nfpm contents do not install the %s completion to %s", shell, dst)
		}
	}
}

// The before hook must be a script in the repository that can be executed as it is, and it must
// write the completion files the archives and packages pick up.
func TestGoreleaserBeforeHook(t *testing.T) {
	g := load(t)
	if len(g.Before.Hooks) == 0 {
		t.Fatal("no before hooks: completions would not be generated")
	}
	for _, hook := range g.Before.Hooks {
		script := strings.Fields(hook)[0]
		fi, err := os.Stat(filepath.Join(root, script))
		if err != nil {
			t.Errorf("before hook %q: %v", hook, err)
			continue
		}
		if fi.Mode().Perm()&0o111 == 0 {
			t.Errorf("before hook %q: %s is not executable (mode %v)", hook, script, fi.Mode().Perm())
		}
		body, err := os.ReadFile(filepath.Join(root, script))
		if err != nil {
			t.Fatal(err)
		}
		for _, want := range []string{"GOEXPERIMENT=jsonv2", "completion", "bash", "zsh", "fish"} {
			if !strings.Contains(string(body), want) {
				t.Errorf("%s does not mention %s", script, want)
			}
		}
	}
	for _, n := range g.Nfpms {
		for _, c := range n.Contents {
			if !strings.HasPrefix(c.Src, "./completions/") && !strings.HasPrefix(c.Src, "completions/") {
				t.Errorf("nfpm content %s is not from completions/, which the hook writes", c.Src)
			}
		}
	}
}
