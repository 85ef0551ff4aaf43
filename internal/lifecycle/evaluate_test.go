package lifecycle

import (
	"os"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"
)

// now is the fixed clock of the spec's test vectors.
var now = time.Date(2025, 6, 30, 0, 0, 0, 0, time.UTC)

const day = 24 * time.Hour

// img is an image pushed age ago; no tags means untagged.
func img(id string, age time.Duration, tags ...string) Image {
	return Image{ID: id, Tags: tags, PushedAt: now.Add(-age)}
}

// rule builds a valid rule: list entries are prefixes of a tagged rule
// (nil for untagged/any), countUnit and targetStorageClass are filled in.
func rule(prio int, status string, list []string, countType string, n int, action string) Rule {
	r := Rule{
		RulePriority: prio,
		Selection:    Selection{TagStatus: status, TagPrefixList: list, CountType: countType, CountNumber: n},
		Action:       Action{Type: action},
	}
	if countType != CountTypeImageCountMoreThan {
		r.Selection.CountUnit = CountUnitDays
	}
	if countType == CountTypeSinceImageTransitioned {
		r.Selection.StorageClass = StorageClassArchive
	}
	if action == ActionTransition {
		r.Action.TargetStorageClass = StorageClassArchive
	}
	return r
}

// asPatterns turns every prefix list into the equivalent pattern list
// ("prod" -> "prod*"), the form the current AWS docs use.
func asPatterns(rules []Rule) []Rule {
	out := slices.Clone(rules)
	for i := range out {
		sel := &out[i].Selection
		if sel.TagPrefixList == nil {
			continue
		}
		sel.TagPatternList = nil
		for _, p := range sel.TagPrefixList {
			sel.TagPatternList = append(sel.TagPatternList, p+"*")
		}
		sel.TagPrefixList = nil
	}
	return out
}

// parsedPolicy round-trips rules through Canonical and Parse, so every vector
// policy is also proven valid.
func parsedPolicy(t testing.TB, rules []Rule) *Policy {
	t.Helper()
	text, err := Canonical(&Policy{Rules: rules})
	if err != nil {
		t.Fatal(err)
	}
	p, err := Parse(text)
	if err != nil {
		t.Fatalf("vector policy is invalid: %v\n%s", err, text)
	}
	return p
}

// outcome collects the ids per action, sorted.
func outcome(ds []Decision) (expired, transitioned []string) {
	for _, d := range ds {
		switch d.Action {
		case ActionExpire:
			expired = append(expired, d.ImageID)
		case ActionTransition:
			transitioned = append(transitioned, d.ImageID)
		}
	}
	slices.Sort(expired)
	slices.Sort(transitioned)
	return expired, transitioned
}

func evaluate(t *testing.T, p *Policy, images []Image) []Decision {
	t.Helper()
	ds := Evaluate(p, images, now)
	if len(ds) != len(images) {
		t.Fatalf("got %d decisions for %d images", len(ds), len(images))
	}
	for i := range ds {
		if ds[i].ImageID != images[i].ID {
			t.Fatalf("decision %d is for %q, want %q (input order)", i, ds[i].ImageID, images[i].ID)
		}
		if ds[i].Reason == "" {
			t.Errorf("decision for %q has no reason", ds[i].ImageID)
		}
		if (ds[i].Action == DecisionKeep) == strings.HasPrefix(ds[i].Reason, "rule ") {
			t.Errorf("decision %q for %q has a mismatched reason %q", ds[i].Action, ds[i].ImageID, ds[i].Reason)
		}
	}
	return ds
}

type vector struct {
	id         string
	images     []Image
	rules      []Rule
	expire     []string
	transition []string
	// prefixForm: the vector is given in both prefix and pattern form.
	prefixForm bool
}

