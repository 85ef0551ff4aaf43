package lifecycle

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"

	"github.com/regctl-dev/regctl/internal/exitcode"
	"github.com/regctl-dev/regctl/internal/registry"
)

// Target is one repository's plan and the registry it lives on.
type Target struct {
	Registry registry.Registry
	Plan     *RepoPlan
}

// ReconcileOptions are lifecycle apply's rules.
type ReconcileOptions struct {
	Policy    []byte // the policy text as given: what a native backend stores
	DryRun    bool
	Yes       bool
	MaxDelete int // 0: no limit
	Jobs      int
	// Confirm is asked before anything changes when Yes is false; nil means nobody can be asked (not
	// on a terminal), which refuses.
	Confirm func(Changes) (bool, error)
	// Note receives what the user should read beside the result (disagreements, kept images).
	Note   func(format string, a ...any)
	Logger *slog.Logger
}

// Changes is what a reconcile would change.
type Changes struct {
	Images        int // images regctl deletes
	Manifests     int // manifests those deletes remove
	NativePuts    int // policies to store on registries that apply them themselves
	NativeExpires int // images those policies expire once stored
}

// Outcome is lifecycle apply's result, as -o json prints it.
type Outcome struct {
	DryRun  bool           `json:"dryRun"`
	Plans   []*RepoPlan    `json:"plans"`
	Results []*ApplyResult `json:"results"`
	Native  []NativeResult `json:"native"`
	Message string         `json:"message"`
}

// NativeResult is a policy handed to a registry that applies lifecycle policies itself (ECR).
type NativeResult struct {
	Registry   string `json:"registry"`
	Repository string `json:"repository"`
	Status     string `json:"status"` // unchanged | put | would-put
	// Expires is how many images the registry will expire once the policy is put: its own preview's
	// count where it has one (ExpiresSource "registry-preview"), else regctl's plan ("regctl-plan").
	// --max-delete and the confirmation count these too.
	Expires       int    `json:"expires"`
	ExpiresSource string `json:"expiresSource,omitempty"`
	// The registry's own preview, and every image on which it and regctl's plan differ.
	Preview       []registry.PreviewItem `json:"preview,omitempty"`
	Disagreements []string               `json:"disagreements,omitempty"`
}

