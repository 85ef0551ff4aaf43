package ecrtest

// The emulator's own model of ECR lifecycle policies: how ECR validates a policy document
// (spec/ecr-harbor-spec.md A.1, A.2) and how it evaluates one for a preview (A.3). It is written
// from the spec, independently of regctl's internal/lifecycle, so that when regctl puts its own
// plan beside "ECR's" preview it compares two implementations rather than one with itself.
//
// Where the spec marks something UNCONFIRMED the emulator has to choose; each choice is named
// where it is made. The ones a client can notice:
//   - Messages of schema violations use the wording of the JSON-schema validator behind ECR's
//     "Lifecycle policy validation failure: ..." (the one quoted verbatim in the spec, E14, is
//     "instance failed to match exactly one schema (matched 0 out of 2)"). The texts of the other,
//     semantic checks are the emulator's own; ECR's are not published.
//   - Duplicate object keys are accepted and the last one wins (what JSON parsers do by default);
//     data after the document is rejected.
//   - imageCountMoreThan ranks images with the same time by digest: the smaller digest counts as
//     the newer one.
//   - An image with no push time is ranked and aged as if pushed at the zero time (ECR always
//     has one; the emulator has one for every manifest pushed through it).

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/regctl-dev/regctl/internal/awstest"
)

// Limits of a lifecycle policy (spec A.2).
const (
	lcMinText        = 100   // characters of lifecyclePolicyText (API member constraint)
	lcMaxText        = 30720 // characters of lifecyclePolicyText
	lcMaxRules       = 50
	lcMaxWildcards   = 4
	lcMinArchiveDays = 90 // images stay in archive at least 90 days before they may be expired
	lcMaxInt         = 1<<31 - 1
)

// lcPolicy is a lifecycle policy document the emulator accepted, its rules in document order.
type lcPolicy struct {
	Rules []lcRule
}

// lcRule is one rule. Absent optional fields are zero ("" or nil).
type lcRule struct {
	Priority     int
	Description  string
	TagStatus    string   // tagged, untagged or any
	Prefixes     []string // tagPrefixList
	Patterns     []string // tagPatternList
	StorageClass string   // "" means standard
	CountType    string
	CountUnit    string
	CountNumber  int
	Action       string // expire or transition
	Target       string // targetStorageClass
}

func (r *lcRule) storageClass() string {
	if r.StorageClass == "" {
		return "standard"
	}
	return r.StorageClass
}

// lcError is why a policy document is rejected: ECR's message and the JSON pointer of the value
// it is about ("" for the document). On the wire only Msg is sent, as ECR does.
type lcError struct {
	Pointer string
	Msg     string
}

func (e *lcError) Error() string { return e.Msg + " (at '" + e.Pointer + "')" }

// lifecycleText checks a lifecyclePolicyText as PutLifecyclePolicy and StartLifecyclePolicyPreview
// do: the API's length constraint, then the policy document, each failure an
// InvalidParameterException in ECR's wording.
func lifecycleText(text string) (*lcPolicy, error) {
	if n := len([]rune(text)); n < lcMinText || n > lcMaxText {
		return nil, awstest.Errorf("InvalidParameterException", "Invalid parameter at 'lifecyclePolicyText' failed to satisfy constraint: 'Member must have length between %d and %d'", lcMinText, lcMaxText)
	}
	p, perr := parseLifecycle(text)
	if perr != nil {
		return nil, awstest.Errorf("InvalidParameterException", "Invalid parameter at 'LifecyclePolicyText' failed to satisfy constraint: 'Lifecycle policy validation failure: %s'", perr.Msg)
	}
	return p, nil
}