// Spec A.4 (NOW = 2025-06-30T00:00:00Z).
var vectors = []vector{
	{
		id:     "V01 multiple rules A",
		images: []Image{img("A", 10*day, "beta-1", "prod-1"), img("B", 9*day, "beta-2", "prod-2"), img("C", 8*day, "beta-3")},
		rules: []Rule{
			rule(1, TagStatusTagged, []string{"prod"}, CountTypeImageCountMoreThan, 1, ActionExpire),
			rule(2, TagStatusTagged, []string{"beta"}, CountTypeImageCountMoreThan, 1, ActionExpire),
		},
		// B is owned by rule 1 and within its count, so rule 2 cannot take it;
		// B and C both survive although rule 2 says "keep 1".
		expire:     []string{"A"},
		prefixForm: true,
	},
	{
		id:     "V02 multiple rules B",
		images: []Image{img("A", 10*day, "beta-1", "prod-1"), img("B", 9*day, "beta-2", "prod-2"), img("C", 8*day, "beta-3")},
		rules: []Rule{
			rule(1, TagStatusTagged, []string{"beta"}, CountTypeImageCountMoreThan, 1, ActionExpire),
			rule(2, TagStatusTagged, []string{"prod"}, CountTypeImageCountMoreThan, 1, ActionExpire),
		},
		expire:     []string{"A", "B"},
		prefixForm: true,
	},
	{
		id: "V03 multiple tags A",
		images: []Image{
			img("A", 12*day, "alpha-1"), img("B", 11*day, "beta-1"), img("C", 10*day, "alpha-2", "beta-2"),
			img("D", 4*day, "alpha-3"), img("E", 3*day, "beta-3"), img("F", 2*day, "alpha-4", "beta-4"),
		},
		rules:      []Rule{rule(1, TagStatusTagged, []string{"alpha", "beta"}, CountTypeSinceImagePushed, 5, ActionExpire)},
		expire:     []string{"C"},
		prefixForm: true,
	},
	{
		id:         "V04 multiple tags B",
		images:     []Image{img("A", 10*day, "alpha-1", "beta-1", "gamma-1"), img("B", 9*day, "alpha-2", "beta-2"), img("C", 8*day, "alpha-3", "beta-3", "gamma-2")},
		rules:      []Rule{rule(1, TagStatusTagged, []string{"alpha", "beta"}, CountTypeImageCountMoreThan, 1, ActionExpire)},
		expire:     []string{"A", "B"},
		prefixForm: true,
	},
	{
		id:         "V05 all images A",
		images:     []Image{img("A", 4*day, "alpha-1"), img("B", 3*day, "beta-1"), img("C", 2*day), img("D", 1*day, "alpha-2")},
		rules:      []Rule{rule(1, TagStatusAny, nil, CountTypeImageCountMoreThan, 1, ActionExpire)},
		expire:     []string{"A", "B", "C"},
		prefixForm: true,
	},
	{
		id: "V06 all images B",
		images: []Image{
			img("A", 4*day, "alpha-1", "beta-1"), img("B", 3*day), img("C", 2*day, "alpha-2"),
			img("D", 24*time.Hour, "gitsha-1"), img("E", 23*time.Hour),
		},
		rules: []Rule{
			rule(1, TagStatusTagged, []string{"alpha"}, CountTypeImageCountMoreThan, 1, ActionExpire),
			rule(2, TagStatusUntagged, nil, CountTypeSinceImagePushed, 1, ActionExpire),
			rule(3, TagStatusAny, nil, CountTypeImageCountMoreThan, 1, ActionExpire),
		},
		// Rule 1 marks A, rule 2 marks B (E is not older than 1 day); rule 3
		// keeps the newest (E) and may only mark D.
		expire:     []string{"A", "B", "D"},
		prefixForm: true,
	},
	{
		id: "V07 pattern semantics",
		images: []Image{
			img("P1", 5*day, "prod"), img("P2", 4*day, "production-team1"),
			img("P3", 3*day, "preprod"), img("P4", 2*day, "repo-production"),
		},
		rules: asPatterns([]Rule{rule(1, TagStatusTagged, []string{"prod"}, CountTypeImageCountMoreThan, 1, ActionExpire)}),
		// P3 and P4 do not match prod*.
		expire: []string{"P1"},
	},
	{
		id:     "V08 prefix foot-gun",
		images: []Image{img("X", 40*day, "v1.0"), img("Y", 40*day, "v10.2"), img("Z", 40*day, "v2.0")},
		rules:  []Rule{rule(1, TagStatusTagged, []string{"v1"}, CountTypeSinceImagePushed, 30, ActionExpire)},
		expire: []string{"X", "Y"},
	},
	{
		id:     "V10 untagged count",
		images: []Image{img("U1", 3*day), img("U2", 2*day), img("U3", 1*day), img("T1", 10*day, "latest")},
		rules:  []Rule{rule(1, TagStatusUntagged, nil, CountTypeImageCountMoreThan, 1, ActionExpire)},
		expire: []string{"U1", "U2"},
	},
	{
		id: "V14 sinceImagePulled",
		images: []Image{
			{ID: "H", Tags: []string{"a"}, PushedAt: now.Add(-120 * day), LastPulledAt: now.Add(-5 * day)},
			{ID: "N", Tags: []string{"b"}, PushedAt: now.Add(-120 * day)},
			{ID: "R", Tags: []string{"c"}, PushedAt: now.Add(-200 * day), LastPulledAt: now.Add(-150 * day), LastActivatedAt: now.Add(-100 * day)},
		},
		rules:      []Rule{rule(1, TagStatusAny, nil, CountTypeSinceImagePulled, 90, ActionTransition)},
		transition: []string{"N", "R"},
	},
	{
		id: "V15 sinceImageTransitioned",
		images: []Image{
			{ID: "X", PushedAt: now.Add(-800 * day), StorageClass: StorageClassArchive, LastArchivedAt: now.Add(-400 * day)},
			{ID: "Y", PushedAt: now.Add(-800 * day), StorageClass: StorageClassArchive, LastArchivedAt: now.Add(-100 * day)},
			{ID: "Z", PushedAt: now.Add(-500 * day), StorageClass: StorageClassStandard},
		},
		rules:  []Rule{rule(1, TagStatusAny, nil, CountTypeSinceImageTransitioned, 365, ActionExpire)},
		expire: []string{"X"},
	},
	{
		id: "V16 archive and expire combined",
		images: []Image{
			img("S", 40*day, "x"), img("T", 10*day, "y"),
			{ID: "Q", PushedAt: now.Add(-500 * day), StorageClass: StorageClassArchive, LastArchivedAt: now.Add(-400 * day)},
		},
		rules: []Rule{
			rule(1, TagStatusAny, nil, CountTypeSinceImagePushed, 30, ActionTransition),
			rule(2, TagStatusAny, nil, CountTypeSinceImageTransitioned, 365, ActionExpire),
		},
		expire:     []string{"Q"},
		transition: []string{"S"},
	},
}

