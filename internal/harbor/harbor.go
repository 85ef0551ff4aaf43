// Package harbor is the Harbor backend: the control plane through Harbor's REST API v2.0
// (projects and their metadata, repositories, artifacts with Harbor's own push and pull times, tags,
// index references and accessories, deletes) and the data plane through the generic OCI backend
// with the same URL, TLS settings and credentials (robot accounts are the usual CI credential).
package harbor

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"regexp"
	"sort"
	"strings"
	"sync"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"golang.org/x/sync/errgroup"

	"github.com/regctl-dev/regctl/internal/config"
	"github.com/regctl-dev/regctl/internal/exitcode"
	"github.com/regctl-dev/regctl/internal/registry"
)

// Type is the config type of a Harbor registry.
const Type = "harbor"

// Backend is the `type: harbor` backend: url is required; it has no keys of its own.
func Backend() registry.Backend {
	return registry.Backend{
		Kind: config.Kind{Type: Type, NeedsURL: true, URLExample: "https://harbor.example.com"},
		Open: Open,
	}
}

// Harbor is a registry.Registry backed by Harbor.
type Harbor struct {
	*registry.OCI // data plane: tags, pushes, pulls, manifests
	name          string
	api           *client
	jobs          int

	// The replication policies (or the error listing them), listed once for the settings of a
	// backup's repositories; PutReplication forgets them.
	replMu       sync.Mutex
	replListed   bool
	replPolicies []ReplicationPolicy
	replErr      error
}

// Open opens a `type: harbor` registry: {url, username, password_env | password_file, insecure,
// ca_file}. A url without a scheme is https.
func Open(_ context.Context, name string, rc config.Registry, opts registry.Options) (registry.Registry, error) {
	if strings.TrimSpace(rc.URL) == "" {
		return nil, fmt.Errorf("registries.%s.url: required for type harbor (e.g. https://harbor.example.com): %w", name, exitcode.ErrUsage)
	}
	raw := rc.URL
	if !strings.Contains(raw, "://") {
		raw = "https://" + raw
	}
	base, err := url.Parse(raw)
	if err != nil || (base.Scheme != "https" && base.Scheme != "http") || base.Host == "" || base.User != nil || base.RawQuery != "" {
		return nil, fmt.Errorf("registries.%s.url: %q is not an http(s) URL of a Harbor host: %w", name, rc.URL, exitcode.ErrUsage)
	}
	base.Path = strings.TrimSuffix(base.Path, "/")
	insecure := rc.Insecure || opts.Insecure || base.Scheme == "http"
	tr, err := registry.BaseTransport(opts.Transport, insecure, rc.CAFile)
	if err != nil {
		return nil, fmt.Errorf("registries.%s.ca_file: %w", name, err)
	}
	dataRC := rc
	dataRC.URL = base.Scheme + "://" + base.Host
	oci, err := registry.OpenOCI(name, dataRC, opts)
	if err != nil {
		return nil, err
	}
	ua := opts.UserAgent
	if ua == "" {
		ua = "regctl"
	}
	jobs := opts.Jobs
	if jobs <= 0 {
		jobs = 8
	}
	h := &Harbor{OCI: oci, name: name, jobs: jobs, api: &client{base: base, host: base.Host, keychain: oci.Keychain(), userAgent: ua,
		http: &http.Client{Transport: &registry.RetryTransport{Base: tr, Logger: opts.Logger}, Timeout: 5 * time.Minute}}}
	return h, nil
}

func (h *Harbor) Type() string { return Type }
func (h *Harbor) Name() string { return h.name }

// Traits: Harbor lists untagged artifacts with their push times. Buildx caches are stored as OCI
// image manifests, the form every registry accepts.
func (h *Harbor) Traits() registry.Traits {
	return registry.Traits{ListsUntagged: true, PushTimes: true, OCICacheManifests: true}
}

// splitRepo splits PROJECT/NAME; Harbor has no repositories outside projects.
func splitRepo(repo string) (project, name string, err error) {
	project, name, ok := strings.Cut(repo, "/")
	if !ok || project == "" || name == "" {
		return "", "", fmt.Errorf("%q: a Harbor repository is PROJECT/NAME (e.g. game-server/api): %w", repo, exitcode.ErrUsage)
	}
	return project, name, nil
}

