package harbor

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/regctl-dev/regctl/internal/exitcode"
	"github.com/regctl-dev/regctl/internal/lifecycle"
)

// RetentionTarget is one project lifecycle apply --native stores a policy in: the repositories
// it is scoped to (names without the project; none: the whole project) and regctl's plans for
// them, the yardstick Harbor's dry run is held to.
type RetentionTarget struct {
	Project string
	Repos   []string
	Plans   []*lifecycle.RepoPlan
}

// RetentionOptions are lifecycle apply's rules, as for the client-side engine.
type RetentionOptions struct {
	Policy    *lifecycle.Policy
	Cron      string // Harbor's 6-field cron to schedule the policy with once it checked out; "" manual
	DryRun    bool
	Yes       bool
	MaxDelete int
	// Confirm is asked before anything changes unless Yes; nil means nobody can be asked.
	Confirm func(expires int) (bool, error)
	Note    func(format string, a ...any)
}

// ProjectRetention is what happened in one project.
type ProjectRetention struct {
	Project string `json:"project"`
	// Status: unchanged, would-create, would-replace, created, replaced, not-run (Harbor's dry run
	// disagreed with regctl's plan), run.
	Status        string          `json:"status"`
	Policy        RetentionPolicy `json:"policy"`
	Replaced      int             `json:"replacedRules,omitempty"` // rules of the policy stored before
	Expires       int             `json:"expires"`                 // images regctl's plan expires
	DryRun        *RetentionRun   `json:"dryRun,omitempty"`
	Run           *RetentionRun   `json:"run,omitempty"`
	Disagreements []string        `json:"disagreements"`
}

// RetentionOutcome is lifecycle apply --native's result (-o json).
type RetentionOutcome struct {
	DryRun   bool                `json:"dryRun"`
	Projects []*ProjectRetention `json:"projects"`
	Message  string              `json:"message"`
}

// ApplyRetention stores the translated policy in each project and runs it, checked at every step
// against regctl's own plan: the policy is stored without a schedule, a Harbor dry run must
// delete exactly what the plan expires, and only then does the real run delete (and the schedule
// go in). A dry run that disagrees stops that project with the differences named (exit 1); the
// policy stored before is put back. With DryRun nothing is stored: a policy stored already is
// dry-run by Harbor and compared; a new one cannot be (Harbor dry-runs only stored policies).
func (h *Harbor) ApplyRetention(ctx context.Context, targets []RetentionTarget, o RetentionOptions) (*RetentionOutcome, error) {
	if o.Note == nil {
		o.Note = func(string, ...any) {}
	}
	out := &RetentionOutcome{DryRun: o.DryRun, Projects: []*ProjectRetention{}}
	type work struct {
		res    *ProjectRetention
		want   *RetentionPolicy
		stored *RetentionPolicy
	}
	var todo []work
	expires, changes := 0, 0
	for _, t := range targets {
		rules, err := TranslateRetention(o.Policy, t.Repos, t.Plans)
		if err != nil {
			return out, fmt.Errorf("project %s: %w", t.Project, err)
		}
		pid, err := h.ProjectID(ctx, t.Project)
		if err != nil {
			return out, err
		}
		stored, err := h.Retention(ctx, t.Project)
		if err != nil {
			return out, err
		}
		want := NewRetentionPolicy(pid, rules, o.Cron)
		res := &ProjectRetention{Project: t.Project, Policy: *want, Disagreements: []string{}}
		for _, p := range t.Plans {
			res.Expires += p.Summary.Expire
		}
		switch {
		case want.Same(stored):
			res.Status = "unchanged"
		case stored == nil:
			res.Status = "would-create"
		default:
			res.Status, res.Replaced = "would-replace", len(stored.Rules)
			o.Note("%s: replaces the stored retention policy %d (%d rules): Harbor keeps one per project", t.Project, stored.ID, len(stored.Rules))
		}
		if o.DryRun {
			if stored != nil && res.Status == "unchanged" {
				run, err := h.RunRetention(ctx, stored.ID, true)
				if err != nil {
					return out, err
				}
				res.DryRun, res.Disagreements = run, RetentionDisagreements(t.Plans, run)
				for _, d := range res.Disagreements {
					o.Note("disagreement: %s", d)
				}
			} else {
				o.Note("%s: Harbor dry-runs only a stored policy; apply stores it unscheduled, dry-runs it and deletes only if Harbor's candidates are regctl's plan", t.Project)
			}
		}
		expires += res.Expires
		if res.Status != "unchanged" || res.Expires > 0 {
			changes++
		}
		out.Projects = append(out.Projects, res)
		todo = append(todo, work{res: res, want: want, stored: stored})
	}
	switch {
	case changes == 0:
		out.Message = "nothing to do: every retention policy is stored and the plans expire nothing"
		return out, nil
	case o.DryRun:
		out.Message = fmt.Sprintf("dry run: would store %d retention policies and delete %d images; nothing changed", len(todo), expires)
		return out, nil
	case o.MaxDelete > 0 && expires > o.MaxDelete:
		return out, exitcode.With(exitcode.Error, fmt.Errorf("the plans expire %d images: more than --max-delete %d; no policy stored, nothing deleted", expires, o.MaxDelete))
	case !o.Yes && o.Confirm == nil:
		return out, fmt.Errorf("storing %d retention policies expires %d images; not on a terminal, so pass --yes; nothing changed: %w", len(todo), expires, exitcode.ErrUsage)
	case !o.Yes:
		ok, err := o.Confirm(expires)
		if err != nil {
			return out, err
		}
		if !ok {
			return out, fmt.Errorf("not confirmed; nothing changed: %w", exitcode.ErrUsage)
		}
	}

	var failures []error
	deleted := 0
	for i, w := range todo {
		if err := h.applyOne(ctx, targets[i], w.res, w.want, w.stored); err != nil {
			failures = append(failures, fmt.Errorf("%s: %w", w.res.Project, err))
			continue
		}
		if w.res.Run != nil {
			for _, r := range w.res.Run.Rows {
				if r.Action == "DEL" {
					deleted++
				}
			}
		}
	}
	out.Message = fmt.Sprintf("stored %d retention policies; Harbor deleted %d artifacts", len(todo)-len(failures), deleted)
	if len(failures) > 0 {
		return out, exitcode.With(exitcode.Error, fmt.Errorf("partial failure: %w", errors.Join(failures...)))
	}
	return out, nil
}

