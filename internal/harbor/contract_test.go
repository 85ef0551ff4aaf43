package harbor_test

import (
	"fmt"
	"maps"
	"slices"
	"strings"
	"testing"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"

	"github.com/regctl-dev/regctl/internal/harbor"
	"github.com/regctl-dev/regctl/internal/harbor/harbortest"
	"github.com/regctl-dev/regctl/internal/registry"
)

// clientOperations are every Harbor API operation regctl's Harbor client calls.
var clientOperations = []string{"CreateRobot", "ListRobot", "createProject", "createRegistry", "createReplicationPolicy", "createRetention",
	"deleteArtifact", "deleteTag", "getArtifact", "getHealth", "getPing", "getProject", "getReplicationExecution", "getReplicationLog", "getRepository",
	"getRetention", "getRetentionTaskLog", "getSystemInfo", "getVulnerabilitiesAddition", "listArtifacts", "listProjects", "listRegistries",
	"listReplicationPolicies", "listReplicationTasks", "listRepositories", "listRetentionExecutions", "listRetentionTasks", "listScanners",
	"scanArtifact", "startReplication", "triggerRetentionExecution", "updateProject", "updateRegistry", "updateReplicationPolicy", "updateRetention"}

// TestClientAgainstHarborsSpec drives every call of the Harbor client through the emulator with
// the validator built from testdata/harbor/harbor-v2.0-swagger.yaml: each request must be an
// operation of the spec with valid parameters and body, each answer valid for the operation.
// A request the spec does not have is a bug in regctl, not in the spec.
func TestClientAgainstHarborsSpec(t *testing.T) {
	s := harbortest.Start(t) // validates; fails the test on any violation at cleanup too
	h := open(t, s, s.Username, s.Password)
	ps := registry.ProjectSpec{Public: bp(false), ScanOnPush: bp(true), PreventVulnerable: bp(true), Severity: "high",
		ScanPolicy: policyFile(t), ScanPolicyName: "harbor-scan-policy.json"}
	steps := []func() error{
		func() error { _, err := h.EnsureProject(ctx, "game-server", registry.RepositorySpec{}, ps); return err },
		func() error {
			_, err := h.EnsureProject(ctx, "game-server", registry.RepositorySpec{}, registry.ProjectSpec{Severity: "critical"})
			return err
		},
		func() error {
			_, err := h.EnsureProject(ctx, "game-server/api", registry.RepositorySpec{}, registry.ProjectSpec{})
			return err
		},
		func() error { _, err := h.RepositorySettings(ctx, "game-server/api"); return err },
		func() error {
			_, err := h.CreateRobot(ctx, harbor.RobotSpec{Project: "game-server", Name: "ci", Access: harbor.RobotAccessFor(true, true, true, true), ExpiresDays: 7})
			return err
		},
		func() error { _, err := h.Robots(ctx, "game-server"); return err },
		func() error {
			if rep := h.Health(ctx); !rep.Healthy {
				return fmt.Errorf("health: %+v", rep)
			}
			return nil
		},
	}
	for i, step := range steps {
		if err := step(); err != nil {
			t.Fatalf("step %d: %v", i, err)
		}
	}
	base := labelled(t, empty.Image, "base")
	idx := mutate.AppendManifests(empty.Index, mutate.IndexAddendum{Add: base, Descriptor: v1.Descriptor{Platform: &v1.Platform{OS: "linux", Architecture: "amd64"}}})
	if err := remoteWriteIndex(t, h, "game-server/nested/api:v1", idx); err != nil {
		t.Fatal(err)
	}
	untagged := push(t, h, "game-server/nested/api:tmp", labelled(t, base, "a"))
	push(t, h, "game-server/nested/api:tmp", labelled(t, base, "b"))
	if _, err := h.Repositories(ctx, ""); err != nil {
		t.Fatal(err)
	}
	if _, err := h.Repositories(ctx, "game-server/"); err != nil {
		t.Fatal(err)
	}
	if _, err := h.Images(ctx, "game-server/nested/api"); err != nil {
		t.Fatal(err)
	}
	if _, err := h.NativeScan(ctx, "game-server/nested/api", untagged); err != nil {
		t.Fatal(err)
	}
	if err := h.DeleteImage(ctx, "game-server/nested/api", untagged); err != nil {
		t.Fatal(err)
	}
	if err := h.DeleteTag(ctx, "game-server/nested/api", "tmp"); err != nil {
		t.Fatal(err)
	}
	if _, err := h.EnsureProject(ctx, "game-server/nested/api", registry.RepositorySpec{}, registry.ProjectSpec{}); err != nil {
		t.Fatal(err)
	}

	// lifecycle apply --native: create, dry-run, run, schedule (update), read back.
	pol := mustPolicy(t, nativePolicy)
	plans := plansFor(t, h, pol, time.Now(), "game-server/nested/api")
	target := []harbor.RetentionTarget{{Project: "game-server", Repos: []string{"nested/api"}, Plans: plans}}
	if _, err := h.ApplyRetention(ctx, target, harbor.RetentionOptions{Policy: pol, Yes: true, Cron: "0 0 3 * * *"}); err != nil {
		t.Fatal(err)
	}
	if stored, err := h.Retention(ctx, "game-server"); err != nil || stored == nil || stored.Trigger.Settings["cron"] != "0 0 3 * * *" {
		t.Fatalf("the stored policy: %v %+v", err, stored)
	}

	// replication put, get and run: endpoint and policy created, the policy updated, a run that
	// copies, then the endpoint moved to a dead URL (updated) and a run that fails (its log read).
	dr := harbortest.Start(t)
	spec := syncToDR(dr)
	if _, err := h.PutReplication(ctx, spec, false); err != nil {
		t.Fatal(err)
	}
	spec.TagFilter = "v*"
	if _, err := h.PutReplication(ctx, spec, false); err != nil {
		t.Fatal(err)
	}
	if _, err := h.ReplicationPolicies(ctx); err != nil {
		t.Fatal(err)
	}
	if run, err := h.RunReplication(ctx, spec.Name); err != nil || len(run.Tasks) == 0 {
		t.Fatalf("replication run: %+v %v", run, err)
	}
	spec.Dest.URL = "http://127.0.0.1:1"
	if _, err := h.PutReplication(ctx, spec, false); err != nil {
		t.Fatal(err)
	}
	if run, err := h.RunReplication(ctx, spec.Name); err == nil || len(run.Tasks) == 0 || run.Tasks[0].Log == "" {
		t.Fatalf("replication run to a dead endpoint: %+v %v", run, err)
	}

	v := s.Emulator().Validator()
	if vs := v.Violations(); len(vs) > 0 {
		t.Fatalf("requests or answers outside Harbor's spec:\n%s", strings.Join(vs, "\n"))
	}
	got := slices.Sorted(maps.Keys(v.Operations()))
	if !slices.Equal(got, clientOperations) {
		t.Errorf("operations validated %v, want every operation the client calls %v", got, clientOperations)
	}
	for _, r := range s.Requests() {
		_, path, _ := strings.Cut(r, " ")
		if !strings.HasPrefix(path, "/api/v2.0/") && !strings.HasPrefix(path, "/v2/") && path != "/v2" && !strings.HasPrefix(path, "/service/token") {
			t.Errorf("a request outside Harbor's API and registry: %s", r)
		}
	}
}
