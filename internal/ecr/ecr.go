// Package ecr is the Amazon ECR backend: the control plane through aws-sdk-go-v2 (repositories,
// images with their real push times, deletes, lifecycle and repository policies) and the data plane
// through the generic OCI backend, authenticated with ECR tokens cached until they expire.
package ecr

import (
	"bytes"
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	awsconfig "github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/service/ecr"
	"github.com/aws/aws-sdk-go-v2/service/ecr/types"
	"github.com/aws/smithy-go"
	"github.com/google/go-containerregistry/pkg/authn"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	ggcrtypes "github.com/google/go-containerregistry/pkg/v1/types"

	"github.com/regctl-dev/regctl/internal/config"
	"github.com/regctl-dev/regctl/internal/exitcode"
	"github.com/regctl-dev/regctl/internal/registry"
)

// ECR is a registry.Registry backed by Amazon ECR.
type ECR struct {
	*registry.OCI // data plane: tags, pushes, pulls
	name          string
	client        *ecr.Client
	account       string
	endpoint      string
}

// Endpoint is the API endpoint override ("" for AWS's own).
func (e *ECR) Endpoint() string { return e.endpoint }

// Open opens a `type: ecr` registry. With `endpoint` (VPC endpoints, tests) the registry host comes
// from the service (GetAuthorizationToken's proxyEndpoint); otherwise it is
// <account>.dkr.ecr.<region>.amazonaws.com.
func Open(ctx context.Context, name string, rc config.Registry, opts registry.Options) (registry.Registry, error) {
	s, err := settings(rc)
	if err != nil {
		return nil, fmt.Errorf("registries.%s: %v: %w", name, err, exitcode.ErrUsage)
	}
	loadOpts := []func(*awsconfig.LoadOptions) error{awsconfig.WithRegion(s.Region)}
	if s.Profile != "" {
		loadOpts = append(loadOpts, awsconfig.WithSharedConfigProfile(s.Profile))
	}
	cfg, err := awsconfig.LoadDefaultConfig(ctx, loadOpts...)
	if err != nil {
		return nil, fmt.Errorf("registries.%s: AWS configuration: %w", name, err)
	}
	if cfg.HTTPClient == nil { // set only when a CA bundle is configured
		cfg.HTTPClient = awshttp.NewBuildableClient()
	}
	cfg.HTTPClient = limitedClient{cfg.HTTPClient}
	client := ecr.NewFromConfig(cfg, func(o *ecr.Options) {
		if s.Endpoint != "" {
			o.BaseEndpoint = aws.String(s.Endpoint)
		}
	})
	e := &ECR{name: name, client: client, account: s.Account, endpoint: s.Endpoint}
	kc := &tokenKeychain{client: client, registryID: s.Account}
	host := ""
	if s.Endpoint != "" || s.Account == "" {
		if _, err := kc.token(ctx); err != nil {
			return nil, classify(fmt.Errorf("registries.%s: getting an ECR token: %w", name, err))
		}
		host = kc.host
		if host == "" && s.Account != "" {
			host = s.Account + ".dkr.ecr." + s.Region + ".amazonaws.com"
		}
		if host == "" {
			return nil, fmt.Errorf("registries.%s: ecr GetAuthorizationToken: the answer has no proxyEndpoint and the config names no account to derive the registry host from: %w",
				name, registry.ErrBadAnswer)
		}
	} else {
		host = s.Account + ".dkr.ecr." + s.Region + ".amazonaws.com"
	}
	tr, err := registry.BaseTransport(opts.Transport, rc.Insecure || opts.Insecure, rc.CAFile)
	if err != nil {
		return nil, fmt.Errorf("registries.%s.ca_file: %w", name, err)
	}
	e.OCI = registry.NewOCI(registry.OCIConfig{Name: name, Host: host, Insecure: rc.Insecure || opts.Insecure, Keychain: kc,
		Transport: tr, UserAgent: opts.UserAgent, Logger: opts.Logger, Jobs: opts.Jobs})
	return e, nil
}

func (e *ECR) Type() string { return Type }
func (e *ECR) Name() string { return e.name }

// tokenKeychain answers with ECR's basic credentials, fetching a token when there is none or it is
// about to expire (tokens last 12 hours).
type tokenKeychain struct {
	client     *ecr.Client
	registryID string
	mu         sync.Mutex
	auth       authn.Authenticator
	expires    time.Time
	host       string
}

