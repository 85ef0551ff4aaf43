package lifecycle

import (
	"bytes"
	"encoding/json"
	"errors"
	"os"
	"reflect"
	"strconv"
	"strings"
	"testing"
	"unicode/utf8"
)

// seedPolicyPath is the unmodified example policy shipped with the project.
const seedPolicyPath = "../../testdata/lifecycle/ecr-lifecycle-policy.json"

// policyJSON wraps rule objects into a policy document.
func policyJSON(rules ...string) string {
	return `{"rules":[` + strings.Join(rules, ",") + `]}`
}

// Rule snippets used to build test policies. Each is valid on its own.
const (
	ruleProdCount   = `{"rulePriority":1,"selection":{"tagStatus":"tagged","tagPrefixList":["prod"],"countType":"imageCountMoreThan","countNumber":10},"action":{"type":"expire"}}`
	ruleBetaCount2  = `{"rulePriority":2,"selection":{"tagStatus":"tagged","tagPrefixList":["beta"],"countType":"imageCountMoreThan","countNumber":3},"action":{"type":"expire"}}`
	ruleUntagged3   = `{"rulePriority":3,"selection":{"tagStatus":"untagged","countType":"sinceImagePushed","countUnit":"days","countNumber":7},"action":{"type":"expire"}}`
	ruleAnyCount9   = `{"rulePriority":9,"selection":{"tagStatus":"any","countType":"imageCountMoreThan","countNumber":100},"action":{"type":"expire"}}`
	ruleArchiveAny2 = `{"rulePriority":2,"selection":{"tagStatus":"any","storageClass":"archive","countType":"sinceImageTransitioned","countUnit":"days","countNumber":365},"action":{"type":"expire"}}`
	ruleTransition1 = `{"rulePriority":1,"selection":{"tagStatus":"any","countType":"sinceImagePushed","countUnit":"days","countNumber":30},"action":{"type":"transition","targetStorageClass":"archive"}}`
)

// validPolicies must all parse. They double as fuzz seeds.
var validPolicies = map[string]string{
	"count, untagged and any":   policyJSON(ruleProdCount, ruleBetaCount2, ruleUntagged3, ruleAnyCount9),
	"archive and expire (V16)":  policyJSON(ruleTransition1, ruleArchiveAny2),
	"four wildcards per entry":  policyJSON(`{"rulePriority":1,"selection":{"tagStatus":"tagged","tagPatternList":["*test*1*2*3","test*1*2*3*"],"countType":"imageCountMoreThan","countNumber":1},"action":{"type":"expire"}}`),
	"pulled then transition":    policyJSON(`{"rulePriority":5,"description":"archive cold images","selection":{"tagStatus":"any","countType":"sinceImagePulled","countUnit":"days","countNumber":90},"action":{"type":"transition","targetStorageClass":"archive"}}`),
	"explicit standard class":   policyJSON(`{"rulePriority":1,"selection":{"tagStatus":"untagged","storageClass":"standard","countType":"imageCountMoreThan","countNumber":1},"action":{"type":"expire"}}`),
	"prefix and pattern differ": policyJSON(ruleProdCount, `{"rulePriority":2,"selection":{"tagStatus":"tagged","tagPatternList":["prod*"],"countType":"imageCountMoreThan","countNumber":1},"action":{"type":"expire"}}`),
	"same list, other class": policyJSON(
		`{"rulePriority":1,"selection":{"tagStatus":"tagged","tagPrefixList":["prod"],"countType":"imageCountMoreThan","countNumber":1},"action":{"type":"expire"}}`,
		`{"rulePriority":2,"selection":{"tagStatus":"tagged","tagPrefixList":["prod"],"storageClass":"archive","countType":"sinceImageTransitioned","countUnit":"days","countNumber":90},"action":{"type":"expire"}}`),
	"whitespace and unicode": "{\n  \"rules\": [\n    {\n      \"rulePriority\": 7,\n      \"description\": \"caf\u00e9 <&> \\u2028 \\\"q\\\"\",\n" +
		"      \"selection\": {\"tagStatus\": \"any\", \"countType\": \"imageCountMoreThan\", \"countNumber\": 3},\n      \"action\": {\"type\": \"expire\"}\n    }\n  ]\n}\n",
}

