package main

import (
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/spf13/cobra"

	"github.com/regctl-dev/regctl/internal/metrics"
	"github.com/regctl-dev/regctl/internal/replicate"
	"github.com/regctl-dev/regctl/internal/ui"
)

func newReplicateCmd(f *Factory) *cobra.Command {
	var o replicate.Options
	var platforms, metricsFile string
	var yes bool
	cmd := &cobra.Command{
		Use:   "replicate SRC DST",
		Short: "Copy repositories between any two registries (oci, ecr, harbor), incrementally, digests unchanged",
		Long: `Copy every selected repository of SRC to DST through the registry API, so it works between any two
of regctl's backends: Harbor to ECR, ECR to a DR Harbor, GHCR to a private mirror. SRC and DST are
registries (config names or hosts) or repositories (REGISTRY/REPO); a registry copies every
repository --repos selects, to the same path on DST under --dest-prefix.

Tags, indexes with all their platforms (or --platforms), cosign signatures, attestations and SBOMs
(sha256-<hex>.sig/.att/.sbom tags) and OCI 1.1 referrers arrive with their subject and with the
same digests, so regctl verify and cosign verify pass on DST. With --tags or --exclude, an
attachment is copied when its subject is.

Incremental: a tag DST already has with the same digest costs one HEAD on each side; a blob DST
has costs one HEAD; a blob this run already put in another DST repository is mounted from there
(no bytes sent). A tag is written only after everything it reaches is on DST, so a run killed at
any point leaves no tag pointing at an incomplete image, and the next run finishes the job.
Repositories are created where the backend needs it (ECR, with the source's settings when SRC is
ECR too; Harbor projects).

--delete removes DST tags that SRC no longer has, among the tags the filters select only (off by
default; --dry-run shows the plan; --yes when not on a terminal; more than --max-delete and
nothing is deleted). Other DST tags, and DST repositories SRC does not have, are never touched.

Exit 0 when everything replicated, 1 when a repository or tag failed (the others are still copied),
2 on bad arguments, 5 when SRC has nothing the filters select.`,
		Example: `  regctl replicate harbor ecr-dr --repos 'game-server/*'
  regctl replicate ghcr.io/acme/api local/mirror/api --tags 'v*' --platforms linux/amd64,linux/arm64
  regctl replicate local dr --dest-prefix backup --delete --dry-run
  regctl replicate local dr --delete --yes --max-delete 20 -o json --metrics-file /var/lib/node_exporter/regctl_replicate.prom`,
		Args: args(cobra.ExactArgs(2)),
		RunE: func(cmd *cobra.Command, a []string) error {
			if o.MaxDelete < 0 {
				return usageError(errors.New("--max-delete must be 0 (no limit) or more"))
			}
			if o.Jobs < 0 {
				return usageError(errors.New("--jobs must be 1 or more"))
			}
			ps, err := replicate.ParsePlatforms(platforms)
			if err != nil {
				return err
			}
			o.Platforms = ps
			interactive := f.IO.InTTY && f.IO.ErrTTY
			if o.Delete && !o.DryRun && !yes && !interactive {
				return usageError(errors.New("--delete needs --yes when not on a terminal (or --dry-run to see the plan)"))
			}
			src, err := f.endpoint(a[0])
			if err != nil {
				return fmt.Errorf("SRC: %w", err)
			}
			dst, err := f.endpoint(a[1])
			if err != nil {
				return fmt.Errorf("DST: %w", err)
			}
			o.Logger = f.Logger()
			if o.Delete && !yes && interactive {
				o.Confirm = func(ds []replicate.Deletion) (bool, error) {
					for _, d := range ds {
						fmt.Fprintf(f.IO.ErrOut, "  delete %s/%s:%s (%s)\n", dst.Registry.Name(), d.Repository, d.Tag, shortDigest(d.Digest))
					}
					return f.Ask(fmt.Sprintf("Delete these %d tags from %s?", len(ds), dst.Registry.Name())), nil
				}
			}
			if f.IO.ErrTTY {
				o.Progress = func(p replicate.Progress) {
					fmt.Fprintf(f.IO.ErrOut, "\r%s: %d/%d tags, %s sent    ", p.Repository, p.TagsDone, p.Tags, humanSize(p.BytesSent))
				}
			}
			start := f.Now()
			res, runErr := replicate.Run(cmd.Context(), src, dst, o)
			if f.IO.ErrTTY && o.Progress != nil {
				fmt.Fprintln(f.IO.ErrOut)
			}
			if metricsFile != "" {
				if err := metrics.WriteJobTextfile(f.inWorkDir(metricsFile), replicateJob(src, dst, res, start, f.Now(), runErr)); err != nil {
					f.Logger().Error("writing the metrics file", "file", metricsFile, "error", err)
				}
			}
			if res == nil {
				return runErr
			}
			f.Logger().Info("replicate finished", "source", res.Source, "destination", res.Destination, "repositories", len(res.Repos),
				"failed", res.FailedRepos(), "bytes_sent", res.Stats.BytesSent, "duration", f.Now().Sub(start).String())
			if err := f.Render(res, func() ui.Table { return replicateTable(res) }); err != nil {
				return err
			}
			if f.Format() == ui.FormatTable {
				s := res.Stats
				f.Notef("%d manifests written, %d blobs sent (%s), %d mounted, %d already there", s.ManifestsPut, s.BlobsSent, humanSize(s.BytesSent), s.BlobsMounted, s.BlobsPresent)
				for _, rr := range res.Repos {
					for _, n := range rr.Notes {
						f.Notef("%s: %s", rr.Destination, n)
					}
					for _, t := range rr.Tags {
						if t.Note != "" {
							f.Notef("%s:%s: %s", rr.Destination, t.Tag, t.Note)
						}
						if t.Error != "" {
							f.Notef("%s:%s: %s", rr.Source, t.Tag, t.Error)
						}
					}
				}
				if len(res.Deletions) > 0 && o.DryRun {
					for _, d := range res.Deletions {
						f.Notef("would delete %s/%s:%s (%s)", dst.Registry.Name(), d.Repository, d.Tag, shortDigest(d.Digest))
					}
				}
			}
			return runErr
		},
	}
	fl := cmd.Flags()
	fl.StringArrayVar(&o.Repos, "repos", nil, "source repository glob, * matches anything (repeatable; default all)")
	fl.StringArrayVar(&o.Tags, "tags", nil, "tag glob to copy (repeatable; default every tag)")
	fl.StringArrayVar(&o.Exclude, "exclude", nil, "tag glob to leave out (repeatable)")
	fl.StringVar(&o.DestPrefix, "dest-prefix", "", "path prepended to each repository on DST (e.g. mirror → mirror/game-server/api)")
	fl.StringVar(&platforms, "platforms", "", "copy only these platforms of each index, e.g. linux/amd64,linux/arm64 (the index's digest changes)")
	fl.IntVar(&o.Jobs, "jobs", 8, "blobs and repositories transferred in parallel")
	fl.BoolVar(&o.DryRun, "dry-run", false, "show what would be copied and deleted; write nothing")
	fl.BoolVar(&o.Delete, "delete", false, "delete DST tags SRC no longer has (only tags the filters select)")
	fl.BoolVar(&yes, "yes", false, "with --delete: do not ask (required when not on a terminal)")
	fl.IntVar(&o.MaxDelete, "max-delete", 0, "with --delete: delete nothing if the plan deletes more tags than this (0 = no limit)")
	fl.StringVar(&metricsFile, "metrics-file", "", "write Prometheus text metrics here (node_exporter textfile collector)")
	return cmd
}