func (k *tokenKeychain) token(ctx context.Context) (authn.Authenticator, error) {
	k.mu.Lock()
	defer k.mu.Unlock()
	if k.auth != nil && time.Until(k.expires) > 5*time.Minute {
		return k.auth, nil
	}
	in := &ecr.GetAuthorizationTokenInput{}
	out, err := k.client.GetAuthorizationToken(ctx, in)
	if err != nil {
		return nil, err
	}
	t, err := decodeToken(out, time.Now())
	if err != nil {
		return nil, err
	}
	k.auth = &authn.Basic{Username: t.user, Password: t.password}
	k.expires, k.host = t.expires, t.host
	return k.auth, nil
}

// ecrToken is a decoded GetAuthorizationToken answer.
type ecrToken struct {
	user, password string
	expires        time.Time
	host           string // from proxyEndpoint, "" when the answer has none
}

// tokenLifetimeUnknown is how long a token without expiresAt is used before another is fetched.
const tokenLifetimeUnknown = 15 * time.Minute

// decodeToken checks a GetAuthorizationToken answer: authorizationData present, a base64
// "user:password" token with both parts, a proxyEndpoint (when present) that is an http(s) URL of a
// host. A missing expiresAt is not an error: the token is used for tokenLifetimeUnknown.
func decodeToken(out *ecr.GetAuthorizationTokenOutput, now time.Time) (ecrToken, error) {
	bad := func(format string, a ...any) error {
		return fmt.Errorf("ecr GetAuthorizationToken: "+format+": %w", append(a, registry.ErrBadAnswer)...)
	}
	if out == nil || len(out.AuthorizationData) == 0 {
		return ecrToken{}, bad("the answer has no authorizationData")
	}
	ad := out.AuthorizationData[0]
	enc := aws.ToString(ad.AuthorizationToken)
	if enc == "" {
		return ecrToken{}, bad("the answer has no authorizationToken")
	}
	raw, err := base64.StdEncoding.DecodeString(enc)
	if err != nil {
		return ecrToken{}, bad("authorizationToken is not base64: %v", err)
	}
	user, pw, ok := strings.Cut(string(raw), ":")
	if !ok || user == "" || pw == "" {
		return ecrToken{}, bad("authorizationToken is not user:password")
	}
	t := ecrToken{user: user, password: pw, expires: aws.ToTime(ad.ExpiresAt)}
	if t.expires.IsZero() {
		t.expires = now.Add(tokenLifetimeUnknown)
	}
	if pe := aws.ToString(ad.ProxyEndpoint); pe != "" {
		full := pe
		if !strings.Contains(full, "://") {
			full = "https://" + full
		}
		u, err := url.Parse(full)
		if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" || strings.ContainsAny(u.Host, "/@ ") {
			return ecrToken{}, bad("proxyEndpoint %q is not an http(s) URL of a host", pe)
		}
		t.host = u.Host
	}
	return t, nil
}

func (k *tokenKeychain) Resolve(authn.Resource) (authn.Authenticator, error) {
	return k.token(context.Background())
}

// ResolveContext is Resolve bounded by the request's context (authn.ContextKeychain): a token fetch
// mid-transfer stops with Ctrl-C.
func (k *tokenKeychain) ResolveContext(ctx context.Context, _ authn.Resource) (authn.Authenticator, error) {
	return k.token(ctx)
}

