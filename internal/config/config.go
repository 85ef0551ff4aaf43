// Package config loads regctl's configuration: one YAML file, then REGCTL_* environment variables,
// then command-line flags, later sources winning. It owns a local viper instance (never the global
// one) and checks the file against a schema first, so every bad key is reported with its path.
package config

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"

	"github.com/go-viper/mapstructure/v2"
	"github.com/spf13/viper"
	"gopkg.in/yaml.v3"

	"github.com/regctl-dev/regctl/internal/exitcode"
)

// Config is the merged configuration.
type Config struct {
	DefaultRegistry string              `mapstructure:"default_registry" json:"default_registry,omitempty"`
	Registries      map[string]Registry `mapstructure:"registries" json:"registries,omitempty"`
	Scan            Scan                `mapstructure:"scan" json:"scan,omitzero"`
	Sign            Sign                `mapstructure:"sign" json:"sign,omitzero"`
	Backup          Backup              `mapstructure:"backup" json:"backup,omitzero"`
	Build           Build               `mapstructure:"build" json:"build,omitzero"`
	Verify          Verify              `mapstructure:"verify" json:"verify,omitzero"`

	// File is the config file that was read ("" when none was found).
	File string `mapstructure:"-" json:"-"`
}

// Registry is one named registry: the keys every type shares, and Settings for the keys its own
// type declares (its Kind). Secrets are referenced (password_env, password_file, docker credential
// helpers, the AWS credential chain) so the file itself can be committed.
type Registry struct {
	Type         string `mapstructure:"type" json:"type"`
	URL          string `mapstructure:"url" json:"url,omitempty"`
	Insecure     bool   `mapstructure:"insecure" json:"insecure,omitempty"`
	CAFile       string `mapstructure:"ca_file" json:"ca_file,omitempty"`
	Username     string `mapstructure:"username" json:"username,omitempty"`
	Password     string `mapstructure:"password" json:"password,omitempty"`
	PasswordEnv  string `mapstructure:"password_env" json:"password_env,omitempty"`
	PasswordFile string `mapstructure:"password_file" json:"password_file,omitempty"`
	// Settings holds the type's own keys (ecr: region, account, ...), already checked against its
	// Kind; the backend decodes them (DecodeSettings).
	Settings map[string]any `mapstructure:",remain" json:"-"`
}

// MarshalJSON shows a registry as it is written in the file: the type's own keys beside the shared ones.
func (r Registry) MarshalJSON() ([]byte, error) {
	type shared Registry // no methods: no recursion
	raw, err := json.Marshal(shared(r))
	if err != nil || len(r.Settings) == 0 {
		return raw, err
	}
	var m map[string]any
	if err := json.Unmarshal(raw, &m); err != nil {
		return nil, err
	}
	for k, v := range r.Settings {
		if _, taken := m[k]; !taken {
			m[k] = v
		}
	}
	return json.Marshal(m)
}

// DecodeSettings decodes a registry's type-specific keys into out (a struct with mapstructure tags),
// with the same weak typing the rest of the file gets (an unquoted account id is a string).
func (r Registry) DecodeSettings(out any) error {
	dec, err := mapstructure.NewDecoder(&mapstructure.DecoderConfig{Result: out, WeaklyTypedInput: true, ErrorUnused: true})
	if err != nil {
		return err
	}
	return dec.Decode(r.Settings)
}

// KeyKind is the type of a value a Kind's key takes.
type KeyKind int

// Key kinds.
const (
	KeyString KeyKind = iota
	KeyBool
	KeyInt
)

// Kind describes one registry type to the loader. Backends declare their own (ecr.Backend, the
// registry package's OCI backend), so the config package keeps no list of types: the loader checks a
// registry entry's own keys against its Kind, and Check adds the type's rules.
type Kind struct {
	Type string
	// Keys are the keys this type accepts beside the shared ones; they end up in Registry.Settings.
	Keys map[string]KeyKind
	// NeedsURL: url is required.
	NeedsURL bool
	// URLExample is shown when url is missing.
	URLExample string
	// Check validates the entry; Problem paths are relative to it ("region", "account").
	Check func(r Registry) []Problem
}

