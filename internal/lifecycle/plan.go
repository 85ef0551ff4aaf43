package lifecycle

import (
	"fmt"
	"sort"
	"strings"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"

	"github.com/regctl-dev/regctl/internal/registry"
)

// AgeSource chooses which image-recorded time ages an image on registries that record no push time.
type AgeSource string

const (
	AgeAuto       AgeSource = "auto"       // the backend's push time (ECR, Harbor), else config created, else annotation
	AgeCreated    AgeSource = "created"    // the image config's "created"
	AgeAnnotation AgeSource = "annotation" // the org.opencontainers.image.created manifest annotation
)

// ParseAgeSource checks an --age-source value.
func ParseAgeSource(s string) (AgeSource, error) {
	switch a := AgeSource(s); a {
	case AgeAuto, AgeCreated, AgeAnnotation:
		return a, nil
	}
	return "", fmt.Errorf("--age-source %q: must be auto, created or annotation", s)
}

// Plan actions.
const (
	PlanExpire = "expire" // deleted: the policy expires it
	PlanDelete = "delete" // deleted with the image it belongs to (platform manifest, signature, SBOM...)
	PlanKeep   = "keep"
)

// PlanItem is the plan's verdict on one manifest.
type PlanItem struct {
	Digest         string              `json:"digest"`
	Tags           []string            `json:"tags"`
	Kind           registry.Kind       `json:"kind"`
	Platform       string              `json:"platform,omitempty"`
	PushedAt       *time.Time          `json:"pushedAt,omitempty"`
	PushedAtSource registry.TimeSource `json:"pushedAtSource,omitempty"`
	Action         string              `json:"action"`         // expire | delete | keep
	Rule           int                 `json:"rule,omitempty"` // the rulePriority owning the image
	Reason         string              `json:"reason"`
	// Protected is set when the policy would expire the image but the plan keeps it.
	Protected string `json:"protectedBecause,omitempty"`
	// BelongsTo is the image a platform manifest or attached artifact goes (or stays) with.
	BelongsTo string `json:"belongsTo,omitempty"`
}

// RepoPlan is the plan for one repository. Its JSON form is the documented, stable schema of
// `lifecycle preview -o json` (docs/lifecycle.md).
type RepoPlan struct {
	Registry   string     `json:"registry"`
	Repository string     `json:"repository"`
	Engine     string     `json:"engine"` // "regctl" (client-side evaluation)
	AgeSource  AgeSource  `json:"ageSource"`
	EvaluateAt time.Time  `json:"evaluatedAt"`
	Items      []PlanItem `json:"items"`
	Notes      []string   `json:"notes"`
	Summary    Summary    `json:"summary"`
	// Deletes lists what apply deletes, one group per expired image: the image first, then what goes
	// with it (platform manifests, signatures, attestations, SBOMs), in that order.
	Deletes [][]string `json:"deletes"`
	// DeleteAfter are deletes that wait for the groups (manifests shared by several expired indexes).
	DeleteAfter []Deferred `json:"deleteAfter"`
}

// Summary counts a plan.
type Summary struct {
	Images    int `json:"images"`    // manifests that count as images under the policy
	Expire    int `json:"expire"`    // images the plan expires
	Protected int `json:"protected"` // images the policy would expire that the plan keeps
	NoTime    int `json:"noTime"`    // images kept because their age is unknown
	Manifests int `json:"manifests"` // manifests deleted in all (images + platforms + attached)
}

// NoteUnlisted is said for every plain OCI registry: it cannot enumerate manifests no tag reaches.
const NoteUnlisted = "untagged manifests that no tag or index reaches cannot be listed on plain OCI registries; they are outside this plan"