// nameComponent is one component of a Harbor project or repository name.
const nameComponent = `[a-z0-9]+(?:[._-][a-z0-9]+)*`

// projectRE is Harbor's rule for project names.
var projectRE = regexp.MustCompile(`^` + nameComponent + `$`)

func checkProject(p string) error {
	if len(p) > 255 || !projectRE.MatchString(p) {
		return fmt.Errorf("%q: a Harbor project name is lower-case letters and digits, with . _ - between them, at most 255 characters: %w", p, exitcode.ErrUsage)
	}
	return nil
}

type projectDTO struct {
	ProjectID *int64             `json:"project_id"`
	Name      string             `json:"name"`
	Metadata  map[string]*string `json:"metadata"`
	Allowlist *struct {
		Items []struct {
			CVEID string `json:"cve_id"`
		} `json:"items"`
		ExpiresAt *int64 `json:"expires_at"`
	} `json:"cve_allowlist"`
}

// projects lists every project the credentials can see (listProjects, all pages).
func (h *Harbor) projects(ctx context.Context) ([]string, error) {
	var out []string
	err := h.api.list(ctx, request{op: "listProjects", method: http.MethodGet, path: "/projects", query: url.Values{"with_detail": {"false"}}},
		func(i int, raw json.RawMessage) error {
			var p projectDTO
			if err := json.Unmarshal(raw, &p); err != nil {
				return badAnswer("listProjects", "projects[%d] is not a project: %v", i, err)
			}
			if p.Name == "" {
				return badAnswer("listProjects", "projects[%d] has no name", i)
			}
			out = append(out, p.Name)
			return nil
		})
	return out, err
}

// Repositories lists repositories (PROJECT/NAME) starting with prefix. A prefix with a slash
// names its project, which must exist (exit 5 if not); otherwise every visible project whose name
// starts with the prefix is listed.
func (h *Harbor) Repositories(ctx context.Context, prefix string) ([]string, error) {
	var projects []string
	if p, _, ok := strings.Cut(prefix, "/"); ok {
		if err := checkProject(p); err != nil {
			return nil, err
		}
		projects = []string{p}
	} else {
		all, err := h.projects(ctx)
		if err != nil {
			return nil, err
		}
		for _, p := range all {
			if strings.HasPrefix(p, prefix) {
				projects = append(projects, p)
			}
		}
	}
	var out []string
	for _, p := range projects {
		err := h.api.list(ctx, request{op: "listRepositories", method: http.MethodGet, path: projectPath(p) + "/repositories"},
			func(i int, raw json.RawMessage) error {
				var r struct {
					Name string `json:"name"`
				}
				if err := json.Unmarshal(raw, &r); err != nil {
					return badAnswer("listRepositories", "repositories[%d] of %s is not a repository: %v", i, p, err)
				}
				if !strings.HasPrefix(r.Name, p+"/") || len(r.Name) == len(p)+1 {
					return badAnswer("listRepositories", "repositories[%d] of project %s is named %q, not %s/NAME", i, p, clean(r.Name, 100), p)
				}
				if strings.HasPrefix(r.Name, prefix) {
					out = append(out, r.Name)
				}
				return nil
			})
		if err != nil {
			return nil, err
		}
	}
	sort.Strings(out)
	return out, nil
}

// artifactDTO is the part of Harbor's Artifact regctl reads.
type artifactDTO struct {
	Digest            string   `json:"digest"`
	ManifestMediaType string   `json:"manifest_media_type"`
	Size              *int64   `json:"size"`
	PushTime          *string  `json:"push_time"`
	PullTime          *string  `json:"pull_time"`
	Tags              []tagDTO `json:"tags"`
	References        []struct {
		ChildDigest string `json:"child_digest"`
	} `json:"references"`
	Accessories []struct {
		Digest       string  `json:"digest"`
		Type         string  `json:"type"`
		Subject      string  `json:"subject_artifact_digest"`
		CreationTime *string `json:"creation_time"`
	} `json:"accessories"`
}

