package localreg_test

import (
	"context"
	"crypto/tls"
	"net/http"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/validate"
	"golang.org/x/crypto/bcrypt"

	"github.com/regctl-dev/regctl/internal/localreg"
	"github.com/regctl-dev/regctl/internal/localreg/localregtest"
	"github.com/regctl-dev/regctl/internal/sample"
)

// serve starts Serve on a free 127.0.0.1 port and returns its URL and a stop function that waits for
// a clean shutdown.
func serve(t *testing.T, o localreg.Options) (string, func() error) {
	t.Helper()
	o.Addr = "127.0.0.1:0"
	ctx, cancel := context.WithCancel(context.Background())
	ready := make(chan string, 1)
	done := make(chan error, 1)
	go func() { done <- localreg.Serve(ctx, o, func(u string) { ready <- u }) }()
	select {
	case u := <-ready:
		return u, func() error { cancel(); return <-done }
	case err := <-done:
		cancel()
		t.Fatalf("serve: %v", err)
	case <-time.After(10 * time.Second):
		cancel()
		t.Fatal("registry did not start within 10s")
	}
	return "", nil
}

func TestServeTLSWithHtpasswdAndCleanShutdown(t *testing.T) {
	dir := t.TempDir()
	cert, key, pool := localregtest.SelfSignedCert(t, dir)
	hash, _ := bcrypt.GenerateFromPassword([]byte("pw"), bcrypt.MinCost)
	htp := filepath.Join(dir, "htpasswd")
	os.WriteFile(htp, []byte("alice:"+string(hash)+"\n"), 0o600)

	u, stop := serve(t, localreg.Options{Root: filepath.Join(dir, "data"), Htpasswd: htp, TLSCert: cert, TLSKey: key})
	host := localreg.HostOf(u)
	tr := &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}
	ref, _ := name.ParseReference(host + "/app:v1")
	img, _ := sample.Image(sample.ImageSpec{Seed: "tls"})

	err := remote.Write(ref, img, remote.WithTransport(tr))
	if err == nil {
		t.Fatal("anonymous push to an htpasswd registry must fail")
	}
	auth := remote.WithAuth(&authn.Basic{Username: "alice", Password: "pw"})
	if err := remote.Write(ref, img, remote.WithTransport(tr), auth); err != nil {
		t.Fatalf("authenticated push over TLS: %v", err)
	}
	if _, err := remote.Head(ref, remote.WithTransport(tr), auth); err != nil {
		t.Fatal(err)
	}
	// http.Server.Shutdown waits up to 5s for connections that never sent a request; close ours.
	tr.CloseIdleConnections()
	if err := stop(); err != nil {
		t.Fatalf("shutdown: %v", err)
	}
	if _, err := (&http.Client{Transport: tr, Timeout: time.Second}).Get(u + "/v2/"); err == nil {
		t.Fatal("registry still answering after shutdown")
	}
	// The data survives a restart from the same root.
	u2, stop2 := serve(t, localreg.Options{Root: filepath.Join(dir, "data"), TLSCert: cert, TLSKey: key})
	defer stop2()
	ref2, _ := name.ParseReference(localreg.HostOf(u2) + "/app:v1")
	if _, err := remote.Head(ref2, remote.WithTransport(tr)); err != nil {
		t.Fatalf("image lost across restart: %v", err)
	}
}

func TestServeRejectsBadOptions(t *testing.T) {
	ctx := context.Background()
	for _, o := range []localreg.Options{
		{},
		{Addr: "127.0.0.1:0", TLSCert: "only-cert.pem"},
		{Addr: "127.0.0.1:0", Htpasswd: "/does/not/exist"},
	} {
		if err := localreg.Serve(ctx, o, nil); err == nil {
			t.Errorf("%+v: want an error", o)
		}
	}
}

func TestGCReclaimsDeletedImagesOnly(t *testing.T) {
	root := t.TempDir()
	srv := localregtest.Start(t, localregtest.Options{Root: root})
	repo, _ := name.NewRepository(srv.Host + "/game-server")
	ctx := context.Background()
	now := time.Date(2026, 6, 30, 0, 0, 0, 0, time.UTC) // midnight: the sample digests depend on the day
	if _, err := sample.Seed(ctx, repo, now); err != nil {
		t.Fatal(err)
	}
	old, _ := sample.Image(sample.ImageSpec{Seed: "release-0", Created: now.Add(-30 * 24 * time.Hour)})
	d, _ := old.Digest()
	if err := remote.Delete(repo.Digest(d.String())); err != nil {
		t.Fatal(err)
	}

	dry, err := localreg.GC(ctx, root, true, nil, "")
	if err != nil {
		t.Fatal(err)
	}
	// The deleted image's config and layer are unique to it; its manifest blob goes too.
	if dry.BlobsRemovable != 3 || dry.BytesRemovable <= 0 || dry.BlobsAfter != dry.BlobsBefore {
		t.Fatalf("dry run: %+v", dry)
	}
	res, err := localreg.GC(ctx, root, false, nil, "")
	if err != nil {
		t.Fatal(err)
	}
	if res.BlobsRemovable != 3 || res.BlobsAfter != res.BlobsBefore-3 {
		t.Fatalf("gc: %+v", res)
	}
	// Everything still tagged, including both platforms of the index and the signature, still pulls.
	tags, err := remote.List(repo)
	if err != nil {
		t.Fatal(err)
	}
	for _, tag := range tags {
		desc, err := remote.Get(repo.Tag(tag))
		if err != nil {
			t.Fatalf("%s: %v", tag, err)
		}
		if desc.MediaType.IsIndex() {
			idx, _ := desc.ImageIndex()
			if err := validate.Index(idx, validate.Fast); err != nil {
				t.Fatalf("%s: %v", tag, err)
			}
			continue
		}
		img, _ := desc.Image()
		if err := validate.Image(img); err != nil {
			t.Fatalf("%s: broken after gc: %v", tag, err)
		}
	}
	if _, err := localreg.GC(ctx, filepath.Join(root, "nope"), true, nil, ""); err == nil {
		t.Error("gc of a missing root must fail")
	}
}
