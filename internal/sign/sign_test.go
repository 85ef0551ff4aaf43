package sign_test

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/remote"

	"github.com/regctl-dev/regctl/internal/exitcode"
	"github.com/regctl-dev/regctl/internal/localreg/localregtest"
	"github.com/regctl-dev/regctl/internal/registry"
	"github.com/regctl-dev/regctl/internal/sample"
	"github.com/regctl-dev/regctl/internal/sign"
)

var now = time.Date(2026, 6, 30, 12, 0, 0, 0, time.UTC)

func pass(pw string) sign.PassFunc { return func(bool) ([]byte, error) { return []byte(pw), nil } }

type env struct {
	reg  registry.Registry
	repo name.Repository
	key  string // private key file
	pub  string
}

func setup(t *testing.T) *env {
	t.Helper()
	host := localregtest.Start(t).Host
	reg, err := registry.NewResolver(nil, registry.Options{}).Registry(host)
	if err != nil {
		t.Fatal(err)
	}
	repo, _ := registry.RepositoryRef(reg, "game-server")
	ctx := context.Background()
	img, _ := sample.Image(sample.ImageSpec{Seed: "app", Created: now})
	if err := sample.Push(ctx, repo.Tag("v1"), img, reg.Remote()...); err != nil {
		t.Fatal(err)
	}
	idx, _ := sample.Index("multi", now, "linux/amd64", "linux/arm64")
	if err := sample.Push(ctx, repo.Tag("multi"), idx, reg.Remote()...); err != nil {
		t.Fatal(err)
	}
	priv, pub, err := sign.GenerateKeyPair(filepath.Join(t.TempDir(), "cosign"), pass("correct horse"), false)
	if err != nil {
		t.Fatal(err)
	}
	return &env{reg: reg, repo: repo, key: priv, pub: pub}
}

func (e *env) sign(t *testing.T, tag string, o sign.Options) []sign.Signed {
	t.Helper()
	sv, err := sign.LoadSigner(context.Background(), e.key, pass("correct horse"))
	if err != nil {
		t.Fatal(err)
	}
	res, err := sign.Sign(context.Background(), e.reg.Remote(), e.repo.Tag(tag), sv, o)
	if err != nil {
		t.Fatal(err)
	}
	return res
}

func (e *env) verify(t *testing.T, ref string, pub string, o sign.VerifyOptions) (*sign.Verified, error) {
	t.Helper()
	v, err := sign.LoadVerifier(context.Background(), pub)
	if err != nil {
		t.Fatal(err)
	}
	r, _ := name.ParseReference(ref)
	return sign.Verify(context.Background(), e.reg.Remote(), r, v, o)
}

func TestKeyFiles(t *testing.T) {
	dir := t.TempDir()
	priv, pub, err := sign.GenerateKeyPair(filepath.Join(dir, "cosign"), pass("pw"), false)
	if err != nil {
		t.Fatal(err)
	}
	st, _ := os.Stat(priv)
	if st.Mode().Perm() != 0o600 {
		t.Errorf("private key mode %v, want 0600", st.Mode().Perm())
	}
	raw, _ := os.ReadFile(priv)
	if !strings.Contains(string(raw), "ENCRYPTED SIGSTORE PRIVATE KEY") {
		t.Errorf("not cosign's encrypted format:\n%s", raw)
	}
	if pubRaw, _ := os.ReadFile(pub); !strings.Contains(string(pubRaw), "PUBLIC KEY") {
		t.Errorf("public key:\n%s", pubRaw)
	}
	if _, _, err := sign.GenerateKeyPair(filepath.Join(dir, "cosign"), pass("pw"), false); exitcode.Of(err) != exitcode.Usage {
		t.Errorf("overwrite without force: %v", err)
	}
	_, err = sign.LoadSigner(context.Background(), priv, pass("wrong"))
	if exitcode.Of(err) != exitcode.Usage || strings.Contains(err.Error(), "wrong\"") {
		t.Errorf("wrong password: exit %d, %v", exitcode.Of(err), err)
	}
	if _, err := sign.LoadSigner(context.Background(), filepath.Join(dir, "missing.key"), pass("pw")); exitcode.Of(err) != exitcode.Usage {
		t.Errorf("unreadable key: %v", err)
	}
	if _, err := sign.LoadSigner(context.Background(), "hashivault://k", pass("")); exitcode.Of(err) != exitcode.Usage || !strings.Contains(err.Error(), "not supported") {
		t.Errorf("unknown KMS scheme: %v", err)
	}
	if _, err := sign.LoadVerifier(context.Background(), priv); exitcode.Of(err) != exitcode.Usage || !strings.Contains(err.Error(), "public key") {
		t.Errorf("private key given to verify: %v", err)
	}
}

