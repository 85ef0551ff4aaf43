package build

import (
	"context"
	"errors"
	"fmt"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"

	"github.com/google/go-containerregistry/pkg/name"

	"github.com/regctl-dev/regctl/internal/exitcode"
)

// Builders.
const (
	BuilderAuto    = "auto"
	BuilderBuildx  = "buildx"
	BuilderBuildah = "buildah"
)

// Options describe one build-push.
type Options struct {
	Context           string // build context directory
	Dockerfile        string // default <context>/Dockerfile
	Repo              name.Repository
	OCICacheManifests bool // the registry (ECR) takes registry caches only as OCI image manifests: image-manifest=true,oci-mediatypes=true
	Insecure          bool // plain HTTP / unverified TLS to the registry, passed on to the builder
	Version           string
	Platforms         []string
	BuildArgs         map[string]string // user --build-arg
	Tags              []string
	Git               Git
	Created           string // RFC 3339, the BUILD_DATE and created label
	Builder           string // buildx or buildah (resolved)
	// WorkDir holds buildah's storage and the OCI layout the build is exported to; AuthDir holds a
	// docker-style config.json with the registry's credentials (so no separate `docker login`).
	WorkDir string
	AuthDir string
	// UserDockerConfig is the user's docker config directory; buildx keeps its builders there
	// (BUILDX_CONFIG), so the user's current builder stays in use.
	UserDockerConfig string
	ID               string // unique name for this build's local images
	// CacheRef is buildx's registry cache (default Repo:buildcache, as build-and-push.sh). buildx
	// writes it during the build, before any gate: a separate repository keeps the image
	// repository's tags untouched until the gate passes.
	CacheRef string
}

// DetectBuilder resolves "auto": buildx when `docker buildx` works (it needs a Docker engine or a
// remote builder), else buildah, which builds without a daemon.
func DetectBuilder(ctx context.Context, r Runner, want string) (string, string, error) {
	switch want {
	case BuilderBuildx, BuilderBuildah:
		return want, "asked for with --builder", nil
	case "", BuilderAuto:
	default:
		return "", "", fmt.Errorf("--builder %q: must be auto, buildx or buildah: %w", want, exitcode.ErrUsage)
	}
	if _, err := exec.LookPath("docker"); err == nil {
		if _, err := r.Run(ctx, Cmd{Argv: []string{"docker", "buildx", "inspect", "--bootstrap"}}); err == nil {
			return BuilderBuildx, "docker buildx has a working builder", nil
		}
	}
	if _, err := exec.LookPath("buildah"); err == nil {
		return BuilderBuildah, "no working docker buildx builder; buildah builds without a daemon", nil
	}
	return "", "", errors.New("neither a working `docker buildx` nor `buildah` was found; install one, or pass --builder")
}

func (o *Options) dockerfile() string {
	if o.Dockerfile != "" {
		return o.Dockerfile
	}
	return filepath.Join(o.Context, "Dockerfile")
}

func sortedFlags(flag string, m map[string]string) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var out []string
	for _, k := range keys {
		out = append(out, flag, k+"="+m[k])
	}
	return out
}

// LayoutDir is where the buildah path exports the built image as an OCI layout.
func (o *Options) LayoutDir() string { return filepath.Join(o.WorkDir, "layout") }

// MetadataFile is where buildx writes the pushed digest.
func (o *Options) MetadataFile() string { return filepath.Join(o.WorkDir, "buildx-metadata.json") }

