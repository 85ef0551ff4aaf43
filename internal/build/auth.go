package build

import (
	"encoding/base64"
	"encoding/json"
	"os"
	"path/filepath"

	"github.com/google/go-containerregistry/pkg/authn"
)

// WriteAuthDir writes a docker-style config.json for the builder in a private directory: the user's
// own config (logins and credential helpers for other registries, e.g. a private base image) with the
// target registry's credentials, resolved by regctl's auth chain, added — so no `docker login` is
// needed and nothing is left behind (the caller removes the directory). The file always exists,
// because buildah refuses a DOCKER_CONFIG without config.json.
func WriteAuthDir(dir string, userConfig []byte, creds map[string]authn.Authenticator) error {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	out := map[string]any{}
	var user map[string]json.RawMessage
	if len(userConfig) > 0 && json.Unmarshal(userConfig, &user) == nil {
		for _, k := range []string{"credHelpers", "credsStore"} {
			if v, ok := user[k]; ok {
				out[k] = v
			}
		}
	}
	auths := map[string]map[string]string{}
	if raw, ok := user["auths"]; ok {
		_ = json.Unmarshal(raw, &auths)
	}
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
	out["auths"] = auths
	raw, err := json.Marshal(out)
	if err != nil {
		return err
	}
	return os.WriteFile(filepath.Join(dir, "config.json"), raw, 0o600)
}
