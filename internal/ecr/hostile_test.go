package ecr_test

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	v1 "github.com/google/go-containerregistry/pkg/v1"

	"github.com/regctl-dev/regctl/internal/awstest"
	"github.com/regctl-dev/regctl/internal/config"
	"github.com/regctl-dev/regctl/internal/ecr"
	"github.com/regctl-dev/regctl/internal/exitcode"
	"github.com/regctl-dev/regctl/internal/registry"
	"github.com/regctl-dev/regctl/internal/registry/hostiletest"
)

const (
	ctAWS   = "application/x-amz-json-1.1"
	digestA = "sha256:aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
	// A lifecycle policy as ECR stores it.
	policyText = `{"rules":[{"rulePriority":1,"description":"expire untagged","selection":{"tagStatus":"untagged","countType":"sinceImagePushed","countUnit":"days","countNumber":14},"action":{"type":"expire"}}]}`
)

// hostileECR is an ECR endpoint whose answers are valid except those in answers (by action);
// actions with no answer get UnknownOperationException, GetAuthorizationToken a valid token unless
// answers has one. The data plane (/v2/) answers the ping and 404 for manifests.
func hostileECR(t *testing.T, answers map[string]http.Handler) (url, caFile string) {
	t.Helper()
	var self string
	srv, ca := awstest.TLSServer(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if strings.HasPrefix(r.URL.Path, "/v2") {
			if r.URL.Path == "/v2/" {
				w.WriteHeader(http.StatusOK)
				return
			}
			http.Error(w, `{"errors":[{"code":"MANIFEST_UNKNOWN"}]}`, http.StatusNotFound)
			return
		}
		_, op, _ := strings.Cut(r.Header.Get("X-Amz-Target"), ".")
		if h, ok := answers[op]; ok {
			h.ServeHTTP(w, r)
			return
		}
		if op == "GetAuthorizationToken" {
			tokenAnswer(self, "AWS:secret", true).ServeHTTP(w, r)
			return
		}
		awsError(http.StatusBadRequest, "UnknownOperationException", op+" is not served here").ServeHTTP(w, r)
	}))
	self = srv.URL
	awstest.SetEnv(t, ca)
	t.Setenv("AWS_MAX_ATTEMPTS", "1") // each hostile answer once: the SDK's retries would only repeat it
	return srv.URL, ca
}

func tokenAnswer(proxy, userPass string, expires bool) hostiletest.Answer {
	ad := map[string]any{"authorizationToken": base64.StdEncoding.EncodeToString([]byte(userPass)), "proxyEndpoint": proxy}
	if expires {
		ad["expiresAt"] = 4102444800
	}
	b, _ := json.Marshal(map[string]any{"authorizationData": []any{ad}})
	return hostiletest.JSON("token", ctAWS, string(b))
}

func named(a hostiletest.Answer, name string) hostiletest.Answer { a.Name = name; return a }

func awsError(status int, typ, msg string) hostiletest.Answer {
	b, _ := json.Marshal(map[string]string{"__type": typ, "message": msg})
	return hostiletest.Answer{Name: typ, Status: status, ContentType: ctAWS, Header: http.Header{"X-Amzn-Errortype": {typ}}, Body: b}
}

func openHostile(t *testing.T, answers map[string]http.Handler, account string) (*ecr.ECR, error) {
	t.Helper()
	url, ca := hostileECR(t, answers)
	reg, err := ecr.Open(context.Background(), "hostile", config.Registry{Type: "ecr", CAFile: ca, Settings: map[string]any{"region": "us-east-1", "account": account, "endpoint": url}}, registry.Options{})
	if err != nil {
		return nil, err
	}
	return reg.(*ecr.ECR), nil
}

// hostileOp is one backend operation against one action's hostile answers.
type hostileOp struct {
	name   string
	action string // the action whose answer is hostile
	valid  string // its well-formed answer
	extra  hostiletest.Set
	also   map[string]http.Handler // valid answers to the other actions the operation calls
	run    func(ctx context.Context, e *ecr.ECR) (any, error)
	// codes: the documented exit code of each answer (absent: exit 1, a malformed answer);
	// checks: what an answer that succeeds must have produced.
	codes  map[string]int
	checks map[string]func(t *testing.T, v any)
}

