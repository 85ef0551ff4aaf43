package replicate_test

import (
	"context"
	"net/http"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/remote"

	"github.com/regctl-dev/regctl/internal/config"
	"github.com/regctl-dev/regctl/internal/ecr"
	"github.com/regctl-dev/regctl/internal/ecr/ecrtest"
	"github.com/regctl-dev/regctl/internal/exitcode"
	"github.com/regctl-dev/regctl/internal/harbor"
	"github.com/regctl-dev/regctl/internal/harbor/harbortest"
	"github.com/regctl-dev/regctl/internal/localreg/localregtest"
	"github.com/regctl-dev/regctl/internal/registry"
	"github.com/regctl-dev/regctl/internal/replicate"
	"github.com/regctl-dev/regctl/internal/sample"
)

var day0 = time.Date(2026, 6, 30, 0, 0, 0, 0, time.UTC)

func openHost(t testing.TB, host string) registry.Registry {
	t.Helper()
	reg, err := registry.NewResolver(nil, registry.Options{}).Registry(host)
	if err != nil {
		t.Fatal(err)
	}
	return reg
}

func seed(t testing.TB, reg registry.Registry, repo string) []sample.Pushed {
	t.Helper()
	ref, err := registry.RepositoryRef(reg, repo)
	if err != nil {
		t.Fatal(err)
	}
	pushed, err := sample.Seed(context.Background(), ref, day0, reg.Remote()...)
	if err != nil {
		t.Fatal(err)
	}
	return pushed
}

// tagDigests reads every tag of repo and what it points at.
func tagDigests(t testing.TB, reg registry.Registry, repo string) map[string]string {
	t.Helper()
	tags, err := reg.Tags(context.Background(), repo)
	if registry.IsNotFound(err) {
		return map[string]string{}
	}
	if err != nil {
		t.Fatal(err)
	}
	ref, _ := registry.RepositoryRef(reg, repo)
	out := map[string]string{}
	for _, tg := range tags {
		d, err := remote.Head(ref.Tag(tg), reg.Remote()...)
		if registry.IsNotFound(err) {
			// distribution lists a tag whose write a dropped connection cut short, though it
			// resolves to nothing: it points at no image, complete or not.
			continue
		}
		if err != nil {
			t.Fatalf("%s:%s: %v", repo, tg, err)
		}
		out[tg] = d.Digest.String()
	}
	return out
}

// assertComplete walks everything a destination tag reaches and fails on anything missing: a tag
// must never point at an incomplete image.
func assertComplete(t testing.TB, reg registry.Registry, repo string) {
	t.Helper()
	ref, _ := registry.RepositoryRef(reg, repo)
	var walk func(d string) error
	walk = func(d string) error {
		desc, err := remote.Get(ref.Digest(d), reg.Remote()...)
		if err != nil {
			return err
		}
		h, _ := v1.NewHash(d)
		m, err := registry.ParseManifest(h, desc.MediaType, desc.Manifest)
		if err != nil {
			return err
		}
		for _, c := range m.Children {
			if err := walk(c.Digest.String()); err != nil {
				return err
			}
		}
		blobs := m.Layers
		if m.Config != nil {
			blobs = append(blobs, *m.Config)
		}
		for _, b := range blobs {
			l, err := remote.Layer(ref.Digest(b.Digest.String()), reg.Remote()...)
			if err == nil {
				_, err = l.Size()
			}
			if err != nil {
				return err
			}
		}
		return nil
	}
	for tg, d := range tagDigests(t, reg, repo) {
		if err := walk(d); err != nil {
			t.Errorf("%s:%s points at an incomplete image: %v", repo, tg, err)
		}
	}
}

