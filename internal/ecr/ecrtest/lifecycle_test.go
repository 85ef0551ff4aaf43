package ecrtest

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/regctl-dev/regctl/internal/awstest"
)

// The clock of the spec's test vectors (A.4).
var vNow = time.Date(2025, 6, 30, 0, 0, 0, 0, time.UTC)

func daysAgo(n int) time.Time  { return vNow.Add(-time.Duration(n) * 24 * time.Hour) }
func hoursAgo(n int) time.Time { return vNow.Add(-time.Duration(n) * time.Hour) }

func img(id string, pushed time.Time, tags ...string) lcImage {
	return lcImage{Digest: id, Tags: tags, PushedAt: pushed}
}

// rule renders one rule of a policy; sel and act are the members of selection and action.
func rule(prio int, sel, act string) string {
	return fmt.Sprintf(`{"rulePriority":%d,"description":"rule %d","selection":{%s},"action":{%s}}`, prio, prio, sel, act)
}

func policy(rules ...string) string { return `{"rules":[` + strings.Join(rules, ",") + `]}` }

const expire = `"type":"expire"`

// outcome is what a policy does to the images, as "ID: TYPE@priority", sorted.
func outcome(p *lcPolicy, imgs []lcImage, now time.Time) []string {
	out := []string{}
	for _, r := range lcEvaluate(p, imgs, now) {
		out = append(out, fmt.Sprintf("%s: %s@%d", imgs[r.Index].Digest, r.Type, r.Priority))
	}
	sort.Strings(out)
	return out
}

func mustParse(t testing.TB, text string) *lcPolicy {
	t.Helper()
	p, err := parseLifecycle(text)
	if err != nil {
		t.Fatalf("policy rejected: %v\n%s", err, text)
	}
	return p
}

type vector struct {
	id       string
	images   []lcImage
	policies []string // equivalent forms (tagPrefixList and tagPatternList), all must give want
	want     []string
}

