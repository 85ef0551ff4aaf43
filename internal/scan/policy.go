package scan

import (
	"context"
	"fmt"
	"os"
	"sort"
	"strings"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/open-policy-agent/opa/v1/ast"
	"github.com/open-policy-agent/opa/v1/rego"

	"github.com/regctl-dev/regctl/internal/exitcode"
)

// Policy is a compiled Rego image policy: every `deny` rule of its package is evaluated.
type Policy struct {
	File    string
	Package string // e.g. data.docker.security
	Version ast.RegoVersion
	query   rego.PreparedEvalQuery
}

// LoadPolicy compiles a Rego file. Rego v1 is tried first; a module written in the older syntax
// (rules without `if`, `import future.keywords...`) is compiled as Rego v0, as OPA 0.x did.
func LoadPolicy(ctx context.Context, file string) (*Policy, error) {
	src, err := os.ReadFile(file)
	if err != nil {
		return nil, exitcode.With(exitcode.NotFound, fmt.Errorf("--policy: %w", err))
	}
	var mod *ast.Module
	version := ast.RegoV1
	mod, err = ast.ParseModuleWithOpts(file, string(src), ast.ParserOptions{RegoVersion: ast.RegoV1})
	if err != nil {
		var err0 error
		mod, err0 = ast.ParseModuleWithOpts(file, string(src), ast.ParserOptions{RegoVersion: ast.RegoV0})
		if err0 != nil {
			return nil, fmt.Errorf("--policy %s: not valid Rego (v1: %v; v0: %v): %w", file, err, err0, exitcode.ErrUsage)
		}
		version = ast.RegoV0
	}
	pkg := mod.Package.Path.String()
	q, err := rego.New(rego.Query(pkg+".deny"), rego.Module(file, string(src)), rego.SetRegoVersion(version)).PrepareForEval(ctx)
	if err != nil {
		return nil, fmt.Errorf("--policy %s: %v: %w", file, err, exitcode.ErrUsage)
	}
	return &Policy{File: file, Package: pkg, Version: version, query: q}, nil
}

// PolicyInput is the document a policy sees as `input`, shaped so that the guide's image-policy.rego
// works unmodified: Config.User, Config.Labels, Config.ExposedPorts as port numbers ("80", so that
// to_number(port) works), Config.Image as the base image name where the image records it.
func PolicyInput(ref, digest, platform string, cfg *v1.ConfigFile, annotations map[string]string) map[string]any {
	if cfg == nil {
		cfg = &v1.ConfigFile{}
	}
	c := cfg.Config
	ports := []string{}
	portsWithProto := []string{}
	for p := range c.ExposedPorts {
		portsWithProto = append(portsWithProto, p)
		num, _, _ := strings.Cut(p, "/")
		ports = append(ports, num)
	}
	sort.Strings(ports)
	sort.Strings(portsWithProto)
	labels := map[string]any{}
	for k, v := range c.Labels {
		labels[k] = v
	}
	base := c.Image // docker's legacy field
	for _, src := range []map[string]string{annotations, c.Labels} {
		if b := src["org.opencontainers.image.base.name"]; b != "" {
			base = b
		}
	}
	strs := func(s []string) []any {
		out := make([]any, len(s))
		for i, v := range s {
			out[i] = v
		}
		return out
	}
	return map[string]any{
		"Reference":    ref,
		"Digest":       digest,
		"Platform":     platform,
		"Architecture": cfg.Architecture,
		"Os":           cfg.OS,
		"Created":      cfg.Created.Time,
		"Config": map[string]any{
			"User":                     c.User,
			"Labels":                   labels,
			"ExposedPorts":             strs(ports),
			"ExposedPortsWithProtocol": strs(portsWithProto),
			"Env":                      strs(c.Env),
			"Entrypoint":               strs(c.Entrypoint),
			"Cmd":                      strs(c.Cmd),
			"WorkingDir":               c.WorkingDir,
			"Image":                    base,
		},
	}
}

// Evaluate returns every message of every deny rule, sorted.
func (p *Policy) Evaluate(ctx context.Context, input map[string]any) ([]string, error) {
	rs, err := p.query.Eval(ctx, rego.EvalInput(input))
	if err != nil {
		return nil, fmt.Errorf("evaluating %s: %w", p.File, err)
	}
	var msgs []string
	for _, r := range rs {
		for _, e := range r.Expressions {
			switch v := e.Value.(type) {
			case []any:
				for _, m := range v {
					msgs = append(msgs, fmt.Sprint(m))
				}
			case map[string]any: // deny as an object
				for k := range v {
					msgs = append(msgs, k)
				}
			case bool:
				if v {
					msgs = append(msgs, "denied by "+p.Package+".deny")
				}
			case nil:
			default:
				msgs = append(msgs, fmt.Sprint(v))
			}
		}
	}
	sort.Strings(msgs)
	return msgs, nil
}
