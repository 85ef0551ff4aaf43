package config

import (
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/regctl-dev/regctl/internal/exitcode"
)

func writeFile(t *testing.T, dir, name, body string) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// testKinds stand in for the backends' own Kinds (registry.OCIBackend, ecr.Backend, which are tested
// in their packages): the loader's mechanics are what is tested here.
var testKinds = []Kind{
	{Type: "oci", NeedsURL: true, URLExample: "127.0.0.1:5000"},
	{Type: "ecr", Keys: map[string]KeyKind{"region": KeyString, "account": KeyString, "profile": KeyString, "endpoint": KeyString},
		Check: func(r Registry) []Problem {
			var s struct {
				Region   string `mapstructure:"region"`
				Account  string `mapstructure:"account"`
				Profile  string `mapstructure:"profile"`
				Endpoint string `mapstructure:"endpoint"`
			}
			if err := r.DecodeSettings(&s); err != nil {
				return []Problem{{Path: "(settings)", Msg: err.Error()}}
			}
			var ps []Problem
			if s.Region == "" {
				ps = append(ps, Problem{Path: "region", Msg: "required for type ecr (e.g. us-east-1)"})
			}
			if s.Account != "" && len(s.Account) != 12 {
				ps = append(ps, Problem{Path: "account", Msg: "must be a 12-digit AWS account id"})
			}
			return ps
		}},
	{Type: "harbor", NeedsURL: true, URLExample: "harbor.example.com"},
}

const base = `
default_registry: local
registries:
  local: {type: oci, url: 127.0.0.1:5000, insecure: true}
  prod: {type: ecr, region: us-east-1, account: "123456789012"}
scan:
  severities: [CRITICAL, HIGH]
  fail_on: {CRITICAL: 0, HIGH: 5}
`

func TestPrecedenceFileEnvFlags(t *testing.T) {
	dir := t.TempDir()
	file := writeFile(t, dir, "regctl.yaml", base)

	cfg, err := Load(Sources{Kinds: testKinds, File: file})
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Registries["local"].URL != "127.0.0.1:5000" || cfg.DefaultRegistry != "local" {
		t.Fatalf("file values not read: %+v", cfg)
	}

	env := []string{"REGCTL_REGISTRIES_LOCAL_URL=127.0.0.1:6000", "REGCTL_DEFAULT_REGISTRY=prod", "UNRELATED=1"}
	cfg, err = Load(Sources{Kinds: testKinds, File: file, Environ: env})
	if err != nil {
		t.Fatal(err)
	}
	if got := cfg.Registries["local"].URL; got != "127.0.0.1:6000" {
		t.Errorf("env should override file: url = %q", got)
	}
	if cfg.DefaultRegistry != "prod" {
		t.Errorf("env should override file: default_registry = %q", cfg.DefaultRegistry)
	}
	if !cfg.Registries["local"].Insecure {
		t.Error("keys the env does not set must keep their file values")
	}

	cfg, err = Load(Sources{Kinds: testKinds, File: file, Environ: env, Overrides: map[string]any{"default_registry": "local"}})
	if err != nil {
		t.Fatal(err)
	}
	if cfg.DefaultRegistry != "local" {
		t.Errorf("flags should override env: default_registry = %q", cfg.DefaultRegistry)
	}
}

func TestEnvWithoutFileForSchemaKeys(t *testing.T) {
	cfg, err := Load(Sources{Kinds: testKinds, Environ: []string{"REGCTL_SIGN_KEY=k.pem", "REGCTL_SCAN_SEVERITIES=CRITICAL,HIGH"}})
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Sign.Key != "k.pem" {
		t.Errorf("sign.key = %q", cfg.Sign.Key)
	}
	if strings.Join(cfg.Scan.Severities, ",") != "CRITICAL,HIGH" {
		t.Errorf("scan.severities = %v", cfg.Scan.Severities)
	}
}

func TestSearchOrder(t *testing.T) {
	work, home := t.TempDir(), t.TempDir()
	writeFile(t, home, "regctl/config.yaml", "default_registry: a\nregistries: {a: {type: oci, url: a.example}}\n")
	cfg, err := Load(Sources{Kinds: testKinds, WorkDir: work, ConfigHome: home})
	if err != nil {
		t.Fatal(err)
	}
	if cfg.DefaultRegistry != "a" {
		t.Fatalf("user config not found: %+v", cfg)
	}
	writeFile(t, work, "regctl.yaml", "default_registry: b\nregistries: {b: {type: oci, url: b.example}}\n")
	cfg, err = Load(Sources{Kinds: testKinds, WorkDir: work, ConfigHome: home})
	if err != nil {
		t.Fatal(err)
	}
	if cfg.DefaultRegistry != "b" || !strings.HasSuffix(cfg.File, "regctl.yaml") {
		t.Fatalf("./regctl.yaml must win over the user config: %+v", cfg)
	}
	_, err = Load(Sources{Kinds: testKinds, File: filepath.Join(work, "missing.yaml")})
	if exitcode.Of(err) != exitcode.NotFound {
		t.Fatalf("missing --config file: exit %d, err %v", exitcode.Of(err), err)
	}
}