// vectors are spec A.4, V01 to V16, with the times and tags given there.
func vectors() []vector {
	v01Images := []lcImage{img("A", daysAgo(10), "beta-1", "prod-1"), img("B", daysAgo(9), "beta-2", "prod-2"), img("C", daysAgo(8), "beta-3")}
	count1 := `"countType":"imageCountMoreThan","countNumber":1`
	prefix := func(list ...string) string {
		b, _ := json.Marshal(list)
		return `"tagStatus":"tagged","tagPrefixList":` + string(b)
	}
	pattern := func(list ...string) string {
		b, _ := json.Marshal(list)
		return `"tagStatus":"tagged","tagPatternList":` + string(b)
	}
	archive := `"type":"transition","targetStorageClass":"archive"`
	archived := func(id string, archivedAt time.Time) lcImage {
		return lcImage{Digest: id, PushedAt: daysAgo(900), LastArchivedAt: archivedAt, Archived: true}
	}
	return []vector{
		{"V01", v01Images, []string{
			policy(rule(1, prefix("prod")+","+count1, expire), rule(2, prefix("beta")+","+count1, expire)),
			policy(rule(1, pattern("prod*")+","+count1, expire), rule(2, pattern("beta*")+","+count1, expire)),
		}, []string{"A: EXPIRE@1"}},
		{"V02", v01Images, []string{
			policy(rule(1, prefix("beta")+","+count1, expire), rule(2, prefix("prod")+","+count1, expire)),
			policy(rule(1, pattern("beta*")+","+count1, expire), rule(2, pattern("prod*")+","+count1, expire)),
		}, []string{"A: EXPIRE@1", "B: EXPIRE@1"}},
		{"V03", []lcImage{img("A", daysAgo(12), "alpha-1"), img("B", daysAgo(11), "beta-1"), img("C", daysAgo(10), "alpha-2", "beta-2"),
			img("D", daysAgo(4), "alpha-3"), img("E", daysAgo(3), "beta-3"), img("F", daysAgo(2), "alpha-4", "beta-4")}, []string{
			policy(rule(1, prefix("alpha", "beta")+`,"countType":"sinceImagePushed","countUnit":"days","countNumber":5`, expire)),
			policy(rule(1, pattern("alpha*", "beta*")+`,"countType":"sinceImagePushed","countUnit":"days","countNumber":5`, expire)),
		}, []string{"C: EXPIRE@1"}},
		{"V04", []lcImage{img("A", daysAgo(10), "alpha-1", "beta-1", "gamma-1"), img("B", daysAgo(9), "alpha-2", "beta-2"),
			img("C", daysAgo(8), "alpha-3", "beta-3", "gamma-2")}, []string{
			policy(rule(1, prefix("alpha", "beta")+","+count1, expire)),
			policy(rule(1, pattern("alpha*", "beta*")+","+count1, expire)),
		}, []string{"A: EXPIRE@1", "B: EXPIRE@1"}},
		{"V05", []lcImage{img("A", daysAgo(4), "alpha-1"), img("B", daysAgo(3), "beta-1"), img("C", daysAgo(2)), img("D", daysAgo(1), "alpha-2")}, []string{
			policy(rule(1, `"tagStatus":"any",`+count1, expire)),
		}, []string{"A: EXPIRE@1", "B: EXPIRE@1", "C: EXPIRE@1"}},
		{"V06", []lcImage{img("A", daysAgo(4), "alpha-1", "beta-1"), img("B", daysAgo(3)), img("C", daysAgo(2), "alpha-2"),
			img("D", hoursAgo(24), "gitsha-1"), img("E", hoursAgo(23))}, []string{
			policy(rule(1, prefix("alpha")+","+count1, expire), rule(2, `"tagStatus":"untagged","countType":"sinceImagePushed","countUnit":"days","countNumber":1`, expire),
				rule(3, `"tagStatus":"any",`+count1, expire)),
			policy(rule(1, pattern("alpha*")+","+count1, expire), rule(2, `"tagStatus":"untagged","countType":"sinceImagePushed","countUnit":"days","countNumber":1`, expire),
				rule(3, `"tagStatus":"any",`+count1, expire)),
		}, []string{"A: EXPIRE@1", "B: EXPIRE@2", "D: EXPIRE@3"}},
		{"V07", []lcImage{img("P1", daysAgo(5), "prod"), img("P2", daysAgo(4), "production-team1"), img("P3", daysAgo(3), "preprod"),
			img("P4", daysAgo(2), "repo-production")}, []string{
			policy(rule(1, pattern("prod*")+","+count1, expire)),
		}, []string{"P1: EXPIRE@1"}},
		{"V08", []lcImage{img("X", daysAgo(40), "v1.0"), img("Y", daysAgo(40), "v10.2"), img("Z", daysAgo(40), "v2.0")}, []string{
			policy(rule(1, prefix("v1")+`,"countType":"sinceImagePushed","countUnit":"days","countNumber":30`, expire)),
		}, []string{"X: EXPIRE@1", "Y: EXPIRE@1"}},
		{"V10", []lcImage{img("U1", daysAgo(3)), img("U2", daysAgo(2)), img("U3", daysAgo(1)), img("T1", daysAgo(10), "latest")}, []string{
			policy(rule(1, `"tagStatus":"untagged",`+count1, expire)),
		}, []string{"U1: EXPIRE@1", "U2: EXPIRE@1"}},
		{"V14", []lcImage{
			{Digest: "H", Tags: []string{"a"}, PushedAt: daysAgo(120), LastPulledAt: daysAgo(5)},
			{Digest: "N", Tags: []string{"b"}, PushedAt: daysAgo(120)},
			{Digest: "R", Tags: []string{"c"}, PushedAt: daysAgo(200), LastPulledAt: daysAgo(150), LastActivatedAt: daysAgo(100)},
		}, []string{
			policy(rule(1, `"tagStatus":"any","countType":"sinceImagePulled","countUnit":"days","countNumber":90`, archive)),
		}, []string{"N: TRANSITION@1", "R: TRANSITION@1"}},
		{"V15", []lcImage{archived("X", daysAgo(400)), archived("Y", daysAgo(100)), img("Z", daysAgo(500))}, []string{
			policy(rule(1, `"tagStatus":"any","storageClass":"archive","countType":"sinceImageTransitioned","countUnit":"days","countNumber":365`, expire)),
		}, []string{"X: EXPIRE@1"}},
		{"V16", []lcImage{img("S", daysAgo(40), "x"), img("T", daysAgo(10), "y"), archived("Q", daysAgo(400))}, []string{
			policy(rule(1, `"tagStatus":"any","countType":"sinceImagePushed","countUnit":"days","countNumber":30`, archive),
				rule(2, `"tagStatus":"any","storageClass":"archive","countType":"sinceImageTransitioned","countUnit":"days","countNumber":365`, expire)),
		}, []string{"Q: EXPIRE@2", "S: TRANSITION@1"}},
	}
}

func TestLifecycleVectors(t *testing.T) {
	for _, v := range vectors() {
		for i, text := range v.policies {
			p := mustParse(t, text)
			if got := outcome(p, v.images, vNow); !slices.Equal(got, v.want) {
				t.Errorf("%s (form %d): got %v, want %v", v.id, i+1, got, v.want)
			}
			// The order images are listed in does not matter.
			rev := slices.Clone(v.images)
			slices.Reverse(rev)
			if got := outcome(p, rev, vNow); !slices.Equal(got, v.want) {
				t.Errorf("%s (form %d), images reversed: got %v, want %v", v.id, i+1, got, v.want)
			}
		}
	}
}

