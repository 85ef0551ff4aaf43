package lifecycle

import (
	"fmt"
	"slices"
	"strconv"
	"strings"
)

// Validate checks p against every ECR constraint of spec A.2 (invalid
// policies E01–E15) and returns all problems found, in rule order. textLen is
// the length in characters (runes) of the policy text that will be sent to
// ECR; pass a negative value to skip the length check, e.g. for a policy built
// in code before it is serialised.
//
// Validate cannot tell an absent field from its zero value; Parse can, and
// reports absent required fields as such.
func Validate(p *Policy, textLen int) []FieldError {
	if p == nil {
		return []FieldError{{Path: rootPath, Msg: "policy is nil"}}
	}
	v := &validator{}
	if textLen >= 0 && (textLen < MinTextLen || textLen > MaxTextLen) {
		v.fail(rootPath, "policy text is %d characters; ECR requires %d to %d", textLen, MinTextLen, MaxTextLen)
	}
	switch n := len(p.Rules); {
	case n == 0:
		v.fail("rules", "at least one rule is required")
	case n > MaxRules:
		v.fail("rules", "%d rules; ECR allows at most %d per policy", n, MaxRules)
	}
	for i := range p.Rules {
		v.errs = append(v.errs, validateRule(&p.Rules[i], rulePath(i))...)
	}
	v.crossRule(p.Rules)
	return v.errs
}

type validator struct {
	errs []FieldError
}

func (v *validator) fail(path, format string, args ...any) {
	v.errs = append(v.errs, FieldError{Path: path, Msg: fmt.Sprintf(format, args...)})
}

func rulePath(i int) string { return "rules[" + strconv.Itoa(i) + "]" }

var (
	tagStatuses    = []string{TagStatusTagged, TagStatusUntagged, TagStatusAny}
	storageClasses = []string{StorageClassStandard, StorageClassArchive}
	countTypes     = []string{CountTypeImageCountMoreThan, CountTypeSinceImagePushed, CountTypeSinceImagePulled, CountTypeSinceImageTransitioned}
	actionTypes    = []string{ActionExpire, ActionTransition}
)

// enum checks that value is one of allowed. An empty value is "missing" when
// required and accepted otherwise. It reports whether value is usable for
// cross-field checks (valid and non-empty).
func (v *validator) enum(path, value string, required bool, allowed []string) bool {
	if value == "" {
		if required {
			v.fail(path, "required; must be one of %s", quoteList(allowed, "or"))
		}
		return false
	}
	if slices.Contains(allowed, value) {
		return true
	}
	for _, a := range allowed {
		if strings.EqualFold(a, value) {
			v.fail(path, "invalid value %q; did you mean %q? values are case-sensitive", value, a)
			return false
		}
	}
	v.fail(path, "invalid value %q; must be one of %s", value, quoteList(allowed, "or"))
	return false
}