func TestReplicateRegistryRoundTripThenUnchanged(t *testing.T) {
	srcSrv, dstSrv := localregtest.Start(t), localregtest.Start(t)
	src, dst := openHost(t, srcSrv.Host), openHost(t, dstSrv.Host)
	for _, repo := range []string{"game-server/api", "game-server/web", "other/tool"} {
		seed(t, src, repo)
	}
	ctx := context.Background()
	res, err := replicate.Run(ctx, replicate.Endpoint{Registry: src}, replicate.Endpoint{Registry: dst}, replicate.Options{Repos: []string{"game-server/*"}})
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Repos) != 2 || res.Repos[0].Status != replicate.StatusCopied || res.Repos[1].Status != replicate.StatusCopied {
		t.Fatalf("repositories: %+v", res.Repos)
	}
	for _, repo := range []string{"game-server/api", "game-server/web"} {
		want, got := tagDigests(t, src, repo), tagDigests(t, dst, repo)
		if len(want) != 7 { // 5 images, the index and its signature
			t.Fatalf("the seed changed: %v", want)
		}
		for tg, d := range want {
			if got[tg] != d {
				t.Errorf("%s:%s: destination %q, source %s", repo, tg, got[tg], d)
			}
		}
		assertComplete(t, dst, repo)
	}
	if got := tagDigests(t, dst, "other/tool"); len(got) != 0 {
		t.Errorf("--repos left other/tool out, yet the destination has %v", got)
	}
	// The second repository holds the same images: its blobs are mounted, not sent again.
	if res.Stats.BlobsMounted == 0 || res.Stats.BlobsSent == 0 || res.Stats.BytesSent == 0 {
		t.Errorf("stats: %+v", res.Stats)
	}
	firstSent := res.Stats.BlobsSent
	if mounts := dstSrv.Count("POST", "/blobs/uploads/"); mounts == 0 {
		t.Error("no upload or mount request reached the destination")
	}

	// Unchanged: no blob, no manifest PUT, no upload started; one HEAD per tag on each side.
	dstSrv.Requests()
	res, err = replicate.Run(ctx, replicate.Endpoint{Registry: src}, replicate.Endpoint{Registry: dst}, replicate.Options{Repos: []string{"game-server/*"}})
	if err != nil {
		t.Fatal(err)
	}
	for _, rr := range res.Repos {
		if rr.Status != replicate.StatusUnchanged || rr.Copied != 0 || rr.Unchanged != 7 {
			t.Errorf("re-run: %+v", rr)
		}
	}
	reqs := dstSrv.Requests()
	for _, r := range reqs {
		if !strings.HasPrefix(r, "HEAD ") && !strings.HasPrefix(r, "GET /v2/") {
			t.Errorf("an unchanged re-run sent %s to the destination", r)
		}
		if strings.HasPrefix(r, "GET ") && !strings.HasSuffix(r, "/tags/list") && r != "GET /v2/" {
			t.Errorf("an unchanged re-run fetched %s from the destination", r)
		}
	}
	if heads := countPrefix(reqs, "HEAD /v2/game-server/api/manifests/"); heads != 7 {
		t.Errorf("want one HEAD per tag on the destination, got %d: %v", heads, reqs)
	}
	if res.Stats.BytesSent != 0 || res.Stats.ManifestsPut != 0 || res.Stats.BlobsSent != 0 {
		t.Errorf("re-run stats: %+v (first run sent %d blobs)", res.Stats, firstSent)
	}
}

func countPrefix(list []string, prefix string) int {
	n := 0
	for _, s := range list {
		if strings.HasPrefix(s, prefix) {
			n++
		}
	}
	return n
}

