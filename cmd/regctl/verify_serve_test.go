package main

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/json"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/regctl-dev/regctl/internal/admission"
	"github.com/regctl-dev/regctl/internal/ecr/ecrtest"
	"github.com/regctl-dev/regctl/internal/localreg/localregtest"
	"github.com/regctl-dev/regctl/internal/ui"
)

// TestVerifyServeCLI runs regctl verify serve in-process with the config's verify section: a
// signed image is admitted and an unsigned one denied over TLS, a bad config is exit 2 naming the
// key, and SIGTERM (the context ending) stops it cleanly with exit 0.
func TestVerifyServeCLI(t *testing.T) {
	host := localregtest.Start(t).Host
	c := newCLI(t, "COSIGN_PASSWORD=pw")
	c.ok("registry", "seed", host+"/game-server/api")
	c.run("sign", "generate-key-pair")
	c.ok("sign", host+"/game-server/api:v1.0.0", "--key", "cosign.key")
	cert, key, pool := localregtest.SelfSignedCert(t, c.workDir)

	cfg := "verify:\n  mode: enforce\n  rules:\n    - images: [\"" + host + "/game-server/*\"]\n      keys: [cosign.pub]\n"
	if err := os.WriteFile(filepath.Join(c.workDir, "regctl.yaml"), []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	ln, _ := net.Listen("tcp", "127.0.0.1:0")
	addr := ln.Addr().String()
	ln.Close()
	ctx, stop := context.WithCancel(context.Background())
	done := make(chan int, 1)
	streams, _, _, errOut := ui.Test()
	go func() {
		f := &Factory{IO: streams, Environ: c.env, Now: time.Now, WorkDir: c.workDir}
		done <- execute(ctx, f, []string{"verify", "serve", "--tls-cert", cert, "--tls-key", key, "--addr", addr, "--timeout", "3s"})
	}()
	client := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}}
	ready := false
	for range 100 {
		if resp, err := client.Get("https://" + addr + "/readyz"); err == nil {
			resp.Body.Close()
			if ready = resp.StatusCode == 200; ready {
				break
			}
		}
		time.Sleep(50 * time.Millisecond)
	}
	if !ready {
		stop()
		t.Fatalf("the webhook did not become ready: exit %v", <-done)
	}
	decide := func(image string) (bool, string) {
		body := `{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview","request":{"uid":"u1","kind":{"group":"","version":"v1","kind":"Pod"},"operation":"CREATE","object":{"spec":{"containers":[{"name":"c","image":"` + image + `"}]}}}}`
		resp, err := client.Post("https://"+addr+"/verify", "application/json", strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var rv struct {
			Response struct {
				Allowed bool
				Status  struct{ Message string }
			}
		}
		if err := json.NewDecoder(resp.Body).Decode(&rv); err != nil {
			t.Fatal(err)
		}
		return rv.Response.Allowed, rv.Response.Status.Message
	}
	if ok, msg := decide(host + "/game-server/api:v1.0.0"); !ok {
		t.Errorf("signed image denied: %s", msg)
	}
	if ok, msg := decide(host + "/game-server/api:v1.0.1"); ok || !strings.Contains(msg, "v1.0.1") || !strings.Contains(msg, "not signed as the rule requires") {
		t.Errorf("unsigned image: allowed %v %s", ok, msg)
	}
	stop()
	select {
	case code := <-done:
		if code != 0 {
			t.Errorf("after SIGTERM: exit %d\n%s", code, errOut)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("the webhook did not stop")
	}
	if !strings.Contains(errOut.String(), "listening on https://"+addr) {
		t.Errorf("stderr: %s", errOut)
	}

	for _, bad := range []struct{ cfg, want string }{
		{"verify:\n  rules: []\n", "verify.rules"},
		{"verify:\n  rules:\n    - images: [\"x/*\"]\n", "verify.rules[0].keys"},
		{"verify:\n  rules:\n    - images: [\"x/*\"]\n      keys: [missing.pub]\n", "verify.rules[0].keys[0]"},
		{"verify:\n  mode: strict\n", "verify.mode"},
	} {
		os.WriteFile(filepath.Join(c.workDir, "regctl.yaml"), []byte(bad.cfg), 0o600)
		if _, errOut, code := c.run("verify", "serve", "--tls-cert", cert, "--tls-key", key, "--addr", "127.0.0.1:0"); code != 2 || !strings.Contains(errOut, bad.want) {
			t.Errorf("%q: exit %d %s, want 2 naming %s", bad.cfg, code, errOut, bad.want)
		}
	}
	if _, errOut, code := c.run("verify", "serve"); code != 2 || !strings.Contains(errOut, "--tls-cert") {
		t.Errorf("without TLS: exit %d %s", code, errOut)
	}
}

// TestVerifyWebhookManifests: deploy/kubernetes/verify-webhook is what --print-manifests writes,
// and its webhook is the guide's YAML, unmodified apart from the caBundle.
func TestVerifyWebhookManifests(t *testing.T) {
	c := newCLI(t)
	out := c.ok("verify", "serve", "--print-manifests")
	var want bytes.Buffer
	for _, n := range admission.Manifests {
		b, err := os.ReadFile(filepath.Join("../../deploy/kubernetes/verify-webhook", n))
		if err != nil {
			t.Fatal(err)
		}
		want.Write(b)
	}
	if out != want.String() {
		t.Errorf("deploy/kubernetes/verify-webhook differs from --print-manifests (regenerate with: regctl verify serve --print-manifests --out-dir deploy/kubernetes/verify-webhook)")
	}
	guide, err := os.ReadFile("../../testdata/sign/image-verification-policy.yaml")
	if err != nil {
		t.Fatal(err)
	}
	ours, _ := os.ReadFile("../../deploy/kubernetes/verify-webhook/webhook.yaml")
	var g, o map[string]any
	if err := yaml.Unmarshal(guide, &g); err != nil {
		t.Fatal(err)
	}
	if err := yaml.Unmarshal(ours, &o); err != nil {
		t.Fatal(err)
	}
	hooks := o["webhooks"].([]any)
	cc := hooks[0].(map[string]any)["clientConfig"].(map[string]any)
	if cc["caBundle"] == nil {
		t.Error("no caBundle")
	}
	delete(cc, "caBundle")
	if !reflect.DeepEqual(g, o) {
		t.Errorf("the webhook differs from the guide's beyond caBundle:\nguide %v\nours  %v", g, o)
	}
	// With --ca-file the caBundle is the CA, base64.
	cert, _, _ := localregtest.SelfSignedCert(t, c.workDir)
	if out := c.ok("verify", "serve", "--print-manifests", "--ca-file", cert); strings.Contains(out, "REPLACE_WITH") {
		t.Error("--ca-file left the placeholder")
	}
}

// TestVerifyWebhookECRHost: a Pod names an ECR image by its host, which the config names by
// account and region; the webhook reads it with the ECR registry's credentials.
func TestVerifyWebhookECRHost(t *testing.T) {
	srv := ecrtest.Start(t)
	c := newCLI(t, append(os.Environ(), "COSIGN_PASSWORD=pw")...)
	cfg := "default_registry: prod\nregistries:\n  prod:\n    type: ecr\n    region: us-east-1\n    account: \"" + ecrtest.Account + "\"\n" +
		"    endpoint: " + srv.URL + "\n    ca_file: " + srv.CAFile + "\n"
	if err := os.WriteFile(filepath.Join(c.workDir, "regctl.yaml"), []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	c.ok("repo", "create", "game-server")
	c.ok("registry", "seed", "prod/game-server")
	c.run("sign", "generate-key-pair")
	c.ok("sign", "prod/game-server:v1.0.0", "--key", "cosign.key")

	f := &Factory{IO: nil, Environ: c.env, Now: time.Now, WorkDir: c.workDir}
	conf, err := f.Config()
	if err != nil {
		t.Fatal(err)
	}
	res, err := f.Resolver()
	if err != nil {
		t.Fatal(err)
	}
	reg, err := res.Registry("prod")
	if err != nil {
		t.Fatal(err)
	}
	pub := filepath.Join(c.workDir, "cosign.pub")
	pol := admission.Policy{Enforce: true, Rules: []admission.Rule{{Images: []string{reg.Host() + "/**"}, Keys: []string{pub}}}}
	checker := webhookChecker(f, conf, res)
	if err := checker.LoadKeys(context.Background(), pol); err != nil {
		t.Fatal(err)
	}
	s := &admission.Server{Policy: pol, Checker: checker, Timeout: 10 * time.Second}
	if fails := s.CheckImages(context.Background(), []string{reg.Host() + "/game-server:v1.0.0"}); len(fails) != 0 {
		t.Errorf("a signed ECR image by host: %+v", fails)
	}
	if fails := s.CheckImages(context.Background(), []string{reg.Host() + "/game-server:v1.0.1"}); len(fails) != 1 || !strings.Contains(fails[0].Reason, "not signed") {
		t.Errorf("an unsigned ECR image: %+v", fails)
	}
}
