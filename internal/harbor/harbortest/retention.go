package harbortest

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/bmatcuk/doublestar/v4"
)

// Tag retention as Harbor's handler/retention.go validates it and pkg/retention evaluates it: one
// policy per project (project metadata retention_id), at most 15 rules, rules that retain, OR-ed;
// in every repository some rule's scope selects, whatever no rule retains is deleted (or, in a dry
// run, only logged as DEL). Executions run in the background and log one table per repository.

// maxRetentionRules is Harbor's limit per policy (per project).
const maxRetentionRules = 15

type retentionSelector struct {
	Kind       string `json:"kind"`
	Decoration string `json:"decoration"`
	Pattern    string `json:"pattern"`
	Extras     string `json:"extras"`
}

type retentionRule struct {
	ID             int64                          `json:"id"`
	Priority       int64                          `json:"priority"`
	Disabled       bool                           `json:"disabled"`
	Action         string                         `json:"action"`
	Template       string                         `json:"template"`
	Params         map[string]any                 `json:"params"`
	TagSelectors   []retentionSelector            `json:"tag_selectors"`
	ScopeSelectors map[string][]retentionSelector `json:"scope_selectors"`
}

type retentionDoc struct {
	ID        int64           `json:"id"`
	Algorithm string          `json:"algorithm"`
	Rules     []retentionRule `json:"rules"`
	Trigger   *struct {
		Kind       string         `json:"kind"`
		Settings   map[string]any `json:"settings"`
		References map[string]any `json:"references"`
	} `json:"trigger"`
	Scope *struct {
		Level string `json:"level"`
		Ref   int64  `json:"ref"`
	} `json:"scope"`
}

type retentionExecution struct {
	id, policyID int64
	start, end   time.Time
	status       string // Running, Success, Error (Harbor's task statuses)
	dryRun       bool
	tasks        []*retentionTask
}

type retentionTask struct {
	id, executionID int64
	repository      string
	status          string
	start, end      time.Time
	total, retained int
	log             string
}

// retentionTemplates are the rule templates Harbor registers, with their parameter kind.
var retentionTemplates = map[string]string{"latestPushedK": "count", "latestPulledN": "count", "latestActiveK": "count",
	"nDaysSinceLastPush": "days", "nDaysSinceLastPull": "days", "lastXDays": "days", "always": ""}

func (e *Emulator) serveRetentions(w http.ResponseWriter, r *http.Request, who principal, rest []string) {
	m := r.Method
	switch {
	case len(rest) == 0 && m == http.MethodPost:
		e.createRetention(w, r, who)
		return
	case len(rest) == 0:
		methodNotAllowed(w)
		return
	}
	id, err := strconv.ParseInt(rest[0], 10, 64)
	if err != nil {
		writeErr(w, http.StatusBadRequest, "BAD_REQUEST", "id in path must be of type int64: "+strconv.Quote(rest[0]))
		return
	}
	pol := e.retentions[id]
	var p *project
	if pol != nil {
		p = e.projectByID(pol.Scope.Ref)
	}
	if pol == nil || p == nil {
		writeErr(w, http.StatusNotFound, "NOT_FOUND", fmt.Sprintf("retention policy %d not found", id))
		return
	}
	action := map[string]string{http.MethodGet: "read", http.MethodPut: "update", http.MethodDelete: "delete", http.MethodPost: "update", http.MethodPatch: "update"}[m]
	if len(rest) > 1 {
		action = map[string]string{http.MethodGet: "list", http.MethodPost: "update", http.MethodPatch: "update"}[m]
	}
	if action == "" || !who.can(e, p.name, "tag-retention", action) {
		denied(w, who, "manage the tag retention of "+p.name)
		return
	}
	switch {
	case len(rest) == 1 && m == http.MethodGet:
		writeJSON(w, http.StatusOK, pol)
	case len(rest) == 1 && m == http.MethodPut:
		doc, ok := e.decodeRetention(w, r)
		if !ok {
			return
		}
		if doc.Scope.Ref != pol.Scope.Ref {
			writeErr(w, http.StatusBadRequest, "BAD_REQUEST", "the policy's scope cannot move to another project")
			return
		}
		doc.ID = id
		e.retentions[id] = doc
		w.WriteHeader(http.StatusOK)
	case len(rest) == 1 && m == http.MethodDelete:
		delete(e.retentions, id)
		delete(p.metadata, "retention_id")
		w.WriteHeader(http.StatusOK)
	case len(rest) == 2 && rest[1] == "executions" && m == http.MethodPost:
		e.triggerRetention(w, r, p, pol)
	case len(rest) == 2 && rest[1] == "executions" && m == http.MethodGet:
		e.listRetentionExecutions(w, r, id)
	case len(rest) >= 3 && rest[1] == "executions":
		eid, err := strconv.ParseInt(rest[2], 10, 64)
		x := e.retentionExecs[eid]
		if err != nil || x == nil || x.policyID != id {
			writeErr(w, http.StatusNotFound, "NOT_FOUND", "retention execution "+rest[2]+" not found")
			return
		}
		switch {
		case len(rest) == 4 && rest[3] == "tasks" && m == http.MethodGet:
			e.listRetentionTasks(w, r, x)
		case len(rest) == 5 && rest[3] == "tasks" && m == http.MethodGet:
			for _, t := range x.tasks {
				if itoa(t.id) == rest[4] {
					w.Header().Set("Content-Type", "text/plain; charset=utf-8")
					_, _ = io.WriteString(w, t.log)
					return
				}
			}
			writeErr(w, http.StatusNotFound, "NOT_FOUND", "retention task "+rest[4]+" not found")
		default:
			writeErr(w, http.StatusNotFound, "NOT_FOUND", "the emulator does not serve "+m+" "+r.URL.Path)
		}
	default:
		writeErr(w, http.StatusNotFound, "NOT_FOUND", "the emulator does not serve "+m+" "+r.URL.Path)
	}
}

