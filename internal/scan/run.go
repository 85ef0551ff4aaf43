package scan

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/remote"

	"github.com/regctl-dev/regctl/internal/exitcode"
	"github.com/regctl-dev/regctl/internal/registry"
)

// GateSources are the places a gate can come from, the first set winning: a Harbor-style policy
// file, --fail-on, the config's scan.fail_on, then Default (build-push's) or DefaultGate.
type GateSources struct {
	PolicyFile   string         // --gate-policy
	FailOn       string         // --fail-on text
	ConfigFailOn map[string]int // scan.fail_on
	ConfigFile   string         // where scan.fail_on came from, for the gate's Source
	Default      *Gate          // replaces DefaultGate when nothing else is set
	// CVSS: --cvss-threshold when CVSSSet, else the policy's, else ConfigCVSS.
	CVSS       float64
	CVSSSet    bool
	ConfigCVSS float64
}

// ResolveGate decides the gate. Bad input is a usage error (exit 2) naming the flag; a policy file
// that cannot be read exits 5.
func ResolveGate(s GateSources) (Gate, error) {
	gate := DefaultGate()
	if s.Default != nil {
		gate = *s.Default
	}
	switch {
	case s.PolicyFile != "" && s.FailOn != "":
		return Gate{}, fmt.Errorf("--gate-policy and --fail-on are exclusive: %w", exitcode.ErrUsage)
	case s.PolicyFile != "":
		data, err := os.ReadFile(s.PolicyFile)
		if err != nil {
			return Gate{}, exitcode.With(exitcode.NotFound, fmt.Errorf("--gate-policy: %w", err))
		}
		if gate, err = ParseHarborPolicy(data, s.PolicyFile); err != nil {
			return Gate{}, err
		}
	case s.FailOn != "":
		limits, err := ParseFailOn(s.FailOn)
		if err != nil {
			return Gate{}, err
		}
		gate = Gate{FailOn: limits, Source: "--fail-on " + s.FailOn}
	case len(s.ConfigFailOn) > 0:
		file := s.ConfigFile
		if file == "" {
			file = "(no config file)"
		}
		gate = Gate{FailOn: s.ConfigFailOn, Source: "scan.fail_on in " + file}
	}
	if s.CVSSSet {
		gate.CVSSThreshold = s.CVSS
	} else if gate.CVSSThreshold == 0 {
		gate.CVSSThreshold = s.ConfigCVSS
	}
	if gate.CVSSThreshold < 0 || gate.CVSSThreshold > 10 {
		return Gate{}, fmt.Errorf("--cvss-threshold must be between 0 and 10: %w", exitcode.ErrUsage)
	}
	return gate, nil
}

// Resolve turns a user's image argument into its registry and reference (registry.Resolver.Reference).
type Resolve func(arg string) (registry.Registry, name.Reference, error)

// RunOptions are one scan run: which images, through which engine, under which gate and policy.
type RunOptions struct {
	Images  []string
	Resolve Resolve
	// Engine scans client-side (trivy); nil means the registry's own scanner (--engine native).
	Engine  *Engine
	Scan    ScanOptions
	Gate    Gate
	Policy  *Policy // nil: no image policy
	Expired []ExpiredIgnore
	Version string // regctl's, for SARIF
	Now     time.Time
}

