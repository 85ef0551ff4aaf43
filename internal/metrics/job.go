// Package metrics is regctl's Prometheus side: the textfile a cron-driven job (backup, lifecycle,
// replicate) leaves for node_exporter's textfile collector, so alerts can say "no successful backup
// for 26 hours" or "the last replicate failed".
package metrics

import (
	"errors"
	"fmt"
	"os"
	"sort"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
)

// The job metrics every regctl textfile has, labelled {job, target}.
const (
	JobLastRunName     = "regctl_job_last_run_timestamp_seconds"
	JobLastSuccessName = "regctl_job_last_success_timestamp_seconds"
	JobSuccessName     = "regctl_job_success"
	JobDurationName    = "regctl_job_duration_seconds"
)

// Job is one finished run of a job.
type Job struct {
	Name   string // backup, lifecycle, replicate
	Target string // what it ran on: a registry name, "src -> dst"
	Start  time.Time
	End    time.Time
	Err    error // nil: the run succeeded
	// Values are the job's own gauges (regctl_replicate_images{status="copied"} ...), labelled with
	// {job, target} besides their own labels.
	Values []Value
}

// Value is one sample of a job's own gauge.
type Value struct {
	Name   string
	Help   string
	Labels map[string]string
	Value  float64
}

// WriteJobTextfile writes the run's metrics to path atomically (a temporary file in the same
// directory, renamed over it), so the collector never reads half a file. The last success time of a
// failed run is carried over from the file the previous run left, so a failure does not hide how
// long ago the job last worked.
func WriteJobTextfile(path string, j Job) error {
	if j.Name == "" {
		return errors.New("metrics: a job needs a name")
	}
	jobLabels := prometheus.Labels{"job": j.Name, "target": j.Target}
	reg := prometheus.NewPedanticRegistry()
	gauge := func(name, help string, v float64) error {
		g := prometheus.NewGauge(prometheus.GaugeOpts{Name: name, Help: help, ConstLabels: jobLabels})
		g.Set(v)
		return reg.Register(g)
	}
	success := 0.0
	lastSuccess := 0.0
	if j.Err == nil {
		success, lastSuccess = 1, unixSeconds(j.End)
	} else if prev, ok := previousValue(path, JobLastSuccessName, jobLabels); ok {
		lastSuccess = prev
	}
	for _, g := range []struct {
		name, help string
		v          float64
	}{
		{JobLastRunName, "When the job last finished, successful or not (Unix seconds).", unixSeconds(j.End)},
		{JobSuccessName, "1 if the job's last run succeeded, 0 if it failed.", success},
		{JobDurationName, "How long the job's last run took.", j.End.Sub(j.Start).Seconds()},
	} {
		if err := gauge(g.name, g.help, g.v); err != nil {
			return err
		}
	}
	if lastSuccess > 0 {
		if err := gauge(JobLastSuccessName, "When the job last succeeded (Unix seconds); carried over by failed runs.", lastSuccess); err != nil {
			return err
		}
	}
	// The job's own gauges, grouped by name: one GaugeVec each.
	vecs := map[string]*prometheus.GaugeVec{}
	for _, v := range j.Values {
		keys := make([]string, 0, len(v.Labels))
		for k := range v.Labels {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		vec, ok := vecs[v.Name]
		if !ok {
			vec = prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: v.Name, Help: v.Help, ConstLabels: jobLabels}, keys)
			if err := reg.Register(vec); err != nil {
				return fmt.Errorf("metrics: %s: %w", v.Name, err)
			}
			vecs[v.Name] = vec
		}
		g, err := vec.GetMetricWith(v.Labels)
		if err != nil {
			return fmt.Errorf("metrics: %s: %w", v.Name, err)
		}
		g.Set(v.Value)
	}
	if err := prometheus.WriteToTextfile(path, reg); err != nil {
		return fmt.Errorf("writing the metrics textfile %s: %w", path, err)
	}
	return nil
}

func unixSeconds(t time.Time) float64 { return float64(t.UnixNano()) / 1e9 }

// previousValue reads one sample, with exactly these labels, from a textfile a previous run left. A
// missing or unreadable file has none.
func previousValue(path, name string, labels prometheus.Labels) (float64, bool) {
	f, err := os.Open(path)
	if err != nil { // missing (the first run) or unreadable: nothing to carry over
		return 0, false
	}
	defer f.Close()
	p := expfmt.NewTextParser(model.UTF8Validation)
	families, err := p.TextToMetricFamilies(f)
	if err != nil {
		return 0, false
	}
	mf, ok := families[name]
	if !ok {
		return 0, false
	}
	for _, m := range mf.GetMetric() {
		if sameLabels(m.GetLabel(), labels) && m.GetGauge() != nil {
			return m.GetGauge().GetValue(), true
		}
	}
	return 0, false
}

func sameLabels(got []*dto.LabelPair, want prometheus.Labels) bool {
	if len(got) != len(want) {
		return false
	}
	for _, l := range got {
		if want[l.GetName()] != l.GetValue() {
			return false
		}
	}
	return true
}
