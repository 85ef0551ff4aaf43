// Package registrytest is the contract every registry backend meets: one set of behaviours
// (listing with pagination, images with tags, times, children and subjects, idempotent
// EnsureRepository, deletes, not-found and refused credentials mapped to the documented exit codes,
// empty registries and repositories) run against each backend on a real or emulated server.
//
// A backend's test calls Run with a Harness that starts a fresh server and opens the backend on it;
// the suite only talks to registry.Registry (and pushes through its Remote options), so a behaviour
// that differs between backends is either declared in the Harness or a failure.
package registrytest

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/remote"

	"github.com/regctl-dev/regctl/internal/exitcode"
	"github.com/regctl-dev/regctl/internal/registry"
	"github.com/regctl-dev/regctl/internal/sample"
)

// Fixture is one fresh server with the backend opened on it.
type Fixture struct {
	// Registry has the rights to create, push, list and delete.
	Registry registry.Registry
	// WrongCredentials opens the same server with a wrong password or key; nil when the server has
	// no authentication. Backends that authenticate when opened (ECR fetches its token) may fail
	// here; the error is held to the same rules as the calls'.
	WrongCredentials func() (registry.Registry, error)
	// Secret is the wrong credential WrongCredentials carries: it must not appear in any error.
	Secret string
}

// Harness describes a backend to the suite.
type Harness struct {
	// Start starts a fresh, empty server for one subtest and opens the backend on it. Now is the
	// time the server's clock reports (for backends that record push times).
	Start func(t *testing.T, now time.Time) Fixture
	// Namespace is prepended to every repository the suite uses ("" or a Harbor project, "contract").
	Namespace string
	// ListsUntagged: Images also lists manifests no tag reaches (ECR, Harbor list every artifact;
	// a plain OCI registry cannot enumerate them).
	ListsUntagged bool
	// TimeSource is where a single image's PushedAt comes from on this backend.
	TimeSource registry.TimeSource
	// OnFirstPush: repositories exist only once something is pushed (plain OCI registries; Harbor,
	// where EnsureRepository creates the project), so an ensured but empty repository is not found
	// rather than empty.
	OnFirstPush bool
	// DeleteLeavesTags: deleting a manifest by digest leaves the tags that named it in place (the
	// tags still resolve); go-containerregistry's in-memory registry does this.
	DeleteLeavesTags bool
	// CatalogIgnoresLast: the catalog fills a page of n without a Link and ignores last=, so a
	// listing beyond one page cannot be completed and must fail (exit 1) instead of coming back short.
	CatalogIgnoresLast bool
}

// Pages is how many items the pagination cases create: above every backend's page size (100 for
// distribution's n= and Harbor's page_size; the ECR emulator pages by 2).
const Pages = 105

// now is the suite's clock: midnight, as sample.Seed counts ages from the start of the day.
var now = time.Date(2026, 6, 30, 0, 0, 0, 0, time.UTC)

// Run runs the contract against h.
func Run(t *testing.T, h Harness) {
	t.Run("EmptyRegistry", func(t *testing.T) { emptyRegistry(t, h) })
	t.Run("EnsureRepositoryIsIdempotent", func(t *testing.T) { ensureIdempotent(t, h) })
	t.Run("MissingIsNotFound", func(t *testing.T) { missing(t, h) })
	t.Run("Images", func(t *testing.T) { images(t, h) })
	t.Run("Delete", func(t *testing.T) { deleteImage(t, h) })
	t.Run("TagPagination", func(t *testing.T) { tagPagination(t, h) })
	t.Run("RepositoryPagination", func(t *testing.T) { repositoryPagination(t, h) })
	t.Run("WrongCredentials", func(t *testing.T) { wrongCredentials(t, h) })
}

func (h Harness) repo(s string) string {
	if h.Namespace == "" {
		return s
	}
	return h.Namespace + "/" + s
}