func (e *Emulator) projectByID(id int64) *project {
	for _, p := range e.projects {
		if p.id == id {
			return p
		}
	}
	return nil
}

func (e *Emulator) createRetention(w http.ResponseWriter, r *http.Request, who principal) {
	doc, ok := e.decodeRetention(w, r)
	if !ok {
		return
	}
	p := e.projectByID(doc.Scope.Ref)
	if p == nil {
		writeErr(w, http.StatusBadRequest, "BAD_REQUEST", fmt.Sprintf("project %d of the policy's scope not found", doc.Scope.Ref))
		return
	}
	if !who.can(e, p.name, "tag-retention", "create") {
		denied(w, who, "create a tag retention policy in "+p.name)
		return
	}
	if old, has := p.metadata["retention_id"]; has {
		writeErr(w, http.StatusBadRequest, "BAD_REQUEST", fmt.Sprintf("project %s already has retention policy %s", p.name, old))
		return
	}
	doc.ID = e.id()
	e.retentions[doc.ID] = doc
	p.metadata["retention_id"] = itoa(doc.ID)
	w.Header().Set("Location", apiBase+"/retentions/"+itoa(doc.ID))
	w.WriteHeader(http.StatusCreated)
}

// decodeRetention reads a RetentionPolicy and checks it as Harbor's handler (checkRuleConflict,
// the 15-rule limit) and the policy model's validation (algorithm, templates and their parameters,
// selectors, the trigger's cron, the scope) do.
func (e *Emulator) decodeRetention(w http.ResponseWriter, r *http.Request) (*retentionDoc, bool) {
	bad := func(format string, a ...any) (*retentionDoc, bool) {
		writeErr(w, http.StatusBadRequest, "BAD_REQUEST", fmt.Sprintf(format, a...))
		return nil, false
	}
	body, err := io.ReadAll(io.LimitReader(r.Body, 1<<20))
	if err != nil {
		return bad("reading the policy: %v", err)
	}
	var doc retentionDoc
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.UseNumber()
	if err := dec.Decode(&doc); err != nil {
		return bad("parsing the policy: %v", err)
	}
	switch {
	case doc.Algorithm != "or":
		return bad("algorithm: must be or, got %q", doc.Algorithm)
	case doc.Scope == nil || doc.Scope.Level != "project":
		return bad("scope.level: must be project")
	case doc.Trigger == nil || doc.Trigger.Kind != "Schedule":
		return bad("trigger.kind: must be Schedule")
	case len(doc.Rules) > maxRetentionRules:
		return bad("only %d rules are allowed at most", maxRetentionRules)
	}
	cron, has := doc.Trigger.Settings["cron"]
	if !has {
		return bad("trigger.settings.cron is required (\"\" for no schedule)")
	}
	cs, isString := cron.(string)
	if !isString {
		return bad("trigger.settings.cron: must be a string")
	}
	if cs != "" {
		if err := validateCron(cs, false); err != nil {
			return bad("trigger.settings.cron %q: %v", cs, err)
		}
	}
	for i := range doc.Rules {
		rule := &doc.Rules[i]
		kind, known := retentionTemplates[rule.Template]
		switch {
		case rule.Action != "retain":
			return bad("rules[%d].action: must be retain", i)
		case !known:
			return bad("rules[%d].template: unknown template %q", i, rule.Template)
		}
		if kind != "" {
			n, ok := intParam(rule.Params[rule.Template])
			limit := int64(32767)
			if kind == "days" {
				limit = 20190905
			}
			if !ok || n < 0 || n >= limit {
				return bad("rules[%d].params.%s: a number from 0 to %d is required", i, rule.Template, limit-1)
			}
		}
		for j, s := range rule.TagSelectors {
			if s.Kind != "doublestar" || (s.Decoration != "matches" && s.Decoration != "excludes") {
				return bad("rules[%d].tag_selectors[%d]: kind doublestar with decoration matches or excludes", i, j)
			}
			if s.Extras != "" && json.Unmarshal([]byte(s.Extras), new(map[string]any)) != nil {
				return bad("rules[%d].tag_selectors[%d].extras: not a JSON object string", i, j)
			}
		}
		for key, list := range rule.ScopeSelectors {
			for j, s := range list {
				if key != "repository" || s.Kind != "doublestar" || (s.Decoration != "repoMatches" && s.Decoration != "repoExcludes") {
					return bad("rules[%d].scope_selectors.%s[%d]: repository selectors of kind doublestar with repoMatches or repoExcludes", i, key, j)
				}
			}
		}
		for k := range i {
			if sameRule(doc.Rules[k], *rule) {
				writeErr(w, http.StatusConflict, "CONFLICT", fmt.Sprintf("rule %d is conflict with rule %d", i, k))
				return nil, false
			}
		}
	}
	return &doc, true
}