// parseLifecycle decodes and validates a lifecycle policy document: first against the document's
// schema (shape, types, enums, bounds, the two oneOf alternatives of a selection and of an
// action), then the rules ECR states in prose. It reports the first problem found.
func parseLifecycle(text string) (*lcPolicy, *lcError) {
	dec := json.NewDecoder(strings.NewReader(text))
	dec.UseNumber()
	var root any
	if err := dec.Decode(&root); err != nil {
		return nil, &lcError{Msg: "the lifecycle policy text is not valid JSON"}
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return nil, &lcError{Msg: "the lifecycle policy text is not valid JSON: data after the document"}
	}
	p, err := schemaPolicy(root)
	if err != nil {
		return nil, err
	}
	if err := checkRules(p); err != nil {
		return nil, err
	}
	return p, nil
}

// --- the schema ---

// jsonKind names a decoded JSON value's type as a JSON-schema validator does.
func jsonKind(v any) string {
	switch v := v.(type) {
	case nil:
		return "null"
	case bool:
		return "boolean"
	case string:
		return "string"
	case []any:
		return "array"
	case map[string]any:
		return "object"
	case json.Number:
		if strings.ContainsAny(string(v), ".eE") {
			return "number"
		}
		return "integer"
	}
	return fmt.Sprintf("%T", v)
}

func typeError(ptr string, v any, want string) *lcError {
	return &lcError{ptr, fmt.Sprintf("instance type (%s) does not match any allowed primitive type (allowed: [%q])", jsonKind(v), want)}
}

func quoted(items []string) string {
	q := make([]string, len(items))
	for i, s := range items {
		q[i] = strconv.Quote(s)
	}
	return "[" + strings.Join(q, ",") + "]"
}

// object checks that v is an object with only the allowed members and all the required ones.
func object(v any, ptr string, allowed, required []string) (map[string]any, *lcError) {
	m, ok := v.(map[string]any)
	if !ok {
		return nil, typeError(ptr, v, "object")
	}
	var extra []string
	for k := range m {
		if !slices.Contains(allowed, k) {
			extra = append(extra, k)
		}
	}
	if len(extra) > 0 {
		slices.Sort(extra)
		return nil, &lcError{ptr, "object instance has properties which are not allowed by the schema: " + quoted(extra)}
	}
	var missing []string
	for _, k := range required {
		if _, ok := m[k]; !ok {
			missing = append(missing, k)
		}
	}
	if len(missing) > 0 {
		return nil, &lcError{ptr, "object has missing required properties (" + quoted(missing) + ")"}
	}
	return m, nil
}

// str reads an optional string member; enum, when given, lists the allowed values.
func str(m map[string]any, key, ptr string, enum ...string) (string, *lcError) {
	v, ok := m[key]
	if !ok {
		return "", nil
	}
	ptr += "/" + key
	s, ok := v.(string)
	if !ok {
		return "", typeError(ptr, v, "string")
	}
	if len(enum) > 0 && !slices.Contains(enum, s) {
		return "", &lcError{ptr, fmt.Sprintf("instance value (%q) not found in enum (possible values: %s)", s, quoted(enum))}
	}
	return s, nil
}

// integer reads an integer member between 1 and 2^31-1 (a Java int, as the service's own model).
func integer(m map[string]any, key, ptr string) (int, *lcError) {
	v := m[key]
	ptr += "/" + key
	if jsonKind(v) != "integer" {
		return 0, typeError(ptr, v, "integer")
	}
	s := string(v.(json.Number))
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil && strings.HasPrefix(s, "-") {
		return 0, &lcError{ptr, fmt.Sprintf("numeric instance is lower than the required minimum (minimum: 1, found: %s)", s)}
	}
	if err != nil || n > lcMaxInt {
		return 0, &lcError{ptr, fmt.Sprintf("numeric instance is greater than the required maximum (maximum: %d, found: %s)", lcMaxInt, s)}
	}
	if n < 1 {
		return 0, &lcError{ptr, fmt.Sprintf("numeric instance is lower than the required minimum (minimum: 1, found: %d)", n)}
	}
	return int(n), nil
}

