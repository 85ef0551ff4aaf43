// Package awstest serves AWS JSON 1.1 protocol endpoints for tests (the ECR and KMS emulators): it
// checks SigV4 signatures against static test credentials, dispatches on X-Amz-Target and answers
// with AWS's error shapes, so the real aws-sdk-go-v2 clients are what tests drive.
package awstest

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
)

// Test credentials every emulator accepts.
const (
	AccessKey = "AKIAREGCTLTEST000001"
	SecretKey = "regctl-test-secret-key-not-a-real-one"
)

// Error is an AWS error response: {"__type": Type, "message": Message} with Status.
type Error struct {
	Status  int
	Type    string
	Message string
}

func (e *Error) Error() string { return e.Type + ": " + e.Message }

// Errorf builds a 400 error of the given AWS type.
func Errorf(awsType, format string, args ...any) *Error {
	return &Error{Status: http.StatusBadRequest, Type: awsType, Message: fmt.Sprintf(format, args...)}
}

// Op handles one operation: it gets the request body and returns the response object or an *Error.
type Op func(ctx context.Context, body []byte) (any, error)

// Server is an AWS JSON 1.1 service.
type Server struct {
	Service      string // SigV4 service name, e.g. "ecr", "kms"
	TargetPrefix string // X-Amz-Target prefix, e.g. "AmazonEC2ContainerRegistry_V20150921"
	Ops          map[string]Op
	Now          func() time.Time
	// Region, when set, is the only region requests may be signed for (as AWS answers a request
	// signed for another region than the endpoint's).
	Region string
}

func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(io.LimitReader(r.Body, 8<<20))
	if err != nil {
		writeError(w, &Error{Status: 400, Type: "SerializationException", Message: err.Error()})
		return
	}
	if err := VerifySigV4(r, body, s.Service, s.now()); err != nil {
		writeError(w, err)
		return
	}
	if s.Region != "" {
		if _, rest, _ := strings.Cut(r.Header.Get("Authorization"), "Credential="); !strings.Contains(rest, "/"+s.Region+"/"+s.Service+"/") {
			writeError(w, &Error{Status: http.StatusForbidden, Type: "InvalidSignatureException",
				Message: "Credential should be scoped to a valid region, not the one this request was signed for; this endpoint is " + s.Region})
			return
		}
	}
	prefix, op, ok := strings.Cut(r.Header.Get("X-Amz-Target"), ".")
	if !ok || prefix != s.TargetPrefix {
		writeError(w, &Error{Status: 400, Type: "UnknownOperationException", Message: "unknown target " + r.Header.Get("X-Amz-Target")})
		return
	}
	h, ok := s.Ops[op]
	if !ok {
		writeError(w, &Error{Status: 400, Type: "UnknownOperationException", Message: op + " is not implemented by this emulator"})
		return
	}
	out, err := h(r.Context(), body)
	if err != nil {
		writeError(w, err)
		return
	}
	w.Header().Set("Content-Type", "application/x-amz-json-1.1")
	_ = json.NewEncoder(w).Encode(out)
}

func (s *Server) now() time.Time {
	if s.Now != nil {
		return s.Now()
	}
	return time.Now()
}

func writeError(w http.ResponseWriter, err error) {
	var e *Error
	if !errors.As(err, &e) {
		e = &Error{Status: 500, Type: "InternalFailure", Message: err.Error()}
	}
	w.Header().Set("Content-Type", "application/x-amz-json-1.1")
	w.Header().Set("X-Amzn-ErrorType", e.Type)
	w.WriteHeader(e.Status)
	_ = json.NewEncoder(w).Encode(map[string]string{"__type": e.Type, "message": e.Message})
}