// The consequences of A.3.2 and the quirks the emulator models, one assertion each.
func TestLifecycleSemantics(t *testing.T) {
	any30 := `"tagStatus":"any","countType":"sinceImagePushed","countUnit":"days","countNumber":30`
	cases := []struct {
		name   string
		policy string
		images []lcImage
		want   []string
	}{
		{"an image a higher-priority rule keeps is immune to later rules",
			policy(rule(1, `"tagStatus":"tagged","tagPrefixList":["prod"],"countType":"imageCountMoreThan","countNumber":5`, expire), rule(2, any30, expire)),
			[]lcImage{img("old-prod", daysAgo(300), "prod-1"), img("old-dev", daysAgo(300), "dev-1")},
			[]string{"old-dev: EXPIRE@2"}},
		{"an image owned by an earlier rule still takes a slot in a later count",
			policy(rule(1, `"tagStatus":"tagged","tagPrefixList":["prod"],"countType":"sinceImagePushed","countUnit":"days","countNumber":365`, expire),
				rule(2, `"tagStatus":"any","countType":"imageCountMoreThan","countNumber":1`, expire)),
			[]lcImage{img("new-prod", daysAgo(1), "prod-2"), img("dev", daysAgo(2), "dev-1")},
			[]string{"dev: EXPIRE@2"}},
		{"list entries may be matched by different tags; the whole image goes",
			policy(rule(1, `"tagStatus":"tagged","tagPatternList":["*-rc","v*"],"countType":"sinceImagePushed","countUnit":"days","countNumber":7`, expire)),
			[]lcImage{img("both", daysAgo(8), "v2", "x-rc"), img("one", daysAgo(8), "v3"), img("young", daysAgo(6), "v4", "y-rc")},
			[]string{"both: EXPIRE@1"}},
		{"a tagged rule never selects an untagged image",
			policy(rule(1, `"tagStatus":"tagged","tagPatternList":["*"],"countType":"sinceImagePushed","countUnit":"days","countNumber":1`, expire)),
			[]lcImage{img("untagged", daysAgo(5)), img("tagged", daysAgo(5), "t")},
			[]string{"tagged: EXPIRE@1"}},
		{"older than N days is strict: exactly N days old stays",
			policy(rule(1, any30, expire)),
			[]lcImage{img("exactly", daysAgo(30)), img("older", daysAgo(30).Add(-time.Second))},
			[]string{"older: EXPIRE@1"}},
		{"equal push times rank by digest, the smaller one as newer",
			policy(rule(1, `"tagStatus":"any","countType":"imageCountMoreThan","countNumber":1`, expire)),
			[]lcImage{img("sha256:bb", daysAgo(3)), img("sha256:aa", daysAgo(3)), img("sha256:cc", daysAgo(3))},
			[]string{"sha256:bb: EXPIRE@1", "sha256:cc: EXPIRE@1"}},
		{"a restored image ranks and ages by its restore, not its push (rule 8)",
			policy(rule(1, `"tagStatus":"any","countType":"imageCountMoreThan","countNumber":1`, expire)),
			[]lcImage{{Digest: "restored", Tags: []string{"r"}, PushedAt: daysAgo(400), LastActivatedAt: daysAgo(1)}, img("pushed", daysAgo(10), "p")},
			[]string{"pushed: EXPIRE@1"}},
		{"re-tagging does not reset age: only the push time counts",
			policy(rule(1, `"tagStatus":"tagged","tagPrefixList":["release"],"countType":"sinceImagePushed","countUnit":"days","countNumber":30`, expire)),
			[]lcImage{img("promoted", daysAgo(60), "release-2025-06-29", "old")},
			[]string{"promoted: EXPIRE@1"}},
		{"an image referenced by a live manifest list is neither expired nor taken by a later rule (rule 6)",
			policy(rule(1, `"tagStatus":"untagged","countType":"sinceImagePushed","countUnit":"days","countNumber":1`, expire), rule(2, any30, expire)),
			[]lcImage{{Digest: "child", PushedAt: daysAgo(90), InLiveIndex: true}, img("orphan", daysAgo(90))},
			[]string{"orphan: EXPIRE@1"}},
		{"sinceImagePulled: a pull after the last restore counts, an earlier one does not",
			policy(rule(1, `"tagStatus":"any","countType":"sinceImagePulled","countUnit":"days","countNumber":30`, `"type":"transition","targetStorageClass":"archive"`)),
			[]lcImage{{Digest: "pulled-after", PushedAt: daysAgo(300), LastActivatedAt: daysAgo(100), LastPulledAt: daysAgo(10)},
				{Digest: "pulled-before", PushedAt: daysAgo(300), LastActivatedAt: daysAgo(40), LastPulledAt: daysAgo(200)}},
			[]string{"pulled-before: TRANSITION@1"}},
		{"rules of one storage class never see the other's images",
			policy(rule(1, `"tagStatus":"any","countType":"imageCountMoreThan","countNumber":1`, expire)),
			[]lcImage{{Digest: "archived", PushedAt: daysAgo(50), Archived: true, LastArchivedAt: daysAgo(40)}, img("a", daysAgo(2)), img("b", daysAgo(1))},
			[]string{"a: EXPIRE@1"}},
		{"an archived image without a recorded archive time is not aged",
			policy(rule(1, `"tagStatus":"any","storageClass":"archive","countType":"sinceImageTransitioned","countUnit":"days","countNumber":90`, expire)),
			[]lcImage{{Digest: "unknown", PushedAt: daysAgo(500), Archived: true}},
			nil},
		{"rules are applied by priority, not by their order in the document",
			policy(rule(7, any30, expire), rule(3, `"tagStatus":"tagged","tagPrefixList":["keep"],"countType":"imageCountMoreThan","countNumber":9`, expire)),
			[]lcImage{img("kept", daysAgo(90), "keep-me"), img("gone", daysAgo(90), "other")},
			[]string{"gone: EXPIRE@7"}},
	}
	for _, c := range cases {
		p := mustParse(t, c.policy)
		if c.want == nil {
			c.want = []string{}
		}
		if got := outcome(p, c.images, vNow); !slices.Equal(got, c.want) {
			t.Errorf("%s: got %v, want %v", c.name, got, c.want)
		}
	}
}