// invalidCase is a policy text that Parse must reject with an error at path
// whose message contains msg. errs is the exact number of problems expected
// (0 means 1).
type invalidCase struct {
	name string
	text string
	path string
	msg  string
	errs int
}

var invalidPolicies = []invalidCase{
	// Spec A.4 E01–E15.
	{name: "E01 duplicate priority",
		text: policyJSON(ruleProdCount, strings.Replace(ruleBetaCount2, `"rulePriority":2`, `"rulePriority":1`, 1)),
		path: "rules[1].rulePriority", msg: "duplicate value 1, also used by rules[0]"},
	{name: "E02 any before tagged",
		text: policyJSON(
			`{"rulePriority":1,"selection":{"tagStatus":"any","countType":"imageCountMoreThan","countNumber":5},"action":{"type":"expire"}}`,
			ruleBetaCount2),
		path: "rules[0].rulePriority", msg: `must have the highest rulePriority among the rules on storage class "standard", but rules[1] has rulePriority 2`},
	{name: "E02 any before untagged",
		text: policyJSON(
			`{"rulePriority":1,"selection":{"tagStatus":"any","countType":"imageCountMoreThan","countNumber":5},"action":{"type":"expire"}}`,
			ruleUntagged3),
		path: "rules[0].rulePriority", msg: "highest rulePriority"},
	{name: "E03 tagged without list",
		text: policyJSON(`{"rulePriority":1,"selection":{"tagStatus":"tagged","countType":"imageCountMoreThan","countNumber":1},"action":{"type":"expire"}}`),
		path: "rules[0].selection", msg: `tagStatus "tagged" requires tagPrefixList or tagPatternList`},
	{name: "E04 tagged with both lists",
		text: policyJSON(`{"rulePriority":1,"selection":{"tagStatus":"tagged","tagPrefixList":["a"],"tagPatternList":["b*"],"countType":"imageCountMoreThan","countNumber":1},"action":{"type":"expire"}}`),
		path: "rules[0].selection.tagPatternList", msg: "not allowed together with tagPrefixList"},
	{name: "E05 untagged with prefix list",
		text: policyJSON(`{"rulePriority":1,"selection":{"tagStatus":"untagged","tagPrefixList":["a"],"countType":"imageCountMoreThan","countNumber":1},"action":{"type":"expire"}}`),
		path: "rules[0].selection.tagPrefixList", msg: `not allowed with tagStatus "untagged"`},
	{name: "E05 any with pattern list",
		text: policyJSON(`{"rulePriority":1,"selection":{"tagStatus":"any","tagPatternList":["a*"],"countType":"imageCountMoreThan","countNumber":1},"action":{"type":"expire"}}`),
		path: "rules[0].selection.tagPatternList", msg: `not allowed with tagStatus "any"`},
	{name: "E06 countUnit with imageCountMoreThan",
		text: policyJSON(`{"rulePriority":1,"selection":{"tagStatus":"untagged","countType":"imageCountMoreThan","countUnit":"days","countNumber":1},"action":{"type":"expire"}}`),
		path: "rules[0].selection.countUnit", msg: "not allowed with countType imageCountMoreThan"},
	{name: "E07 countNumber zero",
		text: policyJSON(`{"rulePriority":1,"selection":{"tagStatus":"untagged","countType":"imageCountMoreThan","countNumber":0},"action":{"type":"expire"}}`),
		path: "rules[0].selection.countNumber", msg: "must be a positive integer (at least 1), got 0"},
	{name: "E08 too many wildcards",
		text: policyJSON(`{"rulePriority":1,"selection":{"tagStatus":"tagged","tagPatternList":["ok*","test*1*2*3*4*5*6"],"countType":"imageCountMoreThan","countNumber":1},"action":{"type":"expire"}}`),
		path: "rules[0].selection.tagPatternList[1]", msg: `"test*1*2*3*4*5*6" has 6 wildcards (*); at most 4`},
	{name: "E09 sinceImagePulled with expire",
		text: policyJSON(`{"rulePriority":1,"selection":{"tagStatus":"any","countType":"sinceImagePulled","countUnit":"days","countNumber":90},"action":{"type":"expire"}}`),
		path: "rules[0].selection.countType", msg: `sinceImagePulled can only be used with action type "transition", not "expire"`},
	{name: "E10 sinceImageTransitioned without storage class",
		text: policyJSON(`{"rulePriority":1,"selection":{"tagStatus":"any","countType":"sinceImageTransitioned","countUnit":"days","countNumber":365},"action":{"type":"expire"}}`),
		path: "rules[0].selection.storageClass", msg: `required with countType sinceImageTransitioned; must be "archive"`},
	{name: "E10 sinceImageTransitioned on standard",
		text: policyJSON(`{"rulePriority":1,"selection":{"tagStatus":"any","storageClass":"standard","countType":"sinceImageTransitioned","countUnit":"days","countNumber":365},"action":{"type":"expire"}}`),
		path: "rules[0].selection.storageClass", msg: `must be "archive" with countType sinceImageTransitioned`},
	{name: "E10 sinceImageTransitioned under 90 days",
		text: policyJSON(`{"rulePriority":1,"selection":{"tagStatus":"any","storageClass":"archive","countType":"sinceImageTransitioned","countUnit":"days","countNumber":89},"action":{"type":"expire"}}`),
		path: "rules[0].selection.countNumber", msg: "must be at least 90 with countType sinceImageTransitioned"},
	{name: "E10 sinceImageTransitioned with transition",
		text: policyJSON(`{"rulePriority":1,"selection":{"tagStatus":"any","storageClass":"archive","countType":"sinceImageTransitioned","countUnit":"days","countNumber":90},"action":{"type":"transition","targetStorageClass":"archive"}}`),
		path: "rules[0].selection.countType", msg: `sinceImageTransitioned can only be used with action type "expire"`},
	{name: "E11 transition without target",
		text: policyJSON(`{"rulePriority":1,"selection":{"tagStatus":"any","countType":"sinceImagePushed","countUnit":"days","countNumber":30},"action":{"type":"transition"}}`),
		path: "rules[0].action.targetStorageClass", msg: `required with action type "transition"; must be "archive"`},
	{name: "E12 two untagged rules",
		text: policyJSON(ruleUntagged3, strings.Replace(ruleUntagged3, `"rulePriority":3`, `"rulePriority":4`, 1)),
		path: "rules[1].selection.tagStatus", msg: `only one untagged rule is allowed per storage class; rules[0] already selects untagged images on storage class "standard"`},
	{name: "E13 51 rules", text: manyRules(51), path: "rules", msg: "51 rules; ECR allows at most 50"},
	{name: "E13 text too long",
		text: policyJSON(strings.Replace(ruleProdCount, `"rulePriority":1,`, `"rulePriority":1,"description":"`+strings.Repeat("x", MaxTextLen)+`",`, 1)),
		path: "(root)", msg: "ECR requires 100 to 30720"},
	{name: "E13 text too short", text: `{"rules":[]}`, path: "(root)", msg: "policy text is 12 characters", errs: 2},
	{name: "E14 null targetStorageClass",
		text: policyJSON(`{"rulePriority":1,"selection":{"tagStatus":"any","countType":"imageCountMoreThan","countNumber":1},"action":{"type":"expire","targetStorageClass":null}}`),
		path: "rules[0].action.targetStorageClass", msg: "null is not allowed; omit the field instead"},
	{name: "E15 archive with sinceImagePushed",
		text: policyJSON(`{"rulePriority":1,"selection":{"tagStatus":"any","storageClass":"archive","countType":"sinceImagePushed","countUnit":"days","countNumber":30},"action":{"type":"expire"}}`),
		path: "rules[0].selection.storageClass", msg: `"archive" is only allowed with countType sinceImageTransitioned`},

	// Other constraints of A.2.
	{name: "identical prefix set on one storage class",
		text: policyJSON(
			`{"rulePriority":1,"selection":{"tagStatus":"tagged","tagPrefixList":["prod","v"],"countType":"imageCountMoreThan","countNumber":1},"action":{"type":"expire"}}`,
			`{"rulePriority":2,"selection":{"tagStatus":"tagged","tagPrefixList":["v","prod","v"],"countType":"sinceImagePushed","countUnit":"days","countNumber":9},"action":{"type":"expire"}}`),
		path: "rules[1].selection.tagPrefixList", msg: "same set of entries as rules[0]"},
	{name: "identical pattern set on one storage class",
		text: policyJSON(
			`{"rulePriority":1,"selection":{"tagStatus":"tagged","tagPatternList":["prod*"],"countType":"imageCountMoreThan","countNumber":1},"action":{"type":"expire"}}`,
			`{"rulePriority":2,"selection":{"tagStatus":"tagged","tagPatternList":["prod*"],"countType":"imageCountMoreThan","countNumber":5},"action":{"type":"expire"}}`),
		path: "rules[1].selection.tagPatternList", msg: "same set of entries as rules[0]"},
	{name: "rulePriority zero",
		text: policyJSON(strings.Replace(ruleProdCount, `"rulePriority":1`, `"rulePriority":0`, 1)),
		path: "rules[0].rulePriority", msg: "at least 1"},
	{name: "empty prefix entry",
		text: policyJSON(strings.Replace(ruleProdCount, `["prod"]`, `["prod",""]`, 1)),
		path: "rules[0].selection.tagPrefixList[1]", msg: "must not be empty"},
	{name: "empty list",
		text: policyJSON(strings.Replace(ruleProdCount, `["prod"]`, `[]`, 1)),
		path: "rules[0].selection.tagPrefixList", msg: "must contain at least one entry"},
	{name: "since type without countUnit",
		text: policyJSON(strings.Replace(ruleUntagged3, `"countUnit":"days",`, ``, 1)),
		path: "rules[0].selection.countUnit", msg: "required with countType sinceImagePushed"},
	{name: "countUnit not days",
		text: policyJSON(strings.Replace(ruleUntagged3, `"days"`, `"hours"`, 1)),
		path: "rules[0].selection.countUnit", msg: `invalid value "hours"; must be "days"`},
	{name: "targetStorageClass with expire",
		text: policyJSON(strings.Replace(ruleProdCount, `{"type":"expire"}`, `{"type":"expire","targetStorageClass":"archive"}`, 1)),
		path: "rules[0].action.targetStorageClass", msg: `not allowed with action type "expire"`},
	{name: "unknown enum value with case hint",
		text: policyJSON(strings.Replace(ruleProdCount, `"tagged"`, `"Tagged"`, 1)),
		path: "rules[0].selection.tagStatus", msg: `invalid value "Tagged"; did you mean "tagged"?`},
	{name: "unknown action type",
		text: policyJSON(strings.Replace(ruleProdCount, `"expire"`, `"delete"`, 1)),
		path: "rules[0].action.type", msg: `invalid value "delete"; must be one of "expire" or "transition"`},
	{name: "no rules", text: `{"rules":[]}` + strings.Repeat(" ", 100), path: "rules", msg: "at least one rule is required"},

	// Strict decoding.
	{name: "countNumber as string",
		text: policyJSON(strings.Replace(ruleProdCount, `"countNumber":10`, `"countNumber":"10"`, 1)),
		path: "rules[0].selection.countNumber", msg: `must be an integer, got string "10"`},
	{name: "countNumber fractional",
		text: policyJSON(strings.Replace(ruleProdCount, `"countNumber":10`, `"countNumber":10.5`, 1)),
		path: "rules[0].selection.countNumber", msg: "must be an integer, got 10.5"},
	{name: "countNumber integral float",
		text: policyJSON(strings.Replace(ruleProdCount, `"countNumber":10`, `"countNumber":10.0`, 1)),
		path: "rules[0].selection.countNumber", msg: "must be an integer, got 10.0"},
	{name: "countNumber exponent",
		text: policyJSON(strings.Replace(ruleProdCount, `"countNumber":10`, `"countNumber":1e1`, 1)),
		path: "rules[0].selection.countNumber", msg: "must be an integer, got 1e1"},
	{name: "countNumber beyond 32 bits",
		text: policyJSON(strings.Replace(ruleProdCount, `"countNumber":10`, `"countNumber":4294967296`, 1)),
		path: "rules[0].selection.countNumber", msg: "out of range"},
	{name: "rulePriority as boolean",
		text: policyJSON(strings.Replace(ruleProdCount, `"rulePriority":1`, `"rulePriority":true`, 1)),
		path: "rules[0].rulePriority", msg: "must be an integer, got boolean true"},
	{name: "list of numbers",
		text: policyJSON(strings.Replace(ruleProdCount, `["prod"]`, `["prod",7]`, 1)),
		path: "rules[0].selection.tagPrefixList[1]", msg: "must be a string, got number 7"},
	{name: "list as string",
		text: policyJSON(strings.Replace(ruleProdCount, `["prod"]`, `"prod"`, 1)),
		path: "rules[0].selection.tagPrefixList", msg: `must be an array of strings, got string "prod"`},
	{name: "unknown nested field",
		text: policyJSON(strings.Replace(ruleProdCount, `"countNumber":10`, `"countNumber":10,"foo":1`, 1)),
		path: "rules[0].selection.foo", msg: `unknown field; allowed fields are "tagStatus", "tagPatternList"`},
	{name: "field name in wrong case",
		text: policyJSON(strings.Replace(ruleProdCount, `"rulePriority":1`, `"RulePriority":1`, 1)),
		path: "rules[0].RulePriority", msg: `unknown field (did you mean "rulePriority"?`, errs: 2},
	{name: "unknown top-level field",
		text: `{"rules":[` + ruleProdCount + `],"version":"1"}`,
		path: "version", msg: `unknown field; allowed fields are "rules"`},
	{name: "odd key is quoted in path",
		text: policyJSON(strings.Replace(ruleProdCount, `"action":`, `"a b":1,"action":`, 1)),
		path: `rules[0]["a b"]`, msg: "unknown field"},
	{name: "duplicate key",
		text: policyJSON(strings.Replace(ruleProdCount, `"countNumber":10`, `"countNumber":10,"countNumber":1`, 1)),
		path: "rules[0].selection.countNumber", msg: "duplicate key"},
	{name: "null rules", text: `{"rules":null}` + strings.Repeat(" ", 100), path: "rules", msg: "null is not allowed"},
	{name: "null rule", text: policyJSON(ruleProdCount, "null"), path: "rules[1]", msg: "null is not allowed; expected a rule object"},
	{name: "null list entry",
		text: policyJSON(strings.Replace(ruleProdCount, `["prod"]`, `["prod",null]`, 1)),
		path: "rules[0].selection.tagPrefixList[1]", msg: "null is not allowed"},
	{name: "missing action", text: policyJSON(strings.Replace(ruleProdCount, `,"action":{"type":"expire"}`, ``, 1)),
		path: "rules[0].action", msg: "required field is missing"},
	{name: "missing rules", text: `{}` + strings.Repeat(" ", 100), path: "rules", msg: "required field is missing"},
	{name: "trailing garbage", text: policyJSON(ruleProdCount) + `x`, path: "(root)", msg: "unexpected data after the policy object at line 1, column"},
	{name: "trailing garbage does not hide other problems",
		text: policyJSON(strings.Replace(ruleProdCount, `"countNumber":10`, `"countNumber":0`, 1)) + `]`,
		path: "rules[0].selection.countNumber", msg: "at least 1", errs: 2},
	{name: "trailing garbage does not hide the length problem",
		text: `{"rules":[]} x`, path: "(root)", msg: "policy text is 14 characters", errs: 3},
	{name: "second document", text: policyJSON(ruleProdCount) + "\n{}", path: "(root)", msg: "unexpected data after the policy object at line 2, column 1"},
	{name: "top level array", text: `[` + policyJSON(ruleProdCount) + `]`, path: "(root)", msg: "must be a JSON object, got array"},
	{name: "top level string", text: `"` + strings.Repeat("x", 120) + `"`, path: "(root)", msg: "must be a JSON object, got string"},
	{name: "empty document", text: "", path: "(root)", msg: "empty document"},
	{name: "truncated", text: policyJSON(ruleProdCount)[:80], path: "rules[0].selection.tagPrefixList[0]", msg: "malformed JSON: unexpected end of input"},
	{name: "syntax error", text: strings.Replace(policyJSON(ruleProdCount), `"countNumber":10`, `"countNumber" 10`, 1),
		path: "rules[0].selection.countNumber", msg: "malformed JSON at line 1, column"},
}

