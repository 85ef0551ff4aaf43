package main

import (
	"bytes"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/common/expfmt"
	"github.com/spf13/cobra"

	"github.com/regctl-dev/regctl/internal/metrics"
	"github.com/regctl-dev/regctl/internal/ui"
)

func newMetricsCmd(f *Factory) *cobra.Command {
	cmd := group(&cobra.Command{
		Use:   "metrics",
		Short: "Prometheus metrics of registries: images, tags, signatures, stored bytes, storage (exporter or textfile)",
		Long: `Export what no registry exports itself, per registry and repository: images (image manifests and
indexes, not platforms or signatures), signed and unsigned images, tags, stored bytes with each blob
counted once, the newest push, and with --storage-path the size and free space of the filesystem
the registry stores on. It works on every registry type (oci, ecr, harbor) through the registry API.

A registry that fails or takes longer than --timeout is reported with regctl_registry_up 0 and its
last good numbers (regctl_registry_last_success_timestamp_seconds says how old), and logged.
The alert rules and the Grafana dashboard in deploy/ use these metrics; see docs/monitoring.md.`,
	})
	cmd.AddCommand(newMetricsServeCmd(f), newMetricsCollectCmd(f))
	return cmd
}

// metricsFlags are shared by serve and collect.
type metricsFlags struct {
	timeout      time.Duration
	jobs         int
	storagePaths []string
}

func (mf *metricsFlags) register(cmd *cobra.Command) {
	cmd.Flags().DurationVar(&mf.timeout, "timeout", 30*time.Second, "longest one registry's collection may take; it is then reported down")
	cmd.Flags().IntVar(&mf.jobs, "jobs", 4, "repositories of one registry read at once")
	cmd.Flags().StringArrayVar(&mf.storagePaths, "storage-path", nil, "REGISTRY=DIR: the directory the registry stores blobs in, for its filesystem's size and free space (a bare DIR with one registry; repeatable)")
}

// collector opens the registries the arguments name (the default registry without any) and
// builds the collector.
func (mf *metricsFlags) collector(f *Factory, a []string) (*metrics.Collector, error) {
	if mf.timeout <= 0 {
		return nil, usageError(errors.New("--timeout must be more than 0"))
	}
	if mf.jobs < 1 {
		return nil, usageError(errors.New("--jobs must be at least 1"))
	}
	res, err := f.Resolver()
	if err != nil {
		return nil, err
	}
	names := a
	if len(names) == 0 {
		reg, err := res.Default()
		if err != nil {
			return nil, err
		}
		names = []string{reg.Name()}
	}
	paths, err := metrics.ParseStoragePaths(mf.storagePaths, names)
	if err != nil {
		return nil, usageError(err)
	}
	c := &metrics.Collector{Timeout: mf.timeout, Jobs: mf.jobs, Logger: f.Logger(), Now: f.Now}
	seen := map[string]string{}
	for _, n := range names {
		if strings.Contains(n, "/") {
			return nil, usageError(fmt.Errorf("%q: name a registry, not a repository", n))
		}
		reg, err := res.Registry(n)
		if err != nil {
			return nil, err
		}
		if prev, dup := seen[reg.Name()]; dup {
			return nil, usageError(fmt.Errorf("%q and %q are the same registry %s", prev, n, reg.Name()))
		}
		seen[reg.Name()] = n
		c.Targets = append(c.Targets, metrics.Target{Source: reg, StoragePath: f.inWorkDir(paths[n])})
	}
	return c, nil
}