func TestSignVerifyRoundTripAndDuplicates(t *testing.T) {
	e := setup(t)
	res := e.sign(t, "v1", sign.Options{Annotations: map[string]string{"env": "prod"}})
	d, _ := remote.Head(e.repo.Tag("v1"), e.reg.Remote()...)
	if len(res) != 1 || res[0].Digest != d.Digest.String() || res[0].Unchanged || !strings.HasSuffix(res[0].StoredAt, ":sha256-"+d.Digest.Hex+".sig") {
		t.Fatalf("sign result: %+v", res)
	}
	v, err := e.verify(t, e.repo.Tag("v1").String(), e.pub, sign.VerifyOptions{Annotations: map[string]string{"env": "prod"}})
	if err != nil {
		t.Fatal(err)
	}
	var p struct {
		Critical struct {
			Image struct {
				Digest string `json:"docker-manifest-digest"`
			} `json:"image"`
		} `json:"critical"`
		Optional map[string]string `json:"optional"`
	}
	if err := json.Unmarshal(v.Payloads[0], &p); err != nil || p.Critical.Image.Digest != d.Digest.String() || p.Optional["env"] != "prod" {
		t.Errorf("payload %s: %v", v.Payloads[0], err)
	}
	// Same key again: no duplicate signature.
	again := e.sign(t, "v1", sign.Options{Annotations: map[string]string{"env": "prod"}})
	if !again[0].Unchanged {
		t.Error("re-signing with the same key and payload must be reported unchanged")
	}
	v, _ = e.verify(t, e.repo.Tag("v1").String(), e.pub, sign.VerifyOptions{})
	if v.Signatures != 1 {
		t.Errorf("%d signatures after re-signing, want 1", v.Signatures)
	}

	// Required annotation missing or different: a violation (exit 3).
	_, err = e.verify(t, e.repo.Tag("v1").String(), e.pub, sign.VerifyOptions{Annotations: map[string]string{"env": "staging"}})
	if exitcode.Of(err) != exitcode.Violation {
		t.Errorf("wrong annotation: exit %d, %v", exitcode.Of(err), err)
	}
	_, err = e.verify(t, e.repo.Tag("v1").String(), e.pub, sign.VerifyOptions{Annotations: map[string]string{"team": "core"}})
	if exitcode.Of(err) != exitcode.Violation {
		t.Errorf("missing annotation: exit %d, %v", exitcode.Of(err), err)
	}
}

