package metrics

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/regctl-dev/regctl/internal/localreg/localregtest"
)

// BenchmarkCollect: one collection of a registry of 20 seeded repositories (120 images, 200
// manifests) after the first, with the manifest cache warm; requests per collection reported.
func BenchmarkCollect(b *testing.B) {
	srv := localregtest.Start(b)
	reg := openOCI(b, srv.Host)
	for i := range 20 {
		seed(b, reg, fmt.Sprintf("game-server/svc-%02d", i))
	}
	c := &Collector{Targets: []Target{{Source: reg, StoragePath: srv.Root}}, Timeout: time.Minute}
	srv.Requests()
	start := time.Now()
	if st := c.Collect(context.Background())[0]; !st.Up {
		b.Fatal(st.Error)
	}
	b.Logf("first collection (no manifest cached): %s, %d requests", time.Since(start).Round(time.Millisecond), len(srv.Requests()))
	b.ResetTimer()
	for b.Loop() {
		if st := c.Collect(context.Background())[0]; !st.Up {
			b.Fatal(st.Error)
		}
	}
	b.StopTimer()
	b.ReportMetric(float64(len(srv.Requests()))/float64(b.N), "requests/op")
}
