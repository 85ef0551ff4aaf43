package main

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/regctl-dev/regctl/internal/ecr/ecrtest"
	"github.com/regctl-dev/regctl/internal/exitcode"
	"github.com/regctl-dev/regctl/internal/lifecycle"
	"github.com/regctl-dev/regctl/internal/ui"
)

// The guide's ECR section through the CLI, against the ECR emulator (real SDK, SigV4, token auth).
func TestECRThroughTheCLI(t *testing.T) {
	srv := ecrtest.Start(t) // also points the AWS SDK at its CA and test credentials
	c := newCLI(t, os.Environ()...)
	cfg := "default_registry: prod\nregistries:\n  prod:\n    type: ecr\n    region: us-east-1\n    account: \"" + ecrtest.Account + "\"\n" +
		"    endpoint: " + srv.URL + "\n    ca_file: " + srv.CAFile + "\n"
	if err := os.WriteFile(filepath.Join(c.workDir, "regctl.yaml"), []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}

	// aws ecr create-repository x3 -> one idempotent command; encryption cannot change afterwards.
	out := c.ok("repo", "create", "game-server", "game-server/prometheus", "game-server/grafana", "--scan-on-push", "--encryption", "AES256", "-o", "json")
	if strings.Count(out, `"status": "created"`) != 3 {
		t.Fatalf("create:\n%s", out)
	}
	if out := c.ok("repo", "create", "game-server", "--scan-on-push", "--encryption", "AES256"); !strings.Contains(out, "unchanged") {
		t.Errorf("second create:\n%s", out)
	}
	if _, errOut, code := c.run("repo", "create", "game-server", "--encryption", "KMS"); code != exitcode.Usage || !strings.Contains(errOut, "cannot change it after creation") {
		t.Errorf("encryption change: exit %d %s", code, errOut)
	}
	if out := c.ok("repo", "list", "prod"); !strings.Contains(out, "game-server/grafana") {
		t.Errorf("list:\n%s", out)
	}

	// aws ecr set-repository-policy / get-repository-policy
	c.ok("repo", "policy", "set", "game-server", "-f", testdataFile("ecr/ecr-repository-policy.json"))
	if out := c.ok("repo", "policy", "get", "game-server"); !strings.Contains(out, "Statement") {
		t.Errorf("policy get:\n%s", out)
	}

	// aws ecr put-lifecycle-policy: validated locally, put natively, unchanged the second time.
	policy := testdataFile("lifecycle/ecr-lifecycle-policy.json")
	if _, errOut, code := c.run("lifecycle", "apply", "-f", policy, "game-server"); code != exitcode.Usage || !strings.Contains(errOut, "pass --yes") {
		t.Errorf("without --yes: exit %d %s", code, errOut)
	}
	var res lifecycle.Outcome
	if err := json.Unmarshal([]byte(c.ok("lifecycle", "apply", "-f", policy, "game-server", "--yes", "-o", "json")), &res); err != nil {
		t.Fatal(err)
	}
	if len(res.Native) != 1 || res.Native[0].Status != "put" || !strings.HasPrefix(res.Plans[0].Engine, "native") {
		t.Fatalf("native apply: %+v", res.Native)
	}
	puts := srv.Calls("PutLifecyclePolicy")
	if out := c.ok("lifecycle", "apply", "-f", policy, "game-server", "--yes"); !strings.Contains(out, "nothing to do") || srv.Calls("PutLifecyclePolicy") != puts {
		t.Errorf("re-apply must not put again:\n%s", out)
	}
	if out := c.ok("lifecycle", "get", "game-server"); !strings.Contains(out, `"rulePriority":1`) {
		t.Errorf("lifecycle get:\n%s", out)
	}
	if _, _, code := c.run("lifecycle", "get", "game-server/grafana"); code != exitcode.NotFound {
		t.Errorf("no policy: exit %d", code)
	}
	if _, _, code := c.run("repo", "images", "missing-repo"); code != exitcode.NotFound {
		t.Errorf("missing repository: exit %d", code)
	}

	// aws ecr put-replication-configuration with the guide's file, unmodified; unchanged the second time.
	c.ok("replication", "put", "-f", testdataFile("ecr/ecr-replication-configuration.json"))
	if _, errOut, _ := c.run("replication", "put", "-f", testdataFile("ecr/ecr-replication-configuration.json")); !strings.Contains(errOut, "unchanged") {
		t.Errorf("second put: %s", errOut)
	}
	if out := c.ok("replication", "get", "-o", "json"); !strings.Contains(out, `"region": "ap-northeast-2"`) {
		t.Errorf("replication get:\n%s", out)
	}

	// --dry-run puts ECR's own preview beside regctl's plan and flags every image they disagree on:
	// the emulator's preview, like the service per aws/containers-roadmap#2613, counts the untagged
	// platform manifests of an index; regctl protects them.
	c.ok("registry", "seed", "prod/multi")
	untagged := filepath.Join(t.TempDir(), "untagged.json")
	os.WriteFile(untagged, []byte(`{"rules":[{"rulePriority":1,"description":"keep the newest untagged image, padded over 100 characters","selection":{"tagStatus":"untagged","countType":"imageCountMoreThan","countNumber":1},"action":{"type":"expire"}}]}`), 0o600)
	var dry lifecycle.Outcome
	if err := json.Unmarshal([]byte(c.ok("lifecycle", "apply", "-f", untagged, "multi", "--dry-run", "-o", "json")), &dry); err != nil {
		t.Fatal(err)
	}
	if len(dry.Native) != 1 || len(dry.Native[0].Preview) != 2 || len(dry.Native[0].Disagreements) != 2 ||
		!strings.Contains(dry.Native[0].Disagreements[0], "regctl keeps it (protected") && !strings.Contains(dry.Native[0].Disagreements[0], "stays with") {
		t.Errorf("preview comparison: %+v", dry.Native)
	}
	if srv.Calls("PutLifecyclePolicy") != puts {
		t.Error("a dry run put a policy")
	}
	// --max-delete counts what ECR will expire once the policy is put (its preview: 2 images).
	if dry.Native[0].Expires != 2 || dry.Native[0].ExpiresSource != "registry-preview" {
		t.Errorf("native expiry count: %+v", dry.Native[0])
	}
	if _, errOut, code := c.run("lifecycle", "apply", "-f", untagged, "multi", "--yes", "--max-delete", "1"); code != exitcode.Error ||
		!strings.Contains(errOut, "expire 2 more") || srv.Calls("PutLifecyclePolicy") != puts {
		t.Errorf("a native policy over --max-delete must not be put: exit %d %s", code, errOut)
	}
	if _, errOut, code := c.run("lifecycle", "apply", "-f", untagged, "multi", "--max-delete", "5"); code != exitcode.Usage || !strings.Contains(errOut, "expire 2 images") {
		t.Errorf("without --yes, the native expiry is named: exit %d %s", code, errOut)
	}
	c.ok("lifecycle", "apply", "-f", untagged, "multi", "--yes", "--max-delete", "2")
	if srv.Calls("PutLifecyclePolicy") != puts+1 {
		t.Error("within --max-delete the policy is put")
	}

	// auth login writes the ECR token into the docker config (0600), merged with what is there.
	dockerDir := filepath.Join(c.workDir, "docker")
	os.MkdirAll(dockerDir, 0o700)
	os.WriteFile(filepath.Join(dockerDir, "config.json"), []byte(`{"auths":{"other.example.com":{"auth":"eDp5"}}}`), 0o600)
	c.env = append(c.env, "DOCKER_CONFIG="+dockerDir)
	_, errOut, code := c.run("auth", "login", "prod")
	raw, _ := os.ReadFile(filepath.Join(dockerDir, "config.json"))
	st, _ := os.Stat(filepath.Join(dockerDir, "config.json"))
	if code != 0 || !strings.Contains(string(raw), srv.Host) || !strings.Contains(string(raw), "other.example.com") || st.Mode().Perm() != 0o600 {
		t.Errorf("auth login: exit %d %s\n%s", code, errOut, raw)
	}
	if strings.Contains(errOut, "AWS:") {
		t.Error("the token was printed")
	}
	// The credential helper protocol, through the docker-credential-regctl name.
	streams, in, outBuf, errBuf := ui.Test()
	in.WriteString("https://" + srv.Host + "\n")
	if code := runWith(t, c, streams, "docker-credential-regctl", "get"); code != 0 || !strings.Contains(outBuf.String(), `"Username":"AWS"`) {
		t.Errorf("credential helper: exit %d %s %s", code, outBuf, errBuf)
	}

	// scan --engine native uses ECR's own findings with the same gate and reports.
	c.ok("registry", "seed", "prod/game-server")
	var images []struct {
		Digest string   `json:"digest"`
		Tags   []string `json:"tags"`
	}
	json.Unmarshal([]byte(c.ok("repo", "images", "game-server", "-o", "json")), &images)
	for _, img := range images {
		if len(img.Tags) > 0 && img.Tags[0] == "v1.0.2" {
			srv.SetFindings("game-server", img.Digest, []ecrtest.Finding{
				{Name: "CVE-2024-5535", Severity: "CRITICAL", Package: "openssl", Version: "3.3.0-r2", CVSS3: "9.1"},
				{Name: "CVE-2024-0001", Severity: "INFORMATIONAL", Package: "zlib", Version: "1.3"},
				{Name: "CVE-2024-6119", Severity: "HIGH", Package: "openssl", Version: "3.3.0-r2", CVSS3: "7.5"},
			})
		}
	}
	out, errOut, code = c.run("scan", "game-server:v1.0.2", "--engine", "native")
	if code != exitcode.Violation || !strings.Contains(errOut, "CVE-2024-5535 (openssl 3.3.0-r2)") || !strings.Contains(out, "Total: 2 (CRITICAL: 1, HIGH: 1") {
		t.Errorf("native scan: exit %d\n%s%s", code, out, errOut)
	}
	if srv.Calls("StartImageScan") != 1 || srv.Calls("DescribeImageScanFindings") < 2 {
		t.Errorf("scan calls: start %d, describe %d", srv.Calls("StartImageScan"), srv.Calls("DescribeImageScanFindings"))
	}
	// A second scan uses the finished one (ECR allows one scan per image per day).
	out = c.ok("scan", "game-server:v1.0.2", "--engine", "native", "--fail-on", "none", "--format", "json")
	if !strings.Contains(out, `"VulnerabilityID": "CVE-2024-6119"`) {
		t.Errorf("native json:\n%s", out)
	}
}

// runWith runs the CLI the way main does, under a program name, with the given streams.
func runWith(t *testing.T, c *cli, streams *ui.IOStreams, prog string, argv ...string) int {
	t.Helper()
	if filepath.Base(prog) == "docker-credential-regctl" {
		argv = append([]string{"credential-helper"}, argv...)
	}
	f := &Factory{IO: streams, Environ: c.env, Now: func() time.Time { return fixedNow }, WorkDir: c.workDir}
	return execute(context.Background(), f, argv)
}