func TestVectors(t *testing.T) {
	for _, v := range vectors {
		forms := map[string][]Rule{"": v.rules}
		if v.prefixForm {
			forms = map[string][]Rule{"/prefix": v.rules, "/pattern": asPatterns(v.rules)}
		}
		for form, rules := range forms {
			t.Run(v.id+form, func(t *testing.T) {
				p := parsedPolicy(t, rules)
				ds := evaluate(t, p, v.images)
				expired, transitioned := outcome(ds)
				if !slices.Equal(expired, v.expire) || !slices.Equal(transitioned, v.transition) {
					t.Errorf("expire %q transition %q, want expire %q transition %q", expired, transitioned, v.expire, v.transition)
					for _, d := range ds {
						t.Logf("%s: %s (%s)", d.ImageID, d.Action, d.Reason)
					}
				}
				// The result must not depend on input order.
				reversed := slices.Clone(v.images)
				slices.Reverse(reversed)
				e2, t2 := outcome(Evaluate(p, reversed, now))
				if !slices.Equal(e2, expired) || !slices.Equal(t2, transitioned) {
					t.Errorf("reversed input: expire %q transition %q", e2, t2)
				}
			})
		}
	}
}

// decisionFor finds the decision for id.
func decisionFor(t *testing.T, ds []Decision, id string) Decision {
	t.Helper()
	for _, d := range ds {
		if d.ImageID == id {
			return d
		}
	}
	t.Fatalf("no decision for %q", id)
	return Decision{}
}

