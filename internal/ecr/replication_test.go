package ecr_test

import (
	"context"
	"os"
	"reflect"
	"strings"
	"testing"

	"github.com/regctl-dev/regctl/internal/ecr"
	"github.com/regctl-dev/regctl/internal/exitcode"
)

func TestReplicationRoundTrip(t *testing.T) {
	_, e := open(t)
	raw, _ := os.ReadFile("../../testdata/ecr/ecr-replication-configuration.json")
	r, err := ecr.ParseReplication(raw)
	if err != nil {
		t.Fatalf("the guide's file must parse unmodified: %v", err)
	}
	ctx := context.Background()
	if got, err := e.GetReplication(ctx); err != nil || len(got.Rules) != 0 {
		t.Fatalf("empty: %+v %v", got, err)
	}
	if err := e.PutReplication(ctx, r); err != nil {
		t.Fatal(err)
	}
	got, err := e.GetReplication(ctx)
	if err != nil || !reflect.DeepEqual(got, r) {
		t.Errorf("round trip:\n%+v\n%+v %v", got, r, err)
	}
}

func TestParseReplicationErrors(t *testing.T) {
	for body, want := range map[string]string{
		`{"rules":[]}`: "rules: between 1 and 10",
		`{"rules":[{"destinations":[{"region":"Seoul","registryId":"123456789012"}]}]}`:                                                              "rules[0].destinations[0].region",
		`{"rules":[{"destinations":[{"region":"eu-west-1","registryId":"12"}]}]}`:                                                                    "rules[0].destinations[0].registryId",
		`{"rules":[{"destinations":[{"region":"eu-west-1","registryId":"123456789012"}],"repositoryFilters":[{"filter":"x","filterType":"GLOB"}]}]}`: "rules[0].repositoryFilters[0].filterType",
		`{"rules":[{"destinations":[],"extra":1}]}`:                                                                                                  "unknown field",
	} {
		_, err := ecr.ParseReplication([]byte(body))
		if exitcode.Of(err) != exitcode.Usage || !strings.Contains(err.Error(), want) {
			t.Errorf("%s: %v, want %q", body, err, want)
		}
	}
}

func FuzzParseReplication(f *testing.F) {
	raw, _ := os.ReadFile("../../testdata/ecr/ecr-replication-configuration.json")
	f.Add(raw)
	f.Add([]byte(`{"rules":[{"destinations":[{"region":"eu-west-1","registryId":"123456789012"}]}]}`))
	f.Add([]byte(`{"rules":null}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		r, err := ecr.ParseReplication(data)
		if err != nil {
			if exitcode.Of(err) != exitcode.Usage {
				t.Fatalf("error without exit 2: %v", err)
			}
			return
		}
		if len(r.Rules) == 0 || len(r.Rules) > 10 {
			t.Fatalf("accepted %d rules", len(r.Rules))
		}
	})
}
