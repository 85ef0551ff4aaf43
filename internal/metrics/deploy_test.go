package metrics

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/v1/remote"
	"gopkg.in/yaml.v3"

	"github.com/regctl-dev/regctl/internal/localreg/localregtest"
	"github.com/regctl-dev/regctl/internal/registry"
)

const (
	rulesFile     = "../../deploy/prometheus/registry-rules.yaml"
	rulesTestFile = "../../deploy/prometheus/registry-rules.test.yaml"
	dashboardFile = "../../deploy/grafana/registry-dashboard.json"
)

// tool finds a peer tool: $ENV, else PATH. Missing, the test skips, or fails when
// REGCTL_TEST_REQUIRE_TOOLS is set (CI).
func tool(t *testing.T, env, name string) string {
	t.Helper()
	if p := os.Getenv(env); p != "" {
		if _, err := os.Stat(p); err != nil {
			t.Fatalf("%s=%s: %v", env, p, err)
		}
		return p
	}
	if p, err := exec.LookPath(name); err == nil {
		return p
	}
	if os.Getenv("REGCTL_TEST_REQUIRE_TOOLS") != "" {
		t.Fatalf("%s not found (set %s or put it on PATH; apt-get install prometheus)", name, env)
	}
	t.Skipf("%s not found (set %s, or apt-get install prometheus)", name, env)
	return ""
}

// promtool check rules and promtool test rules: the rules load and every alert fires and resolves
// as registry-rules.test.yaml says.
func TestRulesPassPromtool(t *testing.T) {
	promtool := tool(t, "REGCTL_TEST_PROMTOOL", "promtool")
	for _, args := range [][]string{{"check", "rules", filepath.Base(rulesFile)}, {"test", "rules", filepath.Base(rulesTestFile)}} {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
		cmd := exec.CommandContext(ctx, promtool, args...)
		cmd.Dir = filepath.Dir(rulesFile)
		out, err := cmd.CombinedOutput()
		cancel()
		if err != nil || !strings.Contains(string(out), "SUCCESS") {
			t.Errorf("promtool %s: %v\n%s", strings.Join(args, " "), err, out)
		}
	}
	// Every alert of the rules has a unit test.
	raw, _ := os.ReadFile(rulesTestFile)
	for _, a := range alertRules(t) {
		if !strings.Contains(string(raw), "alertname: "+a.Alert) {
			t.Errorf("alert %s has no promtool test", a.Alert)
		}
	}
}

type alertRule struct {
	Alert string `yaml:"alert"`
	Expr  string `yaml:"expr"`
}

func alertRules(t *testing.T) []alertRule { return alertRulesOf(t, rulesFile) }

func guideAlerts(t *testing.T) []alertRule {
	return alertRulesOf(t, "../../testdata/monitoring/prometheus-registry-rules.yaml")
}

func alertRulesOf(t *testing.T, file string) []alertRule {
	t.Helper()
	raw, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	var doc struct {
		Groups []struct {
			Rules []alertRule `yaml:"rules"`
		} `yaml:"groups"`
	}
	if err := yaml.Unmarshal(raw, &doc); err != nil {
		t.Fatal(err)
	}
	var out []alertRule
	for _, g := range doc.Groups {
		out = append(out, g.Rules...)
	}
	if len(out) < 3 {
		t.Fatalf("%d rules in %s", len(out), file)
	}
	return out
}

type dashTarget struct {
	panel, expr string
}

func dashboardExprs(t *testing.T) []dashTarget { return dashboardExprsOf(t, dashboardFile, true) }

func dashboardExprsOf(t *testing.T, file string, strict bool) []dashTarget {
	t.Helper()
	raw, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	var doc struct {
		Dashboard struct {
			Title      string `json:"title"`
			Templating struct {
				List []struct {
					Name, Type string
				} `json:"list"`
			} `json:"templating"`
			Panels []struct {
				Title   string `json:"title"`
				Targets []struct {
					Expr string `json:"expr"`
				} `json:"targets"`
				Datasource struct{ UID string } `json:"datasource"`
			} `json:"panels"`
		} `json:"dashboard"`
	}
	if err := json.Unmarshal(raw, &doc); err != nil {
		t.Fatal(err)
	}
	hasDS := false
	for _, v := range doc.Dashboard.Templating.List {
		hasDS = hasDS || (v.Type == "datasource" && v.Name == "datasource")
	}
	if strict && (!hasDS || doc.Dashboard.Title == "") {
		t.Errorf("the dashboard needs a title and a datasource template variable")
	}
	var out []dashTarget
	for _, p := range doc.Dashboard.Panels {
		if strict && p.Datasource.UID != "${datasource}" {
			t.Errorf("panel %q does not use the datasource variable", p.Title)
		}
		for _, tg := range p.Targets {
			out = append(out, dashTarget{p.Title, tg.Expr})
		}
	}
	return out
}