// strList reads an optional non-empty list of non-empty strings.
func strList(m map[string]any, key, ptr string) ([]string, *lcError) {
	v, ok := m[key]
	if !ok {
		return nil, nil
	}
	ptr += "/" + key
	items, ok := v.([]any)
	if !ok {
		return nil, typeError(ptr, v, "array")
	}
	if len(items) == 0 {
		return nil, &lcError{ptr, "array is too short: must have at least 1 elements but instance has 0 elements"}
	}
	out := make([]string, len(items))
	for i, it := range items {
		p := ptr + "/" + strconv.Itoa(i)
		s, ok := it.(string)
		if !ok {
			return nil, typeError(p, it, "string")
		}
		if s == "" {
			return nil, &lcError{p, `string "" is too short (length: 0, required minimum: 1)`}
		}
		out[i] = s
	}
	return out, nil
}

const errOneOf = "instance failed to match exactly one schema (matched 0 out of 2)"

func schemaPolicy(root any) (*lcPolicy, *lcError) {
	m, err := object(root, "", []string{"rules"}, []string{"rules"})
	if err != nil {
		return nil, err
	}
	rules, ok := m["rules"].([]any)
	if !ok {
		return nil, typeError("/rules", m["rules"], "array")
	}
	switch {
	case len(rules) == 0:
		return nil, &lcError{"/rules", "array is too short: must have at least 1 elements but instance has 0 elements"}
	case len(rules) > lcMaxRules:
		return nil, &lcError{"/rules", fmt.Sprintf("array is too long: must have at most %d elements but instance has %d elements", lcMaxRules, len(rules))}
	}
	p := &lcPolicy{Rules: make([]lcRule, len(rules))}
	for i, rv := range rules {
		if err := schemaRule(rv, "/rules/"+strconv.Itoa(i), &p.Rules[i]); err != nil {
			return nil, err
		}
	}
	return p, nil
}

func schemaRule(v any, ptr string, r *lcRule) *lcError {
	m, err := object(v, ptr, []string{"rulePriority", "description", "selection", "action"}, []string{"rulePriority", "selection", "action"})
	if err != nil {
		return err
	}
	if r.Priority, err = integer(m, "rulePriority", ptr); err != nil {
		return err
	}
	if r.Description, err = str(m, "description", ptr); err != nil {
		return err
	}

	sp := ptr + "/selection"
	sel, err := object(m["selection"], sp, []string{"tagStatus", "tagPatternList", "tagPrefixList", "storageClass", "countType", "countUnit", "countNumber"},
		[]string{"tagStatus", "countType", "countNumber"})
	if err != nil {
		return err
	}
	if r.TagStatus, err = str(sel, "tagStatus", sp, "tagged", "untagged", "any"); err != nil {
		return err
	}
	if r.Patterns, err = strList(sel, "tagPatternList", sp); err != nil {
		return err
	}
	if r.Prefixes, err = strList(sel, "tagPrefixList", sp); err != nil {
		return err
	}
	if r.StorageClass, err = str(sel, "storageClass", sp, "standard", "archive"); err != nil {
		return err
	}
	if r.CountType, err = str(sel, "countType", sp, "imageCountMoreThan", "sinceImagePushed", "sinceImagePulled", "sinceImageTransitioned"); err != nil {
		return err
	}
	if r.CountNumber, err = integer(sel, "countNumber", sp); err != nil {
		return err
	}
	// Either a count (no countUnit at all) or an age (countUnit "days"); anything else, an
	// explicit null included, matches neither alternative.
	unit, hasUnit := sel["countUnit"]
	count := r.CountType == "imageCountMoreThan" && !hasUnit
	age := r.CountType != "imageCountMoreThan" && unit == "days"
	if !count && !age {
		return &lcError{sp, errOneOf}
	}
	if age {
		r.CountUnit = "days"
	}

	ap := ptr + "/action"
	act, err := object(m["action"], ap, []string{"type", "targetStorageClass"}, []string{"type"})
	if err != nil {
		return err
	}
	if r.Action, err = str(act, "type", ap, "expire", "transition"); err != nil {
		return err
	}
	// Either expire (no targetStorageClass) or transition to archive; again null matches neither.
	target, hasTarget := act["targetStorageClass"]
	expire := r.Action == "expire" && !hasTarget
	transition := r.Action == "transition" && target == "archive"
	if !expire && !transition {
		return &lcError{ap, errOneOf}
	}
	if transition {
		r.Target = "archive"
	}
	return nil
}