func count(n int) func(*testing.T, any) {
	return func(t *testing.T, v any) {
		t.Helper()
		var got int
		switch x := v.(type) {
		case []string:
			got = len(x)
		case []registry.Image:
			got = len(x)
		case []ecr.PreviewResult:
			got = len(x)
		case []registry.Finding:
			got = len(x)
		case *ecr.Replication:
			got = len(x.Rules)
		default:
			t.Fatalf("count of %T", v)
		}
		if got != n {
			t.Errorf("%d results, want %d: %+v", got, n, v)
		}
	}
}

func status(want registry.EnsureStatus) func(*testing.T, any) {
	return func(t *testing.T, v any) {
		t.Helper()
		if got := v.(registry.EnsureResult).Status; got != want {
			t.Errorf("status %q, want %q (%+v)", got, want, v)
		}
	}
}

func text(want string) func(*testing.T, any) {
	return func(t *testing.T, v any) {
		t.Helper()
		if v.(string) != want {
			t.Errorf("got %q, want %q", v, want)
		}
	}
}

// okWhenEmpty: listings whose empty or body-less answer is an empty list (the SDK decodes them to
// an empty output), and whose valid body under a wrong or missing Content-Type is read as it is
// (the SDK does not look at Content-Type). A JSON null is not ECR's JSON: exit 1.
func okWhenEmpty(valid func(*testing.T, any)) (map[string]int, map[string]func(*testing.T, any)) {
	codes := map[string]int{"empty-object": 0, "empty-body": 0, "wrong-type": 0, "no-type": 0}
	checks := map[string]func(*testing.T, any){"empty-object": count(0), "empty-body": count(0), "wrong-type": valid, "no-type": valid}
	return codes, checks
}

func merge[V any](a map[string]V, kv ...any) map[string]V {
	out := map[string]V{}
	for k, v := range a {
		out[k] = v
	}
	for i := 0; i+1 < len(kv); i += 2 {
		out[kv[i].(string)] = kv[i+1].(V)
	}
	return out
}

var repoJSON = `{"repositoryName":"app","repositoryArn":"arn:aws:ecr:us-east-1:123456789012:repository/app","imageTagMutability":"MUTABLE","imageScanningConfiguration":{"scanOnPush":false},"encryptionConfiguration":{"encryptionType":"AES256"}}`