func TestVerifyFailures(t *testing.T) {
	e := setup(t)
	e.sign(t, "v1", sign.Options{})
	_, otherPub, _ := sign.GenerateKeyPair(filepath.Join(t.TempDir(), "other"), pass("x"), false)
	if _, err := e.verify(t, e.repo.Tag("v1").String(), otherPub, sign.VerifyOptions{}); exitcode.Of(err) != exitcode.Violation {
		t.Errorf("another key: exit %d, %v", exitcode.Of(err), err)
	}
	if _, err := e.verify(t, e.repo.Tag("multi").String(), e.pub, sign.VerifyOptions{}); exitcode.Of(err) != exitcode.Violation {
		t.Errorf("unsigned image: exit %d, %v", exitcode.Of(err), err)
	}
	// Move the tag to other content: the signature was for the old digest.
	moved, _ := sample.Image(sample.ImageSpec{Seed: "moved", Created: now})
	if err := sample.Push(context.Background(), e.repo.Tag("v1"), moved, e.reg.Remote()...); err != nil {
		t.Fatal(err)
	}
	if _, err := e.verify(t, e.repo.Tag("v1").String(), e.pub, sign.VerifyOptions{}); exitcode.Of(err) != exitcode.Violation {
		t.Errorf("tag moved after signing: exit %d, %v", exitcode.Of(err), err)
	}
	if _, err := e.verify(t, e.repo.Tag("nope").String(), e.pub, sign.VerifyOptions{}); exitcode.Of(err) != exitcode.NotFound {
		t.Errorf("missing image: exit %d, %v", exitcode.Of(err), err)
	}
}

func TestRecursiveSigningOfAnIndex(t *testing.T) {
	e := setup(t)
	res := e.sign(t, "multi", sign.Options{Recursive: true})
	if len(res) != 3 || res[0].Platform != "" || res[1].Platform != "linux/amd64" || res[2].Platform != "linux/arm64" {
		t.Fatalf("recursive: %+v", res)
	}
	for _, s := range res {
		if _, err := e.verify(t, e.repo.Digest(s.Digest).String(), e.pub, sign.VerifyOptions{}); err != nil {
			t.Errorf("%s (%s): %v", s.Digest, s.Platform, err)
		}
	}
	// The signatures show up as signatures of their subjects in the registry abstraction.
	images, _ := e.reg.Images(context.Background(), "game-server")
	sigs := 0
	for _, img := range images {
		if img.Kind == registry.KindSignature {
			sigs++
		}
	}
	if sigs != 3 {
		t.Errorf("%d signature manifests listed, want 3", sigs)
	}
}

func TestOCI11ReferrerMode(t *testing.T) {
	e := setup(t)
	res := e.sign(t, "v1", sign.Options{Mode: sign.ModeOCI11})
	if res[0].StoredAt != "referrer" {
		t.Fatalf("%+v", res)
	}
	if _, err := e.verify(t, e.repo.Tag("v1").String(), e.pub, sign.VerifyOptions{OCI11: true}); err != nil {
		t.Errorf("verify referrer signature: %v", err)
	}
	if again := e.sign(t, "v1", sign.Options{Mode: sign.ModeOCI11}); !again[0].Unchanged {
		t.Errorf("re-sign in oci-1-1 mode: %+v", again)
	}
}

func TestVerifyRecursiveRequiresSignedPlatforms(t *testing.T) {
	e := setup(t)
	e.sign(t, "multi", sign.Options{})
	index := e.repo.Tag("multi").String()
	if _, err := e.verify(t, index, e.pub, sign.VerifyOptions{}); err != nil {
		t.Fatalf("the index itself is signed: %v", err)
	}
	// Only the index is signed: a platform pulled by digest would carry no signature.
	_, err := e.verify(t, index, e.pub, sign.VerifyOptions{Recursive: true})
	if exitcode.Of(err) != exitcode.Violation || !strings.Contains(err.Error(), "2 of 2 platform manifests are not") ||
		!strings.Contains(err.Error(), "linux/arm64") {
		t.Fatalf("verify --recursive of a non-recursively signed index: %v", err)
	}
	e.sign(t, "multi", sign.Options{Recursive: true})
	v, err := e.verify(t, index, e.pub, sign.VerifyOptions{Recursive: true})
	if err != nil || len(v.Platforms) != 2 || v.Platforms[0].Platform != "linux/amd64" || v.Platforms[1].Signatures != 1 {
		t.Fatalf("verify --recursive after sign --recursive: %+v %v", v, err)
	}
}