func TestWildcard(t *testing.T) {
	for _, c := range []struct {
		pattern, tag string
		want         bool
	}{
		{"prod*", "prod", true}, {"prod*", "prod1", true}, {"prod*", "production-team1", true}, {"prod*", "preprod", false},
		{"*prod*", "repo-production", true}, {"*prod*", "prod-team", true}, {"*prod*", "pro", false},
		{"latest", "latest", true}, {"latest", "latest1", false}, {"*", "", true}, {"*", "x", true},
		{"a*b*c", "abc", true}, {"a*b*c", "aXbYc", true}, {"a*b*c", "acb", false}, {"a*bc", "abcbc", true},
		{"*ab*ab", "abab", true}, {"*ab*ab", "aba", false}, {"a**b", "ab", true}, {"*test*1*2*3", "my-test-1-2-3", true},
		{"v1.*", "v1.0", true}, {"v1.*", "v10.2", false}, {"*-1", "beta-1", true}, {"*-1", "beta-10", false},
	} {
		if got := wildcard(c.pattern, c.tag); got != c.want {
			t.Errorf("wildcard(%q, %q) = %v", c.pattern, c.tag, got)
		}
	}
}

// Malformed documents: spec A.4 E01 to E15 and the schema, each with where and what ECR says.
func TestLifecycleValidation(t *testing.T) {
	sel := func(s string) string { return policy(rule(1, s, expire)) }
	untagged7 := `"tagStatus":"untagged","countType":"sinceImagePushed","countUnit":"days","countNumber":7`
	anyCount := `"tagStatus":"any","countType":"imageCountMoreThan","countNumber":3`
	tagged := func(list string) string {
		return `"tagStatus":"tagged",` + list + `,"countType":"imageCountMoreThan","countNumber":3`
	}
	archiveExpire := func(n int) string {
		return fmt.Sprintf(`"tagStatus":"any","storageClass":"archive","countType":"sinceImageTransitioned","countUnit":"days","countNumber":%d`, n)
	}
	transition := `"type":"transition","targetStorageClass":"archive"`
	var fifty []string
	for i := 1; i <= 51; i++ {
		fifty = append(fifty, rule(i, fmt.Sprintf(`"tagStatus":"tagged","tagPrefixList":["p%d"],"countType":"imageCountMoreThan","countNumber":1`, i), expire))
	}
	cases := []struct {
		id, text, pointer, msg string
	}{
		{"E01", policy(rule(1, untagged7, expire), rule(1, tagged(`"tagPrefixList":["prod"]`), expire)), "/rules/1/rulePriority", "rulePriority 1 is used by more than one rule"},
		{"E02", policy(rule(1, anyCount, expire), rule(2, tagged(`"tagPrefixList":["prod"]`), expire)), "/rules/0/rulePriority", "tagStatus any must have the highest rulePriority"},
		{"E03", sel(`"tagStatus":"tagged","countType":"imageCountMoreThan","countNumber":3`), "/rules/0/selection", "tagPrefixList or tagPatternList is required when tagStatus is tagged"},
		{"E04", sel(tagged(`"tagPrefixList":["prod"],"tagPatternList":["prod*"]`)), "/rules/0/selection", "either tagPatternList or tagPrefixList, but not both"},
		{"E05 untagged", sel(`"tagStatus":"untagged","tagPrefixList":["prod"],"countType":"imageCountMoreThan","countNumber":3`), "/rules/0/selection", "only allowed when tagStatus is tagged"},
		{"E05 any", sel(`"tagStatus":"any","tagPatternList":["*"],"countType":"imageCountMoreThan","countNumber":3`), "/rules/0/selection", "only allowed when tagStatus is tagged"},
		{"E06", sel(`"tagStatus":"any","countType":"imageCountMoreThan","countUnit":"days","countNumber":3`), "/rules/0/selection", errOneOf},
		{"E07", sel(`"tagStatus":"any","countType":"imageCountMoreThan","countNumber":0`), "/rules/0/selection/countNumber", "numeric instance is lower than the required minimum (minimum: 1, found: 0)"},
		{"E08", sel(tagged(`"tagPatternList":["test*1*2*3*4*5*6"]`)), "/rules/0/selection/tagPatternList/0", "at most 4 wildcards"},
		{"E09", policy(rule(1, `"tagStatus":"any","countType":"sinceImagePulled","countUnit":"days","countNumber":30`, expire)), "/rules/0/action", "sinceImagePulled can only be used with action type transition"},
		{"E10 standard", sel(`"tagStatus":"any","countType":"sinceImageTransitioned","countUnit":"days","countNumber":365`), "/rules/0/selection", "requires storageClass archive"},
		{"E10 under 90 days", sel(archiveExpire(89)), "/rules/0/selection/countNumber", "minimum of 90 days"},
		{"E11", policy(rule(1, `"tagStatus":"any","countType":"sinceImagePushed","countUnit":"days","countNumber":30`, `"type":"transition"`)), "/rules/0/action", errOneOf},
		{"E12", policy(rule(1, untagged7, expire), rule(2, `"tagStatus":"untagged","countType":"imageCountMoreThan","countNumber":3`, expire)), "/rules/1/selection", "only one rule selecting storage class standard is allowed to select untagged images"},
		{"E13 rules", policy(fifty...), "/rules", "array is too long: must have at most 50 elements but instance has 51 elements"},
		{"E14 targetStorageClass", policy(rule(1, anyCount, expire+`,"targetStorageClass":null`)), "/rules/0/action", "instance failed to match exactly one schema (matched 0 out of 2)"},
		{"E14 countUnit", sel(`"tagStatus":"any","countType":"imageCountMoreThan","countUnit":null,"countNumber":3`), "/rules/0/selection", errOneOf},
		{"E14 storageClass", sel(`"tagStatus":"any","storageClass":null,"countType":"imageCountMoreThan","countNumber":3`), "/rules/0/selection/storageClass", `instance type (null) does not match any allowed primitive type (allowed: ["string"])`},
		{"E14 description", policy(`{"rulePriority":1,"description":null,"selection":{` + anyCount + `},"action":{` + expire + `}}`), "/rules/0/description", "instance type (null)"},
		{"E15", sel(`"tagStatus":"any","storageClass":"archive","countType":"sinceImagePushed","countUnit":"days","countNumber":30`), "/rules/0/selection", "storageClass archive is only supported with countType sinceImageTransitioned"},
		{"sinceImageTransitioned with transition", policy(rule(1, archiveExpire(90), transition)), "/rules/0/action", "sinceImageTransitioned can only be used with action type expire"},
		{"age without countUnit", sel(`"tagStatus":"any","countType":"sinceImagePushed","countNumber":3`), "/rules/0/selection", errOneOf},
		{"countUnit hours", sel(`"tagStatus":"any","countType":"sinceImagePushed","countUnit":"hours","countNumber":3`), "/rules/0/selection", errOneOf},
		{"expire with a target", policy(rule(1, anyCount, expire+`,"targetStorageClass":"archive"`)), "/rules/0/action", errOneOf},
		{"duplicate tag list", policy(rule(1, tagged(`"tagPrefixList":["prod","v"]`), expire), rule(2, tagged(`"tagPrefixList":["v","prod","v"]`), expire)), "/rules/1/selection", "unique set of tag prefixes"},
		{"second any rule", policy(rule(1, anyCount, expire), rule(2, anyCount, expire)), "/rules/0/rulePriority", "rule 2 comes after it"},
		{"not JSON", `{"rules":[`, "", "not valid JSON"},
		{"trailing data", policy(rule(1, anyCount, expire)) + `{}`, "", "data after the document"},
		{"top level array", `[]`, "", `instance type (array) does not match any allowed primitive type (allowed: ["object"])`},
		{"no rules", `{}`, "", `object has missing required properties (["rules"])`},
		{"empty rules", `{"rules":[]}`, "/rules", "array is too short"},
		{"unknown member", sel(anyCount + `,"countnumber":3`), "/rules/0/selection", `object instance has properties which are not allowed by the schema: ["countnumber"]`},
		{"unknown top-level member", `{"rules":[` + rule(1, anyCount, expire) + `],"version":1}`, "", `not allowed by the schema: ["version"]`},
		{"missing action", `{"rules":[{"rulePriority":1,"selection":{` + anyCount + `}}]}`, "/rules/0", `object has missing required properties (["action"])`},
		{"missing countNumber", sel(`"tagStatus":"any","countType":"imageCountMoreThan"`), "/rules/0/selection", `missing required properties (["countNumber"])`},
		{"string count", sel(`"tagStatus":"any","countType":"imageCountMoreThan","countNumber":"3"`), "/rules/0/selection/countNumber", `instance type (string) does not match any allowed primitive type (allowed: ["integer"])`},
		{"fractional literal", sel(`"tagStatus":"any","countType":"imageCountMoreThan","countNumber":3.0`), "/rules/0/selection/countNumber", `instance type (number)`},
		{"exponent literal", sel(`"tagStatus":"any","countType":"imageCountMoreThan","countNumber":1e1`), "/rules/0/selection/countNumber", `instance type (number)`},
		{"int32 overflow", sel(`"tagStatus":"any","countType":"imageCountMoreThan","countNumber":2147483648`), "/rules/0/selection/countNumber", "greater than the required maximum (maximum: 2147483647, found: 2147483648)"},
		{"negative priority", policy(`{"rulePriority":-99999999999999999999,"selection":{` + anyCount + `},"action":{` + expire + `}}`), "/rules/0/rulePriority", "lower than the required minimum"},
		{"priority 0", policy(rule(0, anyCount, expire)), "/rules/0/rulePriority", "(minimum: 1, found: 0)"},
		{"enum is case-sensitive", sel(`"tagStatus":"TAGGED","tagPrefixList":["p"],"countType":"imageCountMoreThan","countNumber":3`), "/rules/0/selection/tagStatus",
			`instance value ("TAGGED") not found in enum (possible values: ["tagged","untagged","any"])`},
		{"unknown countType", sel(`"tagStatus":"any","countType":"sinceImageCreated","countUnit":"days","countNumber":3`), "/rules/0/selection/countType", `not found in enum`},
		{"unknown action", policy(rule(1, anyCount, `"type":"delete"`)), "/rules/0/action/type", `instance value ("delete") not found in enum (possible values: ["expire","transition"])`},
		{"target standard", policy(rule(1, anyCount, `"type":"transition","targetStorageClass":"standard"`)), "/rules/0/action", errOneOf},
		{"empty list", sel(tagged(`"tagPrefixList":[]`)), "/rules/0/selection/tagPrefixList", "array is too short"},
		{"empty entry", sel(tagged(`"tagPatternList":["prod*",""]`)), "/rules/0/selection/tagPatternList/1", "is too short"},
		{"number in list", sel(tagged(`"tagPrefixList":[1]`)), "/rules/0/selection/tagPrefixList/0", `instance type (integer)`},
		{"selection not an object", `{"rules":[{"rulePriority":1,"selection":"any","action":{"type":"expire"}}]}`, "/rules/0/selection", `instance type (string)`},
	}
	for _, c := range cases {
		p, err := parseLifecycle(c.text)
		if err == nil {
			t.Errorf("%s: accepted: %+v", c.id, p)
			continue
		}
		if err.Pointer != c.pointer || !strings.Contains(err.Msg, c.msg) {
			t.Errorf("%s: got %v, want %q at %q", c.id, err, c.msg, c.pointer)
		}
	}
}