func TestReplicateOneRepositoryUnderANewNameAndDryRun(t *testing.T) {
	srcSrv, dstSrv := localregtest.Start(t), localregtest.Start(t)
	src, dst := openHost(t, srcSrv.Host), openHost(t, dstSrv.Host)
	seed(t, src, "app")
	ctx := context.Background()
	res, err := replicate.Run(ctx, replicate.Endpoint{Registry: src, Repo: "app"}, replicate.Endpoint{Registry: dst, Repo: "mirror/app"}, replicate.Options{DryRun: true})
	if err != nil {
		t.Fatal(err)
	}
	if res.Repos[0].Status != replicate.StatusWouldCopy || res.Repos[0].Copied != 7 {
		t.Errorf("dry run: %+v", res.Repos[0])
	}
	for _, r := range dstSrv.Requests() {
		if !strings.HasPrefix(r, "HEAD ") && !strings.HasPrefix(r, "GET ") {
			t.Errorf("--dry-run wrote to the destination: %s", r)
		}
	}
	if _, err := replicate.Run(ctx, replicate.Endpoint{Registry: src, Repo: "app"}, replicate.Endpoint{Registry: dst, Repo: "mirror/app"}, replicate.Options{}); err != nil {
		t.Fatal(err)
	}
	if got := tagDigests(t, dst, "mirror/app"); !mapsEqual(got, tagDigests(t, src, "app")) {
		t.Errorf("mirror/app: %v", got)
	}
	// --dest-prefix with a registry.
	if _, err := replicate.Run(ctx, replicate.Endpoint{Registry: src}, replicate.Endpoint{Registry: dst}, replicate.Options{DestPrefix: "dr"}); err != nil {
		t.Fatal(err)
	}
	if got := tagDigests(t, dst, "dr/app"); len(got) != 7 {
		t.Errorf("dr/app: %v", got)
	}
	// A registry onto a repository, and a repository onto itself, are usage errors.
	if _, err := replicate.Run(ctx, replicate.Endpoint{Registry: src}, replicate.Endpoint{Registry: dst, Repo: "x"}, replicate.Options{}); exitcode.Of(err) != exitcode.Usage {
		t.Errorf("registry onto a repository: %v", err)
	}
	if _, err := replicate.Run(ctx, replicate.Endpoint{Registry: src, Repo: "app"}, replicate.Endpoint{Registry: src}, replicate.Options{}); exitcode.Of(err) != exitcode.Usage {
		t.Errorf("onto itself: %v", err)
	}
	if _, err := replicate.Run(ctx, replicate.Endpoint{Registry: src}, replicate.Endpoint{Registry: dst}, replicate.Options{Repos: []string{"nothing/*"}}); exitcode.Of(err) != exitcode.NotFound {
		t.Errorf("no repository selected: %v", err)
	}
	if _, err := replicate.Run(ctx, replicate.Endpoint{Registry: src, Repo: "missing"}, replicate.Endpoint{Registry: dst}, replicate.Options{}); err == nil {
		t.Error("a missing source repository must fail")
	}
}

func mapsEqual(a, b map[string]string) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if b[k] != v {
			return false
		}
	}
	return true
}

func TestReplicateTagFiltersBringAttachmentsWithTheirSubject(t *testing.T) {
	srcSrv, dstSrv := localregtest.Start(t), localregtest.Start(t)
	src, dst := openHost(t, srcSrv.Host), openHost(t, dstSrv.Host)
	seed(t, src, "app")
	ctx := context.Background()
	all := tagDigests(t, src, "app")
	var sigTag string
	for tg := range all {
		if strings.HasSuffix(tg, ".sig") {
			sigTag = tg
		}
	}
	if _, err := replicate.Run(ctx, replicate.Endpoint{Registry: src, Repo: "app"}, replicate.Endpoint{Registry: dst}, replicate.Options{Tags: []string{"v1.0.*"}, Exclude: []string{"v1.0.1"}}); err != nil {
		t.Fatal(err)
	}
	got := tagDigests(t, dst, "app")
	if !mapsEqual(got, map[string]string{"v1.0.0": all["v1.0.0"], "v1.0.2": all["v1.0.2"]}) {
		t.Errorf("--tags v1.0.* --exclude v1.0.1: %v", got)
	}
	if _, err := replicate.Run(ctx, replicate.Endpoint{Registry: src, Repo: "app"}, replicate.Endpoint{Registry: dst}, replicate.Options{Tags: []string{"latest"}}); err != nil {
		t.Fatal(err)
	}
	got = tagDigests(t, dst, "app")
	if got["latest"] != all["latest"] || got[sigTag] != all[sigTag] {
		t.Errorf("latest's signature must come with it: %v", got)
	}
	if _, ok := got["staging"]; ok {
		t.Error("staging was not selected")
	}
}