func manyRules(n int) string {
	rules := make([]string, n)
	for i := range rules {
		rules[i] = strings.NewReplacer(`"rulePriority":1`, `"rulePriority":`+strconv.Itoa(i+1), `["prod"]`, `["prod`+strconv.Itoa(i)+`"]`).Replace(ruleProdCount)
	}
	return policyJSON(rules...)
}

func TestParseValid(t *testing.T) {
	for name, text := range validPolicies {
		t.Run(name, func(t *testing.T) {
			p, err := Parse([]byte(text))
			if err != nil {
				t.Fatalf("Parse: %v", err)
			}
			if len(p.Rules) == 0 {
				t.Fatal("Parse returned no rules")
			}
			if errs := Validate(p, utf8.RuneCountInString(text)); len(errs) != 0 {
				t.Errorf("Validate after a successful Parse: %v", errs)
			}
		})
	}
}

func TestParseDecodesAllFields(t *testing.T) {
	text := policyJSON(
		`{"rulePriority":4,"description":"d","selection":{"tagStatus":"tagged","tagPatternList":["a*","*b"],"countType":"sinceImagePulled","countUnit":"days","countNumber":90},"action":{"type":"transition","targetStorageClass":"archive"}}`,
		`{"rulePriority":5,"selection":{"tagStatus":"tagged","tagPrefixList":["x"],"storageClass":"archive","countType":"sinceImageTransitioned","countUnit":"days","countNumber":100},"action":{"type":"expire"}}`)
	p, err := Parse([]byte(text))
	if err != nil {
		t.Fatal(err)
	}
	want := &Policy{Rules: []Rule{
		{RulePriority: 4, Description: "d",
			Selection: Selection{TagStatus: "tagged", TagPatternList: []string{"a*", "*b"}, CountType: "sinceImagePulled", CountUnit: "days", CountNumber: 90},
			Action:    Action{Type: "transition", TargetStorageClass: "archive"}},
		{RulePriority: 5,
			Selection: Selection{TagStatus: "tagged", TagPrefixList: []string{"x"}, StorageClass: "archive", CountType: "sinceImageTransitioned", CountUnit: "days", CountNumber: 100},
			Action:    Action{Type: "expire"}},
	}}
	if !reflect.DeepEqual(p, want) {
		t.Errorf("Parse:\n got %+v\nwant %+v", p, want)
	}
}

