package ecrtest

// The differential test: the emulator's model of ECR (lifecycle.go) against regctl's own
// evaluator (internal/lifecycle), over the spec's vectors and a deterministic generated set of
// policies and images. Only this test file imports internal/lifecycle.

import (
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/regctl-dev/regctl/internal/lifecycle"
)

func toRegctl(imgs []lcImage) []lifecycle.Image {
	out := make([]lifecycle.Image, len(imgs))
	for i, im := range imgs {
		out[i] = lifecycle.Image{ID: im.Digest, Tags: im.Tags, PushedAt: im.PushedAt, LastPulledAt: im.LastPulledAt,
			LastActivatedAt: im.LastActivatedAt, LastArchivedAt: im.LastArchivedAt, StorageClass: "standard"}
		if im.Archived {
			out[i].StorageClass = "archive"
		}
	}
	return out
}

// verdicts is, per image, "TYPE@priority" or "keep", from each evaluator.
func verdicts(t *testing.T, text string, imgs []lcImage, now time.Time) (emulator, regctl []string) {
	t.Helper()
	p := mustParse(t, text)
	emulator = make([]string, len(imgs))
	for i := range emulator {
		emulator[i] = "keep"
	}
	for _, r := range lcEvaluate(p, imgs, now) {
		emulator[r.Index] = fmt.Sprintf("%s@%d", r.Type, r.Priority)
	}
	rp, err := lifecycle.Parse([]byte(text))
	if err != nil {
		t.Fatalf("regctl rejects a policy the emulator accepts: %v\n%s", err, text)
	}
	for _, d := range lifecycle.Evaluate(rp, toRegctl(imgs), now) {
		v := "keep"
		if d.Action != lifecycle.DecisionKeep {
			v = fmt.Sprintf("%s@%d", strings.ToUpper(d.Action), d.RulePriority)
		}
		regctl = append(regctl, v)
	}
	return emulator, regctl
}

func disagreements(imgs []lcImage, a, b []string) []string {
	var out []string
	for i := range imgs {
		if a[i] != b[i] {
			out = append(out, fmt.Sprintf("%s (tags %v): emulator %s, regctl %s", imgs[i].Digest, imgs[i].Tags, a[i], b[i]))
		}
	}
	return out
}

func TestDifferentialVectors(t *testing.T) {
	for _, v := range vectors() {
		for i, text := range v.policies {
			// regctl checks the API's 100-character minimum in Parse; pad the short vectors.
			text = strings.Replace(text, `"description":"rule 1"`, `"description":"rule 1 `+strings.Repeat(".", 100)+`"`, 1)
			a, b := verdicts(t, text, v.images, vNow)
			for _, d := range disagreements(v.images, a, b) {
				t.Errorf("%s (form %d): %s", v.id, i+1, d)
			}
		}
	}
}

// Where the two legitimately differ, the emulator does what the spec says ECR does.
func TestDifferentialKnownDifferences(t *testing.T) {
	pad := strings.Repeat(".", 100)
	t.Run("manifest-list guard", func(t *testing.T) {
		// A.3.1 rule 6: ECR does not expire an image a live manifest list references. regctl
		// applies that guard in its plan (BuildPlan), not in Evaluate, which has no such input.
		text := policy(rule(1, `"tagStatus":"untagged","countType":"sinceImagePushed","countUnit":"days","countNumber":1`, expire))
		text = strings.Replace(text, `"rule 1"`, `"rule 1 `+pad+`"`, 1)
		imgs := []lcImage{{Digest: "child", PushedAt: daysAgo(30), InLiveIndex: true}, img("orphan", daysAgo(30))}
		a, b := verdicts(t, text, imgs, vNow)
		if a[0] != "keep" || a[1] != "EXPIRE@1" {
			t.Errorf("emulator: %v", a)
		}
		t.Logf("regctl's Evaluate (no index graph): %v", b)
	})
	t.Run("unknown push time", func(t *testing.T) {
		// ECR always knows an image's push time; regctl, which may not, never acts on an image
		// without one. The emulator takes the time literally (the zero time is the oldest).
		text := policy(rule(1, `"tagStatus":"any","countType":"imageCountMoreThan","countNumber":1`, expire))
		text = strings.Replace(text, `"rule 1"`, `"rule 1 `+pad+`"`, 1)
		imgs := []lcImage{{Digest: "unknown"}, img("new", daysAgo(1)), img("old", daysAgo(2))}
		a, b := verdicts(t, text, imgs, vNow)
		if !slices.Equal(a, []string{"EXPIRE@1", "keep", "EXPIRE@1"}) {
			t.Errorf("emulator: %v", a)
		}
		if !slices.Equal(b, []string{"keep", "keep", "EXPIRE@1"}) {
			t.Errorf("regctl: %v (its documented rule: an image of unknown age is never expired and takes no slot)", b)
		}
	})
}