// Reconcile applies a policy to every target: registries that store lifecycle policies get the
// policy itself (unless it is stored already), the others get regctl's plan deleted. Nothing changes
// unless the whole of it — regctl's deletes plus what native policies will expire — is within
// MaxDelete and confirmed (Yes, or Confirm); DryRun changes nothing. The returned outcome is
// filled in as far as the run got, also when the error is not nil.
func Reconcile(ctx context.Context, targets []Target, o ReconcileOptions) (*Outcome, error) {
	if o.Note == nil {
		o.Note = func(string, ...any) {}
	}
	out := &Outcome{DryRun: o.DryRun, Plans: []*RepoPlan{}, Results: []*ApplyResult{}, Native: []NativeResult{}}
	wantCanon := ""
	if want, err := Parse(o.Policy); err == nil {
		if c, err := Canonical(want); err == nil {
			wantCanon = string(c)
		}
	}
	var sum Changes
	var clientSide []Target
	natives := map[int]registry.LifecyclePolicies{}
	for _, t := range targets {
		p := t.Plan
		out.Plans = append(out.Plans, p)
		lp, ok := t.Registry.(registry.LifecyclePolicies)
		if !ok {
			clientSide = append(clientSide, t)
			sum.Images += p.Summary.Expire
			sum.Manifests += p.Summary.Manifests
			continue
		}
		p.Engine = "native (" + t.Registry.Type() + " applies the policy itself; this plan is regctl's evaluation)"
		status := "would-put"
		if stored, err := lp.GetLifecyclePolicy(ctx, p.Repository); err == nil {
			if cur, perr := Parse([]byte(stored)); perr == nil {
				if canon, _ := Canonical(cur); wantCanon != "" && string(canon) == wantCanon {
					status = "unchanged"
				}
			}
		} else if exitcode.Of(err) != exitcode.NotFound {
			return out, err
		}
		nr := NativeResult{Registry: p.Registry, Repository: p.Repository, Status: status}
		// A policy about to be stored expires images once the registry applies it: count them with
		// the registry's own preview where there is one, so MaxDelete covers them.
		if pv, ok := t.Registry.(registry.LifecyclePreviewer); ok && (o.DryRun || status == "would-put") {
			preview, err := pv.PreviewLifecyclePolicy(ctx, p.Repository, string(o.Policy))
			if err != nil {
				return out, err
			}
			nr.Preview, nr.Disagreements = preview, Disagreements(p, preview)
			nr.Expires, nr.ExpiresSource = previewExpires(preview), "registry-preview"
			if o.DryRun {
				for _, d := range nr.Disagreements {
					o.Note("%s: disagreement: %s", p.Repository, d)
				}
			}
		} else {
			nr.Expires, nr.ExpiresSource = p.Summary.Expire, "regctl-plan"
		}
		if status == "would-put" {
			sum.NativePuts++
			sum.NativeExpires += nr.Expires
			natives[len(out.Native)] = lp
		}
		out.Native = append(out.Native, nr)
	}

	switch {
	case sum.Images == 0 && sum.NativePuts == 0:
		out.Message = "nothing to do: no image expires and every native policy is unchanged"
		return out, nil
	case o.DryRun:
		out.Message = fmt.Sprintf("dry run: would delete %d images (%d manifests) and put %d native policies that expire %d images; nothing changed",
			sum.Images, sum.Manifests, sum.NativePuts, sum.NativeExpires)
		return out, nil
	case o.MaxDelete > 0 && sum.Images+sum.NativeExpires > o.MaxDelete:
		return out, exitcode.With(exitcode.Error, fmt.Errorf("the plan deletes %d images and the %d native policies to put expire %d more (their registry's preview), %d in all: more than --max-delete %d; nothing deleted, no policy put",
			sum.Images, sum.NativePuts, sum.NativeExpires, sum.Images+sum.NativeExpires, o.MaxDelete))
	case !o.Yes && o.Confirm == nil:
		return out, fmt.Errorf("the plan deletes %d images (%d manifests) and puts %d native policies that expire %d images; not on a terminal, so pass --yes; nothing changed: %w",
			sum.Images, sum.Manifests, sum.NativePuts, sum.NativeExpires, exitcode.ErrUsage)
	case !o.Yes:
		ok, err := o.Confirm(sum)
		if err != nil {
			return out, err
		}
		if !ok {
			return out, fmt.Errorf("not confirmed; nothing deleted: %w", exitcode.ErrUsage)
		}
	}

	var failures []error
	for i, n := range out.Native {
		lp, ok := natives[i]
		if !ok {
			continue
		}
		if err := lp.PutLifecyclePolicy(ctx, n.Repository, string(o.Policy)); err != nil {
			failures = append(failures, fmt.Errorf("%s: %w", n.Repository, err))
			continue
		}
		out.Native[i].Status = "put"
	}
	deleted, skipped := 0, 0
	for _, t := range clientSide {
		r := Apply(ctx, t.Registry, t.Plan, o.Jobs, o.Logger)
		out.Results = append(out.Results, r)
		deleted += len(r.Deleted)
		for _, s := range r.Skipped {
			skipped += len(s.Digests)
			o.Note("kept %s: %s", strings.Join(s.Digests, ", "), s.Reason)
		}
		if err := r.Err(); err != nil {
			failures = append(failures, err)
		}
	}
	out.Message = fmt.Sprintf("deleted %d manifests for %d expired images; put %d native policies", deleted, sum.Images, sum.NativePuts)
	if skipped > 0 {
		out.Message += fmt.Sprintf("; kept %d manifests the plan would have deleted (see above)", skipped)
	}
	if len(failures) > 0 {
		return out, fmt.Errorf("partial failure: %w", errors.Join(failures...))
	}
	return out, nil
}

// previewExpires counts the distinct images a registry's preview expires.
func previewExpires(preview []registry.PreviewItem) int {
	seen := map[string]bool{}
	for _, r := range preview {
		if strings.EqualFold(r.Action, ActionExpire) {
			seen[r.Digest] = true
		}
	}
	return len(seen)
}

// Disagreements compares a registry's preview with regctl's plan, digest by digest.
func Disagreements(plan *RepoPlan, preview []registry.PreviewItem) []string {
	theirs := map[string]registry.PreviewItem{}
	for _, r := range preview {
		if strings.EqualFold(r.Action, ActionExpire) {
			theirs[r.Digest] = r
		}
	}
	var out []string
	for _, it := range plan.Items {
		ours := it.Action == PlanExpire || it.Action == PlanDelete
		r, their := theirs[it.Digest]
		switch {
		case their && !ours:
			why := it.Reason
			if it.Protected != "" {
				why = "protected: " + it.Protected
			}
			out = append(out, fmt.Sprintf("%s %v: the registry's preview expires it (rule %d); regctl keeps it (%s)", registry.ShortDigest(it.Digest), it.Tags, r.Rule, why))
		case ours && !their:
			out = append(out, fmt.Sprintf("%s %v: regctl deletes it (%s); the registry's preview keeps it", registry.ShortDigest(it.Digest), it.Tags, it.Reason))
		}
	}
	return out
}
