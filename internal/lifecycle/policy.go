package lifecycle

import (
	"fmt"
	"strings"
	"unicode/utf8"
)

// Policy is an ECR lifecycle policy document (the text sent as
// lifecyclePolicyText). Build it with Parse, or construct it in code and check
// it with Validate.
type Policy struct {
	Rules []Rule `json:"rules,omitempty"`
}

// Rule is one entry of Policy.Rules.
type Rule struct {
	RulePriority int    `json:"rulePriority,omitempty"`
	Description  string `json:"description,omitempty"`
	// omitzero: omitempty has no effect on struct fields in encoding/json.
	Selection Selection `json:"selection,omitzero"`
	Action    Action    `json:"action,omitzero"`
}

// Selection says which images a rule looks at and how it picks among them.
//
// A nil list means "absent"; a non-nil empty list means "present but empty"
// (which Validate rejects). Parse keeps that distinction.
type Selection struct {
	TagStatus      string   `json:"tagStatus,omitempty"`
	TagPatternList []string `json:"tagPatternList,omitempty"`
	TagPrefixList  []string `json:"tagPrefixList,omitempty"`
	StorageClass   string   `json:"storageClass,omitempty"`
	CountType      string   `json:"countType,omitempty"`
	CountUnit      string   `json:"countUnit,omitempty"`
	CountNumber    int      `json:"countNumber,omitempty"`
}

// Action is what a rule does to the images it marks.
type Action struct {
	Type               string `json:"type,omitempty"`
	TargetStorageClass string `json:"targetStorageClass,omitempty"`
}

// Values of Selection.TagStatus.
const (
	TagStatusTagged   = "tagged"
	TagStatusUntagged = "untagged"
	TagStatusAny      = "any"
)

// Values of Selection.StorageClass, Action.TargetStorageClass and
// Image.StorageClass. An empty storage class means standard.
const (
	StorageClassStandard = "standard"
	StorageClassArchive  = "archive"
)

// Values of Selection.CountType.
const (
	CountTypeImageCountMoreThan     = "imageCountMoreThan"
	CountTypeSinceImagePushed       = "sinceImagePushed"
	CountTypeSinceImagePulled       = "sinceImagePulled"
	CountTypeSinceImageTransitioned = "sinceImageTransitioned"
)

// CountUnitDays is the only valid Selection.CountUnit.
const CountUnitDays = "days"

// Values of Action.Type, and of Decision.Action (which adds DecisionKeep).
const (
	ActionExpire     = "expire"
	ActionTransition = "transition"
)

// DecisionKeep is the Decision.Action of an image that stays. It is not a
// valid Action.Type in a policy.
const DecisionKeep = "keep"

// ECR limits (spec A.2).
const (
	MaxRules             = 50    // rules per policy
	MinTextLen           = 100   // characters of lifecyclePolicyText
	MaxTextLen           = 30720 // characters of lifecyclePolicyText
	MaxPatternWildcards  = 4     // '*' per tagPatternList entry
	MinArchiveExpireDays = 90    // countNumber of a sinceImageTransitioned rule
	maxInt32             = 1<<31 - 1
)

// rootPath is the FieldError.Path of a problem with the document as a whole.
const rootPath = "(root)"

// maxParseBytes bounds the work Parse does on absurd input: anything this large
// is far over MaxTextLen and is rejected without being decoded.
const maxParseBytes = 1 << 20

// FieldError is one problem in a policy, located by its JSON path, e.g.
// "rules[1].selection.countUnit". Rule indexes are 0-based positions in the
// rules array, not rulePriority values. "(root)" is the document itself.
type FieldError struct {
	Path string `json:"path"`
	Msg  string `json:"message"`
}

func (e FieldError) Error() string { return e.Path + ": " + e.Msg }

// ValidationError carries every problem Parse found. Errors is never empty.
type ValidationError struct {
	Errors []FieldError
}

func (e *ValidationError) Error() string {
	if len(e.Errors) == 1 {
		return e.Errors[0].Error()
	}
	var b strings.Builder
	fmt.Fprintf(&b, "%d problems:", len(e.Errors))
	for _, fe := range e.Errors {
		b.WriteString("\n")
		b.WriteString(fe.Error())
	}
	return b.String()
}

// Unwrap exposes the individual FieldErrors to errors.As and errors.Is.
func (e *ValidationError) Unwrap() []error {
	errs := make([]error, len(e.Errors))
	for i, fe := range e.Errors {
		errs[i] = fe
	}
	return errs
}

// Parse decodes and validates an ECR lifecycle policy text strictly: unknown
// fields, null values, wrong JSON types, non-integer numbers, duplicate keys
// and trailing data are all rejected, as is every violation Validate finds.
// On failure the error is a *ValidationError listing all problems found.
func Parse(data []byte) (*Policy, error) {
	if len(data) > maxParseBytes {
		return nil, &ValidationError{Errors: []FieldError{{
			Path: rootPath,
			Msg:  fmt.Sprintf("policy text is %d bytes; ECR allows at most %d characters", len(data), MaxTextLen),
		}}}
	}
	p, structural := decodePolicy(data)
	if p == nil {
		return nil, &ValidationError{Errors: structural}
	}
	semantic := Validate(p, utf8.RuneCount(data))
	errs := append(structural, suppressCovered(semantic, structural)...)
	if len(errs) > 0 {
		return nil, &ValidationError{Errors: errs}
	}
	return p, nil
}

// suppressCovered drops semantic errors located at or below a path that
// already has a structural error: a field that failed to decode holds a zero
// value, and reporting "must be at least 1" after "must be an integer" would
// only be noise.
func suppressCovered(semantic, structural []FieldError) []FieldError {
	if len(structural) == 0 {
		return semantic
	}
	var out []FieldError
	for _, se := range semantic {
		covered := false
		for _, st := range structural {
			// A structural error at the root (such as trailing data) says
			// nothing about the fields, so it hides nothing.
			if st.Path == rootPath {
				continue
			}
			if se.Path == st.Path || isBelow(se.Path, st.Path) {
				covered = true
				break
			}
		}
		if !covered {
			out = append(out, se)
		}
	}
	return out
}

// isBelow reports whether path is a strict descendant of parent.
func isBelow(path, parent string) bool {
	if !strings.HasPrefix(path, parent) || len(path) == len(parent) {
		return false
	}
	c := path[len(parent)]
	return c == '.' || c == '['
}