func hostileOps() []hostileOp {
	var ops []hostileOp
	notFound := awsError(http.StatusBadRequest, "RepositoryNotFoundException", "The repository with name 'app' does not exist")
	denied := awsError(http.StatusBadRequest, "AccessDeniedException", "User is not authorized")
	invalidAction := awsError(http.StatusBadRequest, "InvalidAction", "The action is not valid for this endpoint.")
	common := hostiletest.Set{denied, invalidAction}

	codes, checks := okWhenEmpty(count(1))
	ops = append(ops, hostileOp{name: "Repositories", action: "DescribeRepositories", valid: `{"repositories":[` + repoJSON + `]}`,
		extra: common.With(
			hostiletest.JSON("missing-name", ctAWS, `{"repositories":[{}]}`),
			hostiletest.JSON("nulls", ctAWS, `{"repositories":null,"nextToken":null}`),
			hostiletest.JSON("token-loop", ctAWS, `{"repositories":[`+repoJSON+`],"nextToken":"again"}`)),
		run:   func(ctx context.Context, e *ecr.ECR) (any, error) { return e.Repositories(ctx, "") },
		codes: merge(codes, "AccessDeniedException", exitcode.Auth, "nulls", 0), checks: merge(checks, "nulls", count(0))})

	created := `{"repository":` + repoJSON + `}`
	ops = append(ops, hostileOp{name: "EnsureRepository", action: "DescribeRepositories", valid: `{"repositories":[` + repoJSON + `]}`,
		also: map[string]http.Handler{"CreateRepository": hostiletest.JSON("created", ctAWS, created)},
		extra: common.With(notFound,
			hostiletest.JSON("empty-list", ctAWS, `{"repositories":[]}`), // kumo's answer for a missing repository
			hostiletest.JSON("other-repository", ctAWS, `{"repositories":[{"repositoryName":"other"}]}`),
			hostiletest.JSON("no-settings", ctAWS, `{"repositories":[{"repositoryName":"app"}]}`)),
		run: func(ctx context.Context, e *ecr.ECR) (any, error) {
			return e.EnsureRepository(ctx, "app", registry.RepositorySpec{Encryption: "AES256"})
		},
		// Not in the answer = not found = created; no settings in the answer = ECR's defaults.
		codes: map[string]int{"empty-object": 0, "empty-body": 0, "wrong-type": 0, "no-type": 0, "empty-list": 0, "other-repository": 0,
			"RepositoryNotFoundException": 0, "no-settings": 0, "AccessDeniedException": exitcode.Auth},
		checks: map[string]func(*testing.T, any){"empty-object": status(registry.StatusCreated),
			"empty-body": status(registry.StatusCreated), "empty-list": status(registry.StatusCreated), "other-repository": status(registry.StatusCreated),
			"RepositoryNotFoundException": status(registry.StatusCreated), "wrong-type": status(registry.StatusUnchanged), "no-type": status(registry.StatusUnchanged),
			"no-settings": status(registry.StatusUnchanged)}})

	ops = append(ops, hostileOp{name: "EnsureRepository/KMS", action: "DescribeRepositories", valid: `{"repositories":[` + repoJSON + `]}`,
		extra: hostiletest.Set{hostiletest.JSON("no-settings", ctAWS, `{"repositories":[{"repositoryName":"app"}]}`)},
		run: func(ctx context.Context, e *ecr.ECR) (any, error) {
			return e.EnsureRepository(ctx, "app", registry.RepositorySpec{Encryption: "KMS"})
		},
		// An answer without encryption is ECR's default, AES256: asking for KMS is refused.
		codes: map[string]int{"wrong-type": exitcode.Usage, "no-type": exitcode.Usage, "no-settings": exitcode.Usage,
			// empty answers: not found, and CreateRepository is not served here
			"empty-object": exitcode.Error, "empty-body": exitcode.Error}})

	codes, checks = okWhenEmpty(count(1))
	ops = append(ops, hostileOp{name: "Images", action: "DescribeImages",
		valid: `{"imageDetails":[{"imageDigest":"` + digestA + `","imageTags":["v1"],"imagePushedAt":1767225600,"imageSizeInBytes":10}]}`,
		extra: common.With(notFound,
			hostiletest.JSON("missing-digest", ctAWS, `{"imageDetails":[{"imageTags":["v1"]}]}`),
			hostiletest.JSON("bad-digest", ctAWS, `{"imageDetails":[{"imageDigest":"sha256:zz"}]}`),
			hostiletest.JSON("nulls", ctAWS, `{"imageDetails":[{"imageDigest":"`+digestA+`","imageTags":null,"imagePushedAt":null,"imageSizeInBytes":null}]}`),
			hostiletest.JSON("token-loop", ctAWS, `{"imageDetails":[],"nextToken":"again"}`)),
		run:    func(ctx context.Context, e *ecr.ECR) (any, error) { return e.Images(ctx, "app") },
		codes:  merge(codes, "AccessDeniedException", exitcode.Auth, "RepositoryNotFoundException", exitcode.NotFound, "nulls", 0),
		checks: merge(checks, "nulls", count(1))})

	d, _ := v1.NewHash(digestA)
	ops = append(ops, hostileOp{name: "DeleteImage", action: "BatchDeleteImage", valid: `{"imageIds":[{"imageDigest":"` + digestA + `"}],"failures":[]}`,
		extra: common.With(notFound,
			hostiletest.JSON("failure-not-found", ctAWS, `{"imageIds":[],"failures":[{"imageId":{"imageDigest":"`+digestA+`"},"failureCode":"ImageNotFound","failureReason":"gone"}]}`),
			hostiletest.JSON("failure-other", ctAWS, `{"failures":[{"failureCode":"ImageReferencedByManifestList","failureReason":"in use"}]}`),
			hostiletest.JSON("other-digest", ctAWS, `{"imageIds":[{"imageDigest":"sha256:bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb"}]}`)),
		run: func(ctx context.Context, e *ecr.ECR) (any, error) { return nil, e.DeleteImage(ctx, "app", d) },
		// An answer that lists the image neither as deleted nor as failed is malformed (exit 1).
		codes: map[string]int{"wrong-type": 0, "no-type": 0, "AccessDeniedException": exitcode.Auth, "RepositoryNotFoundException": exitcode.NotFound,
			"failure-not-found": exitcode.NotFound}})

	policyAnswer := `{"repositoryName":"app","lifecyclePolicyText":` + quote(policyText) + `}`
	ops = append(ops, hostileOp{name: "GetLifecyclePolicy", action: "GetLifecyclePolicy", valid: policyAnswer,
		extra: common.With(awsError(http.StatusBadRequest, "LifecyclePolicyNotFoundException", "none"),
			hostiletest.JSON("null-text", ctAWS, `{"lifecyclePolicyText":null}`)),
		run:    func(ctx context.Context, e *ecr.ECR) (any, error) { return e.GetLifecyclePolicy(ctx, "app") },
		codes:  map[string]int{"wrong-type": 0, "no-type": 0, "AccessDeniedException": exitcode.Auth, "LifecyclePolicyNotFoundException": exitcode.NotFound},
		checks: map[string]func(*testing.T, any){"wrong-type": text(policyText), "no-type": text(policyText)}})

	// Puts ignore what the answer says, but not that it is not ECR's JSON.
	putCodes := map[string]int{"empty-object": 0, "empty-body": 0, "wrong-type": 0, "no-type": 0, "AccessDeniedException": exitcode.Auth,
		"RepositoryNotFoundException": exitcode.NotFound}
	ops = append(ops, hostileOp{name: "PutLifecyclePolicy", action: "PutLifecyclePolicy", valid: policyAnswer, extra: common.With(notFound),
		run: func(ctx context.Context, e *ecr.ECR) (any, error) {
			return nil, e.PutLifecyclePolicy(ctx, "app", policyText)
		},
		codes: putCodes})

	repoPolicy := `{"Version":"2012-10-17","Statement":[]}`
	ops = append(ops, hostileOp{name: "GetRepositoryPolicy", action: "GetRepositoryPolicy", valid: `{"policyText":` + quote(repoPolicy) + `}`,
		extra:  common.With(awsError(http.StatusBadRequest, "RepositoryPolicyNotFoundException", "none")),
		run:    func(ctx context.Context, e *ecr.ECR) (any, error) { return e.GetRepositoryPolicy(ctx, "app") },
		codes:  map[string]int{"wrong-type": 0, "no-type": 0, "AccessDeniedException": exitcode.Auth, "RepositoryPolicyNotFoundException": exitcode.NotFound},
		checks: map[string]func(*testing.T, any){"wrong-type": text(repoPolicy)}})
	ops = append(ops, hostileOp{name: "SetRepositoryPolicy", action: "SetRepositoryPolicy", valid: `{"policyText":` + quote(repoPolicy) + `}`, extra: common.With(notFound),
		run: func(ctx context.Context, e *ecr.ECR) (any, error) {
			return nil, e.SetRepositoryPolicy(ctx, "app", repoPolicy)
		},
		codes: putCodes})

	previewValid := `{"status":"COMPLETE","previewResults":[{"imageDigest":"` + digestA + `","imageTags":["v1"],"action":{"type":"EXPIRE"},"appliedRulePriority":1}]}`
	ops = append(ops, hostileOp{name: "Preview", action: "GetLifecyclePolicyPreview", valid: previewValid,
		also: map[string]http.Handler{"StartLifecyclePolicyPreview": hostiletest.JSON("started", ctAWS, `{"status":"IN_PROGRESS"}`)},
		extra: common.With(
			hostiletest.JSON("failed", ctAWS, `{"status":"FAILED"}`),
			hostiletest.JSON("result-without-digest", ctAWS, `{"status":"COMPLETE","previewResults":[{"action":null}]}`),
			hostiletest.JSON("nulls", ctAWS, `{"status":"COMPLETE","previewResults":[{"imageDigest":"`+digestA+`","imageTags":null,"action":null,"appliedRulePriority":null}]}`),
			hostiletest.JSON("token-loop", ctAWS, `{"status":"COMPLETE","previewResults":[],"nextToken":"again"}`)),
		run: func(ctx context.Context, e *ecr.ECR) (any, error) { return e.Preview(ctx, "app", policyText) },
		// An answer without status is malformed: the SDK's waiter would poll it for 10 minutes.
		codes:  map[string]int{"wrong-type": 0, "no-type": 0, "nulls": 0, "AccessDeniedException": exitcode.Auth},
		checks: map[string]func(*testing.T, any){"wrong-type": count(1), "no-type": count(1), "nulls": count(1)}})

	findings := `{"imageScanStatus":{"status":"COMPLETE"},"imageScanFindings":{"findings":[{"name":"CVE-1","severity":"HIGH","attributes":[{"key":"CVSS3_SCORE","value":null}]}]}}`
	ops = append(ops, hostileOp{name: "NativeScan", action: "DescribeImageScanFindings", valid: findings,
		also: map[string]http.Handler{"StartImageScan": hostiletest.JSON("started", ctAWS, `{}`)},
		extra: common.With(
			hostiletest.JSON("unsupported", ctAWS, `{"imageScanStatus":{"status":"UNSUPPORTED_IMAGE","description":"no"}}`),
			hostiletest.JSON("no-findings", ctAWS, `{"imageScanStatus":{"status":"COMPLETE"},"imageScanFindings":null}`)),
		run: func(ctx context.Context, e *ecr.ECR) (any, error) { return e.NativeScan(ctx, "app", d) },
		// An answer without imageScanStatus is malformed (the SDK's waiter would poll it for 30 minutes).
		codes:  map[string]int{"wrong-type": 0, "no-type": 0, "no-findings": 0, "AccessDeniedException": exitcode.Auth},
		checks: map[string]func(*testing.T, any){"wrong-type": count(1), "no-findings": count(0)}})

	codes, checks = okWhenEmpty(count(1))
	ops = append(ops, hostileOp{name: "GetReplication", action: "DescribeRegistry",
		valid: `{"registryId":"123456789012","replicationConfiguration":{"rules":[{"destinations":[{"region":"eu-west-1","registryId":"123456789012"}]}]}}`,
		extra: common.With(hostiletest.JSON("nulls", ctAWS, `{"replicationConfiguration":{"rules":[{"destinations":null,"repositoryFilters":null}]}}`)),
		run:   func(ctx context.Context, e *ecr.ECR) (any, error) { return e.GetReplication(ctx) },
		codes: merge(codes, "AccessDeniedException", exitcode.Auth, "nulls", 0), checks: merge(checks, "nulls", count(1))})
	return ops
}

