package harbor

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"path"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/regctl-dev/regctl/internal/exitcode"
	"github.com/regctl-dev/regctl/internal/lifecycle"
	"github.com/regctl-dev/regctl/internal/registry"
)

// Harbor's tag retention, fed from an ECR lifecycle policy (spec B.5, B.9). ECR rules say what to
// expire and leave the rest; Harbor's say what to retain and delete the rest of every repository
// in their scope. So each ECR rule becomes a Harbor rule with the same selection that retains
// what ECR keeps, plus a complement rule that retains everything no ECR rule selects. That is
// exact only when every image is selected by at most one rule: Harbor deletes an image only when
// every rule selecting it lets it go, while ECR asks just the first. Translate refuses what it
// cannot express exactly and says why.

// MaxRetentionRules is Harbor's rule limit per retention policy, and so per project.
const MaxRetentionRules = 15

// RetentionSelector is a Harbor doublestar selector.
type RetentionSelector struct {
	Kind       string `json:"kind"`
	Decoration string `json:"decoration"`
	Pattern    string `json:"pattern"`
	Extras     string `json:"extras,omitempty"`
}

// RetentionRule is one retain rule.
type RetentionRule struct {
	Disabled       bool                           `json:"disabled"`
	Action         string                         `json:"action"`
	Template       string                         `json:"template"`
	Params         map[string]int                 `json:"params"`
	TagSelectors   []RetentionSelector            `json:"tag_selectors"`
	ScopeSelectors map[string][]RetentionSelector `json:"scope_selectors"`
}

// RetentionTrigger is the policy's schedule: cron "" runs it only when asked.
type RetentionTrigger struct {
	Kind       string            `json:"kind"`
	Settings   map[string]string `json:"settings"`
	References map[string]any    `json:"references"`
}

// RetentionScope is the project the policy belongs to.
type RetentionScope struct {
	Level string `json:"level"`
	Ref   int64  `json:"ref"`
}

// RetentionPolicy is a project's tag retention policy as Harbor stores it.
type RetentionPolicy struct {
	ID        int64            `json:"id,omitempty"`
	Algorithm string           `json:"algorithm"`
	Rules     []RetentionRule  `json:"rules"`
	Trigger   RetentionTrigger `json:"trigger"`
	Scope     RetentionScope   `json:"scope"`
}

// Same reports whether two policies retain alike (ids, and Harbor's rule ids and priorities, aside).
func (p *RetentionPolicy) Same(o *RetentionPolicy) bool {
	if p == nil || o == nil {
		return p == o
	}
	ja, _ := json.Marshal(p.normal())
	jb, _ := json.Marshal(o.normal())
	return string(ja) == string(jb)
}

// normal is the policy without its id, with empty maps for the null ones Harbor may answer.
func (p *RetentionPolicy) normal() RetentionPolicy {
	n := *p
	n.ID = 0
	n.Rules = append([]RetentionRule(nil), p.Rules...)
	for i := range n.Rules {
		if n.Rules[i].Params == nil {
			n.Rules[i].Params = map[string]int{}
		}
	}
	if n.Trigger.Settings == nil {
		n.Trigger.Settings = map[string]string{"cron": ""}
	}
	// Harbor's references are its own bookkeeping, not part of what the user asked for; the
	// spec does not allow null there.
	n.Trigger.References = map[string]any{}
	return n
}

// NotExactError lists why a lifecycle policy has no exact Harbor retention translation (exit 2).
type NotExactError struct{ Reasons []string }

func (e *NotExactError) Error() string {
	return "the policy has no exact Harbor tag-retention translation (regctl's client-side apply, without --native, applies it exactly): " + strings.Join(e.Reasons, "; ")
}