// Documents the rules allow, including the edge of each constraint.
func TestLifecycleValidDocuments(t *testing.T) {
	for name, text := range map[string]string{
		"4 wildcards (the docs' valid example)": policy(rule(1, `"tagStatus":"tagged","tagPatternList":["*test*1*2*3","test*1*2*3*"],"countType":"imageCountMoreThan","countNumber":1`, expire)),
		"an any rule per storage class (the docs' archive example)": policy(
			rule(1, `"tagStatus":"any","countType":"sinceImagePushed","countUnit":"days","countNumber":30`, `"type":"transition","targetStorageClass":"archive"`),
			rule(2, `"tagStatus":"any","storageClass":"archive","countType":"sinceImageTransitioned","countUnit":"days","countNumber":90`, expire)),
		"untagged and any in one policy (the docs' Example B)": policy(
			rule(1, `"tagStatus":"untagged","countType":"sinceImagePushed","countUnit":"days","countNumber":1`, expire),
			rule(2, `"tagStatus":"any","countType":"imageCountMoreThan","countNumber":1`, expire)),
		"a prefix list and an equivalent pattern list": policy(
			rule(1, `"tagStatus":"tagged","tagPrefixList":["prod"],"countType":"imageCountMoreThan","countNumber":1`, expire),
			rule(2, `"tagStatus":"tagged","tagPatternList":["prod*"],"countType":"imageCountMoreThan","countNumber":2`, expire)),
		"explicit storageClass standard, no description, sparse priorities": `{"rules":[{"rulePriority":10,"selection":{"tagStatus":"any","storageClass":"standard","countType":"imageCountMoreThan","countNumber":2147483647},"action":{"type":"expire"}}]}`,
		"imageCountMoreThan with transition":                                policy(rule(1, `"tagStatus":"any","countType":"imageCountMoreThan","countNumber":5`, `"type":"transition","targetStorageClass":"archive"`)),
		"50 rules": func() string {
			var rs []string
			for i := 1; i <= 50; i++ {
				rs = append(rs, rule(i, fmt.Sprintf(`"tagStatus":"tagged","tagPrefixList":["p%d"],"countType":"imageCountMoreThan","countNumber":1`, i), expire))
			}
			return policy(rs...)
		}(),
		"duplicate keys: the last one wins": `{"rules":[{"rulePriority":1,"rulePriority":2,"selection":{"tagStatus":"any","countType":"imageCountMoreThan","countNumber":1},"action":{"type":"expire"}}]}`,
	} {
		if _, err := parseLifecycle(text); err != nil {
			t.Errorf("%s: rejected: %v", name, err)
		}
	}
	p := mustParse(t, `{"rules":[{"rulePriority":1,"rulePriority":2,"selection":{"tagStatus":"any","countType":"imageCountMoreThan","countNumber":1},"action":{"type":"expire"}}]}`)
	if p.Rules[0].Priority != 2 {
		t.Errorf("duplicate key: priority %d", p.Rules[0].Priority)
	}
}