// validateRule checks everything about one rule that does not depend on the
// other rules. Evaluate also uses it to refuse to act on broken rules.
func validateRule(r *Rule, path string) []FieldError {
	v := &validator{}
	sel, act := &r.Selection, &r.Action
	sp, ap := path+".selection", path+".action"

	switch {
	case r.RulePriority < 1:
		v.fail(path+".rulePriority", "must be a positive integer (at least 1), got %d", r.RulePriority)
	case r.RulePriority > maxInt32:
		v.fail(path+".rulePriority", "must be at most %d, got %d", maxInt32, r.RulePriority)
	}

	statusOK := v.enum(sp+".tagStatus", sel.TagStatus, true, tagStatuses)
	v.enum(sp+".storageClass", sel.StorageClass, false, storageClasses)
	countOK := v.enum(sp+".countType", sel.CountType, true, countTypes)
	typeOK := v.enum(ap+".type", act.Type, true, actionTypes)

	// countUnit belongs to the age-based count types only.
	switch {
	case countOK && sel.CountType == CountTypeImageCountMoreThan:
		if sel.CountUnit != "" {
			v.fail(sp+".countUnit", "not allowed with countType %s (countNumber is a number of images); remove it", sel.CountType)
		}
	case countOK:
		if sel.CountUnit == "" {
			v.fail(sp+".countUnit", "required with countType %s; must be %q", sel.CountType, CountUnitDays)
		} else if sel.CountUnit != CountUnitDays {
			v.fail(sp+".countUnit", "invalid value %q; must be %q", sel.CountUnit, CountUnitDays)
		}
	case sel.CountUnit != "" && sel.CountUnit != CountUnitDays:
		v.fail(sp+".countUnit", "invalid value %q; must be %q", sel.CountUnit, CountUnitDays)
	}

	switch {
	case sel.CountNumber < 1:
		v.fail(sp+".countNumber", "must be a positive integer (at least 1), got %d", sel.CountNumber)
	case sel.CountNumber > maxInt32:
		v.fail(sp+".countNumber", "must be at most %d, got %d", maxInt32, sel.CountNumber)
	}

	// Tag lists: exactly one with tagged, none otherwise.
	hasPrefix, hasPattern := sel.TagPrefixList != nil, sel.TagPatternList != nil
	if statusOK {
		switch {
		case sel.TagStatus == TagStatusTagged && !hasPrefix && !hasPattern:
			v.fail(sp, "tagStatus %q requires tagPrefixList or tagPatternList", TagStatusTagged)
		case sel.TagStatus == TagStatusTagged && hasPrefix && hasPattern:
			v.fail(sp+".tagPatternList", "not allowed together with tagPrefixList; a rule may use only one of the two lists")
		case sel.TagStatus != TagStatusTagged:
			if hasPrefix {
				v.fail(sp+".tagPrefixList", "not allowed with tagStatus %q; tag lists are only allowed with tagStatus %q", sel.TagStatus, TagStatusTagged)
			}
			if hasPattern {
				v.fail(sp+".tagPatternList", "not allowed with tagStatus %q; tag lists are only allowed with tagStatus %q", sel.TagStatus, TagStatusTagged)
			}
		}
	}
	v.tagList(sp+".tagPrefixList", sel.TagPrefixList, false)
	v.tagList(sp+".tagPatternList", sel.TagPatternList, true)

	// targetStorageClass goes with transition only.
	switch {
	case typeOK && act.Type == ActionTransition:
		if act.TargetStorageClass == "" {
			v.fail(ap+".targetStorageClass", "required with action type %q; must be %q", ActionTransition, StorageClassArchive)
		} else if act.TargetStorageClass != StorageClassArchive {
			v.fail(ap+".targetStorageClass", "invalid value %q; must be %q", act.TargetStorageClass, StorageClassArchive)
		}
	case typeOK:
		if act.TargetStorageClass != "" {
			v.fail(ap+".targetStorageClass", "not allowed with action type %q; remove it", act.Type)
		}
	case act.TargetStorageClass != "" && act.TargetStorageClass != StorageClassArchive:
		v.fail(ap+".targetStorageClass", "invalid value %q; must be %q", act.TargetStorageClass, StorageClassArchive)
	}

	// Combinations of countType, storageClass and action (spec A.2 "Important" boxes).
	if countOK {
		switch sel.CountType {
		case CountTypeSinceImagePulled:
			if typeOK && act.Type != ActionTransition {
				v.fail(sp+".countType", "%s can only be used with action type %q, not %q", sel.CountType, ActionTransition, act.Type)
			}
		case CountTypeSinceImageTransitioned:
			if typeOK && act.Type != ActionExpire {
				v.fail(sp+".countType", "%s can only be used with action type %q, not %q", sel.CountType, ActionExpire, act.Type)
			}
			switch sel.StorageClass {
			case StorageClassArchive:
			case "":
				v.fail(sp+".storageClass", "required with countType %s; must be %q", sel.CountType, StorageClassArchive)
			case StorageClassStandard:
				v.fail(sp+".storageClass", "must be %q with countType %s, got %q", StorageClassArchive, sel.CountType, sel.StorageClass)
			}
			if sel.CountNumber >= 1 && sel.CountNumber < MinArchiveExpireDays {
				v.fail(sp+".countNumber", "must be at least %d with countType %s: ECR keeps archived images for at least %d days, got %d",
					MinArchiveExpireDays, sel.CountType, MinArchiveExpireDays, sel.CountNumber)
			}
		}
		if sel.StorageClass == StorageClassArchive && sel.CountType != CountTypeSinceImageTransitioned {
			v.fail(sp+".storageClass", "%q is only allowed with countType %s; countType %s works on %q images only",
				StorageClassArchive, CountTypeSinceImageTransitioned, sel.CountType, StorageClassStandard)
		}
	}
	return v.errs
}

// tagList checks the entries of a tag list (whether the list is allowed at
// all is decided by the caller).
func (v *validator) tagList(path string, list []string, pattern bool) {
	if list == nil {
		return
	}
	if len(list) == 0 {
		v.fail(path, "must contain at least one entry (or be omitted)")
		return
	}
	for j, e := range list {
		ep := path + "[" + strconv.Itoa(j) + "]"
		if e == "" {
			v.fail(ep, "must not be empty")
			continue
		}
		if n := strings.Count(e, "*"); pattern && n > MaxPatternWildcards {
			v.fail(ep, "%q has %d wildcards (*); at most %d are allowed", e, n, MaxPatternWildcards)
		}
	}
}

