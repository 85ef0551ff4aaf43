package main

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"

	"github.com/spf13/cobra"

	"github.com/regctl-dev/regctl/internal/exitcode"
	"github.com/regctl-dev/regctl/internal/harbor"
	"github.com/regctl-dev/regctl/internal/lifecycle"
	"github.com/regctl-dev/regctl/internal/metrics"
	"github.com/regctl-dev/regctl/internal/registry"
	"github.com/regctl-dev/regctl/internal/ui"
)

func newLifecycleCmd(f *Factory) *cobra.Command {
	cmd := group(&cobra.Command{
		Use:   "lifecycle",
		Short: "Validate, preview and apply ECR-format lifecycle policies on any registry",
		Long: `Lifecycle policies in Amazon ECR's JSON format, evaluated exactly as ECR does (rule priority,
ownership by the first matching rule, count and age rules, multi-tag images as one unit) and applied
by regctl on registries that have no lifecycle feature. The plan never deletes a manifest a surviving
index references; platform manifests and signatures, attestations and SBOMs are not images of their
own and are deleted together with the image they belong to, and only then.`,
	})
	cmd.AddCommand(newLifecycleValidateCmd(f), newLifecyclePreviewCmd(f), newLifecycleApplyCmd(f), newLifecycleGetCmd(f))
	return cmd
}

// readPolicyFile reads -f (or "-" for stdin); a missing file exits 5.
func readPolicyFile(f *Factory, path string) ([]byte, error) {
	if path == "" {
		return nil, usageError(errors.New("-f POLICY is required"))
	}
	var data []byte
	var err error
	if path == "-" {
		data, err = io.ReadAll(f.IO.In)
	} else {
		data, err = os.ReadFile(f.inWorkDir(path))
	}
	if errors.Is(err, os.ErrNotExist) {
		return nil, exitcode.With(exitcode.NotFound, err)
	}
	return data, err
}

type policyValidation struct {
	File     string                 `json:"file"`
	Valid    bool                   `json:"valid"`
	Rules    int                    `json:"rules"`
	Errors   []lifecycle.FieldError `json:"errors"`
	Warnings []lifecycle.FieldError `json:"warnings"`
}

func newLifecycleValidateCmd(f *Factory) *cobra.Command {
	var file string
	cmd := &cobra.Command{
		Use:   "validate -f POLICY",
		Short: "Check a lifecycle policy; list every error with its JSON path (exit 2 when invalid)",
		Example: `  regctl lifecycle validate -f ecr-lifecycle-policy.json
  regctl lifecycle validate -f policy.json -o json | jq '.errors[].path'`,
		Args: args(cobra.MaximumNArgs(1)),
		RunE: func(cmd *cobra.Command, a []string) error {
			if len(a) == 1 && file == "" {
				file = a[0]
			}
			data, err := readPolicyFile(f, file)
			if err != nil {
				return err
			}
			res := policyValidation{File: file, Errors: []lifecycle.FieldError{}, Warnings: []lifecycle.FieldError{}}
			p, err := lifecycle.Parse(data)
			var verr *lifecycle.ValidationError
			switch {
			case err == nil:
				res.Valid, res.Rules = true, len(p.Rules)
				res.Warnings = append(res.Warnings, lifecycle.Warnings(p)...)
			case errors.As(err, &verr):
				res.Errors = verr.Errors
			default:
				return err
			}
			if f.Format() == ui.FormatTable {
				if res.Valid {
					fmt.Fprintf(f.IO.Out, "%s: valid (%d rules)\n", file, res.Rules)
				}
				for _, e := range res.Errors {
					fmt.Fprintf(f.IO.Out, "%s: %s\n", file, e.Error())
				}
				for _, w := range res.Warnings {
					fmt.Fprintf(f.IO.Out, "%s: warning: %s\n", file, w.Error())
				}
			} else if err := f.Render(res, nil); err != nil {
				return err
			}
			if !res.Valid {
				return fmt.Errorf("%s: %d problem(s): %w", file, len(res.Errors), exitcode.ErrUsage)
			}
			return nil
		},
	}
	cmd.Flags().StringVarP(&file, "policy", "f", "", "policy file (ECR JSON; - for stdin)")
	return cmd
}

// planFlags are shared by preview and apply.
type planFlags struct {
	file      string
	prefix    string
	ageSource string
	raw       []byte // the policy text as read (stdin can be read once)
}