func TestParseInvalid(t *testing.T) {
	for _, tc := range invalidPolicies {
		t.Run(tc.name, func(t *testing.T) {
			p, err := Parse([]byte(tc.text))
			if err == nil {
				t.Fatalf("Parse accepted an invalid policy: %+v", p)
			}
			if p != nil {
				t.Errorf("Parse returned a policy with an error")
			}
			var ve *ValidationError
			if !errors.As(err, &ve) {
				t.Fatalf("error %T is not a *ValidationError: %v", err, err)
			}
			found := false
			for _, fe := range ve.Errors {
				if fe.Path == tc.path && strings.Contains(fe.Msg, tc.msg) {
					found = true
				}
			}
			if !found {
				t.Errorf("no problem at %s containing %q; got:\n%v", tc.path, tc.msg, err)
			}
			want := max(tc.errs, 1)
			if len(ve.Errors) != want {
				t.Errorf("got %d problems, want %d:\n%v", len(ve.Errors), want, err)
			}
		})
	}
}

func TestParseReportsAllProblems(t *testing.T) {
	text := policyJSON(
		`{"rulePriority":1,"selection":{"tagStatus":"untagged","countType":"imageCountMoreThan","countUnit":"days","countNumber":"5"},"action":{"type":"expire"}}`,
		`{"rulePriority":1,"selection":{"tagStatus":"tagged","countType":"imageCountMoreThan","countNumber":1,"extra":true},"action":{"type":"expire","targetStorageClass":null}}`)
	_, err := Parse([]byte(text))
	var ve *ValidationError
	if !errors.As(err, &ve) {
		t.Fatalf("want *ValidationError, got %v", err)
	}
	want := []FieldError{
		// Structural problems come first, in document order.
		{"rules[0].selection.countNumber", `must be an integer, got string "5"`},
		{"rules[1].selection.extra", `unknown field; allowed fields are "tagStatus", "tagPatternList", "tagPrefixList", "storageClass", "countType", "countUnit", "countNumber"`},
		{"rules[1].action.targetStorageClass", "null is not allowed; omit the field instead"},
		// countNumber "5" is not reported again as "must be at least 1".
		{"rules[0].selection.countUnit", "not allowed with countType imageCountMoreThan (countNumber is a number of images); remove it"},
		{"rules[1].selection", `tagStatus "tagged" requires tagPrefixList or tagPatternList`},
		{"rules[1].rulePriority", "duplicate value 1, also used by rules[0]; priorities must be unique"},
	}
	if !reflect.DeepEqual(ve.Errors, want) {
		t.Errorf("problems:\n got %q\nwant %q", ve.Errors, want)
	}
	if msg := err.Error(); !strings.HasPrefix(msg, "6 problems:\nrules[0].selection.countNumber: must be an integer") {
		t.Errorf("Error() = %q", msg)
	}
	// Each problem is reachable with errors.As too.
	var fe FieldError
	if !errors.As(err, &fe) || fe != want[0] {
		t.Errorf("errors.As(FieldError) = %v", fe)
	}
}