// sameRule is Harbor's checkRuleConflict: two rules alike but for id and priority.
func sameRule(a, b retentionRule) bool {
	a.ID, b.ID, a.Priority, b.Priority = 0, 0, 0, 0
	ja, _ := json.Marshal(a)
	jb, _ := json.Marshal(b)
	return bytes.Equal(ja, jb)
}

func intParam(v any) (int64, bool) {
	switch n := v.(type) {
	case json.Number:
		i, err := n.Int64()
		return i, err == nil
	case float64:
		return int64(n), n == float64(int64(n))
	}
	return 0, false
}

// validateCron is Harbor's ValidateCronString: six fields, seconds first, seconds exactly 0; for
// replication the minutes may not be "*" either.
func validateCron(s string, replication bool) error {
	f := strings.Fields(s)
	switch {
	case len(f) != 6:
		return fmt.Errorf("a cron of 6 fields (seconds first) is required, got %d", len(f))
	case f[0] != "0":
		return fmt.Errorf("the seconds field must be 0")
	case replication && f[1] == "*":
		return fmt.Errorf("* is not allowed for the Minutes field")
	}
	for i, field := range f {
		for _, part := range strings.Split(field, ",") {
			if part == "" || strings.Trim(part, "0123456789*/-?#ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz") != "" {
				return fmt.Errorf("field %d %q is not a cron field", i+1, field)
			}
		}
	}
	return nil
}

func (e *Emulator) triggerRetention(w http.ResponseWriter, r *http.Request, p *project, pol *retentionDoc) {
	var body struct {
		DryRun *bool `json:"dry_run"`
	}
	if err := json.NewDecoder(io.LimitReader(r.Body, 1<<16)).Decode(&body); err != nil {
		writeErr(w, http.StatusBadRequest, "BAD_REQUEST", "the body {\"dry_run\": true|false} is required: "+err.Error())
		return
	}
	x := &retentionExecution{id: e.id(), policyID: pol.ID, start: e.now().UTC(), status: "Running", dryRun: body.DryRun != nil && *body.DryRun}
	e.retentionExecs[x.id] = x
	snapshot := *pol
	e.scanWG.Add(1)
	go func() {
		defer e.scanWG.Done()
		e.mu.Lock()
		defer e.mu.Unlock()
		e.runRetention(p, &snapshot, x)
	}()
	w.Header().Set("Location", apiBase+"/retentions/"+itoa(pol.ID)+"/executions/"+itoa(x.id))
	w.WriteHeader(http.StatusCreated)
}

// retentionCandidate is an artifact as the retention job sees it: push and pull times are the
// newest of the artifact's and its tags'.
type retentionCandidate struct {
	a              *artifact
	tags           []string
	pushed, pulled time.Time
}

