package backup_test

import (
	"context"
	"io"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/regctl-dev/regctl/internal/backup"
	"github.com/regctl-dev/regctl/internal/localreg/localregtest"
	"github.com/regctl-dev/regctl/internal/registry"
	"github.com/regctl-dev/regctl/internal/sample"
)

// A backup killed with SIGKILL part-way leaves the earlier snapshot whole and restorable; the next
// run recovers the dead run's lock, reuses what it stored, and completes.
func TestKill9DuringBackup(t *testing.T) {
	srv := localregtest.Start(t, localregtest.Options{Wrap: func(h http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if r.Method == http.MethodGet && strings.Contains(r.URL.Path, "/blobs/") {
				time.Sleep(30 * time.Millisecond) // slow blobs, so the kill lands mid-run
			}
			h.ServeHTTP(w, r)
		})
	}})
	reg := open(t, srv.Host)
	ctx := context.Background()
	seedRepo := func(name string, at time.Time) {
		ref, _ := registry.RepositoryRef(reg, name)
		if _, err := sample.Seed(ctx, ref, at, reg.Remote()...); err != nil {
			t.Fatal(err)
		}
	}
	seedRepo("first", day0)
	dest := t.TempDir()
	s, _ := backup.Open(ctx, dest, "")
	first, err := backup.Backup(ctx, reg, s, backup.Options{Now: at(day0)})
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 4; i++ {
		seedRepo("more/r"+string(rune('a'+i)), day0.Add(-time.Duration(i+1)*24*time.Hour))
	}
	before, _ := s.List(ctx, "blobs/")

	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), "REGCTL_BACKUP_CHILD="+srv.Host, "REGCTL_BACKUP_DEST="+dest)
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(30 * time.Second)
	for {
		now, _ := s.List(ctx, "blobs/")
		if len(now) >= len(before)+3 {
			break
		}
		if time.Now().After(deadline) {
			cmd.Process.Kill()
			t.Fatal("the child stored nothing in 30s")
		}
		time.Sleep(10 * time.Millisecond)
	}
	if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	cmd.Wait()

	snaps, _ := backup.Snapshots(ctx, s)
	if len(snaps) != 1 || snaps[0].ID != first.ID {
		t.Fatalf("after the kill: %d snapshots", len(snaps))
	}
	if holders, _, _ := backup.Holders(ctx, s, time.Now()); len(holders) != 0 {
		t.Fatalf("a killed run's lock must count as stale on its host: %+v", holders)
	}
	if _, err := s.Size(ctx, "lock"); err != nil {
		t.Fatalf("the killed run's lock should still be there: %v", err)
	}
	if v, err := backup.Verify(ctx, s, first, nil); err != nil || !v.OK() {
		t.Fatalf("the earlier snapshot was damaged: %+v %v", v, err)
	}
	if _, err := backup.Restore(ctx, s, first, open(t, localregtest.Start(t).Host), backup.Options{}); err != nil {
		t.Fatalf("restore of the earlier snapshot: %v", err)
	}
	// The next run takes over the dead run's lock (same host, process gone) and finishes the work.
	next, err := backup.Backup(ctx, reg, s, backup.Options{Now: at(day0.Add(time.Hour))})
	if err != nil {
		t.Fatalf("the run after the kill: %v", err)
	}
	if next.Stats.NewBlobs >= next.Stats.Blobs-first.Stats.Blobs || len(next.Repos) != 5 {
		t.Errorf("the next run should reuse the killed run's blobs: %+v", next.Stats)
	}
	if v, err := backup.Verify(ctx, s, next, nil); err != nil || !v.OK() {
		t.Errorf("verify: %+v %v", v, err)
	}
}

// versitygw finds the S3 server (installed by .ci/run); missing, the test skips locally and fails in CI.
func versitygw(t *testing.T) string {
	t.Helper()
	if p := os.Getenv("REGCTL_TEST_VERSITYGW"); p != "" {
		return p
	}
	if p, err := exec.LookPath("versitygw"); err == nil {
		return p
	}
	if os.Getenv("REGCTL_TEST_REQUIRE_TOOLS") != "" {
		t.Fatal("versitygw is required (REGCTL_TEST_VERSITYGW or on PATH)")
	}
	t.Skip("versitygw not installed; .ci/run installs it")
	return ""
}