// The API-level checks: the text's length (E13) is counted in characters, and every failure is
// an InvalidParameterException in ECR's wording.
func TestLifecycleText(t *testing.T) {
	valid := policy(rule(1, `"tagStatus":"untagged","countType":"sinceImagePushed","countUnit":"days","countNumber":7`, expire))
	pad := func(n int) string { return strings.Repeat(" ", n) }
	for _, c := range []struct {
		name, text, msg string
	}{
		{"99 characters", pad(99-len(`{"rules":[]}`)) + `{"rules":[]}`, "Invalid parameter at 'lifecyclePolicyText' failed to satisfy constraint: 'Member must have length between 100 and 30720'"},
		{"30721 characters", valid + pad(30721-len(valid)), "Member must have length between 100 and 30720"},
		{"invalid document", `{"rules":[` + rule(1, `"tagStatus":"any","countType":"imageCountMoreThan","countNumber":0`, expire) + `]}`,
			"Invalid parameter at 'LifecyclePolicyText' failed to satisfy constraint: 'Lifecycle policy validation failure: numeric instance is lower than the required minimum (minimum: 1, found: 0)'"},
		{"null target", policy(rule(1, `"tagStatus":"any","countType":"imageCountMoreThan","countNumber":10`, expire+`,"targetStorageClass":null`)),
			"Invalid parameter at 'LifecyclePolicyText' failed to satisfy constraint: 'Lifecycle policy validation failure: instance failed to match exactly one schema (matched 0 out of 2)'"},
	} {
		_, err := lifecycleText(c.text)
		var ae *awstest.Error
		if !errors.As(err, &ae) || ae.Type != "InvalidParameterException" || !strings.Contains(ae.Message, c.msg) {
			t.Errorf("%s: %v", c.name, err)
		}
	}
	if _, err := lifecycleText(valid + pad(30720-len(valid))); err != nil {
		t.Errorf("30720 characters: %v", err)
	}
	// Characters, not bytes: 30720 characters in some 60,000 bytes are within the limit, one more is not.
	long := func(chars int) string {
		head, tail := `{"rules":[{"rulePriority":1,"description":"`, `","selection":{"tagStatus":"any","countType":"imageCountMoreThan","countNumber":1},"action":{"type":"expire"}}]}`
		return head + strings.Repeat("é", chars-len(head)-len(tail)) + tail
	}
	if text := long(30720); len([]rune(text)) != 30720 || len(text) < 60000 {
		t.Fatalf("test text: %d characters, %d bytes", len([]rune(text)), len(text))
	} else if _, err := lifecycleText(text); err != nil {
		t.Errorf("30720 characters in more bytes: %v", err)
	}
	if _, err := lifecycleText(long(30721)); err == nil {
		t.Error("30721 characters accepted")
	}
}

