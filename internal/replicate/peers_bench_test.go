package replicate_test

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/regctl-dev/regctl/internal/benchproc"
	"github.com/regctl-dev/regctl/internal/localreg/localregtest"
	"github.com/regctl-dev/regctl/internal/registry"
	"github.com/regctl-dev/regctl/internal/sample"
)

// countingDest is a destination registry that counts the request bytes it receives: what a
// tool sent over the wire.
type countingDest struct {
	srv      *localregtest.Server
	received *atomic.Int64
}

func startCountingDest(b *testing.B) countingDest {
	var n atomic.Int64
	srv := localregtest.Start(b, localregtest.Options{Wrap: func(h http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if r.Body != nil {
				r.Body = struct {
					io.Reader
					io.Closer
				}{io.TeeReader(r.Body, writerFunc(func(p []byte) { n.Add(int64(len(p))) })), r.Body}
			}
			h.ServeHTTP(w, r)
		})
	}})
	return countingDest{srv: srv, received: &n}
}

type writerFunc func([]byte)

func (f writerFunc) Write(p []byte) (int, error) { f(p); return len(p), nil }

// BenchmarkReplicateVsPeers copies one registry into an empty one and then again unchanged, with
// regctl replicate, skopeo sync (docker to docker), a crane copy loop (crane copy --all-tags per
// repository) and regsync, each as a process, and reports wall time, the bytes the destination
// received and peak RSS. Peers not installed are skipped; make bench builds bin/regctl.
func BenchmarkReplicateVsPeers(b *testing.B) {
	regctl, _ := filepath.Abs(os.Getenv("REGCTL_BENCH_BIN"))
	if os.Getenv("REGCTL_BENCH_BIN") == "" {
		regctl, _ = filepath.Abs("../../bin/regctl")
	}
	if _, err := os.Stat(regctl); err != nil {
		b.Skip("bin/regctl not built (make bench builds it)")
	}
	src := localregtest.Start(b)
	srcReg, _ := registry.NewResolver(nil, registry.Options{}).Registry(src.Host)
	repos, err := sample.SharedBase(context.Background(), src.Host, true, sample.BenchRepos, sample.BenchTags, sample.BenchBaseMiB, sample.BenchOwnMiB, srcReg.Remote()...)
	if err != nil {
		b.Fatal(err)
	}
	home := b.TempDir()
	env := []string{"HOME=" + home}
	tools := map[string]func(dst string) [][]string{
		"regctl-replicate": func(dst string) [][]string {
			argv := []string{regctl, "replicate", src.Host, dst, "--repos", "svc/*"}
			return [][]string{append(argv, strings.Fields(os.Getenv("REGCTL_BENCH_REPLICATE_FLAGS"))...)}
		},
	}
	if skopeo := benchproc.Tool("REGCTL_TEST_SKOPEO", "skopeo"); skopeo != "" {
		list := filepath.Join(home, "skopeo.yaml")
		var y strings.Builder
		fmt.Fprintf(&y, "%s:\n  tls-verify: false\n  images:\n", src.Host)
		for _, r := range repos {
			fmt.Fprintf(&y, "    %s: []\n", r) // every tag
		}
		os.WriteFile(list, []byte(y.String()), 0o644)
		tools["skopeo-sync"] = func(dst string) [][]string {
			return [][]string{{skopeo, "sync", "--src", "yaml", "--dest", "docker", "--dest-tls-verify=false", list, dst}}
		}
	}
	if crane := benchproc.Tool("REGCTL_TEST_CRANE", "crane"); crane != "" {
		tools["crane-copy-loop"] = func(dst string) [][]string {
			var cmds [][]string
			for _, r := range repos {
				cmds = append(cmds, []string{crane, "copy", "--insecure", "--all-tags", src.Host + "/" + r, dst + "/" + r})
			}
			return cmds
		}
	}
	if regsync := benchproc.Tool("REGCTL_TEST_REGSYNC", "regsync"); regsync != "" {
		tools["regsync"] = func(dst string) [][]string {
			conf := filepath.Join(home, "regsync-"+strings.ReplaceAll(dst, ":", "_")+".yaml")
			var y strings.Builder
			fmt.Fprintf(&y, "version: 1\ncreds:\n  - registry: %s\n    tls: disabled\n  - registry: %s\n    tls: disabled\nsync:\n", src.Host, dst)
			for _, r := range repos {
				fmt.Fprintf(&y, "  - source: %s/%s\n    target: %s/%s\n    type: repository\n", src.Host, r, dst, r)
			}
			os.WriteFile(conf, []byte(y.String()), 0o644)
			return [][]string{{regsync, "once", "-c", conf, "-v", "error"}}
		}
	}
	for _, name := range []string{"regctl-replicate", "skopeo-sync", "crane-copy-loop", "regsync"} {
		argv, ok := tools[name]
		if !ok {
			continue
		}
		for _, phase := range []string{"first", "unchanged-rerun"} {
			b.Run(name+"/"+phase, func(b *testing.B) {
				var rss float64
				var sent int64
				for i := 0; i < b.N; i++ {
					b.StopTimer()
					dst := startCountingDest(b)
					if phase == "unchanged-rerun" {
						if _, err := benchproc.RunAll(home, env, argv(dst.srv.Host)); err != nil { // fill it first, untimed
							b.Fatal(err)
						}
					}
					dst.received.Store(0)
					b.StartTimer()
					r, err := benchproc.RunAll(home, env, argv(dst.srv.Host))
					b.StopTimer()
					if err != nil {
						b.Fatal(err)
					}
					rss, sent = r.MaxRSSMB, dst.received.Load()
					if n := countTags(b, dst.srv.Host); n != sample.BenchRepos*sample.BenchTags {
						b.Fatalf("%s left %d tags on the destination, want %d", name, n, sample.BenchRepos*sample.BenchTags)
					}
					b.StartTimer()
				}
				b.ReportMetric(rss, "maxRSS-MB")
				b.ReportMetric(float64(sent)/(1<<20), "sent-MB")
			})
		}
	}
}

// countTags counts every tag of every repository (wherever a tool put them).
func countTags(b *testing.B, host string) int {
	reg := openHost(b, host)
	repos, err := reg.Repositories(context.Background(), "")
	if err != nil {
		b.Fatal(err)
	}
	n := 0
	for _, r := range repos {
		tags, err := reg.Tags(context.Background(), r)
		if err != nil {
			b.Fatal(err)
		}
		n += len(tags)
	}
	return n
}