// Run scans every image, evaluates the image policy against each platform's config, and the gate
// against every finding. The gate's verdict is in the Outcome (Outcome.Err), not the error: an
// error means the scan itself failed, and no verdict may be drawn from it.
func Run(ctx context.Context, o RunOptions) (*Outcome, error) {
	if o.Resolve == nil {
		return nil, errors.New("scan.Run: no Resolve")
	}
	out := &Outcome{Version: o.Version, Expired: o.Expired, Generated: o.Now}
	for _, arg := range o.Images {
		reg, ref, err := o.Resolve(arg)
		if err != nil {
			return nil, err
		}
		var targets []Target
		if o.Engine == nil {
			t, err := nativeScan(ctx, reg, ref, o.Scan, o.Policy != nil)
			if err != nil {
				return nil, err
			}
			targets = []Target{t}
		} else if targets, err = o.Engine.Scan(ctx, reg.Remote(), ref, o.Scan); err != nil {
			return nil, err
		}
		out.Targets = append(out.Targets, targets...)
		if o.Policy != nil {
			// The image's manifest annotations (the base image name) are read once per image.
			ann, err := annotationsOf(append(reg.Remote(), remote.WithContext(ctx)), ref)
			if err != nil {
				// A rule on the base image must not pass because its name could not be read.
				return nil, exitcode.With(exitcode.Error, fmt.Errorf("image policy %s: reading the annotations of %s (the base image name): %w", o.Policy.File, ref, err))
			}
			for _, t := range targets {
				msgs, err := o.Policy.Evaluate(ctx, PolicyInput(t.Reference, t.Digest, t.Platform, t.Config, ann))
				if err != nil {
					return nil, err
				}
				for _, m := range msgs {
					out.Denials = append(out.Denials, Denial{Reference: t.Reference, Platform: t.Platform, Message: m})
				}
			}
		}
	}
	out.Findings = Findings(out.Targets)
	out.Gate = o.Gate.EvaluateTargets(out.Targets)
	return out, nil
}

// Err is the run's verdict: the failed gate and the policy's denials (exit 3), nil when it passed.
func (o *Outcome) Err(policyName string) error {
	var errs []error
	if err := o.Gate.Err(); err != nil {
		errs = append(errs, err)
	}
	if len(o.Denials) > 0 {
		msgs := make([]string, len(o.Denials))
		for i, d := range o.Denials {
			msgs[i] = d.Message
		}
		errs = append(errs, fmt.Errorf("image policy %s denied: %s: %w", policyName, strings.Join(msgs, "; "), exitcode.ErrViolation))
	}
	if len(errs) == 0 {
		return nil
	}
	return exitcode.With(exitcode.Violation, errors.Join(errs...))
}

// nativeScan asks the registry's own scanner (ECR, Harbor) about the image's digest.
func nativeScan(ctx context.Context, reg registry.Registry, ref name.Reference, o ScanOptions, needConfig bool) (Target, error) {
	ns, ok := reg.(registry.NativeScanner)
	if !ok {
		return Target{}, fmt.Errorf("--engine native: %s is a %s registry, which has no scanner of its own; use --engine trivy: %w", reg.Name(), reg.Type(), exitcode.ErrUsage)
	}
	opts := append(reg.Remote(), remote.WithContext(ctx))
	desc, err := remote.Head(ref, opts...)
	if err != nil {
		return Target{}, fmt.Errorf("%s: %w", ref, err)
	}
	findings, err := ns.NativeScan(ctx, ref.Context().RepositoryStr(), desc.Digest)
	if err != nil {
		return Target{}, err
	}
	t, err := NativeTarget(ctx, ref.String(), desc.Digest.String(), reg.Type(), findings, o)
	if err != nil {
		return t, err
	}
	if needConfig {
		img, err := remote.Image(ref, opts...)
		if err != nil {
			return t, err
		}
		if t.Config, err = img.ConfigFile(); err != nil {
			return t, err
		}
	}
	return t, nil
}

// annotationsOf returns the manifest annotations of ref (for the base image name); an image without
// any has an empty map.
func annotationsOf(opts []remote.Option, ref name.Reference) (map[string]string, error) {
	desc, err := remote.Get(ref, opts...)
	if err != nil {
		return nil, err
	}
	var m struct {
		Annotations map[string]string `json:"annotations"`
	}
	if err := json.Unmarshal(desc.Manifest, &m); err != nil {
		return nil, fmt.Errorf("the manifest is not JSON: %w", err)
	}
	if m.Annotations == nil {
		m.Annotations = map[string]string{}
	}
	return m.Annotations, nil
}
