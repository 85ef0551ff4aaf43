// Package ecr is the Amazon ECR backend: the control plane through aws-sdk-go-v2 (repositories,
// images with their real push times, deletes, lifecycle and repository policies) and the data plane
// through the generic OCI backend, authenticated with ECR tokens cached until they expire.
package ecr

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"net/http"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
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
	loadOpts := []func(*awsconfig.LoadOptions) error{awsconfig.WithRegion(rc.Region)}
	if rc.Profile != "" {
		loadOpts = append(loadOpts, awsconfig.WithSharedConfigProfile(rc.Profile))
	}
	cfg, err := awsconfig.LoadDefaultConfig(ctx, loadOpts...)
	if err != nil {
		return nil, fmt.Errorf("registries.%s: AWS configuration: %w", name, err)
	}
	client := ecr.NewFromConfig(cfg, func(o *ecr.Options) {
		if rc.Endpoint != "" {
			o.BaseEndpoint = aws.String(rc.Endpoint)
		}
	})
	e := &ECR{name: name, client: client, account: rc.Account, endpoint: rc.Endpoint}
	kc := &tokenKeychain{client: client, registryID: rc.Account}
	host := ""
	if rc.Endpoint != "" || rc.Account == "" {
		if _, err := kc.token(ctx); err != nil {
			return nil, classify(fmt.Errorf("registries.%s: getting an ECR token: %w", name, err))
		}
		host = kc.host
	} else {
		host = rc.Account + ".dkr.ecr." + rc.Region + ".amazonaws.com"
	}
	tr, err := registry.BaseTransport(opts.Transport, rc.Insecure || opts.Insecure, rc.CAFile)
	if err != nil {
		return nil, fmt.Errorf("registries.%s.ca_file: %w", name, err)
	}
	e.OCI = registry.NewOCI(registry.OCIConfig{Name: name, Host: host, Insecure: rc.Insecure || opts.Insecure, Keychain: kc,
		Transport: tr, UserAgent: opts.UserAgent, Logger: opts.Logger, Jobs: opts.Jobs})
	return e, nil
}

func (e *ECR) Type() string { return config.TypeECR }
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
	if len(out.AuthorizationData) == 0 {
		return nil, errors.New("ECR returned no authorization data")
	}
	ad := out.AuthorizationData[0]
	raw, err := base64.StdEncoding.DecodeString(aws.ToString(ad.AuthorizationToken))
	if err != nil {
		return nil, fmt.Errorf("ECR token: %w", err)
	}
	user, pw, ok := strings.Cut(string(raw), ":")
	if !ok {
		return nil, errors.New("ECR token is not user:password")
	}
	k.auth = &authn.Basic{Username: user, Password: pw}
	k.expires = aws.ToTime(ad.ExpiresAt)
	k.host = strings.TrimSuffix(strings.TrimPrefix(strings.TrimPrefix(aws.ToString(ad.ProxyEndpoint), "https://"), "http://"), "/")
	return k.auth, nil
}

func (k *tokenKeychain) Resolve(authn.Resource) (authn.Authenticator, error) {
	return k.token(context.Background())
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
	var api smithy.APIError
	if errors.As(err, &api) {
		switch api.ErrorCode() {
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

// Repositories lists repositories (all pages) whose names start with prefix.
func (e *ECR) Repositories(ctx context.Context, prefix string) ([]string, error) {
	var out []string
	p := ecr.NewDescribeRepositoriesPaginator(e.client, &ecr.DescribeRepositoriesInput{RegistryId: e.registryID()})
	for p.HasMorePages() {
		page, err := p.NextPage(ctx)
		if err != nil {
			return nil, classify(err)
		}
		for _, r := range page.Repositories {
			if n := aws.ToString(r.RepositoryName); strings.HasPrefix(n, prefix) {
				out = append(out, n)
			}
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
	switch {
	case errors.As(err, &nf):
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
			return res, classify(err)
		}
		res.Status, res.Message = registry.StatusCreated, "created"
		return res, nil
	case err != nil:
		return res, classify(err)
	}
	cur := out.Repositories[0]
	if spec.Encryption != "" && cur.EncryptionConfiguration != nil && string(cur.EncryptionConfiguration.EncryptionType) != spec.Encryption {
		return res, exitcode.With(exitcode.Usage, fmt.Errorf("%s: encryption is %s and ECR cannot change it after creation (asked for %s); create a new repository to change it",
			repo, cur.EncryptionConfiguration.EncryptionType, spec.Encryption))
	}
	var changed []string
	if cur.ImageScanningConfiguration == nil || cur.ImageScanningConfiguration.ScanOnPush != spec.ScanOnPush {
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

// Images lists every image ECR has for repo (untagged ones too) with ECR's push and pull times;
// manifests come from the data plane so indexes, platforms and referrers are linked as elsewhere.
func (e *ECR) Images(ctx context.Context, repo string) ([]registry.Image, error) {
	var details []types.ImageDetail
	p := ecr.NewDescribeImagesPaginator(e.client, &ecr.DescribeImagesInput{RepositoryName: aws.String(repo), RegistryId: e.registryID()})
	for p.HasMorePages() {
		page, err := p.NextPage(ctx)
		if err != nil {
			return nil, classify(err)
		}
		details = append(details, page.ImageDetails...)
	}
	tagDigests := map[string]v1.Hash{}
	var digests []v1.Hash
	for _, d := range details {
		h, err := v1.NewHash(aws.ToString(d.ImageDigest))
		if err != nil {
			return nil, err
		}
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
	for _, f := range out.Failures {
		if f.FailureCode == types.ImageFailureCodeImageNotFound {
			return exitcode.With(exitcode.NotFound, fmt.Errorf("%s@%s: %s", repo, digest, aws.ToString(f.FailureReason)))
		}
		return fmt.Errorf("%s@%s: %s: %s", repo, digest, f.FailureCode, aws.ToString(f.FailureReason))
	}
	return nil
}

// GetLifecyclePolicy returns the stored policy text ("" and exit-5 error when there is none).
func (e *ECR) GetLifecyclePolicy(ctx context.Context, repo string) (string, error) {
	out, err := e.client.GetLifecyclePolicy(ctx, &ecr.GetLifecyclePolicyInput{RepositoryName: aws.String(repo), RegistryId: e.registryID()})
	if err != nil {
		return "", classify(err)
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
	if err := ecr.NewImageScanCompleteWaiter(e.client).Wait(ctx, in, 30*time.Minute); err != nil {
		return nil, classify(fmt.Errorf("waiting for the ECR scan of %s@%s: %w", repo, digest, err))
	}
	var out []registry.Finding
	p := ecr.NewDescribeImageScanFindingsPaginator(e.client, in)
	for p.HasMorePages() {
		page, err := p.NextPage(ctx)
		if err != nil {
			return nil, classify(err)
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
	}).Wait(ctx, in, 10*time.Minute); err != nil {
		return nil, classify(fmt.Errorf("waiting for ECR's lifecycle preview of %s: %w", repo, err))
	}
	var out []PreviewResult
	p := ecr.NewGetLifecyclePolicyPreviewPaginator(e.client, in)
	for p.HasMorePages() {
		page, err := p.NextPage(ctx)
		if err != nil {
			return nil, classify(err)
		}
		for _, r := range page.PreviewResults {
			pr := PreviewResult{Digest: aws.ToString(r.ImageDigest), Tags: r.ImageTags, Rule: int(aws.ToInt32(r.AppliedRulePriority))}
			if r.Action != nil {
				pr.Action = string(r.Action.Type)
			}
			out = append(out, pr)
		}
	}
	return out, nil
}