// grafanaVars replaces the dashboard's variables as Grafana would for "all registries".
func grafanaVars(expr string) string {
	return strings.NewReplacer("$__rate_interval", "30s", "$registry", ".*").Replace(expr)
}

// The guide's panels and alerts, rewritten, against real exporters: a Prometheus server scrapes the
// embedded registry's metrics listener, `regctl metrics serve` (in-process) and a job textfile
// served as node_exporter's textfile collector would; images are pushed and pulled; then every
// dashboard expression must return series, and every alert expression must be accepted by
// Prometheus with each of its metric selectors returning series (see checkSelector). Harbor's
// exporter is not run here: expressions only on harbor_* metrics are named and skipped (promtool's
// unit tests cover the alert).
func TestDashboardAndAlertsQueryRealSeries(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a Prometheus server")
	}
	prom := tool(t, "REGCTL_TEST_PROMETHEUS", "prometheus")
	srv := localregtest.Start(t, localregtest.Options{Metrics: true})
	reg := openOCI(t, srv.Host)
	seed(t, reg, "game-server")
	seed(t, reg, "tools")
	repo, _ := registry.RepositoryRef(reg, "game-server")
	if _, err := remote.Get(repo.Tag("latest"), reg.Remote()...); err != nil { // a pull: manifest GET
		t.Fatal(err)
	}

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	e := &Exporter{Collector: &Collector{Targets: []Target{{Source: reg, StoragePath: srv.Root}}, Timeout: 10 * time.Second}, Interval: time.Second}
	go e.Run(ctx)
	exporter := httptest.NewServer(e.Handler())
	defer exporter.Close()

	// The jobs' textfiles, as node_exporter serves its textfile directory.
	dir := t.TempDir()
	now := time.Now()
	for _, j := range []Job{
		{Name: "backup", Target: "local", Start: now.Add(-time.Minute), End: now},
		{Name: "lifecycle", Target: "local/game-server", Start: now.Add(-time.Minute), End: now},
		{Name: "replicate", Target: "local -> dr", Start: now.Add(-time.Minute), End: now},
	} {
		if err := WriteJobTextfile(filepath.Join(dir, j.Name+".prom"), j); err != nil {
			t.Fatal(err)
		}
	}
	node := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		for _, n := range []string{"backup", "lifecycle", "replicate"} {
			raw, _ := os.ReadFile(filepath.Join(dir, n+".prom"))
			w.Write(raw)
		}
	}))
	defer node.Close()

	api := startPrometheus(t, prom, map[string]string{
		"registry": hostOf(srv.MetricsURL),
		"regctl":   hostOf(exporter.URL),
		"node":     hostOf(node.URL),
	})
	waitFor(t, 60*time.Second, "every target scraped, rates over 3 scrapes", func() bool {
		up := query(t, api, `count(up == 1) == 3 and count(count_over_time(regctl_registry_up[30s]) >= 3)`)
		return len(up) > 0
	})
	// More traffic while Prometheus watches, so rates are not zero.
	for range 3 {
		remote.Get(repo.Tag("latest"), reg.Remote()...)
		time.Sleep(time.Second)
	}

	skipped := 0
	for _, d := range dashboardExprs(t) {
		expr := grafanaVars(d.expr)
		sels := promSelectors(expr)
		if onlyHarbor(sels) {
			t.Logf("dashboard %q: %s: Harbor exporter metrics, not run here", d.panel, expr)
			skipped++
			continue
		}
		if res := query(t, api, expr); len(res) == 0 {
			t.Errorf("dashboard %q: %s returns no series", d.panel, expr)
		}
		for _, s := range sels {
			checkSelector(t, api, "dashboard "+d.panel, s)
		}
	}
	for _, a := range alertRules(t) {
		sels := promSelectors(a.Expr)
		if len(sels) == 0 {
			t.Errorf("alert %s: no metric selector found in %s", a.Alert, a.Expr)
		}
		if onlyHarbor(sels) {
			t.Logf("alert %s: Harbor exporter metrics, not run here (promtool tests it)", a.Alert)
			skipped++
			continue
		}
		query(t, api, a.Expr) // accepted by Prometheus (empty: the condition is false, as it should be)
		for _, s := range sels {
			checkSelector(t, api, "alert "+a.Alert, s)
		}
	}
	// The server loaded the rules file and evaluates every rule without error.
	var rules struct {
		Data struct {
			Groups []struct {
				Rules []struct {
					Name, Health, LastError string
				}
			}
		}
	}
	waitFor(t, 20*time.Second, "every rule evaluated", func() bool {
		getJSON(t, api+"/api/v1/rules", &rules)
		for _, g := range rules.Data.Groups {
			for _, r := range g.Rules {
				if r.Health == "unknown" {
					return false
				}
			}
		}
		return len(rules.Data.Groups) > 0
	})
	n := 0
	for _, g := range rules.Data.Groups {
		for _, r := range g.Rules {
			n++
			if r.Health != "ok" {
				t.Errorf("rule %s: health %q %s", r.Name, r.Health, r.LastError)
			}
		}
	}
	if n != len(alertRules(t)) {
		t.Errorf("Prometheus loaded %d rules, the file has %d", n, len(alertRules(t)))
	}

	// The guide's own files, through the same check: the expressions on metrics or label values
	// that nothing exports fail it. The other three exist but are wrong in what they compute (an
	// unaggregated quantile, a per-second rate shown as a percentage): docs/monitoring.md, and the
	// rewritten rules' promtool tests.
	guideFails := map[string]bool{}
	guide := map[string]string{}
	for _, a := range guideAlerts(t) {
		guide["alert "+a.Alert] = a.Expr
	}
	for i, d := range dashboardExprsOf(t, "../../testdata/monitoring/grafana-registry-dashboard.json", false) {
		guide[fmt.Sprintf("panel %s #%d", d.panel, i)] = d.expr
	}
	for where, expr := range guide {
		for _, s := range promSelectors(expr) {
			if selectorProblem(t, api, "guide "+where, s) != "" {
				guideFails[where] = true
			}
		}
	}
	wantFail := []string{"alert RegistryStorageFull", "panel Total Images #0", "panel Storage Usage #1", "panel Pull/Push Rate #2", "panel Pull/Push Rate #3"}
	for _, w := range wantFail {
		if !guideFails[w] {
			t.Errorf("the guide's %s (%s) passed the check", w, guide[w])
		}
	}
	if len(guideFails) != len(wantFail) {
		t.Errorf("guide expressions failing: %v, want %v", guideFails, wantFail)
	}

	t.Logf("checked %d dashboard expressions and %d alerts; %d Harbor-only skipped", len(dashboardExprs(t)), len(alertRules(t)), skipped)
}

