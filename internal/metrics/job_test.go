package metrics

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

func TestJobTextfileCarriesLastSuccessOverAFailure(t *testing.T) {
	path := filepath.Join(t.TempDir(), "replicate.prom")
	t0 := time.Unix(1_800_000_000, 0)
	ok := Job{Name: "replicate", Target: "local -> dr", Start: t0, End: t0.Add(3 * time.Second),
		Values: []Value{{Name: "regctl_replicate_images", Help: "Images by outcome.", Labels: map[string]string{"status": "copied"}, Value: 7}}}
	if err := WriteJobTextfile(path, ok); err != nil {
		t.Fatal(err)
	}
	raw, _ := os.ReadFile(path)
	for _, want := range []string{
		`regctl_job_success{job="replicate",target="local -> dr"} 1`,
		`regctl_job_last_success_timestamp_seconds{job="replicate",target="local -> dr"} 1.800000003e+09`,
		`regctl_job_duration_seconds{job="replicate",target="local -> dr"} 3`,
		`regctl_replicate_images{job="replicate",status="copied",target="local -> dr"} 7`,
	} {
		if !strings.Contains(string(raw), want) {
			t.Errorf("missing %q in\n%s", want, raw)
		}
	}

	failed := Job{Name: "replicate", Target: "local -> dr", Start: t0.Add(time.Hour), End: t0.Add(time.Hour + time.Second), Err: errors.New("boom")}
	if err := WriteJobTextfile(path, failed); err != nil {
		t.Fatal(err)
	}
	raw, _ = os.ReadFile(path)
	for _, want := range []string{
		`regctl_job_success{job="replicate",target="local -> dr"} 0`,
		`regctl_job_last_success_timestamp_seconds{job="replicate",target="local -> dr"} 1.800000003e+09`,
		`regctl_job_last_run_timestamp_seconds{job="replicate",target="local -> dr"} 1.800003601e+09`,
	} {
		if !strings.Contains(string(raw), want) {
			t.Errorf("after a failure, missing %q in\n%s", want, raw)
		}
	}
	// Another target's success time is not taken over.
	other := filepath.Join(t.TempDir(), "x.prom")
	_ = os.WriteFile(other, raw, 0o644)
	if _, ok := previousValue(other, JobLastSuccessName, prometheus.Labels{"job": "replicate", "target": "elsewhere"}); ok {
		t.Error("a success time of another target was carried over")
	}
	if entries, _ := os.ReadDir(filepath.Dir(path)); len(entries) != 1 {
		t.Errorf("the atomic write left files behind: %v", entries)
	}
}

func TestJobTextfileFirstRunFailedHasNoSuccessTime(t *testing.T) {
	path := filepath.Join(t.TempDir(), "backup.prom")
	now := time.Unix(1_800_000_000, 0)
	if err := WriteJobTextfile(path, Job{Name: "backup", Target: "local", Start: now, End: now, Err: errors.New("x")}); err != nil {
		t.Fatal(err)
	}
	raw, _ := os.ReadFile(path)
	if strings.Contains(string(raw), JobLastSuccessName) {
		t.Errorf("a job that never succeeded has a success time:\n%s", raw)
	}
	if err := WriteJobTextfile(filepath.Join(t.TempDir(), "missing", "x.prom"), Job{Name: "backup"}); err == nil || !strings.Contains(err.Error(), "textfile") {
		t.Errorf("an unwritable path: %v", err)
	}
}