func TestSingleProblemErrorText(t *testing.T) {
	_, err := Parse([]byte(policyJSON(strings.Replace(ruleProdCount, `"countNumber":10`, `"countNumber":10,"countUnit":"days"`, 1))))
	want := "rules[0].selection.countUnit: not allowed with countType imageCountMoreThan (countNumber is a number of images); remove it"
	if err == nil || err.Error() != want {
		t.Errorf("error = %v, want %s", err, want)
	}
}

func TestValidateStruct(t *testing.T) {
	// A policy built in code: Validate works without a text length.
	p := &Policy{Rules: []Rule{{
		RulePriority: 1,
		Selection:    Selection{TagStatus: TagStatusAny, CountType: CountTypeSinceImagePushed, CountNumber: 3},
		Action:       Action{Type: ActionTransition, TargetStorageClass: StorageClassArchive},
	}}}
	errs := Validate(p, -1)
	want := []FieldError{{"rules[0].selection.countUnit", `required with countType sinceImagePushed; must be "days"`}}
	if !reflect.DeepEqual(errs, want) {
		t.Errorf("Validate = %q, want %q", errs, want)
	}
	p.Rules[0].Selection.CountUnit = CountUnitDays
	if errs := Validate(p, -1); len(errs) != 0 {
		t.Errorf("Validate of a fixed policy = %q", errs)
	}
	if errs := Validate(nil, -1); len(errs) != 1 {
		t.Errorf("Validate(nil) = %q, want one problem", errs)
	}
}