// TranslateRetention turns an ECR lifecycle policy into the rules of a Harbor retention policy
// scoped to the given repositories of one project (names without the project; none: all of the
// project's). plans are regctl's plans for the repositories' current images: an image whose tags
// fall under two rules (or a rule and no rule) makes the translation inexact for this content,
// and is named.
func TranslateRetention(p *lifecycle.Policy, repos []string, plans []*lifecycle.RepoPlan) ([]RetentionRule, error) {
	var why []string
	scope := "**"
	switch len(repos) {
	case 0:
	case 1:
		scope = repos[0]
	default:
		scope = "{" + strings.Join(repos, ",") + "}"
	}
	for _, r := range repos {
		if strings.ContainsAny(r, "{}[]*?,\\") {
			why = append(why, fmt.Sprintf("repository %q has a glob character Harbor's scope selector would read", r))
		}
	}
	repoScope := map[string][]RetentionSelector{"repository": {{Kind: "doublestar", Decoration: "repoMatches", Pattern: scope}}}
	rules := append([]lifecycle.Rule(nil), p.Rules...)
	sort.SliceStable(rules, func(i, j int) bool { return rules[i].RulePriority < rules[j].RulePriority })

	var out []RetentionRule
	var tagged []string // every tagged rule's doublestar pattern, for the complement
	hasUntagged, hasAny := false, false
	for _, r := range rules {
		at := fmt.Sprintf("rule %d", r.RulePriority)
		s := r.Selection
		switch {
		case s.CountType == lifecycle.CountTypeSinceImagePulled:
			why = append(why, at+": sinceImagePulled has no Harbor equivalent (Harbor's pull rules never retain a never-pulled image; ECR falls back to the push time)")
			continue
		case r.Action.Type == lifecycle.ActionTransition || s.StorageClass == lifecycle.StorageClassArchive:
			why = append(why, at+": Harbor has no archive tier")
			continue
		case s.CountType == lifecycle.CountTypeSinceImageTransitioned:
			why = append(why, at+": Harbor has no archive tier")
			continue
		case s.CountNumber >= 32767:
			why = append(why, fmt.Sprintf("%s: countNumber %d: Harbor's counts stop at 32766", at, s.CountNumber))
			continue
		}
		rule := RetentionRule{Action: "retain", ScopeSelectors: repoScope}
		if s.CountType == lifecycle.CountTypeImageCountMoreThan {
			rule.Template = "latestPushedK"
		} else {
			rule.Template = "nDaysSinceLastPush"
		}
		rule.Params = map[string]int{rule.Template: s.CountNumber}
		switch s.TagStatus {
		case lifecycle.TagStatusAny:
			hasAny = true
			rule.TagSelectors = []RetentionSelector{{Kind: "doublestar", Decoration: "matches", Pattern: "**", Extras: `{"untagged":true}`}}
		case lifecycle.TagStatusUntagged:
			if hasUntagged {
				why = append(why, at+": a second untagged rule selects the same images as the first")
			}
			hasUntagged = true
			// excludes ** selects only untagged artifacts (no tag can fail to match **).
			rule.TagSelectors = []RetentionSelector{{Kind: "doublestar", Decoration: "excludes", Pattern: "**", Extras: `{"untagged":true}`}}
		default:
			list := s.TagPatternList
			pattern := ""
			if len(list) == 0 {
				list = s.TagPrefixList
			}
			if len(list) != 1 {
				why = append(why, fmt.Sprintf("%s: %d tag patterns or prefixes must all match (AND), which Harbor's complement rule cannot express; use one per rule", at, len(list)))
				continue
			}
			if strings.ContainsAny(list[0], "{}[]?\\,/") {
				why = append(why, fmt.Sprintf("%s: %q has a character Harbor's doublestar pattern reads differently", at, list[0]))
				continue
			}
			if s.TagPatternList != nil {
				pattern = list[0]
			} else {
				pattern = list[0] + "*"
			}
			for i, other := range tagged {
				if mayOverlap(pattern, other) {
					why = append(why, fmt.Sprintf("%s: tags matching %q may also match %q of an earlier rule (%d), and Harbor has no rule priority", at, pattern, other, i+1))
				}
			}
			tagged = append(tagged, pattern)
			rule.TagSelectors = []RetentionSelector{{Kind: "doublestar", Decoration: "matches", Pattern: pattern, Extras: `{"untagged":false}`}}
		}
		out = append(out, rule)
	}
	if hasAny && len(rules) > 1 {
		why = append(why, "a tagStatus any rule selects every image another rule selects too, and Harbor has no rule priority")
	}
	if !hasAny {
		// The complement retains what no ECR rule selects: tagged images outside every tagged
		// rule's pattern, and untagged ones when no rule is about them.
		untagged := strconv.FormatBool(!hasUntagged)
		comp := RetentionSelector{Kind: "doublestar", Decoration: "matches", Pattern: "**", Extras: `{"untagged":` + untagged + `}`}
		if len(tagged) > 0 {
			pattern := tagged[0]
			if len(tagged) > 1 {
				pattern = "{" + strings.Join(tagged, ",") + "}"
			}
			comp = RetentionSelector{Kind: "doublestar", Decoration: "excludes", Pattern: pattern, Extras: `{"untagged":` + untagged + `}`}
		}
		out = append(out, RetentionRule{Action: "retain", Template: "always", Params: map[string]int{}, ScopeSelectors: repoScope,
			TagSelectors: []RetentionSelector{comp}})
	}
	if len(out) > MaxRetentionRules {
		why = append(why, fmt.Sprintf("%d Harbor rules (with the complement rule that keeps what no rule selects) exceed Harbor's %d per project", len(out), MaxRetentionRules))
	}
	if len(why) == 0 && !hasAny {
		why = append(why, mixedImages(tagged, plans)...)
	}
	if len(why) > 0 {
		return nil, exitcode.With(exitcode.Usage, &NotExactError{Reasons: why})
	}
	return out, nil
}