// classify maps AWS errors to exit codes: access denied and bad credentials 4, missing things 5,
// invalid parameters 2.
func classify(err error) error {
	if err == nil {
		return nil
	}
	if strings.Contains(err.Error(), "Credential should be scoped to a valid region") {
		return exitcode.With(exitcode.Auth, fmt.Errorf("the request was signed for another region than the endpoint's: check region in the registry's config: %w", err))
	}
	var tooLarge *registry.TooLargeError
	if errors.As(err, &tooLarge) {
		return fmt.Errorf("ecr %s: %w", operation(err), tooLarge)
	}
	var deser *smithy.DeserializationError
	if errors.As(err, &deser) {
		return fmt.Errorf("ecr %s: the answer is not ECR's JSON (a proxy's or an emulator's page?): %v: %w", operation(err), deser.Err, registry.ErrBadAnswer)
	}
	var api smithy.APIError
	if errors.As(err, &api) {
		switch api.ErrorCode() {
		case "InvalidAction", "UnknownOperationException", "NotImplemented", "InvalidTargetHeader":
			// Emulators (kumo, LocalStack's free tier) answer so for actions they lack.
			return exitcode.With(exitcode.Error, fmt.Errorf("ecr %s: the endpoint does not implement the %s action (%s: %s); regctl needs it for this command",
				operation(err), operation(err), api.ErrorCode(), api.ErrorMessage()))
		case "AccessDeniedException", "UnrecognizedClientException", "InvalidSignatureException", "ExpiredTokenException", "MissingAuthenticationTokenException":
			return exitcode.With(exitcode.Auth, err)
		case "RepositoryNotFoundException", "ImageNotFoundException", "LifecyclePolicyNotFoundException", "RepositoryPolicyNotFoundException":
			return exitcode.With(exitcode.NotFound, err)
		case "InvalidParameterException", "ValidationException", "RepositoryAlreadyExistsException":
			return exitcode.With(exitcode.Usage, err)
		}
	}
	var re interface{ HTTPStatusCode() int }
	if errors.As(err, &re) && re.HTTPStatusCode() == http.StatusForbidden {
		return exitcode.With(exitcode.Auth, err)
	}
	if msg := err.Error(); strings.Contains(msg, "failed to retrieve credentials") || strings.Contains(msg, "no valid providers in chain") || strings.Contains(msg, "get identity: get credentials") {
		return exitcode.With(exitcode.Auth, fmt.Errorf("no AWS credentials: set AWS_PROFILE, AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY, or run where a role is available: %w", err))
	}
	return err
}

// operation names the ECR action an SDK error came from.
func operation(err error) string {
	var op *smithy.OperationError
	if errors.As(err, &op) {
		return op.Operation()
	}
	return "call"
}

// limitedClient bounds every ECR answer at registry.MaxOtherSize.
type limitedClient struct {
	base interface {
		Do(*http.Request) (*http.Response, error)
	}
}

// Do reads the whole answer (ECR's are small) so that one over the limit, or cut off by the
// connection, fails here, before the SDK decodes anything.
func (c limitedClient) Do(req *http.Request) (*http.Response, error) {
	resp, err := c.base.Do(req)
	if err != nil {
		return resp, err
	}
	if err := registry.LimitBody(resp, registry.MaxOtherSize, "ECR API answer"); err != nil {
		return nil, err
	}
	body, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil {
		return nil, err
	}
	resp.Body = io.NopCloser(bytes.NewReader(body))
	return resp, nil
}

// maxPages bounds a paginated listing (a million entries at 100 a page).
const maxPages = 10000

// tokenGuard stops a paginated listing whose server repeats a nextToken (the SDK's paginators
// would ask again for ever) or pages without end.
type tokenGuard struct {
	op    string
	pages int
	seen  map[string]bool
}

func (g *tokenGuard) next(token *string) error {
	g.pages++
	t := aws.ToString(token)
	if t == "" {
		return nil
	}
	if g.seen == nil {
		g.seen = map[string]bool{}
	}
	if g.seen[t] {
		return fmt.Errorf("ecr %s: the answer repeats a nextToken it sent before (page %d): %w", g.op, g.pages, registry.ErrBadAnswer)
	}
	if g.pages >= maxPages {
		return fmt.Errorf("ecr %s: more than %d pages: %w", g.op, maxPages, registry.ErrBadAnswer)
	}
	g.seen[t] = true
	return nil
}

// Repositories lists repositories (all pages) whose names start with prefix.
func (e *ECR) Repositories(ctx context.Context, prefix string) ([]string, error) {
	var out []string
	p := ecr.NewDescribeRepositoriesPaginator(e.client, &ecr.DescribeRepositoriesInput{RegistryId: e.registryID()})
	guard := tokenGuard{op: "DescribeRepositories"}
	for p.HasMorePages() {
		page, err := p.NextPage(ctx)
		if err != nil {
			return nil, classify(err)
		}
		for i, r := range page.Repositories {
			n := aws.ToString(r.RepositoryName)
			if n == "" {
				return nil, fmt.Errorf("ecr DescribeRepositories: repositories[%d] has no repositoryName: %w", i, registry.ErrBadAnswer)
			}
			if strings.HasPrefix(n, prefix) {
				out = append(out, n)
			}
		}
		if err := guard.next(page.NextToken); err != nil {
			return nil, err
		}
	}
	sort.Strings(out)
	return out, nil
}