// gen builds deterministic random policies and repositories.
type gen struct{ r *rand.Rand }

func (g gen) pick(items ...string) string { return items[g.r.IntN(len(items))] }
func (g gen) chance(p float64) bool       { return g.r.Float64() < p }

var (
	genPrefixes = []string{"prod", "v1", "beta", "dev", "rel", "latest", "v", "p"}
	genPatterns = []string{"prod*", "*prod*", "v1.*", "*-1", "beta*", "*", "rel*se", "dev-*-x", "latest", "*.*", "v*"}
	genTags     = []string{"prod-1", "prod", "production", "v1.0", "v10.2", "v2", "beta-3", "beta-1", "dev-a-x", "release",
		"latest", "preprod", "repo-production-1", "p", "relse", "v1.2.3"}
)

// policyText renders a random policy, mostly valid, sometimes breaking one rule of A.2.
func (g gen) policyText() string {
	n := 1 + g.r.IntN(5)
	prio := 0
	var rules []map[string]any
	for i := range n {
		prio += 1 + g.r.IntN(3)
		p := prio
		if i > 0 && g.chance(0.03) {
			p = rules[i-1]["rulePriority"].(int)
		}
		sel := map[string]any{}
		archive := g.chance(0.15)
		if archive {
			sel["storageClass"] = "archive"
		} else if g.chance(0.3) {
			sel["storageClass"] = "standard"
		}
		status := g.pick("tagged", "tagged", "tagged", "untagged", "any", "any")
		sel["tagStatus"] = status
		list := func(pool []string) []string {
			var l []string
			for range 1 + g.r.IntN(2) {
				l = append(l, pool[g.r.IntN(len(pool))])
			}
			return l
		}
		if status == "tagged" || g.chance(0.03) {
			switch {
			case g.chance(0.03): // neither list
			case g.chance(0.03):
				sel["tagPrefixList"], sel["tagPatternList"] = list(genPrefixes), list(genPatterns)
			case g.chance(0.5):
				sel["tagPrefixList"] = list(genPrefixes)
			default:
				sel["tagPatternList"] = list(genPatterns)
			}
		}
		var ct string
		switch {
		case archive && g.chance(0.9):
			ct = "sinceImageTransitioned"
		case archive:
			ct = g.pick("imageCountMoreThan", "sinceImagePushed")
		default:
			ct = g.pick("imageCountMoreThan", "imageCountMoreThan", "sinceImagePushed", "sinceImagePushed", "sinceImagePulled", "sinceImageTransitioned")
			if ct == "sinceImageTransitioned" && g.chance(0.7) {
				ct = "sinceImagePushed"
			}
		}
		sel["countType"] = ct
		if ct == "imageCountMoreThan" {
			sel["countNumber"] = []int{0, 1, 2, 3, 4, 1<<31 - 1}[g.r.IntN(6)] // 0 is invalid
			if g.chance(0.03) {
				sel["countUnit"] = "days"
			}
		} else {
			// Up to the largest the schema allows: N×24h overflows a time.Duration past 106751 days.
			sel["countNumber"] = []int{1, 3, 7, 30, 60, 89, 90, 91, 120, 365, 400, 106752, 1<<31 - 1}[g.r.IntN(13)]
			if !g.chance(0.03) {
				sel["countUnit"] = "days"
			}
		}
		act := map[string]any{"type": "expire"}
		switch {
		case ct == "sinceImagePulled" && g.chance(0.9), ct != "sinceImageTransitioned" && g.chance(0.2):
			act["type"] = "transition"
			if !g.chance(0.03) {
				act["targetStorageClass"] = "archive"
			}
		}
		rules = append(rules, map[string]any{"rulePriority": p, "description": fmt.Sprintf("generated rule %d, padded to ECR's minimum policy length", i),
			"selection": sel, "action": act})
	}
	// Document order need not be priority order.
	if g.chance(0.3) {
		g.r.Shuffle(len(rules), func(i, j int) { rules[i], rules[j] = rules[j], rules[i] })
	}
	b, _ := json.Marshal(map[string]any{"rules": rules})
	return string(b)
}

