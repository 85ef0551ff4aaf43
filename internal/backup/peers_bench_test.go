package backup_test

import (
	"context"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/regctl-dev/regctl/internal/benchproc"
	"github.com/regctl-dev/regctl/internal/localreg/localregtest"
	"github.com/regctl-dev/regctl/internal/registry"
	"github.com/regctl-dev/regctl/internal/sample"
)

// benchRegistry holds sample.BenchRepos x sample.BenchTags images from one base (sample.SharedBase).
func benchRegistry(b *testing.B) (*localregtest.Server, []string) {
	b.Helper()
	srv := localregtest.Start(b)
	reg, _ := registry.NewResolver(nil, registry.Options{}).Registry(srv.Host)
	repos, err := sample.SharedBase(context.Background(), srv.Host, true, sample.BenchRepos, sample.BenchTags, sample.BenchBaseMiB, sample.BenchOwnMiB, reg.Remote()...)
	if err != nil {
		b.Fatal(err)
	}
	return srv, repos
}

func duBytes(dir string) int64 {
	var n int64
	filepath.WalkDir(dir, func(_ string, d fs.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			if info, err := d.Info(); err == nil {
				n += info.Size()
			}
		}
		return nil
	})
	return n
}

// BenchmarkBackupVsPeers runs regctl's backup, `crane pull --format oci`, `skopeo sync` and `oras backup` as processes on the
// same registry, first into an empty destination and then again unchanged, and reports wall time,
// bytes in the destination and peak RSS of each. make bench builds bin/regctl first.
func BenchmarkBackupVsPeers(b *testing.B) {
	regctl, _ := filepath.Abs(os.Getenv("REGCTL_BENCH_BIN"))
	if os.Getenv("REGCTL_BENCH_BIN") == "" {
		regctl, _ = filepath.Abs("../../bin/regctl")
	}
	if _, err := os.Stat(regctl); err != nil {
		b.Skip("bin/regctl not built (make bench builds it)")
	}
	srv, repos := benchRegistry(b)
	home := b.TempDir()
	env := []string{"HOME=" + home}
	// Each tool is one or more commands (oras backs up one repository per run).
	tools := map[string]func(dest string) [][]string{
		"regctl": func(dest string) [][]string {
			return [][]string{{regctl, "backup", srv.Host, "--to", dest, "--repos", "svc/*"}}
		},
	}
	if skopeo := benchproc.Tool("REGCTL_TEST_SKOPEO", "skopeo"); skopeo != "" {
		list := filepath.Join(home, "sync.yaml")
		var y strings.Builder
		fmt.Fprintf(&y, "%s:\n  tls-verify: false\n  images:\n", srv.Host)
		for _, r := range repos {
			var tags []string
			for tg := 0; tg < sample.BenchTags; tg++ {
				tags = append(tags, fmt.Sprintf("v%d", tg))
			}
			fmt.Fprintf(&y, "    %s: [%s]\n", r, strings.Join(tags, ", "))
		}
		os.WriteFile(list, []byte(y.String()), 0o644)
		tools["skopeo-sync"] = func(dest string) [][]string {
			return [][]string{{skopeo, "sync", "--src", "yaml", "--dest", "dir", "--scoped", list, dest}}
		}
	}
	if oras := benchproc.Tool("REGCTL_TEST_ORAS", "oras"); oras != "" {
		tools["oras-backup"] = func(dest string) [][]string {
			var cmds [][]string
			for _, r := range repos {
				cmds = append(cmds, []string{oras, "backup", "--plain-http", "--output", dest, srv.Host + "/" + r})
			}
			return cmds
		}
	}
	if crane := benchproc.Tool("REGCTL_TEST_CRANE", "crane"); crane != "" {
		tools["crane-pull"] = func(dest string) [][]string {
			argv := []string{crane, "pull", "--insecure", "--format", "oci"}
			for _, r := range repos {
				for tg := 0; tg < sample.BenchTags; tg++ {
					argv = append(argv, fmt.Sprintf("%s/%s:v%d", srv.Host, r, tg))
				}
			}
			return [][]string{append(argv, dest)}
		}
	}
	for _, name := range []string{"regctl", "crane-pull", "skopeo-sync", "oras-backup"} {
		argv, ok := tools[name]
		if !ok {
			continue
		}
		for _, phase := range []string{"first", "unchanged-rerun"} {
			b.Run(name+"/"+phase, func(b *testing.B) {
				var last benchproc.Result
				var written int64
				for i := 0; i < b.N; i++ {
					b.StopTimer()
					dest := filepath.Join(b.TempDir(), "dest")
					if phase == "unchanged-rerun" {
						if _, err := benchproc.RunAll(home, env, argv(dest)); err != nil { // fill it first, untimed
							b.Fatal(err)
						}
					}
					b.StartTimer()
					run, err := benchproc.RunAll(home, env, argv(dest))
					b.StopTimer()
					if err != nil && strings.Contains(err.Error(), "Refusing to overwrite") {
						b.Skip("skopeo sync cannot run again into a dir destination: it refuses to overwrite")
					}
					if err != nil {
						b.Fatal(err)
					}
					last, written = run, duBytes(dest)
					b.StartTimer()
				}
				b.ReportMetric(last.MaxRSSMB, "maxRSS-MB")
				b.ReportMetric(float64(written)/(1<<20), "dest-MB")
			})
		}
	}
	// The target is a ratio; on a shared 2-core machine a tool's time drifts by ±15% between
	// runs minutes apart, so regctl and crane are also run alternately, each into a fresh
	// destination, and the ratio of their summed first-run times is reported.
	if crane, ok := tools["crane-pull"]; ok {
		b.Run("regctl-vs-crane-first", func(b *testing.B) {
			var own, peer time.Duration
			for i := 0; i < b.N; i++ {
				for _, side := range []struct {
					argv func(string) [][]string
					sum  *time.Duration
				}{{tools["regctl"], &own}, {crane, &peer}} {
					run, err := benchproc.RunAll(home, env, side.argv(filepath.Join(b.TempDir(), "dest")))
					if err != nil {
						b.Fatal(err)
					}
					*side.sum += run.Wall
				}
			}
			b.ReportMetric(own.Seconds()/float64(b.N), "regctl-s")
			b.ReportMetric(peer.Seconds()/float64(b.N), "crane-s")
			b.ReportMetric(own.Seconds()/peer.Seconds(), "regctl/crane")
		})
	}
}