func (pf *planFlags) register(cmd *cobra.Command) {
	cmd.Flags().StringVarP(&pf.file, "policy", "f", "", "policy file (ECR JSON; - for stdin) (required)")
	cmd.Flags().StringVar(&pf.prefix, "prefix", "", "with a REGISTRY argument: every repository whose name starts with this")
	cmd.Flags().StringVar(&pf.ageSource, "age-source", "auto", "image age on registries without push times: auto, created (config) or annotation")
}

// plans resolves the targets, lists every repository and builds all plans before anything is done.
func (pf *planFlags) plans(cmd *cobra.Command, f *Factory, targets []string) ([]*lifecycle.RepoPlan, map[string]registry.Registry, error) {
	age, err := lifecycle.ParseAgeSource(pf.ageSource)
	if err != nil {
		return nil, nil, usageError(err)
	}
	raw, err := readPolicyFile(f, pf.file)
	if err != nil {
		return nil, nil, err
	}
	policy, err := lifecycle.Parse(raw)
	if err != nil {
		return nil, nil, usageError(fmt.Errorf("%s: %w", pf.file, err))
	}
	pf.raw = raw
	res, err := f.Resolver()
	if err != nil {
		return nil, nil, err
	}
	type target struct {
		reg  registry.Registry
		repo string
	}
	var list []target
	for _, arg := range targets {
		if pf.prefix != "" {
			if strings.Contains(arg, "/") {
				return nil, nil, usageError(fmt.Errorf("%q: with --prefix, name only the registry (got a path too)", arg))
			}
			reg, err := res.Registry(arg)
			if err != nil {
				return nil, nil, err
			}
			repos, err := reg.Repositories(cmd.Context(), pf.prefix)
			if err != nil {
				return nil, nil, err
			}
			if len(repos) == 0 {
				f.Notef("no repositories on %s start with %q", reg.Host(), pf.prefix)
			}
			for _, r := range repos {
				list = append(list, target{reg, r})
			}
			continue
		}
		reg, repo, err := res.Repository(arg)
		if err != nil {
			return nil, nil, err
		}
		if repo == "" {
			return nil, nil, usageError(fmt.Errorf("%q names a registry: give REGISTRY/REPO, or add --prefix", arg))
		}
		list = append(list, target{reg, repo})
	}
	regs := map[string]registry.Registry{}
	var plans []*lifecycle.RepoPlan
	for _, t := range list {
		images, err := t.reg.Images(cmd.Context(), t.repo)
		if err != nil {
			return nil, nil, err
		}
		p := lifecycle.BuildPlan(policy, t.reg.Name(), t.repo, images, age, f.Now())
		traits := registry.TraitsOf(t.reg)
		if !traits.ListsUntagged {
			p.Notes = append(p.Notes, lifecycle.NoteUnlisted)
		}
		if !traits.PushTimes && age == lifecycle.AgeAuto {
			p.Notes = append(p.Notes, "this registry records no push time: images are aged by their config's created time, else the org.opencontainers.image.created annotation (--age-source)")
		}
		regs[t.reg.Name()+"/"+t.repo] = t.reg
		plans = append(plans, p)
	}
	return plans, regs, nil
}

func renderPlans(f *Factory, plans []*lifecycle.RepoPlan) error {
	if f.Format() != ui.FormatTable {
		return f.Render(plans, nil)
	}
	for i, p := range plans {
		if i > 0 {
			fmt.Fprintln(f.IO.Out)
		}
		fmt.Fprintf(f.IO.Out, "%s/%s: %d images, %d expire (%d manifests deleted in all), %d protected, %d of unknown age [engine %s, age %s]\n",
			p.Registry, p.Repository, p.Summary.Images, p.Summary.Expire, p.Summary.Manifests, p.Summary.Protected, p.Summary.NoTime, p.Engine, p.AgeSource)
		t := ui.Table{Headers: []string{"digest", "tags", "kind", "pushed at", "time source", "rule", "action", "reason"}}
		for _, it := range p.Items {
			pushed, source, rule := "-", "-", "-"
			if it.PushedAt != nil {
				pushed, source = it.PushedAt.UTC().Format("2006-01-02 15:04Z"), string(it.PushedAtSource)
			}
			if it.Rule > 0 {
				rule = strconv.Itoa(it.Rule)
			}
			kind := string(it.Kind)
			if it.Platform != "" {
				kind += " " + it.Platform
			}
			reason := it.Reason
			if it.Protected != "" {
				reason = "protected: " + it.Protected + " (" + it.Reason + ")"
			}
			tags := strings.Join(it.Tags, ", ")
			if tags == "" {
				tags = "<untagged>"
			}
			t.Rows = append(t.Rows, []string{shortDigest(it.Digest), tags, kind, pushed, source, rule, it.Action, reason})
		}
		if err := t.Render(f.IO.Out, f.IO.OutTTY, f.IO.ColorOut()); err != nil {
			return err
		}
		for _, n := range p.Notes {
			fmt.Fprintf(f.IO.Out, "note: %s\n", n)
		}
	}
	return nil
}

