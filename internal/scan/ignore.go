package scan

import (
	"context"
	"fmt"
	"time"

	"github.com/aquasecurity/trivy/pkg/clock"
	"github.com/aquasecurity/trivy/pkg/result"

	"github.com/regctl-dev/regctl/internal/exitcode"
)

// ExpiredIgnore is an ignore-file entry past its expiry date: it no longer hides anything.
type ExpiredIgnore struct {
	ID        string    `json:"id"`
	ExpiredAt time.Time `json:"expiredAt"`
	Statement string    `json:"statement,omitempty"`
}

// CheckIgnoreFile parses a .trivyignore or .trivyignore.yaml file with trivy's own parser (so both
// formats and their expiry dates mean what they mean to trivy) and lists the expired entries.
func CheckIgnoreFile(ctx context.Context, file string, now time.Time) ([]ExpiredIgnore, error) {
	if file == "" {
		return nil, nil
	}
	// trivy's parser drops entries that expired before its clock; parse at the beginning of time so
	// they are all kept, then compare with now here.
	conf, err := result.ParseIgnoreFile(clock.With(ctx, time.Time{}), file)
	if err != nil {
		return nil, fmt.Errorf("--ignorefile %s: %v: %w", file, err, exitcode.ErrUsage)
	}
	var out []ExpiredIgnore
	for _, group := range []result.IgnoreFindings{conf.Vulnerabilities, conf.Misconfigurations, conf.Secrets, conf.Licenses} {
		for _, f := range group {
			if !f.ExpiredAt.IsZero() && f.ExpiredAt.Before(now) {
				out = append(out, ExpiredIgnore{ID: f.ID, ExpiredAt: f.ExpiredAt, Statement: f.Statement})
			}
		}
	}
	return out, nil
}