// VerifySigV4 recomputes the request's SigV4 signature with the test credentials and compares it.
func VerifySigV4(r *http.Request, body []byte, service string, now time.Time) error {
	deny := func(typ, msg string) error { return &Error{Status: http.StatusForbidden, Type: typ, Message: msg} }
	auth := r.Header.Get("Authorization")
	if !strings.HasPrefix(auth, "AWS4-HMAC-SHA256 ") {
		return deny("MissingAuthenticationTokenException", "request is not signed with SigV4")
	}
	fields := map[string]string{}
	for _, part := range strings.Split(strings.TrimPrefix(auth, "AWS4-HMAC-SHA256 "), ",") {
		k, v, _ := strings.Cut(strings.TrimSpace(part), "=")
		fields[k] = v
	}
	scope := strings.Split(fields["Credential"], "/")
	if len(scope) != 5 || scope[4] != "aws4_request" {
		return deny("IncompleteSignatureException", "malformed credential scope")
	}
	if scope[0] != AccessKey {
		return deny("UnrecognizedClientException", "The security token included in the request is invalid.")
	}
	if scope[3] != service {
		return deny("InvalidSignatureException", "credential scope names service "+scope[3]+", not "+service)
	}
	region := scope[2]
	signedAt, err := time.Parse("20060102T150405Z", r.Header.Get("X-Amz-Date"))
	if err != nil {
		return deny("IncompleteSignatureException", "missing or bad X-Amz-Date")
	}
	if d := now.Sub(signedAt); d > 15*time.Minute || d < -15*time.Minute {
		return deny("InvalidSignatureException", "Signature expired")
	}
	// Rebuild the request with exactly the headers the client signed and sign it again.
	clone, _ := http.NewRequest(r.Method, "http://"+r.Host+r.URL.RequestURI(), bytes.NewReader(body))
	clone.Host = r.Host
	for _, h := range strings.Split(fields["SignedHeaders"], ";") {
		if h == "host" {
			continue
		}
		for _, v := range r.Header.Values(h) {
			clone.Header.Add(h, v)
		}
	}
	clone.Header.Del("Authorization")
	sum := sha256.Sum256(body)
	payloadHash := hex.EncodeToString(sum[:])
	if h := r.Header.Get("X-Amz-Content-Sha256"); h != "" && h != payloadHash && h != "UNSIGNED-PAYLOAD" {
		return deny("InvalidSignatureException", "payload hash does not match the body")
	}
	creds := aws.Credentials{AccessKeyID: AccessKey, SecretAccessKey: SecretKey, SessionToken: r.Header.Get("X-Amz-Security-Token")}
	if err := v4.NewSigner().SignHTTP(r.Context(), creds, clone, payloadHash, service, region, signedAt); err != nil {
		return err
	}
	want := ""
	for _, part := range strings.Split(strings.TrimPrefix(clone.Header.Get("Authorization"), "AWS4-HMAC-SHA256 "), ",") {
		if k, v, _ := strings.Cut(strings.TrimSpace(part), "="); k == "Signature" {
			want = v
		}
	}
	if want == "" || want != fields["Signature"] {
		return deny("InvalidSignatureException", "The request signature we calculated does not match the signature you provided.")
	}
	return nil
}

// TLSServer starts h over HTTPS on 127.0.0.1 and writes its certificate to a PEM file for
// AWS_CA_BUNDLE (the SDK trusts it from there; these machines set AWS_CA_BUNDLE already).
func TLSServer(t testing.TB, h http.Handler) (srv *httptest.Server, caFile string) {
	t.Helper()
	srv = httptest.NewTLSServer(h)
	t.Cleanup(srv.Close)
	caFile = filepath.Join(t.TempDir(), "ca.pem")
	pemBytes := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: srv.Certificate().Raw})
	if err := os.WriteFile(caFile, pemBytes, 0o600); err != nil {
		t.Fatal(err)
	}
	return srv, caFile
}

// SetEnv points the AWS SDK's default chain at the test credentials and caFile, for this test only.
func SetEnv(t *testing.T, caFile string) {
	t.Helper()
	for k, v := range map[string]string{
		"AWS_ACCESS_KEY_ID": AccessKey, "AWS_SECRET_ACCESS_KEY": SecretKey, "AWS_REGION": "us-east-1",
		"AWS_CA_BUNDLE": caFile, "AWS_EC2_METADATA_DISABLED": "true", "AWS_PROFILE": "",
		"AWS_CONFIG_FILE": filepath.Join(t.TempDir(), "none"), "AWS_SHARED_CREDENTIALS_FILE": filepath.Join(t.TempDir(), "none"),
		"AWS_SESSION_TOKEN": "",
	} {
		t.Setenv(k, v)
	}
}