func TestReasons(t *testing.T) {
	// V01 and V06 explain themselves.
	v01 := parsedPolicy(t, vectors[0].rules)
	ds := evaluate(t, v01, vectors[0].images)
	v06 := parsedPolicy(t, vectors[5].rules)
	ds6 := evaluate(t, v06, vectors[5].images)
	v14 := parsedPolicy(t, vectors[9].rules)
	ds14 := evaluate(t, v14, vectors[9].images)
	v16 := parsedPolicy(t, vectors[11].rules)
	ds16 := evaluate(t, v16, vectors[11].images)

	tests := []struct {
		ds   []Decision
		id   string
		want Decision
	}{
		{ds, "A", Decision{"A", ActionExpire, 1, `rule 1: 2nd newest of images with tag prefix "prod", keeps 1`}},
		{ds, "B", Decision{"B", DecisionKeep, 1, `protected by rule 1: 1st newest of images with tag prefix "prod", within the 1 kept`}},
		{ds, "C", Decision{"C", DecisionKeep, 2, `protected by rule 2: 1st newest of images with tag prefix "beta", within the 1 kept`}},
		{ds6, "B", Decision{"B", ActionExpire, 2, "rule 2: pushed 3d ago, older than 1 day"}},
		{ds6, "E", Decision{"E", DecisionKeep, 2, "protected by rule 2: pushed 23h ago, not older than 1 day"}},
		{ds6, "D", Decision{"D", ActionExpire, 3, "rule 3: 2nd newest of all images, keeps 1"}},
		{ds14, "H", Decision{"H", DecisionKeep, 1, "protected by rule 1: last pulled 5d ago, not older than 90 days"}},
		{ds14, "N", Decision{"N", ActionTransition, 1, "rule 1: never pulled, pushed 120d ago, older than 90 days"}},
		{ds14, "R", Decision{"R", ActionTransition, 1, "rule 1: not pulled since restored from archive 100d ago, older than 90 days"}},
		{ds16, "Q", Decision{"Q", ActionExpire, 2, "rule 2: archived 400d ago, older than 365 days"}},
		{ds16, "T", Decision{"T", DecisionKeep, 1, "protected by rule 1: pushed 10d ago, not older than 30 days"}},
	}
	for _, tc := range tests {
		if got := decisionFor(t, tc.ds, tc.id); got != tc.want {
			t.Errorf("%s:\n got %+v\nwant %+v", tc.id, got, tc.want)
		}
	}

	// An image no rule selects.
	p := parsedPolicy(t, []Rule{rule(1, TagStatusUntagged, nil, CountTypeImageCountMoreThan, 1, ActionExpire)})
	got := Evaluate(p, []Image{img("T", day, "latest")}, now)[0]
	if want := (Decision{"T", DecisionKeep, 0, "kept: no rule selects this image"}); got != want {
		t.Errorf("unselected image: %+v, want %+v", got, want)
	}
}

func TestTieBreakByID(t *testing.T) {
	// Same push time: the smaller ID counts as newer and is kept first.
	p := parsedPolicy(t, []Rule{rule(1, TagStatusAny, nil, CountTypeImageCountMoreThan, 1, ActionExpire)})
	images := []Image{img("sha256:bb", day), img("sha256:aa", day), img("sha256:cc", day), img("old", 2*day)}
	for _, order := range [][]int{{0, 1, 2, 3}, {3, 2, 1, 0}, {2, 3, 0, 1}} {
		in := make([]Image, len(order))
		for i, j := range order {
			in[i] = images[j]
		}
		expired, _ := outcome(evaluate(t, p, in))
		if want := []string{"old", "sha256:bb", "sha256:cc"}; !slices.Equal(expired, want) {
			t.Errorf("input order %v: expired %q, want %q", order, expired, want)
		}
	}

	// Sub-second differences are not ties.
	in := []Image{img("a", day), img("b", day-time.Nanosecond)}
	if expired, _ := outcome(evaluate(t, p, in)); !slices.Equal(expired, []string{"a"}) {
		t.Errorf("nanosecond-newer image lost: expired %q", expired)
	}

	// Equal IDs fall back to input order (first counts as newer).
	ds := evaluate(t, p, []Image{img("x", day, "first"), img("x", day, "second")})
	if ds[0].Action != DecisionKeep || ds[1].Action != ActionExpire {
		t.Errorf("equal IDs: %+v", ds)
	}
}