// applyOne stores, dry-runs, checks, runs and schedules one project's policy.
func (h *Harbor) applyOne(ctx context.Context, t RetentionTarget, res *ProjectRetention, want, stored *RetentionPolicy) error {
	storedID := int64(0)
	if stored != nil {
		storedID = stored.ID
	}
	manual := *want
	manual.Trigger.Settings = map[string]string{"cron": ""}
	id, err := h.PutRetention(ctx, &manual, storedID)
	if err != nil {
		return err
	}
	res.Policy.ID = id
	switch res.Status {
	case "would-create":
		res.Status = "created"
	case "would-replace":
		res.Status = "replaced"
	}
	dry, err := h.RunRetention(ctx, id, true)
	if err != nil {
		return err
	}
	res.DryRun = dry
	if d := RetentionDisagreements(t.Plans, dry); len(d) > 0 {
		res.Disagreements, res.Status = d, "not-run"
		restore := "the policy stays stored without a schedule"
		if stored != nil {
			if _, err := h.PutRetention(ctx, stored, id); err != nil {
				restore = "putting the previous policy back failed: " + err.Error()
			} else {
				restore = "the previous policy is back"
			}
		}
		return fmt.Errorf("the Harbor dry run does not delete what regctl's plan expires, so it was not run (%s): %s", restore, strings.Join(d, "; "))
	}
	run, err := h.RunRetention(ctx, id, false)
	if run != nil {
		res.Run = run
	}
	if err != nil {
		return err
	}
	res.Status = "run"
	if d := RetentionDisagreements(t.Plans, run); len(d) > 0 {
		// Too late to stop, but never silent (goharbor/harbor#20996: a run can differ from its dry run).
		res.Disagreements = d
		return fmt.Errorf("the Harbor run differed from its dry run and regctl's plan: %s", strings.Join(d, "; "))
	}
	if want.Trigger.Settings["cron"] != "" {
		if _, err := h.PutRetention(ctx, want, id); err != nil {
			return fmt.Errorf("the policy ran; scheduling it: %w", err)
		}
	}
	return nil
}