func TestReplicateDeleteTouchesOnlyWhatTheFiltersSelect(t *testing.T) {
	srcSrv, dstSrv := localregtest.Start(t), localregtest.Start(t)
	src, dst := openHost(t, srcSrv.Host), openHost(t, dstSrv.Host)
	seed(t, src, "app")
	ctx := context.Background()
	S, D := replicate.Endpoint{Registry: src, Repo: "app"}, replicate.Endpoint{Registry: dst}
	if _, err := replicate.Run(ctx, S, D, replicate.Options{}); err != nil {
		t.Fatal(err)
	}
	before := tagDigests(t, dst, "app")
	// The source drops staging and v1.0.0; the destination also has a tag of its own, dr-only.
	for _, tg := range []string{"staging", "v1.0.0"} {
		if err := src.(registry.TagDeleter).DeleteTag(ctx, "app", tg); err != nil {
			t.Fatal(err)
		}
	}
	dref, _ := registry.RepositoryRef(dst, "app")
	desc, _ := remote.Get(dref.Tag("dev-3f2a9c1"), dst.Remote()...)
	if err := remote.Tag(dref.Tag("dr-only"), desc, dst.Remote()...); err != nil {
		t.Fatal(err)
	}

	// Without --delete nothing goes; with it and --dry-run the plan is reported, nothing goes.
	res, err := replicate.Run(ctx, S, D, replicate.Options{Delete: true, DryRun: true, Tags: []string{"v*", "staging"}})
	if err != nil {
		t.Fatal(err)
	}
	if got := tagsOf(res.Deletions); !slices.Equal(got, []string{"staging", "v1.0.0"}) {
		t.Errorf("plan: %v", got)
	}
	if len(tagDigests(t, dst, "app")) != len(before)+1 {
		t.Error("--dry-run deleted something")
	}
	// Over --max-delete: nothing is deleted.
	if _, err := replicate.Run(ctx, S, D, replicate.Options{Delete: true, MaxDelete: 1}); err == nil || !strings.Contains(err.Error(), "nothing deleted") {
		t.Errorf("--max-delete 1 with 3 planned: %v", err)
	}
	if len(tagDigests(t, dst, "app")) != len(before)+1 {
		t.Error("over --max-delete, something was deleted")
	}
	// A refused confirmation deletes nothing.
	if _, err := replicate.Run(ctx, S, D, replicate.Options{Delete: true, Confirm: func([]replicate.Deletion) (bool, error) { return false, nil }}); err == nil {
		t.Error("a refused confirmation must be an error")
	}
	// --tags v*: staging and dr-only are not selected, so only v1.0.0 goes.
	res, err = replicate.Run(ctx, S, D, replicate.Options{Delete: true, Tags: []string{"v*"}})
	if err != nil {
		t.Fatal(err)
	}
	after := tagDigests(t, dst, "app")
	if _, ok := after["v1.0.0"]; ok || res.Repos[0].Deleted != 1 {
		t.Errorf("v1.0.0 should be gone: %v (%+v)", after, res.Repos[0])
	}
	for _, keep := range []string{"staging", "dr-only", "v1.0.1", "latest", "dev-3f2a9c1"} {
		if after[keep] == "" {
			t.Errorf("%s was deleted though the filters did not select it or the source has it", keep)
		}
	}
	// dr-only shares its manifest with dev-3f2a9c1: deleting the tag leaves the manifest.
	res, err = replicate.Run(ctx, S, D, replicate.Options{Delete: true})
	if err != nil {
		t.Fatal(err)
	}
	after = tagDigests(t, dst, "app")
	if res.Repos[0].Deleted != 2 {
		t.Errorf("the mirror run deletes staging and dr-only: %+v", res.Repos[0])
	}
	if _, ok := after["dr-only"]; ok || after["dev-3f2a9c1"] == "" || after["staging"] != "" {
		t.Errorf("a mirror run deletes dr-only and staging, and leaves dev-3f2a9c1: %v", after)
	}
	assertComplete(t, dst, "app")
}