func (e *ECR) registryID() *string {
	if e.account == "" {
		return nil
	}
	return aws.String(e.account)
}

// EnsureRepository creates the repository, or compares an existing one's settings: scan-on-push and
// tag mutability are updated; encryption, which ECR cannot change after creation, is an error.
func (e *ECR) EnsureRepository(ctx context.Context, repo string, spec registry.RepositorySpec) (registry.EnsureResult, error) {
	res := registry.EnsureResult{Repository: repo}
	out, err := e.client.DescribeRepositories(ctx, &ecr.DescribeRepositoriesInput{RegistryId: e.registryID(), RepositoryNames: []string{repo}})
	var nf *types.RepositoryNotFoundException
	var cur *types.Repository
	if err == nil {
		// ECR answers an unknown name with RepositoryNotFoundException; some emulators (kumo) with
		// an empty list. Either way, a repository not in the answer does not exist.
		for i := range out.Repositories {
			if aws.ToString(out.Repositories[i].RepositoryName) == repo {
				cur = &out.Repositories[i]
				break
			}
		}
	}
	switch {
	case errors.As(err, &nf), err == nil && cur == nil:
		in := &ecr.CreateRepositoryInput{RepositoryName: aws.String(repo), RegistryId: e.registryID(),
			ImageScanningConfiguration: &types.ImageScanningConfiguration{ScanOnPush: spec.ScanOnPush}}
		if spec.TagMutability != "" {
			in.ImageTagMutability = types.ImageTagMutability(spec.TagMutability)
		}
		if spec.Encryption != "" {
			in.EncryptionConfiguration = &types.EncryptionConfiguration{EncryptionType: types.EncryptionType(spec.Encryption)}
			if spec.KMSKey != "" {
				in.EncryptionConfiguration.KmsKey = aws.String(spec.KMSKey)
			}
		}
		for k, v := range spec.Tags {
			in.Tags = append(in.Tags, types.Tag{Key: aws.String(k), Value: aws.String(v)})
		}
		if _, err := e.client.CreateRepository(ctx, in); err != nil {
			var exists *types.RepositoryAlreadyExistsException
			if errors.As(err, &exists) {
				return res, fmt.Errorf("ecr CreateRepository: %s exists, but DescribeRepositories did not find it (created meanwhile, or the endpoint's answers disagree): %w", repo, registry.ErrBadAnswer)
			}
			return res, classify(err)
		}
		res.Status, res.Message = registry.StatusCreated, "created"
		return res, nil
	case err != nil:
		return res, classify(err)
	}
	// ECR always reports encryption and scanning; an answer without them means ECR's defaults.
	encryption, scanOnPush := string(types.EncryptionTypeAes256), false
	if cur.EncryptionConfiguration != nil && cur.EncryptionConfiguration.EncryptionType != "" {
		encryption = string(cur.EncryptionConfiguration.EncryptionType)
	}
	if cur.ImageScanningConfiguration != nil {
		scanOnPush = cur.ImageScanningConfiguration.ScanOnPush
	}
	if spec.Encryption != "" && encryption != spec.Encryption {
		return res, fmt.Errorf("%s: encryption is %s and ECR cannot change it after creation (asked for %s); create a new repository to change it: %w",
			repo, encryption, spec.Encryption, exitcode.ErrUsage)
	}
	var changed []string
	if scanOnPush != spec.ScanOnPush {
		if _, err := e.client.PutImageScanningConfiguration(ctx, &ecr.PutImageScanningConfigurationInput{RepositoryName: aws.String(repo),
			RegistryId: e.registryID(), ImageScanningConfiguration: &types.ImageScanningConfiguration{ScanOnPush: spec.ScanOnPush}}); err != nil {
			return res, classify(err)
		}
		changed = append(changed, fmt.Sprintf("scan on push %v", spec.ScanOnPush))
	}
	if spec.TagMutability != "" && string(cur.ImageTagMutability) != spec.TagMutability {
		if _, err := e.client.PutImageTagMutability(ctx, &ecr.PutImageTagMutabilityInput{RepositoryName: aws.String(repo),
			RegistryId: e.registryID(), ImageTagMutability: types.ImageTagMutability(spec.TagMutability)}); err != nil {
			return res, classify(err)
		}
		changed = append(changed, "tag mutability "+spec.TagMutability)
	}
	if len(changed) == 0 {
		res.Status, res.Message = registry.StatusUnchanged, "exists with the same settings"
		return res, nil
	}
	res.Status, res.Message = registry.StatusUpdated, "updated: "+strings.Join(changed, ", ")
	return res, nil
}