func TestS3BackupAndRestoreWithVersityGW(t *testing.T) {
	bin := versitygw(t)
	ln, _ := net.Listen("tcp", "127.0.0.1:0")
	addr := ln.Addr().String()
	ln.Close()
	dir := t.TempDir()
	ctx, cancel := context.WithCancel(context.Background())
	gw := exec.CommandContext(ctx, bin, "--access", "regctltest", "--secret", "regctltestsecret", "--port", addr, "posix", dir)
	gw.Stdout, gw.Stderr = io.Discard, io.Discard // it logs every request
	if err := gw.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cancel(); gw.Wait() })
	for i := 0; ; i++ {
		if c, err := net.Dial("tcp", addr); err == nil {
			c.Close()
			break
		}
		if i > 100 {
			t.Fatal("versitygw did not start")
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Setenv("AWS_ACCESS_KEY_ID", "regctltest")
	t.Setenv("AWS_SECRET_ACCESS_KEY", "regctltestsecret")
	t.Setenv("AWS_REGION", "us-east-1")
	t.Setenv("AWS_ENDPOINT_URL_S3", "http://"+addr)
	t.Setenv("AWS_EC2_METADATA_DISABLED", "true")
	t.Setenv("AWS_CONFIG_FILE", filepath.Join(t.TempDir(), "none"))
	t.Setenv("AWS_SHARED_CREDENTIALS_FILE", filepath.Join(t.TempDir(), "none"))
	// AWS_CA_BUNDLE stays as the machine sets it: the store must work with it.
	cfg, err := config.LoadDefaultConfig(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	admin := s3.NewFromConfig(cfg, func(o *s3.Options) { o.UsePathStyle = true })
	if _, err := admin.CreateBucket(context.Background(), &s3.CreateBucketInput{Bucket: aws.String("backups")}); err != nil {
		t.Fatal(err)
	}

	_, reg := seeded(t)
	bg := context.Background()
	s, err := backup.Open(bg, "s3://backups/registry", "")
	if err != nil {
		t.Fatal(err)
	}
	snap, err := backup.Backup(bg, reg, s, backup.Options{Now: at(day0)})
	if err != nil {
		t.Fatal(err)
	}
	again, err := backup.Backup(bg, reg, s, backup.Options{Now: at(day0.Add(time.Hour))})
	if err != nil || again.Stats.NewBlobs != 0 {
		t.Fatalf("unchanged re-run on S3: %+v %v", again.Stats, err)
	}
	if _, _, err := backup.Lock(bg, s, "x", backup.LockExclusive, at(day0)); err != nil {
		t.Fatalf("lock on S3: %v", err)
	} else if _, _, err := backup.Lock(bg, s, "y", backup.LockExclusive, at(day0)); err == nil {
		t.Fatal("a second lock on S3 must fail (conditional write)")
	}
	target := open(t, localregtest.Start(t).Host)
	if _, err := backup.Restore(bg, s, snap, target, backup.Options{}); err != nil {
		t.Fatal(err)
	}
	equalState(t, state(t, reg), state(t, target))
	lockRaces(t, s)

	// Prune through a proxy on which reading one manifest a kept snapshot needs keeps failing: it
	// must stop with nothing deleted, and every snapshot must still restore.
	newer, err := backup.Backup(bg, reg, s, backup.Options{Now: at(day0.Add(40 * 24 * time.Hour))})
	if err != nil {
		t.Fatal(err)
	}
	victim := "/backups/registry/blobs/" + strings.Replace(newer.Repos[0].Manifests[0].Digest, ":", "/", 1)
	gwURL, _ := url.Parse("http://" + addr)
	proxy := httputil.NewSingleHostReverseProxy(gwURL)
	var failed atomic.Int64
	pln, _ := net.Listen("tcp", "127.0.0.1:0")
	psrv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodGet && r.URL.Path == victim {
			failed.Add(1)
			w.WriteHeader(http.StatusInternalServerError)
			io.WriteString(w, `<?xml version="1.0" encoding="UTF-8"?><Error><Code>InternalError</Code><Message>injected</Message></Error>`)
			return
		}
		proxy.ServeHTTP(w, r)
	})}
	go psrv.Serve(pln)
	t.Cleanup(func() { psrv.Close() })
	t.Setenv("AWS_ENDPOINT_URL_S3", "http://"+pln.Addr().String())
	viaProxy, err := backup.Open(bg, "s3://backups/registry", "")
	if err != nil {
		t.Fatal(err)
	}
	before, _ := s.List(bg, "")
	if _, err := backup.Prune(bg, viaProxy, 30, 0, day0.Add(41*24*time.Hour), false); err == nil || failed.Load() == 0 {
		t.Fatalf("prune through the failing proxy: %v (failed reads %d)", err, failed.Load())
	}
	if after, _ := s.List(bg, ""); strings.Join(after, "\n") != strings.Join(before, "\n") {
		t.Fatalf("a failed prune deleted from S3: %d keys -> %d", len(before), len(after))
	}
	snaps, err := backup.Snapshots(bg, s)
	if err != nil || len(snaps) != 3 {
		t.Fatalf("snapshots: %d %v", len(snaps), err)
	}
	for _, sn := range snaps {
		restoresIdentically(t, s, sn)
	}
	keys, _ := s.List(bg, "")
	if !contains(keys, "index.json") || !contains(keys, "oci-layout") || !contains(keys, "snapshots/"+snap.ID+".json") {
		t.Errorf("layout keys: %v", keys[:min(5, len(keys))])
	}
}

func contains(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}