func TestUnknownPushTime(t *testing.T) {
	unknown := Image{ID: "U", Tags: []string{"prod-0"}} // zero PushedAt

	t.Run("takes no count slot", func(t *testing.T) {
		// If U or U2 took a slot, B would be expired. U2 was restored from
		// archive an hour ago, which would otherwise make it the newest.
		u2 := Image{ID: "U2", LastActivatedAt: now.Add(-time.Hour)}
		p := parsedPolicy(t, []Rule{rule(1, TagStatusAny, nil, CountTypeImageCountMoreThan, 2, ActionExpire)})
		ds := evaluate(t, p, []Image{unknown, img("A", 1*day), img("B", 2*day), img("C", 3*day), u2})
		if expired, _ := outcome(ds); !slices.Equal(expired, []string{"C"}) {
			t.Errorf("expired %q, want [C]", expired)
		}
		want := Decision{"U", DecisionKeep, 1, "protected by rule 1: push time unknown; such an image is never expired or transitioned"}
		if ds[0] != want {
			t.Errorf("unknown image: %+v, want %+v", ds[0], want)
		}
	})
	t.Run("never aged out", func(t *testing.T) {
		p := parsedPolicy(t, []Rule{rule(1, TagStatusAny, nil, CountTypeSinceImagePulled, 1, ActionTransition)})
		u := unknown
		u.LastPulledAt = now.Add(-400 * day) // a known pull time does not help
		if d := evaluate(t, p, []Image{u})[0]; d.Action != DecisionKeep || d.RulePriority != 1 {
			t.Errorf("unknown image: %+v", d)
		}
	})
	t.Run("still owned", func(t *testing.T) {
		// Rule 1 owns U (and keeps it), so rule 2 may not act on it either.
		p := parsedPolicy(t, []Rule{
			rule(1, TagStatusTagged, []string{"prod"}, CountTypeImageCountMoreThan, 5, ActionExpire),
			rule(2, TagStatusAny, nil, CountTypeSinceImagePushed, 1, ActionExpire),
		})
		if d := evaluate(t, p, []Image{unknown})[0]; d.Action != DecisionKeep || d.RulePriority != 1 {
			t.Errorf("unknown image: %+v", d)
		}
	})
	t.Run("unknown archive time", func(t *testing.T) {
		p := parsedPolicy(t, []Rule{rule(1, TagStatusAny, nil, CountTypeSinceImageTransitioned, 90, ActionExpire)})
		a := Image{ID: "X", PushedAt: now.Add(-900 * day), StorageClass: StorageClassArchive}
		want := Decision{"X", DecisionKeep, 1, "protected by rule 1: archive time unknown"}
		if d := evaluate(t, p, []Image{a})[0]; d != want {
			t.Errorf("got %+v, want %+v", d, want)
		}
	})
}

func TestAgeBoundaryIsStrict(t *testing.T) {
	p := parsedPolicy(t, []Rule{rule(1, TagStatusAny, nil, CountTypeSinceImagePushed, 7, ActionExpire)})
	ds := evaluate(t, p, []Image{img("exact", 7*day), img("older", 7*day+time.Nanosecond)})
	if ds[0].Action != DecisionKeep || ds[1].Action != ActionExpire {
		t.Errorf("exactly 7 days must be kept, a nanosecond more expired: %+v", ds)
	}
	// The clock's location does not matter: the cutoff is an instant.
	local := now.In(time.FixedZone("UTC+5", 5*3600))
	ds = Evaluate(p, []Image{img("exact", 7*day), img("older", 7*day+time.Nanosecond)}, local)
	if ds[0].Action != DecisionKeep || ds[1].Action != ActionExpire {
		t.Errorf("non-UTC clock: %+v", ds)
	}
}

