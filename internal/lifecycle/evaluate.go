package lifecycle

import (
	"cmp"
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Image is what the evaluator needs to know about one image (one manifest
// digest). It is independent of any registry package; the caller maps its own
// model onto it.
type Image struct {
	ID       string    // caller's key, typically the digest; also the ordering tie-break
	Tags     []string  // all tags of the image; empty = untagged
	PushedAt time.Time // zero = unknown: the image is never expired or transitioned
	// Zero means never or unknown. A non-zero LastActivatedAt means the image
	// was restored from archive at that time.
	LastPulledAt, LastActivatedAt, LastArchivedAt time.Time
	StorageClass                                  string // "standard" or "archive"; "" = standard
}

// Decision is the evaluator's verdict on one image.
type Decision struct {
	ImageID      string
	Action       string // ActionExpire, ActionTransition or DecisionKeep
	RulePriority int    // rulePriority of the rule that owns the image; 0 if none
	Reason       string // human-readable; "rule N" means rulePriority N, e.g. "rule 3: pushed 9d ago, older than 7 days"
}

// Evaluate applies p to images as ECR does (spec A.3.2) and returns one
// Decision per image, in input order. It is pure: now is the only clock.
//
// Every rule is evaluated over all the images it selects; each image is then
// owned by the selecting rule with the lowest rulePriority, and only that rule
// may act on it. See the package documentation for ordering ties and images
// without a push time.
//
// p is expected to be valid (see Validate). A rule that is not valid on its
// own still owns the images it selects, but never acts on them.
func Evaluate(p *Policy, images []Image, now time.Time) []Decision {
	out := make([]Decision, len(images))
	for i := range images {
		out[i] = Decision{ImageID: images[i].ID, Action: DecisionKeep, Reason: "kept: no rule selects this image"}
	}
	if p == nil || len(images) == 0 {
		return out
	}
	rules := compileRules(p, now)
	lastRanked := -1
	for k := range rules {
		if rules[k].ranked {
			lastRanked = k
		}
	}

	// Phase 1: ownership, and the full selection of every count rule (an
	// image owned by an earlier rule still takes a slot in a later count).
	owner := make([]int32, len(images))
	for i := range images {
		img := &images[i]
		owner[i] = -1
		for k := range rules {
			cr := &rules[k]
			if owner[i] >= 0 {
				if k > lastRanked {
					break
				}
				if !cr.ranked {
					continue
				}
			}
			if !cr.selects(img) {
				continue
			}
			if owner[i] < 0 {
				owner[i] = int32(k)
			}
			if cr.ranked && !img.PushedAt.IsZero() {
				t := orderTime(img)
				cr.members = append(cr.members, rankKey{sec: t.Unix(), nsec: int32(t.Nanosecond()), idx: i})
			}
		}
	}

	// Rank count selections newest first; ties by ID, then input position.
	rank := make([]int, len(images))
	for k := range rules {
		cr := &rules[k]
		if !cr.ranked {
			continue
		}
		slices.SortFunc(cr.members, func(a, b rankKey) int {
			return cmp.Or(
				cmp.Compare(b.sec, a.sec),
				cmp.Compare(b.nsec, a.nsec),
				strings.Compare(images[a.idx].ID, images[b.idx].ID),
				cmp.Compare(a.idx, b.idx),
			)
		})
		for pos, m := range cr.members {
			if owner[m.idx] == int32(k) {
				rank[m.idx] = pos
			}
		}
	}

	// Phase 2: only the owner acts.
	for i := range images {
		if k := owner[i]; k >= 0 {
			out[i] = rules[k].decide(&images[i], rank[i], now)
		}
	}
	return out
}

// rankKey is an image's position key in a count rule's selection.
type rankKey struct {
	sec  int64
	nsec int32
	idx  int
}

type compiledRule struct {
	priority  int
	status    string
	class     string // effective storage class ("" in the policy = standard)
	prefixes  []string
	globs     []glob
	countType string
	count     int
	action    string
	cutoff    time.Time // since* rules: a time strictly before this is "older than count days"
	desc      string    // what the rule selects, for reasons
	invalid   string    // non-empty: the rule is broken and never acts
	ranked    bool      // a valid imageCountMoreThan rule: it needs its whole selection
	members   []rankKey
}

func compileRules(p *Policy, now time.Time) []compiledRule {
	order := make([]int, len(p.Rules))
	for i := range order {
		order[i] = i
	}
	slices.SortStableFunc(order, func(a, b int) int {
		return cmp.Compare(p.Rules[a].RulePriority, p.Rules[b].RulePriority)
	})
	rules := make([]compiledRule, 0, len(order))
	for _, i := range order {
		r := &p.Rules[i]
		sel := &r.Selection
		cr := compiledRule{
			priority:  r.RulePriority,
			status:    sel.TagStatus,
			class:     cmp.Or(sel.StorageClass, StorageClassStandard),
			prefixes:  sel.TagPrefixList,
			countType: sel.CountType,
			count:     sel.CountNumber,
			action:    r.Action.Type,
			desc:      describeSelection(sel),
		}
		for _, pat := range sel.TagPatternList {
			cr.globs = append(cr.globs, compileGlob(pat))
		}
		if errs := validateRule(r, rulePath(i)); len(errs) > 0 {
			cr.invalid = errs[0].Error()
		}
		cr.ranked = cr.invalid == "" && cr.countType == CountTypeImageCountMoreThan
		if cr.invalid == "" {
			// In UTC, AddDate by days is exactly N×24h, and unlike
			// Add(-N*24*time.Hour) it cannot overflow for large N.
			cr.cutoff = now.UTC().AddDate(0, 0, -cr.count)
		}
		rules = append(rules, cr)
	}
	return rules
}

// selects reports whether the rule's storage class and tag requirements match
// img (its age does not matter).
func (cr *compiledRule) selects(img *Image) bool {
	if cmp.Or(img.StorageClass, StorageClassStandard) != cr.class {
		return false
	}
	switch cr.status {
	case TagStatusAny:
		return true
	case TagStatusUntagged:
		return len(img.Tags) == 0
	case TagStatusTagged:
		if len(img.Tags) == 0 {
			return false
		}
		// Every entry must be matched by some tag; different entries may be
		// matched by different tags.
		for _, p := range cr.prefixes {
			if !anyTagHasPrefix(img.Tags, p) {
				return false
			}
		}
		for _, g := range cr.globs {
			if !anyTagMatches(img.Tags, g) {
				return false
			}
		}
		return true
	}
	return false
}

func anyTagHasPrefix(tags []string, prefix string) bool {
	for _, t := range tags {
		if strings.HasPrefix(t, prefix) {
			return true
		}
	}
	return false
}

func anyTagMatches(tags []string, g glob) bool {
	for _, t := range tags {
		if g.match(t) {
			return true
		}
	}
	return false
}

// orderTime is the time ECR ages and orders an image by: when it was
// restored from archive if it ever was, else when it was pushed.
func orderTime(img *Image) time.Time {
	if !img.LastActivatedAt.IsZero() {
		return img.LastActivatedAt
	}
	return img.PushedAt
}

// decide is the owner rule's verdict on img; rank is img's 0-based position
// in the rule's newest-first ordering (count rules only).
func (cr *compiledRule) decide(img *Image, rank int, now time.Time) Decision {
	d := Decision{ImageID: img.ID, Action: DecisionKeep, RulePriority: cr.priority}
	keep := func(format string, args ...any) Decision {
		d.Reason = "protected by rule " + strconv.Itoa(cr.priority) + ": " + fmt.Sprintf(format, args...)
		return d
	}
	act := func(format string, args ...any) Decision {
		d.Action = cr.action
		d.Reason = "rule " + strconv.Itoa(cr.priority) + ": " + fmt.Sprintf(format, args...)
		return d
	}
	if cr.invalid != "" {
		return keep("the rule is invalid and never acts (%s)", cr.invalid)
	}
	if img.PushedAt.IsZero() {
		return keep("push time unknown; such an image is never expired or transitioned")
	}

	var t time.Time
	var what string
	switch cr.countType {
	case CountTypeImageCountMoreThan:
		if rank < cr.count {
			return keep("%s newest of %s, within the %d kept", ordinal(rank+1), cr.desc, cr.count)
		}
		return act("%s newest of %s, keeps %d", ordinal(rank+1), cr.desc, cr.count)
	case CountTypeSinceImagePushed:
		t, what = orderTime(img), "pushed"
		if !img.LastActivatedAt.IsZero() {
			what = "restored from archive"
		}
	case CountTypeSinceImagePulled:
		switch restored := !img.LastActivatedAt.IsZero(); {
		case !img.LastPulledAt.IsZero() && (!restored || img.LastPulledAt.After(img.LastActivatedAt)):
			t, what = img.LastPulledAt, "last pulled"
		case restored:
			t, what = img.LastActivatedAt, "not pulled since restored from archive"
		default:
			t, what = img.PushedAt, "never pulled, pushed"
		}
	case CountTypeSinceImageTransitioned:
		if img.LastArchivedAt.IsZero() {
			return keep("archive time unknown")
		}
		t, what = img.LastArchivedAt, "archived"
	}
	if t.Before(cr.cutoff) {
		return act("%s %s, older than %s", what, ago(now.Sub(t)), days(cr.count))
	}
	return keep("%s %s, not older than %s", what, ago(now.Sub(t)), days(cr.count))
}

// describeSelection says in words which images a rule selects.
func describeSelection(sel *Selection) string {
	var s string
	switch sel.TagStatus {
	case TagStatusAny:
		s = "all images"
	case TagStatusUntagged:
		s = "untagged images"
	case TagStatusTagged:
		switch {
		case len(sel.TagPrefixList) == 1:
			s = "images with tag prefix " + quoteList(sel.TagPrefixList, "and")
		case len(sel.TagPrefixList) > 1:
			s = "images with tag prefixes " + quoteList(sel.TagPrefixList, "and")
		case len(sel.TagPatternList) == 1:
			s = "images with a tag matching " + quoteList(sel.TagPatternList, "and")
		default:
			s = "images with tags matching " + quoteList(sel.TagPatternList, "and")
		}
	default:
		s = fmt.Sprintf("images with tagStatus %q", sel.TagStatus)
	}
	if sel.StorageClass != "" && sel.StorageClass != StorageClassStandard {
		s += " in " + sel.StorageClass + " storage"
	}
	return s
}

// ago renders an age like "9d ago", "9d4h ago", "23h ago" or "5m in the future".
func ago(d time.Duration) string {
	suffix := " ago"
	if d < 0 {
		suffix = " in the future"
		d = -d
		if d < 0 { // -math.MinInt64 overflows
			d = math.MaxInt64
		}
	}
	const day = 24 * time.Hour
	var s string
	switch {
	case d >= day:
		s = strconv.FormatInt(int64(d/day), 10) + "d"
		if h := (d % day) / time.Hour; h > 0 {
			s += strconv.FormatInt(int64(h), 10) + "h"
		}
	case d >= time.Hour:
		s = strconv.FormatInt(int64(d/time.Hour), 10) + "h"
		if m := (d % time.Hour) / time.Minute; m > 0 {
			s += strconv.FormatInt(int64(m), 10) + "m"
		}
	case d >= time.Minute:
		s = strconv.FormatInt(int64(d/time.Minute), 10) + "m"
	default:
		s = strconv.FormatInt(int64(d/time.Second), 10) + "s"
	}
	return s + suffix
}

func days(n int) string {
	if n == 1 {
		return "1 day"
	}
	return strconv.Itoa(n) + " days"
}

// ordinal renders 1 as "1st", 2 as "2nd", 11 as "11th", 22 as "22nd".
func ordinal(n int) string {
	suffix := "th"
	if n%100 < 11 || n%100 > 13 {
		switch n % 10 {
		case 1:
			suffix = "st"
		case 2:
			suffix = "nd"
		case 3:
			suffix = "rd"
		}
	}
	return strconv.Itoa(n) + suffix
}
