package harbortest

import (
	"sort"
	"strings"
	"time"
)

// project is one Harbor project.
type project struct {
	id        int64
	name      string
	created   time.Time
	updated   time.Time
	metadata  map[string]string
	allowlist allowlist
	repos     map[string]*repository // by full name ("proj/app")
}

type allowlist struct {
	id        int64
	items     []string
	expiresAt *int64
	created   time.Time
	updated   time.Time
}

// repository is one repository, created by the first push into it.
type repository struct {
	id        int64
	projectID int64
	name      string // with the project: "proj/app"
	created   time.Time
	updated   time.Time
	pullCount int64
	artifacts map[string]*artifact // by digest
}

// artifact is one manifest as Harbor records it.
type artifact struct {
	id           int64
	digest       string
	manifestType string // the manifest's media type
	mediaType    string // the config's media type (images) or the manifest's (indexes)
	artifactType string
	size         int64
	pushTime     time.Time
	pullTime     time.Time // zero: never pulled
	annotations  map[string]string
	tags         map[string]*tag
	children     []child // an index's manifests
	subject      string  // set for accessories: the digest they belong to
	accessory    string  // accessory type: signature.cosign, signature.notation, subject.accessory
}

type tag struct {
	id       int64
	name     string
	pushTime time.Time
	pullTime time.Time
}

type child struct {
	digest   string
	platform map[string]any
}

func (e *Emulator) id() int64 { e.nextID++; return e.nextID }

// createProject adds a project; the caller holds e.mu or is New.
func (e *Emulator) createProject(name string, md map[string]string, al *allowlist) *project {
	now := e.now().UTC()
	p := &project{id: e.id(), name: name, created: now, updated: now, metadata: map[string]string{"public": "false"},
		repos: map[string]*repository{}}
	for k, v := range md {
		p.metadata[k] = v
	}
	p.allowlist = allowlist{id: e.id(), created: now, updated: now}
	if al != nil {
		p.allowlist.items, p.allowlist.expiresAt = al.items, al.expiresAt
	}
	e.projects[name] = p
	return p
}

// projectByNameOrID finds a project; isName forces a name lookup (X-Is-Resource-Name).
func (e *Emulator) projectByNameOrID(ref string, isName bool) *project {
	if p, ok := e.projects[ref]; ok {
		return p
	}
	if isName {
		return nil
	}
	for _, p := range e.projects {
		if itoa(p.id) == ref {
			return p
		}
	}
	return nil
}

func (e *Emulator) sortedProjects() []*project {
	out := make([]*project, 0, len(e.projects))
	for _, p := range e.projects {
		out = append(out, p)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].name < out[j].name })
	return out
}

func (p *project) sortedRepos() []*repository {
	out := make([]*repository, 0, len(p.repos))
	for _, r := range p.repos {
		out = append(out, r)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].name < out[j].name })
	return out
}

// repository finds or (create) makes a repository by full name.
func (e *Emulator) repository(full string, create bool) (*project, *repository) {
	projName, _, _ := strings.Cut(full, "/")
	p := e.projects[projName]
	if p == nil {
		return nil, nil
	}
	r := p.repos[full]
	if r == nil && create {
		now := e.now().UTC()
		r = &repository{id: e.id(), projectID: p.id, name: full, created: now, updated: now, artifacts: map[string]*artifact{}}
		p.repos[full] = r
	}
	return p, r
}

// referenced reports whether an index in the repository lists digest.
func (r *repository) referenced(digest string) bool {
	for _, a := range r.artifacts {
		for _, c := range a.children {
			if c.digest == digest {
				return true
			}
		}
	}
	return false
}

// listed are the artifacts Harbor's listing shows: tagged ones and untagged ones no index
// references, never accessories (they are shown under their subject), newest push first.
func (r *repository) listed() []*artifact {
	var out []*artifact
	for _, a := range r.artifacts {
		if a.subject != "" {
			continue
		}
		if len(a.tags) == 0 && r.referenced(a.digest) {
			continue
		}
		out = append(out, a)
	}
	sort.Slice(out, func(i, j int) bool {
		if !out[i].pushTime.Equal(out[j].pushTime) {
			return out[i].pushTime.After(out[j].pushTime)
		}
		return out[i].id > out[j].id
	})
	return out
}

// accessories of digest in the repository.
func (r *repository) accessories(digest string) []*artifact {
	var out []*artifact
	for _, a := range r.artifacts {
		if a.subject == digest {
			out = append(out, a)
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].id < out[j].id })
	return out
}

// artifactByRef finds an artifact by digest or tag.
func (r *repository) artifactByRef(ref string) *artifact {
	if a, ok := r.artifacts[ref]; ok {
		return a
	}
	for _, a := range r.artifacts {
		if _, ok := a.tags[ref]; ok {
			return a
		}
	}
	return nil
}

// untag removes a tag from whichever artifact has it (a tag moves when it is pushed again).
func (r *repository) untag(name string) {
	for _, a := range r.artifacts {
		delete(a.tags, name)
	}
}

func (a *artifact) sortedTags() []*tag {
	out := make([]*tag, 0, len(a.tags))
	for _, t := range a.tags {
		out = append(out, t)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].name < out[j].name })
	return out
}

// principal is who a request is from.
type principal struct {
	name      string
	admin     bool
	robot     *Robot
	anonymous bool
}

// systemResources are the resources a system-level permission grants.
var systemResources = map[string]bool{"project": true, "registry": true, "replication-policy": true, "replication": true,
	"scan-all": true, "garbage-collection": true, "catalog": true, "robot": true, "audit-log": true, "label": true, "scanner": true}

// can reports whether the principal may act on resource in project ("" for system-level actions).
func (p principal) can(e *Emulator, proj, resource, action string) bool {
	switch {
	case p.admin:
		return true
	case p.robot != nil:
		for _, perm := range p.robot.Permissions {
			switch {
			case proj == "" && perm.Kind == "system" && systemResources[resource]:
			case proj != "" && perm.Kind == "project" && (perm.Namespace == proj || perm.Namespace == "*"):
			default:
				continue
			}
			for _, a := range perm.Access {
				if a.Resource == resource && (a.Action == action || a.Action == "*") {
					return true
				}
			}
		}
	}
	// Everyone, anonymous included, may read a public project.
	if proj != "" && isRead(resource, action) {
		if pr := e.projects[proj]; pr != nil && pr.metadata["public"] == "true" {
			return true
		}
	}
	return false
}

func isRead(resource, action string) bool {
	switch resource + ":" + action {
	case "project:read", "repository:list", "repository:read", "repository:pull", "artifact:list", "artifact:read", "tag:list", "metadata:read":
		return true
	}
	return false
}

// member reports whether the principal sees the project in listings: public, or any permission.
func (p principal) member(e *Emulator, proj *project) bool {
	if p.admin || proj.metadata["public"] == "true" {
		return true
	}
	if p.robot != nil {
		for _, perm := range p.robot.Permissions {
			if perm.Kind == "project" && (perm.Namespace == proj.name || perm.Namespace == "*") {
				return true
			}
		}
	}
	return false
}