// describeImages is every DescribeImages page of repo.
func (e *ECR) describeImages(ctx context.Context, repo string) ([]types.ImageDetail, error) {
	var details []types.ImageDetail
	p := ecr.NewDescribeImagesPaginator(e.client, &ecr.DescribeImagesInput{RepositoryName: aws.String(repo), RegistryId: e.registryID()})
	guard := tokenGuard{op: "DescribeImages"}
	for p.HasMorePages() {
		page, err := p.NextPage(ctx)
		if err != nil {
			return nil, classify(err)
		}
		details = append(details, page.ImageDetails...)
		if err := guard.next(page.NextToken); err != nil {
			return nil, err
		}
	}
	return details, nil
}

// Tags are the image tags DescribeImages reports, the same source as Images: a repository that
// exists but holds nothing has no tags (the data plane's tag list would call it unknown).
func (e *ECR) Tags(ctx context.Context, repo string) ([]string, error) {
	details, err := e.describeImages(ctx, repo)
	if err != nil {
		return nil, err
	}
	tags := []string{}
	seen := map[string]bool{}
	for _, d := range details {
		for _, t := range d.ImageTags {
			if !registry.IsTag(t) {
				return nil, fmt.Errorf("ecr DescribeImages: %s lists %q, which is not a tag: %w", repo, t, registry.ErrBadAnswer)
			}
			if !seen[t] {
				seen[t] = true
				tags = append(tags, t)
			}
		}
	}
	sort.Strings(tags)
	return tags, nil
}

// Images lists every image ECR has for repo (untagged ones too) with ECR's push and pull times;
// manifests come from the data plane so indexes, platforms and referrers are linked as elsewhere.
func (e *ECR) Images(ctx context.Context, repo string) ([]registry.Image, error) {
	details, err := e.describeImages(ctx, repo)
	if err != nil {
		return nil, err
	}
	tagDigests := map[string]v1.Hash{}
	var digests []v1.Hash
	seen := map[v1.Hash]bool{}
	for i, d := range details {
		h, err := v1.NewHash(aws.ToString(d.ImageDigest))
		if err != nil {
			return nil, fmt.Errorf("ecr DescribeImages: imageDetails[%d] of %s has no valid imageDigest (%q): %w", i, repo, aws.ToString(d.ImageDigest), registry.ErrBadAnswer)
		}
		if seen[h] {
			continue
		}
		seen[h] = true
		digests = append(digests, h)
		for _, t := range d.ImageTags {
			tagDigests[t] = h
		}
	}
	manifests, err := e.OCI.FetchManifests(ctx, repo, digests)
	if err != nil {
		return nil, err
	}
	images := registry.Group(repo, tagDigests, manifests, nil)
	byDigest := map[string]types.ImageDetail{}
	for _, d := range details {
		byDigest[aws.ToString(d.ImageDigest)] = d
	}
	for i := range images {
		d, ok := byDigest[images[i].Digest.String()]
		if !ok {
			continue
		}
		if t := aws.ToTime(d.ImagePushedAt); !t.IsZero() {
			images[i].PushedAt, images[i].PushedAtSource = t.UTC(), registry.SourceECR
		}
		images[i].LastPulledAt = aws.ToTime(d.LastRecordedPullTime).UTC()
		if d.ImageSizeInBytes != nil && images[i].Kind != registry.KindIndex {
			images[i].Size = *d.ImageSizeInBytes
		}
		if images[i].MediaType == "" && d.ImageManifestMediaType != nil {
			images[i].MediaType = ggcrtypes.MediaType(*d.ImageManifestMediaType)
		}
	}
	sort.SliceStable(images, func(i, j int) bool { return images[i].PushedAt.After(images[j].PushedAt) })
	return images, nil
}

