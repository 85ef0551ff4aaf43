package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/regctl-dev/regctl/internal/backup"
	"github.com/regctl-dev/regctl/internal/exitcode"
	"github.com/regctl-dev/regctl/internal/localreg/localregtest"
)

func TestBackupCommands(t *testing.T) {
	src := localregtest.Start(t).Host
	c := newCLI(t)
	c.ok("registry", "seed", src+"/game-server")
	c.ok("registry", "seed", src+"/tools")
	dest := filepath.Join(t.TempDir(), "backup")
	metrics := filepath.Join(t.TempDir(), "regctl_backup.prom")

	var snap backup.Snapshot
	out := c.ok("backup", src, "--to", dest, "--repos", "game-*", "--metrics-file", metrics, "-o", "json")
	if err := json.Unmarshal([]byte(out), &snap); err != nil || len(snap.Repos) != 1 || snap.Repos[0].Name != "game-server" {
		t.Fatalf("backup: %v\n%s", err, out)
	}
	prom, _ := os.ReadFile(metrics)
	for _, want := range []string{`regctl_job_success{job="backup",target="` + src + `"} 1`, `regctl_job_last_success_timestamp_seconds{job="backup",target="` + src + `"} `,
		`regctl_backup_images{job="backup",target="` + src + `"} 7`} {
		if !strings.Contains(string(prom), want) {
			t.Errorf("metrics lack %q:\n%s", want, prom)
		}
	}
	if list := c.ok("backup", "list", "--from", dest); !strings.Contains(list, snap.ID) {
		t.Errorf("list:\n%s", list)
	}
	if v := c.ok("backup", "verify", "--from", dest, "latest"); !strings.Contains(v, snap.ID) {
		t.Errorf("verify:\n%s", v)
	}
	target := localregtest.Start(t).Host
	// The dry run counts what it would push (an empty target: everything) and pushes nothing.
	dry := strings.Split(strings.TrimSpace(c.ok("restore", "--from", dest, "--to", target, "--dry-run")), "\n")
	if len(dry) != 2 || !strings.Contains(dry[0], "MANIFESTS TO PUSH") || len(strings.Fields(dry[1])) < 3 || strings.Fields(dry[1])[2] == "0" {
		t.Errorf("a dry-run restore counts what it would push:\n%s", strings.Join(dry, "\n"))
	}
	if repos := c.ok("repo", "list", target); strings.Contains(repos, "game-server") {
		t.Error("a dry-run restore pushed")
	}
	c.ok("restore", "--from", dest, "--to", target)
	if a, b := c.ok("repo", "images", src+"/game-server", "-o", "json"), c.ok("repo", "images", target+"/game-server", "-o", "json"); strings.ReplaceAll(a, src, "") != strings.ReplaceAll(b, target, "") {
		t.Error("restored images differ from the source")
	}
	// Damage a blob: verify names it and exits 1.
	blobs, _ := filepath.Glob(filepath.Join(dest, "blobs", "sha256", "*"))
	os.WriteFile(blobs[0], []byte("damaged"), 0o644)
	_, errOut, code := c.run("backup", "verify", "--from", dest)
	if code != exitcode.Error || !strings.Contains(errOut, "is damaged") {
		t.Errorf("damaged verify: exit %d %s", code, errOut)
	}
	// A failed run keeps the last success time in the metrics and says 0.
	// (Per job and target: a run of the same target that fails, as no repository matches.)
	_, _, code = c.run("backup", src, "--to", dest, "--repos", "no-such-*", "--metrics-file", metrics)
	prom, _ = os.ReadFile(metrics)
	if code == 0 || !strings.Contains(string(prom), `regctl_job_success{job="backup",target="`+src+`"} 0`) || !strings.Contains(string(prom), "regctl_job_last_success_timestamp_seconds{") {
		t.Errorf("failed run: exit %d\n%s", code, prom)
	}
	for _, argv := range [][]string{
		{"backup", "prune", "--from", dest},
		{"restore", "--from", dest},
		{"backup", src, "--to", "ftp://x/y"},
	} {
		if _, errOut, code := c.run(argv...); code != exitcode.Usage {
			t.Errorf("%v: exit %d %s", argv, code, errOut)
		}
	}
	if _, _, code := c.run("restore", "--from", dest, "--to", target, "20990101T000000Z"); code != exitcode.NotFound {
		t.Errorf("unknown snapshot: exit %d", code)
	}
	if out := c.ok("backup", "prune", "--from", dest, "--keep-days", "30", "--dry-run"); !strings.Contains(out, "WOULD REMOVE") {
		t.Errorf("prune dry run:\n%s", out)
	}
}
