package main

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/regctl-dev/regctl/internal/backup"
	"github.com/regctl-dev/regctl/internal/exitcode"
	"github.com/regctl-dev/regctl/internal/metrics"
	"github.com/regctl-dev/regctl/internal/ui"
)

func (f *Factory) backupDest(flag string) (string, error) {
	dest := flag
	if dest == "" {
		cfg, err := f.Config()
		if err != nil {
			return "", err
		}
		if cfg.Backup.Destination == "" {
			return "", usageError(errors.New("no destination: pass --to/--from, or set backup.destination"))
		}
		dest = cfg.Backup.Destination
	}
	if strings.Contains(dest, "://") { // s3://, file://
		return dest, nil
	}
	return f.inWorkDir(dest), nil
}

func newBackupCmd(f *Factory) *cobra.Command {
	var to, storageClass, metricsFile string
	var repos []string
	var jobs int
	var verifyExisting bool
	cmd := &cobra.Command{
		Use:   "backup REGISTRY --to DEST",
		Short: "Back up a registry into a content-addressed OCI layout (directory or S3); cron-ready",
		Long: `Copy every tag of every selected repository — multi-arch indexes with all platforms, signatures,
attestations and SBOMs — into DEST through the registry API, so the same command works for any
registry and a restore can target another one. DEST is one OCI image layout (oci-layout, index.json,
blobs/sha256/...) that skopeo, crane and oras can read; every blob is stored once across all
snapshots, so re-running over an unchanged registry transfers no blob.

Each run records a dated snapshot, written only after everything it references is stored: killing a
run at any moment leaves every earlier snapshot restorable, and the next run reuses what was stored.
A blob already stored is trusted when its size matches (--verify-existing re-hashes it; a damaged
one is fetched again). A lock stops two runs on one DEST (a crashed run's lock is recovered). DEST is a directory,
file://PATH or s3://bucket/prefix (AWS credentials from the default chain; AWS_ENDPOINT_URL_S3 for
S3-compatible servers). Exit 0 when every repository was backed up, 1 on partial failure.`,
		Example: `  regctl backup local --to /backup/registry
  regctl backup prod --to s3://game-backups/registry --storage-class GLACIER_IR --repos 'game-server*'
  regctl backup local --to /backup/registry --log-format json --metrics-file /var/lib/node_exporter/regctl_backup.prom`,
		Args: args(cobra.ExactArgs(1)),
		RunE: func(cmd *cobra.Command, a []string) error {
			cfg, err := f.Config()
			if err != nil {
				return err
			}
			dest, err := f.backupDest(to)
			if err != nil {
				return err
			}
			res, err := f.Resolver()
			if err != nil {
				return err
			}
			reg, err := res.Registry(a[0])
			if err != nil {
				return err
			}
			class := firstNonEmpty(storageClass, cfg.Backup.StorageClass)
			store, err := backup.Open(cmd.Context(), dest, class)
			if err != nil {
				return usageError(err)
			}
			if jobs == 0 {
				jobs = cfg.Backup.Jobs
			}
			start := f.Now()
			o := backup.Options{Repos: repos, Jobs: jobs, Now: f.Now, Logger: f.Logger(), VerifyExisting: verifyExisting}
			if f.IO.ErrTTY {
				o.Progress = func(p backup.Progress) {
					fmt.Fprintf(f.IO.ErrOut, "\r%s: %d/%d blobs, %s new    ", p.Repository, p.Done, p.Total, humanSize(p.Bytes))
				}
			}
			snap, runErr := backup.Backup(cmd.Context(), reg, store, o)
			if f.IO.ErrTTY {
				fmt.Fprintln(f.IO.ErrOut)
			}
			writeJobMetrics(f, metricsFile, "backup", reg.Name(), start, runErr, backupMetricValues(snap))
			if snap == nil || snap.ID == "" || len(snap.Repos) == 0 {
				return runErr
			}
			f.Logger().Info("backup finished", "snapshot", snap.ID, "repositories", len(snap.Repos), "images", snap.Images(),
				"new_blobs", snap.Stats.NewBlobs, "new_bytes", snap.Stats.NewBytes, "duration", f.Now().Sub(start).String())
			if err := f.Render(snap, func() ui.Table {
				return ui.Table{Headers: []string{"snapshot", "repositories", "images", "blobs", "size", "transferred", "destination"},
					Rows: [][]string{{snap.ID, strconv.Itoa(len(snap.Repos)), strconv.Itoa(snap.Images()), strconv.Itoa(snap.Stats.Blobs),
						humanSize(snap.Stats.Bytes), fmt.Sprintf("%d blobs, %s", snap.Stats.NewBlobs, humanSize(snap.Stats.NewBytes)), store.String()}}}
			}); err != nil {
				return err
			}
			return runErr
		},
	}
	fl := cmd.Flags()
	fl.StringVar(&to, "to", "", "destination: a directory, file://PATH or s3://bucket/prefix (default backup.destination)")
	fl.StringArrayVar(&repos, "repos", nil, "repository glob to back up, * matches anything (repeatable; default all)")
	fl.StringVar(&storageClass, "storage-class", "", "S3 storage class for blobs, e.g. GLACIER_IR (default backup.storage_class)")
	fl.IntVar(&jobs, "jobs", 0, "blobs transferred in parallel, across the repositories read at once (default backup.jobs, else 4)")
	fl.StringVar(&metricsFile, "metrics-file", "", `write the run's Prometheus metrics here, also on failure (regctl_job_* {job="backup"}; node_exporter textfile collector)`)
	fl.BoolVar(&verifyExisting, "verify-existing", false, "re-hash blobs the destination already has (slower; repairs damaged ones)")
	cmd.AddCommand(newBackupListCmd(f), newBackupVerifyCmd(f), newBackupPruneCmd(f))
	return cmd
}