func tagsOf(ds []replicate.Deletion) []string {
	var out []string
	for _, d := range ds {
		out = append(out, d.Tag)
	}
	return out
}

// A proxy in front of each registry fails every 10th request (503 or a reset connection): the
// run retries and the destination ends identical.
func TestReplicateThroughAFlakyProxy(t *testing.T) {
	var n atomic.Int64
	flaky := func(h http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			switch i := n.Add(1); {
			case i%20 == 0:
				if hj, ok := w.(http.Hijacker); ok {
					if c, _, err := hj.Hijack(); err == nil {
						c.Close() // a reset mid-request
						return
					}
				}
				fallthrough
			case i%10 == 0:
				w.Header().Set("Retry-After", "0")
				http.Error(w, "try again", http.StatusServiceUnavailable)
				return
			}
			h.ServeHTTP(w, r)
		})
	}
	srcSrv, dstSrv := localregtest.Start(t, localregtest.Options{Wrap: flaky}), localregtest.Start(t, localregtest.Options{Wrap: flaky})
	src, dst := openHost(t, srcSrv.Host), openHost(t, dstSrv.Host)
	clean := openHost(t, localregtest.Start(t).Host)
	seed(t, clean, "app")
	seed(t, clean, "web")
	ctx := context.Background()
	// Fill the flaky source from the clean one (through the flaky proxy, with retries).
	if res, err := replicate.Run(ctx, replicate.Endpoint{Registry: clean}, replicate.Endpoint{Registry: src}, replicate.Options{}); err != nil {
		t.Fatalf("filling the source through the proxy: %v\n%+v", err, res.Repos)
	}
	res, err := replicate.Run(ctx, replicate.Endpoint{Registry: src}, replicate.Endpoint{Registry: dst}, replicate.Options{})
	if err != nil {
		t.Fatalf("through the flaky proxies: %v (%+v)", err, res)
	}
	for _, repo := range []string{"app", "web"} {
		if want, got := tagDigests(t, clean, repo), tagDigests(t, dst, repo); !mapsEqual(want, got) {
			t.Errorf("%s: %v, want %v", repo, got, want)
		}
		assertComplete(t, dst, repo)
	}
	if n.Load() < 100 {
		t.Errorf("only %d requests passed the proxies: the faults were barely exercised", n.Load())
	}
}

func TestReplicatePlatformsNarrowsIndexes(t *testing.T) {
	srcSrv, dstSrv := localregtest.Start(t), localregtest.Start(t)
	src, dst := openHost(t, srcSrv.Host), openHost(t, dstSrv.Host)
	seed(t, src, "app")
	ctx := context.Background()
	ps, err := replicate.ParsePlatforms("linux/arm64")
	if err != nil {
		t.Fatal(err)
	}
	res, err := replicate.Run(ctx, replicate.Endpoint{Registry: src, Repo: "app"}, replicate.Endpoint{Registry: dst}, replicate.Options{Tags: []string{"latest"}, Platforms: ps})
	if err != nil {
		t.Fatal(err)
	}
	var note string
	for _, tr := range res.Repos[0].Tags {
		if tr.Tag == "latest" {
			note = tr.Note
		}
	}
	if !strings.Contains(note, "1 of 2") {
		t.Errorf("the narrowed index is reported: %+v", res.Repos[0].Tags)
	}
	dref, _ := registry.RepositoryRef(dst, "app")
	idx, err := remote.Index(dref.Tag("latest"), dst.Remote()...)
	if err != nil {
		t.Fatal(err)
	}
	im, _ := idx.IndexManifest()
	if len(im.Manifests) != 1 || im.Manifests[0].Platform.Architecture != "arm64" {
		t.Errorf("index on the destination: %+v", im.Manifests)
	}
	assertComplete(t, dst, "app")
	res, err = replicate.Run(ctx, replicate.Endpoint{Registry: src, Repo: "app"}, replicate.Endpoint{Registry: dst}, replicate.Options{Tags: []string{"latest"}, Platforms: ps})
	if err != nil || res.Repos[0].Status != replicate.StatusUnchanged || res.Stats.ManifestsPut != 0 {
		t.Errorf("the narrowed index re-run: %+v %v", res.Repos, err)
	}
	if _, err := replicate.Run(ctx, replicate.Endpoint{Registry: src, Repo: "app"}, replicate.Endpoint{Registry: dst, Repo: "s390"}, replicate.Options{Tags: []string{"latest"}, Platforms: []v1.Platform{{OS: "linux", Architecture: "s390x"}}}); err == nil ||
		!strings.Contains(err.Error(), "1 of 1 repositories") {
		t.Errorf("no platform of the index matches: %v", err)
	}
}