// ensure creates repo the way `repo create` would, failing the test on an error.
func ensure(t *testing.T, reg registry.Registry, repo string) registry.EnsureResult {
	t.Helper()
	res, err := reg.EnsureRepository(context.Background(), repo, registry.RepositorySpec{})
	if err != nil {
		t.Fatalf("EnsureRepository %s: %v", repo, err)
	}
	return res
}

func repoRef(t *testing.T, reg registry.Registry, repo string) name.Repository {
	t.Helper()
	r, err := registry.RepositoryRef(reg, repo)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func seed(t *testing.T, reg registry.Registry, repo string) map[string]sample.Pushed {
	t.Helper()
	pushed, err := sample.Seed(context.Background(), repoRef(t, reg, repo), now, reg.Remote()...)
	if err != nil {
		t.Fatal(err)
	}
	by := map[string]sample.Pushed{}
	for _, p := range pushed {
		by[p.What] = p
	}
	return by
}

func wantCode(t *testing.T, what string, err error, code int) {
	t.Helper()
	if err == nil {
		t.Errorf("%s: no error, want exit %d", what, code)
		return
	}
	if got := exitcode.Of(err); got != code {
		t.Errorf("%s: exit %d (%v), want %d", what, got, err, code)
	}
}

func emptyRegistry(t *testing.T, h Harness) {
	f := h.Start(t, now)
	repos, err := f.Registry.Repositories(context.Background(), "")
	if err != nil {
		t.Fatalf("Repositories on an empty registry: %v", err)
	}
	if len(repos) != 0 {
		t.Errorf("empty registry lists %v", repos)
	}
}

func ensureIdempotent(t *testing.T, h Harness) {
	f := h.Start(t, now)
	repo := h.repo("game-server")
	first := ensure(t, f.Registry, repo)
	if first.Repository != repo {
		t.Errorf("first result names %q, want %q", first.Repository, repo)
	}
	switch first.Status {
	case registry.StatusCreated, registry.StatusOnPush:
	default:
		t.Errorf("first EnsureRepository: %s (%s), want created or on-first-push", first.Status, first.Message)
	}
	for i := range 2 {
		again := ensure(t, f.Registry, repo)
		switch again.Status {
		case registry.StatusUnchanged, registry.StatusExists, registry.StatusOnPush:
		default:
			t.Errorf("EnsureRepository again (%d): %s (%s), want unchanged, exists or on-first-push", i+1, again.Status, again.Message)
		}
		// Where repositories are real before a push, what was created is there the second time.
		if !h.OnFirstPush && again.Status == registry.StatusOnPush {
			t.Errorf("EnsureRepository again: on-first-push, but this backend creates repositories")
		}
	}
	// Ensured and empty: an empty listing where the backend has repositories without images.
	imgs, err := f.Registry.Images(context.Background(), repo)
	if h.OnFirstPush {
		wantCode(t, "Images of a repository nothing was pushed to", err, exitcode.NotFound)
		_, err = f.Registry.Tags(context.Background(), repo)
		wantCode(t, "Tags of a repository nothing was pushed to", err, exitcode.NotFound)
		return
	}
	if err != nil || len(imgs) != 0 {
		t.Errorf("Images of an empty repository: %d images, %v; want none and no error", len(imgs), err)
	}
	tags, err := f.Registry.Tags(context.Background(), repo)
	if err != nil || len(tags) != 0 {
		t.Errorf("Tags of an empty repository: %v, %v; want none and no error", tags, err)
	}
}

func missing(t *testing.T, h Harness) {
	f := h.Start(t, now)
	ctx := context.Background()
	repo := h.repo("game-server")
	ensure(t, f.Registry, repo)
	seed(t, f.Registry, repo)
	absent := h.repo("no-such-repo")
	_, err := f.Registry.Tags(ctx, absent)
	wantCode(t, "Tags of a missing repository", err, exitcode.NotFound)
	if !registry.IsNotFound(err) {
		t.Errorf("registry.IsNotFound(%v) = false", err)
	}
	_, err = f.Registry.Images(ctx, absent)
	wantCode(t, "Images of a missing repository", err, exitcode.NotFound)
	nowhere := v1.Hash{Algorithm: "sha256", Hex: strings.Repeat("ab", 32)}
	err = f.Registry.DeleteImage(ctx, repo, nowhere)
	wantCode(t, "DeleteImage of a digest the repository does not have", err, exitcode.NotFound)
	if !registry.IsNotFound(err) {
		t.Errorf("registry.IsNotFound(%v) = false", err)
	}
}

func images(t *testing.T, h Harness) {
	f := h.Start(t, now)
	ctx := context.Background()
	repo := h.repo("game-server")
	ensure(t, f.Registry, repo)
	pushed := seed(t, f.Registry, repo)
	imgs, err := f.Registry.Images(ctx, repo)
	if err != nil {
		t.Fatal(err)
	}
	byDigest := map[v1.Hash]registry.Image{}
	for _, img := range imgs {
		if _, dup := byDigest[img.Digest]; dup {
			t.Errorf("digest %s listed twice", img.Digest)
		}
		byDigest[img.Digest] = img
		if img.Repository != repo {
			t.Errorf("%s: repository %q, want %q", img.Digest, img.Repository, repo)
		}
		if img.Missing {
			t.Errorf("%s: missing, but everything was pushed", img.Digest)
		}
		// A signature records no time of its own; registries that record pushes give it theirs.
		derived := h.TimeSource == registry.SourceConfig || h.TimeSource == registry.SourceAnnotation
		if (img.PushedAt.IsZero() || img.PushedAtSource == registry.SourceUnknown) && !(derived && img.Kind.Attached()) {
			t.Errorf("%s (%s %v): no push time (%v from %q)", img.Digest, img.Kind, img.Tags, img.PushedAt, img.PushedAtSource)
		}
		if img.Size <= 0 {
			t.Errorf("%s: size %d", img.Digest, img.Size)
		}
	}
	for i := 1; i < len(imgs); i++ {
		if imgs[i-1].PushedAt.Before(imgs[i].PushedAt) {
			t.Errorf("not newest first: %s (%v) before %s (%v)", imgs[i-1].Digest, imgs[i-1].PushedAt, imgs[i].Digest, imgs[i].PushedAt)
		}
	}
	// 5 single images, the index, its 2 platforms and the signature; plus the orphan where the
	// backend can list untagged manifests.
	want := 9
	if h.ListsUntagged {
		want = 10
	}
	if len(imgs) != want {
		for _, i := range imgs {
			t.Logf("%s %s %v", i.Digest, i.Kind, i.Tags)
		}
		t.Fatalf("%d images, want %d", len(imgs), want)
	}
	tagged := map[string]registry.Image{}
	for _, img := range imgs {
		for _, tag := range img.Tags {
			tagged[tag] = img
		}
	}
	for i := range 3 {
		tag := fmt.Sprintf("v1.0.%d", i)
		img, ok := tagged[tag]
		if !ok {
			t.Errorf("tag %s not listed", tag)
			continue
		}
		if img.Kind != registry.KindImage || img.PushedAtSource != h.TimeSource {
			t.Errorf("%s: kind %s, time from %q; want image with time from %q", tag, img.Kind, img.PushedAtSource, h.TimeSource)
		}
		if h.TimeSource == registry.SourceConfig && !img.ConfigCreated.Equal(img.PushedAt) {
			t.Errorf("%s: PushedAt %v is not its config's created %v", tag, img.PushedAt, img.ConfigCreated)
		}
	}
	idx, ok := tagged["latest"]
	if !ok || idx.Kind != registry.KindIndex || len(idx.Children) != 2 {
		t.Fatalf("latest: %+v, want an index with 2 children", idx)
	}
	if idx.Digest != pushed["two-platform index (linux/amd64, linux/arm64)"].Digest {
		t.Errorf("latest is %s, not the pushed index", idx.Digest)
	}
	platforms := map[string]bool{}
	for _, c := range idx.Children {
		child, ok := byDigest[c]
		if !ok {
			t.Errorf("child %s of latest not listed", c)
			continue
		}
		if !slices.Contains(child.Parents, idx.Digest) || len(child.Tags) != 0 || child.Kind != registry.KindImage || child.Platform == nil {
			t.Errorf("child %s: parents %v tags %v kind %s platform %v", c, child.Parents, child.Tags, child.Kind, child.Platform)
			continue
		}
		platforms[child.Platform.String()] = true
	}
	if !platforms["linux/amd64"] || !platforms["linux/arm64"] {
		t.Errorf("platforms of latest: %v", platforms)
	}
	sig, ok := byDigest[pushed["cosign-style signature of latest"].Digest]
	if !ok || sig.Kind != registry.KindSignature || sig.Subject == nil || *sig.Subject != idx.Digest {
		t.Errorf("signature: %+v, want a signature whose subject is %s", sig, idx.Digest)
	}
	orphan, listed := byDigest[pushed["untagged image pushed by digest"].Digest]
	if listed != h.ListsUntagged {
		t.Errorf("untagged manifest listed = %v, want %v", listed, h.ListsUntagged)
	}
	if listed && len(orphan.Tags) != 0 {
		t.Errorf("untagged manifest has tags %v", orphan.Tags)
	}

	tags, err := f.Registry.Tags(ctx, repo)
	if err != nil {
		t.Fatal(err)
	}
	slices.Sort(tags)
	wantTags := []string{"dev-3f2a9c1", "latest", sample.SignatureTag(idx.Digest), "staging", "v1.0.0", "v1.0.1", "v1.0.2"}
	slices.Sort(wantTags)
	if !slices.Equal(tags, wantTags) {
		t.Errorf("Tags = %v, want %v", tags, wantTags)
	}
	repos, err := f.Registry.Repositories(ctx, "")
	if err != nil || !slices.Equal(repos, []string{repo}) {
		t.Errorf("Repositories = %v, %v; want [%s]", repos, err, repo)
	}
}

func deleteImage(t *testing.T, h Harness) {
	f := h.Start(t, now)
	ctx := context.Background()
	repo := h.repo("game-server")
	ensure(t, f.Registry, repo)
	pushed := seed(t, f.Registry, repo)
	gone := pushed["image built 30 days ago"].Digest
	if err := f.Registry.DeleteImage(ctx, repo, gone); err != nil {
		t.Fatalf("DeleteImage: %v", err)
	}
	// The data plane agrees: the manifest is gone.
	if _, err := remote.Head(repoRef(t, f.Registry, repo).Digest(gone.String()), append(f.Registry.Remote(), remote.WithContext(ctx))...); err == nil {
		t.Errorf("manifest %s still served by digest after DeleteImage", gone)
	}
	if h.DeleteLeavesTags {
		return
	}
	imgs, err := f.Registry.Images(ctx, repo)
	if err != nil {
		t.Fatal(err)
	}
	for _, img := range imgs {
		if img.Digest == gone {
			t.Errorf("deleted %s still listed with tags %v", gone, img.Tags)
		}
	}
	tags, err := f.Registry.Tags(ctx, repo)
	if err != nil {
		t.Fatal(err)
	}
	if slices.Contains(tags, "v1.0.0") {
		t.Errorf("tag v1.0.0 of the deleted image still listed: %v", tags)
	}
	if !slices.Contains(tags, "v1.0.1") {
		t.Errorf("a delete took v1.0.1 with it: %v", tags)
	}
	wantCode(t, "deleting it again", f.Registry.DeleteImage(ctx, repo, gone), exitcode.NotFound)
}

// onePush pushes a tiny image under each tag given.
func onePush(t *testing.T, reg registry.Registry, repo string, tags ...string) {
	t.Helper()
	img, err := sample.Image(sample.ImageSpec{Seed: "pages", Created: now})
	if err != nil {
		t.Fatal(err)
	}
	r := repoRef(t, reg, repo)
	for _, tag := range tags {
		if err := remote.Write(r.Tag(tag), img, reg.Remote()...); err != nil {
			t.Fatalf("push %s:%s: %v", repo, tag, err)
		}
	}
}

func tagPagination(t *testing.T, h Harness) {
	f := h.Start(t, now)
	repo := h.repo("many-tags")
	ensure(t, f.Registry, repo)
	var want []string
	for i := range Pages {
		want = append(want, fmt.Sprintf("t%03d", i))
	}
	onePush(t, f.Registry, repo, want...)
	tags, err := f.Registry.Tags(context.Background(), repo)
	if err != nil {
		t.Fatal(err)
	}
	slices.Sort(tags)
	if !slices.Equal(tags, want) {
		t.Errorf("Tags: %d of %d (first %v)", len(tags), len(want), tags[:min(3, len(tags))])
	}
	imgs, err := f.Registry.Images(context.Background(), repo)
	if err != nil || len(imgs) != 1 || len(imgs[0].Tags) != Pages {
		t.Errorf("Images: %d images, %v; want one with %d tags", len(imgs), err, Pages)
	}
}

func repositoryPagination(t *testing.T, h Harness) {
	f := h.Start(t, now)
	var want []string
	for i := range Pages {
		repo := h.repo(fmt.Sprintf("pages/r%03d", i))
		ensure(t, f.Registry, repo)
		onePush(t, f.Registry, repo, "v1")
		want = append(want, repo)
	}
	other := h.repo("other")
	ensure(t, f.Registry, other)
	onePush(t, f.Registry, other, "v1")

	repos, err := f.Registry.Repositories(context.Background(), h.repo("pages/"))
	if h.CatalogIgnoresLast {
		wantCode(t, "Repositories on a catalog that cannot be paged", err, exitcode.Error)
		if err != nil && !strings.Contains(err.Error(), "ignores last=") {
			t.Errorf("the error does not say why: %v", err)
		}
		return
	}
	if err != nil {
		t.Fatal(err)
	}
	slices.Sort(repos)
	if !slices.Equal(repos, want) {
		t.Errorf("Repositories(prefix): %d, want %d; unexpected: %v", len(repos), len(want), diff(repos, want))
	}
	all, err := f.Registry.Repositories(context.Background(), "")
	if err != nil || len(all) != Pages+1 || !slices.Contains(all, other) {
		t.Errorf("Repositories(\"\"): %d repositories, %v; want %d including %s", len(all), err, Pages+1, other)
	}
}

func diff(got, want []string) []string {
	var out []string
	for _, g := range got {
		if !slices.Contains(want, g) {
			out = append(out, g)
		}
	}
	return out
}

func wrongCredentials(t *testing.T, h Harness) {
	f := h.Start(t, now)
	if f.WrongCredentials == nil {
		t.Skip("this server has no authentication")
	}
	ctx := context.Background()
	repo := h.repo("game-server")
	ensure(t, f.Registry, repo)
	seed(t, f.Registry, repo)
	calls := map[string]error{}
	bad, err := f.WrongCredentials()
	if err != nil {
		calls["Open"] = err
	} else {
		_, calls["Repositories"] = bad.Repositories(ctx, "")
		_, calls["Tags"] = bad.Tags(ctx, repo)
		_, calls["Images"] = bad.Images(ctx, repo)
		calls["DeleteImage"] = bad.DeleteImage(ctx, repo, v1.Hash{Algorithm: "sha256", Hex: strings.Repeat("cd", 32)})
	}
	for op, err := range calls {
		wantCode(t, op+" with a wrong credential", err, exitcode.Auth)
		if err != nil && f.Secret != "" && strings.Contains(err.Error(), f.Secret) {
			t.Errorf("%s: the error shows the credential: %v", op, err)
		}
	}
}