func TestSeedPolicy(t *testing.T) {
	data, err := os.ReadFile(seedPolicyPath)
	if err != nil {
		t.Fatal(err)
	}
	p, err := Parse(data)
	if err != nil {
		t.Fatalf("the seed policy must parse unmodified: %v", err)
	}
	var prios []int
	for _, r := range p.Rules {
		prios = append(prios, r.RulePriority)
	}
	if !reflect.DeepEqual(prios, []int{1, 2, 3, 4}) {
		t.Errorf("priorities = %v", prios)
	}
	if got := p.Rules[0].Selection.TagPrefixList; !reflect.DeepEqual(got, []string{"prod", "v"}) {
		t.Errorf("rules[0] prefixes = %q", got)
	}
	if errs := Validate(p, utf8.RuneCount(data)); len(errs) != 0 {
		t.Errorf("Validate: %v", errs)
	}
	// The canonical form is semantically the same document.
	c, err := Canonical(p)
	if err != nil {
		t.Fatal(err)
	}
	var fromStd Policy
	if err := json.Unmarshal(c, &fromStd); err != nil {
		t.Fatalf("canonical form is not JSON: %v", err)
	}
	if !reflect.DeepEqual(&fromStd, p) {
		t.Errorf("canonical form decodes to %+v, want %+v", fromStd, p)
	}
}