func newLifecyclePreviewCmd(f *Factory) *cobra.Command {
	var pf planFlags
	cmd := &cobra.Command{
		Use:   "preview -f POLICY REPO... | REGISTRY --prefix P",
		Short: "Show what a policy would do: per image digest, the rule that owns it and the action",
		Example: `  regctl lifecycle preview -f ecr-lifecycle-policy.json local/game-server
  regctl lifecycle preview -f policy.json 127.0.0.1:5000 --prefix game-server/ -o json`,
		Args: args(cobra.MinimumNArgs(1)),
		RunE: func(cmd *cobra.Command, a []string) error {
			plans, _, err := pf.plans(cmd, f, a)
			if err != nil {
				return err
			}
			return renderPlans(f, plans)
		},
	}
	pf.register(cmd)
	return cmd
}

func newLifecycleApplyCmd(f *Factory) *cobra.Command {
	var pf planFlags
	var dryRun, yes, native bool
	var schedule, metricsFile string
	var maxDelete, jobs int
	cmd := &cobra.Command{
		Use:   "apply -f POLICY REPO... | REGISTRY --prefix P",
		Short: "Apply a policy: delete what the plan expires (asks first; --yes when not on a terminal)",
		Long: `Build the plan for every repository first, then delete. Nothing is deleted when:
  --dry-run is given (the plan is printed);
  the plan would delete more than --max-delete images (exit 1: a plan is applied whole or not at all);
  stdin/stderr are not a terminal and --yes is missing (exit 2); on a terminal regctl asks.
A re-run with nothing to expire says so and exits 0.

--native (Harbor): instead of deleting itself, regctl stores the policy as the project's tag
retention policy, where the translation is exact (refused with every reason where it is not, exit
2: Harbor retains rather than expires, has no rule priority, no pull or archive rules, 15 rules per
project). The policy is stored without a schedule, Harbor dry-runs it, and Harbor runs it only if
its dry run deletes exactly what regctl's plan expires; otherwise the differences are named, the
previous policy is put back and nothing is deleted (exit 1). With --dry-run nothing is stored; a
policy stored already is dry-run by Harbor and compared. --schedule CRON (5 fields, or Harbor's 6)
stores the checked policy with that schedule, so Harbor applies it from then on; the 6-field
translation is printed.`,
		Example: `  regctl lifecycle apply -f ecr-lifecycle-policy.json local/game-server --dry-run
  regctl lifecycle apply -f policy.json local --prefix game-server/ --yes --max-delete 50
  regctl lifecycle apply -f keep-releases.json harbor/game-server --native --dry-run
  regctl lifecycle apply -f keep-releases.json harbor/game-server --native --yes --schedule "0 3 * * *"`,
		Args: args(cobra.MinimumNArgs(1)),
		RunE: func(cmd *cobra.Command, a []string) (err error) {
			start := f.Now()
			var out *lifecycle.Outcome
			defer func() {
				writeJobMetrics(f, metricsFile, "lifecycle", strings.Join(a, " "), start, err, lifecycleMetricValues(out))
			}()
			if maxDelete < 0 {
				return usageError(errors.New("--max-delete must be 0 (no limit) or more"))
			}
			if schedule != "" && !native {
				return usageError(errors.New("--schedule: only a --native policy runs on Harbor's schedule; regctl's own engine runs when it is run (cron it)"))
			}
			if native {
				var cron string
				if schedule != "" {
					c, translated, err := harbor.Cron(schedule, false)
					if err != nil {
						return exitcode.With(exitcode.Usage, fmt.Errorf("--schedule: %w", err))
					}
					if translated {
						f.Notef("schedule %s → Harbor %s (Harbor's cron has 6 fields, seconds first)", schedule, c)
					}
					cron = c
				}
				return runNativeApply(cmd, f, &pf, a, harbor.RetentionOptions{DryRun: dryRun, Yes: yes, MaxDelete: maxDelete, Cron: cron})
			}
			plans, regs, err := pf.plans(cmd, f, a)
			if err != nil {
				return err
			}
			targets := make([]lifecycle.Target, len(plans))
			for i, p := range plans {
				targets[i] = lifecycle.Target{Registry: regs[p.Registry+"/"+p.Repository], Plan: p}
			}
			printed := false
			o := lifecycle.ReconcileOptions{Policy: pf.raw, DryRun: dryRun, Yes: yes, MaxDelete: maxDelete, Jobs: jobs,
				Note: f.Notef, Logger: f.Logger()}
			if f.IO.InTTY && f.IO.ErrTTY {
				o.Confirm = func(s lifecycle.Changes) (bool, error) {
					if err := renderPlans(f, plans); err != nil {
						return false, err
					}
					printed = true
					fmt.Fprintf(f.IO.ErrOut, "Delete %d images (%d manifests) and put %d native policies that expire %d images? [y/N] ",
						s.Images, s.Manifests, s.NativePuts, s.NativeExpires)
					answer, _ := bufio.NewReader(f.IO.In).ReadString('\n')
					a := strings.ToLower(strings.TrimSpace(answer))
					return a == "y" || a == "yes", nil
				}
			}
			var runErr error
			out, runErr = lifecycle.Reconcile(cmd.Context(), targets, o)
			if f.Format() != ui.FormatTable {
				if err := f.Render(out, nil); err != nil {
					return err
				}
				return runErr
			}
			if !printed {
				if err := renderPlans(f, plans); err != nil {
					return err
				}
			}
			fmt.Fprintln(f.IO.Out, out.Message)
			return runErr
		},
	}
	pf.register(cmd)
	cmd.Flags().BoolVar(&dryRun, "dry-run", false, "print the plan, delete nothing")
	cmd.Flags().BoolVarP(&yes, "yes", "y", false, "delete without asking (required when not on a terminal)")
	cmd.Flags().IntVar(&maxDelete, "max-delete", 0, "delete nothing if the plan expires more images than this (0: no limit)")
	cmd.Flags().IntVar(&jobs, "jobs", 4, "images deleted in parallel")
	cmd.Flags().StringVar(&schedule, "schedule", "", `with --native: the retention policy's schedule, e.g. "0 3 * * *" (default: runs only when applied)`)
	cmd.Flags().StringVar(&metricsFile, "metrics-file", "", `write the run's Prometheus metrics here, also on failure (regctl_job_* {job="lifecycle"}; node_exporter textfile collector)`)
	cmd.Flags().BoolVar(&native, "native", false, "Harbor: store the policy as the project's tag retention policy and let Harbor apply it, checked against regctl's plan")
	return cmd
}