// mayOverlap reports whether two tag patterns (ECR wildcards: only *) might match one tag. It is
// sound for "no": patterns whose literal heads, or literal tails, differ cannot meet.
func mayOverlap(a, b string) bool {
	headA, headB := literalHead(a), literalHead(b)
	tailA, tailB := literalTail(a), literalTail(b)
	heads := strings.HasPrefix(headA, headB) || strings.HasPrefix(headB, headA)
	tails := strings.HasSuffix(tailA, tailB) || strings.HasSuffix(tailB, tailA)
	if !strings.Contains(a, "*") && !strings.Contains(b, "*") {
		return a == b
	}
	return heads && tails
}

func literalHead(p string) string {
	if i := strings.IndexByte(p, '*'); i >= 0 {
		return p[:i]
	}
	return p
}

func literalTail(p string) string {
	if i := strings.LastIndexByte(p, '*'); i >= 0 {
		return p[i+1:]
	}
	return p
}

// mixedImages names the images whose tags fall under different rules, or under a rule and under
// none: ECR gives such an image to its first rule, Harbor keeps it if any selecting rule does.
func mixedImages(patterns []string, plans []*lifecycle.RepoPlan) []string {
	var out []string
	for _, plan := range plans {
		out = append(out, mixedInPlan(patterns, plan)...)
	}
	return out
}

func mixedInPlan(patterns []string, plan *lifecycle.RepoPlan) []string {
	var out []string
	for _, img := range plan.Items {
		if img.Kind.Attached() || len(img.Tags) < 2 {
			continue
		}
		owners := map[string]bool{}
		for _, t := range img.Tags {
			owner := "no rule"
			for _, p := range patterns {
				if ok, _ := path.Match(p, t); ok {
					owner = fmt.Sprintf("pattern %q", p)
					break
				}
			}
			owners[owner] = true
		}
		if len(owners) > 1 {
			names := make([]string, 0, len(owners))
			for o := range owners {
				names = append(names, o)
			}
			sort.Strings(names)
			out = append(out, fmt.Sprintf("%s %s has tags %v under %s: ECR gives it to one rule, Harbor keeps it if any of them does",
				plan.Repository, registry.ShortDigest(img.Digest), img.Tags, strings.Join(names, " and ")))
		}
	}
	return out
}

// NewRetentionPolicy is the policy for a project: the translated rules, run only when asked
// (cron "") or on Harbor's 6-field cron.
func NewRetentionPolicy(projectID int64, rules []RetentionRule, cron string) *RetentionPolicy {
	return &RetentionPolicy{Algorithm: "or", Rules: rules, Scope: RetentionScope{Level: "project", Ref: projectID},
		Trigger: RetentionTrigger{Kind: "Schedule", Settings: map[string]string{"cron": cron}, References: map[string]any{}}}
}

