package ecr

import (
	"context"
	"fmt"
	"regexp"

	"github.com/google/go-containerregistry/pkg/authn"

	"github.com/regctl-dev/regctl/internal/config"
	"github.com/regctl-dev/regctl/internal/registry"
)

// Type is the config type of an ECR registry.
const Type = "ecr"

// Settings are an ECR registry's own config keys.
type Settings struct {
	Region   string `mapstructure:"region"`   // required
	Account  string `mapstructure:"account"`  // 12 digits; "" = the caller's account (from a token)
	Profile  string `mapstructure:"profile"`  // shared config profile
	Endpoint string `mapstructure:"endpoint"` // API endpoint override: VPC endpoints, emulators
}

var accountID = regexp.MustCompile(`^\d{12}$`)

// Backend is the `type: ecr` backend: its config keys and rules, and Open.
func Backend() registry.Backend {
	return registry.Backend{
		Kind: config.Kind{
			Type: Type,
			Keys: map[string]config.KeyKind{"region": config.KeyString, "account": config.KeyString, "profile": config.KeyString, "endpoint": config.KeyString},
			Check: func(rc config.Registry) []config.Problem {
				s, err := settings(rc)
				if err != nil {
					return []config.Problem{{Path: "(settings)", Msg: err.Error()}}
				}
				var ps []config.Problem
				if s.Region == "" {
					ps = append(ps, config.Problem{Path: "region", Msg: "required for type ecr (e.g. us-east-1)"})
				}
				if s.Account != "" && !accountID.MatchString(s.Account) {
					ps = append(ps, config.Problem{Path: "account", Msg: fmt.Sprintf("must be a 12-digit AWS account id, got %q", s.Account)})
				}
				return ps
			},
		},
		Open: Open,
	}
}

func settings(rc config.Registry) (Settings, error) {
	var s Settings
	err := rc.DecodeSettings(&s)
	return s, err
}

// compile-time check: Open is a registry.Opener.
var _ registry.Opener = func(ctx context.Context, name string, rc config.Registry, opts registry.Options) (registry.Registry, error) {
	return Open(ctx, name, rc, opts)
}

var _ authn.ContextKeychain = (*tokenKeychain)(nil)