func quote(s string) string { b, _ := json.Marshal(s); return string(b) }

func code(codes map[string]int, name string) int {
	if c, ok := codes[name]; ok {
		return c
	}
	return exitcode.Error
}

// TestHostileECRAnswers runs every ECR backend operation against every hostile answer to the
// action it reads. A panic fails the test (there is no recover); each outcome is the documented
// exit code, and errors name the ECR action.
func TestHostileECRAnswers(t *testing.T) {
	for _, op := range hostileOps() {
		answers := hostiletest.Of(ctAWS, op.valid, registry.MaxOtherSize+1).With(op.extra...)
		for _, a := range answers {
			t.Run(op.name+"/"+a.Name, func(t *testing.T) {
				handlers := map[string]http.Handler{op.action: a}
				for k, v := range op.also {
					handlers[k] = v
				}
				e, err := openHostile(t, handlers, "123456789012")
				if err != nil {
					t.Fatal(err)
				}
				v, err := op.run(context.Background(), e)
				want := code(op.codes, a.Name)
				if got := exitcode.Of(err); got != want {
					t.Fatalf("exit %d, want %d (err: %v; value %+v)", got, want, err, v)
				}
				if err != nil {
					if !strings.Contains(err.Error(), op.action) && !strings.Contains(err.Error(), "CreateRepository") && want == exitcode.Error {
						t.Errorf("the error does not name %s: %v", op.action, err)
					}
					return
				}
				if check := op.checks[a.Name]; check != nil {
					check(t, v)
				}
			})
		}
	}
}