func openFrom(cmd *cobra.Command, f *Factory, from string) (backup.Store, []*backup.Snapshot, error) {
	dest, err := f.backupDest(from)
	if err != nil {
		return nil, nil, err
	}
	store, err := backup.Open(cmd.Context(), dest, "")
	if err != nil {
		return nil, nil, usageError(err)
	}
	snaps, err := backup.Snapshots(cmd.Context(), store)
	if err != nil {
		return nil, nil, err
	}
	return store, snaps, nil
}

// openSnapshot opens DEST and picks the snapshot the optional argument names (default latest).
func openSnapshot(cmd *cobra.Command, f *Factory, from string, a []string) (backup.Store, *backup.Snapshot, error) {
	store, snaps, err := openFrom(cmd, f, from)
	if err != nil {
		return nil, nil, err
	}
	id := ""
	if len(a) == 1 {
		id = a[0]
	}
	snap, err := backup.FindSnapshot(snaps, id)
	if err != nil {
		return nil, nil, exitcode.With(exitcode.NotFound, err)
	}
	return store, snap, nil
}

func newBackupListCmd(f *Factory) *cobra.Command {
	var from string
	cmd := &cobra.Command{
		Use:     "list --from DEST",
		Short:   "List the snapshots in a backup destination",
		Example: "  regctl backup list --from /backup/registry -o json",
		Args:    args(cobra.NoArgs),
		RunE: func(cmd *cobra.Command, _ []string) error {
			_, snaps, err := openFrom(cmd, f, from)
			if err != nil {
				return err
			}
			if snaps == nil {
				snaps = []*backup.Snapshot{}
			}
			return f.Render(snaps, func() ui.Table {
				t := ui.Table{Headers: []string{"snapshot", "created", "registry", "repositories", "images", "size", "incomplete"}}
				for _, s := range snaps {
					t.Rows = append(t.Rows, []string{s.ID, s.CreatedAt.Format(time.RFC3339), s.Registry, strconv.Itoa(len(s.Repos)),
						strconv.Itoa(s.Images()), humanSize(s.Stats.Bytes), strconv.Itoa(len(s.Incomplete))})
				}
				return t
			})
		},
	}
	cmd.Flags().StringVar(&from, "from", "", "backup destination (default backup.destination)")
	return cmd
}