func onlyHarbor(sels []selector) bool {
	for _, s := range sels {
		if !strings.HasPrefix(s.name, "harbor_") {
			return false
		}
	}
	return len(sels) > 0
}

// checkSelector: the selector must return series. Equality matchers are never relaxed (a label
// value nothing exports, like the guide's method="GET", fails). A regex matcher that matches no
// value yet (code=~"5..": no request has failed) is dropped only if its label exists on the metric.
func checkSelector(t *testing.T, api, where string, s selector) {
	t.Helper()
	if p := selectorProblem(t, api, where, s); p != "" {
		t.Error(p)
	}
}

func selectorProblem(t *testing.T, api, where string, s selector) string {
	t.Helper()
	if len(query(t, api, s.String())) > 0 {
		return ""
	}
	relaxed := selector{name: s.name}
	var dropped []matcher
	for _, m := range s.matchers {
		if (m.op == "=~" || m.op == "!~") && len(query(t, api, selector{name: s.name, matchers: []matcher{m}}.String())) == 0 {
			dropped = append(dropped, m)
			relaxed.matchers = append(relaxed.matchers, matcher{m.label, "!=", ""})
			continue
		}
		relaxed.matchers = append(relaxed.matchers, m)
	}
	if len(dropped) == 0 || len(query(t, api, relaxed.String())) == 0 {
		return fmt.Sprintf("%s: %s returns no series: no exporter has it", where, s)
	}
	t.Logf("%s: %s has no matching value yet; %s exists", where, s, relaxed)
	return ""
}

