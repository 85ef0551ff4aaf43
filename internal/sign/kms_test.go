package sign_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/json"
	"strings"
	"sync"
	"testing"

	"github.com/regctl-dev/regctl/internal/awstest"
	"github.com/regctl-dev/regctl/internal/exitcode"
	"github.com/regctl-dev/regctl/internal/sign"
)

// fakeKMS is AWS KMS's sign/verify subset over the real JSON 1.1 wire protocol with SigV4 checks.
// The private key never leaves it, as with the real service.
type fakeKMS struct {
	mu    sync.Mutex
	keys  map[string]*ecdsa.PrivateKey // alias or key id -> key
	calls map[string]int
}

func newFakeKMS(t *testing.T, aliases ...string) (*fakeKMS, string) {
	k := &fakeKMS{keys: map[string]*ecdsa.PrivateKey{}, calls: map[string]int{}}
	for _, a := range aliases {
		key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		k.keys[a] = key
	}
	srv := &awstest.Server{Service: "kms", TargetPrefix: "TrentService", Ops: map[string]awstest.Op{
		"DescribeKey":  k.op("DescribeKey", k.describe),
		"GetPublicKey": k.op("GetPublicKey", k.publicKey),
		"Sign":         k.op("Sign", k.sign),
	}}
	ts, ca := awstest.TLSServer(t, srv)
	awstest.SetEnv(t, ca)
	return k, strings.TrimPrefix(ts.URL, "https://")
}

type keyReq struct {
	KeyId            string
	Message          []byte
	MessageType      string
	SigningAlgorithm string
}

func (k *fakeKMS) op(name string, fn func(keyReq, *ecdsa.PrivateKey) (any, error)) awstest.Op {
	return func(_ context.Context, body []byte) (any, error) {
		var req keyReq
		if err := json.Unmarshal(body, &req); err != nil {
			return nil, awstest.Errorf("SerializationException", "%v", err)
		}
		k.mu.Lock()
		k.calls[name]++
		key := k.keys[req.KeyId]
		k.mu.Unlock()
		if key == nil {
			return nil, awstest.Errorf("NotFoundException", "Alias %s is not found.", req.KeyId)
		}
		return fn(req, key)
	}
}

func (k *fakeKMS) describe(req keyReq, _ *ecdsa.PrivateKey) (any, error) {
	return map[string]any{"KeyMetadata": map[string]any{"KeyId": req.KeyId, "Arn": "arn:aws:kms:us-east-1:123456789012:key/test",
		"KeySpec": "ECC_NIST_P256", "KeyUsage": "SIGN_VERIFY", "KeyState": "Enabled", "Enabled": true,
		"SigningAlgorithms": []string{"ECDSA_SHA_256"}}}, nil
}

func (k *fakeKMS) publicKey(req keyReq, key *ecdsa.PrivateKey) (any, error) {
	der, err := x509.MarshalPKIXPublicKey(&key.PublicKey)
	if err != nil {
		return nil, err
	}
	return map[string]any{"KeyId": req.KeyId, "PublicKey": der, "KeySpec": "ECC_NIST_P256", "KeyUsage": "SIGN_VERIFY",
		"SigningAlgorithms": []string{"ECDSA_SHA_256"}}, nil
}

func (k *fakeKMS) sign(req keyReq, key *ecdsa.PrivateKey) (any, error) {
	if req.MessageType != "DIGEST" || req.SigningAlgorithm != "ECDSA_SHA_256" || len(req.Message) != 32 {
		return nil, awstest.Errorf("ValidationException", "want a SHA-256 DIGEST with ECDSA_SHA_256")
	}
	sig, err := ecdsa.SignASN1(rand.Reader, key, req.Message)
	if err != nil {
		return nil, err
	}
	return map[string]any{"KeyId": req.KeyId, "Signature": sig, "SigningAlgorithm": "ECDSA_SHA_256"}, nil
}

func TestKMSSignAndVerify(t *testing.T) {
	e := setup(t)
	kms, endpoint := newFakeKMS(t, "alias/regctl-signing", "alias/other")
	ref := "awskms://" + endpoint + "/alias/regctl-signing"
	ctx := context.Background()

	sv, err := sign.LoadSigner(ctx, ref, nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := sign.Sign(ctx, e.reg.Remote(), e.repo.Tag("v1"), sv, sign.Options{}); err != nil {
		t.Fatal(err)
	}
	if _, err := e.verify(t, e.repo.Tag("v1").String(), ref, sign.VerifyOptions{}); err != nil {
		t.Fatalf("verify with the KMS key: %v", err)
	}
	if kms.calls["Sign"] != 1 {
		t.Errorf("KMS Sign calls = %d, want 1", kms.calls["Sign"])
	}
	// Another KMS key and a file key both reject the signature.
	if _, err := e.verify(t, e.repo.Tag("v1").String(), "awskms://"+endpoint+"/alias/other", sign.VerifyOptions{}); exitcode.Of(err) != exitcode.Violation {
		t.Errorf("other KMS key: %v", err)
	}
	if _, err := e.verify(t, e.repo.Tag("v1").String(), e.pub, sign.VerifyOptions{}); exitcode.Of(err) != exitcode.Violation {
		t.Errorf("file key on a KMS signature: %v", err)
	}
}

func TestKMSRejectsBadCredentials(t *testing.T) {
	_, endpoint := newFakeKMS(t, "alias/k")
	t.Setenv("AWS_SECRET_ACCESS_KEY", "wrong-secret")
	sv, err := sign.LoadSigner(context.Background(), "awskms://"+endpoint+"/alias/k", nil)
	if err == nil {
		_, err = sv.PublicKey()
	}
	if err == nil || !strings.Contains(err.Error(), "signature we calculated does not match") {
		t.Fatalf("a wrong secret must be refused by the emulator's SigV4 check, got %v", err)
	}
}
