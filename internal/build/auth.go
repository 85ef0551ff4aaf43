package build

import (
	"encoding/base64"
	"encoding/json"
	"os"
	"path/filepath"

	"github.com/google/go-containerregistry/pkg/authn"
)

// WriteAuthDir writes a docker-style config.json holding the registry's credentials (resolved by
// regctl's own auth chain) for the builder, in a private directory, so no `docker login` is needed
// and nothing is left behind: the caller removes the directory after the build. The file always
// exists, even with no credentials, because buildah refuses a DOCKER_CONFIG without config.json.
func WriteAuthDir(dir string, creds map[string]authn.Authenticator) error {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	auths := map[string]map[string]string{}
	for host, a := range creds {
		cfg, err := a.Authorization()
		if err != nil {
			return err
		}
		entry := map[string]string{}
		switch {
		case cfg.Username != "" || cfg.Password != "":
			entry["auth"] = base64.StdEncoding.EncodeToString([]byte(cfg.Username + ":" + cfg.Password))
		case cfg.IdentityToken != "":
			entry["identitytoken"] = cfg.IdentityToken
		case cfg.RegistryToken != "":
			entry["registrytoken"] = cfg.RegistryToken
		default:
			continue // anonymous
		}
		auths[host] = entry
	}
	raw, err := json.Marshal(map[string]any{"auths": auths})
	if err != nil {
		return err
	}
	return os.WriteFile(filepath.Join(dir, "config.json"), raw, 0o600)
}
