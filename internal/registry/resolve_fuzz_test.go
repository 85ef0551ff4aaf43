package registry

import (
	"strings"
	"testing"

	"github.com/regctl-dev/regctl/internal/config"
	"github.com/regctl-dev/regctl/internal/exitcode"
)

// FuzzReference: whatever a user types as REGISTRY/REPO[:TAG|@DIGEST] resolves to a reference on
// the registry it named, or fails with a usage error (exit 2); never a panic, never another host.
// Nothing is opened on the network (opening an OCI registry does not dial).
func FuzzReference(f *testing.F) {
	for _, seed := range []string{
		"local/game-server:v1", "game-server", "local", "127.0.0.1:5000/a/b@sha256:" + strings.Repeat("a", 64),
		"local/app@sha256:short", "local/Bad_Name", "", "/", ":", "@", "local/:", "local//x", "a.b/c:d:e",
		"docker.io/library/x", "localhost/x", "local/x:" + strings.Repeat("t", 200), "prod/app", "ünï.example/x",
	} {
		f.Add(seed)
	}
	cfg := &config.Config{DefaultRegistry: "local", Registries: map[string]config.Registry{
		"local": {Type: OCIType, URL: "127.0.0.1:5999", Insecure: true},
		"prod":  {Type: "ecr"}, // no backend in this build: a usage error, like any unknown type
	}}
	f.Fuzz(func(t *testing.T, arg string) {
		r := NewResolver(cfg, Options{Backends: []Backend{OCIBackend()}})
		reg, ref, err := r.Reference(arg)
		if err != nil {
			if exitcode.Of(err) != exitcode.Usage {
				t.Fatalf("%q: exit %d (%v), want a usage error", arg, exitcode.Of(err), err)
			}
			return
		}
		if reg == nil || ref == nil {
			t.Fatalf("%q: nil registry or reference without an error", arg)
		}
		if got := ref.Context().RegistryStr(); got != reg.Host() {
			t.Fatalf("%q: reference on %q, registry %q", arg, got, reg.Host())
		}
	})
}