// ProjectID is the id of a project (exit 5 when there is none).
func (h *Harbor) ProjectID(ctx context.Context, name string) (int64, error) {
	p, err := h.project(ctx, name)
	if err != nil {
		return 0, err
	}
	if p == nil {
		return 0, exitcode.With(exitcode.NotFound, fmt.Errorf("harbor getProject: project %s not found", name))
	}
	return p.id, nil
}

// Retention is the project's stored retention policy (nil when it has none): the project's
// retention_id metadata, then getRetention.
func (h *Harbor) Retention(ctx context.Context, projectName string) (*RetentionPolicy, error) {
	const op = "getRetention"
	p, err := h.project(ctx, projectName)
	if err != nil {
		return nil, err
	}
	if p == nil {
		return nil, exitcode.With(exitcode.NotFound, fmt.Errorf("harbor getProject: project %s not found", projectName))
	}
	raw, has := p.metadata["retention_id"]
	if !has || raw == "" {
		return nil, nil
	}
	id, err := strconv.ParseInt(raw, 10, 64)
	if err != nil || id <= 0 {
		return nil, badAnswer("getProject", "project %s: metadata retention_id %q is not an id", projectName, clean(raw, 20))
	}
	a, err := h.api.do(ctx, request{op: op, method: http.MethodGet, path: "/retentions/" + strconv.FormatInt(id, 10)})
	if statusOf(err) == http.StatusNotFound {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var pol RetentionPolicy
	if err := decode(op, a, &pol); err != nil {
		return nil, err
	}
	if pol.Scope.Ref != p.id {
		return nil, badAnswer(op, "retention policy %d of project %s is scoped to project %d", id, projectName, pol.Scope.Ref)
	}
	for i, r := range pol.Rules {
		if r.Template == "" {
			return nil, badAnswer(op, "retention policy %d: rules[%d] has no template", id, i)
		}
	}
	pol.ID = id
	return &pol, nil
}

// PutRetention stores the project's policy: createRetention when it has none (Harbor allows one
// per project), else updateRetention of the stored one. It returns the policy's id.
func (h *Harbor) PutRetention(ctx context.Context, pol *RetentionPolicy, storedID int64) (int64, error) {
	body := *pol
	body.ID = 0
	if body.Trigger.References == nil {
		body.Trigger.References = map[string]any{} // the spec does not allow null
	}
	if storedID > 0 {
		body.ID = storedID
		_, err := h.api.do(ctx, request{op: "updateRetention", method: http.MethodPut, path: "/retentions/" + strconv.FormatInt(storedID, 10), body: body})
		return storedID, err
	}
	const op = "createRetention"
	a, err := h.api.do(ctx, request{op: op, method: http.MethodPost, path: "/retentions", body: body, ok: []int{http.StatusCreated}})
	if err != nil {
		return 0, err
	}
	return idFromLocation(op, a, "/retentions/")
}

// idFromLocation reads the id a 201's Location names after prefix.
func idFromLocation(op string, a *answer, prefix string) (int64, error) {
	loc := a.header.Get("Location")
	u, err := url.Parse(loc)
	if loc == "" || err != nil {
		return 0, badAnswer(op, "the 201 answer has no usable Location (%q)", clean(loc, 80))
	}
	i := strings.LastIndex(u.Path, prefix)
	if i < 0 {
		return 0, badAnswer(op, "Location %q does not name %s{id}", clean(loc, 80), prefix)
	}
	id, err := strconv.ParseInt(strings.Trim(u.Path[i+len(prefix):], "/"), 10, 64)
	if err != nil || id <= 0 {
		return 0, badAnswer(op, "Location %q does not end in an id", clean(loc, 80))
	}
	return id, nil
}

// RetentionRow is one artifact of a retention task's log: RETAIN, DEL, or ERR/IMMUTABLE (Harbor
// would delete it but could not).
type RetentionRow struct {
	Repository string   `json:"repository"`
	Digest     string   `json:"digest"`
	Tags       []string `json:"tags"`
	Action     string   `json:"action"`
}

// RetentionRun is a finished execution: its status and every task's rows.
type RetentionRun struct {
	ID     int64          `json:"id"`
	DryRun bool           `json:"dryRun"`
	Status string         `json:"status"`
	Rows   []RetentionRow `json:"rows"`
}

// retentionWait bounds the wait for an execution (pollJob); an
// execution missing from the listing retentionMissingPolls times in a row is an error.
const (
	retentionWait         = 30 * time.Minute
	retentionMissingPolls = 3
)

// RunRetention starts an execution of the stored policy (dry run or not), waits for it, and reads
// what each repository's task logged.
func (h *Harbor) RunRetention(ctx context.Context, policyID int64, dryRun bool) (*RetentionRun, error) {
	const op = "triggerRetentionExecution"
	base := "/retentions/" + strconv.FormatInt(policyID, 10)
	a, err := h.api.do(ctx, request{op: op, method: http.MethodPost, path: base + "/executions", body: map[string]bool{"dry_run": dryRun},
		ok: []int{http.StatusCreated, http.StatusOK}})
	if err != nil {
		return nil, err
	}
	eid, err := idFromLocation(op, a, "/executions/")
	if err != nil {
		return nil, err
	}
	run := &RetentionRun{ID: eid, DryRun: dryRun}
	missing := 0
	err = pollJob(ctx, retentionWait, func() (bool, error) {
		status, found, err := h.retentionStatus(ctx, base, eid)
		if err != nil {
			return false, err
		}
		run.Status = status
		switch {
		case !found:
			// Harbor lists an execution as soon as it created it; one that stays missing is gone.
			if missing++; missing >= retentionMissingPolls {
				return false, badAnswer("listRetentionExecutions", "execution %d, just created, is not among the policy's executions", eid)
			}
			return false, nil
		case !knownTaskStatus(status):
			return false, badAnswer("listRetentionExecutions", "execution %d has status %q, which Harbor does not have", eid, clean(status, 40))
		}
		return taskDone(status), nil
	})
	if errors.Is(err, errStillRunning) {
		return nil, fmt.Errorf("harbor retention execution %d: still %q after %s", eid, run.Status, retentionWait)
	}
	if err != nil {
		return nil, err
	}
	if !taskSucceeded(run.Status) {
		return run, fmt.Errorf("harbor listRetentionExecutions: retention execution %d ended %s (Harbor's job service log has why)", eid, clean(run.Status, 40))
	}
	type task struct {
		ID         *int64 `json:"id"`
		Repository string `json:"repository"`
		Status     string `json:"status"`
	}
	var tasks []task
	err = h.api.list(ctx, request{op: "listRetentionTasks", method: http.MethodGet, path: base + "/executions/" + strconv.FormatInt(eid, 10) + "/tasks"},
		func(i int, raw json.RawMessage) error {
			var t task
			if err := json.Unmarshal(raw, &t); err != nil || t.ID == nil || t.Repository == "" {
				return badAnswer("listRetentionTasks", "task %d has no id or repository", i)
			}
			tasks = append(tasks, t)
			return nil
		})
	if err != nil {
		return nil, err
	}
	for _, t := range tasks {
		a, err := h.api.do(ctx, request{op: "getRetentionTaskLog", method: http.MethodGet,
			path: base + "/executions/" + strconv.FormatInt(eid, 10) + "/tasks/" + strconv.FormatInt(*t.ID, 10)})
		if err != nil {
			return nil, err
		}
		rows, err := ParseRetentionLog(string(a.body))
		if err != nil {
			return nil, fmt.Errorf("harbor getRetentionTaskLog (task %d, %s): %w", *t.ID, t.Repository, err)
		}
		for i := range rows {
			rows[i].Repository = t.Repository
		}
		run.Rows = append(run.Rows, rows...)
	}
	return run, nil
}

// retentionStatus finds execution eid in the policy's executions (newest first, so the first page
// has it): its status, and whether it was there.
func (h *Harbor) retentionStatus(ctx context.Context, base string, eid int64) (string, bool, error) {
	const op = "listRetentionExecutions"
	status, found := "", false
	errFound := errors.New("found")
	err := h.api.list(ctx, request{op: op, method: http.MethodGet, path: base + "/executions"}, func(i int, raw json.RawMessage) error {
		var x struct {
			ID     *int64 `json:"id"`
			Status string `json:"status"`
		}
		if err := json.Unmarshal(raw, &x); err != nil || x.ID == nil {
			return badAnswer(op, "execution %d has no id", i)
		}
		if *x.ID == eid {
			status, found = x.Status, true
			return errFound
		}
		return nil
	})
	if err != nil && !errors.Is(err, errFound) {
		return "", false, err
	}
	return status, found, nil
}

// ParseRetentionLog reads a retention task's log: the job service's lines, then a table whose
// header names Digest, Tag and Retention. Rows are located by the header, not by position.
func ParseRetentionLog(log string) ([]RetentionRow, error) {
	var rows []RetentionRow
	col := map[string]int{}
	sc := bufio.NewScanner(strings.NewReader(log))
	sc.Buffer(make([]byte, 64*1024), 4<<20)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if !strings.HasPrefix(line, "|") || strings.HasPrefix(line, "|-") || strings.HasPrefix(line, "+") {
			continue
		}
		cells := strings.Split(strings.Trim(line, "|"), "|")
		for i := range cells {
			cells[i] = strings.TrimSpace(cells[i])
		}
		if len(col) == 0 {
			for i, c := range cells {
				col[strings.ToLower(c)] = i
			}
			_, d := col["digest"]
			_, r := col["retention"]
			if !d || !r {
				return nil, fmt.Errorf("the log's table has no Digest and Retention columns (header %q): %w", clean(line, 120), registry.ErrBadAnswer)
			}
			continue
		}
		if len(cells) != len(col) {
			return nil, fmt.Errorf("a row of the log's table has %d cells, the header %d: %w", len(cells), len(col), registry.ErrBadAnswer)
		}
		row := RetentionRow{Digest: cells[col["digest"]], Action: strings.ToUpper(cells[col["retention"]]), Tags: []string{}}
		if i, ok := col["tag"]; ok && cells[i] != "" {
			row.Tags = strings.Split(cells[i], ",")
		}
		if !strings.HasPrefix(row.Digest, "sha256:") {
			return nil, fmt.Errorf("a row of the log's table has no digest (%q): %w", clean(row.Digest, 80), registry.ErrBadAnswer)
		}
		rows = append(rows, row)
	}
	if err := sc.Err(); err != nil {
		return nil, err
	}
	if len(col) == 0 {
		return nil, fmt.Errorf("the log has no result table: %w", registry.ErrBadAnswer)
	}
	return rows, nil
}