type tagDTO struct {
	Name     string  `json:"name"`
	PushTime *string `json:"push_time"`
	PullTime *string `json:"pull_time"`
}

// harborTime parses Harbor's date-time; Harbor writes never (pull_time of an artifact never
// pulled) as 0001-01-01T00:00:00.000Z, which is the zero time.
func harborTime(s string) (time.Time, error) {
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		return time.Time{}, err
	}
	if t.Year() <= 1 {
		return time.Time{}, nil
	}
	return t.UTC(), nil
}

// times reads an artifact's push and pull times: push_time is required (it is what lifecycle ages
// by), pull_time optional; a tag's pull makes the artifact's last pull.
func (a *artifactDTO) times(op, where string) (pushed, pulled time.Time, err error) {
	if a.PushTime == nil || *a.PushTime == "" {
		return pushed, pulled, badAnswer(op, "%s has no push_time", where)
	}
	if pushed, err = harborTime(*a.PushTime); err != nil {
		return pushed, pulled, badAnswer(op, "%s.push_time %q is not a date-time", where, clean(*a.PushTime, 40))
	}
	if a.PullTime != nil && *a.PullTime != "" {
		if pulled, err = harborTime(*a.PullTime); err != nil {
			return pushed, pulled, badAnswer(op, "%s.pull_time %q is not a date-time", where, clean(*a.PullTime, 40))
		}
	}
	for j, t := range a.Tags {
		if t.PullTime != nil && *t.PullTime != "" {
			tp, err := harborTime(*t.PullTime)
			if err != nil {
				return pushed, pulled, badAnswer(op, "%s.tags[%d].pull_time %q is not a date-time", where, j, clean(*t.PullTime, 40))
			}
			if tp.After(pulled) {
				pulled = tp
			}
		}
	}
	return pushed, pulled, nil
}

var tagRE = regexp.MustCompile(`^[a-zA-Z0-9_][a-zA-Z0-9._-]{0,127}$`)