// Scan is the vulnerability gate's configuration.
type Scan struct {
	Severities    []string       `mapstructure:"severities" json:"severities,omitempty"`
	FailOn        map[string]int `mapstructure:"fail_on" json:"fail_on,omitempty"`
	IgnoreFile    string         `mapstructure:"ignore_file" json:"ignore_file,omitempty"`
	IgnoreUnfixed bool           `mapstructure:"ignore_unfixed" json:"ignore_unfixed,omitempty"`
	CVSSThreshold float64        `mapstructure:"cvss_threshold" json:"cvss_threshold,omitempty"`
	CacheDir      string         `mapstructure:"cache_dir" json:"cache_dir,omitempty"`
	DBRepository  string         `mapstructure:"db_repository" json:"db_repository,omitempty"`
}

// Sign configures signing.
type Sign struct {
	Key string `mapstructure:"key" json:"key,omitempty"`
}

// Verify configures verify serve, the admission webhook: which keys must have signed which images.
type Verify struct {
	Mode      string       `mapstructure:"mode" json:"mode,omitempty"`           // enforce (default) or audit
	Unmatched string       `mapstructure:"unmatched" json:"unmatched,omitempty"` // deny (default) or allow images no rule matches
	Exclude   []string     `mapstructure:"exclude" json:"exclude,omitempty"`
	Rules     []VerifyRule `mapstructure:"rules" json:"rules,omitempty"`
}

// VerifyRule: images matching a pattern must be signed by one of the keys, with the annotations.
type VerifyRule struct {
	Images      []string          `mapstructure:"images" json:"images"`
	Keys        []string          `mapstructure:"keys" json:"keys"`
	Annotations map[string]string `mapstructure:"annotations" json:"annotations,omitempty"`
}

// Backup configures backups.
type Backup struct {
	Destination  string `mapstructure:"destination" json:"destination,omitempty"`
	StorageClass string `mapstructure:"storage_class" json:"storage_class,omitempty"`
	KeepDays     int    `mapstructure:"keep_days" json:"keep_days,omitempty"`
	KeepLast     int    `mapstructure:"keep_last" json:"keep_last,omitempty"`
	Jobs         int    `mapstructure:"jobs" json:"jobs,omitempty"`
}

// Build configures build-push.
type Build struct {
	Platforms []string  `mapstructure:"platforms" json:"platforms,omitempty"`
	Builder   string    `mapstructure:"builder" json:"builder,omitempty"`
	TagRules  []TagRule `mapstructure:"tag_rules" json:"tag_rules,omitempty"`
}

// TagRule maps a git branch (glob) to tag templates.
type TagRule struct {
	Branch string   `mapstructure:"branch" json:"branch"`
	Tags   []string `mapstructure:"tags" json:"tags"`
}

// Sources says where configuration comes from. Everything is injected so tests control it.
type Sources struct {
	File       string         // --config; "" means search WorkDir/regctl.yaml then ConfigHome/regctl/config.yaml
	WorkDir    string         // the current directory
	ConfigHome string         // $XDG_CONFIG_HOME, or ~/.config
	Environ    []string       // os.Environ()
	Overrides  map[string]any // dotted key -> value, from flags the user set
	// Kinds are the registry types this build has (main passes its backends'); a type not among
	// them is reported as unknown.
	Kinds []Kind
}

// Problem is one thing wrong with the configuration.
type Problem struct {
	Source string `json:"source,omitempty"` // file name or "env REGCTL_X"
	Path   string `json:"path"`             // dotted key path, e.g. registries.prod.type
	Line   int    `json:"line,omitempty"`   // 0 when not from the file
	Msg    string `json:"message"`
}

func (p Problem) String() string {
	loc := p.Source
	if p.Line > 0 {
		loc += ":" + strconv.Itoa(p.Line)
	}
	if loc != "" {
		loc += ": "
	}
	return loc + p.Path + ": " + p.Msg
}

// ValidationError lists every problem found; it wraps exitcode.ErrUsage (exit 2).
type ValidationError struct{ Problems []Problem }

func (e *ValidationError) Error() string {
	lines := make([]string, len(e.Problems))
	for i, p := range e.Problems {
		lines[i] = p.String()
	}
	if len(lines) == 1 {
		return "invalid configuration: " + lines[0]
	}
	return fmt.Sprintf("invalid configuration (%d problems):\n  %s", len(lines), strings.Join(lines, "\n  "))
}

func (e *ValidationError) Unwrap() error { return exitcode.ErrUsage }

// FindFile returns the config file to read, or "" when there is none.
func FindFile(src Sources) (string, error) {
	if src.File != "" {
		if _, err := os.Stat(src.File); err != nil {
			return "", exitcode.With(exitcode.NotFound, fmt.Errorf("--config: %w", err))
		}
		return src.File, nil
	}
	candidates := []string{}
	if src.WorkDir != "" {
		candidates = append(candidates, filepath.Join(src.WorkDir, "regctl.yaml"))
	}
	if src.ConfigHome != "" {
		candidates = append(candidates, filepath.Join(src.ConfigHome, "regctl", "config.yaml"))
	}
	for _, c := range candidates {
		if _, err := os.Stat(c); err == nil {
			return c, nil
		}
	}
	return "", nil
}