// DeleteImage deletes by digest with BatchDeleteImage.
func (e *ECR) DeleteImage(ctx context.Context, repo string, digest v1.Hash) error {
	out, err := e.client.BatchDeleteImage(ctx, &ecr.BatchDeleteImageInput{RepositoryName: aws.String(repo), RegistryId: e.registryID(),
		ImageIds: []types.ImageIdentifier{{ImageDigest: aws.String(digest.String())}}})
	if err != nil {
		return classify(err)
	}
	if len(out.Failures) > 0 { // one image asked for: its failure, if any, is the first
		f := out.Failures[0]
		if f.FailureCode == types.ImageFailureCodeImageNotFound {
			return exitcode.With(exitcode.NotFound, fmt.Errorf("ecr BatchDeleteImage: %s@%s: %s", repo, digest, aws.ToString(f.FailureReason)))
		}
		return fmt.Errorf("ecr BatchDeleteImage: %s@%s: %s: %s", repo, digest, f.FailureCode, aws.ToString(f.FailureReason))
	}
	for _, id := range out.ImageIds {
		if aws.ToString(id.ImageDigest) == digest.String() {
			return nil
		}
	}
	return fmt.Errorf("ecr BatchDeleteImage: the answer lists %s@%s neither as deleted nor as failed: %w", repo, digest, registry.ErrBadAnswer)
}

// DeleteTag removes one tag with BatchDeleteImage by tag: ECR keeps the image while other tags
// point at it (and deletes it with its last tag, as the console does).
func (e *ECR) DeleteTag(ctx context.Context, repo, tag string) error {
	if !registry.IsTag(tag) {
		return fmt.Errorf("%q is not a tag: %w", tag, exitcode.ErrUsage)
	}
	out, err := e.client.BatchDeleteImage(ctx, &ecr.BatchDeleteImageInput{RepositoryName: aws.String(repo), RegistryId: e.registryID(),
		ImageIds: []types.ImageIdentifier{{ImageTag: aws.String(tag)}}})
	if err != nil {
		return classify(err)
	}
	if len(out.Failures) > 0 {
		f := out.Failures[0]
		if f.FailureCode == types.ImageFailureCodeImageNotFound || f.FailureCode == types.ImageFailureCodeImageTagDoesNotMatchDigest {
			return exitcode.With(exitcode.NotFound, fmt.Errorf("ecr BatchDeleteImage: %s:%s: %s", repo, tag, aws.ToString(f.FailureReason)))
		}
		return fmt.Errorf("ecr BatchDeleteImage: %s:%s: %s: %s", repo, tag, f.FailureCode, aws.ToString(f.FailureReason))
	}
	for _, id := range out.ImageIds {
		if aws.ToString(id.ImageTag) == tag {
			return nil
		}
	}
	return fmt.Errorf("ecr BatchDeleteImage: the answer lists %s:%s neither as deleted nor as failed: %w", repo, tag, registry.ErrBadAnswer)
}

// GetLifecyclePolicy returns the stored policy text ("" and exit-5 error when there is none).
func (e *ECR) GetLifecyclePolicy(ctx context.Context, repo string) (string, error) {
	out, err := e.client.GetLifecyclePolicy(ctx, &ecr.GetLifecyclePolicyInput{RepositoryName: aws.String(repo), RegistryId: e.registryID()})
	if err != nil {
		return "", classify(err)
	}
	if aws.ToString(out.LifecyclePolicyText) == "" {
		return "", fmt.Errorf("ecr GetLifecyclePolicy: the answer for %s has no lifecyclePolicyText: %w", repo, registry.ErrBadAnswer)
	}
	return aws.ToString(out.LifecyclePolicyText), nil
}

// PutLifecyclePolicy stores a policy; ECR applies it itself (within 24 hours).
func (e *ECR) PutLifecyclePolicy(ctx context.Context, repo, policy string) error {
	_, err := e.client.PutLifecyclePolicy(ctx, &ecr.PutLifecyclePolicyInput{RepositoryName: aws.String(repo), RegistryId: e.registryID(),
		LifecyclePolicyText: aws.String(policy)})
	return classify(err)
}