// GetLifecyclePolicy answers the document compact, rules ordered by priority, each rule as written.
func TestStoredLifecycle(t *testing.T) {
	text := `{
  "rules": [
    {"rulePriority": 20, "description": "keep 3", "selection": {"tagStatus": "any", "countType": "imageCountMoreThan", "countNumber": 3}, "action": {"type": "expire"}},
    {"action": {"type": "expire"}, "selection": {"countNumber": 14, "countUnit": "days", "countType": "sinceImagePushed", "storageClass": "standard", "tagStatus": "untagged"}, "rulePriority": 5}
  ]
}`
	want := `{"rules":[{"action":{"type":"expire"},"selection":{"countNumber":14,"countUnit":"days","countType":"sinceImagePushed","storageClass":"standard","tagStatus":"untagged"},"rulePriority":5},` +
		`{"rulePriority":20,"description":"keep 3","selection":{"tagStatus":"any","countType":"imageCountMoreThan","countNumber":3},"action":{"type":"expire"}}]}`
	if got := storedLifecycle(text, mustParse(t, text)); got != want {
		t.Errorf("stored:\n%s\nwant:\n%s", got, want)
	}
}

// fuzzImages is a small fixed repository the fuzzer evaluates accepted policies over.
var fuzzImages = []lcImage{
	img("sha256:01", daysAgo(400), "prod-1", "v1.0"), img("sha256:02", daysAgo(40), "beta-2"), img("sha256:03", daysAgo(3)),
	img("sha256:04", daysAgo(3)), {Digest: "sha256:05", PushedAt: daysAgo(200), LastPulledAt: daysAgo(100), Tags: []string{"latest"}},
	{Digest: "sha256:06", PushedAt: daysAgo(900), Archived: true, LastArchivedAt: daysAgo(500)},
	{Digest: "sha256:07", PushedAt: daysAgo(90), InLiveIndex: true},
}

