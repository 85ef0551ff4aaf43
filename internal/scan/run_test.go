package scan_test

import (
	"context"
	"strings"
	"testing"

	"github.com/regctl-dev/regctl/internal/exitcode"
	"github.com/regctl-dev/regctl/internal/registry"
	"github.com/regctl-dev/regctl/internal/scan"
	"github.com/regctl-dev/regctl/internal/scan/scantest"
)

// ResolveGate: the first source set wins; bad input names the flag with its exit code.
func TestResolveGate(t *testing.T) {
	policy := "../../testdata/scan/harbor-scan-policy.json"
	custom := scan.Gate{FailOn: map[string]int{"CRITICAL": 0}, Source: "build-push default"}
	cases := []struct {
		name   string
		src    scan.GateSources
		source string
		cvss   float64
		code   int
	}{
		{"default", scan.GateSources{}, scan.DefaultGate().Source, 0, 0},
		{"caller default", scan.GateSources{Default: &custom}, "build-push default", 0, 0},
		{"config", scan.GateSources{ConfigFailOn: map[string]int{"HIGH": 1}, ConfigFile: "regctl.yaml", Default: &custom}, "scan.fail_on in regctl.yaml", 0, 0},
		{"flag over config", scan.GateSources{FailOn: "LOW=3", ConfigFailOn: map[string]int{"HIGH": 1}}, "--fail-on LOW=3", 0, 0},
		{"policy over config", scan.GateSources{PolicyFile: policy, ConfigFailOn: map[string]int{"HIGH": 1}, ConfigCVSS: 4}, "", 7.0, 0},
		{"cvss flag over the policy's", scan.GateSources{PolicyFile: policy, CVSS: 0, CVSSSet: true}, "", 0, 0},
		{"config cvss when nothing else says", scan.GateSources{ConfigCVSS: 5.5}, scan.DefaultGate().Source, 5.5, 0},
		{"exclusive", scan.GateSources{PolicyFile: policy, FailOn: "HIGH=1"}, "", 0, exitcode.Usage},
		{"missing policy", scan.GateSources{PolicyFile: "nope.json"}, "", 0, exitcode.NotFound},
		{"bad fail-on", scan.GateSources{FailOn: "SEVERE=1"}, "", 0, exitcode.Usage},
		{"cvss out of range", scan.GateSources{CVSS: 11, CVSSSet: true}, "", 0, exitcode.Usage},
	}
	for _, c := range cases {
		g, err := scan.ResolveGate(c.src)
		if c.code != 0 {
			if exitcode.Of(err) != c.code {
				t.Errorf("%s: exit %d (%v), want %d", c.name, exitcode.Of(err), err, c.code)
			}
			continue
		}
		if err != nil {
			t.Errorf("%s: %v", c.name, err)
			continue
		}
		if c.source != "" && g.Source != c.source {
			t.Errorf("%s: source %q, want %q", c.name, g.Source, c.source)
		}
		if g.CVSSThreshold != c.cvss {
			t.Errorf("%s: cvss %v, want %v", c.name, g.CVSSThreshold, c.cvss)
		}
	}
}

// Run scans every image through the engine, evaluates the image policy per image and the gate over
// everything; the verdict is Outcome.Err, and a failure to scan is an error, never a verdict.
func TestRun(t *testing.T) {
	fx := newFixture(t)
	clean := scantest.Push(t, fx.host+"/app:labelled", scantest.CleanImage(t, scantest.ImageConfig{Created: now, User: "app",
		Labels: map[string]string{"maintainer": "m", "version": "1", "description": "d"}}))
	e, err := scan.Open(fx.ensureDB(t).Dir, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer e.Close()
	policy, err := scan.LoadPolicy(context.Background(), "../../testdata/scan/image-policy.rego")
	if err != nil {
		t.Fatal(err)
	}
	res := registry.NewResolver(nil, registry.Options{})
	ctx := context.Background()
	run := func(images ...string) (*scan.Outcome, error) {
		return scan.Run(ctx, scan.RunOptions{Images: images, Resolve: res.Reference, Engine: e, Gate: scan.DefaultGate(),
			Policy: policy, Scan: scan.ScanOptions{Now: now}, Now: now, Version: "test"})
	}

	out, err := run(fx.host+"/app:vulnerable", clean.String())
	if err != nil {
		t.Fatal(err)
	}
	if len(out.Targets) != 2 || out.Gate.Passed || out.Gate.Counts["CRITICAL"] != 2 {
		t.Fatalf("targets %d, gate %+v", len(out.Targets), out.Gate)
	}
	// The vulnerable image has no user and no labels: denied four times; the labelled one not at all.
	var denied []string
	for _, d := range out.Denials {
		if d.Reference == clean.String() {
			t.Errorf("labelled, non-root image denied: %s", d.Message)
		}
		denied = append(denied, d.Message)
	}
	if len(denied) != 4 || !strings.Contains(strings.Join(denied, "|"), "Container must specify a non-root user") {
		t.Errorf("denials: %q", denied)
	}
	verdict := out.Err("image-policy.rego")
	if exitcode.Of(verdict) != exitcode.Violation || !strings.Contains(verdict.Error(), "CRITICAL: 2 findings") ||
		!strings.Contains(verdict.Error(), "image policy image-policy.rego denied") {
		t.Errorf("verdict: %v", verdict)
	}

	// Only the clean, labelled image: passes, no verdict.
	if out, err := run(clean.String()); err != nil || out.Err("p") != nil || !out.Gate.Passed {
		t.Errorf("clean run: %v %v", err, out)
	}
	// A missing image is an error (exit 5), not a passed gate.
	if out, err := run(fx.host + "/app:missing"); err == nil || exitcode.Of(err) != exitcode.NotFound {
		t.Errorf("missing image: %v %+v", err, out)
	}
	// --engine native on a registry without a scanner of its own: a usage error naming it.
	_, err = scan.Run(ctx, scan.RunOptions{Images: []string{clean.String()}, Resolve: res.Reference, Gate: scan.DefaultGate(), Now: now})
	if exitcode.Of(err) != exitcode.Usage || !strings.Contains(err.Error(), "no scanner of its own") {
		t.Errorf("native on oci: %v", err)
	}
}