// GetRepositoryPolicy returns the repository's access policy.
func (e *ECR) GetRepositoryPolicy(ctx context.Context, repo string) (string, error) {
	out, err := e.client.GetRepositoryPolicy(ctx, &ecr.GetRepositoryPolicyInput{RepositoryName: aws.String(repo), RegistryId: e.registryID()})
	if err != nil {
		return "", classify(err)
	}
	if aws.ToString(out.PolicyText) == "" {
		return "", fmt.Errorf("ecr GetRepositoryPolicy: the answer for %s has no policyText: %w", repo, registry.ErrBadAnswer)
	}
	return aws.ToString(out.PolicyText), nil
}

// SetRepositoryPolicy replaces the repository's access policy.
func (e *ECR) SetRepositoryPolicy(ctx context.Context, repo, policy string) error {
	_, err := e.client.SetRepositoryPolicy(ctx, &ecr.SetRepositoryPolicyInput{RepositoryName: aws.String(repo), RegistryId: e.registryID(),
		PolicyText: aws.String(policy)})
	return classify(err)
}

var (
	_ registry.LifecyclePolicies  = (*ECR)(nil)
	_ registry.RepositoryPolicies = (*ECR)(nil)
)

// NativeScan starts ECR's basic scan of the image (an already running or finished scan is fine),
// waits for it with the SDK's waiter, and returns the findings (all pages).
func (e *ECR) NativeScan(ctx context.Context, repo string, digest v1.Hash) ([]registry.Finding, error) {
	id := &types.ImageIdentifier{ImageDigest: aws.String(digest.String())}
	_, err := e.client.StartImageScan(ctx, &ecr.StartImageScanInput{RepositoryName: aws.String(repo), RegistryId: e.registryID(), ImageId: id})
	var limit *types.LimitExceededException
	if err != nil && !errors.As(err, &limit) { // one scan per image per day: use the last one
		return nil, classify(err)
	}
	in := &ecr.DescribeImageScanFindingsInput{RepositoryName: aws.String(repo), RegistryId: e.registryID(), ImageId: id}
	if err := ecr.NewImageScanCompleteWaiter(e.client, func(o *ecr.ImageScanCompleteWaiterOptions) {
		o.Retryable = scanRetryable
	}).Wait(ctx, in, 30*time.Minute); err != nil {
		return nil, classify(fmt.Errorf("waiting for the ECR scan of %s@%s: %w", repo, digest, err))
	}
	var out []registry.Finding
	p := ecr.NewDescribeImageScanFindingsPaginator(e.client, in)
	guard := tokenGuard{op: "DescribeImageScanFindings"}
	for p.HasMorePages() {
		page, err := p.NextPage(ctx)
		if err != nil {
			return nil, classify(err)
		}
		if err := guard.next(page.NextToken); err != nil {
			return nil, err
		}
		if page.ImageScanFindings == nil {
			continue
		}
		for _, f := range page.ImageScanFindings.Findings {
			rf := registry.Finding{VulnerabilityID: aws.ToString(f.Name), Title: aws.ToString(f.Description), URL: aws.ToString(f.Uri),
				Severity: nativeSeverity(string(f.Severity))}
			for _, a := range f.Attributes {
				switch aws.ToString(a.Key) {
				case "package_name":
					rf.PkgName = aws.ToString(a.Value)
				case "package_version":
					rf.InstalledVersion = aws.ToString(a.Value)
				case "CVSS3_SCORE", "CVSS2_SCORE":
					var s float64
					fmt.Sscanf(aws.ToString(a.Value), "%g", &s)
					rf.CVSS = max(rf.CVSS, s)
				}
			}
			out = append(out, rf)
		}
	}
	return out, nil
}