func newMetricsServeCmd(f *Factory) *cobra.Command {
	var mf metricsFlags
	var addr string
	var interval time.Duration
	cmd := &cobra.Command{
		Use:   "serve [REGISTRY]... [--addr HOST:PORT]",
		Short: "Serve registries' metrics on /metrics for Prometheus, collected every --interval",
		Long: `Collect the registries every --interval in the background and serve the latest numbers on
/metrics (Prometheus text), with /healthz. A scrape never waits for a registry: it gets the last
collection, so scraping every 15s does not read the registry every 15s, and a slow registry cannot
make /metrics hang. The first collection runs before the listener opens. Stops on SIGINT/SIGTERM.`,
		Example: `  regctl metrics serve local --storage-path /var/lib/regctl/registry
  regctl metrics serve local prod harbor --addr 0.0.0.0:9468 --interval 5m --timeout 2m \
      --storage-path local=/var/lib/regctl/registry`,
		RunE: func(cmd *cobra.Command, a []string) error {
			if interval <= 0 {
				return usageError(errors.New("--interval must be more than 0"))
			}
			c, err := mf.collector(f, a)
			if err != nil {
				return err
			}
			e := &metrics.Exporter{Collector: c, Interval: interval}
			return e.Serve(cmd.Context(), addr, func(url string) {
				f.Notef("metrics of %d registries on %s/metrics (collected every %s); stop with Ctrl-C", len(c.Targets), url, interval)
			})
		},
	}
	mf.register(cmd)
	cmd.Flags().StringVar(&addr, "addr", "127.0.0.1:9468", "listen address")
	cmd.Flags().DurationVar(&interval, "interval", time.Minute, "time between collections; scrapes in between get the last one")
	return cmd
}

func newMetricsCollectCmd(f *Factory) *cobra.Command {
	var mf metricsFlags
	var textfile string
	cmd := &cobra.Command{
		Use:   "collect [REGISTRY]... [--textfile PATH]",
		Short: "Collect registries' metrics once: a node_exporter textfile (atomic) or stdout; cron-ready",
		Long: `Collect the registries once and write the metrics to --textfile atomically (node_exporter's
textfile collector never reads half a file), or print them (Prometheus text; -o json for the
numbers). The file is written even when a registry fails (regctl_registry_up 0); the exit code is
then 1.`,
		Example: `  regctl metrics collect local prod --textfile /var/lib/node_exporter/textfile/regctl_registry.prom
  */10 * * * *  regctl metrics collect local --storage-path /var/lib/regctl/registry --textfile /var/lib/node_exporter/textfile/regctl_registry.prom --log-format json
  regctl metrics collect local -o json | jq '.[].repositories[] | select(.unsigned > 0)'`,
		RunE: func(cmd *cobra.Command, a []string) error {
			c, err := mf.collector(f, a)
			if err != nil {
				return err
			}
			stats := c.Collect(cmd.Context())
			switch {
			case textfile != "":
				if err := metrics.WriteTextfile(f.inWorkDir(textfile), stats); err != nil {
					return err
				}
			case f.Format() == ui.FormatTable:
				reg := prometheus.NewPedanticRegistry()
				reg.MustRegister(metrics.StatsCollector(func() []metrics.RegistryStats { return stats }))
				families, err := reg.Gather()
				if err != nil {
					return err
				}
				var buf bytes.Buffer
				enc := expfmt.NewEncoder(&buf, expfmt.NewFormat(expfmt.TypeTextPlain))
				for _, mf := range families {
					if err := enc.Encode(mf); err != nil {
						return err
					}
				}
				if _, err := f.IO.Out.Write(buf.Bytes()); err != nil {
					return err
				}
			default:
				if err := f.Render(stats, nil); err != nil {
					return err
				}
			}
			var down []string
			for _, s := range stats {
				if !s.Up {
					down = append(down, s.Registry)
				}
			}
			if len(down) > 0 {
				return fmt.Errorf("could not collect %s (see the log; regctl_registry_up is 0)", strings.Join(down, ", "))
			}
			return nil
		},
	}
	mf.register(cmd)
	cmd.Flags().StringVar(&textfile, "textfile", "", "write the metrics here atomically (node_exporter textfile collector) instead of stdout")
	return cmd
}

// writeJobMetrics writes a cron job's --metrics-file (regctl_job_* labelled {job, target}, and the
// job's own gauges) whether the run failed or not; a file that cannot be written is logged, not
// fatal: the job's own outcome decides the exit code.
func writeJobMetrics(f *Factory, path, job, target string, start time.Time, runErr error, values []metrics.Value) {
	if path == "" {
		return
	}
	path = f.inWorkDir(path)
	j := metrics.Job{Name: job, Target: metrics.LabelSafe(target), Start: start, End: f.Now(), Err: runErr, Values: values}
	if err := metrics.WriteJobTextfile(path, j); err != nil {
		f.Logger().Error("writing the metrics file", "file", path, "error", err)
	}
}