// images is a random repository. With exact false, times keep clear of whole days, so no image
// sits exactly on an age boundary, and are distinct, so no ranking depends on how ties are broken;
// with exact true, times are whole days, so ties and boundaries occur (how ECR treats either is
// UNCONFIRMED; the two evaluators made the same choices: strictly older, the smaller digest newer).
func (g gen) images(now time.Time, exact bool) []lcImage {
	n := 3 + g.r.IntN(10)
	out := make([]lcImage, n)
	for i := range out {
		at := func(maxDays int) time.Time {
			if exact {
				return now.Add(-time.Duration(g.r.IntN(maxDays/10)) * 24 * time.Hour)
			}
			return now.Add(-time.Duration(g.r.IntN(maxDays))*24*time.Hour - time.Duration(1+g.r.IntN(1438))*time.Minute - time.Duration(i)*time.Second)
		}
		im := lcImage{Digest: fmt.Sprintf("sha256:%02x%04x", i, g.r.IntN(1<<16)), PushedAt: at(500)}
		if !g.chance(0.25) {
			for range 1 + g.r.IntN(3) {
				if t := genTags[g.r.IntN(len(genTags))]; !slices.Contains(im.Tags, t) {
					im.Tags = append(im.Tags, t)
				}
			}
		}
		later := func(n int) time.Time { // between the push and now
			t := im.PushedAt.Add(now.Sub(im.PushedAt) / time.Duration(2+g.r.IntN(n)))
			if exact {
				t = t.Truncate(24 * time.Hour)
			}
			return t
		}
		if g.chance(0.1) { // restored from archive after its push
			im.LastActivatedAt = later(4)
		}
		if g.chance(0.3) { // pulled after its push, perhaps before a restore
			im.LastPulledAt = later(6)
		}
		if g.chance(0.2) {
			im.Archived = true
			im.LastActivatedAt, im.LastPulledAt = time.Time{}, time.Time{}
			im.LastArchivedAt = later(4)
		}
		out[i] = im
	}
	return out
}

func TestDifferentialGenerated(t *testing.T) {
	g := gen{rand.New(rand.NewPCG(16, 6))}
	const policies, reposPer = 4000, 4
	var accepted, compared, validation, evaluation int
	seen := map[string]int{} // verdicts by type, and count types of valid policies
	for range policies {
		text := g.policyText()
		_, eerr := parseLifecycle(text)
		_, rerr := lifecycle.Parse([]byte(text))
		if (eerr == nil) != (rerr == nil) {
			validation++
			if validation <= 20 {
				t.Errorf("validation differs: emulator %v, regctl %v\n%s", eerr, rerr, text)
			}
			continue
		}
		if eerr != nil {
			continue
		}
		accepted++
		for _, ct := range []string{"imageCountMoreThan", "sinceImagePushed", "sinceImagePulled", "sinceImageTransitioned"} {
			if strings.Contains(text, `"`+ct+`"`) {
				seen[ct]++
			}
		}
		for k := range reposPer {
			imgs := g.images(vNow, k == 0)
			a, b := verdicts(t, text, imgs, vNow)
			compared += len(imgs)
			for _, v := range a {
				seen[strings.Split(v, "@")[0]]++
			}
			if ds := disagreements(imgs, a, b); len(ds) > 0 {
				evaluation++
				if evaluation <= 20 {
					t.Errorf("evaluation differs:\n%s\n%s", text, strings.Join(ds, "\n"))
				}
			}
		}
	}
	t.Logf("%d policies, %d valid, %d image verdicts compared; %d validation and %d evaluation disagreements", policies, accepted, compared, validation, evaluation)
	t.Logf("seen: %v", seen)
	// The generator must exercise both sides of validation, every count type and every verdict.
	if accepted < policies/5 || accepted > policies*9/10 {
		t.Errorf("%d of %d generated policies are valid: the generator is off balance", accepted, policies)
	}
	for _, k := range []string{"imageCountMoreThan", "sinceImagePushed", "sinceImagePulled", "sinceImageTransitioned", "keep", "EXPIRE", "TRANSITION"} {
		if seen[k] < 50 {
			t.Errorf("the generated set has only %d of %s", seen[k], k)
		}
	}
}
