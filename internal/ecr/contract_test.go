package ecr_test

import (
	"context"
	"testing"
	"time"

	"github.com/regctl-dev/regctl/internal/awstest"
	"github.com/regctl-dev/regctl/internal/config"
	"github.com/regctl-dev/regctl/internal/ecr"
	"github.com/regctl-dev/regctl/internal/ecr/ecrtest"
	"github.com/regctl-dev/regctl/internal/registry"
	"github.com/regctl-dev/regctl/internal/registry/registrytest"
)

// The backend contract on the ECR emulator; WrongCredentials signs with a wrong secret key.
func TestContract(t *testing.T) {
	registrytest.Run(t, registrytest.Harness{
		ListsUntagged: true,
		TimeSource:    registry.SourceECR,
		Start: func(t *testing.T, now time.Time) registrytest.Fixture {
			srv := ecrtest.Start(t)
			srv.Now = func() time.Time { return now }
			rc := config.Registry{Type: ecr.Type, CAFile: srv.CAFile, Settings: map[string]any{"region": ecrtest.Region, "account": ecrtest.Account, "endpoint": srv.URL}}
			good, err := ecr.Open(context.Background(), "prod", rc, registry.Options{})
			if err != nil {
				t.Fatal(err)
			}
			const wrong = "wrongSecretKeyForTheContractTest000000000"
			return registrytest.Fixture{Registry: good, Secret: wrong, WrongCredentials: func() (registry.Registry, error) {
				t.Setenv("AWS_SECRET_ACCESS_KEY", wrong)
				defer t.Setenv("AWS_SECRET_ACCESS_KEY", awstest.SecretKey)
				return ecr.Open(context.Background(), "prod", rc, registry.Options{})
			}}
		},
	})
}