func newLifecycleGetCmd(f *Factory) *cobra.Command {
	return &cobra.Command{
		Use:     "get REPO",
		Short:   "Print the lifecycle policy a registry stores for a repository (ECR)",
		Example: "  regctl lifecycle get prod/game-server",
		Args:    args(cobra.ExactArgs(1)),
		RunE: func(cmd *cobra.Command, a []string) error {
			res, err := f.Resolver()
			if err != nil {
				return err
			}
			reg, repo, err := res.Repository(a[0])
			if err != nil {
				return err
			}
			lp, ok := reg.(registry.LifecyclePolicies)
			if !ok {
				return usageError(fmt.Errorf("%s is a %s registry, which stores no lifecycle policies; regctl applies them (lifecycle apply)", reg.Name(), reg.Type()))
			}
			text, err := lp.GetLifecyclePolicy(cmd.Context(), repo)
			if err != nil {
				return err
			}
			fmt.Fprintln(f.IO.Out, text)
			return nil
		},
	}
}

// lifecycleMetricValues are lifecycle apply's own gauges in its --metrics-file.
func lifecycleMetricValues(out *lifecycle.Outcome) []metrics.Value {
	if out == nil {
		return nil
	}
	var expired, deleted, failed, dry float64
	for _, p := range out.Plans {
		expired += float64(p.Summary.Expire)
	}
	for _, r := range out.Results {
		deleted += float64(len(r.Deleted))
		failed += float64(len(r.Failed))
	}
	if out.DryRun {
		dry = 1
	}
	return []metrics.Value{
		{Name: "regctl_lifecycle_expired_images", Help: "Images the last run's plans expired.", Value: expired},
		{Name: "regctl_lifecycle_deleted_manifests", Help: "Manifests the last run deleted (images with their platforms and signatures).", Value: deleted},
		{Name: "regctl_lifecycle_failed_deletes", Help: "Manifests the last run failed to delete.", Value: failed},
		{Name: "regctl_lifecycle_dry_run", Help: "1 if the last run was a dry run (nothing deleted).", Value: dry},
	}
}
