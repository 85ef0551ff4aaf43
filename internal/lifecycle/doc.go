// Package lifecycle parses, validates and evaluates Amazon ECR lifecycle
// policies (spec/ecr-harbor-spec.md, part A), and plans and applies them on
// any registry. Parse, Validate and Evaluate are pure and know nothing about
// registries; BuildPlan maps a repository's registry.Images onto Image, adds
// the graph rules (indexes, platforms, referrers), and Apply deletes.
//
// # Parsing and validation
//
// Parse is strict: unknown fields (names are case-sensitive), explicit null,
// wrong JSON types, numbers that are not integer literals (10.0 and 1e1 are
// rejected: ECR checks the text against a JSON schema whose integers may not
// accept them, so rejecting is the safe side), duplicate keys and trailing
// data are errors, and so is every violation of the ECR constraints checked by
// Validate. All problems are returned together in a *ValidationError; each is
// a FieldError located by a JSON path such as
// "rules[1].selection.countUnit", where the index is the 0-based position in
// the rules array. Text length is counted in characters (runes).
//
// Some constraints are not stated precisely by AWS; this package resolves
// them as follows:
//   - A tagStatus "any" rule must have the highest rulePriority among the rules
//     on its storage class (not the whole policy: AWS's own archive example has
//     an "any" rule per storage class).
//   - At most one tagStatus "untagged" rule per storage class; an "any" rule
//     does not count as selecting untagged images.
//   - Tag lists must be unique per storage class: two tagged rules on the same
//     storage class may not have the same kind of list (prefix or pattern)
//     with the same set of entries, ignoring order and repeats. A prefix list
//     and a pattern list never clash, even if equivalent (["prod"] and
//     ["prod*"]).
//   - sinceImageTransitioned needs countNumber >= 90 (archived images must stay
//     90 days).
//   - Integers must fit in 32 bits; empty list entries and empty lists are
//     rejected.
//
// # Evaluation
//
// Evaluate follows the normative pseudo-code of spec A.3.2. Every rule is
// evaluated over all the images it selects (storage class and tags; age does
// not matter for selection). Each image is then owned by the selecting rule
// with the lowest rulePriority, and only the owner may expire or transition
// it. So an image protected by an earlier rule still takes a slot in a later
// count rule, and an image an earlier rule keeps is immune to later rules. A
// multi-tag image is one unit: a tag list is satisfied when every entry is
// matched by some tag, and a decision covers the whole image. Prefix entries
// match with strings.HasPrefix, pattern entries with MatchPattern ('*' is the
// only wildcard). Age rules compare strictly: an image acts when its time is
// before now − countNumber×24h.
//
// Images are ordered, and aged by sinceImagePushed, by their last restore
// from archive (LastActivatedAt) if any, else by PushedAt. sinceImagePulled
// uses the last pull if it came after the last restore, else the last restore,
// else the push time. Note that a zero LastPulledAt means "never pulled": a
// caller whose registry does not track pulls must not use sinceImagePulled.
//
// Two choices the spec leaves open:
//
// Ties. imageCountMoreThan orders images newest first. Among images with the
// same time, the one with the smaller ID (byte-wise string comparison) counts
// as newer and is kept first; equal IDs fall back to input order. The result
// is therefore deterministic and independent of input order when IDs are
// unique.
//
// Unknown times. An image with a zero PushedAt is never expired or
// transitioned by any rule; it is kept with the reason "push time unknown".
// It is still owned by the first rule that selects it, so later rules cannot
// act on it either. It takes no slot in any imageCountMoreThan ranking: the
// images with known times are ranked among themselves, so an image of unknown
// age never causes another image to be expired. Likewise an archived image
// with a zero LastArchivedAt is never expired by sinceImageTransitioned.
//
// Protection of manifests referenced by a live index, and of referrers, is not
// handled here; the plan layer applies it on top of these decisions.
package lifecycle
