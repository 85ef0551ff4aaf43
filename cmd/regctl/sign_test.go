package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/regctl-dev/regctl/internal/exitcode"
	"github.com/regctl-dev/regctl/internal/localreg/localregtest"
	"github.com/regctl-dev/regctl/internal/sign"
)

func TestSignAndVerifyThroughTheCLI(t *testing.T) {
	const secret = "s3cret-Passw0rd"
	host := localregtest.Start(t).Host
	c := newCLI(t, "COSIGN_PASSWORD="+secret)
	c.ok("registry", "seed", host+"/game-server")
	_, errOut, code := c.run("sign", "generate-key-pair")
	if code != 0 || !strings.Contains(errOut, "Private key written to") {
		t.Fatalf("generate-key-pair: exit %d %s", code, errOut)
	}
	key, pub := filepath.Join(c.workDir, "cosign.key"), filepath.Join(c.workDir, "cosign.pub")
	img := host + "/game-server:latest"

	var signed []sign.Signed
	if err := json.Unmarshal([]byte(c.ok("sign", img, "--key", key, "--recursive", "-a", "env=prod", "-o", "json")), &signed); err != nil {
		t.Fatal(err)
	}
	if len(signed) != 3 || !strings.HasPrefix(signed[0].Digest, "sha256:") {
		t.Fatalf("signed: %+v", signed)
	}
	out := c.ok("sign", img, "--key", key, "-a", "env=prod")
	if !strings.Contains(out, "unchanged (already signed by this key)") {
		t.Errorf("re-sign:\n%s", out)
	}

	var verified []sign.Verified
	if err := json.Unmarshal([]byte(c.ok("verify", img, "--key", pub, "-a", "env=prod", "-o", "json")), &verified); err != nil {
		t.Fatal(err)
	}
	if len(verified) != 1 || verified[0].Digest != signed[0].Digest || len(verified[0].Payloads) != 1 {
		t.Fatalf("verified: %+v", verified)
	}
	// A relative key path is read from the command's working directory, not the process's.
	c.ok("verify", img, "--key", "cosign.pub", "-a", "env=prod")
	// sign.key from the config is used when --key is absent; verify finds its .pub. The table output
	// ends with the verified payloads.
	c.env = append(c.env, "REGCTL_SIGN_KEY="+key)
	if out := c.ok("verify", img); !strings.Contains(out, `"docker-manifest-digest":"`+signed[0].Digest+`"`) || !strings.Contains(out, `"env":"prod"`) {
		t.Errorf("verify table output lacks the payload:\n%s", out)
	}

	cases := []struct {
		name string
		argv []string
		env  string
		code int
	}{
		{"unsigned image", []string{"verify", host + "/game-server:v1.0.0", "--key", pub}, "", exitcode.Violation},
		{"missing annotation", []string{"verify", img, "--key", pub, "-a", "env=dev"}, "", exitcode.Violation},
		{"image not in the registry", []string{"verify", host + "/game-server:nope", "--key", pub}, "", exitcode.NotFound},
		{"sign missing image", []string{"sign", host + "/game-server:nope", "--key", key}, "", exitcode.NotFound},
		{"wrong password", []string{"sign", img, "--key", key}, "COSIGN_PASSWORD=wrong", exitcode.Usage},
		{"unknown KMS scheme", []string{"sign", img, "--key", "gcpkms://projects/p/locations/l/keyRings/r/cryptoKeys/k"}, "", exitcode.Usage},
		{"unreachable registry", []string{"verify", "127.0.0.1:1/app:v1", "--key", pub}, "", exitcode.Error},
		{"bad annotation", []string{"sign", img, "--key", key, "-a", "novalue"}, "", exitcode.Usage},
	}
	for _, tc := range cases {
		cc := newCLI(t, "COSIGN_PASSWORD="+secret)
		if tc.env != "" {
			cc.env = append(cc.env, tc.env)
		}
		out, errOut, code := cc.run(tc.argv...)
		if code != tc.code {
			t.Errorf("%s: exit %d, want %d\n%s%s", tc.name, code, tc.code, out, errOut)
		}
		if strings.Count(strings.TrimSpace(errOut), "regctl: ") != 1 {
			t.Errorf("%s: want a one-line error, got %q", tc.name, errOut)
		}
		if strings.Contains(out+errOut, secret) {
			t.Errorf("%s: the password was printed", tc.name)
		}
	}
	raw, _ := os.ReadFile(key)
	if strings.Contains(string(raw), secret) {
		t.Fatal("the password is in the key file")
	}
}

func TestSignVerifyHonourGlobalInsecure(t *testing.T) {
	host := localregtest.Start(t, localregtest.Options{TLS: true}).Host
	c := newCLI(t, "COSIGN_PASSWORD=pw")
	// 127.0.0.1 would be allowed plain HTTP anyway; this registry speaks HTTPS with an untrusted cert.
	if _, errOut, code := c.run("registry", "seed", host+"/app"); code != exitcode.Error || !strings.Contains(errOut, "certificate") {
		t.Fatalf("untrusted certificate without --insecure: exit %d %s", code, errOut)
	}
	c.ok("registry", "seed", host+"/app", "--insecure")
	c.ok("sign", "generate-key-pair")
	key, pub := filepath.Join(c.workDir, "cosign.key"), filepath.Join(c.workDir, "cosign.pub")
	if _, errOut, code := c.run("sign", host+"/app:latest", "--key", key); code != exitcode.Error {
		t.Errorf("sign without --insecure: exit %d %s", code, errOut)
	}
	c.ok("sign", host+"/app:latest", "--key", key, "--insecure")
	c.ok("verify", host+"/app:latest", "--key", pub, "--insecure")
}