func TestCanonical(t *testing.T) {
	a := `{"rules":[
		{"rulePriority": 10, "selection": {"tagStatus": "untagged", "countType": "sinceImagePushed", "countUnit": "days", "countNumber": 7}, "action": {"type": "expire"}},
		{"rulePriority": 2, "description": "prod", "selection": {"tagStatus": "tagged", "tagPrefixList": ["prod"], "countType": "imageCountMoreThan", "countNumber": 10}, "action": {"type": "expire"}}
	]}`
	// Same rules, other order, member order and whitespace, explicit default
	// storage class: what ECR might hand back. Priorities 2 and 10 sort
	// differently as numbers and as text.
	b := `{"rules":[{"action":{"type":"expire"},"description":"prod","rulePriority":2,"selection":{"countNumber":10,"countType":"imageCountMoreThan","tagPrefixList":["prod"],"tagStatus":"tagged"}},` +
		`{"rulePriority":10,"selection":{"storageClass":"standard","tagStatus":"untagged","countType":"sinceImagePushed","countUnit":"days","countNumber":7},"action":{"type":"expire"}}]}`
	want := `{"rules":[` +
		`{"rulePriority":2,"description":"prod","selection":{"tagStatus":"tagged","tagPrefixList":["prod"],"countType":"imageCountMoreThan","countNumber":10},"action":{"type":"expire"}},` +
		`{"rulePriority":10,"selection":{"tagStatus":"untagged","countType":"sinceImagePushed","countUnit":"days","countNumber":7},"action":{"type":"expire"}}]}`

	ca := mustCanonical(t, a)
	cb := mustCanonical(t, b)
	if string(ca) != want {
		t.Errorf("Canonical:\n got %s\nwant %s", ca, want)
	}
	if !bytes.Equal(ca, cb) {
		t.Errorf("reordered policy canonicalises differently:\n%s\n%s", ca, cb)
	}
	// A real change must show.
	changed := mustCanonical(t, strings.Replace(a, `"countNumber": 10`, `"countNumber": 11`, 1))
	if bytes.Equal(ca, changed) {
		t.Error("a changed countNumber canonicalises to the same bytes")
	}
	if _, err := Canonical(nil); err == nil {
		t.Error("Canonical(nil) succeeded")
	}
}