func TestRestoredImageAgesFromRestore(t *testing.T) {
	restored := Image{ID: "R", PushedAt: now.Add(-100 * day), LastActivatedAt: now.Add(-2 * day)}
	p := parsedPolicy(t, []Rule{rule(1, TagStatusAny, nil, CountTypeSinceImagePushed, 30, ActionExpire)})
	if d := evaluate(t, p, []Image{restored})[0]; d.Action != DecisionKeep {
		t.Errorf("restored 2 days ago: %+v", d)
	}
	// In a count ranking it is as new as its restore.
	p = parsedPolicy(t, []Rule{rule(1, TagStatusAny, nil, CountTypeImageCountMoreThan, 1, ActionExpire)})
	expired, _ := outcome(evaluate(t, p, []Image{restored, img("A", 10*day)}))
	if !slices.Equal(expired, []string{"A"}) {
		t.Errorf("expired %q, want [A]", expired)
	}
}

func TestHugeCountNumber(t *testing.T) {
	// Neither the count nor the N×24h cutoff may overflow.
	images := []Image{img("A", 1000*day), img("B", 2000*day)}
	for _, r := range []Rule{
		rule(1, TagStatusAny, nil, CountTypeImageCountMoreThan, maxInt32, ActionExpire),
		rule(1, TagStatusAny, nil, CountTypeSinceImagePushed, maxInt32, ActionExpire),
	} {
		p := parsedPolicy(t, []Rule{r})
		if expired, _ := outcome(evaluate(t, p, images)); len(expired) != 0 {
			t.Errorf("%s %d expired %q", r.Selection.CountType, r.Selection.CountNumber, expired)
		}
	}
}

func TestInvalidRuleNeverActs(t *testing.T) {
	// Built in code, never validated: countNumber 0 would expire everything.
	p := &Policy{Rules: []Rule{
		{RulePriority: 1, Selection: Selection{TagStatus: TagStatusAny, CountType: CountTypeImageCountMoreThan}, Action: Action{Type: ActionExpire}},
		rule(2, TagStatusAny, nil, CountTypeSinceImagePushed, 1, ActionExpire),
	}}
	d := evaluate(t, p, []Image{img("A", 10*day)})[0]
	if d.Action != DecisionKeep || d.RulePriority != 1 || !strings.Contains(d.Reason, "rule is invalid and never acts (rules[0].selection.countNumber: must be a positive integer") {
		t.Errorf("got %+v", d)
	}
	if ds := Evaluate(nil, []Image{img("A", day)}, now); len(ds) != 1 || ds[0].Action != DecisionKeep {
		t.Errorf("nil policy: %+v", ds)
	}
}

func TestStorageClassSelection(t *testing.T) {
	p := parsedPolicy(t, []Rule{rule(1, TagStatusAny, nil, CountTypeSinceImagePushed, 1, ActionTransition)})
	images := []Image{
		img("default", 5*day),
		{ID: "standard", PushedAt: now.Add(-5 * day), StorageClass: StorageClassStandard},
		{ID: "archived", PushedAt: now.Add(-5 * day), StorageClass: StorageClassArchive, LastArchivedAt: now.Add(-2 * day)},
		{ID: "unknown-class", PushedAt: now.Add(-5 * day), StorageClass: "activating"},
	}
	_, transitioned := outcome(evaluate(t, p, images))
	if want := []string{"default", "standard"}; !slices.Equal(transitioned, want) {
		t.Errorf("transitioned %q, want %q", transitioned, want)
	}
}