func TestParsePlatforms(t *testing.T) {
	ps, err := replicate.ParsePlatforms("linux/amd64, linux/arm64/v8")
	if err != nil || len(ps) != 2 || ps[1].Variant != "v8" {
		t.Errorf("%+v %v", ps, err)
	}
	for _, bad := range []string{"linux", "/amd64", "linux/", "linux/arm64/", "a/b/c/d", ","} {
		if _, err := replicate.ParsePlatforms(bad); exitcode.Of(err) != exitcode.Usage || !strings.Contains(err.Error(), "--platforms") {
			t.Errorf("%q: %v", bad, err)
		}
	}
}

func FuzzParsePlatforms(f *testing.F) {
	for _, s := range []string{"linux/amd64", "linux/arm64/v8,windows/amd64", "", ",", "a//b", "linux/amd64 linux/arm/v7"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		ps, err := replicate.ParsePlatforms(s)
		if err != nil {
			if exitcode.Of(err) != exitcode.Usage {
				t.Fatalf("%q: not a usage error: %v", s, err)
			}
			return
		}
		for _, p := range ps {
			if p.OS == "" || p.Architecture == "" {
				t.Fatalf("%q parsed to %+v", s, p)
			}
		}
	})
}

// ECR and Harbor destinations: the repository (ECR) or project (Harbor) is created first, with
// the emulators enforcing the services' validation, and a re-run is unchanged.
func TestReplicateIntoECRAndHarbor(t *testing.T) {
	srcSrv := localregtest.Start(t)
	src := openHost(t, srcSrv.Host)
	seed(t, src, "game-server/api")
	ctx := context.Background()

	ecrSrv := ecrtest.Start(t)
	ecrReg, err := ecr.Open(ctx, "prod", config.Registry{Type: "ecr", CAFile: ecrSrv.CAFile, Settings: map[string]any{"region": ecrtest.Region, "account": ecrtest.Account, "endpoint": ecrSrv.URL}}, registry.Options{})
	if err != nil {
		t.Fatal(err)
	}
	hs := harbortest.Start(t)
	harborReg, err := harbor.Open(ctx, "dr", config.Registry{Type: harbor.Type, URL: hs.URL, Username: hs.Username, PasswordEnv: "PW", CAFile: hs.CAFile},
		registry.Options{Getenv: func(k string) string { return map[string]string{"PW": hs.Password}[k] }})
	if err != nil {
		t.Fatal(err)
	}
	for _, dst := range []registry.Registry{ecrReg, harborReg} {
		t.Run(dst.Type(), func(t *testing.T) {
			res, err := replicate.Run(ctx, replicate.Endpoint{Registry: src}, replicate.Endpoint{Registry: dst}, replicate.Options{})
			if err != nil {
				t.Fatalf("%v: %+v", err, res)
			}
			if want, got := tagDigests(t, src, "game-server/api"), tagDigests(t, dst, "game-server/api"); !mapsEqual(want, got) {
				t.Errorf("%v, want %v", got, want)
			}
			assertComplete(t, dst, "game-server/api")
			res, err = replicate.Run(ctx, replicate.Endpoint{Registry: src}, replicate.Endpoint{Registry: dst}, replicate.Options{})
			if err != nil || res.Repos[0].Status != replicate.StatusUnchanged || res.Stats.ManifestsPut != 0 {
				t.Errorf("re-run: %+v %v", res.Repos, err)
			}
			// --delete through the backend's own tag deletion: the tag goes, its image's other tags stay.
			before := tagDigests(t, dst, "game-server/api")
			if err := dst.(registry.TagDeleter).DeleteTag(ctx, "game-server/api", "nope"); exitcode.Of(err) != exitcode.NotFound {
				t.Errorf("deleting a missing tag: %v", err)
			}
			dref, _ := registry.RepositoryRef(dst, "game-server/api")
			desc, _ := remote.Get(dref.Tag("staging"), dst.Remote()...)
			if err := remote.Tag(dref.Tag("staging-old"), desc, dst.Remote()...); err != nil {
				t.Fatal(err)
			}
			res, err = replicate.Run(ctx, replicate.Endpoint{Registry: src}, replicate.Endpoint{Registry: dst}, replicate.Options{Delete: true, Tags: []string{"staging*"}})
			if err != nil || len(res.Deletions) != 1 || res.Deletions[0].Tag != "staging-old" {
				t.Fatalf("delete: %+v %v", res, err)
			}
			after := tagDigests(t, dst, "game-server/api")
			if _, ok := after["staging-old"]; ok || !mapsEqual(after, before) {
				t.Errorf("after --delete: %v, want %v", after, before)
			}
		})
	}
	// ECR to ECR: the destination repository gets the source's settings.
	other := ecrtest.Start(t)
	ecr2, err := ecr.Open(ctx, "dr", config.Registry{Type: "ecr", CAFile: other.CAFile, Settings: map[string]any{"region": ecrtest.Region, "account": ecrtest.Account, "endpoint": other.URL}}, registry.Options{})
	if err != nil {
		t.Fatal(err)
	}
	want := registry.RepositorySpec{ScanOnPush: true, TagMutability: "IMMUTABLE", Encryption: "AES256"}
	if _, err := ecrReg.EnsureRepository(ctx, "svc/api", want); err != nil {
		t.Fatal(err)
	}
	if _, err := replicate.Run(ctx, replicate.Endpoint{Registry: src, Repo: "game-server/api"}, replicate.Endpoint{Registry: ecrReg, Repo: "svc/api"}, replicate.Options{}); err != nil {
		t.Fatal(err)
	}
	if _, err := replicate.Run(ctx, replicate.Endpoint{Registry: ecrReg, Repo: "svc/api"}, replicate.Endpoint{Registry: ecr2}, replicate.Options{}); err != nil {
		t.Fatal(err)
	}
	got, err := ecr2.(registry.RepositoryInspector).RepositorySettings(ctx, "svc/api")
	if err != nil || got.ScanOnPush != want.ScanOnPush || got.TagMutability != want.TagMutability || got.Encryption != want.Encryption {
		t.Errorf("ECR to ECR settings: %+v %v, want %+v", got, err, want)
	}

	// And back: ECR as the source.
	back := openHost(t, localregtest.Start(t).Host)
	if _, err := replicate.Run(ctx, replicate.Endpoint{Registry: ecrReg, Repo: "game-server/api"}, replicate.Endpoint{Registry: back}, replicate.Options{}); err != nil {
		t.Fatal(err)
	}
	if want, got := tagDigests(t, src, "game-server/api"), tagDigests(t, back, "game-server/api"); !mapsEqual(want, got) {
		t.Errorf("from ECR: %v, want %v", got, want)
	}
}

func TestReplicateDeleteNeedsATagDeleter(t *testing.T) {
	src := openHost(t, localregtest.Start(t).Host)
	_, err := replicate.Run(context.Background(), replicate.Endpoint{Registry: src}, replicate.Endpoint{Registry: noTagDelete{src}}, replicate.Options{Delete: true})
	if exitcode.Of(err) != exitcode.Usage || !strings.Contains(err.Error(), "--delete") {
		t.Errorf("%v", err)
	}
}

// noTagDelete hides the registry's TagDeleter.
type noTagDelete struct{ registry.Registry }