func TestCanonicalEscaping(t *testing.T) {
	p := &Policy{Rules: []Rule{{
		RulePriority: 1,
		Description:  "<a&b> \u2028 \"q\" \\ \n\t\x01 caf\u00e9 \xff",
		Selection:    Selection{TagStatus: TagStatusAny, CountType: CountTypeImageCountMoreThan, CountNumber: 1},
		Action:       Action{Type: ActionExpire},
	}}}
	c, err := Canonical(p)
	if err != nil {
		t.Fatal(err)
	}
	// Minimal escaping: HTML characters and U+2028 stay as they are, so the
	// canonical text never outgrows ECR's length limit.
	wantDesc := `"description":"<a&b> ` + "\u2028" + ` \"q\" \\ \n\t\u0001 café ` + "\uFFFD" + `"`
	if !bytes.Contains(c, []byte(wantDesc)) {
		t.Errorf("Canonical = %s\nwant it to contain %s", c, wantDesc)
	}
	var back Policy
	if err := json.Unmarshal(c, &back); err != nil {
		t.Fatalf("canonical form is not JSON: %v", err)
	}
	if want := strings.ToValidUTF8(p.Rules[0].Description, "\uFFFD"); back.Rules[0].Description != want {
		t.Errorf("description round trip = %q, want %q", back.Rules[0].Description, want)
	}
}

func mustCanonical(t *testing.T, text string) []byte {
	t.Helper()
	p, err := Parse([]byte(text))
	if err != nil {
		t.Fatalf("Parse: %v", err)
	}
	c, err := Canonical(p)
	if err != nil {
		t.Fatalf("Canonical: %v", err)
	}
	return c
}

func TestMarshalOmitsEmpty(t *testing.T) {
	p := &Policy{Rules: []Rule{{
		RulePriority: 1,
		Selection:    Selection{TagStatus: TagStatusUntagged, CountType: CountTypeImageCountMoreThan, CountNumber: 1},
		Action:       Action{Type: ActionExpire},
	}}}
	b, err := json.Marshal(p)
	if err != nil {
		t.Fatal(err)
	}
	want := `{"rules":[{"rulePriority":1,"selection":{"tagStatus":"untagged","countType":"imageCountMoreThan","countNumber":1},"action":{"type":"expire"}}]}`
	if string(b) != want {
		t.Errorf("json.Marshal = %s\nwant %s", b, want)
	}
}
