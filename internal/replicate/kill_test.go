package replicate_test

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/regctl-dev/regctl/internal/localreg/localregtest"
	"github.com/regctl-dev/regctl/internal/registry"
	"github.com/regctl-dev/regctl/internal/replicate"
)

// TestMain doubles as the child of the kill -9 test: with REGCTL_REPLICATE_CHILD="SRC DST" the
// test binary runs one replication and exits, unless it is killed first.
func TestMain(m *testing.M) {
	if hosts := os.Getenv("REGCTL_REPLICATE_CHILD"); hosts != "" {
		os.Exit(child(strings.Fields(hosts)))
	}
	os.Exit(m.Run())
}

func child(hosts []string) int {
	r := registry.NewResolver(nil, registry.Options{})
	src, err1 := r.Registry(hosts[0])
	dst, err2 := r.Registry(hosts[1])
	if err1 != nil || err2 != nil {
		fmt.Fprintln(os.Stderr, err1, err2)
		return 2
	}
	if _, err := replicate.Run(context.Background(), replicate.Endpoint{Registry: src}, replicate.Endpoint{Registry: dst}, replicate.Options{Jobs: 2}); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	return 0
}

// A replication killed with SIGKILL part-way leaves no destination tag pointing at an incomplete
// image, and the next run finishes the job.
func TestKill9DuringReplicate(t *testing.T) {
	srcSrv := localregtest.Start(t)
	dstSrv := localregtest.Start(t, localregtest.Options{Wrap: func(h http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if r.Method != http.MethodHead && r.Method != http.MethodGet {
				time.Sleep(15 * time.Millisecond) // slow writes, so the kill lands mid-run
			}
			h.ServeHTTP(w, r)
		})
	}})
	src, dst := openHost(t, srcSrv.Host), openHost(t, dstSrv.Host)
	repos := []string{"a/one", "a/two", "b/three", "b/four"}
	for _, repo := range repos {
		seed(t, src, repo)
	}
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), "REGCTL_REPLICATE_CHILD="+srcSrv.Host+" "+dstSrv.Host)
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(30 * time.Second)
	for dstSrv.Count("PUT", "/manifests/") < 6 {
		if time.Now().After(deadline) {
			cmd.Process.Kill()
			t.Fatal("the child wrote no manifests in 30s")
		}
		time.Sleep(5 * time.Millisecond)
	}
	if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	cmd.Wait()
	if cmd.ProcessState.ExitCode() == 0 {
		t.Fatal("the child finished before the kill; the test proves nothing")
	}
	partial := 0
	for _, repo := range repos {
		got := tagDigests(t, dst, repo)
		partial += len(got)
		assertComplete(t, dst, repo)
	}
	if partial >= 7*len(repos) {
		t.Fatalf("every tag was written before the kill (%d): the test proves nothing", partial)
	}
	res, err := replicate.Run(context.Background(), replicate.Endpoint{Registry: src}, replicate.Endpoint{Registry: dst}, replicate.Options{})
	if err != nil {
		t.Fatalf("the run after the kill: %v", err)
	}
	for _, repo := range repos {
		if want, got := tagDigests(t, src, repo), tagDigests(t, dst, repo); !mapsEqual(want, got) {
			t.Errorf("%s after the re-run: %v, want %v", repo, got, want)
		}
		assertComplete(t, dst, repo)
	}
	if res.Stats.ManifestsPresent == 0 {
		t.Errorf("the re-run should find what the killed run wrote: %+v", res.Stats)
	}
	t.Logf("killed with %d of %d tags written; re-run: %+v", partial, 7*len(repos), res.Stats)
}
