package main

import (
	"context"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/regctl-dev/regctl/internal/ecr/ecrtest"
	"github.com/regctl-dev/regctl/internal/exitcode"
	"github.com/regctl-dev/regctl/internal/harbor/harbortest"
	"github.com/regctl-dev/regctl/internal/localreg"
	"github.com/regctl-dev/regctl/internal/localreg/localregtest"
	"github.com/regctl-dev/regctl/internal/metrics"
	"github.com/regctl-dev/regctl/internal/ui"
)

func TestMetricsCollectTextfileStdoutAndErrors(t *testing.T) {
	srv := localregtest.Start(t)
	c := newCLI(t)
	c.ok("registry", "seed", srv.Host+"/game-server")
	file := filepath.Join(t.TempDir(), "regctl_registry.prom")
	c.ok("metrics", "collect", srv.Host, "--textfile", file, "--storage-path", srv.Root)
	raw, _ := os.ReadFile(file)
	for _, want := range []string{
		`regctl_repository_images{registry="` + srv.Host + `",repository="game-server"} 6`,
		`regctl_repository_unsigned_images{registry="` + srv.Host + `",repository="game-server"} 5`,
		`regctl_registry_up{registry="` + srv.Host + `"} 1`,
		`regctl_storage_free_bytes{path="` + srv.Root + `",registry="` + srv.Host + `"}`,
	} {
		if !strings.Contains(string(raw), want) {
			t.Errorf("textfile lacks %s:\n%s", want, raw)
		}
	}
	if out := c.ok("metrics", "collect", srv.Host); !strings.Contains(out, "# TYPE regctl_repository_tags gauge") {
		t.Errorf("stdout:\n%s", out)
	}
	var stats []metrics.RegistryStats
	if err := json.Unmarshal([]byte(c.ok("metrics", "collect", srv.Host, "-o", "json")), &stats); err != nil || len(stats) != 1 || stats[0].Repositories[0].Tags != 6 {
		t.Errorf("json: %v %+v", err, stats)
	}
	// A registry that cannot be read: the file says so, the exit code too, the other is collected.
	_, errOut, code := c.run("metrics", "collect", srv.Host, "127.0.0.1:1", "--textfile", file, "--timeout", "5s")
	raw, _ = os.ReadFile(file)
	if code != exitcode.Error || !strings.Contains(errOut, "could not collect 127.0.0.1:1") ||
		!strings.Contains(string(raw), `regctl_registry_up{registry="127.0.0.1:1"} 0`) || !strings.Contains(string(raw), `regctl_registry_up{registry="`+srv.Host+`"} 1`) {
		t.Errorf("exit %d %s\n%s", code, errOut, raw)
	}
	for _, argv := range [][]string{
		{"metrics", "collect", srv.Host, "127.0.0.1:1", "--storage-path", "/data"},
		{"metrics", "collect", srv.Host + "/game-server"},
		{"metrics", "collect", srv.Host, "--timeout", "0s"},
		{"metrics", "collect", srv.Host, srv.Host},
		{"metrics", "serve", srv.Host, "--interval", "0s"},
		{"metrics", "nope"},
	} {
		if _, errOut, code := c.run(argv...); code != exitcode.Usage {
			t.Errorf("%v: exit %d %s", argv, code, errOut)
		}
	}
	if out := c.ok("metrics", "serve", "--help"); !strings.Contains(out, "Examples:") || !strings.Contains(out, "--interval") {
		t.Errorf("help:\n%s", out)
	}
}

// ECR and Harbor through the same abstraction: their emulators, their configs; no secret shows.
func TestMetricsCollectECRAndHarbor(t *testing.T) {
	ecrSrv := ecrtest.Start(t)
	hb := harbortest.Start(t)
	c := newCLI(t, append(os.Environ(), "HARBOR_TOKEN="+hb.Password)...)
	cfg := "default_registry: prod\nregistries:\n  prod:\n    type: ecr\n    region: us-east-1\n    account: \"" + ecrtest.Account + "\"\n" +
		"    endpoint: " + ecrSrv.URL + "\n    ca_file: " + ecrSrv.CAFile + "\n" +
		"  harbor:\n    type: harbor\n    url: " + hb.URL + "\n    username: admin\n    password_env: HARBOR_TOKEN\n"
	if err := os.WriteFile(filepath.Join(c.workDir, "regctl.yaml"), []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	c.ok("registry", "seed", "prod/game-server")
	c.ok("repo", "create", "harbor/game-server")
	c.ok("registry", "seed", "harbor/game-server/app")
	var stats []metrics.RegistryStats
	if err := json.Unmarshal([]byte(c.ok("metrics", "collect", "prod", "harbor", "-o", "json")), &stats); err != nil || len(stats) != 2 {
		t.Fatalf("%v %+v", err, stats)
	}
	for _, st := range stats {
		if !st.Up || len(st.Repositories) != 1 || !st.BytesKnown || st.StoredBytes <= 0 {
			t.Errorf("%s: %+v", st.Registry, st)
			continue
		}
		r := st.Repositories[0]
		// 6 tagged images; these backends also list the untagged one the seed pushes by digest.
		if r.Images != 7 || r.Signed != 1 || r.Tags != 6 || r.LastPush.IsZero() {
			t.Errorf("%s: %+v", st.Registry, r)
		}
	}
	if strings.Contains(c.allOutput(), hb.Password) {
		t.Error("the Harbor password shows in the output")
	}
}

func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// background runs a long-running command until the returned stop is called.
func (c *cli) background(argv ...string) (stop func() (string, int)) {
	streams, _, _, errOut := ui.Test()
	f := &Factory{IO: streams, Environ: c.env, Now: time.Now, WorkDir: c.workDir}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan int, 1)
	go func() { done <- execute(ctx, f, argv) }()
	return func() (string, int) {
		cancel()
		select {
		case code := <-done:
			return errOut.String(), code
		case <-time.After(15 * time.Second):
			c.t.Fatalf("%v did not stop within 15s", argv)
			return "", -1
		}
	}
}