// scanRetryable decides the scan waiter's next step from a DescribeImageScanFindings answer: done
// when COMPLETE, waiting while the scan is pending or running, an error for any other status and for
// an answer without one (the SDK's own waiter would poll a status-less answer for 30 minutes).
func scanRetryable(_ context.Context, _ *ecr.DescribeImageScanFindingsInput, out *ecr.DescribeImageScanFindingsOutput, err error) (bool, error) {
	if err != nil {
		return false, err
	}
	if out == nil || out.ImageScanStatus == nil || out.ImageScanStatus.Status == "" {
		return false, fmt.Errorf("ecr DescribeImageScanFindings: the answer has no imageScanStatus: %w", registry.ErrBadAnswer)
	}
	switch st := out.ImageScanStatus.Status; st {
	case types.ScanStatusComplete:
		return false, nil
	case types.ScanStatusInProgress, types.ScanStatusPending, types.ScanStatusActive:
		return true, nil
	default:
		return false, fmt.Errorf("ecr DescribeImageScanFindings: the scan ended %s: %s", st, aws.ToString(out.ImageScanStatus.Description))
	}
}

// previewRetryable is scanRetryable for GetLifecyclePolicyPreview.
func previewRetryable(_ context.Context, _ *ecr.GetLifecyclePolicyPreviewInput, out *ecr.GetLifecyclePolicyPreviewOutput, err error) (bool, error) {
	if err != nil {
		return false, err
	}
	if out == nil || out.Status == "" {
		return false, fmt.Errorf("ecr GetLifecyclePolicyPreview: the answer has no status: %w", registry.ErrBadAnswer)
	}
	switch out.Status {
	case types.LifecyclePolicyPreviewStatusComplete:
		return false, nil
	case types.LifecyclePolicyPreviewStatusInProgress:
		return true, nil
	default:
		return false, fmt.Errorf("ecr GetLifecyclePolicyPreview: the preview ended %s", out.Status)
	}
}

// nativeSeverity maps ECR's severities onto trivy's.
func nativeSeverity(s string) string {
	switch s {
	case "CRITICAL", "HIGH", "MEDIUM", "LOW":
		return s
	case "INFORMATIONAL":
		return "LOW"
	}
	return "UNKNOWN"
}

var _ registry.NativeScanner = (*ECR)(nil)

// PreviewResult is one image ECR's lifecycle preview would act on.
type PreviewResult struct {
	Digest string   `json:"digest"`
	Tags   []string `json:"tags"`
	Action string   `json:"action"` // EXPIRE or TRANSITION
	Rule   int      `json:"rule"`
}

// Preview runs ECR's own lifecycle policy preview (StartLifecyclePolicyPreview, then the SDK's
// waiter, then every page of GetLifecyclePolicyPreview).
func (e *ECR) Preview(ctx context.Context, repo, policy string) ([]PreviewResult, error) {
	if _, err := e.client.StartLifecyclePolicyPreview(ctx, &ecr.StartLifecyclePolicyPreviewInput{RepositoryName: aws.String(repo),
		RegistryId: e.registryID(), LifecyclePolicyText: aws.String(policy)}); err != nil {
		return nil, classify(err)
	}
	in := &ecr.GetLifecyclePolicyPreviewInput{RepositoryName: aws.String(repo), RegistryId: e.registryID()}
	if err := ecr.NewLifecyclePolicyPreviewCompleteWaiter(e.client, func(o *ecr.LifecyclePolicyPreviewCompleteWaiterOptions) {
		o.MinDelay = time.Second
		o.Retryable = previewRetryable
	}).Wait(ctx, in, 10*time.Minute); err != nil {
		return nil, classify(fmt.Errorf("waiting for ECR's lifecycle preview of %s: %w", repo, err))
	}
	var out []PreviewResult
	p := ecr.NewGetLifecyclePolicyPreviewPaginator(e.client, in)
	guard := tokenGuard{op: "GetLifecyclePolicyPreview"}
	for p.HasMorePages() {
		page, err := p.NextPage(ctx)
		if err != nil {
			return nil, classify(err)
		}
		if err := guard.next(page.NextToken); err != nil {
			return nil, err
		}
		for i, r := range page.PreviewResults {
			if aws.ToString(r.ImageDigest) == "" {
				return nil, fmt.Errorf("ecr GetLifecyclePolicyPreview: previewResults[%d] has no imageDigest: %w", i, registry.ErrBadAnswer)
			}
			pr := PreviewResult{Digest: aws.ToString(r.ImageDigest), Tags: r.ImageTags, Rule: int(aws.ToInt32(r.AppliedRulePriority))}
			if r.Action != nil {
				pr.Action = string(r.Action.Type)
			}
			out = append(out, pr)
		}
	}
	return out, nil
}