// --- the rules stated in prose (spec A.2) ---

func checkRules(p *lcPolicy) *lcError {
	for i := range p.Rules {
		if err := checkRule(&p.Rules[i], "/rules/"+strconv.Itoa(i)); err != nil {
			return err
		}
	}
	return checkAcross(p)
}

func checkRule(r *lcRule, ptr string) *lcError {
	sp := ptr + "/selection"
	switch {
	case r.TagStatus == "tagged" && r.Prefixes == nil && r.Patterns == nil:
		return &lcError{sp, "tagPrefixList or tagPatternList is required when tagStatus is tagged"}
	case r.Prefixes != nil && r.Patterns != nil:
		return &lcError{sp, "a rule may specify either tagPatternList or tagPrefixList, but not both"}
	case r.TagStatus != "tagged" && (r.Prefixes != nil || r.Patterns != nil):
		return &lcError{sp, "tagPrefixList and tagPatternList are only allowed when tagStatus is tagged"}
	}
	for i, pat := range r.Patterns {
		if strings.Count(pat, "*") > lcMaxWildcards {
			return &lcError{sp + "/tagPatternList/" + strconv.Itoa(i), fmt.Sprintf("a tag pattern may contain at most %d wildcards (*)", lcMaxWildcards)}
		}
	}
	switch {
	case r.CountType == "sinceImageTransitioned" && r.StorageClass != "archive":
		return &lcError{sp, "countType sinceImageTransitioned requires storageClass archive"}
	case r.CountType != "sinceImageTransitioned" && r.StorageClass == "archive":
		return &lcError{sp, "storageClass archive is only supported with countType sinceImageTransitioned"}
	case r.CountType == "sinceImagePulled" && r.Action != "transition":
		return &lcError{ptr + "/action", "countType sinceImagePulled can only be used with action type transition"}
	case r.CountType == "sinceImageTransitioned" && r.Action != "expire":
		return &lcError{ptr + "/action", "countType sinceImageTransitioned can only be used with action type expire"}
	case r.CountType == "sinceImageTransitioned" && r.CountNumber < lcMinArchiveDays:
		return &lcError{sp + "/countNumber", fmt.Sprintf("images must be in archive storage for a minimum of %d days before deletion", lcMinArchiveDays)}
	}
	return nil
}

// checkAcross checks what involves several rules: unique priorities, and per storage class an
// "any" rule last, at most one "untagged" rule, and no two rules with the same tag list.
func checkAcross(p *lcPolicy) *lcError {
	seen := map[int]bool{}
	for i, r := range p.Rules {
		if seen[r.Priority] {
			return &lcError{"/rules/" + strconv.Itoa(i) + "/rulePriority", fmt.Sprintf("rulePriority %d is used by more than one rule; priorities must be unique", r.Priority)}
		}
		seen[r.Priority] = true
	}
	untagged := map[string]bool{}
	lists := map[string]bool{}
	for i, r := range p.Rules {
		ptr := "/rules/" + strconv.Itoa(i)
		class := r.storageClass()
		if r.TagStatus == "any" {
			// The spec's own archive example has an "any" rule per storage class, so "highest"
			// is counted within the class.
			for _, o := range p.Rules {
				if o.storageClass() == class && o.Priority > r.Priority {
					return &lcError{ptr + "/rulePriority", fmt.Sprintf("a rule with tagStatus any must have the highest rulePriority of the rules on storage class %s; rule %d comes after it", class, o.Priority)}
				}
			}
		}
		if r.TagStatus == "untagged" {
			if untagged[class] {
				return &lcError{ptr + "/selection", "only one rule selecting storage class " + class + " is allowed to select untagged images"}
			}
			untagged[class] = true
		}
		if r.TagStatus == "tagged" {
			key := class + "\x00prefix"
			list := r.Prefixes
			if r.Patterns != nil {
				key, list = class+"\x00pattern", r.Patterns
			}
			set := slices.Clone(list)
			slices.Sort(set)
			key += "\x00" + strings.Join(slices.Compact(set), "\x00")
			if lists[key] {
				return &lcError{ptr + "/selection", "the set of all rules selecting storage class " + class + " must contain a unique set of tag prefixes and patterns"}
			}
			lists[key] = true
		}
	}
	return nil
}

