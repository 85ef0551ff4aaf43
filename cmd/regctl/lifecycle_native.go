package main

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strings"

	"github.com/spf13/cobra"

	"github.com/regctl-dev/regctl/internal/harbor"
	"github.com/regctl-dev/regctl/internal/lifecycle"
	"github.com/regctl-dev/regctl/internal/ui"
)

// retentionApplier is a registry that stores lifecycle policies as its own retention policies
// (Harbor's tag retention), checked against regctl's plan.
type retentionApplier interface {
	ApplyRetention(ctx context.Context, targets []harbor.RetentionTarget, o harbor.RetentionOptions) (*harbor.RetentionOutcome, error)
}

// nativeApply is lifecycle apply --native's -o json.
type nativeApply struct {
	Plans     []*lifecycle.RepoPlan    `json:"plans"`
	Retention *harbor.RetentionOutcome `json:"retention"`
}

// runNativeApply is lifecycle apply --native: REGISTRY/PROJECT (the whole project) or
// REGISTRY/PROJECT/REPO targets on Harbor, one retention policy per project.
func runNativeApply(cmd *cobra.Command, f *Factory, pf *planFlags, args []string, o harbor.RetentionOptions) error {
	if pf.prefix != "" {
		return usageError(errors.New("--native takes REGISTRY/PROJECT or REGISTRY/PROJECT/REPO, not --prefix"))
	}
	res, err := f.Resolver()
	if err != nil {
		return err
	}
	type group struct {
		applier retentionApplier
		project string
		repos   []string // without the project; nil: the whole project
		whole   bool
		full    []string // REGISTRY/PROJECT/REPO for the plans
	}
	groups := map[string]*group{}
	var order []string
	for _, arg := range args {
		reg, repo, err := res.Repository(arg)
		if err != nil {
			return err
		}
		ra, ok := reg.(retentionApplier)
		if !ok {
			return usageError(fmt.Errorf("--native: %s is a %s registry; only Harbor stores retention policies this way (ECR stores lifecycle policies without --native)", reg.Name(), reg.Type()))
		}
		project, rest, _ := strings.Cut(repo, "/")
		if project == "" {
			return usageError(fmt.Errorf("%q: name a Harbor project (REGISTRY/PROJECT) or repository (REGISTRY/PROJECT/REPO)", arg))
		}
		key := reg.Name() + "/" + project
		g := groups[key]
		if g == nil {
			g = &group{applier: ra, project: project}
			groups[key] = g
			order = append(order, key)
		}
		if rest == "" {
			repos, err := reg.Repositories(cmd.Context(), project+"/")
			if err != nil {
				return err
			}
			g.whole, g.full = true, nil
			for _, r := range repos {
				g.full = append(g.full, reg.Name()+"/"+r)
			}
			continue
		}
		if !g.whole {
			g.repos = append(g.repos, rest)
			g.full = append(g.full, reg.Name()+"/"+repo)
		}
	}
	var all []string
	for _, key := range order {
		all = append(all, groups[key].full...)
	}
	plans := []*lifecycle.RepoPlan{}
	if len(all) > 0 {
		if plans, _, err = pf.plans(cmd, f, all); err != nil {
			return err
		}
	} else if pf.raw, err = readPolicyFile(f, pf.file); err != nil { // projects with no repository yet
		return err
	}
	policy, err := lifecycle.Parse(pf.raw)
	if err != nil {
		return usageError(fmt.Errorf("%s: %w", pf.file, err))
	}
	o.Policy, o.Note = policy, f.Notef
	printed := false
	if !o.Yes && f.IO.InTTY && f.IO.ErrTTY {
		o.Confirm = func(expires int) (bool, error) {
			if err := renderPlans(f, plans); err != nil {
				return false, err
			}
			printed = true
			return f.Ask(fmt.Sprintf("Store %d Harbor retention policies and let Harbor delete the %d images regctl's plan expires (only if Harbor's dry run agrees)?", len(order), expires)), nil
		}
	}
	out := &harbor.RetentionOutcome{DryRun: o.DryRun, Projects: []*harbor.ProjectRetention{}}
	var runErr error
	for _, key := range order {
		g := groups[key]
		var own []*lifecycle.RepoPlan
		for _, p := range plans {
			if strings.HasPrefix(p.Repository, g.project+"/") && p.Registry+"/"+g.project == key {
				own = append(own, p)
			}
		}
		repos := g.repos
		if g.whole {
			repos = nil
		}
		sort.Strings(repos)
		r, err := g.applier.ApplyRetention(cmd.Context(), []harbor.RetentionTarget{{Project: g.project, Repos: repos, Plans: own}}, o)
		if r != nil {
			out.Projects = append(out.Projects, r.Projects...)
			out.Message = strings.TrimPrefix(out.Message+"; "+key+": "+r.Message, "; ")
		}
		if err != nil {
			runErr = fmt.Errorf("%s: %w", key, err)
			break
		}
	}
	if f.Format() != ui.FormatTable {
		if err := f.Render(nativeApply{Plans: plans, Retention: out}, nil); err != nil {
			return err
		}
		return runErr
	}
	if !printed {
		if err := renderPlans(f, plans); err != nil {
			return err
		}
	}
	for _, p := range out.Projects {
		fmt.Fprintf(f.IO.Out, "\nharbor project %s: retention policy %s (%d rules; regctl's plan expires %d)\n", p.Project, p.Status, len(p.Policy.Rules), p.Expires)
		t := ui.Table{Headers: []string{"template", "count/days", "tags", "repositories"}}
		for _, r := range p.Policy.Rules {
			n := "-"
			if v, ok := r.Params[r.Template]; ok {
				n = fmt.Sprint(v)
			}
			var tags, repos []string
			for _, s := range r.TagSelectors {
				tags = append(tags, s.Decoration+" "+s.Pattern+" "+s.Extras)
			}
			for _, s := range r.ScopeSelectors["repository"] {
				repos = append(repos, s.Decoration+" "+s.Pattern)
			}
			t.Rows = append(t.Rows, []string{r.Template, n, strings.Join(tags, "; "), strings.Join(repos, "; ")})
		}
		if err := t.Render(f.IO.Out, f.IO.OutTTY, f.IO.ColorOut()); err != nil {
			return err
		}
		for _, run := range []*harbor.RetentionRun{p.DryRun, p.Run} {
			if run == nil {
				continue
			}
			del := 0
			for _, row := range run.Rows {
				if row.Action == "DEL" {
					del++
				}
			}
			kind := "run"
			if run.DryRun {
				kind = "dry run"
			}
			fmt.Fprintf(f.IO.Out, "Harbor's %s %d: %s, %d artifacts deleted%s\n", kind, run.ID, run.Status, del, map[bool]string{true: " (would be)"}[run.DryRun])
		}
		for _, d := range p.Disagreements {
			fmt.Fprintf(f.IO.Out, "disagreement: %s\n", d)
		}
	}
	if out.Message != "" {
		fmt.Fprintln(f.IO.Out, out.Message)
	}
	return runErr
}
