package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/spf13/cobra"

	"github.com/regctl-dev/regctl/internal/admission"
	"github.com/regctl-dev/regctl/internal/config"
	"github.com/regctl-dev/regctl/internal/exitcode"
	"github.com/regctl-dev/regctl/internal/registry"
)

// admissionPolicy is the config's verify section as the webhook's policy; errors name the key.
func admissionPolicy(f *Factory, v config.Verify) (admission.Policy, error) {
	p := admission.Policy{Enforce: v.Mode != "audit", AllowUnmatched: v.Unmatched == "allow", Exclude: v.Exclude}
	for _, r := range v.Rules {
		rule := admission.Rule{Images: r.Images, Annotations: r.Annotations}
		for _, k := range r.Keys {
			kr, err := f.keyRef(k)
			if err != nil {
				return p, err
			}
			rule.Keys = append(rule.Keys, kr)
		}
		p.Rules = append(p.Rules, rule)
	}
	if err := p.Check(); err != nil {
		return p, usageError(fmt.Errorf("verify.%w", err))
	}
	return p, nil
}

func newVerifyServeCmd(f *Factory) *cobra.Command {
	var (
		addr, cert, key, caFile, namespace, image, outDir string
		timeout, ttl                                      time.Duration
		printManifests                                    bool
	)
	cmd := &cobra.Command{
		Use:   "serve --tls-cert C --tls-key K [--addr :8443]",
		Short: "Run the Kubernetes admission webhook that admits Pods only with signed images",
		Long: `Serve a validating admission webhook (AdmissionReview v1 and v1beta1 on /verify, /healthz and
/readyz) over HTTPS: a Pod is admitted when every container, initContainer and ephemeralContainer
image passes the verify section of regctl's config, with the same checks as regctl verify. On
UPDATE only images that changed are checked, so old Pods stay manageable.

  verify:
    mode: enforce            # or audit: admit, and return each failure as a warning
    unmatched: deny          # or allow: images no rule matches
    exclude: ["registry.k8s.io/**"]
    rules:
      - images: ["123456789012.dkr.ecr.ap-northeast-2.amazonaws.com/game-server/*"]
        keys: [/etc/regctl/keys/cosign.pub]      # or awskms:///alias/...; one valid signature suffices
        annotations: {team: game}

A tag is resolved to its digest on every review; a verified digest stays verified for --cache-ttl.
Registry calls stop at --timeout (keep it under the webhook's timeoutSeconds, 10 by default), so
an unreachable registry is a denial naming it, and failurePolicy decides only if regctl itself is
down. --print-manifests writes the Deployment, Service and the guide's ValidatingWebhookConfiguration.`,
		Example: `  regctl verify serve --config /etc/regctl/config/config.yaml --tls-cert tls.crt --tls-key tls.key
  regctl verify serve --print-manifests --ca-file ca.pem --image ghcr.io/example/regctl:v1 > verify-webhook.yaml`,
		Args: args(cobra.NoArgs),
		RunE: func(cmd *cobra.Command, _ []string) error {
			if printManifests {
				var ca []byte
				if caFile != "" {
					var err error
					if ca, err = os.ReadFile(f.inWorkDir(caFile)); err != nil {
						return exitcode.With(exitcode.NotFound, fmt.Errorf("--ca-file: %w", err))
					}
				}
				m, err := admission.RenderManifests(admission.ManifestOptions{Namespace: namespace, Image: image, CABundle: ca})
				if err != nil {
					return err
				}
				for _, n := range admission.Manifests {
					if outDir != "" {
						if err := os.WriteFile(filepath.Join(f.inWorkDir(outDir), n), m[n], 0o644); err != nil {
							return err
						}
						continue
					}
					if _, err := f.IO.Out.Write(m[n]); err != nil {
						return err
					}
				}
				return nil
			}
			if cert == "" || key == "" {
				return usageError(errors.New("--tls-cert and --tls-key are required: the API server calls webhooks over HTTPS only"))
			}
			cfg, err := f.Config()
			if err != nil {
				return err
			}
			pol, err := admissionPolicy(f, cfg.Verify)
			if err != nil {
				return err
			}
			res, err := f.Resolver()
			if err != nil {
				return err
			}
			checker := webhookChecker(f, cfg, res)
			if err := checker.LoadKeys(cmd.Context(), pol); err != nil {
				return usageError(fmt.Errorf("verify.%w", err))
			}
			srv := &admission.Server{Policy: pol, Checker: checker, Timeout: timeout, CacheTTL: ttl, Now: f.Now, Logger: f.Logger()}
			mode := "enforce"
			if !pol.Enforce {
				mode = "audit"
			}
			return admission.ServeTLS(cmd.Context(), addr, f.inWorkDir(cert), f.inWorkDir(key), srv, func(url string) {
				f.Notef("verify webhook listening on %s/verify (%s, %d rules); stop with SIGTERM", url, mode, len(pol.Rules))
			})
		},
	}
	fl := cmd.Flags()
	fl.StringVar(&addr, "addr", ":8443", "listen address")
	fl.StringVar(&cert, "tls-cert", "", "serving certificate (PEM)")
	fl.StringVar(&key, "tls-key", "", "its private key (PEM)")
	fl.DurationVar(&timeout, "timeout", 8*time.Second, "deadline for one review's registry calls (under the webhook's timeoutSeconds)")
	fl.DurationVar(&ttl, "cache-ttl", 5*time.Minute, "how long a verified digest stays verified")
	fl.BoolVar(&printManifests, "print-manifests", false, "print the Deployment, Service and ValidatingWebhookConfiguration, and exit")
	fl.StringVar(&caFile, "ca-file", "", "with --print-manifests: the CA (PEM) that signed the serving certificate, for caBundle")
	fl.StringVar(&namespace, "namespace", "kube-system", "with --print-manifests: the namespace (the guide's kube-system)")
	fl.StringVar(&image, "image", "ghcr.io/regctl-dev/regctl:latest", "with --print-manifests: the regctl image")
	fl.StringVar(&outDir, "out-dir", "", "with --print-manifests: write deployment.yaml, service.yaml, webhook.yaml there")
	return cmd
}

// webhookChecker reads registries as the config says: an image's host is the host of a registry
// of the config (an ECR registry's <account>.dkr.ecr.<region>.amazonaws.com, which its config
// names by account and region, not by url) with that registry's credentials, else an anonymous
// OCI registry.
func webhookChecker(f *Factory, cfg *config.Config, res *registry.Resolver) *admission.RegistryChecker {
	var mu sync.Mutex // the resolver opens registries lazily and is not safe for concurrent use
	byHost := map[string]string{}
	for n := range cfg.Registries {
		reg, err := res.Registry(n)
		if err != nil {
			f.Logger().Warn("registry not opened for the webhook; its images are read anonymously", "registry", n, "error", err)
			continue
		}
		byHost[reg.Host()] = n
	}
	return &admission.RegistryChecker{Remote: func(_ context.Context, host string) ([]remote.Option, error) {
		mu.Lock()
		defer mu.Unlock()
		target := host
		if n, ok := byHost[host]; ok {
			target = n
		}
		reg, err := res.Registry(target)
		if err != nil {
			return nil, err
		}
		return reg.Remote(), nil
	}}
}
