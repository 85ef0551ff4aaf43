package build

import (
	"context"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"

	"github.com/google/go-containerregistry/pkg/authn"
)

// Platforms are the platforms to build: --platform (comma-separated), else the config's, else
// build-and-push.sh's linux/amd64 and linux/arm64.
func Platforms(flag string, configured []string) []string {
	if flag != "" {
		return strings.Split(flag, ",")
	}
	if len(configured) > 0 {
		return configured
	}
	return []string{"linux/amd64", "linux/arm64"}
}

// UserDockerConfig is $DOCKER_CONFIG, else ~/.docker ("" when neither is known), from an injected
// environment lookup.
func UserDockerConfig(getenv func(string) string) string {
	if d := getenv("DOCKER_CONFIG"); d != "" {
		return d
	}
	if h := getenv("HOME"); h != "" {
		return filepath.Join(h, ".docker")
	}
	return ""
}

// IsLoopback: go-containerregistry speaks plain HTTP to localhost registries by itself; the
// builders need to be told (buildah --tls-verify=false, buildx registry.insecure=true).
func IsLoopback(host string) bool {
	h := host
	if i := strings.LastIndex(host, ":"); i > strings.LastIndex(host, "]") {
		h = host[:i]
	}
	if h == "localhost" {
		return true
	}
	ip := net.ParseIP(strings.Trim(h, "[]"))
	return ip != nil && ip.IsLoopback() // not a host name that merely starts with 127.
}

// PrepareAuth gives the builders regctl's credentials for the target registry: it resolves them
// from the registry's keychain (bounded by ctx: an ECR token fetch stops with Ctrl-C) and writes
// o.AuthDir, keeping the user's other docker config entries. No `docker login` step, and the
// secret only ever lives in that private directory.
// host is the key the builders look the registry up by (the registry's own host as configured).
func PrepareAuth(ctx context.Context, o *Options, kc authn.Keychain, target authn.Resource, host string) error {
	auth, err := authn.Resolve(ctx, kc, target)
	if err != nil {
		return fmt.Errorf("credentials for %s: %w", host, err)
	}
	var userCfg []byte
	if o.UserDockerConfig != "" {
		userCfg, _ = os.ReadFile(filepath.Join(o.UserDockerConfig, "config.json")) // none is fine
	}
	return WriteAuthDir(o.AuthDir, userCfg, map[string]authn.Authenticator{host: auth})
}