func newBackupVerifyCmd(f *Factory) *cobra.Command {
	var from string
	cmd := &cobra.Command{
		Use:     "verify --from DEST [SNAPSHOT|latest]",
		Short:   "Re-hash every blob a snapshot needs; name anything missing or corrupt (exit 1)",
		Example: "  regctl backup verify --from /backup/registry\n  regctl backup verify --from s3://game-backups/registry 20261202T030000Z",
		Args:    args(cobra.MaximumNArgs(1)),
		RunE: func(cmd *cobra.Command, a []string) error {
			store, snap, err := openSnapshot(cmd, f, from, a)
			if err != nil {
				return err
			}
			res, err := backup.Verify(cmd.Context(), store, snap, f.Now)
			if err != nil {
				return err
			}
			if err := f.Render(res, func() ui.Table {
				t := ui.Table{Headers: []string{"snapshot", "blobs checked", "bytes", "missing", "corrupt"}}
				t.Rows = append(t.Rows, []string{res.Snapshot, strconv.Itoa(res.Blobs), humanSize(res.Bytes), strings.Join(res.Missing, " "), strings.Join(res.Corrupt, " ")})
				return t
			}); err != nil {
				return err
			}
			if !res.OK() {
				return fmt.Errorf("snapshot %s is damaged: %d missing, %d corrupt", res.Snapshot, len(res.Missing), len(res.Corrupt))
			}
			return nil
		},
	}
	cmd.Flags().StringVar(&from, "from", "", "backup destination (default backup.destination)")
	return cmd
}

func newBackupPruneCmd(f *Factory) *cobra.Command {
	var from string
	var keepDays, keepLast int
	var dryRun bool
	cmd := &cobra.Command{
		Use:   "prune --from DEST --keep-days N [--keep-last N]",
		Short: "Remove old snapshots, then the blobs no remaining snapshot needs",
		Example: `  regctl backup prune --from /backup/registry --keep-days 30 --keep-last 7
  regctl backup prune --from s3://game-backups/registry --keep-days 30 --dry-run`,
		Args: args(cobra.NoArgs),
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, err := f.Config()
			if err != nil {
				return err
			}
			if !cmd.Flags().Changed("keep-days") {
				keepDays = cfg.Backup.KeepDays
			}
			if !cmd.Flags().Changed("keep-last") {
				keepLast = cfg.Backup.KeepLast
			}
			if keepDays <= 0 {
				return usageError(errors.New("--keep-days N (or backup.keep_days) is required and must be at least 1"))
			}
			store, _, err := openFrom(cmd, f, from)
			if err != nil {
				return err
			}
			res, err := backup.Prune(cmd.Context(), store, keepDays, keepLast, f.Now(), dryRun)
			if err != nil {
				return err
			}
			return f.Render(res, func() ui.Table {
				verb := "removed"
				if dryRun {
					verb = "would remove"
				}
				return ui.Table{Headers: []string{"snapshots " + verb, "snapshots kept", "blobs " + verb},
					Rows: [][]string{{strings.Join(res.Removed, " "), strconv.Itoa(len(res.Kept)), strconv.Itoa(res.BlobsRemoved)}}}
			})
		},
	}
	fl := cmd.Flags()
	fl.StringVar(&from, "from", "", "backup destination (default backup.destination)")
	fl.IntVar(&keepDays, "keep-days", 0, "remove snapshots older than this many days (default backup.keep_days)")
	fl.IntVar(&keepLast, "keep-last", 0, "always keep this many newest snapshots (default backup.keep_last)")
	fl.BoolVar(&dryRun, "dry-run", false, "report what would be removed")
	return cmd
}