// runRetention evaluates the policy in every repository of the project (pkg/retention): the
// caller holds e.mu.
func (e *Emulator) runRetention(p *project, pol *retentionDoc, x *retentionExecution) {
	now := e.now().UTC()
	bg := (&http.Request{}).WithContext(context.Background())
	for _, rp := range p.sortedRepos() {
		short := strings.TrimPrefix(rp.name, p.name+"/")
		var rules []retentionRule
		for _, rule := range pol.Rules {
			if !rule.Disabled && repoSelected(rule.ScopeSelectors["repository"], short) {
				rules = append(rules, rule)
			}
		}
		if len(rules) == 0 {
			continue // a repository no rule's scope selects is untouched
		}
		var cands []*retentionCandidate
		for _, a := range rp.listed() {
			c := &retentionCandidate{a: a, pushed: a.pushTime, pulled: a.pullTime}
			for _, t := range a.sortedTags() {
				c.tags = append(c.tags, t.name)
				if t.pushTime.After(c.pushed) {
					c.pushed = t.pushTime
				}
				if t.pullTime.After(c.pulled) {
					c.pulled = t.pullTime
				}
			}
			cands = append(cands, c)
		}
		retained := map[*retentionCandidate]bool{}
		for _, rule := range rules {
			var sel []*retentionCandidate
			for _, c := range cands {
				if tagsSelected(rule.TagSelectors, c.tags) {
					sel = append(sel, c)
				}
			}
			for _, c := range evaluateRule(rule, sel, now) {
				retained[c] = true
			}
		}
		task := &retentionTask{id: e.id(), executionID: x.id, repository: rp.name, status: "Success", start: now, end: now, total: len(cands)}
		var rows [][]string
		for _, c := range cands {
			mark := "RETAIN"
			switch {
			case retained[c]:
				task.retained++
			case rp.referenced(c.a.digest):
				mark = "ERR" // an index lists it: Harbor's delete fails
				task.retained++
			case x.dryRun:
				mark = "DEL"
			default:
				mark = "DEL"
				e.deleteDeeply(bg, rp, c.a)
			}
			rows = append(rows, []string{c.a.digest, strings.Join(c.tags, ","), "image", "", logTime(c.pushed), logTime(c.pulled), logTime(c.a.pushTime), mark})
		}
		task.log = retentionLog(now, rp.name, x.dryRun, rows)
		x.tasks = append(x.tasks, task)
	}
	x.status, x.end = "Success", now
}

func repoSelected(sels []retentionSelector, repo string) bool {
	for _, s := range sels {
		m := globMatch(s.Pattern, repo)
		if (s.Decoration == "repoMatches") != m {
			return false
		}
	}
	return true
}

// tagsSelected applies a rule's tag selectors (AND): matches selects an artifact with some tag
// matching, excludes one with some tag not matching; untagged artifacts go by the extras'
// untagged flag (default true for matches, false for excludes).
func tagsSelected(sels []retentionSelector, tags []string) bool {
	for _, s := range sels {
		untagged := s.Decoration == "matches"
		var extras struct {
			Untagged *bool `json:"untagged"`
		}
		if json.Unmarshal([]byte(s.Extras), &extras) == nil && extras.Untagged != nil {
			untagged = *extras.Untagged
		}
		if len(tags) == 0 {
			if !untagged {
				return false
			}
			continue
		}
		hit := false
		for _, t := range tags {
			if globMatch(s.Pattern, t) == (s.Decoration == "matches") {
				hit = true
			}
		}
		if !hit {
			return false
		}
	}
	return true
}

// globMatch is doublestar matching; an empty pattern matches everything.
func globMatch(pattern, s string) bool {
	if pattern == "" {
		return true
	}
	ok, err := doublestar.Match(pattern, s)
	return err == nil && ok
}

func evaluateRule(rule retentionRule, sel []*retentionCandidate, now time.Time) []*retentionCandidate {
	n, _ := intParam(rule.Params[rule.Template])
	byTime := func(t func(*retentionCandidate) time.Time) []*retentionCandidate {
		sorted := append([]*retentionCandidate(nil), sel...)
		sort.SliceStable(sorted, func(i, j int) bool { return t(sorted[i]).After(t(sorted[j])) })
		return sorted[:min(int(n), len(sorted))]
	}
	within := func(t func(*retentionCandidate) time.Time) []*retentionCandidate {
		var out []*retentionCandidate
		for _, c := range sel {
			if !t(c).Before(now.Add(-time.Duration(n) * 24 * time.Hour)) {
				out = append(out, c)
			}
		}
		return out
	}
	pushed := func(c *retentionCandidate) time.Time { return c.pushed }
	pulled := func(c *retentionCandidate) time.Time { return c.pulled }
	active := func(c *retentionCandidate) time.Time {
		if c.pulled.After(c.pushed) {
			return c.pulled
		}
		return c.pushed
	}
	switch rule.Template {
	case "latestPushedK":
		return byTime(pushed)
	case "latestPulledN":
		return byTime(pulled)
	case "latestActiveK":
		return byTime(active)
	case "nDaysSinceLastPush", "lastXDays":
		return within(pushed)
	case "nDaysSinceLastPull":
		return within(pulled) // never pulled: the zero time, never within
	case "always":
		return sel
	}
	return nil
}