// TestHostileTokens: Open fetches a token when an endpoint is configured; every malformed token
// answer is exit 1 naming GetAuthorizationToken, a refused one exit 4, and a token without
// expiresAt or (with an account configured) without proxyEndpoint is used.
func TestHostileTokens(t *testing.T) {
	answers := hostiletest.Of(ctAWS, `{"authorizationData":[{"authorizationToken":"QVdTOnNlY3JldA==","proxyEndpoint":"https://127.0.0.1:1","expiresAt":4102444800}]}`, registry.MaxOtherSize+1).With(
		awsError(http.StatusBadRequest, "AccessDeniedException", "User is not authorized"),
		awsError(http.StatusBadRequest, "UnrecognizedClientException", "The security token included in the request is invalid."),
		hostiletest.JSON("empty-data", ctAWS, `{"authorizationData":[]}`),
		hostiletest.JSON("data-without-fields", ctAWS, `{"authorizationData":[{}]}`),
		hostiletest.JSON("null-token", ctAWS, `{"authorizationData":[{"authorizationToken":null,"proxyEndpoint":"https://h"}]}`),
		named(tokenAnswer("https://127.0.0.1:1", "no-colon", true), "no-colon"),
		named(tokenAnswer("https://127.0.0.1:1", ":password", true), "no-user"),
		named(tokenAnswer("https://127.0.0.1:1", "AWS:", true), "no-password"),
		hostiletest.JSON("not-base64", ctAWS, `{"authorizationData":[{"authorizationToken":"%%%","proxyEndpoint":"https://h"}]}`),
		named(tokenAnswer("https://127.0.0.1:1", "AWS:secret", false), "no-expiry"),
		named(tokenAnswer("", "AWS:secret", true), "no-proxy-endpoint"),
		named(tokenAnswer("https://", "AWS:secret", true), "proxy-without-host"),
		named(tokenAnswer("ftp://h/x", "AWS:secret", true), "proxy-not-http"),
		named(tokenAnswer("123456789012.dkr.ecr.us-east-1.amazonaws.com", "AWS:secret", true), "proxy-without-scheme"),
	)
	// Documented outcomes (docs/ecr.md): with account 123456789012 configured.
	codes := map[string]int{"wrong-type": 0, "no-type": 0, "no-expiry": 0, "no-proxy-endpoint": 0, "proxy-without-scheme": 0,
		"AccessDeniedException": exitcode.Auth, "UnrecognizedClientException": exitcode.Auth}
	hosts := map[string]string{"no-proxy-endpoint": "123456789012.dkr.ecr.us-east-1.amazonaws.com", "proxy-without-scheme": "123456789012.dkr.ecr.us-east-1.amazonaws.com",
		"wrong-type": "127.0.0.1:1", "no-expiry": "127.0.0.1:1"}
	for _, a := range answers {
		t.Run(a.Name, func(t *testing.T) {
			e, err := openHostile(t, map[string]http.Handler{"GetAuthorizationToken": a}, "123456789012")
			want := code(codes, a.Name)
			if got := exitcode.Of(err); got != want {
				t.Fatalf("exit %d, want %d: %v", got, want, err)
			}
			if err != nil {
				if want == exitcode.Error && !strings.Contains(err.Error(), "GetAuthorizationToken") {
					t.Errorf("the error does not name GetAuthorizationToken: %v", err)
				}
				return
			}
			if h := hosts[a.Name]; h != "" && e.Host() != h {
				t.Errorf("host %q, want %q", e.Host(), h)
			}
		})
	}
	t.Run("no-proxy-endpoint-no-account", func(t *testing.T) {
		_, err := openHostile(t, map[string]http.Handler{"GetAuthorizationToken": tokenAnswer("", "AWS:secret", true)}, "")
		if exitcode.Of(err) != exitcode.Error || !strings.Contains(err.Error(), "no proxyEndpoint") {
			t.Errorf("want exit 1 naming the missing proxyEndpoint: %v", err)
		}
	})
}

// TestOpenWithoutCABundle: without AWS_CA_BUNDLE the SDK's configuration has no HTTP client of its
// own; the answer limit must wrap the SDK's default one (a nil client here panicked every call).
func TestOpenWithoutCABundle(t *testing.T) {
	var self string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		tokenAnswer(self, "AWS:secret", true).ServeHTTP(w, r)
	}))
	t.Cleanup(srv.Close)
	self = srv.URL
	awstest.SetEnv(t, "")
	t.Setenv("AWS_CA_BUNDLE", "")
	reg, err := ecr.Open(context.Background(), "plain", config.Registry{Type: "ecr", Settings: map[string]any{"region": "us-east-1", "endpoint": srv.URL}}, registry.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if reg.Host() != strings.TrimPrefix(srv.URL, "http://") {
		t.Errorf("host %q", reg.Host())
	}
}