// Images lists a repository's artifacts from Harbor's artifacts API (tagged and untagged ones,
// with tags, Harbor's push_time and pull_time, index references and accessories), links them
// through their manifests (the data plane), and gives index children and accessories Harbor's
// times too.
func (h *Harbor) Images(ctx context.Context, repo string) ([]registry.Image, error) {
	project, name, err := splitRepo(repo)
	if err != nil {
		return nil, err
	}
	const op = "listArtifacts"
	var arts []artifactDTO
	err = h.api.list(ctx, request{op: op, method: http.MethodGet, path: repoPath(project, name) + "/artifacts",
		query: url.Values{"with_tag": {"true"}, "with_accessory": {"true"}}},
		func(i int, raw json.RawMessage) error {
			var a artifactDTO
			if err := json.Unmarshal(raw, &a); err != nil {
				return badAnswer(op, "artifacts[%d] of %s is not an artifact: %v", i, repo, err)
			}
			arts = append(arts, a)
			return nil
		})
	if err != nil {
		return nil, err
	}
	type times struct {
		pushed, pulled time.Time
		size           *int64
	}
	known := map[v1.Hash]times{}
	tagDigests := map[string]v1.Hash{}
	type acc struct {
		subject v1.Hash
		typ     string
		created time.Time
	}
	accessories := map[v1.Hash]acc{}
	var digests []v1.Hash
	for i, a := range arts {
		where := fmt.Sprintf("artifacts[%d] of %s", i, repo)
		d, err := v1.NewHash(a.Digest)
		if err != nil {
			return nil, badAnswer(op, "%s has no valid digest (%q)", where, clean(a.Digest, 80))
		}
		pushed, pulled, err := a.times(op, where)
		if err != nil {
			return nil, err
		}
		if a.Size != nil && *a.Size < 0 {
			return nil, badAnswer(op, "%s has a negative size", where)
		}
		if _, dup := known[d]; !dup {
			digests = append(digests, d)
		}
		known[d] = times{pushed: pushed, pulled: pulled, size: a.Size}
		for j, t := range a.Tags {
			if !tagRE.MatchString(t.Name) {
				return nil, badAnswer(op, "%s.tags[%d] %q is not a tag", where, j, clean(t.Name, 140))
			}
			tagDigests[t.Name] = d
		}
		for j, r := range a.References {
			if _, err := v1.NewHash(r.ChildDigest); err != nil {
				return nil, badAnswer(op, "%s.references[%d] has no valid child_digest (%q)", where, j, clean(r.ChildDigest, 80))
			}
		}
		for j, ac := range a.Accessories {
			ad, err := v1.NewHash(ac.Digest)
			if err != nil {
				return nil, badAnswer(op, "%s.accessories[%d] has no valid digest (%q)", where, j, clean(ac.Digest, 80))
			}
			if ac.Subject != "" && ac.Subject != a.Digest {
				return nil, badAnswer(op, "%s.accessories[%d] belongs to %s, not to the artifact it is listed under", where, j, clean(ac.Subject, 80))
			}
			var created time.Time
			if ac.CreationTime != nil && *ac.CreationTime != "" {
				if created, err = harborTime(*ac.CreationTime); err != nil {
					return nil, badAnswer(op, "%s.accessories[%d].creation_time %q is not a date-time", where, j, clean(*ac.CreationTime, 40))
				}
			}
			accessories[ad] = acc{subject: d, typ: ac.Type, created: created}
			digests = append(digests, ad)
		}
	}
	// cosign's tags (sha256-<subject>.sig, .att, .sbom) are tags of the data plane that Harbor's
	// artifact API does not list (they name accessories there). Tags, and so lifecycle apply's
	// re-check before deleting, read the data plane: give each accessory the cosign tag naming its
	// subject and kind, or the re-check takes it for tagged since the plan and keeps it. A tag two
	// accessories could own stays unassigned (the re-check then keeps them: the safe side).
	if len(accessories) > 0 {
		dataTags, err := h.OCI.Tags(ctx, repo)
		if err != nil && !registry.IsNotFound(err) {
			return nil, err
		}
		for _, tag := range dataTags {
			subject, kind, ok := registry.SubjectOfTag(tag)
			if _, taken := tagDigests[tag]; taken || !ok {
				continue
			}
			var owners []v1.Hash
			for d, a := range accessories {
				if a.subject == subject && accessoryKind(a.typ) == kind {
					owners = append(owners, d)
				}
			}
			if len(owners) == 1 {
				tagDigests[tag] = owners[0]
			}
		}
	}
	manifests, err := h.OCI.FetchManifests(ctx, repo, digests)
	if err != nil {
		return nil, err
	}
	// Index children are not in Harbor's listing: ask for each (getArtifact) to have their times.
	var children []v1.Hash
	for d := range manifests {
		if _, ok := known[d]; ok {
			continue
		}
		if _, ok := accessories[d]; ok {
			continue
		}
		children = append(children, d)
	}
	sort.Slice(children, func(i, j int) bool { return children[i].String() < children[j].String() })
	var mu sync.Mutex
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(h.jobs)
	for _, d := range children {
		g.Go(func() error {
			a, err := h.artifact(gctx, project, name, d)
			if registry.IsNotFound(err) {
				return nil // Harbor does not know it (the data plane does): times from the image
			}
			if err != nil {
				return err
			}
			pushed, pulled, err := a.times("getArtifact", fmt.Sprintf("artifact %s@%s", repo, d))
			if err != nil {
				return err
			}
			mu.Lock()
			known[d] = times{pushed: pushed, pulled: pulled, size: a.Size}
			mu.Unlock()
			return nil
		})
	}
	if err := g.Wait(); err != nil {
		return nil, err
	}

	images := registry.Group(repo, tagDigests, manifests, nil)
	for i := range images {
		img := &images[i]
		if t, ok := known[img.Digest]; ok {
			img.PushedAt, img.PushedAtSource, img.LastPulledAt = t.pushed, registry.SourceHarbor, t.pulled
			if t.size != nil && img.Kind != registry.KindIndex && !img.Missing {
				img.Size = *t.size
			}
		}
		if a, ok := accessories[img.Digest]; ok {
			if img.Subject == nil {
				s := a.subject
				img.Subject = &s
			}
			if !img.Kind.Attached() {
				img.Kind = accessoryKind(a.typ)
			}
			if !a.created.IsZero() {
				img.PushedAt, img.PushedAtSource = a.created, registry.SourceHarbor
			}
		}
	}
	sort.SliceStable(images, func(i, j int) bool {
		if !images[i].PushedAt.Equal(images[j].PushedAt) {
			return images[i].PushedAt.After(images[j].PushedAt)
		}
		return images[i].Digest.String() < images[j].Digest.String()
	})
	return images, nil
}