// crossRule checks the constraints between rules: unique priorities, the
// position of "any" rules, one untagged rule and unique tag lists per storage
// class. Rules whose relevant fields are invalid are skipped (they already
// have their own errors).
func (v *validator) crossRule(rules []Rule) {
	firstWithPriority := map[int]int{}
	for i := range rules {
		prio := rules[i].RulePriority
		if prio < 1 {
			continue
		}
		if j, dup := firstWithPriority[prio]; dup {
			v.fail(rulePath(i)+".rulePriority", "duplicate value %d, also used by %s; priorities must be unique", prio, rulePath(j))
			continue
		}
		firstWithPriority[prio] = i
	}

	// A tagStatus "any" rule must come last among the rules on its storage
	// class. The spec's archive example has two "any" rules (standard at 1,
	// archive at 2), so the constraint is per storage class.
	for i := range rules {
		if rules[i].Selection.TagStatus != TagStatusAny || rules[i].RulePriority < 1 {
			continue
		}
		class, ok := ruleStorageClass(&rules[i])
		if !ok {
			continue
		}
		last := -1
		for j := range rules {
			if j == i || rules[j].RulePriority <= rules[i].RulePriority {
				continue
			}
			if c, ok := ruleStorageClass(&rules[j]); ok && c == class && (last < 0 || rules[j].RulePriority > rules[last].RulePriority) {
				last = j
			}
		}
		if last >= 0 {
			v.fail(rulePath(i)+".rulePriority",
				"a tagStatus %q rule must have the highest rulePriority among the rules on storage class %q, but %s has rulePriority %d; give this rule a larger number",
				TagStatusAny, class, rulePath(last), rules[last].RulePriority)
		}
	}

	firstUntagged := map[string]int{}
	firstList := map[string]int{}
	for i := range rules {
		sel := &rules[i].Selection
		class, ok := ruleStorageClass(&rules[i])
		if !ok {
			continue
		}
		switch sel.TagStatus {
		case TagStatusUntagged:
			if j, dup := firstUntagged[class]; dup {
				v.fail(rulePath(i)+".selection.tagStatus",
					"only one untagged rule is allowed per storage class; %s already selects untagged images on storage class %q", rulePath(j), class)
				continue
			}
			firstUntagged[class] = i
		case TagStatusTagged:
			kind, list := "tagPrefixList", sel.TagPrefixList
			if list == nil {
				kind, list = "tagPatternList", sel.TagPatternList
			} else if sel.TagPatternList != nil {
				continue // both lists: already an error
			}
			key, ok := listKey(class, kind, list)
			if !ok {
				continue
			}
			if j, dup := firstList[key]; dup {
				v.fail(rulePath(i)+".selection."+kind,
					"same set of entries as %s on storage class %q; each rule on a storage class needs a unique %s", rulePath(j), class, kind)
				continue
			}
			firstList[key] = i
		}
	}
}

// ruleStorageClass returns the storage class a rule selects ("" means
// standard) and whether it is valid.
func ruleStorageClass(r *Rule) (string, bool) {
	switch r.Selection.StorageClass {
	case "", StorageClassStandard:
		return StorageClassStandard, true
	case StorageClassArchive:
		return StorageClassArchive, true
	}
	return "", false
}

// listKey identifies a tag list for the uniqueness check. Two lists are the
// same when they are of the same kind and hold the same set of entries: order
// and repeats do not matter, because the entries are ANDed.
func listKey(class, kind string, list []string) (string, bool) {
	if len(list) == 0 || slices.Contains(list, "") {
		return "", false
	}
	set := slices.Clone(list)
	slices.Sort(set)
	set = slices.Compact(set)
	for i, e := range set {
		set[i] = strconv.Quote(e) // unambiguous even if an entry holds the separator
	}
	return class + " " + kind + " " + strings.Join(set, ","), true
}

// quoteList renders ["a","b","c"] as `"a", "b" or "c"`.
func quoteList(items []string, conj string) string {
	q := make([]string, len(items))
	for i, s := range items {
		q[i] = strconv.Quote(s)
	}
	if len(q) == 1 {
		return q[0]
	}
	return strings.Join(q[:len(q)-1], ", ") + " " + conj + " " + q[len(q)-1]
}