func TestSeedPolicyEvaluation(t *testing.T) {
	data, err := os.ReadFile(seedPolicyPath)
	if err != nil {
		t.Fatal(err)
	}
	p, err := Parse(data)
	if err != nil {
		t.Fatal(err)
	}
	var images []Image
	// 12 release images carrying both a prod* and a v* tag: rule 1 keeps 10.
	for i := range 12 {
		images = append(images, img("rel"+string(rune('a'+i)), time.Duration(i+1)*day, "prod-"+string(rune('a'+i)), "v1."+string(rune('a'+i))))
	}
	images = append(images,
		// Prefix entries are ANDed: a prod* tag without a v* tag is not
		// selected by rule 1, and no other rule selects it.
		img("prod-only", 300*day, "prod-hotfix"),
		// 7 staging images with both staging* and stage* tags: rule 2 keeps 5.
		img("stg1", 1*day, "staging-1", "stage-1"), img("stg2", 2*day, "staging-2", "stage-2"),
		img("stg3", 3*day, "staging-3", "stage-3"), img("stg4", 4*day, "staging-4", "stage-4"),
		img("stg5", 5*day, "staging-5", "stage-5"), img("stg6", 6*day, "staging-6", "stage-6"),
		img("stg7", 7*day, "staging-7", "stage-7"),
		// Untagged: rule 3 expires after 7 days.
		img("u-old", 10*day), img("u-new", 3*day),
		// Dev images: rule 4 keeps 3.
		img("dev1", 1*day, "dev-1", "feature-1"), img("dev2", 2*day, "dev-2", "feature-2"),
		img("dev3", 3*day, "dev-3", "feature-3"), img("dev4", 4*day, "dev-4", "feature-4"),
		// Owned and kept by rule 1 (as its newest image, so relj becomes 11th
		// there), yet it also takes a slot in rule 4's count, so dev3 becomes
		// the 4th newest dev image.
		img("prod-and-dev", 30*time.Minute, "prod-x", "v9", "dev-x", "feature-x"),
	)
	ds := evaluate(t, p, images)
	expired, transitioned := outcome(ds)
	want := []string{"dev3", "dev4", "relj", "relk", "rell", "stg6", "stg7", "u-old"}
	if !slices.Equal(expired, want) || len(transitioned) != 0 {
		t.Errorf("expired %q transitioned %q, want expired %q", expired, transitioned, want)
		for _, d := range ds {
			t.Logf("%s: %s (%s)", d.ImageID, d.Action, d.Reason)
		}
	}
	owners := map[string]int{}
	for _, d := range ds {
		owners[d.ImageID] = d.RulePriority
	}
	for id, prio := range map[string]int{"prod-only": 0, "prod-and-dev": 1, "stg1": 2, "u-new": 3, "dev1": 4} {
		if owners[id] != prio {
			t.Errorf("%s owned by rule %d, want %d", id, owners[id], prio)
		}
	}
}

func TestAgoAndOrdinal(t *testing.T) {
	for d, want := range map[time.Duration]string{
		9 * day:                        "9d ago",
		9*day + 4*time.Hour:            "9d4h ago",
		23 * time.Hour:                 "23h ago",
		90 * time.Minute:               "1h30m ago",
		5 * time.Minute:                "5m ago",
		10 * time.Second:               "10s ago",
		-2 * time.Hour:                 "2h in the future",
		time.Duration(-1 << 63):        "106751d23h in the future",
		time.Duration(1<<63 - 1):       "106751d23h ago",
		24*time.Hour - time.Nanosecond: "23h59m ago",
	} {
		if got := ago(d); got != want {
			t.Errorf("ago(%v) = %q, want %q", d, got, want)
		}
	}
	got := []string{}
	for _, n := range []int{1, 2, 3, 4, 11, 12, 13, 21, 22, 23, 101, 111, 112} {
		got = append(got, ordinal(n))
	}
	want := []string{"1st", "2nd", "3rd", "4th", "11th", "12th", "13th", "21st", "22nd", "23rd", "101st", "111th", "112th"}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("ordinals %q, want %q", got, want)
	}
}
