package main

import (
	"fmt"
	"strings"

	"github.com/spf13/cobra"

	"github.com/regctl-dev/regctl/internal/exitcode"
)

// helpTopics are `regctl help exit-codes` and `regctl help environment`.
func helpTopics() []*cobra.Command {
	var codes strings.Builder
	codes.WriteString("regctl exits with one of these codes, so scripts and CI can tell outcomes apart:\n\n")
	for _, c := range exitcode.Doc {
		fmt.Fprintf(&codes, "  %d  %s\n", c.Code, c.Meaning)
	}
	codes.WriteString("\nA policy violation (3) is never reported as an error (1): a CI gate can trust the difference.")
	return []*cobra.Command{
		{Use: "exit-codes", Short: "Exit codes and what they mean", Long: codes.String()},
		{Use: "environment", Short: "Environment variables regctl reads", Long: environmentHelp},
	}
}

const environmentHelp = `Environment variables:

  REGCTL_<KEY>          override a config key: the dotted path upper-cased with _ for . and -,
                        e.g. REGCTL_DEFAULT_REGISTRY=prod, REGCTL_REGISTRIES_LOCAL_URL=127.0.0.1:6000,
                        REGCTL_SCAN_SEVERITIES=CRITICAL,HIGH. Keys under registries.<name> can be
                        overridden for registries the config file defines.
  XDG_CONFIG_HOME       where the user config lives ($XDG_CONFIG_HOME/regctl/config.yaml;
                        default ~/.config)
  NO_COLOR              disable colour (like --no-color)
  DOCKER_CONFIG         docker config directory with credentials and credential helpers, used for
                        registries without username/password in the config
  <password_env>        the variable a registry's password_env names holds its password or token
  HTTPS_PROXY, NO_PROXY standard proxy settings for registry traffic
  REGCTL_SCANNER        path of regctl-scan, which runs regctl's scan commands (default: beside
                        regctl, then PATH)
  COSIGN_PASSWORD       password of a cosign.key (sign, sign generate-key-pair, build-push --sign);
                        set (even empty) it wins, else regctl asks on a terminal
  XDG_CACHE_HOME        where the vulnerability DB is cached ($XDG_CACHE_HOME/regctl/trivy;
                        default ~/.cache)
  AWS_REGION, AWS_PROFILE, AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, AWS_SESSION_TOKEN
                        the AWS default credential chain, for awskms:// keys and s3:// backups
  AWS_ENDPOINT_URL_S3   an S3-compatible endpoint for backups (path-style addressing is used)
  AWS_CA_BUNDLE         extra CA certificates for AWS endpoints (KMS, S3)

Precedence: config file < REGCTL_* environment < command-line flags.
regctl never reads REGCTL_CONFIG or ~/.regctl (those belong to regclient's regctl).`