func TestValidationReportsEveryProblemWithPath(t *testing.T) {
	dir := t.TempDir()
	file := writeFile(t, dir, "bad.yaml", `default_registry: nowhere
registries:
  local:
    type: oic
    url: 127.0.0.1:5000
    insecure: "yes"
  prod:
    type: ecr
    regoin: us-east-1
scan:
  severities: [CRITICAL, SEVERE]
  fail_on: {HIGH: many}
colour: true
`)
	_, err := Load(Sources{Kinds: testKinds, File: file})
	var verr *ValidationError
	if !errors.As(err, &verr) {
		t.Fatalf("want *ValidationError, got %v", err)
	}
	if exitcode.Of(err) != exitcode.Usage {
		t.Errorf("exit code = %d, want %d", exitcode.Of(err), exitcode.Usage)
	}
	want := []string{
		`bad.yaml:4: registries.local.type: "oic" is not one of oci, ecr, harbor`,
		`bad.yaml:6: registries.local.insecure: expected true or false, got "yes"`,
		`bad.yaml:9: registries.prod.regoin: unknown key (did you mean "region"?)`,
		`bad.yaml:11: scan.severities[1]: "SEVERE" is not one of`,
		`bad.yaml:12: scan.fail_on.HIGH: expected a whole number, got "many"`,
		`bad.yaml:13: colour: unknown key`,
	}
	msg := err.Error()
	for _, w := range want {
		if !strings.Contains(msg, w) {
			t.Errorf("error does not contain %q:\n%s", w, msg)
		}
	}
	if len(verr.Problems) != len(want) {
		t.Errorf("got %d problems, want %d:\n%s", len(verr.Problems), len(want), msg)
	}
}

func TestSemanticChecks(t *testing.T) {
	cases := map[string]string{
		"default_registry: x\n":                                                                  `default_registry: "x" is not defined`,
		"registries: {a: {type: oci}}\n":                                                         "registries.a.url: required for type oci",
		"registries: {a: {type: ecr, url: x}}\n":                                                 "registries.a.region: required for type ecr",
		"registries: {a: {type: ecr, region: r, account: \"12\"}}\n":                             "registries.a.account: must be a 12-digit",
		"registries: {a: {type: oci, url: x, password_env: A, password_file: B, username: u}}\n": "set only one of password",
		"registries: {a: {type: oci, url: x, password_env: A}}\n":                                "registries.a.username: required when a password",
		"registries: {a: {url: x}}\n":                                                            "registries.a.type: required",
		"registries: {a: {type: oci, url: \"ftp://x\"}}\n":                                       "only http:// and https://",
		"scan: {fail_on: {SEVERE: 1}}\n":                                                         "c.yaml:1: scan.fail_on.SEVERE: unknown severity",
		"registries:\n  Prod: {type: oci, url: x}\n":                                             "c.yaml:2: registries.Prod: names use lower-case",
		"registries:\n  my.reg: {type: oci, url: x}\n":                                           "c.yaml:2: registries.my.reg: names use lower-case",
		"registries:\n  a:\n    type: oci\n":                                                     "c.yaml:2: registries.a.url: required for type oci",
		"scan: {cvss_threshold: 11}\n":                                                           "scan.cvss_threshold: must be between 0 and 10",
		"registries: {a: null}\n":                                                                "registries.a: must not be null",
		"registries: [a, b]\n":                                                                   "registries: expected a mapping, got a list",
		"registries: {a: {type: oci, url: x}, a: {type: oci, url: y}}\n":                         "duplicate key",
		"{{{\n": "not valid YAML",
	}
	for body, want := range cases {
		dir := t.TempDir()
		_, err := Load(Sources{Kinds: testKinds, File: writeFile(t, dir, "c.yaml", body)})
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%q: got %v, want error containing %q", body, err, want)
		}
	}
}

func TestStarterLoadsAndRedaction(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "sub", "regctl.yaml")
	if err := WriteStarter(p, false); err != nil {
		t.Fatal(err)
	}
	if err := WriteStarter(p, false); err == nil || !strings.Contains(err.Error(), "--force") {
		t.Fatalf("second write must refuse without --force, got %v", err)
	}
	cfg, err := Load(Sources{Kinds: testKinds, File: p})
	if err != nil {
		t.Fatalf("starter file does not load: %v", err)
	}
	if cfg.Registries["local"].Type != "oci" {
		t.Fatalf("starter: %+v", cfg)
	}

	withSecret := &Config{Registries: map[string]Registry{"a": {Type: "oci", URL: "x", Username: "u", Password: "hunter2"}}}
	if r := withSecret.Redacted(); r.Registries["a"].Password != "REDACTED" {
		t.Fatalf("password not redacted: %+v", r)
	}
	if withSecret.Registries["a"].Password != "hunter2" {
		t.Fatal("Redacted must not modify the original")
	}
}

