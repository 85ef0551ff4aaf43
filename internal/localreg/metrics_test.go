package localreg_test

import (
	"context"
	"errors"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/regctl-dev/regctl/internal/localreg"
	"github.com/regctl-dev/regctl/internal/sample"
)

// --metrics-addr serves distribution's own metrics, under the names the rules and the dashboard
// use (checked here against the library, not assumed), and extra collectors beside them; a second
// instrumented registry in the process is refused rather than panicking.
func TestServeMetricsAddrExportsDistributionMetrics(t *testing.T) {
	if localreg.MetricsInUse() {
		t.Skip("the registry's metrics are registered once per process (run again with -count=1)")
	}
	metricsURL := make(chan string, 1)
	extra := prometheus.NewGauge(prometheus.GaugeOpts{Name: "regctl_test_extra", Help: "x"})
	u, stop := serve(t, localreg.Options{Root: t.TempDir(), MetricsAddr: "127.0.0.1:0",
		MetricsCollectors: []prometheus.Collector{extra}, MetricsReady: func(u string) { metricsURL <- u }})
	defer stop()
	mu := <-metricsURL
	repo, _ := name.NewRepository(localreg.HostOf(u)+"/game-server", name.Insecure)
	img, err := sample.Image(sample.ImageSpec{Seed: "metrics", Created: time.Now()})
	if err != nil {
		t.Fatal(err)
	}
	if err := remote.Write(repo.Tag("v1"), img); err != nil {
		t.Fatal(err)
	}
	if _, err := remote.Get(repo.Tag("v1")); err != nil {
		t.Fatal(err)
	}
	resp, err := http.Get(mu)
	if err != nil {
		t.Fatal(err)
	}
	raw, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	body := string(raw)
	for _, want := range []string{
		`registry_http_requests_total{code="201",handler="manifest",method="put"}`,
		`registry_http_requests_total{code="200",handler="manifest",method="get"}`,
		`registry_http_request_duration_seconds_bucket{handler="manifest",method="get",le="`,
		`registry_http_in_flight_requests{handler="blob"}`,
		`registry_http_response_size_bytes_bucket{handler="manifest"`,
		`registry_storage_action_seconds_bucket{action="PutContent",driver="filesystem"`,
		"regctl_test_extra 0",
		"go_goroutines",
	} {
		if !strings.Contains(body, want) {
			t.Errorf("/metrics lacks %s", want)
		}
	}
	if t.Failed() || testing.Verbose() {
		t.Logf("/metrics:\n%s", body)
	}
	_, _, err = localreg.Handler(context.Background(), localreg.Options{Metrics: true})
	if !errors.Is(err, localreg.ErrMetricsTaken) {
		t.Errorf("a second instrumented registry: %v", err)
	}
}
