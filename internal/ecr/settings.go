package ecr

import (
	"context"
	"fmt"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ecr"

	"github.com/regctl-dev/regctl/internal/exitcode"
	"github.com/regctl-dev/regctl/internal/registry"
)

// RepositorySettings reads a repository's settings back as the spec that would create it: scan on
// push, tag mutability and encryption (resource tags are not read).
func (e *ECR) RepositorySettings(ctx context.Context, repo string) (registry.RepositorySpec, error) {
	out, err := e.client.DescribeRepositories(ctx, &ecr.DescribeRepositoriesInput{RegistryId: e.registryID(), RepositoryNames: []string{repo}})
	if err != nil {
		return registry.RepositorySpec{}, classify(err)
	}
	// Some ECR emulators answer an unknown name with an empty list rather than an error.
	for _, r := range out.Repositories {
		if aws.ToString(r.RepositoryName) != repo {
			continue
		}
		spec := registry.RepositorySpec{TagMutability: string(r.ImageTagMutability)}
		if r.ImageScanningConfiguration != nil {
			spec.ScanOnPush = r.ImageScanningConfiguration.ScanOnPush
		}
		if r.EncryptionConfiguration != nil {
			spec.Encryption = string(r.EncryptionConfiguration.EncryptionType)
			spec.KMSKey = aws.ToString(r.EncryptionConfiguration.KmsKey)
		}
		return spec, nil
	}
	return registry.RepositorySpec{}, exitcode.With(exitcode.NotFound, fmt.Errorf("ecr DescribeRepositories: no repository %s in the answer", repo))
}

var _ registry.RepositoryInspector = (*ECR)(nil)
