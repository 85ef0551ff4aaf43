package scan_test

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/open-policy-agent/opa/v1/ast"

	"github.com/regctl-dev/regctl/internal/exitcode"
	"github.com/regctl-dev/regctl/internal/scan"
	"github.com/regctl-dev/regctl/internal/scan/scantest"
)

func policyInput(t *testing.T, c scantest.ImageConfig, annotations map[string]string) map[string]any {
	t.Helper()
	img := scantest.VulnerableImage(t, c)
	cf, err := img.ConfigFile()
	if err != nil {
		t.Fatal(err)
	}
	return scan.PolicyInput("r/app:1", "sha256:x", "linux/amd64", cf, annotations)
}

// The guide's image-policy.rego (Rego v0 with future.keywords), unmodified.
func TestSeedImagePolicyVerdicts(t *testing.T) {
	p, err := scan.LoadPolicy(context.Background(), "../../testdata/scan/image-policy.rego")
	if err != nil {
		t.Fatal(err)
	}
	if p.Package != "data.docker.security" || p.Version != ast.RegoV0 {
		t.Errorf("package %s version %v", p.Package, p.Version)
	}
	compliant := policyInput(t, scantest.ImageConfig{User: "app", ExposedPorts: []string{"8080/tcp", "443/tcp"},
		Labels: map[string]string{"maintainer": "platform", "version": "1.2.0", "description": "game server"}}, nil)
	msgs, err := p.Evaluate(context.Background(), compliant)
	if err != nil || len(msgs) != 0 {
		t.Errorf("compliant image denied: %v %v", msgs, err)
	}

	bad := policyInput(t, scantest.ImageConfig{User: "root", ExposedPorts: []string{"22/tcp", "80/tcp"},
		Labels: map[string]string{"version": "1"}}, map[string]string{"org.opencontainers.image.base.name": "alpine:latest"})
	msgs, err = p.Evaluate(context.Background(), bad)
	if err != nil {
		t.Fatal(err)
	}
	want := []string{
		"Base image alpine:latest is not allowed",
		"Container must not run as root user",
		"Privileged port 22 is not allowed",
		"Required label 'description' is missing",
		"Required label 'maintainer' is missing",
	}
	if strings.Join(msgs, "\n") != strings.Join(want, "\n") {
		t.Errorf("denials:\n%s\nwant:\n%s", strings.Join(msgs, "\n"), strings.Join(want, "\n"))
	}
	empty := policyInput(t, scantest.ImageConfig{Labels: map[string]string{"maintainer": "m", "version": "v", "description": "d"}}, nil)
	msgs, _ = p.Evaluate(context.Background(), empty)
	if strings.Join(msgs, ",") != "Container must specify a non-root user" {
		t.Errorf("empty user: %v", msgs)
	}
}

func TestRegoV1PolicyAndErrors(t *testing.T) {
	dir := t.TempDir()
	v1 := filepath.Join(dir, "v1.rego")
	os.WriteFile(v1, []byte(`package images.rules
deny contains msg if {
	not startswith(input.Config.User, "app")
	msg := sprintf("user %q is not an app user", [input.Config.User])
}
`), 0o644)
	p, err := scan.LoadPolicy(context.Background(), v1)
	if err != nil {
		t.Fatal(err)
	}
	if p.Version != ast.RegoV1 {
		t.Errorf("version %v", p.Version)
	}
	msgs, _ := p.Evaluate(context.Background(), policyInput(t, scantest.ImageConfig{User: "root"}, nil))
	if strings.Join(msgs, ",") != `user "root" is not an app user` {
		t.Errorf("v1 denials: %v", msgs)
	}
	bad := filepath.Join(dir, "bad.rego")
	os.WriteFile(bad, []byte("package x\ndeny[ {"), 0o644)
	if _, err := scan.LoadPolicy(context.Background(), bad); exitcode.Of(err) != exitcode.Usage {
		t.Errorf("invalid rego: %v", err)
	}
	if _, err := scan.LoadPolicy(context.Background(), filepath.Join(dir, "none.rego")); exitcode.Of(err) != exitcode.NotFound {
		t.Errorf("missing policy: %v", err)
	}
}
