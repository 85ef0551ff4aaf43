package harbor_test

import (
	"maps"
	"slices"
	"strings"
	"testing"

	"github.com/regctl-dev/regctl/internal/exitcode"
	"github.com/regctl-dev/regctl/internal/harbor"
)

func TestParseScanPolicyGuide(t *testing.T) {
	p, err := harbor.ParseScanPolicy("harbor-scan-policy.json", policyFile(t))
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]string{"auto_scan": "true", "prevent_vul": "true", "severity": "high"}
	if !maps.Equal(p.Metadata, want) {
		t.Errorf("metadata %v, want %v", p.Metadata, want)
	}
	if !slices.Equal(p.Allowlist, []string{"CVE-2021-12345"}) {
		t.Errorf("allowlist %v", p.Allowlist)
	}
	// Six things Harbor cannot hold as written, each named: name, description, project_id,
	// scan_before_push (on push instead), the CVSS threshold and fix_available.
	if len(p.Notes) != 6 {
		t.Errorf("%d notes: %q", len(p.Notes), p.Notes)
	}
}

func TestParseScanPolicyMapping(t *testing.T) {
	cases := []struct {
		doc      string
		meta     map[string]string
		allow    []string
		noteHave string
	}{
		{`{"rule":{}}`, map[string]string{}, nil, ""},
		{`{"enabled":false,"rule":{"prevent_vulnerable":true}}`, map[string]string{"prevent_vul": "false"}, nil, "enabled false"},
		{`{"rule":{"vulnerabilities":{"severity":["CRITICAL","low"]}}}`, map[string]string{"severity": "low"}, nil, "low also blocks medium"},
		{`{"rule":{"vulnerabilities":{"severity":["medium","high","critical"]}}}`, map[string]string{"severity": "medium"}, nil, ""},
		{`{"rule":{"scan_before_push":false,"whitelist":[],"allowlist":["CVE-2020-2","CVE-2020-1","CVE-2020-2"]}}`, map[string]string{"auto_scan": "false"}, []string{"CVE-2020-1", "CVE-2020-2"}, ""},
		{`{"rule":{"vulnerabilities":{"fix_available":false}}}`, map[string]string{}, nil, ""},
	}
	for _, c := range cases {
		p, err := harbor.ParseScanPolicy("p.json", []byte(c.doc))
		if err != nil {
			t.Errorf("%s: %v", c.doc, err)
			continue
		}
		if !maps.Equal(p.Metadata, c.meta) || !slices.Equal(p.Allowlist, c.allow) {
			t.Errorf("%s: %v %v", c.doc, p.Metadata, p.Allowlist)
		}
		notes := strings.Join(p.Notes, "\n")
		if (c.noteHave == "") != (notes == "") || !strings.Contains(notes, c.noteHave) {
			t.Errorf("%s: notes %q, want one with %q", c.doc, notes, c.noteHave)
		}
	}
}

func TestParseScanPolicyErrorsNameThePath(t *testing.T) {
	cases := map[string]string{
		``:                                     "p.json: (document): not valid JSON",
		`[]`:                                   "p.json: (document): must be a JSON object",
		`{}`:                                   "p.json: rule: required",
		`{"rule":null}`:                        "p.json: rule: must be a JSON object",
		`{"rule":{}} {}`:                       "trailing data",
		`{"rule":{},"owner":"me"}`:             "p.json: owner: unknown field",
		`{"enabled":"yes","rule":{}}`:          "p.json: enabled: must be true or false",
		`{"project_id":"1","rule":{}}`:         "p.json: project_id: must be a number",
		`{"rule":{"scan_before_push":1}}`:      "p.json: rule.scan_before_push: must be true or false",
		`{"rule":{"vulnerabilities":[]}}`:      "p.json: rule.vulnerabilities: must be a JSON object",
		`{"rule":{"vulnerabilities":{"x":1}}}`: "p.json: rule.vulnerabilities.x: unknown field",
		`{"rule":{"vulnerabilities":{"severity":"high"}}}`:           "p.json: rule.vulnerabilities.severity: must be a list of strings",
		`{"rule":{"vulnerabilities":{"severity":[]}}}`:               "rule.vulnerabilities.severity: list at least one",
		`{"rule":{"vulnerabilities":{"severity":["high","hgh"]}}}`:   `rule.vulnerabilities.severity[1]: "hgh" is not one of`,
		`{"rule":{"vulnerabilities":{"severity":["none"]}}}`:         `rule.vulnerabilities.severity[0]: "none" is not one of`,
		`{"rule":{"vulnerabilities":{"severity":[1]}}}`:              "rule.vulnerabilities.severity[0]: must be a string",
		`{"rule":{"vulnerabilities":{"cvss_score_threshold":11}}}`:   "rule.vulnerabilities.cvss_score_threshold: must be between 0 and 10",
		`{"rule":{"vulnerabilities":{"cvss_score_threshold":null}}}`: "rule.vulnerabilities.cvss_score_threshold: must be a number",
		`{"rule":{"whitelist":["CVE 2021"]}}`:                        `rule.whitelist[0]: "CVE 2021" is not a vulnerability id`,
		`{"rule":{"allowlist":{"a":1}}}`:                             "rule.allowlist: must be a list of strings",
	}
	for doc, want := range cases {
		_, err := harbor.ParseScanPolicy("p.json", []byte(doc))
		if exitcode.Of(err) != exitcode.Usage || !strings.Contains(err.Error(), want) {
			t.Errorf("%s: %v (exit %d), want exit 2 with %q", doc, err, exitcode.Of(err), want)
		}
	}
}

// FuzzParseScanPolicy: any bytes give a policy or a usage error naming the file, never a panic;
// what is accepted only holds values Harbor accepts.
func FuzzParseScanPolicy(f *testing.F) {
	f.Add([]byte(`{"rule":{"vulnerabilities":{"severity":["high"]}}}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		p, err := harbor.ParseScanPolicy("fuzz.json", data)
		if err != nil {
			if exitcode.Of(err) != exitcode.Usage || !strings.HasPrefix(err.Error(), "fuzz.json: ") {
				t.Fatalf("not a usage error naming the file: %v", err)
			}
			return
		}
		for k, v := range p.Metadata {
			switch k {
			case "auto_scan", "prevent_vul":
				if v != "true" && v != "false" {
					t.Fatalf("%s = %q", k, v)
				}
			case "severity":
				if !slices.Contains([]string{"low", "medium", "high", "critical"}, v) {
					t.Fatalf("severity %q", v)
				}
			default:
				t.Fatalf("unexpected metadata %s", k)
			}
		}
		if !slices.IsSorted(p.Allowlist) || len(slices.Compact(slices.Clone(p.Allowlist))) != len(p.Allowlist) {
			t.Fatalf("allowlist not sorted and unique: %v", p.Allowlist)
		}
	})
}