// FuzzParseLifecycle: the parser never panics; what it accepts is stored as compact JSON with the
// rules ordered by priority and parses back to the same rules; evaluating it acts on each image
// at most once, by one of the policy's rules.
func FuzzParseLifecycle(f *testing.F) {
	for _, v := range vectors() {
		for _, p := range v.policies {
			f.Add(p)
		}
	}
	f.Add(`{"rules":[{"rulePriority":1,"selection":{"tagStatus":"any","countType":"imageCountMoreThan","countNumber":1},"action":{"type":"expire","targetStorageClass":null}}]}`)
	f.Add(`{"rules":[{"rulePriority":2,"rulePriority":1,"selection":{"tagStatus":"tagged","tagPatternList":["*a*b*c*d"],"countType":"sinceImagePushed","countUnit":"days","countNumber":9}, "action":{"type":"expire"}}]}`)
	f.Add(`{"rules":[{"rulePriority":1e1,"selection":{},"action":{}}]} `)
	f.Add(`[1, "x", null, {"rules": {"a": -0}}]`)
	f.Fuzz(func(t *testing.T, text string) {
		p, err := parseLifecycle(text)
		if err != nil {
			if err.Msg == "" {
				t.Fatalf("an error without a message: %+v", err)
			}
			return
		}
		stored := storedLifecycle(text, p)
		var compact bytes.Buffer
		if e := json.Compact(&compact, []byte(stored)); e != nil || compact.String() != stored {
			t.Fatalf("stored text is not compact JSON: %v\n%s", e, stored)
		}
		again, err := parseLifecycle(stored)
		if err != nil {
			t.Fatalf("the stored text is rejected: %v\n%s", err, stored)
		}
		want := slices.Clone(p.Rules)
		slices.SortStableFunc(want, func(a, b lcRule) int { return a.Priority - b.Priority })
		if !reflect.DeepEqual(again.Rules, want) {
			t.Fatalf("stored text parses to other rules:\n%+v\n%+v", again.Rules, want)
		}
		prios := map[int]bool{}
		for _, r := range p.Rules {
			prios[r.Priority] = true
		}
		last := -1
		for _, r := range lcEvaluate(p, fuzzImages, vNow) {
			if r.Index <= last || !prios[r.Priority] || (r.Type != "EXPIRE" && r.Type != "TRANSITION") || fuzzImages[r.Index].InLiveIndex {
				t.Fatalf("bad result %+v", r)
			}
			last = r.Index
		}
	})
}