// Load reads, merges and validates the configuration.
func Load(src Sources) (*Config, error) {
	file, err := FindFile(src)
	if err != nil {
		return nil, err
	}
	var raw []byte
	if file != "" {
		raw, err = os.ReadFile(file)
		if err != nil {
			return nil, fmt.Errorf("reading config: %w", err)
		}
	}
	return load(file, raw, src)
}

// registryName is what a registry's config key may be: viper folds case and splits keys at dots, so
// upper case and dots are refused rather than silently changed.
var registryName = regexp.MustCompile(`^[a-z0-9][a-z0-9_-]*$`)

func load(file string, raw []byte, src Sources) (*Config, error) {
	schema := schemaFor(src.Kinds)
	var problems []Problem
	lines := map[string]int{}
	v := viper.New()
	v.SetConfigType("yaml")
	if len(bytes.TrimSpace(raw)) > 0 {
		var doc yaml.Node
		if err := yaml.Unmarshal(raw, &doc); err != nil {
			return nil, &ValidationError{[]Problem{{Source: file, Path: "(file)", Msg: "not valid YAML: " + err.Error()}}}
		}
		if len(doc.Content) > 0 {
			var ps []Problem
			checkNode(doc.Content[0], schema, "", &ps, lines)
			for i := range ps {
				ps[i].Source = file
				if ps[i].Path == "" {
					ps[i].Path = "(top level)"
				}
			}
			problems = append(problems, ps...)
		}
		if len(problems) > 0 {
			return nil, &ValidationError{problems}
		}
		if err := v.ReadConfig(bytes.NewReader(raw)); err != nil {
			return nil, &ValidationError{[]Problem{{Source: file, Path: "(file)", Msg: err.Error()}}}
		}
	}

	// Environment: REGCTL_A_B maps to the known key a.b (known from the schema or the file). This is
	// done by hand rather than with viper.AutomaticEnv so the environment can be injected in tests.
	known := map[string]string{}
	var keys []string
	scalarKeys(schema, "", &keys)
	keys = append(keys, v.AllKeys()...)
	// Every key of a registry the file defines can be set from the environment, not only the keys the
	// file happens to set.
	entry := schema.fields["registries"].elem
	for name := range v.GetStringMap("registries") {
		shape := entry
		if s, ok := entry.variants[v.GetString("registries."+name+".type")]; ok {
			shape = s
		}
		for field := range shape.fields {
			keys = append(keys, "registries."+name+"."+field)
		}
	}
	for _, k := range keys {
		known["REGCTL_"+strings.ToUpper(strings.NewReplacer(".", "_", "-", "_").Replace(k))] = k
	}
	envKeys := map[string]string{}
	for _, kv := range src.Environ {
		name, val, ok := strings.Cut(kv, "=")
		if !ok || !strings.HasPrefix(name, "REGCTL_") {
			continue
		}
		key, ok := known[name]
		if !ok {
			continue
		}
		if s := lookup(schema, key); s != nil {
			if msg := checkEnvValue(s, val); msg != "" {
				problems = append(problems, Problem{Source: "env " + name, Path: key, Msg: msg})
				continue
			}
		}
		v.Set(key, envValue(key, val))
		envKeys[key] = name
	}
	if len(problems) > 0 {
		return nil, &ValidationError{problems}
	}
	for k, val := range src.Overrides {
		v.Set(k, val)
	}

	cfg := &Config{}
	if err := v.Unmarshal(cfg); err != nil {
		return nil, &ValidationError{[]Problem{{Source: "merged config", Path: "(decode)", Msg: err.Error()}}}
	}
	cfg.File = file
	cfg.normalise()
	problems = append(problems, cfg.check(src.Kinds)...)
	for i := range problems {
		p := &problems[i]
		if name, ok := envKeys[p.Path]; ok {
			p.Source = "env " + name
		} else if line, ok := lines[p.Path]; ok && file != "" {
			p.Source, p.Line = file, line
		} else if line, ok := lines[parentPath(p.Path)]; ok && file != "" {
			p.Source, p.Line = file, line // a required key is missing: point at its parent
		}
	}
	if len(problems) > 0 {
		return nil, &ValidationError{problems}
	}
	return cfg, nil
}