// endpoint reads SRC or DST: a registry (config name or host) or REGISTRY/REPO.
func (f *Factory) endpoint(arg string) (replicate.Endpoint, error) {
	res, err := f.Resolver()
	if err != nil {
		return replicate.Endpoint{}, err
	}
	reg, repo, err := res.Repository(arg)
	if err != nil {
		return replicate.Endpoint{}, err
	}
	return replicate.Endpoint{Registry: reg, Repo: repo}, nil
}

func replicateTable(res *replicate.Result) ui.Table {
	t := ui.Table{Headers: []string{"source", "destination", "status", "copied", "unchanged", "failed", "deleted", "error"}}
	for _, rr := range res.Repos {
		t.Rows = append(t.Rows, []string{rr.Source, rr.Destination, string(rr.Status), strconv.Itoa(rr.Copied), strconv.Itoa(rr.Unchanged),
			strconv.Itoa(rr.Failed), strconv.Itoa(rr.Deleted), rr.Error})
	}
	return t
}

// replicateJob is a run's textfile metrics: the job's success and times, and per status the
// repositories and tags, the bytes sent and the tags deleted.
func replicateJob(src, dst replicate.Endpoint, res *replicate.Result, start, end time.Time, runErr error) metrics.Job {
	j := metrics.Job{Name: "replicate", Target: src.String() + " -> " + dst.String(), Start: start, End: end, Err: runErr}
	if res == nil {
		return j
	}
	repos := map[replicate.Status]int{replicate.StatusCopied: 0, replicate.StatusUnchanged: 0, replicate.StatusFailed: 0}
	tags := map[string]int{"copied": 0, "unchanged": 0, "failed": 0, "deleted": 0}
	for _, rr := range res.Repos {
		repos[rr.Status]++
		tags["copied"] += rr.Copied
		tags["unchanged"] += rr.Unchanged
		tags["failed"] += rr.Failed
		tags["deleted"] += rr.Deleted
	}
	for st, n := range repos {
		j.Values = append(j.Values, metrics.Value{Name: "regctl_replicate_repositories", Help: "Repositories of the last run by outcome.",
			Labels: map[string]string{"status": string(st)}, Value: float64(n)})
	}
	for st, n := range tags {
		j.Values = append(j.Values, metrics.Value{Name: "regctl_replicate_tags", Help: "Tags of the last run by outcome.",
			Labels: map[string]string{"status": st}, Value: float64(n)})
	}
	j.Values = append(j.Values,
		metrics.Value{Name: "regctl_replicate_bytes_sent", Help: "Blob bytes the last run sent to the destination.", Value: float64(res.Stats.BytesSent)},
		metrics.Value{Name: "regctl_replicate_blobs_mounted", Help: "Blobs the last run mounted from another destination repository.", Value: float64(res.Stats.BlobsMounted)})
	return j
}
