package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"

	"github.com/spf13/cobra"

	"github.com/regctl-dev/regctl/internal/ecr"
	"github.com/regctl-dev/regctl/internal/exitcode"
	"github.com/regctl-dev/regctl/internal/lifecycle"
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
		data, err = os.ReadFile(path)
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
				return exitcode.With(exitcode.Usage, fmt.Errorf("%s: %d problem(s)", file, len(res.Errors)))
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
		if t.reg.Type() == "oci" {
			p.Notes = append(p.Notes, lifecycle.NoteUnlisted)
			if age == lifecycle.AgeAuto {
				p.Notes = append(p.Notes, "this registry records no push time: images are aged by their config's created time, else the org.opencontainers.image.created annotation (--age-source)")
			}
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

type applyOutput struct {
	DryRun  bool                     `json:"dryRun"`
	Plans   []*lifecycle.RepoPlan    `json:"plans"`
	Results []*lifecycle.ApplyResult `json:"results"`
	Native  []nativeResult           `json:"native"`
	Message string                   `json:"message"`
}

// nativeResult is a policy handed to a registry that applies lifecycle policies itself (ECR).
type nativeResult struct {
	Registry   string `json:"registry"`
	Repository string `json:"repository"`
	Status     string `json:"status"` // unchanged | put | would-put
	// Expires is how many images the registry will expire once the policy is put: its own preview's
	// count where it has one (ExpiresSource "registry-preview"), else regctl's plan ("regctl-plan").
	// --max-delete and the confirmation count these too.
	Expires       int    `json:"expires"`
	ExpiresSource string `json:"expiresSource,omitempty"`
	// The registry's own preview, and every image on which it and regctl's plan differ.
	Preview       []ecr.PreviewResult `json:"preview,omitempty"`
	Disagreements []string            `json:"disagreements,omitempty"`
}

// previewer is a registry that previews a lifecycle policy itself (ECR).
type previewer interface {
	Preview(ctx context.Context, repo, policy string) ([]ecr.PreviewResult, error)
}

// previewExpires counts the distinct images a registry's preview expires.
func previewExpires(preview []ecr.PreviewResult) int {
	seen := map[string]bool{}
	for _, r := range preview {
		if strings.EqualFold(r.Action, lifecycle.ActionExpire) {
			seen[r.Digest] = true
		}
	}
	return len(seen)
}

// disagreements compares the registry's preview with regctl's plan, digest by digest.
func disagreements(plan *lifecycle.RepoPlan, preview []ecr.PreviewResult) []string {
	theirs := map[string]ecr.PreviewResult{}
	for _, r := range preview {
		if strings.EqualFold(r.Action, lifecycle.ActionExpire) {
			theirs[r.Digest] = r
		}
	}
	var out []string
	for _, it := range plan.Items {
		ours := it.Action == lifecycle.PlanExpire || it.Action == lifecycle.PlanDelete
		r, their := theirs[it.Digest]
		switch {
		case their && !ours:
			why := it.Reason
			if it.Protected != "" {
				why = "protected: " + it.Protected
			}
			out = append(out, fmt.Sprintf("%s %v: the registry's preview expires it (rule %d); regctl keeps it (%s)", shortDigest(it.Digest), it.Tags, r.Rule, why))
		case ours && !their:
			out = append(out, fmt.Sprintf("%s %v: regctl deletes it (%s); the registry's preview keeps it", shortDigest(it.Digest), it.Tags, it.Reason))
		}
	}
	return out
}

func newLifecycleApplyCmd(f *Factory) *cobra.Command {
	var pf planFlags
	var dryRun, yes bool
	var maxDelete, jobs int
	cmd := &cobra.Command{
		Use:   "apply -f POLICY REPO... | REGISTRY --prefix P",
		Short: "Apply a policy: delete what the plan expires (asks first; --yes when not on a terminal)",
		Long: `Build the plan for every repository first, then delete. Nothing is deleted when:
  --dry-run is given (the plan is printed);
  the plan would delete more than --max-delete images (exit 1: a plan is applied whole or not at all);
  stdin/stderr are not a terminal and --yes is missing (exit 2); on a terminal regctl asks.
A re-run with nothing to expire says so and exits 0.`,
		Example: `  regctl lifecycle apply -f ecr-lifecycle-policy.json local/game-server --dry-run
  regctl lifecycle apply -f policy.json local --prefix game-server/ --yes --max-delete 50`,
		Args: args(cobra.MinimumNArgs(1)),
		RunE: func(cmd *cobra.Command, a []string) error {
			if maxDelete < 0 {
				return usageError(errors.New("--max-delete must be 0 (no limit) or more"))
			}
			plans, regs, err := pf.plans(cmd, f, a)
			if err != nil {
				return err
			}
			out := applyOutput{DryRun: dryRun, Plans: plans, Results: []*lifecycle.ApplyResult{}, Native: []nativeResult{}}
			// Registries with native lifecycle (ECR) get the policy itself; the plan shown is regctl's
			// evaluation of it. The stored policy is compared after normalising rule order: when it is
			// the same, nothing is put.
			policyText := pf.raw
			want, _ := lifecycle.Parse(policyText)
			wantCanon, _ := lifecycle.Canonical(want)
			images, manifests := 0, 0
			var clientPlans []*lifecycle.RepoPlan
			for _, p := range plans {
				lp, ok := regs[p.Registry+"/"+p.Repository].(registry.LifecyclePolicies)
				if !ok {
					clientPlans = append(clientPlans, p)
					images += p.Summary.Expire
					manifests += p.Summary.Manifests
					continue
				}
				p.Engine = "native (" + regs[p.Registry+"/"+p.Repository].Type() + " applies the policy itself; this plan is regctl's evaluation)"
				status := "would-put"
				if stored, err := lp.GetLifecyclePolicy(cmd.Context(), p.Repository); err == nil {
					if cur, perr := lifecycle.Parse([]byte(stored)); perr == nil {
						if canon, _ := lifecycle.Canonical(cur); string(canon) == string(wantCanon) {
							status = "unchanged"
						}
					}
				} else if exitcode.Of(err) != exitcode.NotFound {
					return err
				}
				nr := nativeResult{Registry: p.Registry, Repository: p.Repository, Status: status}
				// A policy about to be put expires images once the registry applies it: count them with
				// the registry's own preview where there is one, so --max-delete covers them.
				if pv, ok := regs[p.Registry+"/"+p.Repository].(previewer); ok && (dryRun || status == "would-put") {
					preview, err := pv.Preview(cmd.Context(), p.Repository, string(policyText))
					if err != nil {
						return err
					}
					nr.Preview, nr.Disagreements = preview, disagreements(p, preview)
					nr.Expires, nr.ExpiresSource = previewExpires(preview), "registry-preview"
					if dryRun {
						for _, d := range nr.Disagreements {
							f.Notef("%s: disagreement: %s", p.Repository, d)
						}
					}
				} else {
					nr.Expires, nr.ExpiresSource = p.Summary.Expire, "regctl-plan"
				}
				out.Native = append(out.Native, nr)
			}
			puts, nativeExpires := 0, 0
			for _, n := range out.Native {
				if n.Status == "would-put" {
					puts++
					nativeExpires += n.Expires
				}
			}
			printed := false
			finish := func(msg string, err error) error {
				out.Message = msg
				if f.Format() == ui.FormatTable {
					if !printed {
						if rerr := renderPlans(f, plans); rerr != nil {
							return rerr
						}
					}
					fmt.Fprintln(f.IO.Out, msg)
				} else if rerr := f.Render(out, nil); rerr != nil {
					return rerr
				}
				return err
			}
			switch {
			case images == 0 && puts == 0:
				return finish("nothing to do: no image expires and every native policy is unchanged", nil)
			case dryRun:
				return finish(fmt.Sprintf("dry run: would delete %d images (%d manifests) and put %d native policies that expire %d images; nothing changed", images, manifests, puts, nativeExpires), nil)
			case maxDelete > 0 && images+nativeExpires > maxDelete:
				return finish("", exitcode.With(exitcode.Error, fmt.Errorf("the plan deletes %d images and the %d native policies to put expire %d more (their registry's preview), %d in all: more than --max-delete %d; nothing deleted, no policy put",
					images, puts, nativeExpires, images+nativeExpires, maxDelete)))
			case !yes && !(f.IO.InTTY && f.IO.ErrTTY):
				return finish("", usageError(fmt.Errorf("the plan deletes %d images (%d manifests) and puts %d native policies that expire %d images; not on a terminal, so pass --yes; nothing changed", images, manifests, puts, nativeExpires)))
			case !yes:
				if err := renderPlans(f, plans); err != nil {
					return err
				}
				printed = true
				fmt.Fprintf(f.IO.ErrOut, "Delete %d images (%d manifests) and put %d native policies that expire %d images? [y/N] ", images, manifests, puts, nativeExpires)
				answer, _ := bufio.NewReader(f.IO.In).ReadString('\n')
				if a := strings.ToLower(strings.TrimSpace(answer)); a != "y" && a != "yes" {
					return exitcode.With(exitcode.Usage, errors.New("not confirmed; nothing deleted"))
				}
			}
			var failures []error
			for i, n := range out.Native {
				if n.Status != "would-put" {
					continue
				}
				lp := regs[n.Registry+"/"+n.Repository].(registry.LifecyclePolicies)
				if err := lp.PutLifecyclePolicy(cmd.Context(), n.Repository, string(policyText)); err != nil {
					failures = append(failures, fmt.Errorf("%s: %w", n.Repository, err))
					continue
				}
				out.Native[i].Status = "put"
			}
			deleted, skipped := 0, 0
			for _, p := range clientPlans {
				r := lifecycle.Apply(cmd.Context(), regs[p.Registry+"/"+p.Repository], p, jobs, f.Logger())
				out.Results = append(out.Results, r)
				deleted += len(r.Deleted)
				for _, s := range r.Skipped {
					skipped += len(s.Digests)
					f.Notef("kept %s: %s", strings.Join(s.Digests, ", "), s.Reason)
				}
				if err := r.Err(); err != nil {
					failures = append(failures, err)
				}
			}
			msg := fmt.Sprintf("deleted %d manifests for %d expired images; put %d native policies", deleted, images, puts)
			if skipped > 0 {
				msg += fmt.Sprintf("; kept %d manifests the plan would have deleted (see above)", skipped)
			}
			if len(failures) > 0 {
				return finish(msg, fmt.Errorf("partial failure: %w", errors.Join(failures...)))
			}
			return finish(msg, nil)
		},
	}
	pf.register(cmd)
	cmd.Flags().BoolVar(&dryRun, "dry-run", false, "print the plan, delete nothing")
	cmd.Flags().BoolVarP(&yes, "yes", "y", false, "delete without asking (required when not on a terminal)")
	cmd.Flags().IntVar(&maxDelete, "max-delete", 0, "delete nothing if the plan expires more images than this (0: no limit)")
	cmd.Flags().IntVar(&jobs, "jobs", 4, "images deleted in parallel")
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