// BuildPlan evaluates policy over a repository's images and makes the plan safe for the whole
// repository graph:
//   - platform manifests of an index and attached artifacts (signatures, attestations, SBOMs,
//     referrers) are not images of their own and never count toward a rule;
//   - a manifest referenced by an index that survives is never deleted;
//   - an expired index takes its children that nothing else keeps;
//   - attached artifacts are deleted with their subject, and only then.
func BuildPlan(p *Policy, regName, repo string, images []registry.Image, age AgeSource, now time.Time) *RepoPlan {
	plan := &RepoPlan{Registry: regName, Repository: repo, Engine: "regctl", AgeSource: age, EvaluateAt: now.UTC(),
		Items: []PlanItem{}, Notes: []string{}, Deletes: [][]string{}, DeleteAfter: []Deferred{}}
	byDigest := make(map[v1.Hash]*registry.Image, len(images))
	for i := range images {
		byDigest[images[i].Digest] = &images[i]
	}

	// 1. Which manifests are images: not attached, and not an untagged platform of an index.
	var candidates []*registry.Image
	for i := range images {
		img := &images[i]
		if isCandidate(img) {
			candidates = append(candidates, img)
		}
	}
	times := make(map[v1.Hash]ageTime, len(candidates))
	lcImages := make([]Image, len(candidates))
	for i, img := range candidates {
		t := imageAge(img, byDigest, age)
		times[img.Digest] = t
		lcImages[i] = Image{ID: img.Digest.String(), Tags: img.Tags, PushedAt: t.at, LastPulledAt: img.LastPulledAt}
	}
	decisions := Evaluate(p, lcImages, now)

	// 2. The policy's wish, then protection by surviving indexes until nothing changes.
	remove := map[v1.Hash]bool{}
	decisionOf := map[v1.Hash]Decision{}
	for i, d := range decisions {
		dg := candidates[i].Digest
		decisionOf[dg] = d
		if d.Action == ActionExpire {
			remove[dg] = true
		}
	}
	protected := map[v1.Hash]string{}
	for changed := true; changed; {
		changed = false
		for i := range images {
			img := &images[i]
			if img.Kind.Attached() {
				continue
			}
			if remove[img.Digest] {
				for _, parent := range img.Parents {
					if !remove[parent] {
						delete(remove, img.Digest)
						protected[img.Digest] = "referenced by index " + short(parent) + ", which is kept"
						changed = true
						break
					}
				}
				continue
			}
			// An untagged platform manifest goes when every index listing it goes.
			if !isCandidate(img) && len(img.Parents) > 0 && allIn(img.Parents, remove) {
				remove[img.Digest] = true
				changed = true
			}
		}
	}
	// Attached artifacts go with their subject (a referrers index also with its subject).
	for changed := true; changed; {
		changed = false
		for i := range images {
			img := &images[i]
			if img.Kind.Attached() && !remove[img.Digest] && img.Subject != nil && remove[*img.Subject] {
				remove[img.Digest] = true
				changed = true
			}
		}
	}

	// 3. Items and the deletion order.
	for i := range images {
		img := &images[i]
		it := PlanItem{Digest: img.Digest.String(), Tags: nonNil(img.Tags), Kind: img.Kind, Action: PlanKeep}
		if img.Platform != nil {
			it.Platform = img.Platform.String()
		}
		if t, ok := times[img.Digest]; ok && !t.at.IsZero() {
			at := t.at
			it.PushedAt, it.PushedAtSource = &at, t.source
		}
		d, isImage := decisionOf[img.Digest]
		switch {
		case isImage:
			plan.Summary.Images++
			it.Rule, it.Reason = d.RulePriority, d.Reason
			if it.Reason == "" {
				it.Reason = "no rule selects it"
			}
			if d.Action == ActionTransition {
				it.Reason += " (transition to archive storage exists only on ECR; kept here)"
			}
			if it.PushedAt == nil {
				plan.Summary.NoTime++
				it.Reason = "age unknown: the image records no created time (" + string(age) + "); kept"
			}
			if remove[img.Digest] {
				it.Action = PlanExpire
				plan.Summary.Expire++
			} else if why, ok := protected[img.Digest]; ok {
				it.Protected = why
				plan.Summary.Protected++
			}
		default:
			owner := img.Subject
			if owner == nil && len(img.Parents) > 0 {
				owner = &img.Parents[0]
			}
			if owner != nil {
				it.BelongsTo = owner.String()
			}
			switch {
			case remove[img.Digest]:
				it.Action = PlanDelete
				it.Reason = "goes with " + short(*owner)
			case owner != nil && byDigest[*owner] == nil:
				it.Reason = "belongs to " + short(*owner) + ", which is not in this repository's listing; kept"
			case owner != nil:
				it.Reason = "stays with " + short(*owner)
			default:
				it.Reason = "not an image of its own; kept"
			}
		}
		plan.Items = append(plan.Items, it)
	}
	plan.Deletes, plan.DeleteAfter = deletionGroups(images, remove, byDigest)
	for _, g := range plan.Deletes {
		plan.Summary.Manifests += len(g)
	}
	plan.Summary.Manifests += len(plan.DeleteAfter)
	sort.SliceStable(plan.Items, func(i, j int) bool { return itemTime(plan.Items[i]).After(itemTime(plan.Items[j])) })
	return plan
}

type ageTime struct {
	at     time.Time
	source registry.TimeSource
}

// imageAge picks an image's age by the chosen source. An index is aged by its own annotation, else by
// its newest platform manifest (aged by the same source).
func imageAge(img *registry.Image, byDigest map[v1.Hash]*registry.Image, age AgeSource) ageTime {
	if img.Kind == registry.KindIndex {
		if !img.AnnotationCreated.IsZero() && age != AgeCreated {
			return ageTime{img.AnnotationCreated, registry.SourceAnnotation}
		}
		if age == AgeAuto && img.PushedAtSource != registry.SourceNewestChild && !img.PushedAt.IsZero() {
			return ageTime{img.PushedAt, img.PushedAtSource} // a backend push time
		}
		var newest time.Time
		for _, c := range img.Children {
			if child, ok := byDigest[c]; ok && child.Kind == registry.KindImage {
				if t := imageAge(child, byDigest, age).at; t.After(newest) {
					newest = t
				}
			}
		}
		if newest.IsZero() {
			return ageTime{}
		}
		return ageTime{newest, registry.SourceNewestChild}
	}
	switch age {
	case AgeCreated:
		if !img.ConfigCreated.IsZero() {
			return ageTime{img.ConfigCreated, registry.SourceConfig}
		}
		return ageTime{}
	case AgeAnnotation:
		if !img.AnnotationCreated.IsZero() {
			return ageTime{img.AnnotationCreated, registry.SourceAnnotation}
		}
		return ageTime{}
	}
	return ageTime{img.PushedAt, img.PushedAtSource}
}

