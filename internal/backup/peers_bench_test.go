package backup_test

import (
	"context"
	"fmt"
	"io/fs"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/types"

	"github.com/regctl-dev/regctl/internal/localreg/localregtest"
	"github.com/regctl-dev/regctl/internal/registry"
	"github.com/regctl-dev/regctl/internal/sample"
)

// benchRegistry holds 12 repositories x 3 tags; every image shares one 4 MiB base layer and has a
// small layer of its own, as images built from one base do.
func benchRegistry(b *testing.B) (*localregtest.Server, []string) {
	b.Helper()
	srv := localregtest.Start(b)
	reg, _ := registry.NewResolver(nil, registry.Options{}).Registry(srv.Host)
	rnd := rand.New(rand.NewPCG(1, 2))
	base := make([]byte, 4<<20)
	for i := range base {
		base[i] = byte(rnd.Uint32())
	}
	baseLayer, _ := sample.Layer(map[string][]byte{"base.bin": base})
	var repos []string
	for r := 0; r < 12; r++ {
		repo := fmt.Sprintf("svc/app%02d", r)
		repos = append(repos, repo)
		ref, _ := registry.RepositoryRef(reg, repo)
		for tg := 0; tg < 3; tg++ {
			own, _ := sample.Layer(map[string][]byte{"app.txt": []byte(fmt.Sprintf("%s %d", repo, tg))})
			img, _ := mutate.AppendLayers(mutate.ConfigMediaType(mutate.MediaType(empty.Image, types.OCIManifestSchema1), types.OCIConfigJSON), baseLayer, own)
			if err := sample.Push(context.Background(), ref.Tag(fmt.Sprintf("v%d", tg)), img, reg.Remote()...); err != nil {
				b.Fatal(err)
			}
		}
	}
	return srv, repos
}

type peerRun struct {
	wall     time.Duration
	maxRSSMB float64
	written  int64
}

// runPeer runs the commands one after another and returns their total wall time and the largest
// peak RSS, as /usr/bin/time reports it (wait4's rusage when it is not installed).
func runPeer(b *testing.B, dir string, env []string, cmds [][]string) (peerRun, error) {
	b.Helper()
	var r peerRun
	timeBin, _ := exec.LookPath("time")
	for _, argv := range cmds {
		if timeBin != "" {
			argv = append([]string{timeBin, "-f", "regctl-bench-maxrss=%M"}, argv...)
		}
		cmd := exec.Command(argv[0], argv[1:]...)
		cmd.Env = append(os.Environ(), env...)
		cmd.Dir = dir
		start := time.Now()
		out, err := cmd.CombinedOutput()
		if err != nil {
			return r, fmt.Errorf("%s: %v\n%s", strings.Join(argv, " "), err, out)
		}
		r.wall += time.Since(start)
		kb := float64(cmd.ProcessState.SysUsage().(*syscall.Rusage).Maxrss)
		if i := strings.LastIndex(string(out), "regctl-bench-maxrss="); i >= 0 {
			fmt.Sscanf(string(out[i:]), "regctl-bench-maxrss=%f", &kb)
		}
		r.maxRSSMB = max(r.maxRSSMB, kb/1024)
	}
	return r, nil
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

func tool(env, name string) string {
	if p := os.Getenv(env); p != "" {
		return p
	}
	p, _ := exec.LookPath(name)
	return p
}

// BenchmarkBackupVsPeers runs regctl's backup, `skopeo sync` and `oras backup` as processes on the
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
	if skopeo := tool("REGCTL_TEST_SKOPEO", "skopeo"); skopeo != "" {
		list := filepath.Join(home, "sync.yaml")
		var y strings.Builder
		fmt.Fprintf(&y, "%s:\n  tls-verify: false\n  images:\n", srv.Host)
		for _, r := range repos {
			fmt.Fprintf(&y, "    %s: [v0, v1, v2]\n", r)
		}
		os.WriteFile(list, []byte(y.String()), 0o644)
		tools["skopeo-sync"] = func(dest string) [][]string {
			return [][]string{{skopeo, "sync", "--src", "yaml", "--dest", "dir", "--scoped", list, dest}}
		}
	}
	if oras := tool("REGCTL_TEST_ORAS", "oras"); oras != "" {
		tools["oras-backup"] = func(dest string) [][]string {
			var cmds [][]string
			for _, r := range repos {
				cmds = append(cmds, []string{oras, "backup", "--plain-http", "--output", dest, srv.Host + "/" + r})
			}
			return cmds
		}
	}
	for _, name := range []string{"regctl", "skopeo-sync", "oras-backup"} {
		argv, ok := tools[name]
		if !ok {
			continue
		}
		for _, phase := range []string{"first", "unchanged-rerun"} {
			b.Run(name+"/"+phase, func(b *testing.B) {
				var last peerRun
				for i := 0; i < b.N; i++ {
					b.StopTimer()
					dest := filepath.Join(b.TempDir(), "dest")
					if phase == "unchanged-rerun" {
						if _, err := runPeer(b, home, env, argv(dest)); err != nil { // fill it first, untimed
							b.Fatal(err)
						}
					}
					b.StartTimer()
					run, err := runPeer(b, home, env, argv(dest))
					b.StopTimer()
					if err != nil && strings.Contains(err.Error(), "Refusing to overwrite") {
						b.Skip("skopeo sync cannot run again into a dir destination: it refuses to overwrite")
					}
					if err != nil {
						b.Fatal(err)
					}
					last = run
					last.written = duBytes(dest)
					b.StartTimer()
				}
				b.ReportMetric(last.maxRSSMB, "maxRSS-MB")
				b.ReportMetric(float64(last.written)/(1<<20), "dest-MB")
			})
		}
	}
}