func logTime(t time.Time) string {
	if t.IsZero() || t.Unix() <= 0 {
		return ""
	}
	return t.UTC().Format("2006/01/02 15:04:05")
}

// retentionLog is the task log the job service keeps: log lines, then the result table.
func retentionLog(now time.Time, repo string, dryRun bool, rows [][]string) string {
	header := []string{"Digest", "Tag", "Kind", "Labels", "PushedTime", "PulledTime", "CreatedTime", "Retention"}
	width := make([]int, len(header))
	for i, h := range header {
		width[i] = len(h)
	}
	for _, r := range rows {
		for i, c := range r {
			width[i] = max(width[i], len(c))
		}
	}
	var b strings.Builder
	stamp := now.Format(time.RFC3339)
	fmt.Fprintf(&b, "%s [INFO] [/pkg/retention/job.go:83]: Run retention process.\n Repository: %s \n Rule Algorithm: or \n Dry Run: %v\n", stamp, repo, dryRun)
	fmt.Fprintf(&b, "%s [INFO] [/pkg/retention/job.go:98]: Load %d candidates from repository %s\n", stamp, len(rows), repo)
	fmt.Fprintf(&b, "%s [INFO] [/pkg/retention/job.go:225]: \n", stamp)
	line := func(cells []string) {
		b.WriteString("|")
		for i, c := range cells {
			fmt.Fprintf(&b, " %-*s |", width[i], c)
		}
		b.WriteString("\n")
	}
	line(header)
	b.WriteString("|")
	for _, wd := range width {
		b.WriteString(strings.Repeat("-", wd+2) + "|")
	}
	b.WriteString("\n")
	for _, r := range rows {
		line(r)
	}
	return b.String()
}

func (e *Emulator) listRetentionExecutions(w http.ResponseWriter, r *http.Request, policyID int64) {
	var list []*retentionExecution
	for _, x := range e.retentionExecs {
		if x.policyID == policyID {
			list = append(list, x)
		}
	}
	sort.Slice(list, func(i, j int) bool { return list[i].id > list[j].id }) // newest first
	from, to, ok := e.page(w, r, len(list))
	if !ok {
		return
	}
	out := []map[string]any{}
	for _, x := range list[from:to] {
		item := map[string]any{"id": x.id, "policy_id": x.policyID, "start_time": ts(x.start), "status": x.status, "trigger": "MANUAL", "dry_run": x.dryRun}
		if !x.end.IsZero() {
			item["end_time"] = ts(x.end)
		}
		out = append(out, item)
	}
	writeJSON(w, http.StatusOK, out)
}

func (e *Emulator) listRetentionTasks(w http.ResponseWriter, r *http.Request, x *retentionExecution) {
	from, to, ok := e.page(w, r, len(x.tasks))
	if !ok {
		return
	}
	out := []map[string]any{}
	for _, t := range x.tasks[from:to] {
		out = append(out, map[string]any{"id": t.id, "execution_id": t.executionID, "repository": t.repository, "job_id": randomSecret()[:24],
			"status": t.status, "status_code": 3, "start_time": ts(t.start), "end_time": ts(t.end), "total": t.total, "retained": t.retained})
	}
	writeJSON(w, http.StatusOK, out)
}

// RetentionPolicy is the project's stored retention policy as JSON ("" without one), for tests.
func (e *Emulator) RetentionPolicy(projectName string) string {
	e.mu.Lock()
	defer e.mu.Unlock()
	p := e.projects[projectName]
	if p == nil {
		return ""
	}
	id, _ := strconv.ParseInt(p.metadata["retention_id"], 10, 64)
	pol := e.retentions[id]
	if pol == nil {
		return ""
	}
	b, _ := json.Marshal(pol)
	return string(b)
}

// RetentionRuns counts the project's retention executions: dry runs and real ones, for tests.
func (e *Emulator) RetentionRuns(projectName string) (dry, real int) {
	e.mu.Lock()
	defer e.mu.Unlock()
	p := e.projects[projectName]
	if p == nil {
		return 0, 0
	}
	for _, x := range e.retentionExecs {
		if pol := e.retentions[x.policyID]; pol != nil && pol.Scope.Ref == p.id {
			if x.dryRun {
				dry++
			} else {
				real++
			}
		}
	}
	return dry, real
}
