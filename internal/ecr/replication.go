package ecr

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"regexp"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ecr"
	"github.com/aws/aws-sdk-go-v2/service/ecr/types"

	"github.com/regctl-dev/regctl/internal/exitcode"
)

// Replication is ECR's registry replication configuration, in the JSON shape of
// `aws ecr put-replication-configuration --replication-configuration`.
type Replication struct {
	Rules []ReplicationRule `json:"rules"`
}

// ReplicationRule replicates the repositories its filters match to its destinations.
type ReplicationRule struct {
	Destinations      []Destination      `json:"destinations"`
	RepositoryFilters []RepositoryFilter `json:"repositoryFilters,omitempty"`
}

// Destination is a region and registry (account).
type Destination struct {
	Region     string `json:"region"`
	RegistryID string `json:"registryId"`
}

// RepositoryFilter selects repositories by name prefix.
type RepositoryFilter struct {
	Filter     string `json:"filter"`
	FilterType string `json:"filterType"`
}

var (
	regionRE  = regexp.MustCompile(`^[a-z]{2}(-[a-z]+)+-\d+$`)
	accountRE = regexp.MustCompile(`^\d{12}$`)
	filterRE  = regexp.MustCompile(`^(?:[a-z0-9]+(?:[._-][a-z0-9]+)*/)*[a-z0-9]+(?:[._-][a-z0-9]+)*$`)
)

// ParseReplication decodes strictly (unknown fields, trailing data) and checks ECR's constraints:
// 1–10 rules, 1–25 destinations each, a region and a 12-digit registry id per destination, at most
// 100 PREFIX_MATCH filters of valid repository-name prefixes. Every problem names its path.
func ParseReplication(data []byte) (*Replication, error) {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	var r Replication
	if err := dec.Decode(&r); err != nil {
		return nil, fmt.Errorf("replication configuration: %v: %w", err, exitcode.ErrUsage)
	}
	if dec.More() {
		return nil, fmt.Errorf("replication configuration: trailing data: %w", exitcode.ErrUsage)
	}
	var errs []string
	bad := func(path, format string, args ...any) { errs = append(errs, path+": "+fmt.Sprintf(format, args...)) }
	if len(r.Rules) == 0 || len(r.Rules) > 10 {
		bad("rules", "between 1 and 10 rules, got %d", len(r.Rules))
	}
	for i, rule := range r.Rules {
		p := fmt.Sprintf("rules[%d]", i)
		if len(rule.Destinations) == 0 || len(rule.Destinations) > 25 {
			bad(p+".destinations", "between 1 and 25 destinations, got %d", len(rule.Destinations))
		}
		for j, d := range rule.Destinations {
			dp := fmt.Sprintf("%s.destinations[%d]", p, j)
			if !regionRE.MatchString(d.Region) {
				bad(dp+".region", "%q is not an AWS region (e.g. ap-northeast-2)", d.Region)
			}
			if !accountRE.MatchString(d.RegistryID) {
				bad(dp+".registryId", "%q is not a 12-digit account id", d.RegistryID)
			}
		}
		if len(rule.RepositoryFilters) > 100 {
			bad(p+".repositoryFilters", "at most 100 filters, got %d", len(rule.RepositoryFilters))
		}
		for j, f := range rule.RepositoryFilters {
			fp := fmt.Sprintf("%s.repositoryFilters[%d]", p, j)
			if f.FilterType != "PREFIX_MATCH" {
				bad(fp+".filterType", "%q: only PREFIX_MATCH exists", f.FilterType)
			}
			if len(f.Filter) < 2 || len(f.Filter) > 256 || !filterRE.MatchString(f.Filter) {
				bad(fp+".filter", "%q is not a repository name prefix (2-256 characters, lower case)", f.Filter)
			}
		}
	}
	if len(errs) > 0 {
		return nil, fmt.Errorf("replication configuration:\n  %s: %w", strings.Join(errs, "\n  "), exitcode.ErrUsage)
	}
	return &r, nil
}

func (r *Replication) sdk() *types.ReplicationConfiguration {
	out := &types.ReplicationConfiguration{}
	for _, rule := range r.Rules {
		sr := types.ReplicationRule{}
		for _, d := range rule.Destinations {
			sr.Destinations = append(sr.Destinations, types.ReplicationDestination{Region: aws.String(d.Region), RegistryId: aws.String(d.RegistryID)})
		}
		for _, f := range rule.RepositoryFilters {
			sr.RepositoryFilters = append(sr.RepositoryFilters, types.RepositoryFilter{Filter: aws.String(f.Filter), FilterType: types.RepositoryFilterType(f.FilterType)})
		}
		out.Rules = append(out.Rules, sr)
	}
	return out
}

func fromSDK(c *types.ReplicationConfiguration) *Replication {
	r := &Replication{Rules: []ReplicationRule{}}
	if c == nil {
		return r
	}
	for _, sr := range c.Rules {
		rule := ReplicationRule{}
		for _, d := range sr.Destinations {
			rule.Destinations = append(rule.Destinations, Destination{Region: aws.ToString(d.Region), RegistryID: aws.ToString(d.RegistryId)})
		}
		for _, f := range sr.RepositoryFilters {
			rule.RepositoryFilters = append(rule.RepositoryFilters, RepositoryFilter{Filter: aws.ToString(f.Filter), FilterType: string(f.FilterType)})
		}
		r.Rules = append(r.Rules, rule)
	}
	return r
}

// GetReplication returns the registry's replication configuration (no rules when there is none).
func (e *ECR) GetReplication(ctx context.Context) (*Replication, error) {
	out, err := e.client.DescribeRegistry(ctx, &ecr.DescribeRegistryInput{})
	if err != nil {
		return nil, classify(err)
	}
	return fromSDK(out.ReplicationConfiguration), nil
}

// PutReplication replaces the registry's replication configuration.
func (e *ECR) PutReplication(ctx context.Context, r *Replication) error {
	_, err := e.client.PutReplicationConfiguration(ctx, &ecr.PutReplicationConfigurationInput{ReplicationConfiguration: r.sdk()})
	return classify(err)
}