func TestSchemaCoversStructKeys(t *testing.T) {
	// Every key of a fully populated config must pass the schema: catches a struct field added without
	// its schema entry (which would make valid files fail validation).
	full := `default_registry: a
registries:
  a: {type: oci, url: x, insecure: true, ca_file: c, username: u, password_env: P}
  d: {type: ecr, region: r, account: 123456789012, profile: p, endpoint: e}
  b: {type: oci, url: x, username: u, password: s}
  c: {type: oci, url: x, username: u, password_file: f}
scan: {severities: [HIGH], fail_on: {HIGH: 1}, ignore_file: i, ignore_unfixed: true, cvss_threshold: 7.0, cache_dir: d, db_repository: r}
sign: {key: k}
backup: {destination: d, storage_class: s, keep_days: 1, keep_last: 2, jobs: 3}
build: {platforms: [linux/amd64], builder: buildah, tag_rules: [{branch: main, tags: [latest]}]}
`
	cfg, err := Load(Sources{Kinds: testKinds, File: writeFile(t, t.TempDir(), "full.yaml", full)})
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Backup.Jobs != 3 || cfg.Build.TagRules[0].Tags[0] != "latest" || cfg.Scan.CVSSThreshold != 7.0 || cfg.Registries["c"].PasswordFile != "f" {
		t.Fatalf("values not decoded: %+v", cfg)
	}
}

func TestTypeSpecificKeys(t *testing.T) {
	dir := t.TempDir()
	// A key of another type is named as such; the type's own keys land in Settings, env included.
	_, err := Load(Sources{Kinds: testKinds, File: writeFile(t, dir, "a.yaml", "registries:\n  a: {type: oci, url: x, region: r}\n")})
	if err == nil || !strings.Contains(err.Error(), `a.yaml:2: registries.a.region: unknown key for this type (a key of type ecr)`) {
		t.Errorf("region on an oci registry: %v", err)
	}
	cfg, err := Load(Sources{Kinds: testKinds, File: writeFile(t, dir, "b.yaml", base), Environ: []string{"REGCTL_REGISTRIES_PROD_PROFILE=ops"}})
	if err != nil {
		t.Fatal(err)
	}
	var got struct {
		Region  string `mapstructure:"region"`
		Account string `mapstructure:"account"`
		Profile string `mapstructure:"profile"`
	}
	if err := cfg.Registries["prod"].DecodeSettings(&got); err != nil || got.Region != "us-east-1" || got.Account != "123456789012" || got.Profile != "ops" {
		t.Errorf("settings %+v, %v", got, err)
	}
	if len(cfg.Registries["local"].Settings) != 0 {
		t.Errorf("oci registry has settings: %v", cfg.Registries["local"].Settings)
	}
	raw, err := json.Marshal(cfg.Registries["prod"])
	if err != nil || !strings.Contains(string(raw), `"region":"us-east-1"`) || !strings.Contains(string(raw), `"type":"ecr"`) {
		t.Errorf("config view shows settings beside the shared keys: %s %v", raw, err)
	}
	// A build without a type's backend reports it as unknown, listing what it has.
	_, err = Load(Sources{Kinds: testKinds[:1], File: writeFile(t, dir, "c.yaml", base)})
	if err == nil || !strings.Contains(err.Error(), `registries.prod.type: "ecr" is not one of oci`) {
		t.Errorf("unknown type: %v", err)
	}
}

func TestEnvironmentValuesAreCheckedLikeTheFile(t *testing.T) {
	dir := t.TempDir()
	file := writeFile(t, dir, "regctl.yaml", base)
	_, err := Load(Sources{Kinds: testKinds, File: file, Environ: []string{"REGCTL_SCAN_SEVERITIES=CRITICAL,BOGUS", "REGCTL_REGISTRIES_LOCAL_INSECURE=maybe", "REGCTL_BUILD_BUILDER=docker"}})
	for _, want := range []string{
		`env REGCTL_SCAN_SEVERITIES: scan.severities: "BOGUS" is not one of`,
		`env REGCTL_REGISTRIES_LOCAL_INSECURE: registries.local.insecure: expected true or false, got "maybe"`,
		`env REGCTL_BUILD_BUILDER: build.builder: "docker" is not one of auto, buildx, buildah`,
	} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("want %q in %v", want, err)
		}
	}
	// A key the file does not set, on a registry the file defines, can still come from the environment.
	cfg, err := Load(Sources{Kinds: testKinds, File: file, Environ: []string{"REGCTL_REGISTRIES_LOCAL_USERNAME=ci", "REGCTL_REGISTRIES_LOCAL_PASSWORD_ENV=TOKEN"}})
	if err != nil {
		t.Fatal(err)
	}
	if r := cfg.Registries["local"]; r.Username != "ci" || r.PasswordEnv != "TOKEN" {
		t.Errorf("env-only registry keys: %+v", r)
	}
	if cfg.Scan.FailOn["CRITICAL"] != 0 || cfg.Scan.FailOn["HIGH"] != 5 {
		t.Errorf("fail_on keys must stay upper-case: %v", cfg.Scan.FailOn)
	}
}