func runKind(run *RetentionRun) string {
	if run.DryRun {
		return "dry run"
	}
	return "run"
}

// RetentionDisagreements compares a retention run with regctl's plans, repository by repository:
// Harbor lists only top-level artifacts (an index's platforms and an image's signatures go with
// it), so only the plan's images of their own are compared.
func RetentionDisagreements(plans []*lifecycle.RepoPlan, run *RetentionRun) []string {
	byRepo := map[string][]registry.PreviewItem{}
	for _, r := range run.Rows {
		if r.Action == "DEL" || r.Action == "ERR" || r.Action == "IMMUTABLE" {
			byRepo[r.Repository] = append(byRepo[r.Repository], registry.PreviewItem{Digest: r.Digest, Tags: r.Tags, Action: lifecycle.ActionExpire})
		}
	}
	var out []string
	for _, p := range plans {
		own := *p
		own.Items = nil
		for _, it := range p.Items {
			if it.BelongsTo == "" && it.Action != lifecycle.PlanDelete {
				own.Items = append(own.Items, it)
			}
		}
		listed := map[string]bool{}
		for _, it := range p.Items {
			listed[it.Digest] = true
		}
		for _, d := range lifecycle.Disagreements(&own, byRepo[p.Repository]) {
			d = strings.ReplaceAll(strings.ReplaceAll(d, " (rule 0)", ""), "the registry's preview", "Harbor's retention "+runKind(run))
			out = append(out, p.Repository+": "+d)
		}
		for _, it := range byRepo[p.Repository] {
			if !listed[it.Digest] {
				out = append(out, fmt.Sprintf("%s: %s %v: Harbor's retention %s deletes it; regctl's plan does not list it", p.Repository, registry.ShortDigest(it.Digest), it.Tags, runKind(run)))
			}
		}
	}
	return out
}