func scrape(t *testing.T, url, want string) string {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		resp, err := http.Get(url)
		if err == nil {
			raw, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if strings.Contains(string(raw), want) {
				return string(raw)
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s never had %s (last error %v)", url, want, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func TestMetricsServeRefreshesEveryInterval(t *testing.T) {
	srv := localregtest.Start(t)
	c := newCLI(t)
	c.ok("registry", "seed", srv.Host+"/game-server")
	addr := freeAddr(t)
	stop := c.background("metrics", "serve", srv.Host, "--addr", addr, "--interval", "500ms")
	scrape(t, "http://"+addr+"/metrics", `regctl_repository_images{registry="`+srv.Host+`",repository="game-server"} 6`)
	c.ok("registry", "seed", srv.Host+"/tools")
	body := scrape(t, "http://"+addr+"/metrics", `regctl_repository_images{registry="`+srv.Host+`",repository="tools"} 6`)
	if !strings.Contains(body, "process_cpu_seconds_total") {
		t.Error("no process metrics")
	}
	if errOut, code := stop(); code != 0 || !strings.Contains(errOut, "/metrics") {
		t.Errorf("exit %d: %s", code, errOut)
	}
}

// registry serve --metrics-addr: distribution's own series, and the filesystem under --root.
func TestRegistryServeMetricsAddr(t *testing.T) {
	if localreg.MetricsInUse() {
		t.Skip("the registry's metrics are registered once per process (run again with -count=1)")
	}
	c := newCLI(t)
	root := t.TempDir()
	addr, maddr := freeAddr(t), freeAddr(t)
	stop := c.background("registry", "serve", "--root", root, "--addr", addr, "--metrics-addr", maddr)
	scrape(t, "http://"+maddr+"/metrics", "regctl_storage_size_bytes")
	c.ok("registry", "seed", addr+"/game-server")
	body := scrape(t, "http://"+maddr+"/metrics", `registry_http_requests_total{code="201",handler="manifest",method="put"}`)
	for _, want := range []string{`regctl_storage_free_bytes{path="` + root + `",registry="` + addr + `"}`, "registry_http_request_duration_seconds_bucket", "registry_storage_action_seconds_bucket"} {
		if !strings.Contains(body, want) {
			t.Errorf("lacks %s", want)
		}
	}
	if errOut, code := stop(); code != 0 || !strings.Contains(errOut, "metrics on http://"+maddr+"/metrics") {
		t.Errorf("exit %d: %s", code, errOut)
	}
}

func TestLifecycleApplyMetricsFile(t *testing.T) {
	host := localregtest.Start(t).Host
	c := newCLI(t)
	c.ok("registry", "seed", host+"/game-server")
	policy := writePolicy(t, keepTwoReleases)
	file := filepath.Join(t.TempDir(), "regctl_lifecycle.prom")
	repo := host + "/game-server"
	c.ok("lifecycle", "apply", "-f", policy, repo, "--yes", "--metrics-file", file)
	raw, _ := os.ReadFile(file)
	for _, want := range []string{
		`regctl_job_success{job="lifecycle",target="` + repo + `"} 1`,
		`regctl_lifecycle_expired_images{job="lifecycle",target="` + repo + `"} 4`,
		`regctl_lifecycle_deleted_manifests{job="lifecycle",target="` + repo + `"} 7`,
		`regctl_lifecycle_dry_run{job="lifecycle",target="` + repo + `"} 0`,
	} {
		if !strings.Contains(string(raw), want) {
			t.Errorf("lacks %s:\n%s", want, raw)
		}
	}
	// A run that fails before it starts (its policy is missing) says so, keeping the success time.
	if _, _, code := c.run("lifecycle", "apply", "-f", "missing.json", repo, "--metrics-file", file); code != exitcode.NotFound {
		t.Fatalf("exit %d", code)
	}
	raw, _ = os.ReadFile(file)
	if !strings.Contains(string(raw), `regctl_job_success{job="lifecycle",target="`+repo+`"} 0`) || !strings.Contains(string(raw), "regctl_job_last_success_timestamp_seconds{") {
		t.Errorf("after a failure:\n%s", raw)
	}
}
