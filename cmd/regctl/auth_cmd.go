package main

import (
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/spf13/cobra"

	"github.com/regctl-dev/regctl/internal/build"
	"github.com/regctl-dev/regctl/internal/exitcode"
	"github.com/regctl-dev/regctl/internal/fsutil"
	"github.com/regctl-dev/regctl/internal/registry"
)

// credentials resolves a registry's login through regctl's own auth (ECR tokens, password_env…).
func credentials(reg registry.Registry) (*authn.AuthConfig, error) {
	repo, err := registry.RepositoryRef(reg, "regctl/login")
	if err != nil {
		return nil, err
	}
	a, err := reg.Keychain().Resolve(repo)
	if err != nil {
		return nil, err
	}
	cfg, err := a.Authorization()
	if err != nil {
		return nil, err
	}
	if cfg.Username == "" && cfg.Password == "" && cfg.IdentityToken == "" && cfg.RegistryToken == "" {
		return nil, exitcode.With(exitcode.Auth, fmt.Errorf("%s: regctl has no credentials for this registry", reg.Host()))
	}
	return cfg, nil
}

func newAuthCmd(f *Factory) *cobra.Command {
	cmd := group(&cobra.Command{Use: "auth", Short: "Hand regctl's registry credentials (ECR tokens included) to docker and buildx"})
	login := &cobra.Command{
		Use:   "login REGISTRY",
		Short: "Store the registry's credentials in the docker config, so docker and buildx can push",
		Long: `Write REGISTRY's credentials, as regctl resolves them (an ECR token from the AWS credential chain,
or username with password_env/password_file), into the docker config ($DOCKER_CONFIG/config.json,
else ~/.docker/config.json; mode 0600). ECR tokens last 12 hours. To keep tokens out of files
altogether, use regctl as a docker credential helper instead:

  ln -s "$(command -v regctl)" /usr/local/bin/docker-credential-regctl
  # ~/.docker/config.json: {"credHelpers": {"123456789012.dkr.ecr.us-east-1.amazonaws.com": "regctl"}}`,
		Example: "  regctl auth login prod",
		Args:    args(cobra.ExactArgs(1)),
		RunE: func(cmd *cobra.Command, a []string) error {
			res, err := f.Resolver()
			if err != nil {
				return err
			}
			reg, err := res.Registry(a[0])
			if err != nil {
				return err
			}
			cfg, err := credentials(reg)
			if err != nil {
				return err
			}
			dir := build.UserDockerConfig(f.Getenv)
			if dir == "" {
				return usageError(errors.New("neither DOCKER_CONFIG nor HOME is set"))
			}
			path := filepath.Join(dir, "config.json")
			doc := map[string]any{}
			if raw, err := os.ReadFile(path); err == nil {
				if err := json.Unmarshal(raw, &doc); err != nil {
					return fmt.Errorf("%s is not valid JSON; not changing it: %w", path, err)
				}
			}
			auths, _ := doc["auths"].(map[string]any)
			if auths == nil {
				auths = map[string]any{}
			}
			auths[reg.Host()] = map[string]any{"auth": base64.StdEncoding.EncodeToString([]byte(cfg.Username + ":" + cfg.Password))}
			doc["auths"] = auths
			raw, _ := json.MarshalIndent(doc, "", "\t")
			if err := os.MkdirAll(dir, 0o700); err != nil {
				return err
			}
			if err := fsutil.WriteFileAtomic(path, append(raw, '\n'), 0o600); err != nil {
				return err
			}
			f.Notef("Login Succeeded: %s (credentials stored in %s)", reg.Host(), path)
			return nil
		},
	}
	cmd.AddCommand(login)
	return cmd
}

// newCredentialHelperCmd is docker's credential-helper protocol: `get` reads a server URL on stdin
// and writes {"ServerURL","Username","Secret"}. It runs as `regctl credential-helper get`, or as
// `docker-credential-regctl get` through a symlink (main maps the program name).
func newCredentialHelperCmd(f *Factory) *cobra.Command {
	return &cobra.Command{
		Use:    "credential-helper get|store|erase|list",
		Short:  "Docker credential helper (use through a docker-credential-regctl symlink)",
		Hidden: true,
		Args:   args(cobra.ExactArgs(1)),
		RunE: func(cmd *cobra.Command, a []string) error {
			switch a[0] {
			case "list":
				_, err := fmt.Fprintln(f.IO.Out, "{}")
				return err
			case "store", "erase":
				_, _ = io.Copy(io.Discard, f.IO.In)
				return nil // regctl resolves credentials itself; nothing to keep
			case "get":
			default:
				return usageError(fmt.Errorf("unknown credential helper action %q", a[0]))
			}
			in, err := io.ReadAll(io.LimitReader(f.IO.In, 4096))
			if err != nil {
				return err
			}
			server := strings.TrimSpace(string(in))
			host := strings.TrimSuffix(strings.TrimPrefix(strings.TrimPrefix(server, "https://"), "http://"), "/")
			res, err := f.Resolver()
			if err != nil {
				return err
			}
			// The host may belong to a configured registry that has no url (ECR: the host comes from
			// the service), so look through the configured ones too.
			var cfg *authn.AuthConfig
			candidates := []string{host}
			conf, err := f.Config()
			if err != nil {
				return err
			}
			for name := range conf.Registries {
				candidates = append(candidates, name)
			}
			for _, c := range candidates {
				reg, err := res.Registry(c)
				if err != nil || reg.Host() != host {
					continue
				}
				if cfg, err = credentials(reg); err == nil {
					break
				}
			}
			if cfg == nil {
				// docker's helper protocol: this exact message means "no credentials", not a failure.
				return exitcode.With(exitcode.NotFound, errors.New("credentials not found in native keychain"))
			}
			return json.NewEncoder(f.IO.Out).Encode(map[string]string{"ServerURL": server, "Username": cfg.Username, "Secret": cfg.Password})
		},
	}
}