// accessoryKind maps Harbor's accessory types onto the image model's kinds.
func accessoryKind(t string) registry.Kind {
	switch {
	case strings.HasPrefix(t, "signature."):
		return registry.KindSignature
	case strings.Contains(t, "sbom"):
		return registry.KindSBOM
	case strings.Contains(t, "attestation"):
		return registry.KindAttestation
	}
	return registry.KindArtifact
}

// artifact is getArtifact by digest.
func (h *Harbor) artifact(ctx context.Context, project, name string, d v1.Hash) (*artifactDTO, error) {
	a, err := h.api.do(ctx, request{op: "getArtifact", method: http.MethodGet, path: repoPath(project, name) + "/artifacts/" + d.String(),
		query: url.Values{"with_tag": {"true"}}})
	if err != nil {
		return nil, err
	}
	var out artifactDTO
	if err := decode("getArtifact", a, &out); err != nil {
		return nil, err
	}
	if out.Digest != d.String() {
		return nil, badAnswer("getArtifact", "asked for %s@%s, the answer is about %q", project+"/"+name, d, clean(out.Digest, 80))
	}
	return &out, nil
}

// DeleteImage deletes an artifact by digest through Harbor's API (deleteArtifact): all its tags go,
// and Harbor deletes an index's untagged children and the artifact's accessories with it. Storage
// is freed by Harbor's garbage collection.
func (h *Harbor) DeleteImage(ctx context.Context, repo string, digest v1.Hash) error {
	project, name, err := splitRepo(repo)
	if err != nil {
		return err
	}
	_, err = h.api.do(ctx, request{op: "deleteArtifact", method: http.MethodDelete, path: repoPath(project, name) + "/artifacts/" + digest.String()})
	if statusOf(err) == http.StatusPreconditionFailed {
		return fmt.Errorf("%s@%s: Harbor refused the delete (an index references the artifact, or a rule protects it): %w", repo, digest, err)
	}
	return err
}

// DeleteTag removes one tag through Harbor's tag API; the artifact and its other tags stay
// (Harbor's registry API deletes by digest only).
func (h *Harbor) DeleteTag(ctx context.Context, repo, tag string) error {
	project, name, err := splitRepo(repo)
	if err != nil {
		return err
	}
	if !registry.IsTag(tag) {
		return fmt.Errorf("%q is not a tag: %w", tag, exitcode.ErrUsage)
	}
	_, err = h.api.do(ctx, request{op: "deleteTag", method: http.MethodDelete, path: repoPath(project, name) + "/artifacts/" + tag + "/tags/" + tag})
	return err
}

// RepositorySettings reads the settings of the repository's project back as the spec that would
// create it: scan on push (auto_scan).
func (h *Harbor) RepositorySettings(ctx context.Context, repo string) (registry.RepositorySpec, error) {
	project, _, _ := strings.Cut(repo, "/")
	if err := checkProject(project); err != nil {
		return registry.RepositorySpec{}, err
	}
	p, err := h.project(ctx, project)
	if err != nil {
		return registry.RepositorySpec{}, err
	}
	if p == nil {
		return registry.RepositorySpec{}, exitcode.With(exitcode.NotFound, fmt.Errorf("harbor getProject: project %s not found", project))
	}
	return registry.RepositorySpec{ScanOnPush: p.meta("auto_scan") == "true"}, nil
}

var (
	_ registry.Registry            = (*Harbor)(nil)
	_ registry.TraitReporter       = (*Harbor)(nil)
	_ registry.RepositoryInspector = (*Harbor)(nil)
	_ registry.ProjectEnsurer      = (*Harbor)(nil)
	_ registry.Opener              = Open
)