// storedLifecycle is the text GetLifecyclePolicy answers with: ECR returns the document compact
// (no insignificant whitespace) with its rules re-ordered by rulePriority (spec A.2 round-trip
// quirk; the AWS CLI's put-lifecycle-policy and get-lifecycle-policy examples). Each rule is kept
// as written: member order, optional fields and defaults are not touched.
func storedLifecycle(text string, p *lcPolicy) string {
	var doc struct{ Rules []json.RawMessage }
	json.Unmarshal([]byte(text), &doc) //nolint:errcheck // parseLifecycle accepted text
	order := make([]int, len(doc.Rules))
	for i := range order {
		order[i] = i
	}
	slices.SortStableFunc(order, func(a, b int) int { return p.Rules[a].Priority - p.Rules[b].Priority })
	var b bytes.Buffer
	b.WriteString(`{"rules":[`)
	for n, i := range order {
		if n > 0 {
			b.WriteByte(',')
		}
		json.Compact(&b, doc.Rules[i]) //nolint:errcheck // valid JSON, decoded above
	}
	b.WriteString("]}")
	return b.String()
}

// --- evaluation (spec A.3) ---

// lcImage is what the evaluation knows of one image (one manifest digest). Zero times mean
// never (or, for PushedAt, the zero time).
type lcImage struct {
	Digest          string
	Tags            []string
	PushedAt        time.Time
	LastPulledAt    time.Time // last_recorded_pulltime
	LastActivatedAt time.Time // when it was last restored from archive
	LastArchivedAt  time.Time
	Archived        bool // in the archive storage class
	// InLiveIndex: referenced by a manifest list that is not itself going; such an image cannot
	// be expired or archived (A.3.1 rule 6).
	InLiveIndex bool
}

// lcResult is one image the policy acts on, as GetLifecyclePolicyPreview reports it.
type lcResult struct {
	Index    int    // the image's position in the input
	Type     string // EXPIRE or TRANSITION
	Target   string // ARCHIVE for TRANSITION
	Priority int    // appliedRulePriority
}

// lcEvaluate applies the policy to the images as ECR does (A.3.1, A.3.2): every rule on its own
// over all the images it selects, then each image is in the hands of the first rule (lowest
// rulePriority) whose tag and storage class requirements it meets, whatever its age, and only
// that rule may act on it. The results are in input order.
func lcEvaluate(p *lcPolicy, imgs []lcImage, now time.Time) []lcResult {
	rules := slices.Clone(p.Rules)
	slices.SortStableFunc(rules, func(a, b lcRule) int { return a.Priority - b.Priority })
	owner := make([]int, len(imgs))
	for i := range owner {
		owner[i] = -1
	}
	marks := make([]map[int]bool, len(rules))
	for k := range rules {
		var sel []int
		for i := range imgs {
			if lcSelects(&rules[k], &imgs[i]) {
				sel = append(sel, i)
				if owner[i] < 0 {
					owner[i] = k
				}
			}
		}
		marks[k] = lcMarks(&rules[k], sel, imgs, now)
	}
	var out []lcResult
	for i, k := range owner {
		if k < 0 || !marks[k][i] || imgs[i].InLiveIndex {
			continue
		}
		res := lcResult{Index: i, Type: "EXPIRE", Priority: rules[k].Priority}
		if rules[k].Action == "transition" {
			res.Type, res.Target = "TRANSITION", "ARCHIVE"
		}
		out = append(out, res)
	}
	return out
}