// normalise folds values viper lower-cases back: severities are upper-case.
func (c *Config) normalise() {
	if len(c.Scan.FailOn) > 0 {
		up := make(map[string]int, len(c.Scan.FailOn))
		for k, n := range c.Scan.FailOn {
			up[strings.ToUpper(k)] = n
		}
		c.Scan.FailOn = up
	}
}

func parentPath(p string) string {
	if i := strings.LastIndexByte(p, '.'); i >= 0 {
		return p[:i]
	}
	return ""
}

// envValue splits comma-separated environment values for list keys.
func envValue(key, val string) any {
	switch key {
	case "scan.severities", "build.platforms":
		return strings.Split(val, ",")
	}
	return val
}

// check validates the merged values: what the schema cannot say (cross-field rules, references).
func (c *Config) check(kinds []Kind) []Problem {
	var ps []Problem
	add := func(path, format string, args ...any) {
		ps = append(ps, Problem{Path: path, Msg: fmt.Sprintf(format, args...)})
	}
	names := make([]string, 0, len(c.Registries))
	for n := range c.Registries {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, name := range names {
		r := c.Registries[name]
		p := "registries." + name
		kind, known := findKind(kinds, r.Type)
		switch {
		case r.Type == "":
			add(p+".type", "required: one of %s", strings.Join(kindTypes(kinds), ", "))
		case !known:
			add(p+".type", "%q is not one of %s", r.Type, strings.Join(kindTypes(kinds), ", "))
		default:
			if kind.NeedsURL && r.URL == "" {
				add(p+".url", "required for type %s (e.g. %s)", r.Type, kind.URLExample)
			}
			if kind.Check != nil {
				for _, kp := range kind.Check(r) {
					add(p+"."+kp.Path, "%s", kp.Msg)
				}
			}
		}
		if strings.Contains(r.URL, "://") && !strings.HasPrefix(r.URL, "https://") && !strings.HasPrefix(r.URL, "http://") {
			add(p+".url", "only http:// and https:// URLs are supported")
		}
		set := 0
		for _, s := range []string{r.Password, r.PasswordEnv, r.PasswordFile} {
			if s != "" {
				set++
			}
		}
		if set > 1 {
			add(p, "set only one of password, password_env, password_file")
		}
		if set > 0 && r.Username == "" {
			add(p+".username", "required when a password is configured")
		}
	}
	if c.DefaultRegistry != "" {
		if _, ok := c.Registries[c.DefaultRegistry]; !ok {
			add("default_registry", "%q is not defined under registries", c.DefaultRegistry)
		}
	}
	for sev, n := range c.Scan.FailOn {
		if !contains(severities, sev) {
			add("scan.fail_on."+sev, "unknown severity; use %s", strings.Join(severities, ", "))
		}
		if n < 0 {
			add("scan.fail_on."+sev, "must be 0 or more")
		}
	}
	if c.Scan.CVSSThreshold < 0 || c.Scan.CVSSThreshold > 10 {
		add("scan.cvss_threshold", "must be between 0 and 10")
	}
	for _, k := range []struct {
		path string
		n    int
	}{{"backup.keep_days", c.Backup.KeepDays}, {"backup.keep_last", c.Backup.KeepLast}, {"backup.jobs", c.Backup.Jobs}} {
		if k.n < 0 {
			add(k.path, "must be 0 or more")
		}
	}
	return ps
}

func findKind(kinds []Kind, typ string) (Kind, bool) {
	for _, k := range kinds {
		if k.Type == typ {
			return k, true
		}
	}
	return Kind{}, false
}

func kindTypes(kinds []Kind) []string {
	out := make([]string, len(kinds))
	for i, k := range kinds {
		out[i] = k.Type
	}
	return out
}

// Redacted is the config as `config view` shows it: inline secrets replaced.
func (c *Config) Redacted() *Config {
	out := *c
	out.Registries = make(map[string]Registry, len(c.Registries))
	for n, r := range c.Registries {
		if r.Password != "" {
			r.Password = "REDACTED"
		}
		out.Registries[n] = r
	}
	return &out
}

// UserConfigHome returns $XDG_CONFIG_HOME or ~/.config, from an injected environment lookup.
func UserConfigHome(getenv func(string) string) string {
	if d := getenv("XDG_CONFIG_HOME"); d != "" {
		return d
	}
	if h := getenv("HOME"); h != "" {
		return filepath.Join(h, ".config")
	}
	return ""
}
