package harbor_test

import (
	"testing"
	"time"

	"github.com/regctl-dev/regctl/internal/harbor/harbortest"
	"github.com/regctl-dev/regctl/internal/registry"
	"github.com/regctl-dev/regctl/internal/registry/registrytest"
)

// The backend contract on the Harbor emulator (every request and answer checked against Harbor's
// swagger), in the project "contract"; WrongCredentials is the admin with a wrong password.
func TestBackendContract(t *testing.T) {
	registrytest.Run(t, registrytest.Harness{
		Namespace:     "contract",
		ListsUntagged: true,
		TimeSource:    registry.SourceHarbor,
		OnFirstPush:   true,
		Start: func(t *testing.T, now time.Time) registrytest.Fixture {
			s := harbortest.Start(t, harbortest.Options{Now: func() time.Time { return now }})
			const wrong = "wrong-harbor-password"
			return registrytest.Fixture{Registry: open(t, s, s.Username, s.Password), Secret: wrong,
				WrongCredentials: func() (registry.Registry, error) { return open(t, s, s.Username, wrong), nil }}
		},
	})
}