func newRestoreCmd(f *Factory) *cobra.Command {
	var from, to string
	var repos []string
	var dryRun, noSettings bool
	var jobs int
	cmd := &cobra.Command{
		Use:   "restore --from DEST --to REGISTRY [SNAPSHOT|latest]",
		Short: "Push a backup snapshot into a registry (the same or another one); skips what is there",
		Long: `Push what the registry lacks from a snapshot: blobs and manifests (platforms before their indexes),
every digest verified as it is read from the backup, then the tags, signature tags included.
Existing blobs, manifests and tags are skipped, so a restore can be re-run. Repositories are created
where the backend needs it, with the settings the backup recorded (ECR: scan on push, encryption, tag
mutability), and the recorded lifecycle and repository policies are applied once the images are
back; --no-settings skips both. What the target cannot hold is named on stderr and in -o json
("settings"); a setting that fails to apply exits 1. --dry-run reports what would be pushed.`,
		Example: `  regctl restore --from /backup/registry --to local
  regctl restore --from s3://game-backups/registry --to dr-registry 20261202T030000Z --repos 'game-server*' --dry-run`,
		Args: args(cobra.MaximumNArgs(1)),
		RunE: func(cmd *cobra.Command, a []string) error {
			if to == "" {
				return usageError(errors.New("--to REGISTRY is required"))
			}
			store, snap, err := openSnapshot(cmd, f, from, a)
			if err != nil {
				return err
			}
			res, err := f.Resolver()
			if err != nil {
				return err
			}
			reg, err := res.Registry(to)
			if err != nil {
				return err
			}
			out, err := backup.Restore(cmd.Context(), store, snap, reg, backup.Options{Repos: repos, DryRun: dryRun, Jobs: jobs, Logger: f.Logger(), Now: f.Now, NoSettings: noSettings})
			if out != nil {
				for _, s := range out.NotApplied() {
					f.Notef("warning: %s: %s %s: %s", s.Repository, s.Setting, s.Status, s.Reason)
				}
				if rerr := f.Render(out, func() ui.Table {
					verb := "pushed"
					if dryRun {
						verb = "to push"
					}
					return ui.Table{Headers: []string{"snapshot", "repositories", "manifests " + verb, "blobs " + verb, "bytes " + verb, "tags " + verb, "already there"},
						Rows: [][]string{{out.Snapshot, strconv.Itoa(len(out.Repositories)), strconv.Itoa(out.ManifestsPushed), strconv.Itoa(out.BlobsPushed),
							humanSize(out.BytesPushed), strconv.Itoa(out.TagsSet), fmt.Sprintf("%d manifests, %d blobs, %d tags", out.ManifestsPresent, out.BlobsPresent, out.TagsPresent)}}}
				}); rerr != nil {
					return rerr
				}
			}
			return err
		},
	}
	fl := cmd.Flags()
	fl.StringVar(&from, "from", "", "backup destination (default backup.destination)")
	fl.StringVar(&to, "to", "", "registry to restore into (a config name or a host)")
	fl.StringArrayVar(&repos, "repos", nil, "repository glob to restore (repeatable; default all)")
	fl.BoolVar(&dryRun, "dry-run", false, "report what would be pushed; push nothing")
	fl.IntVar(&jobs, "jobs", 0, "blobs pushed in parallel (default 4)")
	fl.BoolVar(&noSettings, "no-settings", false, "restore images only: no recorded repository settings or policies")
	return cmd
}

// backupMetricValues are the backup job's own gauges in its --metrics-file.
func backupMetricValues(snap *backup.Snapshot) []metrics.Value {
	if snap == nil {
		return nil
	}
	return []metrics.Value{
		{Name: "regctl_backup_images", Help: "Tagged images in the last snapshot.", Value: float64(snap.Images())},
		{Name: "regctl_backup_blobs", Help: "Blobs the last snapshot references.", Value: float64(snap.Stats.Blobs)},
		{Name: "regctl_backup_bytes", Help: "Bytes the last snapshot references.", Value: float64(snap.Stats.Bytes)},
		{Name: "regctl_backup_transferred_bytes", Help: "Bytes the last run transferred (new blobs).", Value: float64(snap.Stats.NewBytes)},
		{Name: "regctl_backup_incomplete_repositories", Help: "Repositories the last run could not back up.", Value: float64(len(snap.Incomplete))},
	}
}