// Commands returns the exact commands the build runs. Neither builder tags anything in the registry:
// buildx pushes by digest (push-by-digest=true), buildah exports an OCI layout that regctl pushes.
func (o *Options) Commands() []Cmd {
	labels := Labels(o.Git, o.Version, o.Created)
	args := BuildArgs(o.Git, o.Version, o.Created, o.BuildArgs)
	env := []string{}
	if o.AuthDir != "" {
		env = append(env, "DOCKER_CONFIG="+o.AuthDir, "REGISTRY_AUTH_FILE="+filepath.Join(o.AuthDir, "config.json"))
		if o.UserDockerConfig != "" {
			env = append(env, "BUILDX_CONFIG="+filepath.Join(o.UserDockerConfig, "buildx"))
		}
	}
	if o.Builder == BuilderBuildx {
		ref := o.CacheRef
		if ref == "" {
			ref = o.Repo.Tag("buildcache").String()
		}
		cache := "type=registry,ref=" + ref
		cacheTo := cache + ",mode=max"
		if o.OCICacheManifests {
			cacheTo += ",image-manifest=true,oci-mediatypes=true"
		}
		output := "type=image,name=" + o.Repo.String() + ",push-by-digest=true,name-canonical=true,push=true"
		if o.Insecure {
			output += ",registry.insecure=true"
		}
		argv := []string{"docker", "buildx", "build", "--platform", strings.Join(o.Platforms, ","),
			"--cache-from", cache, "--cache-to", cacheTo}
		argv = append(argv, sortedFlags("--build-arg", args)...)
		argv = append(argv, sortedFlags("--label", labels)...)
		argv = append(argv, "--output", output, "--metadata-file", o.MetadataFile(), "-f", o.dockerfile(), o.Context)
		return []Cmd{{Dir: o.Context, Env: env, Argv: argv, Mask: o.masked()}}
	}

	base := []string{"buildah", "--root", filepath.Join(o.WorkDir, "storage"), "--runroot", filepath.Join(o.WorkDir, "run"), "--storage-driver", "vfs"}
	local := "localhost/regctl-build:" + o.ID
	var cmds []Cmd
	var images []string
	for _, p := range o.Platforms {
		img := local + "-" + strings.ReplaceAll(p, "/", "-")
		images = append(images, img)
		argv := append(append([]string{}, base...), "bud", "--isolation", "chroot", "--platform", p)
		if o.Insecure {
			argv = append(argv, "--tls-verify=false")
		}
		if o.AuthDir != "" {
			argv = append(argv, "--authfile", filepath.Join(o.AuthDir, "config.json"))
		}
		argv = append(argv, sortedFlags("--build-arg", args)...)
		argv = append(argv, sortedFlags("--label", labels)...)
		argv = append(argv, "-f", o.dockerfile(), "-t", img, o.Context)
		cmds = append(cmds, Cmd{Dir: o.Context, Env: env, Argv: argv, Mask: o.masked()})
	}
	dest := "oci:" + o.LayoutDir() + ":build"
	if len(images) == 1 {
		cmds = append(cmds, Cmd{Argv: append(append([]string{}, base...), "push", "--format", "oci", images[0], dest)})
	} else {
		cmds = append(cmds, Cmd{Argv: append(append([]string{}, base...), "manifest", "create", local)})
		for _, img := range images {
			cmds = append(cmds, Cmd{Argv: append(append([]string{}, base...), "manifest", "add", local, "containers-storage:"+img)})
		}
		cmds = append(cmds, Cmd{Argv: append(append([]string{}, base...), "manifest", "push", "--all", "--format", "oci", local, dest)})
	}
	return cmds
}

// masked are the user's build args, hidden in printed commands and reports.
func (o *Options) masked() []string {
	var m []string
	for k, v := range o.BuildArgs {
		m = append(m, k+"="+v)
	}
	return m
}

// Cleanup removes this build's local images from buildah's storage (best effort).
func (o *Options) Cleanup() []Cmd {
	if o.Builder != BuilderBuildah {
		return nil
	}
	base := []string{"buildah", "--root", filepath.Join(o.WorkDir, "storage"), "--runroot", filepath.Join(o.WorkDir, "run"), "--storage-driver", "vfs"}
	names := []string{"localhost/regctl-build:" + o.ID}
	for _, p := range o.Platforms {
		names = append(names, "localhost/regctl-build:"+o.ID+"-"+strings.ReplaceAll(p, "/", "-"))
	}
	return []Cmd{{Argv: append(append(base, "rmi", "--force"), names...)}}
}