// lcSelects: the image is on the rule's storage class and meets its tag requirements. With a
// list, every entry must be matched by at least one of the image's tags (different entries may
// be matched by different tags).
func lcSelects(r *lcRule, img *lcImage) bool {
	if (r.storageClass() == "archive") != img.Archived {
		return false
	}
	switch r.TagStatus {
	case "any":
		return true
	case "untagged":
		return len(img.Tags) == 0
	}
	if len(img.Tags) == 0 {
		return false
	}
	match, entries := strings.HasPrefix, r.Prefixes
	if r.Patterns != nil {
		match, entries = func(tag, pattern string) bool { return wildcard(pattern, tag) }, r.Patterns
	}
	for _, e := range entries {
		if !slices.ContainsFunc(img.Tags, func(tag string) bool { return match(tag, e) }) {
			return false
		}
	}
	return true
}

// wildcard matches s against a pattern where '*' stands for any run of characters, possibly
// empty, and every other character for itself.
func wildcard(pattern, s string) bool {
	parts := strings.Split(pattern, "*")
	if len(parts) == 1 {
		return pattern == s
	}
	head, tail := parts[0], parts[len(parts)-1]
	if !strings.HasPrefix(s, head) {
		return false
	}
	s = s[len(head):]
	for _, mid := range parts[1 : len(parts)-1] {
		j := strings.Index(s, mid)
		if j < 0 {
			return false
		}
		s = s[j+len(mid):]
	}
	return strings.HasSuffix(s, tail)
}

// lcActiveSince is the time an image's age and rank are counted from: its last restore from
// archive if it was ever restored, else its push (A.3.1 rule 8).
func lcActiveSince(img *lcImage) time.Time {
	if !img.LastActivatedAt.IsZero() {
		return img.LastActivatedAt
	}
	return img.PushedAt
}

// lcMarks is the set of selected images the rule, on its own, would act on.
func lcMarks(r *lcRule, sel []int, imgs []lcImage, now time.Time) map[int]bool {
	marked := map[int]bool{}
	if r.CountType == "imageCountMoreThan" {
		ranked := slices.Clone(sel)
		slices.SortStableFunc(ranked, func(a, b int) int {
			ta, tb := lcActiveSince(&imgs[a]), lcActiveSince(&imgs[b])
			if c := tb.Compare(ta); c != 0 { // newest first
				return c
			}
			return strings.Compare(imgs[a].Digest, imgs[b].Digest)
		})
		for _, i := range ranked[min(r.CountNumber, len(ranked)):] {
			marked[i] = true
		}
		return marked
	}
	// "Older than N days": strictly before now − N×24h (UTC days have 24 hours; AddDate does not
	// overflow for any countNumber the schema allows).
	cutoff := now.UTC().AddDate(0, 0, -r.CountNumber)
	for _, i := range sel {
		img := &imgs[i]
		var t time.Time
		switch r.CountType {
		case "sinceImagePushed":
			t = lcActiveSince(img)
		case "sinceImagePulled":
			// The last pull if it came after the last restore, else the restore, else the push.
			t = lcActiveSince(img)
			if img.LastPulledAt.After(t) {
				t = img.LastPulledAt
			}
		case "sinceImageTransitioned":
			if img.LastArchivedAt.IsZero() {
				continue
			}
			t = img.LastArchivedAt
		}
		if t.Before(cutoff) {
			marked[i] = true
		}
	}
	return marked
}