func hostOf(u string) string {
	p, err := url.Parse(u)
	if err != nil {
		return u
	}
	return p.Host
}

func freePort(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// startPrometheus runs the Prometheus server on 127.0.0.1 with the rules file and a 1s scrape of
// each job's target, and returns its URL; it stops with the test.
func startPrometheus(t *testing.T, bin string, targets map[string]string) string {
	t.Helper()
	dir := t.TempDir()
	// The rules file as it is, but for its groups' evaluation intervals (30s, 1m): the global 1s
	// applies, so every rule has been evaluated within seconds.
	raw, err := os.ReadFile(rulesFile)
	if err != nil {
		t.Fatal(err)
	}
	var kept []string
	for _, line := range strings.Split(string(raw), "\n") {
		if strings.TrimSpace(line) == "interval: 30s" || strings.TrimSpace(line) == "interval: 1m" {
			continue
		}
		kept = append(kept, line)
	}
	rules := filepath.Join(dir, "registry-rules.yaml")
	if err := os.WriteFile(rules, []byte(strings.Join(kept, "\n")), 0o644); err != nil {
		t.Fatal(err)
	}
	var cfg strings.Builder
	fmt.Fprintf(&cfg, "global: {scrape_interval: 1s, evaluation_interval: 1s}\nrule_files: [%q]\nscrape_configs:\n", rules)
	for _, job := range []string{"registry", "regctl", "node"} {
		fmt.Fprintf(&cfg, "  - job_name: %s\n    honor_labels: %v\n    static_configs: [{targets: [%q]}]\n", job, job == "node", targets[job])
	}
	if err := os.WriteFile(filepath.Join(dir, "prometheus.yml"), []byte(cfg.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	addr := freePort(t)
	var logs strings.Builder
	cmd := exec.Command(bin, "--config.file="+filepath.Join(dir, "prometheus.yml"), "--storage.tsdb.path="+filepath.Join(dir, "data"),
		"--web.listen-address="+addr, "--log.level=warn")
	cmd.Stdout, cmd.Stderr = &logs, &logs
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan struct{})
	go func() { cmd.Wait(); close(exited) }()
	t.Cleanup(func() {
		cmd.Process.Signal(os.Interrupt)
		select {
		case <-exited:
		case <-time.After(10 * time.Second):
			cmd.Process.Kill()
			<-exited
		}
		if t.Failed() {
			t.Logf("prometheus log:\n%s", logs.String())
		}
	})
	api := "http://" + addr
	waitFor(t, 30*time.Second, "prometheus ready", func() bool {
		select {
		case <-exited:
			t.Fatalf("prometheus exited:\n%s", logs.String())
		default:
		}
		resp, err := http.Get(api + "/-/ready")
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusOK
	})
	return api
}

func waitFor(t *testing.T, limit time.Duration, what string, ok func() bool) {
	t.Helper()
	deadline := time.Now().Add(limit)
	for !ok() {
		if time.Now().After(deadline) {
			t.Fatalf("waited %s for %s", limit, what)
		}
		time.Sleep(250 * time.Millisecond)
	}
}

func getJSON(t *testing.T, u string, v any) {
	t.Helper()
	resp, err := http.Get(u)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(io.LimitReader(resp.Body, 16<<20))
	if err := json.Unmarshal(raw, v); err != nil {
		t.Fatalf("%s: %v\n%s", u, err, raw)
	}
}

// query runs an instant query; an expression Prometheus refuses fails the test.
func query(t *testing.T, api, expr string) []json.RawMessage {
	t.Helper()
	var res struct {
		Status, Error string
		Data          struct {
			ResultType string            `json:"resultType"`
			Result     []json.RawMessage `json:"result"`
		}
	}
	getJSON(t, api+"/api/v1/query?query="+url.QueryEscape(expr), &res)
	if res.Status != "success" {
		t.Fatalf("query %s: %s", expr, res.Error)
	}
	if res.Data.ResultType == "scalar" {
		return []json.RawMessage{nil}
	}
	return res.Data.Result
}