func isCandidate(img *registry.Image) bool {
	if img.Kind.Attached() || img.Missing {
		return false
	}
	return len(img.Parents) == 0 || len(img.Tags) > 0
}

// deletionGroups orders deletes: each expired image (oldest first) starts a group, followed by the
// platform manifests only it lists and the artifacts attached to them, so a failure part-way never
// leaves an index without its platforms. A platform manifest listed by several expired indexes is
// deferred: apply deletes it after the groups, and only if every index listing it was deleted.
func deletionGroups(images []registry.Image, remove map[v1.Hash]bool, byDigest map[v1.Hash]*registry.Image) ([][]string, []Deferred) {
	done := map[v1.Hash]bool{}
	var deferred []Deferred
	var add func(group *[]string, d v1.Hash)
	add = func(group *[]string, d v1.Hash) {
		if done[d] || !remove[d] {
			return
		}
		done[d] = true
		*group = append(*group, d.String())
		for _, c := range byDigest[d].Children {
			child, ok := byDigest[c]
			if !ok || done[c] || !remove[c] {
				continue
			}
			if len(child.Parents) == 1 {
				add(group, c)
				continue
			}
			done[c] = true
			after := make([]string, len(child.Parents))
			for i, p := range child.Parents {
				after[i] = p.String()
			}
			deferred = append(deferred, Deferred{Digest: c.String(), After: after})
		}
		for i := range images {
			if s := images[i].Subject; s != nil && *s == d {
				add(group, images[i].Digest)
			}
		}
	}
	var roots []*registry.Image
	for i := range images {
		if remove[images[i].Digest] && isCandidate(&images[i]) {
			roots = append(roots, &images[i])
		}
	}
	sort.SliceStable(roots, func(i, j int) bool { return roots[i].PushedAt.Before(roots[j].PushedAt) })
	groups := [][]string{}
	for _, r := range roots {
		var g []string
		add(&g, r.Digest)
		groups = append(groups, g)
	}
	// Artifacts attached to a deferred manifest follow it.
	for i := 0; i < len(deferred); i++ {
		for j := range images {
			if s := images[j].Subject; s != nil && s.String() == deferred[i].Digest && remove[images[j].Digest] && !done[images[j].Digest] {
				done[images[j].Digest] = true
				deferred = append(deferred, Deferred{Digest: images[j].Digest.String(), After: []string{deferred[i].Digest}})
			}
		}
	}
	for i := range images {
		if remove[images[i].Digest] && !done[images[i].Digest] {
			var g []string
			add(&g, images[i].Digest)
			groups = append(groups, g)
		}
	}
	return groups, deferred
}

// Deferred is a delete that waits for others: a manifest several expired indexes list goes only
// once all of them are gone.
type Deferred struct {
	Digest string   `json:"digest"`
	After  []string `json:"after"`
}

func allIn(list []v1.Hash, set map[v1.Hash]bool) bool {
	for _, d := range list {
		if !set[d] {
			return false
		}
	}
	return true
}

func nonNil(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}

func short(d v1.Hash) string { return registry.ShortDigest(d.String()) }

func itemTime(it PlanItem) time.Time {
	if it.PushedAt == nil {
		return time.Time{}
	}
	return *it.PushedAt
}

// Warnings are not errors but catch common mistakes: a multi-entry tag list is an AND (every entry
// must match some tag of the image), which authors often read as an OR.
func Warnings(p *Policy) []FieldError {
	var ws []FieldError
	for i, r := range p.Rules {
		for _, l := range []struct {
			name  string
			items []string
		}{{"tagPrefixList", r.Selection.TagPrefixList}, {"tagPatternList", r.Selection.TagPatternList}} {
			if len(l.items) > 1 {
				ws = append(ws, FieldError{Path: fmt.Sprintf("rules[%d].selection.%s", i, l.name),
					Msg: fmt.Sprintf("entries are ANDed: only images carrying a tag for each of %s are selected; for OR, write one rule per entry", strings.Join(quoteAll(l.items), " and "))})
			}
		}
	}
	return ws
}

func quoteAll(items []string) []string {
	out := make([]string, len(items))
	for i, s := range items {
		out[i] = fmt.Sprintf("%q", s)
	}
	return out
}
