package main

import (
	"errors"
	"strconv"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/spf13/cobra"

	"github.com/regctl-dev/regctl/internal/localreg"
	"github.com/regctl-dev/regctl/internal/metrics"
	"github.com/regctl-dev/regctl/internal/registry"
	"github.com/regctl-dev/regctl/internal/sample"
	"github.com/regctl-dev/regctl/internal/ui"
)

func newRegistryCmd(f *Factory) *cobra.Command {
	cmd := group(&cobra.Command{
		Use:   "registry",
		Short: "Run the embedded CNCF distribution registry, collect its garbage, seed sample images",
	})
	cmd.AddCommand(newRegistryServeCmd(f), newRegistryGCCmd(f), newRegistrySeedCmd(f))
	return cmd
}

func newRegistryServeCmd(f *Factory) *cobra.Command {
	var o localreg.Options
	cmd := &cobra.Command{
		Use:   "serve",
		Short: "Run the CNCF distribution registry (filesystem storage, deletes enabled) until SIGINT/SIGTERM",
		Long: `Run the CNCF distribution registry in-process: filesystem storage under --root, deletes enabled
(lifecycle and restore need them), optional basic auth (--htpasswd, bcrypt entries as made by
'htpasswd -Bbn user pass') and TLS. It listens on 127.0.0.1:5000 by default and stops cleanly on
SIGINT or SIGTERM, finishing requests in flight.

--metrics-addr serves the registry's own Prometheus metrics on a second listener: request counts,
latency and sizes by route (registry_http_requests_total{handler,method,code},
registry_http_request_duration_seconds), storage driver latency (registry_storage_action_seconds)
and the size and free space of the filesystem under --root (regctl_storage_*). See docs/monitoring.md.`,
		Example: `  regctl registry serve --root /var/lib/regctl/registry
  regctl registry serve --root /var/lib/regctl/registry --metrics-addr 127.0.0.1:5001
  regctl registry serve --addr 127.0.0.1:5443 --root ./reg --htpasswd ./htpasswd --tls-cert cert.pem --tls-key key.pem`,
		Args: args(cobra.NoArgs),
		RunE: func(cmd *cobra.Command, _ []string) error {
			if o.Root == "" {
				return usageError(errors.New("--root is required (the directory the registry stores images in)"))
			}
			if o.MetricsAddr != "" {
				root := o.Root // as the registry itself opens it
				o.MetricsCollectors = []prometheus.Collector{metrics.StorageCollector{Registry: o.Addr, Path: root,
					Logger: func(err error) { f.Logger().Warn("reading the storage filesystem", "path", root, "error", err) }}}
				o.MetricsReady = func(url string) { f.Notef("metrics on %s", url) }
			}
			o.Log = f.IO.ErrOut
			o.LogLevel = map[int]string{0: "warn", 1: "info"}[min(f.flags.verbose, 1)]
			if f.flags.verbose >= 2 {
				o.LogLevel = "debug"
			}
			return localreg.Serve(cmd.Context(), o, func(url string) {
				f.Notef("registry listening on %s (storage %s); stop with Ctrl-C", url, o.Root)
			})
		},
	}
	fl := cmd.Flags()
	fl.StringVar(&o.Addr, "addr", "127.0.0.1:5000", "listen address")
	fl.StringVar(&o.Root, "root", "", "storage directory (required)")
	fl.StringVar(&o.Htpasswd, "htpasswd", "", "htpasswd file (bcrypt) enabling basic auth")
	fl.StringVar(&o.TLSCert, "tls-cert", "", "TLS certificate (PEM)")
	fl.StringVar(&o.TLSKey, "tls-key", "", "TLS private key (PEM)")
	fl.StringVar(&o.MetricsAddr, "metrics-addr", "", "serve distribution's Prometheus metrics (registry_http_*, registry_storage_*) and the storage filesystem's size on /metrics here, e.g. 127.0.0.1:5001")
	return cmd
}

func newRegistryGCCmd(f *Factory) *cobra.Command {
	var root string
	var dryRun bool
	cmd := &cobra.Command{
		Use:   "gc",
		Short: "Reclaim space: remove blobs no manifest references (registry must be stopped)",
		Long: `Run the distribution library's mark-and-sweep garbage collector over a registry's storage
directory. Deleting images (lifecycle apply) only unlinks manifests; gc removes the blobs nothing
references any more. Like 'registry garbage-collect' it is offline: stop the registry first (regctl
cannot tell whether another process serves the directory).

Manifests are never removed by gc: the library's delete-untagged mode would also remove the untagged
platform manifests of multi-arch images. Delete images with 'regctl lifecycle apply', then run gc.`,
		Example: "  regctl registry gc --root /var/lib/regctl/registry --dry-run\n  regctl registry gc --root /var/lib/regctl/registry",
		Args:    args(cobra.NoArgs),
		RunE: func(cmd *cobra.Command, _ []string) error {
			if root == "" {
				return usageError(errors.New("--root is required"))
			}
			res, err := localreg.GC(cmd.Context(), root, dryRun, f.IO.ErrOut, map[bool]string{true: "info", false: "warn"}[f.flags.verbose > 0])
			if err != nil {
				return err
			}
			return f.Render(res, func() ui.Table {
				verb := "removed"
				if dryRun {
					verb = "removable (dry run)"
				}
				return ui.Table{Headers: []string{"repositories", "manifests", "blobs before", "blobs " + verb, "bytes " + verb, "blobs after"},
					Rows: [][]string{{strconv.Itoa(res.Repositories), strconv.Itoa(res.Manifests), strconv.Itoa(res.BlobsBefore),
						strconv.Itoa(res.BlobsRemovable), humanSize(res.BytesRemovable), strconv.Itoa(res.BlobsAfter)}}}
			})
		},
	}
	cmd.Flags().StringVar(&root, "root", "", "the registry's storage directory (required)")
	cmd.Flags().BoolVar(&dryRun, "dry-run", false, "report what would be removed, remove nothing")
	return cmd
}

func newRegistrySeedCmd(f *Factory) *cobra.Command {
	return &cobra.Command{
		Use:   "seed REGISTRY/REPO",
		Short: "Push a small set of sample images (for demos and trying policies)",
		Long: `Push a deterministic sample set into a repository: release tags v1.0.0-v1.0.2 built 30, 20 and 10
days ago, staging (3 days), dev-3f2a9c1 (2 days), a two-platform index tagged latest with a
cosign-style signature tag, and one untagged image pushed by digest. Ages count from the start of
today (UTC), so re-running on the same day pushes nothing new.`,
		Example: "  regctl registry seed 127.0.0.1:5000/game-server",
		Args:    args(cobra.ExactArgs(1)),
		RunE: func(cmd *cobra.Command, a []string) error {
			reg, repo, err := f.repository(a[0])
			if err != nil {
				return err
			}
			ref, err := registry.RepositoryRef(reg, repo)
			if err != nil {
				return err
			}
			// Registries that need a repository before a push (ECR) get one.
			if _, err := reg.EnsureRepository(cmd.Context(), repo, registry.RepositorySpec{}); err != nil {
				return err
			}
			pushed, err := sample.Seed(cmd.Context(), ref, f.Now(), reg.Remote()...)
			if err != nil {
				return err
			}
			return f.Render(pushed, func() ui.Table {
				t := ui.Table{Headers: []string{"reference", "digest", "what"}}
				for _, p := range pushed {
					t.Rows = append(t.Rows, []string{p.Reference, shortDigest(p.Digest.String()), p.What})
				}
				return t
			})
		},
	}
}
